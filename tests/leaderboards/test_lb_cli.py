"""`harness leaderboard` end to end on fabricated run directories: coverage, gaps, mirrors, dims, exit codes."""

from __future__ import annotations

import re
from pathlib import Path

from lb_helpers import make_run

from harness.cli import main

TYPES = {"STS16": "STS", "STS13": "STS", "SciFact": "Retrieval"}


def test_leaderboard_markdown(tmp_path: Path):
    a = make_run(tmp_path, "a", {"STS16": 0.79, "STS13": 0.80, "SciFact": 0.6}, TYPES,
                 dims={64: {"STS16": 0.7, "STS13": 0.75, "SciFact": 0.5}})  # fmt: skip
    b = make_run(tmp_path, "b", {"STS16": 0.81}, TYPES, source="official", missing=("SciFact",), model="org/other")
    out = tmp_path / "lb.md"
    assert main(["leaderboard", str(a), str(b), "--published", "--dims", "--out", str(out)]) == 0
    text = re.sub(r" +", " ", out.read_text(encoding="utf-8"))  # tabulate pads cells
    assert "| model [a] (3 mirror) | 3/3" in text
    assert "| other [b] | 1/3" in text and "—" in text  # b's gaps are shown, not dropped
    assert "79.00*‡" in text and "81.00‡ |" in text  # mirror marked, official not; ‡: a mirror vs official data
    # published all-MiniLM-L6-v2 has STS16, STS13 and SciFact in the shipped snapshot
    assert "sentence-transformers/all-MiniLM-L6-v2 (published)" in text and "78.99" in text
    # a task scored on other data (a's mirrors against b's official STS16 and the published rows) carries ‡ in
    # a's MRL table too, and so does the mean over it (before stop 54, audit, unmarked there)
    assert "## Scores per embedding dimension" in text and "| STS16 ‡ | 70.00 | 79.00 |" in text
    assert "| **Mean (3 tasks)** ‡ | 65.00 | 73.00 |" in text
    assert "No MRL results for other [b] (run without `--dims`)." in text  # before stop 65 left out unsaid (a walk)
    alone = tmp_path / "alone.md"  # a's runs alone: nothing to mark
    assert main(["leaderboard", str(a), "--dims", "--out", str(alone)]) == 0
    text = re.sub(r" +", " ", alone.read_text(encoding="utf-8"))
    assert "| STS16 | 70.00 | 79.00 |" in text and "| **Mean (3 tasks)** | 65.00 | 73.00 |" in text
    assert "Mean (TaskType)" in text and "Borda" in text


