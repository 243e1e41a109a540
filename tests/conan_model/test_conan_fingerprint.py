"""conan_model.fingerprint: the one way model folders, task folders and settings are hashed (caches, reruns)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from conan_model.fingerprint import data_fingerprint, files_fingerprint
from harness.cache import namespace_key


def test_files_fingerprint_follows_names_bytes_and_patterns(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 8)
    (tmp_path / "notes.md").write_text("not part of a model")
    first = files_fingerprint(tmp_path)
    (tmp_path / "notes.md").write_text("edited")
    assert files_fingerprint(tmp_path) == first  # only weights, configs and vocabularies name a model
    assert files_fingerprint(tmp_path, ("*",)) != first  # a task folder: every file counts
    (tmp_path / "model.safetensors").write_bytes(b"\x01" * 8)
    assert files_fingerprint(tmp_path) != first
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 8)
    (tmp_path / "config.json").rename(tmp_path / "other.json")
    assert files_fingerprint(tmp_path) != first  # a renamed file is another model


def test_data_fingerprint_is_canonical_and_keeps_existing_cache_keys() -> None:
    assert data_fingerprint({"b": 1, "a": Path("x")}) == data_fingerprint({"a": "x", "b": 1})
    identity = {"fingerprint": "f", "role": "query", "max_length": 512}
    # the embedding cache's namespaces written before this helper existed stay valid
    old = hashlib.sha256(b'{"fingerprint": "f", "max_length": 512, "role": "query"}').hexdigest()[:32]
    assert namespace_key(identity) == old
