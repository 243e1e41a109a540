"""Byte-level BPE tokenizer (the paper's BBPE), trained with HF ``tokenizers`` and stored as tokenizer.json.

Byte-level means every string is encodable without <unk> (the 256 byte symbols are always in the vocabulary),
which matters for a mixed Chinese/English corpus. Special tokens have fixed ids: <pad>=0, <unk>=1, <bos>=2,
<eos>=3; each encoded text is ``<bos> ... <eos>`` (the post-processor adds them), and truncation keeps the
final <eos>. Imported tokenizers (conan_model/importing.py) keep their own vocabulary and special ids; their
post-processor is rewritten so that they too end every text with their eos token.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

import torch
from tokenizers import Encoding, Tokenizer, decoders, models, pre_tokenizers, processors, trainers

from .atomic import atomic_write_text

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIAL_TOKENS = (PAD, UNK, BOS, EOS)  # ids 0..3, in this order
MIN_VOCAB = len(SPECIAL_TOKENS) + 256  # a byte-level BPE holds the specials and every byte


class EncodedBatch(NamedTuple):
    input_ids: torch.Tensor  # (B, T) long, right-padded with <pad>
    attention_mask: torch.Tensor  # (B, T) long, 1 = real token
    lengths: list[int]  # real tokens per text, special tokens included, after truncation


def iter_jsonl_texts(
    paths: Iterable[str | os.PathLike], fields: Sequence[str] = ("text",), max_rows: int | None = None
) -> Iterator[str]:
    """Strings under ``fields`` in JSONL files (a list of strings counts too); ``max_rows`` is per file."""
    for path in paths:
        with open(path, "rb") as f:  # bytes, as train.data.JsonlIndex reads (and validates) them: a BOM is allowed
            for n, line in enumerate(f):
                if max_rows is not None and n >= max_rows:
                    break
                if not line.strip():
                    continue
                row = json.loads(line)
                for name in fields:
                    value = row.get(name)
                    values = value if isinstance(value, list) else [value]
                    yield from (v for v in values if isinstance(v, str) and v)


def train_tokenizer_from_texts(texts: Iterable[str], vocab_size: int, min_frequency: int = 2) -> Tokenizer:
    """Train a byte-level BPE of at most ``vocab_size`` tokens (specials and the 256 bytes included)."""
    if vocab_size < MIN_VOCAB:
        raise ValueError(f"vocab_size must be at least {MIN_VOCAB}, got {vocab_size}")
    tok = Tokenizer(models.BPE(unk_token=UNK))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    bos, eos = tok.token_to_id(BOS), tok.token_to_id(EOS)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A {EOS}", pair=f"{BOS} $A {EOS} $B:1 {EOS}:1", special_tokens=[(BOS, bos), (EOS, eos)]
    )
    return tok


def train_tokenizer(
    files: Sequence[str | os.PathLike],
    vocab_size: int,
    fields: Sequence[str] = ("text",),
    max_rows: int | None = None,
    save_path: str | os.PathLike | None = None,
    tokenizer_json: str | os.PathLike | None = None,
    min_frequency: int = 2,
) -> Tokenizer:
    """Train on the ``fields`` of JSONL ``files``; if ``tokenizer_json`` is given, just load that vocabulary.

    ``save_path`` (a tokenizer.json file) is written atomically when given.
    """
    if tokenizer_json is not None:
        tok = load_tokenizer(tokenizer_json)
    else:
        tok = train_tokenizer_from_texts(iter_jsonl_texts(files, fields, max_rows), vocab_size, min_frequency)
    if save_path is not None:
        save_tokenizer(tok, save_path)
    return tok


def load_tokenizer(path: str | os.PathLike, special_ids: dict[str, int | None] | None = None) -> Tokenizer:
    """Load a tokenizer.json file, or the tokenizer.json inside a folder, and check the special-token ids.

    Without ``special_ids`` the tokenizer must be this project's BBPE (<pad>, <unk>, <bos>, <eos> = 0..3);
    with them (a checkpoint config's pad/bos/eos ids, e.g. of an imported model) each id must exist.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "tokenizer.json"
    if not path.is_file():
        raise FileNotFoundError(f"no tokenizer file at {path}")
    tok = read_tokenizer_file(path)
    if special_ids is None:
        ids = [tok.token_to_id(t) for t in SPECIAL_TOKENS]
        if ids != list(range(len(SPECIAL_TOKENS))):
            raise ValueError(f"{path}: special tokens {SPECIAL_TOKENS} must have ids 0..3, found {ids}")
        framed = tok.encode("a").ids
        if not framed or framed[0] != ids[2] or framed[-1] != ids[3]:  # before stop 48 (audit): accepted, and
            # documents ran together in pretraining, truncation kept no <eos>, "last" pooling read a word
            raise ValueError(f"{path}: encoding does not add <bos> and <eos> around a text (got ids {framed} for "
                             "'a'): its post-processor must frame every text, as train_tokenizer's does")  # fmt: skip
        return tok
    for name, value in special_ids.items():
        if value is not None and tok.id_to_token(value) is None:
            raise ValueError(f"{path}: {name} {value} is not a token of this tokenizer "
                             f"({tok.get_vocab_size()} tokens)")  # fmt: skip
    return tok


def read_tokenizer_file(path: Path) -> Tokenizer:
    """``Tokenizer.from_file``, a damaged file (cut short, not JSON, an unknown model) being a ValueError that names
    it: `tokenizers` raises a bare Exception, which no CLI reports as a user's mistake (it was a traceback)."""
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as e:  # noqa: BLE001 - tokenizers' parse errors are plain Exception
        raise ValueError(f"{path}: not a readable tokenizer.json ({e})") from None
    return without_padding_or_truncation(tok)


def without_padding_or_truncation(tokenizer: Tokenizer) -> Tokenizer:
    """The tokenizer with its own padding and truncation off (a copy; the caller's is left alone): training and the
    encoder pad and truncate themselves (`token_ids`, `pad_batch`), and a tokenizer.json that pads to a batch's
    longest text would hand pads to the model as real tokens (a vector depending on its batch) or cut texts at its
    own limit instead of max_length. Every tokenizer.json read here goes through it, and the encoder applies it to
    a tokenizer it is handed."""
    if tokenizer.padding is None and tokenizer.truncation is None:
        return tokenizer
    own = Tokenizer.from_str(tokenizer.to_str())
    own.no_padding()
    own.no_truncation()
    return own


def save_tokenizer(tok: Tokenizer, path: str | os.PathLike) -> None:
    """Write tokenizer.json atomically (temporary file in the same folder, then os.replace)."""
    atomic_write_text(Path(path), tok.to_str())


def truncate(enc: Encoding, max_length: int) -> list[int]:
    """``enc.ids`` cut to ``max_length``, keeping a final special token (<eos>): a cut text still ends the way
    every text ends, which last-token pooling and the eos-trained models rely on."""
    ids = enc.ids
    if len(ids) <= max_length:
        return ids
    return ids[: max_length - 1] + [ids[-1]] if enc.special_tokens_mask[-1] else ids[:max_length]


def token_ids(tok: Tokenizer, texts: Sequence[str], max_length: int) -> list[list[int]]:
    """<bos> text <eos> ids per text, truncated to ``max_length`` while keeping the final <eos>."""
    if max_length < 2:
        raise ValueError(f"max_length must be at least 2 (room for <bos> and <eos>), got {max_length}")
    return [truncate(enc, max_length) for enc in tok.encode_batch(list(texts))]


def pad_batch(ids: Sequence[Sequence[int]], device: torch.device | str | None = None) -> EncodedBatch:
    """Right-pad id lists with <pad> (id 0) to the longest one."""
    lengths = [len(x) for x in ids]
    width = max(lengths, default=0)
    padded = [list(x) + [0] * (width - len(x)) for x in ids]
    input_ids = torch.tensor(padded, dtype=torch.long).view(len(ids), width)
    attention_mask = (torch.arange(width)[None, :] < torch.tensor(lengths, dtype=torch.long)[:, None]).long()
    return EncodedBatch(input_ids.to(device), attention_mask.to(device), lengths)


def encode_batch(
    tok: Tokenizer, texts: Sequence[str], max_length: int, device: torch.device | str | None = None
) -> EncodedBatch:
    """Tokenise, truncate and right-pad ``texts`` into model inputs plus per-text token counts."""
    return pad_batch(token_ids(tok, texts, max_length), device)
