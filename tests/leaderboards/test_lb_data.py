"""Runs that scored a task on different data: marked `‡`, named in a note, and left out of the Borda points."""

from __future__ import annotations

import re
from pathlib import Path

from lb_helpers import make_run

from harness.cli import main
from harness.runs import data_differences, data_value
from leaderboards.build import build_board
from leaderboards.table import build_rows

TYPES = {"STS16": "STS", "STS13": "STS"}
SAMPLE = {"sampling": "embedded sample (seed 42): 47 of 1186 rows of test.jsonl.", "split": ["test"]}
FULL = {"sampling": "all gold-scored pairs of the year's test files.", "split": ["test"]}


WHOLE = {"sampling": "all pairs of mteb's test split.", "split": ["test"], "full_split": True}


def _runs(tmp_path: Path, b_data: dict) -> tuple[Path, Path]:
    """a wins STS13, b wins STS16: one point each when both tasks are ranked, a alone ahead without STS16. STS13's
    mirror holds mteb's whole split (`full_split`), so it ranks against a published row."""
    a = make_run(tmp_path, "a", {"STS16": 0.79, "STS13": 0.80}, TYPES, data={"STS16": SAMPLE, "STS13": WHOLE})
    b = make_run(tmp_path, "b", {"STS16": 0.81, "STS13": 0.70}, TYPES, data={"STS16": b_data, "STS13": WHOLE})
    return a, b


def test_data_differences_compares_only_recorded_keys():
    assert data_differences([{"source": "mirror", **SAMPLE}, {"source": "mirror", **FULL}]) == ["sampling"]
    assert data_differences([{"source": "mirror", "split": ["test"]}, {"source": "official", "split": ["dev"]},
                             {"source": "mirror"}]) == ["source", "split"]  # fmt: skip
    assert data_differences([{"sampling": "x", "path": "/a"}, {"sampling": "x", "path": "/b"}, {}]) == []
    assert data_differences([]) == []


def test_data_differences_compares_the_recorded_data_identity():
    """Replaced rows behind an unchanged sampling note are other data; one file hash is the same rows whatever
    split name an older version recorded (a twinless mirror's dev rows were labelled "test" before stop 26)."""
    def mirror(data: str, split: str) -> dict:
        return {"source": "mirror", **SAMPLE, "split": [split], "identity": {"data": data}}

    assert data_differences([mirror("sha256:a", "test"), mirror("sha256:b", "test")]) == ["data"]
    assert data_differences([mirror("sha256:a", "test"), mirror("sha256:a", "dev")]) == []
    official = {"source": "official", "split": ["test"], "identity": {"data": "C-MTEB/ATEC@0a1b"}}
    assert data_differences([official, {**official, "split": ["dev"]}]) == ["split"]
    assert data_differences([official, {**official, "identity": {"data": "C-MTEB/ATEC@ffff"}}]) == ["data"]


def test_data_value_is_public_and_reads_what_data_differences_compares():
    """Before: the leaderboard's notes imported the private `harness.runs._data_value`."""
    record = {"source": "mirror", **SAMPLE, "identity": {"data": "sha256:a"}}
    assert data_value(record, "data") == "sha256:a" and data_value(record, "split") == ["test"]
    assert data_value({}, "data") is None


def test_task_on_different_data_earns_no_borda_points(tmp_path: Path):
    board = build_board(list(_runs(tmp_path, FULL)), [], None, False)
    assert board.mixed == {"STS16": ["sampling"]}
    points = {r.entry.label: r.points for r in build_rows(board.entries, board.tasks, board.types, board.groups)}
    assert points == {"model [a]": 1.0, "model [b]": 0.0}  # STS13 only
    same = build_board(list(_runs(tmp_path / "same", SAMPLE)), [], None, False)
    assert same.mixed == {} and same.notes == []
    points = {r.entry.label: r.points for r in build_rows(same.entries, same.tasks, same.types, same.groups)}
    assert points == {"model [a]": 1.0, "model [b]": 1.0}


