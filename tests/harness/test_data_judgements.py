"""Loader follow-ups on what a judgement or label means once mteb scores it: a qrels line that mteb's twin can never
find (a document whose id equals the query id), negative grades, a class label of only whitespace, and test texts
that are also training texts of a Classification task."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from test_data import _edit_rows, _load, _sample_copy

from harness.data import default_data_root
from harness.errors import DataError
from harness.gold import gold_labels


def _scifact_as(root: Path, name: str) -> Path:
    """The embedded SciFact (real rows) as the mirror of mteb's task `name`, its document 31715818 renamed "1":
    the id of the query (line 2 of qrels.tsv: `1<TAB>31715818<TAB>1`) that judges it relevant."""
    folder = root / "en" / name
    shutil.copytree(default_data_root() / "en" / "SciFact", folder)
    meta = json.loads((folder / "task.json").read_text(encoding="utf-8"))
    (folder / "task.json").write_text(json.dumps({**meta, "name": name, "mteb_equivalent": name}), "utf-8")
    _edit_rows(folder / "corpus.jsonl", lambda rows: [{**r, "_id": "1"} if r["_id"] == "31715818" else r
                                                      for r in rows])  # fmt: skip
    qrels = folder / "qrels.tsv"
    qrels.write_text(qrels.read_text(encoding="utf-8").replace("1\t31715818\t", "1\t1\t"), "utf-8")
    return folder


@pytest.mark.parametrize("name", ["ArguAna", "QuoraRetrieval"])
def test_judgement_of_the_document_with_the_query_id_is_refused_where_mteb_ignores_it(tmp_path: Path,
                                                                                      name: str) -> None:  # fmt: skip
    """Before: loaded, then mteb's evaluator (ignore_identical_ids) removed document "1" from query "1"'s ranking, so
    the judgement could never be found and the query scored less whatever the model, without a word."""
    _scifact_as(tmp_path, name)
    with pytest.raises(DataError, match=rf"{name}/qrels\.tsv:2: query-id '1' judges the document of the same id "
                                        rf"relevant \(score 1\), but mteb's {name} leaves a document whose id equals "
                                        r"the query id out of every ranking \(ignore_identical_ids\)"):  # fmt: skip
        _load(tmp_path, name)


def test_identical_ids_load_where_mteb_keeps_them_or_the_grade_is_not_relevant(tmp_path: Path) -> None:
    """mteb's SciFact ranks every document, so the same judgement counts; in ArguAna a grade-0 line has nothing to
    find (it scores as no line at all)."""
    _scifact_as(tmp_path, "SciFact")
    assert _load(tmp_path, "SciFact").dataset["default"]["test"]["relevant_docs"]["1"] == {"1": 1}
    qrels = _scifact_as(tmp_path / "graded0", "ArguAna") / "qrels.tsv"
    qrels.write_text(qrels.read_text(encoding="utf-8").replace("1\t1\t1", "1\t1\t0"), "utf-8")
    assert _load(tmp_path / "graded0", "ArguAna").dataset["default"]["test"]["relevant_docs"]["1"] == {"1": 0}


def test_negative_grade_is_kept_and_scored_as_not_relevant(tmp_path: Path) -> None:
    """BEIR's convention (pytrec_eval, which mteb and reports score with): a grade of 0 or below is not relevant.
    The grade is kept as written, in the evaluated qrels and in the gold record, and mteb scores it as a 0."""
    from mteb._evaluators.retrieval_metrics import calculate_retrieval_scores

    folder = _sample_copy(tmp_path, "en", "SciFact")
    meta = json.loads((folder / "task.json").read_text(encoding="utf-8"))
    (folder / "task.json").write_text(json.dumps({**meta, "counts": {**meta["counts"], "qrels.tsv": 122}}), "utf-8")
    with (folder / "qrels.tsv").open("a", encoding="utf-8") as qrels:
        qrels.write("1\t140874\t-2\n")
    task = _load(tmp_path, "SciFact")
    relevant = task.dataset["default"]["test"]["relevant_docs"]
    assert relevant["1"] == {"31715818": 1, "140874": -2}
    assert gold_labels(task)["gold"]["1"] == {"31715818": 1, "140874": -2}
    ranking = {"1": {"140874": 2.0, "31715818": 1.0}}
    scores = [calculate_retrieval_scores(ranking, {"1": {**relevant["1"], "140874": grade}}, [10]).ndcg
              for grade in (-2, 0)]  # fmt: skip
    assert scores[0] == scores[1]


@pytest.mark.parametrize("label", [" ", "\t", "\u3000", "\u200b"])
@pytest.mark.parametrize(("name", "filename"), [("EmotionClassification", "train.jsonl"),
                                                ("EmotionClassification", "test.jsonl"),
                                                ("AGNewsClusteringS2S", "test.jsonl")])  # fmt: skip
def test_class_label_of_only_whitespace_is_refused(tmp_path: Path, name: str, filename: str, label: str) -> None:
    """Before: a label " " loaded as one more class or cluster (a typo or a lost value, scored like a real one)."""
    folder = _sample_copy(tmp_path, "en", name)
    _edit_rows(folder / filename, lambda rows: [rows[0], rows[1], {**rows[2], "label": label}, *rows[3:]])
    with pytest.raises(DataError, match=rf"{name}/{filename}:3: field 'label' {re.escape(repr(label))} holds no "
                                        r"visible character"):  # fmt: skip
        _load(tmp_path, name)


def test_test_text_also_in_train_is_said_with_its_count(tmp_path: Path, capsys) -> None:
    """Before: a test row whose text was a training row (the classifier trained on it: inflated accuracy) loaded
    without a word. Still loaded (mteb's own splits are not checked for it), but counted on stderr, once per task."""
    folder = _sample_copy(tmp_path, "en", "EmotionClassification")
    test = [json.loads(x) for x in (folder / "test.jsonl").read_text(encoding="utf-8").splitlines()]
    _edit_rows(folder / "train.jsonl", lambda rows: [*rows[:-2], {**rows[-2], "text": test[4]["text"]},
                                                     {**rows[-1], "text": f" {test[9]['text']}"}])  # fmt: skip
    _load(tmp_path, "EmotionClassification")
    err = capsys.readouterr().err
    assert err.count("harness: warning:") == 1
    assert (f"EmotionClassification/test.jsonl: 2 of {len(test)} test texts are also in train.jsonl (the classifier "
            f"is trained on them, which inflates accuracy; first: test.jsonl:5 {test[4]['text'][:60]!r})") in err


def test_shipped_classification_splits_are_text_disjoint(shared_data: Path, capsys) -> None:
    """The data README promises text-disjoint train and test: no shipped task or sample says otherwise."""
    for root in (shared_data, default_data_root()):
        for name in ("Banking77Classification", "EmotionClassification", "IFlyTek", "OnlineShopping", "TNews"):
            _load(root, name)
    assert "also in train.jsonl" not in capsys.readouterr().err
