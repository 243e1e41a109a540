"""The embedding cache survives damage, keeps work across kill -9 and stays near its vectors' size (issue 14,
item 5, item 6 and the cache-size item)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from harness import lazy
from harness.cache import ASIDE, DB_NAME, EmbeddingCache, _described_name, description_crc
from harness.cli import main
from harness.data import default_data_root, discover_tasks, read_rows
from harness.encoding import HarnessEncoder

SAMPLE = default_data_root()


def _fill(directory: Path, count: int, dim: int = 384) -> np.ndarray:
    cache = EmbeddingCache(directory)
    vectors = np.random.default_rng(0).standard_normal((count, dim)).astype(np.float32)
    for lo in range(0, count, 64):  # the encoder writes one slice per transaction
        cache.put_many("ns", [f"text {i}" for i in range(lo, min(lo + 64, count))], vectors[lo : lo + 64])
    cache.close()
    return vectors


def test_cache_bytes_stay_near_the_vectors(tmp_path: Path) -> None:
    """Before: ~3x (every 1.5 KB vector spilled to its own 4 KiB overflow page). Bound 1.3x: the rows carry a
    32-byte key, a CRC, a namespace number and b-tree cells (~70 B per 1536 B vector, under 5 %), the key index
    ~50 B per row, and a few whole 64 KiB pages of schema; 5000 vectors make the fixed pages ~4 % of 7.7 MB."""
    vectors = _fill(tmp_path, 5000)
    size = sum(p.stat().st_size for p in tmp_path.glob(f"{DB_NAME}*"))
    assert size < 1.3 * vectors.nbytes, size / vectors.nbytes
    found = EmbeddingCache(tmp_path).get_many("ns", ["text 7", "text 4999"])
    np.testing.assert_array_equal(found[0], vectors[7])
    np.testing.assert_array_equal(found[1], vectors[4999])


def test_crc_still_guards_each_vector(tmp_path: Path, capsys) -> None:
    _fill(tmp_path, 10)
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        db.execute("UPDATE vectors SET vec = zeroblob(1536) WHERE key = (SELECT key FROM vectors LIMIT 1)")
    cache = EmbeddingCache(tmp_path)
    assert len(cache.get_many("ns", [f"text {i}" for i in range(10)])) == 9 and cache.corrupt_entries == 1
    assert capsys.readouterr().err.count("a damaged entry (checksum) is recomputed") == 1


def test_a_row_reached_for_another_text_is_damage(tmp_path: Path, capsys) -> None:
    """Before stop 49 (audit): the checksum covered the vector bytes alone, so a lookup that an index damaged by one
    bit led to another text's row got that text's valid vector (STS16 scored 73.26 for 79.00, recorded ok). The
    effect of such a lookup is made here by giving two rows each other's vector and checksum."""
    vectors = _fill(tmp_path, 10)
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        (k1, v1, c1), (k2, v2, c2) = db.execute("SELECT key, vec, crc FROM vectors ORDER BY rowid LIMIT 2")
        db.execute("UPDATE vectors SET vec = ?, crc = ? WHERE key = ?", (v2, c2, k1))
        db.execute("UPDATE vectors SET vec = ?, crc = ? WHERE key = ?", (v1, c1, k2))
    cache = EmbeddingCache(tmp_path)
    found = cache.get_many("ns", [f"text {i}" for i in range(10)])
    assert sorted(found) == list(range(2, 10)) and cache.corrupt_entries == 2
    assert all(np.array_equal(found[i], vectors[i]) for i in found)
    assert capsys.readouterr().err.count("a damaged entry (checksum) is recomputed") == 1


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_damaged_database_is_moved_aside(tmp_path: Path, damage: str, capsys) -> None:
    """Before: a truncated file or a garbage header made every run, `cache info` and `cache clear` crash. Before
    stop 61 `cache info` moved it aside itself and reported a new empty cache; now it says what a run will do and
    changes nothing; a run moves it aside."""
    _fill(tmp_path, 300)
    db = tmp_path / DB_NAME
    if damage == "truncate":
        db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])
    else:
        db.write_bytes(b"this is not a database" * 500)
    before = _files(tmp_path)
    assert main(["cache", "info", "--cache-dir", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert f"{db}: unusable (" in captured.out and "a run moves it aside as embeddings.sqlite.damaged-<time> and " \
           "starts a fresh cache" in captured.out and captured.err == "", captured  # fmt: skip
    assert _files(tmp_path) == before
    EmbeddingCache(tmp_path).close()  # what a run does first
    assert "is unusable" in capsys.readouterr().err
    assert len(list(tmp_path.glob(f"{DB_NAME}.damaged-*"))) == 1
    db.write_bytes(b"garbage again" * 100)
    assert main(["cache", "clear", "--cache-dir", str(tmp_path)]) == 0
    code = main(["run", "--tasks", "STS16", "--model", "minilm", "--data-dir", str(SAMPLE), "--out",
                 str(tmp_path / "runs"), "--run-name", "r", "--no-progress", "--cache-dir", str(tmp_path)])  # fmt: skip
    assert code == 0
    assert json.loads((tmp_path / "runs" / "r" / "run.json").read_text())["tasks"]["STS16"]["status"] == "ok"


def test_clear_removes_a_damaged_file_and_the_copies_moved_aside(tmp_path: Path, capsys) -> None:
    """Before stop 61 clear moved a damaged file aside itself, deleted the new empty one and said "removed 0 cached
    vectors"; the copies moved aside (damaged, older layouts) were never counted, listed or removed, though clear
    is the documented way to get their space back. A user's own copy beside them stays."""
    _fill(tmp_path, 300)
    db = tmp_path / DB_NAME
    db.write_bytes(b"this is not a database" * 500)
    EmbeddingCache(tmp_path).close()  # a run moves it aside
    (aside,) = tmp_path.glob(f"{DB_NAME}.damaged-*")
    _fill(tmp_path, 20)
    (tmp_path / f"{DB_NAME}.bak").write_bytes(b"a user's copy" * 1000)
    capsys.readouterr()
    assert main(["cache", "info", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"{db}: 20 vectors" in out and "moved aside (damaged or an older layout; `harness cache clear` removes " \
           f"them): 1, 0.0 MiB\n  {aside.name}  0.0 MiB" in out, out  # fmt: skip
    db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])
    assert main(["cache", "clear", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "removed a damaged file (its vectors uncounted), " in out, out
    assert f"removed the copies moved aside (1, 0.0 MiB): {aside.name}" in out, out
    assert sorted(p.name for p in tmp_path.iterdir()) == [DB_NAME, f"{DB_NAME}.bak", f"{DB_NAME}.lock"]


def test_info_counts_the_caches_own_files_only(tmp_path: Path) -> None:
    """Before stop 61 every embeddings.sqlite* file was counted: a user's embeddings.sqlite.bak doubled the size."""
    _fill(tmp_path, 50)
    (tmp_path / f"{DB_NAME}.bak").write_bytes((tmp_path / DB_NAME).read_bytes())
    cache = EmbeddingCache(tmp_path)
    own = sum((tmp_path / f"{DB_NAME}{s}").stat().st_size for s in ("", "-wal", "-shm")
              if (tmp_path / f"{DB_NAME}{s}").exists())  # fmt: skip
    assert cache.info()["bytes"] == own
    cache.close()


def test_info_on_an_older_layout_changes_nothing(tmp_path: Path, capsys) -> None:
    """Before stop 61 `cache info` moved a file of an older layout aside and reported a new empty cache."""
    with sqlite3.connect(tmp_path / DB_NAME) as db:
        db.execute("CREATE TABLE t (x)")
        db.execute("PRAGMA user_version=2")
    before = _files(tmp_path)
    assert main(["cache", "info", "--cache-dir", str(tmp_path)]) == 0
    assert "unusable (older cache layout (version 2, this harness writes 3))" in capsys.readouterr().out
    assert _files(tmp_path) == before


class _Killed(BaseException):
    """Stands for kill -9 at a batch boundary: nothing after it runs, not even except/finally of the encoder."""


def test_encoded_slices_reach_the_cache_before_the_task_ends(minilm, tmp_path: Path) -> None:
    """Before: a task's vectors were written to the cache only after its whole corpus was encoded."""
    corpus = [r["text"] for r in read_rows(discover_tasks(SAMPLE)["SciFact"], "corpus.jsonl")]
    batches = 0
    real = minilm.encode_batch

    def dies_on_the_fifth_batch(texts: list[str], role: str | None) -> np.ndarray:
        nonlocal batches
        batches += 1
        if batches == 5:
            raise _Killed
        return real(texts, role)

    encoder = HarnessEncoder(minilm, batch_size=16, cache=EmbeddingCache(tmp_path), show_progress=False)
    encoder.flush_every = 32  # windows of 16, 32, 32 texts (one batch, then doubling): the third dies half-way
    minilm.encode_batch = dies_on_the_fifth_batch
    try:
        with pytest.raises(_Killed):
            encoder.encode_texts(corpus, "document")
    finally:
        minilm.encode_batch = real
    assert EmbeddingCache(tmp_path).info()["entries"] == 48
    done = sorted(dict.fromkeys(corpus), key=len)[:48]  # texts are encoded shortest first
    again = HarnessEncoder(minilm, batch_size=16, cache=EmbeddingCache(tmp_path), show_progress=False)
    vectors = again.encode_texts(done, "document")
    assert again.stats.cache_hits == 48 and again.stats.encoded_texts == 0
    np.testing.assert_allclose(vectors[:3], minilm.encode_batch(done[:3], "document"), atol=1e-5)


def test_cache_command_on_an_unusable_folder_exits_2(capsys) -> None:
    assert main(["cache", "info", "--cache-dir", "/proc/harness-no-such-dir"]) == 2
    assert "--cache-dir /proc/harness-no-such-dir: no embedding cache there" in capsys.readouterr().err


def test_cache_commands_never_create_a_cache_where_there_is_none(tmp_path: Path, capsys) -> None:
    """A mistyped --cache-dir used to get a fresh empty database and report "0 vectors", or "removed 0", while the
    real cache kept its vectors: now it is an error naming the folder, and nothing is written there."""
    typo = tmp_path / "conan-harness"  # the parent of the real default folder, as the old --help named it
    assert main(["cache", "info", "--cache-dir", str(typo)]) == 2
    assert f"--cache-dir {typo}: no embedding cache there" in capsys.readouterr().err
    # clear says so and succeeds (before stop 67 exit 2: a script that clears before a sweep stopped on a new folder)
    assert main(["cache", "clear", "--cache-dir", str(typo)]) == 0
    assert f"{typo}: no embedding cache there ({DB_NAME} is missing): nothing to clear" in capsys.readouterr().out
    assert not typo.exists()
    _fill(tmp_path / "real", 10)
    assert main(["cache", "info", "--cache-dir", str(tmp_path / "real")]) == 0
    assert "10 vectors" in capsys.readouterr().out


def test_cache_info_tells_apart_namespaces_its_line_shows_alike(tmp_path: Path, capsys) -> None:
    """Before stop 49 (audit): two minilm namespaces that differ only by a padding multiple printed the same line."""
    cache = tmp_path / "cache"
    for extra in ([], ["--pad-to-multiple-of", "8"]):
        assert main(["run", "--tasks", "STS16", "--model", "minilm", "--data-dir", str(SAMPLE), "--out",
                     str(tmp_path / "runs"), "--run-name", f"r{len(extra)}", "--no-progress", "--cache-dir",
                     str(cache), *extra]) == 0  # fmt: skip
    capsys.readouterr()
    assert main(["cache", "info", "--cache-dir", str(cache)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "all-MiniLM-L6-v2" in line]
    assert len(lines) == 2 and len(set(lines)) == 2
    assert any(line.endswith("pad_multiple=8") for line in lines), lines


def test_cache_info_names_a_difference_inside_a_table(tmp_path: Path, capsys) -> None:
    """Review of stop 49: values were cut at 24 characters, so two namespaces differing in one package version
    (a transformers upgrade: docs/harness.md) still read alike."""
    cache = EmbeddingCache(tmp_path)
    base = {"name": "m", "role": None, "dtype": "float32", "max_length": 256, "prompt": ""}
    for ns, version in (("a", "5.24.0"), ("b", "5.25.0")):
        cache.register(ns, {**base, "packages": {"torch": "2.13.0+cpu", "transformers": version}})
        cache.put_many(ns, ["text"], np.ones((1, 4), dtype=np.float32))
    cache.close()
    assert main(["cache", "info", "--cache-dir", str(tmp_path)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "  m  " in line]
    assert [line.rsplit("  ", 1)[1] for line in lines] == ["packages.transformers=5.24.0",
                                                           "packages.transformers=5.25.0"]  # fmt: skip


def test_a_damaged_model_description_is_described_again(tmp_path: Path, capsys) -> None:
    """Before stop 61 (a user's walk): table `models` had no checksum, and one damaged byte in minilm's description
    ("cosine" read "euclid") failed every warm run with `ValueError: 'euclid' is not a valid ScoringFunction` until
    `harness cache clear`. Now the damage is warned of, naming the file and the model, the model loads and its
    description is stored anew: the scores are those of the cold run, and the next run loads nothing."""
    cache = tmp_path / "cache"
    args = ["run", "--tasks", "STS16", "--model", "minilm", "--data-dir", str(SAMPLE), "--out", str(tmp_path),
            "--run-name", "r", "--cache-dir", str(cache), "--no-progress"]  # fmt: skip
    assert main(args) == 0
    cold = json.loads((tmp_path / "r" / "run.json").read_text())["tasks"]["STS16"]["main_score"]
    with sqlite3.connect(cache / DB_NAME) as db:
        damage = "UPDATE models SET description = replace(description, '\"cosine\"', '\"euclid\"') RETURNING 1"
        assert db.execute(damage).fetchall() == [(1,)]
    capsys.readouterr()
    loads = lazy.LOADS["count"]
    assert main([*args, "--overwrite"]) == 0
    err = capsys.readouterr().err
    assert f"embedding cache {cache / DB_NAME}: the stored description of model minilm is damaged" in err, err
    assert lazy.LOADS["count"] == loads + 1
    assert json.loads((tmp_path / "r" / "run.json").read_text())["tasks"]["STS16"]["main_score"] == cold
    assert main([*args, "--overwrite"]) == 0  # the description was stored anew: a warm run again
    assert lazy.LOADS["count"] == loads + 1 and "damaged" not in capsys.readouterr().err



def test_a_description_stored_before_checksums_is_read_and_given_one(tmp_path: Path, capsys) -> None:
    """Review of stop 61: a description stored by older code (the JSON alone) failed the new check: warned of as
    damaged once per model, on a read-only cache at every run (its model loaded each time), and `clear --model`
    left it. Now it is read as it is, given its checksum where the cache takes writes, and its name is found."""
    cache = EmbeddingCache(tmp_path)
    cache.remember_model("key", {"name": "m/a"})
    cache._db.execute("UPDATE models SET description = ? WHERE key = 'key'", (json.dumps({"name": "m/a"}),))
    assert cache.model_description("key", "a") == {"name": "m/a"}
    assert "damaged" not in capsys.readouterr().err
    stored = cache._db.execute("SELECT description FROM models").fetchone()[0]
    assert stored.split(" ", 1)[0] == f"{description_crc('key', stored.split(' ', 1)[1]):08x}"
    assert _described_name(json.dumps({"name": "m/a"})) == "m/a"
    cache.close()

def test_clear_one_model(tmp_path: Path, capsys) -> None:
    """Before stop 61 clear took the whole cache or nothing: dropping one model recomputed every other."""
    cache = EmbeddingCache(tmp_path)
    for name, ns, count in (("m/a", "a1", 300), ("m/a", "a2", 100), ("m/b", "b1", 50)):
        cache.register(ns, {"name": name, "role": ns})
        cache.put_many(ns, [f"text {i}" for i in range(count)], np.ones((count, 384), dtype=np.float32))
    for name in ("m/a", "m/b"):
        cache.remember_model(f"key {name}", {"name": name})
    other = EmbeddingCache(tmp_path)  # a run holding the cache: refused, as a whole clear is
    assert main(["cache", "clear", "--cache-dir", str(tmp_path), "--model", "m/a"]) == 2
    assert "is open in another run" in capsys.readouterr().err
    other.close()
    cache.close()
    assert main(["cache", "info", "--cache-dir", str(tmp_path), "--model", "m/b"]) == 0
    out = capsys.readouterr().out
    assert ": 50 vectors" in out and "m/a" not in out, out
    before = (tmp_path / DB_NAME).stat().st_size
    assert main(["cache", "clear", "--cache-dir", str(tmp_path), "--model", "m/a"]) == 0
    assert "removed 400 cached vectors of m/a (2 namespaces; " in capsys.readouterr().out
    assert (tmp_path / DB_NAME).stat().st_size < 0.6 * before  # the space is given back (VACUUM)
    left = EmbeddingCache(tmp_path)
    assert left.info()["entries"] == 50 and [ns["name"] for ns in left.info()["namespaces"]] == ["m/b"]
    assert left.model_description("key m/a", "m/a") is None and left.model_description("key m/b", "m/b")
    left.close()
    assert main(["cache", "clear", "--cache-dir", str(tmp_path), "--model", "m/c"]) == 2
    assert f"--model m/c: no vectors of it in {tmp_path / DB_NAME} (it holds: m/b; " in capsys.readouterr().err
    # info refuses the same name (review of stop 61: "0 vectors" and the whole file's MiB, exit 0)
    assert main(["cache", "info", "--cache-dir", str(tmp_path), "--model", "minilm"]) == 2
    assert "--model minilm: no vectors of it in " in capsys.readouterr().err


def test_clear_one_fingerprint_of_a_model(tmp_path: Path, capsys) -> None:
    """A walk (stop 67): a folder model's weights changed leave two namespaces of one name, and `clear --model`
    removed both, the current weights' vectors too. --fingerprint narrows info and clear to one."""
    cache = EmbeddingCache(tmp_path)
    # one fingerprint longer than 16 characters: the error listed them cut there (a nightly walk, stop 69)
    for ns, fingerprint, count in (("old", "aaaa1111", 30), ("new", "bbbb2222-minilm-l6-v2==0.1.0", 20)):
        cache.register(ns, {"name": "local/stm", "role": "query", "fingerprint": fingerprint})
        cache.put_many(ns, [f"text {i}" for i in range(count)], np.ones((count, 8), dtype=np.float32))
        cache.remember_model(f"key {ns}", {"name": "local/stm", "fingerprint": fingerprint})
    cache.close()
    assert main(["cache", "info", "--cache-dir", str(tmp_path), "--model", "local/stm", "--fingerprint", "bbbb"]) == 0
    out = capsys.readouterr().out
    assert ": 20 vectors" in out and "fingerprint=bbbb2222" in out and "aaaa1111" not in out, out
    assert main(["cache", "clear", "--cache-dir", str(tmp_path), "--fingerprint", "aaaa"]) == 2
    assert "--fingerprint narrows --model: give the model's name too" in capsys.readouterr().err
    assert main(["cache", "clear", "--cache-dir", str(tmp_path), "--model", "local/stm", "--fingerprint", "cc"]) == 2
    assert ("--fingerprint cc: no vectors of local/stm under it in " in (err := capsys.readouterr().err)
            and "(its fingerprints: aaaa1111, bbbb2222-minilm-l6-v2==0.1.0)" in err)  # fmt: skip
    assert main(["cache", "clear", "--cache-dir", str(tmp_path), "--model", "local/stm", "--fingerprint", "AAAA"]) == 0
    assert "removed 30 cached vectors of local/stm (fingerprint AAAA…) (1 namespace; " in capsys.readouterr().out
    left = EmbeddingCache(tmp_path)
    kept = [(ns["fingerprint"], ns["entries"]) for ns in left.info()["namespaces"]]
    assert kept == [("bbbb2222-minilm-l6-v2==0.1.0", 20)]
    assert left.model_description("key old", "local/stm") is None and left.model_description("key new", "local/stm")
    left.close()


def test_clear_where_no_cache_is_succeeds_unless_the_path_is_not_a_folder(tmp_path: Path, capsys) -> None:
    """A walk (stop 67): `cache clear --cache-dir X` before any run made a cache there exited 2. It now says there
    is nothing to clear (exit 0), removing any copies a run moved aside, and still refuses a path that is a file."""
    folder = tmp_path / "sweep-cache"
    folder.mkdir()
    (folder / f"{ASIDE}20260101-000000").write_bytes(b"old")
    assert main(["cache", "clear", "--cache-dir", str(folder)]) == 0
    out = capsys.readouterr().out
    assert f"nothing to clear; removed the copies moved aside: {ASIDE}20260101-000000" in out
    assert list(folder.iterdir()) == []  # nothing made there
    assert main(["cache", "clear", "--cache-dir", str(folder), "--model", "m/a"]) == 0
    assert "nothing to clear" in capsys.readouterr().out
    taken = tmp_path / "notes.txt"
    taken.write_text("mine", encoding="utf-8")
    assert main(["cache", "clear", "--cache-dir", str(taken)]) == 2
    assert f"--cache-dir {taken}: a file, not a folder" in capsys.readouterr().err
    assert taken.read_text(encoding="utf-8") == "mine"
    (folder / DB_NAME).mkdir()
    assert main(["cache", "clear", "--cache-dir", str(folder)]) == 2
    assert f"{DB_NAME} there is not a file" in capsys.readouterr().err


def test_clear_leaves_a_new_empty_database_as_the_docs_say(tmp_path: Path, capsys) -> None:
    """A walk (stop 67): docs/harness.md said clear deletes the cache's files, and a 448 KiB embeddings.sqlite was
    left. It is a new, empty cache, made under the folder's lock so the next run finds one ready: the docs say so."""
    _fill(tmp_path, 100)
    assert main(["cache", "clear", "--cache-dir", str(tmp_path)]) == 0
    assert "removed 100 cached vectors" in capsys.readouterr().out
    assert (tmp_path / DB_NAME).stat().st_size < 2**20
    assert main(["cache", "info", "--cache-dir", str(tmp_path)]) == 0
    assert f"{tmp_path / DB_NAME}: 0 vectors, 0.4 MiB" in capsys.readouterr().out


def test_a_description_whose_revision_leads_out_of_the_run_directory_is_described_again(tmp_path: Path,
                                                                                         capsys) -> None:
    """A walk (stop 69): a shared cache's description names the run's results folder, and its checksum is one anyone
    can compute; a revision `../../../pwn` made a run write its result files outside the run directory. Such a
    description is damage: said, the model described again, every file inside the run."""
    cache = tmp_path / "cache"
    args = ["run", "--tasks", "STS16", "--model", "minilm", "--data-dir", str(SAMPLE), "--out", str(tmp_path / "runs"),
            "--run-name", "r", "--cache-dir", str(cache), "--no-progress"]  # fmt: skip
    assert main(args) == 0
    with sqlite3.connect(cache / DB_NAME) as db:
        key, stored = db.execute("SELECT key, description FROM models").fetchone()
        description = json.loads(stored.split(" ", 1)[1])
        text = json.dumps({**description, "revision": "../../../pwn"})
        db.execute("UPDATE models SET description = ?", (f"{description_crc(key, text):08x} {text}",))
    capsys.readouterr()
    assert main([*args, "--run-name", "again"]) == 0
    assert "the stored description of model minilm is damaged (its revision '../../../pwn' holds a path separator)" \
        in capsys.readouterr().err
    assert not (tmp_path / "pwn").exists() and not list(tmp_path.glob("**/pwn"))
    record = json.loads((tmp_path / "runs" / "again" / "run.json").read_text())
    assert record["model"]["revision"] == description["revision"] and record["tasks"]["STS16"]["status"] == "ok"


@pytest.mark.parametrize(("name", "target"), [(DB_NAME, "notes.txt"), (DB_NAME, "new"), (f"{DB_NAME}-wal", "new"),
                                              (f"{DB_NAME}.lock", "new")])  # fmt: skip
def test_a_link_among_the_cache_s_files_is_neither_followed_nor_used(tmp_path: Path, name: str, target: str,
                                                                     capsys) -> None:  # fmt: skip
    """Before stop 70 SQLite and the lock followed a link planted in a shared cache folder: one leading nowhere made
    the run create a database where it led, one leading to a file moved it aside as damaged. Now the cache is not
    opened: a warning names the link, this run keeps its vectors in memory, and nothing is made or moved."""
    folder, elsewhere = tmp_path / "cache", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    (elsewhere / "notes.txt").write_text("a user's own file", encoding="utf-8")
    leads_to = elsewhere / target  # a file, or nothing: a dangling link
    if name != DB_NAME:  # beside a cache of its own
        EmbeddingCache(folder).close()
        (folder / name).unlink(missing_ok=True)
    (folder / name).symlink_to(leads_to)
    files = sorted(p.name for p in folder.iterdir())
    cache = EmbeddingCache(folder)
    err = capsys.readouterr().err
    assert f"embedding cache {folder / DB_NAME} is not used: its file {name} is a symbolic link (to {leads_to})" \
        in err and "this run's vectors are kept for this run only" in err and err.count("warning") == 1, err
    cache.put_many("ns", ["a"], np.ones((1, 4), dtype=np.float32))
    assert sorted(cache.get_many("ns", ["a", "b"])) == [0]  # kept in memory for the run
    cache.close()
    assert sorted(p.name for p in folder.iterdir()) == files
    assert sorted(p.name for p in elsewhere.iterdir()) == ["notes.txt"]
    assert (elsewhere / "notes.txt").read_text(encoding="utf-8") == "a user's own file"
    for action in (["info"], ["clear"], ["clear", "--model", "minilm"]):  # a dangling link too (a review, stop 70)
        assert main(["cache", *action, "--cache-dir", str(folder)]) == 2
        assert f"--cache-dir {folder}: its file {name} is a symbolic link (to {leads_to}); the harness neither " \
            "reads nor writes a cache through links: remove the link yourself" in capsys.readouterr().err
    assert sorted(p.name for p in folder.iterdir()) == files
