"""On-disk embedding cache shared across tasks and runs.

An entry is keyed by *namespace* (model fingerprint + prompt + role + max length + pooling + dtype + device type +
torch/transformers/sentence-transformers versions, + the CPU model below float32 on a CPU) and the sha256 of the
text, so a query vector is never served for a document and an fp16 run never reuses fp32
vectors (mteb's own cache keys by text alone: mteb#5383, #5394). SQLite in WAL mode makes concurrent runs
safe; every vector carries a checksum of its namespace, text key and bytes, so a damaged entry, or an index that
points a text at another text's row, is treated as a miss and recomputed (said once per run).

Only SQLite decides that the file is damaged (it says "malformed" or "not a database"): a file shorter than its
header's page count is normal while another run checkpoints its WAL, and after a kill -9 in a checkpoint SQLite
completes it from the WAL. Every open cache holds a shared flock on `embeddings.sqlite.lock`; the files are only
moved aside or deleted under the exclusive lock, i.e. when no other run has them open (another run would go on
writing into a file nobody reads). A damaged file that another run holds is left in place and this run keeps its
vectors in memory.

A cache whose file or folder cannot be written is opened read-only (SQLite's URI modes, nothing made beside it):
a run reads its vectors and stores none (said once), a damaged one stays in place. `harness cache info` and
`clear` open the file read-only too (only_read) and so never move or make anything before clear deletes.

A write that fails (disk full, a file made read-only mid-run, an I/O error) is no reason to fail the run: the first
one is warned about once, naming the file, and the cache takes no more writes for the rest of the run (vectors
stay in the task memo, scores are unaffected); a read that fails counts as misses and turns reads off too, and so does a
repair that fails (a file found damaged mid-run whose fresh replacement cannot be created). Before, every
later task failed with the bare SQLite error and its vectors were lost. `failure` says why, for run.json.

Storage is near the vectors' own size: 64 KiB pages hold many rows each (the old WITHOUT ROWID layout spilled every
vector to its own overflow page, ~3x the bytes) and namespaces are stored once, rows refer to them by number.
A damaged database file (truncated, garbage header) is moved aside with a warning and a fresh cache started; a
file of an older layout is moved aside the same way (a cache only ever costs recomputation). Beside the vectors,
table `models` keeps each model's description (harness/lazy.py), so a rerun whose texts are all here loads no model;
it carries a checksum too, and a damaged one is described again from the loaded model.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import sqlite3
import sys
import time
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np

from conan_model.atomic import durable_replace
from conan_model.fingerprint import data_fingerprint
from harness.env import user_cache_root
from harness.errors import HarnessError, UsageError
from harness.runs import folder_name_problem

DB_NAME = "embeddings.sqlite"
SCHEMA_VERSION = 3  # PRAGMA user_version of the current layout (3: the checksum binds namespace and text key)
PAGE_SIZE = 65536
_CHUNK = 500  # keys per SELECT ... IN (...)
IN_MEMORY = ":memory:"  # where a run keeps vectors while another run holds a damaged file
OWN_SUFFIXES = ("", "-wal", "-shm", "-journal")  # the cache's files are DB_NAME + these (SQLite's companions)
ASIDE = f"{DB_NAME}.damaged-"  # a damaged file or one of an older layout, moved aside: DB_NAME.damaged-<time>


def default_cache_dir() -> Path:
    if os.environ.get("HARNESS_CACHE_DIR"):
        return Path(os.environ["HARNESS_CACHE_DIR"])
    return user_cache_root() / "embeddings"


def own_files(directory: Path) -> list[Path]:
    """The cache's files that exist: exactly DB_NAME and SQLite's companions (before stop 61 every DB_NAME* was
    counted, so a user's `embeddings.sqlite.bak` doubled the size `cache info` gave)."""
    return [p for p in (directory / f"{DB_NAME}{s}" for s in OWN_SUFFIXES) if p.is_file() and not p.is_symlink()]


def aside_copies(directory: Path) -> list[Path]:
    """The copies runs moved aside (damaged, older layout): `cache info` lists them, `cache clear` removes them."""
    return sorted(directory.glob(f"{ASIDE}*"))


def size_of(paths: Iterable[Path]) -> int:
    return sum(p.stat().st_size for p in paths)


def _writable(path: Path) -> bool:
    """Whether the cache may write here: the system allows it (permissions, an immutable file, a read-only mount)
    and a write bit is set, which root's access ignores: a file or folder made `chmod a-w` is read-only to root too,
    as `rm` asks before removing one."""
    return os.access(path, os.W_OK) and bool(path.stat().st_mode & 0o222)


def linked_file(directory: Path) -> str | None:
    """The cache's own file (DB_NAME, SQLite's companions, the lock) that is a symbolic link, said with its target;
    None when none is. SQLite and the lock would follow it: before stop 70, a link planted in a shared cache folder
    made a run create a database, or move aside as damaged whatever file it pointed at, wherever the link led."""
    for name in [f"{DB_NAME}{s}" for s in OWN_SUFFIXES] + [f"{DB_NAME}.lock"]:
        if (path := directory / name).is_symlink():
            return f"its file {name} is a symbolic link (to {os.readlink(path)})"
    return None


def read_only_reason(directory: Path) -> str | None:
    """Why the cache in `directory` must be opened read-only (None: it may be written)."""
    path = directory / DB_NAME
    if path.exists() and not _writable(path):
        return "the file is read-only"
    if directory.is_dir() and not _writable(directory):
        return "its folder is read-only"
    return None


def _read_only_uri(path: Path) -> str:
    """The file opened read-only. immutable=1 makes no file beside it (mode=ro makes -wal and -shm, read-only like
    the file, and leaves them), right while there is no -wal: no run has the file open; with one, mode=ro reads it.
    Not mode=ro always (review of stop 61): its -shm, made by this user beside a file another user owns and
    writes, would be one the owner's runs could not write. The cost: a write that begins while this run reads
    (the owner's run) can make the file read as damaged (the run then keeps its vectors in memory) or miss rows,
    never serve a wrong vector (each is checked against its checksum)."""
    mode = "mode=ro" if Path(f"{path}-wal").exists() else "immutable=1"
    return f"file:{quote(str(path.absolute()))}?{mode}"


def _stored_description(stored: str) -> tuple[int | None, str]:
    """(checksum, JSON text) of a stored description: "<crc hex> <json>" since stop 61, the JSON alone before
    (checksum None: read as it is, since the key's code hash keeps it current; review of stop 61: each was warned
    of as damaged once, and on a read-only cache at every run)."""
    if stored.startswith("{"):
        return None, stored
    crc, _, text = stored.partition(" ")
    try:
        return int(crc, 16), text
    except ValueError:
        return -1, text  # no checksum can match: damaged


def _described(stored: str) -> dict[str, Any]:
    """A stored description as a dict, {} when unreadable."""
    try:
        description = json.loads(_stored_description(stored)[1])
    except ValueError:
        return {}
    return description if isinstance(description, dict) else {}


def _described_name(stored: str) -> str | None:
    """The model name in a stored description, None when unreadable."""
    return _described(stored).get("name")


def namespace_key(identity: dict[str, Any]) -> str:
    """Stable hash of everything besides the text that changes a vector."""
    return data_fingerprint(identity)[:32]


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def entry_crc(ns_id: int, key: bytes, blob: bytes) -> int:
    """The checksum of one entry: its namespace row, its text key and its vector bytes. Before stop 49 (audit) it
    covered the bytes alone, so one flipped bit in the (ns, key) index served another text's valid vector (STS16
    scored 73.26 for 79.00, recorded ok); now a row reached for another key fails the check."""
    return zlib.crc32(blob, zlib.crc32(key, zlib.crc32(ns_id.to_bytes(8, "little", signed=True))))


def description_crc(key: str, text: str) -> int:
    """The checksum of a stored model description, bound to its key as a vector's is (entry_crc). Since stop 61;
    before, table `models` had none, and one damaged byte ("cosine" read "euclid") failed every warm run with a
    ValueError until `harness cache clear`."""
    return zlib.crc32(text.encode("utf-8"), zlib.crc32(key.encode("utf-8")))


class CacheDamaged(sqlite3.DatabaseError):
    """The database file cannot serve as a cache (damaged, or another layout); the reason says which."""


class RepairFailed(sqlite3.OperationalError):
    """A damaged file could not be replaced by a fresh one (disk full, I/O error): the cache is off for the run."""


class CacheInUse(HarnessError):
    """The files cannot be replaced now: another run has the cache open (exit 2, one line)."""


class EmbeddingCache:
    """get_many/put_many over one SQLite file; cheap to open, safe to share between processes."""

    def __init__(self, directory: Path, only_read: bool = False) -> None:
        """only_read: open the file read-only and leave it as found, damaged or not (`harness cache info` and
        `harness cache clear` look before they act; before stop 61 info moved a damaged file aside and made a new
        one). A file or folder that cannot be written is opened read-only either way."""
        self.directory = Path(directory)
        self.path = self.directory / DB_NAME
        self.only_read = only_read
        self.linked = linked_file(self.directory)  # a link among its files: the cache is not opened at all
        self.read_only = self.linked or read_only_reason(self.directory)  # why nothing is stored (None: stored)
        if self.read_only is None and not only_read:
            self.directory.mkdir(parents=True, exist_ok=True)
        self.corrupt_entries = 0
        self.moved_aside: Path | None = None
        self.damage: str | None = None  # why the file is unusable, when only_read or read-only leave it in place
        self.failure: str | None = None  # why the cache stopped taking writes mid-run (warned once)
        self._reads = True  # off after a failed read: a lock or I/O error would cost every later lookup again
        self._lock = self._shared_lock(make=self.read_only is None and not only_read)
        try:
            try:
                self._db = self._open(self.path)
            except sqlite3.DatabaseError as exc:
                if isinstance(exc, sqlite3.OperationalError) and not isinstance(exc, CacheDamaged):
                    raise  # locked, read-only, cannot open: not damage; the caller reports it
                self._recover(str(exc))
        except BaseException:  # no cache object: its lock must not outlive it (other runs could not repair/clear)
            if self._lock is not None:
                self._lock.close()
            raise
        if self.linked and not only_read:
            self.read_only = None  # the memory takes this run's vectors
            print(f"harness: warning: embedding cache {self.path} is not used: {self.linked}, and the harness "
                  "neither reads nor writes a cache through links (remove the link, or give --cache-dir a folder "
                  "holding the file itself): this run's vectors are kept for this run only",
                  file=sys.stderr)  # fmt: skip
        elif self.read_only and not only_read:
            print(f"harness: warning: embedding cache {self.path} is read-only ({self.read_only}): this run reads "
                  "the vectors it holds and stores none (the ones it computes are kept for this run only)",
                  file=sys.stderr)  # fmt: skip

    def _shared_lock(self, make: bool) -> Any:
        """The lock file, held shared for the cache's life (other runs may not move or delete the files meanwhile);
        without `make` (read-only, only reading) one that exists is taken (nothing is made there), else none."""
        lock = Path(f"{self.path}.lock")
        if not make and (self.linked or not lock.is_file()):
            return None
        handle = open(lock, "a" if make else "r")  # noqa: SIM115 - held for the cache's life, closed in close()
        fcntl.flock(handle, fcntl.LOCK_SH)  # released by the kernel even on kill -9
        return handle

    def _open(self, target: Path | str) -> sqlite3.Connection:
        self._ids: dict[str, int] = {}
        self._stored_in = None  # the file this run stores into, as (device, inode): `close` checks it is still there
        reading = target != IN_MEMORY and (self.read_only or self.only_read)
        if reading and (self.linked or not Path(target).is_file()):
            return self._open(IN_MEMORY)  # nothing to read, nowhere to write: this run's vectors stay in memory
        db = sqlite3.connect(_read_only_uri(Path(target)) if reading else target, timeout=60, isolation_level=None,
                             uri=reading)  # fmt: skip
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            tables = db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0]
            if tables and version != SCHEMA_VERSION:
                raise CacheDamaged(f"older cache layout (version {version}, this harness writes {SCHEMA_VERSION})")
            if reading:
                if tables:
                    return db
                db.close()
                return self._open(IN_MEMORY)  # an empty file read-only: nothing to read
            db.execute(f"PRAGMA page_size={PAGE_SIZE}")  # only takes effect on a new, empty file
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA wal_autocheckpoint=64")  # pages: the WAL stays near 4 MiB, not 1000 x 64 KiB
            db.execute(f"PRAGMA journal_size_limit={8 << 20}")
            db.execute("CREATE TABLE IF NOT EXISTS namespaces (id INTEGER PRIMARY KEY, ns TEXT UNIQUE, identity TEXT)")
            db.execute("CREATE TABLE IF NOT EXISTS vectors (ns INTEGER, key BLOB, dim INTEGER, vec BLOB, crc INTEGER,"
                       " PRIMARY KEY (ns, key))")  # fmt: skip
            db.execute("CREATE TABLE IF NOT EXISTS models (key TEXT PRIMARY KEY, description TEXT)")  # harness/lazy.py
            db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            self._stored_in = _file_id(Path(target)) if target != IN_MEMORY else None
        except BaseException:
            db.close()
            raise
        return db

    @contextmanager
    def _alone(self) -> Iterator[bool]:
        """Whether no other open cache shares the files (the exclusive flock); only then may they be replaced."""
        if self._lock is None:  # read-only, without a lock file: nothing is replaced
            yield False
            return
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            alone = True
        except BlockingIOError:
            alone = False
        try:
            yield alone
        finally:
            fcntl.flock(self._lock, fcntl.LOCK_SH)  # a failed upgrade may have dropped the shared lock: take it again

    def _recover(self, reason: str) -> None:
        """Move the damaged file (and its WAL) aside, say so on stderr, and start an empty cache; while another
        run has the file open, or it is read-only, leave it in place and keep this run's vectors in memory; when
        only reading (`cache info`), only note the damage."""
        if getattr(self, "_db", None) is not None:
            self._db.close()
        if self.only_read:
            self.damage = reason
            self._db = self._open(IN_MEMORY)
            return
        with self._alone() as alone:
            kept = self.read_only or (None if alone else "another run has it open")
            if kept:
                print(f"harness: warning: embedding cache {self.path} is unusable ({reason}); {kept}, so it stays "
                      "in place and this run keeps its vectors in memory", file=sys.stderr)  # fmt: skip
                self.read_only = None  # the memory takes this run's vectors
                self._db = self._open(IN_MEMORY)
                return
            aside = self.path.with_name(f"{ASIDE}{time.strftime('%Y%m%dT%H%M%S')}-{time.time_ns() % 10**9}")
            if self.path.exists():
                durable_replace(self.path, aside)
                self.moved_aside = aside
            for suffix in ("-wal", "-shm"):
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            self._db = self._open(self.path)  # before the warning: a fresh file that cannot be made is warned of once
            print(f"harness: warning: embedding cache {self.path} is unusable ({reason}); moved it to {aside.name} "
                  "and started a fresh cache", file=sys.stderr)

    def _guarded(self, op: Any, *args: Any) -> Any:
        """Run op; if the file turns out damaged mid-run, recover once and run it again on the fresh cache. A
        repair that fails (no room for the fresh file) has closed the connection: reads stop with writes then."""
        try:
            return op(*args)
        except sqlite3.DatabaseError as exc:
            if type(exc) is not sqlite3.DatabaseError:  # OperationalError & co: locks, I/O, not damage
                raise
            damage = str(exc)
        moved_before = self.moved_aside
        try:
            self._recover(damage)
        except (sqlite3.Error, OSError) as exc:
            self._reads = False  # before: the next lookup crashed, "Cannot operate on a closed database"
            if self.moved_aside != moved_before:
                damage += f"; moved to {self.moved_aside.name}"
            raise RepairFailed(f"the file is damaged ({damage}) and a fresh one cannot be created: {exc}") from exc
        return op(*args)

    def _stop(self, doing: str, exc: Exception) -> None:
        """Say once why the cache stopped, and how to get it back; the run goes on without it."""
        if self.failure is None:
            self.failure = f"{doing}: {exc}"
            print(f"harness: warning: embedding cache {self.path} failed {doing} ({exc}); this run goes on without "
                  "caching (scores are unaffected, vectors are computed instead of read). Free space there, give "
                  "another --cache-dir, or run with --no-cache", file=sys.stderr)  # fmt: skip

    def _write(self, op: Any, *args: Any) -> None:
        """Run a write unless an earlier one failed or the file is read-only; a failure stops writes for the rest
        of the run."""
        if self.failure is not None or self.read_only or self.only_read:
            return
        try:
            self._guarded(op, *args)
        except (sqlite3.OperationalError, OSError) as exc:  # full, read-only, I/O, locked past the timeout
            self._stop("to write", exc)

    def _read(self, op: Any, default: Any, *args: Any) -> Any:
        """op's answer, or `default` (a miss) once a read has failed; a failure stops reads and writes."""
        if not self._reads:
            return default
        try:
            return self._guarded(op, *args)
        except (sqlite3.OperationalError, OSError) as exc:
            self._reads = False
            self._stop("to read", exc)
            return default

    def _ns_id(self, ns: str, create: bool) -> int | None:
        """The namespace's row number; None when it has none and `create` is off (reads never write)."""
        if ns not in self._ids:
            if create:
                self._db.execute("INSERT OR IGNORE INTO namespaces (ns, identity) VALUES (?, '{}')", (ns,))
            row = self._db.execute("SELECT id FROM namespaces WHERE ns = ?", (ns,)).fetchone()
            if row is None:
                return None
            self._ids[ns] = row[0]
        return self._ids[ns]

    def register(self, ns: str, identity: dict[str, Any]) -> None:
        def op() -> None:
            self._db.execute("UPDATE namespaces SET identity = ? WHERE id = ?",
                             (json.dumps(identity, default=str), self._ns_id(ns, create=True)))  # fmt: skip

        self._write(op)

    def get_many(self, ns: str, texts: list[str]) -> dict[int, np.ndarray]:
        """Vectors found for texts, by position; damaged entries are dropped (and later overwritten)."""
        return self._read(self._get_many, {}, ns, texts)

    def _get_many(self, ns: str, texts: list[str]) -> dict[int, np.ndarray]:
        keys = [text_key(t) for t in texts]
        position = {k: i for i, k in enumerate(keys)}
        found: dict[int, np.ndarray] = {}
        ns_id = self._ns_id(ns, create=False)
        if ns_id is None:
            return found
        for lo in range(0, len(keys), _CHUNK):
            chunk = keys[lo : lo + _CHUNK]
            query = f"SELECT key, dim, vec, crc FROM vectors WHERE ns = ? AND key IN ({','.join('?' * len(chunk))})"
            for key, dim, blob, crc in self._db.execute(query, (ns_id, *chunk)):
                if key not in position or entry_crc(ns_id, key, blob) != crc or len(blob) != 4 * dim:
                    self._damaged_entry()
                    continue
                found[position[key]] = np.frombuffer(blob, dtype=np.float32)
        return found

    def _damaged_entry(self) -> None:
        """Count a damaged entry (recomputed by the caller) and say so once per run: a file that decays should not
        only cost time silently."""
        self.corrupt_entries += 1
        if self.corrupt_entries == 1:
            print(f"harness: warning: embedding cache {self.path}: a damaged entry (checksum) is recomputed and "
                  "overwritten; if this recurs, the disk may be failing (`harness cache clear` starts afresh)",
                  file=sys.stderr)  # fmt: skip

    def put_many(self, ns: str, texts: Iterable[str], vectors: np.ndarray) -> None:
        """Store vectors; a failed write (disk full, read-only file) warns once and the run goes on uncached."""
        self._write(self._put_many, ns, list(texts), vectors)

    def _put_many(self, ns: str, texts: list[str], vectors: np.ndarray) -> None:
        ns_id, rows = self._ns_id(ns, create=True), []
        for text, vec in zip(texts, np.asarray(vectors, dtype=np.float32), strict=True):
            blob, key = vec.tobytes(), text_key(text)
            rows.append((ns_id, key, vec.shape[0], blob, entry_crc(ns_id, key, blob)))
        # one transaction per slice keeps concurrent writers cheap and atomic (the connection is in autocommit mode,
        # where `with db:` began none: every row was its own commit, and a failed slice was half written)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?, ?, ?)", rows)
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:  # SQLite has rolled back by itself after SQLITE_FULL
                self._db.execute("ROLLBACK")
            raise

    def model_description(self, key: str, spec: str) -> dict[str, Any] | None:
        """A model's stored description (harness/lazy.py), or None; a damaged one (its checksum fails) counts as
        absent, with a warning naming the file and the model: the caller loads the model and stores it anew."""
        row = self._read(lambda: self._db.execute("SELECT description FROM models WHERE key = ?", (key,)).fetchone(),
                         None)
        if row is None:
            return None
        crc, text = _stored_description(str(row[0]))
        why = "checksum"
        try:
            if crc is None or crc == description_crc(key, text):
                description = json.loads(text)
                # its name and revision name the run's results folder: a shared cache's writer could point them
                # anywhere, and its checksum authenticates nothing (before stop 69, a walk: `../../pwn` wrote there)
                problem = folder_name_problem(str(description.get("name")), str(description.get("revision")))
                why = f"its {problem[0]} {str(description.get(problem[0]))!r} {problem[2]}" if problem else ""
                if not why:
                    if crc is None:  # stored before stop 61: given its checksum where the cache takes writes
                        self.remember_model(key, description)
                    return description
        except ValueError:
            why = "not JSON"
        except AttributeError:
            why = "not a JSON object"
        print(f"harness: warning: embedding cache {self.path}: the stored description of model {spec} is damaged "
              f"({why}); the model is loaded and described again", file=sys.stderr)
        return None

    def remember_model(self, key: str, description: dict[str, Any]) -> None:
        text = json.dumps(description, default=str)
        row = (key, f"{description_crc(key, text):08x} {text}")
        self._write(lambda: self._db.execute("INSERT OR REPLACE INTO models VALUES (?, ?)", row))

    def info(self) -> dict[str, Any]:
        """What the cache holds and takes on disk: its own files apart from the copies moved aside; `damage` says
        why a file left in place (only_read, read-only) is unusable."""
        return self._guarded(self._info)

    def _info(self) -> dict[str, Any]:
        per_ns = dict(self._db.execute("SELECT ns, COUNT(*) FROM vectors GROUP BY ns"))
        names = self._db.execute("SELECT id, identity FROM namespaces").fetchall()
        return {
            "path": str(self.path),
            "bytes": size_of(own_files(self.directory)),
            "entries": sum(per_ns.values()),
            "damage": self.damage,
            "read_only": self.read_only,
            "moved_aside": [(p.name, p.stat().st_size) for p in aside_copies(self.directory)],
            "namespaces": [{"namespace": ns_id, "entries": per_ns[ns_id], **json.loads(ident)}
                           for ns_id, ident in names if ns_id in per_ns],  # fmt: skip
        }

    def clear(self) -> dict[str, Any]:
        """Remove the cache's files, whatever state they are in, and the copies moved aside (since stop 61: before,
        they were never removed, and a damaged file was first moved aside itself, then "removed 0 cached vectors");
        says what went: `entries` (None when the file could not be counted), `bytes`, `aside` (name, bytes)."""
        info = self.info()
        with self._clearing():
            for path in [*own_files(self.directory), *aside_copies(self.directory)]:
                path.unlink()
            self._db = self._open(self.path)
        return {"entries": None if info["damage"] else info["entries"], "bytes": info["bytes"],
                "aside": info["moved_aside"]}  # fmt: skip

    def clear_model(self, name: str, fingerprint: str | None = None) -> dict[str, Any]:
        """Remove one model's namespaces (by the name `cache info` shows; ``fingerprint``: only those of a
        fingerprint starting so, e.g. a folder model's stale weights) with their vectors and its stored descriptions,
        and give the space back (VACUUM): the way to drop one model without recomputing the others (since stop 61;
        one fingerprint since stop 68). Says what went: `namespaces`, `entries`, `bytes`; a UsageError when the file
        is unusable or holds no such model or fingerprint (naming the ones it holds)."""
        info = self.info()
        if info["damage"]:
            raise UsageError(f"embedding cache {self.path} is unusable ({info['damage']}): `harness cache clear` "
                             "without --model removes it")  # fmt: skip
        mine = self.namespaces_of(info, name, fingerprint)
        with self._clearing():
            self._db = self._open(self.path)
            ids = [(ns["namespace"],) for ns in mine]
            described = [(key,) for key, text in self._db.execute("SELECT key, description FROM models")
                         if _described_name(text) == name
                         and str(_described(text).get("fingerprint") or "").lower().startswith(
                             (fingerprint or "").lower())]  # fmt: skip
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("DELETE FROM vectors WHERE ns = ?", ids)
            self._db.executemany("DELETE FROM namespaces WHERE id = ?", ids)
            self._db.executemany("DELETE FROM models WHERE key = ?", described)
            self._db.execute("COMMIT")
            try:  # needs free space up to the file's size; the vectors are gone either way
                self._db.execute("VACUUM")
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            except sqlite3.OperationalError as exc:
                print(f"harness: warning: embedding cache {self.path}: {name}'s vectors are removed, but the file "
                      f"could not be compacted ({exc}); later runs reuse its space", file=sys.stderr)  # fmt: skip
        return {"namespaces": len(mine), "entries": sum(ns["entries"] for ns in mine),
                "bytes": info["bytes"] - size_of(own_files(self.directory))}  # fmt: skip

    def namespaces_of(self, info: dict[str, Any], name: str, fingerprint: str | None = None) -> list[dict[str, Any]]:
        """``info``'s namespaces of the model `cache info` names ``name`` (and, given ``fingerprint``, whose
        fingerprint starts so); a UsageError naming the models (or that model's fingerprints) the cache holds when
        none matches (info and clear alike: before the review of stop 61 info said "0 vectors" of a name clear
        refused)."""
        mine = [ns for ns in info["namespaces"] if ns.get("name") == name]
        if not mine:
            held = ", ".join(sorted({str(ns.get("name")) for ns in info["namespaces"]})) or "none"
            raise UsageError(f"--model {name}: no vectors of it in {self.path} (it holds: {held}; --model takes "
                             "the name `harness cache info` shows)")  # fmt: skip
        if fingerprint is None:
            return mine
        if not fingerprint:
            raise UsageError("--fingerprint: give the start of a fingerprint `harness cache info --model` shows")
        ours = [ns for ns in mine if str(ns.get("fingerprint", "")).lower().startswith(fingerprint.lower())]
        if not ours:
            held = ", ".join(sorted({str(ns.get("fingerprint")) for ns in mine}))
            raise UsageError(f"--fingerprint {fingerprint}: no vectors of {name} under it in {self.path} (its "
                             f"fingerprints: {held})")  # fmt: skip
        return ours

    @contextmanager
    def _clearing(self) -> Iterator[None]:
        """The files to this cache alone, its connection closed, for a clear; refused (CacheInUse) while another
        run has them open (its writes would go to a deleted file), and (UsageError, naming why) when read-only."""
        if self.linked:
            raise UsageError(f"embedding cache {self.path}: cannot clear it, {self.linked}: remove the link yourself")
        if self.read_only:
            raise UsageError(f"embedding cache {self.path}: cannot clear it, {self.read_only} (make it writable, "
                             "or remove the folder yourself)")  # fmt: skip
        if self._lock is None:  # a folder copied without its lock file
            self._lock = self._shared_lock(make=True)
        with self._alone() as alone:
            if not alone:
                raise CacheInUse(f"embedding cache {self.path} is open in another run; clear it when that run ends")
            self._db.close()
            self.only_read = False
            yield

    def close(self) -> None:
        """Close the file; say so when the one this run stored into was removed meanwhile (a `rm -rf` of the cache
        folder, another tool): the vectors went with it, where before stop 66 the run ended without a word and the
        next one computed them all again, unexplained."""
        self._db.close()
        if self._lock is not None:
            self._lock.close()
        if self._stored_in is not None and self.failure is None and _file_id(self.path) != self._stored_in:
            print(f"harness: warning: embedding cache {self.path} was removed while this run used it: the vectors it "
                  "held and stored are gone, and the next run computes them again (scores are unaffected)",
                  file=sys.stderr)  # fmt: skip


def _file_id(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file at path, None when there is none: a file replaced under its name is another."""
    try:
        found = path.stat()
    except OSError:
        return None
    return found.st_dev, found.st_ino


def open_cache_at(folder: Path, advice: str = "", only_read: bool = False) -> EmbeddingCache:
    """The embedding cache in ``folder``, or a UsageError naming --cache-dir when it cannot be opened at all (a
    full disk, a folder where its file should be): before, a traceback. Damage is repaired inside
    (EmbeddingCache); this is access. ``advice``: what the command's user can do instead."""
    try:
        return EmbeddingCache(folder, only_read)
    except (OSError, sqlite3.OperationalError) as exc:
        raise UsageError(f"--cache-dir {folder}: cannot open the cache ({exc}){advice}") from None
