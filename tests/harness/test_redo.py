"""A task evaluated again replaces its old result whole, and keeps it whole until then (audit A, items 1, 6, 7, 9).

Old MRL dim files are never shown next to a new full score; a failed re-evaluation keeps a whole earlier result
(files and record agreeing) and replaces a damaged one; a killed --overwrite run keeps the task's old result;
summary.md labels every kept task whose settings (any identity key, or its data root) differ from the run's. On the
embedded sample's rows: each run takes seconds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mteb
import pytest

from harness.cli import main
from harness.data import default_data_root
from harness.runs import RunDir, open_run, other_settings

SAMPLE = default_data_root()
# Runs the CLI with mteb's evaluation blocking once it has scored and written the staged files of the first task,
# so a test can kill -9 it in the middle of re-evaluating a task, at a point it knows.
BLOCKING = """
import sys, time
from pathlib import Path
import harness.evaluation as evaluation
real = evaluation._evaluate
def blocking(encoder, task, cfg, predictions):
    result = real(encoder, task, cfg, predictions)
    Path(sys.argv[1]).touch()
    time.sleep(600)
    return result
evaluation._evaluate = blocking
from harness.cli import main
sys.exit(main(sys.argv[2:]))
"""


def _args(out: Path, name: str, data: Path, *args: str) -> list[str]:
    return ["run", "--model", "minilm", "--data-dir", str(data), "--out", str(out), "--run-name", name,
            "--no-progress", "--no-cache", *args]  # fmt: skip


def _run(out: Path, name: str, *args: str, data: Path = SAMPLE) -> tuple[int, dict]:
    code = main(_args(out, name, data, *args))
    return code, json.loads((out / name / "run.json").read_text())


def _copy(tasks: tuple[str, ...], root: Path) -> Path:
    for task in tasks:
        shutil.copytree(SAMPLE / "en" / task, root / "en" / task)
    return root


def _files(run: Path, task: str) -> dict[str, bytes]:
    """Every file of the task in the run directory (staging excluded), by relative path."""
    found = [p for p in run.rglob(f"{task}*.json") if ".staging" not in p.parts]
    return {str(p.relative_to(run)): p.read_bytes() for p in found}


def test_redone_task_drops_its_old_dim_files(tmp_path: Path) -> None:
    """Before: STS16's dims at max_length 256 stayed and were shown next to its new full score at 8 as '179.2%'."""
    _run(tmp_path, "r", "--tasks", "STS16", "--dims", "64,128")
    run = open_run(tmp_path / "r")
    assert set(run.dim_scores("STS16")) == {64, 128}
    _run(tmp_path, "r", "--tasks", "STS16", "--max-length", "8")
    assert not list((run.results_dir / "experiments").glob("embed_dim_*/STS16.json"))
    _, record = _run(tmp_path, "r", "--tasks", "STS12", "--max-length", "8", "--dims", "64,128")
    assert run.dim_scores("STS16") == {} and set(run.dim_scores("STS12")) == {64, 128}
    summary = (tmp_path / "r" / "summary.md").read_text()
    dims_table = summary.split("## Matryoshka dimensions")[1]
    row = next(r for r in dims_table.splitlines() if r.startswith("| STS16"))
    assert row.count("—") == 2 and float(row.split("|")[-2]) == round(100 * record["tasks"]["STS16"]["main_score"], 2)
    # kept from a run without dims: its full score is this run's settings' (dims move none), so not listed as kept
    # (before stop 47 it was, "STS16: dims []", and left out of the summary's mean)
    assert "STS16: dims" not in summary and "kept from other settings" not in summary


def test_summary_dims_table_holds_every_task_s_recorded_dims(tmp_path: Path) -> None:
    """Before stop 49 (audit): the MRL table took its columns from the last run's --dims only, so a rerun of one task
    without --dims hid the other tasks' dim results, and a task kept from other settings lacked its § there."""
    _run(tmp_path, "r", "--tasks", "STS16,STS12", "--dims", "64")
    _run(tmp_path, "r", "--tasks", "STS16", "--max-length", "8")
    summary = (tmp_path / "r" / "summary.md").read_text()
    dims_table = summary.split("## Matryoshka dimensions")[1]
    assert re.search(r"^\| STS12 § +\| \d+\.\d\d \(", dims_table, re.M), dims_table
    assert re.search(r"^\| STS16 +\| — +\|", dims_table, re.M), dims_table


