"""`harness run`: plan the tasks, open the model once, evaluate task by task, record everything as it finishes.

The model is opened lazily when the embedding cache knows it (harness/lazy.py): its weights load at the first text
the cache does not hold, so a rerun whose texts are all cached loads none.

Each task is evaluated by harness/evaluation.py; this module plans the run, drives the loop and keeps run.json.
A failing task is recorded with its reason and the run goes on; the exit status says so at the end.
Finished tasks are skipped on a rerun of the same run directory unless overwrite is set. A task evaluated again keeps
its old result (record and files) until the new evaluation has ended and replaces it (RunDir.replace_task); a failed
one replaces only a damaged or missing result.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sys
import time
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mteb

from conan_model.matryoshka import trained_dims
from harness import sysinfo
from harness.cache import DB_NAME, EmbeddingCache, default_cache_dir, open_cache_at
from harness.checks import check_device, check_positive, check_writable_dir, run_directory
from harness.console import WarningLog, heartbeat, library_tqdm_off, quiet_console, silence_library_bars
from harness.data import LocalTask, misplaced_advice, misplaced_task, scan_tasks
from harness.distributed import ShardGroup, bind_rank_device, init_from_env, launcher, rounding_note
from harness.embedder import Embedder, ModelOptions
from harness.encoding import HarnessEncoder
from harness.errors import EXIT_OK, EXIT_TASK_FAILED, DataError, UsageError, unknown
from harness.evaluation import run_task
from harness.identity import describe_change, run_identity, task_identity
from harness.languages import language_note
from harness.lazy import LazyEmbedder, open_model
from harness.runs import (
    RUN_JSON,
    SUMMARY_MD,
    RunDir,
    atomic_write_text,
    coverage_line,
    percent,
    read_record,
    same_vectors,
    shown_path,
)
from harness.suites import get_suite
from harness.summary import render_summary
from harness.tasks import MIRROR, MISSING, ResolvedTask, official_task, resolve

DEFAULT_BATCH_SIZE = 64  # rows per forward pass (`harness run --batch-size`'s default)


class NotInSuite(UsageError):
    """A real task that a narrowed suite lacks: ``what`` is so, ``mend`` says how in the CLI's words (a pipeline
    config words its own, naming its keys: a user's walk, stop 64)."""

    def __init__(self, what: str, mend: str) -> None:
        super().__init__(f"{what}: {mend}")
        self.what = what


@dataclass
class RunConfig:
    model: str
    data_dir: Path
    out: Path = Path("runs")
    suite: str | None = None
    tasks: list[str] | None = None
    run_name: str | None = None
    source: str = "auto"
    batch_size: int = DEFAULT_BATCH_SIZE  # a model that packs its texts (me5-small) takes no other
    max_batch_tokens: int = 8192
    dims: list[int] = field(default_factory=list)  # MRL sizes, parsed where they enter (harness.checks.parse_dims)
    dim_predictions: bool = False  # also keep each dim's per-item outputs (as large as the full width's, per dim)
    cache_dir: Path | None = None
    use_cache: bool = True
    options: ModelOptions = field(default_factory=ModelOptions)
    overwrite: bool = False
    show_progress: bool | None = None
    command: list[str] = field(default_factory=lambda: list(sys.argv))
    dims_option: str = "--dims"  # how errors and notes name the dims: a config's key when a config gave them
    dims_policy: str = "refuse"  # DIMS_POLICIES
    # how a skipped task says it can be redone: `harness pipeline` and `harness ablate` have no --overwrite (before
    # stop 65 their logs advised one; a walk)
    redo_hint: str = " (--overwrite to redo)"
    # a run directory the calling command owns (`harness pipeline`, `harness ablate`), whose results of the same
    # model spec computed under another fingerprint (its files, or how the harness makes its vectors, changed) are
    # replaced, not refused: before stop 66 the pipeline stopped advising --overwrite or --run-name, options it lacks
    replace_stale: bool = False
    # who clears another model's record under `overwrite`, as its stderr line says: the pipeline and ablate set it
    # for a model they retrained (before stop 67 they said "--overwrite", an option neither has; a walk)
    replaced_by: str = "--overwrite"
    # tasks evaluated again though finished under the same identity: `harness ablate`'s whose score in run.json is
    # not the one it recorded (an edited record), which a plain rerun keeps as done
    redo: list[str] = field(default_factory=list)


@dataclass
class Plan:
    label: str
    resolved: list[ResolvedTask]

    def coverage_line(self) -> str:
        """What this run plans (printed first); run.json and summary.md say what the directory holds."""
        return coverage_line(self.label, {r.name: r.source for r in self.resolved})


