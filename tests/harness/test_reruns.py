"""Reruns into one run directory never relabel, never lose tasks; a killed run keeps its summary (issue 14, items
1, 2, 14). All on the embedded sample (real rows, small), so each run is seconds."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from data_helpers import cut_rows

from harness import identity
from harness.cli import main
from harness.data import default_data_root
from harness.runner import RunConfig, default_run_name
from harness.runs import RunDir
from harness.sysinfo import scoring_packages
from harness.tasks import ResolvedTask

SAMPLE = default_data_root()


def _run(out: Path, name: str, *args: str, data: Path = SAMPLE) -> tuple[int, dict]:
    code = main(["run", "--model", "minilm", "--data-dir", str(data), "--out", str(out), "--run-name", name,
                 "--no-progress", "--no-cache", *args])  # fmt: skip
    return code, json.loads((out / name / "run.json").read_text())


def test_rerun_with_other_settings_reevaluates(tmp_path: Path, capsys) -> None:
    """Before: the --max-length 8 rerun said 'done earlier, skipped' and relabelled the old score."""
    _, first = _run(tmp_path, "r", "--tasks", "STS16")
    _, short = _run(tmp_path, "r", "--tasks", "STS16", "--max-length", "8")
    _, fresh = _run(tmp_path, "fresh", "--tasks", "STS16", "--max-length", "8")
    out = capsys.readouterr().out
    assert "settings differ from the earlier result (max_length 256 → 8): evaluating again" in out
    assert short["tasks"]["STS16"]["main_score"] == fresh["tasks"]["STS16"]["main_score"]
    assert short["tasks"]["STS16"]["main_score"] != first["tasks"]["STS16"]["main_score"]
    assert short["tasks"]["STS16"]["identity"]["max_length"] == short["model"]["max_length"] == 8
    assert short["tasks"]["STS16"]["identity"]["device"] == short["model"]["device"] == "cpu"
    _, again = _run(tmp_path, "r", "--tasks", "STS16", "--max-length", "8")  # same settings: skipped
    assert "done earlier, skipped" in capsys.readouterr().out
    assert again["tasks"]["STS16"]["main_score"] == fresh["tasks"]["STS16"]["main_score"]
    _, bf16 = _run(tmp_path, "r", "--tasks", "STS16", "--max-length", "8", "--dtype", "bfloat16",
                   "--pad-to-multiple-of", "16")  # fmt: skip
    out = capsys.readouterr().out  # bf16 on a CPU may switch kernels too (harness/onednn.py): every change said
    kernels = r"(, kernels \(not set\) → 'onednn-fused-linear')?"
    cpu = r", cpu \(not set\) → '[^']+'"  # bf16 on a CPU rounds by the CPU's instructions: keyed by its model (stop 46)
    pad = r"pad_multiple \(not set\) → 16"
    assert re.search(rf"\(dtype 'float32' → 'bfloat16'{cpu}, {pad}{kernels}\): evaluating again", out), out
    assert bf16["tasks"]["STS16"]["identity"]["dtype"] == bf16["model"]["dtype"] == "bfloat16"
    _run(tmp_path, "r", "--tasks", "STS12")  # float32, 256 tokens: STS16 (bf16, 8 tokens) is kept, and said so
    summary = (tmp_path / "r" / "summary.md").read_text()
    assert "## Tasks kept from runs with other settings (§)" in summary
    assert "- STS16: dtype bfloat16, max_length 8" in summary and "- STS12" not in summary
    sts12 = 100 * json.loads((tmp_path / "r" / "run.json").read_text())["tasks"]["STS12"]["main_score"]
    assert f"mean main score over 1 finished task(s) (1 § kept from other settings not counted): {sts12:.2f}" in summary
    assert re.search(r"\| STS16 .*\| +\d+\.\d\d § +\|", summary), summary
    board = tmp_path / "lb.md"  # the leaderboard marks it from the same comparison, and does not count it
    assert main(["leaderboard", str(tmp_path / "r"), "--out", str(board)]) == 0
    text = board.read_text(encoding="utf-8")
    assert re.search(r"\| STS16 +\| STS +\| cosine_spearman +\| \d+\.\d\d\*§ +\|", text), text
    assert "under other settings than the run's" in text and "— STS16 (dtype bfloat16, max_length 8" in text


def test_rerun_that_drops_a_setting_names_it(tmp_path: Path, capsys) -> None:
    """Before stop 49 (audit): a setting recorded only when not at its default (here the padding multiple) was not
    compared when the rerun dropped it, and the rerun blamed missing or damaged result files."""
    _run(tmp_path, "p", "--tasks", "STS16", "--pad-to-multiple-of", "8")
    capsys.readouterr()
    _run(tmp_path, "p", "--tasks", "STS16")
    out = capsys.readouterr().out
    assert "settings differ from the earlier result (pad_multiple 8 → (not set)): evaluating again" in out, out


def test_scorer_versions_key_a_task_and_are_named_between_rows_of_any_model(tmp_path: Path, capsys,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Before stop 54 (audit) the versions of the packages mteb scores with (scikit-learn 1.6.1 and 1.9.1 score
    AGNewsClusteringS2S 32.00 and 28.50 on the same vectors) keyed nothing: a rerun after an upgrade kept the old
    scores, and the leaderboard ranked two models scored under either without a word."""
    _, first = _run(tmp_path, "a", "--tasks", "STS16")
    assert first["tasks"]["STS16"]["identity"]["scoring"] == scoring_packages() == first["identity"]["scoring"]
    older = {**scoring_packages(), "scikit-learn": "1.6.1"}
    monkeypatch.setattr(identity, "scoring_packages", lambda: older)
    assert main(["run", "--model", "me5-small", "--data-dir", str(SAMPLE), "--out", str(tmp_path), "--run-name", "b",
                 "--tasks", "STS16", "--no-progress", "--no-cache"]) == 0  # fmt: skip
    board = tmp_path / "lb.md"
    assert main(["leaderboard", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(board)]) == 0
    rows = [line for line in board.read_text(encoding="utf-8").splitlines() if "scoring.scikit-learn" in line]
    assert len(rows) == 2 and "[b]" in rows[0] and "`1.6.1`" in rows[0] and "[a]" in rows[1], rows
    assert f"scoring.scikit-learn `{scoring_packages()['scikit-learn']}`" in rows[1], rows
    shutil.copytree(tmp_path / "a", tmp_path / "a0")
    capsys.readouterr()
    _, again = _run(tmp_path, "a", "--tasks", "STS16")
    change = f"scoring.scikit-learn '{scoring_packages()['scikit-learn']}' → '1.6.1'"
    assert f"STS16: settings differ from the earlier result ({change}): evaluating again" in capsys.readouterr().out
    assert again["tasks"]["STS16"]["identity"]["scoring"] == older
    report = tmp_path / "regress.md"  # regress names the entry, not a cut of the whole table
    assert main(["regress", "--baseline", str(tmp_path / "a0"), "--candidate", str(tmp_path / "a"),
                 "--out", str(report)]) == 0  # fmt: skip
    assert f"scoring.scikit-learn {scoring_packages()['scikit-learn']} → 1.6.1" in report.read_text(encoding="utf-8")
    board = tmp_path / "lb3.md"  # one model's two runs beside another model: each row names its version once
    assert main(["leaderboard", *(str(tmp_path / r) for r in ("a0", "a", "b")), "--out", str(board)]) == 0
    rows = [line for line in board.read_text(encoding="utf-8").splitlines() if "scoring.scikit-learn" in line]
    assert len(rows) == 3 and all(row.count("scoring.scikit-learn") == 1 for row in rows), rows


