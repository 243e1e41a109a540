"""The report of `harness ablate`: per arm the mean over seeds and the seed spread, and per arm against the
reference the paired difference with a 95% CI over the test items and the training seeds (``interval``).

Every number is read from a run directory (`harness run` output, with per-item predictions) or a training output
folder (dhnm_summary.json); report.json names them, relative to the working directory, so each is traceable.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import zlib
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from statistics import mean
from typing import Any

import numpy as np
from scipy import stats

from harness.errors import DataError, UsageError
from harness.runs import (
    RunDir,
    atomic_write,
    atomic_write_json,
    atomic_write_text,
    md_table,
    open_run,
    percent,
    read_json,
)
from reporting.bootstrap import finite_resamples, seed_resamples, verdict
from reporting.items import NotTestable, TaskItems, at_dim, paired_positions, task_items

LEVEL = 0.05
Scorer = Callable[[np.ndarray], float]  # a run's main score on the items at these positions
WORDS = {"improved": "improves", "regressed": "hurts", "within noise": "no effect shown"}
NOT_TESTED = "not tested"  # a row without a CI (no per-item data, a damaged file, an undefined metric)


def rel(path: str | Path) -> str:
    """A path as the report shows it: relative to the working directory, never the machine's absolute path."""
    return os.path.relpath(Path(path).resolve(), Path.cwd())


def runs_shown(text: str, runs: list[str]) -> str:
    """``text`` (a reason a row was not tested) with each run directory, as given or resolved, written as the
    report's Runs section writes it (``rel``): a damaged per-item file put the machine's absolute path into
    report.md (a walk). Longest first, so `a-seed10` is not read as `a-seed1` and a tail."""
    forms = {form: rel(run) for run in runs
             for form in (str(run), str(Path(run).resolve())) if Path(form).is_absolute()}  # fmt: skip
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, forms[form])
    return text


def out_from_report(work: Path, folder: Path) -> str:
    """An ablation's `out` as seen from its report folder: report.json's `out` is relative to the working directory
    it was written from, so only this tells, from any other, whether a report is this ablation's (review of stop
    60)."""
    return os.path.relpath(Path(work).resolve(), Path(folder).resolve())


def ran_in_from(folder: Path) -> str:
    """The working directory as seen from the report folder ``folder``: relative where both lie under one folder
    below the root; else `…/<its name>`, as the reports show such paths (a path up to / and down again spells the
    machine's absolute one: the clean-clone CI caught `../../../../work/cicheck` in a report under /tmp)."""
    here, there = Path.cwd().resolve(), Path(folder).resolve()
    if os.path.commonpath([here, there]) == here.anchor:
        return f"…/{here.name}"
    return os.path.relpath(here, there)


def config_digest(cfg: Any) -> str:
    """A digest of the ablation config as loaded (arms, stages, eval, seeds, ...), or of one value of it: `--plan
    CONFIG` compares it with the report's to tell a report written from another version of the config."""
    return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:16]


def key_digests(table: dict[str, Any]) -> dict[str, str]:
    """{top-level key: the digest of its value}: a stale report's note names the keys that changed."""
    return {key: config_digest(value) for key, value in table.items()}


def config_identity(cfg: dict[str, Any], stage_digests: dict[str, dict[str, str] | str]) -> dict[str, Any]:
    """What report.json records of the config it was written from, for `--plan CONFIG`'s stale check
    (reporting.power.stale): the whole config's digest (since stop 40), its top-level keys' digests and its stage
    configs' (``stage_digests``: harness.ablate_config.stage_config_digests, which reads them with train's TOML
    reader; reports written before either lack them)."""
    return {"config_digest": config_digest(cfg), "config_key_digests": key_digests(cfg),
            "stage_config_digests": stage_digests}  # fmt: skip


def task_record(run: RunDir, task: str, dim: int | None = None) -> dict[str, Any]:
    """The task's run.json entry; at an MRL dim with that dim's main score (from its result file)."""
    try:
        return at_dim(run, task, run.read_run()["tasks"][task], dim)
    except NotTestable as exc:  # the ablation asked for this dim: its runs must have it
        raise UsageError(str(exc)) from None


def _scores(run_dir: str, task: str, dim: int | None = None) -> float:
    return float(task_record(open_run(Path(run_dir)), task, dim)["main_score"])


def interval(delta: float, per_seed: list[float], resamples: np.ndarray,
             by_seed: np.ndarray | None = None) -> dict[str, Any]:  # fmt: skip
    """95% CI of the mean over seeds of Δ, covering both the test items and the training seeds.

    Items: se_items, the sd of the paired item bootstrap (``item_resamples``), with the normal quantile. Seeds:
    se_seeds, the sd of the per-seed Δ over √n, with Student's t on n − 1 degrees of freedom. The half-widths
    add in quadrature: Δ ± √((t·se_seeds)² + (z·se_items)²). Simulated with 3 seeds this covers a true Δ 95 to
    97.5% of the time at every ratio of seed to item noise (tests/reporting/test_rep_ablation.py), where a
    Welch–Satterthwaite t dips to 92% and a bootstrap over the seeds (10 distinct draws of 3 seeds, seed
    variance shrunk by (n − 1)/n, never past the outermost seed) covers about 68%. Noise of one run on one item
    (item × seed) is in both se_items and se_seeds, so where it dominates the interval is wider than 95% needs:
    at noise sizes of the committed reports 92–99.5% with 3 or 5 seeds (benchmarks/bench_ci_coverage.py). With
    one seed only the items are covered: the item bootstrap's percentiles, and the report says so. Resamples on
    which the metric is undefined are left out (``finite_resamples``: NotTestable when most are). ``by_seed``:
    the resamples per seed (``seed_resamples``; their mean is ``resamples``), from which se_item_seed, the item ×
    seed part of se_items (``item_seed_variance``), is measured for `harness ablate --plan`; None without them."""
    kept = np.isfinite(resamples)
    resamples = finite_resamples(resamples)
    n = len(per_seed)
    if n == 1:
        lo, hi = (float(x) for x in np.quantile(resamples, [LEVEL / 2, 1 - LEVEL / 2]))
        return {"lo": lo, "hi": hi, "se_items": float(np.std(resamples, ddof=1)), "se_seeds": None,
                "se_item_seed": None}  # fmt: skip
    se_seeds, se_items = float(np.std(per_seed, ddof=1)) / math.sqrt(n), float(np.std(resamples, ddof=1))
    half = half_width(se_seeds, se_items, n)
    split = None if by_seed is None else math.sqrt(item_seed_variance(by_seed[kept]))
    return {"lo": delta - half, "hi": delta + half, "se_items": se_items, "se_seeds": se_seeds,
            "se_item_seed": split, "edge_mc_se": edge_noise(se_items, half, len(resamples))}  # fmt: skip