def plan_tasks(cfg: RunConfig, local_tasks: dict[str, LocalTask], broken: dict[str, str] | None = None) -> Plan:
    """Suite and/or --tasks → resolved tasks. Unknown names fail here, before any model is loaded.

    A task whose folder is broken (`broken`: name → reason) is MISSING with that reason; the others still run."""
    broken = broken or {}
    if cfg.suite is None and not cfg.tasks:
        raise UsageError("nothing to run: give --suite NAME or --tasks A,B (see `harness list suites`)")
    suite = get_suite(cfg.suite, local_tasks) if cfg.suite else None
    names: list[str] = suite.tasks if suite else []
    if suite is not None and not suite.official:  # a local suite's broken folders are its tasks too, MISSING with
        names = sorted({*names, *_broken_in(cfg.data_dir, broken, suite.name)})  # the reason in run.json and the
        # summary (before stop 59 a console note alone said so, and the run read as complete)
    whole = len(names)  # the suite's tasks, its broken folders too, as its own coverage line counts them
    if cfg.tasks:
        if cfg.suite:  # --tasks narrows a suite
            absent = [t for t in cfg.tasks if t not in names]
            # a real task outside the suite: before stop 60, "unknown task in suite cmteb 'STS16'; did you mean: STSB?"
            if absent and _known_task(absent[0], local_tasks, broken):
                raise NotInSuite(f"task {absent[0]!r} is not in suite {cfg.suite} ({len(names)} tasks)",
                                 f"run it without --suite, as `--tasks {absent[0]}`")  # fmt: skip
            if absent:
                raise unknown(f"task in suite {cfg.suite}", absent[0], names)
            names = [t for t in names if t in cfg.tasks]
        else:
            for name in cfg.tasks:
                if _known_task(name, local_tasks, broken):
                    continue
                if "/" in name or "\\" in name or name in (".", ".."):  # before stop 69 (a walk) told to move a
                    # folder outside the root "into" it, its task.json read
                    raise UsageError(f"--tasks {name!r}: a task's name, not a path: a local task is named by its "
                                     "folder under <root>/<language>/ (docs/data-layout.md), so give --data-dir the "
                                     "folder holding the language folders and --tasks the folder's name")
                if folder := misplaced_task(cfg.data_dir, name):  # before stop 67 (a user walk): "unknown task
                    # 'MyEnSTS'; did you mean: SynPerSTS, ..."
                    raise UsageError(f"unknown task {name!r}: its folder {folder} sits directly under the data root, "
                                     "where the layout is <root>/<language>/<Task>/ (docs/data-layout.md): move it "
                                     f"into a language folder, e.g. {misplaced_advice(cfg.data_dir, name)}")
                raise unknown("task", name, list(local_tasks) + _mteb_task_names(), "see `harness list tasks`")
            names = list(dict.fromkeys(cfg.tasks))
    resolved = [resolve(n, local_tasks, cfg.source, suite.official.get(n) if suite else None) for n in names]
    for r in resolved:
        if r.source == MISSING and r.name in broken:
            r.reason, r.broken = f"broken task folder: {broken[r.name]}", True
    # the plan of a --tasks subset of a suite says it is one (before stop 70, a C-MTEB walk, `cmteb: 3/3 tasks` was
    # printed above a summary.md keeping the folder's 13/31)
    label = f"{cfg.suite} --tasks ({len(names)} of its {whole})" if suite and cfg.tasks else cfg.suite
    return Plan(label or "tasks", resolved)


def _known_task(name: str, local_tasks: dict[str, LocalTask], broken: dict[str, str]) -> bool:
    """A task `harness run --tasks` can name: a local folder (broken ones too: they are reported) or an mteb task."""
    return name in local_tasks or name in broken or official_task(name) is not None


def _broken_in(root: Path, broken: dict[str, str], suite: str) -> list[str]:
    """The broken task folders a local suite covers: all of them for `local`, a language folder's for `local-<l>`."""
    lang = suite.removeprefix("local-") if suite != "local" else None
    return [name for name in broken if lang is None or (Path(root) / lang / name).is_dir()]


def _mteb_task_names() -> list[str]:
    return [t.metadata.name for t in mteb.get_tasks()]


def default_run_name(cfg: RunConfig, embedder: Embedder | None) -> str | None:
    """<model>__<suite or tasks>: packaged models by their short name, folders by the model's name, so None for a
    folder before its model (``embedder``) is loaded: a packaged model's is known before, for what a stop during
    the load keeps (`stopped_note`).

    A long task list keeps its head and gains a hash of the whole list, so two lists never share a directory."""
    if ":" in cfg.model and embedder is None:
        return None
    scope = cfg.suite or "-".join(cfg.tasks or [])
    if len(scope) > 60:
        scope = f"{scope[:48]}-{hashlib.sha256(','.join(cfg.tasks or []).encode()).hexdigest()[:10]}"
    model = cfg.model if embedder is None or ":" not in cfg.model else embedder.name.split("/")[-1]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{model}__{scope}")


# What a run does with a requested MRL dim at or above its model's width (RunConfig.dims_policy): `harness run`
# refuses one above and takes one equal as the full width, with a note; a pipeline evaluating models of several
# widths drops either for the narrower model, with a note; an ablation, whose report compares every dim below the
# width, refuses both (before stop 49, audit, a dim equal to the width failed only its report, after every arm).
DIMS_POLICIES = ("refuse", "drop", "strict")


def truncation_dims(dims: list[int], embed_dim: int, option: str = "--dims", policy: str = "refuse") -> list[int]:
    """Requested MRL sizes → sorted sizes below the model's full dimension (embed_dim itself is the full run); what
    is at or above it follows `policy` (DIMS_POLICIES), an error or note naming `option`."""
    above = sorted({value for value in dims if value > embed_dim})
    equal = embed_dim in dims
    if above and policy != "drop":
        raise UsageError(f"{option}: {above[0]} is larger than the model's embedding dimension {embed_dim}")
    if equal and policy == "strict":
        raise UsageError(f"{option}: {embed_dim} is the model's full width, not an MRL dim: give dims below it")
    if (above or equal) and os.environ.get("RANK", "0") == "0":  # said once under torchrun
        shown = ", ".join(map(str, [*([embed_dim] if equal else []), *above]))
        print(f"note: {option} {shown}: at or above the model's width {embed_dim}, so scored as the full width only",
              flush=True)  # fmt: skip
    return sorted({value for value in dims if value < embed_dim})


