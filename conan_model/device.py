"""Device, dtype and distributed-backend choice, in one place so every caller agrees.

Order: CUDA, then Ascend NPU (only if the optional ``torch_npu`` plugin imports; the paper trained on 910B
chips), then Apple MPS, then CPU. Accelerators compute in bf16, the CPU in fp32 (CPU bf16 matmuls are slow
on most machines and fp32 keeps CPU results a reference).
"""

from __future__ import annotations

import functools
import importlib

import torch


@functools.cache
def npu_available() -> bool:
    """True when the torch_npu plugin imports and sees a device; the import registers ``torch.npu``."""
    try:
        importlib.import_module("torch_npu")
    except ImportError:
        return False
    return bool(torch.npu.is_available())


def pick_device(prefer: str | torch.device | None = None) -> torch.device:
    """``prefer`` if given (e.g. 'cuda:1', 'cpu'), else the best available: cuda > npu > mps > cpu."""
    if prefer is not None:
        if _device_type(prefer) == "npu" and not npu_available():
            raise RuntimeError("device 'npu' requested but torch_npu is not installed or sees no NPU")
        return torch.device(prefer)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if npu_available():
        return torch.device("npu")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def default_dtype(device: str | torch.device) -> torch.dtype:
    """bf16 on accelerators (fp16 on CUDA cards without bf16), fp32 on CPU."""
    kind = _device_type(device)
    if kind == "cpu":
        return torch.float32
    if kind == "cuda" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return torch.bfloat16


def dist_backend(device: str | torch.device) -> str:
    """torch.distributed backend for the device type: nccl (cuda), hccl (npu), gloo otherwise."""
    return {"cuda": "nccl", "npu": "hccl"}.get(_device_type(device), "gloo")


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
