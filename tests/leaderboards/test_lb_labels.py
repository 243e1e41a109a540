"""Rows of one board told apart: run folders of one name under different parents, and runs of one model whose
settings differ."""

from __future__ import annotations

import re
from pathlib import Path

from lb_helpers import make_run

from harness.cli import main

TYPES = {"STS16": "STS"}


def test_run_folders_of_one_name_are_told_apart_by_their_parents(tmp_path: Path, capsys) -> None:
    """Before: runs/a/minilm and nightly/minilm could not go on one board ("two rows share a label")."""
    a = make_run(tmp_path / "runs" / "a", "minilm", {"STS16": 0.80}, TYPES)
    nightly = make_run(tmp_path / "nightly", "minilm", {"STS16": 0.70}, TYPES)
    other = make_run(tmp_path / "runs" / "b", "other", {"STS16": 0.75}, TYPES)
    out = tmp_path / "lb.md"
    assert main(["leaderboard", str(a), str(nightly), str(other), "--out", str(out)]) == 0
    text = re.sub(r" +", " ", out.read_text(encoding="utf-8"))
    assert "| 1 | model [a/minilm] (1 mirror) |" in text and "| 3 | model [nightly/minilm] (1 mirror) |" in text
    assert "| model [other] (1 mirror) |" in text  # a folder name no other run has keeps its plain label
    assert str(tmp_path) not in text  # no machine path in a label
    assert main(["leaderboard", str(a), str(a), "--out", str(tmp_path / "twice.md")]) == 2
    err = capsys.readouterr().err
    assert f"run {a}: given twice" in err and "Traceback" not in err


def test_the_fewest_distinguishing_folders_below_the_common_parent(tmp_path: Path) -> None:
    """x/minilm is a trailing part of y/x/minilm: the shorter path is named from the folder holding both."""
    short = make_run(tmp_path / "x", "minilm", {"STS16": 0.80}, TYPES)
    deep = make_run(tmp_path / "y" / "x", "minilm", {"STS16": 0.70}, TYPES)
    out = tmp_path / "lb.md"
    assert main(["leaderboard", str(short), str(deep), "--out", str(out)]) == 0
    text = re.sub(r" +", " ", out.read_text(encoding="utf-8"))
    assert "| model [x/minilm] (1 mirror) |" in text and "| model [y/x/minilm] (1 mirror) |" in text
