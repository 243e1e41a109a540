"""The mteb EncoderProtocol adapter: dedup, length-sorted batches, token counts, timing, progress bars.

mteb hands us a DataLoader per call; we flatten it, encode each distinct text once (in order of length so
padding is minimal), and scatter the vectors back. Counters in `EncodeStats` feed efficiency.json.
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

from harness.models import Embedder


@dataclass
class EncodeStats:
    """What one task cost the model: texts asked for, distinct texts encoded, tokens fed, seconds spent."""

    texts: int = 0
    unique_texts: int = 0
    tokens: int = 0
    encode_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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


class HarnessEncoder(AbsEncoder):
    """Wraps an Embedder for mteb.evaluate; one instance serves a whole run, stats are reset per task."""

    def __init__(self, embedder: Embedder, batch_size: int = 32, show_progress: bool | None = None):
        self.model = embedder
        self.mteb_model_meta = mteb_meta(embedder)
        self.batch_size = batch_size
        self.show_progress = sys.stderr.isatty() if show_progress is None else show_progress
        self.stats = EncodeStats()

    def encode(self, inputs: Any, *, task_metadata: Any, hf_split: str, hf_subset: str,
               prompt_type: PromptType | None = None, **kwargs: Any) -> np.ndarray:  # fmt: skip
        texts = [text for batch in inputs for text in batch["text"]]
        return self.encode_texts(texts, role_of(prompt_type), desc=task_metadata.name)

    def encode_texts(self, texts: list[str], role: str | None, desc: str = "encode") -> np.ndarray:
        """Vectors for texts (input order), each distinct text encoded once."""
        unique: dict[str, int] = {}
        inverse = np.fromiter((unique.setdefault(t, len(unique)) for t in texts), dtype=np.int64, count=len(texts))
        distinct = list(unique)
        out = np.empty((len(distinct), self.model.embed_dim), dtype=np.float32)
        order = sorted(range(len(distinct)), key=lambda i: -len(distinct[i]))
        start = time.perf_counter()
        with tqdm(total=len(distinct), desc=f"{desc} [{role or 'text'}]", unit="text", leave=False,
                  disable=not self.show_progress) as bar:  # fmt: skip
            for lo in range(0, len(order), self.batch_size):
                idx = order[lo : lo + self.batch_size]
                vectors, counts = self.model.encode_batch([distinct[i] for i in idx], role)
                out[idx] = vectors
                self.stats.tokens += int(sum(counts))
                bar.update(len(idx))
        self.stats.encode_s += time.perf_counter() - start
        self.stats.texts += len(texts)
        self.stats.unique_texts += len(distinct)
        return out[inverse]
