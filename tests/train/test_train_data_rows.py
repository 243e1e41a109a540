"""Malformed training rows stop a stage with file:line, never a traceback from the tokenizer or json; a UTF-8 BOM (as
Windows editors write it) is read like any other row, by the index and by the tokenizer trainer alike."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conan_model import iter_jsonl_texts, train_tokenizer_from_texts
from train.data import JsonlIndex
from train.errors import DataError

FIELDS = ("query", "positive")


@pytest.fixture()
def pairs(shared_data: Path, tmp_path: Path) -> Path:
    """The first 20 rows of a real training file, copied so that a test can damage them."""
    lines = (shared_data / "train" / "parallel_en_zh" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(lines[:20]) + "\n", encoding="utf-8")
    return path


def _replace_line(path: Path, lineno: int, raw: bytes) -> None:
    lines = path.read_bytes().splitlines()
    lines[lineno - 1] = raw
    path.write_bytes(b"\n".join(lines) + b"\n")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        # before: the index passed it and BBPE training died on a UnicodeEncodeError traceback
        (b'{"query": "a\\ud800b", "positive": "c"}', r"field 'query' holds an unpaired surrogate escape \\ud800"),
        # before: a RecursionError / ValueError traceback out of json
        (b"[" * 100_000 + b"]" * 100_000, r"invalid JSON \(maximum recursion depth"),
        (b'{"query": "a", "positive": "b", "n": ' + b"9" * 5000 + b"}", r"invalid JSON \(Exceeds the limit"),
        # before: trained silently on the last of the two values
        (b'{"query": "a", "query": "b", "positive": "c"}', r"invalid JSON \(key 'query' is given twice"),
        # before: said the row lacked the field it holds
        (b'{"query": 5, "positive": "c"}', r"field 'query' must be a non-empty string, not 5"),
        (b'{"query": "caf\xe9", "positive": "c"}', r"not valid UTF-8 \(byte 14 of the line\)"),
        # before: str.strip() keeps NUL and zero-width characters, so these trained as empty texts while the harness
        # refused them in evaluation data; now one rule (conan_model.text) for both
        (b'{"query": "a", "positive": "\\u200b"}', r"field 'positive' holds only invisible characters '\\u200b'"),
        (b'{"query": "\\u0000 \\ufeff\\u2060", "positive": "c"}', r"field 'query' holds only invisible characters"),
        (b'{"query": "\\u200c\\u200d", "positive": "c"}', r"field 'query' holds only invisible characters"),
        (b'{"query": " ", "positive": "c"}', r"field 'query' is empty or not a string$"),
    ],
)
def test_bad_row_names_file_and_line(pairs: Path, raw: bytes, message: str) -> None:
    _replace_line(pairs, 7, raw)
    with pytest.raises(DataError, match=rf"train\.jsonl:7: {message}"):
        JsonlIndex([pairs], FIELDS)


def test_bom_file_is_indexed_and_trains_a_tokenizer(pairs: Path) -> None:
    """Before: the index accepted the BOM but the tokenizer trainer (iter_jsonl_texts) raised JSONDecodeError."""
    clean = list(iter_jsonl_texts([pairs], FIELDS))
    pairs.write_bytes(b"\xef\xbb\xbf" + pairs.read_bytes())
    index = JsonlIndex([pairs], FIELDS)
    assert json.loads(json.dumps(index.row(0)))["query"] == clean[0]
    texts = list(iter_jsonl_texts([pairs], FIELDS))
    assert texts == clean
    assert train_tokenizer_from_texts(texts, vocab_size=300).get_vocab_size() <= 300


def test_a_blank_or_invisible_negative_is_refused(pairs: Path) -> None:
    """An optional field present is held to the text rule of the required ones (audit, stop 47): a negative of
    spaces or a zero-width space was served as a row's first hard negative (and as an STS row's 0-scored pair)."""
    row = json.loads(pairs.read_text(encoding="utf-8").splitlines()[2])
    for blank in ("   ", "\u200b"):
        _replace_line(pairs, 3, json.dumps({**row, "negative": blank}).encode())
        with pytest.raises(DataError, match=rf"{pairs}:3: field 'negative' "):
            JsonlIndex([pairs], required=FIELDS, optional=("negative",))


@pytest.mark.parametrize("score", ["NaN", "Infinity", "true", '"4.5"'])
def test_an_sts_score_that_is_no_finite_number_is_refused(tmp_path: Path, score: str) -> None:
    """Before (audit, stop 47) true, NaN and Infinity passed the numeric check: CoSENT then dropped a NaN row from
    every comparison without a word (the loss equal with and without it)."""
    from train.multitask import read_rows

    path = tmp_path / "sts.jsonl"
    good = '{"sentence1": "a cat sits", "sentence2": "a cat is sitting", "score": 4.0}'
    path.write_text(f'{good}\n{{"sentence1": "one", "sentence2": "two", "score": {score}}}\n', encoding="utf-8")
    with pytest.raises(DataError, match=rf"{path}:2: STS row needs a finite numeric 'score'"):
        read_rows([path], "sts")


def test_parallel_files_are_checked_as_training_files(shared_data: Path, tmp_path: Path) -> None:
    """CLR's parallel_en_* files were read with json.loads line by line (audit, stop 47): a translation of spaces
    became a CLR query, and a BOM or a blank line stopped the stage with a JSONDecodeError. Now a BOM and blank lines
    read as in every training file, and an empty text is a DataError naming file:line."""
    from train.clr import ParallelTranslator

    lines = (shared_data / "train" / "parallel_en_zh" / "train.jsonl").read_text(encoding="utf-8").splitlines()[:5]
    folder = tmp_path / "parallel_en_zh"
    folder.mkdir()
    path = folder / "train.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + "\n\n".join(lines).encode() + b"\n")
    translator = ParallelTranslator.from_dir(tmp_path)
    assert len(translator.source_texts()) == len({json.loads(line)["query"] for line in lines})
    row = json.loads(lines[1])
    path.write_text("\n".join([lines[0], json.dumps({**row, "positive": "  "})]) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=rf"{path}:2: field 'positive' "):
        ParallelTranslator.from_dir(tmp_path)