def untrained_dims_note(dims: list[int], training: dict[str, Any] | None, width: int, option: str) -> str | None:
    """A note naming the scored dims a checkpoint's last training stage put no MRL loss on (its train_config.json,
    `conan_model.matryoshka.trained_dims`), or None (all trained, or not known: a baseline, an imported folder).
    Such a prefix is scored as it is; before stop 69 (a walk) it passed unsaid, so a curve of untrained prefixes
    read as an MRL curve."""
    trained = trained_dims(training, width)
    lacking = [d for d in dims if d not in trained] if training and trained is not None else []
    if not lacking:
        return None
    stage = f"its last training stage ({training.get('stage')}, train_config.json)"
    put = (f"put an MRL loss on {', '.join(map(str, trained))} only" if trained != [width] else
           f"put no MRL loss on a prefix (the full width {width} only)")  # fmt: skip
    return (f"note: {option} {', '.join(map(str, lacking))}: not trained as a Matryoshka prefix — {stage} {put}; "
            + ("scored as the plain prefix it is" if len(lacking) == 1 else "scored as the plain prefixes they are"))


def check_before_loading(cfg: RunConfig) -> None:
    """Every option that can be judged without the model, so mistakes cost no model load."""
    check_positive("--batch-size", cfg.batch_size)
    check_positive("--max-batch-tokens", cfg.max_batch_tokens)
    check_positive("--max-length", cfg.options.max_length)
    check_positive("--pad-to-multiple-of", cfg.options.pad_to_multiple_of)
    check_device(cfg.options.device)  # before torchrun binds a rank's device: a missing one failed there raw
    check_writable_dir("--out", cfg.out)
    if cfg.run_name is not None:
        check_run_directory(run_directory(cfg.out, cfg.run_name))
    if cfg.use_cache:
        folder = cfg.cache_dir or default_cache_dir()
        if not (folder / DB_NAME).is_file():  # a cache there is read from even where it is read-only
            check_writable_dir("--cache-dir", folder)
    elif cfg.cache_dir is not None:  # before stop 49 (audit) both were taken without a word, and no cache used
        raise UsageError(f"--cache-dir {cfg.cache_dir} with --no-cache: give one of them")
    if cfg.dim_predictions and not cfg.dims:
        raise no_dim_to_predict(cfg, "none was given, or `full` alone, which keeps nothing per dim")


def no_dim_to_predict(cfg: RunConfig, why: str) -> UsageError:
    """--dim-predictions with no dim below the full width to keep per-item outputs at: refused, not run for nothing."""
    return UsageError(f"--dim-predictions keeps per-item outputs at each {cfg.dims_option} size below the full "
                      f"width: give such {cfg.dims_option} too ({why})")  # fmt: skip


def check_run_directory(path: Path) -> None:
    """An existing run directory must take new files as --out does: one read-only (a copy from a shared folder,
    another user's) failed with a PermissionError traceback at the first write of run.json."""
    if path.is_dir():
        check_writable_dir("run directory", path)


def open_cache(folder: Path) -> EmbeddingCache:
    """The run's embedding cache (`harness.cache.open_cache_at`), with the advice a run can follow."""
    return open_cache_at(folder, "; give another --cache-dir (or free space there), or run with --no-cache")


def run(cfg: RunConfig) -> int:
    """Run a suite; returns the exit status (0 ok, 1 some task failed or nothing could be evaluated). A Ctrl-C or
    SIGTERM leaves with `kept` on the exception: what `harness run` says is kept (`stopped_note`)."""
    bars = sys.stderr.isatty() if cfg.show_progress is None else cfg.show_progress
    # a packaged model's default name is known before its load (review, stop 64): a stop during an eager load
    # (--no-cache) said nothing was kept though `<model>__<scope>` held the finished tasks of earlier runs
    name = cfg.run_name if cfg.run_name is not None else default_run_name(cfg, None)
    chosen = [run_directory(cfg.out, name)] if name is not None else []  # a folder's default name: once loaded
    unredone: list[str] = []  # under --overwrite, the tasks this run has not evaluated again yet
    try:
        with library_tqdm_off(), quiet_console() as log, ExitStack() as to_close:
            return _run(cfg, log, bars, to_close, chosen, unredone)
    except KeyboardInterrupt as exc:
        exc.kept = stopped_note(chosen[0] if chosen else None, unredone)
        raise


def stopped_note(path: Path | None, unredone: list[str] | None = None) -> str:
    """What a stopped run keeps, as the end of its `harness: interrupted` line: its run directory's finished tasks
    where it holds some. Before stop 63 that was said even of a run stopped while its model loaded, with no run
    directory at all. ``path`` None: a folder's default name was not known yet, so which directory's tasks are kept
    cannot be said (before stop 64 it read "nothing is kept"). ``unredone``: under --overwrite, the tasks the run
    had not evaluated again, whose finished results are the earlier evaluation's (before stop 66 unsaid, and "the
    same command continues with the rest", where it evaluates every task again; a walk)."""
    if path is None:
        return ("; stopped before the run directory was chosen: finished tasks of earlier runs stay in theirs (the "
                "same command carries on)")  # fmt: skip
    try:
        record = read_record(path / RUN_JSON)
    except DataError:  # a damaged run.json: no finished task can be read from it
        return f"; no finished task could be read from {shown_path(path / RUN_JSON)} (damaged)"
    statuses = [task.get("status") for task in (record or {}).get("tasks", {}).values()]
    earlier = [name for name in unredone or [] if (record or {}).get("tasks", {}).get(name, {}).get("status") == "ok"]
    if earlier:
        return (f"; finished tasks are kept in the run directory, {', '.join(earlier)} with the results of the "
                f"evaluation before this --overwrite run (`--overwrite --tasks {','.join(earlier)}` evaluates just "
                "those again; the same command, every task)")  # fmt: skip
    if "ok" in statuses:
        return "; finished tasks are kept in the run directory (the same command continues with the rest)"
    if record is None:
        return "; no task had finished and no run directory was written (the same command starts again)"
    # the folder stays, its run.json listing the tasks unscored (a leaderboard shows it as a row without scores): it
    # is not removed, as it may hold an earlier run's files; before, "so nothing is kept" (a user's walk, stop 64)
    counts = ", ".join(f"{statuses.count(status)} {status}" for status in dict.fromkeys(statuses))
    held = f" of {len(statuses)} task(s) ({counts})" if statuses else ""
    return f"; no task had finished: {shown_path(path)} holds no score, only its record{held} (the same command " \
           "starts again)"  # fmt: skip


