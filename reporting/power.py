"""How many seeds a replication of an ablation needs: `harness ablate CONFIG --plan`, read from its report.json.

A near miss (a CI that just reaches 0) asks whether more seeds would show the effect, and how many. The report
holds what the answer needs, per arm and row: Δ, se_seeds and se_items at its n seeds (reporting.ablation's
``interval``). Per item and seed Δ_is = Δ + a_i + b_s + e_is: the item's own response (a), the training run's (b)
and the run's idiosyncratic response to the item (e). Over N items, se_seeds² ≈ (σ_b² + σ_e²/N)/n and
se_items² ≈ (σ_a² + σ_e²/n)/N. With n' seeds on the same test tasks:

- se_seeds becomes se_seeds·√(n/n') (exact in this model);
- se_items² loses the item × seed part σ_e²/(nN) times (1 − n/n'). Reports written since stop 40 measure that
  part (``se_item_seed``, from how the seeds' Δ co-vary over the item resamples: reporting.ablation's
  ``item_seed_variance``), and the *estimate* uses it. As se_seeds² holds that part too, a se_seeds measured
  below it (a sd from few seeds scatters; the split is measured to a few percent) is raised to it. An older
  report does not separate it from the items' own; in expectation it is at most min(se_seeds², se_items²): there
  the *estimate* keeps se_items (none of it item × seed: the items alone limit the CI) and a *hopeful* projection
  removes the most it can (more seeds keep narrowing it);
- the pilot's seed sd has n − 1 degrees of freedom: the *cautious* projection takes its one-sided 80% upper
  confidence bound instead of the estimate (a sd from 3 seeds is below the true one 63% of the time).

``power`` is the chance that the CI excludes 0 at a true Δ, averaged over the χ² draw of the replication's own
seed sd. Power is shown at the observed Δ and at half of it, a rule of thumb: an effect selected for being near
the threshold is likely to be overstated; `--delta` names another. tests/reporting/test_rep_power.py and
benchmarks/bench_ci_coverage.py compare the projections with simulated ablations.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from harness.errors import UsageError
from harness.runs import md_table, read_json
from reporting.ablation import half_width

SEEDS = (3, 5, 8, 10, 15, 20, 30, 50)  # the table's rows from the report's own n up
MOST = 200  # seeds_needed looks no further
QUANTILES = 400  # of the seed variance's χ² distribution, averaged over in ``power``
UPPER = 0.8  # the one-sided confidence of the cautious projection's bound on the seeds' sd
SCENARIOS = ("estimate", "hopeful", "cautious")  # "hopeful" only where a report does not measure item × seed
NO_EFFECT = ("the observed Δ is within one sd of 0: no effect to plan for at it; give --delta (points) for the effect "
             "a replication should find")


def project(se_seeds: float, se_items: float, n: int, n_new: int, item_seed: float = 0.0,
            seed_scale: float = 1.0) -> tuple[float, float, float]:  # fmt: skip
    """(se_seeds, se_items, item × seed part) at ``n_new`` seeds from a row measured at ``n``; ``item_seed``: the
    item × seed part of se_items² at n seeds (it scales with 1/n, and se_seeds² holds it too); ``seed_scale``: a
    factor on the seeds' sd (its confidence bound)."""
    shared = item_seed * n / n_new
    se_seeds = max(se_seeds, math.sqrt(item_seed))  # se_seeds² holds the item × seed part too (module docstring)
    return (seed_scale * se_seeds * math.sqrt(n / n_new), math.sqrt(max(se_items**2 - item_seed + shared, 0.0)),
            shared)  # fmt: skip


def scenario(name: str, se_seeds: float, se_items: float, n: int,
             se_item_seed: float | None = None) -> dict[str, float]:  # fmt: skip
    """The ``project`` keywords of a named scenario (module docstring); ``se_item_seed``: the report's measured
    item × seed part of se_items, which the estimate and the cautious projection then use."""
    measured = {} if se_item_seed is None else {"item_seed": se_item_seed**2}
    if name == "hopeful":
        return {"item_seed": min(se_seeds, se_items) ** 2}
    if name == "cautious":
        return {**measured, "seed_scale": math.sqrt((n - 1) / float(stats.chi2.ppf(1 - UPPER, n - 1)))}
    return measured


def scenarios(row: dict[str, Any]) -> tuple[str, ...]:
    """The scenarios a row is planned under: without the hopeful bound where its item × seed part is measured."""
    return SCENARIOS if row.get("se_item_seed") is None else ("estimate", "cautious")