def test_a_damaged_result_file_is_evaluated_again(tmp_path: Path) -> None:
    """Before: a result cut short, listed ok in run.json, was skipped as done, and mteb.ResultCache failed on it
    (audit J16)."""
    _run(tmp_path, "r", "--tasks", "STS16", "--dims", "64")
    run = open_run(tmp_path / "r")
    damaged = run.result_path("STS16", 64)
    damaged.write_text(damaged.read_text()[:30])
    code, record = _run(tmp_path, "r", "--tasks", "STS16", "--dims", "64")
    assert code == 0 and record["tasks"]["STS16"]["status"] == "ok"
    json.loads(damaged.read_text())  # whole again
    assert mteb.ResultCache(cache_path=tmp_path / "r").load_results()


def test_dims_are_read_from_the_recorded_identity_only(tmp_path: Path) -> None:
    """A dim file the task's recorded identity does not list (left by anything) is not its score."""
    _run(tmp_path, "r", "--tasks", "STS16", "--dims", "64")
    run = open_run(tmp_path / "r")
    stray = run.result_path("STS16", 32)
    stray.parent.mkdir(parents=True)
    shutil.copy(run.result_path("STS16", 64), stray)
    assert set(run.dim_scores("STS16")) == {64}
    entry = run.read_run()["tasks"]["STS16"]
    assert set(run.dim_scores("STS16", {**entry, "identity": {**entry["identity"], "dims": []}})) == set()
    assert run.dim_scores("STS16", {**entry, "status": "pending"}) == {}


def test_failed_reevaluation_keeps_the_whole_earlier_result(tmp_path: Path, capsys) -> None:
    """Before stop 68 a failed evaluation removed the task's whole earlier result (a transient error under
    --overwrite lost a finished score). It now stays, files and record, with the failure on it: the run fails (exit
    1), summary.md says so, and run.json and mteb's reader still agree on the score. The next run evaluates it again,
    as a failed task; the mark goes once one succeeds (review of stop 68: it was skipped as done, marked for good)."""
    data = _copy(("STS16",), tmp_path / "data")
    _, first = _run(tmp_path, "r", "--tasks", "STS16", "--dims", "64", data=data)
    before = _files(tmp_path / "r", "STS16")
    assert before
    shutil.copytree(tmp_path / "r", tmp_path / "baseline")  # for regress, below
    rows = data / "en" / "STS16" / "test.jsonl"
    original = rows.read_text(encoding="utf-8")
    rows.write_text(original + "{not json\n", encoding="utf-8")
    capsys.readouterr()
    code, record = _run(tmp_path, "r", "--tasks", "STS16", "--dims", "64", data=data)
    entry = record["tasks"]["STS16"]
    assert code == 1 and entry["status"] == "ok" and entry["main_score"] == first["tasks"]["STS16"]["main_score"]
    assert "test.jsonl:" in entry["failed_again"]["error"] and entry["identity"] == first["tasks"]["STS16"]["identity"]
    assert _files(tmp_path / "r", "STS16") == before and not (tmp_path / "r" / ".staging").exists()
    err = capsys.readouterr().err
    assert "1 task(s) failed: STS16" in err and "the earlier result of STS16 is kept" in err
    summary = (tmp_path / "r" / "summary.md").read_text()
    assert re.search(r"^\| STS16 .* ok, failed again +\|$", summary, re.M), summary
    assert "## Evaluated again and failed, the earlier result kept\n\n- STS16: " in summary
    results = mteb.ResultCache(cache_path=tmp_path / "r").load_results()
    scores = [t.get_score() for m in results.model_results for t in m.task_results if t.task_name == "STS16"]
    assert scores == [pytest.approx(entry["main_score"], abs=1e-6)]
    assert main(["leaderboard", str(tmp_path / "r"), "--out", str(tmp_path / "board.md")]) == 0
    assert ("the latest evaluation of STS16 failed, the earlier result shown (its error in run.json's failed_again)"
            in (tmp_path / "board.md").read_text())
    # a nightly gate does not pass on the score it kept: failed in the candidate (exit 1), saying why
    capsys.readouterr()
    assert main(["regress", "--baseline", str(tmp_path / "baseline"), "--candidate", str(tmp_path / "r"),
                 "--out", str(tmp_path / "regress.md")]) == 1  # fmt: skip
    gate = (tmp_path / "regress.md").read_text()
    assert "FAIL (exit 1): failed in the candidate: STS16" in gate
    assert "its latest evaluation failed (DataError: " in gate and "the score compared is the earlier" in gate
    # failing again with its per-item files removed (to save disk) keeps it still: its result file is whole
    open_run(tmp_path / "r").predictions_path("STS16").unlink()
    code, record = _run(tmp_path, "r", "--tasks", "STS16", "--dims", "64", data=data)
    assert code == 1 and record["tasks"]["STS16"]["main_score"] == first["tasks"]["STS16"]["main_score"]
    rows.write_text(original, encoding="utf-8")  # mended: evaluated again though its settings are the kept one's
    capsys.readouterr()
    code, record = _run(tmp_path, "r", "--tasks", "STS16", "--dims", "64", data=data)
    out = capsys.readouterr().out
    assert code == 0 and "failed_again" not in record["tasks"]["STS16"], out
    assert "[1/1] STS16: its last evaluation failed (DataError: " in out
    assert "evaluating again; the earlier result stays until one succeeds" in out
    assert "failed again" not in (tmp_path / "r" / "summary.md").read_text()


