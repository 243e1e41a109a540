"""LLM2Vec's first step as a stage: masked next-token prediction (MNTP) with bidirectional attention.

    python -m train mntp --set init=smollm2-135m --set data='["news_en_raw"]' --set steps=100

LLM2Vec (BehnamGhader et al., 2024) turns a decoder into an encoder in three moves: switch attention to
bidirectional, adapt with MNTP for a short while, then train contrastively. This stage is the first two; the
weak stage with ``mask_schedule = "bidirectional"`` (and ``pooling = "mean"``) is the third, so the recipe is a
peer arm of the soft-mask conversion. Raw text is packed into ``seq_len``-token rows as in pretraining (no mask
between a row's documents: bidirectional, each attends to both neighbours);
``mask_ratio`` of the positions (never the first: nothing precedes it, nor a special token such as the eos
between packed documents, as in LLM2Vec) are chosen, 80% replaced by ``mask_token``, 10% by a random non-special
token, 10% kept, and token i is predicted from the state at position i - 1 through the pretrained LM head.
LLM2Vec trains LoRA adapters; here all weights train.

Each row's mask is drawn from a generator seeded by (seed, step, the row's place in the step's global batch), so a
resumed run masks the same positions, on another number of processes too. The loss is the mean over the step's
masked tokens, however the step is split: each micro-batch's sum over its masked tokens is divided by the count
of the whole step (every micro-batch, every rank; :class:`MaskedSteps`). Before stop 52 (audit) it was each
micro-batch's own mean, averaged, so with ``micro_batch_size`` or under torchrun a micro-batch that drew fewer
masks weighed more, and the gradient was up to 14% (2 x 4 rows) off the one-process step's. The exported
config.json says ``attention = "bidirectional"`` and this stage's ``pooling``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import torch
from tokenizers import Tokenizer
from torch import nn

from conan_model import ConanConfig

from . import loop
from .config import MntpConfig
from .data import JsonlIndex, PackedBatches
from .distributed import Runtime, all_reduce
from .errors import ConfigError
from .metrics import flops_per_token

CONFIG = MntpConfig


def mask_tokens(ids: torch.Tensor, ratio: float, mask_id: int, vocab: int, generator: torch.Generator,
                special: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """(inputs, labels): ``ratio`` of the positions after the first chosen; of those 80% -> ``mask_id``,
    10% -> a random token, 10% unchanged. Labels hold the original token at chosen positions, -100 elsewhere.
    ``special`` ids (eos between packed documents, pad, bos) are never chosen nor drawn as random tokens, as in
    LLM2Vec's collator: they are markers, not text to predict."""
    special = torch.empty(0, dtype=ids.dtype) if special is None else special.to(ids.dtype)
    chosen = (torch.rand(ids.shape, generator=generator) < ratio) & ~torch.isin(ids, special)
    chosen[:, 0] = False
    labels = ids.masked_fill(~chosen, -100)
    action = torch.rand(ids.shape, generator=generator)
    inputs = ids.masked_fill(chosen & (action < 0.8), mask_id)
    swap = chosen & (action >= 0.8) & (action < 0.9)
    allowed = torch.arange(vocab, dtype=ids.dtype)[~torch.isin(torch.arange(vocab, dtype=ids.dtype), special)]
    random_ids = allowed[torch.randint(len(allowed), ids.shape, generator=generator)]
    return torch.where(swap, random_ids, inputs), labels


def first_row(call: int, micro: int, world: int, rank: int) -> int:
    """The place in the step's global batch of this rank's first row at the step's ``call``-th micro-batch: each
    call takes micro x world rows of the stream in order (data.PackedBatches), this rank its micro-th slice."""
    return (call * world + rank) * micro


