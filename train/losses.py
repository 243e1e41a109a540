"""Contrastive loss and the cross-rank gather that makes in-batch negatives span every device.

Convention for N processes (DDP or FSDP2): each rank gathers all ranks' embeddings with
:func:`gather_with_grad` (its own rows keep their gradient, the others are constants), computes the same
global loss, and back-propagates ``loss * world_size``. The backward on rank r then yields exactly the part of
the global gradient that flows through rank r's rows; DDP/FSDP average over ranks, so the multiplication by N
restores the sum, and the result equals one process holding the whole batch (up to float summation order).
The paper's Eq. 1 has no temperature; see WeakConfig.temperature for the default.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` (B, ...) from every rank in rank order -> (world*B, ...); only the local rows carry
    gradient. All ranks must pass the same shape. Without a process group this returns ``x``."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return x
    parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, x.detach().contiguous())
    parts[dist.get_rank()] = x
    return torch.cat(parts)


def info_nce(
    q: torch.Tensor,
    p: torch.Tensor,
    temperature: float = 0.05,
    extra_negatives: torch.Tensor | None = None,
    targets: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean InfoNCE (paper Eq. 1) over the rows of ``q`` with cosine similarity divided by ``temperature``.

    q (B, D) queries; p (P, D) candidates with P >= B, where ``p[targets[i]]`` (default ``p[i]``) is the
    positive of ``q[i]`` and every other row of p is an in-batch negative. ``extra_negatives`` adds more
    candidates: (N, D) shared by all queries, or (B, K, D) per query (hard negatives). Inputs are
    L2-normalised here, and the similarities are computed in float32 outside autocast.
    """
    if p.shape[0] < q.shape[0] and targets is None:
        raise ValueError(f"p has {p.shape[0]} rows, fewer than the {q.shape[0]} queries")
    with torch.autocast(q.device.type, enabled=False):
        q, p = F.normalize(q.float(), dim=-1), F.normalize(p.float(), dim=-1)
        logits = q @ p.T
        if extra_negatives is not None:
            n = F.normalize(extra_negatives.float(), dim=-1)
            if n.dim() == 2:
                extra = q @ n.T
            elif n.dim() == 3 and n.shape[0] == q.shape[0]:
                extra = torch.einsum("bd,bkd->bk", q, n)
            else:
                raise ValueError(f"extra_negatives must be (N, D) or (B={q.shape[0]}, K, D), got {tuple(n.shape)}")
            logits = torch.cat([logits, extra], dim=1)
        if targets is None:
            targets = torch.arange(q.shape[0], device=q.device)
        return F.cross_entropy(logits / temperature, targets)
