"""Atomic file writes for every package (checkpoints, tokenizers, mined pools, run directories, reports): a crash
or a concurrent writer never leaves half a file under the final name. It lives in conan_model, the bottom
package, so that harness and train share one implementation without importing each other.

Durable too: a rename reaches the disk independently of the data it names, so after a power loss a file renamed
into place can be empty. The data is flushed (fsync) before the rename and the folder holding the new name after
it (`durable_replace`; `replace_dir` for a whole folder such as a training checkpoint).

A writer killed part way (kill -9, a power loss) leaves its temporary `.<name>.tmp-<pid>-<nonce>@<machine>` or aside
`.<name>.old-<pid>-<nonce>@<machine>` copy: `parse_leftover` reads such a name, `clear_leftovers` tidies those of a
process of this machine that no longer runs (another machine's pid means nothing here: a folder shared over NFS, or
with a container)."""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import socket
import sys
import tempfile
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from conan_model.errors import ConanError


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """``write`` a temporary file beside ``path``, then rename it over ``path``; no partial file survives.

    The parent folder is made if missing. The temporary name is unique per call, so concurrent writers of one
    path (processes or threads) never share it. The file gets the mode open() gives under the umask, whatever
    the writer made (safetensors and mkstemp make 0600 files), so every file of a run has the same mode.

    A path naming a folder, or below a file, is a ConanError naming it (an `--out` mistake), checked before
    anything is written, so every caller gets one clear error instead of an OSError from the rename."""
    check_file_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    try:
        write(tmp)
        os.chmod(tmp, default_file_mode())
        durable_replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def check_file_target(path: Path) -> None:
    """A ConanError when ``path`` cannot become a file: it is a folder, or one of its folders is a file. Nothing is
    made, so a command can check its output paths before its work and still leave no folder behind when refused."""
    if path.is_dir():
        raise ConanError(f"{path}: is a directory; give the name of a file to write")
    if blocker := not_a_folder(path.parent):
        raise ConanError(f"{path}: cannot be written, a part of its folder, {blocker[0]}, is {blocker[1]}")


def nearest_existing(path: Path) -> Path:
    """The nearest of ``path`` and its parents that exists, a broken link too (mkdir would fail on it): where
    making ``path`` would start."""
    return next((p for p in (path, *path.parents) if os.path.lexists(p)), path)  # `.` or `/` at the latest


def not_a_folder(path: Path) -> tuple[Path, str] | None:
    """What keeps ``path`` from being (or becoming) a folder: the nearest of it and its parents that exists, when
    that one is no folder, and what it is ("a file", "a broken link"); None when it is a folder. Nothing is made."""
    existing = nearest_existing(path)
    if existing.is_dir():
        return None
    return existing, "a broken link" if existing.is_symlink() else "a file"


def folder_problem(folder: Path) -> str | None:
    """Why ``folder`` cannot be written, said after its name: it is a file, a part of it is no folder, or it (the
    nearest folder above it that exists, where making it would start) takes no new file, checked by making one, as
    the writer will (modes do not bind root; a read-only mount or an immutable folder does). None when it can.
    Nothing is left behind, so a command checks its outputs first and leaves no empty folder when refused."""
    if folder.exists() and not folder.is_dir():
        return "is a file, not a directory"
    if blocked := not_a_folder(folder):
        existing, what = blocked
        return f"cannot be made, {existing} is not a directory" + (f" ({what})" if what == "a broken link" else "")
    try:
        with tempfile.NamedTemporaryFile(dir=nearest_existing(folder), prefix=".write-check-"):
            pass
    except OSError as exc:
        return f"not writable ({exc.strerror or exc})"
    return None


def durable_replace(src: Path, dst: Path) -> None:
    """os.replace(src, dst) that a power loss cannot turn into an empty or missing ``dst``: src's data is flushed
    before the rename, and dst's folder (the rename itself) after it."""
    fsync_file(src)
    os.replace(src, dst)
    fsync_dir(dst.parent)


