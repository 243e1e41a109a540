"""CPU benchmark of the Conan decoder: encode throughput and forward+backward step time per attention mask.

For each preset, the same padded batch (lengths drawn between seq_len/2 and seq_len) runs with the causal,
bidirectional and soft (alpha=0.5) masks, so the soft mask's cost over the bidirectional fast path shows up
as a ratio. The masks are timed interleaved (one call of each per round, the order rotating), and each ratio is
the median of the per-round ratios, so a change in the machine's speed hits every mask alike. Throughput counts
real (non-padding) tokens only.

    python benchmarks/bench_model.py --presets tiny,small --seq-len 128 --batch 8
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable, Hashable
from pathlib import Path

import torch
from common import positive_int, preset_names, results_dir, run_main, save_result
from tabulate import tabulate

from conan_model import ConanConfig, ConanModel, synchronize

MODES = (("causal", None), ("bidirectional", None), ("soft", 0.5))


def make_batch(
    vocab_size: int, batch: int, seq_len: int, device: torch.device, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random right-padded token ids and their mask; lengths uniform in [seq_len/2, seq_len], one full row."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(seq_len // 2, seq_len + 1, (batch,), generator=g)
    lengths[0] = seq_len
    mask = (torch.arange(seq_len)[None, :] < lengths[:, None]).long()
    ids = torch.randint(4, vocab_size, (batch, seq_len), generator=g).masked_fill(mask == 0, 0)
    return ids.to(device), mask.to(device)


def time_interleaved(fns: dict[Hashable, Callable[[], object]], device: torch.device, warmup: int,
                     iters: int) -> dict[Hashable, list[float]]:  # fmt: skip
    """Seconds of each timed call of every arm. Each round calls every arm once, the order rotating by one arm a
    round, so drift in the machine's speed and any advantage of a position hit all arms alike (bench_dhnm.py's
    side-by-side rule); ``warmup`` rounds run first, untimed. Every call ends synchronised on accelerators."""
    arms = list(fns)
    times: dict[Hashable, list[float]] = {arm: [] for arm in arms}
    for i in range(warmup + iters):
        shift = i % len(arms)
        for arm in arms[shift:] + arms[:shift]:
            start = time.perf_counter()
            fns[arm]()
            synchronize(device)
            if i >= warmup:
                times[arm].append(time.perf_counter() - start)
    return times


def paired_ratio(times: dict[Hashable, list[float]], arm: Hashable, base: Hashable) -> float:
    """Median over the rounds of ``arm``'s seconds ÷ ``base``'s in the same round: a slow round slows both."""
    return statistics.median(a / b for a, b in zip(times[arm], times[base], strict=True))


def time_call(fn: Callable[[], object], device: torch.device, warmup: int, iters: int) -> float:
    """Median seconds per call after ``warmup`` untimed calls (synchronised on accelerators)."""
    return statistics.median(time_interleaved({"call": fn}, device, warmup, iters)["call"])


def bench_modes(
    model: ConanModel,
    ids: torch.Tensor,
    mask: torch.Tensor,
    warmup: int,
    iters: int,
    step_batch: int | None = None,
) -> list[dict]:
    """Encode (inference) and forward+backward seconds per mask mode (medians), plus ratios against
    bidirectional (medians of the per-round ratios). The encodes of all modes are timed interleaved, then the steps.

    The fwd+bwd step uses the first ``step_batch`` rows (all by default), so a large encode batch can be timed
    next to a training-sized step.
    """
    device = ids.device
    real_tokens = int(mask.sum())
    step_ids, step_mask = ids[:step_batch], mask[:step_batch]

    def encode(mode: str, alpha: float | None) -> Callable[[], torch.Tensor]:
        @torch.inference_mode()
        def call() -> torch.Tensor:
            return model.eval().embed(ids, mask, mask_mode=mode, alpha=alpha)

        return call

    def step(mode: str, alpha: float | None) -> Callable[[], None]:
        def call() -> None:
            model.train()
            model.zero_grad(set_to_none=True)
            model.embed(step_ids, step_mask, mask_mode=mode, alpha=alpha).square().sum().backward()

        return call

    enc = time_interleaved({mode: encode(mode, alpha) for mode, alpha in MODES}, device, warmup, iters)
    fwd_bwd = time_interleaved({mode: step(mode, alpha) for mode, alpha in MODES}, device, warmup, iters)
    model.zero_grad(set_to_none=True)
    rows = []
    for mode, alpha in MODES:
        enc_s = statistics.median(enc[mode])
        rows.append({"mode": mode, "alpha": alpha, "real_tokens": real_tokens, "encode_s": enc_s,
                     "encode_tokens_per_s": real_tokens / enc_s, "fwd_bwd_s": statistics.median(fwd_bwd[mode]),
                     "fwd_bwd_real_tokens": int(step_mask.sum()),
                     "encode_vs_bidirectional": paired_ratio(enc, mode, "bidirectional"),
                     "fwd_bwd_vs_bidirectional": paired_ratio(fwd_bwd, mode, "bidirectional"),
                     "encode_times_s": enc[mode], "fwd_bwd_times_s": fwd_bwd[mode]})  # fmt: skip
    return rows


def table(rows: list[dict]) -> str:
    headers = [
        "preset",
        "params (M)",
        "mode",
        "encode tok/s",
        "encode ms",
        "fwd+bwd ms",
        "enc/bidir",
        "step/bidir",
    ]
    body = [
        [
            r["preset"],
            f"{r['params'] / 1e6:.1f}",
            r["mode"] + (f" a={r['alpha']}" if r["alpha"] is not None else ""),
            f"{r['encode_tokens_per_s']:,.0f}",
            f"{r['encode_s'] * 1e3:.1f}",
            f"{r['fwd_bwd_s'] * 1e3:.1f}",
            f"{r['encode_vs_bidirectional']:.3f}",
            f"{r['fwd_bwd_vs_bidirectional']:.3f}",
        ]
        for r in rows
    ]
    return tabulate(body, headers=headers)


def environment(device: torch.device) -> dict:
    """harness.sysinfo's record (packages, the CPU's model name, torch's threads) with this benchmark's device and
    the code it ran (the commit, "+dirty" with uncommitted .py edits). Before stop 51 it held
    `platform.processor()`, "x86_64" on Linux, and no commit or packages (audit). The device machine gets the tree
    without .git: there the commit is the one benchmarks/device_bundle.py wrote beside the wheels, which
    benchmarks/gpu_session.sh exports as HARNESS_CODE_VERSION."""
    from harness.sysinfo import code_version
    from harness.sysinfo import environment as system

    return {**system(), "device": str(device), "code": code_version() or os.environ.get("HARNESS_CODE_VERSION")}


def cpu_arguments(doc: str, result: str) -> argparse.Namespace:
    """The options of the CPU model and step benchmarks (presets, shape, repeats, threads, output file), parsed;
    sets the thread count."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", type=preset_names, default="tiny,small", help="comma-separated presets")
    parser.add_argument("--seq-len", type=int, default=128, help="tokens per row (and longest pair text)")
    parser.add_argument("--batch", type=int, default=8, help="rows per step (and pairs per weak step)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iters", type=positive_int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--out", type=Path, default=results_dir() / result)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    return args


def sweep_presets(args: argparse.Namespace, bench: Callable[[ConanModel], list[dict]],
                  table: Callable[[list[dict]], str]) -> None:  # fmt: skip
    """Each preset of --presets (seed 0, context at least --seq-len) through `bench` on the CPU: rows printed as
    `table` and saved to --out."""
    rows = []
    for name in args.presets:
        torch.manual_seed(0)
        model = ConanModel(ConanConfig.preset(name, max_length=max(args.seq_len, ConanConfig.preset(name).max_length)))
        rows += [{"preset": name, "params": model.num_parameters(), **row} for row in bench(model)]
    print(table(rows))
    result = {"env": environment(torch.device("cpu")), "seq_len": args.seq_len, "batch": args.batch, "results": rows}
    save_result(args.out, result)


def main() -> None:
    args = cpu_arguments(__doc__, "bench_model.json")

    def bench(model: ConanModel) -> list[dict]:
        ids, mask = make_batch(model.config.vocab_size, args.batch, args.seq_len, torch.device("cpu"))
        return bench_modes(model, ids, mask, args.warmup, args.iters)

    sweep_presets(args, bench, table)


if __name__ == "__main__":
    run_main(main)
