"""The soft mask through FlexAttention equals the float-bias SDPA path (issue 16.2).

Forward on CPU through torch's unfused flex reference (the same score_mod and block mask the fused CUDA kernel
gets; a compiled CPU flex took 5 minutes to build on the shared 2-core machine). Gradients only where torch has a
FlexAttention backward: torch 2.13 raises NotImplementedError for it on CPU, so that test runs on CUDA (the device
script benchmarks/gpu_session.sh runs this file there) and skips here, saying why.

Tolerance: both paths add the same float32 log M (flex computes its (B, T) row table with the operations of
soft_mask_weights) and differ only in how the softmax is accumulated (flex: blockwise online softmax; SDPA's math
kernel: one pass). Each output is a convex combination of at most T = 300 values |v| < 5, so reordering the fp32
sums moves it by at most ~T * 2^-24 * 5 ~ 1e-4 in the worst case and ~sqrt(T) * 2^-24 * 5 ~ 5e-6 typically;
2e-5 sits between, and the model-level check (2 layers, RMSNorm'd) uses the same bound.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from conan_model import ConanConfig, ConanModel
from conan_model.flex import FlexMask, flex_available, soft_flex_mask
from conan_model.masks import attention_inputs, choose_backend, soft_mask_bias

pytestmark = pytest.mark.skipif(not flex_available(), reason="this torch has no torch.nn.attention.flex_attention")

ATOL = 2e-5
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
# 3 key blocks of 128, the last one cut at 300; full blocks only, a cut block, one token, an empty sample (= T)
LENGTHS = [300, 200, 129, 128, 1, 0]


def _padded(lengths: list[int], seq_len: int, vocab: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mask = (torch.arange(seq_len)[None, :] < torch.tensor(lengths)[:, None]).long()
    ids = torch.randint(4, vocab, (len(lengths), seq_len), generator=g).masked_fill(mask == 0, 0)
    return ids.to(DEVICE), mask.to(DEVICE)


@pytest.mark.parametrize("alpha", [1e-3, 0.5])
def test_flex_attention_equals_the_bias_path(alpha: float) -> None:
    torch.manual_seed(0)
    b, heads, kv_heads, t, d = len(LENGTHS), 4, 2, 300, 32
    q = torch.randn(b, heads, t, d, device=DEVICE)
    k, v = (torch.randn(b, kv_heads, t, d, device=DEVICE) for _ in range(2))
    lengths = torch.tensor(LENGTHS, device=DEVICE)
    flex = soft_flex_mask(lengths, t, alpha).attend(q, k, v)
    bias = soft_mask_bias(lengths, t, alpha, torch.float32)
    ref = F.scaled_dot_product_attention(q, k.repeat_interleave(2, 1), v.repeat_interleave(2, 1), attn_mask=bias)
    assert v.abs().max() < 5  # the bound the tolerance assumes
    torch.testing.assert_close(flex, ref, atol=ATOL, rtol=0)


def _models(backends: tuple[str, ...]) -> list[ConanModel]:
    torch.manual_seed(0)
    base = ConanModel(ConanConfig.preset("tiny", max_length=512)).to(DEVICE)
    out = []
    for backend in backends:
        model = ConanModel(base.config).to(DEVICE)
        model.load_state_dict(base.state_dict())
        model.attention_backend = backend
        out.append(model)
    return out


@pytest.mark.slow  # ~40 s wall here (8 s of CPU: dynamo traces each layer's flex call)
def test_model_hidden_states_equal_with_flex_and_bias() -> None:
    flex, sdpa = _models(("flex", "sdpa"))
    ids, mask = _padded(LENGTHS, 300, flex.config.vocab_size)
    with torch.no_grad():
        a = flex(ids, mask, mask_mode="soft", alpha=0.4)
        b = sdpa(ids, mask, mask_mode="soft", alpha=0.4)
    real = mask.bool() | (mask.sum(1) == 0)[:, None]
    torch.testing.assert_close(a[real], b[real], atol=ATOL, rtol=0)
    torch.testing.assert_close(a, b, atol=ATOL, rtol=0)  # padding rows too: both attend to the real keys


@pytest.mark.skipif(DEVICE.type == "cpu", reason="torch 2.13 has no FlexAttention backward on CPU "
                    "(NotImplementedError); benchmarks/gpu_session.sh runs this test on the GPU")  # fmt: skip
def test_gradients_equal_with_flex_and_bias() -> None:
    flex, sdpa = _models(("flex", "sdpa"))
    ids, mask = _padded(LENGTHS, 300, flex.config.vocab_size)
    for model in (flex, sdpa):
        model.embed(ids, mask, mask_mode="soft", alpha=0.4).pow(2).sum().backward()
    for (name, p), q in zip(flex.named_parameters(), sdpa.parameters(), strict=True):
        torch.testing.assert_close(p.grad, q.grad, atol=1e-4, rtol=1e-3, msg=name)


def test_backend_choice_lives_in_one_place() -> None:
    cpu = torch.device("cpu")
    assert choose_backend("auto", cpu, 8192) == "sdpa"  # no FlexAttention backward on CPU
    assert choose_backend("sdpa", cpu, 8192) == "sdpa" and choose_backend("flex", cpu, 16) == "flex"
    with pytest.raises(ValueError, match="unknown attention backend"):
        choose_backend("triton", cpu, 16)
    _, mask = _padded([5, 3], 5, 100)
    mask = mask.cpu()
    assert isinstance(attention_inputs(mask, "soft", 0.5, backend="flex")[0], FlexMask)
    assert isinstance(attention_inputs(mask, "soft", 0.5, backend="auto")[0], torch.Tensor)  # the bias
    # alpha 0 and 1 keep SDPA's exact fast paths whatever the backend: no bias, no score_mod
    assert attention_inputs(mask, "soft", 0.0, backend="flex") == (None, True)
    assert attention_inputs(mask, "bidirectional", backend="flex")[0].dtype == torch.bool
