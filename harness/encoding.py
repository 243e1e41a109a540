"""The mteb EncoderProtocol adapter: encode every distinct text once, at full dimension, as cheaply as possible.

mteb hands us a DataLoader per call. We flatten it and look each distinct text up, in order, in
1. the task memo (vectors already computed in this task: MRL dimension passes reuse them all),
2. the on-disk cache (other tasks and earlier runs),
then encode only what is left, in length-sorted batches under a token budget (sharded across ranks under
torchrun), and scatter vectors back. What is left is encoded in slices of `flush_every` texts and each slice is
written to the cache as soon as it is done, so a kill -9 in a 50k-document corpus loses at most one slice.
A dimension view (`view_dim`) returns truncated, re-normalised copies and counts nothing (it only reads the memo).
Counters in `EncodeStats` feed efficiency.json: model work (`encoded_texts`, `tokens`, `model_s`) apart from hits.
"""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from mteb.models.abs_encoder import AbsEncoder
from mteb.models.model_meta import ModelMeta, ScoringFunction
from mteb.types import PromptType
from tqdm.auto import tqdm

from harness.cache import EmbeddingCache, namespace_key
from harness.distributed import ShardGroup
from harness.models import Embedder


@dataclass
class EncodeStats:
    """What one task cost: texts asked for, distinct texts, how many came from memo/cache, model work."""

    texts: int = 0
    unique_texts: int = 0
    encoded_texts: int = 0
    memo_hits: int = 0
    cache_hits: int = 0
    tokens: int = 0
    encode_s: float = 0.0  # all of encode(): lookups, cache reads and writes, model
    model_s: float = 0.0  # tokenizing and running the model only

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def speed(self) -> dict[str, float | None]:
        """Texts and tokens per second of real model work; None when the model encoded nothing (all hits)."""
        if not self.encoded_texts or not self.model_s:
            return {"texts_per_s": None, "tokens_per_s": None}
        return {"texts_per_s": round(self.encoded_texts / self.model_s, 1),
                "tokens_per_s": round(self.tokens / self.model_s, 1)}  # fmt: skip


def mteb_meta(embedder: Embedder) -> ModelMeta:
    """Minimal ModelMeta so mteb names the result folder after the model and scores with cosine."""
    return ModelMeta.create_empty(
        overwrites={
            "name": embedder.name,
            "revision": embedder.revision,
            "embed_dim": embedder.embed_dim,
            "max_tokens": embedder.max_length,
            "similarity_fn_name": ScoringFunction.COSINE,
            "framework": ["PyTorch"],
            "open_weights": True,
        }
    )


def role_of(prompt_type: PromptType | None) -> str | None:
    return prompt_type.value if prompt_type is not None else None


def truncate_normalize(vectors: np.ndarray, dim: int) -> np.ndarray:
    """Matryoshka view: the first `dim` components, L2-normalised again."""
    view = vectors[:, :dim]
    norms = np.linalg.norm(view, axis=1, keepdims=True)
    return view / np.maximum(norms, 1e-12)


