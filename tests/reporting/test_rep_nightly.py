"""A nightly team's gate: `harness regress` between dated runs of one suite, `harness leaderboard` over the nights.
Each test starts from the real minilm runs of tests/reporting/conftest.py and records one night's outcome in a copy
(a failed task, a NaN score, other settings), as `harness run` writes it."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

from harness.cli import main
from reporting.regress import compare
from reporting.regress_tasks import FAILED, NO_BASELINE


def _night(source: Path, dest: Path, **tasks: dict) -> Path:
    """A copy of a run directory whose run.json records ``tasks``' entries updated as given."""
    shutil.copytree(source, dest)
    record = json.loads((dest / "run.json").read_text())
    for name, change in tasks.items():
        record["tasks"][name].update(change)
    (dest / "run.json").write_text(json.dumps(record))
    return dest


FAILED_STS = {"TinySTS": {"status": "failed", "main_score": None, "error": "DataError: test.jsonl:3: bad row"}}


def _regress(tmp_path: Path, base: Path, cand: Path, *extra: str) -> tuple[int, str, str]:
    out = tmp_path / "r.md"
    code = main(["regress", "--baseline", str(base), "--candidate", str(cand), "--n-boot", "50", "--out", str(out),
                 *extra])  # fmt: skip
    return code, out.read_text(encoding="utf-8"), str(out)


def test_the_first_and_last_lines_say_pass_or_fail_and_why(tiny_runs, tmp_path, capsys):
    """A CI log shows the report's top and the command's last line. Before: '# Regression report' on top, the
    verdict in a paragraph below the header, and 'regression report written to …' last."""
    code, text, out = _regress(tmp_path, tiny_runs["base"], tiny_runs["short"], "--tasks", "TinySTS,TinyRerank")
    first = "FAIL (exit 1): regression on 2 task(s): TinySTS, TinyRerank"
    assert code == 1 and text.startswith(f"# Regression report — {first}\n")
    printed = capsys.readouterr().out.rstrip().splitlines()
    assert printed[0] == f"# Regression report — {first}"
    assert printed[-1] == f"regression report written to {out} — {first}"


def test_a_task_failed_in_both_runs_fails_the_gate(tiny_runs, tmp_path):
    """Before: a task that failed in the baseline and failed again in the candidate was named nowhere in the
    report (not even the 'task sets differ' warning), and the gate passed on the others."""
    base = _night(tiny_runs["base"], tmp_path / "nightly-1", **FAILED_STS)
    cand = _night(tiny_runs["base"], tmp_path / "nightly-2", **FAILED_STS)
    comp = compare(base, cand, n_boot=20, tasks=["TinySTS", "TinyPairs"])
    (sts,) = [t for t in comp.tasks if t.task == "TinySTS"]
    assert sts.verdict == FAILED and comp.exit_status == 1
    assert sts.reason == ("status failed: DataError: test.jsonl:3: bad row; no baseline score either (status failed: "
                          "DataError: test.jsonl:3: bad row)")  # fmt: skip


def test_a_partially_failed_baseline_is_no_pass(tiny_runs, tmp_path):
    """Before: the candidate's TinySTS went untested behind a 'task sets differ' warning, and the gate passed."""
    base = _night(tiny_runs["base"], tmp_path / "baseline", **FAILED_STS)
    code, text, _ = _regress(tmp_path, base, tiny_runs["base"], "--tasks", "TinySTS,TinyPairs")
    assert code == 3 and text.startswith("# Regression report — NOT COMPARED (exit 3): TinySTS (no baseline score)\n")
    assert "**no baseline score** (baseline status failed: DataError: test.jsonl:3: bad row; rerun the task into the " \
           "baseline)" in text  # fmt: skip
    assert compare(base, tiny_runs["base"], n_boot=20, tasks=["TinySTS"]).tasks[0].verdict == NO_BASELINE


