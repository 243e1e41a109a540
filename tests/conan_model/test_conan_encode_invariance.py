"""A text's embedding must not depend on its batch: not on the padding, the other texts' lengths, the token-budget
batching that reorders texts, nor on a text being cut at max_length; and inputs that would make every embedding
the same (no room left for the text) or that are not text are refused with an error that names them.

Tolerance (fp32): a text alone and in a padded batch runs the same operations on the same real rows; only the
matmul/softmax kernels may sum in another order for another shape. Each reordered fp32 sum of n terms moves a
value by ~n·2^-24 relative; over 2 layers of 128-wide rows and <= 64 keys that stays well under 1e-6 on a unit
vector (measured: <= 1.2e-7 on this model, <= 4e-5 on the 30-layer SmolLM2-135M in bidirectional mode).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer

from conan_model import ConanConfig, ConanEncoder, save_pretrained
from conan_model.flex import flex_available
from conan_model.modeling import model_for

ATTENTIONS = [("causal", None), ("bidirectional", None), ("soft", 0.3)]


@pytest.fixture()
def texts(sample_texts) -> list[str]:
    # varied lengths, two cut at max_length 64, and empty-ish texts
    return [t * (1 + i % 4) for i, t in enumerate(sample_texts[:12])] + ["", " ", "x", "北京" * 200]


def encoder_with(tokenizer, attention: str, alpha: float | None, pooling: str, arch: str = "decoder",
                 max_length: int = 64) -> ConanEncoder:  # fmt: skip
    """A random tiny decoder (GQA 4/2) or post-norm BERT (4 heads) under the given attention and pooling."""
    torch.manual_seed(0)
    heads = {"n_kv_heads": 4, "qkv_bias": True} if arch == "bert" else {}
    cfg = ConanConfig.preset("tiny", vocab_size=tokenizer.get_vocab_size(), max_length=max_length, arch=arch,
                             attention=attention, attention_alpha=alpha, pooling=pooling, **heads)  # fmt: skip
    return ConanEncoder(model_for(cfg), tokenizer)


@pytest.mark.parametrize("arch", ["decoder", "bert"])
@pytest.mark.parametrize("pooling", ["mean", "last"])
@pytest.mark.parametrize(("attention", "alpha"), ATTENTIONS)
def test_embedding_does_not_depend_on_the_batch(tokenizer, texts, attention, alpha, pooling, arch,
                                                one_thread) -> None:  # fmt: skip
    enc = encoder_with(tokenizer, attention, alpha, pooling, arch)
    alone = np.concatenate([enc.encode([t]) for t in texts])
    together = enc.encode(texts, batch_size=len(texts))
    # reversed input, small token-budget batches: the length sort reorders, the output must not
    budgeted = enc.encode(texts[::-1], batch_size=3, max_batch_tokens=100)[::-1]
    np.testing.assert_allclose(together, alone, atol=1e-6)
    np.testing.assert_allclose(budgeted, alone, atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(alone, axis=1), 1.0, atol=1e-6)


@pytest.mark.skipif(not flex_available(), reason="this torch has no torch.nn.attention.flex_attention")
@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_flex_and_bias_paths_embed_alike(tokenizer, sample_texts, pooling, one_thread) -> None:
    """The soft mask through FlexAttention (torch's CPU reference) and through SDPA's float bias, on texts of 2 to
    194 tokens (two key blocks of 128, the second cut). Same fp32 numbers added, reordered sums: 1e-6 as above."""
    enc = encoder_with(tokenizer, "soft", 0.3, pooling, max_length=256)
    texts = [t * k for t, k in zip(sample_texts[:6], (1, 3, 5, 8, 12, 20), strict=True)] + ["", "x"]
    enc.model.attention_backend = "sdpa"
    bias = enc.encode(texts)
    enc.model.attention_backend = "flex"
    flex_alone = np.concatenate([enc.encode([t]) for t in texts])
    np.testing.assert_allclose(enc.encode(texts), bias, atol=1e-6)
    np.testing.assert_allclose(flex_alone, bias, atol=1e-6)


def test_a_cut_text_keeps_its_eos_for_last_pooling(tokenizer, texts) -> None:
    enc = encoder_with(tokenizer, "causal", None, "last")
    ids = enc._token_ids([texts[-1]], None, None)[0]
    assert len(ids) == 64 and ids[0] == enc.config.bos_token_id and ids[-1] == enc.config.eos_token_id


@pytest.mark.parametrize("max_length", [2, 3])
def test_no_room_left_for_the_text_is_an_error(tokenizer, max_length) -> None:
    """A limit the prompt and <bos>/<eos> fill cut every text to nothing: all embeddings would be the same."""
    enc = encoder_with(tokenizer, "bidirectional", None, "mean")
    enc.config.prompts = {"query": "q: "}
    with pytest.raises(ValueError, match=f"max_length {max_length} leaves no room for the text.*role 'query'"):
        enc.encode(["one text", "another text"], role="query", max_length=max_length)
    with pytest.raises(ValueError, match="max_length 2 leaves no room"):
        enc.count_tokens(["one text"], max_length=2)
    assert enc.encode(["one text"], max_length=3).shape == (1, enc.embed_dim)  # no prompt: <bos> o <eos>


@pytest.mark.parametrize("bad", [None, 3.5, b"bytes"])
def test_a_text_that_is_not_a_string_is_named(tokenizer, bad) -> None:
    enc = encoder_with(tokenizer, "bidirectional", None, "mean")
    with pytest.raises(TypeError, match=rf"texts\[1\] is a {type(bad).__name__}, not a string"):
        enc.encode(["fine", bad, "fine"])


def test_a_tokenizer_json_that_pads_or_truncates_changes_nothing(tmp_path, tokenizer, sample_texts) -> None:
    """A tokenizer.json may carry its own padding and truncation (many exported ones do): the encoder pads and
    truncates itself, so with them on a text's ids were padded to its batch's longest text (pads read as real
    tokens: the vector depended on the batch) and cut at the file's limit, not at max_length."""
    enc = encoder_with(tokenizer, "bidirectional", None, "mean")
    texts = [sample_texts[0] * 3, sample_texts[5]]
    expected = enc.encode(texts[1:]), enc.count_tokens(texts)
    own = Tokenizer.from_str(tokenizer.to_str())
    own.enable_padding(pad_id=0, pad_token="<pad>")
    own.enable_truncation(8)
    loaded = ConanEncoder.from_pretrained(save_pretrained(enc.model, own, tmp_path / "ckpt"), device="cpu",
                                          dtype=torch.float32)  # fmt: skip
    assert loaded.count_tokens(texts) == expected[1]
    np.testing.assert_allclose(loaded.encode(texts)[1:], expected[0], atol=1e-6)
    assert own.padding is not None  # the caller's tokenizer is left as it was
