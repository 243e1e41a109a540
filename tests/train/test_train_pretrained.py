"""Stages start from imported decoders (init = hf:/gguf:/a base name); weak converts, MNTP is LLM2Vec's arm."""

from __future__ import annotations

import dataclasses
import json
import logging

import pytest
import torch
from pretrained_helpers import make_qwen2_folder

from conan_model import ConanEncoder, load_pretrained, save_pretrained
from conan_model import train_tokenizer as train_bbpe
from conan_model.importing import init_model, init_tokenizer
from train.cli import main as train_main
from train.config import MntpConfig, WeakConfig
from train.mntp import mask_tokens
from train.mntp import run as run_mntp
from train.weak import run as run_weak


@pytest.fixture(scope="module")
def qwen2(shared_data, tmp_path_factory):
    """A random Qwen2 HF folder whose tokenizer is a 512-token BBPE trained on the zh/en pairs."""
    root = tmp_path_factory.mktemp("qwen2")
    files = [shared_data / "train" / "parallel_en_zh" / "train.jsonl"]
    tok = train_bbpe(files, 512, ("query", "positive"), max_rows=2000)
    folder, _ = make_qwen2_folder(root / "hf", tok)
    return folder


def weak_config(tmp_path, shared_data, init: str, **overrides) -> WeakConfig:
    values = dict(output_dir=str(tmp_path / "out"), data_root=str(shared_data / "train"), data=["parallel_en_zh"],
                  init=init, max_length=32, batch_size=8, steps=3, lr=1e-3, log_every=1, save_every=100,
                  threads=1)  # fmt: skip
    return WeakConfig(**{**values, **overrides})


def metrics(out) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize(("schedule", "pooling", "attention"), [
    ("linear", "mean", "bidirectional"), ("bidirectional", "mean", "bidirectional"), ("causal", "", "causal"),
])  # fmt: skip
def test_weak_converts_an_hf_decoder(tmp_path, shared_data, qwen2, schedule, pooling, attention):
    """The soft-mask arm, the hard switch at step 0 and the causal arm from an hf: spec; the exported folder
    says how it embeds (the causal arm keeps the import's last-token pooling) and the harness encoder uses it."""
    final = run_weak(weak_config(tmp_path, shared_data, f"hf:{qwen2}", mask_schedule=schedule, pooling=pooling))
    model, tok = load_pretrained(final)
    cfg = model.config
    assert (cfg.attention, cfg.pooling) == (attention, pooling or "last")
    assert cfg.qkv_bias and not cfg.tie_word_embeddings and tok.get_vocab_size() == 512
    alphas = [r["alpha"] for r in metrics(tmp_path / "out") if "loss" in r]
    assert alphas == {"linear": [0.0, 0.5, 1.0], "bidirectional": [1.0] * 3, "causal": [0.0] * 3}[schedule]
    before = init_model(f"hf:{qwen2}")
    assert not torch.equal(before.layers[0].attn.q_proj.bias, model.layers[0].attn.q_proj.bias)
    enc = ConanEncoder.from_pretrained(final, device="cpu", dtype=torch.float32)
    texts = ["a short text", "北京的天气"]
    with torch.no_grad():
        batch = tok.encode_batch(texts)
        expected = [
            model.embed(torch.tensor([b.ids]), torch.ones(1, len(b.ids), dtype=torch.long))[0] for b in batch
        ]
    got = enc.encode(texts)
    assert torch.allclose(torch.from_numpy(got), torch.stack(expected), atol=1e-5)  # float32, one text per row


