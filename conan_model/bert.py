"""A post-norm BERT/XLM-R encoder (``ConanConfig.arch == "bert"``), so a pretrained multilingual encoder such as
multilingual-e5-small (conan_model/e5.py) trains in the same stages, checkpoints and encoder as the decoder.

Embeddings: token + learned absolute position (+ the single token-type row, folded into the position table at
import: every text is segment 0), then LayerNorm. Each layer: x = LN(x + Attn(x)); x = LN(x + FFN(x)), with
biases everywhere and an exact (erf) GELU. No final norm: the last layer's LayerNorm is the output.

Attention goes through SDPA with the same masks as the decoder (``conan_model.masks``): 'bidirectional' is the
encoder's own mode; 'causal' and 'soft' work too, but nothing pretrained this way expects them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .config import ConanConfig
from .masks import sdpa_mask
from .modeling import Backbone


class BertAttention(nn.Module):
    def __init__(self, cfg: ConanConfig) -> None:
        super().__init__()
        self.n_heads, self.head_dim = cfg.n_heads, cfg.head_dim
        width = cfg.n_heads * cfg.head_dim
        self.q_proj = nn.Linear(cfg.hidden_size, width)
        self.k_proj = nn.Linear(cfg.hidden_size, width)
        self.v_proj = nn.Linear(cfg.hidden_size, width)
        self.o_proj = nn.Linear(width, cfg.hidden_size)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, is_causal: bool) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = (p(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
                   for p in (self.q_proj, self.k_proj, self.v_proj))  # fmt: skip
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)
        return self.o_proj(y.transpose(1, 2).reshape(b, t, -1))


class GeluFFN(nn.Module):
    def __init__(self, cfg: ConanConfig) -> None:
        super().__init__()
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.ffn_size)
        self.down_proj = nn.Linear(cfg.ffn_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.gelu(self.up_proj(x)))


class BertLayer(nn.Module):
    def __init__(self, cfg: ConanConfig) -> None:
        super().__init__()
        self.attn = BertAttention(cfg)
        self.attn_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.norm_eps)
        self.ffn = GeluFFN(cfg)
        self.ffn_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.norm_eps)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, is_causal: bool) -> torch.Tensor:
        x = self.attn_norm(x + self.attn(x, mask, is_causal))
        return self.ffn_norm(x + self.ffn(x))


class BertModel(Backbone):
    """Encoder backbone returning the last layer's hidden states; pooling and prompts come from the config."""

    def __init__(self, config: ConanConfig) -> None:
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.embed_positions = nn.Embedding(config.max_length, config.hidden_size)
        self.embed_norm = nn.LayerNorm(config.hidden_size, eps=config.norm_eps)
        self.layers = nn.ModuleList(BertLayer(config) for _ in range(config.n_layers))
        self.gradient_checkpointing = False
        self.attention_backend = "sdpa"  # the soft mask, if ever asked for, is SDPA's float bias here
        self.init_weights()  # BERT's: no residual scaling

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        mask_mode: str | None = None,
        alpha: float | None = None,
    ) -> torch.Tensor:
        """Hidden states (B, T, hidden) for right-padded ``input_ids`` (B, T); see ConanModel.forward."""
        attention_mask = self.checked_mask(input_ids, attention_mask)
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.embed_norm(self.embed_tokens(input_ids) + self.embed_positions(positions))
        if mask_mode is None:  # the checkpoint's own mask (ConanConfig.inference_mask)
            mask_mode, alpha = self.config.inference_mask()
        mask, is_causal = sdpa_mask(attention_mask, mask_mode, alpha, x.dtype)
        for layer in self.layers:
            if self.gradient_checkpointing and self.training:
                x = checkpoint(layer, x, mask, is_causal, use_reentrant=False)
            else:
                x = layer(x, mask, is_causal)
        return x
