"""`harness regress`: a real degraded model is flagged, a batch-size change is not, bad input exits 2, nothing
compared exits 3."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from reporting.bootstrap import paired_bootstrap, verdict
from reporting.regress import compare
from reporting.regress_report import render
from reporting.regress_tasks import NOT_COMPARABLE, NOT_RUN

REPO = Path(__file__).resolve().parents[2]
BATCH8 = "TinySTS,TinyRerank,TinyClassification"  # the three of the seven tasks the batch8 run evaluated


def _regress(base: Path, cand: Path, out: Path, *extra: str) -> tuple[int, str]:
    code = main(["regress", "--baseline", str(base), "--candidate", str(cand), "--n-boot", "200",
                 "--out", str(out), *extra])  # fmt: skip
    return code, re.sub(r" +", " ", out.read_text(encoding="utf-8")) if out.exists() else ""


def test_degraded_model_is_a_regression(tiny_runs, tmp_path):
    code, text = _regress(tiny_runs["base"], tiny_runs["short"], tmp_path / "r.md")
    assert code == 1
    assert "**REGRESSION**" in text
    assert re.search(r"\| TinySTS \| STS \| cosine_spearman \| 80 pairs .*\*\*regressed", text)
    assert "## Efficiency" in text and "tokens/s" in text
    assert "- baseline: `…/base`" in text and str(tiny_runs["base"]) not in text  # no machine path in a report


def test_every_task_type_reproduces_its_score_from_items(tiny_runs):
    comp = compare(tiny_runs["base"], tiny_runs["short"], n_boot=50)
    assert {t.kind for t in comp.tasks} == {"STS", "PairClassification", "Reranking", "Retrieval", "Classification",
                                            "Clustering", "BitextMining"}  # fmt: skip
    assert all(t.verdict != "not tested" for t in comp.tasks), [(t.task, t.reason) for t in comp.tasks]
    assert all(t.lo <= t.delta <= t.hi for t in comp.tasks)


def test_batch_size_change_is_not_flagged(tiny_runs, tmp_path):
    code, text = _regress(tiny_runs["base"], tiny_runs["batch8"], tmp_path / "r.md", "--tasks", BATCH8)
    assert code == 0 and "No significant regression." in text
    assert text.startswith("# Regression report — PASS (exit 0): no significant regression on 3 task(s)\n")
    table = text.split("## Efficiency")[0]
    assert table.count("within noise") == 3 and "not tested" not in table
    assert "batch size: 64 → 8" in text  # efficiency flagged as not like for like
    assert "settings that differ" not in text  # the batch size moves no score: not in the run identity


def test_repeated_tasks_options_join(tiny_runs, tmp_path):
    """User walk (of `harness run --dims`): an option given twice kept the last alone; --tasks here joins too."""
    first, *rest = BATCH8.split(",")
    code, text = _regress(tiny_runs["base"], tiny_runs["batch8"], tmp_path / "r.md", "--tasks", first, "--tasks",
                          ",".join(rest))  # fmt: skip
    assert code == 0 and text.startswith("# Regression report — PASS (exit 0): no significant regression on 3 task(s)")


def test_regress_takes_dims_as_harness_run_spells_it(tiny_runs, tmp_path, capsys):
    """User walk: `harness regress --dims 128` was "unrecognized arguments" with no word that regress spells it
    `--dim`; it is the same option now, and a list (as `harness run --dims` takes) says regress takes one dim."""
    cand = tmp_path / "cand"
    shutil.copytree(tiny_runs["base"], cand)
    code, text = _regress(tiny_runs["base"], cand, tmp_path / "r.md", "--dims", "64", "--tasks", "TinySTS")
    assert code == 0 and "- scores at MRL dim 64: the first 64 dimensions" in text
    assert _regress(tiny_runs["base"], cand, tmp_path / "r.md", "--dims", "64,128")[0] == 2
    assert ("harness: error: --dim '64,128': not an integer; regress compares at one MRL dim: run it once per dim"
            in capsys.readouterr().err)
    # given twice: argparse kept the last, and the gate ran at 128 without a word of 64 (a walk, stop 65)
    assert _regress(tiny_runs["base"], cand, tmp_path / "r.md", "--dim", "64", "--dims", "128")[0] == 2
    assert ("harness: error: --dim given 2 times (64, 128): regress compares at one MRL dim: run it once per dim"
            in capsys.readouterr().err)
    assert (tmp_path / "r.md").read_text().startswith("# Regression report — UNUSABLE INPUT (exit 2): --dim given")


def test_a_baseline_task_the_candidate_lacks_is_not_a_pass(tiny_runs, tmp_path):
    """batch8 ran three of the baseline's seven tasks. Before: a "task sets differ" warning, "No significant
    regression." and exit 0: a nightly candidate that dropped tasks passed the gate on the rest."""
    code, text = _regress(tiny_runs["base"], tiny_runs["batch8"], tmp_path / "r.md")
    lacking = ["TinyPairs", "TinyRetrieval", "TinyClustering", "TinyBitext"]
    assert code == 3 and "No significant regression" not in text
    assert text.startswith("# Regression report — NOT COMPARED (exit 3): "
                           + ", ".join(f"{t} (not run in candidate)" for t in lacking) + "\n")  # fmt: skip
    assert text.count("**not run in candidate** (not in the candidate's run.json: run it there, or leave it out "
                      "with --tasks)") == 4  # fmt: skip


def test_unusable_input_exits_2(tiny_runs, tmp_path, capsys):
    """Before: "<dir>: not a run directory (<dir> is not a run directory (no run.json))", one message in another."""
    assert _regress(tmp_path, tiny_runs["base"], tmp_path / "r.md")[0] == 2
    err = capsys.readouterr().err
    assert f"--baseline {tmp_path}: not a run directory (no run.json)" in err and err.count("not a run directory") == 1
    assert _regress(tiny_runs["base"], tmp_path / "absent", tmp_path / "r.md")[0] == 2
    assert f"--candidate {tmp_path / 'absent'}: not a run directory (no such folder)" in capsys.readouterr().err
    assert _regress(tiny_runs["base"], tiny_runs["short"], tmp_path / "r3.md", "--alpha", "2")[0] == 2
    # audit, stop 50: a run compared with itself passed (a nightly job pointed at its baseline, every night)
    assert _regress(tiny_runs["base"], f"{tiny_runs['base']}/", tmp_path / "r4.md")[0] == 2
    assert f"--candidate {tiny_runs['base']}: the baseline's run directory" in capsys.readouterr().err


def test_runs_without_a_shared_finished_task_exit_3(tiny_runs, tmp_path, capsys):
    """Nothing to compare is not a usage mistake but a gate that tested nothing: exit 3, saying so."""
    other = tmp_path / "other"
    shutil.copytree(tiny_runs["base"], other, ignore=shutil.ignore_patterns("results", "predictions"))
    record = json.loads((other / "run.json").read_text())
    record["tasks"] = {f"Renamed{k}": v for k, v in record["tasks"].items()}
    (other / "run.json").write_text(json.dumps(record))
    code, text = _regress(tiny_runs["base"], other, tmp_path / "r2.md")
    assert code == 3 and text.startswith("# Regression report — NOT COMPARED (exit 3): TinySTS (not run in candidate)")
    assert "only in the candidate, no baseline score to compare with (not gated): RenamedTinySTS" in text
    record["tasks"] = {}  # a baseline that attempted nothing: no task to gate on at all
    (other / "run.json").write_text(json.dumps(record))
    assert _regress(other, tiny_runs["base"], tmp_path / "r3.md")[0] == 3
    assert "nothing compared: no task to compare between" in capsys.readouterr().err


def _before_identities(run: Path, *tasks: str) -> None:
    """Make ``run``'s records of ``tasks`` (all without) records from before task identities and per-item files."""
    record = json.loads((run / "run.json").read_text())
    for name, entry in record["tasks"].items():
        if not tasks or name in tasks:
            entry.pop("identity", None)
    (run / "run.json").write_text(json.dumps(record))


def test_no_task_tested_is_not_a_pass(tiny_runs, tmp_path):
    """Shared tasks that all end *not tested* (here: no per-item outputs, in a run from before the harness kept
    them) compared nothing. Before: "No significant regression." and exit 0, a silent pass for a nightly gate."""
    cand = tmp_path / "cand"
    shutil.copytree(tiny_runs["batch8"], cand, ignore=shutil.ignore_patterns("*_predictions.json"))
    _before_identities(cand)
    code, text = _regress(tiny_runs["base"], cand, tmp_path / "r.md", "--tasks", BATCH8)
    assert code == 3
    assert "**NOTHING COMPARED**: no task got a verdict." in text and "No significant regression" not in text
    assert text.count("not tested (the candidate (…/cand) keeps no predictions file for ") == 3
    assert "(…/cand/predictions/TinySTS_predictions.json; a run from before the harness recorded task identities)" \
        in text  # fmt: skip


@pytest.mark.parametrize("value", ["nan", "inf", "-0.5"])
def test_min_effect_must_be_a_finite_non_negative_number(tiny_runs, tmp_path, capsys, value):
    """Before: nan and inf were taken (nan: 'minimal effect nan points', and no change could ever count)."""
    assert _regress(tiny_runs["base"], tiny_runs["short"], tmp_path / "r.md", "--min-effect", value)[0] == 2
    assert f"--min-effect {float(value)}: must be a finite number of points, 0 or more" in capsys.readouterr().err
    assert (tmp_path / "r.md").read_text().startswith("# Regression report — UNUSABLE INPUT (exit 2): --min-effect")


