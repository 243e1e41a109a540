"""CLI start-up: how long `harness --help`, a subcommand's `--help` and `harness list` take, in fresh processes.

    python benchmarks/bench_startup.py [--before REF ...] [--repeat 5]
    python benchmarks/bench_startup.py --rerun [--before REF ...] [--repeat 3]

Each command runs `--repeat` times as `python -m harness ...`; the table shows the median wall seconds, the median
CPU seconds of the child (user + system; less sensitive to other load on a shared machine) and which of
torch/mteb/transformers the process imported. With `--before REF` the same commands also run on git revision REF
(extracted with `git archive` into a scratch folder), for a before/after table. Target: every command under 1 s.
Writes benchmarks/results/bench_startup.json.

`--rerun` times a whole `harness run` of three STS tasks of ../shared/data with minilm instead: once cold (a fresh
embedding cache and output folder), then `--repeat` warm reruns into it (`--overwrite`: every task re-scored, every
text from the cache), each tree's warm runs interleaved with the other's; it also says whether the warm process
loaded the model and imported sentence-transformers/transformers. Writes benchmarks/results/bench_startup_rerun.json.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import DEFAULT_DATA, REPO, SCRATCH, positive_int, run_main, write_report

COMMANDS = [["--help"], ["run", "--help"], ["train", "--help"], ["list", "suites"], ["list", "models"]]
HEAVY = ("torch", "mteb", "transformers", "sentence_transformers")
RERUN_TASKS = "STSBenchmark,STS13,STS16"
# Runs the CLI like `python -m harness ARGS`, then reports which heavy libraries ended up imported.
PROBE = """
import contextlib, io, sys
from harness.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
try:
    from harness.lazy import LOADS  # trees before the lazy model load always loaded it
    loads = LOADS["count"]
except ImportError:
    loads = "always"
print("model loads:", loads)
print("heavy imports:", ",".join(m for m in %s if m in sys.modules))
""" % (HEAVY,)  # noqa: UP031 - a tuple literal spliced into source


def once(tree: Path, argv: list[str]) -> tuple[float, float, str, str]:
    """Wall s, child CPU s, heavy modules imported and model loads — of `python -m harness argv` run in `tree`."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=tree, env=env, capture_output=True, text=True,
                         check=True)  # fmt: skip
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    heavy, loads = probed(out.stdout)
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, heavy, loads


def probed(stdout: str) -> tuple[str, str]:
    """The heavy modules ("none") and model loads PROBE printed, found by their labels: before, the last two lines
    were read, and with no heavy module the empty last line was stripped away, so "imports" said "model loads: 0"."""
    said = dict(line.partition(": ")[::2] for line in stdout.splitlines() if ": " in line)
    return said.get("heavy imports", "").strip() or "none", said.get("model loads", "").strip()


def measure(tree: Path, argv: list[str], repeat: int) -> tuple[float, float, str]:
    """Median wall s, median child CPU s, heavy modules imported — for `python -m harness argv` run in `tree`."""
    runs = [once(tree, argv) for _ in range(repeat)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs), runs[-1][2]


def rerun(trees: list[tuple[str, Path]], repeat: int) -> None:
    """Cold run, then warm reruns (interleaved across trees) of `harness run` on three STS tasks, whole processes."""
    argv = {label: ["run", "--tasks", RERUN_TASKS, "--model", "minilm", "--data-dir", str(DEFAULT_DATA), "--out",
                    str(scratch / "runs"), "--cache-dir", str(scratch / "cache"), "--no-progress"]
            for label, scratch in ((label, Path(tempfile.mkdtemp(prefix="bench-rerun-", dir=SCRATCH)))
                                  for label, _ in trees)}
    load = [os.getloadavg()[0]]
    cold = {label: once(tree, argv[label]) for label, tree in trees}
    warm: dict[str, list[tuple[float, float, str, str]]] = {label: [] for label, _ in trees}
    for _ in range(repeat):
        for label, tree in trees:
            warm[label].append(once(tree, [*argv[label], "--overwrite"]))
    load.append(os.getloadavg()[0])
    rows, payload = [], []
    for label, _ in trees:
        wall, cpu = statistics.median(w[0] for w in warm[label]), statistics.median(w[1] for w in warm[label])
        c_wall, c_cpu = cold[label][0], cold[label][1]
        for what, w, c, heavy, loads in (("cold", c_wall, c_cpu, *cold[label][2:]),
                                         ("warm", wall, cpu, *warm[label][-1][2:])):  # fmt: skip
            rows.append([label, what, f"{w:.1f}", f"{c:.1f}", f"{w / c_wall:.2f}", f"{c / c_cpu:.2f}", loads, heavy])
            payload.append({"tree": label, "run": what, "wall_s": round(w, 2), "cpu_s": round(c, 2),
                            "wall_of_cold": round(w / c_wall, 3), "cpu_of_cold": round(c / c_cpu, 3),
                            "model_loads": loads, "heavy_imports": heavy})  # fmt: skip
    write_report("bench_startup_rerun", rows, ["tree", "run", "wall s", "cpu s", "wall ÷ cold", "cpu ÷ cold",
                                               "model loads", "imports"],
                 {"tasks": RERUN_TASKS, "model": "minilm", "repeat": repeat, "load_average_1min": load,
                  "results": payload})  # fmt: skip


def checkout(ref: str) -> Path:
    """The tree of git revision `ref` in a scratch folder (the working tree stays as it is)."""
    dest = Path(tempfile.mkdtemp(prefix="bench-startup-", dir=SCRATCH))  # goes with the scratch folder at exit
    git = subprocess.run(["git", "archive", ref], cwd=REPO, capture_output=True)
    if git.returncode != 0:  # an unknown revision: one line, not a CalledProcessError traceback
        said = git.stderr.decode(errors="replace").strip().splitlines() or ["no output"]
        raise SystemExit(f"bench_startup: --before {ref}: git archive failed: {said[-1]}")
    subprocess.run(["tar", "-x", "-C", str(dest)], input=git.stdout, check=True)
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", action="append", help="git revision to measure as well (e.g. the commit before "
                        "a change; repeatable)")  # fmt: skip
    parser.add_argument("--repeat", type=positive_int, default=5)
    parser.add_argument("--rerun", action="store_true", help="time a cold and a warm `harness run` instead")
    args = parser.parse_args()
    trees = [(ref, checkout(ref)) for ref in args.before or []] + [("working tree", REPO)]
    if args.rerun:
        return rerun(trees, args.repeat)
    rows, payload = [], []
    for label, tree in trees:
        for argv in COMMANDS:
            wall, cpu, heavy = measure(tree, argv, args.repeat)
            rows.append([label, "harness " + " ".join(argv), f"{wall:.2f}", f"{cpu:.2f}", heavy])
            payload.append({"tree": label, "command": argv, "wall_s": round(wall, 3), "cpu_s": round(cpu, 3),
                            "heavy_imports": heavy})  # fmt: skip
    write_report("bench_startup", rows, ["tree", "command", "median wall s", "median cpu s", "imports"],
                 {"repeat": args.repeat, "results": payload})


if __name__ == "__main__":
    run_main(main)
