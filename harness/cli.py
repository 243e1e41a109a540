"""The one command line: `harness run | list | ...`. Subcommands import their machinery lazily."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from conan_model.errors import EXIT_USAGE, ConanError, error_line
from harness.env import data_root, library_cache_defaults, user_cache_root
from harness.runs import comma_list

if TYPE_CHECKING:  # the CLI imports its machinery lazily
    from harness.data import LocalTask
    from harness.errors import DataError

# Modules exposing `register(subparsers)`: report, regress; train; pipeline; models; ablate. (`leaderboard` and
# `alignment` are defined here: each hands a plugin what only the harness knows, a suite's benchmark or vectors.)
PLUGIN_COMMANDS: list[str] = ["reporting.cli", "train.cli", "harness.pipeline", "conan_model.cli", "harness.ablate"]


def _device(value: str) -> str | None:
    """--device: `auto` is what leaving it out means (the best available), as training's `device = "auto"`."""
    return None if value == "auto" else value


def use_threads(count: int) -> None:
    """--threads: the CPU threads the model computes with, set before any model loads: torch's intra-op threads and
    OpenMP's, which me5-small's C engine reads when it loads. Two threads on two busy cores are several times slower
    than one (docs/training.md); before stop 66 only OMP_NUM_THREADS, undocumented, did this for `harness run`."""
    from harness.checks import check_positive

    check_positive("--threads", count)  # before torch is imported
    import os

    import torch

    os.environ["OMP_NUM_THREADS"] = str(count)
    torch.set_num_threads(count)


def cmd_run(args: argparse.Namespace) -> int:
    from harness.checks import parse_dims
    from harness.embedder import ModelOptions
    from harness.runner import RunConfig, run
    from harness.suites import default_model

    if args.threads is not None:
        use_threads(args.threads)
    cfg = RunConfig(
        model=args.model or default_model(args.suite),
        data_dir=data_root(args.data_dir)[0],
        out=Path(args.out),
        suite=args.suite,
        tasks=args.tasks,
        run_name=args.run_name,
        source=args.source,
        batch_size=args.batch_size,
        max_batch_tokens=args.max_batch_tokens,
        dims=parse_dims(args.dims),
        dim_predictions=args.dim_predictions,
        cache_dir=Path(args.cache_dir) if args.cache_dir else None,
        use_cache=not args.no_cache,
        options=ModelOptions(device=args.device, dtype=args.dtype, max_length=args.max_length,
                             pooling=args.pooling, trust_remote_code=args.trust_remote_code,
                             compile=args.compile, pad_to_multiple_of=args.pad_to_multiple_of),  # fmt: skip
        overwrite=args.overwrite,
        show_progress=False if args.no_progress else None,
    )
    try:
        return run(cfg)
    except KeyboardInterrupt as exc:  # what is kept depends on how far the run got (`harness.runner.stopped_note`)
        args.interrupted = getattr(exc, "kept", "")
        raise


def cmd_list(args: argparse.Namespace) -> int:
    from harness.data import scan_tasks
    from harness.errors import UsageError
    from harness.models import PACKAGED, PREFIXES
    from harness.runs import md_table
    from harness.suites import OFFICIAL_SUITES, default_model, local_suites

    if args.suite and args.what in ("suites", "models"):  # before stop 61 taken and ignored
        raise UsageError(f"--suite {args.suite}: `harness list {args.what}` takes no suite (`list tasks --suite` lists "
                         "a suite's tasks, `list official --suite` its official datasets)")  # fmt: skip
    root, origin = data_root(args.data_dir)
    local, broken = scan_tasks(root)
    if args.what == "suites":
        rows = [[name, f"mteb {bench}", default_model(name)] for name, bench in OFFICIAL_SUITES.items()]
        rows += [[s.name, f"{len(s.tasks)} local tasks", default_model(s.name)] for s in local_suites(local).values()]
        print(md_table(rows, headers=["suite", "tasks", "default model"]))
        # the local suites are the task folders of this root: before stop 63 their counts came unexplained, and
        # differed from README's (`--data-dir ../shared/data`) on the embedded sample
        print(f"\nlocal suites: the task folders in {root.resolve()} (from {origin}); another data root "
              "(--data-dir) holds other tasks")  # fmt: skip
    elif args.what == "official":
        _list_official(args.suite, local)
    elif args.what == "tasks":
        _list_tasks(root, origin, local, broken, args.suite)
    else:
        rows = [[name, desc] for name, desc in PACKAGED.items()]
        # before walk 68 conan: said "harness train output" only and hf: nothing of decoders, which an hf: run
        # pools without the eos token the import appends
        rows += [[f"{p}<path>", desc] for p, desc in zip(PREFIXES, (
            "sentence-transformers folder (or cached hub name)",
            "transformers encoder folder, --pooling mean|cls|last; a decoder (Llama/Qwen2/Mistral): import it with "
            "`harness models import hf:<folder>` (hf: pools without the eos token the import appends)",
            "conan_model folder: `harness train` output, `harness models import` output or a prepared base "
            "(`harness models list`)"), strict=True)]  # fmt: skip
        print(md_table(rows, headers=["model", "what"]))
    return 0