def test_bonferroni_header_names_the_count_it_corrects_for(tiny_runs, tmp_path):
    """Before: the header counted every row (7, the failed task too) while α was divided by the 6 tasks tested."""
    cand = tmp_path / "cand"
    shutil.copytree(tiny_runs["short"], cand)
    record = json.loads((cand / "run.json").read_text())
    record["tasks"]["TinySTS"].update(status="failed", main_score=None, error="ValueError: bad row")
    (cand / "run.json").write_text(json.dumps(record))
    comp = compare(tiny_runs["base"], cand, n_boot=20, bonferroni=True)
    assert len(comp.tasks) == 7 and comp.settings["level"] == pytest.approx(0.05 / 6)
    assert "(Bonferroni: α = 0.05 over 6 shared tasks)" in render(comp)


def test_bonferroni_help_names_the_count_it_divides_by(capsys):
    """Before: the help said "the number of tasks tested", but α is divided by every task both runs finished."""
    with pytest.raises(SystemExit) as done:
        main(["regress", "--help"])
    assert done.value.code == 0
    assert "divide alpha by the number of tasks both runs finished, whether or not each gets a verdict" in re.sub(
        r"\s+", " ", capsys.readouterr().out)


@pytest.mark.parametrize(("record", "named"), [
    ([1, 2], "the file must be a JSON object, not a list"),
    ({"model": "minilm", "tasks": {}}, "field 'model' must be an object, not a string (minilm)"),
    ({"model": {"name": "m"}, "tasks": {}}, "field 'model.revision' is missing"),
    ({"model": {"name": "m", "revision": "r"}, "tasks": ["TinySTS"]}, "field 'tasks' must be an object, not a list"),
    ({"model": {"name": "m", "revision": "r"}, "tasks": {"TinySTS": "ok"}},
     "field 'tasks.TinySTS' must be a JSON object, not a string"),
    ({"model": {"name": "m", "revision": "r"}, "tasks": {"TinySTS": {"status": "ok", "main_score": "0.8"}}},
     "field 'tasks.TinySTS.main_score' must be a number or null, not a string"),
])  # fmt: skip
def test_a_run_json_of_another_shape_is_one_clear_error(tiny_runs, tmp_path, capsys, record, named):
    """Before: TypeError / AttributeError tracebacks (or 'not a run directory (...)' wrapping a KeyError)."""
    cand = tmp_path / "cand"
    shutil.copytree(tiny_runs["short"], cand)
    (cand / "run.json").write_text(json.dumps(record))
    assert _regress(tiny_runs["base"], cand, tmp_path / "r.md")[0] == 2
    err = capsys.readouterr().err
    assert f"{cand / 'run.json'}: {named}" in err
    assert err.rstrip().endswith("; restore the file, or give another run directory as --candidate")  # stop 64
    assert "Traceback" not in err


@pytest.mark.parametrize("command", ["regress", "leaderboard"])
def test_an_out_naming_a_folder_is_an_error_naming_it(tiny_runs, tmp_path, capsys, command):
    """Before: IsADirectoryError from os.replace, a traceback naming the temporary file; then the error came
    after every bootstrap (minutes on a large retrieval task). Now refused before any run is read."""
    folder = tmp_path / "reports"
    folder.mkdir()
    argv = {"regress": ["regress", "--baseline", str(tiny_runs["base"]), "--candidate", str(tiny_runs["batch8"]),
                        "--n-boot", "20"],
            "leaderboard": ["leaderboard", str(tiny_runs["base"])]}[command]  # fmt: skip
    assert main([*argv, "--out", str(folder)]) == 2
    out, err = capsys.readouterr()
    assert f"harness: error: --out {folder}: is a directory; give the name of a file to write" in err  # before,
    # naming no option (a user's walk)
    assert list(folder.iterdir()) == [] and "# Regression report" not in out and "# Leaderboard" not in out


@pytest.mark.parametrize("option", ["--out", "--json"])
def test_an_output_below_a_file_is_refused_before_any_run_is_read(tmp_path, capsys, option):
    """Audit: `regress --out afile/x.md` ran every bootstrap and printed the report, then refused the path. The
    runs here do not even exist: the path is the first thing checked, and no folder is made for it."""
    (tmp_path / "afile").write_text("x")
    paths = {"--out": str(tmp_path / "r.md"), "--json": str(tmp_path / "r.json"), option: str(tmp_path / "afile" / "x")}
    code = main(["regress", "--baseline", str(tmp_path / "absent"), "--candidate", str(tmp_path / "absent"),
                 "--out", paths["--out"], "--json", paths["--json"]])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.count(f"{tmp_path / 'afile' / 'x'}: cannot be written, a part of its folder, ") == 1
    assert "not a run directory" not in err and sorted(p.name for p in tmp_path.iterdir()) == ["afile"] + (
        ["r.json"] if option == "--out" else ["r.md"])  # the other file says why regress stopped


@pytest.mark.parametrize("damaged", ["predictions/TinySTS_predictions.json", "predictions/TinySTS_gold.json"])
def test_a_damaged_per_item_file_leaves_the_other_tasks_compared(tiny_runs, tmp_path, damaged):
    """Before: one cut-off per-item file ended the whole comparison (exit 2, no report). Now that task is *damaged
    file*, naming it, the others are tested, and the gate does not pass (exit 3: not everything was compared)."""
    cand = tmp_path / "cand"
    shutil.copytree(tiny_runs["batch8"], cand)
    target = cand / damaged
    text = target.read_text()[:40]
    target.write_text(text)
    code, report = _regress(tiny_runs["base"], cand, tmp_path / "r.md", "--tasks", BATCH8)
    assert code == 3 and "**NOT COMPARED**: TinySTS (damaged file)." in report
    # named as the reports show paths: before stop 64 by the machine's absolute path (a user's walk)
    shown = f"…/cand/{damaged}" if not str(target).startswith(str(Path.cwd())) else target.relative_to(Path.cwd())
    assert re.search(rf"\*\*damaged file\*\* \({re.escape(str(shown))}:\d+: damaged JSON", report)
    assert str(tmp_path) not in report
    assert report.split("## Efficiency")[0].count("within noise") == 2
    assert target.read_text() == text


def test_a_task_the_candidate_has_not_run_is_not_called_failed(tiny_runs, tmp_path):
    """Before: a pending task (an interrupted or still running candidate) was labelled *failed in candidate*."""
    cand = tmp_path / "cand"
    shutil.copytree(tiny_runs["batch8"], cand)
    record = json.loads((cand / "run.json").read_text())
    record["tasks"]["TinySTS"].update(status="pending", main_score=None)
    (cand / "run.json").write_text(json.dumps(record))
    comp = compare(tiny_runs["base"], cand, n_boot=20, tasks=BATCH8.split(","))
    (sts,) = [t for t in comp.tasks if t.task == "TinySTS"]
    assert sts.verdict == NOT_RUN and not comp.failed and comp.exit_status == 3
    assert sts.reason == "status pending: the candidate run has not evaluated it"
    assert "**NOT COMPARED**: TinySTS (not run in candidate)." in render(comp)


def test_a_pending_task_the_baseline_never_had_does_not_block_the_gate(tiny_runs, tmp_path):
    """A copy of the baseline rerun with one more task and stopped before it ran (a user's walk, stop 64): before,
    "NOT COMPARED (exit 3): TinyPairs (not run in candidate)", though the baseline had no score to lose there."""
    cand = tmp_path / "cand"
    shutil.copytree(tiny_runs["batch8"], cand)
    record = json.loads((cand / "run.json").read_text())
    record["tasks"]["TinyPairs"] = {"type": "PairClassification", "status": "pending"}
    (cand / "run.json").write_text(json.dumps(record))
    comp = compare(tiny_runs["batch8"], cand, n_boot=20)
    assert comp.exit_status == 0 and [t.task for t in comp.tasks] == BATCH8.split(","), comp.outcome
    assert "only in the candidate (pending), not gated: TinyPairs" in comp.warnings
    record["tasks"]["TinySTS"].update(status="pending", main_score=None)  # one the baseline scored still blocks
    (cand / "run.json").write_text(json.dumps(record))
    outcome = compare(tiny_runs["batch8"], cand, n_boot=20).outcome
    assert outcome == "NOT COMPARED (exit 3): TinySTS (not run in candidate)"


@pytest.mark.parametrize(("side", "lost"), [("baseline", "TinySTS_predictions.json"),
                                            ("candidate", "TinySTS_predictions.json"),
                                            ("candidate", "TinySTS_gold.json")])  # fmt: skip
def test_a_lost_per_item_file_is_a_damaged_file(tiny_runs, tmp_path, side, lost):
    """A user's walk (stop 66): a task recorded finished whose per-item file was deleted, on either side, was *not
    tested*, which does not gate: a baseline that lost one file passed every night (PASS, exit 0, over a 27-point
    drop), and removing a damaged file as its error advised turned exit 3 into that pass. `harness run` counts
    such a task unfinished (`RunDir.unfinished_files`), so regress calls the file damaged, naming the side, the run
    directory, the file and the rerun that repairs it."""
    base, cand = tmp_path / "base", tmp_path / "cand"
    shutil.copytree(tiny_runs["batch8"], base)
    shutil.copytree(tiny_runs["batch8"], cand)
    run = base if side == "baseline" else cand
    (run / "predictions" / lost).unlink()
    code, text = _regress(base, cand, tmp_path / "r.md", "--tasks", "TinySTS,TinyRerank", "--json",
                          str(tmp_path / "r.json"))  # fmt: skip
    assert code == 3 and text.startswith("# Regression report — NOT COMPARED (exit 3): TinySTS (damaged file)\n")
    said = (f"**damaged file** (…/{run.name}/predictions/{lost}: missing in the {side} (…/{run.name}), whose run.json "
            f"records TinySTS as finished with it; `harness run` into …/{run.name} evaluates TinySTS again")
    assert said in text, text
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["exit_status"] == 3 and not report["passed"] and report["not_compared"] == ["TinySTS"]
    sts, rerank = report["tasks"]
    assert (sts["verdict"], sts["fails_gate"], sts["gate_exit"]) == ("damaged file", True, 3)
    assert sts["reason"].startswith(f"…/{run.name}/predictions/{lost}: missing in the {side}")
    assert rerank["verdict"] == "within noise" and not rerank["fails_gate"]  # the other tasks are still tested


