"""A conan_model checkpoint runs through `harness run --model conan:<dir>` like any other model."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch

from conan_model import ConanConfig, ConanModel, save_pretrained, train_tokenizer_from_texts
from harness.cli import main
from harness.data import default_data_root, discover_tasks, read_rows


def _tiny_checkpoint(folder: Path) -> Path:
    tasks = discover_tasks(default_data_root())
    texts = [r[k] for name in ("STS16", "TNews") for r in read_rows(tasks[name], "test.jsonl")
             for k in ("sentence1", "sentence2", "text") if k in r]  # fmt: skip
    tokenizer = train_tokenizer_from_texts(texts, vocab_size=600)
    torch.manual_seed(0)
    model = ConanModel(ConanConfig.preset("tiny", vocab_size=tokenizer.get_vocab_size()))
    return save_pretrained(model, tokenizer, folder)


def test_tiny_checkpoint_runs_two_tasks(tmp_path: Path) -> None:
    checkpoint = _tiny_checkpoint(tmp_path / "tiny")
    code = main(["run", "--tasks", "STS16,TNews", "--model", f"conan:{checkpoint}", "--out", str(tmp_path / "runs"),
                 "--run-name", "conan", "--no-progress"])  # fmt: skip
    assert code == 0
    record = json.loads((tmp_path / "runs" / "conan" / "run.json").read_text())
    assert record["model"]["name"] == f"conan/{checkpoint.parent.name}-{checkpoint.name}"
    assert len(record["model"]["fingerprint"]) == 64
    assert record["model"]["training"] is None  # saved by save_pretrained, not exported by `harness train`
    for task in ("STS16", "TNews"):
        assert record["tasks"][task]["status"] == "ok" and math.isfinite(record["tasks"][task]["main_score"])
    eff = json.loads((tmp_path / "runs" / "conan" / "efficiency.json").read_text())
    assert eff["STS16"]["tokens"] > 0
    for task in ("STS16", "TNews"):
        shares, e = eff[task]["shares"], eff[task]
        # on CPU every part is main-thread wall inside the task's wall, so they add up to it; each share is
        # rounded to 1e-4, so six of them may miss 1 by 6 x 0.5e-4
        assert abs(sum(shares.values()) - 1) <= 3e-4 and all(0 <= v <= 1 for v in shares.values())
        assert shares["forward"] > 0 and e["forward_s"] > 0 and e["tokenize_s"] > 0
        assert e["forward_tokens_per_s"] >= e["encode_tokens_per_s"] > 0  # the forward is part of encode


def test_run_json_records_the_training_config_cold_warm_and_damaged(tmp_path: Path, capsys) -> None:
    """run.json names the training that made a `harness train` export (its train_config.json), also when a warm
    rerun describes the model from the cache without loading it; a damaged file is said and recorded as None,
    and the checkpoint is still evaluated."""
    checkpoint = _tiny_checkpoint(tmp_path / "weak" / "final")
    trained = {"stage": "weak", "init": "runs/pretrain/final", "seed": 3, "steps": 200, "mask_schedule": "linear"}
    (checkpoint / "train_config.json").write_text(json.dumps(trained), encoding="utf-8")
    base = ["run", "--tasks", "STS16", "--model", f"conan:{checkpoint}", "--out", str(tmp_path / "runs"),
            "--cache-dir", str(tmp_path / "cache"), "--no-progress"]  # fmt: skip

    def recorded(name: str, *extra: str) -> dict | None:
        assert main([*base, "--run-name", name, *extra]) == 0
        return json.loads((tmp_path / "runs" / name / "run.json").read_text())["model"]["training"]

    assert recorded("cold") == trained
    assert recorded("warm") == trained  # the description from the cache carries it
    (checkpoint / "train_config.json").write_text('{"stage": "weak",', encoding="utf-8")
    capsys.readouterr()
    assert recorded("damaged") is None
    assert "train_config.json" in capsys.readouterr().err


def test_a_step_checkpoint_is_named_by_its_run(tmp_path: Path) -> None:
    """Before stop 60 (a user's walk) step 6 of every run was `conan/checkpoints-step_00000006`: one model name on
    a leaderboard, and one default run directory, so a second run's step 6 was refused there."""
    from harness.backends import checkpoint_name

    assert checkpoint_name(tmp_path / "weak" / "checkpoints" / "step_00000006") == "weak-step_00000006"
    assert checkpoint_name(tmp_path / "weak" / "final") == "weak-final"
    assert checkpoint_name(tmp_path / "checkpoints" / "my-model") == "checkpoints-my-model"  # a user's own folder


def test_conan_stream_tokenizes_once_and_equals_the_generic_path(tmp_path: Path) -> None:
    """The conan: backend's own pass (one tokenization, one sort, background tokenizer) against the generic
    Embedder path it replaced (count tokens, sort, encode_batch per batch): the same vectors, bit for bit."""
    from harness.embedder import Embedder, ModelOptions
    from harness.models import load_model

    model = load_model(f"conan:{_tiny_checkpoint(tmp_path / 'tiny')}", ModelOptions(device="cpu", dtype="float32"))
    tasks = discover_tasks(default_data_root())
    texts = [r[k] for r in read_rows(tasks["STS16"], "test.jsonl") for k in ("sentence1", "sentence2")][:90]
    fast = list(model.encode_stream(texts, None, 16, 512, 40))
    generic = list(Embedder.encode_stream(model, texts, None, 16, 512, 40))
    assert [w[:2] for w in fast] == [w[:2] for w in generic] == [(0, 16), (16, 48), (48, 88), (88, 90)]
    for (_, _, a, la), (_, _, b, lb) in zip(fast, generic, strict=True):
        assert la == lb
        np.testing.assert_array_equal(a, b)


def test_float32_is_passed_not_left_to_the_accelerator_default(tmp_path: Path, monkeypatch) -> None:
    """Before: `--dtype float32` reached ConanEncoder as None ('default'), which is bf16 on accelerators, while
    run.json and the cache key said float32. Faked here: the default conan_model would pick becomes bf16."""
    import conan_model.encoder
    from harness.embedder import ModelOptions
    from harness.models import load_model

    monkeypatch.setattr(conan_model.encoder, "default_dtype", lambda device: torch.bfloat16)
    checkpoint = _tiny_checkpoint(tmp_path / "tiny")
    for name, dtype in (("float32", torch.float32), ("bfloat16", torch.bfloat16)):
        model = load_model(f"conan:{checkpoint}", ModelOptions(device="cpu", dtype=name))
        assert model.dtype == name and model.cache_identity(None)["dtype"] == name
        assert {p.dtype for p in model._enc.model.parameters()} == {dtype}


def test_full_vectors_are_unit_length(tmp_path: Path) -> None:
    """conan: vectors are L2-normalised, as minilm's and me5-small's are (before stop 25 they were raw: an untrained
    smollm2's lengths were 44-57), so a classifier or k-means sees every model kind at one scale; a --dims view is
    the prefix of the unit vector, as mteb's `embed_dim` gives it."""
    from harness.embedder import ModelOptions
    from harness.encoding import HarnessEncoder
    from harness.models import load_model

    model = load_model(f"conan:{_tiny_checkpoint(tmp_path / 'tiny')}", ModelOptions(device="cpu", dtype="float32"))
    texts = [r["sentence1"] for r in read_rows(discover_tasks(default_data_root())["STS16"], "test.jsonl")][:20]
    full = HarnessEncoder(model, show_progress=False).encode_texts(texts, None)
    np.testing.assert_allclose(np.linalg.norm(full, axis=1), 1.0, rtol=0, atol=1e-5)
    np.testing.assert_allclose(model.encode_batch(texts, None), full, rtol=0, atol=1e-6)  # both paths
    raw = model._enc.encode(texts, normalize=False, max_length=model.max_length)
    np.testing.assert_allclose(full, raw / np.linalg.norm(raw, axis=1, keepdims=True), rtol=0, atol=1e-5)


def test_a_dim_the_checkpoint_was_not_trained_at_is_named(tmp_path: Path, capsys) -> None:
    """A walk (stop 69): `--dims 48` on a checkpoint trained with `mrl_dims = "32,64,128"` was scored without a word,
    so a curve of untrained prefixes read as an MRL curve. The note names the dims its last stage did not train
    (the tiny preset is 128 wide); a checkpoint with no training config (save_pretrained) gets none."""
    checkpoint = _tiny_checkpoint(tmp_path / "sup" / "final")
    base = ["run", "--tasks", "STS16", "--model", f"conan:{checkpoint}", "--out", str(tmp_path / "runs"),
            "--dims", "32,48", "--no-progress"]  # fmt: skip

    def said(name: str, training: dict | None) -> str:
        if training is not None:
            (checkpoint / "train_config.json").write_text(json.dumps(training), encoding="utf-8")
        capsys.readouterr()
        assert main([*base, "--run-name", name]) == 0
        return capsys.readouterr().out

    assert "not trained as a Matryoshka prefix" not in said("none", None)
    out = said("sup", {"stage": "supervised", "mrl_dims": "32,64,128"})
    assert ("note: --dims 48: not trained as a Matryoshka prefix — its last training stage (supervised, "
            "train_config.json) put an MRL loss on 32, 64, 128 only; scored as the plain prefix it is") in out
    out = said("weak", {"stage": "weak"})
    assert ("note: --dims 32, 48: not trained as a Matryoshka prefix — its last training stage (weak, "
            "train_config.json) put no MRL loss on a prefix (the full width 128 only); scored as the plain prefixes "
            "they are") in out
    record = json.loads((tmp_path / "runs" / "weak" / "run.json").read_text())
    assert set(record["dims"]) == {32, 48}  # still scored, as the plain prefixes they are
