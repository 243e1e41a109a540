import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from conan_model import ConanEncoder, ConanModel, load_config, load_pretrained, save_pretrained
from conan_model.checkpoint import CHECKPOINT_FILES


@pytest.fixture()
def texts(sample_texts):
    return sorted(set(sample_texts), key=len)


@pytest.fixture()
def checkpoint(tmp_path, tiny_model, tokenizer):
    return save_pretrained(tiny_model, tokenizer, tmp_path / "ckpt")


def test_save_writes_hf_layout_without_temporaries(checkpoint):
    assert sorted(p.name for p in checkpoint.iterdir()) == sorted(CHECKPOINT_FILES)
    assert json.loads((checkpoint / "config.json").read_text())["model_type"] == "conan"


def test_save_load_gives_identical_embeddings(checkpoint, tiny_model, tokenizer, texts):
    enc_mem = ConanEncoder(tiny_model, tokenizer)
    enc = ConanEncoder.from_pretrained(checkpoint, device="cpu")
    assert enc.config == tiny_model.config and enc.embed_dim == 128 and enc.max_length == 64
    np.testing.assert_array_equal(enc.encode(texts), enc_mem.encode(texts))
    model, _ = load_pretrained(checkpoint, dtype=torch.bfloat16)
    assert model.embed_tokens.weight.dtype == torch.bfloat16 and not model.training


def test_encode_keeps_input_order_and_batching_does_not_matter(checkpoint, texts):
    enc = ConanEncoder.from_pretrained(checkpoint, device="cpu")
    texts = texts[::-1] + ["", "x"]
    full = enc.encode(texts, batch_size=3)
    assert full.dtype == np.float32 and full.shape == (len(texts), enc.embed_dim)
    assert np.allclose(np.linalg.norm(full, axis=1), 1.0, atol=1e-5)
    singles = np.concatenate([enc.encode([t]) for t in texts])
    np.testing.assert_allclose(full, singles, atol=1e-5)
    raw = enc.encode(texts[:2], normalize=False)
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)
    assert enc.encode([]).shape == (0, enc.embed_dim)
    with pytest.raises(TypeError):
        enc.encode("not a list")


def test_count_tokens_roles_and_truncation(tmp_path, tiny_model, tokenizer, texts):
    tiny_model.config.prompts = {"query": "query: "}
    enc = ConanEncoder.from_pretrained(save_pretrained(tiny_model, tokenizer, tmp_path / "p"), device="cpu")
    plain, query = enc.count_tokens(["A short one."]), enc.count_tokens(["A short one."], role="query")
    assert query[0] > plain[0] > 2
    assert enc.count_tokens([texts[-1] * 20])[0] == enc.max_length
    assert enc.count_tokens([texts[-1]], max_length=5) == [5]
    doc = enc.encode(["A short one."], role="document")  # no document prompt configured: plain text
    np.testing.assert_array_equal(doc, enc.encode(["A short one."]))
    assert not np.allclose(enc.encode(["A short one."], role="query"), doc)


def test_fingerprint_is_stable_and_tracks_weights(tmp_path, checkpoint, tiny_model, tokenizer):
    fp = ConanEncoder.from_pretrained(checkpoint, device="cpu").fingerprint
    assert len(fp) == 64 and fp == ConanEncoder.from_pretrained(checkpoint, device="cpu").fingerprint
    with torch.no_grad():
        tiny_model.norm.weight.mul_(2)
    other = save_pretrained(tiny_model, tokenizer, tmp_path / "other")
    assert ConanEncoder.from_pretrained(other, device="cpu").fingerprint != fp
    with pytest.raises(ValueError):
        _ = ConanEncoder(tiny_model, tokenizer).fingerprint


def test_load_errors_are_clear(tmp_path, checkpoint):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_pretrained(tmp_path / "nope")
    (checkpoint / "tokenizer.json").unlink()
    with pytest.raises(FileNotFoundError, match="missing tokenizer.json"):
        load_pretrained(checkpoint)


def test_a_missing_config_file_is_called_a_file(tmp_path):
    """load_config takes a folder or its config.json; before stop 63 a missing config.json was called a missing
    "checkpoint folder"."""
    with pytest.raises(FileNotFoundError, match=f"^config file {tmp_path / 'config.json'} does not exist$"):
        load_config(tmp_path / "config.json")
    with pytest.raises(FileNotFoundError, match=f"^checkpoint folder {tmp_path / 'nope'} does not exist$"):
        load_config(tmp_path / "nope")


def test_config_weight_mismatch_is_reported(checkpoint):
    cfg = json.loads((checkpoint / "config.json").read_text())
    (checkpoint / "config.json").write_text(json.dumps({**cfg, "ffn_size": 256}))
    with pytest.raises(ValueError, match="gate_proj.weight: shape"):
        load_pretrained(checkpoint)
    (checkpoint / "config.json").write_text(json.dumps({**cfg, "ffn_size": 384}))
    state = load_file(checkpoint / "model.safetensors")
    state.pop("norm.weight")
    save_file(state, checkpoint / "model.safetensors")
    with pytest.raises(ValueError, match="missing norm.weight"):
        load_pretrained(checkpoint)


def test_cannot_save_meta_model(tmp_path, tiny_model, tokenizer):
    with torch.device("meta"):
        meta = ConanModel(tiny_model.config)
    with pytest.raises(ValueError, match="meta"):
        save_pretrained(meta, tokenizer, tmp_path / "m")


@pytest.mark.slow
def test_compiled_encoder_matches_eager(checkpoint, texts, needs_inductor):
    eager = ConanEncoder.from_pretrained(checkpoint, device="cpu").encode(texts, batch_size=2)
    compiled = ConanEncoder.from_pretrained(checkpoint, device="cpu", compile=True)
    assert compiled.model._compiled_call_impl is not None
    np.testing.assert_allclose(compiled.encode(texts, batch_size=2), eager, atol=1e-5)
