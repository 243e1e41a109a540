"""The Conan decoder: token embedding, pre-norm blocks (RMSNorm, RoPE, GQA attention via SDPA, SwiGLU FFN),
final RMSNorm. No biases and no separate LM head, which is what makes the 1.4B preset's parameter count match
the paper exactly. The LM head used for pretraining is tied to the token embedding, so it adds no parameters.
Imported Llama/Qwen2-family decoders switch on what they need: QKV biases and an untied ``lm_head``.

Construction allocates nothing but parameters (no position tables or RoPE buffers), so
``with torch.device('meta'): ConanModel(cfg)`` builds the 1.4B model for free.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from .config import ConanConfig
from .flex import FlexMask
from .masks import attention_inputs
from .pooling import l2_normalize, pool


class RMSNorm(nn.Module):
    """Weight-only RMS norm, computed in float32 so bf16 activations keep their scale."""

    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return (x32 * self.weight.float()).to(x.dtype)


def rope_cos_sin(
    seq_len: int, head_dim: int, theta: float, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 (T, head_dim) cos/sin tables, rotate-half layout; recomputed per forward (cheap, no state)."""
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim)
    angles = torch.outer(torch.arange(seq_len, device=device, dtype=torch.float32), inv_freq)
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (B, heads, T, head_dim) by position, in float32."""
    x32 = x.float()
    x1, x2 = x32.chunk(2, dim=-1)
    rotated = torch.cat([-x2, x1], dim=-1)
    return (x32 * cos + rotated * sin).to(x.dtype)


class Attention(nn.Module):
    """Grouped-query attention: n_heads query heads share n_kv_heads key/value heads."""

    def __init__(self, cfg: ConanConfig) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = cfg.n_heads, cfg.n_kv_heads, cfg.head_dim
        self.q_proj = nn.Linear(cfg.hidden_size, cfg.n_heads * cfg.head_dim, bias=cfg.qkv_bias)
        self.k_proj = nn.Linear(cfg.hidden_size, cfg.n_kv_heads * cfg.head_dim, bias=cfg.qkv_bias)
        self.v_proj = nn.Linear(cfg.hidden_size, cfg.n_kv_heads * cfg.head_dim, bias=cfg.qkv_bias)
        self.o_proj = nn.Linear(cfg.n_heads * cfg.head_dim, cfg.hidden_size, bias=False)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor | FlexMask | None,
        is_causal: bool,
    ) -> torch.Tensor:
        b, t, _ = x.shape
        q = self.q_proj(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if isinstance(mask, FlexMask):  # the soft mask inside FlexAttention (GQA native, no T x T bias)
            return self.o_proj(mask.attend(q, k, v).transpose(1, 2).reshape(b, t, -1))
        if mask is not None and self.n_kv_heads != self.n_heads:
            # SDPA's fused kernels reject enable_gqa together with a mask and fall back to the O(T^2)-memory
            # math kernel, so with a mask the KV heads are repeated explicitly instead.
            rep = self.n_heads // self.n_kv_heads
            k, v = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, is_causal=is_causal, enable_gqa=mask is None
        )
        return self.o_proj(y.transpose(1, 2).reshape(b, t, -1))


class SwiGLU(nn.Module):
    def __init__(self, cfg: ConanConfig) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.ffn_size, bias=False)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.ffn_size, bias=False)
        self.down_proj = nn.Linear(cfg.ffn_size, cfg.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, cfg: ConanConfig) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(cfg.hidden_size, cfg.norm_eps)
        self.attn = Attention(cfg)
        self.ffn_norm = RMSNorm(cfg.hidden_size, cfg.norm_eps)
        self.ffn = SwiGLU(cfg)

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor | None,
        is_causal: bool,
    ) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), cos, sin, mask, is_causal)
        return x + self.ffn(self.ffn_norm(x))


class Backbone(nn.Module):
    """What every architecture offers the encoder and the training stages: hidden states from ``forward``
    (input_ids, attention_mask, mask_mode, alpha), pooled embeddings, a parameter count, ``layers`` (a
    ModuleList of blocks: FSDP wraps them, ``init_layers`` cuts them) and the two run-time switches."""

    config: ConanConfig
    layers: nn.ModuleList
    residual_outputs: tuple[str, ...] = ()  # weights scaled by 1/sqrt(2 * n_layers) at init (GPT-2)

    @torch.no_grad()
    def init_weights(self) -> None:
        """Normal(0, init_std) matrices and embeddings, zero biases, unit norm weights; ``residual_outputs``
        scaled down so the residual stream's variance does not grow with depth."""
        std = self.config.init_std
        for name, p in self.named_parameters():
            if name.endswith("norm.weight"):
                p.fill_(1.0)
            elif name.endswith(".bias"):
                p.zero_()
            elif name.endswith(self.residual_outputs):
                p.normal_(0.0, std / math.sqrt(2 * self.config.n_layers))
            else:
                p.normal_(0.0, std)

    def checked_mask(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """The padding mask (all ones when None), after checking the length fits the model."""
        t = input_ids.shape[1]
        if t > self.config.max_length:
            raise ValueError(f"sequence length {t} exceeds max_length {self.config.max_length}")
        return torch.ones_like(input_ids) if attention_mask is None else attention_mask

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def embed(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        mask_mode: str | None = None,
        alpha: float | None = None,
        pooling: str | None = None,
        normalize: bool = True,
    ) -> torch.Tensor:
        """Pooled (B, hidden) float32 sentence embeddings; mask and pooling default to the config's."""
        hidden = self(input_ids, attention_mask, mask_mode=mask_mode, alpha=alpha)
        emb = pool(hidden, attention_mask, pooling or self.config.pooling)
        return l2_normalize(emb) if normalize else emb


def model_for(config: ConanConfig) -> Backbone:
    """The module ``config.arch`` names, freshly initialised (use under ``torch.device('meta')`` to load)."""
    if config.arch == "bert":
        from .bert import BertModel

        return BertModel(config)
    return ConanModel(config)


class ConanModel(Backbone):
    """Decoder backbone returning final-normed hidden states; the mask mode decides causal vs bidirectional.

    Set ``gradient_checkpointing = True`` to recompute each block in backward (saves activation memory), and
    ``attention_backend`` to 'auto' (default), 'flex' or 'sdpa' to choose how a soft mask is applied
    (:func:`conan_model.masks.attention_inputs`); both are run-time choices, not part of the checkpoint.
    """

    residual_outputs = ("o_proj.weight", "down_proj.weight")

    def __init__(self, config: ConanConfig) -> None:
        super().__init__()
        self.config = config
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.norm = RMSNorm(config.hidden_size, config.norm_eps)
        if not config.tie_word_embeddings:
            self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self.gradient_checkpointing = False
        self.attention_backend = "auto"
        self.init_weights()

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        mask_mode: str | None = None,
        alpha: float | None = None,
    ) -> torch.Tensor:
        """Hidden states (B, T, hidden) for right-padded ``input_ids`` (B, T).

        mask_mode: 'bidirectional' (embedding stages), 'causal' (LM pretraining) or 'soft' with ``alpha`` in
        [0, 1] from :func:`conan_model.masks.soft_alpha` (weakly-supervised stage); None: ``config.attention``.
        """
        attention_mask = self.checked_mask(input_ids, attention_mask)
        t = input_ids.shape[1]
        x = self.embed_tokens(input_ids)
        if mask_mode is None:  # the checkpoint's own mask (ConanConfig.inference_mask)
            mask_mode, alpha = self.config.inference_mask()
        mask, is_causal = attention_inputs(attention_mask, mask_mode, alpha, x.dtype,
                                           self.attention_backend)  # fmt: skip
        cos, sin = rope_cos_sin(t, self.config.head_dim, self.config.rope_theta, input_ids.device)
        for layer in self.layers:
            if self.gradient_checkpointing and self.training:
                x = checkpoint(layer, x, cos, sin, mask, is_causal, use_reentrant=False)
            else:
                x = layer(x, cos, sin, mask, is_causal)
        return self.norm(x)

    def lm_logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Next-token logits from hidden states: the tied head (token embedding matrix) or ``lm_head``."""
        weight = self.embed_tokens.weight if self.config.tie_word_embeddings else self.lm_head.weight
        return F.linear(hidden, weight)

    def lm_loss(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Mean causal-LM cross-entropy over real next tokens (padding targets are ignored)."""
        targets = input_ids[:, 1:]
        if attention_mask is not None:
            targets = targets.masked_fill(attention_mask[:, 1:] == 0, -100)
        return self.shifted_loss(input_ids, attention_mask, targets, "causal")

    def mntp_loss(self, input_ids: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """LLM2Vec's masked next-token prediction: bidirectional attention over ``input_ids`` (some tokens
        replaced), and the token at position i (``labels[:, i]``, -100 where not masked) is predicted from the
        state at position i - 1, so the pretrained next-token head is reused as is. ``reduction="sum"``: the
        stage divides by the masked count of its whole step (train/mntp.py)."""
        return self.shifted_loss(input_ids, None, labels[:, 1:], "bidirectional", reduction)

    def shifted_loss(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, targets: torch.Tensor,
                     mask_mode: str, reduction: str = "mean") -> torch.Tensor:  # fmt: skip
        """Cross-entropy (mean, or ``reduction``) of the logits at positions 0..T-2 against ``targets`` (B, T-1;
        -100 ignored)."""
        hidden = self(input_ids, attention_mask, mask_mode=mask_mode)
        logits = self.lm_logits(hidden[:, :-1])
        return F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=-100,
                               reduction=reduction)  # fmt: skip
