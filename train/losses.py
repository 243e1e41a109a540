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


def counted_candidates(
    pos_ids: torch.Tensor,
    targets: torch.Tensor,
    query_ids: torch.Tensor | None = None,
    other_ids: torch.Tensor | None = None,
    valid: torch.Tensor | None = None,
    prefer: torch.Tensor | None = None,
    query_groups: torch.Tensor | None = None,
    column_groups: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B, M) bool: the candidate columns query i counts once false negatives and repeated texts are removed.

    Columns are the P rows' positives (text ids ``pos_ids`` (P,)) then ``other_ids`` (any shape, flattened:
    e.g. the hard negatives (P, K)); query i's positive is column ``targets[i]``. The paper says nothing on
    either point, so this is the standard rule: (1) a text that is a positive of query i is never its negative,
    where i's positives are the positives of every row whose query text (``query_ids`` (P,)) equals i's, and
    the query's own text (without ``query_ids``: row ``targets[i]``'s positive alone); its own target column
    always counts. (2) A text held by several
    columns counts once: the first counted column in column order, or the first one ``prefer`` (B, M) marks
    (a query's own hard-negative slot), so a rule that depends only on the column layout keeps one copy, the
    same on every rank. ``valid`` (B, M) are the columns a query may see at all (empty slots, own-only modes).
    (3) With ``column_groups`` (M,) and ``query_groups`` (P,), each text's group among the texts the training
    data labels as matches (``train.mining.labelled_matches``: a query's connected component over the rows'
    (query, positive) pairs; -1 for a text in none), a column in query i's group is masked too: a text the data
    calls a match of i's query, held by another row as its positive or hard negative (row j = (b, c) beside row
    i = (a, b): c is a's match, not its negative).
    """
    if query_ids is not None and query_ids.shape != pos_ids.shape:
        raise ValueError(f"query_ids {tuple(query_ids.shape)} must have the shape of pos_ids {tuple(pos_ids.shape)}")
    ids = pos_ids if other_ids is None else torch.cat([pos_ids, other_ids.reshape(-1)])
    n_pos, m, b, device = pos_ids.shape[0], ids.shape[0], targets.shape[0], ids.device
    values, inverse = torch.unique(ids, return_inverse=True)
    groups = inverse.expand(b, m)  # text group of each column, the same for every query
    same = F.one_hot(targets, n_pos).bool() if query_ids is None else query_ids[None, :] == query_ids[targets, None]
    gold = torch.zeros(b, values.shape[0], dtype=torch.long, device=device)
    gold = gold.scatter_add_(1, groups[:, :n_pos], same.long()) > 0  # (B, texts): positives of i's query text
    keep = ~gold.gather(1, groups)
    if query_ids is not None:  # the query's own text as a candidate (paraphrase pairs (a, b) and (b, a))
        keep &= ids[None, :] != query_ids[targets, None]
    if column_groups is not None:  # (3) a labelled match of the query that is not one of its query text's positives
        if query_groups is None or column_groups.shape != ids.shape or query_groups.shape != pos_ids.shape:
            raise ValueError("groups must give each column's group and query_groups each row's query's")
        in_group = column_groups[None, :] == query_groups[targets, None]
        keep &= ~(in_group & (column_groups[None, :] >= 0))
    keep[torch.arange(b, device=device), targets] = True
    if valid is not None:
        keep &= valid
    order = torch.arange(m, device=device).expand(b, m)
    if prefer is not None:
        order = order - m * prefer.long()
    order = order.masked_fill(~keep, 2 * m)
    first = torch.full((b, values.shape[0]), 2 * m, dtype=torch.long, device=device)
    first = first.scatter_reduce(1, groups, order, "amin")
    return keep & (order == first.gather(1, groups))


def info_nce(
    q: torch.Tensor,
    p: torch.Tensor,
    temperature: float = 0.05,
    extra_negatives: torch.Tensor | None = None,
    targets: torch.Tensor | None = None,
    *,
    pos_ids: torch.Tensor | None = None,
    query_ids: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean InfoNCE (paper Eq. 1) over the rows of ``q`` with cosine similarity divided by ``temperature``.

    q (B, D) queries; p (P, D) candidates with P >= B, where ``p[targets[i]]`` (default ``p[i]``) is the
    positive of ``q[i]`` and every other row of p is an in-batch negative. ``extra_negatives`` adds more
    candidates: (N, D) shared by all queries, or (B, K, D) per query (hard negatives). Inputs are
    L2-normalised here, and the similarities are computed in float32 outside autocast.

    ``pos_ids`` (P,) and ``query_ids`` (P,) are text ids of p's rows and of their queries: with them, an
    in-batch candidate that is a positive of query i's query text, or a repeat of a text already counted, is
    masked (:func:`counted_candidates`; the target column never is). Extra negatives are not masked.
    """
    if p.shape[0] < q.shape[0] and targets is None:
        raise ValueError(f"p has {p.shape[0]} rows, fewer than the {q.shape[0]} queries")
    if query_ids is not None and pos_ids is None:
        raise ValueError("query_ids needs pos_ids (the texts of the candidates)")
    with torch.autocast(q.device.type, enabled=False):
        q, p = F.normalize(q.float(), dim=-1), F.normalize(p.float(), dim=-1)
        logits = q @ p.T
        if targets is None:
            targets = torch.arange(q.shape[0], device=q.device)
        if pos_ids is not None:
            logits = logits.masked_fill(~counted_candidates(pos_ids, targets, query_ids), float("-inf"))
        if extra_negatives is not None:
            n = F.normalize(extra_negatives.float(), dim=-1)
            if n.dim() == 2:
                extra = q @ n.T
            elif n.dim() == 3 and n.shape[0] == q.shape[0]:
                extra = torch.einsum("bd,bkd->bk", q, n)
            else:
                raise ValueError(f"extra_negatives must be (N, D) or (B={q.shape[0]}, K, D), got {tuple(n.shape)}")
            logits = torch.cat([logits, extra], dim=1)
        return F.cross_entropy(logits / temperature, targets)
