"""Content fingerprints: what names a model folder, a task folder or a set of settings, for caches and reruns.

One home for both kinds (files, and JSON-able settings), in conan_model, the bottom package, so the harness (cache
namespaces, task identities, model revisions) and any training or ablation code hash the same way.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# What never changes a model's vectors: model cards and docs, hidden files and folders (.git, .gitattributes,
# huggingface_hub's .cache), Python bytecode. Everything else counts, whatever its suffix: remote code (*.py),
# sentencepiece (*.model), tiktoken, *.pt weights... a pattern list of what matters misses the next format.
MODEL_IGNORE = ("README*", "*.md", ".*", "__pycache__", "*.pyc")


def files_fingerprint(path: Path, patterns: tuple[str, ...] = ("*",), ignore: tuple[str, ...] = MODEL_IGNORE) -> str:
    """sha256 (hex) over the files under the folder ``path`` (recursive) that match ``patterns`` and have no path
    part matching ``ignore``: each file's relative name, its size and its bytes, so two different folders never
    collide. The defaults name a model folder; ``ignore=()`` hashes every file (a task folder). A file ``path``
    (a GGUF model, a training data file) is hashed alone the same way, under its own name, whatever ``ignore``
    says: a stage keyed by such a file's path alone would reuse a model trained from other contents."""
    if path.is_file():
        names = {path: path.name}
    else:
        files = {p for p in _files_under(path) if any(fnmatch.fnmatchcase(p.name, pt) for pt in patterns)}
        names = {p: p.relative_to(path).as_posix() for p in files}
        names = {p: name for p, name in names.items() if not _ignored(name, ignore)}
    digest = hashlib.sha256()
    for file in sorted(names, key=names.__getitem__):
        with file.open("rb") as handle:  # the name ends at NUL and the size bounds the bytes: no ambiguity
            digest.update(names[file].encode() + b"\0" + str(os.fstat(handle.fileno()).st_size).encode() + b"\0")
            for chunk in iter(lambda h=handle: h.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def _files_under(root: Path) -> Iterator[Path]:
    """Every file under ``root``, linked folders entered too: Path.rglob does not follow them (by default, 3.13's
    too), so a model whose `1_Pooling/` or `0_Transformer/` is a link kept its hash when the files behind it changed
    (before stop 46, audit). Each real folder is walked once, so a link loop ends; in name order, so a folder and a
    link to it hash under the same name on every machine."""
    seen: set[str] = set()
    for folder, subfolders, files in os.walk(root, followlinks=True):
        subfolders.sort()
        real = os.path.realpath(folder)
        if real in seen:
            subfolders[:] = []
            continue
        seen.add(real)
        yield from (Path(folder) / name for name in files if (Path(folder) / name).is_file())


def _ignored(name: str, rules: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(part, rule) for part in name.split("/") for rule in rules)


def data_fingerprint(obj: Any) -> str:
    """sha256 (hex) of ``obj`` as canonical JSON (sorted keys, other values as str): equal settings, equal hash."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()
