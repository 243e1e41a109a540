"""Device, dtype and distributed-backend choice, in one place so every caller agrees.

Order: CUDA, then Ascend NPU (only if the optional ``torch_npu`` plugin imports; one that fails to load is passed
over with a note; the paper trained on 910B chips), then Apple MPS, then CPU. Accelerators compute in bf16. The
CPU computes in bf16 only where it has native bf16 instructions (x86 AVX512-BF16 or AMX-BF16, Arm BF16): there
a bf16 harness run took 0.4-0.6x the fp32 wall at scores within 0.02 (docs/harness.md); elsewhere bf16 is
emulated and slower than fp32, so fp32 stays. ``CONAN_CPU_BF16=0`` (or ``=1``) overrides the detection, e.g. for
bit-reproducible fp32 references.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
import platform
import shutil
import sys
import sysconfig
from pathlib import Path

import torch

# where the NPU install (torch_npu, the CANN toolkit, torch's auto-loading of it) is described
NPU_DOCS = "README.md, Ascend NPU"


@functools.cache
def npu_problem() -> str | None:
    """Why no NPU can be used here, or None when the torch_npu plugin imports and sees one (the import registers
    ``torch.npu``). An installed torch_npu that fails to load (no CANN toolkit: its own RuntimeError) is a reason,
    not a crash: before, a CPU run that asked for no device died on it with a traceback."""
    if importlib.util.find_spec("torch_npu") is None:
        return "torch_npu is not installed"
    try:
        importlib.import_module("torch_npu")
        if not torch.npu.is_available():
            return "torch_npu sees no NPU"
    except Exception as exc:  # whatever the plugin raises: its message is the reason
        # hidden from the libraries that import it again unguarded (transformers' is_torch_npu_available), so the
        # run goes on without it: Python's import then raises ImportError, and find_spec says it is not there
        sys.modules["torch_npu"] = None
        said = str(exc).strip().splitlines()
        return f"torch_npu failed to load: {type(exc).__name__}{f': {said[0]}' if said else ''}"
    return None


def npu_available() -> bool:
    """True when torch_npu imports and sees a device (:func:`npu_problem`)."""
    return npu_problem() is None


def pick_device(prefer: str | torch.device | None = None) -> torch.device:
    """``prefer`` if given (e.g. 'cuda:1', 'cpu'), else the best available: cuda > npu > mps > cpu. Whatever is
    asked, a torch_npu that fails to load is hidden first (:func:`npu_problem`): transformers imports it unguarded,
    and before stop 63 a ``--device cpu`` run, which never looked, died there with a traceback."""
    problem = npu_problem()
    if prefer is not None:
        if _device_type(prefer) == "npu" and problem:
            raise RuntimeError(f"device 'npu' requested but {problem} ({NPU_DOCS})")
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if problem is None:
        return torch.device("npu")
    if problem.startswith("torch_npu failed"):  # installed for a reason: say why it is passed over
        _note_once(f"note: no NPU used: {problem} ({NPU_DOCS})")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_problem(requested: str) -> str | None:
    """Why device ``requested`` (``cuda``, ``cuda:1``, ``npu``, ``mps``, ``xpu``, ``cpu``) cannot be used on this
    machine, or None when it can: checked before any work, where torch would fail only once a tensor moves there
    (after the tokenizer and the model are built), with a traceback. Like :func:`pick_device` it hides a torch_npu
    that fails to load, whatever device is asked, before transformers imports it."""
    npu_reason = npu_problem()
    kind, _, index = str(requested).partition(":")
    present = device_count(kind)
    if present is None:
        return f"unknown device type {kind!r}; use cpu, cuda, npu, mps or xpu (optionally :<index>)"
    if present == 0:
        plugin = f" ({npu_reason}; see {NPU_DOCS})" if kind == "npu" else ""
        return f"no {kind.upper()} device is available here{plugin}"
    if index and (not index.isdigit() or int(index) >= present):
        return f"no {kind} device {index!r}: {present} present (indices 0-{present - 1})"
    return None


@functools.cache
def _note_once(note: str) -> None:
    """Say ``note`` on stderr once per process, from torchrun's rank 0 only (every rank picks a device)."""
    if os.environ.get("RANK", "0") == "0":
        print(note, file=sys.stderr, flush=True)


