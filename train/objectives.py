"""Stage-4 losses: retrieval InfoNCE with hard negatives, classification-as-retrieval, CoSENT, and MRL.

All functions take L2-normalised embeddings, so a dot product is the cosine similarity. The paper gives no
temperatures (notes §8.3): InfoNCE uses τ = 0.05 and CoSENT a scale of 20 (τ = 0.05), both configurable.
MRL applies a task loss to every re-normalised prefix of the ONE forward pass's embeddings.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from conan_model import truncate_and_normalize

from .losses import counted_candidates

DEFAULT_TEMPERATURE = 0.05
DEFAULT_COSENT_SCALE = 20.0


def retrieval_info_nce(
    q: torch.Tensor,
    p: torch.Tensor,
    negatives: torch.Tensor | None = None,
    temperature: float = DEFAULT_TEMPERATURE,
    *,
    neg_mask: torch.Tensor | None = None,
    targets: torch.Tensor | None = None,
    in_batch: bool = True,
    shared_negatives: bool = True,
    pos_ids: torch.Tensor | None = None,
    neg_ids: torch.Tensor | None = None,
    query_ids: torch.Tensor | None = None,
    query_groups: torch.Tensor | None = None,
    pos_groups: torch.Tensor | None = None,
    neg_groups: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """InfoNCE of each query against its positive, its own K hard negatives and, with ``in_batch``, the other
    rows' positives and (``shared_negatives``) their hard negatives.

    q (B, D); p (P, D) and negatives (P, K, D) with P >= B (P > B when gathered from other ranks); ``targets``
    (B,) is the row of each query's positive (default ``arange(B)``). ``neg_mask`` (P, K) marks real negatives
    (empty slots are masked out). ``pos_ids`` (P,) / ``neg_ids`` (P, K) / ``query_ids`` (P,) are text ids of
    the rows' positives, hard negatives and queries: with them a candidate that is a positive of query i's
    query text (its own positive's duplicates, and the positives of other rows with the same query text) is
    masked, and a text held by several candidate columns counts once, the query's own slot copy first
    (``train.losses.counted_candidates``). A row's own hard negatives need no same-query rule: its pool excludes
    every text the rows label as a match of its query (``train.mining.labelled_matches``), and another row's
    negatives equal to a positive of i's query text are caught by the text rule. ``query_groups`` (P,) /
    ``pos_groups`` (P,) / ``neg_groups`` (P, K) are the labelled-match groups of the rows' queries and of the
    candidates (-1: none): another row's positive or hard negative in query i's group is masked too. This reduces to
    ``train.losses.info_nce``: K = 0 is its in-batch loss; ``shared_negatives=False`` is its per-query
    ``extra_negatives`` (B, K, D); ``shared_negatives=True`` its shared (N, D) form.

    Returns the mean loss and the detached (B, K) cosine of each query with its own hard negatives (NaN for
    empty slots): the numbers DHNM reads, so the rule costs no extra forward pass.
    """
    b, n_pos, device = q.shape[0], p.shape[0], q.device
    targets = torch.arange(b, device=device) if targets is None else targets
    sims = q @ p.T  # (B, P): positive columns first, so the label of query i is targets[i]
    valid = torch.ones_like(sims, dtype=torch.bool) if in_batch else F.one_hot(targets, n_pos).bool()
    prefer = torch.zeros_like(valid)
    k = 0 if negatives is None else negatives.shape[1]
    if k:
        if neg_mask is None:
            neg_mask = torch.ones(negatives.shape[:2], dtype=torch.bool, device=device)
        neg_sims = q @ negatives.reshape(n_pos * k, -1).T  # (B, P*K); column j*K + s = row j's slot s
        own_cols = targets[:, None] * k + torch.arange(k, device=device)
        own = torch.zeros_like(neg_sims, dtype=torch.bool).scatter_(1, own_cols, True)
        neg_valid = neg_mask.reshape(1, -1).expand(b, -1).clone()
        if not (in_batch and shared_negatives):
            neg_valid &= own
        sims, valid, prefer = (torch.cat(x, dim=1) for x in ((sims, neg_sims), (valid, neg_valid), (prefer, own)))
    if pos_ids is not None:
        if k and neg_ids is None:
            raise ValueError("pos_ids needs neg_ids when there are hard negatives")
        groups = pos_groups if pos_groups is None or not k else torch.cat([pos_groups, neg_groups.reshape(-1)])
        valid = counted_candidates(pos_ids, targets, query_ids, neg_ids if k else None, valid, prefer, query_groups,
                                   groups)  # fmt: skip
    elif query_ids is not None or pos_groups is not None:
        raise ValueError("query_ids needs pos_ids (the texts of the candidates), and so do the groups")
    logits = (sims / temperature).masked_fill(~valid, float("-inf"))
    loss = F.cross_entropy(logits.float(), targets)
    if not k:
        return loss, None
    own_cos = neg_sims.detach().gather(1, own_cols).float()
    return loss, own_cos.masked_fill(~neg_mask[targets], float("nan"))


def label_info_nce(
    q: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor, temperature: float = DEFAULT_TEMPERATURE,
    allowed: torch.Tensor | None = None,
) -> torch.Tensor:
    """Classification as retrieval: each text's positive is its label text's embedding, the other label texts
    of the batch (L, D) are its negatives. ``targets`` (B,) indexes ``labels``; ``allowed`` (B, L), where given,
    keeps each text to the labels of its own label set (the others are not its negatives)."""
    logits = (q @ labels.T).float() / temperature
    if allowed is not None:
        logits = logits.masked_fill(~allowed, float("-inf"))
    return F.cross_entropy(logits, targets)


def cosent(
    e1: torch.Tensor, e2: torch.Tensor, scores: torch.Tensor, scale: float = DEFAULT_COSENT_SCALE
) -> torch.Tensor:
    """CoSENT (notes Eq. 2): log(1 + Σ_{s_a > s_b} exp(scale · (cos_b − cos_a))) over pairs of pairs whose gold
    scores are ordered; scale = 1/τ. A batch with no ordered pair gives 0 (with a gradient path)."""
    cos = (e1 * e2).sum(-1).float() * scale
    diff = cos[None, :] - cos[:, None]  # diff[a, b] = cos_b - cos_a
    ordered = scores[:, None] > scores[None, :]
    terms = torch.cat([diff.new_zeros(1), diff[ordered]])
    return torch.logsumexp(terms, dim=0)


def mrl_loss(
    loss_fn: Callable[..., torch.Tensor | tuple[torch.Tensor, Any]],
    embeddings: Sequence[torch.Tensor | None],
    dims: Sequence[int],
    weights: Sequence[float] | None = None,
) -> tuple[torch.Tensor, dict[int, float], Any]:
    """Weighted mean over ``dims`` of ``loss_fn`` applied to the re-normalised prefixes of ``embeddings``.

    ``loss_fn`` takes the truncated tensors positionally (None passes through) and returns a loss or
    ``(loss, aux)``. The weighted mean (not sum) keeps the loss scale independent of how many dims are used.
    Returns the total, each dim's loss (float, for logging) and the aux of the largest dim (e.g. the full-width
    hard-negative cosines that DHNM reads).
    """
    weights = [1.0] * len(dims) if weights is None else list(weights)
    if len(weights) != len(dims):
        raise ValueError(f"{len(weights)} MRL weights for {len(dims)} dims")
    total, per_dim, aux = None, {}, None
    for dim, weight in sorted(zip(dims, weights, strict=True)):
        views = [None if e is None else truncate_and_normalize(e, dim) for e in embeddings]
        out = loss_fn(*views)
        loss, aux = out if isinstance(out, tuple) else (out, None)
        per_dim[dim] = float(loss.detach())
        total = loss * weight if total is None else total + loss * weight
    return total / sum(weights), per_dim, aux
