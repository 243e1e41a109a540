"""Edge inputs a user meets when running the stages: a key set on the wrong stage, a max_length the model's prompt
fills. Each is one clear line naming the option, never a silent run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from conan_model import ConanConfig, ConanModel, save_pretrained
from conan_model import train_tokenizer as train_bbpe
from train import cli
from train.config import WeakConfig
from train.errors import ConfigError, DataError
from train.supervised import run as run_supervised
from train.supervised_config import SupervisedConfig
from train.weak import run as run_weak

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("stage", "sets", "message"),
    [
        ("weak", ["seq_len=64"], r"--set: 'seq_len' is a key of the pretrain and mntp stages, not of the weak stage "
                                 r"\(configs/weak.toml is a weak config\)"),
        ("weak", ["hard_negatives=3"], "'hard_negatives' is a key of the supervised stage, not of the weak stage"),
        ("pretrain", ["mask_ratio=0.3"], "'mask_ratio' is a key of the mntp stage, not of the pretrain stage"),
        ("weak", ["stepz=3"], r"unknown weak config key\(s\) \['stepz'\]; did you mean: steps"),  # a typo stays one
    ],
)
def test_a_key_of_another_stage_is_named_as_such(stage, sets, message, monkeypatch):
    monkeypatch.chdir(REPO)
    with pytest.raises(ConfigError, match=message):  # was "unknown weak config key(s) ['seq_len']; did you mean: seed?"
        cli.resolve(f"configs/{stage}.toml", None, sets)


@pytest.fixture(scope="module")
def prompted_init(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model whose config carries E5-style role prompts, as multilingual-e5-small's does."""
    files = [shared_data / "train/sick_nli_en/train.jsonl"]
    tok = train_bbpe(files, 400, ("query", "positive", "negative"), max_rows=200)
    config = ConanConfig.preset("tiny", vocab_size=tok.get_vocab_size(), max_length=64, pooling="mean",
                                prompts={"default": "query: ", "document": "passage: "})  # fmt: skip
    return save_pretrained(ConanModel(config), tok, tmp_path_factory.mktemp("prompted") / "init")


def prompt_tokens(init: Path) -> int:
    from conan_model import load_tokenizer

    return len(load_tokenizer(init / "tokenizer.json").encode("passage: ").ids)


COMMON = dict(steps=2, batch_size=4, lr=1e-3, log_every=1, save_every=100, threads=1)


def test_weak_refuses_a_max_length_its_prompt_fills(tmp_path, shared_data, prompted_init, one_thread):
    """Before, every text was cut to its prompt: each row trained as the same input, loss 0, held-out MRR 1."""
    limit = prompt_tokens(prompted_init)
    cfg = WeakConfig(output_dir=str(tmp_path / "out"), data_root=str(shared_data / "train"), data=["sick_nli_en"],
                     init=str(prompted_init), max_length=limit, holdout=8, **COMMON)  # fmt: skip
    with pytest.raises(ConfigError, match=f"max_length {limit} leaves no room for the text: the model's document "
                                          f"prompt 'passage: '"):  # fmt: skip
        run_weak(cfg)
    assert not (tmp_path / "out" / "final").exists()
    assert run_weak(dataclasses.replace(cfg, output_dir=str(tmp_path / "ok"), max_length=limit + 8)).is_dir()


def test_supervised_refuses_a_max_length_its_prompt_fills(tmp_path, shared_data, prompted_init, one_thread):
    cfg = SupervisedConfig(output_dir=str(tmp_path / "out"), data_root=str(shared_data), init=str(prompted_init),
                           max_length=prompt_tokens(prompted_init), mrl_dims="none",
                           tasks={"r": {"kind": "retrieval", "data": ["train/sick_nli_en"], "batch_size": 4,
                                        "max_rows": 40}},
                           **{k: v for k, v in COMMON.items() if k != "batch_size"})  # per task here  # fmt: skip
    with pytest.raises(ConfigError, match="leaves no room for the text: the model's document prompt 'passage: '"):
        run_supervised(cfg)


def test_a_second_run_into_a_live_output_dir_is_refused(tmp_path, shared_data, one_thread):
    """Before, both resumed from the same checkpoint and overwrote each other's checkpoints and final export."""
    from train.loop import output_dir_lock

    cfg = WeakConfig(output_dir=str(tmp_path / "out"), data_root=str(shared_data / "train"), data=["sick_nli_en"],
                     model_overrides={"max_length": 32}, max_length=32, tokenizer_vocab=300, tokenizer_rows=100,
                     **COMMON)  # fmt: skip
    with output_dir_lock(cfg.output_dir):  # what the other process holds while it trains
        with pytest.raises(ConfigError, match=f"output_dir {cfg.output_dir} is in use: another training process"):
            run_weak(cfg, resume="latest")
        assert not (tmp_path / "out" / "checkpoints").exists()
    assert run_weak(cfg, resume="latest").is_dir()  # the lock goes with the run that held it
    assert run_weak(cfg, resume="latest").is_dir()


def test_a_stage_refused_before_training_leaves_no_folder_and_keeps_the_last_record(tmp_path, shared_data, one_thread):
    """Before: a bad `init` was refused after the output folder was made and locked and train_config.json was
    written, so a new folder stayed behind holding a lock, and an earlier run's record was replaced by the refused
    run's config."""
    not_a_model = tmp_path / "not_a_model"
    not_a_model.mkdir()
    values = dict(data_root=str(shared_data / "train"), data=["sick_nli_en"], init=str(not_a_model), **COMMON)
    fresh = tmp_path / "fresh" / "a" / "out"
    with pytest.raises(ConfigError, match="no config file at"):
        run_weak(WeakConfig(output_dir=str(fresh), **values))
    assert not (tmp_path / "fresh").exists()  # the parents it made too (review, stop 50)
    with pytest.raises(DataError, match="data file does not exist"):  # any refusal before work, not only a config's
        run_weak(WeakConfig(output_dir=str(fresh), **{**values, "init": None, "data": ["no_such_folder"]}))
    assert not (tmp_path / "fresh").exists()
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    (earlier / "train_config.json").write_text('{"steps": 3}\n', encoding="utf-8")  # a finished run's record
    with pytest.raises(ConfigError, match="no config file at"):
        run_weak(WeakConfig(output_dir=str(earlier), **values))
    assert (earlier / "train_config.json").read_text(encoding="utf-8") == '{"steps": 3}\n'
