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

A task scored in several parts (several subsets or splits, each scored alone and averaged by mteb's
`TaskResult.get_score`: MultilingualSentiment's validation and test; a legacy clustering split's cluster sets, each
clustered alone and averaged into the split's v_measure) keeps one record per part under `parts` instead:

    {"type": "Clustering", "main_score": "v_measure", "parts": [{"subset": "default", "split": "test",
     "set": 0, "gold": [...], "items": [...]}, ...]}

`set` (legacy clustering only) is the set's position among the assignments mteb writes to the predictions file;
null for a set with one label, which mteb scores 1.0 without clustering it (and writes nothing for).

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


def _cluster_sets(task: Any, data: Any, subset: str, split: str) -> list[dict[str, Any]]:
    """A legacy clustering split's sets (a row each) as parts, each with its position among the assignments mteb
    saves: a set with one label is scored 1.0 without clustering and saves none
    (AbsTaskClusteringLegacy._evaluate_subset)."""
    if not isinstance(data[0][task.input_column_name], list):  # a row per document: mteb's v2 layout
        raise NotPairable("mteb's v2 clustering scores bootstrapped draws of documents made inside its evaluator: "
                          "no per-document resampling")  # fmt: skip
    parts, scored = [], 0
    for row in data:
        labels = list(row[task.label_column_name])
        clustered = len(set(labels)) > 1
        part = {"subset": subset, "split": split, "set": scored if clustered else None, "gold": labels}
        scored += clustered
        texts = row[task.input_column_name]
        parts.append(part if not all(isinstance(t, str) for t in texts) else
                     {**part, "items": [item_digest([t]) for t in texts]})  # fmt: skip
    return parts


def _retrieval(task: Any, data: Any) -> dict[str, dict[str, int]]:
    return {str(q): {str(d): int(r) for d, r in docs.items()} for q, docs in data["relevant_docs"].items()}


def _bitext(task: Any, data: Any) -> None:
    return None


# Clustering has none here: its gold is a part per cluster set (_cluster_sets).
GOLD: dict[str, Callable[[Any, Any], Any]] = {
    "STS": _sts, "PairClassification": _pairs, "Classification": _classification, "Retrieval": _retrieval,
    "Reranking": _retrieval, "BitextMining": _bitext,
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
    if kind not in GOLD and kind != "Clustering":
        return {**record, "reason": f"{kind} tasks: no per-item resampling"}
    parts = []
    try:
        for subset in task.hf_subsets:
            for split in task.eval_splits:
                parts += _parts(task, kind, subset, split)
    except NotPairable as exc:
        return {**record, "reason": str(exc)}
    except Exception as exc:  # noqa: BLE001 - a report's input, never a reason to fail the task
        return {**record, "reason": f"gold labels unreadable ({type(exc).__name__}: {exc})"}
    if len(parts) == 1 and parts[0].get("set", 0) == 0:  # one part: the layout files have always had
        return {**record, **{k: v for k, v in parts[0].items() if k != "set"}}
    return {**record, "parts": parts}


def _parts(task: Any, kind: str, subset: str, split: str) -> list[dict[str, Any]]:
    """The gold record(s) of one evaluated (subset, split): one, or one per cluster set of a legacy split."""
    data = task.dataset
    data = data[subset][split] if subset in data and split not in data else data[split]
    if kind == "Clustering":  # legacy layout: a row per cluster set (the v2 layout is refused there)
        return _cluster_sets(task, data, subset, split)
    part = {"subset": subset, "split": split, "gold": GOLD[kind](task, data)}
    digests = _item_digests(task, kind, data)
    return [part if digests is None else {**part, "items": digests}]
