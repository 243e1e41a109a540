"""DHNM step-time overhead: the supervised retrieval step with dynamic hard negatives vs static ones, side by side.

Both modes run the real stage code (train.supervised_step.Stepper: tokenize, one bidirectional forward over queries,
positives and K hard negatives, MRL InfoNCE, backward, AdamW step) on the same rows, interleaved step by step
(the order alternates) so machine load hits both alike. The rule's own cost (``DHNM.update`` plus slot look-ups)
is also timed inside the step: on a busy shared CPU the step-time difference is noisy, the bookkeeping share is
not. Pools are BM25-mined from csnli_nli_zh; batches cycle over ``--queries`` queries so each recurs and both
branches of the rule (initial drop and decay) run during the timed steps.

    python benchmarks/bench_dhnm.py --preset tiny --steps 30 --batch 16
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from common import results_dir, run_main, save_result
from tabulate import tabulate

from conan_model import ConanConfig, ConanModel, train_tokenizer_from_texts
from conan_model.config import PRESETS
from harness.sysinfo import environment
from train.dhnm import DHNM, DHNMConfig
from train.distributed import Task as Routed
from train.distributed import init_runtime
from train.mining import mine_pools
from train.multitask import Task, TaskBatch, read_rows
from train.supervised_config import SupervisedConfig
from train.supervised_step import Stepper

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


class TimedDHNM(DHNM):
    """DHNM that adds the seconds spent in its own methods to ``spent``."""

    spent = 0.0

    def negatives(self, qid: int) -> list[int | None]:
        start = time.perf_counter()
        try:
            return super().negatives(qid)
        finally:
            self.spent += time.perf_counter() - start

    def update(self, qids: Sequence[int], sims: torch.Tensor) -> int:
        start = time.perf_counter()
        try:
            return super().update(qids, sims)
        finally:
            self.spent += time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    ap.add_argument("--steps", type=int, default=30, help="timed steps per mode")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, default=16, help="queries per step")
    ap.add_argument("--k", type=int, default=7, help="hard negatives per query")
    ap.add_argument("--max-length", type=int, default=64)
    ap.add_argument("--rows", type=int, default=2000, help="rows whose texts form the mining corpus")
    ap.add_argument("--queries", type=int, default=128, help="queries cycled through, so they recur and the "
                    "decay branch of the rule runs too")  # fmt: skip
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, help="JSON record (default benchmarks/results/bench_dhnm_<preset>.json)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    args.out = args.out or results_dir() / f"bench_dhnm_{args.preset}.json"

    rows = read_rows([args.data / "train/csnli_nli_zh/train.jsonl"], "retrieval")[: args.rows]
    corpus = [r["positive"] for r in rows] + [r["negative"] for r in rows if "negative" in r]
    pools = mine_pools([r["query"] for r in rows], [[r["positive"]] for r in rows], corpus, depth=32)
    texts = [t for r in rows for t in r.values()]
    tok = train_tokenizer_from_texts(texts, 2048)
    cfg = SupervisedConfig(tasks={"ret": {"kind": "retrieval", "data": ["x"], "batch_size": args.batch}},
                           hard_negatives=args.k, max_length=args.max_length, output_dir="/tmp/bench_dhnm")  # fmt: skip
    rt = init_runtime("cpu")
    torch.manual_seed(0)
    model = ConanModel(ConanConfig.preset(args.preset, vocab_size=tok.get_vocab_size(), max_length=args.max_length))
    module = Routed(model).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    dims, weights = cfg.mrl(model.config.hidden_size)
    tasks = {}
    for mode in ("static", "dynamic"):
        task = Task(mode, "retrieval", args.batch, 1.0, rows, [p["candidates"] for p in pools], hard_negatives=args.k)
        task.dhnm = TimedDHNM([len(p) for p in task.pools], DHNMConfig(k=args.k, mode=mode))
        task.dhnm_ids = list(range(len(rows)))  # a DHNM state per row: the timing does not depend on it
        tasks[mode] = task
    stepper = Stepper(cfg, rt, model.config, tok, tasks, dims, weights)

    tokens: dict[str, list[int]] = {"static": [], "dynamic": []}

    def one_step(mode: str, i: int) -> float:
        batch_rows = [(i * args.batch + j) % args.queries for j in range(args.batch)]
        start = time.perf_counter()
        result = stepper(module, TaskBatch(mode, batch_rows, batch_rows, i))
        result.loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        tokens[mode].append(result.tokens)
        return time.perf_counter() - start

    times: dict[str, list[float]] = {"static": [], "dynamic": []}
    for i in range(args.warmup + args.steps):
        order = ("static", "dynamic") if i % 2 == 0 else ("dynamic", "static")
        if i == args.warmup:
            for task in tasks.values():
                task.dhnm.spent = 0.0
        for mode in order:
            elapsed = one_step(mode, i)
            if i >= args.warmup:
                times[mode].append(elapsed)

    med = {m: statistics.median(t) for m, t in times.items()}
    ratios = [d / s for d, s in zip(times["dynamic"], times["static"], strict=True)]
    book = {m: tasks[m].dhnm.spent / sum(times[m]) for m in times}
    stats = tasks["dynamic"].dhnm.stats()
    mean_tokens = {m: statistics.fmean(t[args.warmup :]) for m, t in tokens.items()}
    table = [[m, f"{med[m] * 1e3:.1f}", f"{mean_tokens[m]:.0f}", f"{tasks[m].dhnm.spent / args.steps * 1e3:.3f}",
              f"{book[m]:.3%}"] for m in ("static", "dynamic")]  # fmt: skip
    headers = ["negatives", "median step ms", "tokens/step", "DHNM ms/step", "DHNM share of step"]
    print(tabulate(table, headers=headers, tablefmt="github"))
    overhead = statistics.median(ratios) - 1
    print(f"\nstep-time difference (median of paired ratios; includes the different negatives' lengths): "
          f"{overhead:+.2%}; DHNM bookkeeping share: "
          f"{book['dynamic']:.3%} (target <= 2%); initial drops {stats['initial_drops']}, decay replacements "
          f"{stats['decay_replacements']}, exhausted {stats['exhausted']}")  # fmt: skip
    record = {
        "args": {k: v for k, v in vars(args).items() if k != "out"},  # where it is written: no machine path
        "machine": environment(),  # CPU model, packages, threads, commit
        "median_step_s": med, "step_s": times, "paired_overhead": overhead, "mean_tokens_per_step": mean_tokens,
        "dhnm_seconds_per_step": {m: tasks[m].dhnm.spent / args.steps for m in times},
        "dhnm_share_of_step": book, "dhnm_stats": stats, "mrl_dims": dims,
    }  # fmt: skip
    save_result(args.out, record)


if __name__ == "__main__":
    run_main(main)
