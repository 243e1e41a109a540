"""What a run that goes wrong leaves: a signal mid-task, a read-only run directory, an unusable cache, a summary
cut off after the last task. Each on the embedded sample (real rows, small) with the real model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fs_helpers import read_only

from harness.cli import main
from harness.data import default_data_root
from harness.runs import RunDir, shown_path

SAMPLE = default_data_root()

# `harness run` in a child process that signals itself while STS12's texts are encoding: deterministic, no sleeps
SIGNAL_IN_STS12 = """
import os, signal, sys
from harness.encoding import HarnessEncoder
real = HarnessEncoder.encode
def encode(self, inputs, *, task_metadata, **kwargs):
    if task_metadata.name == "STS12":
        os.kill(os.getpid(), getattr(signal, os.environ["SIGNAL_IN_STS12"]))
    return real(self, inputs, task_metadata=task_metadata, **kwargs)
HarnessEncoder.encode = encode
from harness.cli import main
sys.exit(main(sys.argv[1:]))
"""

# `harness run` in a child process that Ctrl-Cs itself as its model's weights start to load
SIGINT_AT_LOAD = """
import os, signal, sys
import harness.lazy
real = harness.lazy.load_model
def load_model(spec, opts):
    os.kill(os.getpid(), signal.SIGINT)
    return real(spec, opts)
harness.lazy.load_model = load_model
from harness.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _argv(out: Path, *args: str) -> list[str]:
    return ["run", "--model", "minilm", "--data-dir", str(SAMPLE), "--out", str(out), "--run-name", "r",
            "--no-progress", "--cache-dir", str(out / "cache"), *args]  # fmt: skip


