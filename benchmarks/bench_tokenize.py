"""The tokenizer work of an st: model, transformers' way against the Rust backend's (`harness.backend_tokenizer.
BackendTokenizer`), side by side in one process, on every text an evaluation of each task encodes.

    python benchmarks/bench_tokenize.py [--data-dir ../shared/data] [--repeats 2]

Why: on an H200 minilm's tokenizer work (each window's counts, then each batch's sentence-transformers
preprocessing) took 20 s of the whole suite against 22 s of forward, and on the retrieval tasks more than the
forward (7.6 vs 4.4 s), so its end to end stayed at 0.48 of forward-only there (docs/harness.md, "Where the time
goes"). Per task (the texts of `gpu_speed.data_texts`, all of them, in the batches `harness run` makes: sorted by
length, at most 256 texts and 65,536 padded tokens), the two ways alternate which runs first, `repeats` times
each:
- transformers: the counts from the tokenizer's call (`_transformers_counts`), each batch from the model's own
  `preprocess` (what st: did before stop 42, and still does where the probes fail);
- backend: `BackendTokenizer.count` and `.batch` plus the probe-verified constants (what st: does now).
Counts and every batch's tensors must be equal (checked, reported). The 2-core CPU here understates the gain on a
GPU host, where the Rust part spreads over more cores and the Python it skips does not. Tokenizes with
TOKENIZERS_PARALLELISM as the shell set it, as `harness run` does. Prints a table and writes
benchmarks/results/bench_tokenize.json.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from common import DEFAULT_DATA, positive_int, run_main, tokenize_as_the_cli, write_report
from gpu_speed import SIZES, data_texts

from conan_model.batching import token_budget_batches
from harness.embedder import ModelOptions
from harness.models import load_model

MAX_BATCH, MAX_TOKENS = SIZES["gpu"]["batch"], SIZES["gpu"]["batch_tokens"]  # what the H200 runs used


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeats", type=positive_int, default=2)
    args = parser.parse_args()
    tokenize_as_the_cli()
    model = load_model("minilm", ModelOptions(device="cpu", dtype="float32"))
    tokens, preprocess = model._tokens, model._model.preprocess
    extras = tokens.verified_extras(lambda probe: preprocess(probe, prompt=None))
    tokens.count(["warm up"])  # the one-time check against transformers, outside the timed calls
    if extras is None or not tokens.counts_fast:
        raise SystemExit("minilm's tokenizer failed the backend's probes: nothing to compare")
    folders = sorted(p.parent for p in args.data_dir.rglob("task.json") if "train" not in p.parts)
    if not folders:
        raise SystemExit(f"--data-dir {args.data_dir}: no task folders (task.json) under it")

    def work(count: Callable[[list[str]], list[int]],
             batch: Callable[[list[str]], dict]) -> Callable[[list[str]], tuple[list[int], list[dict]]]:  # fmt: skip
        def run(texts: list[str]) -> tuple[list[int], list[dict]]:
            counts = count(texts)
            groups = token_budget_batches(counts, MAX_BATCH, MAX_TOKENS, False)
            return counts, [batch([texts[i] for i in group]) for group in groups]

        return run

    arms = {"transformers": work(tokens._transformers_counts, lambda texts: preprocess(texts, prompt=None)),
            "backend": work(tokens.count, lambda texts: {**tokens.batch(texts), **extras})}  # fmt: skip
    rows, per_task, totals = [], [], {arm: 0.0 for arm in arms}
    for i, folder in enumerate(folders):
        texts = data_texts(folder)
        seconds: dict[str, list[float]] = {arm: [] for arm in arms}
        out = {}
        for r in range(args.repeats):
            for arm in list(arms) if (i + r) % 2 == 0 else list(arms)[::-1]:
                start = time.perf_counter()
                out[arm] = arms[arm](texts)
                seconds[arm].append(time.perf_counter() - start)
        median = {arm: statistics.median(s) for arm, s in seconds.items()}
        for arm in arms:
            totals[arm] += median[arm]
        (counts_a, batches_a), (counts_b, batches_b) = out["transformers"], out["backend"]
        equal = counts_a == counts_b and all(
            list(a) == list(b) and all(torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k]
                                       for k in a)
            for a, b in zip(batches_a, batches_b, strict=True))  # fmt: skip
        per_task.append({"task": folder.name, "texts": len(texts), "tokens": sum(counts_a), "batches": len(batches_a),
                         "transformers_s": round(median["transformers"], 4), "backend_s": round(median["backend"], 4),
                         "speed_up": round(median["transformers"] / median["backend"], 2), "equal": equal})  # fmt: skip
        row = per_task[-1]
        rows.append([row["task"], row["texts"], row["tokens"], row["transformers_s"], row["backend_s"],
                     row["speed_up"], equal])  # fmt: skip
    summary = {"tasks": len(per_task), "texts": sum(r["texts"] for r in per_task),
               "tokens": sum(r["tokens"] for r in per_task), "transformers_s": round(totals["transformers"], 2),
               "backend_s": round(totals["backend"], 2),
               "speed_up": round(totals["transformers"] / totals["backend"], 2),
               "all_equal": all(r["equal"] for r in per_task)}  # fmt: skip
    rows.append(["all", summary["texts"], summary["tokens"], summary["transformers_s"], summary["backend_s"],
                 summary["speed_up"], summary["all_equal"]])  # fmt: skip
    write_report("bench_tokenize", rows,
                 ["task", "texts", "tokens", "transformers s", "backend s", "speed-up", "counts and batches equal"],
                 {"model": "minilm (st:, all-MiniLM-L6-v2's tokenizer, max_length 256)", "repeats": args.repeats,
                  "batches": {"max_batch": MAX_BATCH, "max_tokens": MAX_TOKENS},
                  "data_dir": str(args.data_dir), "summary": summary, "tasks": per_task})  # fmt: skip


if __name__ == "__main__":
    run_main(main)