def token_budget_batches(lengths: list[int], max_batch: int, max_tokens: int, packed: bool = False) -> list[list[int]]:
    """Indices grouped longest-first so that rows × longest row ≤ max_tokens (and rows ≤ max_batch).

    packed: the model concatenates a batch's texts without padding (me5-small's C engine), so a batch costs the
    sum of its rows' tokens; then sum ≤ max_tokens alone bounds it (no row cap: rows cost nothing extra, and
    fewer, larger engine calls mean fewer thread synchronisations per token)."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    total = 0
    for i in order:
        if packed:
            full = bool(current) and total + lengths[i] > max_tokens
        else:
            longest = lengths[current[0]] if current else lengths[i]
            full = bool(current) and (len(current) >= max_batch or (len(current) + 1) * max(longest, 1) > max_tokens)
        if full:
            batches.append(current)
            current, total = [], 0
        current.append(i)
        total += lengths[i]
    if current:
        batches.append(current)
    return batches


class HarnessEncoder(AbsEncoder):
    """Wraps an Embedder for mteb.evaluate; one instance serves a whole run, `start_task` resets per task."""

    def __init__(self, embedder: Embedder, batch_size: int = 64, max_batch_tokens: int = 8192,
                 cache: EmbeddingCache | None = None, shards: ShardGroup | None = None,
                 show_progress: bool | None = None):  # fmt: skip
        self.model = embedder
        self.mteb_model_meta = mteb_meta(embedder)
        self.batch_size, self.max_batch_tokens = batch_size, max_batch_tokens
        self.cache, self.shards = cache, shards
        self.show_progress = sys.stderr.isatty() if show_progress is None else show_progress
        self.view_dim: int | None = None
        self.flush_every = 1024  # texts per cache write: bounds what a kill loses and what waits in memory
        self._namespaces: dict[str | None, str] = {}
        self.start_task()

    def start_task(self) -> None:
        self.stats = EncodeStats()
        self.memo: dict[tuple[str | None, str], np.ndarray] = {}
        self.view_dim = None
        self.pending = (0, 0)  # (encoded, to encode) in the current call, for progress lines

    def progress(self) -> str:
        done, total = self.pending
        return f"{done}/{total} texts encoded" if total else "loading or scoring"

    def encode(self, inputs: Any, *, task_metadata: Any, hf_split: str, hf_subset: str,
               prompt_type: PromptType | None = None, **kwargs: Any) -> np.ndarray:  # fmt: skip
        texts = [text for batch in inputs for text in batch["text"]]
        if self.view_dim:  # every text is in the memo after the full-dimension pass
            return truncate_normalize(self.encode_texts(texts, role_of(prompt_type), count=False), self.view_dim)
        return self.encode_texts(texts, role_of(prompt_type), desc=task_metadata.name)

    def _namespace(self, role: str | None) -> str:
        if role not in self._namespaces:
            identity = self.model.cache_identity(role)
            self._namespaces[role] = namespace_key(identity)
            if self.cache is not None:
                self.cache.register(self._namespaces[role], identity)
        return self._namespaces[role]

    def encode_texts(self, texts: list[str], role: str | None, desc: str = "encode", count: bool = True) -> np.ndarray:
        """Full-dimension vectors for texts (input order); each distinct text is computed at most once."""
        start = time.perf_counter()
        unique: dict[str, int] = {}
        inverse = np.fromiter((unique.setdefault(t, len(unique)) for t in texts), dtype=np.int64, count=len(texts))
        distinct = list(unique)
        out = np.empty((len(distinct), self.model.embed_dim), dtype=np.float32)
        todo = []
        for i, text in enumerate(distinct):
            hit = self.memo.get((role, text))
            if hit is None:
                todo.append(i)
            else:
                out[i] = hit
        memo_hits = len(distinct) - len(todo)
        if todo and self.cache is not None:
            found = self.cache.get_many(self._namespace(role), [distinct[i] for i in todo])
            for j, vec in found.items():
                out[todo[j]] = vec
            self.stats.cache_hits += len(found)
            todo = [i for j, i in enumerate(todo) if j not in found]
        writes = self.cache is not None and (self.shards is None or self.shards.is_main)
        for lo in range(0, len(todo), self.flush_every):
            self.pending = (lo, len(todo))
            part = todo[lo : lo + self.flush_every]
            out[part] = self._compute([distinct[i] for i in part], role, desc)
            if writes:
                self.cache.put_many(self._namespace(role), [distinct[i] for i in part], out[part])
        self.pending = (0, 0)
        for i, text in enumerate(distinct):
            self.memo[(role, text)] = out[i]
        if count:
            self.stats.memo_hits += memo_hits
            self.stats.texts += len(texts)
            self.stats.unique_texts += len(distinct) - memo_hits  # a text the memo served was counted already
            self.stats.encode_s += time.perf_counter() - start
        return out[inverse]

    def _compute(self, texts: list[str], role: str | None, desc: str) -> np.ndarray:
        """Run the model on texts (this rank's slice under torchrun), token-budget batches, longest first."""
        start = time.perf_counter()
        mine = list(range(len(texts)))
        if self.shards is not None:
            mine = mine[self.shards.rank :: self.shards.world]
        lengths = self.model.count_tokens([texts[i] for i in mine], role) if mine else []
        local = np.empty((len(mine), self.model.embed_dim), dtype=np.float32)
        with tqdm(total=len(mine), desc=f"{desc} [{role or 'text'}]", unit="text", leave=False,
                  disable=not self.show_progress) as bar:  # fmt: skip
            packed = self.model.packs_texts
            for batch in token_budget_batches(lengths, self.batch_size, self.max_batch_tokens, packed):
                local[batch] = self.model.encode_batch([texts[mine[i]] for i in batch], role)
                bar.update(len(batch))
        self.stats.encoded_texts += len(mine)
        self.stats.tokens += int(sum(lengths))
        self.stats.model_s += time.perf_counter() - start
        if self.shards is None:
            return local
        result = np.empty((len(texts), self.model.embed_dim), dtype=np.float32)
        for rank, part in enumerate(self.shards.gather(local, self.model.embed_dim)):
            result[rank :: self.shards.world] = part
        return result
