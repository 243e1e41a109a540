"""Token counting of st: and hf: models: transformers' tokenizer call against `harness.backends.TokenCounter`'s
Rust backend, side by side in one process, on every text an evaluation of each task encodes.

    python benchmarks/bench_count_tokens.py [--data-dir ../shared/data] [--repeats 2]

Why: on an H200 minilm's tokenizer work (each window's counts, then each batch's own tokenizer call) took 20 s of
the whole suite against 22 s of forward, and on the retrieval tasks more than the forward (7.6 vs 4.4 s), so its
end to end stayed at 0.48 of forward-only there (docs/harness.md, "Where the time goes"). Counting is half of
that work and needs no Python lists. Per task (the texts of `gpu_speed.data_texts`, all of them), the two ways
alternate which runs first, `repeats` times each; the counts must be equal for every text (checked, and
reported). The 2-core CPU here understates the gain on a GPU host, where the Rust part spreads over more
cores and the Python conversion it skips does not. Tokenizes with TOKENIZERS_PARALLELISM as the shell set it,
as `harness run` does. Prints a table and writes benchmarks/results/bench_count_tokens.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

_SHELL_TOKENIZERS_PARALLELISM = os.environ.get("TOKENIZERS_PARALLELISM")  # before common.py's scratch_env

from common import DEFAULT_DATA, write_report  # noqa: E402
from gpu_speed import data_texts  # noqa: E402

from harness.backends import TokenCounter  # noqa: E402
from harness.embedder import ModelOptions  # noqa: E402
from harness.models import load_model  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    if _SHELL_TOKENIZERS_PARALLELISM is None:  # as `harness run` tokenizes: the library's parallel default
        os.environ.pop("TOKENIZERS_PARALLELISM", None)
    else:
        os.environ["TOKENIZERS_PARALLELISM"] = _SHELL_TOKENIZERS_PARALLELISM
    model = load_model("minilm", ModelOptions(device="cpu", dtype="float32"))
    counter = TokenCounter(model._model.tokenizer, model.max_length)
    if not counter.fast:
        raise SystemExit("minilm's tokenizer is not a fast tokenizer: nothing to compare")
    folders = sorted(p.parent for p in args.data_dir.rglob("task.json") if "train" not in p.parts)
    if not folders:
        raise SystemExit(f"--data-dir {args.data_dir}: no task folders (task.json) under it")
    arms = {"transformers": counter._transformers,
            "backend": lambda texts: [len(e) for e in counter._backend.encode_batch(texts)]}  # fmt: skip
    rows, per_task, totals = [], [], {arm: 0.0 for arm in arms}
    for i, folder in enumerate(folders):
        texts = data_texts(folder)
        seconds: dict[str, list[float]] = {arm: [] for arm in arms}
        counts = {}
        for r in range(args.repeats):
            for arm in (list(arms) if (i + r) % 2 == 0 else list(arms)[::-1]):
                start = time.perf_counter()
                counts[arm] = arms[arm](texts)
                seconds[arm].append(time.perf_counter() - start)
        median = {arm: statistics.median(s) for arm, s in seconds.items()}
        for arm in arms:
            totals[arm] += median[arm]
        equal = counts["transformers"] == counts["backend"]
        per_task.append({"task": folder.name, "texts": len(texts), "tokens": sum(counts["transformers"]),
                         "transformers_s": round(median["transformers"], 4), "backend_s": round(median["backend"], 4),
                         "speed_up": round(median["transformers"] / median["backend"], 2),
                         "counts_equal": equal})  # fmt: skip
        rows.append([folder.name, len(texts), per_task[-1]["tokens"], per_task[-1]["transformers_s"],
                     per_task[-1]["backend_s"], per_task[-1]["speed_up"], equal])  # fmt: skip
    tokens = sum(r["tokens"] for r in per_task)
    summary = {"tasks": len(per_task), "texts": sum(r["texts"] for r in per_task), "tokens": tokens,
               "transformers_s": round(totals["transformers"], 2), "backend_s": round(totals["backend"], 2),
               "speed_up": round(totals["transformers"] / totals["backend"], 2),
               "all_counts_equal": all(r["counts_equal"] for r in per_task)}  # fmt: skip
    rows.append(["all", summary["texts"], tokens, summary["transformers_s"], summary["backend_s"],
                 summary["speed_up"], summary["all_counts_equal"]])  # fmt: skip
    write_report("bench_count_tokens", rows,
                 ["task", "texts", "tokens", "transformers s", "backend s", "speed-up", "counts equal"],
                 {"model": "minilm (all-MiniLM-L6-v2's tokenizer, max_length 256)", "repeats": args.repeats,
                  "data_dir": str(args.data_dir), "summary": summary, "tasks": per_task})  # fmt: skip


if __name__ == "__main__":
    main()
