"""Candidate-pool mining (BM25 and an embedder) and the cross-lingual builder's language mix."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from train.clr import PAPER_LANGUAGE_MIX, ParallelTranslator, allocate, build_clr, format_report, normalise_mix
from train.mining import BM25, bm25_tokens, ensure_pools, labelled_matches, load_pools, mine_pools, save_pools


def test_bm25_tokens_words_and_cjk_bigrams():
    assert bm25_tokens("Hello, World! 42") == ["hello", "world", "42"]
    assert bm25_tokens("花呗怎么还款") == ["花呗", "呗怎", "怎么", "么还", "还款"]
    assert bm25_tokens("用 Alipay 付") == ["用", "alipay", "付"]


def test_bm25_matches_okapi_formula():
    docs = ["the cat sat", "the dog sat on the mat", "a bird"]
    scores = BM25(docs, k1=1.5, b=0.75).scores(["cat on mat"])[0]
    toks = [d.split() for d in docs]
    avg = sum(map(len, toks)) / 3

    def okapi(term, d):
        df = sum(term in t for t in toks)
        idf = math.log(1 + (3 - df + 0.5) / (df + 0.5))
        tf = toks[d].count(term)
        return idf * tf * 2.5 / (tf + 1.5 * (1 - 0.75 + 0.75 * len(toks[d]) / avg))

    expected = [sum(okapi(t, d) for t in ("cat", "on", "mat")) for d in range(3)]
    assert np.allclose(scores, expected, atol=1e-5)


def test_mine_pools_bm25_excludes_query_and_positives(tmp_path):
    corpus = ["how to repay alipay loan", "alipay loan repayment date", "alipay loan limit", "weather today",
              "repay the loan early"]  # fmt: skip
    pools = mine_pools(["how to repay alipay loan"], [["alipay loan repayment date"]], corpus, "bm25", depth=3)
    cands = pools[0]["candidates"]
    assert "how to repay alipay loan" not in cands and "alipay loan repayment date" not in cands
    assert cands == ["repay the loan early", "alipay loan limit"]  # "weather today" shares no term: not a candidate
    assert pools[0]["scores"] == sorted(pools[0]["scores"], reverse=True)
    save_pools(tmp_path / "p.jsonl", pools, meta={"scorer": "bm25"})
    assert load_pools(tmp_path / "p.jsonl") == pools
    (tmp_path / "bad.jsonl").write_text('{"query": "x"}\n')
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        load_pools(tmp_path / "bad.jsonl")


def test_pools_read_back_must_be_the_queries_and_never_serve_a_match(tmp_path):
    """A walk (stop 70): a pools file edited together with its meta's checksum. A line gone was a bare `zip()`
    error, a line of another query was served to this one, a positive put back in a pool was served as its hard
    negative. Now the file is refused, naming the line, and a labelled match is never served."""
    from train.errors import DataError
    from train.mining import matching_pools

    rows = [("apple pie", "red apple pie"), ("blue car", "a blue sports car"), ("apple juice", "fresh apple juice")]
    queries = [q for q, _ in rows]
    corpus = [p for _, p in rows] + ["green apple", "apple tart", "car wash", "blue apple"]
    path = tmp_path / "t.jsonl"
    assert ensure_pools(path, queries, [[p] for _, p in rows], corpus, "bm25", 4)
    matches = labelled_matches(rows)
    pools = load_pools(path)
    assert matching_pools(path, queries, matches) == [p["candidates"] for p in pools]
    pools[0]["candidates"].insert(0, "red apple pie")  # its own positive put back
    save_pools(path, pools)
    assert "red apple pie" not in matching_pools(path, queries, matches)[0]
    save_pools(path, pools[:2])
    with pytest.raises(DataError, match=r"t.jsonl: 2 pools for 3 queries: remove the file and its .meta.json"):
        matching_pools(path, queries, matches)
    save_pools(path, [pools[0], pools[2], pools[1]])
    with pytest.raises(DataError, match=r"t.jsonl:2: the pool is for query 'apple juice', where the task's rows "
                                        r"give 'blue car'"):  # fmt: skip
        matching_pools(path, queries, matches)


def test_ensure_pools_mines_once_per_input(tmp_path):
    corpus = ["red apple pie", "green apple", "apple juice", "blue car"]
    path = tmp_path / "pools" / "t.jsonl"
    assert ensure_pools(path, ["apple pie"], [["red apple pie"]], corpus, "bm25", 2)
    assert not ensure_pools(path, ["apple pie"], [["red apple pie"]], corpus, "bm25", 2)  # cached
    assert ensure_pools(path, ["apple pie"], [["red apple pie"]], corpus + ["apple tart"], "bm25", 2)  # new corpus
    assert load_pools(path)[0]["candidates"][0] in {"green apple", "apple juice", "apple tart"}
    # other positives decide other exclusions: mined again
    assert ensure_pools(path, ["apple pie"], [["green apple"]], corpus + ["apple tart"], "bm25", 2)
    assert "green apple" not in load_pools(path)[0]["candidates"]


def test_pools_mined_by_other_code_are_mined_again(tmp_path, monkeypatch):
    """Pools kept in a work folder across a commit that changes how they are mined: before, the meta matched (it
    keyed the inputs and the scorer alone) and the old code's pools were served to units recorded at the new
    code. The key is the module's syntax tree: a comment does not count, a changed token does."""
    import train.mining as mining

    source = Path(mining.__file__).read_text(encoding="utf-8")
    assert mining.mining_code() == mining.code_digest(source)
    assert mining.code_digest(source + "\n# a comment\n") == mining.code_digest(source)
    tokens = "out.extend([run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)])"
    assert source.count(tokens) == 1  # bigrams -> trigrams: other pools for any CJK text
    changed = mining.code_digest(source.replace(tokens, tokens.replace("i + 2", "i + 3")))
    assert changed != mining.mining_code()
    corpus = ["red apple pie", "green apple", "apple juice", "blue car"]
    path = tmp_path / "pools" / "t.jsonl"
    assert ensure_pools(path, ["apple pie"], [["red apple pie"]], corpus, "bm25", 2)
    assert not ensure_pools(path, ["apple pie"], [["red apple pie"]], corpus, "bm25", 2)
    monkeypatch.setattr(mining, "mining_code", lambda: changed)
    assert ensure_pools(path, ["apple pie"], [["red apple pie"]], corpus, "bm25", 2)
    assert not ensure_pools(path, ["apple pie"], [["red apple pie"]], corpus, "bm25", 2)


