"""The gold side of every item a task scores, kept in the run directory beside mteb's per-item outputs.

`harness regress` and `harness ablate` pair two runs item by item and recompute the main score on resamples of
the items (reporting/items.py). mteb's predictions file holds the model's side of each item (similarities,
rankings, predicted labels); the runner writes the gold side here, from the task's data as loaded for the
evaluation, to `predictions/<Task>_gold.json` (`RunDir.write_gold`), so reports read the run directory only:
no data root, no task loading, the same labels whether the mirror folder has moved or the hub is unreachable.

    {"type": "STS", "main_score": "cosine_spearman", "subset": "default", "split": "test", "gold": [...],
     "items": ["3f2a9c01b7e4", ...]}

`gold` per type: STS, the scores normalised as mteb scores them; PairClassification, 0/1 labels;
Classification, the test labels as strings; Clustering, the one set's labels (mteb's v2 clustering, a row per
document clustered in bootstrapped draws, is not pairable); Retrieval and Reranking, the relevance judgements
{query: {document: relevance}}; BitextMining, null (sentence i translates sentence i).
A task whose items cannot be paired has `reason` instead of `gold`, which reports show as "not tested".

`items` (STS, PairClassification, Classification, Clustering, BitextMining: the types whose items are named by
position) holds each item's text digest in evaluation order: the first 12 hex digits of the sha256 of its texts
joined by U+001F (a pair's two sentences, a test item's or a document's text). Equal labels do not make equal items
(two same-label items swapped, other rows with the same labels; BitextMining has no labels at all), so reports pair
two runs' items by position only when these agree. A text column that cannot be read leaves `items` out, never
the gold; files written before `items` existed have none, and reports then compare the gold lists alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

DIGEST_HEX = 12  # 48 bits per item: two different items share a digest with odds 2^-48; ~16 bytes of JSON


class NotPairable(Exception):
    """The task's items cannot be paired one to one; the message says why."""


def _sts(task: Any, data: Any) -> list[float]:
    return [float(task._normalize(s)) for s in data["score"]]


def _columns(data: Any) -> Any:
    """PairClassification's data as columns: mteb's v1 layout is one row holding whole columns."""
    return {k: v[0] for k, v in data[0].items()} if len(data) == 1 else data


def _pairs(task: Any, data: Any) -> list[int]:
    return [int(v) for v in _columns(data)[task.label_column_name]]


def _classification(task: Any, data: Any) -> list[str]:
    return [str(v) for v in data[task.label_column_name]]


def _clustering(task: Any, data: Any) -> list[Any]:
    if not isinstance(data[0][task.input_column_name], list):  # a row per document: mteb's v2 layout
        raise NotPairable("mteb's v2 clustering scores bootstrapped draws of documents made inside its evaluator: "
                          "no per-document resampling")  # fmt: skip
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


def _names(column: Any) -> list[str]:
    """A task's text column name(s): one name, or several for a multi-column input."""
    return [column] if isinstance(column, str) else list(column)


# Per positional type: the columns of the evaluated split that hold each item's texts, as mteb reads them.
TEXTS: dict[str, Callable[[Any, Any], list[Sequence[Any]]]] = {
    "STS": lambda task, data: [data[c] for pair in task.column_names for c in _names(pair)],
    "PairClassification": lambda task, data: [_columns(data)[c] for c in (task.input1_column_name,
                                                                          task.input2_column_name)],
    "Classification": lambda task, data: [data[c] for c in _names(task.input_column_name)],
    "Clustering": lambda task, data: [data[0][task.input_column_name]],  # the one set (see _clustering)
    "BitextMining": lambda task, data: [data[c] for c in _one_pair(task)],
}  # fmt: skip


def _one_pair(task: Any) -> tuple[str, str]:
    pairs = task._get_pairs(task.parallel_subsets)  # mteb's own choice: sentence1/sentence2, or a language pair
    if len(pairs) != 1:
        raise NotPairable("several language pairs")
    return pairs[0]


def item_digest(texts: Sequence[str]) -> str:
    """One item's identity in the gold record: the first DIGEST_HEX hex digits of sha256 of its texts."""
    return hashlib.sha256("\x1f".join(texts).encode("utf-8")).hexdigest()[:DIGEST_HEX]


def _item_digests(task: Any, kind: str, data: Any) -> list[str] | None:
    """Each item's text digest in evaluation order; None when the type has none or its texts cannot be read."""
    if kind not in TEXTS:
        return None
    try:
        rows = list(zip(*TEXTS[kind](task, data), strict=True))
    except Exception:  # noqa: BLE001 - without digests the report compares the gold lists alone, as before
        return None
    if not all(isinstance(text, str) for row in rows for text in row):
        return None  # images or other inputs: no text to digest
    return [item_digest(row) for row in rows]


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
    record.update(subset=subset, split=split, gold=gold)
    digests = _item_digests(task, kind, data)
    return record if digests is None else {**record, "items": digests}
