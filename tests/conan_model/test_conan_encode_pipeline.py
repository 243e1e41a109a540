"""ConanEncoder's one-pass encode: each text tokenized once, one length sort per window, a background producer.

The background tokenizer must not change a single bit: the batches are the same (one stable sort), so the
vectors are compared with assert_array_equal, not a tolerance.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from conan_model import ConanEncoder, save_pretrained
from conan_model.batching import EncodeTimings, prefetch, timed, token_budget_batches


class CountingTokenizer:
    """The real tokenizer, counting the texts it encodes (to show each text is tokenized once)."""

    def __init__(self, tok) -> None:
        self.tok, self.texts = tok, 0

    def encode_batch(self, texts):
        self.texts += len(texts)
        return self.tok.encode_batch(texts)

    def encode(self, prompt):
        """The prompt alone (the encoder's check that max_length leaves room for a text): not a text, not counted."""
        return self.tok.encode(prompt)


@pytest.fixture()
def encoder(tmp_path, tiny_model, tokenizer):
    return ConanEncoder.from_pretrained(save_pretrained(tiny_model, tokenizer, tmp_path / "ckpt"), device="cpu")


@pytest.fixture()
def texts(sample_texts):
    # distinct lengths and repeats, a few long enough to be truncated at max_length 64
    return [t * (1 + i % 4) for i, t in enumerate(sample_texts[:40])] + ["", "x"]


def test_background_tokenizer_changes_nothing(encoder, texts, one_thread) -> None:
    ahead, inline = EncodeTimings(), EncodeTimings()
    kwargs = {"batch_size": 8, "max_batch_tokens": 160}
    with_thread = encoder.encode(texts, prefetch=True, timings=ahead, **kwargs)
    without = encoder.encode(texts, prefetch=False, timings=inline, **kwargs)
    np.testing.assert_array_equal(with_thread, without)
    # and the same as one text at a time (batching only pads; tolerance: fp32 sums over 128-wide rows)
    singles = np.concatenate([encoder.encode([t]) for t in texts[:6]])
    np.testing.assert_allclose(with_thread[:6], singles, atol=1e-5)
    lengths = encoder.count_tokens(texts)
    expected = token_budget_batches(lengths, 8, 160)
    for t in (ahead, inline):
        assert t.texts == len(texts) and t.tokens == sum(lengths) and t.batches == len(expected)
        assert t.tokenize_s > 0 and t.collate_s > 0 and t.forward_s > 0 and t.copy_s >= 0
    # inline, waiting for the producer is tokenizing and padding: the wait covers both
    assert inline.wait_s >= inline.tokenize_s + inline.collate_s


def test_windows_tokenize_once_and_come_back_in_order(encoder, texts, one_thread) -> None:
    spy = CountingTokenizer(encoder.tokenizer)
    encoder.tokenizer = spy
    windows = list(encoder.encode_windows(texts, batch_size=4, window=16, max_batch_tokens=128))
    assert spy.texts == len(texts)  # once each, counting included
    assert [(lo, hi) for lo, hi, _, _ in windows] == [(0, 16), (16, 32), (32, len(texts))]
    encoder.tokenizer = spy.tok
    for lo, hi, vectors, lengths in windows:
        assert lengths == encoder.count_tokens(texts[lo:hi])
        # a window is its own sort: the same as encoding the window alone
        np.testing.assert_array_equal(vectors, encoder.encode(texts[lo:hi], batch_size=4, max_batch_tokens=128))
    assert encoder.encode([]).shape == (0, encoder.embed_dim)


def test_default_batches_are_the_old_fixed_size_chunks() -> None:
    lengths = [3, 9, 9, 1, 5, 9, 2]
    order = sorted(range(len(lengths)), key=lambda k: lengths[k], reverse=True)  # the former ConanEncoder sort
    assert token_budget_batches(lengths, 3) == [order[i : i + 3] for i in range(0, len(order), 3)]


def test_timed_hands_over_each_item_s_production_and_closes_the_producer() -> None:
    """One call per item and one for the end (the last `next`); a plain iterator (no close) works; closing it
    early closes a generator and stops a prefetching producer."""
    seconds = []
    assert list(timed(iter([0, 1, 2]), seconds.append)) == [0, 1, 2] and len(seconds) == 4
    assert all(s >= 0 for s in seconds)
    source = (n for n in range(100))
    stream = timed(source, seconds.append)
    assert next(stream) == 0
    stream.close()
    assert source.gi_frame is None  # closed, not only run out
    before = set(threading.enumerate())
    stream = timed(prefetch(iter(range(100)), depth=2), seconds.append)
    assert next(stream) == 0
    stream.close()
    assert set(threading.enumerate()) <= before  # the producer thread it started is gone


def test_prefetch_raises_where_the_producer_failed_and_stops_when_closed() -> None:
    def numbers():
        yield 1
        yield 2
        raise RuntimeError("tokenizer broke")

    got = []
    with pytest.raises(RuntimeError, match="tokenizer broke"):
        for item in prefetch(numbers(), depth=4):
            got.append(item)
    assert got == [1, 2]

    produced = []

    def endless():
        n = 0
        while True:
            produced.append(n)
            yield n
            n += 1

    stream = prefetch(endless(), depth=2)
    assert next(stream) == 0
    stream.close()  # joins the producer: it stops within depth + 1 items of the consumer
    assert len(produced) <= 4
    assert not any(t.name == "conan-prefetch" for t in threading.enumerate())
