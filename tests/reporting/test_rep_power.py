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
from reporting.power import plan_rows, power, projected, seeds_needed

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


@pytest.mark.parametrize("path", REPORTS, ids=lambda p: p.parent.name)
def test_the_projection_at_the_reports_own_seeds_is_its_interval(path: Path) -> None:
    """Every committed report's rows with a seed spread: projecting to the same n gives back its half-width."""
    report = json.loads(path.read_text(encoding="utf-8"))
    n = len(report["seeds"])
    rows = [r for comp in report["comparisons"].values() for r in comp.values() if r.get("se_seeds")]
    assert n >= 2 and rows
    for row in rows:
        half = float(half_width(projected(row["se_seeds"], n, n), row["se_items"], n))
        assert half == pytest.approx((row["hi"] - row["lo"]) / 2, rel=1e-12)


def test_seeds_needed_is_the_first_count_reaching_the_target() -> None:
    assert power(0.0, 0.1, 0.1, 10**6) == pytest.approx(0.05, abs=1e-3)  # no effect: the interval's own level
    need = seeds_needed(0.22, 0.076, 0.069, 5, 0.8)
    assert need is not None
    assert power(0.22, projected(0.076, 5, need), 0.069, need) >= 0.8 > power(0.22, projected(0.076, 5, need - 1),
                                                                              0.069, need - 1)  # fmt: skip
    assert seeds_needed(0.5, 0.076, 0.069, 5, 0.8) < need  # a larger Δ needs fewer
    # the items' noise alone, 1.96 × 0.2 = ±0.39, reaches past Δ 0.3: no number of seeds gets 80%
    assert seeds_needed(0.3, 0.01, 0.2, 5, 0.8) is None


def test_plan_of_a_committed_report_names_the_seeds_and_the_item_floor(capsys, monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    assert main(["ablate", "configs/ablations/dhnm_decoder.toml", "--plan", "--arm", "dynamic"]) == 0
    out = capsys.readouterr().out
    report = json.loads((REPO / "reports/ablations/dhnm_decoder/report.json").read_text(encoding="utf-8"))
    row = report["comparisons"]["dynamic"]["test mean"]
    need = seeds_needed(row["delta"], row["se_seeds"], row["se_items"], 5, 0.8)
    assert f"- 80% power at Δ {100 * row['delta']:+.2f}: {need} seeds" in out
    assert f"the items alone give ±{100 * 1.959964 * row['se_items']:.2f}" in out
    assert f"## dynamic, test mean: Δ {100 * row['delta']:+.2f}" in out and "## none" not in out
    assert main(["ablate", "reports/ablations/dhnm_decoder/report.json", "--plan", "--task", "STS13",
                 "--delta", "0.5", "--power", "0.9"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "## dynamic, STS13" in out and "## none, STS13" in out and "90% power at Δ +0.50: " in out


@pytest.mark.parametrize(("argv", "message"), [
    (["--arm", "dynamic"], "--arm: only with --plan"),
    (["--plan", "--arm", "dynamc"], "--arm dynamc: not an arm compared in this report (arms: none, dynamic; "
                                    "static is the reference)"),
    (["--plan", "--task", "SciFact"], "--task SciFact: not a test row of this report (test rows: "
                                      "XQuADRetrievalEnEn, TrecQAReranking, STS13, test mean)"),
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
    assert (f"{renamed}: no report at reports/ablations/renamed/report.json: run `harness ablate {renamed}` first"
            in capsys.readouterr().err)
    one_seed = {"name": "x", "reference": "a", "seeds": [0], "dev": ["D"], "test": ["T"],
                "comparisons": {"b": {"T": {"delta": 0.01, "lo": -0.01, "hi": 0.03, "se_items": 0.01,
                                            "se_seeds": None}, "test mean": {}}}}  # fmt: skip
    with pytest.raises(UsageError, match="no seed spread in this report"):
        plan_rows(one_seed, None, "T", None, 0.8)
