"""Model configuration and named presets.

One flat dataclass, serialised to ``config.json`` next to the weights. The ``conan-v2-1.4b`` preset reproduces
the paper's architecture (8 layers, width 3584, 32/8 GQA heads, SwiGLU 8192, 150k vocabulary); its parameter
count, 1,499,205,120, equals the official MTEB metadata, which is how the unstated choices (RoPE, RMSNorm,
no biases, no separate LM head) were inferred. ``small`` and ``tiny`` are CPU-sized for tests and smoke runs.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .pooling import POOLINGS

# Keys written by to_dict() that are metadata, not constructor fields.
_META_KEYS = ("model_type", "architectures")

PRESETS: dict[str, dict[str, Any]] = {
    # The paper's model. rope_theta is not given by the paper; 1e6 is the usual value for a 32k context.
    "conan-v2-1.4b": dict(
        vocab_size=150_000,
        hidden_size=3584,
        n_layers=8,
        n_heads=32,
        n_kv_heads=8,
        ffn_size=8192,
        max_length=32_768,
        rope_theta=1_000_000.0,
    ),
    # ~9.4M parameters: trains on 2 CPU cores in minutes, big enough to show real learning curves.
    "small": dict(
        vocab_size=8192,
        hidden_size=384,
        n_layers=4,
        n_heads=6,
        n_kv_heads=2,
        ffn_size=1024,
        max_length=512,
    ),
    # ~0.9M parameters: for unit tests and smoke runs.
    "tiny": dict(
        vocab_size=4096,
        hidden_size=128,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        ffn_size=384,
        max_length=256,
    ),
}


@dataclass
class ConanConfig:
    """Architecture + inference settings of a Conan decoder.

    ``prompts`` maps a role ('query', 'document', ...) to a prefix prepended before tokenisation; empty by
    default because the paper's served model sends raw text. ``pooling`` is 'mean' (default) or 'last'.
    Special-token ids follow :mod:`conan_model.tokenizer` (pad=0, unk=1, bos=2, eos=3).
    """

    vocab_size: int = 4096
    hidden_size: int = 128
    n_layers: int = 2
    n_heads: int = 4
    n_kv_heads: int = 2
    ffn_size: int = 384
    max_length: int = 256
    rope_theta: float = 10_000.0
    norm_eps: float = 1e-6
    init_std: float = 0.02
    pooling: str = "mean"
    pad_token_id: int = 0
    bos_token_id: int = 2
    eos_token_id: int = 3
    prompts: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.hidden_size % self.n_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by n_heads {self.n_heads}")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads {self.n_heads} is not divisible by n_kv_heads {self.n_kv_heads}")
        if self.head_dim % 2:
            raise ValueError(f"head_dim {self.head_dim} must be even for RoPE")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if min(self.vocab_size, self.n_layers, self.ffn_size, self.max_length) <= 0:
            raise ValueError("vocab_size, n_layers, ffn_size and max_length must be positive")

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.n_heads

    @property
    def embed_dim(self) -> int:
        """Output embedding size: the hidden size, as in the paper (no projection head)."""
        return self.hidden_size

    def num_parameters(self) -> int:
        """Closed-form parameter count (tied LM head counted once); see docs/conan_model.md."""
        h, kv = self.hidden_size, self.n_kv_heads * self.head_dim
        attention = 2 * h * h + 2 * h * kv  # q, o + k, v; no biases
        ffn = 3 * h * self.ffn_size  # SwiGLU: gate, up, down
        norms = 2 * h  # RMSNorm weight before attention and before the FFN
        return self.vocab_size * h + self.n_layers * (attention + ffn + norms) + h  # + final norm

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> ConanConfig:
        """A named preset ('conan-v2-1.4b', 'small', 'tiny'); keyword overrides win (e.g. vocab_size)."""
        if name not in PRESETS:
            raise KeyError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    def to_dict(self) -> dict[str, Any]:
        return {"model_type": "conan", "architectures": ["ConanModel"], **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConanConfig:
        """Inverse of to_dict; unknown keys are an error so a mismatched config.json fails loudly."""
        data = {k: v for k, v in data.items() if k not in _META_KEYS}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; expected a subset of {sorted(known)}")
        return cls(**data)
