"""The alignment projections: axes say what they are, the PNG is replaced whole, and a t-SNE plot of an earlier
--tsne run does not outlive a run without it. Real data from ../shared/data, real minilm."""

from __future__ import annotations

import os

import numpy as np

from harness.models import embed_symmetric
from reporting import plots
from reporting.alignment import run_alignment


def _panels() -> list[tuple[str, np.ndarray, list[str]]]:
    points = np.random.default_rng(0).normal(size=(6, 2))
    return [("minilm — PCA", points, ["de", "en"] * 3)]


def test_projection_axes_are_labelled():
    """Before: no axis labels at all."""
    fig = plots.projection_figure(_panels(), "t-SNE")
    (ax,) = fig.axes
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("t-SNE 1", "t-SNE 2")


def test_panel_titles_name_the_projection_as_the_docs_do():
    """Before stop 61 (a user's walk): "minilm — TSNE (...)" under docs that say t-SNE."""
    from reporting.alignment import panel_title

    assert panel_title("minilm", "tsne", 0.25) == "minilm — t-SNE (mixing ratio 0.25)"
    assert panel_title("minilm", "pca", 0.25) == "minilm — PCA (mixing ratio 0.25)"


def test_projection_png_is_replaced_whole(tmp_path):
    """Before: savefig wrote into the existing file, so a reader holding it (here a hard link) saw the new bytes
    appear over the old ones; now a new file is renamed over it and the old one stays whole."""
    path = tmp_path / "alignment_pca.png"
    path.write_bytes(b"old plot")
    os.link(path, tmp_path / "reader.png")
    plots.projection(_panels(), "PC", path)
    assert (tmp_path / "reader.png").read_bytes() == b"old plot"
    assert path.read_bytes().startswith(b"\x89PNG")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alignment_pca.png", "reader.png"]


def test_a_tsne_plot_of_an_earlier_run_is_removed(shared_data, tmp_path):
    """Before: alignment_tsne.png of a --tsne run stayed in --out beside the next run's report, which has no t-SNE."""
    paths = [shared_data / "multi" / "TatoebaDeuEng"]
    run_alignment(["minilm"], paths, tmp_path, n_pairs=3, encode=embed_symmetric, tsne=True)
    assert (tmp_path / "alignment_tsne.png").is_file()
    run_alignment(["minilm"], paths, tmp_path, n_pairs=3, encode=embed_symmetric)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alignment.md", "alignment_pca.png"]


def test_every_report_png_is_replaced_whole(tmp_path):
    """The throughput and dims charts of `harness report` go through the same writer as the projection (before:
    a bare savefig into the existing file)."""
    import matplotlib.pyplot as plt

    path = tmp_path / "throughput.png"
    path.write_bytes(b"old plot")
    os.link(path, tmp_path / "reader.png")
    fig, _ = plt.subplots()
    plots.save_png(fig, path)
    assert (tmp_path / "reader.png").read_bytes() == b"old plot" and path.read_bytes().startswith(b"\x89PNG")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reader.png", "throughput.png"]
    assert not plt.fignum_exists(fig.number)  # closed: a report of many runs does not pile up figures