def _run(cfg: RunConfig, log: WarningLog, bars: bool, to_close: ExitStack, chosen: list[Path],
         unredone: list[str]) -> int:  # fmt: skip
    """The run; what it opens that must be closed (the embedding cache) goes on `to_close`: before stop 49 (audit)
    the cache was left to the garbage collector, and every warnings.log held its ResourceWarning. The run directory
    goes into `chosen` once its default name is known (a folder's, after the load); under --overwrite, `unredone`
    holds the tasks not evaluated again yet (`stopped_note`)."""
    logging.getLogger("mteb").setLevel(logging.ERROR)  # mteb logs every superseded task as a warning
    check_before_loading(cfg)
    local_tasks, broken_errors = scan_tasks(cfg.data_dir)
    broken = {name: str(exc) for name, exc in broken_errors.items()}
    plan = plan_tasks(cfg, local_tasks, broken)
    silence_library_bars()
    cache = to_close.enter_context(closing(open_cache(cfg.cache_dir or default_cache_dir()))) \
        if cfg.use_cache else None  # fmt: skip
    bind_rank_device(cfg.options.device)  # under torchrun: this rank's GPU before any weights load
    opened = time.perf_counter()
    embedder = open_model(cfg.model, cfg.options, cache)  # weights load at the first text the cache lacks
    # an eager load (no cache, or a model the cache does not know) is charged to the first task evaluated, as a
    # lazy one is: before stop 26 it was recorded nowhere, and the first task's wall depended on the cache
    unbilled_load_s = 0.0 if isinstance(embedder, LazyEmbedder) else time.perf_counter() - opened
    if embedder.packs_texts and cfg.batch_size != DEFAULT_BATCH_SIZE:  # before stop 54 (audit) recorded, unused
        raise UsageError(f"--batch-size {cfg.batch_size}: {cfg.model} runs a batch's texts concatenated, bounded by "
                         "their tokens alone (no row cap); bound its engine calls with --max-batch-tokens")
    # before, taken with a note, keeping nothing per dim; an ablation ("strict") refuses such a dim by its own words
    if cfg.dim_predictions and cfg.dims_policy == "refuse" and set(cfg.dims) == {embedder.embed_dim}:
        raise no_dim_to_predict(cfg, f"{embedder.embed_dim} is the model's full width: it keeps nothing per dim")
    dims = truncation_dims(cfg.dims, embedder.embed_dim, cfg.dims_option, cfg.dims_policy)
    shards = init_from_env(embedder.device)
    main = shards is None or shards.is_main
    say = print if main else (lambda *a, **k: None)
    say(plan.coverage_line(), flush=True)
    # an ablation compares its arms' dims in its own report: the note would repeat for every control unit
    trained = embedder.describe().get("training") if cfg.dims_policy != "strict" else None
    if note := untrained_dims_note(dims, trained, embedder.embed_dim, cfg.dims_option):
        say(note, flush=True)
    if note := language_note(embedder.name, plan.resolved):
        say(note, flush=True)
    if shards is not None and (note := rounding_note(embedder.dtype)):
        say(note, flush=True)
    _report_broken(broken, plan, say)
    run_dir = RunDir(run_directory(cfg.out, cfg.run_name or default_run_name(cfg, embedder)), embedder.name,
                     embedder.revision)  # fmt: skip
    check_run_directory(run_dir.path)  # a folder's default name is known only now
    chosen[:] = [run_dir.path]
    runnable = [r for r in plan.resolved if r.source != MISSING]
    identities = {r.name: task_identity(r, embedder, dims, mteb.__version__) for r in runnable}
    settings = run_identity(embedder, dims, mteb.__version__)
    if shards is not None:
        shards.agree_on_run(_shard_settings(cfg, run_dir, settings, identities))
    evaluates = True  # False: every task is done already, and the record and summary.md stay as they were
    if main:
        for line in run_dir.clear_dead_writes():
            print(f"harness: {line}", file=sys.stderr)
        log.attach(run_dir.path)
        evaluates = _open_record(run_dir, cfg, plan, embedder, dims, shards, identities, settings)
        if evaluates:
            run_dir.write_model_meta(embedder.describe())
            atomic_write_text(run_dir.path / SUMMARY_MD, render_summary(run_dir))
    code = run_dir.read_run().get("environment", {}).get("git_sha") if main and evaluates else None
    encoder = HarnessEncoder(embedder, cfg.batch_size, cfg.max_batch_tokens, cache, shards, bars)
    ticking = main and cfg.show_progress is None and not sys.stderr.isatty()
    cache_stop_noted = main and evaluates and _note_cache_stop(run_dir, cache, None)  # a failed write at the load

    unredone += [resolved.name for resolved in runnable] if cfg.overwrite else []
    failed_again: list[str] = []  # evaluated again and failed, their earlier whole result kept: the run failed too
    for n, resolved in enumerate(runnable, start=1):
        name, identity = resolved.name, identities[resolved.name]
        done = (main and not cfg.overwrite and name not in cfg.redo
                and run_dir.finished_entry(name, identity, dims, cfg.dim_predictions))  # fmt: skip
        if shards is not None:  # rank 0's record decides: another host's copy of the run directory may differ
            done = shards.main_decides(done, f"the decision whether {name} was done earlier")
        if done:
            say(f"[{n}/{len(runnable)}] {name}: done earlier, skipped{cfg.redo_hint}", flush=True)
            continue
        tag = f"[{n}/{len(runnable)}] {name}"
        recorded = run_dir.read_run().get("tasks", {}).get(name, {}) if main else {}  # for its lines alone
        if name in cfg.redo and not cfg.overwrite:
            say(f"{tag}: evaluating again (its score in run.json is not the one its ablation recorded)", flush=True)
        elif recorded.get("failed_again") and not cfg.overwrite and recorded.get("identity") == identity:
            say(f"{tag}: its last evaluation failed ({recorded['failed_again'].get('error')}): evaluating again; the "
                "earlier result stays until one succeeds", flush=True)  # fmt: skip
        elif recorded.get("status") == "ok" and not cfg.overwrite:
            if recorded.get("identity") == identity:
                lacking = run_dir.unfinished_files(name, recorded, dims, cfg.dim_predictions)
                if (differ := run_dir.score_mismatch(name, recorded)) and lacking == [run_dir.result_path(name)]:
                    say(f"{tag}: its result file holds another score than run.json ({differ}): evaluating again",
                        flush=True)  # fmt: skip
                else:
                    say(f"{tag}: the earlier result lacks "
                        f"{', '.join(str(p.relative_to(run_dir.path)) for p in lacking)} (missing or damaged): "
                        "evaluating again", flush=True)  # fmt: skip
            else:
                change = describe_change(recorded.get("identity"), identity)
                say(f"{tag}: settings differ from the earlier result ({change}): evaluating again"
                    + _dropped_dims(run_dir, name, recorded, identity, cfg.dims_option), flush=True)  # fmt: skip
        elif recorded.get("status") == "ok" and (dropped := _dropped_dims(run_dir, name, recorded, identity,
                                                                          cfg.dims_option)):  # fmt: skip
            say(f"{tag}: evaluating again (--overwrite){dropped}", flush=True)  # before review 62: without a word
        staged = run_dir.staging(name) if main else None
        if shards is not None:
            shards.begin_task(name)
        try:
            with heartbeat(ticking, lambda tag=tag: f"{tag}: {encoder.progress()}"):
                entry, eff = run_task(resolved, encoder, staged, cfg, dims, unbilled_load_s,
                                      identity["data"] if resolved.source == MIRROR else None)  # fmt: skip
        except BaseException:  # Ctrl-C, SIGTERM: the half-written files of the task go; its old result stays
            if staged is not None:
                run_dir.discard(staged)
            raise
        unbilled_load_s = 0.0
        if shards is not None:
            entry, eff = _agree(shards, entry, eff)
        kept = None  # what of the earlier evaluation stays or went (RunDir.replace_task, KEPT_SAID)
        if main:
            entry = {**_provenance(resolved, cfg), **entry, "identity": identity if entry["status"] == "ok" else None,
                     "evaluated": {"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "code": code}}  # fmt: skip
            pending = {**_provenance(resolved, cfg), "status": "pending"}
            kept = run_dir.replace_task(name, pending, entry, staged, eff)
            if name in unredone:
                unredone.remove(name)
            if kept == "result":
                failed_again.append(name)
            cache_stop_noted = cache_stop_noted or _note_cache_stop(run_dir, cache, name)
            atomic_write_text(run_dir.path / SUMMARY_MD, render_summary(run_dir))
        say(f"[{n}/{len(runnable)}] {_progress_line(name, entry, eff)}{KEPT_SAID.get(kept, '')}", flush=True)

    if shards is None:
        return _close_run(cfg, run_dir, plan, runnable, evaluates, log, failed_again)
    from conan_model.device import leave_process_group  # torch: only once torchrun started several ranks

    try:  # rank 0 carries the run's exit status; the others wait for it and exit 0 (ShardGroup.meet)
        status = _close_run(cfg, run_dir, plan, runnable, evaluates, log, failed_again) if main else EXIT_OK
    finally:
        shards.meet()
    leave_process_group()
    return status


def _close_run(cfg: RunConfig, run_dir: RunDir, plan: Plan, runnable: list[ResolvedTask], evaluates: bool,
               log: WarningLog, failed_again: list[str]) -> int:  # fmt: skip
    """Rank 0's (or the single process's) end of the run: the finish time, the summary, the exit status.
    ``failed_again``: the tasks whose evaluation failed over a whole earlier result, which stays."""
    record = run_dir.read_run()  # read once: the failed tasks, the missing ones below, the finish time
    tasks = record["tasks"]
    failed = [r.name for r in runnable if tasks.get(r.name, {}).get("status") == "failed" or r.name in failed_again]
    if evaluates:
        run_dir.update_run(lambda rec: rec.update(finished=time.strftime("%Y-%m-%dT%H:%M:%S%z")))
        summary = render_summary(run_dir)
        atomic_write_text(run_dir.path / SUMMARY_MD, summary)
    else:
        summary = render_summary(run_dir)
        # killed after its last task's record, or during a task that kept its earlier whole result: every task is
        # done, so the record is completed now (before stop 49, audit, it said null for good; before stop 69, a
        # nightly walk, only where summary.md was behind too); run.json is as read above: this run changed nothing
        if record.get("finished") is None and all(t.get("status") != "pending" for t in tasks.values()):
            run_dir.update_run(lambda rec: rec.update(finished=time.strftime("%Y-%m-%dT%H:%M:%S%z")))
        if _summary_behind(run_dir):
            atomic_write_text(run_dir.path / SUMMARY_MD, summary)
    print(summary)
    if not evaluates:
        # the header's wording before stop 70 ("keep the header of the runs…") read as jargon to a newcomer (a walk)
        print("nothing to evaluate (every task this run could evaluate was done earlier): run.json and summary.md "
              "stay as the runs that computed these scores wrote them (their settings, times and command)")  # fmt: skip
    if log.count:
        print(f"{log.count} library warning(s) written to {log.path}")
    print(f"run directory: {run_dir.path}")
    if not runnable:
        reasons = "; ".join(f"{r.name}: {r.reason}" for r in plan.resolved)
        print(f"harness: nothing was evaluated: {reasons}", file=sys.stderr)
        return EXIT_TASK_FAILED
    if failed:
        kept = f"; the earlier result of {', '.join(failed_again)} is kept" if failed_again else ""
        print(f"{len(failed)} task(s) failed: {', '.join(failed)} (reasons in {run_dir.path / 'run.json'}){kept}",
              file=sys.stderr)  # fmt: skip
    absent, asked = [r for r in plan.resolved if r.source == MISSING], set(cfg.tasks or [])
    # asked for by name: not evaluating it is a failure; where an earlier result of this directory is kept, that is
    # said too (before stop 49, audit, a broken or removed folder then went unsaid with exit 0)
    # so is a suite's task whose folder in the data root is broken: the user's own data, not the suite's coverage
    # (before stop 67 exit 0, "no data here ... not a failure", and a task.json typo moved the mean unsaid; a walk)
    failing = [r for r in absent if r.name in asked or r.broken]
    kept = [r for r in failing if tasks.get(r.name, {}).get("status") == "ok"]
    named = [r for r in failing if r not in kept]
    for r in named:
        print(f"harness: {r.name} was not evaluated: {r.reason}", file=sys.stderr)
    for r in kept:
        print(f"harness: {r.name} was not evaluated now: {r.reason}; the earlier result in {run_dir.path} is kept",
              file=sys.stderr)  # fmt: skip
    # a suite's tasks without data here (a task done earlier into this directory keeps its result: not missing)
    coverage = [r for r in absent if r not in failing and tasks.get(r.name, {}).get("status") == "missing"]
    if coverage:  # its coverage, said once, as a note: before stop 60 it read like a failure of a run of exit 0
        print(f"harness: note: {len(coverage)} task(s) of suite {cfg.suite} have no data here, the suite's coverage, "
              f"not a failure (reasons in {run_dir.path / SUMMARY_MD}): {', '.join(r.name for r in coverage)}",
              file=sys.stderr)  # fmt: skip
    return EXIT_TASK_FAILED if failed or named or kept else EXIT_OK


def _dropped_dims(run_dir: RunDir, name: str, recorded: dict[str, Any], identity: dict[str, Any],
                  option: str) -> str:  # fmt: skip
    """What a task evaluated again loses besides its old full-width result: its results at the dims this run does
    not ask for. Said, since a rerun naming one more dim (`--dims 32` after `--dims 64,128`) removed the others
    without a word; where only the dims changed, with the dims that keep them."""
    dims = identity.get("dims") or []
    dropped = [d for d in run_dir.result_dims(name, recorded) if d not in dims]
    if not dropped:
        return ""
    said = f"; its results at dims {', '.join(map(str, dropped))} go with the old result once this evaluation succeeds"
    if not same_vectors(recorded.get("identity"), identity):  # other vectors: those results are of other settings
        return said
    return f"{said} (to keep them, give every dim: {option} {','.join(map(str, sorted({*dims, *dropped})))})"


def _summary_behind(run_dir: RunDir) -> bool:
    """Whether summary.md missed run.json's last change: a run stopped between a task's record and the summary
    (Ctrl-C, kill -9) left one listing that task `pending`, and a rerun with nothing to evaluate kept it so. The
    summary is always written after run.json, so one older than it (or none) is behind."""
    record, summary = run_dir.path / RUN_JSON, run_dir.path / SUMMARY_MD
    return record.is_file() and (not summary.is_file() or summary.stat().st_mtime_ns < record.stat().st_mtime_ns)


def _note_cache_stop(run_dir: RunDir, cache: EmbeddingCache | None, task: str | None) -> bool:
    """Record in run.json that the embedding cache turned itself off (its one warning) and in which task (None:
    before the first), so a reader of the run later knows the tasks from there on were encoded without it; before,
    only the console said so. True once recorded."""
    if cache is None or cache.failure is None:
        return False
    run_dir.update_run(lambda rec: rec.update(cache_stopped={"reason": cache.failure, "task": task}))
    return True


def _report_broken(broken: dict[str, str], plan: Plan, say: Any) -> None:
    """Broken task folders the run did not ask for are named once; asked-for ones are MISSING with the reason."""
    asked = {r.name for r in plan.resolved}
    others = sorted(set(broken) - asked)
    if others:
        say(f"note: {len(others)} broken task folder(s) in the data root were skipped: {', '.join(others)} "
            "(see `harness list tasks`)", flush=True)  # fmt: skip


# What a finished task's entry in run.json says about its outcome; kept when a rerun skips the task.
# Per-dim scores are not among them: they live in the experiments/embed_dim_<d>/ result files (RunDir.dim_scores).
# what a task's line adds for RunDir.replace_task's outcome: what of the earlier evaluation stays, or went
KEPT_SAID = {"timings": "; the earlier evaluation's timings are kept (this one encoded nothing)",
             "result": "; the earlier result stays (run.json records this failure on it as failed_again)",
             "dropped": "; the earlier result, damaged (its result file missing, unreadable or of another score), is "
                        "gone"}  # fmt: skip
TASK_OUTCOME = ("status", "main_score", "main_metric", "split", "subsets", "error", "traceback", "identity",
                "evaluated")


def _provenance(resolved: ResolvedTask, cfg: RunConfig) -> dict[str, Any]:
    """Where the task's data came from; a mirror's data root too, so summary.md can tell a task kept from another
    data root (the identity holds only a hash of the rows)."""
    record = resolved.record()
    return {**record, "data_root": str(cfg.data_dir.resolve())} if resolved.source == MIRROR else record


def _open_record(run_dir: RunDir, cfg: RunConfig, plan: Plan, embedder: Embedder, dims: list[int],
                 shards: ShardGroup | None, identities: dict[str, dict[str, Any]],
                 settings: dict[str, Any]) -> bool:  # fmt: skip
    """Merge this run into run.json (`_start_record`), under the lock; False, leaving run.json untouched, when the
    directory has a record and this run will evaluate nothing (every task it can run is done under the same
    identity, or it can run none).

    The header (settings, data root, command) describes the run that computed the scores (its coverage, every task
    the directory records: `record_coverage`); a run that computes none must not relabel them: a header switched to
    its settings would list the tasks it skipped as kept from other settings, and one that could run nothing (say
    `--source official` offline) would flag every task."""
    with run_dir.locked():
        record = run_dir.read_run()
        runnable = [r.name for r in plan.resolved if r.source != MISSING]
        held = record.get("model", {})
        previous = held.get("fingerprint")
        # the same files under another name (a folder renamed): its results live under the old name's folder of
        # results/, which mteb's readers return beside the new one's; before stop 66 (a walk) every task was "missing
        # or damaged", evaluated again, and the old name's results stayed
        renamed = previous == embedder.fingerprint and held.get("name") not in (None, embedder.name)
        if previous and (previous != embedder.fingerprint or renamed):
            same = _same_model_results(run_dir, held, embedder, renamed)
            if same is None and not cfg.overwrite:
                raise UsageError(f"run directory {run_dir.path} holds results of model {held.get('name')} "
                                 f"({held.get('spec')}); choose another --run-name, or --overwrite to replace "
                                 "them")  # fmt: skip
            if same is not None and not cfg.overwrite and not cfg.replace_stale:
                said, redo = same
                raise UsageError(f"{said}; {redo}, or choose another --run-name")
            print(f"harness: {same[0]}: every task is evaluated again" if same is not None and not cfg.overwrite
                  else _replaced_model_line(run_dir, record, runnable, cfg.replaced_by), file=sys.stderr)  # fmt: skip
            record.clear()  # another model's record, and its timings with it: `harness report` credited the old
            run_dir.drop_efficiency()  # model's tasks to the new one (before stop 46)
            run_dir.drop_results()
        finished = (n not in cfg.redo and run_dir.finished_entry(n, identities[n], dims, cfg.dim_predictions)
                    for n in runnable)  # lazy  # fmt: skip
        if record and not cfg.overwrite and all(finished):
            return False
        _start_record(record, cfg, plan, embedder, dims, shards, identities, settings)
        run_dir.write_run(record)
    return True


def _same_model_results(run_dir: RunDir, held: dict[str, Any], embedder: Embedder,
                        renamed: bool) -> tuple[str, str] | None:  # fmt: skip
    """What ``run_dir`` holds of this model under another fingerprint (its files, or how the harness makes its
    vectors, changed) or another name (``renamed``: the same files), and the option that evaluates it again; None
    for another model's results (``held``: run.json's `model`)."""
    if renamed:
        return (f"run directory {run_dir.path} holds results of model {held.get('name')} ({held.get('spec')}), the "
                f"same files as {embedder.spec} under another name", "--overwrite to evaluate them again under its "
                "name")  # fmt: skip
    if held.get("spec") != embedder.spec:
        return None
    why = "its files, or how the harness makes its vectors, changed"
    if held.get("trust_remote_code", embedder.trust_remote_code) != embedder.trust_remote_code:
        why = f"--trust-remote-code given {'now, not then' if embedder.trust_remote_code else 'then'}"
    return (f"run directory {run_dir.path} holds results of {embedder.spec} computed when its fingerprint was "
            f"{held.get('fingerprint')!r}, now {embedder.fingerprint!r} ({why})", "--overwrite to redo them")


def _replaced_model_line(run_dir: RunDir, record: dict[str, Any], redone: list[str], by: str) -> str:
    """The line an --overwrite says before it clears another model's (or another fingerprint's) record: whose
    results go, and the finished tasks among them this run does not redo. Before stop 63 they went without a word:
    `--tasks PAWSX --model minilm --overwrite` into a folder of four me5-small tasks left minilm's PAWSX alone."""
    model = record.get("model", {})
    head = (f"harness: {by} removes the results of model {model.get('name')} ({model.get('spec')}) in "
            f"{run_dir.path}")  # fmt: skip
    lost = [name for name, task in record.get("tasks", {}).items() if task.get("status") == "ok" and name not in redone]
    if not lost:
        return f"{head}; this run evaluates again every task they finished"
    return f"{head}, with {len(lost)} finished task(s) this run does not evaluate again: {', '.join(lost)}"


def _start_record(record: dict[str, Any], cfg: RunConfig, plan: Plan, embedder: Embedder, dims: list[int],
                  shards: ShardGroup | None, identities: dict[str, dict[str, Any]],
                  settings: dict[str, Any]) -> None:  # fmt: skip
    """Merge this run into the run.json record read from disk: its tasks join (never replace) the tasks recorded
    before.

    A task finished earlier keeps its entry, under its own identity, until a new result replaces it (the loop in
    _run), even under --overwrite: a run killed before redoing it has lost nothing. summary.md labels such a task
    with its own settings where they differ from the run's (`settings`, recorded as `identity`)."""
    tasks = record.setdefault("tasks", {})
    for r in plan.resolved:
        old = tasks.get(r.name, {})
        entry = {**_provenance(r, cfg), "status": "missing" if r.source == MISSING else "pending"}
        if r.source == MISSING:  # asked for by name (a failure) or a suite's coverage: regress gates on the first
            entry["named"] = r.name in (cfg.tasks or [])  # on every entry: run.json's header is the last run's
            entry["broken"] = r.broken  # its folder is broken: a failure too (regress gates on it)
        if old.get("status") == "ok":
            if old.get("identity") != identities.get(r.name):
                continue  # its own provenance and identity stay with it
            entry.update({k: v for k, v in old.items() if k in (*TASK_OUTCOME, "failed_again")})
        tasks[r.name] = entry
    record.update({
        "command": cfg.command,
        "launcher": launcher(),  # the command is a rank's own argv under torchrun
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "finished": None,
        "suite": cfg.suite,
        "data_root": str(cfg.data_dir.resolve()),
        "source_policy": cfg.source,
        "batch_size": None if embedder.packs_texts else cfg.batch_size,  # None: by tokens alone (`shown_batch`)
        "max_batch_tokens": cfg.max_batch_tokens,
        "dims": dims,
        "cache": str(cfg.cache_dir or default_cache_dir()) if cfg.use_cache else None,
        "cache_stopped": None,  # {"reason", "task"} once the cache turns itself off mid-run (_note_cache_stop)
        "world_size": shards.world if shards else 1,
        "model": embedder.describe(),
        "identity": settings,
        "environment": sysinfo.environment(),
        "tasks": tasks,
    })  # fmt: skip


def _shard_settings(cfg: RunConfig, run_dir: RunDir, settings: dict[str, Any],
                    identities: dict[str, dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    """What every torchrun rank must share (ShardGroup.agree_on_run), one key per thing a message can name: the
    run's settings, the tasks in order, each task's data (a hash of its rows: a data root at another path with
    the same files agrees) and the options that decide what each rank encodes, skips or writes."""
    return {
        **settings,
        "tasks": list(identities),
        **{f"task {name} data": f"{i['source']} {i['data']}" for name, i in identities.items()},
        "run directory": run_dir.path.name,
        "--overwrite": cfg.overwrite,
        "--dim-predictions": cfg.dim_predictions,
        "--batch-size": cfg.batch_size,
        "--max-batch-tokens": cfg.max_batch_tokens,
        "cache": cfg.use_cache,
    }


def _agree(shards: ShardGroup, entry: dict[str, Any], eff: dict[str, Any] | None
           ) -> tuple[dict[str, Any], dict[str, Any] | None]:  # fmt: skip
    """A task that failed on any rank fails on every rank, with the failing ranks' errors ("rank 1: ..."): rank 0
    alone records, and its own evaluation may have gone through (or seen only that a peer stopped)."""
    own = {"error": entry["error"], "traceback": entry["traceback"]} if entry["status"] == "failed" else None
    failures = shards.finish_task(own)
    if not failures:
        return entry, eff
    error = "; ".join(f"rank {rank}: {failure['error']}" for rank, failure in sorted(failures.items()))
    return {"status": "failed", "error": error, "traceback": failures[min(failures)]["traceback"]}, None


def _progress_line(name: str, entry: dict[str, Any], eff: dict[str, Any] | None) -> str:
    if entry["status"] != "ok":
        return f"{name}: FAILED — {entry['error']}"
    return f"{name}: {entry['main_metric']} = {percent(entry['main_score'])} ({eff['wall_s']:.1f} s, {work(eff)})"


def work(eff: dict[str, Any]) -> str:
    """'1379 encoded at 90.3 texts/s, 2758 tokens/s; 1379 cache hits': model work apart from hits."""
    hits = f"{eff.get('cache_hits', 0)} cache hits"
    if not eff.get("encoded_texts") or not eff.get("texts_per_s"):
        return f"nothing encoded; {hits}"
    per_s = eff["texts_per_s"]
    shown = f"{per_s:,.1f}" if per_s >= 1 else f"{per_s:.2g}"  # one huge text: 0.03 texts/s (`encoding.rate`)
    cut = f" ({eff['at_max_length']} cut at the max length)" if eff.get("at_max_length") else ""
    return f"{eff['encoded_texts']} encoded{cut} at {shown} texts/s, {eff['tokens_per_s']:,.0f} tokens/s; {hits}"
