"""A task a run directory kept from a run with other settings: marked `§` with what differs, and counted as a gap."""

from __future__ import annotations

import re
from pathlib import Path

from lb_helpers import make_run

from harness.cli import main
from harness.runs import other_settings, read_json
from leaderboards.build import build_board
from leaderboards.table import build_rows

TYPES = {"STS16": "STS", "STS13": "STS"}
RUN = {"model_fingerprint": "f", "dtype": "float32", "max_length": 256, "dims": [], "mteb": "2.26.24"}


def _ident(**changes: object) -> dict:
    return {"identity": {**RUN, **changes, "source": "mirror", "data": "sha256:x"}}


def _runs(tmp_path: Path) -> tuple[Path, Path]:
    """a's STS16 (the best score) was computed with 8 tokens, not the 256 its run records; a wins STS13."""
    a = make_run(tmp_path, "a", {"STS16": 0.85, "STS13": 0.80}, TYPES, identity=RUN,
                 data={"STS16": _ident(max_length=8), "STS13": _ident()})  # fmt: skip
    b = make_run(tmp_path, "b", {"STS16": 0.81, "STS13": 0.70}, TYPES, identity=RUN,
                 data={"STS16": _ident(), "STS13": _ident()})  # fmt: skip
    return a, b


def test_kept_task_counts_as_a_gap_of_its_row(tmp_path: Path) -> None:
    """Before: a's STS16 under 8 tokens ranked as a's own score: a took both tasks' points (2 against 0)."""
    board = build_board(list(_runs(tmp_path)), [], None, False)
    rows = {r.entry.label: r for r in build_rows(board.entries, board.tasks, board.types, board.groups)}
    a, b = rows["model [a]"], rows["model [b]"]
    assert a.entry.kept == {"STS16": 0.85} and "STS16" not in a.entry.scores
    assert (a.points, b.points) == (1.0, 1.0)  # a: STS13 only; b: STS16, ranked alone
    assert (a.covered, a.mean_tasks) == (1, 0.80) and (b.covered, b.total) == (2, 2)


def test_mark_and_note_say_which_setting_differs(tmp_path: Path) -> None:
    a, b = _runs(tmp_path)
    assert other_settings(read_json(a / "run.json")) == {"STS16": "max_length 8"}  # what summary.md lists too
    out = tmp_path / "lb.md"
    assert main(["leaderboard", str(a), str(b), "--out", str(out)]) == 0
    text = re.sub(r" +", " ", out.read_text(encoding="utf-8"))
    assert "| STS16 | STS | cosine_spearman | 85.00*§ | 81.00* |" in text
    assert "| model [a] (1 mirror) | 1/2 | 80.00† | 80.00† | 1 | 80.00† |" in text
    (note,) = [line for line in text.splitlines() if line.startswith("- § model [a]")]
    assert f"kept from an earlier run into …/{a.name} under other settings" in note
    assert note.endswith("STS16 (max_length 8).")
    assert "`§` **other settings**" in text and "§ model [b]" not in text


def test_no_mark_without_kept_tasks(tmp_path: Path) -> None:
    _, b = _runs(tmp_path)
    out = tmp_path / "lb.md"
    assert main(["leaderboard", str(b), "--out", str(out)]) == 0
    assert "§" not in out.read_text(encoding="utf-8")
