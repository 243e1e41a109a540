"""Sharded encoding under torchrun: each rank encodes a slice of the texts, every rank receives all vectors.

`torchrun --nproc_per_node N -m harness run ...` starts N copies of the same run. They walk the same tasks in
the same order (mteb is deterministic), so only the model forward is split; rank 0 alone writes files and
prints. The backend follows the device (nccl for cuda, hccl for npu, gloo for cpu): conan_model.device.dist_backend,
the one choice that training uses too.

Every collective starts with a header (kind, task, call number, two counts) that all ranks exchange and check, so
ranks that drifted apart (a task failed on one of them) are told apart from ranks in step: without it one rank's
vectors would be silently paired with another task's. Each rank reads the embedding cache itself, and another
process may write it between two ranks' reads (or ranks on other hosts read other caches), so the ranks agree on
what it holds before they encode (`agree_hits`: the texts every rank found); their lists of texts to encode are
then the same by construction. Before the first task the ranks compare what they are about to run
(`agree_on_run`: tasks, their data, the run's settings), so ranks started with other options or another data root
are refused instead of pairing vectors of different texts or numerics. A rank that fails a task says so
at the task's end (`finish_task`); a rank still gathering meets that header in place of a gather's and stops the
task too, so the failure (and its message) reaches every rank. Only tensors cross ranks (JSON bytes for an error),
never pickles.

Before each collective every rank marks its arrival in the group's store and waits for the others' marks, at most
HARNESS_DIST_TIMEOUT_S (`group_timeout_s`): a rank that hangs without dying then stops the run with one message
naming the ranks that did not arrive (torch's own timeout, 30 minutes for gloo and 10 for NCCL, names no rank),
and the wait, polling the store, lets a Ctrl-C or SIGTERM through where a blocked collective would hold it until
torchrun's SIGKILL. What a rank skips as done earlier is rank 0's decision (`main_decides`): ranks on hosts that do
not share the run directory would otherwise read different records and walk different tasks.
"""

from __future__ import annotations

import json
import os
import time
import zlib
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from conan_model.errors import launched_world_size
from conan_model.process_group import TIMEOUT_ENV, group_timeout_s, join_process_group
from harness.errors import PeerFailed, ShardMismatch, UsageError

GATHER, END, LOOKUP = 1, 2, 3  # a header's kind: a slice's gather, a task's end, or a cache lookup's agreement

class RanksTimedOut(ShardMismatch):
    """Some torchrun ranks did not reach a collective in time (hung, or far slower): the run stops on the ranks
    that waited, and torchrun stops the rest."""


def _task_key(name: str) -> int:
    return zlib.crc32(name.encode())


def _describe(header: np.ndarray, task: str) -> str:
    kind, key, call, a, b = (int(v) for v in header)
    where = f"task {task}" if key == _task_key(task) else f"another task (key {key:08x})"
    if kind == GATHER:
        return f"gather #{call} of {a} texts in {where}"
    if kind == LOOKUP:
        return f"cache lookup #{call} of {a} texts in {where}"
    return f"end of {where} ({'failed' if a else 'ok'})"


def _out_of_step(headers: np.ndarray) -> bool:
    """Ranks are in step when they make the same collective (a gather of the same slice, or the agreement on the
    same cache lookup) in the same task, or all end it, or some are in a collective while every rank at the end
    failed (those then stop the task too)."""
    if len(set(headers[:, 1])) > 1:
        return True
    ending = headers[headers[:, 0] == END]
    if len(ending) == len(headers):
        return False
    if len(ending):
        return not ending[:, 3].all()
    return len({(int(h[0]), int(h[2]), int(h[3])) for h in headers}) > 1