def test_mask_tokens_follows_the_80_10_10_rule():
    """On 256 x 256 ids, the chosen share is 0.2 within 5 standard errors (sd of a share over n = 65k draws is
    sqrt(.2*.8/n) = 0.0016); the first column is never chosen; of the chosen, ~80% become the mask id."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(10, 500, (256, 256), generator=g)
    inputs, labels = mask_tokens(ids, 0.2, mask_id=7, vocab=500, generator=g)
    chosen = labels != -100
    assert abs(chosen[:, 1:].float().mean().item() - 0.2) < 5 * 0.0016
    assert not chosen[:, 0].any() and torch.equal(labels[chosen], ids[chosen])
    assert torch.equal(inputs[~chosen], ids[~chosen])
    masked = (inputs[chosen] == 7).float().mean().item()
    assert abs(masked - 0.8) < 5 * (0.8 * 0.2 / chosen.sum().item()) ** 0.5


def test_mntp_masks_do_not_depend_on_the_split_over_processes():
    """Audit, stop 48: each mask was seeded by (seed, step, rank, call), so a resume on another number of processes
    (or another micro-batch) masked other positions of the same rows than the uninterrupted run. Now row i of a
    step's global batch is seeded by its place: one process of 4 rows, two of 2, four of 1 mask alike."""
    from train.mntp import mask_rows

    ids = torch.randint(10, 500, (4, 64), generator=torch.Generator().manual_seed(1))
    special = torch.tensor([0, 1, 2])
    whole = mask_rows(ids, (0, 5, 0), 0.3, 7, 500, special)
    for micro in (2, 1):
        parts = [mask_rows(ids[first : first + micro], (0, 5, first), 0.3, 7, 500, special)
                 for first in range(0, 4, micro)]  # fmt: skip
        assert torch.equal(torch.cat([p[0] for p in parts]), whole[0])
        assert torch.equal(torch.cat([p[1] for p in parts]), whole[1])
    assert not torch.equal(mask_rows(ids, (0, 6, 0), 0.3, 7, 500, special)[1], whole[1])  # another step, other masks
    # the rows' places as the step computes them: every (call, rank) of a geometry tiles the global batch of 4
    from train.mntp import first_row

    for micro, world in ((4, 1), (2, 2), (1, 4), (1, 2), (2, 1)):
        places = [first_row(call, micro, world, rank) + i for call in range(4 // (micro * world))
                  for rank in range(world) for i in range(micro)]  # fmt: skip
        assert places == list(range(4)), (micro, world)


def test_mask_tokens_leaves_special_tokens_alone():
    """As LLM2Vec's collator: an eos between packed documents is never a target, and the 10% random tokens are
    never special ones (audit K6: SmolLM2's <|im_end|> was chosen and drawn)."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 40, (64, 256), generator=g)  # ids 0-2 special, ~7.5% of the positions
    special = torch.tensor([0, 1, 2])
    inputs, labels = mask_tokens(ids, 0.5, mask_id=7, vocab=40, generator=g, special=special)
    chosen = labels != -100
    assert chosen.any() and not torch.isin(ids[chosen], special).any()
    swapped = chosen & (inputs != 7) & (inputs != ids)
    assert swapped.sum() > 100 and not torch.isin(inputs[swapped], special).any()
    assert torch.equal(inputs[~chosen], ids[~chosen])


@pytest.mark.parametrize(("schedule", "mid"), [("linear", ("soft", 1 / 3)), ("hard", ("causal", None))])
def test_a_mid_schedule_checkpoint_embeds_as_it_was_trained(tmp_path, shared_data, qwen2, schedule, mid):
    """A checkpoint saved before α reaches 1 said "bidirectional" and was scored so (audit K3b: a hard-schedule
    checkpoint, trained only causally, gave cos 0.966 against its own mask). It now records its last step's mask
    (α(1) = 1/3 of 4 linear steps; the hard schedule is causal until the last) and the encoder applies it."""
    final = run_weak(weak_config(tmp_path, shared_data, f"hf:{qwen2}", mask_schedule=schedule, pooling="mean",
                                 steps=4, save_every=2))  # fmt: skip
    ckpt = tmp_path / "out" / "checkpoints" / "step_00000002"
    model, tok = load_pretrained(ckpt)
    assert (model.config.attention, model.config.attention_alpha) == pytest.approx(mid)
    assert load_pretrained(final)[0].config.inference_mask() == ("bidirectional", None)
    texts = ["a short text", "北京的天气 is fine today"]
    enc = ConanEncoder.from_pretrained(ckpt, device="cpu", dtype=torch.float32)
    with torch.no_grad():
        expected = []
        for b in tok.encode_batch(texts):
            ids, mask = torch.tensor([b.ids]), torch.ones(1, len(b.ids), dtype=torch.long)
            expected.append(model.embed(ids, mask, mask_mode=mid[0], alpha=mid[1])[0])
        bidirectional = model.embed(ids, mask, mask_mode="bidirectional")[0]
    got = torch.from_numpy(enc.encode(texts))
    assert torch.allclose(got, torch.stack(expected), atol=1e-5)
    assert not torch.allclose(got[1], bidirectional, atol=1e-3)  # the end state's vector would differ


def test_weak_warns_when_a_bidirectional_start_is_taken_back_to_causal(tmp_path, shared_data, qwen2, caplog):
    """An MNTP or earlier weak output already attends bidirectionally; the default linear schedule trains it under
    a causal mask first: said at the start, not refused (the soft-mask ablation's arms may want exactly that)."""
    model = init_model(f"hf:{qwen2}")
    model.config = dataclasses.replace(model.config, attention="bidirectional", pooling="mean")
    start = save_pretrained(model, init_tokenizer(f"hf:{qwen2}"), tmp_path / "bidir")
    with caplog.at_level(logging.WARNING, logger="train.weak"):
        run_weak(weak_config(tmp_path, shared_data, str(start), steps=1))
    assert "already attends bidirectionally; mask_schedule 'linear' trains it under a causal mask first" in caplog.text


def test_weak_warns_when_a_mid_schedule_start_begins_again_causal(tmp_path, shared_data, qwen2, caplog):
    """A weak checkpoint saved mid-schedule records the soft mask at its alpha; a new weak run from it starts the
    schedule again at causal. Before stop 48 (audit) only a bidirectional start was named; this one passed
    silently."""
    from train.weak import check_start

    start = dataclasses.replace(init_model(f"hf:{qwen2}").config, attention="soft", attention_alpha=0.5)
    with caplog.at_level(logging.WARNING, logger="train.weak"):
        check_start(weak_config(tmp_path, shared_data, "run/step-2"), start, warn=True)
    assert ("init run/step-2 is a mid-schedule checkpoint (soft mask at alpha 0.5); mask_schedule 'linear' starts "
            "again from a causal mask (alpha 0)") in caplog.text


def test_an_accumulated_mntp_step_is_the_whole_batch_step(tmp_path, shared_data, qwen2, monkeypatch):
    """Audit, stop 52: each micro-batch's loss was its own masked-token mean and the loop averaged them, so a
    micro-batch that drew fewer masks weighed more (the gradient 3-14% off at 2 x 4 rows). Now each is its sum
    over the step's masked count. lr 0 keeps the weights, so every step's gradient norm is compared at the same
    point; fp32 sums 8 rows in other orders, ~1e-7 relative."""
    monkeypatch.setenv("CONAN_CPU_BF16", "0")
    runs = {}
    for micro in (8, 4, 1):
        out = tmp_path / f"micro{micro}"
        run_mntp(MntpConfig(output_dir=str(out), data_root=str(shared_data / "train"), data=["news_en_raw"],
                            init=f"hf:{qwen2}", seq_len=64, batch_size=8, micro_batch_size=micro, steps=3, lr=0.0,
                            log_every=1, save_every=100, threads=1))  # fmt: skip
        runs[micro] = [(r["loss"], r["grad_norm"]) for r in metrics(out) if "loss" in r]
    for micro in (4, 1):
        for (loss, norm), (whole_loss, whole_norm) in zip(runs[micro], runs[8], strict=True):
            assert abs(loss - whole_loss) < 1e-5 * whole_loss and abs(norm - whole_norm) < 1e-5 * whole_norm


def test_a_resumed_mntp_run_masks_and_trains_as_the_uninterrupted_one(tmp_path, shared_data, qwen2):
    """The step's masks are drawn by `MaskedSteps`, which counts steps itself: a resume starts it at the
    checkpoint's step, so steps 3-4 mask (and so log) as the uninterrupted run's."""
    cfg = dict(data_root=str(shared_data / "train"), data=["news_en_raw"], init=f"hf:{qwen2}", seq_len=32,
               batch_size=4, micro_batch_size=2, steps=4, lr=1e-3, log_every=1, save_every=2, threads=1)  # fmt: skip
    run_mntp(MntpConfig(output_dir=str(tmp_path / "whole"), **cfg))
    run_mntp(MntpConfig(output_dir=str(tmp_path / "again"), **cfg),
             resume=str(tmp_path / "whole" / "checkpoints" / "step_00000002"))  # fmt: skip
    whole = [r["loss"] for r in metrics(tmp_path / "whole") if "loss" in r]
    again = [r["loss"] for r in metrics(tmp_path / "again") if "loss" in r]
    assert again == pytest.approx(whole[2:], rel=1e-6)


def test_mntp_stage_learns_and_exports_bidirectional_mean(tmp_path, shared_data, qwen2):
    """LLM2Vec's arm: MNTP from an hf: spec lowers its loss, then the weak stage continues bidirectionally."""
    cfg = MntpConfig(output_dir=str(tmp_path / "mntp"), data_root=str(shared_data / "train"), data=["news_en_raw"],
                     init=f"hf:{qwen2}", seq_len=64, batch_size=8, steps=30, lr=2e-3, log_every=1,
                     save_every=100, threads=1)  # fmt: skip
    final = run_mntp(cfg)
    losses = [r["loss"] for r in metrics(tmp_path / "mntp") if "loss" in r]
    # a random 2-layer model starts near ln(512) = 6.2 and learns unigram statistics within 30 steps
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.5, losses
    model, _ = load_pretrained(final)
    assert (model.config.attention, model.config.pooling) == ("bidirectional", "mean")
    weak = run_weak(weak_config(tmp_path, shared_data, str(final), mask_schedule="bidirectional", pooling="mean"))
    assert load_pretrained(weak)[0].config.attention == "bidirectional"


def test_bad_init_spec_exits_2(tmp_path, shared_data, capsys):
    args = ["weak", "--set", f"output_dir='{tmp_path / 'o'}'", "--set", f"data_root='{shared_data / 'train'}'",
            "--set", "data=['parallel_en_zh']", "--set", f"init='gguf:{tmp_path / 'none.gguf'}'"]  # fmt: skip
    assert train_main(args) == 2
    assert "none.gguf: GGUF file does not exist" in capsys.readouterr().err


def test_init_layers_keeps_the_bottom_blocks(tmp_path, shared_data, qwen2):
    """init_layers=1 trains the first pretrained block only; at lr 0 it exports exactly that block, the import's
    embedding and final norm, and a 1-layer config."""
    full = init_model(f"hf:{qwen2}")
    final = run_weak(weak_config(tmp_path, shared_data, f"hf:{qwen2}", init_layers=1, lr=0.0, steps=1))
    model, _ = load_pretrained(final)
    assert model.config.n_layers == 1 and len(model.layers) == 1
    kept = {k: v for k, v in full.state_dict().items() if not k.startswith("layers.") or k.startswith("layers.0.")}
    assert kept.keys() == model.state_dict().keys()
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in kept.items())


@pytest.mark.parametrize(("sets", "message"), [
    (["init_layers=2"], "init_layers=2 needs an `init` model"),
    (["init='hf:{qwen2}'", "init_layers=9"], "init_layers=9 but init"),
    (["init_from='x'"], "`init_from` is now called `init`"),
])  # fmt: skip
def test_bad_init_layers_and_old_key_exit_2(tmp_path, shared_data, qwen2, capsys, sets, message):
    args = ["weak", "--set", f"output_dir='{tmp_path / 'o'}'", "--set", f"data_root='{shared_data / 'train'}'",
            "--set", "data=['parallel_en_zh']"]  # fmt: skip
    for s in sets:
        args += ["--set", s.format(qwen2=qwen2)]
    assert train_main(args) == 2
    assert message in capsys.readouterr().err


def test_a_max_length_beyond_the_init_s_positions_names_the_key_and_the_init(tmp_path, shared_data, smollm2, capsys):
    """A user's walk (stop 66): `sequence length 9000 exceeds the model's max_length 8192` named neither the key
    (the weak stage has no "sequence length") nor the model. Refused before anything is made in output_dir."""
    out = tmp_path / "o"
    args = ["weak", "--set", f"output_dir='{out}'", "--set", f"data_root='{shared_data / 'train'}'",
            "--set", "data=['parallel_en_zh']", "--set", "init=smollm2-135m", "--set", "max_length=9000"]  # fmt: skip
    assert train_main(args) == 2
    assert capsys.readouterr().err == ("train: error: max_length = 9000 exceeds the 8192 positions of init "
                                       "'smollm2-135m'; set max_length to at most 8192\n")  # fmt: skip
    assert not out.exists()


@pytest.mark.slow
def test_weak_soft_mask_from_smollm2(tmp_path, shared_data, smollm2):
    """Two real steps of the soft-mask conversion of SmolLM2-135M, named by its base name."""
    final = run_weak(weak_config(tmp_path, shared_data, "smollm2-135m", batch_size=4, steps=2, lr=1e-5,
                                 pooling="mean"))  # fmt: skip
    rows = [r for r in metrics(tmp_path / "out") if "loss" in r]
    assert [r["alpha"] for r in rows] == [0.0, 1.0] and all(r["loss"] > 0 for r in rows)
    model, _ = load_pretrained(final)
    assert (model.config.attention, model.config.pooling, model.config.n_layers) == ("bidirectional", "mean", 30)
