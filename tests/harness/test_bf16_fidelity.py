"""Fidelity guard for bfloat16 on CPU: the five published fidelity tasks score within 0.1 of float32.

`--dtype auto` picks bf16 on CPUs with native bf16 (tests/harness/test_dtype_auto.py); this guard is what makes
that default safe: all-MiniLM-L6-v2 on the full official test splits of ../shared/data, both dtypes, same
mirrors. bf16 keeps 8 mantissa bits, so each cosine moves by ~1e-3 at most; rank metrics move only where two
items sit that close, and 0.1 points is the bound the published-score tests already use.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.cli import main

FIDELITY = ("STSBenchmark", "STS13", "STS15", "STS16", "SciFact")


def scores(out: Path, dtype: str, data: Path) -> dict[str, float]:
    code = main(["run", "--tasks", ",".join(FIDELITY), "--model", "minilm", "--dtype", dtype, "--data-dir", str(data),
                 "--out", str(out), "--run-name", dtype, "--no-progress", "--no-cache"])  # fmt: skip
    assert code == 0
    record = json.loads((out / dtype / "run.json").read_text())
    assert record["model"]["dtype"] == dtype
    return {name: 100 * task["main_score"] for name, task in record["tasks"].items()}


@pytest.mark.slow
def test_bf16_scores_within_a_tenth_of_fp32(shared_data: Path, tmp_path: Path) -> None:
    fp32, bf16 = scores(tmp_path, "float32", shared_data), scores(tmp_path, "bfloat16", shared_data)
    assert set(fp32) == set(bf16) == set(FIDELITY)
    moved = {task: round(bf16[task] - fp32[task], 3) for task in FIDELITY}
    assert all(abs(delta) <= 0.1 for delta in moved.values()), moved
