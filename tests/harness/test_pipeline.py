"""`harness pipeline`: train → evaluate → leaderboard → report, and a rerun skips every finished step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main


def _config(tmp_path: Path, shared_data: Path) -> Path:
    out = tmp_path / "pipe"
    train = shared_data / "train"
    text = f"""
out = "{out}"
[[train]]
config = "configs/pretrain.toml"
set = ["output_dir='{out}/pretrain'", "data_root='{train}'", "steps=12", "save_every=6", "log_every=6",
       "batch_size=8", "seq_len=64", "tokenizer_rows=800", "tokenizer_vocab=1000", "threads=1"]
[[train]]
config = "configs/weak.toml"
set = ["output_dir='{out}/weak'", "init='{out}/pretrain/final'", "data_root='{train}'", "steps=12",
       "save_every=6", "log_every=6", "eval_every=0", "batch_size=16", "holdout=32", "threads=1"]
[eval]
tasks = ["STS16", "AFQMC"]
baselines = ["minilm"]
[leaderboard]
published = false
"""
    path = tmp_path / "pipeline.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.slow
def test_pipeline_end_to_end_and_resume(tmp_path: Path, shared_data: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(Path(__file__).resolve().parents[2])  # stage configs are given relative to the repo
    config = _config(tmp_path, shared_data)
    assert main(["pipeline", str(config)]) == 0
    out = tmp_path / "pipe"
    state = json.loads((out / "pipeline.json").read_text())["done"]
    assert any(k.startswith("train:1") for k in state) and "eval:minilm" in state and "report" in state
    board = (out / "leaderboard.md").read_text()
    assert "weak-final" in board and "all-MiniLM-L6-v2" in board and "STS16" in board
    assert (out / "report" / "efficiency.md").is_file()
    capsys.readouterr()

    assert main(["pipeline", str(config)]) == 0  # everything finished: nothing is trained or encoded again
    log = capsys.readouterr().out
    assert sum("[pipeline] train" in line and "done earlier" in line for line in log.splitlines()) == 2
    assert log.count("done earlier, skipped (--overwrite to redo)") == 2 * 3  # 3 models x 2 tasks


def test_pipeline_bad_config_exits_2(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('out = "x"\n[eval]\nbaselines = ["minilm"]\n', encoding="utf-8")
    assert main(["pipeline", str(bad)]) == 2
    assert "needs `suite` or `tasks`" in capsys.readouterr().err
