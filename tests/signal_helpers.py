"""Signals sent from inside a training run at a chosen point (deterministic, no sleeps), in-process or in a child."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

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


# `python -m train` (or each torchrun rank) in a child process that SIGTERMs itself once checkpoint
# $SIGTERM_AT_STEP is complete: deterministic, no sleeps; everything else is the real entry point, train/__main__.py
SIGTERM_AFTER_CHECKPOINT = """
import os, runpy, signal
from train import checkpoint
real = checkpoint.save_checkpoint
def save(out, step, *args, **kwargs):
    path = real(out, step, *args, **kwargs)
    if step == int(os.environ["SIGTERM_AT_STEP"]):
        os.kill(os.getpid(), signal.SIGTERM)
    return path
checkpoint.save_checkpoint = save
runpy.run_module("train", run_name="__main__", alter_sys=True)
"""


class SignalsWhenSaid:
    """A stream that sends this process ``signums`` just before it writes the first text containing ``marker``: a
    second Ctrl-C or SIGTERM arriving while the first one's "what is kept" line is printed."""

    def __init__(self, stream: TextIO, marker: str, *signums: int) -> None:
        self.stream, self.marker, self.signums, self.sent = stream, marker, signums, False

    def write(self, text: str) -> int:
        if not self.sent and self.marker in text:
            self.sent = True
            for signum in self.signums:
                os.kill(os.getpid(), signum)
        return self.stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)
