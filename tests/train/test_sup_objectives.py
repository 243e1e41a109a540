"""Supervised losses against formulas written out naively, and MRL on one forward pass."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from conan_model.matryoshka import PAPER_MRL_DIMS, mrl_dims
from train.losses import info_nce
from train.objectives import cosent, label_info_nce, mrl_loss, retrieval_info_nce


def unit(*shape: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(*shape, generator=g), dim=-1)


def naive_info_nce(q, p, negs, tau, in_batch, mask=None):
    """-mean_i log( e^{q_i·p_i/τ} / Σ_c e^{q_i·c/τ} ), candidates c listed one by one."""
    b, k = q.shape[0], negs.shape[1]
    total = 0.0
    for i in range(b):
        cands = []
        rows = range(b) if in_batch else [i]
        for j in rows:
            cands.append(p[j])
        for j in rows:
            for s in range(k):
                if mask is None or mask[j][s]:
                    cands.append(negs[j, s])
        pos = math.exp(float(q[i] @ p[i]) / tau)
        denom = sum(math.exp(float(q[i] @ c) / tau) for c in cands)
        total += -math.log(pos / denom)
    return total / b


@pytest.mark.parametrize("in_batch", [True, False])
def test_info_nce_with_hard_negatives_matches_formula(in_batch):
    q, p, negs = unit(4, 8, seed=1), unit(4, 8, seed=2), unit(4, 3, 8, seed=3)
    loss, own = retrieval_info_nce(q, p, negs, temperature=0.1, in_batch=in_batch)
    assert loss.item() == pytest.approx(naive_info_nce(q, p, negs, 0.1, in_batch), rel=1e-5)
    direct = torch.stack([torch.stack([q[i] @ negs[i, s] for s in range(3)]) for i in range(4)])
    assert torch.allclose(own, direct, atol=1e-6) and not own.requires_grad


def test_info_nce_masks_empty_slots_and_reports_nan():
    q, p, negs = unit(3, 8, seed=4), unit(3, 8, seed=5), unit(3, 2, 8, seed=6)
    mask = torch.tensor([[True, False], [True, True], [False, False]])
    loss, own = retrieval_info_nce(q, p, negs, temperature=0.05, neg_mask=mask)
    assert loss.item() == pytest.approx(naive_info_nce(q, p, negs, 0.05, True, mask.tolist()), rel=1e-5)
    assert torch.isnan(own[0, 1]) and torch.isnan(own[2]).all() and not torch.isnan(own[1]).any()


def test_info_nce_without_negatives_is_plain_in_batch():
    q, p = unit(5, 8, seed=7), unit(5, 8, seed=8)
    loss, own = retrieval_info_nce(q, p, None, temperature=0.05)
    assert own is None
    assert loss.item() == pytest.approx(F.cross_entropy(q @ p.T / 0.05, torch.arange(5)).item(), rel=1e-6)


def test_info_nce_reduces_to_stage1_info_nce():
    q, p, negs = unit(4, 8, seed=9), unit(4, 8, seed=10), unit(4, 2, 8, seed=11)
    shared, _ = retrieval_info_nce(q, p, negs, temperature=0.05)
    own_only, _ = retrieval_info_nce(q, p, negs, temperature=0.05, shared_negatives=False)
    plain, _ = retrieval_info_nce(q, p, None, temperature=0.05)
    assert shared.item() == pytest.approx(float(info_nce(q, p, 0.05, negs.reshape(8, 8))), rel=1e-5)
    assert own_only.item() == pytest.approx(float(info_nce(q, p, 0.05, negs)), rel=1e-5)
    assert plain.item() == pytest.approx(float(info_nce(q, p, 0.05)), rel=1e-5)


def test_own_negatives_only_matches_formula():
    q, p, negs = unit(3, 8, seed=29), unit(3, 8, seed=30), unit(3, 2, 8, seed=31)
    loss, _ = retrieval_info_nce(q, p, negs, temperature=0.1, shared_negatives=False)
    expected = 0.0
    for i in range(3):
        cands = list(p) + list(negs[i])
        denom = sum(math.exp(float(q[i] @ c) / 0.1) for c in cands)
        expected += -math.log(math.exp(float(q[i] @ p[i]) / 0.1) / denom)
    assert loss.item() == pytest.approx(expected / 3, rel=1e-5)


def test_duplicate_texts_are_not_negatives():
    q, p, negs = unit(3, 8, seed=12), unit(3, 8, seed=13), unit(3, 1, 8, seed=14)
    p = p.clone()
    p[2] = p[0]  # rows 0 and 2 share a positive text (e.g. the same label)
    negs = negs.clone()
    negs[1, 0] = p[0]  # and row 1's negative is that text too
    pos_ids, neg_ids = torch.tensor([7, 8, 7]), torch.tensor([[1], [7], [2]])
    loss, _ = retrieval_info_nce(q, p, negs, temperature=0.1, pos_ids=pos_ids, neg_ids=neg_ids)
    expected = 0.0
    for i in range(3):
        cands = [p[j] for j in range(3) if j == i or pos_ids[j] != pos_ids[i]]
        cands += [negs[j, 0] for j in range(3) if neg_ids[j, 0] != pos_ids[i]]
        denom = sum(math.exp(float(q[i] @ c) / 0.1) for c in cands)
        expected += -math.log(math.exp(float(q[i] @ p[i]) / 0.1) / denom)
    assert loss.item() == pytest.approx(expected / 3, rel=1e-5)


def test_gathered_positives_use_targets():
    """Two local queries are rows 2 and 3 of six gathered positives (as on rank 1 of 3)."""
    q, p, negs = unit(2, 8, seed=15), unit(6, 8, seed=16), unit(6, 2, 8, seed=17)
    loss, own = retrieval_info_nce(q, p, negs, temperature=0.1, targets=torch.tensor([2, 3]))
    cands = list(p) + [negs[j, s] for j in range(6) for s in range(2)]
    expected = 0.0
    for i, row in enumerate((2, 3)):
        denom = sum(math.exp(float(q[i] @ c) / 0.1) for c in cands)
        expected += -math.log(math.exp(float(q[i] @ p[row]) / 0.1) / denom)
    assert loss.item() == pytest.approx(expected / 2, rel=1e-5)
    assert torch.allclose(own, torch.stack([negs[2] @ q[0], negs[3] @ q[1]]), atol=1e-6)


def test_label_info_nce_is_softmax_over_label_texts():
    q, labels, targets = unit(4, 8, seed=20), unit(3, 8, seed=21), torch.tensor([0, 2, 1, 2])
    expected = 0.0
    for i in range(4):
        logits = [float(q[i] @ labels[c]) / 0.05 for c in range(3)]
        expected += -(logits[targets[i]] - math.log(sum(math.exp(v) for v in logits)))
    assert label_info_nce(q, labels, targets, 0.05).item() == pytest.approx(expected / 4, rel=1e-5)


def test_cosent_matches_formula():
    e1, e2 = unit(5, 8, seed=22), unit(5, 8, seed=23)
    scores = torch.tensor([3.0, 1.0, 1.0, 0.0, 2.5])
    cos = [float(e1[i] @ e2[i]) for i in range(5)]
    terms = [math.exp(20.0 * (cos[b] - cos[a])) for a in range(5) for b in range(5) if scores[a] > scores[b]]
    expected = math.log(1 + sum(terms))
    assert cosent(e1, e2, scores, scale=20.0).item() == pytest.approx(expected, rel=1e-5)


def test_cosent_without_ordered_pairs_is_zero_with_grad():
    e1 = unit(3, 8, seed=24).requires_grad_()
    loss = cosent(e1, unit(3, 8, seed=25), torch.ones(3))
    loss.backward()
    assert loss.item() == 0.0 and e1.grad is not None


def test_mrl_dims_defaults():
    assert mrl_dims(3584) == list(PAPER_MRL_DIMS)
    assert mrl_dims(128) == [8, 16, 40, 56, 72, 112, 128]
    assert mrl_dims(384)[-1] == 384 and all(d % 8 == 0 for d in mrl_dims(384))
    assert mrl_dims(128, [64, 32, 128]) == [32, 64, 128]
    with pytest.raises(ValueError, match=r"lie in \[1, 128\]"):
        mrl_dims(128, [256])
    with pytest.raises(ValueError, match="repeat"):
        mrl_dims(128, [64, 64, 128])
    with pytest.raises(ValueError, match="leave out the model's width 128"):  # the evaluated width gets no loss
        mrl_dims(128, [16, 64])


def test_mrl_weights_stay_with_the_dims_they_were_written_beside():
    from train.errors import ConfigError
    from train.supervised_config import SupervisedConfig

    base = {"tasks": {"t": {"kind": "sts", "data": ["x"]}}}
    assert SupervisedConfig(**base, mrl_dims="128,16", mrl_weights="1,0").mrl(128) == ([16, 128], [0.0, 1.0])
    assert SupervisedConfig(**base, mrl_dims="16,128", mrl_weights="1,0").mrl(128) == ([16, 128], [1.0, 0.0])
    assert SupervisedConfig(**base, mrl_dims="none").mrl(128) == ([128], None)
    for written in ("16,x", "abc", "0,128", "-16,128"):  # refused at load, before any pool is mined (stop 65, a
        with pytest.raises(ConfigError, match=f"mrl_dims = '{written}': expected 'auto', 'none' or comma-separated "
                                              "positive integers"):  # walk: after mining, in int()'s words)
            SupervisedConfig(**base, mrl_dims=written)
    with pytest.raises(ConfigError, match=r"mrl_dims = '16,40': .*128"):  # the width: known once the model is
        SupervisedConfig(**base, mrl_dims="16,40").mrl(128)
    from conan_model import ConanConfig
    from train.supervised import precheck

    tiny = ConanConfig.preset("tiny")  # and when ablate or pipeline open, from the model a stage starts from
    with pytest.raises(ConfigError, match=rf"mrl_dims = '16,40': .*{tiny.hidden_size}"):
        precheck(SupervisedConfig(**base, mrl_dims="16,40"), tiny)


@pytest.mark.parametrize("weights", ["1,-1", "0,0", "nan,1", "1,inf", "1,x"])
def test_mrl_weights_must_be_finite_non_negative_with_a_positive_sum(weights):
    """before: "1,-1" gave a loss toward -inf, "0,0" and "nan,1" a NaN loss (audit F7); now refused at load."""
    from train.errors import ConfigError
    from train.supervised_config import SupervisedConfig

    with pytest.raises(ConfigError, match=f"mrl_weights = '{weights}'"):
        SupervisedConfig(tasks={"t": {"kind": "sts", "data": ["x"]}}, mrl_dims="16,128", mrl_weights=weights)


def test_mrl_loss_is_weighted_mean_of_prefix_losses_from_one_forward():
    torch.manual_seed(0)
    layer = torch.nn.Linear(16, 16)
    calls = []
    layer.register_forward_hook(lambda *_: calls.append(1))
    x = torch.randn(6, 16)
    emb = F.normalize(layer(x), dim=-1)  # ONE forward pass
    q, p = emb[:3], emb[3:]
    total, per_dim, aux = mrl_loss(lambda a, b: retrieval_info_nce(a, b, None, 0.1), [q, p], [4, 8, 16], [1, 2, 1])
    expected = {}
    for d in (4, 8, 16):
        qd, pd = F.normalize(q[:, :d], dim=-1), F.normalize(p[:, :d], dim=-1)
        expected[d] = F.cross_entropy(qd @ pd.T / 0.1, torch.arange(3)).item()
    assert per_dim == pytest.approx(expected, rel=1e-5)
    assert total.item() == pytest.approx((expected[4] + 2 * expected[8] + expected[16]) / 4, rel=1e-5)
    total.backward()
    assert len(calls) == 1 and layer.weight.grad is not None and aux is None


def test_mrl_returns_aux_of_full_dim():
    q, p, negs = unit(2, 16, seed=26), unit(2, 16, seed=27), unit(2, 3, 16, seed=28)
    _, _, own = mrl_loss(lambda a, b, n: retrieval_info_nce(a, b, n, 0.05), [q, p, negs], [8, 16])
    assert torch.allclose(own, torch.einsum("bd,bkd->bk", q, negs), atol=1e-6)


def assert_same(a: torch.Tensor, b: torch.Tensor) -> None:
    """Bit for bit, NaN (an empty slot's cosine) equal to NaN."""
    torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)


