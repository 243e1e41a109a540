"""Stage 3: weakly-supervised contrastive training with the soft mask (paper §3, §6.1).

    python -m train configs/weak.toml [--set init=runs/pretrain/final] [--resume]

Each step embeds the batch's queries and positives in one forward pass and minimises in-batch InfoNCE (Eq. 1) over
the global batch: embeddings are all-gathered across ranks, so every positive in the global batch is a negative for
every other query, except a false one (a row with the same query or the same positive tokens) and a repeat of a
text already counted (train.losses.counted_candidates). The attention mask follows the soft-mask schedule alpha(t)
(Eq. 3-4) from causal at the first step (t = 0) to bidirectional at the last (t = steps - 1): ``mask_schedule``
'linear' (the paper's), 'accelerating', 'decelerating', 'hard' (causal until the last step), or a fixed 'causal' /
'bidirectional'. 'bidirectional' from step 0 is the hard switch at step 0; 'causal' keeps a decoder causal (pair it
with ``pooling = "last"``). The exported config.json records the attention the schedule ends with ('causal' only
for the causal schedule) and ``pooling`` when set, so evaluation embeds the way training ended; a checkpoint saved
mid-schedule records the mask of its last step instead ('soft' with ``attention_alpha``, 'causal' before the hard
switch), so ``conan:<checkpoint>`` embeds the way training had gone so far. An encoder (``arch = "bert"``, never
causal) takes only the 'bidirectional' schedule; a bidirectional decoder start is warned about. Evaluation
(held-out pairs, see ``holdout``) uses that same inference attention. Queries get the model's 'query' prompt and
positives its 'document' prompt (``ConanConfig.prompt``; none for the paper's decoder).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer
from torch import nn

from conan_model import ConanConfig, encode_batch, soft_alpha
from conan_model.tokenizer import pad_batch

from . import loop
from .config import WeakConfig
from .data import JsonlIndex, PairBatch, PairBatches
from .distributed import autocast
from .errors import ConfigError
from .losses import gather_with_grad, info_nce
from .metrics import flops_per_token

CONFIG = WeakConfig
log = logging.getLogger("train")  # the stages' one logger
FIELDS = ("query", "positive")


def mask_for_step(schedule: str, step: int, steps: int) -> tuple[str, float | None, float]:
    """(mask_mode, alpha argument, alpha to log) for 0-based ``step`` of a ``steps``-step stage."""
    if schedule == "causal":
        return "causal", None, 0.0
    if schedule == "bidirectional":
        return "bidirectional", None, 1.0
    alpha = soft_alpha(step, steps - 1, schedule) if steps > 1 else 1.0
    return "soft", alpha, alpha


@torch.no_grad()
def embed_texts(module: nn.Module, tokenizer: Tokenizer, texts: Sequence[str], max_length: int, device: torch.device,
                batch_size: int = 64, attention: str = "bidirectional") -> torch.Tensor:  # fmt: skip
    """(N, D) float32 embeddings in input order under the ``attention`` mask, batches sorted by length."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    parts = []
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        enc = encode_batch(tokenizer, [texts[i] for i in chunk], max_length, device)
        with autocast(device):
            parts.append(module("embed", enc.input_ids, enc.attention_mask, mask_mode=attention).float())
    out = torch.cat(parts)
    return out[torch.argsort(torch.tensor(order, device=out.device))]


def pair_ranking(module: nn.Module, tokenizer: Tokenizer, pairs: Sequence[dict[str, Any]], max_length: int,
                 device: torch.device, attention: str = "bidirectional",
                 prefixes: dict[str, str] | None = None) -> dict[str, float]:  # fmt: skip
    """MRR and recall@1 of each query's positive among all the pairs' positives (cosine similarity)."""
    prefixes = prefixes or {}
    q = embed_texts(module, tokenizer, [prefixes.get("query", "") + p["query"] for p in pairs], max_length, device,
                    attention=attention)  # fmt: skip
    p = embed_texts(module, tokenizer, [prefixes.get("positive", "") + p["positive"] for p in pairs], max_length,
                    device, attention=attention)  # fmt: skip
    sims = q @ p.T
    rank = (sims > sims.diag()[:, None]).sum(dim=1) + 1
    return {"eval_mrr": float((1.0 / rank).mean()), "eval_recall_at_1": float((rank == 1).float().mean())}


