"""Which committed ablation verdicts hang on the bootstrap seed: the stop-48 rule applied to the reports as written.

A report's item noise, se_items, is the sd of n_boot bootstrap resamples (1000 in every committed report), itself
estimated with a Monte Carlo error of about se_items/√(2(n_boot − 1)), which moves each CI edge by
``reporting.ablation.edge_noise``. Since stop 48 a row whose edge lies within 2 of those sds of 0 shows no effect
(``row_verdict``), where before its verdict could flip with the bootstrap seed (the audit reran clr_control's
XQuAD tr row over 30 bootstrap seeds: 3 said no effect). This script reads every reports/ablations/*/report.json
(each row's recorded se_items, lo, hi; every MRL dim, the dev and test means) and lists the rows whose verdict the
rule withholds; a report written since stop 48 already applies it, and since stop 50 the older ones have been
re-verdicted (scripts/reverdict_ablations.py), so a rerun lists none: the committed JSON keeps the 6 rows found in
stop 48. Nothing is retrained or resampled.

    python benchmarks/bench_verdict_stability.py [--out DIR]

Writes benchmarks/results/verdict_stability.json (the committed one, that docs/reports.md cites), or DIR/ with
--out (or $BENCH_RESULTS_DIR).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from common import REPO, run_main, write_report

from reporting.ablation import MC_MARGIN, comparison_rows, edge_noise, row_verdict


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="folder for verdict_stability.json instead of benchmarks/results")
    args = parser.parse_args(argv)
    if args.out:  # the shared redirect of write_report
        os.environ["BENCH_RESULTS_DIR"] = str(args.out)
    found, checked = [], 0
    for path in sorted((REPO / "reports" / "ablations").glob("*/report.json")):
        report = json.loads(path.read_text(encoding="utf-8"))
        n_boot = int(report["bootstrap"]["n_boot"])
        for dim, arm, task, row in comparison_rows(report):
            if row.get("se_seeds") is None:  # one seed: percentile interval, not this rule's
                continue
            checked += 1
            noise = edge_noise(row["se_items"], row["hi"] - row["delta"], n_boot)
            word, _ = row_verdict(row["delta"], {**row, "edge_mc_se": noise})
            if word != row["verdict"]:
                edge = row["lo"] if row["verdict"] == "improves" else row["hi"]
                found.append({"report": path.parent.name, "dim": dim, "arm": arm, "row": task,
                              "delta": 100 * row["delta"], "lo": 100 * row["lo"], "hi": 100 * row["hi"],
                              "verdict": row["verdict"], "edge_mc_sd": 100 * noise, "edge_in_sds": edge / noise,
                              "now": word})  # fmt: skip
    table = [[f["report"], f["dim"], f["arm"], f["row"], f"{f['delta']:+.2f}", f"[{f['lo']:+.3f}, {f['hi']:+.3f}]",
              f["verdict"], f"{f['edge_mc_sd']:.3f}", f"{f['edge_in_sds']:.1f}", f["now"]] for f in found]  # fmt: skip
    headers = ["report", "dim", "arm", "row", "Δ ×100", "CI ×100", "verdict as written", "edge MC sd ×100",
               "edge / MC sd", f"under the rule (< {MC_MARGIN:g} sds)"]  # fmt: skip
    write_report("verdict_stability", table, headers, {"rows_checked": checked, "withheld": found,
                                                        "margin_sds": MC_MARGIN})  # fmt: skip
    print(f"{len(found)} of {checked} rows with a seed spread change verdict under the rule")


if __name__ == "__main__":
    run_main(main)