def test_pools_replaced_under_a_kept_meta_are_mined_again(tmp_path, monkeypatch):
    """A run mines at depth 3; another run's depth-1 pools replace the file and it stops before writing its meta.
    Before stop 48 (audit) the first run's settings found their meta and served the depth-1 pools as theirs."""
    import train.mining as mining

    corpus = ["red apple pie", "green apple", "apple juice", "apple tart", "blue car"]
    path = tmp_path / "pools" / "t.jsonl"
    assert ensure_pools(path, ["apple pie"], [["red apple pie"]], corpus, "bm25", 3)
    assert len(load_pools(path)[0]["candidates"]) == 3
    meta = path.with_name("t.jsonl.meta.json").read_text(encoding="utf-8")

    def crash(target, text):  # the other run dies between its pools and its meta
        if target.name.endswith(".meta.json"):
            raise KeyboardInterrupt
        Path(target).write_text(text, encoding="utf-8")

    monkeypatch.setattr(mining, "atomic_write_text", crash)
    with pytest.raises(KeyboardInterrupt):
        ensure_pools(path, ["apple pie"], [["red apple pie"]], corpus, "bm25", 1)
    monkeypatch.undo()
    assert not path.with_name("t.jsonl.meta.json").exists()  # the old meta went first
    path.with_name("t.jsonl.meta.json").write_text(meta, encoding="utf-8")  # even a meta put back is not taken
    assert ensure_pools(path, ["apple pie"], [["red apple pie"]], corpus, "bm25", 3)
    assert len(load_pools(path)[0]["candidates"]) == 3


