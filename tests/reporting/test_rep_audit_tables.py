"""What the reports showed wrong before stop 47 (audit of the report renderers), each on real minilm runs:
a failed re-evaluation's stale timings, identical scores set apart after a rerun with other --dims, task-type
means over fewer tasks unmarked, a `|` in a run's name splitting table cells, and renormalised MRL results drawn
beside raw prefixes."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from harness.cli import main
from harness.data import default_data_root
from harness.runs import RENORMALISED_VIEW, cell_text, md_table, open_run


def _run(out: Path, name: str, tasks: str, *extra: str, data: Path | None = None) -> int:
    return main(["run", "--tasks", tasks, "--model", "minilm", "--data-dir", str(data or default_data_root()),
                 "--out", str(out), "--run-name", name, "--no-progress", *extra])  # fmt: skip


def _report(out: Path, *runs: Path) -> str:
    assert main(["report", *map(str, runs), "--out", str(out)]) == 0
    return re.sub(r" +", " ", (out / "efficiency.md").read_text(encoding="utf-8"))


def test_a_failed_re_evaluation_leaves_no_timings_behind(tmp_path: Path) -> None:
    """STS16 evaluated, then its gold scores all set to one value (Spearman undefined: the task fails). Before,
    efficiency.json kept the first evaluation's figures, which `harness report` and regress's efficiency table
    showed as the failed run's. Since stop 68 a whole earlier result stays over a failed evaluation, with its own
    timings; here its result file is gone first, so the task is recorded failed."""
    data = tmp_path / "data"
    shutil.copytree(default_data_root() / "en" / "STS16", data / "en" / "STS16")
    assert _run(tmp_path, "r", "STS16", data=data) == 0
    run = open_run(tmp_path / "r")
    first = run.read_efficiency()["STS16"]
    gold = data / "en" / "STS16" / "test.jsonl"
    rows = [json.loads(line) for line in gold.read_text(encoding="utf-8").splitlines()]
    gold.write_text("".join(json.dumps({**row, "score": 3.0}) + "\n" for row in rows), encoding="utf-8")
    assert _run(tmp_path, "r", "STS16", "--batch-size", "8", data=data) == 1
    assert "failed_again" in run.read_run()["tasks"]["STS16"] and run.read_efficiency()["STS16"] == first
    run.result_path("STS16").unlink()
    assert _run(tmp_path, "r", "STS16", "--batch-size", "8", data=data) == 1
    assert run.read_run()["tasks"]["STS16"]["status"] == "failed"
    assert "STS16" not in run.read_efficiency()
    # a directory written before the fix: the stale entry put back is still not shown
    stale = {"STS16": {"texts": 94, "encoded_texts": 94, "model_s": 1.0, "wall_s": 2.0, "unique_texts": 94}}
    (tmp_path / "r" / "efficiency.json").write_text(json.dumps(stale), encoding="utf-8")
    assert run.finished_efficiency() == {}
    assert "| STS16" not in _report(tmp_path / "report", tmp_path / "r").split("## Throughput per task")[1]


def test_other_dims_alone_keep_a_task_in_its_row(tmp_path: Path) -> None:
    """STS16 with --dims 64, then STS12 into the same directory without dims: STS16's full score is the run's
    settings' (dims move no full-width score). Before, summary, leaderboard and efficiency report called it kept
    from other settings (`§`), left it out of the row's means and ranked the run apart from a copy of itself."""
    assert _run(tmp_path, "a", "STS16", "--dims", "64") == 0
    assert _run(tmp_path, "a", "STS12") == 0
    summary = (tmp_path / "a" / "summary.md").read_text(encoding="utf-8")
    assert "§" not in summary
    board = tmp_path / "board.md"
    assert main(["leaderboard", str(tmp_path / "a"), "--out", str(board)]) == 0
    assert "§" not in board.read_text(encoding="utf-8")
    text = _report(tmp_path / "report", tmp_path / "a")
    assert "Avg score ×100 (2 tasks)" in text and "kept from runs with other settings" not in text