def test_gold_labels_come_from_the_run_directory(tiny_runs, tiny_root, tmp_path):
    """Regress reads the items' gold labels from the run directory (predictions/<Task>_gold.json), not from the
    data root; one lost from a task recorded finished is a damaged file (before stop 66 *not tested*), one a run
    from before they were kept lacks is not tested; each says what to rerun, and that rerun repairs it."""
    base, cand = tmp_path / "base", tmp_path / "cand"
    shutil.copytree(tiny_runs["base"], base)
    shutil.copytree(tiny_runs["short"], cand)
    gold = json.loads((base / "predictions" / "TinySTS_gold.json").read_text())
    assert gold["type"] == "STS" and gold["split"] == "test" and len(gold["gold"]) == 80
    for run in (base, cand):  # the mirror folder is gone: nothing may need it
        record = json.loads((run / "run.json").read_text())
        record["data_root"] = str(tmp_path / "moved")
        record["tasks"]["TinySTS"]["path"] = str(tmp_path / "moved" / "en" / "TinySTS")
        record["tasks"]["TinySTS"]["data_root"] = str(tmp_path / "moved")
        (run / "run.json").write_text(json.dumps(record))
    (sts,) = compare(base, cand, n_boot=50, tasks=["TinySTS"]).tasks
    assert sts.verdict == "regressed"
    (base / "predictions" / "TinySTS_gold.json").unlink()
    (sts,) = compare(base, cand, n_boot=50, tasks=["TinySTS"]).tasks
    assert sts.verdict == "damaged file" and "missing in the baseline (…/base)" in sts.reason
    assert "`harness run` into …/base evaluates TinySTS again" in sts.reason  # as the advice says: no --overwrite
    record = json.loads((base / "run.json").read_text())
    identity = record["tasks"]["TinySTS"].pop("identity")  # a record from before the harness kept gold labels
    (base / "run.json").write_text(json.dumps(record))
    (sts,) = compare(base, cand, n_boot=50, tasks=["TinySTS"]).tasks
    assert sts.verdict == "not tested" and "the baseline (…/base) keeps no gold labels for TinySTS" in sts.reason
    assert "`harness run` into it evaluates that task again" in sts.reason
    record["tasks"]["TinySTS"]["identity"] = identity
    (base / "run.json").write_text(json.dumps(record))
    assert main(["run", "--tasks", "TinySTS", "--model", "minilm", "--data-dir", str(tiny_root), "--out", str(tmp_path),
                 "--run-name", "base", "--batch-size", "64", "--dims", "64,full", "--no-progress"]) == 0  # fmt: skip
    (sts,) = compare(base, cand, n_boot=50, tasks=["TinySTS"]).tasks
    assert sts.verdict == "regressed"


def test_verdict_rules():
    assert verdict(-0.05, -0.08, -0.02, 0.001) == "regressed"
    assert verdict(-0.0005, -0.0008, -0.0002, 0.001) == "within noise"  # significant but below min effect
    assert verdict(0.03, 0.01, 0.05, 0.001) == "improved"
    assert verdict(0.01, -0.01, 0.03, 0.0) == "within noise"


def test_paired_bootstrap_cancels_shared_item_difficulty():
    # Per-item scores vary a lot between items, but the candidate is the baseline + 0.01 on every item:
    # a paired bootstrap sees exactly 0.01 on every resample.
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, 200)
    cand = base + 0.01
    pos = np.arange(200)
    deltas = paired_bootstrap(lambda i: base[i].mean(), lambda i: cand[i].mean(), pos, pos, 100, rng)
    assert deltas == pytest.approx(np.full(100, 0.01))


def test_records_without_metric_or_split_are_still_tested(tiny_runs, tmp_path):
    """A rerun that skips finished tasks may rewrite run.json with fewer keys; the gold data still decides."""
    base = tmp_path / "base"
    shutil.copytree(tiny_runs["base"], base)
    record = json.loads((base / "run.json").read_text())
    for task in record["tasks"].values():
        task.pop("main_metric", None)
        task.pop("split", None)
    (base / "run.json").write_text(json.dumps(record))
    (sts,) = compare(base, tiny_runs["short"], n_boot=50, tasks=["TinySTS"]).tasks
    assert sts.verdict == "regressed" and sts.metric == "cosine_spearman"


def test_task_on_different_data_is_not_comparable(tiny_runs, tmp_path):
    short = tmp_path / "short"
    shutil.copytree(tiny_runs["short"], short)
    record = json.loads((short / "run.json").read_text())
    record["tasks"]["TinySTS"]["sampling"] = "another sample"
    (short / "run.json").write_text(json.dumps(record))
    comp = compare(tiny_runs["base"], short, n_boot=50, tasks=["TinySTS"])
    (sts,) = comp.tasks
    assert sts.verdict == NOT_COMPARABLE and comp.exit_status == 3
    assert sts.reason.startswith("the runs' scores are not comparable (sampling differs: baseline `")
    assert "candidate `another sample`): rerun the baseline" in sts.reason  # each side's value, since stop 64


@pytest.mark.parametrize(("where", "value", "named"), [
    (("identity", "data"), "sha256:other-rows", "data"), (("main_metric",), "cosine_pearson", "main_metric"),
])  # fmt: skip
def test_other_rows_or_another_metric_are_not_comparable(tiny_runs, tmp_path, where, value, named):
    """Rows edited behind an unchanged task.json (the recorded file hash differs; audit I: the same vectors gave
    a REGRESSION of −44 points, exit 1) and another main metric of one task are no basis for a verdict. Before:
    *not tested*, and the gate passed (exit 0) without ever looking at the task again until a re-baseline."""
    short = tmp_path / "short"
    shutil.copytree(tiny_runs["short"], short)
    record = json.loads((short / "run.json").read_text())
    target = record["tasks"]["TinySTS"]
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    (short / "run.json").write_text(json.dumps(record))
    comp = compare(tiny_runs["base"], short, n_boot=50, tasks=["TinySTS"])
    (sts,) = comp.tasks
    assert sts.verdict == NOT_COMPARABLE and sts.reason.startswith(f"the runs' scores are not comparable ({named} "
                                                                   "differs: baseline `")  # fmt: skip
    # both values, a file hash by its start: "(data differ)" said neither (a user's walk, stop 64)
    assert f", candidate `{value[:15] + '…' if named == 'data' else value}`): rerun" in sts.reason
    assert comp.exit_status == 3 and comp.outcome == "NOT COMPARED (exit 3): TinySTS (not comparable)"


def test_a_task_the_candidate_failed_fails_the_gate(tiny_runs, tmp_path, capsys):
    """Before: only a 'task sets differ' warning, "No significant regression." and exit 0."""
    cand = tmp_path / "cand"
    shutil.copytree(tiny_runs["short"], cand)
    record = json.loads((cand / "run.json").read_text())
    record["tasks"]["TinySTS"].update(status="failed", main_score=None, error="ValueError: bad row\ntrace")
    (cand / "run.json").write_text(json.dumps(record))
    comp = compare(tiny_runs["base"], cand, n_boot=20, tasks=["TinySTS"])
    assert comp.failed == ["TinySTS"] and comp.tasks[0].reason == "status failed: ValueError: bad row"
    out = tmp_path / "r.md"
    assert main(["regress", "--baseline", str(tiny_runs["base"]), "--candidate", str(cand), "--n-boot", "20",
                 "--tasks", "TinySTS", "--out", str(out)]) == 1  # fmt: skip
    text = out.read_text()
    assert "**FAILED** in the candidate: TinySTS." in text and "No significant regression" not in text
    assert re.search(r"\| TinySTS +\| STS +\| cosine_spearman +\| — +\| [\d.]+ +\| — +\| — +\| — +\| "
                     r"\*\*failed in candidate\*\* \(status failed: ValueError: bad row\)", text)


def test_a_tasks_name_in_neither_run_is_a_usage_error(tiny_runs, tmp_path, capsys):
    """A typo in a nightly gate's --tasks silently dropped the task (audit I F8)."""
    assert main(["regress", "--baseline", str(tiny_runs["base"]), "--candidate", str(tiny_runs["short"]),
                 "--tasks", "TinySTS,TinySTSS", "--out", str(tmp_path / "r.md")]) == 2  # fmt: skip
    assert "--tasks: TinySTSS in neither run" in capsys.readouterr().err
    # the close names, as `harness run --tasks` gives them: none before stop 64 (a user's walk, `--tasks stsb`)
    assert main(["regress", "--baseline", str(tiny_runs["base"]), "--candidate", str(tiny_runs["short"]),
                 "--tasks", "tinysts", "--out", str(tmp_path / "r.md")]) == 2  # fmt: skip
    assert capsys.readouterr().err.rstrip().endswith(f"{tiny_runs['short']}); did you mean: TinySTS, TinyPairs?")
    assert main(["regress", "--baseline", str(tiny_runs["base"]), "--candidate", str(tiny_runs["short"]),
                 "--tasks", "TinyPair,TinyRerankk", "--out", str(tmp_path / "r.md")]) == 2  # fmt: skip
    assert capsys.readouterr().err.rstrip().endswith("; TinyPair: did you mean TinyPairs, TinyRerank, TinyBitext?; "
                                                     "TinyRerankk: did you mean TinyRerank, TinyRetrieval, "
                                                     "TinyClustering?")  # fmt: skip


def test_task_kept_from_other_settings_is_not_comparable(tiny_runs, tmp_path):
    """A task the candidate's directory kept from a run with other settings scores that configuration, not the
    candidate's: a verdict on it would test something else, so it is not tested, and the reason says so."""
    short = tmp_path / "short"
    shutil.copytree(tiny_runs["short"], short)
    record = json.loads((short / "run.json").read_text())
    record["tasks"]["TinySTS"]["identity"]["max_length"] = 8
    (short / "run.json").write_text(json.dumps(record))
    comp = compare(tiny_runs["base"], short, n_boot=50, tasks=["TinySTS"])
    (sts,) = comp.tasks
    assert sts.verdict == NOT_COMPARABLE and comp.exit_status == 3
    assert sts.reason == "the candidate kept it from a run with other settings (max_length 8)"


