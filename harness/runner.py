"""`harness run`: plan the tasks, open the model once, evaluate task by task, record everything as it finishes.

The model is opened lazily when the embedding cache knows it (harness/lazy.py): its weights load at the first text
the cache does not hold, so a rerun whose texts are all cached loads none.

A failing task is recorded with its reason and the run goes on; the exit status says so at the end.
Finished tasks are skipped on a rerun of the same run directory unless overwrite is set. A task evaluated again keeps
its old result (record and files) until the new evaluation has ended and replaces it (RunDir.replace_task).
"""

from __future__ import annotations

import copy
import hashlib
import importlib
import inspect
import logging
import math
import os
import re
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mteb

from harness import sysinfo
from harness.cache import EmbeddingCache, default_cache_dir
from harness.checks import check_positive, check_writable_dir, run_directory
from harness.console import WarningLog, heartbeat, quiet_console, silence_library_bars
from harness.data import LocalTask, scan_tasks
from harness.distributed import ShardGroup, init_from_env
from harness.embedder import Embedder, ModelOptions
from harness.encoding import DimView, HarnessEncoder, time_split
from harness.errors import EXIT_OK, EXIT_TASK_FAILED, UsageError, unknown
from harness.gold import gold_labels
from harness.identity import describe_change, run_identity, task_identity
from harness.lazy import LazyEmbedder, open_model
from harness.runs import SUMMARY_MD, RunDir, atomic_write_text
from harness.suites import get_suite
from harness.summary import render_summary
from harness.tasks import MIRROR, MISSING, ResolvedTask, official_task, resolve


@dataclass
class RunConfig:
    model: str
    data_dir: Path
    out: Path = Path("runs")
    suite: str | None = None
    tasks: list[str] | None = None
    run_name: str | None = None
    source: str = "auto"
    batch_size: int = 64
    max_batch_tokens: int = 8192
    dims: list[int] = field(default_factory=list)  # MRL sizes, parsed where they enter (harness.checks.parse_dims)
    cache_dir: Path | None = None
    use_cache: bool = True
    options: ModelOptions = field(default_factory=ModelOptions)
    overwrite: bool = False
    show_progress: bool | None = None
    command: list[str] = field(default_factory=lambda: list(sys.argv))


@dataclass
class Plan:
    label: str
    resolved: list[ResolvedTask]

    def coverage_line(self) -> str:
        counts = Counter(r.source for r in self.resolved)
        runnable = len(self.resolved) - counts["missing"]
        line = (f"{self.label}: {runnable}/{len(self.resolved)} tasks — {counts['official']} official, "
                f"{counts['mirror']} mirror, {counts['missing']} missing")  # fmt: skip
        missing = [r.name for r in self.resolved if r.source == MISSING]
        return line + (f": {', '.join(missing)}" if missing else "")


def plan_tasks(cfg: RunConfig, local_tasks: dict[str, LocalTask], broken: dict[str, str] | None = None) -> Plan:
    """Suite and/or --tasks → resolved tasks. Unknown names fail here, before any model is loaded.

    A task whose folder is broken (`broken`: name → reason) is MISSING with that reason; the others still run."""
    broken = broken or {}
    if cfg.suite is None and not cfg.tasks:
        raise UsageError("nothing to run: give --suite NAME or --tasks A,B (see `harness list suites`)")
    suite = get_suite(cfg.suite, local_tasks) if cfg.suite else None
    names: list[str] = suite.tasks if suite else []
    if cfg.tasks:
        if cfg.suite:  # --tasks narrows a suite
            absent = [t for t in cfg.tasks if t not in names]
            if absent:
                raise unknown(f"task in suite {cfg.suite}", absent[0], names)
            names = [t for t in names if t in cfg.tasks]
        else:
            for name in cfg.tasks:
                if name not in local_tasks and name not in broken and official_task(name) is None:
                    raise unknown("task", name, list(local_tasks) + _mteb_task_names(), "see `harness list tasks`")
            names = list(dict.fromkeys(cfg.tasks))
    resolved = [resolve(n, local_tasks, cfg.source, suite.official.get(n) if suite else None) for n in names]
    for r in resolved:
        if r.source == MISSING and r.name in broken:
            r.reason = f"broken task folder: {broken[r.name]}"
    return Plan(cfg.suite or "tasks", resolved)


def _mteb_task_names() -> list[str]:
    return [t.metadata.name for t in mteb.get_tasks()]


