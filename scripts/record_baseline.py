"""Write a reference model's scores from `harness run` directories as one committed JSON (reports/baselines/).

Why: docs read trained arms against untrained floors and bases. Run directories are not committed (they hold
predictions and results of every task), so a doc's number needs a small file that keeps the scores together with
what produced them: the command, the model fingerprint, dtype, mteb's version and the data identity per task.

    python scripts/record_baseline.py runs/floor/evals/raw-causal --what "..." --command "..." \\
        --measured "stop 27, the 2-core CPU machine" --out reports/baselines/smollm2-4blocks-causal-floor.json

Several run directories give one record per directory under "runs" (e.g. one per attention/pooling).
Absolute paths are left out (committed reports carry none).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from harness.runs import RUN_JSON, atomic_write_json, open_run, percent  # noqa: E402

MODEL_KEYS = ("name", "fingerprint", "n_parameters", "dtype", "device", "max_length", "pooling")


def record(run_dir: Path) -> dict:
    """Scores (×100, two decimals; at each MRL dim too when the run had --dims), metrics and data identities of every
    finished task of one run directory."""
    if not (run_dir / RUN_JSON).is_file():
        raise SystemExit(f"record_baseline: {run_dir} holds no {RUN_JSON} (not a harness run directory)")
    opened = open_run(run_dir)  # run.json checked for the shape read here (harness.runs.read_record)
    run = opened.read_run()
    tasks = {name: t for name, t in run.get("tasks", {}).items() if t.get("status") == "ok"}
    if not tasks:
        raise SystemExit(f"record_baseline: {run_dir}/run.json has no finished task")
    first = next(iter(tasks.values()))
    at_dims = {name: opened.dim_scores(name, t) for name, t in tasks.items()}
    return {
        "model": {key: run["model"].get(key) for key in MODEL_KEYS},
        "mteb": first["identity"]["mteb"],
        "scores_x100": {name: float(percent(t["main_score"])) for name, t in tasks.items()},  # as every report shows it
        **({"dims_scores_x100": {name: {str(d): float(percent(v)) for d, v in dims.items()}
                                 for name, dims in at_dims.items() if dims}} if any(at_dims.values()) else {}),
        "metrics": {name: t["main_metric"] for name, t in tasks.items()},
        "data": {name: t["identity"]["data"] for name, t in tasks.items()},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dirs", nargs="+", type=Path, help="harness run directories (each holds run.json)")
    ap.add_argument("--what", required=True, help="one sentence: which model, and what the docs read it against")
    ap.add_argument("--command", required=True, help="the commands that made the run directories")
    ap.add_argument("--measured", required=True, help="when and where, e.g. 'stop 27, the 2-core CPU machine'")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    runs = {d.name: record(d) for d in args.run_dirs}
    body = {"what": args.what, "command": args.command, "measured": args.measured}
    body.update(runs.popitem()[1] if len(runs) == 1 else {"runs": runs})
    atomic_write_json(args.out, body)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