def _kept(run: Path, copy: Path, task: str, **identity) -> Path:
    """A copy of ``run`` whose ``task`` reads as kept from an earlier evaluation with ``identity``'s values (None:
    the key absent, as in a run without --dims)."""
    shutil.copytree(run, copy)
    record = json.loads((copy / "run.json").read_text())
    ident = record["tasks"][task]["identity"]
    for key, value in identity.items():
        ident.pop(key) if value is None else ident.__setitem__(key, value)
    (copy / "run.json").write_text(json.dumps(record))
    return copy


def test_at_a_dim_a_task_kept_from_other_settings_still_blocks_the_gate(tiny_runs, tmp_path):
    """Before (audit, stop 46): the dim was looked at first, so a task kept from a run with other settings and no
    result at the dim was "not tested" and `--dim 64` passed (exit 0) where the full width exits 3."""
    cand = _kept(tiny_runs["base"], tmp_path / "cand", "TinySTS", max_length=8, dims=None, dim_view=None)
    for dim in (None, 64):
        comp = compare(tiny_runs["base"], cand, n_boot=50, dim=dim, tasks=["TinySTS", "TinyPairs"])
        sts = next(t for t in comp.tasks if t.task == "TinySTS")
        assert (sts.verdict, comp.exit_status) == (NOT_COMPARABLE, 3), dim
        assert sts.reason == "the candidate kept it from a run with other settings (max_length 8)"


def test_the_dims_an_evaluation_asked_for_do_not_make_a_kept_task_not_comparable(tiny_runs, tmp_path):
    """A task kept from a run without --dims scores its full width as the others: tested there (before stop 46: not
    comparable, exit 3); at a dim it has no result for it is not tested, saying so."""
    cand = _kept(tiny_runs["base"], tmp_path / "cand", "TinySTS", dims=None, dim_view=None)
    (full,) = compare(tiny_runs["base"], cand, n_boot=50, tasks=["TinySTS"]).tasks
    assert full.verdict != NOT_COMPARABLE and full.lo is not None
    comp = compare(tiny_runs["base"], cand, n_boot=50, dim=64, tasks=["TinySTS", "TinyPairs"])
    sts = next(t for t in comp.tasks if t.task == "TinySTS")
    assert sts.verdict == "not tested" and sts.reason == "…/cand: TinySTS has no result at MRL dim 64 (dims there: [])"
    # the width's note only where it can be why (a user's walk: said of a dim far below a recorded width)
    record = json.loads((cand / "run.json").read_text(encoding="utf-8"))
    del record["model"]["embed_dim"]  # a record that does not say its width
    (cand / "run.json").write_text(json.dumps(record), encoding="utf-8")
    comp = compare(tiny_runs["base"], cand, n_boot=50, dim=64, tasks=["TinySTS", "TinyPairs"])
    sts = next(t for t in comp.tasks if t.task == "TinySTS")
    assert sts.reason.endswith("(dims there: []; a dim equal to the model's width is its full score, not an MRL dim)")
    viewed = _kept(tiny_runs["base"], tmp_path / "viewed", "TinySTS", dim_view="renormalised")
    sts = next(t for t in compare(tiny_runs["base"], viewed, n_boot=50, dim=64, tasks=["TinySTS", "TinyPairs"]).tasks
               if t.task == "TinySTS")  # fmt: skip
    assert sts.verdict == NOT_COMPARABLE and "viewed dims otherwise (dim_view" in sts.reason
    # the run's own identity is the latest run's: one without --dims (no dim_view) leaves raw-prefix tasks tested
    latest = tmp_path / "latest"
    shutil.copytree(tiny_runs["base"], latest)
    record = json.loads((latest / "run.json").read_text())
    record["identity"] = {k: v for k, v in record["identity"].items() if k not in ("dims", "dim_view")}
    (latest / "run.json").write_text(json.dumps(record))
    sts = next(t for t in compare(tiny_runs["base"], latest, n_boot=50, dim=64, tasks=["TinySTS", "TinyPairs"]).tasks
               if t.task == "TinySTS")  # fmt: skip
    assert sts.verdict != NOT_COMPARABLE and sts.lo is not None


def test_a_damaged_result_file_at_the_dim_is_named(tiny_runs, tmp_path):
    """run.json lists dim 64 for the task but its result file is not JSON: before (audit, stop 46) the run's dim
    list skipped the file and the task was "not tested" (exit 0); now the damaged-file verdict (exit 3) names it."""
    cand = tmp_path / "cand"
    shutil.copytree(tiny_runs["base"], cand)
    damaged = next((cand / "results").rglob("experiments/embed_dim_64/TinySTS.json"))
    damaged.write_text("{")
    comp = compare(tiny_runs["base"], cand, n_boot=50, dim=64, tasks=["TinySTS", "TinyPairs"])
    sts = next(t for t in comp.tasks if t.task == "TinySTS")
    assert sts.verdict == "damaged file" and comp.exit_status == 3
    assert f"…/{damaged.relative_to(tmp_path)}" in sts.reason and "which run.json lists, is missing or not JSON" in \
        sts.reason and str(tmp_path) not in sts.reason  # no machine's path since stop 64 (a user's walk)


def test_too_few_resamples_for_the_ci_level_are_named(tiny_runs):
    """Each CI end is a quantile of the resamples: with Bonferroni over 7 tasks at 200 resamples it would rest
    on 0.7 of them, and the report says how many to use instead."""
    few = compare(tiny_runs["base"], tiny_runs["short"], n_boot=200, bonferroni=True)
    assert any("rests on 0.7 of 200 resamples; use --n-boot 2800 or more" in w for w in few.warnings)
    enough = compare(tiny_runs["base"], tiny_runs["short"], n_boot=400, tasks=["TinySTS"])
    assert not any("rests on" in w for w in enough.warnings)  # 400 × 0.025 = 10 beyond each end


def test_a_confidence_near_100_percent_keeps_its_digits():
    """A nightly walk (stop 69): α = 1e-7 read "two-sided 100% CI"."""
    from reporting.regress import confidence

    assert [confidence(a) for a in (0.05, 0.05 / 7, 1e-7, 0.0)] == ["95%", "99.29%", "99.99999%", "100%"]


@pytest.mark.parametrize("damaged", ["run.json", "efficiency.json"])
def test_a_damaged_run_file_is_an_error_naming_it(tiny_runs, tmp_path, capsys, damaged):
    """Before: a raw JSONDecodeError traceback (exit 1) from regress, report and leaderboard, naming no file
    (audit J4). Now exit 2 with file:line, and the file is left as it was. (A task's per-item file: below; regress
    and efficiency.json: `test_an_unreadable_efficiency_file_is_a_warning`.)"""
    cand = tmp_path / "cand"
    shutil.copytree(tiny_runs["short"], cand)
    target = cand / damaged
    text = target.read_text()[:40]
    target.write_text(text)
    commands = [["report", str(cand), "--out", str(tmp_path / "e.md")]]
    if damaged == "run.json":  # the leaderboard reads scores only, regress no timings to give its verdict
        commands += [["leaderboard", str(cand), "--out", str(tmp_path / "l.md")],
                     ["regress", "--baseline", str(tiny_runs["base"]), "--candidate", str(cand), "--tasks", "TinySTS",
                      "--n-boot", "20", "--out", str(tmp_path / "r.md")]]  # fmt: skip
    for argv in commands:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert f"{target}:" in err and "damaged JSON" in err and "Traceback" not in err, (argv, err)
    assert target.read_text() == text


@pytest.mark.parametrize("how", ["damaged", "missing"])
@pytest.mark.parametrize("side", ["baseline", "candidate"])
def test_an_unreadable_efficiency_file_is_a_warning(tiny_runs, tmp_path, how, side):
    """A user's walk (stop 66): timings are no part of the verdict, yet a damaged efficiency.json stopped regress
    (UNUSABLE INPUT, exit 2) and a deleted one emptied its side of the efficiency table without a word. Either is
    now a warning naming the file, that side's figures are dashes, and the verdict is given."""
    base, cand = tmp_path / "base", tmp_path / "cand"
    shutil.copytree(tiny_runs["base"], base)
    shutil.copytree(tiny_runs["short"], cand)
    run = base if side == "baseline" else cand
    target = run / "efficiency.json"
    if how == "damaged":
        target.write_text(target.read_text()[:40])
    else:
        target.unlink()
    code, text = _regress(base, cand, tmp_path / "r.md", "--tasks", "TinySTS")
    assert code == 1 and text.startswith("# Regression report — FAIL (exit 1): regression on 1 task(s): TinySTS")
    said = (f"- the {side}'s efficiency.json is damaged, so the efficiency table shows no figures for the {side} "
            f"(…/{run.name}/efficiency.json:" if how == "damaged" else
            f"- the {side}'s …/{run.name}/efficiency.json is missing, so the efficiency table shows no figures for "
            f"the {side} (the scores are all in run.json")  # fmt: skip
    assert said in text and ("damaged JSON" in text) == (how == "damaged"), text
    # the Δ cell is a dash, "— (cache-only side)" where the other side's run was served by a warm embedding cache
    row = re.search(r"\| TinySTS \| ([^|]+) \| ([^|]+) \| —[^|]*\|", text.split("## Efficiency")[1])
    assert row and row[1 if side == "baseline" else 2].strip() == "—" != row[2 if side == "baseline" else 1].strip()