def _list_tasks(root: Path, origin: str, local: dict[str, LocalTask], broken: dict[str, DataError],
                suite: str | None) -> None:
    """The data root's task folders, or (`suite`) the suite's tasks as `harness run --suite S --source mirror` plans
    them: which have data here, and why the others do not run."""
    from harness.data import DuplicateTask
    from harness.runner import RunConfig, plan_tasks
    from harness.runs import md_table
    from harness.suites import OFFICIAL_SUITES
    from harness.tasks import MIRROR, mirror_main_score, refused_mirror  # asks mteb each twin's main score

    def row(task: LocalTask, status: str = "ok") -> list[str]:
        languages = ", ".join(task.languages)  # task.json's (before stop 61 the folder's: "multi" for de, en)
        return [task.name, task.type, languages, task.mteb_equivalent or "—", mirror_main_score(task), status]

    def broken_rows(name: str) -> list[list[str]]:  # a row per folder of a name defined twice (before stop 67: one)
        errors = broken[name].each() if isinstance(broken[name], DuplicateTask) else [broken[name]]
        return [[name, "—", exc.path.parent.parent.name, "—", "—", f"BROKEN: {exc}"] for exc in errors]

    if suite is None:
        # a folder every run refuses (an mteb task's name it does not mirror): before stop 67 listed as `ok`
        rows = [row(t, f"not run: {refused}" if (refused := refused_mirror(t)) else "ok") for t in local.values()]
        rows += [each for name in broken for each in broken_rows(name)]
    else:  # a run's own plan: the same tasks, mirrors and reasons (a name clash, a split the suite does not score)
        plan = plan_tasks(RunConfig(model="", data_dir=root, suite=suite, source=MIRROR), local,
                          {name: str(exc) for name, exc in broken.items()})  # fmt: skip
        rows = [each for r in plan.resolved for each in (
            [row(r.local)] if r.source == MIRROR else broken_rows(r.name) if r.name in broken
            else [[r.name, r.type or "—", "—", "—", "—", "no local mirror" if r.name not in local
                   else f"not run: {r.reason}"]])]  # fmt: skip
    print(f"data root: {root.resolve()} (from {origin})\n")
    print(md_table(rows, headers=["task", "type", "lang", "mteb equivalent", "main score (as runs report)",
                                  "status"]))  # fmt: skip
    if suite is None:
        folders = len(rows) - len(local)  # a name defined twice is one broken task of two folders
        in_folders = f", in {folders} folders" if folders > len(broken) else ""
        print(f"\n{len(local)} local tasks ({len(broken)} broken{in_folders}) in {root.resolve()}; any mteb task name "
              "also works with --tasks.")  # fmt: skip
    else:
        official = f"; official datasets: `harness list official --suite {suite}`" if suite in OFFICIAL_SUITES else ""
        print(f"\n{plan.coverage_line()} (mirrors in {root.resolve()}{official})")


