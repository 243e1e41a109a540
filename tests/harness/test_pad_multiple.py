"""Batch lengths padded to a multiple (`--pad-to-multiple-of`; 1, to the longest text, by default): the batches,
the token budget, the vectors (rounding only: padding is masked) and the identities that keep vectors and results
of one padding from standing in for another's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harness.backend_tokenizer import pad_multiple
from harness.cache import namespace_key
from harness.cli import main
from harness.data import default_data_root
from harness.embedder import ModelOptions
from harness.identity import run_identity
from harness.models import load_model

TEXTS = ["short", "a somewhat longer sentence with more words in it", "mid length text here",
         " ".join(f"w{i}" for i in range(70))]  # fmt: skip


def test_the_default_pads_to_the_longest() -> None:
    assert pad_multiple(None) == pad_multiple(1) == 1 and pad_multiple(8) == 8


@pytest.mark.parametrize("spec", ["minilm", "hf"])
def test_batches_pad_to_the_multiple_and_vectors_move_by_rounding_only(spec: str, one_thread) -> None:
    """float32, so the only difference is where the sums of the same terms run (padded keys get exactly zero
    attention weight, and mean pooling skips them): ~1e-7 per entry; 1e-5 leaves a hundredfold margin."""
    from test_models import _minilm_folder

    name = "minilm" if spec == "minilm" else f"hf:{_minilm_folder()}"
    longest = load_model(name, ModelOptions(device="cpu", dtype="float32"))
    padded = load_model(name, ModelOptions(device="cpu", dtype="float32", pad_to_multiple_of=16))
    assert (longest.pad_multiple, padded.pad_multiple) == (1, 16)
    widths = {m.pad_multiple: m.prepare_batch(TEXTS, None)["input_ids"].shape[1] for m in (longest, padded)}
    assert widths[1] % 16 != 0 and widths[16] == -(-widths[1] // 16) * 16
    assert np.abs(longest.encode_batch(TEXTS, None) - padded.encode_batch(TEXTS, None)).max() < 1e-5
    assert "pad_multiple" not in longest.cache_identity("query")  # as before the option: old caches still serve
    assert padded.cache_identity("query")["pad_multiple"] == 16
    assert namespace_key(padded.cache_identity("query")) != namespace_key(longest.cache_identity("query"))
    assert "pad_multiple" not in run_identity(longest, [], "2") and run_identity(padded, [], "2")["pad_multiple"] == 16


def test_bf16_on_a_cpu_pads_to_the_longest_unless_told(tmp_path: Path) -> None:
    """Stop 44's default of 16 there is gone (no gain in whole runs once the budget counts padding); run.json's
    model records the multiple either way."""
    argv = ["run", "--tasks", "STS16", "--model", "minilm", "--data-dir", str(default_data_root()), "--no-progress",
            "--dtype", "bfloat16", "--device", "cpu", "--no-cache", "--out", str(tmp_path)]  # fmt: skip
    assert main([*argv, "--run-name", "default"]) == 0
    assert main([*argv, "--run-name", "padded", "--pad-to-multiple-of", "16"]) == 0
    model = {name: json.loads((tmp_path / name / "run.json").read_text())["model"] for name in ("default", "padded")}
    assert (model["default"]["pad_multiple"], model["padded"]["pad_multiple"]) == (1, 16)


def test_bf16_batches_pad_to_the_multiple_on_every_path(one_thread, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whichever call makes a batch (the backend's, or the model's own where the backend does not serve: here
    forced), it is padded to the multiple the run records: `BackendTokenizer.widen` pads the model's own batch on,
    with the pad id and a zero mask on the padding side, to the tensors the backend makes."""
    from test_models import _minilm_folder

    for name in ("minilm", f"hf:{_minilm_folder()}"):
        model = load_model(name, ModelOptions(device="cpu", dtype="bfloat16", pad_to_multiple_of=16))
        assert model.pad_multiple == 16
        backend = model.prepare_batch(TEXTS, None)
        assert backend["input_ids"].shape[1] % 16 == 0
        if name == "minilm":
            monkeypatch.setattr(model, "_backend_batch", lambda *args: None)
        else:
            monkeypatch.setattr(model, "_backend_batches", False)
        own = model.prepare_batch(TEXTS, None)
        for key, value in backend.items():
            assert torch_equal(own[key], value), (name, key)
        monkeypatch.undo()


@pytest.mark.parametrize("ahead", [False, True], ids=["inline", "prefetched"])
def test_the_token_budget_bounds_the_batches_as_padded(ahead: bool, one_thread,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """--max-batch-tokens bounds rows x the batch's padded length (the tokens the model computes), not rows x the
    longest text: texts whose length is no multiple of 16 get fewer rows a batch at 16 than at 1. Both paths of
    `encode_stream`: inline (a CPU's) and the background tokenizer's (an accelerator's; forced here)."""
    model = load_model("minilm", ModelOptions(device="cpu", dtype="bfloat16", pad_to_multiple_of=16))
    monkeypatch.setattr(type(model), "prefetches", property(lambda self: ahead))
    text = TEXTS[3]
    length = model.count_tokens([text], None)[0]
    assert length % 16, length  # else padding adds nothing and the test shows nothing
    budget = 4 * length  # four rows as texts, three as padded batches
    shapes = []
    prepare = model.prepare_batch

    def recorded(texts, role, **kwargs):
        batch = prepare(texts, role, **kwargs)
        shapes.append(tuple(batch["input_ids"].shape))
        return batch

    monkeypatch.setattr(model, "prepare_batch", recorded)
    for multiple, rows in ((16, 3), (1, 4)):
        model.pad_multiple = model._tokens.pad_to_multiple_of = multiple
        shapes.clear()
        windows = list(model.encode_stream([text] * 8, None, max_batch=8, max_tokens=budget, window=8))
        assert sum(hi - lo for lo, hi, _, _ in windows) == 8
        assert all(r * w <= budget for r, w in shapes), (multiple, shapes)
        assert shapes[0][0] == rows, (multiple, shapes)


def torch_equal(a, b) -> bool:
    import torch

    return torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b


def test_a_multiple_below_one_is_refused_where_the_model_loads() -> None:
    from harness.errors import UsageError

    with pytest.raises(UsageError, match="--pad-to-multiple-of 0: must be at least 1"):
        load_model("minilm", ModelOptions(device="cpu", pad_to_multiple_of=0))
    with pytest.raises(UsageError, match="--pad-to-multiple-of 8: model conan:x pads its batches its own way"):
        load_model("conan:x", ModelOptions(device="cpu", pad_to_multiple_of=8))  # refused before any load


def test_a_gguf_file_is_named_as_a_training_spec_before_any_option(tmp_path: Path, capsys) -> None:
    """Before stop 49 (audit): `--model gguf:<file> --pad-to-multiple-of 8` blamed the padding, and without it the
    spec was an 'unknown model'; a GGUF file is an `init`/import spec, which the error now says."""
    from harness.cli import main

    for extra in ([], ["--pad-to-multiple-of", "8"]):
        argv = ["run", "--model", "gguf:/x.gguf", "--tasks", "STS16", "--out", str(tmp_path), *extra]
        assert main(argv) == 2
        assert ("--model gguf:/x.gguf: a GGUF file is not evaluated directly; import it first (`harness models "
                "import gguf:/x.gguf --out <folder>`), then --model conan:<folder>") in capsys.readouterr().err
    assert main(["run", "--model", "gguf:", "--tasks", "STS16", "--out", str(tmp_path)]) == 2  # review of stop 49
    assert "--model gguf:: a GGUF file is not evaluated directly" in capsys.readouterr().err
