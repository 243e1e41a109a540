"""conan_model.atomic: the one atomic write every package uses (run directories, checkpoints, pools, reports)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conan_model.atomic import atomic_write, atomic_write_json, atomic_write_text


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