@dataclass
class ShardGroup:
    rank: int
    world: int
    device: str
    task: str = ""
    calls: int = 0  # collectives (gathers, cache lookups) so far in this task
    timeout_s: float = field(default_factory=group_timeout_s)
    arrivals: int = 0  # collectives this rank reached so far in the run (`_arrive`)
    _peer_end: np.ndarray | None = field(default=None, repr=False)  # the end headers a gather or lookup met
    _broken: ShardMismatch | None = field(default=None, repr=False)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def begin_task(self, name: str) -> None:
        """Name the task every header of the next collectives belongs to."""
        self.task, self.calls, self._peer_end = name, 0, None

    def agree_hits(self, hits: Collection[int], total: int) -> set[int]:
        """Of `total` texts looked up in the embedding cache, the ones every rank found (this rank found `hits`):
        the rest is encoded by all, so every rank goes on with the same texts to encode whatever its own read saw.
        Raises PeerFailed when another rank failed the task instead."""
        import torch
        import torch.distributed as dist

        self._collective(LOOKUP, total, len(hits))
        found = torch.zeros(total, dtype=torch.uint8)
        found[sorted(hits)] = 1
        found = found.to(torch.device(self.device))
        dist.all_reduce(found, op=dist.ReduceOp.MIN)
        return set(np.flatnonzero(found.cpu().numpy()).tolist())

    def gather(self, local: np.ndarray, total: int, dim: int) -> list[np.ndarray]:
        """All ranks' local arrays (rows, dim), in rank order, of one slice of `total` texts; ranks may hold
        different row counts. Raises PeerFailed when another rank failed the task instead."""
        import torch
        import torch.distributed as dist

        headers = self._collective(GATHER, total, local.shape[0])
        device = torch.device(self.device)
        counts = [int(c) for c in headers[:, 4]]
        padded = torch.zeros((max(counts), dim), dtype=torch.float32, device=device)
        padded[: local.shape[0]] = torch.from_numpy(np.ascontiguousarray(local, dtype=np.float32)).to(device)
        parts = [torch.empty_like(padded) for _ in range(self.world)]
        dist.all_gather(parts, padded)
        return [p[:c].cpu().numpy() for p, c in zip(parts, counts, strict=True)]

    def finish_task(self, failure: dict[str, str] | None) -> dict[int, dict[str, str]]:
        """Every rank's failure of the task ({rank: {"error", "traceback"}}, empty when it succeeded everywhere),
        given this rank's own. Raises ShardMismatch when the ranks are out of step."""

        if self._broken is not None:
            raise self._broken
        if self._peer_end is not None:  # this rank's part of the end exchange was its gather's (lookup's) header
            headers, payload = self._peer_end, b""
        else:
            payload = json.dumps(failure).encode() if failure else b""
            headers = self._exchange(END, 0, int(failure is not None), len(payload))
        self._peer_end = None
        lengths = [int(h[4]) if h[0] == END else 0 for h in headers]
        if not any(lengths):
            return {}
        return {r: json.loads(p) for r, p in enumerate(self._gather_bytes(payload, lengths)) if p}

    def agree_on_run(self, settings: dict[str, Any]) -> None:
        """Refuse ranks that were started to run different things (`settings`: the tasks, each task's identity with
        its data's hash, the run's options): their headers could still match (the same counts of other texts, other
        numerics) and their vectors would be silently paired. Raises UsageError naming what differs, rank by rank."""
        mine = json.dumps(settings, sort_keys=True, default=str).encode()
        self._arrive("the comparison of what the ranks run")
        parts = self._gather_bytes(mine)
        if len(set(parts)) == 1:
            return
        ranks = [json.loads(p) for p in parts]
        differing = [key for key in dict.fromkeys(k for r in ranks for k in r)
                     if len({json.dumps(r.get(key), sort_keys=True, default=str) for r in ranks}) > 1]  # fmt: skip
        detail = "; ".join(f"{key}: " + ", ".join(f"rank {n} {_brief(r.get(key))}" for n, r in enumerate(ranks))
                           for key in differing[:3])  # fmt: skip
        more = f" (and {len(differing) - 3} more)" if len(differing) > 3 else ""
        raise UsageError(f"torchrun ranks disagree on what to run: {detail}{more}; start every rank with the "
                         "same options and the same data (--data-dir contents), so they encode the same texts "
                         "alike")  # fmt: skip

    def meet(self) -> None:
        """Wait until every rank got here: the other ranks leave only once rank 0 wrote and said everything, so
        torchrun (which stops the ranks still running once one has exited) never cuts rank 0's last writes short."""
        import torch.distributed as dist

        self._arrive("the run's end")
        dist.barrier()

    def main_decides(self, choice: bool, what: str) -> bool:
        """Rank 0's `choice` on every rank (`what`: the decision, for a timeout's message): what rank 0 reads of the
        run directory decides, since ranks on hosts that do not share it would read other records."""
        import torch
        import torch.distributed as dist

        self._arrive(what)
        flag = torch.tensor([int(choice)], dtype=torch.uint8, device=torch.device(self.device))
        dist.broadcast(flag, src=0)
        return bool(flag.item())

    def _gather_bytes(self, payload: bytes, lengths: list[int] | None = None) -> list[bytes]:
        """Every rank's `payload`, in rank order; `lengths` (every rank's byte count) when a header already
        exchanged them, else they are gathered first. Bytes in a uint8 tensor: never a pickle."""
        import torch
        import torch.distributed as dist

        device = torch.device(self.device)
        if lengths is None:
            size = torch.tensor([len(payload)], dtype=torch.int64, device=device)
            sizes = [torch.empty_like(size) for _ in range(self.world)]
            dist.all_gather(sizes, size)
            lengths = [int(s.item()) for s in sizes]
        mine = torch.zeros(max(*lengths, 1), dtype=torch.uint8, device=device)
        if payload:
            mine[: len(payload)] = torch.frombuffer(bytearray(payload), dtype=torch.uint8).to(device)
        parts = [torch.empty_like(mine) for _ in range(self.world)]
        dist.all_gather(parts, mine)
        return [p[:n].cpu().numpy().tobytes() for p, n in zip(parts, lengths, strict=True)]

    def _collective(self, kind: int, a: int, b: int) -> np.ndarray:
        """The headers that open this task's next gather or lookup; PeerFailed when a rank ended the task instead."""
        if self._peer_end is not None:  # the task is over: mteb went on encoding after the first PeerFailed
            raise PeerFailed(self._peer_message())
        headers = self._exchange(kind, self.calls, a, b)
        self.calls += 1
        if (headers[:, 0] == END).any():
            self._peer_end = headers
            raise PeerFailed(self._peer_message())
        return headers

    def _exchange(self, kind: int, call: int, a: int, b: int) -> np.ndarray:
        """Every rank's header (world, 5): kind, task key, call, then a, b (gather: texts in the slice, this rank's
        rows; lookup: texts looked up, this rank's hits; end: failed, error bytes). Ranks out of step leave the
        group broken: each later call raises."""
        import torch
        import torch.distributed as dist

        if self._broken is not None:
            raise self._broken
        header = [kind, _task_key(self.task), call, a, b]
        self._arrive(_describe(np.array(header), self.task))
        mine = torch.tensor(header, dtype=torch.int64, device=torch.device(self.device))
        parts = [torch.empty_like(mine) for _ in range(self.world)]
        dist.all_gather(parts, mine)
        headers = torch.stack(parts).cpu().numpy()
        if _out_of_step(headers):
            ranks = "; ".join(f"rank {r}: {_describe(h, self.task)}" for r, h in enumerate(headers))
            self._broken = ShardMismatch(f"torchrun ranks are out of step ({ranks}); their vectors cannot be "
                                         "paired, so the run stops")  # fmt: skip
            raise self._broken
        return headers

    def _arrive(self, what: str) -> None:
        """Mark this rank's arrival at its next collective (`what`) in the group's store and wait, at most
        `timeout_s`, for every rank's mark: a rank that hangs without dying is then named instead of blocking the
        others inside the collective, where no signal gets through and torch's error names no rank. Raises
        RanksTimedOut naming the ranks that did not arrive."""
        import torch.distributed as dist

        if self._broken is not None:
            raise self._broken
        store = dist.distributed_c10d._get_default_store()  # the rendezvous store torchrun (or init_method) made
        self.arrivals += 1
        keys = [f"harness/arrival/{self.arrivals}/{r}" for r in range(self.world)]
        try:  # marking, as waiting, finds a store that is gone (before stop 66 only the wait said so; a walk)
            store.set(keys[self.rank], "1")
            if self.arrivals > 2:  # every rank here passed the wait before last, so nobody reads that mark again
                store.delete_key(f"harness/arrival/{self.arrivals - 2}/{self.rank}")
            absent = self._await_marks(store, keys)
        except RuntimeError as exc:  # the store itself is gone: torchrun's agent, or the rank holding it, died
            self._broken = ShardMismatch(f"torchrun's rendezvous store is unreachable at {what} ({exc}): another "
                                         "rank or the launcher stopped; tasks finished earlier stay in the run "
                                         "directory and the same command evaluates the rest")  # fmt: skip
            raise self._broken from None
        if not absent:
            return
        ranks = ", ".join(map(str, absent))
        self._broken = RanksTimedOut(
            f"torchrun rank {ranks} did not reach {what} within {self.timeout_s:g} s ({TIMEOUT_ENV}): hung, or "
            f"slower than that; rank {self.rank} stops the run. Tasks finished earlier stay in the run directory "
            f"and the same command evaluates the rest; raise {TIMEOUT_ENV} if a rank needs longer")  # fmt: skip
        raise self._broken

    def _await_marks(self, store: Any, keys: list[str]) -> list[int]:
        """Poll the store until every rank's mark is there (→ []) or `timeout_s` has passed (→ the ranks still
        missing). Polling, with a pause doubling from 1 ms to 0.2 s, rather than the store's own timed wait: a
        Ctrl-C or SIGTERM is handled between polls, and a TCPStore logs two warning lines for every wait that
        times out, which a rank waiting out rank 0's writes would print each second."""
        from conan_model.signals import raise_if_interrupted

        deadline, pause = time.monotonic() + self.timeout_s, 0.001
        while not store.check(keys):
            raise_if_interrupted()  # a signal whose exception a finalizer swallowed still stops the wait
            if time.monotonic() >= deadline:
                return [r for r, key in enumerate(keys) if not store.check([key])]
            time.sleep(pause)
            pause = min(2 * pause, 0.2)
        return []

    def _peer_message(self) -> str:
        failed = [r for r, h in enumerate(self._peer_end) if h[0] == END]
        return f"rank {', '.join(map(str, failed))} failed task {self.task}"


