"""Bad import input fails with one message naming the file and the key or tensor; the CLI exits 2."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from pretrained_helpers import make_gguf
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer

from conan_model.importing import ModelImportError, load_config_for, load_init, load_model
from harness.cli import main


def _edit_config(folder, drop=(), **changes) -> None:
    """config.json with `changes`, and without the keys in `drop`."""
    path = folder / "config.json"
    config = {**json.loads(path.read_text()), **changes}
    path.write_text(json.dumps({k: v for k, v in config.items() if k not in drop}), encoding="utf-8")


def test_unsupported_hf_architecture_exits_2(tmp_path, capsys):
    folder = tmp_path / "gpt2"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_embd": 8}), encoding="utf-8")
    assert main(["models", "import", f"hf:{folder}", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert str(folder / "config.json") in err and "model_type 'gpt2' is not supported" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("tensor", "internal"), [("model.layers.0.self_attn.q_proj.bias", "layers.0.attn.q_proj.bias"),
                                                  ("model.layers.1.mlp.up_proj.weight", "layers.1.ffn.up_proj.weight")])
def test_missing_tensor_names_it(qwen2_folder, tensor, internal):
    """As the file names it (before walk 68 only ConanModel's name, which the user does not find in the file)."""
    folder, _ = qwen2_folder
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    shard = folder / index["weight_map"][tensor]
    state = load_file(str(shard))
    del state[tensor]
    save_file(state, str(shard), metadata={"format": "pt"})
    with pytest.raises(ModelImportError) as e:
        load_init(f"hf:{folder}")
    assert str(e.value) == f"{folder}: missing tensor(s) {tensor} (for {internal})"


def test_mismatched_shape_names_file_and_tensor(qwen2_folder):
    folder, _ = qwen2_folder
    _edit_config(folder, intermediate_size=128)
    tensor = r"safetensors: tensor model\.layers\.\d\.mlp\.\w+_proj\.weight"
    shapes = r"has shape \((96, 64|64, 96)\), the config needs \((128, 64|64, 128)\)"
    with pytest.raises(ModelImportError, match=f"{tensor} {shapes}"):
        load_init(f"hf:{folder}")


@pytest.mark.parametrize(("changes", "drop", "expected"), [
    # MistralConfig's default window, 4096, read as none before stop 54 (audit): full attention past 4096 tokens
    ({"model_type": "mistral", "max_position_embeddings": 8192}, ["sliding_window"],
     "config.json: sliding_window = 4096 (absent: transformers' MistralConfig default) is not supported"),
    ({"model_type": "mistral", "sliding_window": 16}, [], "config.json: sliding_window = 16 is not supported"),
    # refused as an unexpected o_proj.bias tensor before, naming no key
    ({"model_type": "llama", "attention_bias": True}, [], "config.json: attention_bias = True is not supported"),
    # blamed on tokenizer.json before, naming no key
    ({}, ["eos_token_id"], "config.json: no eos_token_id"),
])  # fmt: skip
def test_unsupported_config_keys_are_named(qwen2_folder, changes, drop, expected):
    folder, _ = qwen2_folder
    _edit_config(folder, drop, **changes)
    with pytest.raises(ModelImportError, match=re.escape(expected)) as e:
        load_config_for(f"hf:{folder}")
    assert str(folder / "config.json") in str(e.value)


def test_tied_config_with_another_head_in_the_file_is_refused(qwen2_folder):
    """A tied config whose file holds a head other than the embedding: transformers 4 ties them, 5 keeps the head.
    Before stop 54 (audit) the head was dropped without a word; a head that is the embedding's copy still imports."""
    folder, _ = qwen2_folder
    _edit_config(folder, tie_word_embeddings=True)
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    shard = folder / index["weight_map"]["lm_head.weight"]
    with pytest.raises(ModelImportError) as e:
        load_model(f"hf:{folder}")
    assert str(e.value).startswith(f"{shard}: tensor lm_head.weight differs from tensor model.embed_tokens.weight")
    embedding = load_file(str(folder / index["weight_map"]["model.embed_tokens.weight"]))["model.embed_tokens.weight"]
    save_file({**load_file(str(shard)), "lm_head.weight": embedding}, str(shard), metadata={"format": "pt"})
    assert load_model(f"hf:{folder}").config.tie_word_embeddings


def test_two_special_tokens_before_each_text_are_refused(qwen2_folder, tokenizer):
    """The import writes `[bos] text eos`: a post-processor putting two tokens first would lose one."""
    from tokenizers import processors

    folder, _ = qwen2_folder
    tokenizer = Tokenizer.from_str(tokenizer.to_str())
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<bos> <pad> $A", special_tokens=[("<bos>", 2), ("<pad>", 0)]
    )
    (folder / "tokenizer.json").write_text(tokenizer.to_str(), encoding="utf-8")
    with pytest.raises(ModelImportError, match=r"tokenizer\.json: the post-processor puts 2 special tokens before"):
        load_config_for(f"hf:{folder}")


