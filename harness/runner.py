"""`harness run`: plan the tasks, load the model once, evaluate task by task, record everything as it finishes.

A failing task is recorded with its reason and the run goes on; the exit status says so at the end.
Finished tasks are skipped on a rerun of the same run directory unless overwrite is set.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import traceback
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mteb

from harness import sysinfo
from harness.cache import EmbeddingCache, default_cache_dir
from harness.data import LocalTask, discover_tasks
from harness.distributed import ShardGroup, init_from_env, shutdown
from harness.encoding import HarnessEncoder
from harness.errors import EXIT_OK, EXIT_TASK_FAILED, UsageError, unknown
from harness.models import Embedder, ModelOptions, load_model
from harness.runs import RunDir, atomic_write_text
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
    dims: list[str] | None = None
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


def plan_tasks(cfg: RunConfig, local_tasks: dict[str, LocalTask]) -> Plan:
    """Suite and/or --tasks → resolved tasks. Unknown names fail here, before any model is loaded."""
    if cfg.suite is None and not cfg.tasks:
        raise UsageError("nothing to run: give --suite NAME or --tasks A,B (see `harness list suites`)")
    names: list[str] = get_suite(cfg.suite, local_tasks).tasks if cfg.suite else []
    if cfg.tasks:
        if cfg.suite:  # --tasks narrows a suite
            absent = [t for t in cfg.tasks if t not in names]
            if absent:
                raise unknown(f"task in suite {cfg.suite}", absent[0], names)
            names = [t for t in names if t in cfg.tasks]
        else:
            for name in cfg.tasks:
                if name not in local_tasks and official_task(name) is None:
                    raise unknown("task", name, list(local_tasks) + _mteb_task_names(), "see `harness list tasks`")
            names = list(dict.fromkeys(cfg.tasks))
    label = cfg.suite or "tasks"
    return Plan(label, [resolve(n, local_tasks, cfg.source) for n in names])


def _mteb_task_names() -> list[str]:
    return [t.metadata.name for t in mteb.get_tasks()]


def default_run_name(cfg: RunConfig, embedder: Embedder) -> str:
    """<model>__<suite or tasks>: packaged models by their short name, folders by the model's name."""
    scope = cfg.suite or "-".join(cfg.tasks or [])[:60]
    model = cfg.model if ":" not in cfg.model else embedder.name.split("/")[-1]
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{model}__{scope}")


def parse_dims(dims: list[str] | None, embed_dim: int) -> list[int]:
    """--dims values → sorted truncation sizes below the full dimension ('full' and embed_dim mean the full run)."""
    sizes = set()
    for value in dims or []:
        if value == "full":
            continue
        if not value.isdigit() or int(value) < 1:
            raise UsageError(f"--dims: {value!r} is not a positive integer or 'full'")
        if int(value) > embed_dim:
            raise UsageError(f"--dims: {value} is larger than the model's embedding dimension {embed_dim}")
        if int(value) < embed_dim:
            sizes.add(int(value))
    return sorted(sizes)


