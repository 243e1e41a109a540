"""A training stage stopped by a signal mid-run, under `harness train`, `python -m train` and `torchrun -m train`:
one line naming the checkpoint kept, exit 143, the resume finishes the run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from signal_helpers import (
    SIGTERM_AFTER_CHECKPOINT,
    SignalsWhenSaid,
    last_line_of_sigterm_run,
    signal_after_saving,
    sigterm_must_be_handled,
)

from harness.cli import main
from train import checkpoint as ckpt_io
from train.cli import main as train_main

REPO = Path(__file__).resolve().parents[2]


def _argv(out: Path, shared_data: Path, *extra: str) -> list[str]:
    sets = [f"output_dir={out}", f"data_root={shared_data / 'train'}", "data=news_en_raw", "tokenizer_vocab=400",
            "tokenizer_rows=100", "model_overrides.max_length=32", "seq_len=32", "batch_size=4", "steps=3",
            "save_every=1", "keep_last=2", "threads=1"]  # fmt: skip
    return ["train", "pretrain", *(a for s in sets for a in ("--set", s)), *extra]


def _kept_line(out: Path, step: int = 2, said_as: str = "train") -> str:
    """What a SIGTERMed stage says it keeps; `said_as` the command as typed (`harness train`, or `python -m train`'s
    `train`)."""
    return (f"{said_as}: terminated (SIGTERM); checkpoints up to step_{step:08d} are kept in {out / 'checkpoints'}; "
            "continue with --resume")  # fmt: skip


def _resume_finishes(out: Path, shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The kept checkpoint is whole: `--resume` continues from it and writes the last step and the final model."""
    assert not (out / "final").exists()
    assert main(_argv(out, shared_data, "--resume")) == 0
    assert f"resumed from {out / 'checkpoints' / 'step_00000002'} at step 2" in capsys.readouterr().out
    assert [p.name for p in ckpt_io.checkpoint_dirs(out)] == ["step_00000002", "step_00000003"]
    assert (out / "final" / "model.safetensors").is_file()


def _child(tmp_path: Path, launcher: list[str], out: Path, shared_data: Path) -> subprocess.CompletedProcess[str]:
    """`launcher` + a script that is `python -m train` SIGTERMing itself after checkpoint 2, in a child process."""
    script = tmp_path / "sigterm_after_checkpoint.py"
    script.write_text(SIGTERM_AFTER_CHECKPOINT)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "SIGTERM_AT_STEP": "2"}
    return subprocess.run([*launcher, str(script), *_argv(out, shared_data)[1:]], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)  # fmt: skip


def test_sigterm_names_the_checkpoint_kept_exits_143_and_resume_finishes(tmp_path: Path, shared_data: Path, one_thread,
                                                                        monkeypatch, capsys) -> None:  # fmt: skip
    """Before: SIGTERM (a scheduler's time limit, `kill`, `timeout`) ended `harness train` silently with -15. Now it
    is said as Ctrl-C is, with what it was (a job log tells a preemption from a Ctrl-C), and exits 143."""
    out = tmp_path / "out"
    said = last_line_of_sigterm_run(monkeypatch, capsys, _argv(out, shared_data), at_step=2)
    assert said == _kept_line(out, said_as="harness train")
    _resume_finishes(out, shared_data, capsys)


def test_python_m_train_says_sigterm_in_one_line_and_exits_143(tmp_path: Path, shared_data: Path, one_thread,
                                                               capsys) -> None:  # fmt: skip
    """Before: only `harness` handled SIGTERM; `python -m train` (train/__main__.py) died on the spot, silently, -15,
    with no word of the checkpoint it keeps. A real child process: the signal reaches the real entry point."""
    out = tmp_path / "out"
    proc = _child(tmp_path, [sys.executable], out, shared_data)
    assert proc.returncode == 143, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == _kept_line(out)
    _resume_finishes(out, shared_data, capsys)


