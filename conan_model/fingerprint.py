"""Content fingerprints: what names a model folder, a task folder or a set of settings, for caches and reruns.

One home for both kinds (files, and JSON-able settings), in conan_model, the bottom package, so the harness (cache
namespaces, task identities, model revisions) and any training or ablation code hash the same way.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

MODEL_FILES = ("*.safetensors", "*.bin", "*.json", "*.txt")  # weights, configs, vocabularies


def files_fingerprint(folder: Path, patterns: tuple[str, ...] = MODEL_FILES) -> str:
    """sha256 (hex) over the files of ``folder`` that match ``patterns`` (relative names and bytes), so two
    different checkpoints never collide; ``patterns=("*",)`` hashes every file (a task folder)."""
    digest = hashlib.sha256()
    for pattern in patterns:
        for path in sorted(p for p in folder.rglob(pattern) if p.is_file()):
            digest.update(str(path.relative_to(folder)).encode())
            with path.open("rb") as handle:
                for chunk in iter(lambda h=handle: h.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()


def data_fingerprint(obj: Any) -> str:
    """sha256 (hex) of ``obj`` as canonical JSON (sorted keys, other values as str): equal settings, equal hash."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
