"""What a batch shape's first run costs minilm, and what padding to a multiple (fewer shapes) saves, on a GPU
(issue 16's device check) or on this CPU. Stop 43's H200 data suggest the cost (docs/harness.md, stop 44): in part
`prefetch` the `st:` arm that ran a task first took about twice the second's time, whichever arm it was, and a fit
of `harness run`'s forward seconds gives 22.7 ms a batch against 0.05 µs a padded token. On a CPU, bf16 (what
`harness run` picks there) runs oneDNN kernels made for each new shape.

Each arm is a fresh child process (nothing warmed by another arm): minilm's shape with random weights (`st:`,
``--minilm-shape``, as gpu_speed.py's harness part; dtype "auto", as `harness run` loads it), every encode call of
the 13 retrieval tasks (a task file's distinct texts, the first ``--limit`` of them, shortest first, through
`Embedder.encode_stream` as `harness run` calls it, at its batch sizes for the device) twice: pass ``cold`` (every
shape new to the process but for repeats within the pass) and pass ``warm`` (the same batches again). Arms
(``--multiples``): batches padded to the longest (1) and to multiples of more tokens (`--pad-to-multiple-of`;
stop 44 made 16 the default for bf16 on a CPU, stop 45 undid it: docs/harness.md). Per pass: wall, forward, wait
and copy seconds, tokens, padded tokens, batches and distinct shapes; per run the vectors' largest difference from
the first run's (rounding only: padding is masked); ``--rounds`` runs every arm that often, the order reversed each
round, and the summary holds the means. The parent writes ``bench_shapes_<card>.json`` under ``--out`` (after each run).

    python benchmarks/bench_shapes.py --minilm-shape .cache/device/minilm-shape --out $OUT   # on the device
    python benchmarks/bench_shapes.py --device cpu --limit 512 --multiples 1,16,32 --rounds 2  # this CPU
    python benchmarks/bench_shapes.py --dry-run --out /tmp/dry                                # plumbing check
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_wait_model import retrieval_calls
from common import DEFAULT_DATA, REPO, SCRATCH, results_dir, save_result
from gpu_speed import PREFETCH_WINDOW, SIZES, random_st_folder, synchronize

from harness.runner import RunConfig

# batch, batch tokens: gpu_speed's GPU sizes (what the H200 runs used), `harness run`'s CPU defaults, the dry run's
BATCH_SIZES = {"cuda": (SIZES["gpu"]["batch"], SIZES["gpu"]["batch_tokens"]),
               "cpu": (RunConfig.batch_size, RunConfig.max_batch_tokens), "dry": (16, 4096)}


def child(args: argparse.Namespace) -> dict[str, Any]:
    """One arm in this process: both passes over every call; the vectors of pass cold saved for the parent."""
    import torch

    from harness.embedder import ModelOptions
    from harness.models import load_model

    device = torch.device(args.device)
    batch, batch_tokens = BATCH_SIZES["dry" if args.dry_run else args.device]
    limit = args.limit
    folder = random_st_folder(args.minilm_shape, SCRATCH / "minilm-random")
    opts = ModelOptions(device=device.type, pad_to_multiple_of=args.multiple)  # dtype "auto", as `harness run`
    model = load_model(f"st:{folder}", opts)
    list(model.encode_stream(["warm up"] * 8, None, batch, batch_tokens, PREFETCH_WINDOW))
    calls = [sorted(texts[:limit], key=len) for task in retrieval_calls(args.data_dir).values() for texts in task]
    run_batch, shapes = model.run_batch, []

    def noted(prepared: dict[str, Any], role: str | None) -> np.ndarray:
        shapes.append(tuple(prepared["input_ids"].shape))
        return run_batch(prepared, role)

    model.run_batch = noted
    passes, vectors = {}, []
    for name in ("cold", "warm"):
        model.timings.reset()
        shapes.clear()
        synchronize(device)
        start = time.perf_counter()
        done = [np.concatenate([v for *_, v, _ in model.encode_stream(texts, None, batch, batch_tokens,
                                                                       PREFETCH_WINDOW)])
                for texts in calls]  # fmt: skip
        synchronize(device)
        wall = time.perf_counter() - start
        t = model.timings
        passes[name] = {"wall_s": round(wall, 3), "forward_s": round(t.forward_s, 3), "wait_s": round(t.wait_s, 3),
                        "copy_s": round(t.copy_s, 3), "tokenize_s": round(t.tokenize_s, 3), "tokens": t.tokens,
                        "padded_tokens": sum(b * n for b, n in shapes), "batches": len(shapes),
                        "shapes": len(set(shapes)), "e2e_tokens_per_s": round(t.tokens / wall),
                        "forward_tokens_per_s": round(t.tokens / t.forward_s) if t.forward_s else None}  # fmt: skip
        vectors = vectors or done
    np.save(args.vectors, np.concatenate(vectors))
    return {"multiple": args.multiple, "device": model.device, "dtype": model.dtype, "prefetches": model.prefetches,
            "calls": len(calls), "passes": passes}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minilm-shape", type=Path, default=REPO / ".cache" / "device" / "minilm-shape")
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, default=results_dir())
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--limit", type=int, default=None, help="texts per encode call (default: all)")
    parser.add_argument("--multiples", default=None,
                        help="the arms: pad to a multiple of these many tokens (default 1,16,64; dry run 1,16)")
    parser.add_argument("--rounds", type=int, default=1, help="runs of every arm, the order reversed each round")
    parser.add_argument("--dry-run", action="store_true", help="CPU, 8 texts a call, small batches")
    parser.add_argument("--multiple", type=int, default=None, help=argparse.SUPPRESS)  # a child's arm
    parser.add_argument("--vectors", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.dry_run:
        args.device, args.limit = "cpu", 8
    multiples = [int(m) for m in (args.multiples or ("1,16" if args.dry_run else "1,16,64")).split(",")]
    if not (args.minilm_shape / "config.json").is_file():
        raise SystemExit(f"--minilm-shape {args.minilm_shape}: no config.json (benchmarks/device_bundle.py makes it)")
    if args.multiple is not None:
        print(json.dumps(child(args)), flush=True)
        return 0
    import torch

    from harness.sysinfo import environment
    from train.metrics import device_name

    card = device_name(torch.device(args.device))
    slug = (re.findall(r"[A-Za-z]\d{2,4}", card) or ["gpu"])[0].lower() if args.device == "cuda" else "cpu"
    slug = "dry" if args.dry_run else slug  # a card's name as gpu_speed's files carry it
    record: dict[str, Any] = {"card": card, "device": args.device, "limit": args.limit, "multiples": multiples,
                              "sizes": BATCH_SIZES["dry" if args.dry_run else args.device],
                              "environment": environment(), "arms": {}}  # fmt: skip
    target = args.out / f"bench_shapes_{slug}.json"
    runs = [m for r in range(args.rounds) for m in (multiples if r % 2 == 0 else multiples[::-1])]
    for k, multiple in enumerate(runs):  # rounds alternate the arms' order: a drifting machine favours none
        vectors = SCRATCH / f"vectors-{k}.npy"
        command = [sys.executable, __file__, "--minilm-shape", str(args.minilm_shape), "--data-dir",
                   str(args.data_dir), "--device", args.device, "--multiple", str(multiple), "--vectors",
                   str(vectors), *(["--limit", str(args.limit)] if args.limit else []),
                   *(["--dry-run"] if args.dry_run else [])]  # fmt: skip
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy())
        arm: dict[str, Any] = {"process_s": round(time.perf_counter() - start, 1)}
        if done.returncode:
            arm["error"] = done.stderr[-3000:]
        else:
            arm.update(json.loads(done.stdout.strip().splitlines()[-1]))
            arm["max_abs_diff_vs_first"] = float(np.abs(np.load(vectors) - np.load(SCRATCH / "vectors-0.npy")).max())
        record["arms"].setdefault(str(multiple), []).append(arm)
        print(f"[shapes] multiple {multiple}: {arm}", flush=True)
        save_result(target, record)  # after each run: a stopped benchmark keeps what ran
    summary = {}
    for multiple, arms in record["arms"].items():
        done = [a["passes"] for a in arms if "passes" in a]
        summary[multiple] = {f"{p}_{k}": round(sum(d[p][k] for d in done) / len(done), 3)
                             for p in ("cold", "warm") for k in ("wall_s", "forward_s")} if done else None  # fmt: skip
    record["summary"] = summary  # means over the rounds
    save_result(target, record)
    print(json.dumps(summary, indent=1))
    return 1 if any("error" in a for arms in record["arms"].values() for a in arms) else 0


if __name__ == "__main__":
    sys.exit(main())
