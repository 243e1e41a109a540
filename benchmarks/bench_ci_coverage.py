"""Do the ablation reports' 95% CIs cover the true Δ 95% of the time? Simulated ablations with a known Δ.

    python benchmarks/bench_ci_coverage.py [--trials 400] [--sts-trials 150] [--n-boot 200]

Each trial draws per-item scores for a reference and a candidate arm trained with n seeds, and runs them through
`reporting.ablation.paired_ci` (per-seed Δ, paired item bootstrap, ``interval``, verdict: what `harness ablate`
runs on the per-item scorers of reporting/items.py) and, for the group rows, `reporting.ablation.group`.
Per-item Δ of item i at seed s is Δ + a_i + b_s + e_is: a_i the item's own response to the change (shared by
the seeds), b_s the seed's (the training run's) and e_is the run's idiosyncratic response to the item. The sizes
come from the committed reports (reports/ablations/*/report.json, 3-seed test rows): their se_items² estimates
σ_a²/m + σ_e²/(3m) and se_seeds² estimates σ_b²/3 + σ_e²/(3m); the split of the shared part is not identified by
the reports, so both ends are simulated (e_share 0: no item × seed noise; 1: as much as the smaller of the two
allows). Rows: the test rows with the lowest, median and highest se_seeds/se_items among mean metrics (queries,
sentences), at 1, 3 and 5 seeds, at Δ = 0 and Δ = 2 × the 3-seed sd of the estimate; a test mean over two tasks
with their own items (dhnm's CMRC2018Retrieval and SQuADRetrieval) and over four tasks that are one item set
(clr_control's XQuAD zh/es/ru/tr, resampled jointly); and STS, whose Spearman is recomputed per resample
(`reporting.items._sts`, gold scores drawn from the real STSBenchmark test split), at 3 seeds.

Coverage counts how often lo ≤ Δ ≤ hi; "shown" how often the verdict is improves / hurts (at Δ = 0: the false
"shown" rate). Since stop 69 a one-seed row gets no verdict (`reporting.ablation.row_verdict`), so a rerun reads 0
there; the committed JSON, from before, counts its CI excluding 0. "--plan's power" is what `harness ablate
--plan` (reporting.power.projected_power: estimate / hopeful without the measured item × seed split, and with it)
predicts for the small Δ from the root mean square of the trials' se_seeds, se_items and se_item_seed, as a pilot
report would give them; "planned from 3 seeds", on the 5-seed rows, projects the same case's 3-seed trials to 5
seeds. Set beside "shown" they measure the plan where item × seed noise, resampled scorers and group means are in
play. One seed: the report covers the items only, so its row also counts how often it covers that seed's own Δ (Δ +
b_s). Fewer resamples than the reports' 1000 (--n-boot) make each se_items noisier, so coverage here errs low if
anything. Prints a table and writes benchmarks/results/bench_ci_coverage.json.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np
from common import DEFAULT_DATA, REPO, run_main, write_report
from scipy.stats import spearmanr

from reporting.ablation import group, paired_ci
from reporting.items import _sts
from reporting.power import projected_power

Scorer = Callable[[np.ndarray], float]  # a main score from the items at given positions

M_ITEMS = 400  # items per simulated task: coverage depends on the noise ratios, not on m (sizes scale to it)
M_STS = 300


def report_rows() -> list[dict[str, Any]]:
    """Every per-task test row with 3 seeds in the committed ablation reports, with its noise sizes."""
    rows = []
    for path in sorted((REPO / "reports" / "ablations").glob("*/report.json")):
        rep = json.loads(path.read_text(encoding="utf-8"))
        if len(rep["seeds"]) != 3:
            continue
        for arm, comp in rep["comparisons"].items():
            for task in rep["test"]:
                row = comp[task]
                if row.get("se_items") and row.get("se_seeds"):
                    rows.append({"report": path.parent.name, "arm": arm, "task": task, "unit": row["unit"],
                                 "se_items": row["se_items"], "se_seeds": row["se_seeds"]})  # fmt: skip
    return rows


def components(se_items: float, se_seeds: float, e_share: float, m: int) -> dict[str, float]:
    """(σ_a, σ_b, σ_e) per item or seed, from a 3-seed row's se_items and se_seeds and the share of their common
    part that is item × seed noise; at m items these reproduce the row's se_items and se_seeds in expectation."""
    e3 = e_share * min(se_items, se_seeds) ** 2  # σ_e²/(3m)
    return {"a": float(np.sqrt((se_items**2 - e3) * m)), "b": float(np.sqrt(3 * (se_seeds**2 - e3))),
            "e": float(np.sqrt(3 * e3 * m))}  # fmt: skip


