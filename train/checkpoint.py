"""Training checkpoints: atomic, keep-last-k, complete enough to resume a run step for step.

    <output_dir>/checkpoints/step_00000100/
        config.json, model.safetensors, tokenizer.json   a conan_model folder (harness can evaluate it as is)
        optimizer.pt        full (unsharded) optimizer state, keyed by parameter name
        scheduler.pt        LR scheduler state
        rng_rank<r>.pt      each rank's RNG states (torch, accelerator, python), stored as tensors/lists
        state.json          step, data position, stage config, extra_state (a stage's own JSON state, e.g. DHNM)
    <output_dir>/final/     config.json, model.safetensors, tokenizer.json (+ train_config.json)

Everything is written into ``.tmp-step_…`` and renamed into place once complete, so a process killed at any
moment leaves either the previous checkpoints or a new complete one; every file and the folder are flushed to the
disk before that rename (``conan_model.atomic.replace_dir``), so a power loss does not leave one with empty files.
The ``.pt`` files hold only tensors and plain Python types and are read with ``torch.load(weights_only=True)``;
weights are safetensors.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from tokenizers import Tokenizer
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_optimizer_state_dict,
)

from conan_model import ConanConfig, save_pretrained
from conan_model.atomic import replace_dir
from conan_model.checkpoint import WEIGHTS_NAME
from conan_model.modeling import Backbone, model_for

from .config import RESUME_SAFE, config_diff
from .distributed import Runtime, barrier
from .errors import ResumeError

log = logging.getLogger("train")
CHECKPOINTS = "checkpoints"
STATE_NAME = "state.json"
_FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


def checkpoint_dirs(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints (those with a state.json), oldest first."""
    root = Path(output_dir) / CHECKPOINTS
    dirs = [p for p in root.glob("step_*") if (p / STATE_NAME).is_file()] if root.is_dir() else []
    return sorted(dirs, key=lambda p: int(p.name.split("_")[1]))


def resolve_resume(resume: str | None, output_dir: str | Path) -> Path | None:
    """None: fresh start. 'latest': newest checkpoint in output_dir (fresh start if there is none). A path:
    that checkpoint folder (or the newest inside an output_dir)."""
    if resume is None:
        existing = checkpoint_dirs(output_dir)
        if existing:
            raise ResumeError(f"{output_dir} already holds checkpoints (newest {existing[-1].name}); pass --resume "
                              "to continue that run or choose another output_dir")  # fmt: skip
        return None
    if resume == "latest":
        existing = checkpoint_dirs(output_dir)
        if not existing:
            log.info("no checkpoint in %s; starting from scratch", output_dir)
        return existing[-1] if existing else None
    path = Path(resume)
    if (path / STATE_NAME).is_file():
        return path
    existing = checkpoint_dirs(path)
    if not existing:
        raise ResumeError(f"cannot resume from {path}: no {STATE_NAME} there and no checkpoints/step_* inside")
    return existing[-1]


def read_state(path: str | Path) -> dict[str, Any]:
    return json.loads((Path(path) / STATE_NAME).read_text(encoding="utf-8"))


def check_resume_config(
    path: str | Path, current: dict[str, Any], data_hashes: dict[str, str], safe: frozenset[str] = RESUME_SAFE
) -> dict[str, Any]:
    """The checkpoint's state.json, after checking that its stage config matches ``current`` (keys in ``safe``
    may differ) and that the data files hash as they did when the run started (``data_hashes``; checkpoints
    from before they were recorded are not checked): the rest of an epoch read from an edited file is other rows."""
    state = read_state(path)
    diff = config_diff(state["config"], current, safe)
    if diff:
        raise ResumeError(f"cannot resume from {path}: the config differs from the checkpoint's in "
                          f"{len(diff)} key(s): " + "; ".join(diff))  # fmt: skip
    recorded = state.get("data_hashes")
    if recorded is not None and recorded != data_hashes:
        changed = sorted(k for k in {*recorded, *data_hashes} if recorded.get(k) != data_hashes.get(k))
        raise ResumeError(f"cannot resume from {path}: data file(s) changed since the run started (their hashes "
                          f"in {Path(path) / STATE_NAME}): {', '.join(changed)}; restore them or train into a "
                          "fresh output_dir")  # fmt: skip
    return state


def load_model_weights(path: str | Path, model: Backbone) -> None:
    """Checkpoint weights into the unwrapped model (before DDP/FSDP wrapping, which then shards or copies them)."""
    model.load_state_dict(load_file(str(Path(path) / WEIGHTS_NAME), device="cpu"))