def test_tokenizer_larger_than_vocab(qwen2_folder):
    folder, _ = qwen2_folder
    _edit_config(folder, vocab_size=300)  # the BBPE fixture has 400 tokens
    with pytest.raises(ModelImportError, match=r"tokenizer\.json: the tokenizer has 400 tokens but .* 300 rows"):
        load_init(f"hf:{folder}")


def test_unsupported_gguf_architecture_exits_2(tmp_path, capsys):
    path = tmp_path / "m.gguf"
    make_gguf(path, arch="gpt2")
    assert main(["models", "import", f"gguf:{path}", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "general.architecture 'gpt2' is not supported" in err


def test_gguf_type_that_cannot_be_dequantized(tmp_path):
    path = tmp_path / "m.gguf"
    make_gguf(path, norm_dtype=np.int32)
    with pytest.raises(ModelImportError, match=r"tensor blk\.0\.attn_norm\.weight has type I32") as e:
        load_model(f"gguf:{path}")
    assert str(path) in str(e.value)


def test_gguf_type_is_refused_before_any_tensor_is_dequantized(tmp_path, tokenizer, monkeypatch, capsys):
    """Walk 68: an IQ4_NL tensor after seven F32 ones was found only after dequantizing them (16 s on SmolLM2)."""
    import gguf

    path = make_gguf(tmp_path / "iq.gguf", tokenizer, width=32, raw_types={"blk.0.ffn_down": "IQ4_NL"})
    names = [t.name for t in gguf.GGUFReader(str(path)).tensors]
    assert names.index("blk.0.ffn_down.weight") == 7  # token_embd and six layer weights come first
    calls = []
    monkeypatch.setattr(gguf, "dequantize", lambda *a: calls.append(a) or pytest.fail("dequantized"))
    assert main(["models", "import", f"gguf:{path}", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{path}: tensor blk.0.ffn_down.weight has type IQ4_NL, which cannot be dequantized here" in err
    assert "(supported: F32, F16, BF16, Q4_0" in err and not calls and not (tmp_path / "out").exists()
    with pytest.raises(ModelImportError, match="has type IQ4_NL"):
        load_config_for(f"gguf:{path}")  # what `harness ablate` and a train stage read first


def test_a_gguf_whose_merges_name_a_token_it_lacks_is_one_line(tmp_path, capsys):
    """A walk (stop 69): merge "a b" with no token "ab" made tokenizers panic (pyo3's PanicException, a
    BaseException the import did not catch): a Rust backtrace, a Python traceback, exit 1."""
    path = make_gguf(tmp_path / "m.gguf", vocab=(["a", "b", "c"], ["a b"]))
    assert main(["models", "import", f"gguf:{path}", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"{path}: cannot build its tokenizer from the tokenizer.ggml.* keys: the tokenizers library panicked (" \
        in err and "as it does when tokenizer.ggml.merges names a token tokenizer.ggml.tokens lacks" in err, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "out").exists()


def test_not_a_gguf_file(tmp_path):
    path = tmp_path / "junk.gguf"
    path.write_bytes(b"not a gguf file at all")
    with pytest.raises(ModelImportError, match="not a readable GGUF file"):
        load_model(f"gguf:{path}")


def test_a_gguf_s_own_tokenizer_wins_over_a_tokenizer_json_beside_it(tmp_path, tokenizer):
    """Before (audit, stop 47) transformers, asked for the GGUF's tokenizer in the GGUF's folder, took a
    tokenizer.json lying there instead, so another model's tokenizer was imported without a word. Now the GGUF is
    read from a folder of its own: the ids are the GGUF's with or without the foreign file beside it."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    from conan_model.importing import load_tokenizer_for

    alone = make_gguf((tmp_path / "alone").mkdir() or tmp_path / "alone" / "m.gguf", tokenizer)
    beside = make_gguf((tmp_path / "beside").mkdir() or tmp_path / "beside" / "m.gguf", tokenizer)
    foreign = Tokenizer(models.WordLevel({"[UNK]": 0, "hello": 1, "world": 2}, unk_token="[UNK]"))
    foreign.pre_tokenizer = pre_tokenizers.Whitespace()
    foreign.save(str(beside.parent / "tokenizer.json"))
    text = "hello world, the quick brown fox"
    want = load_tokenizer_for(f"gguf:{alone}").encode(text).ids
    assert len(want) > 3 and load_tokenizer_for(f"gguf:{beside}").encode(text).ids == want
