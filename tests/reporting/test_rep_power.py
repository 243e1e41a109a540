"""`harness ablate --plan`: the projected power of a replication (reporting/power.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.errors import UsageError
from reporting.ablation import half_width, interval
from reporting.power import MOST, plan_rows, power, project, projected_power, seeds_needed

REPO = Path(__file__).resolve().parents[2]
REPORTS = sorted((REPO / "reports" / "ablations").glob("*/report.json"))


def shown_rate(n: int, sd_seeds: float, sd_items: float, delta: float, trials: int = 2000) -> float:
    """How often the report's interval excludes 0: per-seed Δ = delta + seed noise + one shared item draw."""
    rng = np.random.default_rng(11)
    hits = 0
    for _ in range(trials):
        per_seed = delta + rng.normal(0.0, sd_seeds, n) + rng.normal(0.0, sd_items)
        estimate = float(np.mean(per_seed))
        ci = interval(estimate, per_seed.tolist(), estimate + rng.normal(0.0, sd_items, 200))
        hits += ci["lo"] > 0 or ci["hi"] < 0
    return hits / trials


@pytest.mark.parametrize(("n", "sd_seeds", "sd_items", "k"),
                         [(3, 1.0, 0.1, 0.0), (3, 1.0, 0.1, 3.5), (3, 0.3, 1.0, 2.5), (5, 1.0, 1.0, 2.5),
                          (10, 1.0, 0.3, 1.5), (20, 1.0, 1.0, 3.5)])  # fmt: skip
def test_power_is_the_rate_the_interval_shows_an_effect_at(n, sd_seeds, sd_items, k) -> None:
    """At a true Δ of k estimate sds. 2000 trials: the binomial sd of a rate is at most 0.011, so 0.04 is 3.5 of
    them; the 200-draw se_items of each trial adds a little spread the formula (a known se_items) leaves out. A
    fixed half-width (the t quantile at the true sd) was off by 0.26 at 3 seeds, seed noise only, k = 2.5."""
    se_seeds = sd_seeds / math.sqrt(n)
    delta = k * math.hypot(se_seeds, sd_items)
    assert abs(shown_rate(n, sd_seeds, sd_items, delta) - power(delta, se_seeds, sd_items, n)) <= 0.04


def items_and_seeds_rate(n: int, sd_items: float, sd_seeds: float, sd_item_seed: float, delta: float,
                         n_items: int = 400, trials: int = 1000) -> float:
    """The rate the interval shows an effect at, from per-item and per-seed Δ: Δ + a_i + b_s + e_is, the item
    bootstrap of the seed-averaged Δ as the reports draw it (200 resamples)."""
    rng = np.random.default_rng(5)
    hits = 0
    for _ in range(trials):
        per_item = (delta + rng.normal(0.0, sd_items, n_items)[None, :] + rng.normal(0.0, sd_seeds, (n, 1))
                    + rng.normal(0.0, sd_item_seed, (n, n_items)))  # fmt: skip
        per_seed = per_item.mean(axis=1)
        resamples = per_item.mean(axis=0)[rng.integers(0, n_items, (200, n_items))].mean(axis=1)
        ci = interval(float(per_seed.mean()), per_seed.tolist(), resamples)
        hits += ci["lo"] > 0 or ci["hi"] < 0
    return hits / trials


@pytest.mark.parametrize(("sd_items", "sd_seeds", "sd_item_seed", "delta"),
                         [(1.5, 0.1, 0.0, 0.12), (0.0, 0.05, 2.0, 0.08), (1.0, 0.1, 1.0, 0.12)])  # fmt: skip
