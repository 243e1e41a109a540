"""Small fabricated run directories and result files, so leaderboard arithmetic can be checked by hand."""

from __future__ import annotations

import json
from pathlib import Path

from harness.runs import RunDir, atomic_write_json


def result_json(task: str, score: float, metric: str = "cosine_spearman", split: str = "test",
                version: str = "2.26.24", subset: str = "default", lang: str = "eng-Latn") -> dict:  # fmt: skip
    """A TaskResult in the new (mteb ≥ 1.11) schema holding one main score."""
    entry = {"main_score": score, metric: score, "hf_subset": subset, "languages": [lang]}
    return {"dataset_revision": "x", "task_name": task, "mteb_version": version, "scores": {split: [entry]},
            "evaluation_time": 1.0, "kg_co2_emissions": None}  # fmt: skip


def make_run(root: Path, name: str, scores: dict[str, float], types: dict[str, str], *,
             source: str = "mirror", missing: tuple[str, ...] = (), dims: dict[int, dict[str, float]] | None = None,
             model: str = "org/model", data: dict[str, dict] | None = None,
             identity: dict | None = None, width: int | None = 384) -> Path:  # fmt: skip
    """A run directory with run.json task records (status ok / missing) and result files; ``data`` adds fields
    (sampling, split, identity, ...) to a task's record, ``identity`` records the run's settings, ``width`` the
    model's full embedding width (None: not known)."""
    run = RunDir(root / name, model, "rev1")
    tasks = {t: {"status": "ok", "source": source, "type": types[t], "main_score": s, "main_metric": "cosine_spearman",
                 **(data or {}).get(t, {})} for t, s in scores.items()}  # fmt: skip
    tasks.update({t: {"status": "missing", "source": "missing", "type": types[t]} for t in missing})
    run.write_run({"model": {"name": model, "revision": "rev1", "spec": "x", "embed_dim": width}, "tasks": tasks,
                   "dims": sorted(dims or {}), **({"identity": identity} if identity else {})})  # fmt: skip
    for task, score in scores.items():
        atomic_write_json(run.result_path(task), result_json(task, score))
    for dim, per_task in (dims or {}).items():
        for task, score in per_task.items():
            atomic_write_json(run.result_path(task, dim), result_json(task, score))
    return run.path


def write_json(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj), encoding="utf-8")
