"""Stages started from a mid-schedule weak checkpoint (a soft mask with its alpha in config.json): each trains with
its own fixed mask and exports a config that declares it, so the harness embeds the model as it was trained."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conan_model import ConanConfig, ConanModel, save_pretrained
from conan_model import train_tokenizer as train_bbpe
from train.config import MntpConfig, PretrainConfig
from train.mntp import run as run_mntp
from train.pretrain import run as run_pretrain
from train.supervised import run as run_supervised
from train.supervised_config import SupervisedConfig


@pytest.fixture(scope="module")
def soft_init(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What a weak run's checkpoint holds mid-schedule: a tiny model whose config says soft attention at 0.5."""
    files = [shared_data / "train/sick_nli_en/train.jsonl", shared_data / "train/news_en_raw/train.jsonl"]
    tok = train_bbpe(files, 600, ("query", "positive", "negative", "text"), max_rows=200)
    config = ConanConfig.preset("tiny", vocab_size=tok.get_vocab_size(), max_length=64, attention="soft",
                                attention_alpha=0.5, pooling="mean")  # fmt: skip
    return save_pretrained(ConanModel(config), tok, tmp_path_factory.mktemp("weak_mid") / "step")


def exported_mask(final: Path) -> tuple[str, float | None, str]:
    config = json.loads((final / "config.json").read_text(encoding="utf-8"))
    return config["attention"], config.get("attention_alpha"), config["pooling"]


COMMON = dict(steps=1, batch_size=4, lr=1e-3, log_every=1, save_every=100, threads=1)


def test_supervised_from_a_soft_init_trains_and_exports_bidirectional(tmp_path, shared_data, soft_init, one_thread):
    cfg = SupervisedConfig(output_dir=str(tmp_path / "out"), data_root=str(shared_data), init=str(soft_init),
                           max_length=32, tasks={"r": {"kind": "retrieval", "data": ["train/sick_nli_en"],
                                                       "batch_size": 4}},
                           **{k: v for k, v in COMMON.items() if k != "batch_size"})  # per task here  # fmt: skip
    assert exported_mask(run_supervised(cfg)) == ("bidirectional", None, "mean")


def test_mntp_from_a_soft_init_trains_and_exports_bidirectional(tmp_path, shared_data, soft_init, one_thread):
    cfg = MntpConfig(output_dir=str(tmp_path / "out"), data_root=str(shared_data / "train"), data=["news_en_raw"],
                     init=str(soft_init), seq_len=32, **COMMON)  # fmt: skip
    assert exported_mask(run_mntp(cfg)) == ("bidirectional", None, "mean")


def test_pretrain_from_a_soft_init_exports_the_causal_mask_it_trained_with(tmp_path, shared_data, soft_init,
                                                                          one_thread):  # fmt: skip
    """Before, the init's soft mask was exported unchanged although every step trained causally."""
    cfg = PretrainConfig(output_dir=str(tmp_path / "out"), data_root=str(shared_data / "train"),
                         data=["news_en_raw"], init=str(soft_init), seq_len=32, **COMMON)  # fmt: skip
    assert exported_mask(run_pretrain(cfg)) == ("causal", None, "mean")  # an init keeps its pooling
