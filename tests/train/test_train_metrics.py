"""train/metrics.py's MFU pieces: the bf16 peak looked up by device name, and the FLOPs counted per token."""

from __future__ import annotations

import pytest
import torch

from conan_model import ConanConfig
from train import metrics

CARDS = {  # torch.cuda.get_device_name() strings of the cards, and their dense bf16 peak (train/metrics.py: source)
    "NVIDIA H100 80GB HBM3": 989.0,
    "NVIDIA H100 PCIe": 756.0,
    "NVIDIA H100 NVL": 835.0,
    "NVIDIA H200": 989.0,
    "NVIDIA H200 NVL": 835.0,
    "NVIDIA H800": 989.0,
    "NVIDIA H800 PCIe": 756.0,
    "NVIDIA H20": 148.0,
    "NVIDIA A100-SXM4-80GB": 312.0,
}


@pytest.mark.parametrize("name", CARDS)
def test_peak_is_the_cards_own_entry(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The PCIe and NVL cards are not matched by their SXM sibling's generic name ('H200' in 'H200 NVL')."""
    monkeypatch.setattr(metrics, "device_name", lambda device: name)
    assert metrics.peak_tflops(torch.device("cuda")) == CARDS[name]
    assert metrics.peak_tflops(torch.device("cuda"), 123.0) == 123.0  # a configured peak wins


def test_no_peak_on_cpu() -> None:
    assert metrics.peak_tflops(torch.device("cpu")) is None


def test_attention_flops_use_the_heads_width_and_halve_for_causal() -> None:
    """12·layers·(heads·head_dim)·context per token (PaLM), not hidden_size: an imported model may set head_dim so
    that heads·head_dim != hidden; ``causal_half`` halves exactly that term."""
    base = ConanConfig.preset("tiny")
    wide = ConanConfig.preset("tiny", head_dim=2 * base.hidden_size // base.n_heads)  # heads·head_dim = 2·hidden
    context = 100.0
    attention = 12.0 * wide.n_layers * wide.n_heads * wide.head_dim * context
    assert wide.n_heads * wide.head_dim == 2 * wide.hidden_size
    dense = metrics.flops_per_token(wide, context, lm_head=False)
    half = metrics.flops_per_token(wide, context, lm_head=False, causal_half=True)
    assert dense - half == pytest.approx(attention / 2)
    assert dense - metrics.flops_per_token(wide, 0.0, lm_head=False) == pytest.approx(attention)
    # the presets have heads·head_dim == hidden: their figure is unchanged
    preset_attention = metrics.flops_per_token(base, context, True) - metrics.flops_per_token(base, 0.0, True)
    assert preset_attention == pytest.approx(12.0 * base.n_layers * base.hidden_size * context)


def test_an_encoders_position_table_is_a_lookup_not_a_matmul() -> None:
    """multilingual-e5-small's shape: 6 FLOPs per token per weight of its matrices, biases and norms (PaLM's 6N),
    none for its token and position tables. Before (audit, stop 47) the 512 × 384 learned positions were charged
    as weights: MFU 0.9% too high on an encoder."""
    e5 = ConanConfig(arch="bert", vocab_size=250037, hidden_size=384, n_layers=12, n_heads=12, n_kv_heads=12,
                     head_dim=32, ffn_size=1536, max_length=512, tie_word_embeddings=True)  # fmt: skip
    h, f = 384, 1536
    layer = 4 * (h * h + h) + 2 * h * f + f + h + 4 * h  # q, k, v, o with biases; up/down with biases; 2 LayerNorms
    non_table = 12 * layer + 2 * h  # the embeddings' LayerNorm
    assert metrics.flops_per_token(e5, 0.0, lm_head=False) == pytest.approx(6.0 * non_table)
