"""summary.md: its coverage line (every task the directory records), the Matryoshka table (every finished task,
shares only where they mean something), cells as written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from harness.cli import main
from harness.data import default_data_root
from harness.runs import RunDir
from harness.summary import _dims_table, render_summary


class _Scores:
    """The one thing the table asks a run directory: a task's recorded dim scores."""

    def __init__(self, scores: dict[str, float]) -> None:
        self.scores = scores

    def dim_scores(self, name: str, task: dict[str, Any]) -> dict[int, float]:
        return {64: self.scores[name]}


def test_dims_table_keeps_zero_and_negative_full_scores_without_a_share() -> None:
    """Before: a full score of exactly 0 dropped its task, a negative one printed -2.00 of -4.00 as '50.0%', and
    tabulate turned a full score of 80.60 into 80.6."""
    record = {"tasks": {"neg": {"status": "ok", "main_score": -0.04}, "zero": {"status": "ok", "main_score": 0.0},
                        "pos": {"status": "ok", "main_score": 0.806}, "failed": {"status": "failed"}}}  # fmt: skip
    record["tasks"] |= {"near": {"status": "ok", "main_score": 0.0248}, "below": {"status": "ok", "main_score": 0.5}}
    scores = {"neg": -0.02, "zero": 0.01, "pos": 0.7254, "near": 0.0263, "below": -0.01}
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in _dims_table(_Scores(scores), record, [64]).splitlines()
            if line.startswith("| ") and not line.startswith("| task")}  # fmt: skip
    assert rows == {"neg": ["-2.00", "-4.00"], "zero": ["1.00", "0.00"], "pos": ["72.54 (90.0%)", "80.60"],
                    "near": ["2.63", "2.48"], "below": ["-1.00", "50.00"]}  # a C-MTEB walk, stop 70: (106.0%) before


def test_task_table_keeps_score_digits_as_written(tmp_path: Path) -> None:
    """Before: tabulate reparsed the score cells, so 83.50 was printed 83.5 beside 76.87."""
    run = RunDir(tmp_path, "org/model", "rev")
    run.write_run({"tasks": {"STS13": {"status": "ok", "main_score": 0.835, "source": "mirror"},
                             "STS16": {"status": "ok", "main_score": 0.76874, "source": "mirror"}}})  # fmt: skip
    run.update_efficiency("STS13", {"wall_s": 0.0, "encoded_texts": 0, "cache_hits": 112})
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in render_summary(run).splitlines() if line.startswith("| STS")}  # fmt: skip
    assert rows["STS13"][3:6] == ["83.50", "0.0", "0"] and rows["STS16"][3] == "76.87"


def test_coverage_is_what_the_directory_holds_after_a_subset_rerun(tmp_path: Path) -> None:
    """Before stop 63: `--suite S --tasks A` into the suite's folder wrote its own plan as the coverage of summary.md
    and run.json (`local-en: 1/1 tasks`) above a table of every task the folder holds."""
    data = tmp_path / "data"
    for name in ("STS16", "STS12"):
        shutil.copytree(default_data_root() / "en" / name, data / "en" / name)
    (data / "en" / "Broken").mkdir()
    (data / "en" / "Broken" / "task.json").write_text("{", encoding="utf-8")
    argv = ["run", "--model", "minilm", "--suite", "local-en", "--data-dir", str(data), "--out", str(tmp_path),
            "--run-name", "r", "--no-progress", "--no-cache"]  # fmt: skip
    assert main(argv) == 1  # the broken folder fails the run (since stop 67)
    assert main([*argv, "--tasks", "STS16", "--overwrite"]) == 0
    line = "local-en: 2/3 tasks — 0 official, 2 mirror, 1 missing: Broken"
    assert json.loads((tmp_path / "r" / "run.json").read_text())["coverage"] == line
    assert f"- coverage: {line}\n" in (tmp_path / "r" / "summary.md").read_text()


def test_coverage_names_a_task_that_failed(tmp_path: Path) -> None:
    """A walk (stop 67): a run of two tasks, one failing on a bad row, read `tasks: 2/2 tasks — 0 official, 2
    mirror, 0 missing` in summary.md and on the console, the failure said only on the next line."""
    data = tmp_path / "data"
    for name in ("STS16", "STS12"):
        shutil.copytree(default_data_root() / "en" / name, data / "en" / name)
    rows = (data / "en" / "STS12" / "test.jsonl").read_text(encoding="utf-8").splitlines()
    rows[1] = json.dumps({**json.loads(rows[1]), "score": 9.0})  # outside score_range [0, 5]: STS12 fails
    (data / "en" / "STS12" / "test.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    argv = ["run", "--model", "minilm", "--tasks", "STS16,STS12", "--data-dir", str(data), "--out", str(tmp_path),
            "--run-name", "r", "--no-progress", "--no-cache"]  # fmt: skip
    assert main(argv) == 1
    line = "tasks: 2/2 tasks — 0 official, 2 mirror, 0 missing; 1 failed: STS12"
    assert json.loads((tmp_path / "r" / "run.json").read_text())["coverage"] == line
    assert f"- coverage: {line}\n" in (tmp_path / "r" / "summary.md").read_text()