def default_run_name(cfg: RunConfig, embedder: Embedder) -> str:
    """<model>__<suite or tasks>: packaged models by their short name, folders by the model's name.

    A long task list keeps its head and gains a hash of the whole list, so two lists never share a directory."""
    scope = cfg.suite or "-".join(cfg.tasks or [])
    if len(scope) > 60:
        scope = f"{scope[:48]}-{hashlib.sha256(','.join(cfg.tasks or []).encode()).hexdigest()[:10]}"
    model = cfg.model if ":" not in cfg.model else embedder.name.split("/")[-1]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{model}__{scope}")


def truncation_dims(dims: list[int], embed_dim: int) -> list[int]:
    """Requested MRL sizes → sorted sizes below the model's full dimension (embed_dim itself is the full run)."""
    sizes = set()
    for value in dims:
        if value > embed_dim:
            raise UsageError(f"--dims: {value} is larger than the model's embedding dimension {embed_dim}")
        if value < embed_dim:
            sizes.add(value)
    return sorted(sizes)


def check_before_loading(cfg: RunConfig) -> None:
    """Every option that can be judged without the model, so mistakes cost no model load."""
    check_positive("--batch-size", cfg.batch_size)
    check_positive("--max-batch-tokens", cfg.max_batch_tokens)
    check_positive("--max-length", cfg.options.max_length)
    if cfg.run_name is not None:
        run_directory(cfg.out, cfg.run_name)
    check_writable_dir("--out", cfg.out)
    if cfg.use_cache:
        check_writable_dir("--cache-dir", cfg.cache_dir or default_cache_dir())


def run(cfg: RunConfig) -> int:
    """Run a suite; returns the exit status (0 ok, 1 some task failed or nothing could be evaluated)."""
    bars = sys.stderr.isatty() if cfg.show_progress is None else cfg.show_progress
    saved_tqdm = os.environ.get("TQDM_DISABLE")
    if not bars:  # mteb's and sklearn's own bars too; the harness's lines stay
        os.environ["TQDM_DISABLE"] = "1"
    try:
        with quiet_console() as log:
            return _run(cfg, log, bars)
    finally:
        if saved_tqdm is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = saved_tqdm