def test_a_lost_gold_file_at_an_mrl_dim_is_a_damaged_file(tiny_runs, tmp_path):
    """At `--dim` a task reads its dim's predictions and the gold file: a gold file lost from a task recorded
    finished is a damaged file there too (before stop 66 *not tested*, a pass); a dim's predictions are kept only
    with --dim-predictions, which run.json does not record, so a missing one stays not tested, naming the side."""
    cand = tmp_path / "cand"
    shutil.copytree(tiny_runs["base"], cand)
    (cand / "predictions" / "embed_dim_64" / "TinySTS_predictions.json").unlink()
    (sts,) = compare(tiny_runs["base"], cand, n_boot=20, dim=64, tasks=["TinySTS"]).tasks
    assert sts.verdict == "not tested" and sts.reason.startswith("the candidate (…/cand) keeps no predictions file")
    (cand / "predictions" / "TinySTS_gold.json").unlink()
    comp = compare(tiny_runs["base"], cand, n_boot=20, dim=64, tasks=["TinySTS"])
    (sts,) = comp.tasks
    assert sts.verdict == "damaged file" and comp.exit_status == 3
    assert sts.reason.startswith("…/cand/predictions/TinySTS_gold.json: missing in the candidate (…/cand)")


def test_regress_at_an_mrl_dim_tests_the_truncated_vectors(tiny_runs, tiny_root, tmp_path, capsys):
    """`--dim 64`: Δ and CI of the 64-dim prefixes (a model served at 64 dims), written out here with scipy from
    both runs' predictions/embed_dim_64/ and the same resamples; not the full width's. A run scored without the
    dim, or without its per-item outputs, is named, never silently compared at full width."""
    import zlib

    from scipy.stats import spearmanr

    from harness.runs import open_run

    cand = tmp_path / "short4"
    assert main(["run", "--tasks", "TinySTS", "--model", "minilm", "--data-dir", str(tiny_root), "--out",
                 str(tmp_path), "--run-name", "short4", "--no-progress", "--max-length", "4", "--dims", "64",
                 "--dim-predictions"]) == 0  # fmt: skip
    capsys.readouterr()
    code, text = _regress(tiny_runs["base"], cand, tmp_path / "r.md", "--dim", "64", "--tasks", "TinySTS")
    (sts,) = compare(tiny_runs["base"], cand, n_boot=200, dim=64, tasks=["TinySTS"]).tasks

    gold = np.asarray([json.loads(x)["score"] for x in (tiny_root / "en" / "TinySTS" / "test.jsonl").read_text()
                       .splitlines()], dtype=float)  # fmt: skip

    def sims(run: Path) -> np.ndarray:
        preds = json.loads((run / "predictions" / "embed_dim_64" / "TinySTS_predictions.json").read_text())
        return np.asarray(preds["default"]["test"]["cosine_scores"], dtype=float)

    ref, new = sims(tiny_runs["base"]), sims(cand)
    rng, deltas = np.random.default_rng([0, zlib.crc32(b"TinySTS")]), []
    for _ in range(200):
        idx = rng.integers(0, len(gold), len(gold))
        deltas.append(spearmanr(gold[idx], new[idx])[0] - spearmanr(gold[idx], ref[idx])[0])
    delta = spearmanr(gold, new)[0] - spearmanr(gold, ref)[0]
    # Δ is of the dim result files' scores, which mteb rounds to 6 decimals (each within 5e-7 of the items' exact
    # recomputation); the CI ends are quantiles of the resamples, computed from the items exactly.
    assert sts.delta == pytest.approx(delta, abs=1e-6) and sts.n == len(gold)
    assert (sts.lo, sts.hi) == pytest.approx(tuple(np.quantile(deltas, [0.025, 0.975])), abs=1e-12)
    full = open_run(cand).read_run()["tasks"]["TinySTS"]["main_score"]
    assert sts.cand == open_run(cand).dim_scores("TinySTS")[64] != pytest.approx(full, abs=1e-6)
    assert code == (1 if sts.verdict == "regressed" else 0) and "## Scores (main score ×100, at MRL dim 64)" in text
    assert "- scores at MRL dim 64: the first 64 dimensions of each embedding as they are, as mteb's" in text

    # the candidate scored at full width only: exit 2 naming it and the fix
    assert _regress(tiny_runs["base"], tiny_runs["short"], tmp_path / "r2.md", "--dim", "64")[0] == 2
    err = capsys.readouterr().err
    assert f"--dim 64: no task has a result at MRL dim 64 in both runs ({tiny_runs['short']})" in err
    assert "; run it with `harness run --dims 64 --dim-predictions`" in err
    assert _regress(tiny_runs["base"], cand, tmp_path / "r3.md", "--dim", "0")[0] == 2
    # scored at the dim without its per-item outputs (no --dim-predictions): not tested, saying which flag
    shutil.rmtree(cand / "predictions" / "embed_dim_64")
    (sts,) = compare(tiny_runs["base"], cand, n_boot=20, dim=64, tasks=["TinySTS"]).tasks
    assert sts.verdict == "not tested" and "--dims 64 --dim-predictions" in sts.reason and not sts.lo


def test_retrieval_items_read_each_ranking_down_to_k_only():
    """The per-query scorer hands pytrec_eval only the documents that can rank in a query's top k (mteb keeps up to
    1,000 per query; SQuADRetrieval's file is 119 MB): every measure's per-query value equals pytrec_eval's on the
    whole ranking, with scores rounded to one decimal so that ties at the k-th score are the rule."""
    import pytrec_eval

    from reporting.items import PYTREC, _retrieval

    rng = np.random.default_rng(0)
    qrels = {f"q{i}": {f"d{j}": int(rng.integers(1, 3)) for j in rng.choice(200, 5, replace=False)} for i in range(60)}
    out = {q: {f"d{j}": float(np.round(rng.random(), 1)) for j in range(200)} for q in qrels}
    for base, (measure, key) in PYTREC.items():
        for k in (1, 3, 10, 1000):
            items = _retrieval(qrels, out, f"{base}_{k}")
            whole = pytrec_eval.RelevanceEvaluator(qrels, {f"{measure}.{k}"}).evaluate(out)
            assert [items.score(np.asarray([i])) for i in range(len(items.keys))] == [
                whole[q][f"{key}_{k}"] for q in items.keys], (base, k)  # fmt: skip


def _cron_line() -> str:
    """docs/reports.md's nightly crontab entry as cron's shell gets it: no schedule, `\\%` as `%`."""
    text = (REPO / "docs" / "reports.md").read_text(encoding="utf-8")
    (entry,) = re.findall(r"```cron\n(.+?)\n```", text, flags=re.S)
    return entry.split(" ", 5)[5].replace("\\%", "%")


@pytest.mark.slow
def test_nightly_cron_example_mails_whatever_fails(tiny_runs, tiny_root, tmp_path):
    """The documented crontab line, run by /bin/sh as cron would, in a scratch /srv/conan whose `mail` keeps what it
    is sent. Before: `harness run ... && harness regress ... || mail ... < report.md` mailed nothing when the run
    failed (regress skipped, the report never written, the redirection failing before mail started)."""
    import os
    import subprocess
    import sys

    home = tmp_path / "conan"
    (home / ".venv" / "bin").mkdir(parents=True)
    (home / ".venv" / "bin" / "activate").write_text(f'PATH="{home / "bin"}:$PATH"; export PATH\n')
    (home / "bin").mkdir()
    for name, script in (("harness", f'exec "{sys.executable}" -m harness.cli "$@"'),
                         ("mail", f'{{ printf "%s\\n" "$@"; cat; }} > "{home / "mail.txt"}"')):  # fmt: skip
        (home / "bin" / name).write_text(f"#!/bin/sh\n{script}\n")
        (home / "bin" / name).chmod(0o755)
    line = _cron_line().replace("/srv/conan", str(home))

    # as written: no checkpoint, no /srv/data, no baseline: both commands fail, and the team still gets mail
    subprocess.run(["/bin/sh", "-c", line], env=os.environ, check=False)
    mail = (home / "mail.txt").read_text()
    assert re.search(r"embedding regression [\d-]+: run exit 2, regress exit 2\nteam@example.com\n", mail), mail
    assert "harness: error:" in mail and "not a run directory" in mail

    # a candidate no worse than the baseline: both exit 0, the log is kept, and nobody is mailed
    (home / "mail.txt").unlink()
    shutil.copytree(tiny_runs["base"], home / "runs" / "baseline")
    record = json.loads((home / "runs" / "baseline" / "run.json").read_text())  # the baseline ran the same suite
    record["tasks"] = {"TinySTS": record["tasks"]["TinySTS"]}
    (home / "runs" / "baseline" / "run.json").write_text(json.dumps(record))
    ok = line.replace("--model conan:checkpoints/latest --suite cmteb --data-dir /srv/data",
                      f"--model minilm --tasks TinySTS --data-dir {tiny_root} --no-progress")  # fmt: skip
    subprocess.run(["/bin/sh", "-c", ok], env=os.environ, check=False)
    (log,) = (home / "reports").glob("nightly-*.log")
    assert "No significant regression." in log.read_text() and not (home / "mail.txt").exists(), log.read_text()


def test_clustering_verdicts_are_advisory(tiny_runs, tmp_path):
    """A clustering CI holds each run's k-means assignment fixed, while another k-means start on the same
    embeddings moves v_measure by more than it (benchmarks/bench_kmeans_spread.py): its verdict is shown but never
    fails the gate. Before: a significant clustering change was a **regressed**/**improved** like any other and
    a clustering "regression" exited 1. alpha 0.9 makes the CI narrow enough that any change is significant."""
    comp = compare(tiny_runs["base"], tiny_runs["short"], n_boot=50, alpha=0.9, min_effect=0.0,
                   tasks=["TinyClustering"])  # fmt: skip
    (task,) = comp.tasks
    assert task.verdict in ("regressed", "improved") and "k-means" in task.advisory
    assert comp.regressed == [] and comp.advised == [task] and comp.exit_status == 0
    text = render(comp)
    assert f"Advisory (clustering, not gating): TinyClustering {task.verdict}." in text
    assert f"**{task.verdict}**" not in text
    # the first line, the one a CI log shows, says an advisory regression too (a nightly walk, stop 69: it read
    # "no significant regression" over a CI wholly below 0)
    first = ("PASS (exit 0): no gating regression on 1 task(s); advisory (clustering, not gating): TinyClustering "
             "regressed" if task.verdict == "regressed" else "PASS (exit 0): no significant regression on 1 task(s)")
    assert comp.outcome == first and text.startswith(f"# Regression report — {first}\n")
    code, _ = _regress(tiny_runs["base"], tiny_runs["short"], tmp_path / "r.md", "--tasks", "TinyClustering",
                       "--alpha", "0.9", "--min-effect", "0")  # fmt: skip
    assert code == 0


