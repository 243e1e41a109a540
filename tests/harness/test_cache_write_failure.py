"""A cache that cannot take writes (disk full, read-only file) costs recomputation, never the run (audit of the
embedding cache, item 1): one warning naming the file, the reason and the fix, then the run goes on uncached.

The failure is SQLite's own SQLITE_FULL ("database or disk is full"), made deterministic by capping the real
connection's file size (`PRAGMA max_page_count`) at the pages it has: the first vectors fill the empty table page,
the next ones need a page the cap forbids, as on a disk that fills up mid-run.
"""

from __future__ import annotations

import json
import resource
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

import harness.runner
from harness.cache import DB_NAME, EmbeddingCache
from harness.cli import main
from harness.data import default_data_root, discover_tasks, read_rows
from harness.encoding import HarnessEncoder

SAMPLE = default_data_root()
WARNING = "harness: warning: embedding cache"


def _full(cache: EmbeddingCache) -> EmbeddingCache:
    """The cache as on a disk with no room past the pages its file has now."""
    (pages,) = cache._db.execute("PRAGMA page_count").fetchone()
    cache._db.execute(f"PRAGMA max_page_count={pages}")
    return cache


def _corpus(count: int) -> list[str]:
    return [r["text"] for r in read_rows(discover_tasks(SAMPLE)["SciFact"], "corpus.jsonl")][:count]


def test_a_full_cache_warns_once_and_the_encoder_goes_on(minilm, tmp_path: Path, capsys) -> None:
    """Before: the first failed write raised `sqlite3.OperationalError: database or disk is full` out of encode, the
    slice's vectors were lost, and every later task failed the same way without naming the file."""
    corpus = _corpus(160)
    cache = _full(EmbeddingCache(tmp_path))
    encoder = HarnessEncoder(minilm, batch_size=16, cache=cache, show_progress=False)
    encoder.flush_every = 32  # the first slices fit the table's empty page, a later one needs a new page
    vectors = encoder.encode_texts(corpus[:128], "document")
    encoder.start_task()  # the next task: its writes are skipped, its vectors computed all the same
    later = encoder.encode_texts(corpus[128:], "document")
    err = capsys.readouterr().err
    assert err.count(WARNING) == 1, err
    assert f"{tmp_path / DB_NAME} failed to write (database or disk is full)" in err
    assert "Free space there, give another --cache-dir, or run with --no-cache" in err
    assert encoder.stats.encoded_texts == 32
    np.testing.assert_allclose(vectors[:5], minilm.encode_batch(corpus[:5], "document"), atol=1e-5)
    np.testing.assert_allclose(later[-3:], minilm.encode_batch(corpus[-3:], "document"), atol=1e-5)
    stored = cache.info()["entries"]
    assert stored in (16, 48, 80, 112)  # whole slices (16, 32, 32, ...): a failed one is rolled back, not half written
    found = cache.get_many(encoder._namespace("document"), corpus)
    shortest = sorted(dict.fromkeys(corpus[:128]), key=len)[:stored]  # texts are encoded shortest first
    assert {corpus[j] for j in found} == set(shortest)  # what was stored before the failure is still served


def test_a_run_whose_cache_fills_up_scores_every_task(tmp_path: Path, capsys, monkeypatch) -> None:
    """`harness run` end to end: the cache is full from the first slice; both tasks are ok, with the scores of a
    run without the cache, and the warning appears once. run.json and summary.md say the cache stopped and where
    (before, only the console did: a reader of the run later could not know later tasks were encoded uncached)."""
    real_open = harness.runner.open_cache
    monkeypatch.setattr(harness.runner, "open_cache", lambda folder: _full(real_open(folder)))
    common = ["run", "--model", "minilm", "--tasks", "STS16,STS12", "--data-dir", str(SAMPLE), "--out",
              str(tmp_path), "--no-progress"]  # fmt: skip
    assert main([*common, "--run-name", "full", "--cache-dir", str(tmp_path / "cache")]) == 0
    err = capsys.readouterr().err
    assert err.count(WARNING) == 1 and "database or disk is full" in err, err
    record = json.loads((tmp_path / "full" / "run.json").read_text())
    assert record["cache_stopped"] == {"reason": "to write: database or disk is full", "task": "STS16"}
    assert "- embedding cache off during STS16, for the rest of the run (failed to write: database or disk is " \
           "full): the tasks from there on were encoded without it" in (tmp_path / "full" / "summary.md").read_text()
    assert main([*common, "--run-name", "plain", "--no-cache"]) == 0
    assert json.loads((tmp_path / "plain" / "run.json").read_text())["cache_stopped"] is None
    assert "embedding cache off" not in (tmp_path / "plain" / "summary.md").read_text()
    for task in ("STS16", "STS12"):
        full, plain = (json.loads((tmp_path / r / "run.json").read_text())["tasks"][task] for r in ("full", "plain"))
        assert full["status"] == plain["status"] == "ok"
        assert full["main_score"] == pytest.approx(plain["main_score"], abs=1e-6)


