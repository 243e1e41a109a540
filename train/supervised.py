"""Stage 4: supervised multi-task training (paper §3.1.2, §3.4, §4.1; notes §6.2).

    python -m train configs/supervised.toml [--set init=runs/weak/final] [--resume]

Tasks (``[tasks.<name>]`` tables, each with its own ``kind``, data, batch size and mixing weight):
* ``retrieval``: (query, positive[, negative]) rows; InfoNCE over the positive, K hard negatives served by DHNM
  from a pool mined before training (train/mining.py), and in-batch negatives;
* ``clr``: cross-lingual retrieval built by train/clr.py from parallel files; trained like retrieval, with the
  pool mined on the untranslated source query;
* ``classification``: (text, label) rows; InfoNCE with the label text as positive and other label texts
  (K sampled per row, pooled over the batch) as negatives;
* ``sts``: CoSENT on (sentence1, sentence2, score) rows, or on pairs made from (query, positive[, negative])
  rows: (query, positive) scores 1, (query, negative or another row's positive) scores 0.
Each global micro-batch holds one task, drawn by weight from a seeded function of the batch count, so every
rank runs the same task. Attention is bidirectional; every loss is MRL (train/objectives.py) on one forward pass.
Everything else (DDP/FSDP2, checkpoints with DHNM state in ``extra_state``, exact resume, metrics) is train/loop.py.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer
from torch import nn

from conan_model import ConanConfig
from conan_model.atomic import atomic_write_json

from . import loop
from .distributed import all_reduce
from .multitask import MultiTaskBatches, StageState, Task, TaskBatch, build_tasks, check_row_counts
from .supervised_config import SupervisedConfig
from .supervised_step import Stepper

CONFIG = SupervisedConfig
TEXT_FIELDS = ("query", "positive", "negative", "text", "sentence1", "sentence2")
log = logging.getLogger(__name__)
# the texts each kind encodes, with the prompt role they are encoded under (supervised_step.Stepper's builders)
ENCODED = {"retrieval": {"query": "query", "positive": "document", "negative": "document"},
           "sts": {"sentence1": None, "sentence2": None, "query": None, "positive": None, "negative": None},
           "classification": {"text": None}}  # fmt: skip
ENCODED["clr"] = ENCODED["retrieval"]
LENGTH_CHUNK = 8192  # texts tokenized at a time by length_report


POOLED = "pool_candidates"  # length_report's entry for the pool texts DHNM may serve


def served_texts(task: Task) -> Iterator[str]:
    """Every pool text DHNM may serve a row of ``task``: its pool from the first served rank on (the skipped top
    ranks are never served). Before stop 70 (a walk) the length report left them out, and 7 of 87 such texts of a
    SmolLM2 run were cut to max_length without a word."""
    assert task.dhnm is not None
    for pool, qid in zip(task.pools, task.dhnm_ids, strict=True):
        yield from pool[task.dhnm.starts[qid]:]


def length_report(tasks: dict[str, Task], tokenizer: Tokenizer, model_config: Any, max_length: int) -> dict[str, Any]:
    """Per task and text field: how many of its distinct texts are longer than ``max_length`` tokens (prompt,
    <bos> and <eos> counted) and so cut to it when encoded, with the median length. The stage trains on the cut
    texts whatever this says (as the weak stage's on_long='truncate'), but says so: before stop 48 (audit) it cut
    in silence, e.g. every CMRC passage of the DHNM ablation (median 339 tokens) to 64, while the pools were mined
    on the whole texts."""
    report: dict[str, Any] = {}
    for task in tasks.values():
        for field, role in [*ENCODED[task.kind].items(), *([(POOLED, "document")] if task.dhnm else [])]:
            texts = list(dict.fromkeys(served_texts(task) if field == POOLED else
                                       (row[field] for row in task.rows if row.get(field))))  # fmt: skip
            if not texts:
                continue
            prompt = model_config.prompt(role)
            lengths = [len(enc.ids) for start in range(0, len(texts), LENGTH_CHUNK)  # bounded memory at scale
                       for enc in tokenizer.encode_batch([prompt + t for t in texts[start : start + LENGTH_CHUNK]])]
            cut = sum(n > max_length for n in lengths)
            median = float(statistics.median(lengths))
            report.setdefault(task.name, {})[field] = {"texts": len(texts), "longer_than_max_length": cut,
                                                       "median_tokens": median}  # fmt: skip
            if cut:
                log.warning("tasks.%s: %d of %d %s texts (median %g tokens) are longer than max_length %d and "
                            "are cut to it", task.name, cut, len(texts), field, median,
                            max_length)  # fmt: skip
    return report


def precheck(cfg: SupervisedConfig, start: ConanConfig) -> None:
    """:func:`loop.precheck`, `mrl_dims` against the width of ``start``, and every file-read task's rows against
    its batch."""
    loop.precheck(cfg, start)
    cfg.mrl(start.hidden_size)
    check_row_counts(cfg)


@loop.exclusive
def run(cfg: SupervisedConfig, resume: str | None = None) -> Path:
    """Train, checkpoint, and export ``<output_dir>/final``; ``resume`` is None, 'latest' or a path."""
    rt, ckpt, state = loop.start(cfg, resume)
    tasks = build_tasks(cfg, rt)
    tokenizer = loop.get_tokenizer(cfg, rt, ckpt, fields=TEXT_FIELDS)
    model = loop.build_model(cfg, tokenizer, ckpt)
    if ckpt is None and rt.is_main and cfg.init and model.config.attention == "causal":
        # before stop 60 without a word (a user's walk): the recipe moves a decoder by the weak stage's soft mask
        log.warning("init %s attends causally (pretrained or imported, never moved to bidirectional attention): the "
                    "supervised stage attends bidirectionally from its first step, a hard switch, and pools with "
                    "its %r pooling; the recipe moves it first with the weak stage's soft mask (configs/weak.toml)",
                    cfg.init, model.config.pooling)  # fmt: skip
    # trained so: a causal import's export, or a soft mid-schedule weak checkpoint's, must say it
    model.config = loop.trained_as(model.config, "bidirectional")
    loop.check_prompt_room(model.config, tokenizer, cfg.max_length, ("query", "document", None))
    dims, weights = cfg.mrl(model.config.hidden_size)
    batches = MultiTaskBatches(tasks, rt.rank, rt.world_size, cfg.seed)
    stage = StageState(tasks)
    step_fn = Stepper(cfg, rt, model.config, tokenizer, tasks, dims, weights)

    def step(module: nn.Module, batch: TaskBatch, step: int) -> loop.StepResult:
        result = step_fn(module, batch)
        stage.window.setdefault(batch.task, []).append(float(result.value))
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            # averaged over ranks too: a classification loss is each rank's own rows (is_global False); before stop
            # 47 (audit) its log was rank 0's half of the batch, the gathered losses' being the same on every rank
            result.metrics.update({f"loss_{k}": all_reduce(sum(v) / len(v), "mean", rt.device)
                                   for k, v in stage.window.items()})  # fmt: skip
            # the window's tasks, in the order first drawn: before stop 60 the last micro-batch's task alone, beside
            # the window's loss_<task> of others
            result.metrics["task"] = ",".join(stage.window)
            result.metrics.update(stage.metrics())
            stage.window.clear()
        return result

    if rt.is_main:
        sizes = ", ".join(f"{t.name} ({t.kind}): {len(t.rows)} rows" for t in tasks.values())
        print(f"supervised tasks: {sizes}; MRL dims {dims}", flush=True)
        lengths = length_report(tasks, tokenizer, model.config, cfg.max_length)
        atomic_write_json(Path(cfg.output_dir) / "text_lengths.json", {"max_length": cfg.max_length, **lengths})
    final = loop.fit(cfg, rt, model, tokenizer, batches, step, ckpt, state, extra=stage)
    if rt.is_main:  # written with no DHNM task too ({}: every task at K = 0), so no earlier run's file stays
        summary = stage.summary(tasks)
        atomic_write_json(Path(cfg.output_dir) / "dhnm_summary.json", summary)
        for name, s in summary.items():
            print(f"DHNM {name} ({s['mode']}): {s['draws_per_query']:.2f} draws per query seen, "
                  f"{s['replacements']} replacements of {s['checked']} checked slots "
                  f"({100 * s['replacement_rate']:.1f}%), {s['used']} replaced negatives used", flush=True)  # fmt: skip
    return final
