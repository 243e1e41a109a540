"""A read-only cache (its file or its folder) serves the vectors it holds and stores none (a user's walk before
stop 61: `run`, `cache info` and `cache clear` all exited 2, "cannot open the cache (attempt to write a readonly
database)", though the docs promised a warning and reads).

Read-only is made with chmod, which root's writes ignore: the cache takes a file or folder without write bits as
read-only for root too (harness.cache.read_only_reason) and opens it through SQLite's read-only URI, so these
tests check the same behaviour whoever runs them."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from harness.cache import DB_NAME, EmbeddingCache
from harness.cli import main
from harness.data import default_data_root

SAMPLE = default_data_root()


def _run(tmp_path: Path, name: str, tasks: str) -> dict:
    assert main(["run", "--tasks", tasks, "--model", "minilm", "--data-dir", str(SAMPLE), "--out", str(tmp_path),
                 "--run-name", name, "--no-progress", "--cache-dir", str(tmp_path / "cache")]) == 0  # fmt: skip
    return json.loads((tmp_path / name / "efficiency.json").read_text())


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.fixture(params=["file", "folder"])
def read_only_cache(request, tmp_path: Path) -> Iterator[Path]:
    """A cache STS16 filled, then made read-only (its file or its folder); made writable again afterwards."""
    _run(tmp_path, "fill", "STS16")
    cache = tmp_path / "cache"
    target = cache / DB_NAME if request.param == "file" else cache
    mode = target.stat().st_mode
    target.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        yield cache
    finally:
        target.chmod(mode)


def test_a_run_reads_a_read_only_cache_and_stores_nothing(read_only_cache: Path, tmp_path: Path, capsys) -> None:
    before = _files(read_only_cache)
    capsys.readouterr()
    eff = _run(tmp_path, "ro", "STS16,STS12")
    err = capsys.readouterr().err
    assert err.count("harness: warning: embedding cache") == 1, err
    assert f"embedding cache {read_only_cache / DB_NAME} is read-only (" in err
    assert "this run reads the vectors it holds and stores none" in err
    assert eff["STS16"]["encoded_texts"] == 0 and eff["STS16"]["cache_hits"] > 0  # read
    assert eff["STS12"]["encoded_texts"] > 0  # computed, not stored:
    assert _files(read_only_cache) == before  # nothing written, nothing made beside it


def test_info_reports_and_clear_refuses_a_read_only_cache(read_only_cache: Path, capsys) -> None:
    before = _files(read_only_cache)
    capsys.readouterr()
    assert main(["cache", "info", "--cache-dir", str(read_only_cache)]) == 0
    out = capsys.readouterr().out
    assert "vectors" in out and "(read-only, " in out and "a run reads it and stores nothing" in out, out
    assert main(["cache", "clear", "--cache-dir", str(read_only_cache)]) == 2
    assert f"embedding cache {read_only_cache / DB_NAME}: cannot clear it, " in capsys.readouterr().err
    assert _files(read_only_cache) == before


def test_a_damaged_read_only_file_stays_and_the_run_keeps_vectors_in_memory(tmp_path: Path, capsys) -> None:
    db = tmp_path / DB_NAME
    db.write_bytes(b"this is not a database" * 500)
    db.chmod(0o444)
    cache = EmbeddingCache(tmp_path)
    err = capsys.readouterr().err
    assert f"embedding cache {db} is unusable (file is not a database); the file is read-only, so it stays in " \
           "place and this run keeps its vectors in memory" in err and err.count("warning") == 1, err  # fmt: skip
    cache.put_many("ns", ["a"], np.ones((1, 4), dtype=np.float32))
    assert sorted(cache.get_many("ns", ["a", "b"])) == [0]
    cache.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [DB_NAME]
    assert db.read_bytes() == b"this is not a database" * 500
