"""Errors that reach the user: each names what is wrong and where, and maps to an exit status.

The base and its status come from conan_model.errors (one for every package); these are the harness's kinds."""

from __future__ import annotations

from collections.abc import Iterable

from conan_model.errors import EXIT_USAGE as EXIT_USAGE
from conan_model.errors import ConanError as ConanError  # the one error base: reporting catches it from here
from conan_model.errors import DataError as BaseDataError
from conan_model.errors import did_you_mean as did_you_mean  # one implementation, for every package

EXIT_OK, EXIT_TASK_FAILED = 0, 1


class HarnessError(ConanError):
    """An error of the evaluation side (the CLI prints it and returns `exit_code`)."""


class UsageError(HarnessError):
    """Bad command-line input: unknown suite/task/model, invalid option value."""


class DataError(HarnessError, BaseDataError):
    """Malformed task data; the message starts with file:line so editors can jump there."""


def unknown(kind: str, name: str, choices: Iterable[str], hint: str = "") -> UsageError:
    """An 'unknown X' error with close-match suggestions."""
    msg = f"unknown {kind} {name!r}{did_you_mean(name, choices)}"
    if hint:
        msg += f" ({hint})"
    return UsageError(msg)


class ShardMismatch(HarnessError):
    """torchrun ranks reached different collectives (another task, call or slice): their vectors would be paired
    wrongly, so the run stops on every rank."""

    exit_code = EXIT_TASK_FAILED


class PeerFailed(HarnessError):
    """Another torchrun rank failed the current task; this rank stops it too (the peer's error is recorded)."""

    exit_code = EXIT_TASK_FAILED
