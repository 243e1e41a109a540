"""mteb's scoring with and without harness/scoring.py, side by side in one process, from cached vectors.

    python benchmarks/bench_scoring.py [--tasks CMRC2018Retrieval,Banking77Classification] [--repeats 2]

On a GPU the model is no longer what a run waits for: mteb's scoring was 77-93% of the wall of the three
retrieval and classification tasks a budget-stopped H200 run reached (docs/harness.md, "Where the time goes").
One cold run fills the embedding cache (minilm, fp32); then warm runs alternate between mteb's own steps
(`faster_scoring` replaced by a no-op) and the harness's, `repeats` times each, the order reversed on odd
repeats (use an even `repeats` so each arm runs first as often as second), so each run's `score_s`
(efficiency.json: wall - load - encode) is almost all scoring. Every run's main scores must be equal, unrounded
(checked; tests/harness/test_scoring.py compares every score and file byte for byte). Prints a table and writes
benchmarks/results/bench_scoring.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import statistics
import warnings
from pathlib import Path

from common import DEFAULT_DATA, SCRATCH, harness_run, positive_int, run_main, scores, write_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="CMRC2018Retrieval,XQuADRetrievalEnEn,Banking77Classification,TNews")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeats", type=positive_int, default=2, help="warm runs of each arm (even)")
    args = parser.parse_args()
    if args.repeats % 2:  # each arm first as often as second (the docstring's rule; before, unchecked)
        parser.error(f"--repeats must be even, got {args.repeats}")
    warnings.filterwarnings("ignore")
    logging.getLogger("mteb").setLevel(logging.ERROR)
    import harness.evaluation

    tasks, cache = args.tasks.split(","), ["--cache-dir", str(SCRATCH / "cache"), "--overwrite"]
    harness_run(tasks, args.data_dir, "cold", *cache)
    faster = harness.evaluation.faster_scoring
    score_s: dict[str, dict[str, list[float]]] = {t: {"mteb": [], "harness": []} for t in tasks}
    main_scores: dict[str, dict] = {}
    exact: set[str] = set()  # every run's unrounded main scores: one value set for all arms and repeats
    for repeat in range(args.repeats):
        # the order reverses on odd repeats (mteb, harness, harness, mteb, ...): drift in the machine's speed and
        # any advantage of running second fall on both arms
        for arm in ("mteb", "harness") if repeat % 2 == 0 else ("harness", "mteb"):
            harness.evaluation.faster_scoring = faster if arm == "harness" else lambda task: contextlib.nullcontext()
            name = f"{arm}{repeat}"
            _, record = harness_run(tasks, args.data_dir, name, *cache)
            main_scores[arm] = scores(record)
            exact.add(json.dumps({t: record["tasks"][t]["main_score"] for t in tasks}, sort_keys=True))
            efficiency = json.loads((SCRATCH / "runs" / name / "efficiency.json").read_text())
            for task in tasks:
                assert efficiency[task]["cache_hits"] > 0, f"{task}: not from the cache"
                score_s[task][arm].append(efficiency[task]["score_s"])
    harness.evaluation.faster_scoring = faster
    if len(exact) != 1:
        raise SystemExit(f"main scores differ between runs: {sorted(exact)}")
    rows = []
    for task in tasks:
        plain, ours = (statistics.median(score_s[task][arm]) for arm in ("mteb", "harness"))
        rows.append([task, f"{plain:.2f}", f"{ours:.2f}", f"{plain / ours:.2f}", main_scores["harness"][task]])
    write_report("bench_scoring", rows, ["task", "mteb's steps: score s", "harness: score s", "speed-up", "score"],
                 {"tasks": tasks, "repeats": args.repeats, "score_s": score_s, "scores": main_scores["harness"],
                  "note": "score_s = wall - load - encode of a warm run (vectors from the embedding cache); "
                          "medians over the repeats; arms alternate in one process, mteb first on even repeats, "
                          "harness first on odd ones"})  # fmt: skip


if __name__ == "__main__":
    run_main(main)
