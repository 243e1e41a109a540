"""Training data: indexed JSONL readers, packed LM rows and length-bucketed pair batches; seeded and resumable.

Readers index byte offsets (one pass that also validates every row) and read rows back on demand, so memory is
a few bytes per row rather than the text. The order of batches is a pure function of (files, seed, global
batch): each epoch has its own seeded permutation, and a small state dict (epoch plus a cursor) says where the
next batch starts, so a resumed run sees exactly the batches an uninterrupted one would.

Sharding: every rank walks the same global stream and keeps its slice of each global micro-batch (rows
``[rank*micro, (rank+1)*micro)``). Each rank therefore tokenizes the whole global batch, which is cheap next to
the model step, and in exchange the batch sequence does not depend on the number of processes: N processes
with micro-batch b see exactly what one process with micro-batch N*b sees, and a run can resume on another
world size.

Length policy: pretraining packs documents across rows, so nothing is ever too long. Pair texts longer than
``max_length`` tokens are truncated (keeping <eos>; warned once, then counted in ``truncated``) or, with
``on_long="error"``, rejected with the row's file:line.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer

from conan_model.errors import json_error
from conan_model.text import text_problem, unique_keys
from conan_model.tokenizer import EncodedBatch, pad_batch, truncate

from .errors import DataError, ResumeError

log = logging.getLogger("train")
ENCODE_BLOCK = 256  # documents tokenized together when packing


def permutation(n: int, *keys: Any) -> np.ndarray:
    """A seeded permutation of range(n); ``keys`` (seed, epoch, ...) are hashed into the generator seed."""
    digest = hashlib.blake2b(repr(keys).encode(), digest_size=8).digest()
    g = torch.Generator().manual_seed(int.from_bytes(digest, "little") & (2**63 - 1))
    return torch.randperm(n, generator=g).numpy()


class JsonlIndex:
    """Rows of one or more JSONL files, addressed by global row number; every row checked once at indexing."""

    def __init__(self, files: Sequence[str | Path], required: Sequence[str], optional: Sequence[str] = (),
                 known: Sequence[str] = ()) -> None:  # fmt: skip
        """``known``: other keys a reader takes (an STS row's numeric `score`), never unknown (:meth:`_unread`)."""
        self.files = [Path(f) for f in files]
        self.required, self.optional = tuple(required), tuple(optional)
        self.fields = (*self.required, *self.optional, *known)
        if not self.files:
            raise DataError("data", 0, "no data files given")
        file_ids, offsets, lines = [], [], []
        for fid, path in enumerate(self.files):
            if not path.is_file():
                raise DataError(path, 0, "data file does not exist")
            before, unread = len(offsets), {}
            with open(path, "rb") as f:
                offset = 0
                for lineno, raw in enumerate(f, 1):
                    if raw.strip():
                        for key in self._check(path, lineno, raw):
                            unread.setdefault(key, lineno)
                        file_ids.append(fid)
                        offsets.append(offset)
                        lines.append(lineno)
                    offset += len(raw)
            if len(offsets) == before:
                raise DataError(path, 0, "empty data file (no rows)")
            if unread and self.fields:
                log.warning("%s: key(s) %s not read (first at line %s): a row's fields are %s", path,
                            ", ".join(map(repr, unread)), min(unread.values()), ", ".join(self.fields))  # fmt: skip
        self.file_ids = np.asarray(file_ids, dtype=np.int32)
        self.offsets = np.asarray(offsets, dtype=np.int64)
        self.lines = np.asarray(lines, dtype=np.int64)
        self._handles: dict[int, Any] = {}

    def _check(self, path: Path, lineno: int, raw: bytes) -> list[str]:
        """One row: a JSON object (no key given twice) whose required fields are texts (not empty nor only invisible
        characters: conan_model.text, the rule evaluation data follows) and optional ones strings, each encodable as
        UTF-8 (an unpaired surrogate escape such as "\\ud800" stopped the tokenizer with a traceback). Returns the
        row's keys no reader takes (said once per file); one that looks like a misspelt field is an error."""
        try:
            # without its line end: a row cut inside a string is "Unterminated string", not a newline taken for a
            # control character in it (before stop 66, a walk)
            row = json.loads(raw.rstrip(b"\r\n"), object_pairs_hook=unique_keys)
        except UnicodeDecodeError as e:
            raise DataError(path, lineno, f"not valid UTF-8 (byte {e.start} of the line)") from None
        except json.JSONDecodeError as e:  # its own "line 2 column 1" counted within the row (before stop 63)
            raise DataError(path, lineno, f"invalid JSON ({json_error(e)})") from None
        except (ValueError, RecursionError) as e:  # a repeated key, a huge number, deep nesting
            raise DataError(path, lineno, f"invalid JSON ({e})") from None
        if not isinstance(row, dict):
            raise DataError(path, lineno, f"expected a JSON object, got {type(row).__name__}")
        unread = [key for key in row if key not in self.fields]
        for key in unread if self.fields else []:  # before stop 63 dropped unsaid: "negatives" lost every negative
            if near := difflib.get_close_matches(key, self.fields, n=1, cutoff=0.8):
                raise DataError(path, lineno, f"unknown field {key!r}; did you mean {near[0]!r}? (a row's fields are "
                                              f"{', '.join(self.fields)}: an unknown one is not read)")  # fmt: skip
        missing = [k for k in self.required if k not in row]
        if missing:
            raise DataError(path, lineno, f"row lacks required field(s) {missing} (required: {list(self.required)})")
        for key in [*self.required, *(k for k in self.optional if k in row)]:
            value = row[key]
            if not isinstance(value, str):
                raise DataError(path, lineno, f"field {key!r} must be a non-empty string, not {value!r:.60}")
            # the harness's rule for eval texts, an optional field too (before stop 47 a blank negative trained)
            if problem := text_problem(value):
                raise DataError(path, lineno, f"field {key!r} {problem}")
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as e:
                raise DataError(path, lineno, f"field {key!r} holds an unpaired surrogate escape "
                                              f"\\u{ord(value[e.start]):04x} (half of a UTF-16 pair)") from None
        return unread

    def __len__(self) -> int:
        return len(self.offsets)

    def where(self, i: int) -> tuple[Path, int]:
        """(file, line) of row ``i``, for error messages."""
        return self.files[self.file_ids[i]], int(self.lines[i])

    def row(self, i: int) -> dict[str, Any]:
        fid = int(self.file_ids[i])
        if fid not in self._handles:
            self._handles[fid] = open(self.files[fid], "rb")  # kept open for random access
        f = self._handles[fid]
        f.seek(int(self.offsets[i]))
        return json.loads(f.readline())

    def __del__(self) -> None:
        for f in getattr(self, "_handles", {}).values():
            f.close()


class PackedBatches:
    """Causal-LM rows: documents in a seeded per-epoch order, each ``<bos> text <eos>``, concatenated and cut
    into ``seq_len``-token rows. Documents run across rows, so nothing is truncated or padded; a global batch
    never spans two epochs (the epoch's leftover tokens are dropped).

    State: the next token is token ``offset`` of document ``doc`` in epoch ``epoch``'s order.
    """

    def __init__(self, index: JsonlIndex, tokenizer: Tokenizer, seq_len: int, micro_batch: int,
                 rank: int = 0, world: int = 1, seed: int = 0, field: str = "text") -> None:  # fmt: skip
        self.index, self.tokenizer, self.field = index, tokenizer, field
        self.seq_len, self.micro, self.rank, self.world, self.seed = seq_len, micro_batch, rank, world, seed
        self.epoch = self.doc = self.offset = 0
        self._order_epoch, self._order = -1, np.empty(0, dtype=np.int64)
        self._block: tuple[int, int] | None = None
        self._tokens: list[list[int]] = []

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "doc": self.doc, "offset": self.offset}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch, self.doc, self.offset = int(state["epoch"]), int(state["doc"]), int(state["offset"])

    def __iter__(self) -> PackedBatches:
        return self

    def __next__(self) -> torch.Tensor:
        """This rank's (micro_batch, seq_len) long tensor of token ids."""
        rows = self.micro * self.world
        tokens = self._take(rows * self.seq_len)
        batch = torch.tensor(tokens, dtype=torch.long).view(rows, self.seq_len)
        return batch[self.rank * self.micro : (self.rank + 1) * self.micro]

    def _take(self, need: int) -> list[int]:
        out: list[int] = []
        start_epoch = self.epoch
        while len(out) < need:
            if self.doc >= len(self.index):
                if self.epoch > start_epoch:
                    raise DataError(self.index.files[0], 0, f"the corpus holds fewer than {need} tokens, one "
                                    "global batch; add data or lower batch_size/seq_len")  # fmt: skip
                self.epoch, self.doc, self.offset, out = self.epoch + 1, 0, 0, []
                continue
            ids = self._document(self.doc)
            piece = ids[self.offset : self.offset + need - len(out)]
            out.extend(piece)
            self.offset += len(piece)
            if self.offset >= len(ids):
                self.doc, self.offset = self.doc + 1, 0
        return out

    def _document(self, pos: int) -> list[int]:
        if self._order_epoch != self.epoch:
            self._order, self._order_epoch = permutation(len(self.index), self.seed, self.epoch), self.epoch
        block = pos // ENCODE_BLOCK
        if self._block != (self.epoch, block):
            rows = self._order[block * ENCODE_BLOCK : (block + 1) * ENCODE_BLOCK]
            texts = [self.index.row(int(i))[self.field] for i in rows]
            self._tokens = [enc.ids for enc in self.tokenizer.encode_batch(texts)]
            self._block = (self.epoch, block)
        return self._tokens[pos % ENCODE_BLOCK]


