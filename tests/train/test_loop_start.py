"""`loop.record_config` writes the run's config to `<output_dir>/train_config.json` atomically: a write that fails
part way (a full disk) keeps the previous record whole instead of leaving half a JSON file. A stage refused before
training (a bad `init`) keeps the last run's record, and leaves no folder it made."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from train import loop
from train.config import PretrainConfig
from train.distributed import Runtime

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
