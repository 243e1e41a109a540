"""Training checkpoints: atomic, keep-last-k, complete enough to resume a run step for step.

    <output_dir>/checkpoints/step_00000100/
        config.json, model.safetensors, tokenizer.json   a conan_model folder (harness can evaluate it as is)
        optimizer.pt        full (unsharded) optimizer state, keyed by parameter name
        scheduler.pt        LR scheduler state
        rng_rank<r>.pt      each rank's RNG states (torch, accelerator, python), stored as tensors/lists
        state.json          step, data position, stage config, extra_state (a stage's own JSON state, e.g. DHNM),
                            world_size and world_sizes (the processes that trained each span of steps),
                            and a sha256 fingerprint (name, size, bytes: conan_model.fingerprint) of every other
                            file (written last, so the record covers them all)
    <output_dir>/final/     config.json, model.safetensors, tokenizer.json (+ train_config.json)

Everything is written into ``.tmp-step_…`` and renamed into place once complete, so a process killed at any
moment leaves either the previous checkpoints or a new complete one (plus, when killed inside replace_dir or while
deleting an old checkpoint, a folder that :func:`remove_leftovers` clears at the next start); every file and the
folder are flushed to the disk before that rename (``conan_model.atomic.replace_dir``), so a power loss does not
leave one with empty files.
The ``.pt`` files hold only tensors and plain Python types and are read with ``torch.load(weights_only=True)``;
weights are safetensors. A resume checks the recorded hashes before reading anything, and a file that is damaged
(or fails to load) is a ResumeError naming it and the newest older checkpoint that is still whole.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import random
import re
import shutil
from collections.abc import Iterator
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
from conan_model.atomic import clear_leftovers, elsewhere_leftovers, parse_leftover, replace_dir
from conan_model.checkpoint import CONFIG_NAME, TOKENIZER_NAME, WEIGHTS_NAME, load_checkpoint_tokenizer, load_config
from conan_model.errors import ConanError
from conan_model.fingerprint import files_fingerprint
from conan_model.modeling import Backbone, model_for

from .config import RESUME_SAFE, ConfigView, StageConfig, config_diff
from .distributed import Runtime, barrier
from .errors import ResumeError

log = logging.getLogger("train")
CHECKPOINTS = "checkpoints"
FINAL = "final"  # <output_dir>/final: the exported model
EARLIER_ASIDE = ".old-"  # replace_dir's aside name, `.old-<name>`, before each call had its own
STATE_NAME = "state.json"
FILES_KEY = "files"  # state.json: {file name: sha256} of the checkpoint's other files
_FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


def checkpoint_dirs(output_dir: str | Path) -> list[Path]:
    """Complete checkpoints (those with a state.json), oldest first."""
    return _complete(Path(output_dir) / CHECKPOINTS)


def _complete(root: Path) -> list[Path]:
    dirs = [p for p in root.glob("step_*") if (p / STATE_NAME).is_file()] if root.is_dir() else []
    return sorted(dirs, key=lambda p: int(p.name.split("_")[1]))


def resolve_resume(resume: str | None, output_dir: str | Path, current: dict[str, Any],
                   safe: frozenset[str] = RESUME_SAFE,
                   view: ConfigView = StageConfig.resume_view) -> Path | None:  # fmt: skip
    """None: fresh start (refused over checkpoints: :func:`fresh_run_refusal`, given the run's config ``current``,
    its resume-safe keys and how a config is compared, ``view``). 'latest': newest checkpoint in output_dir (fresh
    start if there is none). A path: that checkpoint folder (or the newest inside an output_dir). A finished model
    (``final/``) in an output_dir without checkpoints is refused whatever ``resume`` says: nothing there continues
    it, and the run would replace it (before stop 60 silently, once a user had deleted the checkpoints to save
    disk)."""
    final = Path(output_dir) / FINAL
    if final.exists() and not checkpoint_dirs(output_dir):
        raise ResumeError(f"{output_dir} holds a finished model ({final}) and none of its run's checkpoints; a run "
                          f"there would replace it: delete {final} to train it again, or train into another "
                          "output_dir")  # fmt: skip
    if resume is None:
        existing = checkpoint_dirs(output_dir)
        if existing:
            raise fresh_run_refusal(output_dir, existing[-1], current, safe, view)
        return None
    if resume == "latest":
        existing = checkpoint_dirs(output_dir)
        if not existing:
            log.info("no checkpoint in %s; starting from scratch", output_dir)
        return existing[-1] if existing else None
    path = Path(resume)
    if not path.exists():  # before stop 63: "no state.json there and no checkpoints/step_* inside"
        raise ResumeError(f"cannot resume from {path}: it does not exist (--resume takes a checkpoint folder, an "
                          "output_dir, or 'latest')")  # fmt: skip
    if (path / STATE_NAME).is_file():
        return path
    existing = checkpoint_dirs(path)
    if not existing:
        raise ResumeError(f"cannot resume from {path}: no {STATE_NAME} there and no checkpoints/step_* inside")
    return existing[-1]


def _asides(root: Path) -> list[tuple[Path, str]]:
    """(aside copy, the step folder name it was set aside from) of each checkpoint replace_dir set aside in ``root``:
    `.step_*.old-<pid>-<nonce>@<machine>`, or `.old-step_*` as an earlier version named it."""
    asides = [(p, aside.final) for p in root.glob(".step_*.old-*") if (aside := parse_leftover(p.name))]
    return asides + [(p, p.name.removeprefix(EARLIER_ASIDE)) for p in root.glob(f"{EARLIER_ASIDE}step_*")]


def fresh_run_refusal(output_dir: str | Path, newest: Path, current: dict[str, Any], safe: frozenset[str],
                      view: ConfigView = StageConfig.resume_view) -> ResumeError:  # fmt: skip
    """Why a fresh run into an output_dir holding checkpoints (``newest`` the last) is refused: ``--resume`` is
    advised only where :func:`check_resume_config` would take the config (the same comparison, ``config_diff``),
    else the other stage or the differing keys are named; before stop 63 it was advised over another stage's
    checkpoints too, before stop 66 over a different config of the same stage, and then refused. A state.json that
    does not read is compared with nothing: a resume names the damage."""
    try:
        saved = read_state(newest)["config"]
    except ResumeError:
        saved = None
    stage = current.get("stage")
    if saved is not None and saved.get("stage") != stage:
        return ResumeError(f"{output_dir} already holds checkpoints of the {saved.get('stage')} stage (newest "
                           f"{newest.name}), which a {stage} run cannot continue; choose another "
                           "output_dir")  # fmt: skip
    if saved is not None and (diff := config_diff(view(saved), view(current), safe)):
        return ResumeError(f"{output_dir} already holds checkpoints of a different run (newest {newest.name}; the "
                           f"config differs in {len(diff)} key(s): {'; '.join(diff)}), which --resume cannot "
                           "continue; choose another output_dir")  # fmt: skip
    return ResumeError(f"{output_dir} already holds checkpoints (newest {newest.name}); pass --resume to continue "
                       "that run or choose another output_dir")  # fmt: skip


def put_back_checkpoints(output_dir: str | Path) -> tuple[list[str], list[str]]:
    """Put back as ``step_*`` an aside copy that holds every file its state.json records and whose step folder is
    gone: a save that replaced a checkpoint (a run resumed from an older one reaches its step again) killed between
    replace_dir's two renames. Called before a resume looks for the newest checkpoint, which it then is again;
    before stop 63 the copy was neither put back nor named, and stayed for good. Returns the lines to say: what was
    put back, and what the OS refused."""
    root = Path(output_dir) / CHECKPOINTS
    said, failed = [], []
    for aside, step in sorted(_asides(root)) if root.is_dir() else []:
        final = root / step
        if os.path.lexists(final) or _missing_files(aside) != []:
            continue
        try:
            os.rename(aside, final)
        except OSError as exc:
            failed.append(f"could not put back {aside} as {step} ({exc.strerror or exc})")
            continue
        said.append(f"put back {aside} as {step} (the checkpoint a save was replacing when it was killed)")
    return said, failed


def remove_leftovers(output_dir: str | Path, keep: Path | None = None) -> tuple[list[str], list[str]]:
    """Delete what an interrupted save provably left in ``output_dir``'s checkpoints, so it never piles up: an aside
    copy (:func:`_asides`) whose step folder holds every file its state.json records, and an older step folder
    missing some of the files its state.json records (a keep-last deletion cut short keeps its state.json). Only
    missing files count, never their contents: a folder whose bytes differ was not left by a deletion (it is named
    damaged when resumed from, as before), and nothing is hashed, so a resume of a large model does not read every
    checkpoint first. The newest checkpoint and ``keep`` (the one being resumed) are never touched. Returns each
    removed name with why, for the one line that says so, and a line for each the OS refused to remove, which
    stays (before stop 63 such a refusal stopped the run, with the other ranks waiting at a barrier)."""
    root = Path(output_dir) / CHECKPOINTS
    complete = _complete(root)
    missing = {p: _missing_files(p) for p in complete}
    kept = keep.resolve() if keep is not None else None
    leftovers = {p: "the aside copy of a replaced checkpoint, which is whole"
                 for p, step in _asides(root) if missing.get(root / step) == []}  # fmt: skip
    leftovers |= {p: "an older checkpoint cut short while it was deleted"
                  for p in complete[:-1] if missing[p] and p.resolve() != kept}  # fmt: skip
    said, failed = [], []
    for path, why in sorted(leftovers.items()):
        try:
            shutil.rmtree(path)
        except OSError as exc:
            failed.append(f"could not remove {path}, {why} ({exc.strerror or exc}): delete it by hand")
            continue
        said.append(f"{path.name} ({why})")
    return said, failed


def clear_final_leftovers(output_dir: str | Path) -> list[str]:
    """Tidy what an export of ``final`` killed inside replace_dir left in ``output_dir``, as fetch does
    (conan_model.atomic.clear_leftovers): with no ``final`` (killed between the renames) the aside copy, the previous
    model whole, is put back as ``final``, else removed; so is `.old-final`, the aside name before it was the
    writer's own, which that version's next export deleted. Before, nothing removed or named `.final.old-…`, and the
    output_dir held no ``final``. Returns the lines to say: what was done, what could not be, and what an export on
    another machine left (its process cannot be seen from here, so it stays)."""
    final = Path(output_dir) / FINAL
    done, failed = clear_leftovers(final, [final.with_name(f"{EARLIER_ASIDE}{FINAL}")])
    return ([f"cleared what an interrupted export left beside {final}: {'; '.join(done)}"] if done else []) + failed + [
        f"left alone {path}: an export on {machine} set it aside, running there or killed; delete it once it has ended"
        for path, machine in elsewhere_leftovers(final)]  # fmt: skip


def _missing_files(path: Path) -> list[str] | None:
    """The files state.json records that the folder no longer holds; None when state.json does not read (nothing
    is then known to be missing)."""
    try:
        state = json.loads((path / STATE_NAME).read_text(encoding="utf-8"))
        return [name for name in state.get(FILES_KEY) or {} if not (path / name).exists()]
    except (OSError, ValueError, AttributeError):
        return None


def read_state(path: str | Path) -> dict[str, Any]:
    """A checkpoint's state.json; an unreadable one is a ResumeError (see :func:`damaged`)."""
    with reading(path, STATE_NAME):
        state = json.loads((Path(path) / STATE_NAME).read_text(encoding="utf-8"))
        if not (isinstance(state, dict) and isinstance(state.get("config"), dict) and "step" in state):
            raise ValueError("no step and config in it")
        if not isinstance(state.get(FILES_KEY, {}), dict):
            raise ValueError(f"its {FILES_KEY!r} is not a table of file hashes")
    return state


