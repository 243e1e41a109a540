"""Training-step speed of an imported pretrained decoder (SmolLM2-135M by default), fp32 and bf16 autocast.

Each timed step is a full optimizer step as train/ runs it (Task wrapper, loss, backward, clipping, AdamW from
train.loop.build_optimizer): the weak stage's InfoNCE step under the soft mask (alpha = 0.5, the conversion)
and with the bidirectional mask, and LLM2Vec's MNTP step (bidirectional, 20% of the tokens masked). bf16 runs
the forward under torch.autocast with float32 master weights (what train/ does on accelerators); on a CPU
with AVX512-BF16 the matmuls then run in bf16. Tokens count real (non-padding) tokens.

    harness models fetch smollm2-135m
    python benchmarks/bench_pretrained.py --threads 1 [--device cuda] [--dtypes float32,bfloat16]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
from bench_model import environment, make_batch, time_call
from common import save_result
from tabulate import tabulate

from conan_model.importing import load_init
from train.config import StageConfig
from train.distributed import Task
from train.loop import build_optimizer
from train.losses import info_nce
from train.metrics import flops_per_token
from train.mntp import mask_tokens

STEPS = (("weak", "soft", 0.5), ("weak", "bidirectional", None), ("mntp", "bidirectional", None))


def bench(spec: str, device: torch.device, dtype: torch.dtype, pairs: int, pair_len: int, rows: int, seq_len: int,
          warmup: int, iters: int) -> list[dict]:  # fmt: skip
    """One row per step kind: median optimizer-step seconds and real tokens/s."""
    model, _ = load_init(spec)
    module = Task(model.to(device)).train()
    optimizer = build_optimizer(module, StageConfig(data=["-"]))
    cfg = model.config
    pair_ids, pair_mask = make_batch(cfg.vocab_size, 2 * pairs, pair_len, device, seed=1)
    text = torch.randint(4, cfg.vocab_size, (rows, seq_len), generator=torch.Generator().manual_seed(0))
    inputs, labels = (t.to(device) for t in mask_tokens(text, 0.2, 0, cfg.vocab_size, torch.Generator().manual_seed(1)))
    out = []
    for stage, mode, alpha in STEPS:

        def step(stage: str = stage, mode: str = mode, alpha: float | None = alpha) -> None:
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

        seconds = time_call(step, device, warmup, iters)
        tokens = inputs.numel() if stage == "mntp" else int(pair_mask.sum())
        flops = flops_per_token(cfg, seq_len if stage == "mntp" else pair_len, lm_head=stage == "mntp") * tokens
        out.append({"spec": spec, "params": model.num_parameters(), "dtype": str(dtype).removeprefix("torch."),
                    "stage": stage, "mode": mode, "alpha": alpha, "tokens": tokens, "step_s": seconds,
                    "tokens_per_s": tokens / seconds, "tflops": flops / seconds / 1e12})  # fmt: skip
    return out


def table(rows: list[dict]) -> str:
    headers = ["params (M)", "dtype", "step", "mask", "tokens/step", "step s", "tok/s", "TFLOP/s"]
    body = [[f"{r['params'] / 1e6:.1f}", r["dtype"], r["stage"], r["mode"] + (f" a={r['alpha']}" if r["alpha"] else ""),
             r["tokens"], f"{r['step_s']:.2f}", f"{r['tokens_per_s']:,.0f}", f"{r['tflops']:.3f}"]
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
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--out", type=Path, help="default: benchmarks/results/bench_pretrained_<device>.json")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    rows = []
    for name in args.dtypes.split(","):
        rows += bench(args.spec, device, getattr(torch, name), args.pairs, args.pair_len, args.rows, args.seq_len,
                      args.warmup, args.iters)  # fmt: skip
    print(table(rows))
    print(f"1-minute load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    out = args.out or Path(f"benchmarks/results/bench_pretrained_{device.type}.json")
    result = {"env": environment(device), "loadavg_1min": os.getloadavg()[0], "pairs": args.pairs,
              "pair_len": args.pair_len, "rows": args.rows,
              "seq_len": args.seq_len, "results": rows}  # fmt: skip
    save_result(out, result)


if __name__ == "__main__":
    main()
