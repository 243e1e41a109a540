"""`harness pipeline` stopped by a signal during a training stage, then the same command: real training on the
shared data, the signal sent from inside the checkpoint save (deterministic, no sleeps)."""

from __future__ import annotations

import json
from pathlib import Path

from signal_helpers import last_line_of_sigterm_run

from harness.cli import main
from train import checkpoint as ckpt_io

REPO = Path(__file__).resolve().parents[2]


def _one_stage(out: Path, shared_data: Path, steps: int) -> str:
    """A pipeline of one tiny pretrain stage (a checkpoint every step) evaluated on STS16."""
    return f"""out = "{out}"
[[train]]
config = "configs/pretrain.toml"
set = ["output_dir='{out}/pretrain'", "data_root='{shared_data / "train"}'", "data=['news_en_raw']", "threads=1",
       "steps={steps}", "save_every=1", "keep_last=0", "batch_size=4", "seq_len=32", "tokenizer_rows=100",
       "tokenizer_vocab=400", "model_overrides.max_length=32"]
[eval]
tasks = ["STS16"]
[leaderboard]
published = false
"""


def test_sigterm_in_a_training_stage_says_one_line_and_the_rerun_resumes(tmp_path: Path, shared_data: Path,
                                                                        monkeypatch, capsys) -> None:  # fmt: skip
    """Before: SIGTERM during a pipeline's training stage ended the process on the spot, silently (exit -15); only
    `harness run` turned it into one line. Now every command does: exit 143, one line saying what is kept, the
    stage's complete checkpoints intact, and the same command resumes the stage from the newest one."""
    monkeypatch.chdir(REPO)  # the stage config is given relative to the repo
    out = tmp_path / "pipe"
    config = tmp_path / "pipeline.toml"
    config.write_text(_one_stage(out, shared_data, steps=4), encoding="utf-8")
    said = last_line_of_sigterm_run(monkeypatch, capsys, ["pipeline", str(config)], at_step=2)
    assert said == (f"harness: terminated (SIGTERM); finished steps are kept ({out / 'pipeline.json'}): the same "
                    "command continues, a training stage from its newest checkpoint if it wrote one")  # fmt: skip
    ckpts = out / "pretrain" / "checkpoints"
    assert [p.name for p in ckpt_io.checkpoint_dirs(out / "pretrain")] == ["step_00000001", "step_00000002"]
    assert not list(ckpts.glob(".tmp-*")) and not (out / "pretrain" / "final").exists()

    assert main(["pipeline", str(config)]) == 0
    assert f"resumed from {ckpts / 'step_00000002'} at step 2" in capsys.readouterr().out
    assert f"train:{out / 'pretrain'}" in json.loads((out / "pipeline.json").read_text())["done"]


def test_an_interrupt_before_the_config_is_read_or_in_an_eval_only_pipeline_says_what_is_true(
        tmp_path: Path, monkeypatch, capsys) -> None:  # fmt: skip
    """Before stop 64 (a user's walk) a stop before the config was read said "finished steps are kept
    (<out>/pipeline.json)", the placeholder unfilled, and every pipeline's line named "a training stage from its
    newest checkpoint", one without [[train]] stages too."""
    import harness.pipeline as pipeline

    config = tmp_path / "pipeline.toml"
    config.write_text(f'out = "{tmp_path / "pipe"}"\n[eval]\ntasks = ["STS16"]\nbaselines = ["minilm"]\n',
                      encoding="utf-8")  # fmt: skip

    def stop(*_args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline.Pipeline, "evaluate", stop)
    assert main(["pipeline", str(config)]) == 130
    kept = tmp_path / "pipe" / "pipeline.json"
    said = capsys.readouterr().err
    assert said == f"harness: interrupted; finished steps are kept ({kept}): the same command continues\n"
    monkeypatch.setattr(pipeline, "load_pipeline", stop)
    assert main(["pipeline", str(config)]) == 130
    assert capsys.readouterr().err == ("harness: interrupted; the config was not read yet, so nothing was done (the "
                                       "same command starts again)\n")  # fmt: skip


def test_a_reverted_change_gets_back_the_model_kept_aside(tmp_path: Path, shared_data: Path, monkeypatch,
                                                          capsys) -> None:  # fmt: skip
    """A walk (stop 67): a stage's config changed, its retraining interrupted, the change reverted: the pipeline
    trained the old config again from scratch, then deleted `<output_dir>.replaced`, which held that config's
    finished model. Now the kept model is put back, untrained, byte for byte."""
    monkeypatch.chdir(REPO)
    out = tmp_path / "pipe"
    config = tmp_path / "pipeline.toml"
    text = _one_stage(out, shared_data, steps=3)
    config.write_text(text, encoding="utf-8")
    assert main(["pipeline", str(config)]) == 0
    weights = (out / "pretrain" / "final" / "model.safetensors").read_bytes()
    config.write_text(text.replace('"steps=3"', '"steps=4"'), encoding="utf-8")
    last_line_of_sigterm_run(monkeypatch, capsys, ["pipeline", str(config)], at_step=1)
    assert (out / "pretrain.replaced" / "final").is_dir() and not (out / "pretrain" / "final").exists()
    config.write_text(text, encoding="utf-8")  # the change reverted
    assert main(["pipeline", str(config)]) == 0
    log = capsys.readouterr().out
    assert (f"this config's model, kept aside in {out / 'pretrain.replaced'} while another config trained here, is "
            "back in place: not trained again") in log and "training stage" not in log
    assert (out / "pretrain" / "final" / "model.safetensors").read_bytes() == weights
    assert not (out / "pretrain.replaced").exists()
