import pytest
import torch

from conan_model import PRESETS, ConanConfig, ConanModel


def test_paper_preset_has_exact_parameter_count_on_meta():
    cfg = ConanConfig.preset("conan-v2-1.4b")
    with torch.device("meta"):
        model = ConanModel(cfg)
    assert model.num_parameters() == 1_499_205_120
    assert cfg.num_parameters() == 1_499_205_120
    assert (cfg.head_dim, cfg.n_kv_heads * cfg.head_dim, cfg.embed_dim) == (112, 896, 3584)
    assert all(not m.bias for m in model.modules() if isinstance(m, torch.nn.Linear))


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_closed_form_count_matches_module(name):
    cfg = ConanConfig.preset(name)
    with torch.device("meta"):
        assert ConanModel(cfg).num_parameters() == cfg.num_parameters()


def test_roundtrip_and_overrides():
    cfg = ConanConfig.preset("tiny", vocab_size=1000, prompts={"query": "q: "})
    assert cfg.vocab_size == 1000
    assert ConanConfig.from_dict(cfg.to_dict()) == cfg


def test_bad_configs_fail_loudly():
    with pytest.raises(KeyError):
        ConanConfig.preset("huge")
    with pytest.raises(ValueError, match="unknown config keys"):
        ConanConfig.from_dict({**ConanConfig().to_dict(), "n_experts": 8})
    with pytest.raises(ValueError, match="hidden_size 128 is not divisible by n_heads 3"):
        ConanConfig(n_heads=3, n_kv_heads=3)  # n_kv_heads too: the default 2 was refused first, by another check
    with pytest.raises(ValueError, match="n_heads 4 is not divisible by n_kv_heads 3"):
        ConanConfig(n_heads=4, n_kv_heads=3)
    with pytest.raises(ValueError):
        ConanConfig(pooling="cls")