def _run(cfg: RunConfig, log: WarningLog, bars: bool) -> int:
    logging.getLogger("mteb").setLevel(logging.ERROR)  # mteb logs every superseded task as a warning
    check_before_loading(cfg)
    local_tasks, broken_errors = scan_tasks(cfg.data_dir)
    broken = {name: str(exc) for name, exc in broken_errors.items()}
    plan = plan_tasks(cfg, local_tasks, broken)
    silence_library_bars()
    cache = EmbeddingCache(cfg.cache_dir or default_cache_dir()) if cfg.use_cache else None
    opened = time.perf_counter()
    embedder = open_model(cfg.model, cfg.options, cache)  # weights load at the first text the cache lacks
    # an eager load (no cache, or a model the cache does not know) is charged to the first task evaluated, as a
    # lazy one is: before stop 26 it was recorded nowhere, and the first task's wall depended on the cache
    unbilled_load_s = 0.0 if isinstance(embedder, LazyEmbedder) else time.perf_counter() - opened
    dims = truncation_dims(cfg.dims, embedder.embed_dim)
    shards = init_from_env(embedder.device)
    main = shards is None or shards.is_main
    say = print if main else (lambda *a, **k: None)
    say(plan.coverage_line(), flush=True)
    _report_broken(broken, plan, say)
    run_dir = RunDir(run_directory(cfg.out, cfg.run_name or default_run_name(cfg, embedder)), embedder.name,
                     embedder.revision)  # fmt: skip
    runnable = [r for r in plan.resolved if r.source != MISSING]
    identities = {r.name: task_identity(r, embedder, dims, mteb.__version__) for r in runnable}
    evaluates = True  # False: every task is done already, and the record and summary.md stay as they were
    if main:
        log.attach(run_dir.path)
        settings = run_identity(embedder, dims, mteb.__version__)
        evaluates = _open_record(run_dir, cfg, plan, embedder, dims, shards, identities, settings)
        if evaluates:
            run_dir.write_model_meta(embedder.describe())
            atomic_write_text(run_dir.path / SUMMARY_MD, render_summary(run_dir, plan.coverage_line()))
    encoder = HarnessEncoder(embedder, cfg.batch_size, cfg.max_batch_tokens, cache, shards, bars)
    ticking = main and cfg.show_progress is None and not sys.stderr.isatty()

    for n, resolved in enumerate(runnable, start=1):
        name, identity = resolved.name, identities[resolved.name]
        if not cfg.overwrite and run_dir.finished_entry(name, identity, dims):
            say(f"[{n}/{len(runnable)}] {name}: done earlier, skipped (--overwrite to redo)", flush=True)
            continue
        recorded = run_dir.read_run().get("tasks", {}).get(name, {})
        if recorded.get("status") == "ok" and not cfg.overwrite:
            change = describe_change(recorded.get("identity"), identity)
            say(f"[{n}/{len(runnable)}] {name}: settings differ from the earlier result ({change}): evaluating again",
                flush=True)  # fmt: skip
        tag = f"[{n}/{len(runnable)}] {name}"
        staged = run_dir.staging(name) if main else None
        if shards is not None:
            shards.begin_task(name)
        with heartbeat(ticking, lambda tag=tag: f"{tag}: {encoder.progress()}"):
            entry, eff = _run_task(resolved, encoder, staged, cfg, dims, unbilled_load_s)
        unbilled_load_s = 0.0
        if shards is not None:
            entry, eff = _agree(shards, entry, eff)
        if main:
            entry = {**_provenance(resolved, cfg), **entry, "identity": identity if entry["status"] == "ok" else None}
            pending = {**_provenance(resolved, cfg), "status": "pending"}
            run_dir.replace_task(name, pending, entry, staged, eff)
            atomic_write_text(run_dir.path / SUMMARY_MD, render_summary(run_dir, plan.coverage_line()))
        say(f"[{n}/{len(runnable)}] {_progress_line(name, entry, eff)}", flush=True)

    if shards is not None:
        from conan_model.device import leave_process_group  # torch: only once torchrun started several ranks

        leave_process_group()
    failed = [r.name for r in runnable if run_dir.read_run()["tasks"].get(r.name, {}).get("status") == "failed"]
    if not main:
        return EXIT_TASK_FAILED if failed else EXIT_OK
    if evaluates:
        run_dir.update_run(lambda rec: rec.update(finished=time.strftime("%Y-%m-%dT%H:%M:%S%z")))
        summary = render_summary(run_dir, plan.coverage_line())
        atomic_write_text(run_dir.path / SUMMARY_MD, summary)
    else:
        summary = render_summary(run_dir, run_dir.read_run().get("coverage") or plan.coverage_line())
    print(summary)
    if not evaluates:
        print("nothing to evaluate: run.json and summary.md keep the header of the runs that computed their scores")
    if log.count:
        print(f"{log.count} library warning(s) written to {log.path}")
    print(f"run directory: {run_dir.path}")
    if not runnable:
        reasons = "; ".join(f"{r.name}: {r.reason}" for r in plan.resolved)
        print(f"harness: nothing was evaluated: {reasons}", file=sys.stderr)
        return EXIT_TASK_FAILED
    if failed:
        print(f"{len(failed)} task(s) failed: {', '.join(failed)} (reasons in {run_dir.path / 'run.json'})",
              file=sys.stderr)  # fmt: skip
    return EXIT_TASK_FAILED if failed else EXIT_OK


def _report_broken(broken: dict[str, str], plan: Plan, say: Any) -> None:
    """Broken task folders the run did not ask for are named once; asked-for ones are MISSING with the reason."""
    asked = {r.name for r in plan.resolved}
    others = sorted(set(broken) - asked)
    if others:
        say(f"note: {len(others)} broken task folder(s) in the data root were skipped: {', '.join(others)} "
            "(see `harness list tasks`)", flush=True)  # fmt: skip


