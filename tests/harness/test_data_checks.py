"""Loader follow-ups: extra qrels columns, a `counts` key naming no file of the task, invisible-only texts, and the
folder a symlinked row file escapes. Each is an error naming file:line (or task.json's key) and what is expected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_data import _edit_rows, _load, _retrieval, _sample_copy, _task_dir

from harness.data import OutsideRoot, discover_tasks, scan_tasks
from harness.errors import DataError


@pytest.mark.parametrize(
    ("qrels", "message"),
    [
        (["q1\td1\t1", "q2\td2\t1\t0"],
         r"qrels\.tsv:3: expected 3 tab-separated columns \(query-id, corpus-id, score\), got 4: 'q2\\td2\\t1\\t0'"),
        (["q1\td1\t1", "q2\td2\t1\t"], r"qrels\.tsv:3: expected 3 tab-separated columns .*got 4"),
        (["q1\t0\td1\t1", "q2\t0\td2\t1"], r"qrels\.tsv:2: expected 3 tab-separated columns .*got 4"),  # TREC form
    ],
)  # fmt: skip
def test_qrels_line_with_extra_columns_is_refused(tmp_path: Path, qrels: list[str], message: str) -> None:
    """Before: columns after the third went unread without a word (which one is the score?); a TREC-style
    `qid 0 docid grade` line failed only as far as its ids happened not to match."""
    _retrieval(tmp_path, qrels)
    with pytest.raises(DataError, match=message):
        _load(tmp_path, "MyRetrieval")


def test_qrels_header_with_extra_columns_is_refused(tmp_path: Path) -> None:
    folder = _retrieval(tmp_path, [])
    (folder / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\titeration\nq1\td1\t1\t0\nq2\td2\t1\t0\n", "utf-8")
    with pytest.raises(DataError, match=r"qrels\.tsv:1: header must be 'query-id<TAB>corpus-id<TAB>score', not "
                                        r"'query-id\\tcorpus-id\\tscore\\titeration'"):  # fmt: skip
        _load(tmp_path, "MyRetrieval")


def test_qrels_fields_are_taken_as_written(tmp_path: Path) -> None:
    """Before (csv quoting): a stray quote before a corpus-id joined the lines after it into that field ('expected 3
    tab-separated columns, got 2', the quote unnamed), and a quoted id silently lost its quotes."""
    _retrieval(tmp_path, ["q1\td1\t1", 'q2\t"d2\t1', "q1\td2\t0"])
    with pytest.raises(DataError, match=r"qrels\.tsv:3: corpus-id '\"d2' is not in corpus\.jsonl"):
        _load(tmp_path, "MyRetrieval")


def test_shipped_qrels_have_three_columns(shared_data: Path) -> None:
    """../shared/data and the embedded sample write BEIR's form: the refusal above breaks none of them."""
    from harness.data import default_data_root

    for root in (shared_data, default_data_root()):
        for task in discover_tasks(root).values():
            if task.type == "Retrieval":
                assert _load(root, task.name).dataset["default"], task.name


@pytest.mark.parametrize(
    ("kind", "counts", "message"),
    [
        ("STS", {"tset.jsonl": 47}, r"counts names 'tset\.jsonl', a file STS tasks do not read; did you mean: "
                                    r"test\.jsonl\? \(they read test\.jsonl\)"),
        ("Retrieval", {"qrels.csv": 3}, r"counts names 'qrels\.csv', a file Retrieval tasks do not read; did you "
                                        r"mean: qrels\.tsv\? \(they read corpus\.jsonl, queries\.jsonl, qrels\.tsv\)"),
        ("STS", {"train.jsonl": 10}, r"counts names 'train\.jsonl', a file STS tasks do not read.*\(they read "
                                     r"test\.jsonl\)"),
    ],
)  # fmt: skip
def test_counts_key_naming_no_file_of_the_task_is_refused(tmp_path: Path, kind: str, counts: dict,
                                                          message: str) -> None:  # fmt: skip
    """Before: a misspelt key was never looked up, so the real file went unchecked without a word."""
    _task_dir(tmp_path, "MyTask", kind, counts=counts)
    tasks, broken = scan_tasks(tmp_path)
    assert not tasks
    assert isinstance(broken["MyTask"], DataError)
    assert broken["MyTask"].path.name == "task.json" and broken["MyTask"].line == 1
    with pytest.raises(DataError, match=r"MyTask/task\.json:1: " + message):
        discover_tasks(tmp_path)


INVISIBLE = ["\x00", "\u200b", "\u200c\u200d", "\u2060", "\ufeff", " \u200b\t\ufeff "]


@pytest.mark.parametrize("text", INVISIBLE)
def test_text_of_only_invisible_characters_is_empty(tmp_path: Path, text: str) -> None:
    """Before: str.strip() keeps NUL and the zero-width characters, so such a text passed as non-empty."""
    folder = _sample_copy(tmp_path, "en", "STS16")
    _edit_rows(folder / "test.jsonl", lambda rows: [rows[0], {**rows[1], "sentence2": text}, *rows[2:]])
    with pytest.raises(DataError, match=r"STS16/test\.jsonl:2: field 'sentence2' holds only invisible characters "
                                        r".* \(control or zero-width\), so it is empty"):  # fmt: skip
        _load(tmp_path, "STS16")


@pytest.mark.parametrize(("filename", "field"), [("corpus.jsonl", "text"), ("queries.jsonl", "text")])
def test_retrieval_text_of_only_invisible_characters_is_empty(tmp_path: Path, filename: str, field: str) -> None:
    folder = _sample_copy(tmp_path, "en", "SciFact")
    _edit_rows(folder / filename, lambda rows: [*rows[:4], {**rows[4], field: "\u200b\u200b"}, *rows[5:]])
    with pytest.raises(DataError, match=rf"SciFact/{filename}:5: field '{field}' holds only invisible characters "
                                        r"'\\u200b\\u200b'"):  # fmt: skip
        _load(tmp_path, "SciFact")


def test_reranking_candidate_of_only_invisible_characters_is_empty(tmp_path: Path) -> None:
    folder = _sample_copy(tmp_path, "en", "TrecQAReranking")
    _edit_rows(folder / "test.jsonl", lambda rows: [{**rows[0], "negative": [*rows[0]["negative"], "\x00"]},
                                                    *rows[1:]])  # fmt: skip
    item = len(json.loads((folder / "test.jsonl").read_text(encoding="utf-8").splitlines()[0])["negative"]) - 1
    with pytest.raises(DataError, match=rf"TrecQAReranking/test\.jsonl:1: field 'negative' item {item} holds only "
                                        r"invisible characters '\\x00'"):  # fmt: skip
        _load(tmp_path, "TrecQAReranking")


def test_text_with_visible_characters_around_invisible_ones_loads(tmp_path: Path) -> None:
    """Only a text of nothing but invisible characters is empty: a zero-width joiner inside a word is text."""
    folder = _sample_copy(tmp_path, "en", "STS16")
    _edit_rows(folder / "test.jsonl", lambda rows: [{**rows[0], "sentence1": "\ufeffco\u200dop\x00"}, *rows[1:]])
    assert _load(tmp_path, "STS16").dataset["test"]["sentence1"][0] == "\ufeffco\u200dop\x00"


def test_row_file_linking_outside_its_task_folder_names_the_task_folder(tmp_path: Path) -> None:
    """Before: 'outside the data root <the task folder>', sending the reader to the wrong folder (the link may well
    stay inside the data root, as here: another task's file)."""
    folder = _retrieval(tmp_path, ["q1\td1\t1"])
    other = _task_dir(tmp_path, "Other", "Retrieval")
    (folder / "corpus.jsonl").rename(other / "corpus.jsonl")
    (folder / "corpus.jsonl").symlink_to(other / "corpus.jsonl")
    with pytest.raises(DataError) as caught:
        _load(tmp_path, "MyRetrieval")
    assert str(caught.value) == (f"{folder / 'corpus.jsonl'}: resolves to {(other / 'corpus.jsonl').resolve()}, "
                                 f"outside its task folder {folder.resolve()}; the folder is skipped")  # fmt: skip


def test_a_folder_linked_outside_a_task_folder_breaks_the_task(tmp_path: Path) -> None:
    """A walk (stop 69): the task's data identity hashes every file of its folder, links followed, so a folder
    `notes -> /usr` made every run read all of /usr, without a word; the files the task reads were refused, not
    this one. Now any link leading outside the folder breaks the task when the data root is scanned, naming it; a
    link that stays inside is fine."""
    folder = _retrieval(tmp_path, ["q1\td1\t1"])
    (tmp_path / "elsewhere").mkdir()
    (folder / "docs").mkdir()
    (folder / "docs" / "notes").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    _, broken = scan_tasks(tmp_path)
    assert isinstance(broken["MyRetrieval"], OutsideRoot)
    elsewhere = (tmp_path / "elsewhere").resolve()
    assert str(broken["MyRetrieval"]) == (f"{folder / 'docs' / 'notes'}: resolves to {elsewhere}, outside its task "
                                          f"folder {folder.resolve()}; the folder is skipped")  # fmt: skip
    (folder / "docs" / "notes").unlink()
    (folder / "docs" / "same").symlink_to(folder / "corpus.jsonl")  # inside: the task is whole
    tasks, broken = scan_tasks(tmp_path)
    assert "MyRetrieval" in tasks and not broken
    # a link loop breaks its task alone, said (a review, stop 69: resolve's RuntimeError stopped every command)
    (folder / "docs" / "a").symlink_to(folder / "docs" / "b")
    (folder / "docs" / "b").symlink_to(folder / "docs" / "a")
    tasks, broken = scan_tasks(tmp_path)
    assert "MyRetrieval" not in tasks and "a link that resolves to nothing" in str(broken["MyRetrieval"])
    assert str(broken["MyRetrieval"]).startswith(f"{folder / 'docs' / 'a'}: ")


@pytest.mark.parametrize("side", ["sentence1", "sentence2"])
def test_bitext_text_given_twice_is_refused(tmp_path: Path, side: str) -> None:
    """Before: a repeated sentence2 (or sentence1) loaded silently; row i's gold is row i's sentence2, so mining gave
    both rows one match and one of them counted wrong whatever the model (accuracy capped by the data)."""
    folder = _sample_copy(tmp_path, "multi", "TatoebaDeuEng")
    _edit_rows(folder / "test.jsonl", lambda rows: [*rows[:4], {**rows[4], side: rows[1][side]}, *rows[5:]])
    with pytest.raises(DataError, match=rf"TatoebaDeuEng/test\.jsonl:5: duplicate {side} '.*' \(first at line 2\): "
                                        r"mining finds the same match for both rows"):  # fmt: skip
        _load(tmp_path, "TatoebaDeuEng")


def test_reranking_query_without_negatives_is_left_out_as_mteb_does(tmp_path: Path, capsys) -> None:
    """Before stop 46 a query with only positives scored the best whatever the model, without a word; until stop 48
    it was still scored, with a warning. mteb's own loading of this layout (AbsTaskReranking's
    transform_old_dataset_format) leaves such a query out: so does the mirror now (audit, stop 48), saying so;
    the other queries keep their ids (their row positions). A file of such rows alone is refused."""
    folder = _sample_copy(tmp_path, "en", "TrecQAReranking")
    _edit_rows(folder / "test.jsonl", lambda rows: [rows[0], {**rows[1], "negative": []}, *rows[2:]])
    query = json.loads((folder / "test.jsonl").read_text(encoding="utf-8").splitlines()[1])["query"]
    split = _load(tmp_path, "TrecQAReranking").dataset["default"]["test"]
    assert "q1" not in split["top_ranked"] and "q1" not in split["relevant_docs"]
    assert list(split["top_ranked"])[:2] == ["q0", "q2"] and len(split["queries"]) == 39
    assert f"TrecQAReranking/test.jsonl: 1 of 40 queries have no negative and are left out, as mteb leaves them " \
           f"out (first: {query[:60]!r})" in capsys.readouterr().err  # fmt: skip
    _edit_rows(folder / "test.jsonl", lambda rows: [{**row, "negative": []} for row in rows])
    with pytest.raises(DataError, match=r"TrecQAReranking/test\.jsonl: no row has a negative: mteb leaves out a "
                                        r"query without negatives"):  # fmt: skip
        _load(tmp_path, "TrecQAReranking")