def _list_official(suite: str | None, local: dict) -> None:
    """Per task of the official suites: the dataset mteb pins and whether it is ready for an offline run."""
    from harness.runs import md_table
    from harness.suites import OFFICIAL_SUITES, official_suite
    from harness.tasks import datasets_cache_dir, is_aggregate, official_problem, official_task
    from harness.validate import NOT_PREPARED

    names = [suite] if suite else list(OFFICIAL_SUITES)
    for name in names:
        rows, ready = [], 0
        for task_name in official_suite(name).tasks:
            task = official_task(task_name)
            problem = "not known to this mteb" if task is None else official_problem(task)
            cached = not problem
            ready += cached
            # a damaged or shadowed copy is said here, not first by `run`; a missing one is the common case: —
            state = "✔" if cached else "—" if task is None or NOT_PREPARED in problem else problem.split(" ", 1)[1]
            dataset = task.metadata.dataset if task is not None else {}
            if is_aggregate(task):  # no dataset of its own ("aggregate tasks do not have a path")
                dataset = {"path": f"aggregate of {len(task.tasks)} tasks"}
            rows.append([task_name, dataset.get("path", "—"), str(dataset.get("revision", "—"))[:12],
                         state, "✔" if task_name in local else "—"])  # fmt: skip
        print(f"## {name}: {ready}/{len(rows)} official datasets ready offline\n")
        print(md_table(rows, headers=["task", "dataset", "revision", "offline cache", "local mirror"]))
        print()
    if names:
        print(f"datasets cache: {datasets_cache_dir(official_task(official_suite(names[0]).tasks[0])).parent} "
              "(HF_DATASETS_CACHE, else $HF_HOME/datasets, else datasets/ of the harness's cache folder)")  # fmt: skip


def cmd_cache(args: argparse.Namespace) -> int:

    from harness.cache import ASIDE, DB_NAME, aside_copies, default_cache_dir, linked_file, open_cache_at
    from harness.errors import UsageError

    folder = Path(args.cache_dir) if args.cache_dir else default_cache_dir()
    if linked := linked_file(folder):  # a run leaves such a cache unused; info and clear name the link, whatever
        # it leads to (a review, stop 70: a dangling one read as "embeddings.sqlite is missing")
        raise UsageError(f"--cache-dir {folder}: {linked}; the harness neither reads nor writes a cache through "
                         "links: remove the link yourself")  # fmt: skip
    if not (folder / DB_NAME).is_file():  # never create one here: a mistyped --cache-dir would report "0 vectors"
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"--cache-dir {folder}: a file, not a folder: no embedding cache there")
        if (folder / DB_NAME).exists():
            raise UsageError(f"--cache-dir {folder}: {DB_NAME} there is not a file: no embedding cache there")
        if args.action == "clear":  # idempotent (before stop 67 exit 2), for a script that clears before a sweep
            aside = aside_copies(folder)
            for path in aside:  # copies moved aside by a run, left behind when the cache file was removed
                path.unlink()
            gone = f"; removed the copies moved aside: {', '.join(p.name for p in aside)}" if aside else ""
            print(f"{folder}: no embedding cache there ({DB_NAME} is missing): nothing to clear{gone}")
            return 0
        if args.cache_dir:
            raise UsageError(f"--cache-dir {folder}: no embedding cache there ({DB_NAME} is missing)")
        print(f"{folder}: no embedding cache yet (a run with the cache on makes one)")
        return 0
    cache = open_cache_at(folder, only_read=True)  # info changes nothing; clear looks before it deletes
    try:  # closed explicitly: an open cache holds the shared lock that lets other runs repair or clear it
        if args.fingerprint is not None and not args.model:
            raise UsageError("--fingerprint narrows --model: give the model's name too (`harness cache info` shows "
                             "both)")  # fmt: skip
        if args.action == "clear" and args.model:
            gone = cache.clear_model(args.model, args.fingerprint)
            which = f" (fingerprint {args.fingerprint}…)" if args.fingerprint else ""
            spaces = f"{gone['namespaces']} namespace{'s' * (gone['namespaces'] != 1)}"
            print(f"removed {gone['entries']} cached vectors of {args.model}{which} ({spaces}; {_mib(gone['bytes'])} "
                  f"given back) from {cache.path}")  # fmt: skip
            return 0
        if args.action == "clear":
            _say_cleared(cache.path, cache.clear())
            return 0
        info = cache.info()
        if args.model and not info["damage"]:
            info["namespaces"] = cache.namespaces_of(info, args.model, args.fingerprint)
            info["entries"] = sum(ns["entries"] for ns in info["namespaces"])
        state = f" (read-only, {info['read_only']}: a run reads it and stores nothing)" if info["read_only"] else ""
        if info["damage"]:  # before stop 61, info itself moved the file aside and reported a new empty one
            then = ("leaves it in place and keeps its vectors in memory" if info["read_only"]
                    else f"moves it aside as {ASIDE}<time> and starts a fresh cache")  # fmt: skip
            print(f"{info['path']}: unusable ({info['damage']}), {_mib(info['bytes'])}{state}: a run {then}")
        else:
            print(f"{info['path']}: {info['entries']} vectors, {_mib(info['bytes'])}{state}")
        for ns in info["namespaces"]:
            tail = _namespace_tail(ns, info)
            if args.model and "  fingerprint=" not in tail:  # what --fingerprint takes, shown for one model
                tail += f"  fingerprint={ns.get('fingerprint')}"
            print(f"  {ns['entries']:>8}  {ns.get('name')}  role={ns.get('role')}  dtype={ns.get('dtype')}  "
                  f"max_length={ns.get('max_length')}  prompt={ns.get('prompt')!r}{tail}")
        if info["moved_aside"]:
            print(f"moved aside (damaged or an older layout; `harness cache clear` removes them): "
                  f"{len(info['moved_aside'])}, {_mib(sum(size for _, size in info['moved_aside']))}")
            for name, size in info["moved_aside"]:
                print(f"  {name}  {_mib(size)}")
        return 0
    finally:
        cache.close()


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"


