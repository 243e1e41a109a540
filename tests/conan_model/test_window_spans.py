"""conan_model.batching.window_spans: the windows the harness's streams count and sort texts in."""

from conan_model.batching import window_spans


def test_window_spans_double_from_one_batch_up_to_the_window() -> None:
    """The first window is one batch's worth (the model's first wait), each next one twice the last up to the
    window; the spans cover every text once, in order."""
    assert list(window_spans(5000, 1024, 256)) == [(0, 256), (256, 768), (768, 1792), (1792, 2816), (2816, 3840),
                                                   (3840, 4864), (4864, 5000)]  # fmt: skip
    assert list(window_spans(100, 1024, 256)) == [(0, 100)]
    assert list(window_spans(0, 1024, 256)) == []
    assert list(window_spans(10, 4, 256)) == [(0, 4), (4, 8), (8, 10)]  # a batch larger than the window: the window
    assert list(window_spans(3, 1024, 0)) == [(0, 1), (1, 3)]  # at least one text a window
