"""harness.runs.folder_tails: the fewest trailing folders that tell rows of one name apart (leaderboard and report
labels, published rows from several folders)."""

from __future__ import annotations

from pathlib import Path

from harness.runs import folder_tails


def test_each_row_names_the_fewest_folders_that_no_other_row_of_its_name_ends_in(tmp_path: Path) -> None:
    folders = [tmp_path / "a" / "r" / "m", tmp_path / "b" / "r" / "m", tmp_path / "c" / "s" / "m", tmp_path / "m"]
    assert folder_tails(["x", "x", "x", "y"], folders) == ["a/r/m", "b/r/m", "s/m", "m"]
    # another name's folders are not compared: one row of a name keeps its folder's name
    assert folder_tails(["x", "y"], folders[:2]) == ["m", "m"]
    # a folder that is a trailing part of another is named from the folder holding both, never absolutely
    assert folder_tails(["x", "x"], [tmp_path / "x" / "m", tmp_path / "y" / "x" / "m"]) == ["x/m", "y/x/m"]
