"""CPU benchmark of training steps: tokens/s and step time of the pretrain and weak steps per attention mask.

Each timed step is a full optimizer step as train/ runs it: the Task wrapper, the stage loss (causal LM on
packed rows; in-batch InfoNCE on padded query+positive pairs, lengths between seq_len/2 and seq_len), backward,
grad clipping, AdamW (train.loop.build_optimizer); fp32 on CPU, bf16 autocast on accelerators. The weak step
runs with the bidirectional, soft (alpha = 0.5) and causal masks side by side, interleaved (one step of each mask a
round, the order rotating), so the soft mask's cost shows as a ratio to the bidirectional step: the median of the
per-round ratios. Tokens count real (non-padding) tokens.

    python benchmarks/bench_train.py --presets tiny,small --seq-len 128 --batch 8
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

import torch
from bench_model import cpu_arguments, make_batch, paired_ratio, sweep_presets, time_interleaved
from common import run_main
from tabulate import tabulate

from conan_model import ConanModel
from train.config import StageConfig
from train.distributed import Task, autocast
from train.loop import build_optimizer
from train.losses import info_nce
from train.metrics import flops_per_token, peak_tflops

STEPS = (("pretrain", "causal", None), ("weak", "bidirectional", None), ("weak", "soft", 0.5),
         ("weak", "causal", None))  # fmt: skip


def bench_steps(model: ConanModel, device: torch.device, batch: int, seq_len: int, pair_batch: int,
                pair_len: int, warmup: int, iters: int, peak: float | None = None,
                steps: tuple = STEPS, deadline: float | None = None) -> list[dict]:  # fmt: skip
    """One row per (stage, mask) of ``steps``: median optimizer-step seconds, real tokens/s, MFU where the
    peak is known, and ``vs_bidirectional``, the median per-round ratio to the weak bidirectional step when that
    step is among them. A stage's masks are timed interleaved (bench_model.time_interleaved), one stage after the
    other (pretrain and weak differ in shape; on a compiled model each stage keeps its own shapes' warm-up).
    ``mfu`` counts full context² attention (PaLM, train/metrics.py); ``mfu_causal_half`` halves it for causal
    steps (the pretrain step, the weak causal mask), as a causal kernel computes, and equals ``mfu`` for the
    others. ``peak_mem_gib``: the most memory allocated while that step's calls ran (weights, gradients and
    optimizer state included), where the device reports it. Past ``deadline`` (time.monotonic()), a stage not
    yet started is only listed, each step with ``skipped``."""
    module = Task(model.to(device)).train()
    optimizer = build_optimizer(module, StageConfig(data=["-"]))
    cfg = model.config
    rows_ids = torch.randint(4, cfg.vocab_size, (batch, seq_len), generator=torch.Generator().manual_seed(0))
    rows_ids = rows_ids.to(device)
    pair_ids, pair_mask = make_batch(cfg.vocab_size, 2 * pair_batch, pair_len, device, seed=1)
    peak = peak_tflops(device, peak)
    mem = torch.get_device_module(device.type) if device.type != "cpu" else None
    has_stats = mem is not None and hasattr(mem, "max_memory_allocated") and hasattr(mem, "reset_peak_memory_stats")
    peak_mem: dict[tuple, float] = {}

    def step(key: tuple) -> Callable[[], None]:
        stage, mode, alpha = key

        def call() -> None:
            if has_stats:  # host-side counters: the peak of this call alone, kept as the step's largest
                mem.reset_peak_memory_stats()
            with autocast(device):
                if stage == "pretrain":
                    loss = module("lm_loss", rows_ids)
                else:
                    emb = module("embed", pair_ids, pair_mask, mask_mode=mode, alpha=alpha)
                    loss = info_nce(emb[:pair_batch], emb[pair_batch:])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if has_stats:
                peak_mem[key] = max(peak_mem.get(key, 0.0), mem.max_memory_allocated() / 2**30)

        return call

    times: dict[tuple, list[float]] = {}
    for stage in dict.fromkeys(key[0] for key in steps):
        if deadline is None or time.monotonic() <= deadline:
            times.update(time_interleaved({k: step(k) for k in steps if k[0] == stage}, device, warmup, iters))
    base = next((k for k in times if k[:2] == ("weak", "bidirectional")), None)
    out = []
    for key in steps:
        stage, mode, alpha = key
        if key not in times:
            out.append({"stage": stage, "mode": mode, "alpha": alpha, "skipped": "time budget"})
            continue
        seconds = statistics.median(times[key])
        tokens = rows_ids.numel() if stage == "pretrain" else int(pair_mask.sum())
        context = seq_len if stage == "pretrain" else pair_len
        lm_head, causal = stage == "pretrain", stage == "pretrain" or mode == "causal"
        flops = flops_per_token(cfg, context, lm_head) * tokens
        flops_half = flops_per_token(cfg, context, lm_head, causal_half=causal) * tokens
        mfu = flops / seconds / (peak * 1e12) if peak else None
        vs_bidirectional = paired_ratio(times, key, base) if stage == "weak" and base else None
        out.append({"stage": stage, "mode": mode, "alpha": alpha, "tokens": tokens, "step_s": seconds,
                    "tokens_per_s": tokens / seconds, "mfu": mfu,
                    "mfu_causal_half": flops_half / seconds / (peak * 1e12) if peak else None,
                    "peak_mem_gib": peak_mem.get(key), "fused_adamw": bool(optimizer.defaults.get("fused")),
                    "vs_bidirectional": vs_bidirectional, "step_times_s": times[key]})  # fmt: skip
    return out


def table(rows: list[dict]) -> str:
    headers = ["preset", "params (M)", "stage", "mask", "tokens/step", "step ms", "tok/s", "MFU", "step/bidir"]
    body = [[r["preset"], f"{r['params'] / 1e6:.1f}", r["stage"],
             r["mode"] + (f" a={r['alpha']}" if r["alpha"] is not None else ""), r["tokens"],
             f"{r['step_s'] * 1e3:.1f}", f"{r['tokens_per_s']:,.0f}",
             f"{r['mfu']:.1%}" if r["mfu"] is not None else "-",
             f"{r['vs_bidirectional']:.3f}" if r["vs_bidirectional"] is not None else "-"]
            for r in rows]  # fmt: skip
    return tabulate(body, headers=headers)


def main() -> None:
    args = cpu_arguments(__doc__, "bench_train.json")
    sweep_presets(args, lambda model: bench_steps(model, torch.device("cpu"), args.batch, args.seq_len, args.batch,
                                                  args.seq_len, args.warmup, args.iters), table)  # fmt: skip


if __name__ == "__main__":
    run_main(main)
