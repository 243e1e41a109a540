"""Data readers: packing, bucketing, seeded order, exact resume position, rank sharding, bad input."""

from __future__ import annotations

import json
import logging
from itertools import islice
from pathlib import Path

import numpy as np
import pytest
import torch

from conan_model import iter_jsonl_texts, train_tokenizer_from_texts
from train.data import JsonlIndex, PackedBatches, PairBatches
from train.errors import DataError

PAIRS = "parallel_en_zh"
FIELDS = ("query", "positive")


@pytest.fixture(scope="module")
def files(shared_data):
    root = shared_data / "train"
    return {"news": [root / "news_en_raw/train.jsonl", root / "news_zh_raw/train.jsonl"],
            "pairs": [root / f"{PAIRS}/train.jsonl"]}  # fmt: skip


@pytest.fixture(scope="module")
def news(files):
    return JsonlIndex(files["news"], ["text"])


@pytest.fixture(scope="module")
def tok(files):
    texts = list(iter_jsonl_texts(files["news"] + files["pairs"], ("text", "query", "positive"), max_rows=200))
    return train_tokenizer_from_texts(texts, vocab_size=600)


def packed(news, tok, micro=4, rank=0, world=1, seed=0):
    return PackedBatches(news, tok, 32, micro, rank, world, seed)


def pairs(files, tok, micro=8, rank=0, world=1, seed=0, **kw):
    return PairBatches(JsonlIndex(files["pairs"], FIELDS), tok, FIELDS, 32, micro, rank, world, seed, **kw)


def test_packing_concatenates_documents_in_seeded_order(news, tok):
    data = packed(news, tok)
    stream = torch.cat([b.flatten() for b in islice(data, 3)]).tolist()
    order = data._order
    docs = [data.index.row(int(i))["text"] for i in order[:50]]
    expected = [t for enc in tok.encode_batch(docs) for t in enc.ids]
    assert stream == expected[: len(stream)]
    assert stream[0] == tok.token_to_id("<bos>")
    other = packed(news, tok, seed=1)
    assert not torch.equal(next(other), next(packed(news, tok)))


@pytest.mark.parametrize("kind", ["packed", "pairs"])
def test_resume_state_gives_the_same_batches(files, news, tok, kind):
    source = news if kind == "packed" else files
    make = packed if kind == "packed" else pairs
    first = make(source, tok)
    list(islice(first, 5))
    state = json.loads(json.dumps(first.state_dict()))  # it goes through state.json
    expected = [b if kind == "packed" else b.ids for b in islice(first, 6)]
    again = make(source, tok)
    again.load_state_dict(state)
    got = [b if kind == "packed" else b.ids for b in islice(again, 6)]
    if kind == "packed":
        assert all(torch.equal(a, b) for a, b in zip(expected, got, strict=True))
    else:
        assert got == expected


def test_ranks_split_the_global_batch_like_one_process(files, news, tok):
    one = next(packed(news, tok, micro=4))
    two = torch.cat([next(packed(news, tok, micro=2, rank=r, world=2)) for r in range(2)])
    assert torch.equal(one, two)
    whole = next(pairs(files, tok, micro=8))
    parts = [next(pairs(files, tok, micro=4, rank=r, world=2)) for r in range(2)]
    assert parts[0].rows + parts[1].rows == whole.rows
    assert parts[0].ids["query"] + parts[1].ids["query"] == whole.ids["query"]


def test_pair_epoch_visits_every_training_row_once_and_holdout_is_disjoint(files, tok):
    data = pairs(files, tok, holdout=100, bucket_window=4)
    rows = [r for b in islice(data, data.batches_per_epoch) for r in b.rows]
    assert len(rows) == len(set(rows)) == data.batches_per_epoch * 8
    assert set(rows) <= set(data.train_rows.tolist())
    assert not set(rows) & set(data.heldout_rows.tolist()) and len(data.heldout_rows) == 100
    clean, repeated = data.heldout()
    assert len(clean) + repeated == 100
    assert next(data).rows and data.epoch == 1  # rolls over into a new epoch


def test_bucketing_reduces_padding(files, tok):
    def padding(window: int) -> int:
        data = pairs(files, tok, bucket_window=window)
        total = 0
        for b in islice(data, 32):
            lengths = [len(x) for x in b.ids["query"]]
            total += max(lengths) * len(lengths) - sum(lengths)
        return total

    assert padding(16) < 0.5 * padding(1)


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        JsonlIndex([tmp_path / "nope.jsonl"], ["text"])
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(DataError, match=r"empty\.jsonl: empty data file"):
        JsonlIndex([empty], ["text"])


def test_bad_rows_name_file_and_line(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"query": "a", "positive": "b"}\n\n{"query": "c"}\n')
    with pytest.raises(DataError, match=r"pairs\.jsonl:3: row lacks required field\(s\) \['positive'\]"):
        JsonlIndex([path], FIELDS)
    path.write_text('{"query": "a", "positive": "b"}\n{"query": "a", "positive": \n')
    with pytest.raises(DataError, match=r"pairs\.jsonl:2: invalid JSON \(Expecting value at column 28\)$"):
        JsonlIndex([path], FIELDS)  # before stop 63 also "line 2 column 1", within the row
    path.write_text('{"query": "a", "positive": "b"}\n{"query": "a", "positive": "cut sh\n')
    with pytest.raises(DataError, match=r"pairs\.jsonl:2: invalid JSON \(Unterminated string starting at column "
                                        r"28\)$"):  # before stop 66 "Invalid control character at at character 35"
        JsonlIndex([path], FIELDS)


