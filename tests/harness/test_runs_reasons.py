"""harness.runs.no_score_reason: the one line a leaderboard or regression report gives a task without a score."""

from __future__ import annotations

from pathlib import Path

from harness.runs import REASON_CHARS, no_score_reason, shown_path


def test_a_long_reason_is_cut_at_a_word_and_marked_after_the_data_root_is_shortened(tmp_path: Path) -> None:
    """A user walk: "…the hub is unreachable; see `harness list of)" in a leaderboard's notes, cut mid-word with no
    sign (before stop 63), and a cut through the data root's path could leave the machine's path half replaced."""
    root = str(tmp_path / "deep" / "data")
    words = " ".join(f"word{i}" for i in range(60))
    error = f"{root}/zh/PAWSX is not prepared in the datasets cache and the hub is unreachable; {words}\nTraceback"
    said = no_score_reason({"status": "error", "error": error, "data_root": root})
    assert said.startswith(f"status error: {shown_path(root)}/zh/PAWSX is not prepared") and root not in said
    assert said.endswith(" …") and len(said) <= len("status error: ") + REASON_CHARS + 2
    assert said.removesuffix(" …").rsplit(" ", 1)[1].startswith("word") and "Traceback" not in said
    assert f"{said.removesuffix(' …').rsplit(' ', 1)[1]} " in error  # the last word kept is whole
    short = no_score_reason({"status": "missing", "reason": "no data for PAWSX"})
    assert short == "status missing: no data for PAWSX"
