"""Inference batching: length-sorted token-budget batches, a background producer, and where the time goes.

Pure Python at import (no torch), so `harness.encoding` can share `token_budget_batches` without paying for torch.

* ``token_budget_batches``: indices grouped longest-first so that rows x padded width <= max_tokens; one stable
  sort, so the batches of a list of texts never depend on who asks.
* ``prefetch``: runs a generator in a background thread, ``depth`` items ahead, re-raising its exception in the
  consumer and stopping it when the consumer stops. ConanEncoder tokenizes and pads the next window there while
  the model runs the current one (HF ``tokenizers`` and most torch ops release the GIL).
* ``EncodeTimings``: seconds per part of encoding, summed over calls until ``reset``: tokenizing and padding (in
  the producer thread, so they may overlap the forward), waiting for the producer (the part that did not),
  host<->device copies, and the model forward. On CUDA the copy and forward figures are device time from CUDA
  events; elsewhere host wall time (the CPU computes synchronously).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

T = TypeVar("T")

# Items (padded batches and window marks) a background producer may run ahead of the model: enough that it counts
# the next window while the model still has most of this one's batches to run (a window of 1,024 texts is 4 batches
# at the GPU's 256), not only the last one or two, and a few MB of pinned token ids at most.
PREFETCH_DEPTH = 8


def padded_width(longest: int, multiple: int, cap: int | None = None) -> int:
    """A batch's length when padded to a multiple of ``multiple`` tokens but never past ``cap`` (the max length,
    which texts are truncated to: a cap that is no multiple ends the rounding there), nor below the longest row."""
    if multiple < 1:
        raise ValueError(f"pad multiple {multiple}: must be at least 1")
    rounded = -(-longest // multiple) * multiple
    return max(longest, rounded if cap is None else min(rounded, cap))


def token_budget_batches(lengths: list[int], max_batch: int, max_tokens: float = float("inf"), packed: bool = False,
                         multiple: int = 1, cap: int | None = None) -> list[list[int]]:  # fmt: skip
    """Indices grouped longest-first so that rows x padded width <= max_tokens (and rows <= max_batch).

    The padded width is `padded_width`: the longest row's length rounded up to ``multiple`` (the model pads its
    batches to a multiple of that many tokens: --pad-to-multiple-of) within ``cap`` (its max length), so the budget
    bounds the tokens the model computes, not the texts' own.
    The sort is stable: equal lengths keep their input order. ``max_tokens`` inf batches by row count only.
    ``packed``: the model concatenates a batch's texts without padding (me5-small's C engine), so a batch costs
    the sum of its rows' tokens; then sum <= max_tokens alone bounds it (no row cap: rows cost nothing extra,
    and fewer, larger engine calls mean fewer thread synchronisations per token).
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    total = 0
    for i in order:
        if current:
            if packed:
                full = total + lengths[i] > max_tokens
            else:
                width = max(padded_width(lengths[current[0]], multiple, cap), 1)  # the first row is the longest
                full = len(current) >= max_batch or (len(current) + 1) * width > max_tokens
            if full:
                batches.append(current)
                current, total = [], 0
        current.append(i)
        total += lengths[i]
    if current:
        batches.append(current)
    return batches


_DONE = object()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def window_spans(n: int, window: int, first: int) -> Iterator[tuple[int, int]]:
    """(start, end) of the windows `encode_stream` counts and sorts ``n`` texts in: ``first`` texts (one batch's
    worth), then twice as many each time up to ``window``. Why: nothing of a window can run before all of it is
    counted (its batches are sorted by length), so with full windows the model waited, at every call, for a whole
    window's tokenizing (on an H200, minilm's retrieval tasks: 0.70 s of 4.02 s, stop 43). Doubling, each window
    is counted while the one before it runs; the first wait is one batch's. The harness hands texts shortest
    first (`HarnessEncoder.encode_texts`), so small windows still hold like lengths and pad little."""
    lo, size = 0, max(1, min(first, window))
    while lo < n:
        yield lo, min(lo + size, n)
        lo, size = lo + size, min(2 * size, window)


def prefetch(items: Iterable[T], depth: int = PREFETCH_DEPTH) -> Iterator[T]:
    """Yield ``items`` while a daemon thread produces up to ``depth`` of them ahead; ``depth`` 0 runs inline.

    An exception in the producer is raised here, at the item where it happened. Closing the returned generator
    (or an exception in the consumer) stops the producer at its next item.
    """
    if depth <= 0:
        yield from items
        return
    box: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                box.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            put(_Failure(exc))
            return
        put(_DONE)

    worker = threading.Thread(target=produce, name="conan-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = box.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item
    finally:
        stop.set()
        worker.join()


def timed(items: Iterator[T], add: Callable[[float], None]) -> Iterator[T]:
    """``items``, handing ``add`` the seconds each one took to produce (not the consumer's time between them):
    a consumer's wait on a producer. Closing this closes ``items`` where it can be closed (a generator: stopping
    a background producer). A ``next`` that raises is not timed; the exception goes on to the consumer."""
    try:
        while True:
            start = time.perf_counter()
            item = next(items, _DONE)
            add(time.perf_counter() - start)
            if item is _DONE:
                return
            yield item
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()


@dataclass
class EncodeTimings:
    """Seconds per part of encoding (summed until ``reset``) and the work done; see the module docstring."""

    tokenize_s: float = 0.0  # tokenizer (producer thread; overlaps the forward when prefetching)
    collate_s: float = 0.0  # padding into tensors, pinning (producer thread)
    wait_s: float = 0.0  # the consumer waiting for the producer: host preparation not hidden behind the model
    # (a backend that tokenizes on the consumer's thread: all its tokenizer time)
    copy_s: float = 0.0  # host -> device inputs and device -> host embeddings
    forward_s: float = 0.0  # the model forward and pooling
    batches: int = 0
    texts: int = 0
    tokens: int = 0  # real tokens (prompt and special tokens included, after truncation)

    def add(self, other: EncodeTimings) -> None:
        for key, value in asdict(other).items():
            setattr(self, key, getattr(self, key) + value)

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]

    def as_dict(self, digits: int = 4) -> dict[str, float | int]:
        return {k: round(v, digits) if isinstance(v, float) else v for k, v in asdict(self).items()}
