"""The issue-16 device script's dry run: every part runs on CPU with tiny sizes and lands in one JSON.

It measures nothing worth keeping (2 shared cores, tiny preset); it proves that the script a GPU session spends
its minutes on does not fail on a typo. Slow: a tokenizer, a checkpoint and two `harness run`s.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import gpu_speed  # noqa: E402


@pytest.mark.slow
def test_dry_run_fills_every_part(tmp_path: Path, one_thread) -> None:
    assert gpu_speed.main(["--dry-run", "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "gpu_speed_dry.json").read_text())
    assert record["card"] == "cpu" and set(record["parts"]) == {"flex", "mfu", "encode", "harness"}
    flex = record["parts"]["flex"]["result"]
    assert {(r["T"], r["backend"]) for r in flex} == {(t, b) for t in (64, 160) for b in ("sdpa", "flex")}
    assert all(r["max_abs_diff_vs_sdpa"] < 2e-5 for r in flex if r["backend"] == "flex")  # as test_conan_flex
    assert {r["stage"] for r in record["parts"]["mfu"]["result"]} == {"pretrain", "weak"}
    encode = record["parts"]["encode"]["result"]
    assert [r["task"] for r in encode["rows"]] == ["STS16", "TNews"]
    assert all(0 < r["forward_share"] <= 1 and r["e2e_tokens_per_s"] > 0 for r in encode["rows"])
    harness = record["parts"]["harness"]["result"]
    assert harness["conan"]["exit_status"] == 0 and [r["task"] for r in harness["conan"]["rows"]] == gpu_speed.DRY_TASKS
    assert harness["minilm"]["exit_status"] == 0
