"""The gold record (harness/gold.py) is a report's input and never a reason to fail a task: a text column that
cannot be read leaves the item digests out and keeps the gold labels."""

from __future__ import annotations

from pathlib import Path

from harness.data import discover_tasks
from harness.gold import gold_labels
from harness.tasks import build_mirror

SAMPLE = Path(__file__).resolve().parents[2] / "harness" / "sample_data"


def test_an_unreadable_text_column_leaves_out_the_digests_not_the_gold():
    task = build_mirror(discover_tasks(SAMPLE)["STS16"])
    whole = gold_labels(task)
    assert len(whole["items"]) == len(whole["gold"]) == 47
    task.dataset["test"] = task.dataset["test"].remove_columns("sentence2")
    record = gold_labels(task)
    assert "items" not in record and "reason" not in record and record["gold"] == whole["gold"]
