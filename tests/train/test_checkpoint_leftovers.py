"""A Ctrl-C inside a checkpoint save can leave a folder behind that no later save removes: replace_dir's aside copy
`.step_*.old-<pid>-<nonce>@<machine>`, or an older `step_*` whose deletion (keep_last) was cut short with its
state.json still there; one inside the final export, `final` set aside. The next start tidies what is provably
leftover and says so in one line; the interruption comes from inside the save, at the chosen file, as
tests/signal_helpers.py does (deterministic, no sleeps)."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from conan_model.atomic import parse_leftover, this_machine
from train import checkpoint as ckpt_io
from train import cli

SAID = "removed what an interrupted checkpoint save left in"


def _args(out: Path, shared_data: Path, *sets: str) -> list[str]:
    """A 2-step pretraining run saving every step (a tokenizer trained on 100 rows)."""
    values = [f"output_dir={out}", f"data_root={shared_data / 'train'}", "data=news_en_raw", "tokenizer_vocab=400",
              "tokenizer_rows=100", "model_overrides.max_length=32", "seq_len=32", "batch_size=4", "steps=2",
              "save_every=1", "threads=1", *sets]  # fmt: skip
    return ["pretrain", *(a for s in values for a in ("--set", s))]


def ctrl_c_while_deleting(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """SIGINT (Ctrl-C) from inside shutil.rmtree of the folder whose name starts with ``name`` (an aside copy's ends
    in its writer's pid and a nonce), once one of its files is deleted and its state.json is not yet."""
    real = shutil.rmtree

    def rmtree(path: str | os.PathLike, *args, **kwargs) -> None:
        if Path(path).name.startswith(name) and Path(path).is_dir():
            next(p for p in sorted(Path(path).iterdir()) if p.name != ckpt_io.STATE_NAME).unlink()
            os.kill(os.getpid(), signal.SIGINT)
        real(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", rmtree)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """A finished 2-step run's output_dir (checkpoints step_1 and step_2), copied per test."""
    out = tmp_path_factory.mktemp("finished") / "out"
    assert cli.main(_args(out, shared_data)) == 0
    return out


def _aside_copy_left(finished: Path, tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch,
                     interrupt: Callable[[pytest.MonkeyPatch, str], None] = ctrl_c_while_deleting) -> Path:  # fmt: skip
    """Resumed from step_1, the run saves step_2 again: replace_dir renames the old step_2 aside, moves the new one
    into place and is interrupted deleting the aside copy, which leaves a half-deleted `.step_00000002.old-…`
    (``interrupt``: where the Ctrl-C comes from inside the save)."""
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    ckpts = out / "checkpoints"
    with monkeypatch.context() as patch:
        interrupt(patch, ".step_00000002.old-")
        assert cli.main([*_args(out, shared_data), "--resume", str(ckpts / "step_00000001")]) == 130
    (aside,) = ckpts.glob(".step_00000002.old-*")
    assert (aside / "state.json").is_file() and parse_leftover(aside.name).writer.pid == os.getpid()
    return out


def test_interrupted_replace_keeps_the_new_step_whole(finished, tmp_path, shared_data, one_thread, monkeypatch):
    """Before: replace_dir deleted the aside copy before moving the new folder into place, so a Ctrl-C during that
    deletion left no step_2 at all (only a half-deleted aside copy and a temporary folder the next save discards):
    the run had to redo the step. Now the new step is in place first, whole, and resumes."""
    out = _aside_copy_left(finished, tmp_path, shared_data, monkeypatch)
    assert [p.name for p in ckpt_io.checkpoint_dirs(out)] == ["step_00000001", "step_00000002"]
    assert ckpt_io.checkpoint_dirs(out)[-1] == out / "checkpoints" / "step_00000002"


def test_aside_copy_beside_a_whole_step_is_removed_at_the_next_start(finished, tmp_path, shared_data, one_thread,
                                                                     monkeypatch, caplog):  # fmt: skip
    """Before: the half-deleted aside copy of step_2 beside the whole step_2 stayed for good. The next start removes
    it, in one line."""
    out = _aside_copy_left(finished, tmp_path, shared_data, monkeypatch)
    ckpts = out / "checkpoints"
    (aside,) = ckpts.glob(".step_00000002.old-*")
    with caplog.at_level(logging.INFO, logger="train"):
        assert cli.main([*_args(out, shared_data), "--resume"]) == 0
    said = [r.getMessage() for r in caplog.records if SAID in r.getMessage()]
    assert said == [f"{SAID} {ckpts}: {aside.name} (the aside copy of a replaced checkpoint, which is whole)"]
    assert sorted(p.name for p in ckpts.iterdir()) == ["step_00000001", "step_00000002"]


def test_checkpoint_cut_short_while_deleted_is_removed_at_the_next_start(tmp_path, shared_data, one_thread,
                                                                         monkeypatch, caplog):  # fmt: skip
    """keep_last = 1: saving step_2 deletes step_1, and Ctrl-C comes after its first file went. Before: the half-deleted
    step_1 (state.json still there, the hash check names it damaged) stayed until a later save, and a run resumed at
    its last step saves nothing, so for good."""
    out, ckpts = tmp_path / "out", tmp_path / "out" / "checkpoints"
    args = _args(out, shared_data, "keep_last=1")
    with monkeypatch.context() as patch:
        ctrl_c_while_deleting(patch, "step_00000001")
        assert cli.main(args) == 130
    assert (ckpts / "step_00000001" / "state.json").is_file()
    assert not (ckpts / "step_00000001" / "config.json").exists()
    with caplog.at_level(logging.INFO, logger="train"):
        assert cli.main([*args, "--resume"]) == 0
    said = [r.getMessage() for r in caplog.records if SAID in r.getMessage()]
    assert said == [f"{SAID} {ckpts}: step_00000001 (an older checkpoint cut short while it was deleted)"]
    assert sorted(p.name for p in ckpts.iterdir()) == ["step_00000002"]


def test_a_damaged_checkpoint_named_by_resume_is_kept_to_be_named(finished, tmp_path, shared_data, one_thread):
    """Only leftovers go: a damaged older checkpoint passed to --resume is not removed but named damaged."""
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    older = out / "checkpoints" / "step_00000001"
    (older / "optimizer.pt").write_bytes(b"damaged")
    assert cli.main([*_args(out, shared_data), "--resume", str(older)]) == 2
    assert (older / "state.json").is_file()


def test_an_older_checkpoint_whose_bytes_differ_is_not_taken_for_a_leftover(finished, tmp_path, shared_data,
                                                                            one_thread, caplog):  # fmt: skip
    """A deletion removes files, it does not change their bytes: an older checkpoint holding every recorded file
    with other contents (edited by hand, a bit flip) was not left by an interrupted save and stays, to be named
    damaged if it is ever resumed from. Before: any hash mismatch was deleted as "cut short"."""
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    older = out / "checkpoints" / "step_00000001"
    weights = older / "optimizer.pt"
    data = weights.read_bytes()
    weights.write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))  # one bit pattern flipped, the size kept
    with caplog.at_level(logging.INFO, logger="train"):
        assert cli.main([*_args(out, shared_data), "--resume"]) == 0
    assert not [r for r in caplog.records if SAID in r.getMessage()]
    assert (older / "optimizer.pt").is_file()