def distinct_text_loss(q, cols, col_ids, gold, targets, tau):
    """The paper-silent rule written out by hand, in float64: query i's candidates are the distinct texts among
    ``cols`` (one copy each), less the texts in ``gold[i]`` other than its own positive (column targets[i])."""
    total = 0.0
    for i, t in enumerate(targets.tolist()):
        texts = {col_ids[t]: cols[i][t]}
        for c, text in zip(cols[i], col_ids, strict=True):
            if c is not None and text not in gold[i]:
                texts.setdefault(text, c)
        logits = [float(q[i].double() @ c.double()) / tau for c in texts.values()]
        total += -(logits[0] - math.log(sum(math.exp(v) for v in logits)))
    return total / len(targets)


def test_rows_with_the_same_query_text_are_not_each_others_negatives():
    """Rows 0 and 2 share a query text with different positives: each is a gold positive of the other's query,
    and so is row 3's hard negative that equals p_2. For queries 1 and 3 that text is a repeat: it counts once."""
    q, p, negs = unit(4, 8, seed=40), unit(4, 8, seed=41), unit(4, 2, 8, seed=42).clone()
    q[2] = q[0]
    p[[0, 2]] = F.normalize(q[0] + 0.3 * p[[0, 2]], dim=-1)  # two answers to one question: both close to it
    negs[3, 1] = p[2]
    pos_ids, query_ids = torch.tensor([20, 21, 22, 23]), torch.tensor([10, 11, 10, 12])
    neg_ids = torch.tensor([[30, 31], [32, 33], [34, 35], [36, 22]])
    loss, own = retrieval_info_nce(q, p, negs, temperature=0.1, pos_ids=pos_ids, neg_ids=neg_ids, query_ids=query_ids)
    cols = [list(p) + list(negs.reshape(8, 8))] * 4
    col_ids = pos_ids.tolist() + neg_ids.reshape(-1).tolist()
    gold = [{20, 22}, {21}, {20, 22}, {23}]  # the positives of every row with the query's text
    # Tolerance: float32 dot products of 8-dim unit vectors are within ~8·2^-24 ≈ 5e-7 of the float64 ones, i.e.
    # ≤ 6e-6 per logit at τ = 0.1, so a log-softmax moves by ≤ 1.2e-5; removing the column moves it by > 1e-2.
    assert loss.item() == pytest.approx(distinct_text_loss(q, cols, col_ids, gold, torch.arange(4), 0.1), abs=2e-5)
    unmasked, _ = retrieval_info_nce(q, p, negs, temperature=0.1, pos_ids=pos_ids, neg_ids=neg_ids)
    assert abs(unmasked.item() - loss.item()) > 1e-2
    assert_same(own, retrieval_info_nce(q, p, negs, temperature=0.1)[1])  # DHNM reads the same cosines


