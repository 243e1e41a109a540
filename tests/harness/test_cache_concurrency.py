"""A second run opening the embedding cache never throws away the cache of a run writing to it (audit finding 1):
only SQLite decides that the file is damaged, and the files are replaced only when no other run has them open."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from harness.cache import DB_NAME, CacheInUse, EmbeddingCache
from harness.cli import main

WAL_HEADER, FRAME_HEADER = 32, 24


def _vectors(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((count, 384)).astype(np.float32)


def _texts(tag: str, count: int) -> list[str]:
    return [f"{tag} {i}" for i in range(count)]


def _write_checkpoints_first_page(db: Path) -> None:
    """What a WAL checkpoint writes first: the newest page 1 from the WAL (with the grown page count) into the
    database file, before the pages that make the file that long."""
    wal = Path(f"{db}-wal").read_bytes()
    page_size = int.from_bytes(wal[8:12], "big")
    frame = WAL_HEADER
    page_one = None
    while frame + FRAME_HEADER + page_size <= len(wal):
        if int.from_bytes(wal[frame : frame + 4], "big") == 1:
            page_one = wal[frame + FRAME_HEADER : frame + FRAME_HEADER + page_size]
        frame += FRAME_HEADER + page_size
    assert page_one is not None, "the WAL holds no page 1"
    with db.open("r+b") as handle:
        handle.write(page_one)


def _header_pages_beyond_file(db: Path) -> bool:
    head = db.read_bytes()[:100]
    page_size = int.from_bytes(head[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    return head[24:28] == head[92:96] and int.from_bytes(head[28:32], "big") * page_size > db.stat().st_size


@pytest.fixture
def checkpoint_half_done(tmp_path: Path):
    """A cache whose writer is in the middle of a checkpoint: page 1 says more pages than the file has, the WAL
    holds the rest. Yields (folder, writer, first vectors, second vectors); the writer is still open."""
    first, second = _vectors(300, 0), _vectors(300, 1)
    cache = EmbeddingCache(tmp_path)
    cache.put_many("ns", _texts("old", 300), first)
    cache.close()  # the last close checkpoints everything into the file
    writer = EmbeddingCache(tmp_path)
    writer._db.execute("PRAGMA wal_autocheckpoint=0")  # the new rows stay in the WAL until we say
    for lo in range(0, 300, 64):
        writer.put_many("ns", _texts("new", 300)[lo : lo + 64], second[lo : lo + 64])
    _write_checkpoints_first_page(tmp_path / DB_NAME)
    assert _header_pages_beyond_file(tmp_path / DB_NAME)  # what the old size check called "truncated"
    yield tmp_path, writer, first, second
    writer.close()


def _assert_all_there(cache: EmbeddingCache, first: np.ndarray, second: np.ndarray) -> None:
    found = cache.get_many("ns", _texts("old", 300) + _texts("new", 300))
    assert len(found) == 600 and cache.corrupt_entries == 0
    np.testing.assert_array_equal(np.stack([found[i] for i in range(600)]), np.concatenate([first, second]))


def test_opening_during_another_runs_checkpoint_keeps_its_cache(checkpoint_half_done, capsys) -> None:
    """Before: the opener saw a file shorter than its header, moved the live database aside and deleted its WAL;
    the writer went on writing into a file nobody would read again."""
    folder, writer, first, second = checkpoint_half_done
    opener = EmbeddingCache(folder)
    assert opener.moved_aside is None and "unusable" not in capsys.readouterr().err
    assert not list(folder.glob(f"{DB_NAME}.damaged-*"))
    _assert_all_there(opener, first, second)
    opener.close()
    third = _vectors(64, 2)
    writer.put_many("ns", _texts("later", 64), third)  # the writer's later slices reach the shared file
    writer.close()
    again = EmbeddingCache(folder)
    _assert_all_there(again, first, second)
    later = again.get_many("ns", _texts("later", 64))
    np.testing.assert_array_equal(np.stack([later[i] for i in range(64)]), third)


def test_kill_during_a_checkpoint_is_completed_from_the_wal(checkpoint_half_done, tmp_path: Path) -> None:
    """kill -9 in a checkpoint leaves the same files (the process's copy taken while it is still open); SQLite
    finishes the checkpoint from the WAL, so every vector, the ones only in the WAL too, is served."""
    folder, _, first, second = checkpoint_half_done
    after_kill = tmp_path / "after-kill"
    after_kill.mkdir()
    for suffix in ("", "-wal"):
        shutil.copyfile(folder / f"{DB_NAME}{suffix}", after_kill / f"{DB_NAME}{suffix}")
    cache = EmbeddingCache(after_kill)
    assert cache.moved_aside is None
    _assert_all_there(cache, first, second)


def test_a_damaged_file_another_run_holds_is_left_to_it(tmp_path: Path, capsys) -> None:
    """Damage seen while another run has the cache open: that run's files stay where they are, this run keeps its
    vectors in memory; the next run that opens the file alone moves it aside."""
    EmbeddingCache(tmp_path).close()
    holder = EmbeddingCache(tmp_path)
    holder._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # page 1 is read from the file again, not the WAL
    (tmp_path / DB_NAME).write_bytes(b"this is not a database" * 500)
    second = EmbeddingCache(tmp_path)
    err = capsys.readouterr().err
    assert "is unusable" in err and "another run has it open" in err and second.moved_aside is None
    assert (tmp_path / f"{DB_NAME}-wal").exists() and not list(tmp_path.glob(f"{DB_NAME}.damaged-*"))
    second.put_many("ns", ["a text"], _vectors(1, 3))
    assert len(second.get_many("ns", ["a text"])) == 1
    assert main(["cache", "clear", "--cache-dir", str(tmp_path)]) == 2
    assert "is open in another run" in capsys.readouterr().err
    second.close()
    holder.close()
    alone = EmbeddingCache(tmp_path)
    assert alone.moved_aside is not None and alone.info()["entries"] == 0


def test_clear_refuses_while_another_run_has_the_cache_open(tmp_path: Path) -> None:
    cache = EmbeddingCache(tmp_path)
    cache.put_many("ns", ["a text"], _vectors(1, 4))
    other = EmbeddingCache(tmp_path)
    with pytest.raises(CacheInUse, match="open in another run"):
        cache.clear()
    assert len(other.get_many("ns", ["a text"])) == 1
    other.close()
    assert cache.clear()["entries"] == 1 and cache.info()["entries"] == 0


def test_a_failed_repair_releases_the_lock(tmp_path: Path, monkeypatch) -> None:
    """Before: when moving a damaged file aside failed (a disk error, simulated here: a full disk cannot be made
    on demand), the half-built cache kept its shared lock until garbage collection, so `cache clear` and other
    runs' repairs were refused as if a run had the cache open."""
    import fcntl

    import harness.cache

    EmbeddingCache(tmp_path).close()
    (tmp_path / DB_NAME).write_bytes(b"this is not a database" * 500)

    def disk_error(*_args: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(harness.cache, "durable_replace", disk_error)
    with pytest.raises(OSError, match="No space left") as raised:  # kept, as a caller reporting it keeps it
        EmbeddingCache(tmp_path)
    assert raised.value.errno == 28
    with open(tmp_path / f"{DB_NAME}.lock", "a") as lock:  # nobody holds it now
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
