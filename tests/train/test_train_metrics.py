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