def test_a_second_signal_while_the_line_is_said_is_ignored(tmp_path: Path, shared_data: Path, one_thread, monkeypatch,
                                                           capsys) -> None:  # fmt: skip
    """Before: a second SIGTERM or Ctrl-C arriving while the first one's "what is kept" line was printed raised
    again from inside the handler: a traceback instead of the line (and of exit 143). Now repeats are ignored."""
    out = tmp_path / "out"
    signal_after_saving(monkeypatch, at_step=2)
    monkeypatch.setattr(sys, "stderr", SignalsWhenSaid(sys.stderr, "terminated (SIGTERM)", signal.SIGTERM,
                                                       signal.SIGINT))  # fmt: skip
    try:
        with sigterm_must_be_handled():
            code = train_main(_argv(out, shared_data)[1:])
    except KeyboardInterrupt as exc:  # a pytest session would stop on it: a failure of this test instead
        pytest.fail(f"the repeated signal escaped the command: {exc!r}")
    assert code == 143
    assert capsys.readouterr().err.strip().splitlines()[-1] == _kept_line(out)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # given back once the command is over


@pytest.mark.slow
def test_torchrun_ranks_each_stop_on_sigterm_rank_0_says_the_line(tmp_path: Path, shared_data: Path,
                                                                  capsys) -> None:  # fmt: skip
    """Before: `torchrun -m train` ranks died on SIGTERM silently. Now every rank (each SIGTERMed once checkpoint 2 is
    complete, as a scheduler signals every process of a job) unwinds and exits 143, no rank hangs in a collective,
    and rank 0 alone says the line; the kept checkpoint resumes."""
    out = tmp_path / "out"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    proc = _child(tmp_path, launcher, out, shared_data)
    assert proc.returncode != 0  # torchrun reports its failed ranks itself
    assert proc.stderr.count("exitcode  : 143") == 2, proc.stderr[-3000:]
    said = [line for line in proc.stderr.splitlines() if line.startswith("train: ")]
    how = "terminated (SIGTERM), under torchrun: another rank failed (its error is above) or the job was stopped"
    assert said == [_kept_line(out).replace("terminated (SIGTERM)", how)], proc.stderr[-3000:]
    _resume_finishes(out, shared_data, capsys)


def test_a_torchrun_rank_other_than_0_prefixes_its_error(tmp_path: Path, monkeypatch, capsys) -> None:
    """Every rank prints its own error; rank 1's says it is rank 1's (before stop 61 the lines were alike)."""
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "1")
    assert train_main([str(tmp_path / "absent.toml")]) == 2
    assert capsys.readouterr().err.startswith("[rank 1] train: error: ")


def test_a_collective_timeout_names_the_checkpoint_kept(tmp_path: Path, monkeypatch, capsys) -> None:
    """A rank hung in training: gloo's timeout (a RuntimeError) was a traceback naming neither the timeout nor the
    checkpoint to resume from; now one line, exit 1 (stop 61)."""
    from types import SimpleNamespace

    from train import cli

    kept = tmp_path / "out" / "checkpoints" / "step_00000004"
    kept.mkdir(parents=True)
    (kept / ckpt_io.STATE_NAME).write_text("{}")

    def hangs(cfg: object, resume: object = None) -> None:
        raise RuntimeError("[gloo/transport/tcp/unbound_buffer.cc:78] Timed out waiting 600000ms for recv operation")

    monkeypatch.setattr(cli, "resolve", lambda *a: (SimpleNamespace(run=hangs),
                                                    SimpleNamespace(output_dir=str(tmp_path / "out"))))
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    monkeypatch.delenv("HARNESS_DIST_TIMEOUT_S", raising=False)
    assert train_main(["pretrain"]) == 1
    assert capsys.readouterr().err == (
        "[rank 1] train: error: stopped: a collective waited 600 s (HARNESS_DIST_TIMEOUT_S) for another rank, which "
        "hung or is slower than that (raise it if a rank needs longer); checkpoints up to step_00000004 are kept in "
        f"{tmp_path / 'out' / 'checkpoints'}; continue with --resume\n")