# What a finished task's entry in run.json says about its outcome; kept when a rerun skips the task.
# Per-dim scores are not among them: they live in the experiments/embed_dim_<d>/ result files (RunDir.dim_scores).
TASK_OUTCOME = ("status", "main_score", "main_metric", "split", "subsets", "error", "traceback", "identity")


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

    The header (settings, data root, coverage, command) describes the run that computed the scores; a run that
    computes none must not relabel them: a header switched to its settings would list the tasks it skipped as kept
    from other settings, and one that could run nothing (say `--source official` offline) would flag every task."""
    with run_dir.locked():
        record = run_dir.read_run()
        previous = record.get("model", {}).get("fingerprint")
        if previous and previous != embedder.fingerprint:
            if not cfg.overwrite:
                raise UsageError(f"run directory {cfg.out / (cfg.run_name or '')} holds results of model "
                                 f"{record['model'].get('name')} ({record['model'].get('spec')}); choose another "
                                 "--run-name, or --overwrite to replace them")  # fmt: skip
            record.clear()
        runnable = [r.name for r in plan.resolved if r.source != MISSING]
        if record and not cfg.overwrite and all(run_dir.finished_entry(n, identities[n], dims) for n in runnable):
            return False
        _start_record(record, cfg, plan, embedder, dims, shards, identities, settings)
        run_dir.write_run(record)
    return True


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
        if old.get("status") == "ok":
            if old.get("identity") != identities.get(r.name):
                continue  # its own provenance and identity stay with it
            entry.update({k: v for k, v in old.items() if k in TASK_OUTCOME})
        tasks[r.name] = entry
    record.update({
        "command": cfg.command,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "finished": None,
        "suite": cfg.suite,
        "coverage": plan.coverage_line(),
        "data_root": str(cfg.data_dir.resolve()),
        "source_policy": cfg.source,
        "batch_size": cfg.batch_size,
        "max_batch_tokens": cfg.max_batch_tokens,
        "dims": dims,
        "cache": str(cfg.cache_dir or default_cache_dir()) if cfg.use_cache else None,
        "world_size": shards.world if shards else 1,
        "model": embedder.describe(),
        "identity": settings,
        "environment": sysinfo.environment(),
        "tasks": tasks,
    })  # fmt: skip


# what the runner passes to mteb.evaluate's private `_evaluate_resolved`; another mteb that lacks any of these
# (or the two helpers) gets the public `mteb.evaluate`, slower to start on a warm rerun but the same scores
_RESOLVED_ARGS = frozenset({"co2_tracker", "raise_error", "encode_kwargs", "cache", "overwrite_strategy",
                            "prediction_folder", "show_progress_bar", "public_only", "num_proc", "timer"})  # fmt: skip


def _mteb_steps() -> Any | None:
    """mteb.evaluate's module when its private steps are the ones the runner was written against, else None."""
    steps = importlib.import_module("mteb.evaluate")  # the module: `mteb.evaluate` the attribute is the function
    try:
        params = set(inspect.signature(steps._evaluate_resolved).parameters)
        helpers = callable(steps._apply_precision_to_meta) and callable(steps._check_model_modalities)
        return steps if helpers and _RESOLVED_ARGS <= params and hasattr(steps, "OverwriteStrategy") else None
    except (AttributeError, TypeError, ValueError):
        return None


def _evaluate(encoder: HarnessEncoder | DimView, task: Any, cfg: RunConfig, predictions: Path | None) -> Any:
    """One task through `mteb.evaluate`'s own steps, minus its model sanitizer: that imports sentence-transformers
    (and with it transformers) only to ask whether the model is one of theirs, and ours is an encoder carrying its
    own ModelMeta, which the sanitizer passes through as is. So a warm rerun, whose model never loads, imports
    neither; the evaluation (`_evaluate_resolved`: mteb's evaluators, TaskResult, predictions) is mteb's. An mteb
    whose private steps differ gets the public `mteb.evaluate` (`_mteb_steps`)."""
    encode_kwargs = {"batch_size": cfg.batch_size, "show_progress_bar": encoder.show_progress}  # mteb's bars
    steps = _mteb_steps()
    if steps is None:
        return mteb.evaluate(encoder, task, cache=None, overwrite_strategy="always", raise_error=True,
                             show_progress_bar=False, prediction_folder=predictions,
                             encode_kwargs=encode_kwargs).task_results[0]  # fmt: skip
    meta = steps._apply_precision_to_meta(encoder.mteb_model_meta, encode_kwargs)
    steps._check_model_modalities(meta, task)
    return steps._evaluate_resolved(
        encoder, meta, meta.name, meta.revision, task, co2_tracker=None, raise_error=True,
        encode_kwargs=encode_kwargs, cache=None, overwrite_strategy=steps.OverwriteStrategy.ALWAYS,
        prediction_folder=predictions, show_progress_bar=False, public_only=None, num_proc=None, timer=None,
    ).task_results[0]  # fmt: skip


RANDOM_STATE = ("rng_state", "np_rng")  # what mteb tasks draw samples from (AbsTask.__init__ seeds both)


def _random_state(task: Any) -> dict[str, Any]:
    """A copy of the task's random generators. An evaluation advances them: mteb 2's clustering draws its document
    subsample and bootstrap sets from `rng_state`, multilabel classification shuffles with `np_rng`."""
    return {name: copy.deepcopy(getattr(task, name)) for name in RANDOM_STATE if hasattr(task, name)}


