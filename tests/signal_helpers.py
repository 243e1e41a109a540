"""Signals sent from inside a training run at a chosen point (deterministic, no sleeps), for in-process tests."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from train import checkpoint as ckpt_io


@contextmanager
def sigterm_must_be_handled() -> Iterator[None]:
    """A SIGTERM that no command handles raises here instead of ending pytest, so old code fails the test rather
    than killing the test session."""

    def unhandled(signum: int, frame: object) -> None:
        raise AssertionError("SIGTERM reached the default handler: the process would have died silently (-15)")

    previous = signal.signal(signal.SIGTERM, unhandled)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def signal_after_saving(monkeypatch: pytest.MonkeyPatch, at_step: int, signum: int = signal.SIGTERM) -> None:
    """The process signals itself with ``signum`` once checkpoint ``at_step`` is complete (as `kill`, a scheduler's
    time limit or `docker stop` would)."""
    real = ckpt_io.save_checkpoint

    def save(out: Path, step: int, *args, **kwargs) -> Path:
        path = real(out, step, *args, **kwargs)
        if step == at_step:
            os.kill(os.getpid(), signum)
        return path

    monkeypatch.setattr(ckpt_io, "save_checkpoint", save)


def last_line_of_sigterm_run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], argv: list[str],
                             at_step: int) -> str:  # fmt: skip
    """Run `harness ARGV`, SIGTERM once checkpoint ``at_step`` is complete; check it exits 143 without a traceback
    and return the last line it wrote to stderr (what it says is kept). The signal is off again afterwards."""
    from harness.cli import main

    with monkeypatch.context() as patch:
        signal_after_saving(patch, at_step)
        with sigterm_must_be_handled():
            assert main(argv) == 143
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return err.strip().splitlines()[-1]