def test_long_texts_truncate_with_a_count_or_error(tmp_path, tok, caplog):
    path = tmp_path / "pairs.jsonl"
    rows = [{"query": "short one", "positive": "also short"}] * 7 + [{"query": "word " * 80, "positive": "x"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    index = JsonlIndex([path], FIELDS)
    data = PairBatches(index, tok, FIELDS, 16, micro_batch=8, on_long="truncate")
    batch = next(data)
    assert max(len(x) for x in batch.ids["query"]) == 16 and data.truncated == 1
    assert batch.ids["query"][-1][-1] == tok.token_to_id("<eos>")
    assert "pairs.jsonl:8" in caplog.text
    with pytest.raises(DataError, match=r"pairs\.jsonl:8: 'query' has \d+ tokens, more than max_length 16"):
        next(PairBatches(index, tok, FIELDS, 16, micro_batch=8, on_long="error"))


def test_too_few_rows_for_one_global_batch(tmp_path, tok):
    path = tmp_path / "pairs.jsonl"
    path.write_text('{"query": "a", "positive": "b"}\n' * 5)
    with pytest.raises(DataError, match="fewer than one global batch of 8"):
        PairBatches(JsonlIndex([path], FIELDS), tok, FIELDS, 16, micro_batch=4, world=2)
    assert np.array_equal(JsonlIndex([path], FIELDS).lines, np.arange(1, 6))


def test_heldout_pairs_sharing_a_text_with_training_are_left_out(shared_data, tok):
    """The holdout is drawn by row; Tatoeba repeats sentences across pairs, so some held-out pairs' texts also
    train (audit stop 36: 78 of configs/weak.toml's 512 held-out pairs were training pairs). heldout() keeps the
    pairs none of whose texts a training row holds, counted independently here."""
    index = JsonlIndex([shared_data / "train" / "parallel_en_zh_tatoeba" / "train.jsonl"], FIELDS)
    data = PairBatches(index, tok, FIELDS, 32, 8, holdout=400)
    trained = {index.row(int(i))[f] for i in data.train_rows for f in FIELDS}
    held = [index.row(int(i)) for i in data.heldout_rows]
    expected = [row for row in held if row["query"] not in trained and row["positive"] not in trained]
    clean, repeated = data.heldout()
    assert clean == expected and repeated == 400 - len(expected) and repeated > 0


def test_heldout_count_of_the_weak_config(shared_data, tok):
    """configs/weak.toml's 512 held-out pairs (seed 0, the quickstart's second command): 181 share a query or
    positive text with a training pair, 78 of them as whole pairs, so eval_mrr scores 331 (docs/training.md; the
    quickstart's recall@1 0.0967 is 32 of those 331)."""
    from train.config import WeakConfig, load_config

    config = Path(__file__).resolve().parents[2] / "configs" / "weak.toml"
    cfg = load_config(WeakConfig, config, [f"data_root='{shared_data / 'train'}'"])
    index = JsonlIndex(cfg.data_files(), required=FIELDS, optional=("negative",))
    data = PairBatches(index, tok, FIELDS, cfg.max_length, cfg.batch_size, seed=cfg.seed, holdout=cfg.holdout)
    clean, repeated = data.heldout()
    def pairs(rows) -> list[tuple[str, str]]:
        return [(row["query"], row["positive"]) for row in map(index.row, map(int, rows))]

    trained = set(pairs(data.train_rows))
    whole = sum(pair in trained for pair in pairs(data.heldout_rows))
    assert (len(clean), repeated, whole) == (331, 181, 78)


def test_a_misspelt_field_of_a_training_row_is_refused_and_other_keys_are_said(tmp_path: Path, caplog):
    """A user walk: rows written `{"query", "positive", "negatives": [...]}` (sentence-transformers' plural) trained
    with every given negative dropped, unsaid (before stop 63). A key that looks like a field is refused at its
    file:line; any other key (metadata such as an id) is said once per file and the row trains."""
    plural = tmp_path / "plural.jsonl"
    plural.write_text('{"query": "q", "positive": "p"}\n{"query": "q2", "positive": "p2", "negatives": ["n"]}\n')
    with pytest.raises(DataError, match=r"plural.jsonl:2: unknown field 'negatives'; did you mean 'negative'\?"):
        JsonlIndex([plural], required=("query", "positive"), optional=("negative",))
    meta = tmp_path / "meta.jsonl"
    meta.write_text('{"query": "q", "positive": "p", "query_id": 7}\n{"query": "q2", "positive": "p2", "src": "x"}\n')
    with caplog.at_level(logging.WARNING, logger="train"):
        assert len(JsonlIndex([meta], required=("query", "positive"), optional=("negative",))) == 2
    said = [r.getMessage() for r in caplog.records]
    assert said == [f"{meta}: key(s) 'query_id', 'src' not read (first at line 1): a row's fields are query, "
                    "positive, negative"]  # fmt: skip
    scored = tmp_path / "scored.jsonl"
    scored.write_text('{"sentence1": "a", "sentence2": "b", "score": 1.5}\n')
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="train"):
        JsonlIndex([scored], required=("sentence1", "sentence2"), optional=("negative",), known=("score",))
    assert not caplog.records
