"""`harness train` stopped by a signal mid-run: one line naming the checkpoint kept, the resume finishes the run."""

from __future__ import annotations

from pathlib import Path

from signal_helpers import last_line_of_sigterm_run

from harness.cli import main
from train import checkpoint as ckpt_io


def _argv(out: Path, shared_data: Path, *extra: str) -> list[str]:
    sets = [f"output_dir={out}", f"data_root={shared_data / 'train'}", "data=news_en_raw", "tokenizer_vocab=400",
            "tokenizer_rows=100", "model_overrides.max_length=32", "seq_len=32", "batch_size=4", "steps=3",
            "save_every=1", "keep_last=2", "threads=1"]  # fmt: skip
    return ["train", "pretrain", *(a for s in sets for a in ("--set", s)), *extra]


def test_sigterm_names_the_checkpoint_kept_exits_143_and_resume_finishes(tmp_path: Path, shared_data: Path, one_thread,
                                                                        monkeypatch, capsys) -> None:  # fmt: skip
    """Before: SIGTERM (a scheduler's time limit, `kill`, `timeout`) ended `harness train` silently with -15. Now it
    is said as Ctrl-C is, with what it was (a job log tells a preemption from a Ctrl-C), and exits 143."""
    out = tmp_path / "out"
    said = last_line_of_sigterm_run(monkeypatch, capsys, _argv(out, shared_data), at_step=2)
    assert said == (f"train: terminated (SIGTERM); checkpoints up to step_00000002 are kept in "
                    f"{out / 'checkpoints'}; continue with --resume")  # fmt: skip
    assert not (out / "final").exists()
    assert main(_argv(out, shared_data, "--resume")) == 0
    assert f"resumed from {out / 'checkpoints' / 'step_00000002'} at step 2" in capsys.readouterr().out
    assert [p.name for p in ckpt_io.checkpoint_dirs(out)] == ["step_00000002", "step_00000003"]
