"""Damaged model files (cut short, not JSON, a shard index leading out of the folder) exit 2 with one line naming
the file, from `harness models import` and a training stage's `init`; before, most were tracebacks."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from pretrained_helpers import make_gguf

from conan_model.checkpoint import save_pretrained
from conan_model.importing import load_init
from harness.cli import main


def _first_shard(folder: Path) -> Path:
    return sorted(folder.glob("*.safetensors"))[0]


def _cut_in_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _set_config(folder: Path, **changes) -> None:
    """config.json with `changes`; a key set to None is removed."""
    path = folder / "config.json"
    config = {**json.loads(path.read_text()), **changes}
    path.write_text(json.dumps({k: v for k, v in config.items() if v is not None}), encoding="utf-8")


def _import_fails(tmp_path: Path, spec: str, capsys, *expected: str) -> None:
    """`harness models import` exits 2 naming each of `expected` on stderr, and writes no output folder."""
    assert main(["models", "import", spec, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness models: error: ") and "Traceback" not in err
    for text in expected:
        assert text in err
    assert not (tmp_path / "out").exists()


def test_truncated_safetensors_shard_is_named(qwen2_folder, tmp_path, capsys):
    """Before: safetensors' SafetensorError traceback."""
    folder, _ = qwen2_folder
    shard = _first_shard(folder)
    _cut_in_half(shard)
    _import_fails(tmp_path, f"hf:{folder}", capsys, f"{shard}: damaged safetensors file")


def test_damaged_tokenizer_json_is_named(qwen2_folder, tmp_path, capsys):
    """Before: a bare `Exception` from tokenizers, a traceback."""
    folder, _ = qwen2_folder
    (folder / "tokenizer.json").write_text('{"version": "1.0", "trunc', encoding="utf-8")
    _import_fails(tmp_path, f"hf:{folder}", capsys, f"{folder / 'tokenizer.json'}: not a readable tokenizer.json")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"hidden_size": None}, "config.json: missing hidden_size"),  # before: KeyError 'hidden_size'
        ({"hidden_size": "64"}, "config.json: hidden_size must be an integer, not '64'"),  # a formatting error
        ({"eos_token_id": []}, "config.json: no eos_token_id"),  # before: IndexError
        ({"rope_scaling": "yarn", "rope_parameters": None}, "rope_scaling = 'yarn' is not supported"),
    ],
)
def test_bad_config_values_are_named(qwen2_folder, tmp_path, capsys, changes, expected):
    folder, _ = qwen2_folder
    _set_config(folder, **changes)
    _import_fails(tmp_path, f"hf:{folder}", capsys, expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("[1, 2]", "config.json: expected a JSON object, not list"), ("{oops", "config.json:1: invalid JSON")],
)
def test_config_that_is_no_json_object(qwen2_folder, tmp_path, capsys, text, expected):
    """Before: an AttributeError traceback (a list), a bare JSON message naming no file (bad JSON)."""
    folder, _ = qwen2_folder
    (folder / "config.json").write_text(text, encoding="utf-8")
    _import_fails(tmp_path, f"hf:{folder}", capsys, expected)


@pytest.mark.parametrize("shard", ["../elsewhere/model.safetensors", "/etc/passwd"])
def test_shard_index_cannot_lead_out_of_the_folder(qwen2_folder, tmp_path, capsys, shard):
    """Before: weights were read from wherever the index pointed (the folder next door loaded without a word)."""
    folder, _ = qwen2_folder
    elsewhere = folder.parent / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(_first_shard(folder), elsewhere / "model.safetensors")
    index_path = folder / "model.safetensors.index.json"
    index = json.loads(index_path.read_text())
    index["weight_map"] = {name: shard for name in index["weight_map"]}
    index_path.write_text(json.dumps(index), encoding="utf-8")
    _import_fails(tmp_path, f"hf:{folder}", capsys, f"shard {shard!r} lies outside the model folder")


@pytest.mark.parametrize("keep", [24, -100])  # in the header, in the tensor data
def test_gguf_cut_short_is_named_so(tmp_path, capsys, keep):
    """Before: gguf's reader indexed past its arrays: an IndexError traceback; then (before stop 60) numpy's "When
    changing to a larger dtype, its size must be a divisor…", which did not say the file was incomplete."""
    path = make_gguf(tmp_path / "m.gguf")
    path.write_bytes(path.read_bytes()[:keep])
    size = path.stat().st_size
    _import_fails(tmp_path, f"gguf:{path}", capsys, f"{path}: not a readable GGUF file (cut short: its header or "
                  f"tensor data runs past the end of its {size:,} bytes, as after an interrupted download or copy")


def test_hf_given_a_file_of_the_folder_names_the_folder(qwen2_folder, tmp_path, capsys):
    """Before stop 60: `hf:<folder>/config.json` said "not a transformers model folder (no config.json)"."""
    folder, _ = qwen2_folder
    _import_fails(tmp_path, f"hf:{folder / 'config.json'}", capsys, f"{folder / 'config.json'} is a file; hf: "
                  f"takes the model's folder ({folder}), not a file in it")  # fmt: skip


