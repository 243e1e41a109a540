"""A transformers fast tokenizer's work done by its Rust backend alone (`BackendTokenizer`): token counts and
padded batches without transformers' per-text Python, checked against transformers before it serves.

Split from harness/backends.py (stop 64); the st: and hf: backends use it (conan: tokenizes in conan_model).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from itertools import chain
from typing import Any

import numpy as np

from conan_model.batching import padded_width
from harness.errors import UsageError


class BackendTokenizer:
    """A transformers fast tokenizer's work done by its Rust backend alone: truncated token counts, as
    ``len(tokenizer(texts, truncation=True, max_length=max_length)["input_ids"][i])``, and padded batches, as
    ``tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")``, skipping
    transformers' per-text Python (its BatchEncoding, padding and tensor conversion; on an H200 that Python, twice
    per text, held minilm's end to end to about half of its forward: docs/harness.md). A truncating copy of the
    backend encodes each text once: `count` keeps the last call's encodings and `batch` pads the ones it finds
    there in numpy (the harness counts a window, then batches the same texts), encoding only the others; the
    tokenizer keeps its own settings. The settings the copy and the padding take (`_state`) are checked on every
    use, and a change sends the work back to transformers. Trust is earned: `count` checks its first call against
    transformers, and a batch serves only callers that `verified_extras` approved. A slow tokenizer, a tokenizer
    class from outside transformers, or a backend that disagrees: transformers."""

    INPUTS = ("input_ids", "attention_mask", "token_type_ids")  # what `batch` can make
    # texts every verification batches beside a long one past the max length: empty (special tokens only),
    # whitespace, accents and case, control characters, CJK, fullwidth, emoji
    PROBE = ("", "  spaced   text ", "Café NAÏVE Ørsted ÀÉÎ", "a\nb\tc\x00d\x1fe", "北京欢迎你 and English",
             "ＡＢＣ fullwidth ｶﾀｶﾅ 🙂 emoji")  # fmt: skip

    def __init__(self, tokenizer: Any, max_length: Callable[[], int | None], padding_side: str | None = None) -> None:
        """``max_length``: the model's current limit (read again on every use, as the model's own call does)."""
        self._tokenizer, self._limit, self._padding_side = tokenizer, max_length, padding_side
        self._max_length = max_length()
        self._counter, self._pads, self._recent = None, False, {}
        self.counts_checked = False
        # `batch` (and `widen`) pad to a multiple of this many tokens, within the max length: fewer distinct batch
        # shapes (benchmarks/bench_shapes.py); 1, the default, is transformers' padding to the longest
        self.pad_to_multiple_of = 1
        self._state = self._settings()
        if not (self._max_length and self._max_length < 2**31 and stock_fast_tokenizer(tokenizer)):
            return
        from tokenizers import Tokenizer

        try:
            text = tokenizer.backend_tokenizer.to_str()
        except Exception:  # noqa: BLE001 - a component written in Python (e.g. a jieba pre-tokenizer) cannot be copied
            return
        self._counter = Tokenizer.from_str(text)
        self._counter.no_padding()
        self._counter.enable_truncation(self._max_length, direction=tokenizer.truncation_side)
        self._counter.encode_special_tokens = bool(getattr(tokenizer, "split_special_tokens", False))  # not in text
        self._pads = tokenizer.pad_token_id is not None and set(tokenizer.model_input_names) <= set(self.INPUTS)

    def _settings(self) -> tuple:
        """What the backend copy and the numpy padding took from the tokenizer and the model (a few microseconds):
        a change after construction makes them stale."""
        tok, backend = self._tokenizer, getattr(self._tokenizer, "backend_tokenizer", None)
        parts = (getattr(backend, name, None) for name in ("normalizer", "pre_tokenizer", "post_processor"))
        added = tuple(map(repr, backend.get_added_tokens_decoder().values())) if backend is not None else None
        return (self._limit(), getattr(tok, "model_max_length", None), getattr(tok, "truncation_side", None),
                self._padding_side or getattr(tok, "padding_side", None), getattr(tok, "split_special_tokens", None),
                len(tok), getattr(tok, "pad_token_id", None), getattr(tok, "pad_token_type_id", None),
                tuple(getattr(tok, "model_input_names", ())), added,
                *(part.__getstate__() if part is not None else None for part in parts))  # fmt: skip

    def _fresh(self) -> bool:
        if self._counter is not None and self._settings() != self._state:
            logging.getLogger(__name__).info("the tokenizer's settings changed since load: its own calls from now on")
            self._counter, self._recent = None, {}
        return self._counter is not None

    @property
    def counts_fast(self) -> bool:
        return self._fresh()

    def _transformers_counts(self, texts: list[str]) -> list[int]:
        ids = self._tokenizer(texts, truncation=True, max_length=self._limit())["input_ids"]
        return [len(x) for x in ids]

    def count(self, texts: list[str]) -> list[int]:
        """Token counts; the first call also counts through transformers and keeps the backend only if every count
        agrees. Counts only order and size batches and feed the token statistics."""
        counter = self._counter if self._fresh() else None  # one read: another thread may drop it
        if counter is None:
            return self._transformers_counts(texts)
        encodings = counter.encode_batch(texts)
        counts = [len(encoding) for encoding in encodings]
        self._recent = dict(zip(texts, encodings, strict=True))  # what `batch` pads next; it drops each one it uses
        if not self.counts_checked:
            self.counts_checked = True
            reference = self._transformers_counts(texts)
            if counts != reference:
                logging.getLogger(__name__).info("token counts: the tokenizer's backend disagrees with transformers "
                                                 "on this model; counting through transformers")  # fmt: skip
                self._counter, self._recent, counts = None, {}, reference
        return counts

    def _width(self, longest: int, multiple: int) -> int:
        """A batch's length: its longest text's, rounded up to ``multiple`` but never past the max length."""
        return padded_width(longest, multiple, self._limit())

    def widen(self, features: dict[str, Any]) -> dict[str, Any]:
        """A batch another call padded to its longest text (the model's own call, where `batch` did not serve),
        padded on to `pad_to_multiple_of` as `batch` pads: more columns on the tokenizer's padding side, of its pad
        id, its pad type id and a zero mask. So the padding a run records holds whichever call made a batch. Only
        the `INPUTS` tensors move: a batch with another per-token tensor is left as it is (none of the calls this
        stands beside makes one)."""
        import torch

        ids, tok = features.get("input_ids"), self._tokenizer
        if self.pad_to_multiple_of <= 1 or not isinstance(ids, torch.Tensor) or ids.dim() != 2:
            return features
        width = ids.shape[1]
        target = self._width(width, self.pad_to_multiple_of)
        per_token = [k for k, v in features.items() if isinstance(v, torch.Tensor) and v.dim() == 2]
        if target == width or not set(per_token) <= set(self.INPUTS):
            return features
        pads = {"input_ids": tok.pad_token_id, "token_type_ids": tok.pad_token_type_id, "attention_mask": 0}
        left = (self._padding_side or tok.padding_side) == "left"
        out = dict(features)
        for key in per_token:
            value = features[key]
            extra = torch.full((value.shape[0], target - width), pads[key] or 0, dtype=value.dtype)
            out[key] = torch.cat([extra, value] if left else [value, extra], dim=1)
        return out

    def batch(self, texts: list[str], multiple: int | None = None) -> dict[str, Any] | None:
        """The padded batch, int64 tensors under the tokenizer's `model_input_names`; None where the tokenizer's
        settings changed since load (the caller's own call then). Texts the last `count` saw are not encoded
        again; padding (to the longest, or to ``multiple``, default `pad_to_multiple_of`, within the max length;
        on the tokenizer's side, its pad ids) is numpy's."""
        import torch

        counter = self._counter if self._fresh() and self._pads else None  # one read: another thread may drop it
        if counter is None:
            return None
        recent = self._recent
        encodings = [recent.get(text) for text in texts]
        for text in texts:  # used: held no longer (a truncated Encoding keeps its cut-off tokens too)
            recent.pop(text, None)
        missing = [text for text, encoding in zip(texts, encodings, strict=True) if encoding is None]
        if missing:
            new = iter(counter.encode_batch(missing))
            encodings = [next(new) if encoding is None else encoding for encoding in encodings]
        lengths = np.fromiter(map(len, encodings), np.int64, len(encodings))
        width = self._width(int(lengths.max(initial=0)), self.pad_to_multiple_of if multiple is None else multiple)
        filled = np.arange(width)[None, :] < lengths[:, None]  # each row's tokens, left-aligned
        if (self._padding_side or self._tokenizer.padding_side) == "left":
            filled = filled[:, ::-1]  # the same tokens against the right edge; boolean fills run left to right
        tok, total = self._tokenizer, int(lengths.sum())

        def padded(field: str, pad: int) -> np.ndarray:
            out = np.full(filled.shape, pad, dtype=np.int64)
            out[filled] = np.fromiter(chain.from_iterable(getattr(e, field) for e in encodings), np.int64, total)
            return out

        arrays = {}
        for name in tok.model_input_names:
            if name == "input_ids":
                arrays[name] = padded("ids", tok.pad_token_id)
            elif name == "token_type_ids":
                arrays[name] = padded("type_ids", tok.pad_token_type_id)
            else:
                arrays[name] = filled.astype(np.int64)
        return {name: torch.from_numpy(array) for name, array in arrays.items()}

    def _probes(self, prefix: str) -> list[list[str]]:
        """Batches that tell a differing call apart: one of every probe text, a text of distinct words past the
        max length (a cut at another length or side shows), the special tokens as text; and single texts of 1 to
        6 words, whose lengths (consecutive) are not all multiples of any pad_to_multiple_of."""
        long = " ".join(f"w{i}" for i in range(2 * self._max_length + 8))
        specials = " and ".join(str(t) for t in getattr(self._tokenizer, "all_special_tokens", []))
        return [[*self.PROBE, long, f"x {specials} y"], *([" ".join(["a"] * k)] for k in range(1, 7)),
                [prefix.strip() or "probe"]]  # fmt: skip

    def verified_extras(self, reference: Callable[[list[str]], Any], prefix: str = "") -> dict[str, Any] | None:
        """Whether `batch` of ``prefix + text`` may stand in for ``reference(texts)`` (a backend's own batch call):
        on every probe batch each tensor `batch` gives must equal the reference's under the same name, dtype
        included, and what the reference adds (sentence-transformers' ``modality``, ``prompt_length``) must be
        plain values equal in all, so independent of the batch. Those additions, or None: use the reference.
        Probes are finite: callers let only plain configurations get here (see the backends)."""
        import torch

        if not self._pads:
            return None
        extras = []
        for probe in self._probes(prefix):  # at multiple 1: the reference pads to the longest
            theirs, ours = dict(reference(probe)), self.batch([prefix + text for text in probe], multiple=1)
            if ours is None or not all(isinstance(theirs.get(k), torch.Tensor) and theirs[k].dtype == v.dtype
                                       and torch.equal(theirs[k], v) for k, v in ours.items()):  # fmt: skip
                return None
            extras.append({k: v for k, v in theirs.items() if k not in ours})
        plain = all(isinstance(v, str | int | float | bool | type(None)) for v in extras[0].values())
        return extras[0] if plain and all(e == extras[0] for e in extras) else None


def stock_fast_tokenizer(tokenizer: Any) -> bool:
    """A transformers fast tokenizer whose call path (``__call__`` down to the backend's encode, padding and the
    conversion of encodings) is transformers' own: a class that rewrites any of it (LUKE's entity spans, a
    Python-side pre-tokenization) may do what its backend alone does not."""
    try:
        from transformers.tokenization_utils_base import PreTrainedTokenizerBase
        from transformers.tokenization_utils_tokenizers import TokenizersBackend
    except ImportError:
        return False
    if not (isinstance(tokenizer, TokenizersBackend) and getattr(tokenizer, "is_fast", False)):
        return False
    stock = (PreTrainedTokenizerBase, TokenizersBackend)
    path = ("__call__", "_call_one", "encode_plus", "batch_encode_plus", "_encode_plus", "_batch_encode_plus",
            "_convert_encoding", "set_truncation_and_padding", "pad", "_pad")  # fmt: skip
    owners = (next((c for c in type(tokenizer).__mro__ if name in vars(c)), None) for name in path)
    return all(owner is None or owner in stock for owner in owners)


def pad_multiple(requested: int | None) -> int:
    """Tokens a batch the harness pads (`BackendTokenizer.batch`) is padded to a multiple of: ``requested``
    (--pad-to-multiple-of), else 1 (to the longest text, as sentence-transformers pads). Not 16 for bfloat16 on a
    CPU, stop 44's default: oneDNN makes its bf16 kernels per batch shape, and fewer shapes ran minilm's encode
    calls 1.09x faster when every shape was new (benchmarks/results/bench_shapes_cpu.json), but whole runs of the
    13 retrieval tasks, with the token budget counting the padding (stop 45), took the same model CPU time at 16
    as at 1 (0.99x, bench_cpu_retrieval-pad*.json: a process meets most shapes again from task to task)."""
    if requested is not None and requested < 1:
        raise UsageError(f"--pad-to-multiple-of {requested}: must be at least 1")
    return 1 if requested is None else requested