@loop.exclusive
def run(cfg: WeakConfig, resume: str | None = None) -> Path:
    """Train, checkpoint, and export ``<output_dir>/final``; ``resume`` is None, 'latest' or a path."""
    rt, ckpt, state = loop.start(cfg, resume)
    index = JsonlIndex(cfg.data_files(), required=FIELDS, optional=("negative",))
    tokenizer = loop.get_tokenizer(cfg, rt, ckpt, fields=FIELDS)
    model = loop.build_model(cfg, tokenizer, ckpt)
    check_start(cfg, model.config, warn=ckpt is None and rt.is_main)
    attention = "causal" if cfg.mask_schedule == "causal" else "bidirectional"
    model.config = dataclasses.replace(model.config, attention=attention, attention_alpha=None,
                                       pooling=cfg.pooling or model.config.pooling)  # fmt: skip
    loop.check_prompt_room(model.config, tokenizer, cfg.max_length, ("query", "document"))
    micro, _ = loop.micro_batches(cfg, rt)
    prefixes = {"query": model.config.prompt("query"), "positive": model.config.prompt("document")}
    batches = PairBatches(index, tokenizer, FIELDS, cfg.max_length, micro, rt.rank, rt.world_size, cfg.seed,
                          cfg.holdout, cfg.bucket_window, cfg.on_long, prefixes)  # fmt: skip
    heldout, repeated = batches.heldout()
    if rt.is_main and cfg.holdout:
        print(f"held out: {len(heldout)} of {cfg.holdout} pairs evaluated ({repeated} share a query or positive text "
              "with a training pair: left out of eval_mrr)", flush=True)  # fmt: skip

    def step(module: nn.Module, batch: PairBatch, step: int) -> loop.StepResult:
        mode, alpha, shown = mask_for_step(cfg.mask_schedule, step, cfg.steps)
        n = len(batch.rows)
        enc = pad_batch(batch.ids["query"] + batch.ids["positive"], rt.device)
        emb = module("embed", enc.input_ids, enc.attention_mask, mask_mode=mode, alpha=alpha)
        # a row whose query or positive repeats another's is no negative of it; a repeated text counts once
        ids = {"query_ids": batch.text_ids("query"), "pos_ids": batch.text_ids("positive")}
        ids = {k: gather_with_grad(v.to(rt.device)) for k, v in ids.items()}  # same shape on every rank
        loss = info_nce(gather_with_grad(emb[:n]), gather_with_grad(emb[n:]), cfg.temperature, **ids)
        tokens = sum(enc.lengths)
        flops = flops_per_token(model.config, enc.input_ids.shape[1], lm_head=False) * tokens
        # Every rank computes the same global loss; x world_size turns the DDP/FSDP gradient mean into the sum.
        return loop.StepResult(loss=loss * rt.world_size, value=loss.detach(), tokens=tokens, flops=flops,
                               metrics={"alpha": shown, "truncated": batches.truncated})  # fmt: skip

    def evaluate(module: nn.Module, step: int) -> dict[str, float]:
        return pair_ranking(module, tokenizer, heldout, cfg.max_length, rt.device, model.config.attention, prefixes)

    def trained_config(done: int) -> ConanConfig:
        """A checkpoint's config after ``done`` steps: the mask of its last trained step, which mid-schedule is
        not the end state the final export declares."""
        mode, alpha, _ = mask_for_step(cfg.mask_schedule, done - 1, cfg.steps)
        if mode == "soft" and alpha in (0.0, 1.0):
            mode, alpha = ("causal" if alpha == 0.0 else "bidirectional"), None
        return dataclasses.replace(model.config, attention=mode, attention_alpha=alpha)

    return loop.fit(cfg, rt, model, tokenizer, batches, step, ckpt, state, evaluate=evaluate if heldout else None,
                    trained_config=trained_config)  # fmt: skip


def precheck(cfg: WeakConfig, start: ConanConfig) -> None:
    """:func:`loop.precheck`, the start's mask against the schedule, and the pairs against one batch of one
    process (the rows are indexed, not tokenized)."""
    loop.precheck(cfg, start)
    check_start(cfg, start, warn=False)
    index = JsonlIndex(cfg.data_files(), required=FIELDS, optional=("negative",))
    PairBatches(index, None, FIELDS, cfg.max_length, cfg.micro_batch_size or cfg.batch_size, holdout=cfg.holdout)


def check_start(cfg: WeakConfig, start: ConanConfig, warn: bool) -> None:
    """The soft mask moves a causally trained decoder to bidirectional attention: an encoder was never causal,
    and a schedule that starts causal would first train it as one (refused); a decoder whose start already
    attends bidirectionally (an MNTP or earlier weak output) is taken back to causal, which ``warn`` says (at a
    fresh start, on rank 0)."""
    if start.arch == "bert" and cfg.mask_schedule != "bidirectional":
        raise ConfigError(f"mask_schedule {cfg.mask_schedule!r}: init {cfg.init!r} is a bidirectional encoder "
                          "(arch 'bert'), never trained causally, and the schedule would train it under a causal "
                          "mask first; set mask_schedule = \"bidirectional\"")  # fmt: skip
    if warn and cfg.init and start.attention == "bidirectional" and cfg.mask_schedule != "bidirectional":
        log.warning("init %s already attends bidirectionally; mask_schedule %r trains it under a causal mask first "
                    "(mask_schedule = \"bidirectional\" continues as it is)", cfg.init, cfg.mask_schedule)
    if warn and cfg.init and start.attention == "soft" and cfg.mask_schedule != "bidirectional":
        log.warning("init %s is a mid-schedule checkpoint (soft mask at alpha %s); mask_schedule %r starts again "
                    "from a causal mask (alpha 0), not from where it stopped (resume its run to continue it)",
                    cfg.init, start.attention_alpha, cfg.mask_schedule)  # fmt: skip