def test_the_query_text_itself_is_no_negative_of_the_query():
    """Paraphrase pairs (a, b) and (b, a) in one batch: row 1's positive is row 0's query text and the reverse,
    and row 2's hard negative is query 2's own text. Pushing a text's query embedding away from its own document
    embedding would teach the model that a text does not match itself, so each such column is masked."""
    q, p, negs = unit(3, 8, seed=46), unit(3, 8, seed=47), unit(3, 1, 8, seed=48)
    query_ids, pos_ids, neg_ids = torch.tensor([1, 2, 3]), torch.tensor([2, 1, 4]), torch.tensor([[5], [6], [3]])
    loss, _ = retrieval_info_nce(q, p, negs, temperature=0.1, pos_ids=pos_ids, neg_ids=neg_ids, query_ids=query_ids)
    cols = [list(p) + list(negs.reshape(3, 8))] * 3
    gold = [{2, 1}, {1, 2}, {4, 3}]  # own positive and own query text (the target column always counts)
    expected = distinct_text_loss(q, cols, pos_ids.tolist() + neg_ids.reshape(-1).tolist(), gold, torch.arange(3), 0.1)
    assert loss.item() == pytest.approx(expected, abs=2e-5)  # the bound reasoned in the test above
    unmasked, _ = retrieval_info_nce(q, p, negs, temperature=0.1, pos_ids=pos_ids, neg_ids=neg_ids)
    assert abs(unmasked.item() - loss.item()) > 1e-2


