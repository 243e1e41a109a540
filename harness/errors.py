"""Errors that reach the user: each names what is wrong and where, and maps to an exit status."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path

EXIT_OK, EXIT_TASK_FAILED, EXIT_USAGE = 0, 1, 2


class HarnessError(Exception):
    """Base class; `exit_code` is what the CLI returns."""

    exit_code = EXIT_USAGE


class UsageError(HarnessError):
    """Bad command-line input: unknown suite/task/model, invalid option value."""


class DataError(HarnessError):
    """Malformed data; the message starts with file:line so editors can jump there."""

    def __init__(self, path: Path | str, line: int, message: str):
        self.path, self.line = Path(path), line
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")


def unknown(kind: str, name: str, choices: Iterable[str], hint: str = "") -> UsageError:
    """An 'unknown X' error with close-match suggestions."""
    choices = sorted(set(choices))
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    lowered = [c for c in choices if c.lower() == name.lower() and c not in close]
    suggestions = lowered + close
    msg = f"unknown {kind} {name!r}"
    if suggestions:
        msg += f"; did you mean: {', '.join(suggestions)}?"
    if hint:
        msg += f" ({hint})"
    return UsageError(msg)
