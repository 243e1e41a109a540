"""How long the GPU waits for the background tokenizer, modelled on a CPU: the real `Embedder._prefetched_stream`
and minilm's real tokenizer (counts, padded batches), with the model's forward stood in by sleeping the seconds an
H200 took for that many padded tokens (stop 43's measured run). Three settings side by side in one process:

- ``before``: what the H200 ran at stop 43: texts in input order, every window 1,024 texts, 2 items ahead;
- ``stop43``: shortest first by characters, windows growing from one batch (`window_spans`), 2 items ahead;
- ``now``: as ``stop43`` with `PREFETCH_DEPTH` (8) items ahead, so the next window is counted while most of this
  one's batches still run.

    python benchmarks/bench_wait_model.py [--data-dir ../shared/data] [--h200 JSON] [--repeats 3]

Why a model: no GPU runs here, and only the consumer's side (the forward) needs one. It is calibrated, not
measured: (1) the tokenizer time of ``before``, done here without a consumer, over the H200's for the same tasks
(its ``tokenize_s``) gives ``scale``, this CPU's slowness; (2) a least-squares fit of the H200's ``forward_s`` per
task to batches and padded tokens under ``before`` gives a batch's cost, ``per_batch + per_token x padded`` (on
the H200 minilm's forward is mostly the per-batch part: Python and kernel launches, not arithmetic); each task's
own ``forward_s`` over the fit's value for it rescales the fit to that task exactly; (3) a batch then sleeps its
cost times ``scale``. The sleep holds no GIL (a real forward's Python does), so this is the best case for hiding
the tokenizer. Its check: ``before``'s wait, divided by ``scale``, against the 0.70 s the H200 measured. The
projection puts the H200's copy and other seconds (encode - forward - wait - copy) back unchanged: e2e/forward =
F / (F + wait + copy + other), F moving with each setting's batches and padded tokens. The GPU figure comes from
the device script (gpu_session.sh); this one chooses what to run there. Each encode call of `harness run` is one
task file (queries, corpus), its texts deduplicated.

Prints a table per task and writes benchmarks/results/bench_wait_model.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from common import DEFAULT_DATA, RESULTS, is_retrieval_task, positive_int, run_main, tokenize_as_the_cli, write_report
from gpu_speed import PREFETCH_WINDOW, SIZES

from conan_model.batching import PREFETCH_DEPTH, token_budget_batches, window_spans
from harness.data import iter_jsonl, row_texts
from harness.embedder import ModelOptions
from harness.models import load_model

WINDOW = PREFETCH_WINDOW  # HarnessEncoder.flush_every: the window `encode_stream` gets
MAX_BATCH, MAX_TOKENS = SIZES["gpu"]["batch"], SIZES["gpu"]["batch_tokens"]  # what the H200 runs used
H200 = RESULTS / "gpu_speed_h200-harness-curve-prefetch-minilm-fresh.json"
# name: (texts shortest first, first window, items ahead)
ARMS = {"before": (False, WINDOW, 2), "stop43": (True, MAX_BATCH, 2), "now": (True, MAX_BATCH, PREFETCH_DEPTH)}


def retrieval_calls(data: Path) -> dict[str, list[list[str]]]:
    """Per retrieval task (the 13 of issue 16: 'Retrieval' in the name, and SciFact), the texts of each encode call:
    a file's distinct texts, a corpus document's title joined to its text as mteb joins them."""
    calls = {}
    for task_json in sorted(data.rglob("task.json")):
        folder = task_json.parent
        if "train" in folder.parts or not is_retrieval_task(folder.name):
            continue
        files = [folder / "queries.jsonl", folder / "corpus.jsonl"]
        calls[folder.name] = [list(dict.fromkeys(t for row in iter_jsonl(f) for t in row_texts(row, True)))
                              for f in files]  # fmt: skip
    return calls


def ordered(texts: list[str], shortest_first: bool) -> list[str]:
    return sorted(texts, key=len) if shortest_first else texts


def tokenizer_only(model: Any, texts: list[str], first_window: int) -> tuple[float, int, int]:
    """Seconds of tokenizer work of one call (each window counted, each batch prepared), no consumer; the batches
    and the padded tokens they hold."""
    start, batches, padded = time.perf_counter(), 0, 0
    for lo, hi in window_spans(len(texts), WINDOW, first_window):
        part = texts[lo:hi]
        for batch in token_budget_batches(model.count_tokens(part, None), MAX_BATCH, MAX_TOKENS):
            batches += 1
            padded += int(model.prepare_batch([part[i] for i in batch], None)["input_ids"].numel())
    return time.perf_counter() - start, batches, padded


def modelled_stream(model: Any, texts: list[str], arm: str, cost: Callable[[int], float]) -> dict[str, float]:
    """One call through the real prefetched stream, the forward a sleep of ``cost(padded tokens)`` seconds: wall,
    wait and forward (slept) seconds, batches and padded tokens."""
    shortest_first, first_window, depth = ARMS[arm]
    batches = padded = 0

    def forward(prepared: dict[str, Any], role: str | None) -> np.ndarray:
        nonlocal batches, padded
        tokens = int(prepared["input_ids"].numel())
        batches, padded = batches + 1, padded + tokens
        time.sleep(cost(tokens))
        return np.zeros((prepared["input_ids"].shape[0], model.embed_dim), dtype=np.float32)

    model.run_batch = forward
    model.timings.reset()
    start = time.perf_counter()
    for _ in model._prefetched_stream(ordered(texts, shortest_first), None, MAX_BATCH, MAX_TOKENS, WINDOW, None, {},
                                      first_window=first_window, depth=depth):  # fmt: skip
        pass
    wall = time.perf_counter() - start
    del model.run_batch
    return {"wall_s": wall, "wait_s": model.timings.wait_s, "forward_s": model.timings.forward_s, "batches": batches,
            "padded": padded}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--h200", type=Path, default=H200, help="the gpu_speed JSON whose minilm run calibrates")
    parser.add_argument("--repeats", type=positive_int, default=3, help="runs of each arm per task (median kept)")
    args = parser.parse_args()
    h200_rows = json.loads(args.h200.read_text())["parts"]["harness"]["result"]["minilm"]["rows"]
    measured = {r["task"]: r for r in h200_rows}
    calls = retrieval_calls(args.data_dir)
    missing = sorted(set(calls) - set(measured))
    if missing:
        raise SystemExit(f"--h200 {args.h200}: no minilm row for {missing}")
    tokenize_as_the_cli()  # the shell's TOKENIZERS_PARALLELISM, as the H200's `harness run` tokenized
    model = load_model("minilm", ModelOptions(device="cpu", dtype="float32"))
    model.count_tokens(["warm up"], None)
    here, shape = {}, {}
    for task, texts in calls.items():  # (1) tokenizer seconds, batches and padded tokens under `before`
        runs = [[tokenizer_only(model, t, WINDOW) for t in texts] for _ in range(args.repeats)]
        here[task] = statistics.median(sum(s for s, _, _ in run) for run in runs)
        shape[task] = (sum(b for _, b, _ in runs[0]), sum(p for _, _, p in runs[0]))
    scale = sum(here.values()) / sum(measured[t]["tokenize_s"] for t in calls)
    fit, *_ = np.linalg.lstsq(np.array([shape[t] for t in calls], dtype=float),
                              np.array([measured[t]["forward_s"] for t in calls]), rcond=None)  # fmt: skip
    per_batch, per_token = (float(x) for x in fit)
    if per_batch < 0 or per_token < 0:
        raise SystemExit(f"forward fit per batch {per_batch:.3g} s, per token {per_token:.3g} s: not a cost model")
    rows, per_task = [], []
    totals = {k: 0.0 for k in ("forward", "copy", "other", *(f"{a}_{p}" for a in ARMS for p in ("wait", "forward")))}
    for k, (task, texts) in enumerate(calls.items()):
        m = measured[task]
        task_factor = m["forward_s"] / (per_batch * shape[task][0] + per_token * shape[task][1])

        def cost(padded: int) -> float:
            return (per_batch + per_token * padded) * task_factor * scale  # noqa: B023 - used within this task
        results: dict[str, list[dict[str, float]]] = {arm: [] for arm in ARMS}
        for r in range(args.repeats):
            arms = list(ARMS)[(k + r) % len(ARMS):] + list(ARMS)[:(k + r) % len(ARMS)]  # rotate who runs first
            for arm in arms:
                runs = [modelled_stream(model, t, arm, cost) for t in texts]
                results[arm].append({key: sum(run[key] for run in runs) for key in runs[0]})
        row: dict[str, Any] = {"task": task, "texts": sum(map(len, texts)), "h200_wait_s": m["wait_s"],
                               "h200_forward_s": m["forward_s"]}  # fmt: skip
        other = m["encode_s"] - m["forward_s"] - m["wait_s"] - m["copy_s"]
        totals["forward"] += m["forward_s"]
        totals["copy"] += m["copy_s"]
        totals["other"] += other
        for arm in ARMS:
            wait = statistics.median(x["wait_s"] for x in results[arm]) / scale
            run = results[arm][0]
            forward = (per_batch * run["batches"] + per_token * run["padded"]) * task_factor
            row[f"{arm}_wait_s"] = round(wait, 4)
            row[f"{arm}_e2e_vs_forward"] = round(forward / (forward + wait + m["copy_s"] + other), 3)
            totals[f"{arm}_wait"] += wait
            totals[f"{arm}_forward"] += forward
        per_task.append(row)
        rows.append(list(row.values()))
        print(f"[{task}] {row}", flush=True)
    h200_encode = sum(measured[t]["encode_s"] for t in calls)
    summary: dict[str, Any] = {"scale": round(scale, 3), "per_batch_s": per_batch, "per_token_s": per_token,
                               "h200_wait_s": round(sum(measured[t]["wait_s"] for t in calls), 3),
                               "h200_e2e_vs_forward": round(totals["forward"] / h200_encode, 3)}  # fmt: skip
    for arm in ARMS:
        forward, wait = totals[f"{arm}_forward"], totals[f"{arm}_wait"]
        ratio = forward / (forward + wait + totals["copy"] + totals["other"])
        summary[arm] = {"wait_s": round(wait, 3), "forward_s": round(forward, 3), "e2e_vs_forward": round(ratio, 3)}
    rows.append(["all", sum(r["texts"] for r in per_task), summary["h200_wait_s"], round(totals["forward"], 3),
                 *(summary[arm][key] for arm in ARMS for key in ("wait_s", "e2e_vs_forward"))])  # fmt: skip
    write_report("bench_wait_model", rows,
                 ["task", "texts", "H200 wait s", "H200 forward s",
                  *(f"{arm} {what}" for arm in ARMS for what in ("wait s", "e2e/fwd"))],
                 {"model": "minilm tokenizer (CPU); forward modelled from the H200 run", "h200_json": args.h200.name,
                  "window": WINDOW, "gpu_sizes": [MAX_BATCH, MAX_TOKENS], "repeats": args.repeats,
                  "arms": {a: {"shortest_first": s, "first_window": f, "depth": d} for a, (s, f, d) in ARMS.items()},
                  "summary": summary, "tasks": per_task})  # fmt: skip
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    run_main(main)
