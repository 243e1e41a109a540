"""The Embedder interface every model kind implements, and the options a model is loaded with.

An Embedder turns a batch of texts into vectors for one role: "query", "document" or None (symmetric tasks such as
STS), as mteb passes them. It reports the prompt it puts before a role's texts (`prompt`; a task's own, where the
model names one, `task_prompt`) and everything else that changes a vector (`cache_identity`), so the embedding cache
and run records can key on them. The kinds live in
harness/backends.py; harness/models.py turns a spec into one; harness/lazy.py stands in for one not yet loaded.
"""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from types import MappingProxyType
from typing import Any

import numpy as np

from conan_model.batching import PREFETCH_DEPTH, EncodeTimings, prefetch, timed, token_budget_batches, window_spans
from harness import sysinfo

# The packages whose code computes a vector (the model's kernels, its tokenizer, the pipeline around them)
KERNEL_PACKAGES = ("torch", "tokenizers", "transformers", "sentence-transformers")


def kernel_packages() -> dict[str, str | None]:
    """Installed versions of KERNEL_PACKAGES (None where one is missing), a part of every cache namespace."""
    return {name: version for name, version in sysinfo.package_versions().items() if name in KERNEL_PACKAGES}


@dataclass
class ModelOptions:
    device: str | None = None
    dtype: str = "auto"  # bfloat16 on accelerators and CPUs with native bf16, else float32 (harness.models.auto_dtype)
    max_length: int | None = None
    pooling: str | None = None  # hf: models only (None: mean); any other model pools as it was trained
    trust_remote_code: bool = False
    compile: bool = False  # torch.compile the model's transformer (pays off on accelerators for long runs)
    pad_to_multiple_of: int | None = None  # batch lengths padded to a multiple of this; None: 1, to the longest


