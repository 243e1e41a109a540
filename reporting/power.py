"""How many seeds a replication of an ablation needs: `harness ablate CONFIG --plan`, read from its report.json.

A near miss (a CI that just reaches 0) asks whether more seeds would show the effect, and how many. The report
holds what the answer needs, per arm and row: Δ, se_seeds and se_items at its n seeds (reporting.ablation's
``interval``). With n' seeds on the same test tasks:

- se_seeds becomes se_seeds·√(n/n'): the sd of the per-seed Δ stays, its mean has n' terms;
- se_items stays: the test items are the same. Its item × seed part would shrink with more seeds, so keeping it
  overstates the half-width for n' > n (a plan errs towards more seeds) and understates it for n' < n;
- the estimate's sd is √(se_seeds'² + se_items²), the half-width ``half_width`` (t on n' − 1 degrees of freedom)
  of the seeds' sd as it will be measured, a χ² draw around the true one; ``power`` averages the chance that the CI
  excludes 0 over that draw: the power at a true Δ.

z·se_items is a floor no number of seeds lowers: where it reaches |Δ| only more test items (tasks) help. Power is
shown at the observed Δ and at half of it, since an observed Δ that just missed (or just made) the threshold
overstates the true one more often than not; `--delta` names another. benchmarks/bench_ci_coverage.py compares
this power with the rate simulated ablations show an effect at.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats
from tabulate import tabulate

from harness.errors import UsageError
from harness.runs import read_json
from reporting.ablation import LEVEL, half_width

SEEDS = (2, 3, 5, 8, 10, 15, 20, 30, 50)  # the table's rows, with the report's own n
MOST = 200  # seeds_needed looks no further
QUANTILES = 400  # of the seed variance's χ² distribution, averaged over in ``power``


def projected(se_seeds: float, n: int, n_new: int) -> float:
    """se_seeds at ``n_new`` seeds, from a row measured at ``n``: the per-seed sd stays, the mean has n_new terms."""
    return se_seeds * math.sqrt(n / n_new)


def power(delta: float, se_seeds: float, se_items: float, n: int) -> float:
    """Probability that the interval of ``n`` seeds excludes 0 at a true ``delta``, with these true se_seeds and
    se_items. The estimate is N(delta, se_seeds² + se_items²); the half-width's seed part is random, the sd of n
    per-seed Δ (σ²·χ²(n − 1)/(n − 1), independent of their mean), so the probability is averaged over its
    quantiles: exact for normal seed noise and a known se_items, where a fixed half-width gets 3 seeds' power
    wrong by up to 0.3 (tests/reporting/test_rep_power.py)."""
    sd = math.hypot(se_seeds, se_items)
    if sd == 0:
        return float(delta != 0)
    quantiles = stats.chi2.ppf((np.arange(QUANTILES) + 0.5) / QUANTILES, n - 1) / (n - 1)
    halves = half_width(se_seeds * np.sqrt(quantiles), se_items, n)
    excluded = stats.norm.cdf((abs(delta) - halves) / sd) + stats.norm.cdf((-abs(delta) - halves) / sd)
    return float(np.mean(excluded))


def seeds_needed(delta: float, se_seeds: float, se_items: float, n: int, target: float) -> int | None:
    """The fewest seeds (2..MOST) whose projected power at ``delta`` reaches ``target``; None when none does."""
    for n_new in range(2, MOST + 1):
        if power(delta, projected(se_seeds, n, n_new), se_items, n_new) >= target:
            return n_new
    return None


def item_floor(se_items: float) -> float:
    """The half-width the items alone give: what infinitely many seeds would leave."""
    return float(stats.norm.ppf(1 - LEVEL / 2)) * se_items


def plan_rows(report: dict[str, Any], arm: str | None, task: str, delta: float | None,
              target: float) -> list[dict[str, Any]]:  # fmt: skip
    """Per arm compared (or ``arm``), the row ``task`` ("test mean" or a test task) planned for: the Δs power is
    shown at, the item floor, the projected half-width and power per seed count, and the seeds ``target`` needs."""
    comparisons = report["comparisons"]
    arms = [arm] if arm else list(comparisons)
    unknown = [a for a in arms if a not in comparisons]
    if unknown:
        raise UsageError(f"--arm {unknown[0]}: not an arm compared in this report (arms: {', '.join(comparisons)}; "
                         f"{report['reference']} is the reference)")  # fmt: skip
    n = len(report["seeds"])
    plans = []
    for name in arms:
        if task not in [*report["test"], "test mean"] or task not in comparisons[name]:  # dev rows are no evidence
            rows = ", ".join(t for t in comparisons[name] if t in [*report["test"], "test mean"])
            raise UsageError(f"--task {task}: not a test row of this report (test rows: {rows})")
        row = comparisons[name][task]
        if n < 2 or not row.get("se_seeds") or row.get("se_items") is None:
            raise UsageError(f"{name}, {task}: no seed spread in this report ({n} seed(s) or not tested): a plan needs "
                             "the sd over at least 2 seeds")  # fmt: skip
        deltas = [delta] if delta is not None else [row["delta"], row["delta"] / 2]  # after a miss, plan on less
        table = []
        for n_new in sorted({*SEEDS, n}):
            se_new = projected(row["se_seeds"], n, n_new)
            table.append({"seeds": n_new, "half": float(half_width(se_new, row["se_items"], n_new)),
                          "power": [power(d, se_new, row["se_items"], n_new) for d in deltas]})  # fmt: skip
        needed = [seeds_needed(d, row["se_seeds"], row["se_items"], n, target) for d in deltas]
        plans.append({"arm": name, "task": task, "row": row, "seeds": n, "deltas": deltas,
                      "floor": item_floor(row["se_items"]), "table": table, "needed": needed})  # fmt: skip
    return plans


def render_plan(report: dict[str, Any], plans: list[dict[str, Any]], target: float) -> str:
    lines = [f"# Seeds for a replication of {report['name']} (against {report['reference']})", "",
             "Projected from the report's se_seeds and se_items (reporting/power.py): the same test tasks, new seeds; "
             "the per-seed sd as measured, the item noise as measured (it does not shrink with seeds here, so the "
             "projection errs towards more seeds). An observed Δ overstates the true one more often than not after "
             "a near miss: plan on the smaller Δ.", ""]  # fmt: skip
    for p in plans:
        r = p["row"]
        spread = r["se_seeds"] * math.sqrt(p["seeds"])  # the sd of the per-seed Δ
        lines += [f"## {p['arm']}, {p['task']}: Δ {100 * r['delta']:+.2f} [{100 * r['lo']:+.2f}, "
                  f"{100 * r['hi']:+.2f}] with {p['seeds']} seeds", "",
                  f"- se_seeds {100 * r['se_seeds']:.3f} (sd of the per-seed Δ {100 * spread:.3f}), se_items "
                  f"{100 * r['se_items']:.3f}: the items alone give ±{100 * p['floor']:.2f}, which no number of seeds "
                  "lowers"]  # fmt: skip
        for d, need in zip(p["deltas"], p["needed"], strict=True):
            limit = power(d, 0.0, r["se_items"], MOST)  # unlimited seeds: the items' noise alone
            said = (f"{need} seeds" if need is not None else
                    f"none up to {MOST} seeds; with unlimited seeds {100 * limit:.0f}% (the items' noise alone): "
                    "more test items or tasks needed")  # fmt: skip
            lines.append(f"- {100 * target:.0f}% power at Δ {100 * d:+.2f}: {said}")
        headers = ["seeds", "CI half-width", *(f"power at Δ {100 * d:+.2f}" for d in p["deltas"])]
        rows = [[t["seeds"], f"±{100 * t['half']:.2f}", *(f"{100 * q:.0f}%" for q in t["power"])] for t in p["table"]]
        lines += ["", tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True), ""]
    return "\n".join(lines)


def run_plan(path: Path, source: Path, arm: str | None, task: str, delta: float | None, target: float) -> int:
    """Print the plan of the report ``source`` (``path``: the report.json itself or the config that wrote it)."""
    if not 0 < target < 1:
        raise UsageError(f"--power {target}: must be between 0 and 1 (exclusive)")
    if delta is not None and (not math.isfinite(delta) or delta == 0):
        raise UsageError(f"--delta {delta}: must be a finite, non-zero number of points")
    if not source.is_file():
        if source == path:
            raise UsageError(f"{path}: no such report (the report.json `harness ablate` writes)")
        raise UsageError(f"{path}: no report at {source}: run `harness ablate {path}` first (a plan reads its CIs)")
    report = read_json(source)
    plans = plan_rows(report, arm, task, None if delta is None else delta / 100, target)
    print(render_plan(report, plans, target))
    return 0
