"""Attention masks: causal, bidirectional and the paper's soft mask (Conan-v2 §3.2, Eq. 3-4).

Soft mask, for query row i and key column j (1-based) of a sample whose true length is l:

    M_ij = 1                       if j <= i           (past and self, unchanged)
    M_ij = min(alpha * l / i, 1)   if i < j <= l       (future tokens, grow with alpha)
    M_ij = 0                       if j > l            (padding keys: always hard-masked)

It enters attention as an additive log-bias on the pre-softmax scores (log 0 = -inf), which equals multiplying
the unnormalised attention weights by M before renormalising. Choices where the paper is silent, documented in
docs/conan_model.md: the l/i reading (the only one that ends bidirectional), additive log-bias, the true
per-sample length for l, and all layers/heads sharing one mask.

Right padding is assumed everywhere (real tokens first). Padding query rows attend to the real tokens (their
outputs are ignored by pooling and the LM loss); an all-padding sample attends to everything, so no row of
scores is ever all -inf and no NaN can leak into later layers.

Fast paths: causal uses SDPA's ``is_causal=True`` with no mask at all (with right padding a real token never
sees a later pad), bidirectional a boolean key mask (or none without padding). The float bias is built only
for a soft mask with 0 < alpha < 1; alpha = 0 and alpha = 1 take the causal and bidirectional paths.

Backend (``attention_inputs``, the one place it is chosen): a soft mask with 0 < alpha < 1 goes either through
SDPA with the (B, 1, T, T) float bias above ('sdpa') or through FlexAttention with a score_mod that adds log M
inside the kernel and a block mask built from the lengths (conan_model/flex.py: B·T memory instead of B·T²).
'auto' takes flex on CUDA from FLEX_MIN_LEN tokens up (where the bias starts to cost memory; below it the
bias path measured 1.00-1.01x the bidirectional step) and the bias path elsewhere: torch has no FlexAttention
backward on CPU.
"""

from __future__ import annotations

from typing import Any

import torch

from .config import ATTENTION_BACKENDS

MASK_MODES = ("causal", "bidirectional", "soft")
SCHEDULES = ("linear", "accelerating", "decelerating", "hard")
FLEX_MIN_LEN = 1024  # 'auto' uses FlexAttention for soft masks from this padded length up (CUDA only)


def soft_alpha(step: int, total_steps: int, schedule: str = "linear") -> float:
    """alpha(t) for step t of a stage of tau = total_steps steps (Eq. 3 and the App. C variants).

    'linear' t/tau (the paper's choice), 'accelerating' (t/tau)^2, 'decelerating' 1-(1-t/tau)^2, and 'hard':
    causal until the last step, then bidirectional: an abrupt switch at the end. The paper's "hard switch" (§3.2,
    the one it argues against) is bidirectional from the first step: the weak stage's fixed 'bidirectional'.
    """
    if total_steps <= 0:
        raise ValueError(f"total_steps must be positive, got {total_steps}")
    r = min(max(step / total_steps, 0.0), 1.0)
    if schedule == "linear":
        return r
    if schedule == "accelerating":
        return r * r
    if schedule == "decelerating":
        return 1.0 - (1.0 - r) ** 2
    if schedule == "hard":
        return 1.0 if r >= 1.0 else 0.0
    raise ValueError(f"unknown schedule {schedule!r}; choose from {SCHEDULES}")


def sequence_lengths(attention_mask: torch.Tensor) -> torch.Tensor:
    """True lengths (B,) of a right-padded 0/1 mask (B, T); raises on left or interior padding."""
    if attention_mask.dim() != 2:
        raise ValueError(f"attention_mask must be (batch, seq_len), got shape {tuple(attention_mask.shape)}")
    lengths = attention_mask.long().sum(dim=1)
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    if not torch.equal(attention_mask.bool(), positions[None, :] < lengths[:, None]):
        raise ValueError("attention_mask must be right-padded (ones first, then zeros)")
    return lengths