def edge_noise(se_items: float, half: float, n_resamples: int) -> float:
    """The Monte Carlo sd of the CI's edges: se_items is the sd of n_resamples draws, itself off by about
    se_items/√(2(B − 1)), which moves the half-width √((t·se_seeds)² + (z·se_items)²) by z²·se_items/half times
    that. At B = 1000 an edge a hundredth of a point from 0 can fall on either side of it for another bootstrap
    seed (audit, stop 48: clr_control's XQuAD tr lower edge ran from −0.004 to +0.026 over 30 seeds)."""
    z = float(stats.norm.ppf(1 - LEVEL / 2))
    return z * z * se_items * se_items / half / math.sqrt(2 * (n_resamples - 1)) if half > 0 else 0.0


MC_MARGIN = 2.0  # an edge closer to 0 than this many Monte Carlo sds is not taken as excluding 0


MIN_ITEMS = 30  # fewer items: the item bootstrap covers well under 95% (85% at 5, 91% at 10: bench_item_floor.py)


def row_verdict(delta: float, ci: dict[str, Any], n_items: int | None = None) -> tuple[str, str]:
    """The verdict of a row and its reason: an effect only when the CI excludes 0 by more than the bootstrap's own
    noise at that edge (``edge_noise``), so that the verdict does not hang on the bootstrap seed; otherwise "no
    effect shown", saying so (more resamples, a larger n_boot, settle it). Only ever withholds an effect: also on
    one seed (the CI covers the items alone, not training noise, which the rule asks for) and on a task of fewer
    than `MIN_ITEMS` items (``n_items``; for a group mean its smallest item set, ``group_items``); before stop 69 (a
    statistician's walk) both printed bold verdicts, two one-seed runs of one question giving opposite ones."""
    word = WORDS[verdict(delta, ci["lo"], ci["hi"], 0.0)]
    if word != "no effect shown" and ci.get("se_seeds") is None:
        return "no effect shown", (f"would be {word} on one seed: the CI covers the items, not training noise; a "
                                   "verdict needs two seeds or more")  # fmt: skip
    if word != "no effect shown" and n_items is not None and n_items < MIN_ITEMS:
        return "no effect shown", (f"would be {word}: {n_items} items, fewer than {MIN_ITEMS}, where the item "
                                   "bootstrap's interval covers less than 95%")  # fmt: skip
    edge = ci["lo"] if word == "improves" else ci["hi"] if word == "hurts" else None
    noise = ci.get("edge_mc_se")
    if edge is None or not noise or abs(edge) >= MC_MARGIN * noise:
        return word, ""
    return "no effect shown", (f"would be {word}: CI edge {100 * edge:+.3f} is within the bootstrap's own noise "
                               f"({MC_MARGIN:g} × {100 * noise:.3f}); a larger n_boot settles it")


