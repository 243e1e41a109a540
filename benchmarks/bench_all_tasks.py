"""Every evaluation task of a data root through `harness run`, with per-task score and timing.

    python benchmarks/bench_all_tasks.py [--data-dir ../shared/data] [--model minilm] [--suite local]

Shows that every task folder (all seven task types, en/zh/multi) runs to a finite score with a packaged model,
and what each costs. Prints a table and writes benchmarks/results/bench_all_tasks_<model>.json.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from common import DEFAULT_DATA, SCRATCH, harness_run, write_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--suite", default="local")
    args = parser.parse_args()
    from harness.data import discover_tasks
    from harness.suites import get_suite

    tasks = get_suite(args.suite, discover_tasks(args.data_dir)).tasks
    wall, record = harness_run(tasks, args.data_dir, f"all-{args.model}", "--no-cache", "--overwrite",
                               model=args.model, check=False)  # fmt: skip
    eff = json.loads((SCRATCH / "runs" / f"all-{args.model}" / "efficiency.json").read_text())
    rows = []
    for name, task in record["tasks"].items():
        score = task.get("main_score")
        finite = score is not None and math.isfinite(score)
        shown = f"{100 * score:.2f}" if finite else task.get("error")
        wall_s = eff.get(name, {}).get("wall_s")
        rows.append([name, task["type"], task["source"], task.get("main_metric"), shown, wall_s])
    ok = sum(1 for t in record["tasks"].values() if t["status"] == "ok")
    print(f"{ok}/{len(tasks)} tasks finished with a finite score in {wall:.0f} s")
    write_report(f"bench_all_tasks_{args.model}", rows, ["task", "type", "source", "metric", "score ×100", "wall s"],
                 {"model": args.model, "wall_s": wall, "finished": ok, "tasks": record["tasks"], "efficiency": eff})


if __name__ == "__main__":
    main()
