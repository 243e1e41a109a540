"""On-disk embedding cache shared across tasks and runs.

An entry is keyed by *namespace* (model fingerprint + prompt + role + max length + pooling + dtype) and the
sha256 of the text, so a query vector is never served for a document and an fp16 run never reuses fp32
vectors (mteb's own cache keys by text alone: mteb#5383, #5394). SQLite in WAL mode makes concurrent runs
safe; every vector carries a checksum and a damaged entry is treated as a miss and recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

DB_NAME = "embeddings.sqlite"
_CHUNK = 500  # keys per SELECT ... IN (...)


def default_cache_dir() -> Path:
    if os.environ.get("HARNESS_CACHE_DIR"):
        return Path(os.environ["HARNESS_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "conan-harness" / "embeddings"


def namespace_key(identity: dict[str, Any]) -> str:
    """Stable hash of everything besides the text that changes a vector."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:32]


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


class EmbeddingCache:
    """get_many/put_many over one SQLite file; cheap to open, safe to share between processes."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / DB_NAME
        self._db = sqlite3.connect(self.path, timeout=60, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS vectors (ns TEXT, key BLOB, dim INTEGER, vec BLOB, crc INTEGER,"
            " PRIMARY KEY (ns, key)) WITHOUT ROWID"
        )
        self._db.execute("CREATE TABLE IF NOT EXISTS namespaces (ns TEXT PRIMARY KEY, identity TEXT)")
        self.corrupt_entries = 0

    def register(self, ns: str, identity: dict[str, Any]) -> None:
        self._db.execute("INSERT OR IGNORE INTO namespaces VALUES (?, ?)", (ns, json.dumps(identity, default=str)))

    def get_many(self, ns: str, texts: list[str]) -> dict[int, np.ndarray]:
        """Vectors found for texts, by position; damaged entries are dropped (and later overwritten)."""
        keys = [text_key(t) for t in texts]
        position = {k: i for i, k in enumerate(keys)}
        found: dict[int, np.ndarray] = {}
        for lo in range(0, len(keys), _CHUNK):
            chunk = keys[lo : lo + _CHUNK]
            query = f"SELECT key, dim, vec, crc FROM vectors WHERE ns = ? AND key IN ({','.join('?' * len(chunk))})"
            for key, dim, blob, crc in self._db.execute(query, (ns, *chunk)):
                if zlib.crc32(blob) != crc or len(blob) != 4 * dim:
                    self.corrupt_entries += 1
                    continue
                found[position[key]] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, ns: str, texts: Iterable[str], vectors: np.ndarray) -> None:
        rows = []
        for text, vec in zip(texts, np.asarray(vectors, dtype=np.float32), strict=True):
            blob = vec.tobytes()
            rows.append((ns, text_key(text), vec.shape[0], blob, zlib.crc32(blob)))
        with self._db:  # one transaction per batch keeps concurrent writers cheap and atomic
            self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?, ?)", rows)

    def info(self) -> dict[str, Any]:
        per_ns = {ns: n for ns, n in self._db.execute("SELECT ns, COUNT(*) FROM vectors GROUP BY ns")}
        identities = {ns: json.loads(ident) for ns, ident in self._db.execute("SELECT ns, identity FROM namespaces")}
        size = sum(p.stat().st_size for p in self.directory.glob(f"{DB_NAME}*"))
        return {
            "path": str(self.path),
            "bytes": size,
            "entries": sum(per_ns.values()),
            "namespaces": [{"namespace": ns, "entries": n, **identities.get(ns, {})} for ns, n in per_ns.items()],
        }

    def clear(self) -> int:
        (removed,) = self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()
        with self._db:
            self._db.execute("DELETE FROM vectors")
            self._db.execute("DELETE FROM namespaces")
        self._db.execute("VACUUM")
        return int(removed)

    def close(self) -> None:
        self._db.close()