def ctrl_c_between_the_renames(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """SIGINT (Ctrl-C) right after replace_dir renamed a folder aside to a name starting with ``name``, before the new
    one is in place."""
    real = os.rename

    def rename(src: str | os.PathLike, dst: str | os.PathLike) -> None:
        real(src, dst)
        if Path(dst).name.startswith(name):
            os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(os, "rename", rename)


def _gone_pid() -> int:
    """The id of a process that has ended."""
    return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                              check=True).stdout)  # fmt: skip


def test_a_final_set_aside_by_an_interrupted_export_is_put_back(finished, tmp_path, shared_data, one_thread,
                                                                 monkeypatch, caplog):  # fmt: skip
    """Review: an export killed between replace_dir's renames left `.final.old-<pid>-<nonce>@<machine>` and no
    `final`, and nothing removed or named it (the fixed `.old-final` before was deleted by the next export). The next
    start puts it back, in one line, and the run exports `final` again over it."""
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    with monkeypatch.context() as patch:
        ctrl_c_between_the_renames(patch, ".final.old-")
        assert cli.main([*_args(out, shared_data), "--resume"]) == 130
    (aside,) = out.glob(".final.old-*")
    assert not (out / "final").exists() and parse_leftover(aside.name).writer == (os.getpid(), this_machine())
    killed = aside.with_name(f".final.old-{_gone_pid()}-0123456789ab@{this_machine()}")
    aside.rename(killed)  # as a process killed there leaves it (this test's own still runs)
    with caplog.at_level(logging.INFO, logger="train"):
        assert cli.main([*_args(out, shared_data), "--resume"]) == 0
    said = [r.getMessage() for r in caplog.records if "interrupted export" in r.getMessage()]
    assert said == [f"cleared what an interrupted export left beside {out / 'final'}: {killed.name} (the previous "
                    "copy, set aside by a replacement that was killed: put back as final)"]  # fmt: skip
    assert (out / "final" / "model.safetensors").is_file() and not list(out.glob(".final.old-*"))


