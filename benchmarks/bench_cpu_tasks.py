"""CPU time per task of one in-process `harness run` (a busy shared machine makes wall clock meaningless).

    python benchmarks/bench_cpu_tasks.py --suite cmteb                       # the README's main job (sample data)
    python benchmarks/bench_cpu_tasks.py --tasks SciFact --model minilm --data-dir ../shared/data --dtype auto

Per task: CPU seconds (user + sys of the whole process, all threads: getrusage), of which model work (the
encoder's tokenizing + forward passes) and the rest (mteb's scoring, data loading, writing), plus wall and the
score. Also the CPU time of the whole process (imports and model load included). CPU time is what a quiet
machine's wall clock cannot undercut on 2 cores by more than the parallel share, so it is the number to compare
before/after on a loaded machine. Prints a table and writes benchmarks/results/bench_cpu_<name>.json.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

from common import SCRATCH, harness_cli, run_main, write_report


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suite")
    parser.add_argument("--tasks")
    parser.add_argument("--model")
    parser.add_argument("--data-dir")
    parser.add_argument("--dtype", default="auto")
    parser.add_argument("--threads", type=int, help="torch threads (1: CPU time free of thread-wait spinning)")
    parser.add_argument("--name", help="result name (default: from model/suite/tasks/dtype)")
    parser.add_argument("extra", nargs="*", help="more `harness run` options (after --)")
    args = parser.parse_args()
    start_cpu, start_wall = cpu_s(), time.perf_counter()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from harness import encoding, runner

    per_task: dict[str, dict[str, float]] = {}
    model_cpu = [0.0]
    original_task, original_compute = runner.run_task, encoding.HarnessEncoder._compute

    def timed_task(resolved, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
        model_cpu[0] = 0.0
        c0, w0 = cpu_s(), time.perf_counter()
        out = original_task(resolved, *a, **k)
        per_task[resolved.name] = {"cpu_s": cpu_s() - c0, "model_cpu_s": model_cpu[0],
                                   "wall_s": time.perf_counter() - w0}  # fmt: skip
        return out

    def timed_compute(self, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
        """_compute is a generator: time each step of it (timing the call alone measured nothing)."""
        windows = original_compute(self, *a, **k)
        while True:
            c0 = cpu_s()
            item = next(windows, None)
            model_cpu[0] += cpu_s() - c0
            if item is None:
                return
            yield item

    runner.run_task, encoding.HarnessEncoder._compute = timed_task, timed_compute
    name = args.name or "-".join(x for x in (args.model or "default", args.suite, args.tasks, args.dtype) if x)
    name = name.replace(",", "_").replace(":", "_").replace("/", "_")
    argv = ["run", "--out", str(SCRATCH / "runs"), "--run-name", name, "--no-cache", "--no-progress",
            "--dtype", args.dtype]  # fmt: skip
    for flag, value in (("--suite", args.suite), ("--tasks", args.tasks), ("--model", args.model),
                        ("--data-dir", args.data_dir)):  # fmt: skip
        if value:
            argv += [flag, value]
    code = harness_cli(argv + args.extra)
    total_cpu, total_wall = cpu_s() - start_cpu, time.perf_counter() - start_wall
    record = json.loads((SCRATCH / "runs" / name / "run.json").read_text())
    rows = []
    for task, t in per_task.items():
        score = record["tasks"].get(task, {}).get("main_score")
        t["score"] = round(100 * score, 2) if score is not None else None
        rows.append([task, f"{t['cpu_s']:.1f}", f"{t['model_cpu_s']:.1f}", f"{t['cpu_s'] - t['model_cpu_s']:.1f}",
                     f"{t['wall_s']:.1f}", t["score"]])  # fmt: skip
    task_cpu = sum(t["cpu_s"] for t in per_task.values())
    rows.append(["tasks total", f"{task_cpu:.1f}", f"{sum(t['model_cpu_s'] for t in per_task.values()):.1f}", "",
                 f"{sum(t['wall_s'] for t in per_task.values()):.1f}", ""])  # fmt: skip
    rows.append(["whole process", f"{total_cpu:.1f}", "", "", f"{total_wall:.1f}", f"exit {code}"])
    write_report(f"bench_cpu_{name}", rows, ["task", "CPU s", "model CPU s", "other CPU s", "wall s", "score ×100"],
                 {"argv": argv + args.extra, "exit": code, "tasks": per_task, "process_cpu_s": total_cpu,
                  "process_wall_s": total_wall, "model": record.get("model"),
                  "note": "CPU = user+sys of the process (all threads); walls need a quiet machine"})  # fmt: skip
    sys.exit(0)


if __name__ == "__main__":
    run_main(main)