def _say_cleared(path: Path, removed: dict[str, Any]) -> None:
    """What `cache clear` removed: the vectors (or a damaged file, uncounted) and the copies moved aside."""
    count = "a damaged file (its vectors uncounted)" if removed["entries"] is None else \
        f"{removed['entries']} cached vectors"  # fmt: skip
    print(f"removed {count}, {_mib(removed['bytes'])}, from {path}")
    if removed["aside"]:
        print(f"removed the copies moved aside ({len(removed['aside'])}, "
              f"{_mib(sum(size for _, size in removed['aside']))}): {', '.join(n for n, _ in removed['aside'])}")


CACHE_INFO_SHOWN = ("name", "role", "dtype", "max_length", "prompt")


def _namespace_tail(ns: dict[str, Any], info: dict[str, Any]) -> str:
    """The identity keys in which a namespace differs from another that `cache info`'s line shows alike (a padding
    multiple, a device, another fingerprint): before stop 49 (audit) two such lines read the same."""
    twins = [o for o in info["namespaces"] if o is not ns and all(o.get(k) == ns.get(k) for k in CACHE_INFO_SHOWN)]
    mine = _flat(ns)
    keys = sorted({k for o in map(_flat, twins) for k in {*mine, *o} if mine.get(k) != o.get(k)
                   and k.split(".")[0] not in (*CACHE_INFO_SHOWN, "namespace", "entries")})  # fmt: skip
    return "".join(f"  {k}={mine.get(k)}" for k in keys)


