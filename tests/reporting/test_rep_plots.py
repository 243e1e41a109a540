"""The report's figures: what is drawn fits the figure."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from reporting import plots


@pytest.mark.parametrize("kinds", [1, 2, 4])
def test_the_dims_figure_s_title_fits_its_width(kinds: int, tmp_path: Path, monkeypatch) -> None:
    """Before stop 49 (audit): with one panel the figure was 4.5 inches wide and its one-line title was cut at
    both edges."""
    drawn = []
    monkeypatch.setattr(plots, "save_png", lambda fig, path: drawn.append(fig))
    curves = {f"Kind{i}": {"run": [(32, 0.5), (64, 0.6), (384, 0.7)]} for i in range(kinds)}
    plots.dims(curves, tmp_path / "dims.png")
    fig = drawn[0]
    renderer = fig.canvas.get_renderer()
    title = fig._suptitle.get_window_extent(renderer)
    assert 0 <= title.x0 and title.x1 <= fig.bbox.width


@pytest.mark.parametrize("kinds", [1, 2, 4])
def test_the_dims_figure_s_tick_labels_never_overlap_and_name_the_full_width(kinds: int, tmp_path: Path,
                                                                              monkeypatch) -> None:  # fmt: skip
    """User walk: dims close on the log axis (383 beside 384, 512 beside 576) drew their labels over each other,
    and the full width read as one more dim."""
    curves = {f"Kind{i}": {"a": [(64, 0.5), (256, 0.55), (383, 0.6), (384, 0.61)],
                           "b": [(128, 0.4), (512, 0.5), (576, 0.52), (768, 0.55)]} for i in range(kinds)}  # fmt: skip
    fig = _drawn(curves, tmp_path, monkeypatch)
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes[:kinds]:
        shown = [t for t in ax.get_xticklabels() if t.get_text()]
        boxes = sorted((t.get_window_extent(renderer) for t in shown), key=lambda box: box.x0)
        assert all(left.x1 < right.x0 for left, right in zip(boxes, boxes[1:], strict=False)), [
            t.get_text() for t in shown]  # fmt: skip
        texts = [t.get_text() for t in shown]
        assert "full\n(384)" in texts and "full\n(768)" in texts and "383" not in texts, texts


def test_a_run_keeps_its_colour_in_every_panel(tmp_path: Path, monkeypatch) -> None:
    """User walk: each panel took its own colour cycle, so a run drawn second in one panel and first in another
    changed colour between them; throughput.png gives each run one colour."""
    curves = {"STS": {"a": [(64, 0.5), (384, 0.6)], "b": [(64, 0.4), (384, 0.5)]},
              "Retrieval": {"b": [(64, 0.3), (384, 0.4)]}}  # fmt: skip
    fig = _drawn(curves, tmp_path, monkeypatch)
    colours = [{line.get_label(): line.get_color() for line in ax.get_lines()} for ax in fig.axes[:2]]
    assert colours[0]["b"] == colours[1]["b"] != colours[0]["a"]


def _drawn(curves: dict, tmp_path: Path, monkeypatch) -> object:
    """The figure `plots.dims` saves."""
    drawn = []
    monkeypatch.setattr(plots, "save_png", lambda fig, path: drawn.append(fig))
    plots.dims(curves, tmp_path / "dims.png")
    return drawn[0]


def test_a_full_width_of_unknown_size_is_left_out_of_the_log_axis(tmp_path: Path) -> None:
    """run.json allows `model.embed_dim: null`, which the curves carry as a full width of 0; before stop 63
    log2(0) stopped the report with a ValueError. That point is left out, the rest drawn."""
    curves = {"STS": {"a": [(64, 0.5), (128, 0.55), (0, 0.6)], "b": [(64, 0.4), (384, 0.5)]},
              "Retrieval": {"a": [(0, 0.3)]}}  # fmt: skip
    fig = plots.dims_figure(curves)
    sts, retrieval = fig.axes[:2]
    drawn = [[(x, y) for x, y in zip(line.get_xdata(), line.get_ydata(), strict=True) if y == y]
             for line in sts.get_lines() if line.get_label() != "_nolegend_"]  # fmt: skip
    assert [[x for x, _ in points] for points in drawn] == [[64, 128], [64, 384]]
    assert [t.get_text() for t in sts.get_xticklabels()] == ["64", "128", "full\n(384)"]
    assert retrieval.get_lines() == [] and retrieval.get_xticklabels() == []
    plots.save_png(fig, tmp_path / "dims.png")
    assert (tmp_path / "dims.png").read_bytes().startswith(b"\x89PNG")


def test_a_width_one_run_has_in_full_and_another_cuts_to_is_not_called_full() -> None:
    """A 128-d checkpoint beside all-MiniLM-L6-v2 cut to 128: the tick read "full (128)", though MiniLM's point
    there is a prefix (a walk, stop 65). Now "128 (a full width)"; a width no run cuts to stays "full (d)"."""
    curves = {"STS": {"minilm": [(32, 0.7), (128, 0.75), (384, 0.8)], "conan": [(64, 0.2), (128, 0.3)]}}
    labels = [t.get_text() for t in plots.dims_figure(curves).axes[0].get_xticklabels()]
    assert "128\n(a full width)" in labels and "full\n(384)" in labels and "full\n(128)" not in labels, labels


def test_a_dim_a_run_lacks_breaks_its_line_and_equal_runs_stay_visible() -> None:
    """A walk (stop 67): a run without a 128 point was drawn straight from 64 to full across 128, as if it had a
    value there, and two runs with the same points were drawn one over the other (a legend entry with no line)."""
    curves = {"STS": {"a": [(64, 0.77), (128, 0.79), (384, 0.80)], "same": [(64, 0.77), (128, 0.79), (384, 0.80)],
                      "gap": [(64, 0.76), (384, 0.79)]}}  # fmt: skip
    drawn = plots.dims_figure(curves).axes[0].get_lines()
    lines = {line.get_label(): line for line in drawn if line.get_label() != "_nolegend_"}
    gap = lines["gap"]
    assert list(gap.get_xdata()) == [64, 128, 384]
    assert math.isnan(gap.get_ydata()[1]) and list(gap.get_ydata()[::2]) == [76.0, 79.0]
    # its own points joined by a faint bridge, with no legend entry (a walk, stop 69: the 64 → full segment was lost)
    bridges = [line for line in drawn if line.get_label() == "_nolegend_"]
    assert [(list(b.get_xdata()), list(b.get_ydata())) for b in bridges] == [([64, 384], [76.0, 79.0])]
    assert bridges[0].get_alpha() == plots.BRIDGE_ALPHA < 1 and bridges[0].get_color() == gap.get_color()
    looks = {(line.get_marker(), line.get_linestyle(), line.get_fillstyle()) for line in lines.values()}
    assert len(looks) == 3 and all(fill == "none" for _, _, fill in looks)
    assert lines["a"].get_markersize() != lines["same"].get_markersize()
