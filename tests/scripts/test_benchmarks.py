"""The benchmark scripts' plumbing, never a measurement: where they write, what --help does, what they refuse.

A user walk found `--help` running a benchmark over a committed result, every run leaking a scratch folder in /tmp,
and tracebacks for counts of zero and unknown names. Each script runs here as a user runs it, in a fresh process,
with TMPDIR and BENCH_RESULTS_DIR inside the test's folder; the committed results are compared byte for byte.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

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


def has_child(pid: int) -> bool:
    """Whether a process whose parent is ``pid`` runs (Linux's /proc: each stat's 4th field is the parent's id)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # it ended while being read
            continue
        if int(fields[1]) == pid:
            return True
    return False


def test_ctrl_c_ends_in_one_line_and_removes_the_scratch(tmp_path: Path):
    """Before, a KeyboardInterrupt traceback, and the scratch folder (with --before, a whole checkout) stayed."""
    (tmp_path / "tmp").mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmp_path / "tmp"),
           "BENCH_RESULTS_DIR": str(tmp_path / "results")}  # fmt: skip
    argv = [sys.executable, str(REPO / "benchmarks" / "bench_startup.py"), "--repeat", "1000"]
    proc = subprocess.Popen(argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(1200):  # inside the timing loop (run_main's handler in place) once it has started a probe
        if proc.poll() is not None or has_child(proc.pid):
            break
        time.sleep(0.1)  # before, a fixed 5 s: on a loaded machine the signal could come before run_main
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip() == "interrupted: nothing written", err
    assert not (tmp_path / "results").exists() and list((tmp_path / "tmp").iterdir()) == []


@pytest.mark.parametrize(("argv", "said"), [
    (["bench_train.py", "--presets", "nosuch"], "unknown preset 'nosuch'"),
    (["bench_model.py", "--presets", "tiny,nosuch"], "unknown preset 'nosuch'"),
    (["bench_dhnm.py", "--preset", "nosuch"], "invalid choice: 'nosuch'"),
    (["bench_startup.py", "--before", "nosuchref"], "--before nosuchref: git archive failed"),
    (["bench_startup.py", "--repeat", "0"], "must be at least 1, got 0"),
    (["bench_tokenize.py", "--repeats", "0"], "must be at least 1, got 0"),
    (["bench_train.py", "--iters", "0"], "must be at least 1, got 0"),
    (["bench_scoring.py", "--repeats", "3"], "--repeats must be even, got 3"),
    (["bench_text_order.py", "--tasks", "NoSuch"], "--tasks: no task folder NoSuch"),
])  # fmt: skip
def test_a_bad_argument_is_one_line_and_writes_nothing(tmp_path: Path, argv: list[str], said: str):
    """Before: KeyError and CalledProcessError tracebacks, StatisticsError after the whole run for a count of 0,
    and for an unknown task an all-zero table written over the committed JSON."""
    proc = bench(tmp_path, *argv)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    assert said in proc.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "results").exists() and list((tmp_path / "tmp").iterdir()) == []


def test_startup_probe_says_none_when_no_heavy_module_is_imported():
    """Before, the stripped stdout lost the empty last line, so "imports" read "model loads: 0"."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    import bench_startup

    assert bench_startup.probed("model loads: 0\nheavy imports: \n") == ("none", "0")
    assert bench_startup.probed("noise\nmodel loads: 1\nheavy imports: torch,mteb\n") == ("torch,mteb", "1")
    _, _, heavy, loads = bench_startup.once(REPO, ["--help"])  # the real probe, in a fresh process
    assert (heavy, loads) == ("none", "0")


def test_gpu_train_smoke_on_the_cpu_records_its_options_as_typed(tmp_path: Path):
    """gpu_train.py's documented CPU smoke (its docstring) trains the tiny preset a step per stage and records each
    option as its command-line text: --presets as "tiny" (after stop 62's list type it read "['tiny']")."""
    proc = bench(tmp_path, "gpu_train.py", "--device", "cpu", "--presets", "tiny", "--seq-len", "32", "--pair-len",
                 "16", "--batch", "2", "--pair-batch", "4", "--warmup", "0", "--iters", "1")  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads((tmp_path / "results" / "gpu_train.json").read_text())
    assert record["args"]["presets"] == "tiny" and record["args"]["seq_len"] == "32"
    assert {row["preset"] for row in record["results"]} == {"tiny"} and len(record["results"]) >= 2
    assert all(row["tokens_per_s"] > 0 for row in record["results"])


def test_item_floor_bench_runs_the_reports_path_and_no_row_under_the_floor_shows_an_effect(tmp_path: Path):
    """bench_item_floor.py (stop 70): the coverage table behind MIN_ITEMS, every row through paired_ci; a handful of
    trials here, so its figures are only checked for shape, and the floor's own effect: no verdict below 30 items."""
    proc = bench(tmp_path, "bench_item_floor.py", "--trials", "5", "--n-boot", "50")
    assert proc.returncode == 0, proc.stderr
    out = json.loads((tmp_path / "results" / "bench_item_floor.json").read_text(encoding="utf-8"))
    rows = out["results"]
    assert [(r["shape"], r["items"]) for r in rows] == [
        *((s, m) for s in ("normal", "sparse") for m in (5, 10, 20, 30, 50, 100, 400)),
        ("mean of 3 tasks", 8), ("mean of 4 tasks", 8), ("mean of 3 tasks", 10), ("mean of 2 tasks", 30)]  # fmt: skip
    assert all(r["coverage"] + r["excludes_zero"] == 1 for r in rows)
    assert all(r["verdict_shown"] == 0 for r in rows if r["items"] < out["min_items"])