def _flat(identity: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A namespace's identity with nested tables as dotted keys (`packages.transformers`), so a difference inside
    one is named by its key (review of stop 49: cut at 24 characters, package versions read alike)."""
    flat: dict[str, Any] = {}
    for key, value in identity.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def cmd_alignment(args: argparse.Namespace) -> int:
    """Language mixing of each model's embeddings: the harness encodes, reporting scores and draws."""
    from harness.backends import POOLINGS
    from harness.checks import check_device, check_positive, check_seed, check_writable_dir
    from harness.console import silence_library_bars
    from harness.distributed import refuse_torchrun
    from harness.embedder import ModelOptions
    from harness.errors import UsageError
    from harness.models import DTYPES, check_spec, embed_symmetric
    from reporting.alignment import run_alignment

    refuse_torchrun("alignment", "the same report", "run `harness alignment ...` alone (it encodes a few thousand "
                    "sentences per model)")  # fmt: skip
    for option, value in (("--n", args.n), ("--k", args.k), ("--batch-size", args.batch_size)):
        check_positive(option, value)  # before any file is read or model loaded (0 or less: NaN or a traceback)
    check_seed("--seed", args.seed)
    # the hf: models' pooling, decided at load as for `harness run` (mean when none is given); others pool their way.
    # --device and --dtype as `harness run` takes them (before stop 61: the best device, auto dtype, always)
    check_device(args.device)  # before any model is encoded
    options = {spec: ModelOptions(device=args.device, dtype=args.dtype,
                                  pooling=args.pooling if spec.startswith("hf:") else None) for spec in args.model}
    if args.dtype not in (*DTYPES, "auto"):
        raise UsageError(f"--dtype {args.dtype!r}: choose one of auto, {', '.join(DTYPES)}")
    if args.pooling is not None and args.pooling not in POOLINGS:
        raise UsageError(f"--pooling {args.pooling!r}: choose one of {', '.join(POOLINGS)}")
    if args.pooling is not None and not any(spec.startswith("hf:") for spec in args.model):
        raise UsageError(f"--pooling {args.pooling}: only hf: models take a pooling; no --model is one")
    for i, spec in enumerate(args.model):  # every model before the first is encoded: a typo in the last loses nothing
        check_spec(spec)
        if spec in args.model[:i]:
            raise UsageError(f"--model {spec}: given twice (one row per model)")
    check_writable_dir("--out", Path(args.out))
    silence_library_bars()  # transformers' "Loading weights" bar, which `harness run` keeps off too
    settings: dict[str, str] = {}
    path = run_alignment(args.model, [Path(p) for p in args.parallel], Path(args.out), n_pairs=args.n,
                         seed=args.seed, tsne=args.tsne, k=args.k, batch_size=args.batch_size, settings=settings,
                         model_args=[*(["--pooling", args.pooling] if args.pooling else []),
                                     *(["--device", args.device] if args.device else []),
                                     *(["--dtype", args.dtype] if args.dtype != "auto" else [])],
                         encode=lambda spec, texts, batch: embed_symmetric(
                             spec, texts, batch, settings, options[spec]))  # fmt: skip
    print(f"alignment report written to {path}")
    return 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    """Rank runs and published results: the harness resolves --suite to its mteb benchmark, leaderboards rank."""
    from harness.errors import UsageError
    from harness.runs import RUN_JSON, atomic_write_text, check_file_target, set_aside, stopped_text
    from harness.suites import official_benchmark
    from leaderboards.build import SuiteRef, build_board
    from leaderboards.published import results_root
    from leaderboards.render import render

    for folder in args.published or []:
        if not results_root(Path(folder)).is_dir():
            raise UsageError(f"--published {folder}: no such folder (a copy of embeddings-benchmark/results, or "
                             "`--published` alone for the shipped snapshot)")  # fmt: skip
        if (Path(folder) / RUN_JSON).is_file():  # its results/ has the published layout: it ranked as "(published)"
            raise UsageError(f"--published {folder}: a run directory (it holds {RUN_JSON}); give run directories "
                             f"before --published, or --published=DIR for a published folder")  # fmt: skip
    try:  # before the board reads every run and published file
        check_file_target(Path(args.out))
    except OSError as exc:  # a name too long, a folder that cannot be read
        raise UsageError(f"--out {args.out}: cannot be written ({exc.strerror or exc})") from None
    except ConanError as exc:  # a folder: before, "runs: is a directory" named no option
        raise UsageError(f"--out {exc}") from None
    try:
        suite = SuiteRef(args.suite, official_benchmark(args.suite)) if args.suite else None
        board = build_board([Path(p) for p in args.runs], [Path(p) for p in args.published or []], suite, args.dims,
                            skip_damaged=args.skip_damaged)  # fmt: skip
    except ConanError as exc:  # unusable input: the last board would stay, read as tonight's
        if exc.exit_code == EXIT_USAGE and Path(args.out).is_file():
            paths = [args.out, *args.runs, *(args.published or [])]
            previous = set_aside(Path(args.out))
            atomic_write_text(Path(args.out), stopped_text("Leaderboard", exc.exit_code, str(exc), paths, previous))
        raise
    for why in board.skipped:
        print(f"warning: left out (--skip-damaged): {why}", file=sys.stderr)
    text = render(board)
    atomic_write_text(Path(args.out), text)
    print(text)
    print(f"leaderboard written to {args.out}")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse's parser, keeping its usage error's message (``refused``), so that a refused `regress` can still
    say why in the --out and --json a gate reads. Subcommands' parsers are of this class too."""

    refused: str | None = None

    def error(self, message: str) -> NoReturn:
        _Parser.refused = message
        super().error(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="harness", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    # the statuses a CI job branches on, as `regress --help` gives its own: none were said here before (a user's
    # walk, stop 64); docs/harness.md "Records" and its probes table hold the detail
    run = sub.add_parser("run", help="evaluate a model on a suite or on named tasks",
                         epilog="exit status: 0 every task evaluated (or kept from an earlier run into the directory; "
                         "a suite's tasks without data here are its coverage, named on stderr); 1 a task failed (bad "
                         "data row, model error, NaN score), a task named in --tasks could not be evaluated, nothing "
                         "could be evaluated, or torchrun ranks fell out of step; 2 unusable input (unknown "
                         "suite/task/model, bad option, a data root or run.json that cannot be read); 130 interrupted "
                         "(Ctrl-C), 143 terminated (SIGTERM): finished tasks are kept and the same command carries "
                         "on")  # fmt: skip
    run.add_argument("--suite", help="cmteb, mteb-en, mteb-en-v1, local, local-<lang> (see `harness list suites`)")
    # list options join when repeated (`--dims 64 --dims 128` = `--dims 64,128`): before, the last alone, unsaid
    run.add_argument("--tasks", type=comma_list, action="extend", help="comma-separated task names (narrows --suite "
                     "if both are given; repeatable)")  # fmt: skip
    run.add_argument("--model", help="minilm, me5-small, st:<path>, hf:<path>, conan:<dir> (default per suite: "
                     "minilm for local-en, mteb-en and mteb-en-v1; me5-small for every other suite and for --tasks)")
    run.add_argument("--data-dir", help="data root with <lang>/<Task>/ folders (default: $HARNESS_DATA or the "
                     "embedded sample)")  # fmt: skip
    run.add_argument("--out", default="runs", help="parent folder of run directories (default: runs)")
    run.add_argument("--run-name", help="run directory name (default: <model>__<suite>)")
    run.add_argument("--source", choices=("auto", "official", "mirror"), default="auto",
                     help="where task data comes from (auto: official if available, else mirror)")
    run.add_argument("--batch-size", type=int, default=64, help="most texts per forward pass (default 64)")
    run.add_argument("--max-batch-tokens", type=int, default=8192,
                     help="token budget per batch: rows x the longest row as padded (default 8192)")
    run.add_argument("--dims", type=comma_list, action="extend", help="Matryoshka dims to score from one full "
                     "encode, e.g. 64,128,256,full (repeatable): the first d dimensions as they are, not "
                     "renormalised, as mteb's embed_dim gives them")  # fmt: skip
    run.add_argument("--dim-predictions", action="store_true",
                     help="keep mteb's per-item outputs at each --dims size too (predictions/embed_dim_<d>/: paired "
                          "CIs at MRL dims; a retrieval task's file is ~100 MB per dim)")  # fmt: skip
    run.add_argument("--cache-dir", help="embedding cache folder (default: $HARNESS_CACHE_DIR or "
                     "~/.cache/conan-harness/embeddings)")
    run.add_argument("--no-cache", action="store_true", help="neither read nor write the embedding cache")
    run.add_argument("--device", type=_device, help="cpu, cuda, cuda:1, npu, mps, xpu, or auto (the default: the best "
                     "available: cuda, npu, mps, else cpu)")
    run.add_argument("--dtype", default="auto", help="auto (bfloat16 on accelerators and on CPUs with native bf16, "
                     "else float32; the reason goes to run.json), float32, float16, bfloat16")
    run.add_argument("--max-length", type=int, help="truncate inputs to this many tokens")
    run.add_argument("--threads", type=int, help="CPU threads the model computes with (torch's and OpenMP's; "
                     "default: torch's, one per core; efficiency.json records it)")
    run.add_argument("--pad-to-multiple-of", type=int, help="pad each batch's length to a multiple of this many "
                     "tokens, st: and hf: models; --max-batch-tokens counts the padding (default: 1, to the "
                     "longest text)")
    run.add_argument("--pooling", help="pooling for hf: models: mean, cls, last (default: mean; a CLS-trained hf: "
                     "model needs --pooling cls); other models pool as they were trained and refuse it")
    run.add_argument("--trust-remote-code", action="store_true", help="allow model folders to run their own code")
    run.add_argument("--compile", action="store_true", help="torch.compile the model (conan:, st:, hf:, minilm; "
                     "faster on GPUs after tens of seconds of compilation)")
    run.add_argument("--overwrite", action="store_true", help="redo tasks that a previous run finished")
    run.add_argument("--no-progress", action="store_true",
                     help="no progress bars, nor the periodic progress lines printed when stderr is not a terminal")
    run.set_defaults(func=cmd_run)  # what a stop keeps: cmd_run says it

    lst = sub.add_parser("list", help="list suites, tasks or models")
    lst.add_argument("what", choices=("suites", "tasks", "models", "official"),
                     help="official: per task of the official suites, whether its pinned dataset is cached offline")
    lst.add_argument("--data-dir", help="data root to list local tasks from")
    lst.add_argument("--suite", help="with `tasks`: that suite's tasks, each with its local data or why it has none "
                     "(any suite of `list suites`); with `official`: one official suite only")
    lst.set_defaults(func=cmd_list)

    cache = sub.add_parser("cache", help="show or clear the embedding cache")
    cache.add_argument("action", choices=("info", "clear"))
    cache.add_argument("--cache-dir", help="cache folder, the one holding embeddings.sqlite (default: "
                       "$HARNESS_CACHE_DIR or ~/.cache/conan-harness/embeddings)")
    cache.add_argument("--model", help="only this model's namespaces, by the name `cache info` shows (e.g. "
                       "sentence-transformers/all-MiniLM-L6-v2): info lists them, clear removes them")
    cache.add_argument("--fingerprint", help="with --model: only the namespaces whose model fingerprint starts so "
                       "(a folder model's stale weights; `cache info --model` shows each fingerprint)")
    cache.set_defaults(func=cmd_cache)

    al = sub.add_parser("alignment", help="cross-lingual alignment of a model on parallel sentences "
                               "(language mixing score + 2-D projection)")  # fmt: skip
    al.add_argument("--model", action="append", required=True, help="model spec (repeat to compare models)")
    al.add_argument("--parallel", nargs="+", action="extend", required=True, metavar="PATH",
                    help="parallel data: train/parallel_en_xx folders, Tatoeba task folders, or their .jsonl files "
                    "(repeatable)")  # fmt: skip
    al.add_argument("--n", type=int, default=200, help="pairs drawn per file (default 200)")
    al.add_argument("--k", type=int, default=10, help="neighbours for the mixing ratio (default 10)")
    al.add_argument("--seed", type=int, default=0)
    al.add_argument("--batch-size", type=int, default=32)
    al.add_argument("--pooling", help="pooling for the hf: models among --model: mean, cls, last (default: mean, as "
                    "`harness run`; a CLS-trained hf: model needs --pooling cls); other models pool their own way")
    al.add_argument("--device", type=_device, help="as `harness run --device` (default: auto, the best available)")
    al.add_argument("--dtype", default="auto", help="as `harness run --dtype`: auto (bfloat16 on accelerators and on "
                    "CPUs with native bf16, else float32), float32, float16, bfloat16")
    al.add_argument("--tsne", action="store_true", help="also draw a t-SNE projection (slower than PCA)")
    al.add_argument("--out", default="alignment", help="folder for alignment.md and the plots")
    al.set_defaults(func=cmd_alignment)

    from leaderboards.published import SNAPSHOT  # a path: imports nothing heavy

    lb = sub.add_parser("leaderboard", help="rank runs (and published baselines) in a markdown table",
                        epilog="exit status: 0 the board is written (a run's failed, pending or damaged tasks are "
                        "marked in it and named in its notes, not an error); 2 unusable input (a folder that is no "
                        "run directory, a damaged run.json without --skip-damaged, nothing to rank, a bad option); "
                        "130 / 143 interrupted (Ctrl-C / SIGTERM). A gate on scores is `harness regress`")  # fmt: skip
    lb.add_argument("runs", nargs="*", metavar="RUN_DIR", help="run directories written by `harness run`")
    lb.add_argument("--published", action="append", nargs="?", const=str(SNAPSHOT), metavar="DIR",
                    help="published results in the embeddings-benchmark/results layout; without DIR, the "
                    "snapshot shipped in leaderboards/published (repeatable)")  # fmt: skip
    lb.add_argument("--suite", help="rank over this suite's task list: cmteb, mteb-en, mteb-en-v1 "
                    "(default: the tasks of the given runs)")  # fmt: skip
    lb.add_argument("--dims", action="store_true", help="add per-dimension tables from experiments/embed_dim_<d>")
    lb.add_argument("--out", default="leaderboard.md", help="markdown file to write (default leaderboard.md)")
    lb.add_argument("--skip-damaged", action="store_true", help="leave out a run whose run.json is damaged, "
                    "naming it in a note (default: stop on it, exit 2)")  # fmt: skip
    lb.set_defaults(func=cmd_leaderboard)

    for module in PLUGIN_COMMANDS:  # other packages add their subcommands; each imports its work lazily
        importlib.import_module(module).register(sub)
    return parser


def load_embedder(spec: str) -> object:
    """A model spec's embedder, importing the model code only when a spec is loaded (the CLI starts fast): what
    `harness` installs as training's spec loader (`train.scorer.install_spec_loader`), and benchmarks too."""
    from harness.models import load_model

    return load_model(spec)


def main(argv: list[str] | None = None) -> int:
    """The `harness` command. Called without ``argv`` it is the process's entry point (the console script,
    `python -m harness`): a signal that interrupted it stays ignored through the interpreter's exit
    (`sigterm_interrupts`), so a repeat cannot turn the 143 into a silent -15."""
    from train.scorer import install_spec_loader

    library_cache_defaults(user_cache_root())
    install_spec_loader(load_embedder)  # hard-negative mining resolves harness model specs through the harness
    from conan_model.signals import how_stopped, sigterm_interrupts

    _Parser.refused = None
    try:
        args = build_parser().parse_args(argv)
    except SystemExit:
        words = sys.argv[1:] if argv is None else argv
        if _Parser.refused is not None and words[:1] == ["regress"]:
            from reporting.cli import regress_refused

            regress_refused(words[1:], _Parser.refused)
        raise
    # every command: SIGTERM unwinds as Ctrl-C does; the handler stays while the lines below are said, so a second
    # Ctrl-C or SIGTERM then is ignored instead of breaking them into a traceback (or a silent -15)
    with sigterm_interrupts(process_exits_after=argv is None):
        try:  # the outer try: a first signal that lands while an error line below is printed is said too
            try:
                return args.func(args)
            except ConanError as exc:  # harness, train and conan_model errors alike: one line, their exit status
                error_line(f"harness: error: {exc}")
                return exc.exit_code
            except BrokenPipeError:  # `harness list tasks | head`: the reader left; no traceback, none at exit
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
                return 141  # 128 + SIGPIPE, what the shell reports for a command stopped the same way
        except KeyboardInterrupt as exc:  # each subcommand says what it keeps (`interrupted`); train says it itself
            # Ctrl-C: 130; SIGTERM (conan_model.signals.Terminated) names itself and carries 143; under torchrun
            # rank 0 alone says it (before stop 61 every rank did)
            if os.environ.get("RANK", "0") == "0":
                print(f"harness: {how_stopped(exc)}{getattr(args, 'interrupted', '')}", file=sys.stderr)
            return getattr(exc, "exit_code", 130)


if __name__ == "__main__":
    sys.exit(main())
