"""The training loop every stage shares: start-up, tokenizer, model, optimizer, accumulation, logging,
checkpoints and exact resume. A stage supplies batches and a step function; see pretrain.py and weak.py.

    rt, ckpt, state = start(cfg, resume)                  # threads, process group, resume check
    tok = get_tokenizer(cfg, rt, ckpt, fields=["text"])   # checkpoint's, init's, given, or trained here
    model = build_model(cfg, tok, ckpt)                   # preset/init/checkpoint weights, seeded
    fit(cfg, rt, model, tok, batches, step_fn, ckpt, state, evaluate=..., extra=...)

``batches`` and ``extra`` follow the state_dict()/load_state_dict() protocol with JSON-able states: their
states go into each checkpoint's state.json and come back on resume (``extra`` is the hook for a stage's own
state, e.g. DHNM pointers).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import logging
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from tokenizers import Tokenizer
from torch import nn

from conan_model import PRESETS, ConanConfig, ConanModel, load_tokenizer, synchronize
from conan_model import train_tokenizer as train_bbpe
from conan_model.atomic import atomic_write_json
from conan_model.device import device_problem
from conan_model.importing import ModelImportError, init_config, init_model, init_tokenizer
from conan_model.masks import SCHEDULES, flex_training_problem, soft_alpha
from conan_model.modeling import Backbone, model_for

from . import checkpoint as ckpt_io
from .config import StageConfig
from .distributed import (
    Runtime,
    all_reduce,
    autocast,
    barrier,
    compute_dtype_note,
    grad_sync,
    init_runtime,
    rounding_note,
    wrap,
)
from .errors import ConfigError, ResumeError, TrainError
from .metrics import MetricsLog, peak_tflops

log = logging.getLogger("train")


class Stateful(Protocol):
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass
class StepResult:
    """What a stage's step function returns for one micro-batch on one rank."""

    loss: torch.Tensor  # backward target; its DDP/FSDP average over ranks must be the global loss
    value: torch.Tensor  # loss value to log (averaged over micro-batches and ranks)
    tokens: int  # real tokens this rank processed
    flops: float = 0.0  # training FLOPs this rank spent, for MFU
    metrics: dict[str, float] = field(default_factory=dict)  # logged as is (e.g. alpha)


StepFn = Callable[[nn.Module, Any, int], StepResult]  # (wrapped module, batch, 0-based step) -> result
EvalFn = Callable[[nn.Module, int], dict[str, float]]  # (wrapped module, completed steps) -> metrics


LOCK_NAME = ".train.lock"


@contextlib.contextmanager
def output_dir_lock(output_dir: str | Path) -> Iterator[None]:
    """Hold ``<output_dir>/.train.lock`` (an exclusive flock, which the kernel drops even on kill -9): two runs
    writing one output_dir (two pipelines sharing it, a second `--resume` while the first still trains) both
    resumed from the same checkpoint and overwrote each other's checkpoints and final export. The second is
    refused. Only rank 0 of a torchrun job takes it: its ranks share the folder."""
    if os.environ.get("RANK", "0") != "0":
        yield
        return
    path = Path(output_dir)
    made = [folder for folder in (path, *path.parents) if not folder.exists()]  # deepest first
    try:
        path.mkdir(parents=True, exist_ok=True)
        handle = open(path / LOCK_NAME, "a")  # noqa: SIM115 (closed by the `with` below)
    except OSError as exc:  # not writable (permissions, a read-only disk): a traceback before stop 60
        raise ConfigError(f"output_dir {path}: cannot be written ({exc.strerror or exc})") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(f"output_dir {path} is in use: another training process holds {path / LOCK_NAME}; "
                              "wait for it to finish, or set another output_dir") from None  # fmt: skip
        try:
            yield
        except Exception:  # refused before any work: the folders this run made, holding only the lock, go with it
            if made and [p.name for p in path.iterdir()] == [LOCK_NAME]:
                (path / LOCK_NAME).unlink()
                for folder in made:
                    try:
                        folder.rmdir()
                    except OSError:  # another run put something there meanwhile: it stays
                        break
            raise