def full_model_state(module: nn.Module) -> dict[str, torch.Tensor]:
    """Unsharded CPU weights of a wrapped model, keyed like ConanModel.state_dict(); collective, rank 0 gets
    them (other ranks get an empty dict under FSDP)."""
    state = get_model_state_dict(module, options=_FULL)
    return {k.removeprefix("model."): v for k, v in state.items()}


def export_pretrained(state: dict[str, torch.Tensor], config: ConanConfig, tokenizer: Tokenizer, path: Path) -> Path:
    """A conan_model folder from a full state dict (the model is built on meta; no second copy is allocated)."""
    with torch.device("meta"):
        model = model_for(config)
    model.load_state_dict(state, strict=True, assign=True)
    return save_pretrained(model, tokenizer, path)


def save_checkpoint(out: Path, step: int, module: nn.Module, config: ConanConfig, tokenizer: Tokenizer,
                    optimizer: torch.optim.Optimizer, scheduler: Any, rt: Runtime, state: dict[str, Any],
                    keep_last: int) -> Path:  # fmt: skip
    """Write ``checkpoints/step_<step>`` atomically (collective: every rank must call it)."""
    root = Path(out) / CHECKPOINTS
    final, tmp = root / f"step_{step:08d}", root / f".tmp-step_{step:08d}"
    if rt.is_main:
        for stale in root.glob(".tmp-step_*"):  # left by a run killed while saving
            shutil.rmtree(stale, ignore_errors=True)
        tmp.mkdir(parents=True)
    barrier()
    model_state = full_model_state(module)
    optim_state = get_optimizer_state_dict(module, optimizer, options=_FULL)
    torch.save(rng_state(rt.device), tmp / f"rng_rank{rt.rank}.pt")
    barrier()
    if rt.is_main:
        export_pretrained(model_state, config, tokenizer, tmp)
        torch.save(optim_state, tmp / "optimizer.pt")
        torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
        text = json.dumps({"step": step, "world_size": rt.world_size, **state}, indent=2, ensure_ascii=False)
        (tmp / STATE_NAME).write_text(text + "\n", encoding="utf-8")
        replace_dir(tmp, final)
        for old in checkpoint_dirs(out)[:-keep_last] if keep_last > 0 else []:
            shutil.rmtree(old)
    barrier()
    return final


def load_training_state(path: Path, module: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                        rt: Runtime) -> None:  # fmt: skip
    """Optimizer, scheduler and this rank's RNG from a checkpoint (weights: :func:`load_model_weights`)."""
    optim_state = torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True)
    set_optimizer_state_dict(module, optimizer, optim_state, options=StateDictOptions(full_state_dict=True))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
    rng_file = path / f"rng_rank{rt.rank}.pt"
    if rng_file.is_file():
        set_rng_state(torch.load(rng_file, weights_only=True), rt.device)
    else:
        log.warning("%s has no RNG state for rank %d (different world size); keeping the seeded RNG", path, rt.rank)


def export_final(out: Path, module: nn.Module, config: ConanConfig, tokenizer: Tokenizer, rt: Runtime,
                 train_config: dict[str, Any]) -> Path:  # fmt: skip
    """``<out>/final``: the conan_model folder that ``harness run --model conan:<out>/final`` evaluates."""
    final, tmp = Path(out) / "final", Path(out) / ".tmp-final"
    model_state = full_model_state(module)
    if rt.is_main:
        shutil.rmtree(tmp, ignore_errors=True)
        export_pretrained(model_state, config, tokenizer, tmp)
        text = json.dumps(train_config, indent=2, ensure_ascii=False)
        (tmp / "train_config.json").write_text(text + "\n", encoding="utf-8")
        replace_dir(tmp, final)
    barrier()
    return final


def rng_state(device: torch.device) -> dict[str, Any]:
    """RNG states as tensors and lists, so torch.load(weights_only=True) can read them back."""
    version, internal, gauss = random.getstate()
    accel = torch.get_device_module(device.type).get_rng_state() if device.type != "cpu" else None
    return {"python": [version, list(internal), gauss], "torch": torch.get_rng_state(), "device": accel}


def set_rng_state(state: dict[str, Any], device: torch.device) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    torch.set_rng_state(state["torch"])
    if state["device"] is not None and device.type != "cpu":
        torch.get_device_module(device.type).set_rng_state(state["device"])
