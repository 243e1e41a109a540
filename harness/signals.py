"""SIGTERM as an interrupt, for every `harness` command: installed once by harness/cli.py `main`.

A scheduler's time limit, `kill`, `timeout` and `docker stop` send SIGTERM, which by default ends the process on the
spot, silently (exit -15): a training stage said nothing about the checkpoint it keeps, a run left the task under
way in `.staging/`. Raised as :class:`Terminated` (a KeyboardInterrupt) in the main thread instead, it unwinds as
Ctrl-C does, each command's cleanup runs and the CLI says what is kept in one line, exit status 128 + SIGTERM.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread; ``exit_code`` is what a shell reports for a command the signal ended."""

    exit_code = 128 + signal.SIGTERM

    def __init__(self) -> None:
        super().__init__("terminated (SIGTERM)")


@contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Within the block, SIGTERM raises Terminated; the previous handler comes back afterwards. Only the main thread
    may set a handler: elsewhere (a command started from a worker thread) SIGTERM keeps its own."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def terminate(signum: int, frame: Any) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
