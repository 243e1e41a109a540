"""The order texts reach the model in: as mteb hands them over (windows of input order, each sorted by token
length) against shortest first by characters (what `HarnessEncoder.encode_texts` does since stop 43), with the
windows `encode_stream` makes (`window_spans`: one batch's worth, then doubling up to 1,024 texts), side by side in
one process.

    python benchmarks/bench_text_order.py [--data-dir ../shared/data] [--tasks A,B] [--limit 2048]

Why: `encode_stream` sorts each window (up to 1,024 texts) by token length, but windows in input order mix short
and long texts, so each length-sorted batch of a window still pads to its longest text; texts sorted by characters
first put like lengths in one window. Two measures:
- padded tokens (from the model's token counts, the batches `encode_stream` makes; no encoding) of every task's
  texts under `harness run`'s GPU sizes (256 texts, 65,536 tokens a batch) and its CPU ones (`HarnessEncoder`'s
  defaults), all tasks of the data: before stop 43 (input order, windows of 1,024), input order with growing
  windows, and now (shortest first, growing windows). A task folder's texts count as one call here; `harness run`
  sorts each encode call (queries, documents) apart, so these are close, not exact;
- the CPU encode wall of minilm (fp32) before and now, alternating which runs first per task, on ``--tasks``
  (default: the retrieval tasks, at most ``--limit`` texts each): now through `encode_stream` with the texts
  shortest first, before as the inline `encode_stream` loop was (input order, every window full), written out
  here; the vectors of the two compared (other batches, so float rounding apart, not bits). On a CPU nothing
  tokenizes ahead, so this shows the padding's share only, not the smaller first wait.
Prints two tables and writes benchmarks/results/bench_text_order.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import DEFAULT_DATA, positive_int, run_main, write_report
from gpu_speed import PREFETCH_WINDOW, SIZES, data_texts

from conan_model.batching import token_budget_batches, window_spans
from harness.embedder import ModelOptions
from harness.encoding import HarnessEncoder
from harness.models import load_model

WINDOW = PREFETCH_WINDOW  # HarnessEncoder.flush_every: the window `encode_stream` gets
GPU_SIZES = (SIZES["gpu"]["batch"], SIZES["gpu"]["batch_tokens"])  # what the H200 runs used


def padded_tokens(counts: list[int], max_batch: int, max_tokens: int, first_window: int) -> int:
    """Tokens the model computes (rows x each batch's longest row) for texts with these counts, in this order,
    in windows growing from ``first_window`` texts (WINDOW: all windows full, as before stop 43)."""
    total = 0
    for lo, hi in window_spans(len(counts), WINDOW, first_window):
        window = counts[lo:hi]
        total += sum(len(batch) * max(window[i] for i in batch)
                     for batch in token_budget_batches(window, max_batch, max_tokens))  # fmt: skip
    return total


def shortest_first(texts: list[str]) -> list[int]:
    return sorted(range(len(texts)), key=lambda i: len(texts[i]))


def encode_before(model: Any, texts: list[str], max_batch: int, max_tokens: int) -> np.ndarray:
    """The inline `encode_stream` of before stop 43: input order, full windows, each counted and cut into
    length-sorted batches, each batch encoded."""
    out = np.empty((len(texts), model.embed_dim), dtype=np.float32)
    for lo in range(0, len(texts), WINDOW):
        part = texts[lo : lo + WINDOW]
        for batch in token_budget_batches(model.count_tokens(part, None), max_batch, max_tokens):
            out[[lo + i for i in batch]] = model.encode_batch([part[i] for i in batch], None)
    return out


def encode_now(model: Any, texts: list[str], max_batch: int, max_tokens: int) -> np.ndarray:
    """What `HarnessEncoder.encode_texts` hands `encode_stream` now: the texts shortest first."""
    order = shortest_first(texts)
    out = np.empty((len(texts), model.embed_dim), dtype=np.float32)
    stream = model.encode_stream([texts[i] for i in order], None, max_batch, max_tokens, WINDOW)
    out[order] = np.concatenate([vectors for _, _, vectors, _ in stream])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--tasks", default=None, help="comma-separated task folders to time (default: *Retrieval*)")
    parser.add_argument("--limit", type=positive_int, default=2048, help="texts per timed task (over a window: 1,024)")
    args = parser.parse_args()
    folders = sorted(p.parent for p in args.data_dir.rglob("task.json") if "train" not in p.parts)
    if not folders:
        raise SystemExit(f"--data-dir {args.data_dir}: no task folders (task.json) under it")
    wanted = set(args.tasks.split(",")) if args.tasks else None
    if unknown := sorted((wanted or set()) - {f.name for f in folders}):  # before, timed nothing and wrote zeros
        raise SystemExit(f"--tasks: no task folder {', '.join(unknown)} under {args.data_dir}")
    model = load_model("minilm", ModelOptions(device="cpu", dtype="float32"))
    cpu = HarnessEncoder(model, show_progress=False)
    cpu_sizes = (cpu.batch_size, cpu.max_batch_tokens)
    ways = ("before", "input", "sorted")  # (order, first window): input, WINDOW; input, a batch; sorted, a batch
    padding = {"real": 0, **{f"{sizes}_{way}": 0 for sizes in ("gpu", "cpu") for way in ways}}
    for folder in folders:
        texts = data_texts(folder)
        counts = model.count_tokens(texts, None)
        ordered = [counts[i] for i in shortest_first(texts)]
        padding["real"] += sum(counts)
        for sizes, (max_batch, max_tokens) in (("gpu", GPU_SIZES), ("cpu", cpu_sizes)):
            padding[f"{sizes}_before"] += padded_tokens(counts, max_batch, max_tokens, WINDOW)
            padding[f"{sizes}_input"] += padded_tokens(counts, max_batch, max_tokens, max_batch)
            padding[f"{sizes}_sorted"] += padded_tokens(ordered, max_batch, max_tokens, max_batch)
    pad_rows = [[sizes, padding["real"], *(round(padding[f"{sizes}_{way}"] / padding["real"], 3) for way in ways),
                 round(1 - padding[f"{sizes}_sorted"] / padding[f"{sizes}_before"], 3)]
                for sizes in ("gpu", "cpu")]  # fmt: skip
    timed = [f for f in folders if (f.name in wanted if wanted else "Retrieval" in f.name)]
    arms = {"before": encode_before, "now": encode_now}
    rows, per_task, totals = [], [], dict.fromkeys(arms, 0.0)
    for k, folder in enumerate(timed):
        texts = data_texts(folder, args.limit)
        vectors, seconds = {}, {}
        for arm in list(arms) if k % 2 == 0 else list(arms)[::-1]:
            start = time.perf_counter()
            vectors[arm] = arms[arm](model, texts, *cpu_sizes)
            seconds[arm] = time.perf_counter() - start
            totals[arm] += seconds[arm]
        diff = float(np.abs(vectors["before"] - vectors["now"]).max())
        per_task.append({"task": folder.name, "texts": len(texts), "before_s": round(seconds["before"], 3),
                         "now_s": round(seconds["now"], 3),
                         "speed_up": round(seconds["before"] / seconds["now"], 3), "max_abs_diff": diff})  # fmt: skip
        rows.append(list(per_task[-1].values()))
    summary = {"before_s": round(totals["before"], 2), "now_s": round(totals["now"], 2),
               "speed_up": round(totals["before"] / max(totals["now"], 1e-9), 3),
               "max_abs_diff": max((r["max_abs_diff"] for r in per_task), default=None)}  # fmt: skip
    rows.append(["all", sum(r["texts"] for r in per_task), *summary.values()])
    from tabulate import tabulate

    print(tabulate(pad_rows, headers=["sizes", "real tokens", "padded / real: before", "input order, growing windows",
                                      "now: shortest first, growing", "fewer padded than before"],
                   tablefmt="github"))  # fmt: skip
    print()
    write_report("bench_text_order", rows,
                 ["task", "texts", "before s", "now s", "speed-up", "vectors max |diff|"],
                 {"model": "minilm (fp32, CPU)", "window": WINDOW, "gpu_sizes": GPU_SIZES, "cpu_sizes": cpu_sizes,
                  "limit": args.limit, "data_dir": str(args.data_dir), "padding": padding,
                  "padding_rows": pad_rows, "summary": summary, "tasks": per_task})  # fmt: skip


if __name__ == "__main__":
    run_main(main)
