"""Apply the stop-48 verdict rule to committed ablation reports written before it: rewrite report.json's verdicts
(and reasons), nothing else, and render report.md anew (its method paragraph in today's wording, which states the
rule).

A row whose CI edge lies within 2 Monte Carlo sds of 0 (``reporting.ablation.row_verdict``) shows no effect since
stop 48; a report written before then still said *improves* or *hurts* there (6 of 246 rows:
benchmarks/results/verdict_stability.json), so a reader of report.md alone met a verdict the docs had withdrawn.
Each row's noise is the one ``benchmarks/bench_verdict_stability.py`` reads off its recorded se_items, CI and
n_boot. Numbers are not touched, no model is trained or scored; a report that already applies the rule (one with
``edge_mc_se`` on its rows) is left as it is.

    python scripts/reverdict_ablations.py [reports/ablations]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from conan_model.atomic import atomic_write_json
from harness.runs import atomic_write_text
from reporting.ablation import comparison_rows, edge_noise, render, row_verdict

REPO = Path(__file__).resolve().parents[1]


def reverdict(report: dict) -> list[str]:
    """Apply the rule to every seeded row lacking ``edge_mc_se``; returns what changed, one line per row."""
    n_boot, changed = int(report["bootstrap"]["n_boot"]), []
    for dim, arm, task, row in comparison_rows(report):
        if row.get("se_seeds") is None or "edge_mc_se" in row:  # one seed, or written under the rule
            continue
        word, reason = row_verdict(row["delta"], {**row, "edge_mc_se": edge_noise(row["se_items"],
                                                                                   row["hi"] - row["delta"], n_boot)})
        if word != row["verdict"]:
            changed.append(f"{report['name']} {arm} {task} (dim {dim}): {row['verdict']} -> {word}")
            row["verdict"], row["reason"] = word, reason
    return changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", nargs="?", type=Path, default=REPO / "reports" / "ablations")
    args = parser.parse_args()
    for path in sorted(args.root.glob("*/report.json")):
        report = json.loads(path.read_text(encoding="utf-8"))
        if changed := reverdict(report):
            atomic_write_json(path, report)
            atomic_write_text(path.with_name("report.md"), render(report))
            print("\n".join(changed))


if __name__ == "__main__":
    main()
