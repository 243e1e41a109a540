"""Metrics log (JSONL in the output dir + one console line per entry) and the MFU estimate.

MFU = achieved training FLOP/s ÷ (peak FLOP/s per device × devices). Training FLOPs per token follow the PaLM
appendix: 6 per weight used in a matmul (2 forward + 4 backward) plus 12·layers·(heads·head_dim)·context for
attention scores and values; the embedding lookup costs nothing and the tied LM head of pretraining costs
vocab·hidden. The attention term counts the full context × context score matrix whatever the mask (PaLM's
convention, the `mfu` of the metrics log): a causal step, whose kernel (flash / SDPA ``is_causal``) computes about
half of it, is credited twice the attention work it does. ``flops_per_token(..., causal_half=True)`` halves that
term for causal steps: the second, lower MFU figure the benchmarks report beside the first.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import torch

from conan_model import ConanConfig
from conan_model.atomic import atomic_write_text

from .errors import TrainError

log = logging.getLogger("train")

# Dense bf16 peak TFLOP/s per device, matched as substrings of the device name (first match wins, so the PCIe and
# NVL cards come before their generic SXM names). Source: NVIDIA's H100 and H200 datasheets, whose Tensor Core
# figures are given with 2:4 sparsity and are halved here (H100/H200 SXM 1,979 -> 989; H100 PCIe 1,513 -> 756;
# H100 NVL and H200 NVL 1,671 -> 835, per GPU); the H800 has the H100's configurations (SXM 989, PCIe 756). The NVL
# figures were taken from those datasheets as published in 2024 and not re-checked against NVIDIA's site here.
PEAK_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H200 NVL", 835.0),
    ("H800 PCIe", 756.0),
    ("H100", 989.0),
    ("H200", 989.0),
    ("H800", 989.0),
    ("H20", 148.0),
    ("A100", 312.0),
    ("A800", 312.0),
    ("L40S", 362.0),
    ("910B", 320.0),  # Ascend 910B, fp16/bf16 (the paper's chip)
)


def device_name(device: torch.device) -> str:
    """The accelerator's marketing name ('NVIDIA H100 80GB HBM3', 'Ascend910B3'), or 'cpu'."""
    if device.type == "cpu":
        return "cpu"
    get_name = getattr(torch.get_device_module(device.type), "get_device_name", None)
    return get_name(device) if get_name else device.type


def peak_tflops(device: torch.device, configured: float | None = None) -> float | None:
    """``configured`` if set, else the table entry for this device's name; None when unknown (e.g. CPU)."""
    if configured:
        return configured
    name = device_name(device)
    return next((tflops for key, tflops in PEAK_TFLOPS if key.lower() in name.lower()), None)


def flops_per_token(config: ConanConfig, context: float, lm_head: bool, causal_half: bool = False) -> float:
    """Training FLOPs per token for sequences of ``context`` tokens (forward + backward). The attention term is
    PaLM's full context² count; ``causal_half`` halves it (what a causal kernel computes: pass it for causal steps
    only)."""
    embedding = config.vocab_size * config.hidden_size
    tables = embedding if config.tie_word_embeddings else 2 * embedding  # the embedding and an untied head
    if config.arch == "bert":  # learned positions: a lookup too (before stop 47 charged 6 FLOPs each: MFU +0.9%)
        tables += config.max_length * config.hidden_size
    matmul_weights = config.num_parameters() - tables + (embedding if lm_head else 0)
    width = config.n_heads * (config.head_dim or config.hidden_size // config.n_heads)  # q·k and p·v width
    attention = 12.0 * config.n_layers * width * context
    return 6.0 * matmul_weights + (attention / 2 if causal_half else attention)


class MetricsLog:
    """Appends one JSON object per line to ``path`` (main rank only) and prints a short console line.

    Resuming at step s drops rows after s (written by the interrupted run before it died), so the file always
    reads as one uninterrupted run.
    """

    def __init__(self, path: Path, enabled: bool, resume_step: int | None = None, total_steps: int = 0) -> None:
        self.path, self.enabled, self.total = Path(path), enabled, total_steps
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        if resume_step is not None and self.path.is_file():
            kept = [r for r in read_rows(self.path) if r.get("step", 0) <= resume_step]
        # atomic: a crash here must not leave the log cut short of the rows the checkpoint's steps wrote
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def write(self, row: dict[str, Any]) -> None:
        if not self.enabled:
            return
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        print(format_row(row, self.total), flush=True)


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The rows of a metrics log. A last line that is not JSON is the torn write of a run that died mid-line
    (a full disk, power loss): dropped with a warning, as the resumed run rewrites that step. A bad line before
    the last is damage of another kind: an error naming it."""
    lines = [(n, x) for n, x in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if x.strip()]
    rows = []
    for n, line in lines:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            if n != lines[-1][0]:
                raise TrainError(f"{path}:{n}: not a JSON row ({e}); fix or remove the line to resume") from e
            log.warning("%s:%d: dropping a torn last line (%s): %.60r", path, n, e, line)
    return rows


def format_row(row: dict[str, Any], total: int = 0) -> str:
    """'step 10/100 | loss 5.1234 | lr 1.0e-04 | ...' with the known keys first, then any others."""
    parts = [f"step {row['step']}" + (f"/{total}" if total else "")]
    fmt = {"loss": "loss {:.4f}", "lr": "lr {:.2e}", "tokens_per_s": "{:,.0f} tok/s", "mfu": "mfu {:.1%}",
           "alpha": "α {:.3f}", "grad_norm": "gnorm {:.3f}", "step_time": "{:.3f} s/step"}  # fmt: skip
    for key, value in row.items():
        if key == "step" or value is None:
            continue
        if key in fmt:
            parts.append(fmt[key].format(value))
        elif isinstance(value, float) and math.isfinite(value):
            parts.append(f"{key} {value:.4g}")
        else:
            parts.append(f"{key} {value}")
    return " | ".join(parts)