def soft_mask_weights(lengths: torch.Tensor, seq_len: int, alpha: float) -> torch.Tensor:
    """The multiplicative mask M of Eq. 4, float32 of shape (B, T, T), rows = queries, columns = keys.

    alpha = 0 gives the causal mask and alpha = 1 all ones over real tokens. A sample of length 0 is treated
    as length T (everything visible) so that its rows stay finite.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    device = lengths.device
    length = torch.where(lengths > 0, lengths, seq_len).to(torch.float32)[:, None, None]  # l of Eq. 4
    i = torch.arange(1, seq_len + 1, device=device, dtype=torch.float32)[None, :, None]
    j = torch.arange(1, seq_len + 1, device=device, dtype=torch.float32)[None, None, :]
    future = torch.clamp(alpha * length / i, max=1.0)
    weights = torch.where(j <= i, torch.ones_like(future), future)
    return weights * (j <= length)


def mask_weights(attention_mask: torch.Tensor, mode: str, alpha: float | None = None) -> torch.Tensor:
    """Reference (B, T, T) weight matrix of any mode: causal is the soft mask at alpha=0, bidirectional at 1.

    Rows of padding queries may differ from what the fast paths compute; only real rows are defined.
    """
    alpha = _check_mode(mode, alpha)
    return soft_mask_weights(sequence_lengths(attention_mask), attention_mask.shape[1], alpha)


def soft_mask_bias(lengths: torch.Tensor, seq_len: int, alpha: float, dtype: torch.dtype) -> torch.Tensor:
    """Additive attention bias log(M) of shape (B, 1, T, T), broadcast over heads."""
    return torch.log(soft_mask_weights(lengths, seq_len, alpha)).unsqueeze(1).to(dtype)


def sdpa_mask(
    attention_mask: torch.Tensor, mode: str, alpha: float | None = None, dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor | None, bool]:
    """(attn_mask, is_causal) for ``F.scaled_dot_product_attention``, picking the cheapest exact form.

    ``attention_mask`` is the right-padded (B, T) 0/1 padding mask. Built once per forward for all layers.
    """
    alpha = _check_mode(mode, alpha)
    lengths = sequence_lengths(attention_mask)
    if alpha == 0.0:
        return None, True
    seq_len = attention_mask.shape[1]
    same_length = bool((lengths == lengths[0]).all())
    if alpha == 1.0:
        if same_length and int(lengths[0]) == seq_len:
            return None, False
        keys = attention_mask.bool() | (lengths == 0)[:, None]
        return keys[:, None, None, :], False
    if same_length:  # one (1, 1, T, T) bias broadcast over the batch
        lengths = lengths[:1]
    return soft_mask_bias(lengths, seq_len, alpha, dtype), False


def choose_backend(backend: str, device: torch.device, seq_len: int) -> str:
    """'flex' or 'sdpa' for a soft mask with 0 < alpha < 1 (see the module docstring for 'auto')."""
    if backend not in ATTENTION_BACKENDS:
        raise ValueError(f"unknown attention backend {backend!r}; choose from {ATTENTION_BACKENDS}")
    if backend == "sdpa":
        return "sdpa"
    from .flex import flex_available

    if backend == "flex":
        if not flex_available():
            raise RuntimeError(f"attention backend 'flex' needs torch.nn.attention.flex_attention (torch >= 2.5 "
                               f"with dynamo); this is torch {torch.__version__}: use 'sdpa' or 'auto'")  # fmt: skip
        return "flex"
    return "flex" if device.type == "cuda" and seq_len >= FLEX_MIN_LEN and flex_available() else "sdpa"


def flex_training_problem(device: torch.device) -> str | None:
    """Why FlexAttention cannot train on ``device`` (None: it can): torch has its backward on CUDA only. The
    forward runs on the CPU too (inference); training died at the first soft step with a NotImplementedError."""
    if device.type == "cuda":
        return None
    return f"FlexAttention has no backward on {device.type} (torch {torch.__version__}), only on CUDA"


def attention_inputs(
    attention_mask: torch.Tensor,
    mode: str,
    alpha: float | None = None,
    dtype: torch.dtype = torch.float32,
    backend: str = "sdpa",
) -> tuple[Any, bool]:
    """(mask, is_causal) for the attention layers: SDPA's (see ``sdpa_mask``), or for a soft mask with
    0 < alpha < 1 and the flex backend a :class:`conan_model.flex.FlexMask` in place of the float bias."""
    value = _check_mode(mode, alpha)
    seq_len = attention_mask.shape[1]
    if 0.0 < value < 1.0 and choose_backend(backend, attention_mask.device, seq_len) == "flex":
        from .flex import soft_flex_mask

        return soft_flex_mask(sequence_lengths(attention_mask), seq_len, value), False
    return sdpa_mask(attention_mask, mode, alpha, dtype)


def _check_mode(mode: str, alpha: float | None) -> float:
    """Map a mode to its alpha: causal 0, bidirectional 1, soft the given alpha in [0, 1]."""
    if mode == "causal" or mode == "bidirectional":
        if alpha is not None:
            raise ValueError(f"alpha is only used with mask_mode='soft', not {mode!r}")
        return 0.0 if mode == "causal" else 1.0
    if mode == "soft":
        if alpha is None or not 0.0 <= float(alpha) <= 1.0:
            raise ValueError(f"mask_mode='soft' needs alpha in [0, 1], got {alpha}")
        return float(alpha)
    raise ValueError(f"unknown mask_mode {mode!r}; choose from {', '.join(map(repr, MASK_MODES))}")
