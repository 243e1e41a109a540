"""What an ablation's dev, test and training texts share: a test score computed on texts a setting was chosen on
(dev) or trained on (training files) is partly memory. `harness ablate` refuses both unless the config says why,
and its report shows them.

Split from harness/ablate.py (stop 64).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.data import (
    LocalTask,
    iter_jsonl,
    normalized_file_texts,
    normalized_row_texts,
    normalized_texts,
    read_qrels,
    task_file,
    task_jsonl_files,
)


def dev_test_overlap(local: dict[str, LocalTask], dev: list[str], test: list[str]) -> list[dict[str, Any]]:
    """(dev, test) task pairs whose folders share texts (``harness.data.normalized_texts``, every .jsonl: a dev
    score is computed from a classification train.jsonl too, unlike `evaluated_files`): one sentence pair in
    STS16 and STSBenchmark, one question in XQuAD de and zh over the same documents. Tasks without a folder under
    the data root (``local``: official ones) are not compared."""
    texts = {t: normalized_texts(local[t]) for t in dev + test if t in local}
    return [{"dev": d, "test": t, "shared": len(texts[d] & texts[t]), "test_texts": len(texts[t])}
            for d in dev for t in test if d in texts and t in texts and texts[d] & texts[t]]  # fmt: skip


def task_items(task: LocalTask) -> tuple[str, list[set[str]]]:
    """(what an item is, each item's normalised texts) of a task: for Retrieval its queries, each with the
    documents it judges relevant (before stop 50 the query alone: a training set holding every relevant SciFact
    document read "0 of its 300 queries"), else its test rows (a sentence pair for STS, PairClassification and
    BitextMining, a query with its candidates for Reranking)."""
    if task.type == "Retrieval":
        queries = list(iter_jsonl(task_file(task, "queries.jsonl")))
        docs = {str(row["_id"]): normalized_row_texts(row) for row in iter_jsonl(task_file(task, "corpus.jsonl"))}
        qrels = read_qrels(task, {str(q["_id"]) for q in queries}, set(docs))
        return "queries", [normalized_row_texts(q).union(*(docs[d] for d, grade in qrels.get(str(q["_id"]), {}).items()
                                                            if grade > 0)) for q in queries]  # fmt: skip
    kind = "pairs" if task.type in ("STS", "PairClassification", "BitextMining") else "rows"
    return kind, [normalized_row_texts(row) for row in iter_jsonl(task_file(task, "test.jsonl"))]


def evaluated_files(task: LocalTask) -> list[Path]:
    """The .jsonl files of a task folder whose texts the evaluation embeds and scores: all but a classification
    task's train.jsonl, the rows mteb fits its classifier on (training an embedder on them is in-domain training,
    not memory of a test item)."""
    return [path for path in task_jsonl_files(task)
            if not (task.type == "Classification" and path.name == "train.jsonl")]  # fmt: skip


def train_test_overlap(local: dict[str, LocalTask], train_sets: dict[str, set[Path]],
                       tasks: list[str]) -> list[dict[str, Any]]:  # fmt: skip
    """Every (training set, evaluation task) pair with the texts they share (``harness.data.normalized_texts`` of
    the training files and of the task's :func:`evaluated_files`) and the task's items (:func:`task_items`) with a
    text in the training set: a model trained on a test item scores it partly from memory. ``train_sets``: {name:
    the .jsonl files a stage reads there} (the files, not their folder: a task folder's test.jsonl beside the
    train.jsonl a stage reads is no training text); tasks without a folder under the data root (``local``:
    official ones) are not compared."""
    train_texts = {name: normalized_file_texts(sorted(files)) for name, files in train_sets.items()}
    found = []
    for task in (t for t in tasks if t in local):
        rows = [row for path in evaluated_files(local[task]) for row in iter_jsonl(path)]  # read once
        texts = {text for row in rows for text in normalized_row_texts(row, joined=False)}  # counted
        matched = {text for row in rows for text in normalized_row_texts(row)}  # with the joined documents
        kind, items = task_items(local[task])
        for name, seen in train_texts.items():
            shared = matched & seen
            found.append({"train": name, "task": task, "shared": len(shared), "task_texts": len(texts),
                          "items_with_shared": sum(bool(item & shared) for item in items), "task_items": len(items),
                          "items": kind})  # fmt: skip
    return found


def training_files(stage_cfg: Any, data_dir: Path) -> dict[str, set[Path]]:
    """{name: files} a stage trains from, by folder (a training set is a folder: ../shared/data/train/<name>/
    train.jsonl), named relative to the evaluation data root (``train/<name>``) so that stages with other
    ``data_root`` settings name one folder alike."""
    root, found = data_dir.resolve(), {}
    for path in stage_cfg.input_files():
        folder = path.parent.resolve()
        name = folder.relative_to(root).as_posix() if folder.is_relative_to(root) else str(folder)
        found.setdefault(name, set()).add(path.resolve())
    return found
