"""conan_model.atomic: the one atomic write every package uses (run directories, checkpoints, pools, reports)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from fs_helpers import read_only

from conan_model import atomic
from conan_model.atomic import (
    aside_path,
    atomic_write,
    atomic_write_json,
    atomic_write_text,
    clear_leftovers,
    dead_leftovers,
    elsewhere_leftovers,
    parse_leftover,
    parse_writer,
    pid_alive,
    replace_dir,
    temp_path,
    this_machine,
)


def test_writes_into_a_missing_folder_with_the_umask_mode(tmp_path: Path) -> None:
    """The harness's copy made the parent folder and the train copy did not; the one helper does, and a writer
    that makes 0600 files (mkstemp, safetensors) still leaves the mode open() would give."""
    target = tmp_path / "a" / "b" / "out.json"
    old = os.umask(0o027)
    try:
        atomic_write(target, lambda tmp: (tmp.write_text("x"), tmp.chmod(0o600)))
    finally:
        os.umask(old)
    assert target.read_text() == "x"
    assert oct(target.stat().st_mode & 0o777) == "0o640"


def test_a_failing_writer_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    atomic_write_text(target, "old")

    def half_then_fail(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError, match="crash mid-write"):
        atomic_write(target, half_then_fail)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_json_is_indented_utf8_with_a_final_newline(tmp_path: Path) -> None:
    target = tmp_path / "r.json"
    atomic_write_json(target, {"名": 1, "path": Path("x")})
    text = target.read_text(encoding="utf-8")
    assert text.endswith("}\n") and "名" in text
    assert json.loads(text) == {"名": 1, "path": "x"}


def _spy_fsync(monkeypatch: pytest.MonkeyPatch, seen: Path) -> list[tuple[int, bool, str]]:
    """Records each os.fsync as (inode, is a folder, what `seen` holds at that moment), then really flushes.

    Power loss cannot be simulated; what can be checked is that the data and the rename are flushed, in order."""
    calls, real = [], os.fsync

    def spy(fd: int) -> None:
        info = os.fstat(fd)
        calls.append((info.st_ino, stat.S_ISDIR(info.st_mode), seen.read_text() if seen.is_file() else "absent"))
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    return calls


@pytest.mark.skipif(not hasattr(os, "O_DIRECTORY"), reason="folders are flushed where they can be opened (POSIX)")
def test_data_is_flushed_before_the_rename_and_the_folder_after(tmp_path: Path, monkeypatch) -> None:
    """Before: no fsync at all, so after a power loss the renamed file could be empty."""
    target = tmp_path / "out.json"
    atomic_write_text(target, "old")
    calls = _spy_fsync(monkeypatch, target)
    atomic_write_text(target, "new")
    assert target.read_text() == "new"
    # the new file (same inode once renamed) while the old one still stood there, then the folder after the rename
    assert calls == [(target.stat().st_ino, False, "old"), (tmp_path.stat().st_ino, True, "new")]


@pytest.mark.skipif(not hasattr(os, "O_DIRECTORY"), reason="folders are flushed where they can be opened (POSIX)")
def test_a_folder_replaced_whole_is_flushed_file_by_file_before_its_rename(tmp_path: Path, monkeypatch) -> None:
    """A training checkpoint: every file and folder of the new one reaches the disk before it takes the name."""
    final, tmp = tmp_path / "step_1", tmp_path / ".tmp-step_1"
    final.mkdir()
    (final / "state.json").write_text("old")
    (tmp / "sub").mkdir(parents=True)
    (tmp / "state.json").write_text("new")
    (tmp / "sub" / "rng_rank1.pt").write_text("r")
    calls = _spy_fsync(monkeypatch, final / "state.json")
    replace_dir(tmp, final)
    assert (final / "state.json").read_text() == "new" and not tmp.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["step_1"]
    inside = {(p.stat().st_ino, p.is_dir(), "old") for p in [final, *final.rglob("*")]}
    assert set(calls[:-1]) == inside and len(calls) == len(inside) + 1  # each once, before the rename
    assert calls[-1] == (tmp_path.stat().st_ino, True, "new")


def test_a_path_naming_a_folder_or_below_a_file_is_an_error_naming_it(tmp_path: Path) -> None:
    """Before: IsADirectoryError from the rename (naming the temporary file) or FileExistsError from mkdir, as
    tracebacks in every CLI writing an --out through here (regress, leaderboard)."""
    import re

    from conan_model.errors import ConanError

    with pytest.raises(ConanError, match=f"^{re.escape(str(tmp_path))}: is a directory; give the name of a file to"):
        atomic_write_text(tmp_path, "x")
    (tmp_path / "a.md").write_text("old")
    with pytest.raises(ConanError, match="a part of its folder, .*/a.md, is a file"):
        atomic_write_text(tmp_path / "a.md" / "b.md", "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.md"] and (tmp_path / "a.md").read_text() == "old"
    (tmp_path / "gone").symlink_to(tmp_path / "nowhere")  # review 39: a broken link was passed, then mkdir failed
    with pytest.raises(ConanError, match="a part of its folder, .*/gone, is a broken link"):
        atomic_write_text(tmp_path / "gone" / "b.md", "x")


def test_a_replaced_folder_goes_aside_under_a_name_of_its_own(tmp_path: Path) -> None:
    """A user's walk: the aside name was a fixed `.old-<name>`, and replace_dir deleted whatever folder had it first:
    a user's own `.old-m` beside `--out m`, or the whole previous copy that a crash between the two renames had left
    there (the next import deleted it silently). Now the aside name is this call's own, and only it is deleted."""
    final, mine = tmp_path / "m", tmp_path / ".old-m"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    for text in ("first", "second"):
        tmp = tmp_path / ".m.tmp"
        tmp.mkdir()
        (tmp / "config.json").write_text(text)
        replace_dir(tmp, final)
    assert (final / "config.json").read_text() == "second" and (mine / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".old-m", "m"]
    aside = aside_path(final)
    assert aside.parent == tmp_path and parse_leftover(aside.name)[:2] == ("m", "old")
    assert parse_leftover(aside.name).writer == (os.getpid(), this_machine())
    assert aside_path(final) != aside


