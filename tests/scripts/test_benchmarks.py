"""The benchmark scripts' plumbing, never a measurement: where they write, what --help does, what they refuse.

A user walk found `--help` running a benchmark over a committed result, every run leaking a scratch folder in /tmp,
and tracebacks for counts of zero and unknown names. Each script runs here as a user runs it, in a fresh process,
with TMPDIR and BENCH_RESULTS_DIR inside the test's folder; the committed results are compared byte for byte.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "benchmarks" / "results"


def bench(tmp_path: Path, script: str, *argv: str, **env: str) -> subprocess.CompletedProcess:
    """`python benchmarks/<script> argv` run from `tmp_path` (a stray relative folder would land there), its
    temporary folders under tmp_path/tmp, its results under tmp_path/results unless `env` says otherwise."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    full = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmp_path / "tmp"),
            "BENCH_RESULTS_DIR": str(tmp_path / "results"), **env}  # fmt: skip
    return subprocess.run([sys.executable, str(REPO / "benchmarks" / script), *argv], cwd=tmp_path, env=full,
                          capture_output=True, text=True, timeout=300)  # fmt: skip


def committed() -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(COMMITTED.iterdir()) if path.is_file()}


def test_verdict_stability_help_describes_and_runs_nothing(tmp_path: Path):
    """Before, `--help` was no option: the script ran and rewrote verdict_stability.json (docs/reports.md cites
    its 6 withheld rows), even with BENCH_RESULTS_DIR unset."""
    before = committed()
    proc = bench(tmp_path, "bench_verdict_stability.py", "--help", BENCH_RESULTS_DIR="")
    assert proc.returncode == 0, proc.stderr
    assert "--out" in proc.stdout and "verdict" in proc.stdout and "wrote" not in proc.stdout
    assert committed() == before
    assert list((tmp_path / "tmp").iterdir()) == []  # no scratch folder left either


def test_results_go_where_bench_results_dir_or_out_says(tmp_path: Path):
    """write_report (every table script) writes under $BENCH_RESULTS_DIR; --out of this script sets the same."""
    before = committed()
    proc = bench(tmp_path, "bench_verdict_stability.py")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "results" / "verdict_stability.json").is_file()
    proc = bench(tmp_path, "bench_verdict_stability.py", "--out", str(tmp_path / "other"), BENCH_RESULTS_DIR="")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "other" / "verdict_stability.json").is_file()
    assert committed() == before
    assert list((tmp_path / "tmp").iterdir()) == []  # the scratch folder a run made is gone at its exit


def test_ctrl_c_ends_in_one_line_and_removes_the_scratch(tmp_path: Path):
    """Before, a KeyboardInterrupt traceback, and the scratch folder (with --before, a whole checkout) stayed."""
    (tmp_path / "tmp").mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmp_path / "tmp"),
           "BENCH_RESULTS_DIR": str(tmp_path / "results")}  # fmt: skip
    argv = [sys.executable, str(REPO / "benchmarks" / "bench_startup.py"), "--repeat", "1000"]
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(5)  # inside the timing loop by then
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip() == "interrupted: nothing written", err
    assert not (tmp_path / "results").exists() and list((tmp_path / "tmp").iterdir()) == []