@pytest.mark.parametrize("shared", [True, False])
def test_a_repeated_negative_text_counts_once_and_the_own_copy_is_kept(shared):
    """Text 10 fills a slot of rows 0 and 1; row 2's slot holds text 3, row 2's own positive (masked for query 2,
    a repeat of the in-batch positive for the others)."""
    q, p, negs = unit(3, 8, seed=43), unit(3, 8, seed=44), unit(3, 2, 8, seed=45).clone()
    negs[1, 0], negs[2, 0] = negs[0, 0], p[2]
    pos_ids, neg_ids = torch.tensor([1, 2, 3]), torch.tensor([[10, 11], [10, 12], [3, 13]])
    kw = {"temperature": 0.1, "shared_negatives": shared, "pos_ids": pos_ids, "neg_ids": neg_ids}
    loss, own = retrieval_info_nce(q, p, negs, **kw)
    visible = [[True] * 3 + [shared or j == i for j in range(3) for _ in range(2)] for i in range(3)]
    flat = list(p) + list(negs.reshape(6, 8))
    cols = [[c if v else None for c, v in zip(flat, row, strict=True)] for row in visible]
    expected = distinct_text_loss(q, cols, pos_ids.tolist() + neg_ids.reshape(-1).tolist(), [{1}, {2}, {3}],
                                  torch.arange(3), 0.1)  # fmt: skip
    assert loss.item() == pytest.approx(expected, abs=2e-5)  # the bound reasoned in the test above
    assert_same(own, retrieval_info_nce(q, p, negs, temperature=0.1, shared_negatives=shared)[1])
    # Which copy counts: the query's own slot when it holds one (queries 0 and 1), else the first column (query 2
    # sees row 0's); the other copy gets exactly zero gradient from that query.
    for i, kept, dropped in ((0, (0, 0), (1, 0)), (1, (1, 0), (0, 0)), (2, (0, 0), (1, 0))):
        if not shared and i == 2:
            continue  # own slots only: query 2 sees neither copy
        n = negs.clone().requires_grad_()
        retrieval_info_nce(q[i : i + 1], p, n, targets=torch.tensor([i]), **kw)[0].backward()
        assert n.grad[dropped].abs().max() == 0 and n.grad[kept].abs().max() > 0, i


