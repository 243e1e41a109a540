"""Process group, device and model wrapping: one code path for 1 process and for torchrun (DDP or FSDP2).

``python -m train ...`` runs one process; ``torchrun --standalone --nproc_per_node N -m train ...`` runs N, and
the environment torchrun sets (WORLD_SIZE, RANK, LOCAL_RANK) is all this module reads. The device comes from
conan_model.pick_device and the backend from conan_model.dist_backend (nccl on CUDA, hccl on Ascend, gloo on
CPU), so nothing here names an accelerator.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from conan_model import default_dtype, dist_backend, pick_device
from conan_model.device import cpu_bf16, device_count, local_rank_problem
from conan_model.errors import launched_world_size
from conan_model.process_group import group_timeout_s, join_process_group

from .errors import ConfigError


@dataclass(frozen=True)
class Runtime:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_runtime(device: str | None = None) -> Runtime:
    """Join the process group when launched by torchrun with several processes (HARNESS_DIST_TIMEOUT_S bounds
    the joining and every collective, as in `harness run`); pick this rank's device."""
    world = launched_world_size()
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device)
    if dev.type != "cpu" and dev.index is None and world > 1:
        if problem := local_rank_problem(dev.type, local_rank, device_count(dev.type) or 0):
            raise ConfigError(problem)
        dev = torch.device(dev.type, local_rank)
    if dev.type != "cpu" and dev.index is not None:
        torch.get_device_module(dev.type).set_device(dev.index)
    if world > 1:  # before stop 61 torch's default timeout (gloo: 30 min) and a DistStoreError traceback
        join_process_group(dist_backend(dev), group_timeout_s(), "nothing was trained in this start; rerun once "
                           "every rank starts (with --resume to continue from the last checkpoint)")  # fmt: skip
    return Runtime(rank, world, local_rank, dev)


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


class Task(nn.Module):
    """Routes a forward call to a backbone method (``lm_loss``, ``embed``, ...).

    DDP and FSDP hook ``forward``; calling ``model.lm_loss`` directly would bypass them. Stages call
    ``module("embed", ids, mask, mask_mode=..., alpha=...)`` on the wrapped module instead.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.model, method)(*args, **kwargs)


def wrap(model: nn.Module, rt: Runtime, parallel: str = "ddp", compile: bool = False) -> nn.Module:
    """Move ``model`` to the device and wrap it: Task, then DDP or FSDP2 when there are several processes.

    FSDP2 shards each decoder block and then the root (embedding, final norm); parameters stay fp32 and the
    compute dtype comes from autocast, as with DDP. ``compile`` compiles each decoder block (torchtitan's way:
    it composes with DDP, FSDP2 and gradient checkpointing, and the attention mask, built once per forward
    outside the blocks, is an input, so a soft mask's alpha changing every step does not recompile).
    """
    if compile:
        for block in getattr(model, "layers", []):
            block.compile()
    task = Task(model.to(rt.device))
    if not rt.distributed:
        return task
    if parallel == "ddp":
        from torch.nn.parallel import DistributedDataParallel

        ids = [rt.device.index] if rt.device.type != "cpu" else None
        return DistributedDataParallel(task, device_ids=ids)
    if parallel == "fsdp":
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh(rt.device.type, (rt.world_size,))
        for block in getattr(model, "layers", []):
            fully_shard(block, mesh=mesh)
        return fully_shard(task, mesh=mesh)
    raise ValueError(f"parallel must be 'ddp' or 'fsdp', got {parallel!r}")


@contextlib.contextmanager
def grad_sync(module: nn.Module, enabled: bool) -> Iterator[None]:
    """Skip the gradient all-reduce on all but the last micro-batch of an accumulation (DDP and FSDP2)."""
    if enabled or not dist.is_initialized():
        yield
    elif hasattr(module, "no_sync"):  # DDP
        with module.no_sync():
            yield
    else:  # FSDP2
        module.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            module.set_requires_gradient_sync(True)


def all_reduce(value: float | torch.Tensor, op: str = "mean", device: torch.device | None = None) -> float:
    """A scalar summed ('sum') or averaged ('mean') over ranks, as a Python float."""
    if not dist.is_initialized():
        return float(value)
    t = torch.as_tensor(value, dtype=torch.float32, device=device).detach().clone()
    dist.all_reduce(t)
    return float(t) / (dist.get_world_size() if op == "mean" else 1)


def compute_dtype_note(device: torch.device) -> str:
    """What autocast computes in on this device and why, for the stage's start-up line."""
    dtype = str(default_dtype(device)).removeprefix("torch.")
    return f"{dtype} on {device} ({cpu_bf16()[1]})" if device.type == "cpu" else f"{dtype} on {device}"


def rounding_note(rt: Runtime) -> str | None:
    """The note a multi-process run computing below float32 prints at start: its weights differ from one
    process's from the first step (a walk, stop 66: pretrain losses by up to 9.5e-4 over 12 steps in bf16), where
    float32 ones match closely (docs/training.md, "Distributed runs"). None in one process or in float32."""
    dtype = default_dtype(rt.device)
    if not rt.distributed or dtype == torch.float32:
        return None
    name = str(dtype).removeprefix("torch.")
    how = ("CONAN_CPU_BF16=0 gives float32, where they match closely" if rt.device.type == "cpu"
           else "only the CPU trains in float32 (CONAN_CPU_BF16=0), where they match closely")  # fmt: skip
    return (f"note: under torchrun in {name} the weights differ from one process's by {name} rounding (each "
            f"rank computes its own slice of the batch); {how}")  # fmt: skip


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on accelerators (fp16 where bf16 is missing) and on CPUs with native bf16; else fp32."""
    dtype = default_dtype(device)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32)
