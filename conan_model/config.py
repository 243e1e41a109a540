"""Model configuration and named presets.

One flat dataclass, serialised to ``config.json`` next to the weights. The ``conan-v2-1.4b`` preset reproduces
the paper's architecture (8 layers, width 3584, 32/8 GQA heads, SwiGLU 8192, 150k vocabulary); its parameter
count, 1,499,205,120, equals the official MTEB metadata, which is how the unstated choices (RoPE, RMSNorm,
no biases, no separate LM head) were inferred. ``small`` and ``tiny`` are CPU-sized for tests and smoke runs.

The same dataclass describes imported Llama/Qwen2-family decoders (conan_model/importing.py): an explicit
``head_dim``, optional QKV biases, an untied LM head, their own special-token ids, and ``attention`` (the mask
used at inference: a raw causal LM embeds best causally with last-token pooling, a converted one
bidirectionally), so a checkpoint folder fully describes how it embeds.

``arch = "bert"`` describes a post-norm BERT/XLM-R encoder instead (conan_model/bert.py): learned absolute
positions (``max_length`` of them), LayerNorm with biases, a GELU FFN, every projection with a bias. It is how
multilingual-e5-small becomes a trainable base (conan_model/e5.py); the decoder fields it has no use for
(rope_theta, n_kv_heads = n_heads) are ignored.
"""

from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, field
from typing import Any

POOLINGS = ("mean", "last")  # defined here, not in pooling.py, so reading a config never imports torch

ARCHS = ("decoder", "bert")  # conan_model.modeling.ConanModel / conan_model.bert.BertModel
ATTENTIONS = ("bidirectional", "causal")  # inference mask modes a checkpoint may declare
# A weak-stage checkpoint saved mid-schedule is evaluated as it was last trained: the soft mask at `attention_alpha`.
SOFT = "soft"
ATTENTION_BACKENDS = ("auto", "flex", "sdpa")  # how a soft mask is applied (masks.choose_backend); run-time only

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


_FIELD_KINDS: dict[str, type] = {
    **dict.fromkeys(("vocab_size", "hidden_size", "n_layers", "n_heads", "n_kv_heads", "ffn_size", "max_length",
                     "head_dim", "pad_token_id", "bos_token_id", "eos_token_id"), int),
    **dict.fromkeys(("rope_theta", "norm_eps", "init_std", "attention_alpha"), float),
    **dict.fromkeys(("qkv_bias", "tie_word_embeddings"), bool),
    **dict.fromkeys(("pooling", "attention", "arch"), str),
}  # fmt: skip
_OPTIONAL = {"head_dim", "bos_token_id", "eos_token_id", "attention_alpha"}