def test_failed_reevaluation_replaces_a_damaged_result(tmp_path: Path, capsys) -> None:
    """A result that is itself damaged (here its result file cut short) is not kept over a failed evaluation: the
    task is recorded failed, none of its files stay for mteb's reader, and the line says the result went."""
    data = _copy(("STS16",), tmp_path / "data")
    _run(tmp_path, "r", "--tasks", "STS16", data=data)
    result = open_run(tmp_path / "r").result_path("STS16")
    result.write_text(result.read_text()[:30])
    with (data / "en" / "STS16" / "test.jsonl").open("a", encoding="utf-8") as handle:
        handle.write("{not json\n")
    capsys.readouterr()
    code, record = _run(tmp_path, "r", "--tasks", "STS16", data=data)
    entry = record["tasks"]["STS16"]
    assert code == 1 and entry["status"] == "failed" and "failed_again" not in entry
    assert ("; the earlier result, damaged (its result file missing, unreadable or of another score), is gone"
            in capsys.readouterr().out)
    assert _files(tmp_path / "r", "STS16") == {}


def test_dim_predictions_asked_later_redo_the_task_and_are_then_done(tmp_path: Path, capsys) -> None:
    """--dim-predictions keeps each dim's per-item outputs (an ablation's CI at MRL dims reads them); a task done
    without them is not done for a run that asks for them, and one with them is skipped as usual."""
    _run(tmp_path, "r", "--tasks", "STS16", "--dims", "64")
    assert not (tmp_path / "r" / "predictions" / "embed_dim_64").exists()  # opt-in: ~100 MB per retrieval dim
    capsys.readouterr()
    for _ in range(2):
        code, _ = _run(tmp_path, "r", "--tasks", "STS16", "--dims", "64", "--dim-predictions")
        assert code == 0 and (tmp_path / "r" / "predictions" / "embed_dim_64" / "STS16_predictions.json").is_file()
    log = capsys.readouterr().out
    assert log.count("STS16: done earlier, skipped") == 1 and log.count("STS16: cosine_spearman") == 1


