"""Device-machine benchmark of training throughput and MFU: the small and conan-v2-1.4b presets in bf16 autocast.

Per preset, full optimizer steps as train/ runs them (fp32 master weights, AdamW, grad clipping): the pretrain
step on --batch packed rows of --seq-len tokens (causal LM, tied 150k-vocabulary head for the 1.4B preset), and
the weak step on --pair-batch query+positive pairs of up to --pair-len tokens with the bidirectional, soft
(alpha = 0.5) and causal masks. Reports real tokens/s, step time, MFU (6·N·tokens/s plus attention, ÷ the
device's dense bf16 peak from train.metrics.PEAK_TFLOPS or --peak-tflops; ``mfu`` counts full T² attention as PaLM
does, ``mfu_causal_half`` halves it for causal steps) and each step's own peak memory; writes
benchmarks/results/gpu_train.json. Exits cleanly (status 0) with a message when no accelerator is present.

    python benchmarks/gpu_train.py                                   # on a CUDA (or Ascend) machine
    python benchmarks/gpu_train.py --device cpu --presets tiny --seq-len 64 --pair-len 32 --batch 2  # smoke
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from bench_model import environment
from bench_train import bench_steps, table
from common import positive_int, preset_names, results_dir, run_main, save_result

from conan_model import ConanConfig, ConanModel, pick_device
from train.metrics import device_name, peak_tflops


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=None, help="default: conan_model.pick_device()")
    parser.add_argument("--presets", type=preset_names, default="small,conan-v2-1.4b")
    parser.add_argument("--seq-len", type=int, default=2048, help="pretrain row length")
    parser.add_argument("--batch", type=int, default=4, help="pretrain rows per step")
    parser.add_argument("--pair-len", type=int, default=256, help="longest pair text (lengths in [len/2, len])")
    parser.add_argument("--pair-batch", type=int, default=64, help="pairs per weak step (paper: 64)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iters", type=positive_int, default=5)
    parser.add_argument("--gradient-checkpointing", action="store_true")
    parser.add_argument("--peak-tflops", type=float, default=None, help="override the device's bf16 peak")
    parser.add_argument("--out", type=Path, default=results_dir() / "gpu_train.json")
    args = parser.parse_args()
    device = pick_device(args.device)
    if device.type == "cpu" and args.device is None:
        print("gpu_train: no accelerator found (cuda/npu/mps); nothing to benchmark. Use --device cpu to smoke-test.")
        return 0
    mem = torch.get_device_module(device.type) if device.type != "cpu" else None
    peak = peak_tflops(device, args.peak_tflops)
    print(f"device {device} ({device_name(device)}), bf16 peak {peak or 'unknown'} TFLOP/s")
    rows = []
    for name in args.presets:
        torch.manual_seed(0)
        longest = max(args.seq_len, args.pair_len)
        cfg = ConanConfig.preset(name, max_length=max(longest, ConanConfig.preset(name).max_length))
        model = ConanModel(cfg)
        model.gradient_checkpointing = args.gradient_checkpointing
        steps = bench_steps(model, device, args.batch, args.seq_len, args.pair_batch, args.pair_len, args.warmup,
                            args.iters, peak)  # fmt: skip
        for row in steps:  # peak_mem_gib: each step's own peak (bench_steps resets the counter per step)
            rows.append({"preset": name, "params": model.num_parameters(), **row})
        del model
        if mem is not None and hasattr(mem, "empty_cache"):
            mem.empty_cache()
    print(table(rows))
    print("peak memory per step (GiB):", [(r["preset"], r["stage"], r["mode"], r["peak_mem_gib"]) for r in rows])
    result = {"env": {**environment(device), "device_name": device_name(device), "peak_tflops": peak},
              # each option as its command-line text: --presets (a list since stop 62) as "small,conan-v2-1.4b"
              "args": {k: ",".join(v) if isinstance(v, list) else str(v) for k, v in vars(args).items() if k != "out"},
              "results": rows}  # fmt: skip
    save_result(args.out, result)
    return 0


if __name__ == "__main__":
    run_main(main)
