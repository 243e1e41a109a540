"""The paired bootstrap over items that `harness regress` and `harness ablate` share: both arms (or runs) resampled
with the same item indices, so the resamples' spread is the items' noise in Δ, not each side's own."""

from __future__ import annotations

from typing import Any

import numpy as np

from reporting.items import NotTestable


def paired_bootstrap(score_base: Any, score_cand: Any, pos_base: np.ndarray, pos_cand: np.ndarray, n_boot: int,
                     rng: np.random.Generator) -> np.ndarray:  # fmt: skip
    """Deltas (candidate − baseline) of the main score over n_boot resamples of the shared items."""
    pair = (lambda idx: score_base(pos_base[idx]), lambda idx: score_cand(pos_cand[idx]))
    return item_resamples([pair], len(pos_base), n_boot, rng)


def item_resamples(pairs: list[tuple[Any, Any]], m: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """The mean over seeds of Δ (candidate − baseline) under a paired bootstrap of the m shared items, seeds held
    fixed: the same resampled items for every seed and both arms. ``pairs[s]`` = (baseline, candidate) score
    functions of item positions. Seeds are not resampled: reporting/ablation.py ``interval`` covers them."""
    return seed_resamples(pairs, m, n_boot, rng).mean(axis=1)


def seed_resamples(pairs: list[tuple[Any, Any]], m: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``item_resamples`` before the mean over seeds: (n_boot, seeds), each seed's Δ on the same resampled items.
    How the seeds' Δ co-vary over the resamples splits the items' noise into the items' own and item × seed
    noise (reporting/ablation.py ``item_seed_variance``)."""
    out = np.empty((n_boot, len(pairs)))
    for b in range(n_boot):
        idx = rng.integers(0, m, m)
        out[b] = [cand(idx) - base(idx) for base, cand in pairs]
    return out


def finite_resamples(resamples: np.ndarray) -> np.ndarray:
    """The resamples on which the metric is defined (a correlation of a constant resample, an AP without a
    positive: NaN), so one undefined resample does not void the CI; raises NotTestable when fewer than half are,
    as a CI from the rest would describe other item sets than the task's."""
    finite = resamples[np.isfinite(resamples)]
    if 2 * len(finite) < len(resamples):
        raise NotTestable("the metric is undefined on most resamples (too few items or one class)")
    return finite


def verdict(delta: float, lo: float, hi: float, min_effect: float) -> str:
    """Significant when the CI excludes 0 and the change is at least min_effect (0–1 scale)."""
    if hi < 0 and -delta >= min_effect:
        return "regressed"
    if lo > 0 and delta >= min_effect:
        return "improved"
    return "within noise"