def test_a_nan_score_is_no_score(tiny_runs, tmp_path, capsys):
    """A run.json holding NaN for a score (`harness run` now refuses one; an older run, or an edit). Before:
    regress called the task *within noise* (exit 0), and the leaderboard stopped with a traceback (ValueError:
    cannot convert float NaN to integer)."""
    nan = _night(tiny_runs["base"], tmp_path / "edited", TinySTS={"main_score": math.nan})
    comp = compare(tiny_runs["base"], nan, n_boot=20, tasks=["TinySTS", "TinyPairs"])
    (sts,) = [t for t in comp.tasks if t.task == "TinySTS"]
    assert sts.verdict == FAILED and sts.reason == "status ok but its main score is nan" and comp.exit_status == 1
    board = tmp_path / "lb.md"
    assert main(["leaderboard", str(tiny_runs["base"]), str(nan), "--out", str(board)]) == 0
    assert "all-MiniLM-L6-v2 [edited]: no score for TinySTS (status ok but its main score is nan)" in board.read_text()
    assert main(["report", str(tiny_runs["base"]), str(nan), "--out", str(tmp_path / "report")]) == 0
    table5 = (tmp_path / "report" / "efficiency.md").read_text().split("## Hardware")[0]
    assert not re.search(r"\|\s*nan\s*\|", table5) and "Avg score ×100 (6 tasks)" in table5  # TinySTS left out
    assert "Traceback" not in capsys.readouterr().err


def test_settings_that_differ_are_named_in_the_header(tiny_runs, tmp_path):
    """A candidate run with another max length, harness version or data root is compared (that can be the point),
    but the header says so. Before: only the model's name and fingerprint were shown, which agree."""
    other = _night(tiny_runs["short"], tmp_path / "short")
    record = json.loads((other / "run.json").read_text())
    record["environment"]["harness_version"] = "0.2.0"
    # other code, with uncommitted edits (a nightly walk, stop 69: the version string never changes, so a night run
    # by other code compared without a word)
    record["environment"]["git_sha"] = "2036016" + "0" * 33 + "+dirty"
    record["tasks"]["TinySTS"].pop("evaluated")  # a task recorded before stop 70: the run's own commit speaks for it
    record["data_root"] = str(tmp_path / "data")
    (other / "run.json").write_text(json.dumps(record))
    comp = compare(tiny_runs["base"], other, n_boot=20, tasks=["TinySTS"])
    base_env = json.loads((tiny_runs["base"] / "run.json").read_text())["environment"]
    assert comp.differing[:2] == ["max_length 256 → 4", f"harness_version {base_env['harness_version']} → 0.2.0"]
    base_code = base_env["git_sha"][:12] + ("+dirty" if base_env["git_sha"].endswith("+dirty") else "")
    assert comp.differing[2] == f"harness_code {base_code} → 203601600000+dirty"
    assert comp.differing[3].startswith("data root …/") and comp.differing[3].endswith(" → …/data")
    code, text, _ = _regress(tmp_path, tiny_runs["base"], other, "--tasks", "TinySTS")
    assert "- **settings that differ** (a Δ is theirs as well as the model's): max_length 256 → 4; " in text


def test_the_commit_named_is_the_one_that_evaluated_the_compared_tasks(tiny_runs, tmp_path):
    """Since stop 70 each task records when and by which commit it was evaluated. A directory rerun after a commit
    keeps the tasks it had finished, evaluated by the older code, while its run.json's environment names the newer:
    regress named the newer for every task. Now a task's own commit counts, and a run of several says so."""
    base = json.loads((tiny_runs["base"] / "run.json").read_text())
    evaluated = base["tasks"]["TinySTS"]["evaluated"]
    assert evaluated["code"] == base["environment"]["git_sha"] and evaluated["at"].startswith("20")
    other = _night(tiny_runs["base"], tmp_path / "other")
    record = json.loads((other / "run.json").read_text())
    record["environment"]["git_sha"] = "2036016" + "0" * 33  # the last run's commit, which redid TinyPairs alone
    record["tasks"]["TinyPairs"]["evaluated"]["code"] = record["environment"]["git_sha"]
    (other / "run.json").write_text(json.dumps(record))
    assert not any(d.startswith("harness_code") for d in compare(tiny_runs["base"], other, n_boot=20,
                                                                 tasks=["TinySTS"]).differing)  # fmt: skip
    both = compare(tiny_runs["base"], other, n_boot=20, tasks=["TinySTS", "TinyPairs"]).differing
    base_code = base["environment"]["git_sha"][:12] + ("+dirty" if base["environment"]["git_sha"].endswith("+dirty")
                                                      else "")  # fmt: skip
    mixed = ", ".join(f"{code} (1 task)" for code in sorted([base_code, "203601600000"]))  # equal counts: by code
    assert f"harness_code {base_code} → mixed: {mixed}" in both, both


