"""Malformed data fails with file:line; task folders cannot escape the data root."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.data import discover_tasks, read_rows
from harness.errors import DataError, UsageError
from harness.tasks import build_mirror

# A valid main score per type (task.json's main_score is checked against the type's metrics).
MAIN_SCORE = {"STS": "cosine_spearman", "PairClassification": "max_ap", "Classification": "accuracy",
              "Clustering": "v_measure", "Reranking": "map", "Retrieval": "ndcg_at_10",
              "BitextMining": "f1"}  # fmt: skip


def _task_dir(root: Path, name: str, kind: str, lang: str = "en", **extra) -> Path:
    folder = root / lang / name
    folder.mkdir(parents=True)
    meta = {"name": name, "type": kind, "main_score": MAIN_SCORE.get(kind, "accuracy"), "languages": [lang], **extra}
    (folder / "task.json").write_text(json.dumps(meta), encoding="utf-8")
    return folder


def _load(root: Path, name: str):
    return build_mirror(discover_tasks(root)[name])


def test_bad_json_line_names_file_and_line(tmp_path: Path) -> None:
    folder = _task_dir(tmp_path, "MySTS", "STS")
    good = json.dumps({"sentence1": "a", "sentence2": "b", "score": 1.0})
    (folder / "test.jsonl").write_text(f"{good}\n{good}\n{{not json\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"MySTS/test\.jsonl:3: invalid JSON"):
        _load(tmp_path, "MySTS")


def test_missing_column_and_empty_text(tmp_path: Path) -> None:
    folder = _task_dir(tmp_path, "MySTS", "STS")
    (folder / "test.jsonl").write_text(json.dumps({"sentence1": "a", "score": 1}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"test\.jsonl:1: missing field 'sentence2'"):
        _load(tmp_path, "MySTS")
    (folder / "test.jsonl").write_text(
        json.dumps({"sentence1": "a", "sentence2": "b", "score": 1}) + "\n"
        + json.dumps({"sentence1": "  ", "sentence2": "b", "score": 1}) + "\n",
        encoding="utf-8",
    )
    with pytest.raises(DataError, match=r"test\.jsonl:2: field 'sentence1' is empty"):
        _load(tmp_path, "MySTS")


def test_non_utf8_names_line(tmp_path: Path) -> None:
    folder = _task_dir(tmp_path, "MyPairs", "PairClassification")
    good = json.dumps({"sentence1": "a", "sentence2": "b", "label": 1}).encode()
    (folder / "test.jsonl").write_bytes(good + b"\n" + b'{"sentence1": "\xff\xfe"}\n')
    with pytest.raises(DataError, match=r"test\.jsonl:2: not valid UTF-8"):
        _load(tmp_path, "MyPairs")


def test_qrels_pointing_to_unknown_ids(tmp_path: Path) -> None:
    folder = _task_dir(tmp_path, "MyRetrieval", "Retrieval")
    (folder / "corpus.jsonl").write_text(json.dumps({"_id": "d1", "title": "", "text": "doc"}) + "\n", "utf-8")
    (folder / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "query"}) + "\n", "utf-8")
    (folder / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td9\t1\n", "utf-8")
    with pytest.raises(DataError, match=r"qrels\.tsv:3: corpus-id 'd9' is not in corpus\.jsonl"):
        _load(tmp_path, "MyRetrieval")


def test_task_json_problems(tmp_path: Path) -> None:
    folder = _task_dir(tmp_path, "Oops", "NotAType")
    with pytest.raises(DataError, match=r"Oops/task\.json:1: type 'NotAType'"):
        discover_tasks(tmp_path)
    (folder / "task.json").write_text('{"name": "Other", "type": "STS", "main_score": "cosine_spearman"}',
                                      encoding="utf-8")  # fmt: skip
    with pytest.raises(DataError, match="differs from its folder name"):
        discover_tasks(tmp_path)


def test_symlinked_task_cannot_escape_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    _task_dir(outside, "Evil", "STS")
    root = tmp_path / "root"
    (root / "en").mkdir(parents=True)
    (root / "en" / "Evil").symlink_to(outside / "en" / "Evil")
    with pytest.raises(UsageError, match="outside the data root"):
        discover_tasks(root)


def test_real_mirror_rows_validate(shared_data: Path, tmp_path: Path) -> None:
    """Every evaluation file of the shared data passes validation (the checks are not too strict)."""
    for task in discover_tasks(shared_data).values():
        for filename in ("test.jsonl", "train.jsonl", "queries.jsonl", "corpus.jsonl"):
            if (task.path / filename).is_file():
                assert read_rows(task, filename), f"{task.name}/{filename} is empty"
    # and a copy with one broken row fails on exactly that row
    copy = tmp_path / "en" / "STS16"
    shutil.copytree(shared_data / "en" / "STS16", copy)
    lines = (copy / "test.jsonl").read_text(encoding="utf-8").splitlines()
    lines[41] = lines[41][:-5]
    (copy / "test.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"STS16/test\.jsonl:42: invalid JSON"):
        _load(tmp_path, "STS16")
