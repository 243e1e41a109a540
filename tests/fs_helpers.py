"""A folder that takes no new file, for tests of outputs the OS refuses (tests/ is on sys.path through conftest.py)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """No new file can be made in ``folder`` inside the block: its mode, or for root (whom modes do not bind) the
    immutable flag; writable again after it. Skips where neither can be set."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
    elif subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("running as root on a file system without chattr +i: no folder is read-only to this test")
    try:
        yield
    finally:
        if os.geteuid() != 0:
            folder.chmod(0o755)
        else:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
