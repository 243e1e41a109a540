"""Stage 1: causal-LM pretraining on raw text (paper §2): packed rows, AdamW with warmup + cosine.

    python -m train configs/pretrain.toml [--set steps=200] [--resume]

Documents (JSONL rows with a "text" field) are tokenized as ``<bos> text <eos>``, concatenated in a seeded
order and cut into ``seq_len``-token rows, with no mask between a row's documents (a document attends to the
one before it); the loss is the mean next-token cross-entropy through the tied LM head. Without a ``tokenizer``
a byte-level BPE is trained on the corpus first and saved with every checkpoint.
The exported config.json says ``attention = "causal"``, as an imported decoder's does, whatever mask an ``init``
declared (soft, bidirectional): evaluated as it is, it embeds the way it was trained (before stop 26 a new model
said bidirectional + mean). A new model also says ``pooling = "last"`` (the eos state); an init keeps its pooling.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from conan_model import ConanConfig

from . import loop
from .config import PretrainConfig
from .data import JsonlIndex, PackedBatches
from .metrics import flops_per_token

CONFIG = PretrainConfig


def precheck(cfg: PretrainConfig, start: ConanConfig) -> None:
    """:func:`loop.precheck` and every row of the data (its ``text_field``), indexed as the stage indexes them:
    `harness ablate` and `harness pipeline` run it before any stage trains."""
    loop.precheck(cfg, start)
    JsonlIndex(cfg.data_files(), required=[cfg.text_field])


@loop.exclusive
def run(cfg: PretrainConfig, resume: str | None = None) -> Path:
    """Train, checkpoint, and export ``<output_dir>/final``; ``resume`` is None, 'latest' or a path."""
    rt, ckpt, state = loop.start(cfg, resume)
    index = JsonlIndex(cfg.data_files(), required=[cfg.text_field])
    tokenizer = loop.get_tokenizer(cfg, rt, ckpt, fields=[cfg.text_field])
    model = loop.build_model(cfg, tokenizer, ckpt)
    # trained causally: exported to embed that way, as imported decoders are, whatever mask an init declared (a
    # soft or bidirectional init otherwise exports a config the harness embeds with another mask than trained);
    # a new decoder also pools its eos state, an init keeps its pooling
    pooling = "last" if cfg.init is None else model.config.pooling
    model.config = loop.trained_as(model.config, "causal", pooling=pooling)
    micro, _ = loop.micro_batches(cfg, rt)
    batches = PackedBatches(index, tokenizer, cfg.seq_len, micro, rt.rank, rt.world_size, cfg.seed, cfg.text_field)
    per_token = flops_per_token(model.config, cfg.seq_len, lm_head=True)

    def step(module: nn.Module, batch: torch.Tensor, step: int) -> loop.StepResult:
        ids = batch.to(rt.device, non_blocking=True)
        loss = module("lm_loss", ids)
        return loop.StepResult(loss=loss, value=loss.detach(), tokens=ids.numel(), flops=per_token * ids.numel())

    return loop.fit(cfg, rt, model, tokenizer, batches, step, ckpt, state)
