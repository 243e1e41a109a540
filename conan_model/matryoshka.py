"""Which embedding prefixes Matryoshka (MRL) training puts a loss on: the supervised stage trains them
(train/supervised_config.py) and the harness asks them of a checkpoint it scores at `--dims`, so both read one
rule here (the paper's dims for its 3584 width, scaled to another width)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PAPER_MRL_DIMS = (256, 512, 1024, 1536, 2048, 3072, 3584)
PAPER_HIDDEN = 3584


def mrl_dims(hidden_size: int, dims: Sequence[int] | None = None) -> list[int]:
    """MRL dimensions: explicit ``dims`` (checked, sorted), else the paper's set for width 3584, else the paper's
    set scaled to ``hidden_size`` and rounded to multiples of 8 (tiny 128 → 8,16,40,56,72,112,128).

    Explicit dims must include ``hidden_size``: the full width is what the harness evaluates and what DHNM's
    cosines are read from (the largest dim's), so a set without it would leave the evaluated vector untrained."""
    if dims:
        out = sorted(int(d) for d in dims)
        if out[0] < 1 or out[-1] > hidden_size:
            raise ValueError(f"MRL dims must lie in [1, {hidden_size}], got {list(dims)}")
        if len(set(out)) != len(out):
            raise ValueError(f"MRL dims repeat a dimension: {list(dims)}")
        if out[-1] != hidden_size:
            raise ValueError(f"MRL dims {list(dims)} leave out the model's width {hidden_size} (the width the "
                             f"harness evaluates and DHNM scores with): add it")  # fmt: skip
        return out
    if hidden_size == PAPER_HIDDEN:
        return list(PAPER_MRL_DIMS)
    scaled = {min(hidden_size, max(8, 8 * round(d * hidden_size / PAPER_HIDDEN / 8))) for d in PAPER_MRL_DIMS}
    return sorted(scaled | {hidden_size})


def trained_dims(training: dict[str, Any] | None, width: int) -> list[int] | None:
    """The dims a checkpoint's last training stage put an MRL loss on, from its train_config.json (``training``):
    a supervised stage's `mrl_dims` at ``width`` with a weight above 0 (`mrl_weights`, in the order the dims were
    written), the full width alone for another stage (no MRL loss), None when not known (no training config, or
    dims or weights it cannot hold at this width)."""
    if not isinstance(training, dict) or not width:
        return None
    if training.get("stage") != "supervised":
        return [width]
    written = str(training.get("mrl_dims", "auto"))
    try:
        if written in ("none", "auto"):
            dims = [width] if written == "none" else mrl_dims(width)
            order = dims
        else:
            order = [int(d) for d in written.split(",")]
            dims = mrl_dims(width, order)
        weights = str(training.get("mrl_weights") or "")
        if not weights:
            return dims
        # a dim weighted 0 trains nothing (a review, stop 69); weights follow the dims as written
        weighed = dict(zip(order, (float(w) for w in weights.split(",")), strict=True))
        return [d for d in dims if weighed[d] > 0]
    except (ValueError, KeyError):
        return None
