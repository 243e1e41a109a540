"""Training-step speed of an imported pretrained decoder (SmolLM2-135M by default), fp32 and bf16 autocast.

Each timed step is a full optimizer step as train/ runs it (Task wrapper, loss, backward, clipping, AdamW from
train.loop.build_optimizer): the weak stage's InfoNCE step under the soft mask (alpha = 0.5, the conversion)
and with the bidirectional mask, and LLM2Vec's MNTP step (bidirectional, 20% of the tokens masked). bf16 runs
the forward under torch.autocast with float32 master weights (what train/ does on accelerators); on a CPU
with AVX512-BF16 the matmuls then run in bf16. Tokens count real (non-padding) tokens. Every (dtype, step) arm
runs on one loaded model, interleaved (one step of each arm a round, the order rotating), so a change in the
machine's load hits all arms alike; ``vs_float32`` and ``vs_bidirectional`` are medians of the per-round ratios.

    harness models fetch smollm2-135m
    python benchmarks/bench_pretrained.py --threads 1 [--device cuda] [--dtypes float32,bfloat16]
"""

from __future__ import annotations

import argparse
import os
import statistics
from collections.abc import Callable
from pathlib import Path

import torch
from bench_model import environment, make_batch, paired_ratio, time_interleaved
from common import positive_int, results_dir, run_main, save_result
from tabulate import tabulate

from conan_model.importing import load_init
from train.config import StageConfig
from train.distributed import Task
from train.loop import build_optimizer
from train.losses import info_nce
from train.metrics import flops_per_token
from train.mntp import mask_tokens

STEPS = (("weak", "soft", 0.5), ("weak", "bidirectional", None), ("mntp", "bidirectional", None))


def bench(spec: str, device: torch.device, dtypes: list[torch.dtype], pairs: int, pair_len: int, rows: int,
          seq_len: int, warmup: int, iters: int) -> list[dict]:  # fmt: skip
    """One row per dtype and step kind: median optimizer-step seconds, real tokens/s, and the paired ratios to
    the same step in float32 (where float32 is among ``dtypes``) and, for the weak steps, to the bidirectional
    mask in the same dtype."""
    model, _ = load_init(spec)
    module = Task(model.to(device)).train()
    optimizer = build_optimizer(module, StageConfig(data=["-"]))
    cfg = model.config
    pair_ids, pair_mask = make_batch(cfg.vocab_size, 2 * pairs, pair_len, device, seed=1)
    text = torch.randint(4, cfg.vocab_size, (rows, seq_len), generator=torch.Generator().manual_seed(0))
    inputs, labels = (t.to(device) for t in mask_tokens(text, 0.2, 0, cfg.vocab_size, torch.Generator().manual_seed(1)))

    def step(dtype: torch.dtype, stage: str, mode: str, alpha: float | None) -> Callable[[], None]:
        def call() -> None:
            with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                if stage == "mntp":
                    loss = module("mntp_loss", inputs, labels)
                else:
                    emb = module("embed", pair_ids, pair_mask, mask_mode=mode, alpha=alpha)
                    loss = info_nce(emb[:pairs], emb[pairs:])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        return call

    arms = [(dtype, *kind) for dtype in dtypes for kind in STEPS]
    times = time_interleaved({arm: step(*arm) for arm in arms}, device, warmup, iters)
    out = []
    for arm in arms:
        dtype, stage, mode, alpha = arm
        seconds = statistics.median(times[arm])
        tokens = inputs.numel() if stage == "mntp" else int(pair_mask.sum())
        flops = flops_per_token(cfg, seq_len if stage == "mntp" else pair_len, lm_head=stage == "mntp") * tokens
        fp32 = (torch.float32, stage, mode, alpha)
        bidirectional = (dtype, stage, "bidirectional", None)
        out.append({"spec": spec, "params": model.num_parameters(), "dtype": str(dtype).removeprefix("torch."),
                    "stage": stage, "mode": mode, "alpha": alpha, "tokens": tokens, "step_s": seconds,
                    "tokens_per_s": tokens / seconds, "tflops": flops / seconds / 1e12,
                    "vs_float32": paired_ratio(times, arm, fp32) if fp32 in times else None,
                    "vs_bidirectional": paired_ratio(times, arm, bidirectional) if stage == "weak" else None,
                    "step_times_s": times[arm]})  # fmt: skip
    return out


def table(rows: list[dict]) -> str:
    headers = ["params (M)", "dtype", "step", "mask", "tokens/step", "step s", "tok/s", "TFLOP/s", "step/fp32",
               "step/bidir"]  # fmt: skip
    body = [[f"{r['params'] / 1e6:.1f}", r["dtype"], r["stage"], r["mode"] + (f" a={r['alpha']}" if r["alpha"] else ""),
             r["tokens"], f"{r['step_s']:.2f}", f"{r['tokens_per_s']:,.0f}", f"{r['tflops']:.3f}",
             *(f"{r[k]:.3f}" if r[k] is not None else "-" for k in ("vs_float32", "vs_bidirectional"))]
            for r in rows]  # fmt: skip
    return tabulate(body, headers=headers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", default="smollm2-135m", help="init spec: base name, conan:/hf:/gguf:")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--pairs", type=int, default=8, help="weak step: (query, positive) pairs")
    parser.add_argument("--pair-len", type=int, default=64, help="weak step: longest text (lengths in [L/2, L])")
    parser.add_argument("--rows", type=int, default=4, help="MNTP step: packed rows")
    parser.add_argument("--seq-len", type=int, default=128, help="MNTP step: row length")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iters", type=positive_int, default=6)  # 6 arms: each in every position once
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/bench_pretrained_<device>.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    dtypes = [getattr(torch, name) for name in args.dtypes.split(",")]
    rows = bench(args.spec, device, dtypes, args.pairs, args.pair_len, args.rows, args.seq_len, args.warmup, args.iters)
    print(table(rows))
    print(f"1-minute load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    out = args.out or results_dir() / f"bench_pretrained_{device.type}.json"
    result = {"env": environment(device), "loadavg_1min": os.getloadavg()[0], "pairs": args.pairs,
              "pair_len": args.pair_len, "rows": args.rows,
              "seq_len": args.seq_len, "results": rows}  # fmt: skip
    save_result(out, result)


if __name__ == "__main__":
    run_main(main)