def power(delta: float, se_seeds: float, se_items: float, n: int, shared: float = 0.0) -> float:
    """Probability that the interval of ``n`` seeds excludes 0 at a true ``delta``, with these true se_seeds and
    se_items, of which ``shared`` (a variance) is item × seed noise counted in both. The estimate is N(delta,
    se_seeds² + se_items² − shared); the half-width's seed part is random, the sd of n per-seed Δ
    (σ²·χ²(n − 1)/(n − 1), independent of their mean), so the probability is averaged over its quantiles: exact
    for normal seed noise and a known se_items, where a fixed half-width gets 3 seeds' power wrong by up to 0.3
    (tests/reporting/test_rep_power.py)."""
    sd = math.sqrt(max(se_seeds**2 + se_items**2 - shared, 0.0))
    if sd == 0:
        return float(delta != 0)
    quantiles = stats.chi2.ppf((np.arange(QUANTILES) + 0.5) / QUANTILES, n - 1) / (n - 1)
    halves = half_width(se_seeds * np.sqrt(quantiles), se_items, n)
    excluded = stats.norm.cdf((abs(delta) - halves) / sd) + stats.norm.cdf((-abs(delta) - halves) / sd)
    return float(np.mean(excluded))


def projected_power(delta: float, se_seeds: float, se_items: float, n: int, n_new: int, name: str = "estimate",
                    se_item_seed: float | None = None) -> float:  # fmt: skip
    """``power`` at ``n_new`` seeds under the scenario ``name``, from a row measured at ``n`` seeds."""
    kwargs = scenario(name, se_seeds, se_items, n, se_item_seed)
    se_s, se_i, shared = project(se_seeds, se_items, n, n_new, **kwargs)
    return power(delta, se_s, se_i, n_new, shared)


def seeds_needed(delta: float, se_seeds: float, se_items: float, n: int, target: float, name: str = "estimate",
                 se_item_seed: float | None = None) -> int | None:  # fmt: skip
    """The fewest seeds (2..MOST) whose projected power at ``delta`` reaches ``target``; None when none does."""
    for n_new in range(2, MOST + 1):
        if projected_power(delta, se_seeds, se_items, n, n_new, name, se_item_seed) >= target:
            return n_new
    return None


def item_floor(se_items: float) -> float:
    """The half-width the items alone give: what infinitely many seeds would leave."""
    return float(half_width(0.0, se_items, 2))


def plan_rows(report: dict[str, Any], arm: str | None, task: str | None, delta: float | None,
              target: float) -> list[dict[str, Any]]:  # fmt: skip
    """Per arm compared (or ``arm``), the row ``task`` ("test mean" or a test task; None: --task not given, the test
    mean) planned for: the Δs power is shown at, the item floor, the projected half-width and power per seed count,
    and the seeds ``target`` needs per scenario. An arm whose row has no seed spread, or is not tested, is kept
    with its ``skip`` reason."""
    # an error names --task only when it was given (a walk: a one-seed report's `--plan` read "--task test mean:
    # no arm … can be planned for")
    said = f"--task {task}" if task is not None else "test mean"
    task = "test mean" if task is None else task
    comparisons = report["comparisons"]
    arms = [arm] if arm else list(comparisons)
    unknown = [a for a in arms if a not in comparisons]
    if unknown:
        raise UsageError(f"--arm {unknown[0]}: not an arm compared in this report (arms: {', '.join(comparisons)}; "
                         f"{report['reference']} is the reference)")  # fmt: skip
    if task not in [*report["test"], "test mean"]:  # dev rows are no evidence
        raise UsageError(f"--task {task}: not a test row of this report (test rows: "
                         f"{', '.join([*report['test'], 'test mean'])})")  # fmt: skip
    n = len(report["seeds"])
    plans = []
    for name in arms:
        row = comparisons[name].get(task)
        skip = _unplannable(row, n)
        if skip is None and delta is None and abs(row["delta"]) < math.hypot(row["se_seeds"], row["se_items"]):
            skip = NO_EFFECT
        if skip is not None:
            plans.append({"arm": name, "task": task, "row": row, "skip": skip})
            continue
        se_s, se_i, split = row["se_seeds"], row["se_items"], row.get("se_item_seed")
        deltas = [delta] if delta is not None else [row["delta"], row["delta"] / 2]
        table = []
        for n_new in sorted({s for s in SEEDS if s >= n} | {n}):
            at_s, at_i, shared = project(se_s, se_i, n, n_new, **scenario("estimate", se_s, se_i, n, split))
            table.append({"seeds": n_new, "half": float(half_width(at_s, at_i, n_new)),
                          "power": [power(d, at_s, at_i, n_new, shared) for d in deltas]})  # fmt: skip
        needed = [{s: seeds_needed(d, se_s, se_i, n, target, s, split) for s in scenarios(row)} for d in deltas]
        floors = tuple(item_floor(project(se_s, se_i, n, 10**9, **scenario(s, se_s, se_i, n, split))[1])
                       for s in ("estimate", "hopeful"))  # fmt: skip
        plans.append({"arm": name, "task": task, "row": row, "seeds": n, "deltas": deltas, "floors": floors,
                      "table": table, "needed": needed})  # fmt: skip
    if all(p.get("skip", NO_EFFECT).startswith(("not tested", "no seed spread")) for p in plans):
        raise UsageError(f"{said}: no arm of this report can be planned for: "
                         + "; ".join(f"{p['arm']}: {p['skip']}" for p in plans))  # fmt: skip
    return plans


