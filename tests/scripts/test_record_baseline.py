"""scripts/record_baseline.py: a committed baseline keeps a run's scores with their provenance, and no machine path."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from harness.cli import main as harness
from harness.data import default_data_root
from harness.runs import percent

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

import record_baseline  # noqa: E402


def test_record_keeps_scores_metrics_and_data_identity(tmp_path: Path) -> None:
    """One real run of minilm on two sample tasks (seconds); the record's numbers are run.json's (at dim 64: the
    experiments/embed_dim_64 result's), ×100, 2 decimals."""
    argv = ["run", "--model", "minilm", "--tasks", "STS16,TNews", "--data-dir", str(default_data_root()), "--out",
            str(tmp_path / "runs"), "--run-name", "base", "--no-progress", "--no-cache", "--dims", "64"]  # fmt: skip
    assert harness(argv) == 0
    out = tmp_path / "baseline.json"
    assert record_baseline.main([str(tmp_path / "runs" / "base"), "--what", "minilm on two sample tasks",
                                 "--command", "harness run ...", "--measured", "a test", "--out", str(out)]) == 0
    body = json.loads(out.read_text())
    run = json.loads((tmp_path / "runs" / "base" / "run.json").read_text())
    for task in ("STS16", "TNews"):
        assert body["scores_x100"][task] == float(percent(run["tasks"][task]["main_score"]))
        assert body["metrics"][task] == run["tasks"][task]["main_metric"]
        assert body["data"][task] == run["tasks"][task]["identity"]["data"]
        dim = json.loads((tmp_path / "runs" / "base" / "results" / "sentence-transformers__all-MiniLM-L6-v2" /
                          run["model"]["revision"] / "experiments" / "embed_dim_64" / f"{task}.json").read_text())
        split = next(iter(dim["scores"].values()))  # STS16 scores "test", TNews "validation"
        assert body["dims_scores_x100"][task] == {"64": float(percent(split[0]["main_score"]))}
    assert body["model"]["fingerprint"] == run["model"]["fingerprint"]
    assert body["mteb"] == run["tasks"]["STS16"]["identity"]["mteb"]
    assert str(tmp_path) not in out.read_text()  # committed reports carry no absolute machine paths


def test_a_folder_without_run_json_is_named(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="holds no run.json"):
        record_baseline.main([str(tmp_path), "--what", "w", "--command", "c", "--measured", "m",
                              "--out", str(tmp_path / "b.json")])  # fmt: skip
