"""The ablation report's Δ and 95% CI recomputed by hand from real per-item predictions, with numpy and the formula
docs/reports.md states (no helper of reporting/ or scipy): a check of the arithmetic independent of the code.

Three real minilm runs on tiny real tasks (tests/reporting/conftest.py) stand in for trained seeds: reference
{0: base, 1: batch8, 2: base}, candidate {0: short, 1: short, 2: batch8}, so the three per-seed Δ differ. The
tasks are the two of every run whose main score numpy alone recomputes: TinyClassification (accuracy, the mean
over experiments of each item's hit) and TinySTS (Spearman of gold and cosine, average ranks for ties).
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest

TASKS = ["TinyClassification", "TinySTS"]
N_BOOT, BOOT_SEED = 400, 5
Z_975 = 1.959963984540054  # the normal 97.5% quantile


def t_975_two_df() -> float:
    """Student's t 97.5% quantile on 2 degrees of freedom, closed form: (2p − 1) / √(2p(1 − p))."""
    p = 0.975
    return (2 * p - 1) / np.sqrt(2 * p * (1 - p))


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, tied values sharing their mean rank (a bootstrap draws items twice: ties are the rule)."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.r_[0, np.flatnonzero(np.diff(ordered)) + 1]
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values))
    for start, end in zip(starts, ends, strict=True):
        ranks[order[start:end]] = (start + end + 1) / 2
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.corrcoef(average_ranks(x), average_ranks(y))[0, 1])


def item_scorer(run: Path, task: str):
    """The run's main score on the items at given positions, from its predictions and gold files."""
    preds = json.loads((run / "predictions" / f"{task}_predictions.json").read_text(encoding="utf-8"))
    gold = json.loads((run / "predictions" / f"{task}_gold.json").read_text(encoding="utf-8"))["gold"]
    out = preds["default"]["test"]
    if task == "TinySTS":
        sims, truth = np.asarray(out["cosine_scores"], dtype=float), np.asarray(gold, dtype=float)
        return lambda idx: spearman(truth[idx], sims[idx])
    hits = np.mean([np.asarray([str(v) for v in experiment]) == np.asarray(gold) for experiment in out], axis=0)
    return lambda idx: float(hits[idx].mean())


def test_the_reported_ci_is_the_formula_on_real_per_item_scores(tiny_runs, tmp_path) -> None:
    from reporting.ablation import build

    ref = {0: tiny_runs["base"], 1: tiny_runs["batch8"], 2: tiny_runs["base"]}
    cand = {0: tiny_runs["short"], 1: tiny_runs["short"], 2: tiny_runs["batch8"]}
    seeds, t, by_task = [0, 1, 2], t_975_two_df(), {}
    for task in TASKS:
        ref_score = {s: item_scorer(ref[s], task) for s in seeds}
        cand_score = {s: item_scorer(cand[s], task) for s in seeds}
        m = len(json.loads((ref[0] / "predictions" / f"{task}_gold.json").read_text(encoding="utf-8"))["gold"])
        everything = np.arange(m)
        for s in seeds:  # the hand scorers reproduce every run's recorded main score
            for run, score in ((ref[s], ref_score[s]), (cand[s], cand_score[s])):
                recorded = json.loads((run / "run.json").read_text(encoding="utf-8"))["tasks"][task]["main_score"]
                assert score(everything) == pytest.approx(recorded, abs=1e-6), (run.name, task)
        per_seed = np.asarray([cand_score[s](everything) - ref_score[s](everything) for s in seeds])
        rng = np.random.default_rng([BOOT_SEED, zlib.crc32(task.encode())])  # the report's documented draws
        resamples = np.empty(N_BOOT)
        for b in range(N_BOOT):
            idx = rng.integers(0, m, m)
            resamples[b] = np.mean([cand_score[s](idx) - ref_score[s](idx) for s in seeds])
        by_task[task] = (per_seed, resamples)

    def by_formula(per_seed: np.ndarray, resamples: np.ndarray) -> tuple[float, float, float]:
        """Δ ± √((t·se_seeds)² + (z·se_items)²)."""
        delta = float(per_seed.mean())
        se_seeds, se_items = per_seed.std(ddof=1) / np.sqrt(len(per_seed)), resamples.std(ddof=1)
        half = np.sqrt((t * se_seeds) ** 2 + (Z_975 * se_items) ** 2)
        return delta, delta - half, delta + half

    runs = {"ref": {s: {"eval": str(ref[s]), "final": str(tmp_path)} for s in seeds},
            "cand": {s: {"eval": str(cand[s]), "final": str(tmp_path)} for s in seeds}}  # fmt: skip
    cfg = {"name": "by-hand", "seeds": seeds, "reference": "ref", "n_boot": N_BOOT, "bootstrap_seed": BOOT_SEED,
           "eval": {}}  # fmt: skip
    rows = build(cfg, tmp_path / "a.toml", {"done": {}}, runs, [], TASKS)["comparisons"]["cand"]
    for task in TASKS:
        delta, lo, hi = by_formula(*by_task[task])
        assert (rows[task]["delta"], rows[task]["lo"], rows[task]["hi"]) == pytest.approx((delta, lo, hi), abs=1e-6)
        assert rows[task]["lo"] < rows[task]["hi"] and rows[task]["se_seeds"] > 0  # the three seeds differ
    # the test mean: per seed and per resample the mean over the two tasks (their items are resampled apart)
    mean_delta, mean_lo, mean_hi = by_formula(*(np.mean([by_task[task][k] for task in TASKS], axis=0) for k in (0, 1)))
    assert (rows["test mean"]["delta"], rows["test mean"]["lo"], rows["test mean"]["hi"]) == pytest.approx(
        (mean_delta, mean_lo, mean_hi), abs=1e-6)  # fmt: skip
