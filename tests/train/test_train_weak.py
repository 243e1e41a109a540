"""Weak stage: in-batch InfoNCE on real zh/en pairs improves held-out ranking; alpha(t) is applied per step."""

from __future__ import annotations

import json

import pytest
import torch

from conan_model import ConanConfig, ConanModel, save_pretrained, soft_alpha
from conan_model import train_tokenizer as train_bbpe
from train.config import WeakConfig
from train.losses import info_nce
from train.weak import run


@pytest.fixture(scope="module")
def tokenizer_file(shared_data, tmp_path_factory):
    path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
    files = [shared_data / "train" / n / "train.jsonl" for n in ("parallel_en_zh_tatoeba", "parallel_en_zh")]
    train_bbpe(files, 1024, ("query", "positive"), max_rows=3000, save_path=path)
    return path


@pytest.fixture()
def forward_calls(monkeypatch):
    """(grad enabled, mask_mode, alpha) of every ConanModel forward: training calls are the grad-enabled ones."""
    calls = []
    original = ConanModel.forward

    def spy(self, input_ids, attention_mask=None, mask_mode="bidirectional", alpha=None):
        calls.append((torch.is_grad_enabled(), mask_mode, alpha))
        return original(self, input_ids, attention_mask, mask_mode, alpha)

    monkeypatch.setattr(ConanModel, "forward", spy)
    return calls


def config(tmp_path, shared_data, tokenizer_file, **overrides) -> WeakConfig:
    values = dict(output_dir=str(tmp_path / "out"), data_root=str(shared_data / "train"), data=["parallel_en_zh"],
                  tokenizer=str(tokenizer_file), model_overrides={"max_length": 32}, max_length=32, batch_size=16,
                  steps=4, lr=1e-3, log_every=1, save_every=100, threads=1)  # fmt: skip
    return WeakConfig(**{**values, **overrides})


def metrics(out) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_info_nce_matches_the_formula_and_takes_extra_negatives():
    g = torch.Generator().manual_seed(0)
    q, p, n = torch.randn(4, 8, generator=g), torch.randn(6, 8, generator=g), torch.randn(4, 3, 8, generator=g)
    qn, pn, nn_ = (torch.nn.functional.normalize(x, dim=-1) for x in (q, p, n))
    logits = torch.cat([qn @ pn.T, torch.einsum("bd,bkd->bk", qn, nn_)], 1) / 0.1
    expected = -(logits.log_softmax(1)[torch.arange(4), torch.arange(4)]).mean()
    assert info_nce(q, p, 0.1, extra_negatives=n) == pytest.approx(float(expected), abs=1e-6)
    shared = torch.cat([qn @ pn.T, qn @ nn_[0].T], 1) / 0.1
    expected = -shared.log_softmax(1).diag().mean()
    assert info_nce(q, p, 0.1, extra_negatives=n[0]) == pytest.approx(float(expected), abs=1e-6)


def hand_in_batch_loss(q, p, query_ids, pos_ids, tau):
    """In float64, by the rule: query i's candidates are the distinct positive texts of the batch, less the
    positives of every row with i's query text and the copies of its own positive (its own column stays)."""
    qn, pn = (torch.nn.functional.normalize(x.double(), dim=-1) for x in (q, p))
    total = 0.0
    for i in range(len(q)):
        gold = {pos_ids[j] for j in range(len(q)) if query_ids[j] == query_ids[i]}
        texts = {pos_ids[i]: pn[i]}
        for j in range(len(q)):
            if pos_ids[j] not in gold:
                texts.setdefault(pos_ids[j], pn[j])
        logits = torch.stack([qn[i] @ c for c in texts.values()]) / tau
        total += float(torch.logsumexp(logits, 0) - logits[0])
    return total / len(q)


