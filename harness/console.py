"""The console belongs to the harness's own lines: library warnings and bars go elsewhere, long work still speaks.

- Library warnings (sklearn convergence, transformers, mteb) are written to `warnings.log` in the run directory;
  before that directory is known (model loading) they are held and written once it is.
- Library progress bars (datasets, transformers' weight loading, huggingface_hub, mteb's own tqdm bars) are off;
  the harness's own encode bar shows on a terminal.
- When the output is not a terminal (CI logs, nohup) a progress line is printed at a steady interval
  (`HARNESS_PROGRESS_INTERVAL` seconds, default 30) while a task runs; `--no-progress` silences both.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

WARNINGS_LOG = "warnings.log"
LIBRARY_LOGGERS = ("transformers", "sentence_transformers", "datasets", "mteb", "sklearn", "huggingface_hub")


def progress_interval() -> float:
    """Seconds between progress lines when the output is not a terminal."""
    try:
        return max(float(os.environ.get("HARNESS_PROGRESS_INTERVAL", "30")), 0.0)
    except ValueError:
        return 30.0


def silence_library_bars() -> None:
    """Library bars would interleave with the task lines; the harness shows its own progress instead.

    transformers is not imported for this (a warm rerun never needs it): it starts with its bars off when the hub's
    are off, and is told directly only if it is imported already."""
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    import datasets
    from huggingface_hub.utils import disable_progress_bars

    datasets.disable_progress_bars()
    disable_progress_bars()
    if "transformers" in sys.modules:
        sys.modules["transformers"].utils.logging.disable_progress_bar()


@contextmanager
def library_tqdm_off() -> Iterator[None]:
    """tqdm bars that do not say `disable` themselves (mteb's: bitext mining's "Matching sentences", summarization's)
    are off while a run lasts: they would interleave with the task lines, and fill a log with carriage returns.

    tqdm reads TQDM_DISABLE only when it is imported, which mteb has done by then (before stop 49 a run set it, and
    `--no-progress` runs still printed mteb's bars), so the default of `disable` is changed instead; the harness's
    own bar passes `disable` and keeps its choice. Counted, so runs overlapping in threads restore tqdm's own once
    the last ends (each restoring what it found left bars off for good: review of stop 49)."""
    from tqdm import std

    with _TQDM_OFF_LOCK:
        if not _TQDM_OFF:
            _TQDM_OFF.append(std.tqdm.__init__)
            std.tqdm.__init__ = functools.partialmethod(std.tqdm.__init__, disable=True)
        _TQDM_OFF.append(None)
    try:
        yield
    finally:
        with _TQDM_OFF_LOCK:
            _TQDM_OFF.pop()
            if len(_TQDM_OFF) == 1:
                std.tqdm.__init__ = _TQDM_OFF.pop()


_TQDM_OFF: list = []  # [tqdm's own __init__, then one entry per run holding bars off]
_TQDM_OFF_LOCK = threading.Lock()


class WarningLog:
    """Collects warnings and library log records; writes them to <run>/warnings.log once attach() names it."""

    def __init__(self) -> None:
        self.held: list[str] = []
        self.path: Path | None = None
        self.count = 0

    def write(self, text: str) -> None:
        self.count += 1
        if self.path is None:
            self.held.append(text)
            return
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(text)

    def attach(self, run_dir: Path) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        self.path = run_dir / WARNINGS_LOG
        if self.held:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.writelines(self.held)
        self.held = []


class _ToLog(logging.Handler):
    def __init__(self, sink: WarningLog) -> None:
        super().__init__(logging.WARNING)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.write(f"{record.levelname} {record.name}: {record.getMessage()}\n")


@contextmanager
def quiet_console() -> Iterator[WarningLog]:
    """Route warnings and library warning logs into a WarningLog for the duration of a run."""
    sink = WarningLog()
    handler = _ToLog(sink)
    loggers = [logging.getLogger(name) for name in LIBRARY_LOGGERS]
    saved = [(lg.handlers[:], lg.propagate) for lg in loggers]
    old_show = warnings.showwarning

    def show(message: Any, category: type, filename: str, lineno: int, file: TextIO | None = None,
             line: str | None = None) -> None:  # fmt: skip
        sink.write(warnings.formatwarning(message, category, filename, lineno, line))

    warnings.showwarning = show
    for lg in loggers:
        lg.handlers, lg.propagate = [handler], False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")  # each distinct warning once per place, into the log
            warnings.showwarning = show
            yield sink
    finally:
        warnings.showwarning = old_show
        for lg, (handlers, propagate) in zip(loggers, saved, strict=True):
            lg.handlers, lg.propagate = handlers, propagate


class Heartbeat:
    """Prints status() every interval seconds on a daemon thread until stopped (non-terminal output only)."""

    def __init__(self, status: Callable[[], str], interval: float, stream: TextIO | None = None) -> None:
        self.status, self.interval, self.stream = status, interval, stream or sys.stderr
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        start = time.monotonic()
        while not self._stop.wait(self.interval or 0.05):
            print(f"  ... {self.status()}, {time.monotonic() - start:.0f} s", file=self.stream, flush=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()


@contextmanager
def heartbeat(enabled: bool, status: Callable[[], str]) -> Iterator[None]:
    """A Heartbeat when enabled, else nothing."""
    if not enabled:
        yield
        return
    with Heartbeat(status, progress_interval()):
        yield
