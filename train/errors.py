"""Errors that reach the user: each names the cause (file:line, config key, checkpoint) and exits with status 2."""

from __future__ import annotations

from pathlib import Path


class TrainError(Exception):
    """Base class; the CLI prints the message and returns ``exit_code``."""

    exit_code = 2


class ConfigError(TrainError):
    """Unknown or ill-typed config key, inconsistent batch sizes, bad --set syntax."""


class ResumeError(TrainError):
    """No checkpoint to resume from, or one written with a different config."""


class DataError(TrainError):
    """Missing/empty data file or a bad row; the message starts with file:line so editors can jump there."""

    def __init__(self, path: Path | str, line: int, message: str):
        self.path, self.line = Path(path), line
        super().__init__(f"{path}:{line}: {message}" if line else f"{path}: {message}")
