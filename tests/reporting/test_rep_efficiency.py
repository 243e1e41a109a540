"""`harness report`: Table 5 shape, hardware, throughput and MRL plots from real runs; parameter counts."""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from statistics import mean

import pytest

from harness.cli import main
from harness.data import default_data_root
from harness.runs import open_run, shown_path
from reporting.efficiency import CACHE_ONLY, load_runs, parameters
from reporting.plots import throughput_figure


def test_report_from_real_runs(tiny_runs, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", str(tiny_runs["base"]), str(tiny_runs["short"]), "--out", str(out)]) == 0
    text = re.sub(r" +", " ", (out / "efficiency.md").read_text(encoding="utf-8"))
    assert "## Table 5" in text and "| all-MiniLM-L6-v2 [base] | 22.7 | 384 |" in text
    assert "(…/base)" in text and str(tiny_runs["base"]) not in text  # no machine path in a report
    assert "✔ 64" in text  # base scored MRL dims, short did not
    assert "parameters from run.json" in text  # counted on the loaded module by harness run
    assert "| float32 | 64 |" in text and "## Hardware and settings" in text
    for png in ("throughput.png", "dims.png"):
        assert (out / png).stat().st_size > 10_000
    assert "![score vs dimension per task type](dims.png)" in text and "**STS**" in text
    # stopped by bad input, the report does not leave this one in --out, read as the next one (a nightly walk, 69)
    good = (out / "efficiency.md").read_text(encoding="utf-8")
    assert main(["report", str(tiny_runs["base"]), str(tmp_path / "typo"), "--out", str(out)]) == 2
    stopped = (out / "efficiency.md").read_text(encoding="utf-8")
    assert stopped.startswith("# Efficiency report — NOT WRITTEN (exit 2): run …/typo: not a run directory")
    # the good one stays beside it, and stderr says so (a newcomer's walk, stop 70: it was replaced unsaid)
    assert "before is kept beside it as `efficiency.md.previous`" in stopped
    assert (out / "efficiency.md.previous").read_text(encoding="utf-8") == good
    assert f"harness: {out / 'efficiency.md'} now says why nothing was built; the file that was there is kept as " \
        f"{out / 'efficiency.md.previous'}" in capsys.readouterr().err
    assert str(tmp_path) not in stopped  # no machine path, as in every report
    assert not (out / "throughput.png").exists() and not (out / "dims.png").exists()


def test_report_without_dims_says_so(tiny_runs, tmp_path):
    out = tmp_path / "report"
    assert main(["report", str(tiny_runs["short"]), "--out", str(out)]) == 0
    assert "No run has results under `experiments/embed_dim_<d>/`" in (out / "efficiency.md").read_text()
    assert not (out / "dims.png").exists()


def _forged_weights(folder: Path) -> Path:
    """A folder whose model.safetensors declares a header of 2**62 bytes: safetensors refuses it with an error."""
    folder.mkdir()
    (folder / "model.safetensors").write_bytes((2**62).to_bytes(8, "little") + b"{}")
    return folder


def test_parameter_count_sources(tmp_path: Path):
    """run.json's count, else mteb's registry, else unknown; never the folder a record names (before stop 69, a
    walk: a null count opened every *.safetensors under the spec's folder, a forged header a traceback)."""
    folder = _forged_weights(tmp_path / "ckpt")
    assert parameters({"n_parameters": 5}) == (5, "run.json")
    assert parameters({"spec": f"conan:{folder}", "name": "no-such/model", "n_parameters": None}) == (None, "unknown")
    assert parameters({"spec": "x", "name": "sentence-transformers/all-MiniLM-L6-v2"}) == (22_713_216,
                                                                                          "mteb model registry")


def _edited(run: Path, dest: Path, name: str, edit: Callable[[dict], object]) -> Path:
    """A copy of a run whose file ``name`` (run.json or efficiency.json) ``edit`` changed, written as JSON."""
    shutil.copytree(run, dest)
    record = json.loads((dest / name).read_text(encoding="utf-8"))
    edit(record)
    (dest / name).write_text(json.dumps(record), encoding="utf-8")  # NaN and inf as JSON's NaN and Infinity
    return dest


def test_a_foreign_run_s_model_folder_is_not_read_for_its_size(tiny_runs, tmp_path):
    folder = _forged_weights(tmp_path / "weights")
    run = _edited(tiny_runs["short"], tmp_path / "run", "run.json",
                  lambda r: r["model"].update(spec=f"conan:{folder}", n_parameters=None))  # fmt: skip
    assert main(["report", str(run), "--out", str(tmp_path / "report")]) == 0
    text = (tmp_path / "report" / "efficiency.md").read_text(encoding="utf-8")
    assert "all-MiniLM-L6-v2 [run]: parameters from mteb model registry." in text


@pytest.mark.parametrize(("name", "field", "value", "shown"), [
    ("efficiency.json", "texts_per_s", "fast", "must be a number or null, not a string (fast)"),
    ("efficiency.json", "texts_per_s", math.nan, "must be a finite number from 0 to below 1e+15, not NaN"),
    ("efficiency.json", "wall_s", math.inf, "must be a finite number from 0 to below 1e+15, not Infinity"),
    ("efficiency.json", "peak_rss_mb", -1e308, "must be a finite number from 0 to below 1e+15, not -1e+308"),
    ("run.json", "n_parameters", math.nan, "must be a finite number from 0 to below 1e+15, not NaN"),
])  # fmt: skip
def test_a_figure_that_is_no_number_in_range_is_a_damaged_file(tiny_runs, tmp_path, capsys, name, field, value,
                                                               shown):  # fmt: skip
    """A walk (stop 69): `"texts_per_s": "fast"` was a traceback in `harness report` (exit 1); NaN, inf and -1e308
    were printed as `nan`, `inf` and a 300-digit number. Each is a damaged file now, named with its field (exit 2)."""
    where = "model" if name == "run.json" else "TinySTS"
    run = _edited(tiny_runs["short"], tmp_path / "run", name, lambda r: r[where].update({field: value}))
    assert main(["report", str(run), "--out", str(tmp_path / "report")]) == 2
    err = capsys.readouterr().err
    assert f"{run / name}: field '{where}.{field}' {shown}; restore the file" in err and "Traceback" not in err, err


def test_a_number_past_python_s_digit_limit_is_damaged_json(tiny_runs, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(tiny_runs["short"], run)
    (run / "efficiency.json").write_text('{"TinySTS": {"tokens": ' + "9" * 5000 + "}}", encoding="utf-8")
    assert main(["report", str(run), "--out", str(tmp_path / "report")]) == 2
    assert f"{run / 'efficiency.json'}: damaged JSON (a number of more than 4300 digits)" in capsys.readouterr().err


def test_json_nested_past_the_recursion_limit_is_damaged_json(tiny_runs, tmp_path, capsys):
    """Carried since stop 66: a JSON file the harness wrote (efficiency.json here), nested 100000 deep, was a
    RecursionError traceback."""
    run = tmp_path / "run"
    shutil.copytree(tiny_runs["short"], run)
    (run / "efficiency.json").write_text('{"TinySTS": ' + "[" * 100_000 + "]" * 100_000 + "}", encoding="utf-8")
    assert main(["report", str(run), "--out", str(tmp_path / "report")]) == 2
    err = capsys.readouterr().err
    assert f"{run / 'efficiency.json'}: damaged JSON (nested deeper than Python's recursion limit" in err, err
    assert "Traceback" not in err


def _tasks(run: Path) -> dict[str, dict]:
    return json.loads((run / "run.json").read_text(encoding="utf-8"))["tasks"]


def _resampled(run: Path, dest: Path, task: str) -> Path:
    """A copy of a run whose run.json says it scored `task` on another sample of the data."""
    shutil.copytree(run, dest)
    record = json.loads((dest / "run.json").read_text(encoding="utf-8"))
    record["tasks"][task]["sampling"] = "another sample"
    (dest / "run.json").write_text(json.dumps(record), encoding="utf-8")
    return dest


def test_avg_score_is_over_the_tasks_every_run_finished(tiny_runs, tmp_path):
    """base finished 7 tasks, batch8 3: both rows average the same 3, not base its own 7."""
    out = tmp_path / "report"
    assert main(["report", str(tiny_runs["base"]), str(tiny_runs["batch8"]), "--out", str(out)]) == 0
    text = re.sub(r" +", " ", (out / "efficiency.md").read_text(encoding="utf-8"))
    assert "Avg score ×100 (3 tasks)" in text
    tasks = {name: _tasks(tiny_runs[name]) for name in ("base", "batch8")}
    for name, records in tasks.items():
        avg = 100 * mean(records[t]["main_score"] for t in tasks["batch8"])
        table5 = text.split("## Hardware")[0]
        (row,) = [line for line in table5.splitlines() if line.startswith(f"| all-MiniLM-L6-v2 [{name}] |")]
        assert f"| {avg:.2f} |" in row
    left = sorted(set(tasks["base"]) - set(tasks["batch8"]))
    # per task, the runs that lack it (before stop 67, a walk: the run that had finished them, as if it had failed)
    lacking = "; ".join(f"{task} (not finished by all-MiniLM-L6-v2 [batch8])" for task in left)
    assert f"not every run finished them: {lacking}." in text and "[base]: Tiny" not in text


def test_task_on_different_data_is_left_out_of_avg_and_times(tiny_runs, tmp_path):
    short = _resampled(tiny_runs["short"], tmp_path / "short", "TinySTS")
    out = tmp_path / "report"
    assert main(["report", str(tiny_runs["base"]), str(short), "--out", str(out)]) == 0
    text = re.sub(r" +", " ", (out / "efficiency.md").read_text(encoding="utf-8"))
    assert "Avg score ×100 (6 tasks)" in text and "Model time, s (7 tasks)" not in text  # times leave it out too
    assert "the runs scored different data: TinySTS (different sampling)." in text
    shared = sorted(set(_tasks(short)) - {"TinySTS"})
    assert f"over the 6 task(s) every run finished on the same data, the same tasks in every row: " \
           f"{', '.join(shared)}." in text  # fmt: skip


def test_task_kept_from_other_settings_is_left_out_of_its_row(tiny_runs, tmp_path):
    """A row stands for the settings its run.json records: a task kept from a run with other settings (here 8
    tokens, not the run's 4) is another configuration's score and time, so Table 5 leaves it out, with a note."""
    short = tmp_path / "short"
    shutil.copytree(tiny_runs["short"], short)
    record = json.loads((short / "run.json").read_text(encoding="utf-8"))
    record["tasks"]["TinySTS"]["identity"]["max_length"] = 8
    (short / "run.json").write_text(json.dumps(record), encoding="utf-8")
    out = tmp_path / "report"
    assert main(["report", str(tiny_runs["base"]), str(short), "--out", str(out)]) == 0
    text = re.sub(r" +", " ", (out / "efficiency.md").read_text(encoding="utf-8"))
    assert "Avg score ×100 (6 tasks)" in text
    assert "all-MiniLM-L6-v2 [short]: left out as kept from runs with other settings: TinySTS (max_length 8)." in text


def _encoded_whole(tiny_runs: dict[str, Path], tmp_path: Path) -> list[Path]:
    """Copies of base and short as if encoded whole (the session's embedding cache may have served some)."""
    runs = []
    for name in ("base", "short"):
        runs.append(tmp_path / name)
        shutil.copytree(tiny_runs[name], runs[-1])
        eff = json.loads((runs[-1] / "efficiency.json").read_text(encoding="utf-8"))
        for figures in eff.values():
            figures.update(cache_hits=0, encoded_texts=figures["unique_texts"], model_s=figures["model_s"] or 0.1)
        (runs[-1] / "efficiency.json").write_text(json.dumps(eff), encoding="utf-8")
    return runs


def test_model_time_sums_only_tasks_every_run_encoded_whole(tiny_runs, tmp_path):
    """A run that took half a task's texts from the embedding cache spent model time on half the work: before,
    its row summed that time beside the other row's whole task under one "(7 tasks)" (audit I F4: 158 texts
    against 204). Rates still count it, per text encoded."""
    runs = _encoded_whole(tiny_runs, tmp_path)
    eff = json.loads((runs[1] / "efficiency.json").read_text(encoding="utf-8"))
    sts = eff["TinySTS"]  # half of short's TinySTS from the cache
    half = sts["unique_texts"] // 2
    sts.update(cache_hits=half, encoded_texts=sts["unique_texts"] - half)
    (runs[1] / "efficiency.json").write_text(json.dumps(eff), encoding="utf-8")
    out = tmp_path / "report"
    assert main(["report", *map(str, runs), "--out", str(out)]) == 0
    text = re.sub(r" +", " ", (out / "efficiency.md").read_text(encoding="utf-8"))
    assert "Model time, s (6 tasks)" in text and "Avg score ×100 (7 tasks)" in text
    assert "some run took part of TinySTS from the embedding cache" in text


def test_mrl_curves_average_the_tasks_every_run_scored_at_dims(tmp_path):
    """Before: each run's curve averaged its own tasks, so a run with STS16 and STS13 at dim 64 and a run with STS16
    alone were drawn side by side on different averages. Both now average STS16, and the report says so."""
    sample = default_data_root()
    for name, tasks in (("two", "STS16,STS13"), ("one", "STS16")):
        argv = ["run", "--tasks", tasks, "--model", "minilm", "--dims", "64,full", "--data-dir", str(sample),
                "--out", str(tmp_path), "--run-name", name, "--no-progress"]  # fmt: skip
        assert main(argv) == 0
    out = tmp_path / "report"
    assert main(["report", str(tmp_path / "two"), str(tmp_path / "one"), "--out", str(out)]) == 0
    text = re.sub(r" +", " ", (out / "efficiency.md").read_text(encoding="utf-8"))
    assert ("**STS**: mean score ×100 over the 1 task(s) every run scored at its dims on the same data, the same "
            "tasks in every row: STS16") in text  # fmt: skip
    assert "Avg score ×100 (1 task)" in text  # a user's walk: "(1 tasks)"
    assert ("Left out of the STS curves because not every run scored them at MRL dims: STS13 (not scored at MRL "
            "dims by all-MiniLM-L6-v2 [one]).") in text  # fmt: skip
    sts16 = open_run(tmp_path / "one").dim_scores("STS16")[64]
    full = _tasks(tmp_path / "one")["STS16"]["main_score"]
    for name in ("two", "one"):
        assert f"| all-MiniLM-L6-v2 [{name}] | {100 * sts16:.2f} | {100 * full:.2f} (384) |" in text


def test_dims_not_scored_on_every_task_of_a_curve_are_named(tmp_path):
    """Before stop 60 (a user's walk): a run directory with STS16 at dim 64 and STS13 at dim 128 (a second
    `harness run` with other --dims) drew its STS curve at the full width alone, saying nothing of 64 or 128."""
    for tasks, dims in (("STS16", "64"), ("STS13", "128")):
        assert main(["run", "--tasks", tasks, "--model", "minilm", "--dims", dims, "--out", str(tmp_path),
                     "--run-name", "uneven", "--no-progress"]) == 0  # fmt: skip
    out = tmp_path / "report"
    assert main(["report", str(tmp_path / "uneven"), "--out", str(out)]) == 0
    text = re.sub(r"\s+", " ", (out / "efficiency.md").read_text(encoding="utf-8"))
    assert ("Left out of `all-MiniLM-L6-v2 [uneven]`'s STS curve: dim 64 (scored on STS16, not on STS13); dim 128 "
            "(scored on STS13, not on STS16) — a point is the mean over every task of the curve.") in text  # fmt: skip


def test_a_damaged_dim_result_is_named_by_the_report_and_the_leaderboard(tiny_runs, tmp_path):
    """User walk: a per-dim result file cut short disappeared from `harness report` and `harness leaderboard --dims`
    without a word (a `—`, and the leaderboard's mean row quietly left the task out), though `harness run` named it
    ("the earlier result lacks ... (missing or damaged)")."""
    run = tmp_path / "base"
    shutil.copytree(tiny_runs["base"], run)
    damaged = open_run(run).result_path("TinySTS", 64)
    damaged.write_bytes(damaged.read_bytes()[:100])
    shown = damaged.relative_to(run).as_posix()
    said = (f"results at MRL dims that run.json lists are missing or damaged, left out of the dims: {shown} (`harness "
            f"run` into {shown_path(run)} with the same --dims evaluates those tasks again).")  # fmt: skip
    assert main(["report", str(run), "--out", str(tmp_path / "report")]) == 0
    text = re.sub(r"\s+", " ", (tmp_path / "report" / "efficiency.md").read_text(encoding="utf-8"))
    assert f"- `all-MiniLM-L6-v2 [base]`: {said}" in text
    assert main(["leaderboard", str(run), "--dims", "--out", str(tmp_path / "lb.md")]) == 0
    text = re.sub(r"\s+", " ", (tmp_path / "lb.md").read_text(encoding="utf-8"))
    assert f"- all-MiniLM-L6-v2 [base]: {said}" in text
    assert main(["leaderboard", str(run), "--out", str(tmp_path / "plain.md")]) == 0  # no dims shown: nothing to say
    assert shown not in (tmp_path / "plain.md").read_text(encoding="utf-8")


def test_a_damaged_full_result_is_named_by_regress_the_report_and_the_leaderboard(tiny_runs, tmp_path, capsys):
    """Carried since stop 50: a task's mteb result file cut short (a copy, a full disk) went unsaid by `harness
    regress`, `report` and `leaderboard`, which show run.json's score, though mteb's own readers fail on the file
    and the next `harness run` into the directory evaluates the task again."""
    run = tmp_path / "base"
    shutil.copytree(tiny_runs["base"], run)
    damaged = open_run(run).result_path("TinySTS")
    damaged.write_bytes(damaged.read_bytes()[:100])
    said = (f"mteb result files of finished tasks are missing or damaged, their scores shown from run.json alone: "
            f"{damaged.relative_to(run).as_posix()} (`harness run` into {shown_path(run)} evaluates those tasks "
            "again)")  # fmt: skip
    assert main(["regress", "--baseline", str(run), "--candidate", str(tiny_runs["short"]), "--tasks", "TinySTS",
                 "--out", str(tmp_path / "regress.md")]) in (0, 1)  # fmt: skip
    text = re.sub(r"\s+", " ", (tmp_path / "regress.md").read_text(encoding="utf-8"))
    assert f"- the baseline: {said}" in text and "the candidate: mteb result" not in text
    assert main(["report", str(run), "--out", str(tmp_path / "report")]) == 0
    text = re.sub(r"\s+", " ", (tmp_path / "report" / "efficiency.md").read_text(encoding="utf-8"))
    assert f"- all-MiniLM-L6-v2 [base]: {said}." in text
    assert main(["leaderboard", str(run), "--out", str(tmp_path / "lb.md")]) == 0
    text = re.sub(r"\s+", " ", (tmp_path / "lb.md").read_text(encoding="utf-8"))
    assert f"- all-MiniLM-L6-v2 [base]: {said}." in text
    capsys.readouterr()


def test_report_into_an_existing_file_is_a_clear_error(tiny_runs, tmp_path, capsys):
    """Before: `harness report --out <a file>` died in a FileExistsError traceback."""
    taken = tmp_path / "notes.md"
    taken.write_text("mine", encoding="utf-8")
    assert main(["report", str(tiny_runs["short"]), "--out", str(taken)]) == 2
    err = capsys.readouterr().err
    assert f"report folder {taken} (--out) is a file" in err and "Traceback" not in err
    assert taken.read_text(encoding="utf-8") == "mine"
    assert main(["report", str(tiny_runs["short"]), "--out", str(taken / "report")]) == 2  # below a file
    assert f"report folder {taken / 'report'} (--out) cannot be created: Not a directory" in capsys.readouterr().err


def test_table5_shows_each_rows_max_length(tiny_runs, tmp_path):
    """Before: `--max-length 4` (short) sat beside the default (base) in Table 5 with the same model, device,
    dtype and batch, and nothing in the report said why its score and time differed."""
    out = tmp_path / "report"
    assert main(["report", str(tiny_runs["base"]), str(tiny_runs["short"]), "--out", str(out)]) == 0
    text = re.sub(r" +", " ", (out / "efficiency.md").read_text(encoding="utf-8"))
    assert "| dtype | Batch | Max length |" in text and "| float32 | 64 | 4 |" in text
    base = json.loads((tiny_runs["base"] / "run.json").read_text(encoding="utf-8"))["model"]["max_length"]
    assert (f"truncate inputs at different max lengths (tokens kept per text), so their scores and times are of "
            f"different inputs: all-MiniLM-L6-v2 [base] {base}, all-MiniLM-L6-v2 [short] 4.") in text


def test_throughput_notes_say_hits_are_excluded_not_that_the_rate_measures_the_cache(tiny_runs, tmp_path):
    """Before: the per-task table said a task with cache hits "measures the cache, not the model", while its
    texts/s is encoded texts over model time (`model_s`), which lookups do not take."""
    out = tmp_path / "report"
    assert main(["report", str(tiny_runs["base"]), "--out", str(out)]) == 0
    text = (out / "efficiency.md").read_text(encoding="utf-8")
    assert "measures the cache, not the model" not in text
    assert "so texts/s and tokens/s measure the model even on a task with hits" in text


def test_a_task_served_whole_by_the_cache_says_so_instead_of_drawing_nothing(tmp_path):
    """Before: a run whose texts all came from the embedding cache had no bar and `—` rates, read as missing data."""
    sample, cache = default_data_root(), tmp_path / "cache"
    for name in ("cold", "warm"):  # warm: the same settings again, every text from cold's cache
        argv = ["run", "--tasks", "STS16", "--model", "minilm", "--data-dir", str(sample), "--cache-dir", str(cache),
                "--out", str(tmp_path), "--run-name", name, "--no-progress"]  # fmt: skip
        assert main(argv) == 0
    warm = json.loads((tmp_path / "warm" / "efficiency.json").read_text(encoding="utf-8"))["STS16"]
    assert warm["encoded_texts"] == 0 and warm["cache_hits"] == warm["unique_texts"]
    out = tmp_path / "report"
    assert main(["report", str(tmp_path / "cold"), str(tmp_path / "warm"), "--out", str(out)]) == 0
    text = re.sub(r" +", " ", (out / "efficiency.md").read_text(encoding="utf-8"))
    (row,) = [line for line in text.splitlines() if line.startswith("| STS16 | all-MiniLM-L6-v2 [warm] |")]
    assert row.endswith(f"| {CACHE_ONLY} | {CACHE_ONLY} | {warm['peak_rss_mb']:,.0f} | — |")
    (cold,) = [line for line in text.splitlines() if line.startswith("| STS16 | all-MiniLM-L6-v2 [cold] |")]
    assert CACHE_ONLY not in cold
    figure = throughput_figure(load_runs([tmp_path / "cold", tmp_path / "warm"]))
    for ax in figure.axes:  # both panels: one note, in the warm run's slot (the second bar of the task)
        (note,) = ax.texts
        assert note.get_text().strip() == CACHE_ONLY and note.get_position()[1] == ax.patches[1].get_center()[1]


def test_run_folders_of_one_name_are_told_apart_by_their_parents(tiny_runs, tmp_path, capsys):
    """Before: `harness report` refused a/base beside nightly/base ("two runs share a directory name and model;
    rename one"), which the leaderboard labels by the fewest distinguishing folders (harness.runs.run_labels)."""
    a, nightly = tmp_path / "a" / "base", tmp_path / "nightly" / "base"
    shutil.copytree(tiny_runs["base"], a)
    shutil.copytree(tiny_runs["short"], nightly)
    out = tmp_path / "report"
    assert main(["report", str(a), str(nightly), "--out", str(out)]) == 0
    text = re.sub(r" +", " ", (out / "efficiency.md").read_text(encoding="utf-8"))
    table5 = text.split("## Hardware")[0]
    assert "| all-MiniLM-L6-v2 [a/base] | 22.7 |" in table5 and "| all-MiniLM-L6-v2 [nightly/base] | 22.7 |" in table5
    assert "| TinySTS | all-MiniLM-L6-v2 [nightly/base] |" in text and str(tmp_path) not in text
    (legend,) = throughput_figure(load_runs([a, nightly])).legends  # below the charts, not over a task's bars
    labels = [text.get_text() for text in legend.get_texts()]
    assert labels == ["all-MiniLM-L6-v2 [a/base]", "all-MiniLM-L6-v2 [nightly/base]"]
    assert main(["report", str(a), str(a), "--out", str(tmp_path / "twice")]) == 2
    err = capsys.readouterr().err
    assert f"run {a}: given twice" in err and "Traceback" not in err
    # audit, stop 50: `--published RUN_DIR RUN_DIR` took the first run for a published folder (same results/ layout)
    assert main(["leaderboard", "--published", str(a), str(nightly), "--out", str(tmp_path / "lb.md")]) == 2
    assert f"--published {a}: a run directory (it holds run.json)" in capsys.readouterr().err


def test_the_dims_column_reads_the_results_not_the_last_run_s_option(tmp_path):
    """Review of stop 49: "MRL dims scored" came from the last run's --dims, so a rerun of one task without --dims
    read "—" while the same report's MRL section showed the run's other task at its dims."""
    sample = default_data_root()
    for extra in (["--tasks", "STS16,STS12", "--dims", "64"], ["--tasks", "STS16", "--overwrite"]):
        assert main(["run", "--model", "minilm", "--data-dir", str(sample), "--out", str(tmp_path), "--run-name", "r",
                     "--no-progress", "--no-cache", *extra]) == 0  # fmt: skip
    assert main(["report", str(tmp_path / "r"), "--out", str(tmp_path / "rep")]) == 0
    assert "✔ 64" in (tmp_path / "rep" / "efficiency.md").read_text(encoding="utf-8")


def test_a_task_without_timings_is_left_out_of_the_times_not_counted_as_zero(tiny_runs, tmp_path):
    """Audit, stop 50: a run whose efficiency.json was removed (what its damage error advises) read 0.00 s, and one
    entry lost made a row sum fewer tasks than its header said, as if that run were faster."""
    runs = _encoded_whole(tiny_runs, tmp_path)
    eff = json.loads((runs[1] / "efficiency.json").read_text(encoding="utf-8"))
    lost = sorted(eff)[0]
    del eff[lost]
    (runs[1] / "efficiency.json").write_text(json.dumps(eff), encoding="utf-8")
    out = tmp_path / "report"
    assert main(["report", *map(str, runs), "--out", str(out)]) == 0
    text = re.sub(r" +", " ", (out / "efficiency.md").read_text(encoding="utf-8"))
    assert "Model time, s (6 tasks)" in text and "Avg score ×100 (7 tasks)" in text  # 7 timed before
    assert f"[short]: no timings recorded for {lost} (efficiency.json lacks them): left out of every row's times" \
        in text
    (runs[1] / "efficiency.json").unlink()
    assert main(["report", *map(str, runs), "--out", str(out)]) == 0
    text = re.sub(r" +", " ", (out / "efficiency.md").read_text(encoding="utf-8"))
    row = next(line for line in text.splitlines() if line.startswith("| all-MiniLM-L6-v2 [short]"))
    assert row.split(" | ")[3:6] == ["—", "—", "—"] and "0.00" not in row
    assert "[short]: no timings recorded for the 7 task(s)" in text and "Model time, s (7 tasks)" in text


def test_a_report_without_curves_removes_an_earlier_report_s_dims_png(tiny_runs, tmp_path):
    out = tmp_path / "report"
    assert main(["report", str(tiny_runs["base"]), "--out", str(out)]) == 0
    assert (out / "dims.png").is_file()
    assert main(["report", str(tiny_runs["short"]), "--out", str(out)]) == 0
    assert not (out / "dims.png").exists()  # before stop 50 base's curves stayed beside short's report


def test_a_full_width_of_unknown_size_reads_so_in_the_dims_table(tiny_runs, tmp_path):
    """run.json may record `model.embed_dim: null`; the curve's full-width point was printed "(0)" and, before stop
    63, its figure stopped the report (log2 of 0). The table now says the width is unknown, and the figure is drawn."""
    run = tmp_path / "base"
    shutil.copytree(tiny_runs["base"], run)
    record = json.loads((run / "run.json").read_text(encoding="utf-8"))
    record["model"]["embed_dim"] = None
    (run / "run.json").write_text(json.dumps(record), encoding="utf-8")
    out = tmp_path / "report"
    assert main(["report", str(run), "--out", str(out)]) == 0
    text = re.sub(r" +", " ", (out / "efficiency.md").read_text(encoding="utf-8"))
    assert re.search(r"\| all-MiniLM-L6-v2 \[base\] \|[^\n]* \(dim unknown\) \|", text), text
    assert "(0) |" not in text and (out / "dims.png").stat().st_size > 10_000