def test_a_projection_from_five_seeds_brackets_the_power_at_more(sd_items, sd_seeds, sd_item_seed, delta) -> None:
    """Review 39: a report cannot tell the items' own noise from item × seed noise, which more seeds average out.
    From the expected se_seeds and se_items of a 5-seed report (400 items), the power simulated at 10 and 20 seeds
    lies between the estimate (all of se_items the items') and the hopeful projection (as much as can be item × seed),
    and equals the first without item × seed noise and the second with nothing else; with it, the estimate alone
    had said 0.34 at 20 seeds where the rate is 0.69. 1000 trials: binomial sd at most 0.016, 0.05 is 3 of them."""
    n, n_items = 5, 400
    se_seeds = math.sqrt((sd_seeds**2 + sd_item_seed**2 / n_items) / n)
    se_items = math.sqrt((sd_items**2 + sd_item_seed**2 / n) / n_items)
    for n_new in (10, 20):
        rate = items_and_seeds_rate(n_new, sd_items, sd_seeds, sd_item_seed, delta)
        estimate, hopeful = (projected_power(delta, se_seeds, se_items, n, n_new, s) for s in ("estimate", "hopeful"))
        assert min(estimate, hopeful) - 0.05 <= rate <= max(estimate, hopeful) + 0.05
        if sd_item_seed == 0:
            assert rate == pytest.approx(estimate, abs=0.05)
        if sd_items == 0:
            assert rate == pytest.approx(hopeful, abs=0.05)


@pytest.mark.parametrize(("sd_items", "sd_seeds", "sd_item_seed", "delta"),
                         [(1.5, 0.1, 0.0, 0.12), (0.0, 0.05, 2.0, 0.08), (1.0, 0.1, 1.0, 0.12)])  # fmt: skip
def test_with_the_item_seed_part_measured_the_estimate_is_the_power_at_more_seeds(sd_items, sd_seeds, sd_item_seed,
                                                                                 delta) -> None:  # fmt: skip
    """Reports since stop 40 hold se_item_seed (reporting.ablation's ``item_seed_variance``), the item × seed part
    of se_items: the estimate then lets that part shrink with more seeds and is the simulated rate at 10 and 20
    seeds within 0.05 in each case the bracket above only bounds (1000 trials: binomial sd at most 0.016)."""
    n, n_items = 5, 400
    se_seeds = math.sqrt((sd_seeds**2 + sd_item_seed**2 / n_items) / n)
    se_items = math.sqrt((sd_items**2 + sd_item_seed**2 / n) / n_items)
    split = math.sqrt(sd_item_seed**2 / (n * n_items))
    for n_new in (10, 20):
        rate = items_and_seeds_rate(n_new, sd_items, sd_seeds, sd_item_seed, delta)
        assert rate == pytest.approx(projected_power(delta, se_seeds, se_items, n, n_new, "estimate", split), abs=0.05)