def test_a_read_only_cache_still_serves_what_it_holds(tmp_path: Path, capsys) -> None:
    """Writes refused (SQLITE_READONLY, as a file made read-only mid-run) stop writes; the reads go on serving."""
    cache = EmbeddingCache(tmp_path)
    cache.put_many("ns", ["a", "b"], np.ones((2, 4), dtype=np.float32))
    cache._db.execute("PRAGMA query_only=1")  # the connection refuses every write: SQLITE_READONLY
    cache.put_many("ns", ["c"], np.ones((1, 4), dtype=np.float32))
    cache.remember_model("key", {"name": "m"})
    err = capsys.readouterr().err
    assert err.count(WARNING) == 1 and "failed to write (attempt to write a readonly database)" in err, err
    assert sorted(cache.get_many("ns", ["a", "b", "c"])) == [0, 1]
    assert cache.get_many("another namespace", ["a"]) == {}  # a lookup writes nothing (no namespace row)


def test_a_failed_read_counts_as_misses(tmp_path: Path, capsys) -> None:
    """Before: a lookup that failed (a lock held past the timeout, an I/O error; here SQLite's SQLITE_INTERRUPT,
    every statement on the connection stopped by its progress handler) failed the task with the bare SQLite error;
    now it is a miss, warned once, and neither reads nor writes are tried again (each could wait out a lock)."""
    cache = EmbeddingCache(tmp_path)
    cache.put_many("ns", ["a"], np.ones((1, 4), dtype=np.float32))
    cache._db.set_progress_handler(lambda: 1, 1)
    assert cache.get_many("ns", ["a"]) == {} and cache.model_description("key", "m") is None
    cache.put_many("ns", ["b"], np.ones((1, 4), dtype=np.float32))
    err = capsys.readouterr().err
    assert err.count(WARNING) == 1 and "failed to read (interrupted)" in err, err
    cache._db.set_progress_handler(None, 1)
    assert cache.get_many("ns", ["a", "b"]) == {}  # reads stay off, and "b" was never written
    assert cache.info()["entries"] == 1


@contextmanager
def _no_room_for_new_bytes() -> Iterator[None]:
    """Every write that grows a file fails (EFBIG; Python ignores SIGXFSZ), as on a full disk: RLIMIT_FSIZE 0."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


@pytest.mark.parametrize("finds_it", ["read", "write"])
def test_a_failed_repair_turns_the_cache_off(tmp_path: Path, finds_it: str, capsys) -> None:
    """Before: a file found damaged mid-run whose fresh replacement could not be created (disk full) left the
    connection closed, and the next lookup crashed with `Cannot operate on a closed database`; now the cache is off
    for the rest of the run (lookups are misses, writes skipped) with one warning saying why."""
    cache = EmbeddingCache(tmp_path)
    texts = [f"text {i}" for i in range(300)]
    cache.put_many("ns", texts, np.ones((300, 384), dtype=np.float32))
    cache._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    (tmp_path / DB_NAME).write_bytes(b"this is not a database" * 5000)  # damaged under the open connection
    cache._db.execute("PRAGMA shrink_memory")  # no page of the old file left in memory: the next read sees damage
    with _no_room_for_new_bytes():  # the first call finds the damage, moves the file aside, cannot make a fresh one
        if finds_it == "write":
            cache.put_many("ns", ["new"], np.ones((1, 384), dtype=np.float32))
        found = cache.get_many("ns", texts)
        cache.put_many("ns", ["new"], np.ones((1, 384), dtype=np.float32))
        cache.remember_model("key", {"name": "m"})
        described = cache.model_description("key", "m")
        cache.register("ns", {"name": "m"})
    err = capsys.readouterr().err
    assert found == {} and described is None
    assert err.count(WARNING) == 1, err
    (aside,) = tmp_path.glob(f"{DB_NAME}.damaged-*")
    assert f"{tmp_path / DB_NAME} failed to {finds_it} (the file is damaged (file is not a database; moved to " \
           f"{aside.name}) and a fresh one cannot be created: disk I/O error); this run goes on without caching" in err
    assert cache.failure is not None and "cannot be created" in cache.failure
    cache.close()


def test_a_cache_removed_while_in_use_is_said_on_close(tmp_path: Path, capsys) -> None:
    """Carried since stop 50: a cache folder removed mid-run (`rm -rf`, another tool) took the run's vectors with it
    (SQLite writes on into the unlinked file) and the run ended without a word; the next run computed every vector
    again, unexplained. A plain close, and a clear that makes a fresh file, say nothing."""
    vectors = np.ones((2, 4), dtype=np.float32)
    kept = EmbeddingCache(tmp_path / "kept")
    kept.put_many("ns", ["a", "b"], vectors)
    kept.close()
    cleared = EmbeddingCache(tmp_path / "cleared")
    cleared.put_many("ns", ["a"], vectors[:1])
    cleared.clear()
    cleared.close()
    assert capsys.readouterr().err == ""
    gone = EmbeddingCache(tmp_path / "gone")
    gone.put_many("ns", ["a", "b"], vectors)
    for path in (tmp_path / "gone").iterdir():
        path.unlink()
    gone.put_many("ns", ["c"], vectors[:1])  # SQLite goes on writing into the removed file
    gone.close()
    assert capsys.readouterr().err == (f"{WARNING} {tmp_path / 'gone' / DB_NAME} was removed while this run used it: "
                                       "the vectors it held and stored are gone, and the next run computes them "
                                       "again (scores are unaffected)\n")  # fmt: skip
