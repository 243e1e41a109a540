"""Apply today's verdict rules to committed ablation reports written before them: rewrite report.json's verdicts
(and reasons) where a rule withholds one, nothing else, and render report.md anew (its method paragraph in today's
wording, which states the rules).

The rules (``reporting.ablation.row_verdict``): a row whose CI edge lies within 2 Monte Carlo sds of 0 shows no
effect (stop 48; a report written before then still said *improves* or *hurts* there, 6 of 246 rows:
benchmarks/results/verdict_stability.json, so a reader of report.md alone met a verdict the docs had withdrawn);
nor does a one-seed row, or a row of fewer than ``MIN_ITEMS`` items (stop 69; for a group mean its smallest item
set since stop 70, and a report written before then records none for its means, which keep their verdict).
Each row's Monte Carlo noise is the one ``benchmarks/bench_verdict_stability.py`` reads off its recorded se_items,
CI and n_boot where the row does not record it. Numbers are not touched, no model is trained or scored; a report
whose every verdict already follows the rules is left as it is.

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
    """Apply the rules to every tested row; returns what changed, one line per row."""
    n_boot, changed = int(report["bootstrap"]["n_boot"]), []
    for dim, arm, task, row in comparison_rows(report):
        ci = dict(row)
        if row.get("se_seeds") is not None and "edge_mc_se" not in row:  # written before the stop-48 rule
            ci["edge_mc_se"] = edge_noise(row["se_items"], row["hi"] - row["delta"], n_boot)
        word, reason = row_verdict(row["delta"], ci, row.get("items") or None)
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