def _brief(value: Any) -> str:
    """A setting's value short enough for a one-line error (a task identity holds the whole run's settings)."""
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 80 else f"{text[:60]}…{text[-12:]}"


def rounding_note(dtype: str) -> str | None:
    """The note a torchrun run in a dtype below float32 prints once: each rank batches and pads its own slice of the
    texts, so vectors round otherwise than one process's and scores may differ (stop 61: 74.64 vs 74.45)."""
    if dtype == "float32":
        return None
    return (f"note: under torchrun in {dtype} scores may differ from one process's by {dtype} rounding (each rank "
            "batches and pads its own slice of the texts); --dtype float32 gives equal ones")


ORCHESTRATED = ("run `harness {command} CONFIG` alone, or spread a stage with `torchrun -m train` and an evaluation "
                "with `torchrun -m harness run`")  # what a pipeline's or an ablation's refusal advises


def refuse_torchrun(command: str, writes: str, instead: str = ORCHESTRATED) -> None:
    """Commands that orchestrate other steps (pipeline, ablate), or encode without sharding (alignment), run in one
    process: under torchrun every rank ran all of it and wrote the same files (before stop 61; alignment before
    stop 66, a walk). ``writes``: what each rank would write; ``instead``: how to run it."""
    world = launched_world_size()
    if world > 1:
        raise UsageError(f"harness {command} runs in one process, not under torchrun ({world} processes): every rank "
                         f"would run its steps and write {writes}; {instead.format(command=command)}")  # fmt: skip