class Embedder(ABC):
    """One loaded model. `name`/`revision` place results as results/<org>__<name>/<revision>/."""

    spec: str
    name: str
    revision: str
    embed_dim: int
    max_length: int | None
    dtype: str = "float32"
    dtype_reason: str = ""  # why this dtype (auto's decision or the option given), recorded in run.json
    device: str = "cpu"
    pooling: str = "model"  # the model's own pooling unless an hf: spec chose one
    kernels: str | None = None  # non-stock kernels that move vectors by rounding (harness.onednn, COMPILED), else None
    pad_multiple: int = 1  # tokens a batch is padded to a multiple of where the harness pads it (harness.backends)
    packs_texts: bool = False  # True: a batch's texts run concatenated, unpadded (batches bounded by token sum)
    trust_remote_code: bool = False  # a folder's own model code may run: in the fingerprint (harness.backends)
    # How mteb scores two vectors (mteb's ScoringFunction values: cosine, dot, euclidean, manhattan): an st: folder's
    # own `similarity_fn_name`, as plain mteb scores it with `model.similarity`; cosine for every other kind
    similarity_fn_name: str = "cosine"
    # Prompts the model names for a task (keys as mteb's model_prompts: a task name, a task type, either joined to
    # "-query"/"-document"), applied before the role's own as plain mteb applies an st: folder's (`task_prompt`)
    task_prompts: Mapping[str, str] = MappingProxyType({})

    def task_prompt(self, role: str | None, task_name: str, task_type: str) -> str:
        """The prompt a task's texts of a role get: plain mteb's choice among `task_prompts` (task name + role, task
        name, task type + role, task type), else the role's own (`prompt`)."""
        for key in (f"{task_name}-{role}" if role else None, task_name, f"{task_type}-{role}" if role else None,
                    task_type):  # fmt: skip
            if key in self.task_prompts:
                return self.task_prompts[key]
        return self.prompt(role)

    @abstractmethod
    def encode_batch(self, texts: list[str], role: str | None) -> np.ndarray:
        """Embeddings (float32, one row per text, same order) of one batch. A model with `task_prompts` also takes
        `prompt`, a task's own (`task_prompt`), put before the texts in place of the role's."""

    @abstractmethod
    def count_tokens(self, texts: list[str], role: str | None) -> list[int]:
        """Tokens each text feeds the model (prompt and special tokens included, after truncation); `prompt` as in
        `encode_batch`."""

    @cached_property
    def timings(self) -> EncodeTimings:
        """Where encoding time went (tokenizer, copies, forward), summed until ``timings.reset()``."""
        return EncodeTimings()

    def encode_stream(self, texts: list[str], role: str | None, max_batch: int, max_tokens: int, window: int,
                      on_batch: Callable[[int], None] | None = None, prompt: str | None = None,
                      ) -> Iterator[tuple[int, int, np.ndarray, list[int]]]:  # fmt: skip
        """(start, end, vectors, token counts) per window of texts (`window_spans`: up to ``window`` texts), each
        window in length-sorted batches of at most ``max_batch`` texts and ``max_tokens`` padded tokens. This
        default counts tokens, then calls ``encode_batch`` per batch (a backend without `BackendTokenizer`
        tokenizes twice); backends that can do better override it. ``prompt``
        (a task's own, only for a model with `task_prompts`) goes to ``encode_batch`` and ``count_tokens``.
        ``timings.texts`` counts each batch as it is done and ``on_batch`` (a terminal bar) gets its text count,
        so progress moves every batch, not every window.
        Inline, every tokenizer second is spent on this thread, where nothing hides it behind the model: it counts
        as ``wait_s`` too. Where `prefetches`, one background thread counts each window and prepares its batches
        while the model runs, and ``wait_s`` is only the time the model waited for them."""
        task_prompt = {} if prompt is None else {"prompt": prompt}  # models without task prompts take no prompt
        if self.prefetches:
            yield from self._prefetched_stream(texts, role, max_batch, max_tokens, window, on_batch, task_prompt,
                                               first_window=max_batch)  # fmt: skip
            return
        for lo, hi in window_spans(len(texts), window, max_batch):
            part = texts[lo:hi]
            tokenized_before = self.timings.tokenize_s
            start = time.perf_counter()
            lengths = self.count_tokens(part, role, **task_prompt)
            self.timings.tokenize_s += time.perf_counter() - start
            vectors = np.empty((len(part), self.embed_dim), dtype=np.float32)
            for batch in self._budget_batches(lengths, max_batch, max_tokens):
                before = self.timings.tokenize_s + self.timings.copy_s
                start = time.perf_counter()
                vectors[batch] = self.encode_batch([part[i] for i in batch], role, **task_prompt)
                inside = self.timings.tokenize_s + self.timings.copy_s - before  # what the backend timed itself
                self.timings.forward_s += time.perf_counter() - start - inside
                self._batch_done(len(batch), on_batch)
            self.timings.wait_s += self.timings.tokenize_s - tokenized_before
            self.timings.tokens += sum(lengths)
            yield lo, lo + len(part), vectors, lengths

    def _budget_batches(self, lengths: list[int], max_batch: int, max_tokens: int) -> list[list[int]]:
        """A window's batches, each row charged the batch's width as this model pads it (`padded_width`)."""
        return token_budget_batches(lengths, max_batch, max_tokens, self.packs_texts, self.pad_multiple,
                                    self.max_length)  # fmt: skip

    @property
    def prefetches(self) -> bool:
        """Whether `encode_stream` tokenizes ahead in a background thread while the model runs: for a backend that
        splits a batch into `prepare_batch` (host side) and `run_batch`, on CUDA or another accelerator with its own
        memory (not MPS, which shares the host's). On a CPU the thread would take cores from the model's own
        threads. An `encode_batch` replaced on the instance (a test's or a wrapper's) keeps the inline path, which
        calls it."""
        split = type(self).prepare_batch is not Embedder.prepare_batch and "encode_batch" not in vars(self)
        return split and self.device_type not in ("cpu", "mps")

    def prepare_batch(self, texts: list[str], role: str | None, pin: bool = False, **task_prompt: str) -> Any:
        """A batch's host-side inputs (tokenized, padded; in pinned memory with ``pin``), for `run_batch`."""
        raise NotImplementedError

    def run_batch(self, prepared: Any, role: str | None) -> np.ndarray:
        """`encode_batch`'s device side: `prepare_batch`'s inputs copied over (timed as ``copy_s``), the model run."""
        raise NotImplementedError

    def encode_split(self, texts: list[str], role: str | None, **task_prompt: str) -> np.ndarray:
        """`encode_batch` of a backend with the split, inline: `prepare_batch` (timed as ``tokenize_s``), then
        `run_batch`."""
        start = time.perf_counter()
        prepared = self.prepare_batch(texts, role, **task_prompt)
        self.timings.tokenize_s += time.perf_counter() - start
        return self.run_batch(prepared, role)

    def copy_in(self, prepared: dict[str, Any]) -> dict[str, Any]:
        """`prepare_batch`'s tensors on the model's device (non-blocking from pinned memory), other values as they
        are; the host time, all of a blocking copy or only the queueing of a pinned one, counts as ``copy_s``."""
        import torch

        start = time.perf_counter()
        moved = {k: v.to(self.device, non_blocking=v.is_pinned()) if isinstance(v, torch.Tensor) else v
                 for k, v in prepared.items()}  # fmt: skip
        self.timings.copy_s += time.perf_counter() - start
        return moved

    def _batch_done(self, texts: int, on_batch: Callable[[int], None] | None) -> None:
        self.timings.batches += 1
        self.timings.texts += texts
        if on_batch is not None:
            on_batch(texts)

    def _prefetched_stream(self, texts: list[str], role: str | None, max_batch: int, max_tokens: int, window: int,
                           on_batch: Callable[[int], None] | None, task_prompt: dict[str, str], first_window: int,
                           depth: int = PREFETCH_DEPTH,
                           ) -> Iterator[tuple[int, int, np.ndarray, list[int]]]:  # fmt: skip
        """`encode_stream` with all tokenizer work in one background thread, up to ``depth`` items ahead: each
        window's token counts, then its batches tokenized, padded and pinned (CUDA) for non-blocking copies; the
        windows `window_spans` from ``first_window`` texts. The tokenizer has this one user (the main thread never
        calls it meanwhile). A window is handed back when the next one's counts arrive, or at the end.
        (``first_window`` and ``depth`` are parameters for benchmarks/bench_wait_model.py, which runs earlier
        settings beside these.)"""
        pin = self.device_type == "cuda"  # pinned host memory is CUDA's; other accelerators copy from pageable

        def produce() -> Iterator[tuple[int, list[int], list[int] | None, Any]]:
            for lo, hi in window_spans(len(texts), window, first_window):
                part = texts[lo:hi]
                start = time.perf_counter()
                lengths = self.count_tokens(part, role, **task_prompt)
                self.timings.tokenize_s += time.perf_counter() - start
                yield lo, lengths, None, None  # a window begins
                for batch in self._budget_batches(lengths, max_batch, max_tokens):
                    start = time.perf_counter()
                    inputs = self.prepare_batch([part[i] for i in batch], role, pin=pin, **task_prompt)
                    self.timings.tokenize_s += time.perf_counter() - start
                    yield lo, lengths, batch, inputs

        def waited(seconds: float) -> None:
            self.timings.wait_s += seconds

        current: tuple[int, list[int], np.ndarray] | None = None
        with contextlib.closing(timed(prefetch(produce(), depth), waited)) as stream:
            for lo, lengths, batch, inputs in stream:
                if batch is None:
                    if current is not None:
                        self.timings.tokens += sum(current[1])
                        yield current[0], current[0] + len(current[1]), current[2], current[1]
                    current = (lo, lengths, np.empty((len(lengths), self.embed_dim), dtype=np.float32))
                    continue
                copied_before, start = self.timings.copy_s, time.perf_counter()
                current[2][batch] = self.run_batch(inputs, role)
                self.timings.forward_s += time.perf_counter() - start - (self.timings.copy_s - copied_before)
                self._batch_done(len(batch), on_batch)
        if current is not None:
            self.timings.tokens += sum(current[1])
            yield current[0], current[0] + len(current[1]), current[2], current[1]

    def cache_identity(self, role: str | None, prompt: str | None = None) -> dict[str, Any]:
        """Everything besides the text that changes a vector: the embedding cache's namespace, with the prompt the
        texts get (``prompt``, a task's own, else the role's: a text's vector under one task's prompt is never
        served to a task with another). The device type
        is in it: other hardware computes other roundings (in bf16 enough to move a score), so vectors made on a
        CPU never stand in for a GPU run's, nor the reverse. So are the versions of the packages whose kernels
        compute the vectors (an upgrade, or a cache shared by machines with other installs, reuses nothing) and,
        below float32 on a CPU, the CPU model (bf16 kernels round by the instructions the CPU has), and a padding
        multiple above 1 (other batch shapes run other kernels, which round otherwise)."""
        identity = {"fingerprint": self.fingerprint, "prompt": self.prompt(role) if prompt is None else prompt,
                    "role": role,
                    "max_length": self.max_length, "pooling": self.pooling, "dtype": self.dtype,
                    "device": self.device_type, "name": self.name, **self.kernel_identity()}  # fmt: skip
        if self.pad_multiple > 1:  # absent at 1, so vectors cached before the option stay served
            identity["pad_multiple"] = self.pad_multiple
        return {**identity, "kernels": self.kernels} if self.kernels else identity

    def kernel_identity(self) -> dict[str, Any]:
        """What computes the vectors besides the model and its settings, in the cache's namespace and the rerun
        identity alike: the kernel packages' versions and, below float32 on a CPU, the CPU model with its bf16
        flags (`sysinfo.cpu_kernels`); on an accelerator its model (`sysinfo.accelerator_model`, since stop 54)."""
        found: dict[str, Any] = {"packages": kernel_packages()}
        if hardware := sysinfo.kernel_hardware(str(self.device), self.dtype):
            found["cpu" if self.device_type == "cpu" else "accelerator"] = hardware
        return found

    @property
    def device_type(self) -> str:
        """'cpu', 'cuda', 'npu', 'mps': the hardware kind, without the index (ranks of one run share it)."""
        return str(self.device).split(":", 1)[0]

    def prompt(self, role: str | None) -> str:
        """The prefix this model puts before texts of a role ('' when none)."""
        return ""

    @cached_property
    def fingerprint(self) -> str:
        return self._fingerprint()

    @abstractmethod
    def _fingerprint(self) -> str: ...

    def ensure_loaded(self) -> float:
        """Seconds spent loading weights now, before the first encode: 0 here, where loading is construction;
        a LazyEmbedder (harness/lazy.py) loads on its first call."""
        return 0.0

    def torch_module(self) -> Any | None:
        """The loaded torch module, for counting its parameters; None for engines that are not torch."""
        return None

    def n_parameters(self) -> int | None:
        """Parameters of the loaded model, recorded in run.json so reports never load or parse a model."""
        module = self.torch_module()
        return None if module is None else sum(p.numel() for p in module.parameters())

    def describe(self) -> dict[str, Any]:
        """run.json's `model`: every model-level setting a score depends on, so runs can be compared."""
        return {
            "spec": self.spec, "name": self.name, "revision": self.revision, "embed_dim": self.embed_dim,
            "n_parameters": self.n_parameters(),
            "max_length": self.max_length, "pooling": self.pooling, "dtype": self.dtype,
            "dtype_reason": self.dtype_reason,
            "device": self.device, "fingerprint": self.fingerprint, "kernels": self.kernels,
            "pad_multiple": self.pad_multiple, "trust_remote_code": self.trust_remote_code,
            "similarity_fn_name": self.similarity_fn_name,
            "prompts": {"query": self.prompt("query"), "document": self.prompt("document"), "none": self.prompt(None)},
            "task_prompts": dict(self.task_prompts),
        }  # fmt: skip
