"""Tiny real tasks (rows cut from ../shared/data) and three real minilm runs on them, shared by the report tests.

Runs: `base` (batch 64, MRL dim 64 with its per-item outputs), `batch8` (same model, batch 8, no embedding cache:
embeddings equal up to float noise; three tasks) and `short` (--max-length 4: a real, clearly worse model). About
450 texts per run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

TASKS = ["TinySTS", "TinyPairs", "TinyRerank", "TinyRetrieval", "TinyClassification", "TinyClustering", "TinyBitext"]
BATCH8_TASKS = ["TinySTS", "TinyRerank", "TinyClassification"]  # pairs, queries, items: the slow run stays short


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write_task(root: Path, name: str, source: Path, meta: dict, files: dict[str, list[dict]]) -> None:
    folder = root / "en" / name
    folder.mkdir(parents=True)
    base = json.loads((source / "task.json").read_text(encoding="utf-8"))
    spec = {k: base[k] for k in ("languages", "eval_split", "source", "license") if k in base}
    spec.update(name=name, mteb_equivalent=None, sampling=f"test fixture: rows cut from {source.name}", **meta)
    (folder / "task.json").write_text(json.dumps(spec), encoding="utf-8")
    for filename, rows in files.items():
        text = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n"
        (folder / filename).write_text(text, encoding="utf-8")


def build_tiny_root(shared: Path, root: Path) -> Path:
    """A data root with one small task per type, cut from the real shared data."""
    en = shared / "en"
    _write_task(root, "TinySTS", en / "STS16", {"type": "STS", "main_score": "cosine_spearman",
                "score_range": [0, 5]}, {"test.jsonl": _rows(en / "STS16" / "test.jsonl")[:80]})  # fmt: skip
    _write_task(root, "TinyPairs", en / "MSRPC", {"type": "PairClassification", "main_score": "max_ap"},
                {"test.jsonl": _rows(en / "MSRPC" / "test.jsonl")[:60]})  # fmt: skip
    rerank = [r for r in _rows(en / "TrecQAReranking" / "test.jsonl") if r["positive"] and r["negative"]]
    rerank = sorted(rerank, key=lambda r: len(r["positive"]) + len(r["negative"]))[:12]  # short candidate lists
    _write_task(root, "TinyRerank", en / "TrecQAReranking", {"type": "Reranking", "main_score": "map"},
                {"test.jsonl": rerank})  # fmt: skip
    emotion = en / "EmotionClassification"
    _write_task(root, "TinyClassification", emotion, {"type": "Classification", "main_score": "accuracy"},
                {"train.jsonl": _rows(emotion / "train.jsonl")[:60], "test.jsonl": _rows(emotion / "test.jsonl")[:40]})
    _write_task(root, "TinyClustering", en / "AGNewsClusteringS2S", {"type": "Clustering", "main_score": "v_measure"},
                {"test.jsonl": _rows(en / "AGNewsClusteringS2S" / "test.jsonl")[:40]})  # fmt: skip
    tatoeba = shared / "multi" / "TatoebaDeuEng"
    _write_task(root, "TinyBitext", tatoeba, {"type": "BitextMining", "main_score": "f1"},
                {"test.jsonl": _rows(tatoeba / "test.jsonl")[:30]})  # fmt: skip
    scifact = en / "SciFact"
    queries = _rows(scifact / "queries.jsonl")
    qrels = [line.split("\t") for line in (scifact / "qrels.tsv").read_text().splitlines()[1:] if line.strip()]
    keep_q = {q["_id"] for q in queries[:60]} & {r[0] for r in qrels}
    keep_q = set(sorted(keep_q)[:10])
    rel = [r for r in qrels if r[0] in keep_q]
    rel_docs = {r[1] for r in rel}
    corpus = _rows(scifact / "corpus.jsonl")
    docs = [d for d in corpus if d["_id"] in rel_docs] + [d for d in corpus if d["_id"] not in rel_docs][:30]
    _write_task(root, "TinyRetrieval", scifact, {"type": "Retrieval", "main_score": "ndcg_at_10"},
                {"corpus.jsonl": docs, "queries.jsonl": [q for q in queries if q["_id"] in keep_q]})  # fmt: skip
    (root / "en" / "TinyRetrieval" / "qrels.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join("\t".join(r) + "\n" for r in rel), encoding="utf-8")  # fmt: skip
    shutil.copy(shared / "README.md", root / "README.md")
    return root


@pytest.fixture(scope="session")
def tiny_root(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_root(shared_data, tmp_path_factory.mktemp("tiny-data"))


@pytest.fixture(scope="session")
def tiny_runs(tiny_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Three real runs of minilm on the tiny tasks: base, same model at another batch size, and a degraded one."""
    from harness.cli import main

    out = tmp_path_factory.mktemp("runs")
    variants = {
        "base": (TASKS, ["--batch-size", "64", "--dims", "64,full", "--dim-predictions"]),
        "batch8": (BATCH8_TASKS, ["--batch-size", "8", "--no-cache"]),  # really re-encoded at batch 8
        "short": (TASKS, ["--batch-size", "64", "--max-length", "4"]),
    }
    for name, (tasks, extra) in variants.items():
        argv = ["run", "--tasks", ",".join(tasks), "--model", "minilm", "--data-dir", str(tiny_root),
                "--out", str(out), "--run-name", name, "--no-progress", *extra]  # fmt: skip
        assert main(argv) == 0, name
    return {name: out / name for name in variants}