def exclusive(run: Callable[..., Path]) -> Callable[..., Path]:
    """A stage's ``run(cfg, resume)`` under :func:`output_dir_lock` of ``cfg.output_dir``, once a device this
    machine lacks has been refused (before any work: not even the output_dir is made)."""

    @functools.wraps(run)
    def locked(cfg: StageConfig, resume: str | None = None) -> Path:
        if cfg.device is not None and (problem := device_problem(cfg.device)):
            where = f"{cfg.device_source}: " if cfg.device_source else ""  # (a walk, stop 66: named no source)
            raise ConfigError(f"{where}device = {cfg.device!r}: {problem}; set device = 'cpu', or 'auto' for the "
                              "best available")  # fmt: skip
        with output_dir_lock(cfg.output_dir):
            return run(cfg, resume)

    return locked


def takes_soft_steps(cfg: StageConfig) -> bool:
    """Whether a stage trains a step under a soft mask (0 < alpha < 1), the only steps the flex backend runs: a
    weak stage on a gradual schedule."""
    schedule = getattr(cfg, "mask_schedule", None)
    steps = range(1, cfg.steps - 1)  # the first and last steps are causal and bidirectional on every schedule
    return schedule in SCHEDULES and any(0 < soft_alpha(s, cfg.steps - 1, schedule) < 1 for s in steps)


def start(cfg: StageConfig, resume: str | None = None) -> tuple[Runtime, Path | None, dict[str, Any]]:
    """Threads, process group and device, and the global batch split over the processes (:func:`micro_batches`);
    the checkpoint to resume from (checked against ``cfg`` and the data's
    contents; what an interrupted save or final export left is tidied first) and its state, which carries the data
    hashes taken now into every checkpoint :func:`fit` saves; on a fresh start, the model it is to build
    (:func:`check_fresh_model`). (A device this machine lacks was refused by :func:`exclusive`, before any work.)"""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    rt = init_runtime(cfg.device)
    micro_batches(cfg, rt)  # before the tokenizer is trained: before stop 66 it was, and left in output_dir
    if cfg.parallel == "fsdp" and not rt.distributed:  # (a walk, stop 66: said nothing)
        log.warning("parallel = 'fsdp' has no effect in one process: the model is sharded only under torchrun "
                    "with several processes")  # fmt: skip
    # before stop 60 flex on the CPU was taken, and the first soft step was a NotImplementedError traceback; a stage
    # without one (pretrain, a fixed or `hard` mask) never runs flex and keeps the setting (review)
    if cfg.attention_backend == "flex" and takes_soft_steps(cfg) and (problem := flex_training_problem(rt.device)):
        raise ConfigError(f"attention_backend = 'flex' on {rt.device}: {problem}; set attention_backend = 'sdpa', "
                          "or 'auto' (flex on CUDA from 1024 tokens)")  # fmt: skip
    if rt.is_main:  # first: a finished model (or checkpoint) put back is one resolve_resume sees
        put_back, refused = ckpt_io.put_back_checkpoints(cfg.output_dir)
        for line in [*ckpt_io.clear_final_leftovers(cfg.output_dir), *put_back, *refused]:
            log.warning("%s", line)
    barrier()
    path = ckpt_io.resolve_resume(resume, cfg.output_dir, cfg.to_dict(), cfg.resume_safe, cfg.resume_view)
    if rt.is_main:
        removed, refused = ckpt_io.remove_leftovers(cfg.output_dir, keep=path)
        if removed:
            log.warning("removed what an interrupted checkpoint save left in %s: %s",
                        Path(cfg.output_dir) / ckpt_io.CHECKPOINTS, "; ".join(removed))  # fmt: skip
        for line in refused:
            log.warning("%s", line)
    barrier()
    data = cfg.data_hashes()
    state = (ckpt_io.check_resume_config(path, cfg.to_dict(), data, cfg.resume_safe, rt.rank, cfg.resume_view)
             if path else {})  # fmt: skip
    if path is None:
        check_fresh_model(cfg)
    state["data_hashes"] = data
    return rt, path, state