def test_a_task_whose_files_change_after_the_run_started_is_not_recorded_under_the_old_hash(
        tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """The run keys every task by its files' hash at its start and reads a task's rows when it comes up: before stop
    54 (audit) rows edited in between were scored and recorded under the old hash (STS16 22.86 where its hashed
    rows give 76.63), and a rerun once the edit was undone kept that score as theirs."""
    data = tmp_path / "data" / "en"
    for task in ("STS12", "STS16"):
        shutil.copytree(SAMPLE / "en" / task, data / task)
    rows_file = data / "STS16" / "test.jsonl"
    original = rows_file.read_text(encoding="utf-8")
    load = ResolvedTask.load

    def edited_while_running(self: ResolvedTask) -> object:
        if self.name == "STS16":  # the edit lands after the run hashed the task, before its rows are read
            rows = [json.loads(line) for line in original.splitlines()]
            rows_file.write_text("".join(json.dumps({**r, "score": 5.0 - r["score"]}) + "\n" for r in rows))
        return load(self)

    monkeypatch.setattr(ResolvedTask, "load", edited_while_running)
    code, record = _run(tmp_path, "race", "--tasks", "STS12,STS16", data=data.parent)
    assert code != 0 and record["tasks"]["STS12"]["status"] == "ok"
    assert record["tasks"]["STS16"]["status"] == "failed"
    assert "DataChanged: the files of " in record["tasks"]["STS16"]["error"]
    assert "changed after the run started" in record["tasks"]["STS16"]["error"]
    monkeypatch.setattr(ResolvedTask, "load", load)
    code, record = _run(tmp_path, "race", "--tasks", "STS12,STS16", data=data.parent)  # the files as they are now
    _, fresh = _run(tmp_path, "fresh", "--tasks", "STS16", data=data.parent)
    assert code == 0 and record["tasks"]["STS16"]["main_score"] == fresh["tasks"]["STS16"]["main_score"]
    assert record["tasks"]["STS16"]["identity"]["data"] == fresh["tasks"]["STS16"]["identity"]["data"]


def test_changed_data_file_reevaluates(tmp_path: Path, capsys) -> None:
    data = tmp_path / "data"
    shutil.copytree(SAMPLE / "en" / "STS16", data / "en" / "STS16")
    _, first = _run(tmp_path, "r", "--tasks", "STS16", data=data)
    cut_rows(data / "en" / "STS16", 30)
    _, second = _run(tmp_path, "r", "--tasks", "STS16", data=data)
    assert "evaluating again" in capsys.readouterr().out
    assert second["tasks"]["STS16"]["identity"]["data"] != first["tasks"]["STS16"]["identity"]["data"]
    assert second["tasks"]["STS16"]["main_score"] != first["tasks"]["STS16"]["main_score"]


def test_other_task_list_adds_to_the_record(tmp_path: Path) -> None:
    """Before: `--tasks A,B` then `--tasks C` into one directory left only C in run.json and summary.md."""
    _run(tmp_path, "r", "--tasks", "STS16,STS12")
    code, record = _run(tmp_path, "r", "--tasks", "STS13")
    assert code == 0
    assert {n: t["status"] for n, t in record["tasks"].items()} == {"STS16": "ok", "STS12": "ok", "STS13": "ok"}
    summary = (tmp_path / "r" / "summary.md").read_text()
    assert all(f"| {n} " in summary for n in ("STS16", "STS12", "STS13"))
    assert set(json.loads((tmp_path / "r" / "efficiency.json").read_text())) == {"STS16", "STS12", "STS13"}


def test_other_model_into_the_same_directory_is_refused(tmp_path: Path, capsys) -> None:
    _run(tmp_path, "r", "--tasks", "STS16")
    code = main(["run", "--model", "me5-small", "--tasks", "STS16", "--data-dir", str(SAMPLE), "--out",
                 str(tmp_path), "--run-name", "r", "--no-progress", "--no-cache"])  # fmt: skip
    assert code == 2
    assert "holds results of model sentence-transformers/all-MiniLM-L6-v2" in capsys.readouterr().err


def test_other_model_with_overwrite_replaces_the_timings_too(tmp_path: Path, capsys) -> None:
    """Before (audit, stop 46): run.json was cleared for the new model but efficiency.json kept minilm's STS16
    entry, and `harness report` showed it as me5-small's row. Before stop 63 minilm's finished STS16, which this run
    does not redo, went without a word; one line now says so before the work."""
    _run(tmp_path, "r", "--tasks", "STS16,STS12")
    capsys.readouterr()
    assert main(["run", "--model", "me5-small", "--tasks", "STS12", "--data-dir", str(SAMPLE), "--out",
                 str(tmp_path), "--run-name", "r", "--no-progress", "--no-cache", "--overwrite"]) == 0  # fmt: skip
    said = capsys.readouterr()
    line = (f"harness: --overwrite removes the results of model sentence-transformers/all-MiniLM-L6-v2 (minilm) in "
            f"{tmp_path / 'r'}, with 1 finished task(s) this run does not evaluate again: STS16")  # fmt: skip
    assert said.err.splitlines().count(line) == 1 and "STS16" not in said.out
    assert set(json.loads((tmp_path / "r" / "run.json").read_text())["tasks"]) == {"STS12"}
    assert set(json.loads((tmp_path / "r" / "efficiency.json").read_text())) == {"STS12"}
    # nor the old model's files (before stop 54, audit: mteb's own reader returned its STS12 and STS16 beside)
    import mteb

    results = mteb.ResultCache(cache_path=tmp_path / "r").load_results()
    assert [(m.model_name, [t.task_name for t in m.task_results]) for m in results.model_results] == [
        ("intfloat/multilingual-e5-small", ["STS12"])]
    assert sorted(p.name for p in (tmp_path / "r" / "predictions").iterdir()) == ["STS12_gold.json",
                                                                                   "STS12_predictions.json"]
    assert main(["report", str(tmp_path / "r"), "--out", str(tmp_path / "report")]) == 0
    text = "".join(path.read_text() for path in (tmp_path / "report").glob("*.md"))
    assert "STS12" in text and "STS16" not in text


def _add_tasks(path: str, prefix: str, count: int) -> None:
    run = RunDir(Path(path), "m", "r")
    for i in range(count):
        run.update_run(lambda rec, i=i: rec.setdefault("tasks", {}).__setitem__(f"{prefix}{i}", {"status": "ok"}))


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    """Two processes updating one run.json: every task of both survives (read-modify-write under the lock)."""
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_add_tasks, args=(str(tmp_path), p, 40)) for p in ("a", "b")]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
        assert proc.exitcode == 0
    tasks = json.loads((tmp_path / "run.json").read_text())["tasks"]
    assert len(tasks) == 80


