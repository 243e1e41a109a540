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
