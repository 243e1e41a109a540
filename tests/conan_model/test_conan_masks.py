import pytest
import torch

from conan_model import mask_weights, sdpa_mask, soft_alpha, soft_mask_bias, soft_mask_weights


def lengths(*ls: int) -> torch.Tensor:
    return torch.tensor(ls)


def padding_mask(ls: list[int], seq_len: int) -> torch.Tensor:
    return (torch.arange(seq_len)[None, :] < torch.tensor(ls)[:, None]).long()


@pytest.mark.parametrize(
    "schedule, expected",
    [
        ("linear", (0.0, 0.5, 1.0)),
        ("accelerating", (0.0, 0.25, 1.0)),
        ("decelerating", (0.0, 0.75, 1.0)),
        ("hard", (0.0, 0.0, 1.0)),
    ],
)
def test_schedules_at_start_middle_end(schedule, expected):
    assert tuple(soft_alpha(t, 100, schedule) for t in (0, 50, 100)) == expected
    assert soft_alpha(150, 100, schedule) == 1.0  # clamped past the end


def test_schedule_errors():
    with pytest.raises(ValueError):
        soft_alpha(1, 0)
    with pytest.raises(ValueError):
        soft_alpha(1, 10, "cosine")


def test_alpha_zero_is_exactly_causal_and_one_is_all_ones():
    t = 9
    assert torch.equal(soft_mask_weights(lengths(t), t, 0.0)[0], torch.tril(torch.ones(t, t)))
    assert torch.equal(soft_mask_weights(lengths(t), t, 1.0)[0], torch.ones(t, t))
    bias = soft_mask_bias(lengths(t), t, 0.0, torch.float32)[0, 0]
    assert torch.equal(
        bias, torch.zeros(t, t).masked_fill(~torch.tril(torch.ones(t, t)).bool(), float("-inf"))
    )


@pytest.mark.parametrize("alpha", [0.1, 0.3, 0.5, 0.8])
def test_rows_up_to_alpha_l_are_fully_open(alpha):
    t = 20
    w = soft_mask_weights(lengths(t), t, alpha)[0]
    bias = soft_mask_bias(lengths(t), t, alpha, torch.float32)[0, 0]
    for i in range(1, t + 1):  # 1-based query row
        if i <= alpha * t:
            assert torch.all(bias[i - 1] == 0)
        else:
            assert torch.allclose(w[i - 1, i:], torch.full((t - i,), alpha * t / i))
            assert torch.all(w[i - 1, :i] == 1)


def test_rank_falls_as_alpha_grows():
    t = 16
    ranks = [
        int(torch.linalg.matrix_rank(soft_mask_weights(lengths(t), t, a)[0].double()))
        for a in (0.0, 0.25, 0.5, 0.75, 1.0)
    ]
    assert ranks[0] == t and ranks[-1] == 1
    assert ranks == sorted(ranks, reverse=True) and len(set(ranks)) == len(ranks)


def test_uses_true_per_sample_length_and_masks_padding_keys():
    w = soft_mask_weights(lengths(4, 8), 8, 0.5)
    assert w.shape == (2, 8, 8)
    assert torch.all(w[0, :, 4:] == 0)  # padding keys never attended
    assert w[0, 0, 3] == 1.0 and w[0, 2, 3] == pytest.approx(0.5 * 4 / 3)  # l = 4, not 8
    assert w[1, 2, 7] == 1.0  # 0.5 * 8 / 3 > 1


def test_no_row_is_ever_fully_masked():
    mask = padding_mask([5, 2, 0], 5)
    for mode, alpha in [("causal", None), ("bidirectional", None), ("soft", 0.4)]:
        w = mask_weights(mask, mode, alpha)
        assert torch.all(w.sum(-1) > 0)
    attn, _ = sdpa_mask(mask, "soft", 0.4)
    assert torch.all(torch.isfinite(attn).any(-1))
    keys, _ = sdpa_mask(mask, "bidirectional")
    assert torch.all(keys.any(-1))


def test_fast_paths():
    full, padded = torch.ones(2, 6, dtype=torch.long), padding_mask([6, 3], 6)
    assert sdpa_mask(padded, "causal") == (None, True)
    assert sdpa_mask(padded, "soft", 0.0) == (None, True)
    assert sdpa_mask(full, "bidirectional") == (None, False)
    assert sdpa_mask(full, "soft", 1.0) == (None, False)
    keys, is_causal = sdpa_mask(padded, "soft", 1.0)
    assert keys.dtype == torch.bool and keys.shape == (2, 1, 1, 6) and not is_causal
    bias, _ = sdpa_mask(full, "soft", 0.5, torch.bfloat16)
    assert bias.dtype == torch.bfloat16 and bias.shape == (1, 1, 6, 6)  # equal lengths: broadcast
    assert sdpa_mask(padded, "soft", 0.5)[0].shape == (2, 1, 6, 6)


def test_mask_argument_errors():
    mask = torch.ones(1, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="right-padded"):
        sdpa_mask(torch.tensor([[0, 1, 1, 1]]), "bidirectional")
    with pytest.raises(ValueError):
        sdpa_mask(mask, "soft")
    with pytest.raises(ValueError):
        sdpa_mask(mask, "causal", 0.5)
    with pytest.raises(ValueError):
        sdpa_mask(mask, "sliding")