def test_a_user_s_dated_folder_is_no_leftover(tmp_path: Path) -> None:
    """Review: any hex run passed as the nonce, so before stop 63 a user's `.m.old-2024-01` beside `m` read as the
    aside copy of pid 2024 (nonce 01), put back as `m` once that pid was gone. A writer's nonce is 12 hex digits."""
    final, mine = tmp_path / "m", tmp_path / ".m.old-2024-01"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    assert parse_leftover(mine.name) is None and parse_writer("2024-01") is None
    assert clear_leftovers(final) == ([], []) and (mine / "notes.txt").read_text() == "mine" and not final.exists()
    assert parse_leftover(".m.old-2024-0123456789ab") == ("m", "old", (2024, None))


@pytest.mark.parametrize("pid", ["0", str(2**31), "9" * 10, "1" + "0" * 23])
def test_a_pid_no_process_can_have_is_no_writer_s(tmp_path: Path, pid: str) -> None:
    """Review: parse_leftover took any number of digits, and pid_alive(10**23) raised OverflowError (pid_t), a
    traceback in `harness models list`, fetch, import and the run directory's cleanup. Such a name is nobody's."""
    name = f".m.tmp-{pid}-0123456789ab"
    (tmp_path / name).mkdir()
    assert parse_leftover(name) is None and parse_writer(f"{pid}-0123456789ab") is None
    assert dead_leftovers(tmp_path / "m") == [] and (tmp_path / name).is_dir()
    largest = (2**31 - 1, None)
    assert parse_leftover(f".m.tmp-{2**31 - 1}-0123456789ab").writer == largest
    assert parse_writer(f"{2**31 - 1}-0123456789ab") == largest