def test_info_nce_masks_a_repeated_query_or_positive():
    """Rows 0 and 3 ask one question with different answers, rows 1 and 4 share an answer (the same text, the same
    embedding): no row sees the other as a negative, and for the other queries answer 11 counts once."""
    g = torch.Generator().manual_seed(1)
    q, p = torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g)
    q[3], p[4] = q[0], p[1]
    p[[0, 3]] = q[0] + 0.3 * p[[0, 3]]  # two answers close to their question: a strong false negative
    query_ids, pos_ids = [1, 2, 3, 1, 4], [10, 11, 12, 13, 11]
    loss = info_nce(q, p, 0.1, query_ids=torch.tensor(query_ids), pos_ids=torch.tensor(pos_ids))
    # float32 cosines of 8-dim vectors are within ~8·2^-24 ≈ 5e-7 of float64 ones: ≤ 6e-6 per logit at τ = 0.1,
    # ≤ 1.2e-5 on a log-softmax; the masking itself moves the loss by > 1e-2.
    assert float(loss) == pytest.approx(hand_in_batch_loss(q, p, query_ids, pos_ids, 0.1), abs=2e-5)
    assert abs(float(info_nce(q, p, 0.1)) - float(loss)) > 1e-2
    # unique ids leave the loss bit-identical (also with targets and extra negatives)
    ids = {"query_ids": torch.arange(5), "pos_ids": torch.arange(5, 10)}
    assert torch.equal(info_nce(q, p, 0.1, **ids), info_nce(q, p, 0.1))
    n, t = torch.randn(2, 8, generator=g), torch.tensor([3, 4])
    assert torch.equal(info_nce(q[3:], p, 0.1, n, t, **ids), info_nce(q[3:], p, 0.1, n, t))
    with pytest.raises(ValueError, match="query_ids needs pos_ids"):
        info_nce(q, p, 0.1, query_ids=torch.arange(5))


def test_a_weak_step_on_real_rows_masks_a_repeated_query(tmp_path, shared_data, tokenizer_file, one_thread,
                                                         monkeypatch):  # fmt: skip
    """A real stage run on 16 real pairs (one global batch) where one query repeats with another answer and one
    answer repeats under another query: the step passes the rows' token-sequence ids, trains, and each masked
    column gives that query's loss exactly zero gradient."""
    import train.weak

    with (shared_data / "train/parallel_en_zh/train.jsonl").open(encoding="utf-8") as f:
        rows = [json.loads(next(f)) for _ in range(16)]
    rows[9]["query"], rows[12]["positive"] = rows[3]["query"], rows[6]["positive"]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    calls = []

    def recorded(q, p, temperature, **ids):  # the real loss, its inputs kept for the checks below
        loss = info_nce(q, p, temperature, **ids)
        calls.append((q.detach(), p.detach(), temperature, ids, float(loss.detach())))
        return loss

    monkeypatch.setattr(train.weak, "info_nce", recorded)
    final = run(config(tmp_path, shared_data, tokenizer_file, data_root=str(tmp_path), data=["pairs.jsonl"],
                       steps=2, holdout=0))  # fmt: skip
    assert [r["loss"] for r in metrics(tmp_path / "out")] == pytest.approx([c[4] for c in calls])
    assert len(calls) == 2 and (final / "model.safetensors").is_file()
    for q, p, tau, ids, value in calls:
        query_ids, pos_ids = ids["query_ids"].tolist(), ids["pos_ids"].tolist()
        assert len(set(query_ids)) == len(set(pos_ids)) == 15  # one repeated query, one repeated answer
        assert value != pytest.approx(float(info_nce(q, p, tau)), abs=1e-6)  # the mask changed the loss
        same_q = [i for i in range(16) if query_ids.count(query_ids[i]) > 1]
        same_p = [i for i in range(16) if pos_ids.count(pos_ids[i]) > 1]
        others = [i for i in range(16) if i not in same_p]
        # (query, masked column, the column holding the same text that still counts, if any)
        cases = [(same_q[0], same_q[1], None), (same_q[1], same_q[0], None), (same_p[0], same_p[1], None),
                 (others[0], max(same_p), min(same_p))]  # fmt: skip
        for i, masked, counted in cases:
            cands = p.clone().requires_grad_()
            info_nce(q[i : i + 1], cands, tau, targets=torch.tensor([i]), **ids).backward()
            assert cands.grad[masked].abs().max() == 0, (i, masked)
            if counted is not None:
                assert cands.grad[counted].abs().max() > 0
            unmasked = p.clone().requires_grad_()
            info_nce(q[i : i + 1], unmasked, tau, targets=torch.tensor([i])).backward()
            assert unmasked.grad[masked].abs().max() > 0  # without ids the column did pull