@pytest.mark.parametrize(("in_batch", "shared"), [(True, True), (True, False), (False, True)])
def test_without_repeats_text_ids_leave_the_loss_bit_identical(in_batch, shared):
    q, p, negs = unit(4, 8, seed=46), unit(4, 8, seed=47), unit(4, 3, 8, seed=48)
    mask = torch.tensor([[True, True, False], [True, True, True], [True, False, False], [True, True, True]])
    kw = {"temperature": 0.05, "neg_mask": mask, "in_batch": in_batch, "shared_negatives": shared}
    plain, plain_own = retrieval_info_nce(q, p, negs, **kw)
    ids = {"pos_ids": torch.arange(4), "neg_ids": torch.arange(100, 112).view(4, 3), "query_ids": torch.arange(4)}
    masked, own = retrieval_info_nce(q, p, negs, **kw, **ids)
    assert_same(masked, plain)
    assert_same(own, plain_own)


def test_text_id_arguments_are_checked():
    q, p, negs = unit(2, 8, seed=49), unit(2, 8, seed=50), unit(2, 1, 8, seed=51)
    with pytest.raises(ValueError, match="query_ids needs pos_ids"):
        retrieval_info_nce(q, p, negs, query_ids=torch.arange(2))
    with pytest.raises(ValueError, match="pos_ids needs neg_ids"):
        retrieval_info_nce(q, p, negs, pos_ids=torch.arange(2))
    with pytest.raises(ValueError, match=r"query_ids \(3,\) must have the shape of pos_ids \(2,\)"):
        retrieval_info_nce(q, p, negs, pos_ids=torch.arange(2), neg_ids=torch.ones(2, 1), query_ids=torch.arange(3))


