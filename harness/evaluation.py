"""One task's evaluation: mteb scores it at full dimension, then each --dims size from the same vectors.

The runner (harness/runner.py) calls `run_task` once per task and records what it returns: the task's run.json
entry and its efficiency.json line, or a failure with its reason (a task's failure never ends the run). mteb is
entered through its own private steps where they are the ones this was written against (`_mteb_steps`), so a warm
rerun imports neither sentence-transformers nor transformers.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import math
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

import mteb

from harness import sysinfo
from harness.encoding import DimView, HarnessEncoder, time_split
from harness.gold import gold_labels
from harness.runs import RunDir
from harness.scoring import faster_scoring
from harness.tasks import MIRROR, ResolvedTask, mirror_identity

if TYPE_CHECKING:  # the runner imports this module; RunConfig only types `cfg` here
    from harness.runner import RunConfig


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
    with faster_scoring(task):  # the same scores and files, less Python (harness/scoring.py)
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


class DataChanged(Exception):
    """A mirror's files changed between the run's start, which keyed the task by their hash, and the task's load."""


def run_task(resolved: ResolvedTask, encoder: HarnessEncoder, run_dir: RunDir | None, cfg: RunConfig,
             dims: list[int], model_load_s: float = 0.0, data: str | None = None,
             ) -> tuple[dict[str, Any], dict[str, Any] | None]:  # fmt: skip
    """Evaluate one task at full dimension, then score each MRL dim from the same vectors; never raises.

    Its files go to `run_dir`: the task's staging directory (RunDir.staging), None on ranks that write nothing.
    `model_load_s`: the model's load before the run's first task, counted into this task's load and wall.
    `data`: the mirror's data identity the result is recorded under, checked against its files once they are read
    (the run hashes every task at its start, and a long suite reads the last one hours later)."""
    encoder.start_task()
    sysinfo.reset_accelerator_peak()
    start = time.perf_counter()
    try:
        task = resolved.load()
        if data is not None and resolved.local is not None and (now := mirror_identity(resolved.local)) != data:
            # before stop 54 (audit) the edited rows' score was recorded under the old files' hash, and a rerun
            # after the edit was undone kept it as theirs
            raise DataChanged(f"the files of {resolved.local.path} changed after the run started ({data[:19]}… → "
                              f"{now[:19]}…): not evaluated, since its result would be recorded under the files' "
                              "old hash; the same command evaluates it on the files as they are now")  # fmt: skip
        gold = gold_labels(task) if run_dir else None  # from the data as loaded, before mteb evaluates
        load_s = time.perf_counter() - start
        seeded = _random_state(task)
        result = _evaluate(encoder, task, cfg, run_dir.predictions_dir if run_dir else None)
        if not math.isfinite(result.get_score()):  # never recorded as ok: leaderboards and means would break
            raise ValueError(f"mteb returned a main score of {result.get_score()} ({task.metadata.main_score})")
        if run_dir:
            run_dir.write_gold(resolved.name, gold)
            run_dir.write_result(result, mirror=data)
        for dim in dims:  # every text is in the task memo now: these passes only score
            _restore_random_state(task, seeded)
            per_item = run_dir.dim_predictions_dir(dim) if run_dir and cfg.dim_predictions else None  # paired CIs
            dim_result = _evaluate(encoder.view(dim), task, cfg, per_item)
            if run_dir:
                run_dir.write_result(dim_result, dim, mirror=data)
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
        "batch_size": None if encoder.model.packs_texts else cfg.batch_size,  # None: by tokens alone
        "dtype": encoder.model.dtype,
        "device": encoder.model.device,
        # the processes that encoded it: scores do not depend on it (the rerun identity leaves it out), timings do
        "world_size": encoder.shards.world if encoder.shards is not None else 1,
        **sysinfo.speed_settings(cfg.max_batch_tokens, encoder.model.device),
    }
    entry = {"status": "ok", "main_score": result.get_score(), "main_metric": task.metadata.main_score,
             "split": list(task.eval_splits), "subsets": list(task.hf_subsets), "error": None}  # fmt: skip
    return entry, eff
