import json

import pytest

from conan_model import (
    SPECIAL_TOKENS,
    encode_batch,
    iter_jsonl_texts,
    load_tokenizer,
    save_tokenizer,
    train_tokenizer,
)


def test_special_ids_and_bos_eos(tokenizer):
    assert [tokenizer.token_to_id(t) for t in SPECIAL_TOKENS] == [0, 1, 2, 3]
    ids = tokenizer.encode("hello 世界").ids
    assert ids[0] == 2 and ids[-1] == 3 and 1 not in ids  # byte-level: no <unk>
    assert tokenizer.decode(ids) == "hello 世界"


def test_encode_batch_pads_right_and_truncates_keeping_eos(tokenizer):
    texts = ["A short one.", "The market rallied after the central bank held interest rates steady.", ""]
    b = encode_batch(tokenizer, texts, max_length=8)
    assert b.input_ids.shape == (3, 8) and b.lengths == [b.lengths[0], 8, 2]
    assert b.input_ids[1, -1].item() == 3
    assert b.attention_mask.sum(1).tolist() == b.lengths
    assert (b.input_ids[b.attention_mask == 0] == 0).all()
    with pytest.raises(ValueError):
        encode_batch(tokenizer, texts, max_length=1)


def test_train_from_jsonl_fields_save_and_load(tmp_path):
    rows = [{"query": "what is rope", "positive": ["rotary position embedding"], "n": 1}] * 30
    path = tmp_path / "pairs.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    assert list(iter_jsonl_texts([path], ("query", "positive"), max_rows=1)) == [
        "what is rope",
        "rotary position embedding",
    ]
    out = tmp_path / "tok" / "tokenizer.json"
    tok = train_tokenizer([path], vocab_size=300, fields=("query", "positive"), save_path=out)
    assert out.is_file() and not list(out.parent.glob(".*tmp*"))
    again = load_tokenizer(out.parent)
    assert again.encode("what is rope").ids == tok.encode("what is rope").ids
    # a packaged vocabulary is loaded as is, not retrained
    assert train_tokenizer([], vocab_size=10_000, tokenizer_json=out).get_vocab_size() == tok.get_vocab_size()


def test_load_errors(tmp_path, tokenizer):
    with pytest.raises(FileNotFoundError):
        load_tokenizer(tmp_path)
    with pytest.raises(ValueError):
        train_tokenizer([], vocab_size=100)
    save_tokenizer(tokenizer, tmp_path / "tokenizer.json")
    assert load_tokenizer(tmp_path).get_vocab_size() == tokenizer.get_vocab_size()


def test_a_tokenizer_json_that_pads_or_truncates_is_read_without_it(tmp_path, tokenizer, sample_texts):
    """Training batches its texts through `token_ids` on a tokenizer read from a file (load_tokenizer): a
    tokenizer.json with its own padding handed each text its batch's pads as real tokens, and its own truncation
    cut texts before max_length. Before: only the encoder switched them off."""
    from tokenizers import Tokenizer

    from conan_model.tokenizer import load_tokenizer, save_tokenizer, token_ids

    own = Tokenizer.from_str(tokenizer.to_str())
    own.enable_padding(pad_id=0, pad_token="<pad>")
    own.enable_truncation(8)
    save_tokenizer(own, tmp_path / "tokenizer.json")
    texts = [sample_texts[0] * 3, sample_texts[5]]
    assert token_ids(load_tokenizer(tmp_path / "tokenizer.json"), texts, 64) == token_ids(tokenizer, texts, 64)


def test_a_tokenizer_file_that_does_not_frame_texts_is_refused(tokenizer, tmp_path):
    """Audit, stop 48: a BBPE with the specials at 0..3 but a plain ByteLevel post-processor (what a stock
    `tokenizers` script writes) was accepted as `tokenizer = <file>`: packed pretraining ran documents together
    with no <bos>/<eos>, truncation kept no <eos>, and "last" pooling read a word."""
    from tokenizers import processors

    save_tokenizer(tokenizer, tmp_path / "good.json")
    bare = load_tokenizer(tmp_path / "good.json")  # a copy: the fixture is shared
    assert bare.encode("a").ids[0] == 2
    bare.post_processor = processors.ByteLevel(trim_offsets=False)
    save_tokenizer(bare, tmp_path / "bare.json")
    with pytest.raises(ValueError, match=r"bare\.json: encoding does not add <bos> and <eos> around a text"):
        load_tokenizer(tmp_path / "bare.json")