def check_fresh_model(cfg: StageConfig) -> None:
    """What a fresh start refuses of the model it is to build, read without a weight: an unusable ``init``,
    :func:`precheck` (``init_layers``, ``freeze``) on the init's config, and the stage's tokens per sequence beyond
    the model's positions. :func:`start` runs it before a stage's own work: before stop 66 the supervised stage
    mined its pools first and left them in output_dir. (A resume builds the checkpoint's model, which its run
    checked: none of these keys may change on resume.)"""
    if cfg.init:
        with _init_errors(cfg.init):
            config = init_config(cfg.init)
        precheck(cfg, config)
        positions, model = config.max_length, f"init {cfg.init!r}"
    else:
        positions = {**PRESETS[cfg.model], **cfg.model_overrides}["max_length"]
        model = f"model {cfg.model!r}" + (f" with model_overrides {cfg.model_overrides}" if cfg.model_overrides else "")
    length = getattr(cfg, cfg.length_key)
    if length > positions:  # before stop 66: "sequence length 9000 exceeds the model's max_length 8192"
        raise ConfigError(f"{cfg.length_key} = {length} exceeds the {positions} positions of {model}; set "
                          f"{cfg.length_key} to at most {positions}")  # fmt: skip


def recorded_config(cfg: StageConfig, rt: Runtime, trained: list[dict[str, int]] | None = None) -> dict[str, Any]:
    """What train_config.json holds: the config and the number of processes (``launch_keys``), which the weights
    depend on (rounding, a weak stage's negatives) and the config does not say (before stop 61 it was not kept).
    ``trained`` (final/'s record, :func:`trained_world_sizes`): the processes that trained the weights, not this
    start's: `world_size` is the one that trained the last steps, and `world_sizes` lists each span where more
    than one did (before stop 66 a re-export under torchrun of a 1-process run recorded 2)."""
    record = {**cfg.to_dict(), "world_size": trained[-1]["world_size"] if trained else rt.world_size}
    return record | ({"world_sizes": trained} if trained and len(trained) > 1 else {})


def trained_world_sizes(state: dict[str, Any], step: int, world: int) -> list[dict[str, int]]:
    """The spans ``{"from_step", "to_step", "world_size"}`` of processes that trained the weights up to ``step``:
    the resumed checkpoint's (``state``; one saved before stop 66 records only its saver's `world_size`, taken for
    all its steps) and this start's steps past it at ``world``. Kept in each checkpoint's state.json."""
    done = int(state.get("step", 0))
    spans = [dict(span) for span in state.get("world_sizes") or []]
    if not spans and done and "world_size" in state:
        spans = [{"from_step": 1, "to_step": done, "world_size": int(state["world_size"])}]
    if step > done and spans and spans[-1]["world_size"] == world:
        spans[-1]["to_step"] = step
    elif step > done:
        spans.append({"from_step": done + 1, "to_step": step, "world_size": world})
    return spans


def record_config(cfg: StageConfig, rt: Runtime) -> None:
    """``<output_dir>/train_config.json``, the config of the latest start. Written by :func:`fit`, once tokenizer
    and model are built and a resume accepted, so a run refused before (a bad ``init``, a checkpoint that does not
    fit) keeps the last run's record; atomic, so a failed write (a full disk) keeps it whole too."""
    atomic_write_json(Path(cfg.output_dir) / "train_config.json", recorded_config(cfg, rt))


def micro_batches(cfg: StageConfig, rt: Runtime) -> tuple[int, int]:
    """(per-rank micro-batch, accumulation steps) that make up the global ``batch_size``; a stage whose batches
    are sized per task (supervised) has no global one and no accumulation: (0, 1)."""
    if cfg.per_task_batches:
        return 0, 1
    if cfg.batch_size % rt.world_size:  # before stop 61 named an unset micro_batch_size; before stop 69 it hinted
        # at micro_batch_size, which cannot help: it splits each process's share, which must be whole first (a walk)
        below = cfg.batch_size - cfg.batch_size % rt.world_size
        near = " or ".join(str(n) for n in (below, below + rt.world_size) if n > 0)
        raise ConfigError(f"batch_size {cfg.batch_size} is not divisible by {rt.world_size} processes; use a "
                          f"multiple of {rt.world_size} ({near})")  # fmt: skip
    micro = cfg.micro_batch_size or cfg.batch_size // rt.world_size
    if micro < 1 or cfg.batch_size % (micro * rt.world_size):
        raise ConfigError(f"batch_size {cfg.batch_size} is not a multiple of micro_batch_size {micro} x "
                          f"{rt.world_size} processes")  # fmt: skip
    return micro, cfg.batch_size // (micro * rt.world_size)


