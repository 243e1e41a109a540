import pytest
import torch

import conan_model.modeling as modeling
from conan_model import ConanConfig, ConanModel, sdpa_mask, soft_mask_bias
from conan_model.masks import sequence_lengths


def batch(vocab: int, ls: list[int], seq_len: int, pad_id: int = 0, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(4, vocab, (len(ls), seq_len), generator=g)
    mask = (torch.arange(seq_len)[None, :] < torch.tensor(ls)[:, None]).long()
    return ids.masked_fill(mask == 0, pad_id), mask


def real(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return hidden[mask.bool()]


def force_bias_path(monkeypatch):
    """Make every soft alpha (0 and 1 included) go through the float log-bias instead of the fast paths."""

    def biased(attention_mask, mode, alpha=None, dtype=torch.float32, backend="sdpa"):
        if mode != "soft":
            return sdpa_mask(attention_mask, mode, alpha, dtype)
        lengths = sequence_lengths(attention_mask)
        return soft_mask_bias(lengths, attention_mask.shape[1], alpha, dtype), False

    monkeypatch.setattr(modeling, "attention_inputs", biased)


@pytest.mark.parametrize("alpha, fast_mode", [(0.0, "causal"), (1.0, "bidirectional")])
def test_soft_bias_path_matches_fast_paths(tiny_model, monkeypatch, alpha, fast_mode):
    ids, mask = batch(tiny_model.config.vocab_size, [12, 7, 3], 12)
    with torch.no_grad():
        fast = tiny_model(ids, mask, mask_mode=fast_mode)
        force_bias_path(monkeypatch)
        soft = tiny_model(ids, mask, mask_mode="soft", alpha=alpha)
    assert torch.allclose(real(fast, mask), real(soft, mask), atol=1e-5)


def test_soft_mask_changes_outputs_between_ends(tiny_model):
    ids, mask = batch(tiny_model.config.vocab_size, [10, 10], 10)
    with torch.no_grad():
        causal, mid, bidir = (tiny_model(ids, mask, mask_mode="soft", alpha=a) for a in (0.0, 0.5, 1.0))
    assert not torch.allclose(mid, causal) and not torch.allclose(mid, bidir)


@pytest.mark.parametrize("mode, alpha", [("causal", None), ("bidirectional", None), ("soft", 0.3)])
def test_padding_content_never_leaks_into_real_tokens(tiny_model, mode, alpha):
    vocab = tiny_model.config.vocab_size
    ids, mask = batch(vocab, [9, 4, 1], 9)
    noisy = torch.where(mask.bool(), ids, torch.randint(4, vocab, ids.shape))
    with torch.no_grad():
        a = tiny_model(ids, mask, mask_mode=mode, alpha=alpha)
        b = tiny_model(noisy, mask, mask_mode=mode, alpha=alpha)
    assert torch.isfinite(a).all() and torch.isfinite(b).all()
    assert torch.allclose(real(a, mask), real(b, mask), atol=1e-6)


def test_all_padding_row_stays_finite(tiny_model):
    ids, mask = batch(tiny_model.config.vocab_size, [5, 0], 5)
    for mode, alpha in [("causal", None), ("bidirectional", None), ("soft", 0.5)]:
        with torch.no_grad():
            assert torch.isfinite(tiny_model(ids, mask, mask_mode=mode, alpha=alpha)).all()


def test_lm_loss_ignores_padding_and_tied_head(tiny_model):
    ids, mask = batch(tiny_model.config.vocab_size, [8, 5], 8)
    noisy = torch.where(mask.bool(), ids, torch.randint(4, tiny_model.config.vocab_size, ids.shape))
    with torch.no_grad():
        assert torch.allclose(tiny_model.lm_loss(ids, mask), tiny_model.lm_loss(noisy, mask))
        logits = tiny_model.lm_logits(tiny_model(ids, mask, mask_mode="causal"))
    assert logits.shape == (2, 8, tiny_model.config.vocab_size)
    names = [n for n, _ in tiny_model.named_parameters()]
    assert not any("lm_head" in n for n in names)


def test_gradient_checkpointing_gives_same_gradients(tiny_model):
    ids, mask = batch(tiny_model.config.vocab_size, [8, 6], 8)
    tiny_model.train()
    grads = []
    for flag in (False, True):
        tiny_model.gradient_checkpointing = flag
        tiny_model.zero_grad()
        tiny_model.embed(ids, mask, mask_mode="soft", alpha=0.5).sum().backward()
        grads.append([p.grad.clone() for p in tiny_model.parameters()])
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(*grads, strict=True))


def test_bf16_forward_close_to_fp32(tiny_model):
    ids, mask = batch(tiny_model.config.vocab_size, [8, 6], 8)
    with torch.no_grad():
        ref = tiny_model.embed(ids, mask)
        low = tiny_model.to(torch.bfloat16).embed(ids, mask)
    assert low.dtype == torch.float32
    assert torch.nn.functional.cosine_similarity(ref, low).min() > 0.99


def test_too_long_input_is_rejected(tiny_model):
    ids = torch.full((1, tiny_model.config.max_length + 1), 5)
    with pytest.raises(ValueError, match="max_length"):
        tiny_model(ids)


def test_meta_construction_allocates_nothing():
    with torch.device("meta"):
        model = ConanModel(ConanConfig.preset("small"))
    assert all(p.is_meta for p in model.parameters())


def test_masked_attention_repeats_kv_like_enable_gqa(tiny_model):
    attn = tiny_model.layers[0].attn
    x = torch.randn(2, 7, tiny_model.config.hidden_size)
    cos, sin = modeling.rope_cos_sin(7, tiny_model.config.head_dim, 10_000.0, x.device)
    keep_all = torch.ones(2, 1, 1, 7, dtype=torch.bool)
    with torch.no_grad():
        assert torch.allclose(attn(x, cos, sin, None, False), attn(x, cos, sin, keep_all, False), atol=1e-6)
