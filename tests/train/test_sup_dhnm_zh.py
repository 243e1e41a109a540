"""DHNM's precondition on real Chinese QA retrieval (cmrc_qp_zh, drcd_qp_zh): every query comes back, so a negative
replaced at one draw is served at the next (`used` > 0), and the per-task summary says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conan_model import train_tokenizer as train_bbpe
from train.config import load_config
from train.supervised import run
from train.supervised_config import SupervisedConfig

ROWS, BATCH, EPOCHS = 64, 16, 3


@pytest.mark.slow
@pytest.mark.parametrize("name", ["cmrc_qp_zh", "drcd_qp_zh"])
def test_chinese_qa_pairs_are_retrieval_tasks_where_replacements_get_used(name, shared_data: Path, tmp_path: Path):
    source = shared_data / "train" / name / "train.jsonl"
    rows = source.read_text(encoding="utf-8").splitlines()[:ROWS]  # a real slice: BM25 pools over its paragraphs
    (tmp_path / "qa.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    tok = tmp_path / "tok.json"
    train_bbpe([tmp_path / "qa.jsonl"], 600, ("query", "positive"), max_rows=ROWS, save_path=tok)
    steps = EPOCHS * ROWS // BATCH  # three full epochs: every query drawn three times
    config = tmp_path / "cfg.toml"
    config.write_text(f"""stage = "supervised"
output_dir = "{tmp_path / "run"}"
data_root = "{tmp_path}"
tokenizer = "{tok}"
model_overrides = {{max_length = 48}}
max_length = 48
steps = {steps}
log_every = {ROWS // BATCH}
save_every = {steps}
lr = 1e-3
threads = 1
hard_negatives = 3
pool_depth = 16
mrl_dims = "none"
[dhnm]
skip_top = 1
init_threshold = 0.99   # every first use is "too easy": replacements are certain, the test is whether they are used
[tasks.qa]
kind = "retrieval"
data = ["qa.jsonl"]
batch_size = {BATCH}
""")
    run(load_config(SupervisedConfig, config))
    summary = json.loads((tmp_path / "run" / "dhnm_summary.json").read_text())["qa"]
    assert summary["draws"] == EPOCHS * ROWS and summary["queries_seen"] == ROWS and summary["draws_per_query"] == 3
    assert summary["initial_drops"] > 0 and summary["used"] > 0
    # A replacement made at draw d is first used at draw d + 1; the last draw's replacements are never used.
    assert summary["used"] <= summary["replacements"]
    last = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()][-1]
    assert last["dhnm_qa_used"] == summary["used"] and last["dhnm_qa_draws_per_query"] == 3