@dataclass
class ConanConfig:
    """Architecture + inference settings of a Conan decoder.

    ``prompts`` maps a role ('query', 'document', ...) to a prefix prepended before tokenisation, and
    'default' to the prefix of a text without a role or without an entry of its own (:meth:`prompt`); empty by
    default because the paper's served model sends raw text. ``pooling`` is 'mean' (default) or 'last';
    ``attention`` is the inference mask ('bidirectional' default, or 'causal'; 'soft' with ``attention_alpha`` in
    (0, 1) only in a weak-stage checkpoint saved before its schedule reached 1). Special-token ids default to
    :mod:`conan_model.tokenizer`'s (pad=0, bos=2, eos=3); imported models carry their own (bos may be None).
    ``head_dim`` defaults to hidden_size / n_heads (Qwen2/Llama variants may set it explicitly).
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
    head_dim: int | None = None  # None: hidden_size // n_heads (filled in at construction)
    qkv_bias: bool = False  # Qwen2 has biases on the q, k and v projections
    tie_word_embeddings: bool = True  # False: a separate lm_head.weight (V x hidden)
    pooling: str = "mean"
    attention: str = "bidirectional"
    attention_alpha: float | None = None
    pad_token_id: int = 0
    bos_token_id: int | None = 2
    eos_token_id: int | None = 3
    prompts: dict[str, str] = field(default_factory=dict)
    arch: str = "decoder"

    def __post_init__(self) -> None:
        self._check_types()
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        if self.arch == "bert" and self.n_kv_heads != self.n_heads:
            raise ValueError(f"arch 'bert' has no grouped-query attention: n_kv_heads {self.n_kv_heads} must equal "
                             f"n_heads {self.n_heads}")  # fmt: skip
        sizes = {"hidden_size": self.hidden_size, "n_heads": self.n_heads, "n_kv_heads": self.n_kv_heads}
        if bad := {name: value for name, value in sizes.items() if value <= 0}:
            raise ValueError(f"{', '.join(f'{n} {v}' for n, v in bad.items())}: must be positive")
        if self.head_dim is None:
            if self.hidden_size % self.n_heads:
                raise ValueError(f"hidden_size {self.hidden_size} is not divisible by n_heads {self.n_heads}")
            self.head_dim = self.hidden_size // self.n_heads
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads {self.n_heads} is not divisible by n_kv_heads {self.n_kv_heads}")
        if self.head_dim % 2:
            raise ValueError(f"head_dim {self.head_dim} must be even for RoPE")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.attention == SOFT:
            if not (isinstance(self.attention_alpha, int | float) and 0 < self.attention_alpha < 1):
                raise ValueError(f"attention 'soft' needs attention_alpha in (0, 1), got {self.attention_alpha!r}")
        elif self.attention not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {self.attention!r}")
        elif self.attention_alpha is not None:
            raise ValueError(f"attention_alpha is for attention 'soft' only, got it with {self.attention!r}")
        if min(self.vocab_size, self.n_layers, self.ffn_size, self.max_length, self.head_dim) <= 0:
            raise ValueError("vocab_size, n_layers, ffn_size, max_length and head_dim must be positive")
        for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
            value = getattr(self, name)
            if value is not None and not 0 <= value < self.vocab_size:
                raise ValueError(f"{name} {value} is outside the vocabulary [0, {self.vocab_size})")

    def _check_types(self) -> None:
        """Each value of the type its field needs, named when not: a "64" for hidden_size failed later with an
        unrelated string-formatting error. numpy scalars (GGUF metadata) become Python numbers, as JSON needs."""
        for name, kind in _FIELD_KINDS.items():
            value = getattr(self, name)
            if value is None and name in _OPTIONAL:
                continue
            if kind is bool:
                ok = isinstance(value, bool)
            elif kind is int:
                ok = isinstance(value, numbers.Integral) and not isinstance(value, bool)
            elif kind is float:
                ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
            else:
                ok = isinstance(value, str)
            if not ok:
                article = "an" if kind is int else "a"
                noun = {int: "integer", float: "number", bool: "true or false", str: "string"}[kind]
                raise ValueError(f"{name} must be {'' if kind is bool else article + ' '}{noun}, not {value!r}")
            if kind in (int, float):
                setattr(self, name, kind(value))
        if not (isinstance(self.prompts, dict) and all(isinstance(k, str) and isinstance(v, str)
                                                       for k, v in self.prompts.items())):  # fmt: skip
            raise ValueError(f"prompts must map roles to prefix strings, not {self.prompts!r}")

    @property
    def embed_dim(self) -> int:
        """Output embedding size: the hidden size, as in the paper (no projection head)."""
        return self.hidden_size

    def prompt(self, role: str | None) -> str:
        """The prefix a text of ``role`` gets: its own entry, else 'default', else ''. Training and the
        encoder both ask here, so a model is trained with the prompts it is evaluated with."""
        return self.prompts.get(role or "default", self.prompts.get("default", ""))

    def special_ids(self) -> dict[str, int | None]:
        """pad/bos/eos ids by config key: what a checkpoint's tokenizer must contain."""
        return {"pad_token_id": self.pad_token_id, "bos_token_id": self.bos_token_id, "eos_token_id": self.eos_token_id}

    def num_parameters(self) -> int:
        """Closed-form parameter count (a tied LM head counted once); see docs/conan_model.md."""
        h, q, kv = self.hidden_size, self.n_heads * self.head_dim, self.n_kv_heads * self.head_dim
        if self.arch == "bert":  # q, k, v, o with biases; up/down with biases; two LayerNorms per layer
            layer = 4 * (h * q + q) + 2 * h * self.ffn_size + self.ffn_size + h + 4 * h
            return (self.vocab_size + self.max_length) * h + 2 * h + self.n_layers * layer
        attention = 2 * h * q + 2 * h * kv  # q, o + k, v
        if self.qkv_bias:
            attention += q + 2 * kv
        ffn = 3 * h * self.ffn_size  # SwiGLU: gate, up, down
        norms = 2 * h  # RMSNorm weight before attention and before the FFN
        embeddings = self.vocab_size * h * (1 if self.tie_word_embeddings else 2)
        return embeddings + self.n_layers * (attention + ffn + norms) + h  # + final norm

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> ConanConfig:
        """A named preset ('conan-v2-1.4b', 'small', 'tiny'); keyword overrides win (e.g. vocab_size)."""
        if name not in PRESETS:
            raise KeyError(f"unknown preset {name!r}; choose from {sorted(PRESETS)}")
        return cls(**{**PRESETS[name], **overrides})

    def inference_mask(self) -> tuple[str, float | None]:
        """(mask mode, alpha) a forward pass without an explicit mask mode uses."""
        return self.attention, self.attention_alpha

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
