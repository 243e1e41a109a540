"""Pooling hidden states into one vector per text, L2 normalisation and Matryoshka truncation.

The paper does not say how it pools. Mean pooling is our default: once attention is bidirectional every token
sees the whole text, and averaging uses all of them (robust to truncation and to the trailing special token).
Last-token pooling (the state of the last real token, usually <eos>) is kept for causal-style ablations.
Both assume right padding.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .config import POOLINGS


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """float32 average of the real tokens' states; an all-padding row gives zeros."""
    weights = attention_mask.to(torch.float32).unsqueeze(-1)
    summed = (hidden.float() * weights).sum(dim=1)
    return summed / weights.sum(dim=1).clamp(min=1.0)


def last_token_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """float32 state of each row's last real token (index length - 1, right padding); an all-padding row gives
    zeros, as in mean_pool (a padding position's state depends on the batch, so it is no embedding)."""
    lengths = attention_mask.long().sum(dim=1)
    last = hidden[torch.arange(hidden.shape[0], device=hidden.device), (lengths - 1).clamp(min=0)].float()
    return last * (lengths > 0).unsqueeze(-1)


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, method: str = "mean") -> torch.Tensor:
    """(B, T, H) hidden states -> (B, H) float32 with the named pooling ('mean' or 'last')."""
    if method == "mean":
        return mean_pool(hidden, attention_mask)
    if method == "last":
        return last_token_pool(hidden, attention_mask)
    raise ValueError(f"unknown pooling {method!r}; choose from {POOLINGS}")


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    """Unit-length rows (a zero row stays zero), so a dot product is the cosine similarity."""
    return F.normalize(x, p=2.0, dim=-1)


def truncate_and_normalize(emb: np.ndarray | torch.Tensor, dim: int) -> np.ndarray | torch.Tensor:
    """Matryoshka view: the first ``dim`` components re-normalised to unit length (numpy or torch)."""
    if not 0 < dim <= emb.shape[-1]:
        raise ValueError(f"dim must be in [1, {emb.shape[-1]}], got {dim}")
    if isinstance(emb, torch.Tensor):
        return l2_normalize(emb[..., :dim])
    head = np.asarray(emb[..., :dim])
    norms = np.linalg.norm(head, axis=-1, keepdims=True)
    return head / np.maximum(norms, 1e-12).astype(head.dtype)