def test_ensure_pools_mines_again_when_the_scorers_weights_change(tmp_path, monkeypatch):
    """A model spec is keyed by the loaded scorer's identity (through the harness's own loader), not by its
    string: new weights behind the same `conan:<dir>` mine again, the same weights do not."""
    import torch

    import train.scorer
    from conan_model import ConanConfig, ConanModel, save_pretrained, train_tokenizer_from_texts
    from harness.cli import load_embedder

    monkeypatch.setattr(train.scorer, "_loader", load_embedder)  # what `harness train` installs
    corpus = ["red apple pie", "green apple", "apple juice", "blue car", "fast red car", "slow boat"]
    tokenizer = train_tokenizer_from_texts(corpus * 5, vocab_size=300, min_frequency=1)
    folder, path = tmp_path / "weak" / "final", tmp_path / "pools" / "t.jsonl"

    def train_into_folder(seed: int) -> None:
        torch.manual_seed(seed)
        cfg = ConanConfig.preset("tiny", vocab_size=tokenizer.get_vocab_size(), max_length=16)
        save_pretrained(ConanModel(cfg).eval(), tokenizer, folder)

    def mine() -> bool:
        return ensure_pools(path, ["apple pie", "red car"], [["red apple pie"], ["fast red car"]], corpus,
                            f"conan:{folder}", 3)  # fmt: skip

    train_into_folder(0)
    assert mine() and not mine()
    train_into_folder(1)  # the weak stage trained again into the same folder
    assert mine()


class FakeEmbedder:
    """Bag-of-letters vectors: deterministic, no model needed."""

    def encode_batch(self, texts, role):
        out = np.zeros((len(texts), 26), np.float32)
        for i, t in enumerate(texts):
            for ch in t.lower():
                if "a" <= ch <= "z":
                    out[i, ord(ch) - 97] += 1
        return out + 1e-3


def test_mine_pools_with_an_embedder():
    corpus = ["abc", "abd", "xyz", "abcabc", "qrs"]
    pools = mine_pools(["abc"], [["abcabc"]], corpus, FakeEmbedder(), depth=2)
    assert pools[0]["candidates"][0] == "abd" and len(pools[0]["candidates"]) == 2


def test_mine_pools_with_minilm_ranks_related_text_first(minilm):
    corpus = ["A man is playing a guitar.", "A woman slices an onion.", "Someone plays an instrument.",
              "The stock market fell."]  # fmt: skip
    pools = mine_pools(["A man plays the guitar."], [["A man is playing a guitar."]], corpus, minilm, depth=3)
    assert pools[0]["candidates"][0] == "Someone plays an instrument."


def test_paper_mix_has_26_languages_summing_to_106():
    assert len(PAPER_LANGUAGE_MIX) == 26 and sum(PAPER_LANGUAGE_MIX.values()) == 106
    assert sum(normalise_mix(PAPER_LANGUAGE_MIX).values()) == pytest.approx(1.0)
    counts = allocate(PAPER_LANGUAGE_MIX, 1060)
    assert sum(counts.values()) == 1060 and counts["en"] == 250 and counts["zh"] == 120 and counts["no"] == 10
    assert sum(allocate(PAPER_LANGUAGE_MIX, 7).values()) == 7


def test_clr_mix_with_a_full_translator_follows_the_table():
    examples = [{"query": f"q{i}", "positive": f"d{i}", "negative": f"n{i}"} for i in range(400)]
    out, report = build_clr(examples, lambda text, lang: f"[{lang}] {text}", total=1060, seed=1)
    assert report["produced_total"] == 1060
    by_lang = {r["lang"]: r for r in report["languages"]}
    for lang, share in PAPER_LANGUAGE_MIX.items():
        assert by_lang[lang]["produced"] == allocate(PAPER_LANGUAGE_MIX, 1060)[lang]
        assert by_lang[lang]["produced_share"] == pytest.approx(share / 106, abs=1e-3)
    de = [ex for ex in out if ex["query_lang"] == "de"]
    assert all(ex["query"].startswith("[de] q") and ex["doc_lang"] == "en" for ex in de)
    ex = de[0]
    assert ex["positive"] == examples[ex["source_index"]]["positive"]
    assert len({e["source_index"] for e in de}) == len(de)  # each source at most once per language