def replace_dir(tmp: Path, final: Path) -> None:
    """Move a finished folder into place, durably: every file and folder under ``tmp`` and ``tmp`` itself are
    flushed before the rename, the parent after it. A folder already named ``final`` is renamed aside first, to
    `.<name>.old-<pid>-<nonce>@<machine>` (:func:`aside_path`), and deleted only once the new one is in place: a
    crash between the renames leaves the old one whole aside (no mix of the two under ``final``), one during the
    deletion a whole ``final`` beside a partial aside copy (deleting it first left neither a whole old nor a new
    ``final``). The aside name is this call's own: a fixed `.old-<name>` deleted whatever folder had that name (a
    user's, or the one whole old copy an earlier crash between the renames had left)."""
    for path in sorted(tmp.rglob("*")):
        fsync_dir(path) if path.is_dir() else fsync_file(path)
    fsync_dir(tmp)
    old = aside_path(final) if final.exists() else None
    if old is not None:
        os.rename(final, old)
    os.rename(tmp, final)
    fsync_dir(final.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def through_link(path: Path, label: str = "") -> Path:
    """The folder a replacement of ``path`` (replace_dir) is to replace: ``path`` itself, or for a link the folder it
    leads to, so that the link stays and the new folder lands beside its target, on the target's file system (before,
    the link itself was replaced by a folder, its target left as it was and a hidden link to it left aside). A link to
    nothing is a ConanError (``label`` names the option, "--out "): what it should have led to is not known."""
    if not path.is_symlink():
        return path
    if not path.exists():
        raise ConanError(f"{label}{path}: is a broken link (to {os.readlink(path)}); give a folder, or a link to one")
    return path.resolve()


def temp_path(final: Path) -> Path:
    """Where a new ``final`` is written before its rename: `.<name>.tmp-<pid>-<nonce>@<machine>` beside it, this call's
    own name (:func:`writer_mark`), so that concurrent writers of one path never share it."""
    return final.with_name(f".{final.name}.tmp-{writer_mark()}")


def aside_path(final: Path) -> Path:
    """Where :func:`replace_dir` moves the folder it replaces: `.<name>.old-<pid>-<nonce>@<machine>` beside it, this
    call's own name, as :func:`temp_path`'s (:func:`parse_leftover` reads both)."""
    return final.with_name(f".{final.name}.old-{writer_mark()}")


_INIT_PID_NS = 0xEFFFFFFC  # Linux's first pid namespace (PROC_PID_INIT_INO): a machine's own processes


def this_machine() -> str:
    """The machine whose processes this one's pids name, as :func:`writer_mark` records it: the host name (characters
    other than letters, digits, - and _ as _, at most 64) and, for a process in a container's own pid namespace (which
    may share the host's name), `_ns<inode>` of that namespace. Before, names held the pid alone, so on a folder shared
    between machines (NFS) or with a container a live writer elsewhere looked dead here and its copy was cleared."""
    host = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:64] or "host"
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:  # no /proc (macOS, Windows): the host name alone
        return host
    return host if namespace == _INIT_PID_NS else f"{host}_ns{namespace}"


def writer_mark() -> str:
    """`<pid>-<nonce>@<machine>`: who writes a temporary name (this process, on :func:`this_machine`), unique per
    call; the nonce is 12 hex digits, which _WRITER requires."""
    return f"{os.getpid()}-{uuid.uuid4().hex[:12]}@{this_machine()}"


class Writer(NamedTuple):
    """The process a writer's mark names, and its machine (None in a name written before machines were recorded)."""

    pid: int
    machine: str | None

    def elsewhere(self) -> bool:
        """Written on another machine: its pid cannot be looked up here, so its copy is never judged from here."""
        return self.machine is not None and self.machine != this_machine()

    def gone(self) -> bool:
        """Known to run no more: a process of this machine (a name without one is taken as of this machine, as it
        was before machines were recorded) that is not alive."""
        return not self.elsewhere() and not pid_alive(self.pid)


class Leftover(NamedTuple):
    """What a hidden name beside ``final`` says: the name it stands for, 'tmp' (a copy being written) or 'old' (an
    aside copy being replaced), and the writer that made it."""

    final: str
    kind: str
    writer: Writer


# A writer's mark in the names it leaves, `<pid>-<nonce>[@<machine>]`: the digits capped at 10, and an id no process
# can have (0, past pid_t, where os.kill raised OverflowError: a traceback in `harness models list`) is no writer's.
# The nonce is writer_mark's 12 hex digits exactly: before stop 63 any hex run passed, so a user's `.m.old-2024-01`
# beside `m` read as pid 2024's aside copy, to be put back or deleted
_WRITER = r"(\d{1,10})-[0-9a-f]{12}(?:@([A-Za-z0-9_-]{1,80}))?"
PID_MAX = 2**31 - 1


def parse_leftover(name: str) -> Leftover | None:
    """The :class:`Leftover` a temporary (`.<final>.tmp-<mark>`) or aside (`.<final>.old-<mark>`) name stands for
    (:func:`writer_mark`; the `@<machine>` may be missing, in a name written before it was recorded), or None for any
    other name."""
    match = re.fullmatch(rf"\.(.+)\.(tmp|old)-{_WRITER}", name)
    return Leftover(match[1], match[2], Writer(int(match[3]), match[4])) if match and _pid_ok(match[3]) else None


