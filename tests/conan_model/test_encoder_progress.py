"""ConanEncoder counts texts per batch as the model runs them, not per window, so progress moves inside a window."""

from __future__ import annotations

from conan_model import ConanEncoder, save_pretrained
from conan_model.batching import EncodeTimings, token_budget_batches


def test_texts_are_counted_every_batch_before_the_window_is_done(tmp_path, tiny_model, tokenizer, sample_texts,
                                                                 one_thread) -> None:  # fmt: skip
    """Before: `timings.texts` moved once per window (1,024 texts in a harness run), so a progress line read 0
    until the whole window was done; now each batch counts its texts and `on_batch` hears of it."""
    encoder = ConanEncoder.from_pretrained(save_pretrained(tiny_model, tokenizer, tmp_path / "ckpt"), device="cpu")
    texts = sample_texts[:40]
    timings, counted, windows_done = EncodeTimings(), [], []
    windows = encoder.encode_windows(texts, batch_size=8, window=len(texts), timings=timings,
                                     on_batch=lambda n: counted.append((timings.texts, n, len(windows_done))))
    for window in windows:
        windows_done.append(window)
    sizes = [len(rows) for rows in token_budget_batches(encoder.count_tokens(texts), 8)]
    running = [sum(sizes[: i + 1]) for i in range(len(sizes))]
    assert len(sizes) == 5 and counted == [(total, n, 0) for total, n in zip(running, sizes, strict=True)]
    assert timings.texts == len(texts) and len(windows_done) == 1