def test_clr_reports_shortfalls_honestly(tmp_path):
    for lang in ("de", "ja"):
        folder = tmp_path / f"parallel_en_{lang}"
        folder.mkdir()
        rows = [f'{{"query": "s{i}", "positive": "{lang}{i}"}}' for i in range(3 if lang == "ja" else 50)]
        (folder / "train.jsonl").write_text("\n".join(rows) + "\n")
    translator = ParallelTranslator.from_dir(tmp_path)
    assert translator.languages() == ["de", "ja"] and translator("s1", "de") == "de1"
    examples = [{"query": t, "positive": t} for t in translator.source_texts()]  # self-retrieval set
    out, report = build_clr(examples, translator, mix={"en": 2, "de": 1, "ja": 1, "fr": 1}, total=50)
    rows = {r["lang"]: r for r in report["languages"]}
    assert rows["de"]["requested"] == 10 and rows["de"]["produced"] == 10
    assert rows["ja"]["produced"] == 3 and "only 3" in rows["ja"]["note"]
    assert rows["fr"]["produced"] == 0 and rows["fr"]["note"] == "no translations available"
    assert rows["en"]["produced"] == 0 and "self-retrieval" in rows["en"]["note"]
    assert report["produced_total"] == len(out) == 13
    assert rows["de"]["produced_share"] == pytest.approx(10 / 13)
    assert "| fr | French | 20.0% | 10 | 0 | 0.0% | no translations available |" in format_report(report)


def test_concurrent_pool_writers_sharing_a_folder_do_not_collide(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    pools = [{"query": f"q{i}", "candidates": [f"d{j}" for j in range(50)], "scores": [0.5] * 50} for i in range(300)]
    path = tmp_path / "pools" / "clr.jsonl"
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda _: save_pools(path, pools, {"depth": 50}), range(8)))
    assert load_pools(path) == pools and sorted(p.name for p in path.parent.iterdir()) == [
        "clr.jsonl", "clr.jsonl.meta.json"]  # fmt: skip


def test_a_model_spec_without_the_harness_says_how_to_get_one(monkeypatch):
    """train never imports the harness: `python -m train` alone mines with bm25, a model spec names the way out."""
    from train import scorer
    from train.errors import ConfigError

    monkeypatch.setattr(scorer, "_loader", None)
    with pytest.raises(ConfigError, match="harness train"):
        mine_pools(["a b"], [["a c"]], ["a c", "a d"], "minilm", depth=1)


def test_the_harness_cli_installs_its_model_loader(monkeypatch, capsys):
    import harness.cli
    from train import scorer

    monkeypatch.setattr(scorer, "_loader", None)
    assert harness.cli.main(["list", "suites"]) == 0
    assert scorer._loader is harness.cli.load_embedder


def test_labelled_matches_join_pairs_both_ways_and_through_shared_texts():
    """(a, b) and (b, a); c sharing a's positive b; a chain d -> e -> f; x alone with y (stop 46, audit)."""
    matches = labelled_matches([("a", "b"), ("b", "a"), ("c", "b"), ("d", "e"), ("e", "f"), ("x", "y")])
    assert matches["a"] == matches["b"] == matches["c"] == frozenset("abc")
    assert matches["d"] == matches["f"] == frozenset("def")
    assert matches["x"] == frozenset("xy") and "z" not in matches


def test_translations_shared_by_english_texts_link_them():
    translator = ParallelTranslator({"zh": {"a cat": "猫", "the cat": "猫", "a dog": "狗"},
                                     "de": {"a dog": "Hund", "one dog": "Hund", "a cat": "Katze"}})  # fmt: skip
    assert sorted(translator.shared()) == [("a cat", "the cat"), ("a dog", "one dog")]


def test_a_translation_shared_on_a_later_row_links_the_texts_too(tmp_path):
    """Before stop 50 only each English text's first translation was read: "How much is it?" (first 它多貴?, then
    多少錢?) and "How much does it cost?" (多少錢?) stayed apart, so one was served as the other's hard negative."""
    folder = tmp_path / "parallel_en_zh"
    folder.mkdir()
    rows = [("How much is it?", "它多貴?"), ("How much is it?", "多少錢?"), ("How much does it cost?", "多少錢?")]
    (folder / "train.jsonl").write_text("".join(json.dumps({"query": q, "positive": p}, ensure_ascii=False) + "\n"
                                                for q, p in rows), encoding="utf-8")  # fmt: skip
    translator = ParallelTranslator.from_dir(tmp_path)
    assert translator("How much is it?", "zh") == "它多貴?"  # the first translation still serves CLR
    assert translator.shared() == [("How much is it?", "How much does it cost?")]
