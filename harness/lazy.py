"""A model that loads only when a text must be encoded: a warm rerun (every text in the cache) loads no weights.

Everything a run needs from a model before it encodes (name, revision, dimension, max length, dtype, prompts,
fingerprint, kernels: the run record, the task identities and the cache namespaces) is its *description*. The
first load of a model describes it into the embedding cache (harness/cache.py, table `models`), keyed by
everything that decides the description: the spec, the resolved options (device, dtype, max length, pooling,
compile), the model folder's content hash (`st:`/`hf:`/`conan:`; packaged models by their package versions), the
installed package versions, the CPU, and the source of the harness and conan_model packages. Later runs with that
key get a `LazyEmbedder` from the description; its weights (and, for `st:`/`hf:`/`minilm`, sentence-transformers and
transformers) load on the first text the cache does not hold, and never in a warm rerun. The load checks the
description it was given against the model's own and fails the task if they differ (the stored one is then
replaced), so a lazy run never records settings a real load would not have.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

import conan_model
import harness
from conan_model.batching import EncodeTimings
from conan_model.fingerprint import data_fingerprint, files_fingerprint
from harness import sysinfo
from harness.cache import EmbeddingCache
from harness.data import warn
from harness.embedder import Embedder, ModelOptions
from harness.models import PACKAGED, PREFIXES, load_model, remote_code_note, resolve_options

LOADS = {"count": 0}  # real model loads in this process (by open_model and by lazy models): tests count them


def describe_fully(embedder: Embedder) -> dict[str, Any]:
    """What a LazyEmbedder needs to stand in for `embedder`: its run.json description plus packing, as JSON gives
    it back (so a stored description and a fresh one compare equal)."""
    described = {**embedder.describe(), "packs_texts": embedder.packs_texts}
    return json.loads(json.dumps(described, default=str))


def description_key(spec: str, opts: ModelOptions) -> str | None:
    """The key of a model's description (resolved options), or None when no cheap key exists (a hub name, a
    missing folder, an unknown spec: those load at once, and the load says what is wrong)."""
    files = None
    if spec not in PACKAGED:
        prefix, _, target = spec.partition(":")
        folder = Path(target).expanduser()
        if f"{prefix}:" not in PREFIXES or not folder.is_dir():
            return None
        files = files_fingerprint(folder)
    code = [files_fingerprint(Path(pkg.__file__).parent, ("*.py",)) for pkg in (harness, conan_model)]
    return data_fingerprint({"spec": spec, "options": dataclasses.asdict(opts), "files": files, "code": code,
                             "packages": sysinfo.package_versions(), "cpu": sysinfo.cpu_kernels()})  # fmt: skip


def open_model(spec: str, opts: ModelOptions | None, cache: EmbeddingCache | None) -> Embedder:
    """The model for `spec`: a LazyEmbedder when the cache holds its description, else loaded now (and described
    into the cache for next time). Option errors are raised here either way, before anything loads."""
    opts = opts or ModelOptions()
    resolved, reason = resolve_options(spec, opts)
    note = remote_code_note(spec, opts)
    if note and os.environ.get("RANK", "0") == "0":  # once a run (a cached description loads nothing), one rank
        warn(note)
    key = description_key(spec, resolved) if cache is not None else None
    known = cache.model_description(key, spec) if key else None
    if known is None or "task_prompts" not in known:  # described before task prompts were: they may be missing
        embedder = _load_counted(spec, opts)
        if key:
            cache.remember_model(key, describe_fully(embedder))
        return embedder
    # the reason is this run's: `--dtype bfloat16` and an auto that resolves to it share one description (before
    # stop 52, audit, run.json said "auto: CPU has native bf16" for an explicit --dtype bfloat16)
    return LazyEmbedder({**known, "dtype_reason": reason}, lambda: _load_counted(spec, opts),
                        lambda real: cache.remember_model(key, real))  # fmt: skip


def _load_counted(spec: str, opts: ModelOptions) -> Embedder:
    LOADS["count"] += 1
    return load_model(spec, opts)


class StaleDescription(RuntimeError):
    """The model, loaded at last, is not the one its stored description said (replaced now; rerun)."""


class LazyEmbedder(Embedder):
    """An Embedder from a stored description; the real model loads on the first call that needs its weights."""

    def __init__(self, description: dict[str, Any], load: Callable[[], Embedder],
                 replace: Callable[[dict[str, Any]], None]) -> None:  # fmt: skip
        self._description, self._load, self._replace = description, load, replace
        self._real: Embedder | None = None
        self._timings = EncodeTimings()
        self.load_s = 0.0
        for attr in ("spec", "name", "revision", "embed_dim", "max_length", "dtype", "dtype_reason", "device",
                     "pooling", "kernels", "pad_multiple", "packs_texts", "similarity_fn_name",
                     "task_prompts", "trust_remote_code"):  # fmt: skip
            setattr(self, attr, description[attr])

    @property
    def loaded(self) -> bool:
        return self._real is not None

    def ensure_loaded(self) -> float:
        """Load the real model if it is not yet; the seconds it took (0 when it was loaded already)."""
        if self._real is not None:
            return 0.0
        start = time.perf_counter()
        real = self._load()
        real.dtype_reason = self.dtype_reason  # the reason decided with this run's options
        actual = describe_fully(real)
        if actual != self._description:
            self._replace(actual)
            changed = sorted(k for k in actual if actual[k] != self._description.get(k))
            raise StaleDescription(f"the stored description of model {self.spec} differs from the loaded model in "
                                   f"{', '.join(changed)}; it is replaced now: rerun with --overwrite")  # fmt: skip
        self._real = real
        self.load_s = time.perf_counter() - start
        return self.load_s

    @property
    def real(self) -> Embedder:
        self.ensure_loaded()
        return self._real

    @property
    def timings(self) -> EncodeTimings:  # type: ignore[override]
        return self._real.timings if self._real is not None else self._timings

    def encode_batch(self, texts: list[str], role: str | None, **prompt: str) -> np.ndarray:
        return self.real.encode_batch(texts, role, **prompt)

    def count_tokens(self, texts: list[str], role: str | None, **prompt: str) -> list[int]:
        return self.real.count_tokens(texts, role, **prompt)

    def encode_stream(self, texts: list[str], role: str | None, max_batch: int, max_tokens: int, window: int,
                      on_batch: Callable[[int], None] | None = None, prompt: str | None = None,
                      ) -> Iterator[tuple[int, int, np.ndarray, list[int]]]:  # fmt: skip
        task_prompt = {} if prompt is None else {"prompt": prompt}  # backends without task prompts take none
        return self.real.encode_stream(texts, role, max_batch, max_tokens, window, on_batch, **task_prompt)

    def prompt(self, role: str | None) -> str:
        return self._description["prompts"]["none" if role is None else role]

    def _fingerprint(self) -> str:
        return self._description["fingerprint"]

    def describe(self) -> dict[str, Any]:
        """The common fields as any Embedder's, plus what a backend adds to its own (a conan: checkpoint's
        training config), from the stored description."""
        common = super().describe()
        extra = {k: v for k, v in self._description.items() if k not in common and k != "packs_texts"}
        return {**common, **extra}

    def n_parameters(self) -> int | None:
        return self._description["n_parameters"]

    def torch_module(self) -> Any | None:
        return self.real.torch_module()