def test_ci_ends_that_round_to_zero_keep_their_sign():
    """An *improved* CI starting at +0.00004 read "[+0.00, …]"; it keeps two significant digits now, and the other
    end takes the same precision: before stop 64 a CI read `[-0.0044, +0.01]` (a user's walk)."""
    from reporting.regress_report import _ci

    assert _ci(0.0000004, 0.0123) == "[+0.000040, +1.230000]"
    assert _ci(-0.000044, 0.0001) == "[-0.0044, +0.0100]" and _ci(0.00004, 0.0001) == "[+0.0040, +0.0100]"
    assert _ci(-0.0123, 0.0) == "[-1.23, +0.00]"
    assert _ci(-1e-19, 0.000312) == "[-0.000000, +0.031200]"  # at most 6 decimals: was float noise (a review)


def test_the_delta_is_the_difference_of_the_cells_shown(tiny_runs):
    """A Δ rounded from the scores' own difference read −3.77 beside 80.60 → 76.82 (a user's walk, stop 64); a row
    whose metric neither run recorded (pending in both) showed an empty cell, now a dash."""
    from reporting.regress_tasks import TaskVerdict

    comp = compare(tiny_runs["base"], tiny_runs["short"], n_boot=20, tasks=["TinySTS"])
    comp.tasks[0].base, comp.tasks[0].cand = 0.806049, 0.768151  # Δ −3.7898, shown cells 80.60 → 76.82
    comp.tasks.append(TaskVerdict("TinyPairs", "PairClassification", "", math.nan, math.nan, verdict=NOT_RUN))
    scores = render(comp).split("## Efficiency")[0].splitlines()
    rows = {line.split("|")[1].strip(): line.split("|") for line in scores if line.startswith("| Tiny")}
    assert [cell.strip() for cell in rows["TinySTS"][5:8]] == ["80.60", "76.82", "-3.78"]
    assert rows["TinyPairs"][3].strip() == "—"


def test_an_older_run_s_renormalised_dims_differ_from_raw_prefixes_at_a_dim():
    """A run with dims recorded before stop 35 has no `dim_view` (its views were renormalised prefixes); compared
    with a newer run (raw prefixes) it used to pass as the same setting, the key held by one side only. At a dim the
    header now names the difference; at full width, where the views score nothing, it does not."""
    from reporting.regress import run_differences

    old = {"identity": {"model_fingerprint": "f", "dims": [64]}, "data_root": "d"}
    new = {"identity": {"model_fingerprint": "f", "dims": [64], "dim_view": "raw prefixes"}, "data_root": "d"}
    assert run_differences(old, new, 64) == ["dim_view renormalised prefixes (before stop 35) → raw prefixes"]
    assert run_differences(old, new) == []
    assert run_differences({"identity": {"model_fingerprint": "f"}, "data_root": "d"}, new, 64) == []  # no dims


@pytest.mark.parametrize(("damaged", "content"), [("predictions/TinySTS_predictions.json", "[1, 2]"),
                                                  ("predictions/TinySTS_gold.json", "{}"),
                                                  ("predictions/TinySTS_predictions.json", '{"default": {"test": 5}}')])
def test_a_per_item_file_of_another_layout_is_a_damaged_file(tiny_runs, tmp_path, damaged, content):
    """Before stop 36 valid JSON of another shape (a list, an object without the keys) gave a traceback that ended
    the whole comparison; only broken JSON was a *damaged file* (audit)."""
    cand = tmp_path / "cand"
    shutil.copytree(tiny_runs["batch8"], cand)
    (cand / damaged).write_text(content)
    code, report = _regress(tiny_runs["base"], cand, tmp_path / "r.md", "--tasks", BATCH8)
    assert code == 3 and "**NOT COMPARED**: TinySTS (damaged file)." in report
    assert "holds JSON of another layout than `harness run` writes" in report
    assert report.split("## Efficiency")[0].count("within noise") == 2


def _reversed_scores(path: Path) -> None:
    """TinySTS's per-pair similarities in reverse order: valid JSON of the right layout, not the run's outputs."""
    preds = json.loads(path.read_text())
    for subset, splits in preds.items():
        for out in splits.values() if subset != "mteb_model_meta" else ():
            out["cosine_scores"] = out["cosine_scores"][::-1]
    path.write_text(json.dumps(preds))


@pytest.mark.parametrize(("damage", "named"), [
    (lambda path: path.write_text("{}"), "predictions of nothing but gold labels of default/test"),
    (_reversed_scores, "per-item recomputation of cosine_spearman gives"),
])  # fmt: skip
def test_a_per_item_file_that_does_not_hold_the_runs_outputs_is_a_damaged_file(tiny_runs, tmp_path, damage, named):
    """Before stop 59 (a nightly team's walk) both were *not tested*, and the gate passed (exit 0) as if the task
    were fine: a file that is JSON of the right layout but not what the recorded score was computed from."""
    cand = tmp_path / "cand"
    shutil.copytree(tiny_runs["batch8"], cand)
    assert "cosine_scores" in (cand / "predictions" / "TinySTS_predictions.json").read_text()
    damage(cand / "predictions" / "TinySTS_predictions.json")
    code, report = _regress(tiny_runs["base"], cand, tmp_path / "r.md", "--tasks", BATCH8)
    assert code == 3 and "**NOT COMPARED**: TinySTS (damaged file)." in report and named in report
    assert "remove it and `harness run` into" in report


def test_a_run_whose_dim_results_are_all_gone_is_a_damaged_file(tiny_runs, tmp_path):
    """run.json lists dim 64, the whole embed_dim_64 folder is gone: before stop 59 regress refused it (exit 2)
    with advice to rerun with `--dims 64 --dim-predictions`, the flags it had been run with."""
    cand = tmp_path / "cand"
    shutil.copytree(tiny_runs["base"], cand)
    shutil.rmtree(next((cand / "results").rglob("experiments/embed_dim_64")))
    comp = compare(tiny_runs["base"], cand, n_boot=50, dim=64, tasks=["TinySTS"])
    assert [t.verdict for t in comp.tasks] == ["damaged file"] and comp.exit_status == 3


def _nan_main_scores(value):
    """The same JSON with every main_score NaN (a metric undefined on the task)."""
    if isinstance(value, dict):
        return {k: float("nan") if k == "main_score" else _nan_main_scores(v) for k, v in value.items()}
    return [_nan_main_scores(v) for v in value] if isinstance(value, list) else value


def test_a_nan_score_at_the_dim_fails_the_gate(tiny_runs, tmp_path):
    """At full width a NaN score is a failed task; at --dim it was *not tested* and passed the gate (review 59)."""
    cand = tmp_path / "cand"
    shutil.copytree(tiny_runs["base"], cand)
    result = next((cand / "results").rglob("experiments/embed_dim_64/TinySTS.json"))
    result.write_text(json.dumps(_nan_main_scores(json.loads(result.read_text()))))
    comp = compare(tiny_runs["base"], cand, n_boot=50, dim=64, tasks=["TinySTS"])
    assert [(t.verdict, t.reason) for t in comp.tasks] == [("failed in candidate", "its score at MRL dim 64 is nan")]
    assert comp.exit_status == 1
    swapped = compare(cand, tiny_runs["base"], n_boot=50, dim=64, tasks=["TinySTS"])
    assert [t.verdict for t in swapped.tasks] == ["no baseline score"] and swapped.exit_status == 3


def test_a_stopped_regress_rewrites_out_and_json(tiny_runs, tmp_path, capsys):
    """A fixed --out/--json (a nightly job's regression.md) says why regress stopped, whether its own check or
    argparse-level parsing refused the input: before stop 59 both kept the last night's PASS (`--alpha abc`,
    a run that does not exist)."""
    out, js = tmp_path / "regression.md", tmp_path / "regression.json"
    argv = ["regress", "--baseline", str(tiny_runs["base"]), "--out", str(out), "--json", str(js), "--n-boot", "50"]
    assert main([*argv, "--candidate", str(tiny_runs["batch8"]), "--tasks", "TinySTS"]) == 0
    assert out.read_text().startswith("# Regression report — PASS (exit 0)") and json.loads(js.read_text())["passed"]
    finished_keys = list(json.loads(js.read_text()))
    passed = out.read_text()
    for extra, status, said in ((["--alpha", "abc"], 2, "UNUSABLE INPUT (exit 2): --alpha 'abc': not a number"),
                                (["--dim", "6x"], 2, "UNUSABLE INPUT (exit 2): --dim '6x': not an integer"),
                                (["--candidate", str(tmp_path / "nope")], 2, "UNUSABLE INPUT (exit 2): --candidate"),
                                (["--tasks", "TinyClustering"], 3, "NOT COMPARED (exit 3): TinyClustering (not run")):
        if "--candidate" not in extra:
            extra = [*extra, "--candidate", str(tiny_runs["batch8"])]
        assert main([*argv, *extra]) == status
        assert out.read_text().startswith(f"# Regression report — {said}"), out.read_text()
        assert json.loads(js.read_text())["outcome"].startswith(said) and "Traceback" not in capsys.readouterr().err
        # the finished comparison's keys in its order (before stop 65 the outcome came after the tasks here)
        assert list(json.loads(js.read_text())) == finished_keys
    # the first stop moved the PASS report aside, each later one the stop before it (a newcomer's walk, stop 70)
    assert (tmp_path / "regression.md.previous").read_text().startswith("# Regression report — UNUSABLE INPUT")
    assert main([*argv, "--candidate", str(tiny_runs["batch8"]), "--tasks", "TinySTS"]) == 0
    assert main([*argv, "--candidate", str(tmp_path / "nope")]) == 2
    assert (tmp_path / "regression.md.previous").read_text() == passed
    assert f"the file that was there is kept as {tmp_path / 'regression.md.previous'}" in capsys.readouterr().err


