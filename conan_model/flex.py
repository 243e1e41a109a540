"""The soft mask with FlexAttention: log M_ij added inside the attention kernel, no (B, T, T) bias in memory.

For a sample of true length l (0 counts as T, as in masks.py), 0-based query q and key k:

    k >= l            masked (padding key)                       <- block mask: whole padding blocks skipped
    k <= q            score                                      (M = 1: past, self)
    q < k < l         score + log(min(alpha * l / (q + 1), 1))   (M < 1: the future, Eq. 4)

The per-row term log(min(alpha * l / i, 1)) is a (B, T) float32 table computed with the very operations of
``masks.soft_mask_weights``, so in float32 the kernel adds the same numbers the bias path adds; memory is B·T, not
B·T². The block mask comes straight from the lengths (full blocks below l, one partial block at l, none above):
B·(T/128)² small integers, never a dense mask.

FlexAttention needs ``torch.compile`` to be fast (eagerly it materialises the scores); on CUDA ``attend`` uses a
compiled ``flex_attention`` unless the caller is already being compiled. On CPU torch has no backward for it, so
'auto' never picks it there (``masks.choose_backend``); a forced CPU forward runs torch's unfused reference
(no C++ build), which is what the CPU tests compare with the bias path.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import torch

BLOCK = 128  # FlexAttention's default tile: the block mask's granularity


@functools.cache
def flex_available() -> bool:
    """True when this torch has ``torch.nn.attention.flex_attention`` (2.5+) and dynamo works here."""
    try:
        from torch.nn.attention import flex_attention  # noqa: F401
    except ImportError:
        return False
    return bool(torch._dynamo.is_dynamo_supported())


# torch.compile's options for the fused kernel, recorded by benchmarks/gpu_speed.py: torch's automatic dynamic shapes
# (the first shape compiles a static kernel, the second one dynamic-shape kernel that serves every later length).
# Not dynamic=False: training pads each batch to its own length, so a static kernel per length would recompile at
# each new length and, past dynamo's recompile limit (8 by default), fall back to the eager reference, which
# materialises the T x T scores. A benchmark that wants each T's static kernel resets dynamo between lengths.
FLEX_COMPILE: dict[str, Any] = {"dynamic": None}


@functools.cache
def _compiled_flex() -> Any:
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention, **FLEX_COMPILE)


@dataclass
class FlexMask:
    """What the attention layers need to apply the soft mask through FlexAttention (built once per forward)."""

    score_mod: Any
    block_mask: Any

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """softmax(q k^T / sqrt(d) + log M) v for (B, heads, T, d) q and (B, kv_heads, T, d) k, v (GQA native)."""
        from torch.nn.attention.flex_attention import flex_attention

        fused = q.device.type == "cuda" and not torch.compiler.is_compiling()  # inside a compile: traced anyway
        fn = _compiled_flex() if fused else flex_attention
        return fn(q, k, v, score_mod=self.score_mod, block_mask=self.block_mask,
                  enable_gqa=k.shape[1] != q.shape[1])  # fmt: skip


def soft_flex_mask(lengths: torch.Tensor, seq_len: int, alpha: float) -> FlexMask:
    """The soft mask of (B,) true lengths at ``alpha`` in (0, 1), as a FlexAttention score_mod + block mask."""
    from torch.nn.attention.flex_attention import BlockMask

    if not 0.0 < alpha < 1.0:
        raise ValueError(f"the flex soft mask is for 0 < alpha < 1 (0 and 1 take SDPA fast paths), got {alpha}")
    device = lengths.device
    real = torch.where(lengths > 0, lengths, seq_len)  # l of Eq. 4; an empty sample sees everything
    length = real.to(torch.float32)[:, None]
    i = torch.arange(1, seq_len + 1, device=device, dtype=torch.float32)[None, :]
    row_bias = torch.log(torch.clamp(alpha * length / i, max=1.0))  # (B, T): log M_ij for every future j
    kv_len = real.to(torch.int32)

    def score_mod(score: torch.Tensor, b: torch.Tensor, h: torch.Tensor, q_idx: torch.Tensor,
                  kv_idx: torch.Tensor) -> torch.Tensor:  # fmt: skip
        return torch.where(kv_idx <= q_idx, score, score + row_bias[b, q_idx])

    def mask_mod(b: torch.Tensor, h: torch.Tensor, q_idx: torch.Tensor, kv_idx: torch.Tensor) -> torch.Tensor:
        return kv_idx < kv_len[b]

    n = math.ceil(seq_len / BLOCK)
    batch = lengths.shape[0]
    full = (kv_len // BLOCK).to(torch.int32)  # key blocks entirely real: no mask_mod needed there
    partial = (kv_len % BLOCK != 0).to(torch.int32)  # the block holding the last real key, if it is cut
    blocks = torch.arange(n, device=device, dtype=torch.int32)
    kv_num = partial[:, None, None].expand(batch, 1, n).contiguous()
    kv_idx = torch.zeros(batch, 1, n, n, device=device, dtype=torch.int32)
    kv_idx[..., 0] = torch.clamp(full, max=n - 1)[:, None, None]
    full_num = full[:, None, None].expand(batch, 1, n).contiguous()
    full_idx = blocks.expand(batch, 1, n, n).contiguous()
    block_mask = BlockMask.from_kv_blocks(kv_num, kv_idx, full_num, full_idx, BLOCK_SIZE=BLOCK, mask_mod=mask_mod,
                                          seq_lengths=(seq_len, seq_len))  # fmt: skip
    return FlexMask(score_mod, block_mask)