def test_json_output_gives_each_tasks_verdict_and_the_exit_reason(tiny_runs, tmp_path):
    """Before: markdown only; a CI job had to scrape the table."""
    cand = _night(tiny_runs["short"], tmp_path / "cand", **FAILED_STS)
    out = tmp_path / "r.json"
    code, _, _ = _regress(tmp_path, tiny_runs["base"], cand, "--tasks", "TinySTS,TinyRerank,TinyClustering",
                          "--json", str(out))  # fmt: skip
    result = json.loads(out.read_text())
    assert code == result["exit_status"] == 1 and result["passed"] is False
    assert result["outcome"] == "FAIL (exit 1): regression on 1 task(s): TinyRerank; failed in the candidate: TinySTS"
    assert (result["regressed"], result["failed"], result["not_compared"]) == (["TinyRerank"], ["TinySTS"], [])
    verdicts = {t["task"]: (t["verdict"], t["fails_gate"]) for t in result["tasks"]}
    assert verdicts["TinyRerank"] == ("regressed", True) and verdicts["TinySTS"] == (FAILED, True)
    assert verdicts["TinyClustering"][1] is False  # clustering verdicts are advisory
    assert {t["task"]: t["gate_exit"] for t in result["tasks"]} == {"TinyRerank": 1, "TinySTS": 1,
                                                                    "TinyClustering": None}  # fmt: skip
    sts = next(t for t in result["tasks"] if t["task"] == "TinySTS")
    assert sts["candidate"] is None and sts["delta"] is None and sts["ci"] is None  # null, never NaN
    rerank = next(t for t in result["tasks"] if t["task"] == "TinyRerank")
    assert rerank["ci"][1] < 0 and rerank["candidate"] < rerank["baseline"]
    # the Δ and CI to 12 significant digits: a user's walk read -0.19413999999999998 (float noise)
    assert rerank["delta"] == float(f"{rerank['candidate'] - rerank['baseline']:.12g}")
    assert all(value == float(f"{value:.12g}") for value in rerank["ci"]), rerank
    assert "max_length 256 → 4" in result["settings_differ"] and result["candidate"]["path"].endswith("cand")


def test_json_says_a_task_not_compared_fails_the_gate(tiny_runs, tmp_path):
    """A task that blocks the gate as not comparable (exit 3) read `"fails_gate": false`, though --help says the
    JSON gives whether it fails the gate: a job reading it passed the night (a user's walk, stop 64)."""
    cand = _night(tiny_runs["base"], tmp_path / "cand")
    record = json.loads((cand / "run.json").read_text())
    record["tasks"]["TinySTS"]["identity"]["data"] = "sha256:" + "0" * 64  # other files: not comparable
    (cand / "run.json").write_text(json.dumps(record))
    out = tmp_path / "r.json"
    code, _, _ = _regress(tmp_path, tiny_runs["base"], cand, "--tasks", "TinySTS,TinyPairs", "--json", str(out))
    result = json.loads(out.read_text())
    assert code == result["exit_status"] == 3 and result["not_compared"] == ["TinySTS"]
    gate = {t["task"]: (t["verdict"], t["fails_gate"], t["gate_exit"]) for t in result["tasks"]}
    assert gate == {"TinySTS": ("not comparable", True, 3), "TinyPairs": ("within noise", False, None)}


def test_json_figures_keep_their_sign() -> None:
    """Review of stop 62: rounded to six decimals, a CI bound of 3e-7 (above 0: "improved" at --min-effect 0)
    read 0.0 in the JSON beside its verdict."""
    from reporting.regress_report import JSON_DIGITS, _figure

    assert _figure(3e-7, JSON_DIGITS) == 3e-7 and _figure(-0.19413999999999998, JSON_DIGITS) == -0.19414
    assert _figure(float("nan"), JSON_DIGITS) is None
