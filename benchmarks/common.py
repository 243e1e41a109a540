"""Shared pieces of the harness benchmarks: offline env, timed harness runs, plain-mteb runs, table + JSON output."""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.env import scratch_env, shared_data_root

SCRATCH = Path(tempfile.mkdtemp(prefix="harness-bench-"))
_SCRATCH_OWNER = os.getpid()


def _remove_scratch() -> None:
    """At exit the scratch folder goes (runs, caches, checkouts: gigabytes over many runs), kept only when
    $BENCH_KEEP_SCRATCH asks, to look into; a forked child that exits through Python leaves its parent's alone."""
    if os.getpid() != _SCRATCH_OWNER:
        return
    if os.environ.get("BENCH_KEEP_SCRATCH"):
        print(f"scratch kept: {SCRATCH}", file=sys.stderr)
    else:
        shutil.rmtree(SCRATCH, ignore_errors=True)


atexit.register(_remove_scratch)
_SHELL_TOKENIZERS_PARALLELISM = os.environ.get("TOKENIZERS_PARALLELISM")  # before scratch_env defaults it
scratch_env(SCRATCH)  # offline, library caches under SCRATCH (harness/env.py)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = shared_data_root()
RESULTS = REPO / "benchmarks" / "results"  # the committed results (some scripts read one back)


def results_dir() -> Path:
    """Where a benchmark writes: $BENCH_RESULTS_DIR when set, so a measurement made only to look at does not
    overwrite the committed file of the same name; else benchmarks/results (RESULTS), whatever the cwd."""
    return Path(os.environ.get("BENCH_RESULTS_DIR") or RESULTS)


def is_retrieval_task(name: str) -> bool:
    """The 13 retrieval tasks of issue 16's end-to-end target: 'Retrieval' in the name, and SciFact."""
    return "Retrieval" in name or name == "SciFact"


def harness_cli(argv: list[str]) -> int:
    """`harness argv` in-process, as `harness.cli.main` runs it but for a Ctrl-C, which reaches the script's
    run_main: main would say "finished tasks are kept in the run directory", false of a scratch run that goes at
    exit."""
    from conan_model.errors import ConanError
    from harness.cli import build_parser, load_embedder
    from train.scorer import install_spec_loader

    install_spec_loader(load_embedder)
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except ConanError as exc:  # one line and its exit status, as the CLI does
        print(f"harness: error: {exc}", file=sys.stderr)
        return exc.exit_code


def harness_run(tasks: list[str], data: Path, name: str, *extra: str, model: str = "minilm",
                check: bool = True) -> tuple[float, dict]:  # fmt: skip
    """Wall seconds of one in-process `harness run` and its run.json (scores per task)."""
    start = time.perf_counter()
    code = harness_cli(["run", "--tasks", ",".join(tasks), "--model", model, "--data-dir", str(data), "--out",
                 str(SCRATCH / "runs"), "--run-name", name, "--no-progress", *extra])  # fmt: skip
    wall = time.perf_counter() - start
    if check and code != 0:
        raise SystemExit(f"harness run {name} failed with exit status {code}")
    return wall, json.loads((SCRATCH / "runs" / name / "run.json").read_text())


def scores(record: dict) -> dict[str, float]:
    return {name: round(100 * t["main_score"], 2) for name, t in record["tasks"].items()}


def portable(obj: Any) -> Any:
    """`obj` with every absolute path of this machine written relative to the repository (`../shared/data/zh/BQ`),
    the scratch folder (`<scratch>/runs/x`) or the home folder (`~/...`), also inside a model spec
    (`conan:<scratch>/ckpt`): a committed result names no machine's folders."""
    if isinstance(obj, dict):
        return {key: portable(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return [portable(value) for value in obj]
    if isinstance(obj, Path):
        obj = str(obj)
    scheme, sep, rest = obj.partition(":") if isinstance(obj, str) else ("", "", "")
    if sep and scheme.isalpha() and rest.startswith("/"):  # a model spec such as st:/abs/folder
        return f"{scheme}:{portable(rest)}"
    if isinstance(obj, str) and obj.startswith("/"):
        if obj == str(SCRATCH) or obj.startswith(f"{SCRATCH}/"):
            return "<scratch>" + obj.removeprefix(str(SCRATCH))
        if Path(obj).is_relative_to(REPO.parent):
            return os.path.relpath(obj, REPO)
        if Path(obj).is_relative_to(Path.home()):
            return "~/" + os.path.relpath(obj, Path.home())
    return obj


_WRITTEN: list[Path] = []  # what save_result wrote, for the line a Ctrl-C ends with


def save_result(path: Path, payload: dict[str, Any]) -> None:
    """A benchmark's JSON, written atomically with machine paths made portable."""
    from harness.runs import atomic_write_json

    atomic_write_json(path, portable(payload))
    _WRITTEN.append(path)
    print(f"\nwrote {path}")


def run_main(main: Callable[[], int | None]) -> None:
    """A script's entry: a Ctrl-C (or SIGTERM) ends in one line saying what was written, exit status 130 (143),
    not a traceback; the scratch folder still goes at exit."""
    from conan_model.signals import how_stopped, sigterm_interrupts

    try:
        with sigterm_interrupts(process_exits_after=True):
            code = main()
    except KeyboardInterrupt as exc:
        kept = ", ".join(map(str, _WRITTEN))
        print(f"{how_stopped(exc)}: {f'wrote only {kept}' if kept else 'nothing written'}", file=sys.stderr)
        raise SystemExit(getattr(exc, "exit_code", 130)) from None
    raise SystemExit(code)


def preset_names(text: str) -> list[str]:
    """argparse type of --presets/--preset: comma-separated ConanConfig presets, an unknown one refused in one line
    (before, a KeyError traceback from conan_model/config.py once the benchmark had started)."""
    from conan_model.config import PRESETS

    names = text.split(",")
    if unknown := [name for name in names if name not in PRESETS]:
        raise argparse.ArgumentTypeError(f"unknown preset {', '.join(map(repr, unknown))}; choose from "
                                         f"{', '.join(sorted(PRESETS))}")  # fmt: skip
    return names


def positive_int(text: str) -> int:
    """argparse type of a count (--repeats, --iters): 0 would time nothing and fail only at the end, if at all."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def tokenize_as_the_cli() -> None:
    """Put the shell's TOKENIZERS_PARALLELISM back (unset: the tokenizers library's parallel default), before any
    tokenizer exists. scratch_env defaults it to "false", right for tests and CPU benchmarks, but `harness run`
    never sets it: a benchmark that times tokenizing as the CLI does calls this."""
    if _SHELL_TOKENIZERS_PARALLELISM is None:
        os.environ.pop("TOKENIZERS_PARALLELISM", None)
    else:
        os.environ["TOKENIZERS_PARALLELISM"] = _SHELL_TOKENIZERS_PARALLELISM


def write_report(name: str, rows: list[list[Any]], headers: list[str], payload: dict[str, Any]) -> None:
    """The table printed, and `name`.json (with the machine's environment) written under results_dir()."""
    from tabulate import tabulate

    from harness.sysinfo import environment

    print(tabulate(rows, headers=headers, tablefmt="github"))
    save_result(results_dir() / f"{name}.json", {"environment": environment(), **payload})
