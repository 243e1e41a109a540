"""SIGTERM as an interrupt, for every command line: `harness` (harness/cli.py `main`) and `python -m train` /
`torchrun -m train` (train/cli.py `main`). It lives in conan_model, the bottom package, so both share one
implementation without train importing harness (docs/DESIGN.md, "The house").

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

from conan_model.errors import launched_world_size


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread; ``exit_code`` is what a shell reports for a command the signal ended."""

    exit_code = 128 + signal.SIGTERM

    def __init__(self) -> None:
        super().__init__("terminated (SIGTERM)")


def how_stopped(exc: KeyboardInterrupt) -> str:
    """How a command was stopped, leading its line: a SIGTERM to a torchrun rank usually comes from torchrun once
    another rank failed, which rank 0's line (`terminated (SIGTERM)` alone) did not say."""
    how = str(exc) or "interrupted"
    if isinstance(exc, Terminated) and launched_world_size() > 1:
        how += ", under torchrun: another rank failed (its error is above) or the job was stopped"
    return how


_fired: list[int] = []  # the signal the active `sigterm_interrupts` block's handler took, until the block ends


def raise_if_interrupted() -> None:
    """Raise again the interrupt a `sigterm_interrupts` handler raised, if one fired. CPython runs a handler
    wherever the main thread is, a finalizer (`__del__`, a weakref or gc callback) included, where its exception is
    printed as "Exception ignored" and dropped; the signals are ignored from then on, so a process that was waiting
    would go on waiting until it is killed, without a word. Waits that can last (a torchrun rank polling for the
    others: harness.distributed) call this between polls. Main thread only, as the handler."""
    if _fired and threading.current_thread() is threading.main_thread():
        raise Terminated() if _fired[0] == signal.SIGTERM else KeyboardInterrupt()


@contextmanager
def sigterm_interrupts(process_exits_after: bool = False) -> Iterator[None]:
    """Within the block, SIGTERM raises Terminated and Ctrl-C KeyboardInterrupt, once: after the first, both are
    ignored until the block ends, so a second one (an impatient Ctrl-C, a scheduler's repeated SIGTERM) cannot
    break the cleanup or the line saying what is kept into a traceback. The previous handlers come back afterwards.

    ``process_exits_after`` (a process's entry point): once fired, the signals stay ignored after the block too,
    through the interpreter's exit, which a repeat (torchrun SIGTERMs the ranks still alive once one has exited)
    would otherwise cut short, exit -15 instead of 143. In-process callers keep the default: their handlers return.

    Only the main thread may set a handler: elsewhere (a command started from a worker thread) the signals keep
    their own. A SIGINT already ignored (a background job's) stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught = [signal.SIGTERM]
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        caught.append(signal.SIGINT)

    fired = False

    def interrupt(signum: int, frame: Any) -> None:
        nonlocal fired
        fired = True
        _fired.append(signum)
        for each in caught:
            signal.signal(each, signal.SIG_IGN)
        raise Terminated if signum == signal.SIGTERM else KeyboardInterrupt

    previous = {each: signal.signal(each, interrupt) for each in caught}
    try:
        yield
    finally:
        for each, handler in previous.items():
            signal.signal(each, signal.SIG_IGN if fired and process_exits_after else handler)
        _fired.clear()