@pytest.mark.parametrize("damage", ["weights", "tokenizer", "config"])
def test_damaged_conan_folder_is_named(qwen2_folder, tmp_path, capsys, damage):
    """conan:<folder> (a training stage's init, `harness models import`): each file damaged in turn is named."""
    folder, _ = qwen2_folder
    model, tokenizer = load_init(f"hf:{folder}")
    conan = save_pretrained(model, tokenizer, tmp_path / "conan")
    if damage == "weights":
        _cut_in_half(conan / "model.safetensors")
        expected = f"{conan / 'model.safetensors'}: damaged safetensors file"
    elif damage == "tokenizer":
        (conan / "tokenizer.json").write_text("{bad", encoding="utf-8")
        expected = f"{conan / 'tokenizer.json'}: not a readable tokenizer.json"
    else:
        (conan / "config.json").write_text("[]", encoding="utf-8")
        expected = f"{conan / 'config.json'}: invalid ConanConfig: expected a JSON object, not list"
    _import_fails(tmp_path, f"conan:{conan}", capsys, expected)


def test_damage_is_named_when_the_models_folder_variable_names_a_file(qwen2_folder, tmp_path, capsys, monkeypatch):
    """The hint that follows the damage looks up the models folder; before stop 63 a HARNESS_MODELS_DIR naming a
    file made that lookup's error replace the real one (the user's own damaged weights) with one about the
    variable."""
    folder, _ = qwen2_folder
    model, tokenizer = load_init(f"hf:{folder}")
    conan = save_pretrained(model, tokenizer, tmp_path / "conan")
    _cut_in_half(conan / "model.safetensors")
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    monkeypatch.setenv("HARNESS_MODELS_DIR", str(tmp_path / "a-file"))
    _import_fails(tmp_path, f"conan:{conan}", capsys,
                  f"{conan / 'model.safetensors'}: damaged safetensors file", "; copy or convert it again")  # fmt: skip


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("hidden_size", "64", "hidden_size must be an integer, not '64'"),  # was "not all arguments converted ..."
    ("rope_theta", "1e4", "rope_theta must be a number, not '1e4'"),
    ("qkv_bias", "false", "qkv_bias must be true or false, not 'false'"),  # a string was taken as True
    ("prompts", {"query": 1}, "prompts must map roles to prefix strings"),
])  # fmt: skip
def test_conan_config_values_of_the_wrong_type_are_named(qwen2_folder, tmp_path, capsys, key, value, expected):
    """A conan: folder's config.json is checked field by field, as an hf: config.json is on import."""
    folder, _ = qwen2_folder
    model, tokenizer = load_init(f"hf:{folder}")
    conan = save_pretrained(model, tokenizer, tmp_path / "conan")
    config = json.loads((conan / "config.json").read_text(encoding="utf-8"))
    (conan / "config.json").write_text(json.dumps({**config, key: value}), encoding="utf-8")
    _import_fails(tmp_path, f"conan:{conan}", capsys, f"{conan / 'config.json'}: invalid ConanConfig: {expected}")


def test_a_tensor_in_two_files_without_an_index_is_named(qwen2_folder, tmp_path, capsys):
    """Several *.safetensors and no shard index, one tensor in two of them: before (audit, stop 46) the file later in
    name order won silently; which copy is the model's is not said, so the import stops naming both."""
    folder, _ = qwen2_folder
    (folder / "model.safetensors.index.json").unlink()
    shard = _first_shard(folder)
    copy = folder / "zz-extra.safetensors"
    shutil.copy(shard, copy)
    _import_fails(tmp_path, f"hf:{folder}", capsys, f"{copy}: tensor ", f"is also in {shard}")


@pytest.mark.parametrize("kind", ["gguf", "hf"])
def test_non_finite_tensor_data_is_refused_naming_the_file_and_tensor(qwen2_folder, tokenizer, tmp_path, capsys,
                                                                      kind):  # fmt: skip
    """A user's walk: a GGUF (or hf: shard) whose tensor data held NaN/inf (damaged bytes) imported with exit 0, and
    the NaNs surfaced only at evaluation ("STS16: ValueError: Input contains NaN"). Now the import refuses it."""
    import numpy as np

    bad = np.array([np.nan, np.inf], np.float32)
    if kind == "gguf":
        from gguf import GGUFReader

        file, name = make_gguf(tmp_path / "m.gguf", tokenizer), "blk.0.attn_q.weight"
        offset = next(t.data_offset for t in GGUFReader(str(file)).tensors if t.name == name)
        with file.open("r+b") as handle:  # two of its float32 values overwritten in place, the size kept
            handle.seek(offset + 4)
            handle.write(bad.tobytes())
    else:
        from safetensors.torch import load_file, save_file

        file = _first_shard(qwen2_folder[0])
        state = load_file(file)
        name = sorted(state)[0]
        state[name].view(-1)[3:5] = torch.from_numpy(bad)
        save_file(state, str(file), metadata={"format": "pt"})
    spec = f"gguf:{file}" if kind == "gguf" else f"hf:{file.parent}"
    _import_fails(tmp_path, spec, capsys, f"{file}: tensor {name} holds 2 non-finite values (NaN or inf), which no "
                  "trained model has: its data is damaged; copy or convert it again")  # fmt: skip