def estimate_sd(sizes: dict[str, float], m: int, n: int) -> float:
    """The true sd of Δ (the mean over n seeds and m items of the per-item Δ)."""
    return float(np.sqrt(sizes["a"] ** 2 / m + sizes["b"] ** 2 / n + sizes["e"] ** 2 / (n * m)))


def mean_scorer(values: np.ndarray) -> Scorer:
    """A per-item-mean main score (nDCG@10, accuracy) on the items at given positions, as reporting/items.py's."""
    return lambda idx: float(values[idx].mean())


def simulated_task(rng: np.random.Generator, sizes: dict[str, float], delta: float, n: int, m: int,
                   seed_effect: np.ndarray,
                   item_effect: np.ndarray | None = None) -> list[tuple[Scorer, Scorer]]:  # fmt: skip
    """Per-seed (reference, candidate) scorers of one task; ``seed_effect``: b_s in units of σ_b (shared by the
    tasks of a group, as one trained model per seed answers every task); ``item_effect``: a_i in units of σ_a."""
    base = rng.uniform(0.3, 0.9, m)  # the reference's per-item scores: they cancel in every Δ
    a = sizes["a"] * (rng.standard_normal(m) if item_effect is None else item_effect)
    pairs = []
    for s in range(n):
        cand = base + delta + a + sizes["b"] * seed_effect[s] + sizes["e"] * rng.standard_normal(m)
        pairs.append((mean_scorer(base), mean_scorer(cand)))
    return pairs


def row_of(pairs: list[tuple[Scorer, Scorer]], m: int, n_boot: int, rng: np.random.Generator) -> dict[str, Any]:
    """What compare() computes from a task's scorers (Δ: the mean over seeds of the full-set scores)."""
    everything = np.arange(m)
    delta = float(np.mean([cand(everything) - ref(everything) for ref, cand in pairs]))
    return {"delta": delta, **paired_ci(pairs, m, delta, n_boot, rng), "pairs": pairs}


