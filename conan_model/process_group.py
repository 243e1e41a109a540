"""Joining torchrun's process group with one timeout and one error, for `harness run` and training alike.

Ranks run the same steps in step, so one waits for another only by their difference (rank 0's writes after a task
or a checkpoint, a model load slower on one host): minutes at worst, an estimate, not a measurement. Ten minutes
(HARNESS_DIST_TIMEOUT_S, both commands) stops a hung rank 20 minutes before gloo's own 30 would; it equals NCCL's.
Imports torch only when it joins: the harness reads the timeout before any model loads.
"""

from __future__ import annotations

import os
import re

from conan_model.errors import ConanError, launched_world_size

TIMEOUT_ENV = "HARNESS_DIST_TIMEOUT_S"
DEFAULT_TIMEOUT_S = 600.0


class GroupNotFormed(ConanError):
    """A torchrun rank never joined the process group (it died or failed before it): the ranks that did stop with
    this instead of torch's DistStoreError traceback, which names no rank."""


def group_timeout_s() -> float:
    """How long a rank waits for the others (joining, at a collective): HARNESS_DIST_TIMEOUT_S, else
    DEFAULT_TIMEOUT_S."""
    value = os.environ.get(TIMEOUT_ENV, "").strip()
    if not value:
        return DEFAULT_TIMEOUT_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise ConanError(f"{TIMEOUT_ENV}={value!r}: give the seconds a torchrun rank waits for the others at a "
                         f"collective, a positive number (default {DEFAULT_TIMEOUT_S:.0f})")  # fmt: skip
    return seconds


def join_process_group(backend: str, timeout_s: float, kept: str) -> None:
    """Join the default group (unless joined), with ``timeout_s`` for joining and for torch's collectives. A rank
    that does not join within it raises GroupNotFormed naming the world size, the ranks torch waited for (from its
    message) and what is ``kept``."""
    from datetime import timedelta

    import torch.distributed as dist

    if dist.is_initialized():
        return
    try:
        dist.init_process_group(backend=backend, timeout=timedelta(seconds=timeout_s))
    except dist.DistError as exc:  # DistStoreError: a key never written; DistNetworkError: no store to reach
        raise GroupNotFormed(not_formed_message(str(exc), launched_world_size(), timeout_s,
                                                kept)) from None  # fmt: skip


def not_formed_message(torch_error: str, world: int, timeout_s: float, kept: str) -> str:
    """The line for a group that did not form: the ranks are the last number of each key torch waited for
    ("keys: /default_pg/0//cpu//0/1" → rank 1), or the count of those missing from rank 0's store ("1/2 clients
    joined"), else "another rank"."""
    keys = torch_error.partition("keys: ")[2]
    ranks = sorted({int(m) for m in re.findall(r"/(\d+)(?=$|[\s,\]])", keys)})
    joined = re.search(r"(\d+)/(\d+) clients joined", torch_error)
    who = (f"rank {', '.join(map(str, ranks))}" if ranks
           else f"{int(joined[2]) - int(joined[1])} of them" if joined else "another rank")  # fmt: skip
    first = torch_error.strip().splitlines()[0] if torch_error.strip() else "no detail"
    return (f"torchrun's group of {world} ranks did not form within {timeout_s:g} s ({TIMEOUT_ENV}): {who} did "
            f"not join (it failed or died before joining: see its error, or it is slower than that); {kept} "
            f"(torch: {first})")


def collective_timed_out(exc: BaseException) -> bool:
    """Whether ``exc`` is gloo's collective timeout (a rank waited the group's timeout for another): a plain
    RuntimeError ("... Timed out waiting 600000ms for recv operation to complete") that only its text tells apart.
    NCCL's watchdog ends the process instead, without a Python exception."""
    return isinstance(exc, RuntimeError) and "Timed out waiting" in str(exc)
