"""`harness report`: Table 5 shape, hardware, throughput and MRL plots from real runs; parameter counts."""

from __future__ import annotations

import re
from pathlib import Path

from safetensors.torch import save_model

from conan_model import ConanModel
from conan_model.config import ConanConfig
from harness.cli import main
from reporting.efficiency import parameters


def test_report_from_real_runs(tiny_runs, tmp_path):
    out = tmp_path / "report"
    assert main(["report", str(tiny_runs["base"]), str(tiny_runs["short"]), "--out", str(out)]) == 0
    text = re.sub(r" +", " ", (out / "efficiency.md").read_text(encoding="utf-8"))
    assert "## Table 5" in text and "| all-MiniLM-L6-v2 [base] | 22.7 | 384 |" in text
    assert "✔ 64" in text  # base scored MRL dims, short did not
    assert "parameters from run.json" in text  # counted on the loaded module by harness run
    assert "| float32 | 64 |" in text and "## Hardware and settings" in text
    for png in ("throughput.png", "dims.png"):
        assert (out / png).stat().st_size > 10_000
    assert "![score vs dimension per task type](dims.png)" in text and "**STS**" in text


def test_report_without_dims_says_so(tiny_runs, tmp_path):
    out = tmp_path / "report"
    assert main(["report", str(tiny_runs["short"]), "--out", str(out)]) == 0
    assert "No run has results under `experiments/embed_dim_<d>/`" in (out / "efficiency.md").read_text()
    assert not (out / "dims.png").exists()


def test_parameter_count_sources(tmp_path: Path):
    folder = tmp_path / "ckpt"  # a conan checkpoint (older run.json without n_parameters): its safetensors header
    folder.mkdir()
    save_model(ConanModel(ConanConfig.preset("tiny")), str(folder / "model.safetensors"))  # tied weights once
    assert parameters({"spec": f"conan:{folder}"}) == (918_144, "safetensors headers")
    assert parameters({"n_parameters": 5}) == (5, "run.json")
    assert parameters({"spec": "x", "name": "no-such/model"}) == (None, "unknown")
