"""conan_model: the Conan-embedding-v2 architecture, masks, pooling, tokenizer, checkpoints and encoder.

Self-contained: imports nothing from the rest of the project. See docs/conan_model.md.
"""

from .checkpoint import load_config, load_pretrained, save_pretrained
from .config import PRESETS, ConanConfig
from .device import default_dtype, dist_backend, pick_device, synchronize
from .encoder import ConanEncoder
from .masks import (
    MASK_MODES,
    SCHEDULES,
    mask_weights,
    sdpa_mask,
    soft_alpha,
    soft_mask_bias,
    soft_mask_weights,
)
from .modeling import ConanModel
from .pooling import l2_normalize, last_token_pool, mean_pool, pool, truncate_and_normalize
from .tokenizer import (
    SPECIAL_TOKENS,
    EncodedBatch,
    encode_batch,
    iter_jsonl_texts,
    load_tokenizer,
    save_tokenizer,
    train_tokenizer,
    train_tokenizer_from_texts,
)

__all__ = [
    "MASK_MODES",
    "PRESETS",
    "SCHEDULES",
    "SPECIAL_TOKENS",
    "ConanConfig",
    "ConanEncoder",
    "ConanModel",
    "EncodedBatch",
    "default_dtype",
    "dist_backend",
    "encode_batch",
    "iter_jsonl_texts",
    "l2_normalize",
    "last_token_pool",
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