def test_a_stopped_regress_writes_no_machine_path(tiny_runs, tmp_path, monkeypatch, capsys):
    """A user's walk (stop 64): `cd /tmp; harness regress --baseline /tmp/…/runs/gone …` wrote `--baseline
    /tmp/walk64c/nightly/runs/gone: not a run directory` into --out's first line and the JSON's outcome and error,
    and a damaged run.json's path likewise; stderr keeps the whole path."""
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")  # the runs lie outside the working directory
    damaged = tmp_path / "damaged"
    shutil.copytree(tiny_runs["base"], damaged)
    (damaged / "run.json").write_text('{"x": ')
    for baseline, said in ((tmp_path / "gone", "--baseline …/gone: not a run directory (no such folder)"),
                           (damaged, "…/damaged/run.json:1: damaged JSON")):  # fmt: skip
        argv = ["regress", "--baseline", str(baseline), "--candidate", str(tiny_runs["batch8"]), "--out", "r.md",
                "--json", "r.json"]  # fmt: skip
        assert main(argv) == 2 and str(baseline) in capsys.readouterr().err
        report, result = Path("r.md").read_text(), json.loads(Path("r.json").read_text())
        assert report.startswith(f"# Regression report — UNUSABLE INPUT (exit 2): {said}"), report
        assert result["outcome"].startswith(f"UNUSABLE INPUT (exit 2): {said}") and result["error"].startswith(said)
        assert str(tmp_path) not in report + json.dumps(result, ensure_ascii=False)


def test_one_file_for_out_and_json_is_refused(tiny_runs, tmp_path, capsys):
    """A user's walk (stop 64): `--out X --json X` was taken silently, X then held only the JSON and the markdown
    report was lost. Now exit 2 naming both options, and X says why (the markdown, no JSON over it)."""
    same = tmp_path / "x"
    argv = ["regress", "--baseline", str(tiny_runs["base"]), "--candidate", str(tiny_runs["batch8"]), "--out",
            str(same), "--json", f"{tmp_path}/./x"]  # fmt: skip
    assert main(argv) == 2
    said = f"--out {same} and --json {tmp_path}/./x: one file for both; give each its own path"
    assert said in capsys.readouterr().err
    assert same.read_text().startswith("# Regression report — UNUSABLE INPUT (exit 2): --out ")


def test_a_pass_names_the_tasks_it_did_not_test(tiny_runs, tmp_path):
    """A PASS with a task left untested (no per-item outputs, in a record from before the harness kept them) says
    which: before stop 59 only its count fell."""
    cand = tmp_path / "cand"
    shutil.copytree(tiny_runs["batch8"], cand)
    (cand / "predictions" / "TinyRerank_predictions.json").unlink()
    _before_identities(cand, "TinyRerank")
    code, report = _regress(tiny_runs["base"], cand, tmp_path / "r.md", "--tasks", BATCH8)
    assert code == 0 and report.startswith("# Regression report — PASS (exit 0): no significant regression on 2 "
                                           "task(s); not tested: TinyRerank\n")  # fmt: skip


def test_leaderboard_out_with_a_name_too_long_is_an_error_naming_the_option(tiny_runs, tmp_path, capsys):
    """Review 39: regress named its option for an OSError of the early check, leaderboard gave a traceback."""
    long_out = tmp_path / ("l" * 300 + ".md")
    assert main(["leaderboard", str(tiny_runs["base"]), "--out", str(long_out)]) == 2
    err = capsys.readouterr().err
    assert f"harness: error: --out {long_out}: cannot be written (File name too long)" in err and "Traceback" not in err


@pytest.mark.parametrize("command", ["regress", "run"])
def test_an_empty_task_list_is_a_usage_error(command: str, tmp_path: Path, capsys) -> None:
    """Before stop 49 (audit): `harness regress --tasks ,` (a CI gate given an empty $TASKS) compared nothing and
    exited 3, a gate outcome, without a word of --tasks; both commands now share one parser for such lists."""
    argv = {"regress": ["regress", "--baseline", str(tmp_path / "a"), "--candidate", str(tmp_path / "b"),
                        "--out", str(tmp_path / "r.md")],
            "run": ["run", "--model", "minilm"]}[command]  # fmt: skip
    if command == "regress":  # parsed by regress itself since stop 59, so --out and --json say why it stopped
        assert main([*argv, "--tasks", " , "]) == 2
        assert "harness: error: --tasks ' , ': expected a comma-separated list" in capsys.readouterr().err
        return
    with pytest.raises(SystemExit) as exited:
        main([*argv, "--tasks", " , "])
    assert exited.value.code == 2
    assert "argument --tasks: expected a comma-separated list" in capsys.readouterr().err


@pytest.mark.parametrize(("words", "said"), [
    (["--baseline", "B", "--candidate"], "argument --candidate: expected one argument"),  # an empty $CANDIDATE
    (["--baseline=B", "--candidate", "C", "--alpah", "0.1"], "unrecognized arguments: --alpah 0.1"),
    (["--candidate", "C"], "the following arguments are required: --baseline"),
])  # fmt: skip
def test_what_argparse_refuses_still_rewrites_out_and_json(words, said, tmp_path, capsys) -> None:
    """Before stop 60 an error argparse raised itself left a gate's --out and --json as they were: the last
    night's PASS. Now both say UNUSABLE INPUT with argparse's reason; the exit status and error line are
    argparse's as before."""
    out, js = tmp_path / "regression.md", tmp_path / "regression.json"
    out.write_text("# Regression report — PASS\n", encoding="utf-8")
    js.write_text('{"passed": true, "exit_status": 0}', encoding="utf-8")
    with pytest.raises(SystemExit) as exited:
        main(["regress", "--out", str(out), f"--json={js}", *words])
    assert exited.value.code == 2 and said in capsys.readouterr().err
    assert out.read_text(encoding="utf-8").startswith(f"# Regression report — UNUSABLE INPUT (exit 2): {said}\n")
    verdict = json.loads(js.read_text(encoding="utf-8"))
    assert (verdict["passed"], verdict["exit_status"], verdict["error"]) == (False, 2, said)
    assert verdict["baseline"]["path"] == ("B" if "--baseline" in words[0] else "(not given)")