def _ctrl_c_in_sts12(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Ctrl-C as STS12's texts start encoding, in-process (SIGNAL_IN_STS12's in-process twin)."""
    from harness.encoding import HarnessEncoder

    real = HarnessEncoder.encode

    def encode(self, inputs, *, task_metadata, **kwargs):
        if task_metadata.name == "STS12":
            raise KeyboardInterrupt
        return real(self, inputs, task_metadata=task_metadata, **kwargs)

    monkeypatch.setattr(HarnessEncoder, "encode", encode)


def _statuses(run: Path) -> dict[str, str]:
    return {name: task["status"] for name, task in json.loads((run / "run.json").read_text())["tasks"].items()}


@pytest.mark.slow
@pytest.mark.parametrize(("name", "code", "says"), [("SIGINT", 130, "interrupted"),
                                                      ("SIGTERM", 143, "terminated (SIGTERM)")])  # fmt: skip
def test_signal_mid_task_says_one_line_and_the_rerun_finishes(tmp_path: Path, name: str, code: int,
                                                              says: str) -> None:  # fmt: skip
    """Before: SIGTERM (a scheduler's limit, `timeout`, `docker stop`) ended the run silently with -15, and both it
    and Ctrl-C left the interrupted task's half-written files in `.staging/`. Now each says what is kept in one
    line, exits 128 + the signal, leaves no staging folder, and the same command finishes the run."""
    argv = _argv(tmp_path, "--tasks", "STS16,STS12,STS13")
    proc = subprocess.run([sys.executable, "-c", SIGNAL_IN_STS12, *argv], capture_output=True, text=True,
                          env={**os.environ, "SIGNAL_IN_STS12": name, "OMP_NUM_THREADS": "1"}, timeout=600)  # fmt: skip
    assert proc.returncode == code, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (f"harness: {says}; finished tasks are kept in the run directory "
                                                    "(the same command continues with the rest)")  # fmt: skip
    assert "Traceback" not in proc.stderr
    run = tmp_path / "r"
    assert _statuses(run) == {"STS16": "ok", "STS12": "pending", "STS13": "pending"}
    assert not (run / ".staging").exists() and not list(run.rglob(".*.tmp-*"))
    assert "| STS16 " in (run / "summary.md").read_text()

    assert main(argv) == 0
    assert _statuses(run) == {"STS16": "ok", "STS12": "ok", "STS13": "ok"}
    record = json.loads((run / "run.json").read_text())
    assert record["finished"] is not None and "pending" not in (run / "summary.md").read_text()


def test_ctrl_c_mid_task_leaves_no_staging_folder(tmp_path: Path, monkeypatch, capsys) -> None:
    """The fast tier's share of the test above, in-process: before, the interrupted task's half-written files stayed
    in `.staging/` until some later run into the directory cleared them."""
    _ctrl_c_in_sts12(monkeypatch)
    assert main(_argv(tmp_path, "--tasks", "STS16,STS12")) == 130
    assert "harness: interrupted; finished tasks are kept" in capsys.readouterr().err
    assert _statuses(tmp_path / "r") == {"STS16": "ok", "STS12": "pending"}
    assert not (tmp_path / "r" / ".staging").exists()


def test_ctrl_c_while_the_model_loads_says_what_is_kept(tmp_path: Path) -> None:
    """Before stop 63: Ctrl-C while the model loaded said "finished tasks are kept in the run directory" though no
    run directory existed yet. Now it says none had finished; a rerun into a directory with a finished task still
    says that one is kept (a fresh cache loads the weights before the run directory is chosen, a cache that knows
    the model at the first text it lacks)."""

    def stopped_at_load(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-c", SIGINT_AT_LOAD, *_argv(tmp_path, *args)],
                              capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
                              timeout=600)  # fmt: skip
        assert proc.returncode == 130 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
        return proc.stderr.strip().splitlines()[-1]

    assert stopped_at_load("--tasks", "STS16") == ("harness: interrupted; no task had finished and no run directory "
                                                   "was written (the same command starts again)")  # fmt: skip
    assert not (tmp_path / "r").exists()
    assert main(_argv(tmp_path, "--tasks", "STS16")) == 0
    kept = ("harness: interrupted; finished tasks are kept in the run directory (the same command continues with "
            "the rest)")  # fmt: skip
    assert stopped_at_load("--tasks", "STS16,STS12") == kept  # the weights load in STS12, the first text uncached


def test_ctrl_c_during_an_eager_load_names_a_default_directory_s_kept_tasks(tmp_path: Path, monkeypatch,
                                                                            capsys) -> None:  # fmt: skip
    """Review (stop 64): with no --run-name the run directory went into `chosen` only after the load, so a Ctrl-C
    during an eager one (--no-cache) said "no task had finished, so nothing is kept" while `minilm__STS16` held
    STS16's result. A packaged model's default name is known before the load; a folder's is not, and the line then
    says only that earlier runs' finished tasks stay."""
    argv = ["run", "--data-dir", str(SAMPLE), "--out", str(tmp_path), "--tasks", "STS16", "--no-progress", "--no-cache"]
    assert main([*argv, "--model", "minilm"]) == 0
    capsys.readouterr()

    def stop_loading(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("harness.runner.open_model", stop_loading)
    assert main([*argv, "--model", "minilm"]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "harness: interrupted; finished tasks are kept in the run directory (the same command continues with the "
        "rest)")  # fmt: skip
    assert _statuses(tmp_path / "minilm__STS16") == {"STS16": "ok"}
    folder = tmp_path / "model"  # a folder's default name is the loaded model's
    folder.mkdir()
    (folder / "config.json").write_text("{}", encoding="utf-8")
    assert main([*argv, "--model", f"hf:{folder}"]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "harness: interrupted; stopped before the run directory was chosen: finished tasks of earlier runs stay in "
        "theirs (the same command carries on)")  # fmt: skip


@pytest.mark.parametrize("in_the_way", ["embeddings.sqlite", "embeddings.sqlite.lock"])
def test_cache_that_cannot_be_opened_exits_2_naming_it(tmp_path: Path, in_the_way: str, capsys) -> None:
    """Before: a cache folder that takes files but whose database cannot be opened (a full disk; here a folder in
    the way of its file) ended `harness run` with an sqlite3/IsADirectoryError traceback."""
    (tmp_path / "cache" / in_the_way).mkdir(parents=True)
    assert main(_argv(tmp_path, "--tasks", "STS16")) == 2
    err = capsys.readouterr().err
    assert f"harness: error: --cache-dir {tmp_path / 'cache'}: cannot open the cache (" in err
    assert "or run with --no-cache" in err and "Traceback" not in err


def test_read_only_run_directory_exits_2_before_the_model_loads(tmp_path: Path, capsys) -> None:
    """Before: an existing run directory that takes no new file (a copy from a shared folder, another user's) passed
    the --out check and failed at the first write of run.json with a PermissionError traceback."""
    argv = _argv(tmp_path, "--tasks", "STS16")
    assert main(argv) == 0
    run = tmp_path / "r"
    before = (run / "run.json").read_bytes()
    with read_only(run):
        assert main([*argv, "--overwrite"]) == 2
    err = capsys.readouterr().err
    assert f"harness: error: run directory {run}: not writable (" in err and "Traceback" not in err
    assert (run / "run.json").read_bytes() == before


def test_ctrl_c_under_overwrite_names_the_tasks_still_from_the_earlier_evaluation(tmp_path: Path, monkeypatch,
                                                                                   capsys) -> None:  # fmt: skip
    """A walk (stop 66): a nightly `--overwrite` run stopped in its second task said "the same command continues
    with the rest", which evaluates every task again, and not that STS12 still held the night before's result."""
    assert main(_argv(tmp_path, "--tasks", "STS16,STS12")) == 0
    _ctrl_c_in_sts12(monkeypatch)
    capsys.readouterr()
    assert main(_argv(tmp_path, "--tasks", "STS16,STS12", "--overwrite")) == 130
    assert ("harness: interrupted; finished tasks are kept in the run directory, STS12 with the results of the "
            "evaluation before this --overwrite run (`--overwrite --tasks STS12` evaluates just those again; the "
            "same command, every task)") in capsys.readouterr().err
    assert _statuses(tmp_path / "r") == {"STS16": "ok", "STS12": "ok"}


def test_rerun_after_a_stop_between_record_and_summary_brings_summary_md_up_to_date(tmp_path: Path, monkeypatch,
                                                                                    capsys) -> None:  # fmt: skip
    """Before: Ctrl-C after the last task's record but before summary.md was rewritten left STS12 `pending` in
    summary.md (mean over STS16 alone) while run.json said ok; the rerun, having nothing to evaluate, printed the
    right table but kept the wrong file for good."""
    import harness.runner

    real = harness.runner.render_summary

    def stopped_once_sts12_is_recorded(run_dir) -> str:
        if run_dir.read_run()["tasks"]["STS12"]["status"] == "ok":
            raise KeyboardInterrupt
        return real(run_dir)

    argv = _argv(tmp_path, "--tasks", "STS16,STS12")
    monkeypatch.setattr(harness.runner, "render_summary", stopped_once_sts12_is_recorded)
    assert main(argv) == 130
    monkeypatch.setattr(harness.runner, "render_summary", real)
    assert _statuses(tmp_path / "r") == {"STS16": "ok", "STS12": "ok"}
    assert main(argv) == 0
    assert "nothing to evaluate" in capsys.readouterr().out
    summary = (tmp_path / "r" / "summary.md").read_text()
    assert "pending" not in summary and "- mean main score over 2 finished task(s)" in summary
    # the record is complete now: before stop 49 (audit) its "finished" stayed null for good
    assert json.loads((tmp_path / "r" / "run.json").read_text())["finished"] is not None


def test_a_second_signal_while_harness_says_what_is_kept_is_ignored(tmp_path: Path, monkeypatch, capsys) -> None:
    """Before: `harness` said its "interrupted; finished tasks are kept" line after the signal handler was given
    back, so a second Ctrl-C then was a KeyboardInterrupt traceback and a second SIGTERM a silent -15. Now the
    handler stays while the line is said and ignores repeats."""
    import signal

    from signal_helpers import SignalsWhenSaid, sigterm_must_be_handled

    from harness.encoding import HarnessEncoder

    real = HarnessEncoder.encode

    def encode(self, inputs, *, task_metadata, **kwargs):
        if task_metadata.name == "STS12":  # a real Ctrl-C, through the command's handler
            os.kill(os.getpid(), signal.SIGINT)
        return real(self, inputs, task_metadata=task_metadata, **kwargs)

    monkeypatch.setattr(HarnessEncoder, "encode", encode)
    monkeypatch.setattr(sys, "stderr", SignalsWhenSaid(sys.stderr, "harness: interrupted", signal.SIGTERM,
                                                       signal.SIGINT))  # fmt: skip
    try:
        with sigterm_must_be_handled():
            code = main(_argv(tmp_path, "--tasks", "STS16,STS12"))
    except KeyboardInterrupt as exc:
        pytest.fail(f"the repeated signal escaped the command: {exc!r}")
    assert code == 130
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("harness: interrupted; finished tasks are kept")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # given back once the command is over


def test_a_signal_while_an_error_line_is_printed_is_said_too(tmp_path: Path, monkeypatch, capsys) -> None:
    """Before: a first Ctrl-C landing while `harness: error: …` was printed raised inside that handler, which its
    sibling `except KeyboardInterrupt` does not catch: a traceback. Now it is said like any other interrupt."""
    import signal

    from signal_helpers import SignalsWhenSaid

    monkeypatch.setattr(sys, "stderr", SignalsWhenSaid(sys.stderr, "harness: error:", signal.SIGINT))
    try:
        code = main(_argv(tmp_path, "--tasks", "NoSuchTask"))
    except KeyboardInterrupt as exc:
        pytest.fail(f"the signal escaped the command: {exc!r}")
    assert code == 130
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("harness: interrupted")


def test_under_torchrun_rank_1_prefixes_its_error_and_rank_0_alone_says_the_stop(tmp_path: Path, monkeypatch,
                                                                                 capsys) -> None:  # fmt: skip
    """Every rank prints its own error: rank 1's is `[rank 1] harness: error: ...`, told from rank 0's. A stop is
    said by rank 0 alone (before stop 61 every rank said `interrupted; finished tasks are kept...`), and its SIGTERM
    line says torchrun sends one once another rank failed (rank 0 said `terminated (SIGTERM)` alone)."""
    from conan_model.signals import Terminated
    from harness import runner

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert main(_argv(tmp_path, "--batch-size", "0")) == 2
    assert capsys.readouterr().err.startswith("[rank 1] harness: error: --batch-size")

    def stop(*args: object, **kwargs: object) -> None:
        raise stopping

    monkeypatch.setattr(runner, "open_model", stop)
    stopping: KeyboardInterrupt = KeyboardInterrupt()
    assert main(_argv(tmp_path, "--tasks", "STS16", "--device", "cpu")) == 130 and capsys.readouterr().err == ""
    monkeypatch.setenv("RANK", "0")
    stopping = Terminated()
    assert main(_argv(tmp_path, "--tasks", "STS16", "--device", "cpu")) == 143
    # stopped at the model, nothing finished: before stop 63 it said "finished tasks are kept" all the same
    assert capsys.readouterr().err.startswith("harness: terminated (SIGTERM), under torchrun: another rank failed "
                                              "(its error is above) or the job was stopped; no task had finished")


def test_a_stop_before_any_task_finished_says_the_folder_stays(tmp_path: Path) -> None:
    """A run stopped in its first task leaves its folder, run.json listing every task pending (a leaderboard shows a
    0/N row): before, the line said "no task had finished, so nothing is kept" (a user's walk, stop 64)."""
    from harness.runner import stopped_note

    run = RunDir(tmp_path / "me5-intr", "m", "r")
    run.write_run({"model": {"name": "m"}, "tasks": {"AFQMC": {"status": "pending"}, "STSB": {"status": "pending"},
                                                     "PAWSX": {"status": "failed"}}})  # fmt: skip
    assert stopped_note(run.path) == (f"; no task had finished: {shown_path(run.path)} holds no score, only its "
                                      "record of 3 task(s) (2 pending, 1 failed) (the same command starts again)")
    assert stopped_note(tmp_path / "new") == ("; no task had finished and no run directory was written (the same "
                                              "command starts again)")  # fmt: skip