def run(cfg: RunConfig) -> int:
    """Run a suite; returns the exit status (0 ok, 1 some task failed)."""
    warnings.filterwarnings("ignore", message=".*superseded.*")
    logging.getLogger("mteb").setLevel(logging.ERROR)  # mteb logs every superseded task as a warning
    local_tasks = discover_tasks(cfg.data_dir)
    plan = plan_tasks(cfg, local_tasks)
    embedder = load_model(cfg.model, cfg.options)
    dims = parse_dims(cfg.dims, embedder.embed_dim)
    shards = init_from_env(embedder.device)
    main = shards is None or shards.is_main
    say = print if main else (lambda *a, **k: None)
    say(plan.coverage_line(), flush=True)
    run_dir = RunDir(cfg.out / (cfg.run_name or default_run_name(cfg, embedder)), embedder.name, embedder.revision)
    record = _initial_record(cfg, plan, embedder, run_dir, dims, shards)
    cache = EmbeddingCache(cfg.cache_dir or default_cache_dir()) if cfg.use_cache else None
    encoder = HarnessEncoder(embedder, cfg.batch_size, cfg.max_batch_tokens, cache, shards, cfg.show_progress)
    if main:
        run_dir.write_run(record)
        run_dir.write_model_meta(embedder.describe())
    efficiency = run_dir.read_efficiency()

    runnable = [r for r in plan.resolved if r.source != MISSING]
    for n, resolved in enumerate(runnable, start=1):
        if not cfg.overwrite and run_dir.is_done(resolved.name, dims):
            say(f"[{n}/{len(runnable)}] {resolved.name}: done earlier, skipped (--overwrite to redo)", flush=True)
            continue
        entry, eff = _run_task(resolved, encoder, run_dir if main else None, cfg, dims)
        record["tasks"][resolved.name].update(entry)
        if main:
            if eff:
                efficiency[resolved.name] = eff
                run_dir.write_efficiency(efficiency)
            run_dir.write_run(record)
        say(f"[{n}/{len(runnable)}] {_progress_line(resolved.name, entry, eff)}", flush=True)

    failed = [name for name, t in record["tasks"].items() if t.get("status") == "failed"]
    if shards is not None:
        shutdown()
    if not main:
        return EXIT_TASK_FAILED if failed else EXIT_OK
    record["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    run_dir.write_run(record)
    summary = render_summary(run_dir, plan.coverage_line())
    atomic_write_text(run_dir.path / "summary.md", summary)
    print(summary)
    if failed:
        print(f"{len(failed)} task(s) failed: {', '.join(failed)} (reasons in {run_dir.path / 'run.json'})",
              file=sys.stderr)  # fmt: skip
    print(f"run directory: {run_dir.path}")
    return EXIT_TASK_FAILED if failed else EXIT_OK


# What a finished task's entry in run.json says about its outcome; kept when a rerun skips the task.
TASK_OUTCOME = ("status", "main_score", "main_metric", "split", "dim_scores", "error", "traceback")


def _initial_record(cfg: RunConfig, plan: Plan, embedder: Embedder, run_dir: RunDir, dims: list[int],
                    shards: ShardGroup | None) -> dict[str, Any]:  # fmt: skip
    previous = run_dir.read_run()
    same_model = previous.get("model", {}).get("fingerprint") == embedder.fingerprint
    old_tasks = previous.get("tasks", {}) if same_model else {}
    tasks = {}
    for r in plan.resolved:
        keep = old_tasks.get(r.name, {}) if not cfg.overwrite else {}
        tasks[r.name] = {**r.record(), **{k: v for k, v in keep.items() if k in TASK_OUTCOME}}
        tasks[r.name].setdefault("status", "missing" if r.source == MISSING else "pending")
    return {
        "command": cfg.command,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
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
        "environment": sysinfo.environment(),
        "tasks": tasks,
    }


def _evaluate(encoder: HarnessEncoder, task: Any, cfg: RunConfig, predictions: Path | None) -> Any:
    return mteb.evaluate(
        encoder, task, cache=None, overwrite_strategy="always", raise_error=True, show_progress_bar=False,
        prediction_folder=predictions, encode_kwargs={"batch_size": cfg.batch_size},
    ).task_results[0]  # fmt: skip


def _run_task(resolved: ResolvedTask, encoder: HarnessEncoder, run_dir: RunDir | None, cfg: RunConfig,
              dims: list[int]) -> tuple[dict[str, Any], dict[str, Any] | None]:  # fmt: skip
    """Evaluate one task at full dimension, then score each MRL dim from the same vectors; never raises."""
    encoder.start_task()
    sysinfo.reset_accelerator_peak()
    start = time.perf_counter()
    dim_scores: dict[str, float] = {}
    try:
        task = resolved.load()
        load_s = time.perf_counter() - start
        result = _evaluate(encoder, task, cfg, run_dir.predictions_dir if run_dir else None)
        if run_dir:
            run_dir.write_result(result)
        for dim in dims:  # every text is in the task memo now: these passes only score
            encoder.view_dim = dim
            dim_result = _evaluate(encoder, task, cfg, None)
            dim_scores[str(dim)] = dim_result.get_score()
            if run_dir:
                run_dir.write_result(dim_result, dim)
        encoder.view_dim = None
    except Exception as exc:  # noqa: BLE001 - a task's failure must not end the run
        reason = f"{type(exc).__name__}: {exc}"
        return {"status": "failed", "error": reason, "traceback": traceback.format_exc(limit=8)}, None
    finally:
        if resolved.source == MIRROR:
            resolved.task = None  # a suite of big corpora must not pile up in memory; reloads from disk
    wall = time.perf_counter() - start
    stats = encoder.stats
    eff = {
        "wall_s": round(wall, 3),
        "load_s": round(load_s, 3),
        "encode_s": round(stats.encode_s, 3),
        "score_s": round(max(wall - load_s - stats.encode_s, 0.0), 3),
        **{k: v for k, v in stats.as_dict().items() if k != "encode_s"},
        "texts_per_s": round(stats.unique_texts / stats.encode_s, 1) if stats.encode_s else None,
        "tokens_per_s": round(stats.tokens / stats.encode_s, 1) if stats.encode_s else None,
        "peak_rss_mb": round(sysinfo.peak_rss_mb(), 1),
        "peak_accelerator_mb": sysinfo.peak_accelerator_mb(),
        "batch_size": cfg.batch_size,
        "dtype": encoder.model.dtype,
        "device": encoder.model.device,
    }
    entry = {"status": "ok", "main_score": result.get_score(), "main_metric": task.metadata.main_score,
             "split": list(task.eval_splits), "dim_scores": dim_scores, "error": None}  # fmt: skip
    return entry, eff


def _progress_line(name: str, entry: dict[str, Any], eff: dict[str, Any] | None) -> str:
    if entry["status"] != "ok":
        return f"{name}: FAILED — {entry['error']}"
    return (f"{name}: {entry['main_metric']} = {100 * entry['main_score']:.2f} "
            f"({eff['wall_s']:.1f} s, {eff['texts_per_s']} texts/s)")  # fmt: skip
