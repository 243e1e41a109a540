"""Fixtures for conan_model tests: offline mode, the shared data folder, a small tokenizer and model."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pretrained_helpers import make_qwen2_folder  # noqa: E402

from conan_model import ConanConfig, ConanModel, train_tokenizer_from_texts  # noqa: E402

SAMPLE_TEXTS = [
    "The market rallied after the central bank held interest rates steady.",
    "Scientists found a new species of frog in the rainforest.",
    "The home team won the final match in extra time.",
    "北京今天天气晴朗，气温适宜。",
    "新华社报道，今年的粮食产量再创新高。",
    "A short one.",
] * 20


def shared_data_dir() -> Path:
    """HARNESS_SHARED_DATA, else ../shared/data beside the repository."""
    env = os.environ.get("HARNESS_SHARED_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    root = shared_data_dir()
    if not (root / "train" / "news_en_raw" / "train.jsonl").is_file():
        pytest.skip(f"shared data not found at {root} (set HARNESS_SHARED_DATA)")
    return root


@pytest.fixture()
def one_thread():
    """Tiny models run fastest on one intra-op thread, and it keeps timings sane on a busy shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def sample_texts() -> list[str]:
    return SAMPLE_TEXTS


@pytest.fixture(scope="session")
def tokenizer():
    return train_tokenizer_from_texts(SAMPLE_TEXTS, vocab_size=400, min_frequency=1)


@pytest.fixture()
def tiny_model(tokenizer) -> ConanModel:
    torch.manual_seed(0)
    cfg = ConanConfig.preset("tiny", vocab_size=tokenizer.get_vocab_size(), max_length=64)
    return ConanModel(cfg).eval()


@pytest.fixture()
def qwen2_folder(tmp_path, tokenizer):
    """A random 2-layer Qwen2 (QKV bias, untied head) saved by transformers as safetensors shards."""
    return make_qwen2_folder(tmp_path / "qwen2", tokenizer)