def get_tokenizer(cfg: StageConfig, rt: Runtime, ckpt: Path | None, fields: Sequence[str]) -> Tokenizer:
    """The checkpoint's tokenizer when resuming, else init's, else ``cfg.tokenizer``, else a BBPE trained
    on the ``fields`` of the stage's data (rank 0 trains and saves ``<output_dir>/tokenizer.json``)."""
    if ckpt is not None:
        return ckpt_io.tokenizer_of(ckpt)
    if cfg.init and cfg.tokenizer:
        raise ConfigError("set either init (its tokenizer is used) or tokenizer, not both")
    unused = [f"{f.name} = {getattr(cfg, f.name)}" for f in dataclasses.fields(cfg)
              if f.name in ("tokenizer_vocab", "tokenizer_rows") and getattr(cfg, f.name) != f.default]  # fmt: skip
    if (cfg.init or cfg.tokenizer) and unused and rt.is_main:  # (audit, stop 54: recorded without a word)
        log.warning("%s: unused, %s brings its own tokenizer (a BBPE is trained only without `init` and "
                    "`tokenizer`)", ", ".join(unused), cfg.init or cfg.tokenizer)  # fmt: skip
    if cfg.init:
        with _init_errors(cfg.init):
            return init_tokenizer(cfg.init)
    if cfg.tokenizer:
        return load_tokenizer(cfg.tokenizer)
    path = Path(cfg.output_dir) / "tokenizer.json"
    if rt.is_main:
        start_time = time.perf_counter()
        tok = train_bbpe(cfg.data_files(), cfg.tokenizer_vocab, fields, cfg.tokenizer_rows, save_path=path)
        print(f"trained a {tok.get_vocab_size()}-token BBPE on {len(cfg.data_files())} file(s) in "
              f"{time.perf_counter() - start_time:.1f}s -> {path}", flush=True)  # fmt: skip
        if tok.get_vocab_size() < cfg.tokenizer_vocab:  # the text ran out of merges: said, not silently smaller
            log.warning("the tokenizer has %d tokens, fewer than tokenizer_vocab %d: the text it was trained on "
                        "(tokenizer_rows %s per file) holds no more merges; give more rows or a smaller vocabulary",
                        tok.get_vocab_size(), cfg.tokenizer_vocab, cfg.tokenizer_rows)  # fmt: skip
    barrier()
    return load_tokenizer(path)


LM_STAGES = ("pretrain", "mntp")  # stages that need the decoder's language-model head


def build_model(cfg: StageConfig, tokenizer: Tokenizer, ckpt: Path | None) -> Backbone:
    """fp32 master weights: the checkpoint's when resuming, else init's, else a seeded fresh preset (its length
    against its positions was checked by :func:`start`)."""
    torch.manual_seed(cfg.seed)
    if ckpt is not None:
        config = ckpt_io.config_of(ckpt)
        with torch.device("meta"):
            model = model_for(config)
        model = model.to_empty(device="cpu")
        ckpt_io.load_model_weights(ckpt, model)
    elif cfg.init:
        with _init_errors(cfg.init):
            model = init_model(cfg.init)
        if cfg.init_layers is not None:
            model = keep_first_layers(model, cfg.init_layers, cfg.init)
    else:
        overrides = {"vocab_size": tokenizer.get_vocab_size(), **cfg.model_overrides}
        try:
            model = ConanModel(ConanConfig.preset(cfg.model, **overrides))
        except (TypeError, ValueError) as e:
            raise ConfigError(f"model_overrides {cfg.model_overrides}: {e}") from e
    if cfg.stage in LM_STAGES and model.config.arch != "decoder":
        raise ConfigError(f"the {cfg.stage} stage trains next-token prediction, which an arch "
                          f"{model.config.arch!r} model ({cfg.init}) has no head for: start it from a decoder")
    freeze(model, [*cfg.freeze, *unused_heads(model, cfg.stage)])
    return model.train()


def precheck(cfg: StageConfig, start: ConanConfig) -> None:
    """What a stage's start refuses that is known before a weight is read: ``init_layers`` against the depth of
    ``start`` (the config the stage builds its model from) and ``freeze`` against its parameter names, on a
    meta-device skeleton. `harness ablate` runs every unit's precheck when it opens, so a typo in the last arm's
    overrides does not wait for the earlier arms to train (a stage module may extend it with its data's checks)."""
    with torch.device("meta"):
        model = model_for(start)
    if cfg.init and cfg.init_layers is not None:
        model = keep_first_layers(model, cfg.init_layers, cfg.init)
    freeze(model, [*cfg.freeze, *unused_heads(model, cfg.stage)])


