"""Option checks that run before any model loads, so a typo costs a second, not a model load and a traceback.

Each failure is a UsageError naming the option and the value (exit 2).
"""

from __future__ import annotations

import os
from pathlib import Path

from conan_model.atomic import folder_problem
from harness.errors import UsageError
from harness.runs import has_control_character


def check_positive(option: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise UsageError(f"{option} {value}: must be at least 1")


def check_seed(option: str, value: int) -> None:
    """A random seed numpy takes (``default_rng``: 0 or more), refused before any work, not by numpy after it."""
    if value < 0:
        raise UsageError(f"{option} {value}: must be 0 or more (a random seed)")


def parse_dims(dims: list[str] | None, option: str = "--dims") -> list[int]:
    """--dims values → positive integers, parsed once where they enter (the CLI, a pipeline config: ``option``
    names where, e.g. '<file>: [eval] dims'); 'full' is dropped, since the full dimension is always evaluated. Only
    ASCII digits count ('²' is not 2)."""
    parsed = []
    for value in dims or []:
        if value == "full":
            continue
        if not (value.isascii() and value.isdigit()) or int(value) < 1:
            raise UsageError(f"{option}: {value!r} is not a positive integer or 'full'")
        parsed.append(int(value))
    return parsed


def check_writable_dir(option: str, folder: Path) -> None:
    """The folder can be made and takes a new file (conan_model.atomic.folder_problem, checked by writing one), else
    a UsageError naming the option. Nothing is made: a command refused for a later mistake (a misspelt task) left
    an empty --out folder behind before stop 59."""
    if problem := folder_problem(folder):
        raise UsageError(f"{option} {folder}: {problem}")


def run_directory(out: Path, run_name: str) -> Path:
    """out/run_name, refusing names that would place the run outside --out (absolute paths, '..')."""
    if not run_name or Path(run_name).is_absolute() or ".." in Path(run_name).parts or "\0" in run_name:
        raise UsageError(f"--run-name {run_name!r}: must be a relative name inside --out (no '..', not absolute)")
    if has_control_character(run_name):  # a line break in every report naming it (stop 69)
        raise UsageError(f"--run-name {run_name!r}: holds a control character (a line break?); give a plain name")
    path = out / run_name
    if os.path.commonpath([path.resolve(), out.resolve()]) != str(out.resolve()):
        raise UsageError(f"--run-name {run_name!r}: resolves outside --out {out}")
    if path.resolve() == out.resolve():  # '.', 'a/..': the run's files would land among the other runs
        raise UsageError(f"--run-name {run_name!r}: names --out {out} itself; give the run a folder name")
    return path


def check_device(requested: str | None) -> str | None:
    """A device that exists here (conan_model.device.device_problem, as training asks); None stays None (the best
    available is chosen)."""
    if requested is None:
        return None
    from conan_model.device import device_problem  # imports torch: only when a device is named

    problem = device_problem(requested)
    if problem:
        advice = "" if problem.startswith("unknown device type") else "; use --device cpu"  # it lists the types
        raise UsageError(f"--device {requested}: {problem}{advice}")
    return requested
