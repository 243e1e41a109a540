"""Missing ../shared/data: a skip on a developer machine, a failure under CI (CI=true), where it is a broken set-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NEEDS_SHARED = "tests/harness/test_data.py::test_real_mirror_rows_validate"  # cheap: reads rows, no model


def test_missing_shared_data_fails_under_ci(tmp_path: Path):
    """(Without CI=true the same test is skipped: the fixture's other branch, seen on any machine without the data.)"""
    env = {**os.environ, "CI": "true", "HARNESS_SHARED_DATA": str(tmp_path / "absent")}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", NEEDS_SHARED], cwd=REPO,
                          env=env, capture_output=True, text=True)  # fmt: skip
    assert proc.returncode != 0 and "1 error" in proc.stdout, proc.stdout[-2000:]
    assert "under CI every test runs" in proc.stdout