def comparison_rows(report: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(dim, arm, task or mean, row) for every tested comparison row of a report.json, full width first."""
    views = [("full", report["comparisons"])]
    views += [(str(d), v["comparisons"]) for d, v in report.get("dims", {}).items()]
    return [(dim, arm, task, row) for dim, comps in views for arm, per_task in comps.items()
            for task, row in per_task.items() if row and row.get("lo") is not None]  # fmt: skip


def item_seed_variance(by_seed: np.ndarray) -> float:
    """The part of se_items² (the variance over item resamples of the mean over seeds of Δ) that is item × seed
    noise, from (resamples, seeds) Δ: with Δ_is = Δ + a_i + b_s + e_is over N items, each seed's Δ varies over the
    resamples by v = (σ_a² + σ_e²)/N and two seeds' co-vary by c = σ_a²/N (the items they share), so se_items² =
    c + (v − c)/n and its item × seed part is (v − c)/n, which more seeds average out; c stays. Measured from the
    mean variance and the mean covariance between seeds, clipped to [0, se_items²]."""
    n = by_seed.shape[1]
    total = float(np.var(by_seed.mean(axis=1), ddof=1))
    own = float(np.var(by_seed, axis=0, ddof=1).mean())
    between = (n * n * total - n * own) / (n * (n - 1))
    return min(max((own - between) / n, 0.0), total)


def half_width(se_seeds: Any, se_items: float, n: int) -> Any:
    """The CI's half-width with n ≥ 2 seeds: √((t·se_seeds)² + (z·se_items)²), t on n − 1 degrees of freedom
    (element-wise for an array of se_seeds)."""
    t, z = float(stats.t.ppf(1 - LEVEL / 2, n - 1)), float(stats.norm.ppf(1 - LEVEL / 2))
    return np.hypot(t * se_seeds, z * se_items)


def compare(ref: dict[int, str], cand: dict[int, str], task: str, n_boot: int, boot_seed: int,
            dim: int | None = None) -> dict[str, Any]:  # fmt: skip
    """Δ = mean over seeds of (candidate − reference) main score (at MRL ``dim``: of the truncated vectors), with
    its CI (``interval``). Every dim of a task draws the same item resamples. Both arms must hold the same seeds:
    before stop 51 a seed one arm lacked was dropped in silence, and the row's Δ was over fewer seeds than its
    arms' means."""
    if set(ref) != set(cand):
        raise ValueError(f"{task}: the arms hold different seeds (reference {sorted(ref)}, candidate {sorted(cand)})"
                         ": a paired Δ needs every seed in both")  # fmt: skip
    seeds = list(ref)  # the config's order, as report.json's `seeds` (before stop 65 sorted: `per_seed` then
    # paired with `seeds = [2, 0]` swapped its values; a walk)
    runs = [(open_run(Path(ref[s])), open_run(Path(cand[s]))) for s in seeds]
    records = [(task_record(r, task, dim), task_record(c, task, dim)) for r, c in runs]  # each run.json read once
    delta = mean(float(c["main_score"]) - float(b["main_score"]) for b, c in records)
    out: dict[str, Any] = {"delta": delta, "seeds": len(seeds), "lo": None, "hi": None, "items": 0,
                           "verdict": "no effect shown", "reason": "", "resamples": None}  # fmt: skip
    try:
        items = [i for (r, c), (rb, rc) in zip(runs, records, strict=True)
                 for i in (task_items(r, task, rb, dim), task_items(c, task, rc, dim))]  # fmt: skip
        keys, positions = paired_positions(items)  # every seed's reference and candidate, item for item
    # a row without a CI says "not tested", its verdict too (before stop 65 "no effect shown", the reason alone
    # saying it was not tested: a tally of the verdicts counted it as a measured null; a walk)
    # one damaged per-item file (DataError): that task says so, the others are still compared
    except (NotTestable, DataError) as exc:
        said = f"damaged file ({exc})" if isinstance(exc, DataError) else str(exc)
        out.update(verdict=NOT_TESTED, reason=runs_shown(said, [*ref.values(), *cand.values()]))
        return out
    pairs = scorer_pairs(items, positions)
    try:
        ci = paired_ci(pairs, len(keys), delta, n_boot, item_rng(boot_seed, task))
    except NotTestable as exc:
        out.update(verdict=NOT_TESTED, reason=str(exc))
        return out
    out.update(ci, items=len(keys), unit=items[0].unit, keys=keys, pairs=pairs,
               gold=[items[0].gold[i] for i in positions[0]])  # fmt: skip
    return out


def scorer_pairs(items: list[TaskItems], positions: list[np.ndarray]) -> list[tuple[Scorer, Scorer]]:
    """(reference, candidate) scorers per seed from runs listed reference, candidate, reference, ... and each
    run's positions of the paired items (``paired_positions``, or a subset of them)."""
    scored = [(lambda idx, f=i.score, p=p: f(p[idx])) for i, p in zip(items, positions, strict=True)]
    return list(zip(scored[::2], scored[1::2], strict=True))


def item_rng(boot_seed: int, salt: str) -> np.random.Generator:
    """The item resamples' generator for one task (or group of tasks, or part of a task): the report's seed and a
    stable hash of the name, so every dim of a task, and a rerun, draws the same resamples."""
    return np.random.default_rng([boot_seed, zlib.crc32(salt.encode())])


def paired_ci(pairs: list[tuple[Scorer, Scorer]], n_items: int, delta: float, n_boot: int,
              rng: np.random.Generator) -> dict[str, Any]:  # fmt: skip
    """From per-item scorers to a report row: each seed's Δ on all items, the paired item bootstrap, the CI
    (``interval``) and the verdict. ``pairs[s]`` = (reference, candidate) scorers of item positions for seed s.
    One function from per-item scores to the row, so benchmarks/bench_ci_coverage.py measures the reports' own
    path. Raises NotTestable when the metric is undefined on most resamples."""
    everything = np.arange(n_items)
    per_seed = [float(cand_score(everything) - ref_score(everything)) for ref_score, cand_score in pairs]
    by_seed = seed_resamples(pairs, n_items, n_boot, rng)
    resamples = by_seed.mean(axis=1)
    ci = interval(delta, per_seed, resamples, by_seed)
    word, reason = row_verdict(delta, ci, n_items)
    return {**ci, "per_seed": per_seed, "resamples": resamples, "by_seed": by_seed, "verdict": word,
            "reason": reason}  # fmt: skip


def _identities(result: dict[str, Any]) -> list[tuple[str, str]]:
    """A compared task's items as (id, gold) pairs: one item in two tasks only when both agree. Ids alone collide
    across unrelated tasks (small integers: SciFact's "1", "3", ...)."""
    return list(zip(result["keys"], result["gold"], strict=True))


def shared_items(results: dict[str, dict[str, Any]]) -> list[list[str]]:
    """Tasks whose items are one item set: at least half of the smaller task's queries are in the other under the
    same id with the same relevance judgements (XQuAD's questions in five languages, judged against the same
    paragraphs). Positional keys (pairs, documents: "0", "1", ...) never link tasks. Groups of two or more."""
    keysets = {t: set(_identities(r)) for t, r in results.items() if r.get("unit") == "queries" and r.get("keys")}
    groups: list[set[str]] = []
    for task, keys in keysets.items():
        linked = [g for g in groups
                  if any(2 * len(keys & keysets[o]) >= min(len(keys), len(keysets[o])) for o in g)]  # fmt: skip
        merged = {task}.union(*linked)
        groups = [g for g in groups if g not in linked] + [merged]
    return [sorted(g, key=list(results).index) for g in groups if len(g) > 1]


def joint_resamples(results: dict[str, dict[str, Any]], tasks: list[str], n_boot: int,
                    boot_seed: int) -> dict[str, np.ndarray]:  # fmt: skip
    """Per task, each seed's Δ (n_boot, seeds) under one bootstrap of the union of the tasks' items (id and gold):
    a resampled item counts in every task that has it, so the tasks' shared items move together and their mean's
    spread is not understated as if they were independent sets."""
    union = list(dict.fromkeys(k for t in tasks for k in _identities(results[t])))
    where = {t: {k: i for i, k in enumerate(_identities(results[t]))} for t in tasks}
    rng = item_rng(boot_seed, "+".join(tasks))
    out = {t: np.empty((n_boot, len(results[t]["pairs"]))) for t in tasks}
    for b in range(n_boot):
        drawn = [union[i] for i in rng.integers(0, len(union), len(union))]
        for t in tasks:
            idx = np.asarray([where[t][k] for k in drawn if k in where[t]], dtype=np.int64)
            # a draw with no item of a small task: its score is undefined there (left out as a NaN resample)
            out[t][b] = [cand(idx) - base(idx) if len(idx) else np.nan for base, cand in results[t]["pairs"]]
    return out


def group(results: dict[str, dict[str, Any]], n_boot: int, boot_seed: int) -> dict[str, Any] | None:
    """The mean over tasks of Δ and its CI: per seed the mean over tasks, per item resample the mean over tasks.
    Tasks with their own item sets are resampled on their own; tasks that share items (``shared_items``) are
    resampled together (``joint_resamples``), so the group's CI counts their shared items once."""
    if not results or any(r["resamples"] is None for r in results.values()):
        return None
    resamples = {t: r["resamples"] for t, r in results.items()}
    by_seed = {t: r.get("by_seed") for t, r in results.items()}
    linked = shared_items(results)
    for tasks in linked:
        joint = joint_resamples(results, tasks, n_boot, boot_seed)
        by_seed.update(joint)
        resamples.update({t: m.mean(axis=1) for t, m in joint.items()})
    delta = mean(r["delta"] for r in results.values())
    per_seed = np.mean([r["per_seed"] for r in results.values()], axis=0).tolist()
    split = None if any(m is None for m in by_seed.values()) else np.mean(list(by_seed.values()), axis=0)
    try:  # a resample undefined in any task is undefined for the mean
        ci = interval(delta, per_seed, np.mean(list(resamples.values()), axis=0), split)
    except NotTestable as exc:
        return {"delta": delta, "lo": None, "hi": None, "verdict": NOT_TESTED, "reason": str(exc)}
    items = group_items(results, linked)
    word, reason = row_verdict(delta, ci, items)
    return {"delta": delta, **ci, "items": items, "verdict": word, "reason": reason,
            **({"shared_items": linked} if linked else {})}  # fmt: skip


def group_items(results: dict[str, dict[str, Any]], linked: list[list[str]]) -> int:
    """A group mean's items for the `MIN_ITEMS` floor: its smallest item set (a task's own, or one shared by linked
    tasks, counted once), as each set is resampled on its own and keeps its small-sample shortfall whatever the
    others hold (benchmarks/bench_item_floor.py: a mean of 3 or 4 tasks of 8 items covers 92%, of 2 tasks of 30
    93.3%). Before stop 70 a group mean had no floor: three tasks of 8 items each gave it a verdict none of them
    could."""
    shared = {t for tasks in linked for t in tasks}
    sets = [len(r["keys"]) for t, r in results.items() if t not in shared]
    sets += [len({k for t in tasks for k in _identities(results[t])}) for tasks in linked]
    return min(sets)


def _minutes(state: dict[str, Any]) -> dict[str, float | int]:
    """Training and evaluation minutes summed over the recorded units (a unit finished by an earlier invocation
    keeps the time it took then; units recorded without a time are counted apart)."""
    units = state.get("done", {}).values()
    train = [u["seconds"] for u in units if "final" in u and "seconds" in u]
    evals = [u["seconds"] for u in units if "scores" in u and "seconds" in u]
    return {"train": round(sum(train) / 60, 1), "eval": round(sum(evals) / 60, 1),
            "units_without_time": sum("seconds" not in u for u in units)}  # fmt: skip


def _code_versions(state: dict[str, Any]) -> dict[str, int]:
    """{code version: units} over the recorded units ("not recorded": units from before ablate recorded it)."""
    return dict(Counter(unit.get("code") or "not recorded" for unit in state.get("done", {}).values()))


def _code_line(versions: dict[str, int]) -> str:
    if list(versions) == ["not recorded"]:
        return "- code: not recorded (every unit is from before ablate recorded its code version)"
    if len(versions) == 1:
        return f"- code: every unit trained and evaluated at `{next(iter(versions))}`"
    counts = ", ".join(f"`{v}` ({n} units)" for v, n in sorted(versions.items(), key=lambda kv: -kv[1]))
    return (f"- **code: units from {len(versions)} versions**: {counts}. A work folder resumed after the code "
            "changed mixes them; a rerun from an empty `out` folder gives one")


def _arm_codes(state: dict[str, Any], runs: dict[str, dict[int, dict[str, str]]]) -> dict[str, dict[str, list[str]]]:
    """{arm: {seed: the code versions of that arm's own units}}: its stages of that seed and its evaluation (the
    base and shared units are both arms' own)."""
    done = state.get("done", {})
    return {arm: {str(seed): sorted({value.get("code") or "not recorded" for unit, value in done.items()
                                     if unit == f"eval/{arm}-seed{seed}" or unit.startswith(f"seed{seed}/{arm}/")})
                  for seed in by_seed}
            for arm, by_seed in runs.items()}  # fmt: skip


def _code_splits(by_arm: dict[str, dict[str, list[str]]], reference: str) -> dict[str, list[str]]:
    """{arm: the seeds at which its units ran other code than the reference arm's}: there its Δ holds whatever the
    code change did (audit, stop 55: an arm added to a finished work folder after a commit showed a pure code
    effect of −1.42 points beside a header that named the two versions only by count). A split along seeds
    alone widens a CI; one along arms biases Δ."""
    ref = by_arm.get(reference, {})
    return {arm: seeds for arm, codes in by_arm.items() if arm != reference
            for seeds in [[s for s, c in codes.items() if c != ref.get(s)]] if seeds}  # fmt: skip


def _code_split_lines(rep: dict[str, Any]) -> list[str]:
    by_arm, ref = rep.get("code_by_arm", {}), rep["reference"]

    def short(codes: list[str]) -> str:
        return "+".join(f"`{c[:12]}`" for c in codes) or "none recorded"

    lines = []
    for arm, seeds in rep.get("code_splits", {}).items():
        shown = "; ".join(f"seed {s}: {short(by_arm[arm][s])} vs {short(by_arm[ref].get(s, []))}" for s in seeds[:4])
        lines.append(f"- **{arm} and {ref} ran other code at {len(seeds)} of {len(by_arm[arm])} seeds** ({shown}"
                     f"{'; …' if len(seeds) > 4 else ''}): their Δ there holds the code change too; a rerun "
                     "from an empty `out` folder runs one version")  # fmt: skip
    return lines


def _package_sets(state: dict[str, Any]) -> dict[str, int]:
    """{package set: units} over the units that recorded one (training units since stop 55, evaluations since
    stop 46): a torch upgrade between two invocations of one ablation changes the kernels later units ran on, which
    the code version (a git commit) does not show."""
    sets = [value.get("packages") or (value.get("settings") or {}).get("packages")
            for value in state.get("done", {}).values()]
    return dict(Counter(", ".join(f"{k} {v}" for k, v in sorted(p.items())) for p in sets if p))


def _package_line(sets: dict[str, int]) -> list[str]:
    if len(sets) < 2:
        return []
    counts = "; ".join(f"{s} ({n} units)" for s, n in sorted(sets.items(), key=lambda kv: -kv[1]))
    return [f"- **packages: units ran under {len(sets)} sets**: {counts}"]


def _dhnm(final: str) -> dict[str, Any] | None:
    return read_json(Path(final).parent / "dhnm_summary.json")


def build(cfg: dict[str, Any], config_path: Path, state: dict[str, Any], runs: dict[str, dict[int, dict[str, str]]],
          dev: list[str], test: list[str], overlap: list[dict[str, Any]] | None = None,
          train_overlap: list[dict[str, Any]] | None = None, work: Path | None = None,
          stage_digests: dict[str, dict[str, str] | str] | None = None,
          unchecked: list[str] | None = None) -> dict[str, Any]:  # fmt: skip
    """Everything the report shows, as JSON (the bootstrap resamples themselves are left out). ``overlap``: the
    dev/test task pairs that share texts (harness.ablate_overlap.dev_test_overlap), ``train_overlap``: the
    (training set, evaluation task) pairs that do (harness.ablate_overlap.train_test_overlap), each shown with the
    config's reason; ``unchecked``: the tasks neither check could read (no folder under the data root: official)."""
    n_boot, boot_seed, ref = int(cfg.get("n_boot", 1000)), int(cfg.get("bootstrap_seed", 0)), cfg["reference"]
    evals = {arm: {s: r["eval"] for s, r in by_seed.items()} for arm, by_seed in runs.items()}
    report: dict[str, Any] = {
        "name": cfg["name"], "out": rel(work) if work is not None else None,
        "config": rel(config_path), **config_identity(cfg, stage_digests or {}),
        "scale": cfg.get("scale", ""), "seeds": cfg["seeds"],
        "reference": ref, "dev": dev, "test": test, "chosen": state.get("chosen") if cfg.get("choose") else None,
        "bootstrap": {"n_boot": n_boot, "seed": boot_seed, "level": LEVEL,
                      "over": "items (paired bootstrap, normal) and seeds (t, n-1 df), half-widths in quadrature"},
        "arms": {}, "comparisons": {}, "compute_minutes": _minutes(state), "code": _code_versions(state),
        "code_by_arm": _arm_codes(state, runs), "packages": _package_sets(state),
        "dev_test_overlap": {"pairs": overlap or [], "why_acceptable": cfg["eval"].get("overlap_ok"),
                             "unchecked": unchecked or []},
        "train_test_overlap": {"pairs": train_overlap or [], "why_acceptable": cfg["eval"].get("train_overlap_ok"),
                               "unchecked": unchecked or []},
    }  # fmt: skip
    dims = [int(d) for d in cfg["eval"].get("dims", [])]
    for arm, by_seed in runs.items():
        report["arms"][arm] = {
            "runs": {s: {"eval": rel(r["eval"]), "final": rel(r["final"])} for s, r in by_seed.items()},
            **_seed_scores(by_seed, dev + test),
            "dhnm": {s: _dhnm(r["final"]) for s, r in by_seed.items() if _dhnm(r["final"]) is not None},
        }  # fmt: skip
    report["code_splits"] = _code_splits(report["code_by_arm"], ref)
    others = [arm for arm in runs if arm != ref]
    report["comparisons"] = {arm: _against(evals[ref], evals[arm], dev, test, n_boot, boot_seed) for arm in others}
    # an arm whose units reused the reference's models (the same resolved stage configs and starting model): its
    # Δ is 0 by construction; before stop 60 (a walk) it read "+0.00 [+0.00, +0.00] no effect shown" alone
    report["same_as_reference"] = [arm for arm in others
                                   if all(runs[arm][s]["final"] == runs[ref][s]["final"] for s in runs[ref])]
    if dims:
        report["dims"] = {d: {"arms": {arm: _seed_scores(by_seed, dev + test, d) for arm, by_seed in runs.items()},
                              "comparisons": {arm: _against(evals[ref], evals[arm], dev, test, n_boot, boot_seed, d)
                                              for arm in others}}
                          for d in dims}  # fmt: skip
    return report


def _seed_scores(by_seed: dict[int, dict[str, str]], tasks: list[str], dim: int | None = None) -> dict[str, Any]:
    """One arm's main score per task and seed, with the mean, sd and range over seeds."""
    scores = {t: {s: _scores(r["eval"], t, dim) for s, r in by_seed.items()} for t in tasks}
    return {
        "scores": scores,
        "mean": {t: mean(v.values()) for t, v in scores.items()},
        "sd": {t: float(np.std(list(v.values()), ddof=1)) if len(v) > 1 else 0.0 for t, v in scores.items()},
        "range": {t: [min(v.values()), max(v.values())] for t, v in scores.items()},
    }


def _against(ref: dict[int, str], cand: dict[int, str], dev: list[str], test: list[str], n_boot: int,
             boot_seed: int, dim: int | None = None) -> dict[str, Any]:  # fmt: skip
    """Per task and for the dev and test means, one arm against the reference (``compare``, ``group``)."""
    per_task = {t: compare(ref, cand, t, n_boot, boot_seed, dim) for t in dev + test}
    comp = {t: {k: v for k, v in r.items() if k not in ("resamples", "by_seed", "keys", "gold", "pairs")}
            for t, r in per_task.items()}  # fmt: skip
    comp["dev mean"] = group({t: per_task[t] for t in dev}, n_boot, boot_seed)
    comp["test mean"] = group({t: per_task[t] for t in test}, n_boot, boot_seed)
    return comp


def _ci(r: dict[str, Any] | None) -> tuple[str, str, str]:
    if r is None:
        return "—", "—", "not tested"
    ci = "—" if r.get("lo") is None else f"[{_edge(r['lo'])}, {_edge(r['hi'])}]"
    word = f"**{r['verdict']}**" if r["verdict"] in ("improves", "hurts") else r["verdict"]
    return f"{100 * r['delta']:+.2f}", ci, word + (f" ({r['reason']})" if r.get("reason") else "")


def _edge(x: float) -> str:
    """A CI edge in points: two decimals, more where two would print 0.00 for an edge that is not 0 (an interval
    read as touching 0 beside a verdict that it excludes 0)."""
    points = 100 * x
    return f"{points:+.2f}" if abs(points) >= 0.005 or points == 0 else f"{points:+.1e}"


def _tables(rep: dict[str, Any], arms: dict[str, Any], comparisons: dict[str, Any]) -> tuple[str, str]:
    """The scores table (mean ± sd over seeds; one seed has no sd: "± —", before stop 60 "± 0.00") and the table
    against the reference arm."""
    dev, test, ref = rep["dev"], rep["test"], rep["reference"]
    mark = {**{t: f"{t} (dev)" for t in dev}, **{t: f"{t} (test)" for t in test}}
    rows = []
    for arm, a in arms.items():
        cells = [f"{percent(a['mean'][t])} ± " + (f"{100 * a['sd'][t]:.2f}" if len(rep["seeds"]) > 1 else "—")
                 for t in dev + test]  # fmt: skip
        rows.append([f"**{arm}** (reference)" if arm == ref else arm, *cells])
    comp_rows = []
    for arm, comp in comparisons.items():
        for t in [*dev, "dev mean", *test, "test mean"]:
            comp_rows.append([arm, mark.get(t, f"*{t}*"), *_ci(comp[t])])
    return (md_table(rows, headers=["arm", *(mark[t] for t in dev + test)], disable_numparse=True),
            md_table(comp_rows, headers=["arm", "task", "Δ", "95% CI", "verdict"],
                     disable_numparse=True))  # fmt: skip


def _against_section(rep: dict[str, Any], against: str) -> list[str]:
    """How Δ and its CI are made, and their table; a config with the reference arm alone measures its seed spread
    and compares nothing (before, the method above an empty table)."""
    ref, b = rep["reference"], rep["bootstrap"]
    if not rep["comparisons"]:
        return [f"No other arm: this ablation measures {ref} alone (its scores ± the sd over seeds above); nothing "
                "is compared, so it shows no effect. Add an arm (`[arms.<name>]` with the setting to test) to "
                "compare.", ""]  # fmt: skip
    return [
        f"Δ = mean over seeds of (arm − {ref}), main score ×100. 95% CI over the test items and the training "
        f"seeds: Δ ± √((t·se_seeds)² + (z·se_items)²), se_items the sd of a paired bootstrap of the items "
        f"({b['n_boot']} resamples, seed {b['seed']}, the same items for both arms and every seed), se_seeds the sd "
        "of the per-seed Δ over √n, t on n − 1 degrees of freedom (92–99.5% coverage with 3 or 5 seeds in "
        "simulation); "
        "one seed: the item bootstrap's percentiles, training noise not covered, and no verdict. Group means: per "
        "seed and per "
        "resample the mean over tasks; tasks whose items share ids and relevance judgements are resampled together "
        "(below). Verdict *improves* / *hurts* only when the CI excludes 0 (with two seeds or more: by more than "
        f"twice the Monte Carlo sd of its edge; {b['n_boot']} resamples estimate se_items to about "
        f"{100 / math.sqrt(2 * (b['n_boot'] - 1)):.1f}%; an edge nearer 0 could fall on its other side for another "
        f"bootstrap seed: *no effect shown*, with the reason; a task or group mean of fewer than {MIN_ITEMS} "
        "items gets none, its interval covering under 95%), otherwise *no effect shown*. Only the test rows and the "
        "test mean are evidence; dev rows may be optimistic by whatever was chosen on them. Each row is its own "
        "95% CI, with no correction for their number: of many rows, some may exclude 0 by chance, so a claim rests "
        "on the test mean, or on a row named before the run.", "",
        *_few_seeds(len(rep.get("seeds", []))),
        against, "",
    ]  # fmt: skip


def _few_seeds(n: int) -> list[str]:
    """Two seeds: t on one degree of freedom is 12.7, so an effect must be large to show, which the report said
    only through its widths (before stop 67; a user's walk read a −14-point Δ with CI [−66, +38]). One seed: no
    verdict at all (since stop 69)."""
    if n == 1:
        return ["**1 seed**: each CI covers the test items alone, not the training noise a second seed would show, "
                "so no row gets a verdict (*no effect shown*, saying so); `harness ablate CONFIG --plan` gives "
                "what more seeds can expect.", ""]  # fmt: skip
    if n != 2:
        return []
    return ["**2 seeds**: t on 1 degree of freedom is 12.7 (4.3 with 3 seeds, 2.8 with 5), so the seed term of each "
            "CI is 12.7 × se_seeds and only a large effect can show; `harness ablate CONFIG --plan` gives the CI "
            "half-width and power a replication with more seeds can expect.", ""]


def _dims_section(rep: dict[str, Any]) -> list[str]:
    """Per MRL dim (``eval.dims``), the same two tables from the truncated vectors."""
    if not rep.get("dims"):
        return []
    lines = ["## At MRL dims", "",
             "Each dim d scores the first d dimensions of the same vectors as they are, not renormalised, as "
             "mteb's `embed_dim` gives them (`harness run --dims`: one encode, scored again per dim), with the "
             "same CI over the same item resamples; per-item outputs from each run's "
             "`predictions/embed_dim_<d>/`.", ""]  # fmt: skip
    for dim, at in rep["dims"].items():
        scores, against = _tables(rep, at["arms"], at["comparisons"])
        lines += [f"### dim {dim}", "", scores, "", *([against, ""] if at["comparisons"] else [])]
    return lines


def render(rep: dict[str, Any]) -> str:
    dev, test, ref = rep["dev"], rep["test"], rep["reference"]
    scores, against = _tables(rep, rep["arms"], rep["comparisons"])
    chosen = rep.get("chosen")
    lines = [
        f"# Ablation: {rep['name']}", "",
        _anchor_line(rep),
        f"- config: `{rep['config']}` (regenerate: `harness ablate {rep['config']}`)",
        f"- scale: {rep['scale'] or 'not stated'}",
        f"- compute: {rep['compute_minutes']['train']} min training + {rep['compute_minutes']['eval']} min "
        "evaluation, summed over the recorded units"
        + (f" ({rep['compute_minutes']['units_without_time']} units recorded without a time)"
           if rep["compute_minutes"]["units_without_time"] else ""),
        *([_code_line(rep["code"])] if rep.get("code") else []),
        *_code_split_lines(rep),
        *_package_line(rep.get("packages", {})),
        f"- seeds: {', '.join(str(s) for s in rep['seeds'])}; reference arm: **{ref}**",
        f"- dev tasks (settings may be chosen on these): {', '.join(dev)}",
        f"- test tasks (final settings only, never used for a choice): {', '.join(test)}",
        *_overlap_lines(rep),
        *_train_overlap_lines(rep),
        "- choice on dev: " + (f"`{chosen['key']}` = {chosen['value']} among {chosen['values']} (arm {chosen['arm']}, "
                               f"seed {chosen['seed']}, mean dev main score)" if chosen else "none (no [choose])"),
        "", "## Scores (main score ×100, mean ± sd over seeds)", "", scores,
        "", f"## Against the reference arm ({ref})", "",
        *_against_section(rep, against),
        *[f"- **{arm} trained the reference's models**: its stage configs and starting model equal {ref}'s at every "
          "seed (each unit reused the reference's), so its Δ is 0 by construction, not a measured absence of "
          "effect; give it the setting it should test" for arm in rep.get("same_as_reference", [])],
        *_shared_note(rep),
        "![scores per arm](scores.png)", "",
        *_dims_section(rep),
    ]  # fmt: skip
    lines += _dhnm_section(rep)
    lines += ["## Runs", "", "Every score above is a run directory's `main_score`; per seed:", ""]
    for arm, a in rep["arms"].items():
        for s, r in a["runs"].items():
            lines.append(f"- {arm}, seed {s}: evaluation `{r['eval']}`, model `{r['final']}`")
    return "\n".join(lines) + "\n"


def _anchor_line(rep: dict[str, Any]) -> str:
    """What the report's paths (the config, the regenerate command, the runs) are relative to: the folder
    `harness ablate` ran in, and where that is from the report's folder (``ran_in_from_report``; reports written
    before it was recorded say the folder alone). Before, nothing said so (a walk: from the repository root a run
    read `../work/tiny/evals/hard-seed0`, and a rerun from another folder rewrote every path)."""
    where = rep.get("ran_in_from_report")
    said = "" if where is None else f" (`{where}` from this report's folder)"
    return f"- paths here are relative to the folder `harness ablate` ran in{said}, where the regenerate command runs"


def _unchecked(found: dict[str, Any]) -> str:
    """What an overlap check could not read: tasks without a folder under the data root, whose official rows it
    never saw (before stop 69, a statistician's walk, its line said "none" all the same)."""
    tasks = found.get("unchecked") or []
    return f"; not checked: {', '.join(tasks)} (no folder under the data root: official data)" if tasks else ""


def _overlap_lines(rep: dict[str, Any]) -> list[str]:
    """Dev and test tasks that share texts: what a choice on dev also saw of the test items, and why it stands."""
    found = rep.get("dev_test_overlap", {})
    if not found.get("pairs"):
        return ["- dev/test overlap: none (no text of a dev task is in a test task, after NFKC, lower case and "
                f"without whitespace or punctuation){_unchecked(found)}"]  # fmt: skip
    pairs = "; ".join(f"{o['dev']} and {o['test']} share {o['shared']} of the test task's {o['test_texts']} texts"
                      for o in found["pairs"])  # fmt: skip
    return [f"- **dev/test overlap**: {pairs}. Accepted because: {found.get('why_acceptable')}{_unchecked(found)}"]


def _train_overlap_lines(rep: dict[str, Any]) -> list[str]:
    """Evaluation tasks that share texts with the training data: how much of a score may be memory, and why it
    stands. Reports written before the check have no entry and show none."""
    if "train_test_overlap" not in rep:
        return []
    found = rep["train_test_overlap"]
    if not found["pairs"]:
        return ["- train/test overlap: none (no text of the training data is in a dev or test task, after NFKC, "
                f"lower case and without whitespace or punctuation){_unchecked(found)}"]  # fmt: skip
    pairs = "; ".join(f"{o['train']} and {o['task']} share {o['shared']} of the task's {o['task_texts']} texts "
                      f"({o['items_with_shared']} of its {o['task_items']} {o['items']})" for o in found["pairs"])
    return [f"- **train/test overlap**: {pairs}. Accepted because: {found.get('why_acceptable')}{_unchecked(found)}"]


def _shared_note(rep: dict[str, Any]) -> list[str]:
    """Which tasks of a group mean are one item set (the same query ids and judgements), resampled together."""
    linked = {tuple(g) for comp in rep["comparisons"].values() for name in ("dev mean", "test mean")
              if comp.get(name) for g in comp[name].get("shared_items", [])}  # fmt: skip
    if not linked:
        return []
    groups = "; ".join(", ".join(g) for g in sorted(linked))
    return [f"Tasks that share their items (the same query ids with the same relevance judgements, e.g. one "
            f"question set in several languages), resampled together in the group means' CIs: {groups}. Their "
            "per-task rows are not independent evidence.", ""]  # fmt: skip


def _dhnm_section(rep: dict[str, Any]) -> list[str]:
    rows = []
    for arm, a in rep["arms"].items():
        for seed, summary in a["dhnm"].items():
            for task, s in summary.items():
                pools = s.get("pools")  # summaries from before stop 36 do not say how full the slots started
                rows.append([arm, seed, task, s["mode"], s["k"],
                             f"{pools['mean_initial_slots']:.2f} ({pools['queries_without_hard_negative']})"
                             if pools else "—", f"{s['draws_per_query']:.2f}", s["checked"],
                             s["initial_drops"], s["decay_replacements"], f"{100 * s['replacement_rate']:.1f}%",
                             s["used"], s["exhausted"]])  # fmt: skip
    if not rows:
        return []
    headers = ["arm", "seed", "task", "mode", "K", "slots filled (none)", "draws/query", "checked", "initial drops",
               "decay repl.", "repl. rate", "used", "exhausted"]  # fmt: skip
    return ["## DHNM per task (from each run's dhnm_summary.json)", "",
            "*slots filled*: hard negatives per query at the start, of K, on average (queries with none): a pool "
            "shorter than the skipped top ranks + K leaves slots empty. *used*: replaced negatives that training "
            "later served (a replacement acts only when its query comes back).", "",
            md_table(rows, headers=headers, disable_numparse=True), ""]  # fmt: skip


def plot(rep: dict[str, Any], path: Path) -> None:
    """One panel per task: each arm's seeds (dots) and their mean (bar), dev and test panels labelled."""
    from reporting.plots import plt

    tasks = rep["dev"] + rep["test"]
    arms = list(rep["arms"])
    fig, axes = plt.subplots(1, len(tasks), figsize=(2.2 + 2.0 * len(tasks) * max(1, len(arms) / 3), 3.4),
                             squeeze=False)  # fmt: skip
    for ax, task in zip(axes[0], tasks, strict=True):
        for i, arm in enumerate(arms):
            values = [100 * v for v in rep["arms"][arm]["scores"][task].values()]
            ax.bar(i, mean(values), color="#9ab" if arm != rep["reference"] else "#579", alpha=0.8)
            ax.scatter([i] * len(values), values, color="k", s=10, zorder=3)
        ax.set_xticks(range(len(arms)), arms, rotation=30, ha="right", fontsize=8)
        ax.set_title(f"{task} ({'dev' if task in rep['dev'] else 'test'})", fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("main score ×100 (dots: seeds)")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


def write_report(cfg: dict[str, Any], config_path: Path, state: dict[str, Any],
                 runs: dict[str, dict[int, dict[str, str]]], dev: list[str], test: list[str],
                 out: Path, overlap: list[dict[str, Any]] | None = None,
                 train_overlap: list[dict[str, Any]] | None = None,
                 work: Path | None = None,
                 stage_digests: dict[str, dict[str, str] | str] | None = None,
                 unchecked: list[str] | None = None) -> dict[str, Any]:  # fmt: skip
    """report.json + report.md + scores.png under ``out``; returns the report dict. ``work``: the ablation's `out`
    (recorded as `out`, and as `out_from_report` to tell its report folder's owner from any working directory).
    Its paths are relative to the working directory, recorded from ``out`` as `ran_in_from_report`.
    ``stage_digests``: harness.ablate_config.stage_config_digests of the config."""
    rep = build(cfg, config_path, state, runs, dev, test, overlap, train_overlap, work, stage_digests, unchecked)
    if work is not None:
        rep["out_from_report"] = out_from_report(work, out)
    rep["ran_in_from_report"] = ran_in_from(out)  # what the paths are relative to
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "report.json", rep)
    atomic_write_text(out / "report.md", render(rep))
    plot(rep, out / "scores.png")
    return rep
