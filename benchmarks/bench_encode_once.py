"""Encode once: MRL sweeps, warm cache, bf16 on CPU — each measured side by side in one process.

    python benchmarks/bench_encode_once.py [--tasks STSBenchmark,STS13,STS15,STS16] [--data-dir ../shared/data]

1. MRL: one `harness run --dims` with 7 dims vs one full-dimension run vs mteb's way (a separate run per dim,
   each re-encoding everything). Target: sweep ≤ 1.15× the single full run.
2. Cache: cold run (filling the cache) vs warm rerun. Target: warm ≥ 10× faster.
3. bf16 vs fp32 on CPU: wall time and score change.
An untimed one-task run goes first, so the imports, the first model load and first-call costs fall on it and the
full run, every ratio's base, is a steady-state run. Prints a table and writes
benchmarks/results/bench_encode_once.json.
"""

from __future__ import annotations

import argparse
import logging
import warnings
from pathlib import Path

from common import DEFAULT_DATA, SCRATCH, harness_run, run_main, scores, write_report

DIMS = ["32", "64", "96", "128", "192", "256", "full"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="STSBenchmark,STS13,STS15,STS16")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("mteb").setLevel(logging.ERROR)
    tasks, data = args.tasks.split(","), args.data_dir
    # float32 named: the default --dtype auto is bfloat16 on a CPU with native bf16, which would make the fp32 rows
    # (and the bf16 ratio's base) bf16 runs
    nocache = ["--no-cache", "--overwrite", "--dtype", "float32"]

    warmup_s, _ = harness_run(tasks[:1], data, "warmup", *nocache)  # pays the imports and first calls; no ratio's base
    full_s, full = harness_run(tasks, data, "full", *nocache)
    sweep_s, sweep = harness_run(tasks, data, "sweep", *nocache, "--dims", ",".join(DIMS))
    per_dim_s = full_s  # mteb's way: the full-dimension run plus one more run per dim, each re-encoding all texts
    for dim in DIMS[:-1]:
        seconds, _ = harness_run(tasks, data, f"dim{dim}", *nocache, "--dims", dim)
        per_dim_s += seconds
    cache = ["--cache-dir", str(SCRATCH / "cache"), "--overwrite", "--dtype", "float32"]
    cold_s, cold = harness_run(tasks, data, "cold", *cache)
    warm_s, warm = harness_run(tasks, data, "cold", *cache)
    bf16_s, bf16 = harness_run(tasks, data, "bf16", "--no-cache", "--overwrite", "--dtype", "bfloat16")

    def mean(record: dict) -> float:
        values = list(scores(record).values())
        return round(sum(values) / len(values), 2)

    from harness.runs import open_run

    sweep_run = open_run(SCRATCH / "runs" / "sweep")  # per-dim scores live in its experiments/ result files
    rows = [
        ["full-dim run (fp32)", f"{full_s:.1f}", "1.00", mean(full)],
        [f"MRL sweep, {len(DIMS)} dims, one encode", f"{sweep_s:.1f}", f"{sweep_s / full_s:.2f}", mean(sweep)],
        [f"mteb's way: {len(DIMS)} separate runs", f"{per_dim_s:.1f}", f"{per_dim_s / full_s:.2f}", "—"],
        ["cold run, filling the cache", f"{cold_s:.1f}", f"{cold_s / full_s:.2f}", mean(cold)],
        ["warm rerun from the cache", f"{warm_s:.1f}", f"{warm_s / full_s:.2f}", mean(warm)],
        ["bf16 on CPU", f"{bf16_s:.1f}", f"{bf16_s / full_s:.2f}", mean(bf16)],
    ]
    payload = {
        "tasks": tasks, "dims": DIMS, "warmup": {"tasks": tasks[:1], "seconds": warmup_s},
        "seconds": {"full": full_s, "sweep": sweep_s, "per_dim_runs": per_dim_s, "cold": cold_s, "warm": warm_s,
                    "bf16": bf16_s},
        "ratios": {"sweep_over_full": sweep_s / full_s, "per_dim_over_full": per_dim_s / full_s,
                   "cold_over_warm": cold_s / warm_s, "bf16_over_fp32": bf16_s / full_s},
        "scores": {"fp32": scores(full), "bf16": scores(bf16), "warm": scores(warm),
                   "sweep_dims": {n: sweep_run.dim_scores(n) for n in sweep["tasks"]}},
    }  # fmt: skip
    print(f"cold ÷ warm = {cold_s / warm_s:.1f}×   sweep ÷ full = {sweep_s / full_s:.2f}×")
    write_report("bench_encode_once", rows, ["what", "wall s", "÷ full run", "mean score ×100"], payload)


if __name__ == "__main__":
    run_main(main)
