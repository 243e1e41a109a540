"""Fixtures for conan_model tests: a small tokenizer and model (shared data and one_thread: tests/conftest.py)."""

from __future__ import annotations

import pytest
import torch
from pretrained_helpers import make_qwen2_folder

from conan_model import ConanConfig, ConanModel, train_tokenizer_from_texts

SAMPLE_TEXTS = [
    "The market rallied after the central bank held interest rates steady.",
    "Scientists found a new species of frog in the rainforest.",
    "The home team won the final match in extra time.",
    "北京今天天气晴朗，气温适宜。",
    "新华社报道，今年的粮食产量再创新高。",
    "A short one.",
] * 20


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