def test_abbreviated_paths_are_read_and_an_out_without_its_value_writes_none(tmp_path, monkeypatch) -> None:
    """Review of stop 60: argparse takes `--ou X` and `--jso Y` for --out and --json, so the hook reads them so too;
    an --out given without its value names no file, and regression.md in the working directory is not written."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        main(["regress", "--ou", "o.md", "--jso", "j.json", "--baseline", "B", "--candidat"])
    assert "UNUSABLE INPUT (exit 2)" in (tmp_path / "o.md").read_text(encoding="utf-8")
    assert json.loads((tmp_path / "j.json").read_text(encoding="utf-8"))["exit_status"] == 2
    (tmp_path / "o.md").unlink()
    (tmp_path / "j.json").unlink()
    with pytest.raises(SystemExit):
        main(["regress", "--baseline", "B", "--candidate", "C", "--out"])
    assert list(tmp_path.iterdir()) == []


def test_help_and_other_commands_refused_by_argparse_write_no_regress_file(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    for argv in (["regress", "--help"], ["leaderboard", "--bogus"], ["run", "--dims"]):
        with pytest.raises(SystemExit):
            main(argv)
    assert list(tmp_path.iterdir()) == []


def test_a_suite_s_tasks_without_data_on_both_sides_are_said_not_gated(tmp_path, capsys):
    """Before stop 49 (audit): two identical `--suite mteb-en` runs offline failed the gate (exit 1) on the 40
    tasks neither had data for, which `harness run` itself counts as coverage (exit 0): the nightly jobs of
    docs/reports.md could never pass. A task the baseline scored and the candidate lacks still fails."""
    from harness.data import default_data_root

    data = tmp_path / "data"
    shutil.copytree(default_data_root() / "en" / "STS12", data / "en" / "STS12")
    for name in ("a", "b"):
        assert main(["run", "--suite", "mteb-en", "--model", "minilm", "--data-dir", str(data), "--out",
                     str(tmp_path), "--run-name", name, "--no-progress", "--no-cache"]) == 0  # fmt: skip
    # the coverage, said as a note of a run that succeeded (before stop 60 "harness: 40 task(s) … not evaluated")
    assert ("harness: note: 40 task(s) of suite mteb-en have no data here, the suite's coverage, not a failure "
            "(reasons in ") in capsys.readouterr().err
    out = tmp_path / "r.md"
    assert main(["regress", "--baseline", str(tmp_path / "a"), "--candidate", str(tmp_path / "b"),
                 "--out", str(out)]) == 0  # fmt: skip
    text = out.read_text(encoding="utf-8")
    assert "no data in either run, not compared (40): " in text and "failed in the candidate" not in text
    shutil.rmtree(data / "en" / "STS12")  # the candidate loses the data the baseline scored: a failure
    assert main(["run", "--suite", "mteb-en", "--model", "minilm", "--data-dir", str(data), "--out",
                 str(tmp_path), "--run-name", "c", "--no-progress", "--no-cache"]) == 1  # fmt: skip
    assert main(["regress", "--baseline", str(tmp_path / "a"), "--candidate", str(tmp_path / "c"),
                 "--out", str(out)]) == 1  # fmt: skip
    assert "failed in the candidate: STS12" in out.read_text(encoding="utf-8")


@pytest.mark.parametrize(("dim", "message"), [(384, "the full width of the model in BASE (384), not an MRL dim of "
                                                    "it: compare without --dim"),
                                              (999, "above the width of the model in BASE (384), not an MRL dim of "
                                                    "it: give a --dim below 384")])  # fmt: skip
def test_a_dim_at_or_above_the_width_is_named_so(tiny_runs, tmp_path, capsys, dim, message):
    """Before stop 49 (audit): "no task has a result at MRL dim 384 in both runs; run them with `harness run --dims
    384 --dim-predictions`", advice that gave the same error again."""
    base, cand = tiny_runs["base"], tmp_path / "cand"  # one directory as both sides is refused since stop 50
    shutil.copytree(base, cand)
    assert main(["regress", "--baseline", str(base), "--candidate", str(cand), "--dim", str(dim),
                 "--out", str(tmp_path / "r.md")]) == 2  # fmt: skip
    assert f"--dim {dim}: {message.replace('BASE', str(base))}" in capsys.readouterr().err


def test_a_task_named_in_tasks_without_data_still_fails_the_gate(tmp_path, capsys):
    """Review of stop 49: the no-data exemption above is for a suite's coverage only; a task named in --tasks made
    `harness run` exit 1, and regress must not pass on it. Where only such a task is asked for, the reason is said."""
    from harness.data import default_data_root

    data = tmp_path / "data"
    shutil.copytree(default_data_root() / "en" / "STS12", data / "en" / "STS12")
    for name in ("a", "b"):  # STS13 is named and has no data here
        assert main(["run", "--tasks", "STS12,STS13", "--model", "minilm", "--data-dir", str(data), "--out",
                     str(tmp_path), "--run-name", name, "--no-progress", "--no-cache"]) == 1  # fmt: skip
        assert json.loads((tmp_path / name / "run.json").read_text())["tasks"]["STS13"]["named"] is True
    out = tmp_path / "r.md"
    argv = ["regress", "--baseline", str(tmp_path / "a"), "--candidate", str(tmp_path / "b"), "--out", str(out)]
    assert main(argv) == 1
    assert "failed in the candidate: STS13" in out.read_text(encoding="utf-8")
    capsys.readouterr()
    suite = ["run", "--suite", "mteb-en", "--model", "minilm", "--data-dir", str(data), "--out", str(tmp_path),
             "--no-progress", "--no-cache", "--run-name"]  # fmt: skip
    assert main([*suite, "s1"]) == 0 and main([*suite, "s2"]) == 0
    assert main(["regress", "--baseline", str(tmp_path / "s1"), "--candidate", str(tmp_path / "s2"), "--tasks",
                 "STS13", "--out", str(out)]) == 3  # fmt: skip
    err = capsys.readouterr().err
    assert "nothing compared: no task to compare between" in err and "(no data in either run: STS13)" in err


def test_a_tasks_run_after_a_suite_run_keeps_the_suite_s_coverage_ungated(tmp_path):
    """Second review of stop 49: run.json's header is the last run's, so a `--tasks` run after a `--suite` run made
    the suite's tasks without data read as named, and two identical directories failed the gate again."""
    from harness.data import default_data_root

    data = tmp_path / "data"
    shutil.copytree(default_data_root() / "en" / "STS12", data / "en" / "STS12")
    for name in ("a", "b"):
        common = ["--model", "minilm", "--data-dir", str(data), "--out", str(tmp_path), "--run-name", name,
                  "--no-progress", "--no-cache"]  # fmt: skip
        assert main(["run", "--suite", "mteb-en", *common]) == 0
        assert main(["run", "--tasks", "STS12", "--overwrite", *common]) == 0
        record = json.loads((tmp_path / name / "run.json").read_text())
        assert record["suite"] is None and record["tasks"]["STS13"] == {**record["tasks"]["STS13"], "named": False}
    out = tmp_path / "r.md"
    assert main(["regress", "--baseline", str(tmp_path / "a"), "--candidate", str(tmp_path / "b"),
                 "--out", str(out)]) == 0  # fmt: skip
    assert "no data in either run, not compared (40): " in out.read_text(encoding="utf-8")


def test_an_interrupted_regress_leaves_no_old_verdict(tmp_path, monkeypatch, capsys) -> None:
    """Ctrl-C during the bootstraps (a user's walk, stop 64): before, --out and --json kept the last run's PASS
    beside exit 130; now both say INTERRUPTED, no verdict, and the interrupt line names them."""
    import reporting.regress

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(reporting.regress, "compare", stopped)
    out, js = tmp_path / "r.md", tmp_path / "r.json"
    out.write_text("# Regression report — PASS (exit 0): no significant regression on 4 task(s)\n")
    js.write_text(json.dumps({"passed": True, "exit_status": 0}))
    argv = ["regress", "--baseline", "a", "--candidate", "b", "--out", str(out), "--json", str(js)]
    assert main(argv) == 130
    said = "INTERRUPTED (exit 130): interrupted before a verdict"
    report = out.read_text()
    assert report.startswith(f"# Regression report — {said}\n") and "No verdict: regress was stopped" in report
    record = json.loads(js.read_text())
    assert (record["outcome"], record["passed"], record["exit_status"], record["tasks"]) == (said, False, 130, [])
    assert f"harness: interrupted; {out} and {js} now say so (no verdict)" in capsys.readouterr().err


def test_the_rerun_hint_at_a_dim_keeps_the_run_s_other_dims(tiny_runs, tmp_path, capsys):
    """A run scored at 64,128 without per-item outputs at 64 was told `harness run --dims 64 --dim-predictions`,
    which scores 64 alone (a user's walk, stop 64: `--dims 256` to a run of 64,128,256); now every dim it has."""
    cand = tmp_path / "cand"
    shutil.copytree(tiny_runs["base"], cand)
    shutil.rmtree(cand / "predictions" / "embed_dim_64")
    record = json.loads((cand / "run.json").read_text())
    record["tasks"]["TinySTS"]["identity"]["dims"] = [64, 128]
    (cand / "run.json").write_text(json.dumps(record))
    (sts,) = compare(tiny_runs["base"], cand, n_boot=20, dim=64, tasks=["TinySTS"]).tasks
    assert sts.verdict == "not tested" and "`harness run --dims 64,128 --dim-predictions`" in sts.reason
    # neither run has dim 32: each is told its own dims with it (before stop 69 the two runs' dims together, so the
    # run scored at full width only was told to add 64 too)
    assert _regress(tiny_runs["base"], tiny_runs["short"], tmp_path / "r.md", "--dim", "32")[0] == 2
    assert (f"run {tiny_runs['base']} with `harness run --dims 32,64 --dim-predictions` and {tiny_runs['short']} "
            "with `harness run --dims 32 --dim-predictions`") in capsys.readouterr().err


def test_a_baseline_evaluated_after_the_candidate_is_warned_of(tiny_runs, tmp_path):
    """Leftover of stop 66's nightly walk: a job whose --baseline and --candidate were swapped read every regression
    as an improvement without a word. run.json's `started` (the last run that evaluated there) now warns when the
    baseline is the newer run; the warning does not gate, as comparing two models run in any order is legitimate."""
    base, cand = (shutil.copytree(tiny_runs[name], tmp_path / name) for name in ("base", "short"))
    for run, started in ((base, "2026-12-07T10:00:00+0100"), (cand, "2026-12-07T09:30:00+0000")):
        record = json.loads((run / "run.json").read_text(encoding="utf-8"))
        (run / "run.json").write_text(json.dumps({**record, "started": started}), encoding="utf-8")
    assert not [w for w in compare(base, cand, n_boot=50).warnings if "swapped" in w]  # 09:00 UTC before 09:30
    (cand / "run.json").write_text((cand / "run.json").read_text(encoding="utf-8").replace("09:30:00+0000",
                                                                                         "08:30:00+0000"))
    code, text = _regress(base, cand, tmp_path / "r.md")
    assert code == 1  # the verdict stands: only a warning
    assert ("- the baseline was evaluated after the candidate (baseline 2026-12-07T10:00:00+0100, candidate "
            "2026-12-07T08:30:00+0000): check that --baseline and --candidate are not swapped") in text


def test_a_change_below_min_effect_names_both_to_four_decimals(tiny_runs):
    """A nightly walk (stop 69): Δ −34.93 beside --min-effect 34.93 read "below --min-effect", equal as shown."""
    (sts,) = compare(tiny_runs["base"], tiny_runs["short"], n_boot=50, min_effect=0.0, tasks=["TinySTS"]).tasks
    assert sts.verdict in ("regressed", "improved")
    edge = abs(sts.delta) + 5e-7  # above the change by less than the report's two decimals show
    (near,) = compare(tiny_runs["base"], tiny_runs["short"], n_boot=50, min_effect=edge, tasks=["TinySTS"]).tasks
    assert near.verdict == "within noise"
    assert near.reason == (f"CI excludes 0 but the change, {100 * abs(sts.delta):.4f}, is below --min-effect "
                           f"{100 * edge:.4f}")


def test_a_run_that_did_not_finish_is_warned_of(tiny_runs, tmp_path):
    """A nightly walk (stop 69): a candidate run killed mid-run (run.json `finished` null) passed without a word; its
    kept tasks are whole, so the warning does not gate."""
    cand = shutil.copytree(tiny_runs["base"], tmp_path / "killed")
    assert not [w for w in compare(tiny_runs["base"], cand, n_boot=50).warnings if "did not finish" in w]
    record = json.loads((cand / "run.json").read_text(encoding="utf-8"))
    (cand / "run.json").write_text(json.dumps({**record, "finished": None}), encoding="utf-8")
    comp = compare(tiny_runs["base"], cand, n_boot=50)
    said = [w for w in comp.warnings if "did not finish" in w]
    assert said == [f"the candidate run …/killed did not finish its last `harness run` (started {record['started']}, "
                    "finished null: killed, or still running): a task it had not reached shows an earlier evaluation"]
    assert comp.exit_status == 0
