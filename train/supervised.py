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

from pathlib import Path

from torch import nn

from conan_model.atomic import atomic_write_json

from . import loop
from .distributed import all_reduce
from .multitask import MultiTaskBatches, StageState, TaskBatch, build_tasks
from .supervised_config import SupervisedConfig
from .supervised_step import Stepper

CONFIG = SupervisedConfig
TEXT_FIELDS = ("query", "positive", "negative", "text", "sentence1", "sentence2")


@loop.exclusive
def run(cfg: SupervisedConfig, resume: str | None = None) -> Path:
    """Train, checkpoint, and export ``<output_dir>/final``; ``resume`` is None, 'latest' or a path."""
    rt, ckpt, state = loop.start(cfg, resume)
    tasks = build_tasks(cfg, rt)
    tokenizer = loop.get_tokenizer(cfg, rt, ckpt, fields=TEXT_FIELDS)
    model = loop.build_model(cfg, tokenizer, ckpt, cfg.max_length)
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
            result.metrics.update(stage.metrics())
            stage.window.clear()
        return result

    if rt.is_main:
        sizes = ", ".join(f"{t.name} ({t.kind}): {len(t.rows)} rows" for t in tasks.values())
        print(f"supervised tasks: {sizes}; MRL dims {dims}", flush=True)
    final = loop.fit(cfg, rt, model, tokenizer, batches, step, ckpt, state, extra=stage)
    if rt.is_main and stage.by_task:
        summary = stage.summary(tasks)
        atomic_write_json(Path(cfg.output_dir) / "dhnm_summary.json", summary)
        for name, s in summary.items():
            print(f"DHNM {name} ({s['mode']}): {s['draws_per_query']:.2f} draws per query seen, "
                  f"{s['replacements']} replacements of {s['checked']} checked slots "
                  f"({100 * s['replacement_rate']:.1f}%), {s['used']} replaced negatives used", flush=True)  # fmt: skip
    return final
