import numpy as np
import pytest
import torch

from conan_model import l2_normalize, last_token_pool, mean_pool, pool, truncate_and_normalize


def test_mean_and_last_ignore_padding():
    hidden = torch.arange(24, dtype=torch.float32).view(2, 3, 4)
    mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
    assert torch.equal(mean_pool(hidden, mask)[1], hidden[1, :2].mean(0))
    assert torch.equal(last_token_pool(hidden, mask)[1], hidden[1, 1])
    assert torch.equal(pool(hidden, mask, "last")[0], hidden[0, 2])
    with pytest.raises(ValueError):
        pool(hidden, mask, "cls")


@pytest.mark.parametrize("method", ["mean", "last"])
def test_all_padding_row_pools_to_zero(method):
    """A text with no token (a tokenizer that adds no specials, given ""): zeros under both poolings, never the
    state of a padding position, which depends on what the text was batched with."""
    hidden = torch.randn(2, 3, 4)
    pooled = pool(hidden, torch.tensor([[1, 1, 0], [0, 0, 0]]), method)
    assert torch.equal(l2_normalize(pooled)[1], torch.zeros(4)) and pooled[0].abs().sum() > 0


def test_pooling_same_text_alone_or_beside_a_longer_one(tiny_model, tokenizer):
    from conan_model import encode_batch

    short, long = "A short one.", "The market rallied after the central bank held interest rates steady."
    alone = encode_batch(tokenizer, [short], 64)
    both = encode_batch(tokenizer, [long, short], 64)
    assert both.attention_mask[1].sum() < both.attention_mask.shape[1]  # really padded
    for method in ("mean", "last"):
        with torch.no_grad():
            a = tiny_model.embed(alone.input_ids, alone.attention_mask, pooling=method)
            b = tiny_model.embed(both.input_ids, both.attention_mask, pooling=method)
        assert torch.allclose(a[0], b[1], atol=1e-5)


def test_truncate_and_normalize_numpy_and_torch():
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((5, 16)).astype(np.float32)
    out = truncate_and_normalize(emb, 8)
    assert isinstance(out, np.ndarray) and out.dtype == np.float32 and out.shape == (5, 8)
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0)
    assert np.allclose(out * np.linalg.norm(emb[:, :8], axis=1, keepdims=True), emb[:, :8], atol=1e-6)
    t = truncate_and_normalize(torch.from_numpy(emb), 8)
    assert isinstance(t, torch.Tensor) and np.allclose(t.numpy(), out, atol=1e-6)
    assert np.allclose(truncate_and_normalize(emb, 16), emb / np.linalg.norm(emb, axis=1, keepdims=True))
    with pytest.raises(ValueError):
        truncate_and_normalize(emb, 17)
