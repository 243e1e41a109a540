"""`--dtype auto` on CPU: bfloat16 exactly where the CPU computes it natively, decided once, reason recorded.

The suite pins CONAN_CPU_BF16=0 (tests/conftest.py) so reference comparisons stay float32; these tests lift or
change that pin themselves and clear the cached decision around each case.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from conan_model.device import cpu_bf16, default_dtype
from harness.cli import main
from harness.embedder import ModelOptions
from harness.models import auto_dtype, load_model
from train.distributed import autocast


@pytest.fixture
def cpu_bf16_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    cpu_bf16.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    cpu_bf16.cache_clear()


def native_flags() -> set[str]:
    """The CPU's bf16 flags, read independently of conan_model.device (Linux /proc/cpuinfo)."""
    path = Path("/proc/cpuinfo")
    words = path.read_text().split() if path.is_file() else []
    return {w for w in words if w in ("avx512_bf16", "amx_bf16", "bf16")}


def test_detection_follows_the_cpu_flags(cpu_bf16_env: pytest.MonkeyPatch) -> None:
    cpu_bf16_env.delenv("CONAN_CPU_BF16", raising=False)
    native, reason = cpu_bf16()
    assert native == bool(native_flags()), reason
    assert all(flag in reason for flag in native_flags())
    assert default_dtype("cpu") == (torch.bfloat16 if native else torch.float32)
    assert default_dtype("cpu") == (torch.bfloat16 if auto_dtype("minilm", "cpu")[0] == "bfloat16" else torch.float32)


@pytest.mark.parametrize(("value", "dtype"), [("1", "bfloat16"), ("0", "float32")])
def test_override_decides_harness_and_training_alike(cpu_bf16_env: pytest.MonkeyPatch, value: str, dtype: str) -> None:
    cpu_bf16_env.setenv("CONAN_CPU_BF16", value)
    assert auto_dtype("minilm", "cpu") == (dtype, f"auto: CONAN_CPU_BF16={value}")
    # me5-small's engine is a 4-bit float32 C library whatever the CPU
    assert auto_dtype("me5-small", None)[0] == "float32"
    with autocast(torch.device("cpu")):
        out = torch.ones(2, 2) @ torch.ones(2, 2)
    assert str(out.dtype) == f"torch.{dtype}"


def test_bad_override_names_the_variable(cpu_bf16_env: pytest.MonkeyPatch) -> None:
    cpu_bf16_env.setenv("CONAN_CPU_BF16", "yes")
    with pytest.raises(ValueError, match="CONAN_CPU_BF16='yes'"):
        cpu_bf16()


def test_auto_loads_minilm_in_bf16_and_explicit_float32_wins(cpu_bf16_env: pytest.MonkeyPatch) -> None:
    cpu_bf16_env.setenv("CONAN_CPU_BF16", "1")
    auto = load_model("minilm", ModelOptions(device="cpu"))
    assert auto.dtype == "bfloat16" and auto.dtype_reason == "auto: CONAN_CPU_BF16=1"
    assert next(auto._model.parameters()).dtype == torch.bfloat16
    explicit = load_model("minilm", ModelOptions(device="cpu", dtype="float32"))
    assert explicit.dtype == "float32" and explicit.dtype_reason == "--dtype float32"
    assert next(explicit._model.parameters()).dtype == torch.float32


def test_run_json_records_dtype_and_reason(cpu_bf16_env: pytest.MonkeyPatch, shared_data: Path,
                                           tmp_path: Path) -> None:  # fmt: skip
    cpu_bf16_env.setenv("CONAN_CPU_BF16", "1")
    code = main(["run", "--tasks", "STS16", "--model", "minilm", "--data-dir", str(shared_data), "--out",
                 str(tmp_path), "--run-name", "auto", "--no-progress", "--no-cache"])  # fmt: skip
    assert code == 0
    model = json.loads((tmp_path / "auto" / "run.json").read_text())["model"]
    assert (model["dtype"], model["dtype_reason"]) == ("bfloat16", "auto: CONAN_CPU_BF16=1")


def test_a_cached_description_records_this_run_s_dtype_reason(cpu_bf16_env: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:  # fmt: skip
    """Audit, stop 52: `--dtype bfloat16` and an auto that resolves to it share one stored model description, and
    run.json took the reason from it: an explicit `--dtype bfloat16` read "auto: CONAN_CPU_BF16=1"."""
    from harness.cache import EmbeddingCache
    from harness.lazy import LazyEmbedder, open_model

    cpu_bf16_env.setenv("CONAN_CPU_BF16", "1")
    cache = EmbeddingCache(tmp_path / "cache")
    first = open_model("minilm", ModelOptions(device="cpu"), cache)  # loads, and describes it into the cache
    assert first.dtype_reason == "auto: CONAN_CPU_BF16=1"
    again = open_model("minilm", ModelOptions(device="cpu", dtype="bfloat16"), cache)
    assert isinstance(again, LazyEmbedder) and again.dtype_reason == "--dtype bfloat16"
    again.ensure_loaded()  # the loaded model agrees with the description: no StaleDescription
    assert again.dtype_reason == "--dtype bfloat16"
