"""ConanConfig covers the Llama/Qwen2 family (explicit head_dim, QKV bias, untied head, own special ids,
inference attention) and still reads the config.json files written before those keys existed."""

from __future__ import annotations

import json

import pytest
import torch

from conan_model import ConanConfig, ConanModel, load_config
from conan_model.importing import hf_config, load_config_for
from conan_model.pretrained import source_path
from harness.cli import main


@pytest.mark.parametrize("family", [
    dict(head_dim=32, n_heads=4, hidden_size=64),  # head_dim * heads != hidden (Qwen3/Gemma-style)
    dict(qkv_bias=True, tie_word_embeddings=False),  # Qwen2
    dict(qkv_bias=True, tie_word_embeddings=True, n_kv_heads=1),
])  # fmt: skip
def test_closed_form_count_matches_module_for_family_options(family):
    cfg = ConanConfig(**{**ConanConfig.preset("tiny").__dict__, **family})
    with torch.device("meta"):
        model = ConanModel(cfg)
    assert model.num_parameters() == cfg.num_parameters()
    assert hasattr(model, "lm_head") == (not cfg.tie_word_embeddings)


def test_old_config_json_without_family_keys_loads(tmp_path):
    """A config.json from before head_dim/qkv_bias/tie_word_embeddings/attention existed is the same model."""
    old = {k: v for k, v in ConanConfig.preset("tiny").to_dict().items()
           if k not in ("head_dim", "qkv_bias", "tie_word_embeddings", "attention")}  # fmt: skip
    (tmp_path / "config.json").write_text(json.dumps(old), encoding="utf-8")
    cfg = load_config(tmp_path)
    assert cfg == ConanConfig.preset("tiny") and cfg.head_dim == 32 and cfg.attention == "bidirectional"


def test_family_options_are_checked():
    with pytest.raises(ValueError, match="attention must be one of"):
        ConanConfig(attention="sliding")
    with pytest.raises(ValueError, match="eos_token_id 5000 is outside the vocabulary"):
        ConanConfig(eos_token_id=5000)


def test_smollm2_gguf_header_gives_the_published_shape(smollm2):
    cfg = load_config_for(f"gguf:{source_path('smollm2-135m')}")
    shape = (cfg.n_layers, cfg.hidden_size, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.ffn_size, cfg.vocab_size)
    assert shape == (30, 576, 9, 3, 64, 1536, 49152)
    assert (cfg.rope_theta, cfg.tie_word_embeddings, cfg.qkv_bias) == (1e5, True, False)
    assert cfg.norm_eps == pytest.approx(1e-5, rel=1e-6)  # stored as float32 in the header
    assert (cfg.bos_token_id, cfg.eos_token_id, cfg.attention, cfg.pooling) == (None, 2, "causal", "last")
    assert cfg.num_parameters() == 134_515_008
    assert load_config(smollm2) == cfg


def test_hf_config_and_cli_import_write_the_chosen_inference(qwen2_folder, tmp_path, capsys):
    folder, ref = qwen2_folder
    cfg = hf_config(folder)
    assert (cfg.qkv_bias, cfg.tie_word_embeddings, cfg.head_dim, cfg.rope_theta) == (True, False, 16, 1e4)
    out = tmp_path / "bidir"
    args = ["models", "import", f"hf:{folder}", "--out", str(out), "--attention", "bidirectional", "--pooling", "mean"]
    assert main(args) == 0
    saved = load_config(out)
    assert (saved.attention, saved.pooling) == ("bidirectional", "mean")
    assert f"{sum(p.numel() for p in ref.parameters()):,} parameters" in capsys.readouterr().out
