"""PNG plots for the reports (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from harness.runs import atomic_write  # noqa: E402


def throughput(infos: list[Any], path: Path) -> None:
    """The throughput chart (`throughput_figure`) as a PNG."""
    save_png(throughput_figure(infos), path)


def throughput_figure(infos: list[Any]) -> Figure:
    """Grouped horizontal bars per task: encoded texts/s and tokens/s of each run (cache hits hatched). A task the
    embedding cache served whole has no bar and says so: an empty slot read as missing data. A run with no timings
    (no efficiency.json) is left out, as Table 5's note says (before stop 67 it sat in the legend with no bar); when
    the runs were timed on different hardware, the legend names each run's (`reporting.hardware.hardware`)."""
    from harness.runs import CACHE_ONLY, cache_only
    from reporting.efficiency import encoded
    from reporting.hardware import hardware

    infos = [info for info in infos if info.efficiency]
    machines = {info.label: hardware(info) for info in infos}
    differ = len(set(machines.values())) > 1
    tasks = list(dict.fromkeys(t for info in infos for t in info.efficiency))
    fig, axes = plt.subplots(1, 2, figsize=(12, 1.6 + 0.45 * len(tasks) * max(1, len(infos) / 2)), squeeze=False,
                             layout="constrained")  # fmt: skip
    height = 0.8 / max(len(infos), 1)
    y = np.arange(len(tasks))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]  # the bars' own: run r draws in colour r
    for col, (ax, unit) in enumerate(zip(axes[0], ("texts/s", "tokens/s"), strict=True)):
        for r, info in enumerate(infos):
            values, hatches = [], []
            for task in tasks:
                n, k, s = encoded(info.efficiency.get(task, {}))
                values.append(((n if col == 0 else k) / s) if s else 0.0)
                hatches.append("//" if info.efficiency.get(task, {}).get("cache_hits") else "")
            bars = ax.barh(y + r * height, values, height)
            for bar, hatch in zip(bars, hatches, strict=True):
                bar.set_hatch(hatch)
            for row, task in enumerate(tasks):
                if cache_only(info.efficiency.get(task, {})):
                    ax.text(0, y[row] + r * height, f" {CACHE_ONLY}", va="center", fontsize=8,
                            color=colours[r % len(colours)])  # fmt: skip
        ax.set_yticks(y + height * (len(infos) - 1) / 2, tasks)
        ax.invert_yaxis()
        ax.set_xlim(left=0)  # no run encoded anything: the axis would centre on 0, half of it negative rates
        ax.set_xlabel(f"encoded {unit} (higher is faster)")
        ax.grid(axis="x", alpha=0.3)
    handles = [Patch(color=colours[r % len(colours)], label=info.label + (f" — {machines[info.label]}" if differ
                                                                         else "")) for r, info in enumerate(infos)]
    # below the charts: inside one (before stop 60, lower right) it hid the last task's bars
    fig.legend(handles=handles, loc="outside lower center", ncols=1 if differ else min(len(handles), 3), fontsize=8)
    fig.suptitle("Throughput per task: texts the model encoded ÷ model time (hatched: some texts came from the cache)")
    return fig


def _dim_tick(dim: int, full: set[int], prefixes: set[int]) -> str:
    """A dim's tick label: `full (d)` where every run with a point at d is at its full width, `d (a full width)`
    where some are and some are cut there, else the dim."""
    if dim not in full:
        return str(dim)
    return f"{dim}\n(a full width)" if dim in prefixes else f"full\n({dim})"


def dims(curves: dict[str, dict[str, list[tuple[int, float]]]], path: Path) -> None:
    """The score-vs-dimension chart (`dims_figure`) as a PNG."""
    save_png(dims_figure(curves), path)


