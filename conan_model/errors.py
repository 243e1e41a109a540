"""The project's one error base: a mistake the user can fix, printed as one line (no traceback) with its exit status.

It lives in conan_model, the bottom package, so that harness, train and conan_model errors share the base and the
status without importing each other (docs/DESIGN.md, "The house"); each CLI catches `ConanError`.
"""

from __future__ import annotations

import difflib
import json
import os
import sys
from collections.abc import Iterable
from contextlib import suppress
from pathlib import Path

EXIT_USAGE = 2  # bad input: option, config key, model, data file


class ConanError(Exception):
    """Base class; `exit_code` is what a CLI returns after printing the message."""

    exit_code = EXIT_USAGE


class ModelImportError(ConanError, ValueError):
    """A model file or folder that cannot be imported; the message names the file and what is wrong."""


class DataError(ConanError):
    """Malformed data; the message starts with file:line so editors can jump there."""

    def __init__(self, path: Path | str, line: int, message: str) -> None:
        self.path, self.line, self.detail = Path(path), line, message
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """'; did you mean: a, b?' naming the close matches of name (same letters in another case first), or ''.

    Here, not in harness.errors, so that conan_model's own commands (`harness models fetch`) suggest names too."""
    choices = sorted(set(choices))
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    lowered = [c for c in choices if c.lower() == name.lower() and c not in close]
    suggestions = lowered + close
    return f"; did you mean: {', '.join(suggestions)}?" if suggestions else ""


def launched_world_size() -> int:
    """The processes torchrun started (WORLD_SIZE), 1 without torchrun: read before any process group exists, by
    every package (here, at the bottom, so that one place reads the variable)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank_prefix() -> str:
    """'[rank N] ' in a torchrun rank other than 0, else '': each rank prints its own error, and one that failed on
    a single rank (which torchrun then follows by SIGTERMing rank 0) must be told from rank 0's own."""
    rank = os.environ.get("RANK", "0")
    return f"[rank {rank}] " if launched_world_size() > 1 and rank != "0" else ""


def error_line(text: str) -> None:
    """Print an error line to stderr, '[rank N] ' before it in a torchrun rank other than 0 (`rank_prefix`). Under
    torchrun the ranks share one stderr, so the line goes out in one write(2): printed, the text and its newline
    could be two writes, and two ranks' lines ran together (`…the same texts alikeharness: error: …`, a user's walk,
    stop 66)."""
    line = f"{rank_prefix()}{text}\n"
    if launched_world_size() > 1:
        with suppress(AttributeError, OSError, ValueError):  # a stream with no descriptor (captured): print below
            sys.stderr.flush()
            os.write(sys.stderr.fileno(), line.encode(sys.stderr.encoding or "utf-8", "backslashreplace"))
            return
    sys.stderr.write(line)
    sys.stderr.flush()


def json_error(e: json.JSONDecodeError) -> str:
    """The decoder's message with its column, as one phrase: its messages end in "at" ("Unterminated string starting
    at") or not ("Expecting value"), and before stop 64 the first was cut mid-phrase (the data's reader), before
    stop 66 given a second "at" (the trainer's: "Invalid control character at at character 95")."""
    return f"{e.msg}{'' if e.msg.endswith(' at') else ' at'} column {e.colno}"
