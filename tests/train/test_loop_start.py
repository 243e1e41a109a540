"""`loop.record_config` writes the run's config to `<output_dir>/train_config.json` atomically: a write that fails
part way (a full disk) keeps the previous record whole instead of leaving half a JSON file. A stage refused before
training (a bad `init`) keeps the last run's record, and leaves no folder it made."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from train import loop
from train.config import PretrainConfig
from train.distributed import Runtime
from train.errors import ConfigError
from train.pretrain import run as run_pretrain

REPO = Path(__file__).resolve().parents[2]

# The child gets a file-size limit (RLIMIT_FSIZE) far below the config's size, as a nearly full disk would: every
# write past 64 bytes fails with EFBIG (SIGXFSZ ignored, so it is an OSError rather than a kill).
_FULL_DISK_START = """
import json, resource, signal, sys
from train import loop
from train.config import PretrainConfig
from train.distributed import Runtime
cfg = PretrainConfig(**json.loads(sys.argv[1]))
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (64, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
try:
    loop.record_config(cfg, Runtime(0, 1, 0, None))
except OSError as e:
    print("failed:", e.strerror)
"""


def test_failed_config_write_keeps_the_previous_train_config(tmp_path: Path, shared_data: Path, one_thread) -> None:
    """Before: write_text truncated train_config.json first, so the failed write left its first 64 bytes."""
    values = dict(output_dir=str(tmp_path / "out"), data_root=str(shared_data / "train"), data=["news_en_raw"],
                  threads=1)  # fmt: skip
    loop.record_config(PretrainConfig(**values), Runtime(0, 2, 0, None))
    record = Path(values["output_dir"]) / "train_config.json"
    before = record.read_text(encoding="utf-8")
    assert json.loads(before)["log_every"] == PretrainConfig.log_every
    assert json.loads(before)["world_size"] == 2  # results depend on it; before stop 61 it was not recorded
    child = subprocess.run([sys.executable, "-c", _FULL_DISK_START, json.dumps({**values, "log_every": 7})], cwd=REPO,
                           env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                           check=True)  # fmt: skip
    assert child.stdout.strip() == "failed: File too large", child.stdout + child.stderr
    assert record.read_text(encoding="utf-8") == before
    assert [p.name for p in record.parent.iterdir() if p.is_file()] == ["train_config.json"]  # no temp file left


def test_a_batch_the_processes_cannot_split_is_refused_before_any_work(tmp_path: Path, shared_data: Path,
                                                                       one_thread, monkeypatch) -> None:  # fmt: skip
    """A walk, stop 66: under torchrun with 2 processes batch_size 5 was refused only after the BBPE tokenizer was
    trained, leaving tokenizer.json and .train.lock in the new output_dir; now :func:`loop.start` refuses it first
    and the folder goes with the lock. Rank 0 of 2 is simulated (nothing reaches a collective)."""
    monkeypatch.setattr(loop, "init_runtime", lambda device: Runtime(0, 2, 0, torch.device("cpu")))
    cfg = PretrainConfig(output_dir=str(tmp_path / "out"), data_root=str(shared_data / "train"), data=["news_en_raw"],
                         tokenizer_vocab=300, tokenizer_rows=50, seq_len=16, batch_size=5, steps=1,
                         threads=1)  # fmt: skip
    with pytest.raises(ConfigError, match=r"^batch_size 5 is not divisible by 2 processes"):
        run_pretrain(cfg)
    assert not (tmp_path / "out").exists()


def test_fsdp_in_one_process_is_said_to_have_no_effect(tmp_path: Path, shared_data: Path, one_thread,
                                                       caplog: pytest.LogCaptureFixture) -> None:  # fmt: skip
    """A walk, stop 66: `--set parallel=fsdp` in one process trained unwrapped (as DDP's weights) without a word."""
    cfg = PretrainConfig(output_dir=str(tmp_path / "out"), data_root=str(shared_data / "train"), data=["news_en_raw"],
                         tokenizer_vocab=300, tokenizer_rows=50, model_overrides={"max_length": 16}, seq_len=16,
                         batch_size=2, steps=1, threads=1, parallel="fsdp")  # fmt: skip
    run_pretrain(cfg)
    assert "parallel = 'fsdp' has no effect in one process" in caplog.text
