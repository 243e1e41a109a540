"""Pretraining stage on real news text: the loss drops, the output is a conan_model folder, accumulation is exact."""

from __future__ import annotations

import json
import statistics

import pytest
import torch
from safetensors.torch import load_file

from conan_model import ConanEncoder, load_tokenizer
from train.checkpoint import checkpoint_dirs
from train.config import PretrainConfig
from train.pretrain import run


def config(tmp_path, shared_data, **overrides) -> PretrainConfig:
    values = dict(output_dir=str(tmp_path / "out"), data_root=str(shared_data / "train"),
                  data=["news_en_raw", "news_zh_raw"], model_overrides={"max_length": 64}, tokenizer_vocab=1024,
                  tokenizer_rows=300, seq_len=64, batch_size=16, steps=40, lr=3e-3, warmup_ratio=0.1,
                  log_every=1, save_every=10, keep_last=2, threads=1)  # fmt: skip
    return PretrainConfig(**{**values, **overrides})


def metrics(out) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_tiny_pretrain_loss_drops_and_exports_a_conan_folder(tmp_path, shared_data, one_thread):
    cfg = config(tmp_path, shared_data)
    final = run(cfg)
    out = tmp_path / "out"
    rows = metrics(out)
    assert [r["step"] for r in rows] == list(range(1, 41))
    losses = [r["loss"] for r in rows]
    assert statistics.mean(losses[-5:]) < statistics.mean(losses[:5]) - 0.5, losses
    assert {"lr", "grad_norm", "tokens_per_s", "step_time", "mfu"} <= rows[0].keys()
    assert rows[0]["mfu"] is None  # no peak FLOPs known for a CPU
    assert rows[0]["lr"] == pytest.approx(3e-3 * 0.25) and rows[-1]["lr"] == pytest.approx(3e-4)
    assert [p.name for p in checkpoint_dirs(out)] == ["step_00000030", "step_00000040"]
    assert (out / "tokenizer.json").read_text() == (final / "tokenizer.json").read_text()
    last = checkpoint_dirs(out)[-1]
    state = json.loads((last / "state.json").read_text())
    assert state["step"] == 40 and state["config"]["seq_len"] == 64 and set(state["data"]) == {"epoch", "doc", "offset"}
    weights = load_file(final / "model.safetensors")
    assert all(torch.equal(weights[k], v) for k, v in load_file(last / "model.safetensors").items())
    # trained causally, it embeds causally from its eos state, as an imported decoder (before: bidirectional, mean)
    exported = json.loads((final / "config.json").read_text())
    assert (exported["attention"], exported["pooling"]) == ("causal", "last")
    encoder = ConanEncoder.from_pretrained(final, device="cpu")
    emb = encoder.encode(["Stocks rallied on Friday.", "股市周五上涨。"])
    assert emb.shape == (2, 128) and abs(float((emb**2).sum(1).mean()) - 1.0) < 1e-4


def test_gradient_accumulation_matches_one_big_micro_batch(tmp_path, shared_data, one_thread):
    tok = tmp_path / "tok"
    run(config(tmp_path, shared_data, output_dir=str(tok), steps=1))
    common = dict(tokenizer=str(tok / "tokenizer.json"), steps=3, batch_size=8)
    run(config(tmp_path, shared_data, output_dir=str(tmp_path / "a"), **common))
    run(config(tmp_path, shared_data, output_dir=str(tmp_path / "b"), micro_batch_size=2, **common))
    a, b = metrics(tmp_path / "a"), metrics(tmp_path / "b")
    assert [r["loss"] for r in a] == pytest.approx([r["loss"] for r in b], abs=1e-5)
    assert load_tokenizer(tmp_path / "a" / "final").get_vocab_size() == 1024
