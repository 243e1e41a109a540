"""An ablation report names the evaluation texts its training data holds, with the config's reason, as it names
dev/test overlap; a report written before the check (the committed ones) claims nothing about it."""

from __future__ import annotations

import json
from pathlib import Path

from reporting.ablation import render

REPO = Path(__file__).resolve().parents[2]
PAIR = {"train": "train/stsb_train_en", "task": "STSBenchmark", "shared": 12, "task_texts": 2550,
        "items_with_shared": 9, "task_items": 1379, "items": "pairs"}  # fmt: skip


def committed(name: str) -> dict:
    return json.loads((REPO / "reports" / "ablations" / name / "report.json").read_text(encoding="utf-8"))


def test_train_overlap_is_shown_with_the_reason_or_as_none() -> None:
    """Before: the report had no word on training data that holds test texts."""
    rep = {**committed("dhnm"), "train_test_overlap": {"pairs": [PAIR], "why_acceptable": "a reason"}}
    assert ("- **train/test overlap**: train/stsb_train_en and STSBenchmark share 12 of the task's 2550 texts (9 of "
            "its 1379 pairs). Accepted because: a reason") in render(rep)  # fmt: skip
    rep["train_test_overlap"] = {"pairs": [], "why_acceptable": None}
    assert "- train/test overlap: none (no text of the training data is in a dev or test task" in render(rep)


def test_a_report_from_before_the_check_claims_nothing_about_it() -> None:
    assert "train/test overlap" not in render(committed("softmask"))  # not rerun since the check


def test_the_dhnm_table_says_how_full_the_slots_started() -> None:
    """Since stop 36 a run's dhnm_summary.json says how many of the K slots its pools filled; the DHNM ablation's
    rerun (pools mined from every row) fills 2.85 of 3, 7 of 200 queries with none. Reports of summaries from
    before show a dash."""
    text = render(committed("dhnm"))
    assert "slots filled (none)" in text and "| static  | 0      | qa_zh  | static  | 3   | 2.85 (7)" in text
    old = committed("mrl_decoder")  # its summaries as stop 29 wrote them, before the coverage was recorded
    for arm in old["arms"].values():
        for seed in arm["dhnm"].values():
            for summary in seed.values():
                summary.pop("pools")
    assert "| off   | 0      | qa_en  | dynamic | 3   | —" in render(old)