def device_count(kind: str) -> int | None:
    """How many devices of type ``kind`` this process sees (1 for cpu), None for a type torch has no count for."""
    count = {
        "cpu": lambda: 1,
        "cuda": lambda: torch.cuda.device_count() if torch.cuda.is_available() else 0,
        "npu": lambda: torch.npu.device_count() if npu_available() else 0,
        "mps": lambda: int(torch.backends.mps.is_available()),
        "xpu": lambda: torch.xpu.device_count() if hasattr(torch, "xpu") and torch.xpu.is_available() else 0,
    }.get(kind)
    return None if count is None else count()


def local_rank_problem(kind: str, local_rank: int, present: int) -> str | None:
    """Why torchrun's LOCAL_RANK cannot take device ``kind:<local_rank>`` of the ``present`` visible ones, or None
    when it can: each rank takes its own, and one past the last failed inside torch's set_device with a traceback
    naming neither the rank nor --nproc_per_node."""
    if local_rank < present:
        return None
    return (f"torchrun LOCAL_RANK {local_rank} has no {kind} device of its own: --nproc_per_node {local_rank + 1} "
            f"or more is larger than the {present} visible {kind} device(s); start at most {present} processes per "
            "node")


def compile_problem(device: str | torch.device) -> str | None:
    """Why torch.compile cannot run on ``device`` here, or None when it can: inductor on CPU builds C++ kernels,
    which needs g++ and the Python headers."""
    if _device_type(device) != "cpu":
        return None
    if shutil.which("g++") is None or not (Path(sysconfig.get_paths()["include"]) / "Python.h").is_file():
        return "torch.compile on CPU needs g++ and the Python headers"
    return None


# /proc/cpuinfo flags that mean the CPU computes bf16 dot products in hardware (x86: "flags", Arm: "Features").
_NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


@functools.cache
def cpu_bf16() -> tuple[bool, str]:
    """(use bf16 on this CPU?, why): decided once per process from the override or the CPU's own flags."""
    override = os.environ.get("CONAN_CPU_BF16", "").strip()
    if override in ("0", "1"):
        return override == "1", f"CONAN_CPU_BF16={override}"
    if override:
        raise ValueError(f"CONAN_CPU_BF16={override!r}: use 0 (float32) or 1 (bfloat16), or unset it")
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        return False, f"no /proc/cpuinfo on {platform.system()}: native bf16 unknown, float32"
    flags: set[str] = set()
    for line in cpuinfo.read_text(errors="replace").splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    native = [f for f in _NATIVE_BF16_FLAGS if f in flags]
    if native:
        return True, f"CPU has native bf16 ({', '.join(native)})"
    return False, "CPU lacks native bf16 (no avx512_bf16/amx_bf16/bf16 flag): bf16 would be emulated, float32"


def default_dtype(device: str | torch.device) -> torch.dtype:
    """bf16 on accelerators (fp16 on CUDA cards without bf16); on CPU bf16 where native (:func:`cpu_bf16`)."""
    kind = _device_type(device)
    if kind == "cpu":
        return torch.bfloat16 if cpu_bf16()[0] else torch.float32
    if kind == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def dist_backend(device: str | torch.device) -> str:
    """torch.distributed backend for the device type: nccl (cuda), hccl (npu), gloo otherwise."""
    return {"cuda": "nccl", "npu": "hccl"}.get(_device_type(device), "gloo")


def leave_process_group() -> None:
    """Destroy the default process group, after collecting garbage while the interpreter is fully alive.

    FSDP2's wrapped modules sit in reference cycles that hold the device mesh and the last collectives' work
    objects (tensors with Python owners). Left to the collector at interpreter exit, gloo's worker threads
    destroy them after Python is gone and the process aborts ("terminate called without an active exception",
    seen as a rare SIGABRT of one rank after a finished FSDP run), so they are collected here first.
    """
    import gc

    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


def synchronize(device: str | torch.device) -> None:
    """Wait for queued kernels, so wall-clock timings of accelerator work are honest."""
    kind = _device_type(device)
    if kind == "cuda":
        torch.cuda.synchronize(device)
    elif kind == "npu":
        torch.npu.synchronize(device)
    elif kind == "mps":
        torch.mps.synchronize()


def _device_type(device: str | torch.device) -> str:
    """'cuda' from 'cuda:1' without torch.device(), which rejects 'npu' until torch_npu is imported."""
    return device.type if isinstance(device, torch.device) else str(device).split(":")[0]
