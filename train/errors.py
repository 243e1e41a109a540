"""Errors that reach the user: each names the cause (file:line, config key, checkpoint) and exits with status 2.

The base and its status come from conan_model.errors (one for every package); these are the training kinds."""

from __future__ import annotations

from conan_model.errors import ConanError
from conan_model.errors import DataError as BaseDataError


class TrainError(ConanError):
    """An error of a training stage (the CLI prints it and returns ``exit_code``)."""


class ConfigError(TrainError):
    """Unknown or ill-typed config key, inconsistent batch sizes, bad --set syntax."""


class ResumeError(TrainError):
    """No checkpoint to resume from, or one written with a different config."""


class DataError(TrainError, BaseDataError):
    """Missing/empty data file or a bad row; the message starts with file:line so editors can jump there."""
