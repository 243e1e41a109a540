"""Sharded encoding under torchrun: each rank encodes a slice of the texts, every rank receives all vectors.

`torchrun --nproc_per_node N -m harness run ...` starts N copies of the same run. They walk the same tasks in
the same order (mteb is deterministic), so only the model forward is split; rank 0 alone writes files and
prints. The backend follows the device (nccl for cuda, hccl for npu, gloo for cpu): conan_model.device.dist_backend,
the one choice that training uses too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np


@dataclass
class ShardGroup:
    rank: int
    world: int
    device: str

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def gather(self, local: np.ndarray, dim: int) -> list[np.ndarray]:
        """All ranks' local arrays (rows, dim), in rank order; ranks may hold different row counts."""
        import torch
        import torch.distributed as dist

        device = torch.device(self.device)
        count = torch.tensor([local.shape[0]], device=device)
        counts = [torch.zeros_like(count) for _ in range(self.world)]
        dist.all_gather(counts, count)
        longest = int(max(c.item() for c in counts))
        padded = torch.zeros((longest, dim), dtype=torch.float32, device=device)
        padded[: local.shape[0]] = torch.from_numpy(np.ascontiguousarray(local, dtype=np.float32)).to(device)
        parts = [torch.empty_like(padded) for _ in range(self.world)]
        dist.all_gather(parts, padded)
        return [p[: int(c.item())].cpu().numpy() for p, c in zip(parts, counts, strict=True)]


def init_from_env(device: str) -> ShardGroup | None:
    """A ShardGroup when launched by torchrun with more than one process, else None (plain single process)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    import torch
    import torch.distributed as dist

    from conan_model.device import dist_backend

    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(local_rank)
    if not dist.is_initialized():
        dist.init_process_group(backend=dist_backend(device))
    return ShardGroup(rank, world, device)