def test_label_info_nce_keeps_each_text_to_its_own_label_set():
    """A text of one dataset scores only its own dataset's labels: masked columns count as absent, so the loss is
    the softmax over the allowed labels alone (audit stop 36: an Emotion text was scored against ~140 labels of
    TNews, IFlyTek and Banking77 sharing its task)."""
    q, labels, targets = unit(2, 8, seed=22), unit(5, 8, seed=23), torch.tensor([1, 3])
    allowed = torch.tensor([[True, True, False, False, True], [False, False, True, True, False]])
    expected = 0.0
    for i in range(2):
        logits = [float(q[i] @ labels[c]) / 0.05 for c in range(5) if allowed[i, c]]
        own = float(q[i] @ labels[targets[i]]) / 0.05
        expected += -(own - math.log(sum(math.exp(v) for v in logits)))
    assert label_info_nce(q, labels, targets, 0.05, allowed).item() == pytest.approx(expected / 2, rel=1e-5)
    every = torch.ones(2, 5, dtype=torch.bool)
    assert label_info_nce(q, labels, targets, 0.05, every).item() == label_info_nce(q, labels, targets, 0.05).item()


def test_a_labelled_match_of_the_query_held_by_another_row_is_not_its_negative():
    """Rows (a, b), (b, c), (x, y): the data labels a, b, c one group (0) and x, y another (1); row 2's hard
    negative is a text of group 0. c is a's match though no row pairs them: for query a, row 1's positive and row
    2's negative are masked; for query b, row 0's positive is its own text (the text rule) and row 2's negative is
    masked; query x sees every column. Before (stop 47) the text rule alone left c and that negative as a's
    negatives."""
    q, p, negs = unit(3, 8, seed=30), unit(3, 8, seed=31), unit(3, 1, 8, seed=32)
    pos_ids, neg_ids, query_ids = torch.tensor([2, 3, 5]), torch.tensor([[11], [12], [13]]), torch.tensor([1, 2, 4])
    groups = {"query_groups": torch.tensor([0, 0, 1]), "pos_groups": torch.tensor([0, 0, 1]),
              "neg_groups": torch.tensor([[-1], [-1], [0]])}  # fmt: skip
    loss, _ = retrieval_info_nce(q, p, negs, temperature=0.1, pos_ids=pos_ids, neg_ids=neg_ids, query_ids=query_ids,
                                 **groups)  # fmt: skip
    cands = {0: [p[0], p[2], negs[0, 0], negs[1, 0]],  # p1 (c) and row 2's negative: a's matches
             1: [p[1], p[2], negs[0, 0], negs[1, 0]],  # p0 is b, the query's own text; row 2's negative: a match
             2: [p[0], p[1], p[2], negs[0, 0], negs[1, 0], negs[2, 0]]}  # fmt: skip
    expected = 0.0
    for i in range(3):
        target = p[i]
        denom = sum(math.exp(float(q[i] @ c) / 0.1) for c in cands[i])
        expected += -math.log(math.exp(float(q[i] @ target) / 0.1) / denom)
    assert loss.item() == pytest.approx(expected / 3, rel=1e-5)
    without, _ = retrieval_info_nce(q, p, negs, temperature=0.1, pos_ids=pos_ids, neg_ids=neg_ids,
                                    query_ids=query_ids)  # fmt: skip
    assert without.item() != pytest.approx(loss.item(), rel=1e-3)  # the groups change what counts
    with pytest.raises(ValueError, match="groups must give each column's group"):
        retrieval_info_nce(q, p, negs, temperature=0.1, pos_ids=pos_ids, neg_ids=neg_ids, query_ids=query_ids,
                           query_groups=groups["query_groups"], pos_groups=groups["pos_groups"],
                           neg_groups=groups["neg_groups"][:2])  # fmt: skip