def unused_heads(model: Backbone, stage: str) -> list[str]:
    """Parameter prefixes this stage's loss never reaches: an untied ``lm_head`` outside the LM stages. Frozen,
    they are no unused trainable parameter (which DDP's reducer aborts on) and are exported unchanged."""
    return ["lm_head"] if stage not in LM_STAGES and hasattr(model, "lm_head") else []


def trained_as(config: ConanConfig, attention: str, **changes: Any) -> ConanConfig:
    """``config`` declaring the fixed mask a stage trains with, so the export embeds as it was trained. The soft
    ``attention_alpha`` an init may carry (a mid-schedule weak checkpoint) goes: ConanConfig refuses it with
    any other mask."""
    return dataclasses.replace(config, attention=attention, attention_alpha=None, **changes)


def check_prompt_room(config: ConanConfig, tokenizer: Tokenizer, max_length: int, roles: Sequence[str | None]) -> None:
    """Refuse a ``max_length`` that a role's prompt and <bos>/<eos> already fill: every text would be cut away and
    each row train as the same input (a weak run logged loss 0 and held-out MRR 1). The harness's encoder refuses
    such a limit at evaluation (``ConanEncoder``); training now does before the first step."""
    for role in roles:
        prompt = config.prompt(role)
        fixed = len(tokenizer.encode(prompt).ids)
        if fixed >= max_length:
            raise ConfigError(f"max_length {max_length} leaves no room for the text: the model's {role or 'default'} "
                              f"prompt {prompt!r} and <bos>/<eos> take {fixed} tokens; raise max_length")  # fmt: skip


def freeze(model: nn.Module, prefixes: Sequence[str]) -> None:
    """Keep the parameters under each name prefix fixed (no gradient, no optimizer state, exported unchanged).
    A prefix that names no parameter is a config error, so a typo cannot silently train everything."""
    params = dict(model.named_parameters())
    for prefix in prefixes:
        hits = [n for n in params if n == prefix or n.startswith(prefix + ".")]
        if not hits:
            raise ConfigError(f"freeze: {prefix!r} names no parameter; top-level names are "
                              f"{sorted({n.split('.')[0] for n in params})}")  # fmt: skip
        for name in hits:
            params[name].requires_grad_(False)


def keep_first_layers(model: Backbone, n: int, spec: str) -> Backbone:
    """The bottom ``n`` blocks of a pretrained model (a decoder keeps its final norm and its tied/untied head): a
    smaller model that is still pretrained, for runs the CPU can afford (the report says so)."""
    if n > model.config.n_layers:
        raise ConfigError(f"init_layers={n} but init {spec!r} has only {model.config.n_layers} layers")
    model.layers = model.layers[:n]
    model.config = dataclasses.replace(model.config, n_layers=n)
    return model


@contextlib.contextmanager
def _init_errors(spec: str) -> Iterator[None]:
    """An unusable ``init`` (missing folder, unsupported model, bad tensor) is a config error: exit 2."""
    try:
        yield
    except (ModelImportError, FileNotFoundError, ValueError) as e:
        raise ConfigError(f"init {spec!r}: {e}") from e


def build_optimizer(module: nn.Module, cfg: StageConfig) -> torch.optim.AdamW:
    """AdamW; weight decay on matrices (projections, embedding), none on norm weights.

    Fused (one kernel for every parameter's update) where all parameters are plain CUDA tensors: the update of a
    1.4B model is memory-bound, and the foreach path's several passes over weights, moments and gradients cost
    MFU on an H200 (compiled pretrain 43.5% -> 49.9%, docs/conan_model.md). FSDP2's sharded (DTensor) parameters
    and the CPU keep torch's default update (foreach on CUDA, per tensor on the CPU), whose numerics every CPU run
    and ablation report was made with. A resumed run re-applies this choice (`keep_update_kernel`)."""
    params = [p for p in module.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]  # fmt: skip
    fused = bool(params) and all(p.is_cuda and type(p.data) is torch.Tensor for p in params)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps, fused=fused or None)