def test_marks_and_note_name_the_runs_and_what_differs(tmp_path: Path):
    a, b = _runs(tmp_path, FULL)
    c = make_run(tmp_path, "c", {"STS16": 0.5}, TYPES, data={"STS16": SAMPLE})  # same data as a: grouped with it
    out = tmp_path / "lb.md"
    assert main(["leaderboard", str(a), str(b), str(c), "--published", "--out", str(out)]) == 0
    text = re.sub(r" +", " ", out.read_text(encoding="utf-8"))
    assert "| STS16 ‡ | STS | cosine_spearman |" in text
    assert "79.00*‡" in text and "81.00*‡" in text and "50.00*‡" in text and "80.00* |" in text
    assert "78.99 |" in text  # the published cell is not ours to mark (the note says it is not ranked either)
    # Borda over STS13 alone (published 80.60 > a > b, c has none); the means keep STS16 and carry ‡
    assert "| model [a] (2 mirror) | 2/2 | 79.50‡ | 79.50‡ | 2 | 79.50‡ |" in text
    assert "| model [c] (1 mirror) | 1/2 | 50.00†‡ | 50.00†‡ | 0 | 50.00†‡ |" in text
    (note,) = [line for line in text.splitlines() if line.startswith("- ‡ STS16")]
    assert "sampling differs" in note and "earns no Borda points in a ranking that holds rows of two of them" in note
    assert "model [a], model [c]: sampling `embedded sample (seed 42)" in note
    assert "model [b]: sampling `all gold-scored pairs" in note
    assert "`‡` **different data**" in text


def test_no_mark_when_the_data_agree(tmp_path: Path):
    a, b = _runs(tmp_path, {"sampling": SAMPLE["sampling"]})  # b's older record lacks split: not a difference
    out = tmp_path / "lb.md"
    assert main(["leaderboard", str(a), str(b), "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert "‡" not in text.split("## How to read this")[0] and "### Notes" not in text


def test_the_note_shows_the_data_identities_that_differ(tmp_path: Path):
    """Before: the note read `data `not recorded`` for every group, since it looked for a top-level `data` key while
    run.json records the data identity (a mirror's file hash) under the task's `identity`."""
    a = make_run(tmp_path, "a", {"STS16": 0.79}, TYPES, data={"STS16": {**SAMPLE, "identity": {"data": "sha256:aa"}}})
    b = make_run(tmp_path, "b", {"STS16": 0.81}, TYPES, data={"STS16": {**SAMPLE, "identity": {"data": "sha256:bb"}}})
    board = build_board([a, b], [], None, False)
    assert board.mixed == {"STS16": ["data"]}
    (note,) = [n for n in board.notes if n.startswith("‡ STS16")]
    assert note.endswith("— model [a]: data `sha256:aa`; model [b]: data `sha256:bb`.")


def test_a_mirror_not_known_to_be_whole_does_not_rank_against_published_rows(tmp_path: Path):
    """Audit, stop 48: a mirror whose wholeness is unknown (`full_split` null: mteb's statistics lack a count to
    compare, e.g. HotpotQAHardNegatives; or a record from before stop 35) ranked against the published full-split
    rows unmarked: a 100-query sample took Borda rank 1. Now only `full_split: true` ranks with them."""
    a = make_run(tmp_path, "a", {"STS13": 0.95}, TYPES, data={"STS13": {"split": ["test"], "full_split": None}})
    out = tmp_path / "lb.md"
    assert main(["leaderboard", str(a), "--published", "--out", str(out)]) == 0
    text = re.sub(r" +", " ", out.read_text(encoding="utf-8"))
    assert "| STS13 ‡ |" in text and "95.00*‡" in text
    assert "‡ STS13: our runs scored a mirror whose rows are not mteb's (its row counts: not known to be mteb's " \
           "whole split)" in text  # fmt: skip
