"""The supervised stage from multilingual-e5-small (arch "bert"): frozen embeddings, a row cap per task, and the
E5 prompts on the texts the model trains on (the same the encoder adds at evaluation)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from train.distributed import init_runtime
from train.errors import ConfigError
from train.loop import build_model, get_tokenizer
from train.multitask import TaskBatch, build_tasks
from train.supervised import run
from train.supervised_config import SupervisedConfig
from train.supervised_step import Stepper


def e5_config(tmp_path: Path, shared_data: Path, **overrides) -> SupervisedConfig:
    values = dict(output_dir=str(tmp_path / "out"), data_root=str(shared_data / "train"), init="multilingual-e5-small",
                  init_layers=2, freeze=["embed_tokens"], steps=3, lr=1e-3, max_length=32, hard_negatives=2,
                  pool_depth=6, log_every=1, save_every=100, threads=1, dhnm={"skip_top": 1})  # fmt: skip
    values["tasks"] = {"qa": {"kind": "retrieval", "data": ["cmrc_qp_zh"], "batch_size": 4, "max_rows": 40}}
    return SupervisedConfig(**{**values, **overrides})


def test_stage_trains_e5_with_frozen_embeddings(tmp_path: Path, shared_data: Path, e5_small: Path, caplog):
    with caplog.at_level("WARNING", logger="train.supervised"):
        final = run(e5_config(tmp_path, shared_data))
    cfg = json.loads((final / "config.json").read_text())
    assert (cfg["arch"], cfg["n_layers"], cfg["prompts"]) == (
        "bert",
        2,
        {"default": "query: ", "document": "passage: "},
    )
    before, after = load_file(str(e5_small / "model.safetensors")), load_file(str(final / "model.safetensors"))
    assert set(after) == {k for k in before if not k.startswith("layers.") or int(k.split(".")[1]) < 2}
    assert torch.equal(before["embed_tokens.weight"], after["embed_tokens.weight"])  # frozen: bit for bit
    assert not torch.equal(before["layers.0.attn.q_proj.weight"], after["layers.0.attn.q_proj.weight"])
    summary = json.loads((tmp_path / "out" / "dhnm_summary.json").read_text())
    assert summary["qa"]["rows"] == 40  # max_rows: the files' first 40 rows
    # the texts cut to max_length 32, counted with their "passage: " prompt (audit, stop 48: cut in silence before);
    # the count is checked against the tokenizer directly
    lengths = json.loads((tmp_path / "out" / "text_lengths.json").read_text())
    from tokenizers import Tokenizer

    from train.multitask import read_rows

    tok = Tokenizer.from_file(str(final / "tokenizer.json"))
    rows = read_rows([shared_data / "train" / "cmrc_qp_zh" / "train.jsonl"], "retrieval")[:40]
    passages = list(dict.fromkeys(r["positive"] for r in rows))
    cut = sum(len(e.ids) > 32 for e in tok.encode_batch([f"passage: {t}" for t in passages]))
    assert lengths["max_length"] == 32 and lengths["qa"]["positive"]["texts"] == len(passages)
    assert lengths["qa"]["positive"]["longer_than_max_length"] == cut > 0
    assert f"tasks.qa: {cut} of {len(passages)} positive texts" in caplog.text
    # the pool texts DHNM may serve (stop 70, a walk: left out before): each pool from rank skip_top = 1 on, the
    # rows giving no negative of their own
    from train.mining import load_pools

    served = list(dict.fromkeys(t for p in load_pools(tmp_path / "out" / "pools" / "qa.jsonl")
                                for t in p["candidates"][1:]))  # fmt: skip
    cut = sum(len(e.ids) > 32 for e in tok.encode_batch([f"passage: {t}" for t in served]))
    assert lengths["qa"]["pool_candidates"] == {**lengths["qa"]["pool_candidates"], "texts": len(served),
                                                "longer_than_max_length": cut} and cut > 0  # fmt: skip
    assert f"tasks.qa: {cut} of {len(served)} pool_candidates texts" in caplog.text


def test_training_texts_carry_the_e5_prompts(tmp_path: Path, shared_data: Path, e5_small: Path):
    cfg = e5_config(tmp_path, shared_data)
    rt = init_runtime("cpu")
    tasks = build_tasks(cfg, rt)
    model = build_model(cfg, get_tokenizer(cfg, rt, None, ()), None)
    assert not model.embed_tokens.weight.requires_grad and model.layers[0].attn.q_proj.weight.requires_grad
    stepper = Stepper(cfg, rt, model.config, None, tasks, [384], None)
    a, b = [r for r, pool in enumerate(tasks["qa"].pools) if len(pool) > 1][:2]  # rows with a served negative
    texts, _ = stepper.retrieval(tasks["qa"], TaskBatch("qa", [a, b], [a, b], 0))
    rows = tasks["qa"].rows
    assert texts[:2] == [f"query: {rows[a]['query']}", f"query: {rows[b]['query']}"]
    assert texts[2:4] == [f"passage: {rows[a]['positive']}", f"passage: {rows[b]['positive']}"]
    assert all(t.startswith("passage: ") for t in texts[4:]) and len(texts) > 4  # the mined hard negatives


def test_freeze_and_max_rows_errors(tmp_path: Path, shared_data: Path, e5_small: Path):
    with pytest.raises(ConfigError, match="freeze: 'embeddings' names no parameter; top-level names are"):
        build_model(e5_config(tmp_path, shared_data, freeze=["embeddings"]), None, None)
    with pytest.raises(ConfigError, match="tasks.qa.max_rows must be an integer >= 0"):
        e5_config(tmp_path, shared_data, tasks={"qa": {"kind": "retrieval", "data": ["x"], "max_rows": -1}})
    with pytest.raises(ConfigError, match="a clr task sizes itself with `total`"):
        e5_config(tmp_path, shared_data, tasks={"c": {"kind": "clr", "parallel": "p", "max_rows": 5}})


@pytest.mark.slow
def test_weak_stage_prompts_and_lm_stages_refuse_an_encoder(tmp_path: Path, shared_data: Path, e5_small: Path):
    from conan_model import load_tokenizer
    from train.config import MntpConfig, WeakConfig
    from train.data import JsonlIndex, PairBatches
    from train.weak import run as run_weak

    common = dict(data_root=str(shared_data / "train"), data=["msrp_pairs_en"], init="multilingual-e5-small",
                  init_layers=1, steps=2, save_every=100, threads=1)  # fmt: skip
    final = run_weak(WeakConfig(output_dir=str(tmp_path / "weak"), max_length=32, batch_size=4,
                                mask_schedule="bidirectional", holdout=0, eval_every=0, **common))  # fmt: skip
    tok = load_tokenizer(final, {"pad_token_id": 1, "bos_token_id": 0, "eos_token_id": 2})
    files = [shared_data / "train" / "msrp_pairs_en" / "train.jsonl"]
    index = JsonlIndex(files, ("query", "positive"))
    prefixes = {"query": "query: ", "positive": "passage: "}
    batches = PairBatches(index, tok, ("query", "positive"), 32, 4, prefixes=prefixes)
    ids, _ = batches.encode([0], "query")
    assert ids[0] == tok.encode("query: " + index.row(0)["query"]).ids[:32]
    with pytest.raises(ConfigError, match="the mntp stage trains next-token prediction, which an arch 'bert'"):
        build_model(MntpConfig(output_dir=str(tmp_path / "mntp"), **common), None, None)
    # the weak stage's default schedule starts causal: an encoder never was (before: trained causally at step 0)
    with pytest.raises(ConfigError, match="mask_schedule 'linear': init 'multilingual-e5-small' is a bidirectional"):
        run_weak(WeakConfig(output_dir=str(tmp_path / "linear"), max_length=32, batch_size=4, holdout=0, **common))
    assert not (tmp_path / "linear" / "checkpoints").exists()


def test_max_rows_cuts_the_queries_not_the_corpus_pools_are_mined_from(tmp_path: Path, shared_data: Path):
    """Before stop 36 `max_rows` also cut the corpus the pools were mined from: the DHNM ablation's 200 cmrc_qp_zh
    rows hold only 53 paragraphs, so after the 3 skipped ranks 31% of its queries had no hard negative (audit).
    Now a row's pool is the one it gets with every row of the files as corpus, and the run says how many slots the
    pools fill (dhnm_summary.json `pools`)."""
    rt = init_runtime("cpu")
    cut = build_tasks(e5_config(tmp_path / "cut", shared_data), rt)["qa"]
    whole = build_tasks(e5_config(tmp_path / "all", shared_data, tasks={"qa": {
        "kind": "retrieval", "data": ["cmrc_qp_zh"], "batch_size": 4}}), rt)["qa"]  # fmt: skip
    assert len(cut.rows) == 40 and len(whole.rows) > 40 and cut.rows == whole.rows[:40]
    assert cut.pools == whole.pools[:40]
    cut_positives = {r["positive"] for r in cut.rows}
    assert any(c not in cut_positives for pool in cut.pools for c in pool)  # candidates from beyond the 40 rows
    cover = cut.dhnm.coverage()
    filled = [min(2, max(len(p) - 1, 0)) for p in cut.pools]  # K = 2 after skip_top = 1 (a row's own start)
    assert cover["queries"] == 40 and cover["mean_initial_slots"] <= 2
    assert cover["queries_without_hard_negative"] == sum(f == 0 for f in filled)