def test_a_rerun_at_other_dims_names_the_dims_it_removes_and_keeps_the_measured_timings(tmp_path: Path,
                                                                                         capsys) -> None:  # fmt: skip
    """User walk: `--dims 32` after `--dims 64,128` removed the 64 and 128 results under a line naming only the
    change, and its evaluation, every vector from the embedding cache, replaced the measured timings, so `harness
    report` read `cache only (no model time)` where the texts/s had been."""
    args = ["run", "--model", "minilm", "--data-dir", str(SAMPLE), "--out", str(tmp_path), "--no-progress",
            "--tasks", "STS16", "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    efficiency = tmp_path / "r" / "efficiency.json"
    assert main([*args, "--run-name", "r", "--dims", "64,128"]) == 0
    timed = json.loads(efficiency.read_text())["STS16"]
    assert timed["encoded_texts"] > 0 and timed["texts_per_s"]
    capsys.readouterr()
    assert main([*args, "--run-name", "r", "--dims", "32"]) == 0
    out = capsys.readouterr().out
    assert ("STS16: settings differ from the earlier result (dims [64, 128] → [32]): evaluating again; its results at "
            "dims 64, 128 go with the old result once this evaluation succeeds (to keep them, give every dim: --dims "
            "32,64,128)") in out
    assert "nothing encoded; 92 cache hits); the earlier evaluation's timings are kept (this one encoded nothing)" \
        in out
    assert json.loads(efficiency.read_text())["STS16"] == timed
    assert set(open_run(tmp_path / "r").dim_scores("STS16")) == {32}
    assert main([*args, "--run-name", "r", "--dims", "32", "--dim-predictions"]) == 0  # the items of a dim asked
    assert json.loads(efficiency.read_text())["STS16"] == timed  # for later: the same vectors, the same timings
    assert main(["report", str(tmp_path / "r"), "--out", str(tmp_path / "report")]) == 0
    report = re.sub(r" +", " ", (tmp_path / "report" / "efficiency.md").read_text(encoding="utf-8"))
    assert "cache only" not in report.split("## Hardware")[0]  # Table 5
    assert f" | {timed['texts_per_s']:,.1f} | " in report.split("## Throughput per task")[1]
    # other settings, every vector from the cache (filled by another directory): the dims' results are those
    # settings', and this evaluation's timings are the record's, whatever they measured
    assert main([*args, "--run-name", "other", "--max-length", "8"]) == 0
    capsys.readouterr()
    assert main([*args, "--run-name", "r", "--max-length", "8"]) == 0
    out = capsys.readouterr().out
    assert ("(not set)): evaluating again; its results at dims 32 go with the old result once this evaluation "
            "succeeds\n") in out
    assert "max_length 256 → 8, dims [32] → []" in out and "timings are kept" not in out
    assert json.loads(efficiency.read_text())["STS16"]["encoded_texts"] == 0


def test_a_timing_measured_under_other_speed_settings_is_not_kept(tmp_path: Path, capsys) -> None:
    """Review of stop 62: the kept timing came from the earlier evaluation whatever its batch size, token budget or
    threads, while the reports show this run's beside it (a batch-64 rate under "batch 256")."""
    args = ["run", "--model", "minilm", "--data-dir", str(SAMPLE), "--out", str(tmp_path), "--no-progress",
            "--tasks", "STS16", "--cache-dir", str(tmp_path / "cache"), "--run-name", "r"]  # fmt: skip
    efficiency = tmp_path / "r" / "efficiency.json"
    assert main([*args, "--dims", "64"]) == 0
    timed = json.loads(efficiency.read_text())["STS16"]
    assert timed["batch_size"] == 64 and timed["max_batch_tokens"] == 8192 and timed["threads"] >= 1
    assert timed["processor"]
    capsys.readouterr()
    assert main([*args, "--dims", "32", "--batch-size", "16"]) == 0
    out = capsys.readouterr().out
    assert "timings are kept" not in out
    rerun = json.loads(efficiency.read_text())["STS16"]
    assert rerun["batch_size"] == 16 and rerun["encoded_texts"] == 0 and rerun["texts_per_s"] is None


def test_overwrite_names_the_dim_results_it_removes(tmp_path: Path, capsys) -> None:
    """Review of stop 62: `--overwrite --dims 32` after `--dims 64,128` removed the 64 and 128 results without the
    line a rerun without --overwrite prints."""
    args = ["run", "--model", "minilm", "--data-dir", str(SAMPLE), "--out", str(tmp_path), "--no-progress",
            "--tasks", "STS16", "--cache-dir", str(tmp_path / "cache"), "--run-name", "r"]  # fmt: skip
    assert main([*args, "--dims", "64,128"]) == 0
    capsys.readouterr()
    assert main([*args, "--dims", "32", "--overwrite"]) == 0
    assert ("STS16: evaluating again (--overwrite); its results at dims 64, 128 go with the old result once this "
            "evaluation succeeds (to keep them, give every dim: --dims 32,64,128)") in capsys.readouterr().out
    assert set(open_run(tmp_path / "r").dim_scores("STS16")) == {32}


def test_a_rerun_at_other_dims_leaves_no_empty_dim_folders(tmp_path: Path) -> None:
    """User walk: `--dims 64 --dim-predictions`, then `--dims 32`, left predictions/embed_dim_64/ (and the results'
    experiments/embed_dim_64/) behind empty, as if dim 64 still had results; another task's dim files stay."""
    _run(tmp_path, "r", "--tasks", "STS16,STS12", "--dims", "64", "--dim-predictions")
    _run(tmp_path, "r", "--tasks", "STS16", "--dims", "32")
    run = open_run(tmp_path / "r")
    assert run.predictions_path("STS12", 64).is_file() and run.result_path("STS12", 64).is_file()
    _run(tmp_path, "r", "--tasks", "STS12", "--dims", "32")
    assert sorted(p.name for p in run.predictions_dir.iterdir() if p.is_dir()) == []
    assert sorted(p.name for p in (run.results_dir / "experiments").iterdir()) == ["embed_dim_32"]


def test_overwrite_replaces_every_file_and_leaves_no_staging(tmp_path: Path) -> None:
    _run(tmp_path, "r", "--tasks", "STS16", "--dims", "64,128", "--dim-predictions")
    assert "predictions/embed_dim_128/STS16_predictions.json" in _files(tmp_path / "r", "STS16")
    code, record = _run(tmp_path, "r", "--tasks", "STS16", "--overwrite", "--max-length", "8")
    assert code == 0 and record["tasks"]["STS16"]["identity"]["max_length"] == 8
    assert sorted(_files(tmp_path / "r", "STS16")) == sorted([
        "predictions/STS16_gold.json", "predictions/STS16_predictions.json",
        str(open_run(tmp_path / "r").result_path("STS16").relative_to(tmp_path / "r"))])  # fmt: skip
    assert not (tmp_path / "r" / ".staging").exists()


@pytest.mark.parametrize("change", [["--overwrite"], ["--overwrite", "--max-length", "8"], ["--max-length", "8"]])
def test_killed_reevaluation_keeps_the_old_result(tmp_path: Path, change: list[str]) -> None:
    """Before: an --overwrite run set every planned task `pending` at its start, so kill -9 before the task was
    redone dropped a valid result from run.json (and from summary.md and leaderboards) though its files stayed."""
    _, before = _run(tmp_path, "r", "--tasks", "STS16")
    files = _files(tmp_path / "r", "STS16")
    marker = tmp_path / "scored"
    proc = subprocess.Popen([sys.executable, "-c", BLOCKING, str(marker),
                             *_args(tmp_path, "r", SAMPLE, "--tasks", "STS16", *change)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    try:
        while proc.poll() is None and not marker.exists():
            time.sleep(0.2)
        assert marker.exists(), "the run ended before it re-evaluated the task"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(60)
    record = json.loads((tmp_path / "r" / "run.json").read_text())
    assert record["tasks"]["STS16"] == before["tasks"]["STS16"]  # record, score and identity: the old ones
    assert _files(tmp_path / "r", "STS16") == files  # and its files, untouched
    summary = (tmp_path / "r" / "summary.md").read_text()
    row = next(r for r in summary.splitlines() if r.startswith("| STS16"))
    score, kept = row.split("|")[5].strip().removesuffix("§"), row.split("|")[5].strip().endswith("§")
    assert float(score) == round(100 * before["tasks"]["STS16"]["main_score"], 2) and "| ok " in row
    labelled = "- STS16: max_length 256" in summary
    assert labelled == kept == ("--max-length" in change)  # marked § and shown under its own settings where they
    # differ from the run's
    code, again = _run(tmp_path, "r", "--tasks", "STS16", *change)  # the next run replaces it, staging and all
    assert code == 0 and again["tasks"]["STS16"]["identity"]["max_length"] == again["identity"]["max_length"]
    assert not (tmp_path / "r" / ".staging").exists()


def test_crash_while_files_change_hands_leaves_the_task_pending(tmp_path: Path, monkeypatch) -> None:
    """Between removing the old files and recording the new result, run.json says pending: never the old record
    over new files (nor the new over old), whatever moment a run dies."""
    run = RunDir(tmp_path / "r", "org/model", "rev")
    old = {"status": "ok", "main_score": 0.5, "identity": {"dims": [64]}}
    run.write_run({"tasks": {"T": old}})
    for path in (run.result_path("T"), run.result_path("T", 64)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{}")
    staged = run.staging("T")
    staged.result_path("T").parent.mkdir(parents=True)
    staged.result_path("T").write_text('{"new": 1}')

    def dies(*_: object) -> None:  # after the files changed hands, before the new result is recorded
        raise KeyboardInterrupt

    monkeypatch.setattr(RunDir, "update_efficiency", dies)
    with pytest.raises(KeyboardInterrupt):
        run.replace_task("T", {"status": "pending"}, {"status": "ok", "main_score": 0.7}, staged, {"wall_s": 1.0})
    assert run.read_run()["tasks"]["T"] == {"status": "pending"}
    assert run.result_path("T").read_text() == '{"new": 1}' and not run.result_path("T", 64).exists()
    assert run.result_dims("T") == []


def test_summary_flags_a_task_kept_from_another_data_root(tmp_path: Path) -> None:
    """Before: STS16 from one data root sat in the mean of a run whose header names another, without a note."""
    first, second = _copy(("STS16",), tmp_path / "a"), _copy(("STS12",), tmp_path / "b")
    _run(tmp_path, "r", "--tasks", "STS16", data=first)
    _, record = _run(tmp_path, "r", "--tasks", "STS12", data=second)
    assert record["data_root"] == str(second.resolve())
    summary = (tmp_path / "r" / "summary.md").read_text()
    assert "- STS16: data root …/a (files sha256:" in summary and "- STS12" not in summary


def test_summary_compares_every_identity_key() -> None:
    """Each key of the task's identity against the run's, by name: pooling, kernels, mteb, a key added later."""
    run = {"model_fingerprint": "f", "dtype": "float32", "max_length": 256, "pooling": "mean", "dims": [],
           "mteb": "2.1", "prompts": {"query": "q: "}}  # fmt: skip
    tasks = {
        "Same": {**run, "source": "official", "data": "x@1"},
        "Cls": {**run, "pooling": "cls", "source": "official", "data": "y@1"},
        "Fused": {**run, "kernels": "onednn-fused-linear", "mteb": "2.0", "source": "official", "data": "z@1"},
        "Prompt": {**run, "prompts": {"query": ""}, "source": "official", "data": "z@1"},
    }
    record = {"identity": {**run, "new_key": 1}, "data_root": "/d",
              "tasks": {n: {"status": "ok", "source": "official", "identity": i} for n, i in tasks.items()}}
    found = other_settings(record)
    assert found["Cls"] == "pooling cls, new_key none"
    assert found["Fused"] == "mteb 2.0, kernels onednn-fused-linear, new_key none"
    assert found["Prompt"] == 'prompts {"query": ""}, new_key none'
    del record["identity"]["new_key"]
    assert set(other_settings(record)) == {"Cls", "Fused", "Prompt"}


def test_concurrent_stagings_of_one_task_keep_their_own_files(tmp_path: Path) -> None:
    """Before: both runs staged into `.staging/<Task>/`, the second cleared the first's files, and run.json said
    `ok` with no result file (audit J1). Each process now has its own folder; only a dead owner's is cleared, and
    a staged evaluation without its result file is recorded failed, never ok."""
    run = RunDir(tmp_path / "r", "org/model", "rev")
    run.write_run({"tasks": {}})
    first = run.staging("T")
    first.result_path("T").parent.mkdir(parents=True)
    first.result_path("T").write_text("{}")
    dead = run.path / ".staging" / f"T.{2**22 + 1}-0123456789ab"  # above Linux's pid_max: no such process
    dead.mkdir()
    second = run.staging("T")
    assert second.path != first.path and first.result_path("T").is_file() and not dead.exists()
    run.replace_task("T", {"status": "pending"}, {"status": "ok", "main_score": 0.7}, second, None)
    entry = run.read_run()["tasks"]["T"]
    assert entry["status"] == "failed" and entry["main_score"] is None and "result file is missing" in entry["error"]
    run.replace_task("T", {"status": "pending"}, {"status": "ok", "main_score": 0.7}, first, None)
    assert run.read_run()["tasks"]["T"]["status"] == "ok" and run.result_path("T").is_file()
