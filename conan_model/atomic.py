"""Atomic file writes shared by checkpoints, tokenizers and mined pools: a crash or a concurrent writer never
leaves half a file under the final name."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """``write`` a temporary file beside ``path``, then rename it over ``path``; no partial file survives.

    The temporary name is unique per call, so concurrent writers of one path (processes or threads) never
    share it."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:12]}")
    try:
        write(tmp)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)  # the mode open() gives; some writers (safetensors) make 0600 files
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