def test_a_plan_from_a_measured_split_says_so_and_drops_the_hopeful_bound(capsys, monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    report = json.loads((REPO / "reports/ablations/dhnm_decoder/report.json").read_text(encoding="utf-8"))
    row = report["comparisons"]["dynamic"]["test mean"]
    row["se_item_seed"] = row["se_items"] / 2  # a quarter of the items' variance is item × seed
    row["delta"] = 0.6  # an effect 80% power is reachable for (the rerun of stop 51 measured +0.00)
    plans = plan_rows(report, "dynamic", "test mean", None, 0.8)
    need = plans[0]["needed"][0]
    assert set(need) == {"estimate", "cautious"}
    with_split = seeds_needed(row["delta"], row["se_seeds"], row["se_items"], 5, 0.8, "estimate", row["se_item_seed"])
    assert need["estimate"] == with_split <= seeds_needed(row["delta"], row["se_seeds"], row["se_items"], 5, 0.8)
    floor = 1.959964 * math.sqrt(row["se_items"] ** 2 * 3 / 4)
    assert plans[0]["floors"][0] == pytest.approx(floor, rel=1e-5)
    from reporting.power import render_plan

    text = render_plan(report, plans, 0.8)
    assert "(of its variance 25% item × seed, measured)" in text and f"leaves ±{100 * floor:.2f}\n" in text + "\n"
    assert f"estimate {with_split} seeds, cautious " in text and "hopeful" not in text.split("## dynamic")[1]


@pytest.mark.parametrize("path", REPORTS, ids=lambda p: p.parent.name)
def test_the_projection_at_the_reports_own_seeds_is_its_interval(path: Path) -> None:
    """Every committed report's rows with a seed spread: projecting to the same n gives back its half-width, in
    every scenario but the cautious one (which widens the seeds' part on purpose)."""
    report = json.loads(path.read_text(encoding="utf-8"))
    n = len(report["seeds"])
    rows = [r for comp in report["comparisons"].values() for r in comp.values() if r and r.get("se_seeds")]
    assert n >= 2 and rows
    for row in rows:
        for item_seed in (0.0, min(row["se_seeds"], row["se_items"]) ** 2):
            se_s, se_i, _ = project(row["se_seeds"], row["se_items"], n, n, item_seed)
            assert float(half_width(se_s, se_i, n)) == pytest.approx((row["hi"] - row["lo"]) / 2, rel=1e-9)


def test_seeds_needed_is_the_first_count_reaching_the_target() -> None:
    assert power(0.0, 0.1, 0.1, 10**6) == pytest.approx(0.05, abs=1e-3)  # no effect: the interval's own level
    need = seeds_needed(0.22, 0.076, 0.069, 5, 0.8)
    assert need is not None
    assert projected_power(0.22, 0.076, 0.069, 5, need) >= 0.8 > projected_power(0.22, 0.076, 0.069, 5, need - 1)
    assert seeds_needed(0.5, 0.076, 0.069, 5, 0.8) < need  # a larger Δ needs fewer
    assert seeds_needed(0.22, 0.076, 0.069, 5, 0.8, "hopeful") <= need <= seeds_needed(0.22, 0.076, 0.069, 5, 0.8,
                                                                                        "cautious")  # fmt: skip
    # the items' noise alone, 1.96 × 0.2 = ±0.39, reaches past Δ 0.3; with se_seeds 0.01 at most 0.01² of se_items²
    # can be item × seed noise: no number of seeds gets 80%, even hoping
    assert seeds_needed(0.3, 0.01, 0.2, 5, 0.8, "hopeful") is None


def _seeds(k: int | None) -> str:
    return f"{k} seeds" if k is not None else f"none up to {MOST}"


def test_plan_of_a_committed_report_names_the_seeds_and_the_item_floor(capsys, monkeypatch, tmp_path) -> None:
    """The committed dhnm_decoder report measures its item × seed split: estimate and cautious, the floor the items'
    own noise alone; the same report without the split (as written before stop 40) gets the hopeful bound too. Its
    arm with an effect to plan for: none (in-batch only), +0.40 since stop 51's rerun (dynamic's +0.22 before)."""
    monkeypatch.chdir(REPO)
    assert main(["ablate", "configs/ablations/dhnm_decoder.toml", "--plan", "--arm", "none"]) == 0
    out = capsys.readouterr().out
    report = json.loads((REPO / "reports/ablations/dhnm_decoder/report.json").read_text(encoding="utf-8"))
    row = report["comparisons"]["none"]["test mean"]
    split = row["se_item_seed"]
    assert 0 < split < row["se_items"]
    need = {s: seeds_needed(row["delta"], row["se_seeds"], row["se_items"], 5, 0.8, s, split)
            for s in ("estimate", "cautious")}  # fmt: skip
    assert (f"- 80% power at Δ {100 * row['delta']:+.2f}: estimate {_seeds(need['estimate'])}, cautious "
            f"{_seeds(need['cautious'])}") in out
    floor = 1.959964 * math.sqrt(row["se_items"] ** 2 - split**2)
    assert f"the items' noise leaves ±{100 * floor:.2f}\n" in out
    assert f"## none, test mean: Δ {100 * row['delta']:+.2f}" in out and "## dynamic" not in out
    assert "| 5       |" in out and "| 3       |" not in out  # no row below the report's own seeds
    assert main(["ablate", "reports/ablations/dhnm_decoder/report.json", "--plan", "--task", "STS13",
                 "--delta", "0.5", "--power", "0.9"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "## dynamic, STS13" in out and "## none, STS13" in out and "90% power at Δ +0.50: estimate " in out

    for comp in report["comparisons"].values():
        for r in comp.values():
            if r:
                r.pop("se_item_seed", None)
    (tmp_path / "report.json").write_text(json.dumps(report), encoding="utf-8")
    assert main(["ablate", str(tmp_path / "report.json"), "--plan", "--arm", "none"]) == 0
    out = capsys.readouterr().out
    need = {s: seeds_needed(row["delta"], row["se_seeds"], row["se_items"], 5, 0.8, s)
            for s in ("estimate", "hopeful", "cautious")}  # fmt: skip
    assert (f"- 80% power at Δ {100 * row['delta']:+.2f}: estimate {_seeds(need['estimate'])}, hopeful "
            f"{_seeds(need['hopeful'])}, cautious {_seeds(need['cautious'])}") in out
    assert f"the items' noise leaves ±{100 * 1.959964 * row['se_items']:.2f} (estimate)" in out


def test_an_arm_without_an_effect_or_a_tested_row_is_said_and_the_others_planned(capsys, monkeypatch) -> None:
    """Review 39: the in-batch arm's Δ −0.01 was planned as if it were an effect (its "5%" the false-positive rate);
    a test mean left untested (null: a task of it not tested) was a traceback."""
    monkeypatch.chdir(REPO)
    assert main(["ablate", "configs/ablations/dhnm_decoder.toml", "--plan"]) == 0
    out = capsys.readouterr().out  # since stop 51's rerun dynamic is the arm without an effect (+0.00), none +0.40
    assert ("## dynamic, test mean: the observed Δ is within one sd of 0: no effect to plan for at it; give "
            "--delta") in out
    assert "## none, test mean: Δ +0.40" in out
    report = json.loads((REPO / "reports/ablations/dhnm_decoder/report.json").read_text(encoding="utf-8"))
    report["comparisons"]["dynamic"]["test mean"] = None
    plans = plan_rows(report, None, "test mean", None, 0.8)
    assert plans[1]["skip"] == "not tested in this report (a task of the mean was not tested)"
    assert "skip" not in plans[0]
    report["comparisons"]["none"]["test mean"] = None
    with pytest.raises(UsageError, match="--task test mean: no arm of this report can be planned for: none: not "):
        plan_rows(report, None, "test mean", None, 0.8)


@pytest.mark.parametrize(("argv", "message"), [
    (["--arm", "dynamic"], "--arm: only with --plan"),
    (["--plan", "--arm", "dynamc"], "--arm dynamc: not an arm compared in this report (arms: none, dynamic; "
                                    "static is the reference)"),
    (["--plan", "--task", "SciFact"], "--task SciFact: not a test row of this report (test rows: "
                                      "XQuADRetrievalEnEn, TrecQAReranking, STS13, test mean)"),
    (["--power", "0.9"], "--power: only with --plan"),
    (["--plan", "--power", "1"], "--power 1.0: must be between 0 and 1 (exclusive)"),
    (["--plan", "--delta", "0"], "--delta 0.0: must be a finite, non-zero number of points"),
])  # fmt: skip
def test_plan_options_are_checked(capsys, monkeypatch, argv, message) -> None:
    """SciFact is dhnm_decoder's dev task: its row is no evidence, so no plan is made on it."""
    monkeypatch.chdir(REPO)
    assert main(["ablate", "configs/ablations/dhnm_decoder.toml", *argv]) == 2
    assert f"harness: error: {message}" in capsys.readouterr().err


def test_a_plan_needs_a_report_with_a_seed_spread(tmp_path, capsys, monkeypatch) -> None:
    absent = tmp_path / "report.json"
    assert main(["ablate", str(absent), "--plan"]) == 2
    assert f"harness: error: {absent}: no such report (the report.json `harness ablate` writes)" in (
        capsys.readouterr().err)
    config = REPO / "configs/ablations/dhnm_decoder.toml"
    renamed = tmp_path / "renamed.toml"
    renamed.write_text(config.read_text(encoding="utf-8").replace('name = "dhnm_decoder"', 'name = "renamed"'))
    monkeypatch.chdir(REPO)
    assert main(["ablate", str(renamed), "--plan"]) == 2
    assert (f"{renamed}: no report at reports/ablations/renamed/report.json (relative to the working directory "
            f"{REPO}): run `harness ablate {renamed}` first, or run --plan where it was run") in capsys.readouterr().err
    one_seed = {"name": "x", "reference": "a", "seeds": [0], "dev": ["D"], "test": ["T"],
                "comparisons": {"b": {"T": {"delta": 0.01, "lo": -0.01, "hi": 0.03, "se_items": 0.01,
                                            "se_seeds": None}, "test mean": {}}}}  # fmt: skip
    with pytest.raises(UsageError, match=r"b: no seed spread to plan from \(1 seed; a plan needs the sd over at"):
        plan_rows(one_seed, None, "T", None, 0.8)
    # without --task the error names the row, not an option the user never gave (a walk: "--task test mean: …")
    one_seed["arms"] = {"a": {}, "b": {}}
    one_seed["comparisons"]["b"]["test mean"] = one_seed["comparisons"]["b"]["T"]
    (tmp_path / "one_seed.json").write_text(json.dumps(one_seed), encoding="utf-8")
    assert main(["ablate", str(tmp_path / "one_seed.json"), "--plan"]) == 2
    err = capsys.readouterr().err
    assert "harness: error: test mean: no arm of this report can be planned for: b: no seed spread" in err
    assert "--task" not in err
    assert main(["ablate", "reports/ablations/dhnm_decoder/report.json"]) == 2
    assert ("reports/ablations/dhnm_decoder/report.json: a report, not an ablation config; add --plan to plan a "
            "replication") in capsys.readouterr().err


def test_a_report_older_than_its_config_is_named_stale(capsys, monkeypatch, tmp_path) -> None:
    """Review 39 L9: `--plan CONFIG` read the report the config names without checking that it still holds the
    config's seeds, reference, arms and test tasks; a report left from before an edit was planned from silently."""
    monkeypatch.chdir(REPO)
    text = (REPO / "configs/ablations/dhnm_decoder.toml").read_text(encoding="utf-8")
    assert "seeds = [0, 1, 2, 3, 4]" in text
    edited = tmp_path / "dhnm_decoder.toml"
    edited.write_text(text.replace("seeds = [0, 1, 2, 3, 4]", "seeds = [0, 1, 2, 3, 4, 5, 6]"), encoding="utf-8")
    assert main(["ablate", str(edited), "--plan", "--arm", "dynamic"]) == 0
    out = capsys.readouterr().out
    assert f"**Stale report**: {edited} has changed since reports/ablations/dhnm_decoder/report.json was written" in out
    assert "seeds: the config [0, 1, 2, 3, 4, 5, 6], the report [0, 1, 2, 3, 4]" in out and "## dynamic" in out
    assert "The report predates the digests of stage config files: edits of those files are not seen." in out
    assert main(["ablate", "configs/ablations/dhnm_decoder.toml", "--plan", "--arm", "dynamic"]) == 0
    assert "Stale" not in capsys.readouterr().out


def test_a_seed_sd_below_the_measured_item_seed_part_is_raised_to_it() -> None:
    """Review 40 M1: se_seeds² holds the item × seed part too, so a pilot whose se_seeds came out below the measured
    se_item_seed (24 committed rows; about 63% of 3-seed pilots where seed noise is mostly item × seed) planned
    from a seed variance the model rules out, and too few seeds. The projection floors it at the split."""
    from reporting.power import render_plan

    low, split, se_items = 0.010, 0.015, 0.02
    floored = projected_power(0.02, low, se_items, 3, 10, "estimate", split)
    assert floored == pytest.approx(projected_power(0.02, split, se_items, 3, 10, "estimate", split), abs=1e-12)
    shared = split**2 * 3 / 10  # unfloored, the projection's variance se_seeds'² + se_items'² − shared lacked E/n'
    raw = power(0.02, low * math.sqrt(3 / 10), math.sqrt(se_items**2 - split**2 + shared), 10, shared)
    assert floored < raw
    row = {"delta": 0.05, "lo": 0.001, "hi": 0.099, "se_seeds": low, "se_items": se_items, "se_item_seed": split}
    report = {"name": "x", "reference": "a", "seeds": [0, 1, 2], "test": ["T"], "arms": {"a": {}, "b": {}},
              "comparisons": {"b": {"test mean": row}}}  # fmt: skip
    text = render_plan(report, plan_rows(report, None, "test mean", None, 0.8), 0.8)
    # and says why its row at the report's 3 seeds is wider than the report's CI (a statistician's walk, stop 69)
    assert ("se_seeds is planned from 1.500, the item × seed part it holds, so the row at 3 seeds is wider than this "
            "report's own CI") in text
    row.update(se_items=0.0, se_item_seed=0.0, se_seeds=0.01)  # no item noise at all: no share to print, no crash
    assert "of its variance" not in render_plan(report, plan_rows(report, None, "test mean", None, 0.8), 0.8)


def test_staleness_ignores_order_names_other_settings_and_survives_a_refused_arm(monkeypatch, tmp_path) -> None:
    """Review 40 M3: seeds or arms listed in another order are the same ablation; an edit of an arm's settings
    (which the names alone miss) is told by the config digest reports record since stop 40; an --arm the report
    lacks is refused with the staleness said."""
    from reporting.ablation import config_digest
    from reporting.power import run_plan, stale

    monkeypatch.chdir(REPO)
    report = json.loads((REPO / "reports/ablations/dhnm_decoder/report.json").read_text(encoding="utf-8"))
    assert report.pop("config_digest")  # the committed report records one (the other test: it matches its config)
    same = {"seeds": report["seeds"][::-1], "reference": report["reference"], "arms": list(report["arms"])[::-1],
            "test": report["test"], "config_digest": "0" * 16}  # fmt: skip
    assert stale(report, same) == []  # a report without a digest is checked by names only
    report["config_digest"] = config_digest({"name": "dhnm_decoder"})
    assert stale(report, same) == ["its settings (arms, stages or eval options) differ from the ones the report "
                                   "was written with"]  # fmt: skip
    assert stale(report, {**same, "config_digest": report["config_digest"]}) == []
    (tmp_path / "report.json").write_text(json.dumps(report), encoding="utf-8")
    with pytest.raises(UsageError, match=r"--arm fresh: not an arm compared.*\*\*Stale report\*\*.*arms: the config"):
        run_plan(tmp_path / "a.toml", tmp_path / "report.json", "fresh", "test mean", None, 0.8,
                 {**same, "arms": [*same["arms"], "fresh"]})  # fmt: skip


def test_a_stage_config_edited_since_the_report_is_named_stale(capsys, monkeypatch, tmp_path) -> None:
    """A walk: the config digest covered the ablation TOML alone, so `temperature = 0.05` → `0.07` in the stage
    config a [[shared]] table names (configs/weak.toml) left --plan silent, though `harness ablate` refuses that
    edit for finished units. Reports now record each stage config's keys and the ablation's top-level keys by
    digest (``config_identity``, as `build` writes them), and the note names the file and keys that changed."""
    from harness.ablate_config import load_ablation, stage_config_digests
    from reporting.ablation import config_identity
    from reporting.power import stale

    monkeypatch.chdir(REPO)
    weak, stage = tmp_path / "weak.toml", tmp_path / "stage.toml"
    weak.write_text((REPO / "configs/weak.toml").read_text(encoding="utf-8"), encoding="utf-8")
    stage.write_text((REPO / "configs/ablations/dhnm_decoder_stage.toml").read_text(encoding="utf-8"), encoding="utf-8")
    text = (REPO / "configs/ablations/dhnm_decoder.toml").read_text(encoding="utf-8")
    config = tmp_path / "dhnm_decoder.toml"
    config.write_text(text.replace('config = "configs/weak.toml"', f'config = "{weak}"')
                      .replace('config = "configs/ablations/dhnm_decoder_stage.toml"', f'config = "{stage}"')
                      .replace('name = "dhnm_decoder"\n', f'name = "dhnm_decoder"\nreport = "{tmp_path}"\n'),
                      encoding="utf-8")  # fmt: skip
    report = json.loads((REPO / "reports/ablations/dhnm_decoder/report.json").read_text(encoding="utf-8"))
    cfg = load_ablation(config)
    identity = config_identity(cfg, stage_config_digests(cfg))
    assert set(identity["stage_config_digests"]) == {str(weak), str(stage)}
    (tmp_path / "report.json").write_text(json.dumps({**report, **identity}), encoding="utf-8")
    names = {"seeds": report["seeds"], "reference": report["reference"], "arms": list(report["arms"])}
    other = {**identity, "config_key_digests": {**identity["config_key_digests"], "eval": "0" * 16}}
    assert stale({**report, **identity}, {**names, **other, "test": ["STS13"]}) == [  # eval said once, by its tasks
        f"test: the config ['STS13'], the report {report['test']}"]

    def plan() -> str:
        assert main(["ablate", str(config), "--plan", "--arm", "dynamic"]) == 0
        return capsys.readouterr().out

    assert "Stale" not in plan()
    weak.write_text(weak.read_text(encoding="utf-8").replace("# ", "#  "), encoding="utf-8")  # comments only
    assert "Stale" not in plan()
    weak.write_text(weak.read_text(encoding="utf-8").replace("temperature = 0.05", "temperature = 0.07"),
                    encoding="utf-8")  # fmt: skip
    out = plan()
    assert f"**Stale report**: {config} has changed since {tmp_path / 'report.json'} was written" in out
    assert f"(stage config {weak}: temperature changed since the report was written)" in out and "## dynamic" in out
    assert "predates" not in out
    config.write_text(config.read_text(encoding="utf-8").replace("seeds = ", "n_boot = 2000\nseeds = "),
                      encoding="utf-8")  # fmt: skip
    assert "(n_boot: changed since the report was written; stage config" in plan()  # a top-level key, named
    config.write_text(config.read_text(encoding="utf-8").replace("seeds = [0, 1, 2, 3, 4]", "seeds = [0, 1]"),
                      encoding="utf-8")  # fmt: skip
    out = plan()  # seeds said once, by name
    assert "(seeds: the config [0, 1], the report [0, 1, 2, 3, 4]; n_boot: changed since" in out
    weak.unlink()
    assert f"stage config {weak} does not exist" in plan()


def test_committed_reports_plan_without_a_stale_note(capsys, monkeypatch) -> None:
    """The committed reports predate the stage configs' and top-level keys' digests (softmask and softmask_lr any
    digest): each still plans from its config with no stale note, the stage configs unchecked."""
    from harness.ablate_config import load_ablation, report_dir

    monkeypatch.chdir(REPO)
    planned = 0
    for config in sorted((REPO / "configs/ablations").glob("*.toml")):
        if config.stem.endswith("_stage") or not (report_dir(load_ablation(config)) / "report.json").is_file():
            continue
        assert main(["ablate", str(config.relative_to(REPO)), "--plan"]) == 0, config.name
        assert "Stale" not in capsys.readouterr().out, config.name
        planned += 1
    assert planned == len(REPORTS)