def file_hashes(folder: Path) -> dict[str, str]:
    """{name: sha256 (conan_model.fingerprint, as the data hashes)} of each file in a checkpoint folder but
    state.json, which records them."""
    return {p.name: files_fingerprint(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != STATE_NAME}


def verify_files(path: Path, state: dict[str, Any], rank: int = 0) -> None:
    """Each file recorded in ``state`` (other ranks' RNG files aside) still hashes as when it was saved: random
    bytes inside the tensor data load without complaint and would train on from garbage. Checkpoints saved
    before the record are not checked."""
    for name, digest in (state.get(FILES_KEY) or {}).items():
        if name.startswith("rng_rank") and name != f"rng_rank{rank}.pt":
            continue
        file = Path(path) / name
        if not file.is_file():
            raise damaged(path, name, "missing")
        if files_fingerprint(file) != digest:
            raise damaged(path, name, f"its sha256 differs from the one {STATE_NAME} recorded when it was saved")


def damaged(path: str | Path, name: str, reason: str, said: str = "") -> ResumeError:
    """The error for a damaged checkpoint file: the file, why (``said``, else "is damaged (``reason``)"), and the
    newest older checkpoint still whole."""
    path = Path(path)
    older = [p for p in _complete(path.parent) if _step(p) < _step(path)]
    good = next((p for p in reversed(older) if _whole(p)), None)
    hint = (f"resume from the older checkpoint: --resume {good}" if good is not None
            else f"no older whole checkpoint in {path.parent}: train afresh into another output_dir")  # fmt: skip
    return ResumeError(f"cannot resume from {path}: {path / name} {said or f'is damaged ({reason})'}; {hint}")


def refused_pickle(exc: pickle.UnpicklingError) -> str:
    """What torch's weights-only load refusing a file means, in one clause: the file names an object other than
    tensors (a class or function: unpickling it could run code), or its pickle is of another kind or damaged. Before
    stop 69 (a walk) only "is damaged (UnpicklingError: Weights only load failed)", which did not say why."""
    found = re.search(r"GLOBAL (\S+)", str(exc))
    if found:
        return (f"holds objects other than tensors ({found[1]}), so it was not unpickled: torch's weights-only load "
                "refuses them (unpickling could run code)")  # fmt: skip
    return ("is no pickle of tensors alone, so it was not unpickled: torch's weights-only load refused it (objects "
            "other than tensors, or damaged bytes)")  # fmt: skip


def _step(path: Path) -> int:
    digits = path.name.removeprefix("step_")
    return int(digits) if digits.isdigit() else -1


def _whole(path: Path) -> bool:
    """state.json reads and every recorded file hashes as saved (older checkpoints: state.json reads)."""
    try:
        state = json.loads((path / STATE_NAME).read_text(encoding="utf-8"))
        hashes = state.get(FILES_KEY) or {}
        return "config" in state and all(files_fingerprint(path / n) == d for n, d in hashes.items())
    except (OSError, ValueError, AttributeError):
        return False


@contextlib.contextmanager
def reading(path: str | Path, name: str) -> Iterator[None]:
    """Loading checkpoint file ``name``: whatever it raises (safetensors, torch.load, tokenizers and json each
    have their own kinds) becomes :func:`damaged`. Out-of-memory and the project's own errors pass through."""
    try:
        yield
    except (ConanError, MemoryError, torch.OutOfMemoryError):
        raise
    except pickle.UnpicklingError as e:  # torch.load(weights_only=True) refused it: nothing of it was unpickled
        raise damaged(path, name, "", refused_pickle(e)) from e
    except Exception as e:
        reason = (str(e).strip().splitlines() or [""])[0].split(". ")[0][:200]  # torch's run on for lines
        raise damaged(path, name, f"{type(e).__name__}: {reason}" if reason else type(e).__name__) from e


def check_resume_config(
    path: str | Path,
    current: dict[str, Any],
    data_hashes: dict[str, str],
    safe: frozenset[str] = RESUME_SAFE,
    rank: int = 0,
    view: ConfigView = StageConfig.resume_view,
) -> dict[str, Any]:
    """The checkpoint's state.json, after checking that its stage config matches ``current`` (keys in ``safe``
    may differ), that the data files hash as they did when the run started (``data_hashes``; checkpoints
    from before they were recorded are not checked): the rest of an epoch read from an edited file is other rows,
    and that the checkpoint's own files are whole (:func:`verify_files`)."""
    state = read_state(path)
    diff = config_diff(view(state["config"]), view(current), safe)
    saved_stage = state["config"].get("stage")
    # another stage's checkpoint: the stage leads (before stop 60 only a list of its 23 differing keys said it)
    if diff and saved_stage != current.get("stage"):
        raise ResumeError(f"cannot resume from {path}: this checkpoint is from the {saved_stage} stage, not "
                          f"{current.get('stage')}; resume it with a {saved_stage} config, or train into another "
                          f"output_dir (the config differs in {len(diff)} key(s))")  # fmt: skip
    if diff:
        raise ResumeError(f"cannot resume from {path}: the config differs from the checkpoint's in "
                          f"{len(diff)} key(s): " + "; ".join(diff))  # fmt: skip
    recorded = state.get("data_hashes")
    if recorded is not None and recorded != data_hashes:
        changed = sorted(k for k in {*recorded, *data_hashes} if recorded.get(k) != data_hashes.get(k))
        raise ResumeError(f"cannot resume from {path}: data file(s) changed since the run started (their hashes "
                          f"in {Path(path) / STATE_NAME}): {', '.join(changed)}; restore them or train into a "
                          "fresh output_dir")  # fmt: skip
    verify_files(Path(path), state, rank)
    return state


def config_of(path: str | Path) -> ConanConfig:
    """A checkpoint's config.json (a damaged one: :func:`damaged`)."""
    with reading(path, CONFIG_NAME):
        return load_config(path)


def tokenizer_of(path: str | Path) -> Tokenizer:
    """A checkpoint's tokenizer.json, checked against its config.json (read first, so a damaged one is named)."""
    config_of(path)
    with reading(path, TOKENIZER_NAME):
        return load_checkpoint_tokenizer(path)


def load_model_weights(path: str | Path, model: Backbone) -> None:
    """Checkpoint weights into the unwrapped model (before DDP/FSDP wrapping, which then shards or copies them)."""
    with reading(path, WEIGHTS_NAME):
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
        record = {"step": step, "world_size": rt.world_size, **state, FILES_KEY: file_hashes(tmp)}
        text = json.dumps(record, indent=2, ensure_ascii=False)
        (tmp / STATE_NAME).write_text(text + "\n", encoding="utf-8")
        replace_dir(tmp, final)
        for old in checkpoint_dirs(out)[:-keep_last] if keep_last > 0 else []:
            shutil.rmtree(old)
    barrier()
    return final


def load_training_state(path: Path, module: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
                        rt: Runtime) -> None:  # fmt: skip
    """Optimizer, scheduler and this rank's RNG from a checkpoint (weights: :func:`load_model_weights`)."""
    with reading(path, "optimizer.pt"):
        optim_state = torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True)
        set_optimizer_state_dict(module, optimizer, optim_state, options=StateDictOptions(full_state_dict=True))
    with reading(path, "scheduler.pt"):
        scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
    # A rank beyond the checkpoint's processes (a resume on more) has no saved state and keeps the seeded one,
    # unsaid: no training step draws from the global RNG (data order, MNTP masks and DHNM picks have their own
    # generators, seeded by step and row), so nothing differs from an uninterrupted run. Before stop 67 a warning
    # said so for rank 1 only, and no doc said what it meant (a user's walk); the first line names the change.
    rng_file = path / f"rng_rank{rt.rank}.pt"
    if rng_file.is_file():
        with reading(path, rng_file.name):
            set_rng_state(torch.load(rng_file, weights_only=True), rt.device)


def export_final(out: Path, module: nn.Module, config: ConanConfig, tokenizer: Tokenizer, rt: Runtime,
                 train_config: dict[str, Any]) -> Path:  # fmt: skip
    """``<out>/final``: the conan_model folder that ``harness run --model conan:<out>/final`` evaluates."""
    final, tmp = Path(out) / FINAL, Path(out) / f".tmp-{FINAL}"
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