def _unplannable(row: dict[str, Any] | None, n: int) -> str | None:
    """Why a report row gives no plan: not tested (its reason), or no seed spread (one seed)."""
    if not row or row.get("lo") is None:
        reason = (row or {}).get("reason") or "a task of the mean was not tested"
        return f"not tested in this report ({reason})"
    if n < 2 or row.get("se_seeds") is None:
        return f"no seed spread to plan from ({n} seed; a plan needs the sd over at least 2 seeds)"
    return None


def render_plan(report: dict[str, Any], plans: list[dict[str, Any]], target: float) -> str:
    seeds = report["seeds"]
    lines = [f"# Seeds for a replication of {report['name']} (against {report['reference']})", "",
             f"From the report's {len(seeds)} seeds ({', '.join(map(str, seeds))}) on {', '.join(report['test'])} "
             "(reporting/power.py): a replication on the same test tasks with new seeds. *Estimate*: the seeds' sd "
             "as measured, the items' noise as measured, its item × seed part (which more seeds average out) as "
             "measured where the report holds it (se_item_seed), else none; *hopeful* (reports without "
             "se_item_seed): as much of the items' noise as can be item × seed noise; *cautious*: the estimate "
             f"with the seeds' sd at its one-sided {100 * UPPER:.0f}% upper bound. Power at half the observed Δ is "
             "a rule of thumb: an effect noticed near the threshold is likely overstated.", ""]  # fmt: skip
    for p in plans:
        if "skip" in p:
            lines += [f"## {p['arm']}, {p['task']}: {p['skip']}", ""]
            continue
        r, (floor, hopeful_floor) = p["row"], p["floors"]
        spread = r["se_seeds"] * math.sqrt(p["seeds"])  # the sd of the per-seed Δ
        split = r.get("se_item_seed")
        items = f"se_items {100 * r['se_items']:.3f}"
        if split is not None and r["se_items"] > 0:
            items += f" (of its variance {100 * split**2 / r['se_items'] ** 2:.0f}% item × seed, measured)"
        if split is not None and split > r["se_seeds"]:  # the row at the report's own seeds then reads wider than
            # its CI: before stop 69 without a word (a statistician's walk took it for an error)
            items += (f"; se_seeds is planned from {100 * split:.3f}, the item × seed part it holds, so the row at "
                      f"{p['seeds']} seeds is wider than this report's own CI")
        floors = (f"±{100 * floor:.2f}" if split is not None
                  else f"±{100 * floor:.2f} (estimate) or ±{100 * hopeful_floor:.2f} (hopeful)")  # fmt: skip
        lines += [f"## {p['arm']}, {p['task']}: Δ {100 * r['delta']:+.2f} [{100 * r['lo']:+.2f}, "
                  f"{100 * r['hi']:+.2f}] with {p['seeds']} seeds", "",
                  f"- se_seeds {100 * r['se_seeds']:.3f} (sd of the per-seed Δ {100 * spread:.3f}), {items}: with "
                  f"unlimited seeds the items' noise leaves {floors}"]  # fmt: skip
        for d, need in zip(p["deltas"], p["needed"], strict=True):
            said = ", ".join(f"{s} " + (f"{k} seeds" if k is not None else f"none up to {MOST}")
                             for s, k in need.items())  # fmt: skip
            if need.get("hopeful", need["estimate"]) is None:
                said += "; more test items or tasks needed"
            lines.append(f"- {100 * target:.0f}% power at Δ {100 * d:+.2f}: {said}")
        headers = ["seeds", "CI half-width", *(f"power at Δ {100 * d:+.2f}" for d in p["deltas"])]
        rows = [[t["seeds"], f"±{100 * t['half']:.2f}", *(f"{100 * q:.0f}%" for q in t["power"])] for t in p["table"]]
        lines += ["", "Estimate:", "", md_table(rows, headers=headers, disable_numparse=True), ""]
    return "\n".join(lines)


