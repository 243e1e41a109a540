"""Atomic file writes for every package (checkpoints, tokenizers, mined pools, run directories, reports): a crash
or a concurrent writer never leaves half a file under the final name. It lives in conan_model, the bottom
package, so that harness and train share one implementation without importing each other."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """``write`` a temporary file beside ``path``, then rename it over ``path``; no partial file survives.

    The parent folder is made if missing. The temporary name is unique per call, so concurrent writers of one
    path (processes or threads) never share it. The file gets the mode open() gives under the umask, whatever
    the writer made (safetensors and mkstemp make 0600 files), so every file of a run has the same mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:12]}")
    try:
        write(tmp)
        os.chmod(tmp, default_file_mode())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def default_file_mode() -> int:
    """The mode open() gives a new file under the current umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_text(path: Path, text: str) -> None:
    """UTF-8 text, written atomically."""
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    """Indented UTF-8 JSON (non-JSON values as str), written atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")
