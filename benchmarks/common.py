"""Shared pieces of the harness benchmarks: offline env, timed harness runs, plain-mteb runs, table + JSON output."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from harness.env import scratch_env, shared_data_root

SCRATCH = Path(tempfile.mkdtemp(prefix="harness-bench-"))
_SHELL_TOKENIZERS_PARALLELISM = os.environ.get("TOKENIZERS_PARALLELISM")  # before scratch_env defaults it
scratch_env(SCRATCH)  # offline, library caches under SCRATCH (harness/env.py)

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = shared_data_root()
RESULTS = REPO / "benchmarks" / "results"


def is_retrieval_task(name: str) -> bool:
    """The 13 retrieval tasks of issue 16's end-to-end target: 'Retrieval' in the name, and SciFact."""
    return "Retrieval" in name or name == "SciFact"


def harness_run(tasks: list[str], data: Path, name: str, *extra: str, model: str = "minilm",
                check: bool = True) -> tuple[float, dict]:  # fmt: skip
    """Wall seconds of one in-process `harness run` and its run.json (scores per task)."""
    from harness.cli import main

    start = time.perf_counter()
    code = main(["run", "--tasks", ",".join(tasks), "--model", model, "--data-dir", str(data), "--out",
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


def save_result(path: Path, payload: dict[str, Any]) -> None:
    """A benchmark's JSON, written atomically with machine paths made portable."""
    from harness.runs import atomic_write_json

    atomic_write_json(path, portable(payload))
    print(f"\nwrote {path}")


def tokenize_as_the_cli() -> None:
    """Put the shell's TOKENIZERS_PARALLELISM back (unset: the tokenizers library's parallel default), before any
    tokenizer exists. scratch_env defaults it to "false", right for tests and CPU benchmarks, but `harness run`
    never sets it: a benchmark that times tokenizing as the CLI does calls this."""
    if _SHELL_TOKENIZERS_PARALLELISM is None:
        os.environ.pop("TOKENIZERS_PARALLELISM", None)
    else:
        os.environ["TOKENIZERS_PARALLELISM"] = _SHELL_TOKENIZERS_PARALLELISM


def write_report(name: str, rows: list[list[Any]], headers: list[str], payload: dict[str, Any]) -> None:
    from tabulate import tabulate

    from harness.sysinfo import environment

    print(tabulate(rows, headers=headers, tablefmt="github"))
    save_result(RESULTS / f"{name}.json", {"environment": environment(), **payload})
