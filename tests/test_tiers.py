"""Missing ../shared/data: a skip on a developer machine, a failure under CI (CI=true), where it is a broken set-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NEEDS_SHARED = "tests/harness/test_data.py::test_real_mirror_rows_validate"  # cheap: reads rows, no model


@pytest.mark.parametrize(("ci", "outcome"), [("", "1 skipped"), ("true", "1 error")])
def test_missing_shared_data(tmp_path: Path, ci: str, outcome: str):
    env = {**os.environ, "CI": ci, "HARNESS_SHARED_DATA": str(tmp_path / "absent")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", NEEDS_SHARED], cwd=REPO,
                          env=env, capture_output=True, text=True)  # fmt: skip
    assert outcome in proc.stdout, proc.stdout[-2000:]
    assert (proc.returncode == 0) == (ci == ""), proc.stdout[-2000:]
