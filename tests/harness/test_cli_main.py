"""`python -m harness` (harness/__main__.py) outside an environment holding the project's dependencies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_a_missing_dependency_is_one_line_naming_the_venv() -> None:
    """A newcomer's walk (stop 70): `python3 -m harness list suites` from the clone, without the venv, ended in a raw
    traceback ("No module named 'tabulate'"). A dependency that cannot be imported (here hidden with a None entry in
    sys.modules, as an absent package reads) is one line saying what to activate or install, exit 2."""
    hide = ("import runpy, sys; sys.modules['tabulate'] = None; sys.argv = ['harness', 'list', 'suites']; "
            "runpy.run_module('harness', run_name='__main__')")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", hide], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip() == (f"harness: error: the package 'tabulate' is not installed for {sys.executable}: "
                                   "activate the project's venv (`. .venv/bin/activate`) or install the project "
                                   "into this Python (`pip install -c constraints.txt -e .`; README, Set up and run)")
