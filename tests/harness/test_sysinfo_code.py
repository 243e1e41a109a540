"""The code version a run records: the commit, `+dirty` with uncommitted edits to any package's .py files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _version_in(clone: Path) -> str:
    """`harness.sysinfo.code_version()` as a process importing the clone's harness reports it."""
    return subprocess.run([sys.executable, "-c", "from harness.sysinfo import code_version; print(code_version())"],
                          cwd=clone, env={"PYTHONPATH": str(clone), "PATH": "/usr/bin:/bin"}, capture_output=True,
                          text=True, check=True).stdout.strip()  # fmt: skip


def test_an_edit_outside_harness_marks_the_code_dirty(tmp_path: Path) -> None:
    """A review (stop 69): `git status -- *.py` ran in harness/, so edits in train/ or reporting/ went unmarked,
    and `harness regress` named two nights of other code as one. A local clone, edited, says so."""
    if subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True).returncode:
        pytest.skip("not a git checkout")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--local", "--no-hardlinks", str(REPO), str(clone)], check=True)
    # the code under test as it is in this checkout, committed in the clone (this checkout may hold edits)
    (clone / "harness" / "sysinfo.py").write_bytes((REPO / "harness" / "sysinfo.py").read_bytes())
    subprocess.run(["git", "-C", str(clone), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q",
                    "--allow-empty", "-am", "sysinfo as tested"], check=True)  # fmt: skip
    head = subprocess.run(["git", "-C", str(clone), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip
    assert _version_in(clone) == head
    with (clone / "train" / "loop.py").open("a", encoding="utf-8") as handle:
        handle.write("# an uncommitted edit\n")
    assert _version_in(clone) == f"{head}+dirty"