def keep_update_kernel(optimizer: torch.optim.Optimizer) -> None:
    """A loaded optimizer state brings the saved run's ``fused``/``foreach`` per group; this run's parameters decide
    them (`build_optimizer`), so a CUDA checkpoint resumed on the CPU or under FSDP2 does not run fused AdamW."""
    for group in optimizer.param_groups:
        for key in ("fused", "foreach"):
            group[key] = optimizer.defaults.get(key)


def lr_factor(step: int, steps: int, warmup_ratio: float, min_lr_ratio: float) -> float:
    """Multiplier of the peak LR at 0-based ``step``: linear warmup, then cosine down to ``min_lr_ratio``."""
    warmup = math.ceil(round(warmup_ratio * steps, 9))  # 0.07 x 100 is 7.000000000000001 in floats: 7 steps
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup - 1)
    return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def check_finite(loss_sum: float, grad_norm: torch.Tensor, step: int) -> float:
    """The step's gradient norm, after stopping before an update from a non-finite loss or gradient: it would put
    NaN in the weights, and from there in every later checkpoint and the exported model; the last checkpoint
    written stays the last good one.

    ``loss_sum`` (the log window's, summed over ranks) and the clipped-over norm are the same on every rank, so
    all ranks stop together."""
    norm = float(grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm)
    if not (math.isfinite(loss_sum) and math.isfinite(norm)):
        raise TrainError(f"non-finite training at step {step} (loss sum {loss_sum}, grad norm {norm}); lower lr or "
                         "check the data. Nothing was saved after the last checkpoint")
    return norm