def _restore_random_state(task: Any, state: dict[str, Any]) -> None:
    """Each --dims pass starts from the full pass's generators, so every dim is scored on the sample the full
    dimension was (and a fresh task would be), not on the next draw."""
    for name, value in state.items():
        setattr(task, name, copy.deepcopy(value))


def _run_task(resolved: ResolvedTask, encoder: HarnessEncoder, run_dir: RunDir | None, cfg: RunConfig,
              dims: list[int], model_load_s: float = 0.0) -> tuple[dict[str, Any], dict[str, Any] | None]:  # fmt: skip
    """Evaluate one task at full dimension, then score each MRL dim from the same vectors; never raises.

    Its files go to `run_dir`: the task's staging directory (RunDir.staging), None on ranks that write nothing.
    `model_load_s`: the model's load before the run's first task, counted into this task's load and wall."""
    encoder.start_task()
    sysinfo.reset_accelerator_peak()
    start = time.perf_counter()
    try:
        task = resolved.load()
        gold = gold_labels(task) if run_dir else None  # from the data as loaded, before mteb evaluates
        load_s = time.perf_counter() - start
        seeded = _random_state(task)
        result = _evaluate(encoder, task, cfg, run_dir.predictions_dir if run_dir else None)
        if not math.isfinite(result.get_score()):  # never recorded as ok: leaderboards and means would break
            raise ValueError(f"mteb returned a main score of {result.get_score()} ({task.metadata.main_score})")
        if run_dir:
            run_dir.write_gold(resolved.name, gold)
            run_dir.write_result(result)
        for dim in dims:  # every text is in the task memo now: these passes only score
            _restore_random_state(task, seeded)
            dim_result = _evaluate(encoder.view(dim), task, cfg, None)
            if run_dir:
                run_dir.write_result(dim_result, dim)
    except Exception as exc:  # noqa: BLE001 - a task's failure must not end the run
        reason = f"{type(exc).__name__}: {exc}"
        return {"status": "failed", "error": reason, "traceback": traceback.format_exc(limit=8)}, None
    finally:
        if resolved.source == MIRROR:
            resolved.task = None  # a suite of big corpora must not pile up in memory; reloads from disk
    wall = time.perf_counter() - start + model_load_s
    stats = encoder.stats
    load_s += stats.model_load_s + model_load_s  # a lazy model's load, in the first task that encodes, or an eager one
    eff = {
        "wall_s": round(wall, 3),
        "load_s": round(load_s, 3),
        "encode_s": round(stats.encode_s, 3),
        "score_s": round(max(wall - load_s - stats.encode_s, 0.0), 3),
        **{k: (round(v, 3) if isinstance(v, float) else v) for k, v in stats.as_dict().items()
           if k not in ("encode_s", "model_load_s")},  # model_load_s: below, with an eager load added
        **stats.speed(),  # model work only: memo and cache hits are not encoding speed
        **time_split(wall, load_s, stats, encoder.model.timings),  # tokenizer, copies, forward, scoring shares
        "model_load_s": round(stats.model_load_s + model_load_s, 3),
        "peak_rss_mb": round(sysinfo.peak_rss_mb(), 1),
        "peak_accelerator_mb": sysinfo.peak_accelerator_mb(),
        "batch_size": cfg.batch_size,
        "dtype": encoder.model.dtype,
        "device": encoder.model.device,
    }
    entry = {"status": "ok", "main_score": result.get_score(), "main_metric": task.metadata.main_score,
             "split": list(task.eval_splits), "subsets": list(task.hf_subsets), "error": None}  # fmt: skip
    return entry, eff


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
    return f"{name}: {entry['main_metric']} = {100 * entry['main_score']:.2f} ({eff['wall_s']:.1f} s, {work(eff)})"


def work(eff: dict[str, Any]) -> str:
    """'1379 encoded at 90.3 texts/s, 2758 tokens/s; 1379 cache hits': model work apart from hits."""
    hits = f"{eff.get('cache_hits', 0)} cache hits"
    if not eff.get("texts_per_s"):
        return f"nothing encoded; {hits}"
    return (f"{eff['encoded_texts']} encoded at {eff['texts_per_s']:,.1f} texts/s, {eff['tokens_per_s']:,.0f} "
            f"tokens/s; {hits}")  # fmt: skip
