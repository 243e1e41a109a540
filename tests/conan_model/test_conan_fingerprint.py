"""conan_model.fingerprint: the one way model folders, task folders and settings are hashed (caches, reruns)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from conan_model.fingerprint import data_fingerprint, files_fingerprint
from harness.cache import namespace_key


def test_files_fingerprint_follows_names_bytes_and_every_model_file(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 8)
    (tmp_path / "README.md").write_text("a model card")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main")
    first = files_fingerprint(tmp_path)
    (tmp_path / "README.md").write_text("edited")
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/other")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "modeling.cpython-311.pyc").write_bytes(b"\x01")
    assert files_fingerprint(tmp_path) == first  # cards, hidden files and bytecode never change a vector
    assert files_fingerprint(tmp_path, ignore=()) != first  # a task folder: every file counts
    (tmp_path / "model.safetensors").write_bytes(b"\x01" * 8)
    assert files_fingerprint(tmp_path) != first
    (tmp_path / "model.safetensors").write_bytes(b"\x00" * 8)
    (tmp_path / "config.json").rename(tmp_path / "other.json")
    assert files_fingerprint(tmp_path) != first  # a renamed file is another model


def test_files_fingerprint_covers_code_tokenizers_and_nested_files(tmp_path: Path) -> None:
    """Remote code, sentencepiece/tiktoken vocabularies and *.pt weights, at any depth, name the model too:
    a pattern list of known suffixes served stale vectors when one of these changed (audit A4)."""
    (tmp_path / "config.json").write_text("{}")
    for name in ("modeling_custom.py", "spiece.model", "vocab.tiktoken", "2_Dense/weights.pt", "head.pth",
                 "centroids.npy"):  # fmt: skip
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("SCALE = 0.0")
        before = files_fingerprint(tmp_path)
        (tmp_path / name).write_text("SCALE = 3.0")
        assert files_fingerprint(tmp_path) != before, name


def test_files_fingerprint_enters_linked_folders_and_ends_link_loops(tmp_path: Path) -> None:
    """An st: folder whose `1_Pooling/` is a link to a shared folder: Path.rglob (Python 3.11) did not enter it, so
    the pooling config behind it changed and the hash did not (audit, stop 46); cached vectors and finished tasks
    were served for the old pooling. A link back up the tree is walked once."""
    shared, model = tmp_path / "shared_pooling", tmp_path / "model"
    shared.mkdir()
    model.mkdir()
    (shared / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    (model / "config.json").write_text("{}")
    (model / "1_Pooling").symlink_to(shared, target_is_directory=True)
    (model / "loop").symlink_to(model, target_is_directory=True)
    before = files_fingerprint(model)
    (shared / "config.json").write_text('{"pooling_mode_cls_token": true}')
    assert files_fingerprint(model) != before
    plain = tmp_path / "plain"  # without links: the files as before (a normal folder keeps its hash)
    plain.mkdir()
    (plain / "config.json").write_text("{}")
    (plain / "1_Pooling").mkdir()
    (plain / "1_Pooling" / "config.json").write_text('{"pooling_mode_cls_token": true}')
    assert files_fingerprint(plain) == files_fingerprint(model)


def test_files_fingerprint_separates_names_from_bytes(tmp_path: Path) -> None:
    """File "a" holding "bc" and file "ab" holding "c" fed the same bytes to the hash before names were ended."""
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    (tmp_path / "one" / "a").write_text("bc")
    (tmp_path / "two" / "ab").write_text("c")
    assert files_fingerprint(tmp_path / "one") != files_fingerprint(tmp_path / "two")
    (tmp_path / "one" / "a").write_text("b")
    (tmp_path / "one" / "c").write_text("")  # "a"+"b" then "c"+"" against "a"+"bc": sizes keep them apart
    (tmp_path / "two" / "ab").unlink()
    (tmp_path / "two" / "a").write_text("bc")
    assert files_fingerprint(tmp_path / "one") != files_fingerprint(tmp_path / "two")


def test_files_fingerprint_of_one_file_follows_its_bytes(tmp_path: Path) -> None:
    """A GGUF model or a data file is one file: its bytes name it (a file given to the folder walk hashed no file,
    so every file had one fingerprint), its name too, and a folder holding it alone hashes the same entry."""
    path = tmp_path / "model.gguf"
    path.write_bytes(b"\x00" * 8)
    first = files_fingerprint(path)
    assert files_fingerprint(path) == first == files_fingerprint(tmp_path)
    path.write_bytes(b"\x00" * 7 + b"\x01")  # same size, one byte replaced
    assert files_fingerprint(path) != first
    path.write_bytes(b"\x00" * 8)
    assert files_fingerprint(path) == first
    hidden = tmp_path / ".model.gguf"  # given by name, a file counts whatever MODEL_IGNORE says
    path.rename(hidden)
    assert files_fingerprint(hidden) not in (first, hashlib.sha256().hexdigest())


def test_data_fingerprint_is_canonical_and_keeps_existing_cache_keys() -> None:
    assert data_fingerprint({"b": 1, "a": Path("x")}) == data_fingerprint({"a": "x", "b": 1})
    identity = {"fingerprint": "f", "role": "query", "max_length": 512}
    # the embedding cache's namespaces written before this helper existed stay valid
    old = hashlib.sha256(b'{"fingerprint": "f", "max_length": 512, "role": "query"}').hexdigest()[:32]
    assert namespace_key(identity) == old