def fit(cfg: StageConfig, rt: Runtime, model: Backbone, tokenizer: Tokenizer, batches: Iterator[Any],
        step_fn: StepFn, ckpt: Path | None = None, state: dict[str, Any] | None = None,
        evaluate: EvalFn | None = None, extra: Stateful | None = None,
        trained_config: Callable[[int], ConanConfig] | None = None) -> Path:  # fmt: skip
    """Run ``cfg.steps`` optimizer steps (from the checkpoint's step when resuming); returns ``<out>/final``.

    ``trained_config(step)``: the config a checkpoint after ``step`` steps is saved with, where it is not the
    final one (the weak stage's mask mid-schedule); the final export always takes ``model.config``."""
    out = Path(cfg.output_dir)
    _, accum = micro_batches(cfg, rt)
    model.gradient_checkpointing, model.attention_backend = cfg.gradient_checkpointing, cfg.attention_backend
    module = wrap(model, rt, cfg.parallel, compile=cfg.compile)
    optimizer = build_optimizer(module, cfg)
    schedule = functools.partial(lr_factor, steps=cfg.steps, warmup_ratio=cfg.warmup_ratio,
                                 min_lr_ratio=cfg.min_lr_ratio)  # fmt: skip
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    step = 0
    if ckpt is not None:
        ckpt_io.load_training_state(ckpt, module, optimizer, scheduler, rt)
        keep_update_kernel(optimizer)
        with ckpt_io.reading(ckpt, ckpt_io.STATE_NAME):  # the data position and extra state it holds
            try:
                batches.load_state_dict(state["data"])
                if extra is not None:
                    extra.load_state_dict(state["extra_state"])
            except ResumeError as e:  # a state that does not fit this run: say which checkpoint holds it
                raise ResumeError(f"cannot resume from {ckpt}: {e}") from e
            step = int(state["step"])
        if rt.is_main:  # a finished run resumed says so: it only writes final/ again (a walk, stop 66: unsaid)
            left = (f"nothing left to train (steps = {cfg.steps}): final/ is written again from it" if step >= cfg.steps
                    else f"{cfg.steps - step} step(s) to go")  # fmt: skip
            saved = int(state.get("world_size", rt.world_size))
            moved = (f" (saved by {saved} process{'es' if saved > 1 else ''}, resumed on {rt.world_size})"
                     if saved != rt.world_size else "")  # fmt: skip
            print(f"resumed from {ckpt} at step {step}{moved}; {left}", flush=True)
    if rt.is_main:  # after a resume is accepted: a refused one keeps the record too
        record_config(cfg, rt)
    if rt.is_main and evaluate is None and cfg.eval_every:  # (audit, stop 54: said nothing)
        log.warning("eval_every = %d has no effect: the %s stage evaluates nothing here (the weak stage evaluates "
                    "its `holdout` pairs)", cfg.eval_every, cfg.stage)  # fmt: skip
    metrics = MetricsLog(out / "metrics.jsonl", rt.is_main, step if ckpt else None, cfg.steps)
    peak = peak_tflops(rt.device, cfg.peak_tflops)
    if rt.is_main:
        print(f"compute: {compute_dtype_note(rt.device)}", flush=True)
        if step < cfg.steps and (note := rounding_note(rt)):  # a re-export trains no step to round
            print(note, flush=True)
    if evaluate is not None and step == 0:
        metrics.write({"step": 0, **evaluate(module, 0)})

    def save(step: int) -> None:
        # The log window open at a checkpoint off a log boundary is saved too, so the first line a resumed run
        # logs averages the same steps as the uninterrupted run's (ranks' sums are averaged: the log is a mean).
        window = {"loss_sum": all_reduce(loss_sum, "mean", rt.device), "micro_count": micro_count,
                  "tokens": tokens, "flops": flops, "steps": steps_in_window,
                  "elapsed": time.perf_counter() - window_start}  # fmt: skip
        saved = {"stage": cfg.stage, "config": cfg.to_dict(), "data_hashes": (state or {}).get("data_hashes"),
                 "data": batches.state_dict(),
                 "extra_state": extra.state_dict() if extra is not None else {}, "log_window": window,
                 "world_sizes": trained_world_sizes(state or {}, step, rt.world_size)}  # fmt: skip
        config = trained_config(step) if trained_config is not None else model.config
        ckpt_io.save_checkpoint(out, step, module, config, tokenizer, optimizer, scheduler, rt, saved,
                                cfg.keep_last)  # fmt: skip

    loss_sum, micro_count, tokens, flops, steps_in_window = torch.zeros((), device=rt.device), 0, 0, 0.0, 0
    window_start = time.perf_counter()
    if ckpt is not None and state and state.get("log_window"):  # older checkpoints lack it (shorter first window)
        w = state["log_window"]
        loss_sum += w["loss_sum"]
        micro_count, tokens, flops, steps_in_window = w["micro_count"], w["tokens"], w["flops"], w["steps"]
        window_start -= w["elapsed"]
    while step < cfg.steps:
        for i in range(accum):
            batch = next(batches)
            with grad_sync(module, i == accum - 1):
                with autocast(rt.device):
                    result = step_fn(module, batch, step)
                (result.loss / accum).backward()
            loss_sum += result.value.detach().float()
            micro_count, tokens, flops = micro_count + 1, tokens + result.tokens, flops + result.flops
        lr = optimizer.param_groups[0]["lr"]
        grad_norm = torch.nn.utils.clip_grad_norm_(module.parameters(), cfg.grad_clip or math.inf)
        norm = check_finite(all_reduce(loss_sum, "sum", rt.device), grad_norm, step + 1)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step, steps_in_window = step + 1, steps_in_window + 1
        if step % cfg.log_every == 0 or step == cfg.steps:
            synchronize(rt.device)
            elapsed = time.perf_counter() - window_start
            loss = all_reduce(loss_sum / micro_count, "mean", rt.device)
            total_tokens = all_reduce(tokens, "sum", rt.device)
            total_flops = all_reduce(flops, "sum", rt.device)
            row = {"step": step, "loss": loss, "lr": lr, "grad_norm": norm,
                   "tokens_per_s": total_tokens / elapsed, "step_time": elapsed / steps_in_window,
                   "mfu": total_flops / elapsed / (peak * 1e12 * rt.world_size) if peak else None,
                   **result.metrics}  # fmt: skip
            metrics.write(row)
            loss_sum.zero_()
            micro_count, tokens, flops, steps_in_window = 0, 0, 0.0, 0
        # evaluate before saving: a run killed between the two resumes from the previous checkpoint and redoes
        # both, where one killed after the save would resume past the evaluation and never log it
        if evaluate is not None and ((cfg.eval_every and step % cfg.eval_every == 0) or step == cfg.steps):
            metrics.write({"step": step, **evaluate(module, step)})
        if step % cfg.save_every == 0 or step == cfg.steps:
            save(step)
        if steps_in_window == 0:
            window_start = time.perf_counter()
    trained = trained_world_sizes(state or {}, step, rt.world_size)
    final = ckpt_io.export_final(out, module, model.config, tokenizer, rt, recorded_config(cfg, rt, trained))
    if rt.is_main:
        print(f"final model: {final}", flush=True)
    return final
