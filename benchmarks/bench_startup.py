"""CLI start-up: how long `harness --help`, a subcommand's `--help` and `harness list` take, in fresh processes.

    python benchmarks/bench_startup.py [--before REF] [--repeat 5]

Each command runs `--repeat` times as `python -m harness ...`; the table shows the median wall seconds, the median
CPU seconds of the child (user + system; less sensitive to other load on a shared machine) and which of
torch/mteb/transformers the process imported. With `--before REF` the same commands also run on git revision REF
(extracted with `git archive` into a scratch folder), for a before/after table. Target: every command under 1 s.
Writes benchmarks/results/bench_startup.json.
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

from common import REPO, write_report

COMMANDS = [["--help"], ["run", "--help"], ["train", "--help"], ["list", "suites"], ["list", "models"]]
HEAVY = ("torch", "mteb", "transformers")
# Runs the CLI like `python -m harness ARGS`, then reports which heavy libraries ended up imported.
PROBE = """
import contextlib, io, sys
from harness.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
print(",".join(m for m in %s if m in sys.modules))
""" % (HEAVY,)  # noqa: UP031 - a tuple literal spliced into source


def measure(tree: Path, argv: list[str], repeat: int) -> tuple[float, float, str]:
    """Median wall s, median child CPU s, heavy modules imported — for `python -m harness argv` run in `tree`."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    walls, cpus, heavy = [], [], ""
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        out = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=tree, env=env, capture_output=True,
                             text=True, check=True)  # fmt: skip
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        heavy = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""
    return statistics.median(walls), statistics.median(cpus), heavy or "none"


def checkout(ref: str) -> Path:
    """The tree of git revision `ref` in a scratch folder (the working tree stays as it is)."""
    dest = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    archive = subprocess.run(["git", "archive", ref], cwd=REPO, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before", help="git revision to measure as well (e.g. the commit before a change)")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    trees = [("working tree", REPO)]
    if args.before:
        trees.insert(0, (args.before, checkout(args.before)))
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
    main()