def _gone_pid() -> int:
    """The id of a process that has ended."""
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                              check=True).stdout)  # fmt: skip


def test_on_windows_no_writer_is_probed_with_a_signal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On Windows os.kill(pid, 0) terminates the process (TerminateProcess) rather than probing it: there a writer
    counts as alive and its copy is kept, and os.kill is never called (here it is refused, to prove it)."""
    gone = _gone_pid()
    (tmp_path / f".m.tmp-{gone}-0123456789ab").mkdir()
    assert dead_leftovers(tmp_path / "m") == [(tmp_path / f".m.tmp-{gone}-0123456789ab", "an unfinished copy")]

    def no_kill(*_args: object) -> None:
        raise AssertionError("os.kill called")

    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(os, "kill", no_kill)
    assert pid_alive(gone) and dead_leftovers(tmp_path / "m") == []


def test_a_leftover_the_os_will_not_remove_is_said_and_the_rest_cleared(tmp_path: Path) -> None:
    """Review: one leftover that could not be removed (another user's, in a group-writable shared models folder) was
    a PermissionError out of clear_leftovers, so every fetch and import there failed. Now it is one line, it stays,
    and the others are cleared."""
    gone = _gone_pid()
    stuck, other = tmp_path / f".m.tmp-{gone}-0123456789ab", tmp_path / f".m.tmp-{gone}-abcdef012345"
    for folder in (stuck, other):
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"x")
    with read_only(stuck):
        said, failed = clear_leftovers(tmp_path / "m")
    assert said == [f"{other.name} (an unfinished copy: removed)"] and not other.exists()
    assert len(failed) == 1 and failed[0].startswith(f"could not remove {stuck} (") and stuck.is_dir()


def test_names_record_the_machine_and_only_this_machine_s_dead_writers_are_cleared(tmp_path: Path) -> None:
    """Review: names held the pid alone, so on a folder shared between machines (NFS) or with a container a live
    writer elsewhere looked dead here, and its copy was removed or put back. Names now end in `@<machine>`; another
    machine's are named (elsewhere_leftovers) and never cleared here; a name from before (no machine) is judged by
    its pid here, as it was."""
    gone, here = _gone_pid(), this_machine()
    assert temp_path(tmp_path / "m").name.endswith(f"@{here}") and aside_path(tmp_path / "m").name.endswith(f"@{here}")
    mine, before = tmp_path / f".m.tmp-{gone}-0123456789ab@{here}", tmp_path / f".m.tmp-{gone}-abcdef012345"
    theirs = [tmp_path / f".m.{kind}-{gone}-0123456789ab@node-a" for kind in ("old", "tmp")]
    for folder in (mine, before, *theirs):
        folder.mkdir()
    assert elsewhere_leftovers(tmp_path / "m") == [(path, "node-a") for path in theirs]
    said, failed = clear_leftovers(tmp_path / "m")
    assert sorted(said) == sorted(f"{path.name} (an unfinished copy: removed)" for path in (mine, before))
    assert failed == [] and sorted(tmp_path.iterdir()) == theirs  # node-a's aside copy is not put back as m


def test_the_machine_is_the_sanitized_host_name_and_a_container_s_pid_namespace(monkeypatch) -> None:
    """A container with its own pid namespace may share the host's name (--network host): its pids are not the
    host's, so its names say so."""
    monkeypatch.setattr(atomic.socket, "gethostname", lambda: "gpu-node.01 (lab)")
    assert this_machine().split("_ns")[0] == "gpu-node_01__lab_"
    if not Path("/proc/self/ns/pid").exists():
        pytest.skip("no /proc: the host name alone")
    namespace = os.stat("/proc/self/ns/pid").st_ino
    monkeypatch.setattr(atomic, "_INIT_PID_NS", namespace + 1)  # as seen from a container's own namespace
    assert this_machine() == f"gpu-node_01__lab__ns{namespace}"