def dims_figure(curves: dict[str, dict[str, list[tuple[int, float]]]]) -> Figure:
    """One panel per task type: mean main score ×100 against embedding dimension (log scale), a line per run, its
    last point the full width. Each run keeps one colour in every panel (before, each panel's own colour cycle gave
    a run another colour in a panel it shared with fewer runs). A full width run.json does not know (`embed_dim`
    null, 0 here) has no place on a log axis: that point is left out (before stop 63, log2(0) stopped the report).
    A run with no point at a dim another run of the panel has a point at is broken there, not drawn straight across
    it as if it had a value; each run has its own hollow marker and line style, so runs with the same points are all
    seen (before stop 67, a walk, both: a line from 64 to full across 128, and a run drawn over another). Its own
    points are still joined across such a gap by a faint line without a legend entry (`BRIDGE_ALPHA`): broken alone,
    a 384-d run beside a 128-d one lost the segment from its last prefix to its full width, the one an MRL plot is
    for, and beside a third run's dims it was loose markers (a walk, stop 69)."""
    kinds = list(curves)
    cols = min(3, len(kinds))
    rows = (len(kinds) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3.4 * rows), squeeze=False)
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    labels = list(dict.fromkeys(label for kind in kinds for label in curves[kind]))
    colours = {label: palette[i % len(palette)] for i, label in enumerate(labels)}
    looks = {label: (MARKERS[i % len(MARKERS)], LINES[i % len(LINES)]) for i, label in enumerate(labels)}
    for ax, kind in zip(axes.flat, kinds, strict=False):
        everywhere = sorted({d for points in curves[kind].values() for d, _ in points if d})
        for label, points in curves[kind].items():
            if known := dict((d, v) for d, v in points if d):
                xs = [d for d in everywhere if min(known) <= d <= max(known)]
                ys = [100 * known[d] if d in known else math.nan for d in xs]  # NaN: the line breaks there
                marker, line = looks[label]
                if len(xs) > len(known):  # the faint bridge over the dims this run lacks
                    ax.plot(sorted(known), [100 * known[d] for d in sorted(known)], linestyle=line,
                            alpha=BRIDGE_ALPHA, color=colours[label], label="_nolegend_")  # fmt: skip
                ax.plot(xs, ys, marker=marker, linestyle=line, fillstyle="none", markersize=8 - 1.5 * (
                    labels.index(label) % 3), label=label, color=colours[label])  # fmt: skip
        ax.set_xscale("log", base=2)
        full = {points[-1][0] for points in curves[kind].values() if points[-1][0]}
        prefixes = {d for points in curves[kind].values() for d, _ in points[:-1]}  # a dim some run cut to
        ticks = _spaced_ticks({d for points in curves[kind].values() for d, _ in points if d}, full)
        # "full" only where no run's point there is a prefix: a 128-d model beside a 384-d one cut to 128 read
        # "full (128)" for both (a walk, stop 65)
        ax.set_xticks(ticks, [_dim_tick(t, full, prefixes) for t in ticks], fontsize=8)
        ax.minorticks_off()
        ax.set_title(kind)
        ax.set_xlabel("embedding dimension")
        ax.set_ylabel("main score ×100")
        ax.grid(alpha=0.3)
        if ax.get_lines():  # none where every run's only point is a full width of unknown size
            ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(kinds):]:
        ax.axis("off")
    # wrapped: one or two panels are narrower than the title (before stop 49, audit, it was cut at both edges)
    fig.suptitle("Score vs Matryoshka dimension\n(embedding prefixes as they are, as mteb's embed_dim gives them)",
                 fontsize=10 if cols > 1 else 8)  # fmt: skip
    fig.tight_layout()
    return fig


BRIDGE_ALPHA = 0.3  # how strongly a run's line is drawn across a dim it has no point at
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")  # hollow: one run's marker is seen inside another's
LINES = ("-", "--", ":", "-.")
TICK_GAP = 0.1  # the least distance between two labelled dims, as a share of the panel's log2 span


def _spaced_ticks(dims: set[int], full: set[int]) -> list[int]:
    """The dims a panel labels: the full widths first, then the others from the largest down, each only where it
    keeps `TICK_GAP` of the axis from every label kept (383 beside 384, 512 beside 576 overlapped before); every
    dim keeps its point on the curve."""
    if not dims:  # a panel whose runs have only a full width of unknown size: nothing to label
        return []
    logs = {d: math.log2(d) for d in dims}
    gap = TICK_GAP * (max(logs.values()) - min(logs.values()))
    kept: list[int] = []
    for d in [*sorted(full, reverse=True), *sorted(dims - full, reverse=True)]:
        if all(abs(logs[d] - logs[k]) >= gap for k in kept):
            kept.append(d)
    return sorted(kept)


def projection(panels: list[tuple[str, np.ndarray, list[str]]], axis: str, path: Path) -> None:
    """The projection figure (`projection_figure`) as a PNG, written atomically: a report folder never holds half
    a plot, and a reader of the previous one keeps it whole."""
    save_png(projection_figure(panels, axis), path)


def save_png(fig: Figure, path: Path) -> None:
    """A figure as a PNG, written atomically (a report folder never holds half a plot, and a reader of the previous
    one keeps it whole), then closed."""
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)


def projection_figure(panels: list[tuple[str, np.ndarray, list[str]]], axis: str) -> Figure:
    """Scatter plots of 2-D points coloured by language, one panel per (title, points, languages); ``axis`` names
    the components ("PC" gives "PC 1" / "PC 2"). The ticks are hidden: projected coordinates have no unit."""
    langs = sorted({lang for _, _, ls in panels for lang in ls})
    colours = {lang: plt.get_cmap("tab10")(i % 10) for i, lang in enumerate(langs)}
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 5.2), squeeze=False)
    for ax, (title, points, languages) in zip(axes[0], panels, strict=True):
        arr = np.asarray(languages)
        for lang in langs:
            mask = arr == lang
            if mask.any():
                ax.scatter(points[mask, 0], points[mask, 1], s=9, alpha=0.7, color=colours[lang], label=lang)
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel(f"{axis} 1")
        ax.set_ylabel(f"{axis} 2")
        ax.legend(markerscale=2, fontsize=8)
    fig.tight_layout()
    return fig