def test_a_finished_model_set_aside_is_put_back_before_a_run_could_train_over_it(finished, tmp_path, shared_data,
                                                                                 one_thread, caplog):  # fmt: skip
    """The only thing left of a finished run (its checkpoints deleted) is its `final`, set aside by an export of an
    earlier version killed between its renames (`.old-final`). It is put back first, so the run is refused as for any
    finished model, instead of training a new one over it."""
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    shutil.rmtree(out / "checkpoints")
    (out / "final").rename(out / ".old-final")
    with caplog.at_level(logging.INFO, logger="train"):
        assert cli.main(_args(out, shared_data)) == 2
    said = [r.getMessage() for r in caplog.records if "interrupted export" in r.getMessage()]
    assert said == [f"cleared what an interrupted export left beside {out / 'final'}: .old-final (the previous copy, "
                    "set aside by a replacement that was killed: put back as final)"]  # fmt: skip
    assert (out / "final" / "model.safetensors").is_file() and not (out / ".old-final").exists()


def test_aside_copies_named_as_before_are_removed_where_that_version_removed_them(finished, tmp_path, shared_data,
                                                                                  one_thread, caplog):  # fmt: skip
    """`.old-final` beside `final` and `.old-step_*` beside its whole step, as replace_dir named its aside copies
    before each call had its own, are removed at the next start with the lines that name them (that version's next
    export, and its start, removed them); they were left for good since the names changed."""
    out = tmp_path / "out"
    shutil.copytree(finished, out)
    ckpts = out / "checkpoints"
    shutil.copytree(out / "final", out / ".old-final")
    shutil.copytree(ckpts / "step_00000002", ckpts / ".old-step_00000002")
    with caplog.at_level(logging.INFO, logger="train"):
        assert cli.main([*_args(out, shared_data), "--resume"]) == 0
    said = [r.getMessage() for r in caplog.records if "interrupted" in r.getMessage()]
    assert said == [f"cleared what an interrupted export left beside {out / 'final'}: .old-final (a replaced copy: "
                    f"removed)", f"{SAID} {ckpts}: .old-step_00000002 (the aside copy of a replaced checkpoint, which "
                    "is whole)"]  # fmt: skip
    assert not (out / ".old-final").exists() and sorted(p.name for p in ckpts.iterdir()) == ["step_00000001",
                                                                                             "step_00000002"]


def test_a_checkpoint_set_aside_by_an_interrupted_save_is_put_back(finished, tmp_path, shared_data, one_thread,
                                                                    monkeypatch, caplog, capsys):  # fmt: skip
    """Resumed from step_1, the run saves step_2 again and is killed between replace_dir's renames: step_2 is set
    aside and the new one not yet in place. Before stop 63 the aside copy (a whole checkpoint) was neither put back
    nor named, and `--resume` went back to step_1. Now the next start puts it back and resumes from it."""
    out = _aside_copy_left(finished, tmp_path, shared_data, monkeypatch, ctrl_c_between_the_renames)
    ckpts = out / "checkpoints"
    (aside,) = ckpts.glob(".step_00000002.old-*")
    assert not (ckpts / "step_00000002").exists()
    with caplog.at_level(logging.INFO, logger="train"):
        assert cli.main([*_args(out, shared_data), "--resume"]) == 0
    said = [r.getMessage() for r in caplog.records if "put back" in r.getMessage()]
    assert said == [f"put back {aside} as step_00000002 (the checkpoint a save was replacing when it was killed)"]
    assert f"resumed from {ckpts / 'step_00000002'} at step 2" in capsys.readouterr().out
    assert sorted(p.name for p in ckpts.iterdir() if not p.name.startswith(".tmp-")) == ["step_00000001",
                                                                                         "step_00000002"]


def test_a_leftover_the_os_will_not_remove_is_named_and_the_run_goes_on(finished, tmp_path, shared_data, one_thread,
                                                                        monkeypatch, caplog):  # fmt: skip
    """An aside copy the OS refuses to delete (another user's, in a shared output_dir: root here, so the refusal is
    injected) is one line naming it and stays; before stop 63 the PermissionError stopped the run."""
    out = _aside_copy_left(finished, tmp_path, shared_data, monkeypatch)
    ckpts = out / "checkpoints"
    (aside,) = ckpts.glob(".step_00000002.old-*")
    real = shutil.rmtree

    def refuse(path: str | os.PathLike, *args, **kwargs) -> None:
        if Path(path) == aside:
            raise PermissionError(13, "Permission denied", str(path))
        real(path, *args, **kwargs)

    monkeypatch.setattr(shutil, "rmtree", refuse)
    with caplog.at_level(logging.INFO, logger="train"):
        assert cli.main([*_args(out, shared_data), "--resume"]) == 0
    said = [r.getMessage() for r in caplog.records if "could not remove" in r.getMessage()]
    assert said == [f"could not remove {aside}, the aside copy of a replaced checkpoint, which is whole (Permission "
                    "denied): delete it by hand"]  # fmt: skip
    assert aside.is_dir() and not [r for r in caplog.records if SAID in r.getMessage()]
