"""Why an ablation row of fewer than 30 items gets no verdict: the item bootstrap's coverage by number of items.

    python benchmarks/bench_item_floor.py [--trials 1000] [--n-boot 200] [--seeds 3]

Each trial draws m items' Δ from a known distribution of mean 0 (the true Δ is 0), the same for every seed (item
noise alone: no seed or item × seed noise, where the interval is the item bootstrap's alone), and runs them
through `reporting.ablation.paired_ci`, the reports' own path from per-item scores to a row. Coverage counts how
often the 95% CI holds 0; "excludes 0" how often a row would have shown an effect that is not there before the
floor (`reporting.ablation.MIN_ITEMS`), "verdict" how often it shows one now. Two shapes: normal Δ, as STS-like
or classification-like items whose change is spread over all of them, and sparse Δ (80% of items unchanged, 10%
+1, 10% −1), as retrieval queries whose rank moves for a few; and dev or test means of a few tasks of few items
each, normal Δ (`reporting.ablation.group`), whose floor is their smallest task's items. The bootstrap has no
small-sample correction (its sd is the plug-in one, its quantile z), so it covers less than 95% when m is small,
the more so for sparse Δ, and a mean of small tasks keeps each one's shortfall.
Fewer resamples than the reports' 1000 (--n-boot) make each se_items noisier, so coverage here errs low if
anything. Prints a table and writes benchmarks/results/bench_item_floor.json.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
from common import positive_int, run_main, write_report

from reporting.ablation import MIN_ITEMS, group, paired_ci

SIZES = (5, 10, 20, 30, 50, 100, 400)
GROUPS = ((3, 8), (4, 8), (3, 10), (2, 30))  # (tasks, items each) of a group mean


def draw(shape: str, m: int, rng: np.random.Generator) -> np.ndarray:
    """m items' Δ of mean 0 and sd 1 (sparse: sd √0.2)."""
    if shape == "normal":
        return rng.normal(0.0, 1.0, m)
    return rng.choice([-1.0, 0.0, 1.0], size=m, p=[0.1, 0.8, 0.1])


def case(shape: str, m: int, trials: int, n_boot: int, seeds: int, rng: np.random.Generator) -> dict:
    covered = excludes = shown = 0
    for _ in range(trials):
        deltas = draw(shape, m, rng)
        score: Callable[[np.ndarray], float] = lambda idx, d=deltas: float(d[idx].mean())  # noqa: E731
        pairs = [(lambda idx: 0.0, score)] * seeds
        row = paired_ci(pairs, m, float(deltas.mean()), n_boot, rng)
        covered += row["lo"] <= 0.0 <= row["hi"]
        excludes += not row["lo"] <= 0.0 <= row["hi"]
        shown += row["verdict"] in ("improves", "hurts")
    return {"shape": shape, "items": m, "trials": trials, "coverage": covered / trials,
            "excludes_zero": excludes / trials, "verdict_shown": shown / trials}  # fmt: skip


def group_case(tasks: int, m: int, trials: int, n_boot: int, seeds: int, rng: np.random.Generator) -> dict:
    """A mean over ``tasks`` tasks of ``m`` items each (normal Δ, each its own item set), through
    `reporting.ablation.group` as a report's dev or test mean."""
    covered = shown = 0
    for _ in range(trials):
        results = {}
        for t in range(tasks):
            deltas = draw("normal", m, rng)
            score: Callable[[np.ndarray], float] = lambda idx, d=deltas: float(d[idx].mean())  # noqa: E731
            pairs = [(lambda idx: 0.0, score)] * seeds
            row = paired_ci(pairs, m, float(deltas.mean()), n_boot, rng)
            results[f"T{t}"] = {"delta": float(deltas.mean()), **row, "keys": [str(i) for i in range(m)],
                                "unit": "pairs"}  # fmt: skip
        mean = group(results, n_boot, int(rng.integers(1 << 31)))
        covered += mean["lo"] <= 0.0 <= mean["hi"]
        shown += mean["verdict"] in ("improves", "hurts")
    return {"shape": f"mean of {tasks} tasks", "items": m, "tasks": tasks, "trials": trials,
            "coverage": covered / trials, "excludes_zero": 1 - covered / trials, "verdict_shown": shown / trials}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=positive_int, default=1000, help="simulated ablations per row")
    parser.add_argument("--n-boot", type=positive_int, default=200, help="item resamples per row (reports: 1000)")
    parser.add_argument("--seeds", type=positive_int, default=3, help="seeds per arm (one seed gives no verdict)")
    parser.add_argument("--rng-seed", type=int, default=0)
    args = parser.parse_args()
    start, rng = time.perf_counter(), np.random.default_rng(args.rng_seed)
    results = []
    for shape in ("normal", "sparse"):
        for m in SIZES:
            results.append(case(shape, m, args.trials, args.n_boot, args.seeds, rng))
            r = results[-1]
            print(f"{shape:6} {m:4} items: coverage {100 * r['coverage']:.1f}%", flush=True)
    for tasks, m in GROUPS:
        results.append(group_case(tasks, m, args.trials, args.n_boot, args.seeds, rng))
        r = results[-1]
        print(f"{tasks} tasks of {m:3} items: coverage {100 * r['coverage']:.1f}%", flush=True)
    rows = [[r["shape"], r["items"], f"{100 * r['coverage']:.1f}", f"{100 * r['excludes_zero']:.1f}",
             f"{100 * r['verdict_shown']:.1f}"] for r in results]  # fmt: skip
    write_report("bench_item_floor", rows, ["Δ shape", "items", "coverage % (true Δ = 0)",
                                            "CI excludes 0 %", "verdict shown % (floor at "
                                            f"{MIN_ITEMS})"], {  # fmt: skip
        "trials": args.trials, "n_boot": args.n_boot, "seeds": args.seeds, "rng_seed": args.rng_seed,
        "min_items": MIN_ITEMS, "results": results, "seconds": round(time.perf_counter() - start, 1)})


if __name__ == "__main__":
    run_main(main)