def launcher() -> dict[str, Any] | None:
    """How the ranks were started ({"torchrun", "world_size", "nproc_per_node", "nnodes"}), None for one process:
    run.json's `command` is each rank's own argv, which names neither torchrun nor the processes (before stop 61
    nothing did)."""
    world = launched_world_size()
    if world <= 1 and "LOCAL_WORLD_SIZE" not in os.environ:
        return None
    return {"torchrun": "TORCHELASTIC_RUN_ID" in os.environ, "world_size": world,
            "nproc_per_node": int(os.environ.get("LOCAL_WORLD_SIZE", world)),
            "nnodes": int(os.environ.get("GROUP_WORLD_SIZE", 1))}  # fmt: skip


def bind_rank_device(requested: str | None) -> str | None:
    """Under torchrun with several processes, make this rank's accelerator (LOCAL_RANK's) the current one and
    return its name; None in a single process. Called before the model loads: a model moved to plain "cuda" goes
    to the current device, which was GPU 0 on every rank when the device was set only after an eager load (audit,
    stop 53: st:/hf: weights stayed on GPU 0 while rank 1's batches went to GPU 1; conan: every rank on GPU 0).
    An explicit index (`--device cuda:1`) is kept, as training keeps it (train/distributed.py); a LOCAL_RANK past
    the visible devices (--nproc_per_node too large) is refused, naming both."""
    if launched_world_size() <= 1:
        return None
    import torch

    from conan_model.device import device_count, local_rank_problem, pick_device

    device = pick_device(requested)
    if device.type in ("cpu", "mps"):
        return device.type
    index = device.index
    if index is None:
        index = int(os.environ.get("LOCAL_RANK", "0"))
        if problem := local_rank_problem(device.type, index, device_count(device.type) or 0):
            raise UsageError(problem)
    torch.get_device_module(device.type).set_device(index)
    return f"{device.type}:{index}"


def init_from_env(device: str) -> ShardGroup | None:
    """A ShardGroup when launched by torchrun with more than one process, else None (plain single process)."""
    world = launched_world_size()
    if world <= 1:
        return None
    from conan_model.device import dist_backend

    rank = int(os.environ["RANK"])
    device = bind_rank_device(device) or device
    timeout_s = group_timeout_s()
    join_process_group(dist_backend(device), timeout_s, "nothing was evaluated yet; rerun once every rank starts")
    return ShardGroup(rank, world, device, timeout_s=timeout_s)