def test_a_task_type_column_over_fewer_tasks_is_marked(tmp_path: Path) -> None:
    """Two STS tasks in one run, one in the other: the STS column of the second row is a mean over one of the two
    tasks its header counts. Before, only the row's overall means carried `†`."""
    assert _run(tmp_path, "two", "STS16,STS12") == 0
    assert _run(tmp_path, "one", "STS16") == 0
    board = tmp_path / "board.md"
    assert main(["leaderboard", str(tmp_path / "two"), str(tmp_path / "one"), "--out", str(board)]) == 0
    rows = [line for line in board.read_text(encoding="utf-8").splitlines() if line.startswith("| ")]
    one = next(r for r in rows if "[one]" in r and "/2" in r)
    two = next(r for r in rows if "[two]" in r and "/2" in r)
    assert one.rstrip(" |").endswith("†") and not two.rstrip(" |").endswith("†"), (one, two)


def test_a_bar_in_a_run_name_stays_in_its_cell(tmp_path: Path) -> None:
    """A run folder named `p|q`: before, its label split into an extra column in every table."""
    assert _run(tmp_path, "p|q", "STS16") == 0
    board = tmp_path / "board.md"
    assert main(["leaderboard", str(tmp_path / "p|q"), "--out", str(board)]) == 0
    text = _report(tmp_path / "report", tmp_path / "p|q")
    for table_text in (board.read_text(encoding="utf-8"), text):
        for block in re.split(r"\n\n+", table_text):
            lines = [line for line in block.splitlines() if line.startswith("|")]
            cells = {len(re.split(r"(?<!\\)\|", line)) for line in lines}
            assert len(cells) <= 1, block  # every row of a table has the header's columns
    assert "p\\|q" in text
    assert cell_text("a|b\nc") == "a\\|b c" and cell_text(cell_text("a|b")) == "a\\|b" and cell_text(3) == 3
    assert re.sub(r" +", " ", md_table([["x|y", 1]], ["h|", "n"]).splitlines()[2]) == "| x\\|y | 1 |"


def test_cjk_cells_line_up_by_display_width() -> None:
    """A C-MTEB user's walk (stop 63): a Chinese model name shifted its row's bars in summary.md read raw, as
    tabulate counted each CJK character one column wide (two on a terminal) without wcwidth (a dependency since
    stop 64)."""
    from wcwidth import wcswidth

    lines = md_table([["北京模型", 0.5], ["minilm", 0.25]], ["model", "score"]).splitlines()
    assert len({wcswidth(line) for line in lines}) == 1, lines


def test_renormalised_mrl_results_are_not_drawn_beside_raw_prefixes(tmp_path: Path) -> None:
    """A run whose dim results were renormalised (before stop 35; its identity has dims and no dim_view) beside a
    run of raw prefixes: before, both curves were drawn on one chart with no note."""
    assert _run(tmp_path, "new", "STS16", "--dims", "64") == 0
    shutil.copytree(tmp_path / "new", tmp_path / "old")
    record = json.loads((tmp_path / "old" / "run.json").read_text(encoding="utf-8"))
    for where in (record, record["tasks"]["STS16"]):
        where["identity"].pop("dim_view", None)
    (tmp_path / "old" / "run.json").write_text(json.dumps(record), encoding="utf-8")
    text = _report(tmp_path / "report", tmp_path / "new", tmp_path / "old")
    assert (f"Left out of the STS curves because a run's dim results are not raw prefixes: STS16 in "
            f"all-MiniLM-L6-v2 [old] (dim_view {RENORMALISED_VIEW})") in text
    assert "**STS**: mean score" not in text


def test_a_task_timed_with_another_world_size_is_left_out_of_the_row(tmp_path: Path) -> None:
    """STS16 timed by a 2-process torchrun run, then STS12 added by a one-process run: run.json's header says
    world size 1. Before (audit, stop 47) STS16's 2-process rate fed the row's average under `world size 1`; now
    each task records the processes that timed it and the report leaves a task timed otherwise out of the times
    (its score stays in the row), with a note."""
    assert _run(tmp_path, "r", "STS16,STS12") == 0
    run = open_run(tmp_path / "r")
    assert {e["world_size"] for e in run.read_efficiency().values()} == {1}
    figures = run.read_efficiency()
    figures["STS16"]["world_size"] = 2  # as the torchrun run recorded it
    (tmp_path / "r" / "efficiency.json").write_text(json.dumps(figures), encoding="utf-8")
    text = _report(tmp_path / "report", tmp_path / "r")
    assert ("all-MiniLM-L6-v2 [r]: left out of the times as timed by another number of processes than the run's 1: "
            "STS16 (world size 2).") in text
    # its score is the row's all the same (scores do not depend on the world size)
    assert "Avg score ×100 (2 tasks)" in text and "| STS16 (world size 2)" in text