def stale(report: dict[str, Any], expected: dict[str, Any] | None) -> list[str]:
    """What differs between the config now and the one its report was written from: seeds, reference, arms and
    test tasks by name (as sets where order does not matter); anything else (arm settings, stages, eval options)
    by the top-level keys whose digests differ, in reports that record them, else by the whole config's digest
    (reports written since stop 40, before those: "its settings differ"); and the stage config files the
    ablation names, by the keys of each whose digests differ, in reports that record them (``config_identity``).
    A report left from before the config changed plans a replication of another ablation."""
    if expected is None:
        return []
    held = {"seeds": report["seeds"], "reference": report["reference"], "arms": list(report["arms"]),
            "test": report["test"]}  # fmt: skip
    unordered = {"seeds", "arms"}
    named = [key for key in held
             if (set(expected[key]) != set(held[key]) if key in unordered else expected[key] != held[key])]
    differ = [f"{key}: the config {expected[key]}, the report {held[key]}" for key in named]
    keys, said = report.get("config_key_digests"), {"eval" if key == "test" else key for key in named}
    if keys is not None and "config_key_digests" in expected:
        changed = changed_keys(keys, expected["config_key_digests"]) - said
        if changed:
            differ.append(f"{', '.join(sorted(changed))}: changed since the report was written")
    elif not differ and report.get("config_digest") not in (None, expected["config_digest"]):
        differ.append("its settings (arms, stages or eval options) differ from the ones the report was written with")
    stages, now = report.get("stage_config_digests") or {}, expected.get("stage_config_digests") or {}
    for name in [name for name in now if name in stages and stages[name] != now[name]]:
        was, is_ = stages[name], now[name]
        if isinstance(is_, str):  # a file that cannot be read now: the reason names it
            differ.append(is_)
        elif isinstance(was, str):
            differ.append(f"stage config {name}: could not be read when the report was written")
        else:
            differ.append(f"stage config {name}: {', '.join(sorted(changed_keys(was, is_)))} changed since the "
                          "report was written")  # fmt: skip
    return differ


def changed_keys(then: dict[str, str], now: dict[str, str]) -> set[str]:
    """The keys, set in either, whose digests differ (one set in one alone included)."""
    return {key for key in then.keys() | now.keys() if then.get(key) != now.get(key)}


def run_plan(path: Path, source: Path, arm: str | None, task: str | None, delta: float | None, target: float,
             expected: dict[str, Any] | None = None) -> int:  # fmt: skip
    """Print the plan of the report ``source`` (``path``: the report.json itself or the config that wrote it,
    whose seeds, reference, arms and test tasks are ``expected``: a report that differs is named stale)."""
    if not 0 < target < 1:
        raise UsageError(f"--power {target}: must be between 0 and 1 (exclusive)")
    if delta is not None and (not math.isfinite(delta) or delta == 0):
        raise UsageError(f"--delta {delta}: must be a finite, non-zero number of points")
    if not source.is_file():
        if source == path:
            raise UsageError(f"{path}: no such report (the report.json `harness ablate` writes)")
        raise UsageError(f"{path}: no report at {source} (relative to the working directory {Path.cwd()}): run "
                         f"`harness ablate {path}` first, or run --plan where it was run (a plan reads its CIs)")
    report = read_json(source)
    if not isinstance(report, dict) or not {"seeds", "reference", "arms", "test", "comparisons"} <= set(report):
        raise UsageError(f"{source}: not a report of `harness ablate` (its report.json), so there is nothing to plan")
    differ = stale(report, expected)
    unseen = (" The report predates the digests of stage config files: edits of those files are not seen."
              if "stage_config_digests" not in report else "")  # fmt: skip
    note = (f"**Stale report**: {path} has changed since {source} was written ({'; '.join(differ)}). This plan "
            f"is from the report as written; `harness ablate {path}` refreshes it.{unseen}"
            if differ else "")  # fmt: skip
    try:
        plans = plan_rows(report, arm, task, None if delta is None else delta / 100, target)
    except UsageError as exc:
        raise UsageError(f"{exc}{' (' + note + ')' if note else ''}") from None
    text = render_plan(report, plans, target)
    if note:
        head, rest = text.split("\n", 1)
        text = f"{head}\n\n{note}\n{rest}"
    print(text)
    return 0