def cases(small: float, trials: int, zero: float = 0.0) -> list[tuple[str, float, int]]:
    """(label, setting, trials) of the Δ = 0 and small-Δ runs; the second, for power, with half the trials."""
    return [("delta 0", zero, trials), ("delta small", small, trials // 2)]


def tally(hits: list[dict[str, Any]], truth: float) -> dict[str, float]:
    shown = [h["verdict"] != "no effect shown" for h in hits]
    covered = [h["lo"] <= truth <= h["hi"] for h in hits]
    half = [(h["hi"] - h["lo"]) / 2 for h in hits]
    return {"coverage": float(np.mean(covered)), "shown": float(np.mean(shown)),
            "mean_half_width": float(np.mean(half)),
            "mean_se_items": float(np.mean([h["se_items"] for h in hits])),
            "mean_se_seeds": float(np.mean([h["se_seeds"] or 0.0 for h in hits])),
            # root mean squares: a pilot's se² is unbiased for the true one, its se is not (low by c4)
            "rms_se_items": float(np.sqrt(np.mean([h["se_items"] ** 2 for h in hits]))),
            "rms_se_seeds": float(np.sqrt(np.mean([(h["se_seeds"] or 0.0) ** 2 for h in hits]))),
            "rms_se_item_seed": float(np.sqrt(np.mean([(h.get("se_item_seed") or 0.0) ** 2
                                                       for h in hits])))}  # fmt: skip


def per_task(name: str, source: dict[str, Any], e_share: float, n: int, delta_sd: float, trials: int, n_boot: int,
             rng: np.random.Generator) -> dict[str, Any]:  # fmt: skip
    sizes = components(source["se_items"], source["se_seeds"], e_share, M_ITEMS)
    result: dict[str, Any] = {"case": name, "metric": "per-item mean", "seeds": n, "e_share": e_share,
                              "source": source, "sizes": sizes}  # fmt: skip
    for label, delta, count in cases(delta_sd, trials):
        hits, own = [], []
        for _ in range(count):
            seed_effect = rng.standard_normal(n)
            hit = row_of(simulated_task(rng, sizes, delta, n, M_ITEMS, seed_effect), M_ITEMS, n_boot, rng)
            hits.append(hit)
            own.append(hit["lo"] <= delta + sizes["b"] * seed_effect[0] <= hit["hi"])
        result[label] = {"true_delta": delta, **tally(hits, delta)}
        if n == 1:
            result[label]["coverage_of_the_seeds_own_delta"] = float(np.mean(own))
    return result


def group_case(name: str, sources: list[dict[str, Any]], shared_items: bool, delta_sd: float, trials: int,
               n_boot: int, rng: np.random.Generator, n: int = 3) -> dict[str, Any]:  # fmt: skip
    """A test mean: tasks with their own items (ids and judgements apart) or one item set in several tasks (the
    same ids and judgements, item effects correlated 0.7 across them), seed effects correlated 0.5."""
    sizes = [components(s["se_items"], s["se_seeds"], 0.5, M_ITEMS) for s in sources]
    result: dict[str, Any] = {"case": name, "metric": "test mean", "seeds": n, "e_share": 0.5,
                              "shared_items": shared_items, "sources": sources}  # fmt: skip
    for label, delta, count in cases(delta_sd, trials):
        hits = []
        for _ in range(count):
            common_seed, common_item = rng.standard_normal(n), rng.standard_normal(M_ITEMS)
            results = {}
            for t, size in enumerate(sizes):
                seed_effect = np.sqrt(0.5) * common_seed + np.sqrt(0.5) * rng.standard_normal(n)
                item_effect = np.sqrt(0.7) * common_item + np.sqrt(0.3) * rng.standard_normal(M_ITEMS)
                pairs = simulated_task(rng, size, delta, n, M_ITEMS, seed_effect, item_effect if shared_items else None)
                owner = "xquad" if shared_items else f"task{t}"
                gold = [json.dumps({f"{owner}-doc{i}": 1}) for i in range(M_ITEMS)]  # shared: the same judgements
                results[f"task{t}"] = {**row_of(pairs, M_ITEMS, n_boot, rng), "unit": "queries",
                                       "keys": [f"q{i}" for i in range(M_ITEMS)], "gold": gold}  # fmt: skip
            row = group(results, n_boot, int(rng.integers(1 << 30)))
            assert bool(row.get("shared_items")) == shared_items, name
            hits.append(row)
        result[label] = {"true_delta": delta, **tally(hits, delta)}
    return result


def population_spearman(gold: np.ndarray, noise_sd: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Spearman of gold and gold + N(0, noise_sd²) over 200,000 items drawn from the real gold scores."""
    g = rng.choice(gold, 200_000)
    z = rng.standard_normal(len(g))
    return np.asarray([spearmanr(g, g + sd * z)[0] for sd in noise_sd])


def sts_case(name: str, gold: np.ndarray, spec: dict[str, float], trials: int, n_boot: int,
             rng: np.random.Generator, n: int = 3) -> dict[str, Any]:  # fmt: skip
    """STS rows: similarity = gold + σ_u u_i (both arms) + σ_v v_i,arm (the arm, every seed) + σ_arm e^{τ z_s}
    w_i,s (the run; z_s the seed's quality); Spearman recomputed per resample. True Δ: the expected population
    Spearman over seeds (Gauss–Hermite in z) of the candidate minus the reference's."""
    nodes, weights = np.polynomial.hermite_e.hermegauss(7)
    weights = weights / weights.sum()
    shared = spec["u"] ** 2 + spec["v"] ** 2

    def expected(sigma: float) -> float:
        return float(weights @ population_spearman(gold, np.sqrt(shared + (sigma * np.exp(spec["tau"] * nodes)) ** 2),
                                                   np.random.default_rng(11)))  # fmt: skip

    result: dict[str, Any] = {"case": name, "metric": "Spearman per resample", "seeds": n, "spec": spec}
    reference = expected(spec["ref"])
    for label, cand_sigma, count in cases(spec["cand"], trials, spec["ref"]):
        truth = expected(cand_sigma) - reference if cand_sigma != spec["ref"] else 0.0  # Δ 0: the arms are alike
        hits = []
        for _ in range(count):
            g = rng.choice(gold, M_STS)
            u = spec["u"] * rng.standard_normal(M_STS)
            arm_items = {arm: spec["v"] * rng.standard_normal(M_STS) for arm in ("ref", "cand")}
            pairs = []
            for _s in range(n):
                sims = {arm: g + u + arm_items[arm] + sigma * np.exp(spec["tau"] * rng.standard_normal())
                        * rng.standard_normal(M_STS) for arm, sigma in (("ref", spec["ref"]), ("cand", cand_sigma))}
                ref, cand = (_sts(g.tolist(), {"cosine_scores": sims[arm]}, "cosine_spearman").score
                             for arm in ("ref", "cand"))  # fmt: skip
                pairs.append((ref, cand))
            hits.append(row_of(pairs, M_STS, n_boot // 2, rng))
        result[label] = {"true_delta": truth, **tally(hits, truth)}
    return result


def planned_power(r: dict[str, Any], pilot: dict[str, Any] | None = None) -> dict[str, float] | None:
    """What `harness ablate --plan` predicts for the small-Δ row (reporting.power.projected_power) from a pilot's
    se_seeds, se_items and se_item_seed (root mean squares over its trials, as a typical report would show them):
    the row's own trials, or ``pilot``'s, a row of the same case at fewer seeds, projected to this row's; the
    estimate and hopeful bracket of a report without se_item_seed, and the estimate from the measured split (what
    reports since stop 40 give). None with one seed (no seed spread to plan from)."""
    source = pilot or r
    if source["seeds"] < 2:
        return None
    small, at = r["delta small"], source["delta small"]
    plan = {name: projected_power(small["true_delta"], at["rms_se_seeds"], at["rms_se_items"], source["seeds"],
                                  r["seeds"], name)
            for name in ("estimate", "hopeful")}  # fmt: skip
    plan["measured"] = projected_power(small["true_delta"], at["rms_se_seeds"], at["rms_se_items"], source["seeds"],
                                       r["seeds"], "estimate", at["rms_se_item_seed"])  # fmt: skip
    return plan


def _pair(planned: dict[str, float] | None) -> str:
    if planned is None:
        return "—"
    return " / ".join(f"{100 * planned[k]:.1f}" for k in ("estimate", "hopeful", "measured"))


def table_row(r: dict[str, Any]) -> list[Any]:
    zero, small = r["delta 0"], r["delta small"]
    own = zero.get("coverage_of_the_seeds_own_delta")
    planned = r.get("planned_power")
    return [r["case"], r["metric"], r["seeds"], r.get("e_share", "—"), f"{100 * zero['coverage']:.1f}",
            f"{100 * zero['shown']:.1f}", "—" if own is None else f"{100 * own:.1f}",
            f"{100 * small['true_delta']:+.3f}", f"{100 * small['coverage']:.1f}", f"{100 * small['shown']:.1f}",
            _pair(planned), _pair(r.get("planned_from_3")),
            f"{zero['mean_se_seeds'] / zero['mean_se_items']:.2f}"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=800, help="trials per per-task row at Δ = 0 (binomial sd "
                        "at 95%%: 0.8 points), half as many at the small Δ")  # fmt: skip
    parser.add_argument("--group-trials", type=int, default=300)
    parser.add_argument("--sts-trials", type=int, default=200)
    parser.add_argument("--n-boot", type=int, default=200, help="item resamples (STS: half as many, each one "
                        "computes 2 × seeds Spearman correlations)")  # fmt: skip
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    start, rng = time.perf_counter(), np.random.default_rng(2024)
    rows = report_rows()
    means = sorted((r for r in rows if r["unit"] in ("queries", "sentences")),
                   key=lambda r: r["se_seeds"] / r["se_items"])  # fmt: skip
    picked = {"lowest se_seeds/se_items": means[0], "median": means[len(means) // 2], "highest": means[-1]}
    results = []
    for label, source in picked.items():
        for e_share in (0.0, 1.0):
            delta = 2 * estimate_sd(components(source["se_items"], source["se_seeds"], e_share, M_ITEMS), M_ITEMS, 3)
            for n in (1, 3, 5):
                results.append(per_task(f"{label}: {source['report']} {source['arm']} {source['task']}", source,
                                        e_share, n, delta, args.trials, args.n_boot, rng))  # fmt: skip
                results[-1]["planned_power"] = planned_power(results[-1])
                if n == 5:  # the 3-seed row of this case as the pilot
                    results[-1]["planned_from_3"] = planned_power(results[-1], results[-2])
                print(table_row(results[-1]), flush=True)
    by_task = {(r["report"], r["arm"], r["task"]): r for r in rows}
    for name, keys, shared in (
        ("dhnm none: test mean of CMRC2018 + SQuAD", [("dhnm", "none", "CMRC2018Retrieval"),
                                                    ("dhnm", "none", "SQuADRetrieval")], False),
        ("clr_control on: test mean of XQuAD zh/es/ru/tr (one item set)",
         [("clr_control", "on", f"XQuADRetrieval{x}En") for x in ("Zh", "Es", "Ru", "Tr")], True),
    ):  # fmt: skip
        sources = [by_task[k] for k in keys]
        sd = np.mean([estimate_sd(components(s["se_items"], s["se_seeds"], 0.5, M_ITEMS), M_ITEMS, 3) for s in sources])
        results.append(group_case(name, sources, shared, 2 * float(sd), args.group_trials, args.n_boot, rng))
        results[-1]["planned_power"] = planned_power(results[-1])
        print(table_row(results[-1]), flush=True)
    gold = np.asarray([json.loads(line)["score"] for line in
                       (args.data_dir / "en" / "STSBenchmark" / "test.jsonl").read_text(encoding="utf-8").splitlines()
                       if line.strip()], dtype=float)  # fmt: skip
    for name, spec in (("STS, item noise larger", {"u": 0.8, "v": 0.4, "ref": 0.3, "cand": 0.2, "tau": 0.15}),
                       ("STS, seed noise larger", {"u": 0.8, "v": 0.15, "ref": 0.3, "cand": 0.2, "tau": 0.4})):
        results.append(sts_case(name, gold, spec, args.sts_trials, args.n_boot, rng))
        results[-1]["planned_power"] = planned_power(results[-1])
        print(table_row(results[-1]), flush=True)
    sts_rows = [r for r in rows if r["unit"] == "pairs"]
    headers = ["case", "metric", "seeds", "e_share", "coverage % (Δ=0)", "false shown %", "covers the seed's Δ %",
               "small Δ ×100", "coverage % (small Δ)", "shown % (small Δ)",
               "--plan's power % (est / hopeful / measured)", "planned from 3 seeds %", "se_seeds/se_items"]
    write_report("bench_ci_coverage", [table_row(r) for r in results], headers, {
        "trials": {"per_task": args.trials, "group": args.group_trials, "sts": args.sts_trials},
        "n_boot": args.n_boot, "items": {"per_task": M_ITEMS, "sts": M_STS},
        "report_rows": {"count": len(rows), "se_seeds_over_se_items": {
            "mean metrics": [round(means[0]["se_seeds"] / means[0]["se_items"], 3),
                             round(median(r["se_seeds"] / r["se_items"] for r in means), 3),
                             round(means[-1]["se_seeds"] / means[-1]["se_items"], 3)],
            "sts": [round(min(r["se_seeds"] / r["se_items"] for r in sts_rows), 3),
                    round(max(r["se_seeds"] / r["se_items"] for r in sts_rows), 3)]}},
        "results": results,
        "seconds": round(time.perf_counter() - start, 1)})  # fmt: skip


if __name__ == "__main__":
    run_main(main)