def test_leaderboard_rejects_bad_input(tmp_path: Path, capsys):
    assert main(["leaderboard", str(tmp_path), "--out", str(tmp_path / "x.md")]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert main(["leaderboard", "--out", str(tmp_path / "x.md")]) == 2


def test_missing_published_folder_is_a_usage_error(tmp_path: Path, capsys) -> None:
    a = make_run(tmp_path, "a", {"STS16": 0.79}, TYPES)
    missing = tmp_path / "no-results"
    assert main(["leaderboard", str(a), "--published", str(missing), "--out", str(tmp_path / "lb.md")]) == 2
    err = capsys.readouterr().err
    assert f"--published {missing}: no such folder" in err and "Traceback" not in err


def test_a_published_folder_without_results_is_a_usage_error(tmp_path: Path, capsys) -> None:
    """Before: a folder holding no result files (a run directory, a wrong clone path) left the board without
    published rows and without a word, as if no baseline had scores for the tasks."""
    a = make_run(tmp_path, "a", {"STS16": 0.79}, TYPES)
    (tmp_path / "empty").mkdir()
    out = tmp_path / "lb.md"
    assert main(["leaderboard", str(a), "--published", str(tmp_path / "empty"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"--published {tmp_path / 'empty'}: no result files in the embeddings-benchmark/results layout" in err
    assert "Traceback" not in err and not out.exists()


def _dims_section(out: Path) -> str:
    text = re.sub(r" +", " ", out.read_text(encoding="utf-8"))
    return text.split("## Scores per embedding dimension (MRL)")[1].split("## How to read this")[0]


def test_the_dims_mean_row_is_over_the_dims_every_task_shares_and_names_the_rest(tmp_path: Path):
    """User walk: tasks scored at different dim sets (STS16 at 32 and 128, STS13 at 64 and 128: a second `harness
    run` with other --dims) lost the per-dim table's mean row without a word, though both share dim 128."""
    a = make_run(tmp_path, "a", {"STS16": 0.79, "STS13": 0.81}, TYPES,
                 dims={32: {"STS16": 0.6}, 64: {"STS13": 0.7}, 128: {"STS16": 0.72, "STS13": 0.74}})  # fmt: skip
    out = tmp_path / "lb.md"
    assert main(["leaderboard", str(a), "--dims", "--out", str(out)]) == 0
    section = _dims_section(out)
    assert "| Task | 32 | 64 | 128 | full (384) |" in section  # its width named (a walk, stop 69: "full" alone)
    assert "| **Mean (2 tasks)** | — | — | 73.00 | 80.00 |" in section
    assert ("Left out of the mean row, a mean being over every task with dim results: dim 32 (scored on STS16, not on "
            "STS13); dim 64 (scored on STS13, not on STS16).") in section  # fmt: skip
    b = make_run(tmp_path, "b", {"STS16": 0.79, "STS13": 0.81}, TYPES, dims={32: {"STS16": 0.6}, 64: {"STS13": 0.7}},
                 width=None)  # fmt: skip
    assert main(["leaderboard", str(b), "--dims", "--out", str(out)]) == 0
    section = _dims_section(out)
    assert "| Task | 32 | 64 | full |" in section  # a width run.json does not know: "full" alone
    assert "**Mean" not in section
    assert ("No mean row: no dim was scored on every task, a mean being over every task with dim results: dim 32 "
            "(scored on STS16, not on STS13); dim 64 (scored on STS13, not on STS16).") in section  # fmt: skip


def test_a_run_without_tasks_in_the_suite_gets_no_dims_table(tmp_path: Path):
    """User walk: `--suite mteb-en --dims` over a run none of whose tasks is in the suite printed its per-dim table
    as headers alone; the notes already name the run's tasks outside the suite."""
    a = make_run(tmp_path, "a", {"TinySTS": 0.79}, {"TinySTS": "STS"}, dims={64: {"TinySTS": 0.7}})
    out = tmp_path / "lb.md"
    assert main(["leaderboard", str(a), "--suite", "mteb-en", "--dims", "--out", str(out)]) == 0
    section = _dims_section(out)
    assert "### " not in section and "| Task |" not in section
    assert "No run has MRL results on the tasks of MTEB(eng, v2) (mteb-en); the notes name the run tasks outside it." \
        in section
    assert "Run tasks outside MTEB(eng, v2), not shown: TinySTS." in out.read_text(encoding="utf-8")


def test_skip_damaged_ranks_the_other_runs(tmp_path: Path, capsys) -> None:
    """`harness leaderboard runs/*` with one run.json damaged (a job killed mid-write on an old version) stopped with
    exit 2 and no board, and nothing but naming every other run got one (before stop 65); --skip-damaged leaves it
    out, naming it and why in a note and on stderr. A folder that is no run directory is still an error (a typo)."""
    a = make_run(tmp_path, "a", {"STS16": 0.79, "STS13": 0.80}, TYPES)
    b = make_run(tmp_path, "b", {"STS16": 0.81, "STS13": 0.70}, TYPES, model="org/other")
    damaged = make_run(tmp_path, "c", {"STS16": 0.5}, TYPES, model="org/third")
    (damaged / "run.json").write_text('{"model": ', encoding="utf-8")
    out = tmp_path / "lb.md"
    assert main(["leaderboard", str(a), str(b), str(damaged), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "damaged JSON" in err and "out of the command, or add --skip-damaged to rank the others" in err
    assert not out.exists()
    assert main(["leaderboard", str(a), str(b), str(damaged), "--skip-damaged", "--out", str(out)]) == 0
    text, err = re.sub(r" +", " ", out.read_text(encoding="utf-8")), capsys.readouterr().err
    assert "| model [a] (2 mirror) | 2/2" in text and "| other [b] (2 mirror) | 2/2" in text
    said = f"{damaged / 'run.json'}:1: damaged JSON (Expecting value, column 11)"
    assert f"Left out (--skip-damaged), damaged: {said}." in text and "third" not in text
    assert err.endswith(f"left out (--skip-damaged): {said}\n")
    for published in ([], ["--published"]):  # the published rows alone are no board of these runs (review)
        assert main(["leaderboard", str(damaged), "--skip-damaged", *published, "--out", str(out)]) == 2
        assert "nothing to rank of ours: every run given is damaged" in capsys.readouterr().err
        # the last board does not stay, read as this one's (a nightly walk, stop 69)
        assert out.read_text(encoding="utf-8").startswith("# Leaderboard — NOT WRITTEN (exit 2): nothing to rank of "
                                                          "ours: every run given is damaged")  # fmt: skip
    assert main(["leaderboard", str(a), str(b), "--out", str(out)]) == 0
    good = out.read_text(encoding="utf-8")
    capsys.readouterr()
    assert main(["leaderboard", str(a), str(tmp_path / "typo"), "--skip-damaged", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "not a run directory (no such folder)" in err
    # the good board stays beside the note, and stderr says so (a newcomer's walk, stop 70: replaced unsaid)
    assert (out.parent / f"{out.name}.previous").read_text(encoding="utf-8") == good
    assert f"the file that was there is kept as {out.parent / (out.name + '.previous')}" in err


def test_a_dims_mean_over_fewer_tasks_than_another_table_s_is_marked(tmp_path: Path):
    """A walk (stop 67): me5's MRL mean row covered STS16 and XQuAD, minilm's STS16 and STSBenchmark, side by side
    with nothing to say they do not compare. A mean over fewer of the tasks the tables' means cover carries `†`, as
    a row with gaps does in the ranking, and a line under its table names what it lacks."""
    a = make_run(tmp_path, "a", {"STS16": 0.79, "STS13": 0.81}, TYPES, dims={64: {"STS16": 0.7, "STS13": 0.72}})
    b = make_run(tmp_path, "b", {"STS16": 0.8, "SciFact": 0.6}, TYPES, model="org/other",
                 dims={64: {"STS16": 0.71, "SciFact": 0.5}})  # fmt: skip
    c = make_run(tmp_path, "c", {"STS16": 0.78, "STS13": 0.8, "SciFact": 0.6}, TYPES, model="org/third",
                 dims={64: {"STS16": 0.7, "STS13": 0.7, "SciFact": 0.4}})  # fmt: skip
    out = tmp_path / "lb.md"
    assert main(["leaderboard", str(a), str(b), str(c), "--dims", "--out", str(out)]) == 0
    section = _dims_section(out)
    assert "| **Mean (2 tasks)** † | 71.00 | 80.00 |" in section  # a: STS16, STS13
    assert "| **Mean (2 tasks)** † | 60.50 | 70.00 |" in section  # b: STS16, SciFact
    assert "| **Mean (3 tasks)** | 60.00 | 72.67 |" in section  # c's covers them all: unmarked
    assert ("`†` This mean is over STS16, STS13 only; another table's mean also covers SciFact: means over different "
            "tasks do not compare.") in section  # fmt: skip
    assert "`†` This mean is over STS16, SciFact only; another table's mean also covers STS13" in section
    d = make_run(tmp_path, "d", {"STS16": 0.78, "STS13": 0.8}, TYPES, model="org/third",
                 dims={64: {"STS16": 0.7, "STS13": 0.7}})  # fmt: skip
    assert main(["leaderboard", str(a), str(d), "--dims", "--out", str(out)]) == 0
    assert "†" not in _dims_section(out)  # the same tasks in every mean