@dataclass
class PairBatch:
    """This rank's rows of one global micro-batch: token ids per field (``<bos> … <eos>``, truncated)."""

    ids: dict[str, list[list[int]]]
    rows: list[int]  # global row numbers in the JsonlIndex

    def encoded(self, field: str, device: torch.device | str | None = None) -> EncodedBatch:
        """One field right-padded into model inputs."""
        return pad_batch(self.ids[field], device)

    @property
    def tokens(self) -> int:
        return sum(len(x) for ids in self.ids.values() for x in ids)

    def text_ids(self, field: str) -> torch.Tensor:
        """(rows,) stable 63-bit ids of ``field``'s token sequences, the same on every rank: two rows get one id
        exactly when the model sees the same input (prompt and truncation included), which is what makes one
        text a false negative of another in the loss (``train.losses.counted_candidates``)."""
        digests = (hashlib.blake2b(np.asarray(x, dtype=np.int64).tobytes(), digest_size=8).digest()
                   for x in self.ids[field])  # fmt: skip
        return torch.tensor([int.from_bytes(d, "little") & (2**63 - 1) for d in digests], dtype=torch.long)


class PairBatches:
    """Batches of (query, positive[, negative]) rows with length bucketing.

    Epoch order is a seeded permutation of the training rows. ``bucket_window`` consecutive global batches'
    rows are tokenized together, sorted by their longest field and cut into global batches, whose order is
    shuffled again, so each batch holds texts of similar length (little padding) but batches stay in random
    order. ``holdout`` rows, chosen by a seeded permutation that does not depend on the epoch, never enter
    training; :meth:`heldout` returns those that share no text with training, for evaluation. The last partial
    global batch of an epoch is dropped.

    State: ``batch`` global batches of epoch ``epoch`` are done.
    """

    def __init__(self, index: JsonlIndex, tokenizer: Tokenizer, fields: Sequence[str], max_length: int,
                 micro_batch: int, rank: int = 0, world: int = 1, seed: int = 0, holdout: int = 0,
                 bucket_window: int = 16, on_long: str = "truncate",
                 prefixes: dict[str, str] | None = None) -> None:  # fmt: skip
        missing = [f for f in fields if f not in index.required]
        if missing:
            raise ValueError(f"fields {missing} must be required by the index, so every row has them")
        self.index, self.tokenizer, self.fields, self.max_length = index, tokenizer, tuple(fields), max_length
        self.micro, self.rank, self.world, self.seed = micro_batch, rank, world, seed
        self.window, self.on_long = bucket_window, on_long
        self.prefixes = prefixes or {}  # field -> the model's role prompt (ConanConfig.prompt), e.g. "query: "
        self.global_batch = micro_batch * world
        split = permutation(len(index), seed, "holdout")
        self.heldout_rows, self.train_rows = np.sort(split[:holdout]), np.sort(split[holdout:])
        self.batches_per_epoch = len(self.train_rows) // self.global_batch
        if self.batches_per_epoch == 0:
            raise DataError(index.files[0], 0, f"{len(self.train_rows)} training rows (after holdout={holdout}) "
                            f"are fewer than one global batch of {self.global_batch}")  # fmt: skip
        self.epoch = self.batch = 0
        self.truncated = 0  # texts of the global batches so far that were cut to max_length
        self._warned = False
        self._window_key: tuple[int, int] | None = None
        self._order_epoch, self._order = -1, np.empty(0, dtype=np.int64)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "batch": self.batch, "truncated": self.truncated,
                "global_batch": self.global_batch}  # fmt: skip

    def load_state_dict(self, state: dict[str, int]) -> None:
        """The position is counted in global micro-batches (micro_batch_size x world size), whose size also lays
        out the bucketing windows and gives each step its in-batch negatives: read in another size it names
        other rows (some trained twice, others never), so such a resume is refused. Checkpoints from before
        stop 26 do not record the size and are taken as they are."""
        saved = state.get("global_batch", self.global_batch)
        if saved != self.global_batch:
            raise ResumeError(f"the checkpoint's data position counts global micro-batches of {saved} "
                              f"rows (micro_batch_size x world size), this run's hold {self.global_batch} "
                              f"({self.micro} x {self.world}); resuming would repeat some rows, skip others and "
                              f"change each step's in-batch negatives. Set micro_batch_size so that it times the "
                              f"world size is {saved}")  # fmt: skip
        self.epoch, self.batch, self.truncated = int(state["epoch"]), int(state["batch"]), int(state["truncated"])

    def heldout(self) -> tuple[list[dict[str, Any]], int]:
        """The held-out rows that share no text (in ``fields``) with a training row, and how many were left out
        because they do: the holdout is drawn by row, and repeated texts (a Tatoeba sentence in two pairs, one
        English side in several parallel files) put a text of 181 of configs/weak.toml's 512 held-out pairs in
        training (78 pairs as they are; audit and quickstart, stop 36), which the monitor then scored partly from
        memory. One pass over the training rows, keeping only the held-out texts in memory."""
        held = [self.index.row(int(i)) for i in self.heldout_rows]
        texts = {row[f] for row in held for f in self.fields}
        trained = set()
        for i in self.train_rows if texts else ():
            row = self.index.row(int(i))
            trained.update(row[f] for f in self.fields if row[f] in texts)
        clean = [row for row in held if not any(row[f] in trained for f in self.fields)]
        return clean, len(held) - len(clean)

    def __iter__(self) -> PairBatches:
        return self

    def __next__(self) -> PairBatch:
        if self.batch >= self.batches_per_epoch:
            self.epoch, self.batch = self.epoch + 1, 0
        window = self.batch // self.window
        if self._window_key != (self.epoch, window):
            self._load_window(window)
        chunk = self._chunks[self.batch % self.window]
        local = chunk[self.rank * self.micro : (self.rank + 1) * self.micro]
        self.batch += 1
        self.truncated += int(self._cut[chunk].sum())
        return PairBatch({f: [self._ids[f][j] for j in local] for f in self.fields},
                         [int(self._rows[j]) for j in local])  # fmt: skip

    def _load_window(self, window: int) -> None:
        if self._order_epoch != self.epoch:
            self._order = self.train_rows[permutation(len(self.train_rows), self.seed, self.epoch)]
            self._order_epoch = self.epoch
        n_batches = min(self.window, self.batches_per_epoch - window * self.window)
        start = window * self.window * self.global_batch
        self._rows = self._order[start : start + n_batches * self.global_batch]
        self._ids, self._cut = {}, np.zeros(len(self._rows), dtype=np.int64)
        for f in self.fields:
            self._ids[f], cut = self.encode(self._rows, f)
            self._cut += cut
        longest = np.max([[len(x) for x in self._ids[f]] for f in self.fields], axis=0)
        chunks = np.argsort(longest, kind="stable").reshape(n_batches, self.global_batch)
        self._chunks = chunks[permutation(n_batches, self.seed, self.epoch, window)]
        self._window_key = (self.epoch, window)

    def encode(self, rows: Sequence[int], field: str) -> tuple[list[list[int]], np.ndarray]:
        """Token ids of ``field`` for index rows under the on_long policy, and which of them were cut."""
        prefix = self.prefixes.get(field, "")
        texts = [prefix + self.index.row(int(i))[field] for i in rows]
        out, cut = [], np.zeros(len(rows), dtype=bool)
        for n, (i, enc) in enumerate(zip(rows, self.tokenizer.encode_batch(texts), strict=True)):
            ids = enc.ids
            if len(ids) > self.max_length:
                path, line = self.index.where(int(i))
                message = f"{field!r} has {len(ids)} tokens, more than max_length {self.max_length}"
                if self.on_long == "error":
                    raise DataError(path, line, f"{message} (on_long='error'; 'truncate' cuts such texts)")
                if not self._warned and self.rank == 0:
                    log.warning("%s:%d: %s; truncating (on_long='truncate'); further cuts are counted in the "
                                "metrics as 'truncated'", path, line, message)  # fmt: skip
                self._warned, cut[n] = True, True
                ids = truncate(enc, self.max_length)
            out.append(ids)
        return out, cut