def mask_rows(batch: torch.Tensor, where: tuple[int, int, int], ratio: float, mask_id: int, vocab: int,
              special: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """``mask_tokens`` row by row, row i seeded by (seed, step, first + i) of ``where``: its place in the step's
    global batch, so the masks do not depend on how the rows are split over processes and micro-batches."""
    seed, step, first = where
    masked = [mask_tokens(row[None], ratio, mask_id, vocab,
                          torch.Generator().manual_seed(hash((seed, step, first + i)) & (2**63 - 1)), special)
              for i, row in enumerate(batch)]  # fmt: skip
    return torch.cat([m[0] for m in masked]), torch.cat([m[1] for m in masked])


MaskFn = Callable[[torch.Tensor, tuple[int, int]], tuple[torch.Tensor, torch.Tensor]]


class MaskedSteps:
    """The packed micro-batches of each step as (inputs, labels, the step's masked count), masked all at once when
    the step's first micro-batch is asked for: the count sums every micro-batch of the step on every rank, so the
    loss each contributes (its masked-token sum over that count) adds up to the step's mean over its masked
    tokens. Checkpoints fall between steps, where nothing is pending: the data state is the packer's."""

    def __init__(self, batches: PackedBatches, accum: int, rt: Runtime, step: int, mask: MaskFn) -> None:
        """``mask(rows, (step, first row's place in the step's global batch))``: (inputs, labels)."""
        self.batches, self.accum, self.rt, self.step, self.mask = batches, accum, rt, step, mask
        self.pending: list[tuple[torch.Tensor, torch.Tensor, float]] = []

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, float]]:
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor, float]:
        if not self.pending:
            rows = [next(self.batches) for _ in range(self.accum)]
            world, rank = self.rt.world_size, self.rt.rank
            masked = [self.mask(batch, (self.step, first_row(call, self.batches.micro, world, rank)))
                      for call, batch in enumerate(rows)]  # fmt: skip
            local = sum(int((labels[:, 1:] != -100).sum()) for _, labels in masked)
            count = all_reduce(local, "sum", self.rt.device)
            self.pending = [(inputs, labels, count) for inputs, labels in masked]
            self.step += 1
        return self.pending.pop(0)

    def state_dict(self) -> dict[str, int]:
        return self.batches.state_dict()

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.batches.load_state_dict(state)


def special_ids(tokenizer: Tokenizer, config: ConanConfig) -> torch.Tensor:
    """The ids MNTP leaves alone: the tokenizer's special tokens and the config's pad/bos/eos."""
    ids = {i for i, token in tokenizer.get_added_tokens_decoder().items() if token.special}
    ids |= {i for i in (config.pad_token_id, config.bos_token_id, config.eos_token_id) if i is not None}
    return torch.tensor(sorted(ids), dtype=torch.long)


def precheck(cfg: MntpConfig, start: ConanConfig) -> None:
    """:func:`loop.precheck` and every row of the data (its ``text_field``), indexed as the stage indexes them:
    `harness ablate` and `harness pipeline` run it before any stage trains."""
    loop.precheck(cfg, start)
    JsonlIndex(cfg.data_files(), required=[cfg.text_field])


@loop.exclusive
def run(cfg: MntpConfig, resume: str | None = None) -> Path:
    """Train, checkpoint, and export ``<output_dir>/final``; ``resume`` is None, 'latest' or a path."""
    rt, ckpt, state = loop.start(cfg, resume)
    index = JsonlIndex(cfg.data_files(), required=[cfg.text_field])
    tokenizer = loop.get_tokenizer(cfg, rt, ckpt, fields=[cfg.text_field])
    mask_id = tokenizer.token_to_id(cfg.mask_token)
    if mask_id is None:
        raise ConfigError(f"mask_token {cfg.mask_token!r} is not a single token of the tokenizer; choose another")
    model = loop.build_model(cfg, tokenizer, ckpt)
    model.config = loop.trained_as(model.config, "bidirectional", pooling=cfg.pooling)
    micro, accum = loop.micro_batches(cfg, rt)
    packed = PackedBatches(index, tokenizer, cfg.seq_len, micro, rt.rank, rt.world_size, cfg.seed, cfg.text_field)
    per_token = flops_per_token(model.config, cfg.seq_len, lm_head=True)
    special = special_ids(tokenizer, model.config)
    if mask_id in special.tolist():
        raise ConfigError(f"mask_token {cfg.mask_token!r} is a special token of the tokenizer; choose a plain one")
    # each row's mask is seeded by its place in the step's global batch (call c of micro x world rows, this rank's
    # slice of it), which is the same row whatever the world size and micro-batch: a resume on another number of
    # processes masks as the uninterrupted run (before stop 48, audit, the seed held the rank)
    vocab = tokenizer.get_vocab_size()
    batches = MaskedSteps(packed, accum, rt, int(state["step"]) if ckpt else 0,
                          lambda rows, where: mask_rows(rows, (cfg.seed, *where), cfg.mask_ratio, mask_id, vocab,
                                                        special))  # fmt: skip

    def step(module: nn.Module, batch: tuple[torch.Tensor, torch.Tensor, float], step: int) -> loop.StepResult:
        inputs, labels, count = batch
        # DDP averages over ranks and the loop over the accumulated micro-batches: scaled back, their mean is the
        # step's masked-token sum over its masked count
        total = module("mntp_loss", inputs.to(rt.device), labels.to(rt.device), reduction="sum")
        loss = total * (rt.world_size * accum / max(count, 1.0))
        return loop.StepResult(loss=loss, value=loss.detach(), tokens=inputs.numel(), flops=per_token * inputs.numel())

    return loop.fit(cfg, rt, model, tokenizer, batches, step, ckpt, state)
