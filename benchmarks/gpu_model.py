"""Device-machine benchmark of the paper-sized model (conan-v2-1.4b) in bf16 on CUDA.

1. Correctness: a tiny preset with identical weights on CPU fp32 vs the device in fp32 and in bf16, for the
   causal, bidirectional and soft masks (padded batch). Fails the run (exit 1) if they disagree.
2. Encode throughput: the 1.4B preset in bf16 encodes --texts random texts (lengths 16..seq_len) the way
   ConanEncoder does (sorted by length, padded per batch, bidirectional); target >= 225k real tokens/s (H100).
3. Masks: one padded batch (lengths in [seq_len/2, seq_len]) per mask mode, encode time and the fwd+bwd step
   time on its first --step-batch rows; target: soft-mask fwd+bwd at most 1.05x the bidirectional step.

Exits cleanly (status 0) with a message when no GPU is present.

    python benchmarks/gpu_model.py                       # on a CUDA machine
    python benchmarks/gpu_model.py --device cpu --preset small --batch 4 --seq-len 64 --texts 16  # smoke
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from bench_model import MODES, bench_modes, environment, make_batch, table, time_call
from common import positive_int, results_dir, run_main, save_result

from conan_model import ConanConfig, ConanModel, default_dtype
from conan_model.config import PRESETS

ENCODE_TARGET_TOKENS_PER_S = 225_000
SOFT_STEP_TARGET_RATIO = 1.05


def check_correctness(device: torch.device) -> list[dict]:
    """Max |diff| (fp32) and min cosine (bf16) of device embeddings against the CPU fp32 reference."""
    torch.manual_seed(0)
    cpu_model = ConanModel(ConanConfig.preset("tiny")).eval()
    ids, mask = make_batch(cpu_model.config.vocab_size, 6, 48, torch.device("cpu"), seed=1)
    rows = []
    for dtype in (torch.float32, default_dtype(device)):
        model = ConanModel(cpu_model.config)
        model.load_state_dict(cpu_model.state_dict())
        model = model.to(device=device, dtype=dtype).eval()
        for mode, alpha in MODES:
            with torch.inference_mode():
                ref = cpu_model.embed(ids, mask, mask_mode=mode, alpha=alpha)
                out = model.embed(ids.to(device), mask.to(device), mask_mode=mode, alpha=alpha).cpu()
            cos = torch.nn.functional.cosine_similarity(ref, out).min().item()
            diff = (ref - out).abs().max().item()
            ok = diff < 1e-4 if dtype == torch.float32 else cos > 0.99
            rows.append(
                {"dtype": str(dtype), "mode": mode, "max_abs_diff": diff, "min_cosine": cos, "ok": ok}
            )
    return rows


def sorted_encode_tokens_per_s(
    model: ConanModel, n_texts: int, seq_len: int, batch: int, warmup: int, iters: int
) -> float:
    """Real tokens/s over length-sorted, per-batch-padded random texts: what ConanEncoder.encode achieves."""
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(2)
    lengths = torch.randint(16, seq_len + 1, (n_texts,), generator=g).sort(descending=True).values
    batches = []
    for start in range(0, n_texts, batch):
        ls = lengths[start : start + batch]
        mask = (torch.arange(int(ls[0]))[None, :] < ls[:, None]).long()
        ids = torch.randint(4, model.config.vocab_size, mask.shape, generator=g).masked_fill(mask == 0, 0)
        batches.append((ids.to(device), mask.to(device)))

    @torch.inference_mode()
    def run() -> None:
        for ids, mask in batches:
            model.eval().embed(ids, mask)

    return int(lengths.sum()) / time_call(run, device, warmup, iters)


def flops_per_token(cfg: ConanConfig, seq_len: int) -> float:
    """Forward FLOPs per token: 2 x non-embedding parameters + attention scores and values (full length)."""
    dense = cfg.num_parameters() - cfg.vocab_size * cfg.hidden_size
    return 2 * dense + 4 * cfg.n_layers * seq_len * cfg.hidden_size


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="conan-v2-1.4b")
    parser.add_argument("--batch", type=int, default=64, help="encode batch size")
    parser.add_argument("--step-batch", type=int, default=16, help="rows of the fwd+bwd step")
    parser.add_argument("--seq-len", type=int, default=512)
    parser.add_argument("--texts", type=int, default=2048, help="texts in the sorted-encode run")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iters", type=positive_int, default=10)
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (slower start)")
    parser.add_argument("--out", type=Path, default=results_dir() / "gpu_model.json")
    args = parser.parse_args()

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_model.py: no CUDA GPU available, nothing to benchmark (use --device cpu for a smoke run)")
        return 0

    checks = check_correctness(device)
    for c in checks:
        print(
            f"correctness {c['dtype']:>14} {c['mode']:>13}: max|diff| {c['max_abs_diff']:.2e}  "
            f"min cos {c['min_cosine']:.5f}  {'ok' if c['ok'] else 'FAIL'}"
        )

    cfg = ConanConfig.preset(args.preset)
    dtype = default_dtype(device)
    torch.manual_seed(0)
    with torch.device(device):
        model = ConanModel(cfg).to(dtype)
    assert model.num_parameters() == cfg.num_parameters()
    if args.compile:
        model.compile()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    encode_tps = sorted_encode_tokens_per_s(
        model, args.texts, args.seq_len, args.batch, 1, max(1, args.iters // 3)
    )
    ids, mask = make_batch(cfg.vocab_size, args.batch, args.seq_len, device)
    rows = [
        {"preset": args.preset, "params": model.num_parameters(), **row}
        for row in bench_modes(model, ids, mask, args.warmup, args.iters, step_batch=args.step_batch)
    ]
    print(table(rows))

    by_mode = {r["mode"]: r for r in rows}
    soft_ratio = by_mode["soft"]["fwd_bwd_vs_bidirectional"]
    tflops = encode_tps * flops_per_token(cfg, args.seq_len) / 1e12
    summary = {
        "encode_tokens_per_s": encode_tps,
        "encode_target": ENCODE_TARGET_TOKENS_PER_S,
        "encode_ok": encode_tps >= ENCODE_TARGET_TOKENS_PER_S,
        "encode_model_tflops": tflops,
        "soft_fwd_bwd_ratio": soft_ratio,
        "soft_target": SOFT_STEP_TARGET_RATIO,
        "soft_ok": soft_ratio <= SOFT_STEP_TARGET_RATIO,
        "correctness_ok": all(c["ok"] for c in checks),
        "peak_memory_gib": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None,
    }
    print(
        f"length-sorted encode {encode_tps:,.0f} real tokens/s (~{tflops:.0f} TFLOP/s;"
        f" target {ENCODE_TARGET_TOKENS_PER_S:,}): {'ok' if summary['encode_ok'] else 'BELOW TARGET'}"
    )
    print(
        f"soft/bidirectional fwd+bwd {soft_ratio:.3f} (target <= {SOFT_STEP_TARGET_RATIO}):"
        f" {'ok' if summary['soft_ok'] else 'ABOVE TARGET'}"
    )

    env = environment(device)
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    result = {
        "env": env,
        "preset": args.preset,
        "dtype": str(dtype),
        "batch": args.batch,
        "seq_len": args.seq_len,
        "step_batch": args.step_batch,
        "texts": args.texts,
        "compile": args.compile,
        "correctness": checks,
        "results": rows,
        "summary": summary,
    }
    save_result(args.out, result)
    return 0 if summary["correctness_ok"] else 1


if __name__ == "__main__":
    run_main(main)