def test_regress_shows_no_efficiency_delta_between_tasks_timed_with_other_world_sizes(tmp_path: Path) -> None:
    """The candidate's STS16 kept from a 2-process torchrun run in a one-process run's folder: both run.json
    headers say world size 1. Before (stop 47's not-done item), regress showed the 2-process rate's Δ against
    the one-process baseline as the model's change, with no warning."""
    assert _run(tmp_path, "base", "STS16,STS12", "--no-cache") == 0
    shutil.copytree(tmp_path / "base", tmp_path / "cand")
    figures = open_run(tmp_path / "cand").read_efficiency()
    figures["STS16"]["world_size"] = 2
    (tmp_path / "cand" / "efficiency.json").write_text(json.dumps(figures), encoding="utf-8")
    out = tmp_path / "r.md"
    assert main(["regress", "--baseline", str(tmp_path / "base"), "--candidate", str(tmp_path / "cand"),
                 "--n-boot", "20", "--out", str(out)]) == 0  # fmt: skip
    text = re.sub(r" +", " ", out.read_text(encoding="utf-8"))
    table = text.split("## Efficiency")[1].split("## Warnings")[0]
    sts16 = next(line for line in table.splitlines() if line.startswith("| STS16 "))
    sts12 = next(line for line in table.splitlines() if line.startswith("| STS12 "))
    assert sts16.count("— (world size 1 → 2)") == 3, sts16
    assert "world size" not in sts12 and "%" in sts12  # the task timed alike keeps its Δ
    assert ("timed by different numbers of processes, so no efficiency Δ is shown: STS16 (world size 1 → 2) "
            "(a torchrun rate is all processes together)") in text


def test_one_score_reads_alike_in_every_report(tmp_path: Path) -> None:
    """A review (stop 64): the leaderboard showed 0.78125 half up as 78.13 (its rule since the walk that read a
    published 48.145 as 48.14) while summary.md, the efficiency report and regress printed 78.12 from the binary
    float. One rule now (harness.runs.percent), checked on a real run whose score is set to that halfway value."""
    from harness.runs import percent
    from harness.summary import render_summary

    assert (percent(0.78125), percent(0.48145), percent(0.789935)) == ("78.13", "48.15", "78.99")
    assert _run(tmp_path / "runs", "a", "STS16") == 0
    run_json = tmp_path / "runs" / "a" / "run.json"
    record = json.loads(run_json.read_text(encoding="utf-8"))
    record["tasks"]["STS16"]["main_score"] = 0.78125
    run_json.write_text(json.dumps(record), encoding="utf-8")
    shutil.copytree(tmp_path / "runs" / "a", tmp_path / "runs" / "b")
    assert "| 78.13 |" in re.sub(r" +", " ", render_summary(open_run(tmp_path / "runs" / "a")))
    assert main(["leaderboard", str(tmp_path / "runs" / "a"), "--out", str(tmp_path / "lb.md")]) == 0
    assert "78.13" in (tmp_path / "lb.md").read_text(encoding="utf-8")
    assert "| 78.13 " in _report(tmp_path / "rep", tmp_path / "runs" / "a")
    main(["regress", "--baseline", str(tmp_path / "runs" / "a"), "--candidate", str(tmp_path / "runs" / "b"),
          "--out", str(tmp_path / "r.md")])  # fmt: skip
    assert "| 78.13 | 78.13 |" in re.sub(r" +", " ", (tmp_path / "r.md").read_text(encoding="utf-8"))
    for text in ((tmp_path / "lb.md").read_text(encoding="utf-8"), (tmp_path / "r.md").read_text(encoding="utf-8")):
        assert "78.12" not in text
