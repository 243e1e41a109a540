"""The gold side of every item a task scores, kept in the run directory beside mteb's per-item outputs.

`harness regress` and `harness ablate` pair two runs item by item and recompute the main score on resamples of
the items (reporting/items.py). mteb's predictions file holds the model's side of each item (similarities,
rankings, predicted labels); the runner writes the gold side here, from the task's data as loaded for the
evaluation, to `predictions/<Task>_gold.json` (`RunDir.write_gold`), so reports read the run directory only:
no data root, no task loading, the same labels whether the mirror folder has moved or the hub is unreachable.

    {"type": "STS", "main_score": "cosine_spearman", "subset": "default", "split": "test", "gold": [...]}

`gold` per type: STS, the scores normalised as mteb scores them; PairClassification, 0/1 labels;
Classification, the test labels as strings; Clustering, the one set's labels; Retrieval and Reranking, the
relevance judgements {query: {document: relevance}}; BitextMining, null (sentence i translates sentence i).
A task whose items cannot be paired has `reason` instead of `gold`, which reports show as "not tested".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class NotPairable(Exception):
    """The task's items cannot be paired one to one; the message says why."""


def _sts(task: Any, data: Any) -> list[float]:
    return [float(task._normalize(s)) for s in data["score"]]


def _pairs(task: Any, data: Any) -> list[int]:
    if len(data) == 1:  # mteb's v1 layout: one row holding whole columns
        data = {k: v[0] for k, v in data[0].items()}
    return [int(v) for v in data[task.label_column_name]]


def _classification(task: Any, data: Any) -> list[str]:
    return [str(v) for v in data[task.label_column_name]]


def _clustering(task: Any, data: Any) -> list[Any]:
    if len(data) != 1:
        raise NotPairable("several cluster sets: no per-document resampling")
    return list(data[0][task.label_column_name])


def _retrieval(task: Any, data: Any) -> dict[str, dict[str, int]]:
    return {str(q): {str(d): int(r) for d, r in docs.items()} for q, docs in data["relevant_docs"].items()}


def _bitext(task: Any, data: Any) -> None:
    return None


GOLD: dict[str, Callable[[Any, Any], Any]] = {
    "STS": _sts, "PairClassification": _pairs, "Classification": _classification, "Clustering": _clustering,
    "Retrieval": _retrieval, "Reranking": _retrieval, "BitextMining": _bitext,
}  # fmt: skip


def gold_labels(task: Any) -> dict[str, Any]:
    """The gold record of a loaded mteb task (call it before mteb evaluates, on the data as loaded); never raises."""
    kind = task.metadata.type
    record: dict[str, Any] = {"type": kind, "main_score": task.metadata.main_score}
    subsets, splits = list(task.hf_subsets), list(task.eval_splits)
    if len(subsets) != 1 or len(splits) != 1:
        return {**record, "reason": "several subsets/splits: per-item pairing not supported"}
    if kind not in GOLD:
        return {**record, "reason": f"{kind} tasks: no per-item resampling"}
    subset, split = subsets[0], splits[0]
    data = task.dataset
    try:
        data = data[subset][split] if subset in data and split not in data else data[split]
        gold = GOLD[kind](task, data)
    except NotPairable as exc:
        return {**record, "reason": str(exc)}
    except Exception as exc:  # noqa: BLE001 - a report's input, never a reason to fail the task
        return {**record, "reason": f"gold labels unreadable ({type(exc).__name__}: {exc})"}
    return {**record, "subset": subset, "split": split, "gold": gold}