@pytest.mark.slow
def test_weak_stage_improves_heldout_cross_lingual_ranking(tmp_path, shared_data, tokenizer_file, one_thread,
                                                           forward_calls):  # fmt: skip
    steps = 100
    cfg = config(tmp_path, shared_data, tokenizer_file, data=["parallel_en_zh_tatoeba", "parallel_en_zh"],
                 holdout=256, batch_size=32, steps=steps, log_every=1)  # fmt: skip
    run(cfg)
    rows = metrics(tmp_path / "out")
    evals = [r for r in rows if "eval_mrr" in r]
    assert [r["step"] for r in evals] == [0, steps]
    before, after = evals[0]["eval_mrr"], evals[1]["eval_mrr"]
    assert after > before + 0.1 and after > 2 * before, (before, after)
    # alpha(t) per step, causal (t = 0) to bidirectional (t = steps - 1), in the log and in the forward calls
    train_rows = [r for r in rows if "loss" in r]
    expected = [soft_alpha(t, steps - 1, "linear") for t in range(steps)]
    assert [r["alpha"] for r in train_rows] == pytest.approx(expected)
    training = [(mode, alpha) for grad, mode, alpha in forward_calls if grad]
    assert training == [("soft", a) for a in expected]
    assert training[0][1] == 0.0 and training[-1][1] == 1.0
    assert {mode for grad, mode, _ in forward_calls if not grad} == {"bidirectional"}  # evaluation


@pytest.mark.parametrize("schedule", ["accelerating", "decelerating", "hard", "causal", "bidirectional"])
def test_mask_schedules(tmp_path, shared_data, tokenizer_file, one_thread, forward_calls, schedule):
    steps = 5
    run(config(tmp_path, shared_data, tokenizer_file, steps=steps, mask_schedule=schedule))
    alphas = [r["alpha"] for r in metrics(tmp_path / "out")]
    training = [(mode, alpha) for grad, mode, alpha in forward_calls if grad]
    if schedule in ("causal", "bidirectional"):
        assert training == [(schedule, None)] * steps
        assert alphas == [0.0 if schedule == "causal" else 1.0] * steps
    else:
        expected = [soft_alpha(t, steps - 1, schedule) for t in range(steps)]
        assert alphas == pytest.approx(expected) and training == [("soft", a) for a in expected]
        assert expected[0] == 0.0 and expected[-1] == 1.0
    if schedule == "hard":
        assert expected == [0.0, 0.0, 0.0, 0.0, 1.0]


def test_weak_stage_starts_from_a_checkpoint_folder(tmp_path, shared_data, tokenizer_file, one_thread):
    from conan_model import load_pretrained, load_tokenizer

    tok = load_tokenizer(tokenizer_file)
    torch.manual_seed(1)
    start = save_pretrained(ConanModel(ConanConfig.preset("tiny", vocab_size=1024, max_length=48)), tok, tmp_path / "s")
    final = run(config(tmp_path, shared_data, None, tokenizer=None, model_overrides={}, init=str(start)))
    before, _ = load_pretrained(start)
    after, after_tok = load_pretrained(final)
    assert after.config == before.config and after_tok.to_str() == tok.to_str()
    assert not torch.equal(after.layers[0].attn.q_proj.weight, before.layers[0].attn.q_proj.weight)
    assert metrics(tmp_path / "out")[0]["alpha"] == 0.0
