"""The training quick start of docs/training.md, end to end: tokenizer + pretrain, weak, `harness run`, timed.

    python benchmarks/bench_quickstart.py [--threads 1] [--steps 300]

Runs exactly the documented commands (configs/pretrain.toml, then configs/weak.toml from its output, then
`harness run` on STSBenchmark and STS16), each as its own process with outputs under a scratch folder, and reads
what they logged: the pretrain loss of the first and last logged windows (log_every = 25 steps), the weak
stage's held-out MRR and recall@1, the scores. Wall and CPU (user + sys of the child) per command. Prints a table
and writes benchmarks/results/bench_quickstart.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

from common import DEFAULT_DATA, REPO, SCRATCH, run_main, write_report


def child_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str]) -> tuple[float, float]:
    """(wall s, CPU s) of one command run from the repository root; a failure stops the benchmark."""
    c0, w0 = child_cpu_s(), time.perf_counter()
    code = subprocess.call(argv, cwd=REPO, stdout=subprocess.DEVNULL)
    if code != 0:
        raise SystemExit(f"{' '.join(argv)} exited {code}")
    return time.perf_counter() - w0, child_cpu_s() - c0


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text(encoding="utf-8").splitlines()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per stage (the docs' busy-machine 1)")
    parser.add_argument("--steps", type=int, default=300, help="steps per stage (the configs' 300)")
    args = parser.parse_args()
    pre, weak, runs = SCRATCH / "pretrain", SCRATCH / "weak", SCRATCH / "runs"
    train = [sys.executable, "-m", "train"]
    common = ["--set", f"threads={args.threads}", "--set", f"steps={args.steps}",
              "--set", f"data_root='{DEFAULT_DATA / 'train'}'"]  # fmt: skip
    times = {
        "pretrain": timed([*train, "configs/pretrain.toml", "--set", f"output_dir='{pre}'", *common]),
        "weak": timed([*train, "configs/weak.toml", "--set", f"output_dir='{weak}'",
                       "--set", f"init='{pre / 'final'}'", *common]),  # fmt: skip
        "harness run": timed([sys.executable, "-m", "harness", "run", "--model", f"conan:{weak / 'final'}",
                              "--tasks", "STSBenchmark,STS16", "--data-dir", str(DEFAULT_DATA), "--out", str(runs),
                              "--run-name", "quickstart", "--no-progress", "--no-cache"]),  # fmt: skip
    }
    pre_rows = [r for r in metrics(pre) if "loss" in r]  # one row per log_every (25) steps: each its window's mean
    weak_rows = metrics(weak)
    evals = [r for r in weak_rows if "eval_mrr" in r]
    scores = {t: round(100 * v["main_score"], 2)
              for t, v in json.loads((runs / "quickstart" / "run.json").read_text())["tasks"].items()}  # fmt: skip
    results = {
        "pretrain": f"loss {pre_rows[0]['loss']:.2f} (steps to {pre_rows[0]['step']}) -> {pre_rows[-1]['loss']:.2f} "
                    f"(steps to {pre_rows[-1]['step']})",
        "weak": "held-out MRR " + " -> ".join(f"{r['eval_mrr']:.3f} (step {r['step']})" for r in evals)
                + f"; recall@1 {evals[0]['eval_recall_at_1']:.3f} -> {evals[-1]['eval_recall_at_1']:.3f}",
        "harness run": "cosine Spearman x100: " + ", ".join(f"{t} {s}" for t, s in scores.items()),
    }  # fmt: skip
    rows = [[name, f"{wall:.0f}", f"{cpu:.0f}", results[name]] for name, (wall, cpu) in times.items()]
    total = [sum(t[0] for t in times.values()), sum(t[1] for t in times.values())]
    rows.append(["all three", f"{total[0]:.0f}", f"{total[1]:.0f}", ""])
    write_report("bench_quickstart", rows, ["command", "wall s", "CPU s", "result"],
                 {"argv": sys.argv[1:], "threads": args.threads, "steps": args.steps,
                  "commands": {k: {"wall_s": round(w, 1), "cpu_s": round(c, 1)} for k, (w, c) in times.items()},
                  "results": results, "pretrain_log": pre_rows, "weak_evals": evals, "scores": scores})


if __name__ == "__main__":
    run_main(main)