def test_default_run_names_do_not_collide() -> None:
    """Before: the task list was cut at 60 characters, so two long lists shared one directory."""
    head = [f"Task{i:02d}" for i in range(12)]
    names = {default_run_name(RunConfig(model="minilm", data_dir=SAMPLE, tasks=[*head, tail]), None)
             for tail in ("STS12", "STS13")}  # fmt: skip
    assert len(names) == 2 and all(len(n) < 100 for n in names)
    short = default_run_name(RunConfig(model="minilm", data_dir=SAMPLE, tasks=["STS12", "STS16"]), None)
    assert short == "minilm__STS12-STS16"


def test_killed_run_keeps_summary_of_finished_tasks(tmp_path: Path) -> None:
    """Before: summary.md was written only at the end, so kill -9 (or Ctrl-C) left none."""
    cmd = [sys.executable, "-m", "harness", "run", "--suite", "local-en", "--model", "minilm", "--out", str(tmp_path),
           "--run-name", "k", "--no-progress", "--no-cache", "--data-dir", str(SAMPLE)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    run_json = tmp_path / "k" / "run.json"
    try:
        while proc.poll() is None:
            tasks = json.loads(run_json.read_text()).get("tasks", {}) if run_json.is_file() else {}
            if any(t.get("status") == "ok" for t in tasks.values()):
                break
            time.sleep(0.2)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(60)
    record = json.loads(run_json.read_text())
    finished = [n for n, t in record["tasks"].items() if t.get("status") == "ok"]
    assert finished and proc.returncode == -signal.SIGKILL
    summary = (tmp_path / "k" / "summary.md").read_text()
    assert all(f"| {n} " in summary for n in finished)


def test_record_from_before_identities_is_evaluated_again(tmp_path: Path, capsys) -> None:
    """A run.json written before tasks carried an identity cannot prove its settings: the task runs again."""
    _run(tmp_path, "r", "--tasks", "STS16")
    record = json.loads((tmp_path / "r" / "run.json").read_text())
    del record["tasks"]["STS16"]["identity"]
    (tmp_path / "r" / "run.json").write_text(json.dumps(record))
    _, again = _run(tmp_path, "r", "--tasks", "STS16")
    assert "settings differ from the earlier result (no settings recorded with the earlier result)" in \
        capsys.readouterr().out  # fmt: skip
    assert again["tasks"]["STS16"]["identity"]["max_length"] == 256


@pytest.mark.slow
def test_two_concurrent_runs_into_one_directory_keep_both(tmp_path: Path) -> None:
    """Before: each run rewrote run.json from its own copy, so the one finishing last dropped the other's task."""
    base = [sys.executable, "-m", "harness", "run", "--model", "minilm", "--out", str(tmp_path), "--run-name", "c",
            "--no-progress", "--no-cache", "--data-dir", str(SAMPLE), "--tasks"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([*base, task], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
             for task in ("STS16", "STS12")]  # fmt: skip
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err.decode()[-2000:]
    record = json.loads((tmp_path / "c" / "run.json").read_text())
    assert {n: t["status"] for n, t in record["tasks"].items()} == {"STS16": "ok", "STS12": "ok"}
    assert set(json.loads((tmp_path / "c" / "efficiency.json").read_text())) == {"STS16", "STS12"}


def test_run_that_evaluates_nothing_leaves_the_record_as_it_was(tmp_path: Path, capsys) -> None:
    """Before: a rerun whose tasks were all done (or that could run none) rewrote run.json's header with its own
    settings, so summary.md listed the tasks it skipped as kept from other settings."""

    def run(*args: str) -> int:
        return main(["run", "--model", "minilm", "--data-dir", str(SAMPLE), "--out", str(tmp_path), "--run-name", "r",
                     "--no-progress", "--cache-dir", str(tmp_path / "cache"), *args])  # fmt: skip

    assert run("--tasks", "STS16", "--max-length", "8") == 0
    assert run("--tasks", "STS12") == 0  # the header is STS12's run (256 tokens); STS16 is kept from the first
    files = [tmp_path / "r" / name for name in ("summary.md", "run.json")]  # the summary's diff reads best
    before = [f.read_bytes() for f in files]
    assert b"- STS16: max_length 8" in before[0]
    capsys.readouterr()
    assert run("--tasks", "STS16", "--max-length", "8") == 0  # done under these settings: skipped
    assert "done earlier, skipped" in capsys.readouterr().out
    assert [f.read_bytes() for f in files] == before
    assert run("--tasks", "STS12", "--source", "official") == 1  # offline: nothing it can run
    assert "nothing was evaluated" in capsys.readouterr().err
    assert [f.read_bytes() for f in files] == before


def test_a_named_task_no_longer_evaluable_is_said_and_fails_though_its_old_result_stays(tmp_path: Path,
                                                                                     capsys) -> None:  # fmt: skip
    """Before stop 49 (audit): with an earlier result in the directory, a task named in --tasks whose folder broke
    (or went) was passed over without a word and the run exited 0; named alone it exited 1 with the reason."""
    data = tmp_path / "data"
    for name in ("STS16", "STS12"):
        shutil.copytree(SAMPLE / "en" / name, data / "en" / name)
    code, first = _run(tmp_path, "k", "--tasks", "STS16,STS12", data=data)
    assert code == 0
    spec = data / "en" / "STS16" / "task.json"
    meta = json.loads(spec.read_text(encoding="utf-8"))
    del meta["main_score"]
    spec.write_text(json.dumps(meta), encoding="utf-8")
    capsys.readouterr()
    code, again = _run(tmp_path, "k", "--tasks", "STS16,STS12", data=data)
    err = capsys.readouterr().err
    assert code == 1
    assert "harness: STS16 was not evaluated now: " in err and "main_score" in err and "is kept" in err
    assert again["tasks"]["STS16"]["main_score"] == first["tasks"]["STS16"]["main_score"]


def test_a_named_task_without_any_result_is_not_said_to_be_kept(tmp_path: Path, capsys) -> None:
    """Review of stop 49: a rerun that evaluates nothing left a named task without data out of run.json, and the
    run said its "earlier result ... is kept" though it had none."""
    data = tmp_path / "data"
    shutil.copytree(SAMPLE / "en" / "STS16", data / "en" / "STS16")
    assert _run(tmp_path, "n", "--tasks", "STS16", data=data)[0] == 0
    capsys.readouterr()
    assert _run(tmp_path, "n", "--tasks", "STS16,STS12", data=data)[0] == 1
    err = capsys.readouterr().err
    assert "harness: STS12 was not evaluated: " in err and "is kept" not in err


def test_a_record_with_a_pending_task_is_not_marked_finished(tmp_path: Path) -> None:
    """Review of stop 49: a rerun that only brought summary.md up to date marked `finished` on a record whose other
    task a kill had left pending."""
    _run(tmp_path, "f", "--tasks", "STS16,STS12")
    path = tmp_path / "f" / "run.json"
    record = json.loads(path.read_text())
    record["finished"], record["tasks"]["STS12"]["status"] = None, "pending"
    path.write_text(json.dumps(record))
    summary = tmp_path / "f" / "summary.md"
    os.utime(summary, ns=(path.stat().st_mtime_ns - 10**9,) * 2)  # written before the record's last change
    _, after = _run(tmp_path, "f", "--tasks", "STS16")
    assert after["finished"] is None and summary.stat().st_mtime_ns > path.stat().st_mtime_ns - 10**9


def test_a_record_whose_tasks_are_all_done_is_marked_finished_by_a_rerun(tmp_path: Path) -> None:
    """A nightly walk (stop 69): a run killed during a task that kept its earlier whole result left `finished` null,
    and a rerun that found every task done kept it so, where summary.md was not behind."""
    _run(tmp_path, "k", "--tasks", "STS16")
    path = tmp_path / "k" / "run.json"
    record = json.loads(path.read_text())
    record["finished"] = None
    path.write_text(json.dumps(record))
    os.utime(tmp_path / "k" / "summary.md")  # written after the record: not behind
    _, after = _run(tmp_path, "k", "--tasks", "STS16")
    assert after["finished"] is not None and after["tasks"]["STS16"] == record["tasks"]["STS16"]
