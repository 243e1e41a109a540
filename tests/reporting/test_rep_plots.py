"""The report's figures: what is drawn fits the figure."""

from __future__ import annotations

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