def parse_writer(mark: str) -> Writer | None:
    """The :class:`Writer` a mark names (the end of a run directory's staging folder name, `<Task>.<mark>`), or None
    for anything else: one grammar with :func:`parse_leftover`."""
    match = re.fullmatch(_WRITER, mark)
    return Writer(int(match[1]), match[2]) if match and _pid_ok(match[1]) else None


def _pid_ok(digits: str) -> bool:
    """Whether a process can have this id (see _WRITER)."""
    return 0 < int(digits) <= PID_MAX


def pid_alive(pid: int) -> bool:
    """Whether a process of this id runs on this machine (the writer a temporary name records). On Windows,
    ``os.kill(pid, 0)`` ends the process instead of probing it: there every writer counts as alive, so its copies
    are named and kept, never cleared."""
    if sys.platform == "win32":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def _leftovers(final: Path) -> list[tuple[Path, Leftover]]:
    """Each temporary or aside copy of ``final`` beside it, by name."""
    if not final.parent.is_dir():
        return []
    found = ((path, parse_leftover(path.name)) for path in final.parent.glob(f".{glob.escape(final.name)}.*-*"))
    return sorted(((path, left) for path, left in found if left is not None and left.final == final.name),
                  key=lambda item: item[0].name)  # fmt: skip


def dead_leftovers(final: Path) -> list[tuple[Path, str]]:
    """(path, what it is) of each temporary or aside copy of ``final`` beside it whose writer no longer runs on this
    machine (killed: a live writer's are its own, another machine's are never judged here), aside copies first: "an
    unfinished copy" (a temporary one, never put in place), "a replaced copy" (set aside, its replacement in place)
    or, with no ``final``, "the previous copy" (set aside by a replace_dir killed between its two renames: whole, and
    the only one)."""
    dead = sorted((left.kind, path) for path, left in _leftovers(final) if left.writer.gone())  # 'old' first
    previous = "the previous copy" if not os.path.lexists(final) else "a replaced copy"
    return [(path, "an unfinished copy" if kind == "tmp" else previous) for kind, path in dead]


def elsewhere_leftovers(final: Path) -> list[tuple[Path, str]]:
    """(path, machine) of each temporary or aside copy of ``final`` beside it written on another machine: left alone
    here (its writer may run there still), to be named."""
    return [(path, left.writer.machine) for path, left in _leftovers(final) if left.writer.elsewhere()]


def clear_leftovers(final: Path, earlier: Sequence[Path] = ()) -> tuple[list[str], list[str]]:
    """Tidy what killed writers of ``final`` left beside it (:func:`dead_leftovers`), so that nothing piles up (before,
    a kill -9 during `harness models fetch` left a hidden 538 MB folder that nothing mentioned): the previous copy is
    put back as ``final``, every other one deleted. ``earlier``: aside copies under a fixed name an earlier version
    gave them (training's `.old-final`), tidied alike where they exist. Returns 'name (what was done)' for each, and
    'could not … (why)' for each the OS refused (another user's, in a shared models folder), which stays while the
    rest are tidied: before, one such made every fetch and import fail, even of a base already prepared."""
    said, failed = [], []
    previous = "the previous copy" if not os.path.lexists(final) else "a replaced copy"
    for path, what in [*dead_leftovers(final), *((p, previous) for p in earlier if os.path.lexists(p))]:
        back = what == "the previous copy" and not os.path.lexists(final)
        try:
            if back:
                os.rename(path, final)
            else:
                shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        except OSError as exc:
            failed.append(f"could not {f'put back {path} as {final.name}' if back else f'remove {path}'} "
                          f"({exc.strerror or exc})")  # fmt: skip
            continue
        if back:
            said.append(f"{path.name} ({what}, set aside by a replacement that was killed: put back as {final.name})")
        else:
            said.append(f"{path.name} ({'a replaced copy' if what == 'the previous copy' else what}: removed)")
    return said, failed


def fsync_file(path: Path) -> None:
    """Flush a written file's data to the disk (Windows flushes only through a descriptor open for writing)."""
    fd = os.open(path, os.O_RDWR if os.name == "nt" else os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Flush a folder's entries (names created or renamed in it). POSIX only: where a folder cannot be opened
    (Windows, which has no O_DIRECTORY) there is nothing to flush it through, and the OS orders renames itself."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def default_file_mode() -> int:
    """The mode open() gives a new file under the current umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def atomic_write_text(path: Path, text: str) -> None:
    """UTF-8 text, written atomically."""
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    """Indented UTF-8 JSON (non-JSON values as str), written atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")
