"""conan_model: the Conan-embedding-v2 architecture, masks, pooling, tokenizer, checkpoints and encoder.

Self-contained: imports nothing from the rest of the project. See docs/conan_model.md.

Names load lazily (PEP 562): `import conan_model.config` or the `harness models` CLI registration must not pay
for torch; `from conan_model import ConanModel` imports the submodule that defines it on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "checkpoint": ("load_config", "load_pretrained", "save_pretrained"),
    "config": ("ATTENTION_BACKENDS", "PRESETS", "ConanConfig"),
    "device": ("default_dtype", "dist_backend", "leave_process_group", "pick_device", "synchronize"),
    "encoder": ("ConanEncoder",),
    "masks": ("SCHEDULES", "attention_inputs", "mask_weights", "sdpa_mask", "soft_alpha", "soft_mask_bias",
              "soft_mask_weights"),
    "modeling": ("ConanModel",),
    "pooling": ("l2_normalize", "last_token_pool", "mean_pool", "pool", "truncate_and_normalize"),
    "tokenizer": ("SPECIAL_TOKENS", "EncodedBatch", "encode_batch", "iter_jsonl_texts", "load_tokenizer",
                  "save_tokenizer", "train_tokenizer", "train_tokenizer_from_texts"),
}  # fmt: skip
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'conan_model' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "ATTENTION_BACKENDS",
    "PRESETS",
    "SCHEDULES",
    "SPECIAL_TOKENS",
    "ConanConfig",
    "ConanEncoder",
    "ConanModel",
    "EncodedBatch",
    "attention_inputs",
    "default_dtype",
    "dist_backend",
    "encode_batch",
    "iter_jsonl_texts",
    "l2_normalize",
    "last_token_pool",
    "leave_process_group",
    "load_config",
    "load_pretrained",
    "load_tokenizer",
    "mask_weights",
    "mean_pool",
    "pick_device",
    "pool",
    "save_pretrained",
    "save_tokenizer",
    "sdpa_mask",
    "soft_alpha",
    "soft_mask_bias",
    "soft_mask_weights",
    "synchronize",
    "train_tokenizer",
    "train_tokenizer_from_texts",
    "truncate_and_normalize",
]
