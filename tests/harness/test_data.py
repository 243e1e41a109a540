"""Malformed data fails with file:line; task folders cannot escape the data root."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from harness.data import discover_tasks, read_rows, scan_tasks
from harness.errors import DataError, UsageError
from harness.tasks import build_mirror

# A valid main score per type (task.json's main_score is checked against the type's metrics).
MAIN_SCORE = {"STS": "cosine_spearman", "PairClassification": "max_ap", "Classification": "accuracy",
              "Clustering": "v_measure", "Reranking": "map", "Retrieval": "ndcg_at_10",
              "BitextMining": "f1"}  # fmt: skip


def _task_dir(root: Path, name: str, kind: str, lang: str = "en", **extra) -> Path:
    folder = root / lang / name
    folder.mkdir(parents=True)
    meta = {"name": name, "type": kind, "main_score": MAIN_SCORE.get(kind, "accuracy"), "languages": [lang], **extra}
    (folder / "task.json").write_text(json.dumps(meta), encoding="utf-8")
    return folder


def _load(root: Path, name: str):
    return build_mirror(discover_tasks(root)[name])


def test_bad_json_line_names_file_and_line(tmp_path: Path) -> None:
    folder = _task_dir(tmp_path, "MySTS", "STS")
    good = json.dumps({"sentence1": "a", "sentence2": "b", "score": 1.0})
    (folder / "test.jsonl").write_text(f"{good}\n{good}\n{{not json\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"MySTS/test\.jsonl:3: invalid JSON: Expecting property name enclosed in "
                                        r"double quotes at column 2$"):
        _load(tmp_path, "MySTS")
    # the decoder's message alone was cut mid-phrase: "Unterminated string starting at" (a user's walk, stop 64)
    (folder / "test.jsonl").write_text(f'{good}\n{{"sentence1": "a", "sentence2": "b\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"test\.jsonl:2: invalid JSON: Unterminated string starting at column 33$"):
        _load(tmp_path, "MySTS")


def test_missing_column_and_empty_text(tmp_path: Path) -> None:
    folder = _task_dir(tmp_path, "MySTS", "STS")
    (folder / "test.jsonl").write_text(json.dumps({"sentence1": "a", "score": 1}) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"test\.jsonl:1: missing field 'sentence2'"):
        _load(tmp_path, "MySTS")
    (folder / "test.jsonl").write_text(
        json.dumps({"sentence1": "a", "sentence2": "b", "score": 1}) + "\n"
        + json.dumps({"sentence1": "  ", "sentence2": "b", "score": 1}) + "\n",
        encoding="utf-8",
    )
    with pytest.raises(DataError, match=r"test\.jsonl:2: field 'sentence1' is empty"):
        _load(tmp_path, "MySTS")


def test_non_utf8_names_line(tmp_path: Path) -> None:
    folder = _task_dir(tmp_path, "MyPairs", "PairClassification")
    good = json.dumps({"sentence1": "a", "sentence2": "b", "label": 1}).encode()
    (folder / "test.jsonl").write_bytes(good + b"\n" + b'{"sentence1": "\xff\xfe"}\n')
    with pytest.raises(DataError, match=r"test\.jsonl:2: not valid UTF-8"):
        _load(tmp_path, "MyPairs")


def test_qrels_pointing_to_unknown_ids(tmp_path: Path) -> None:
    folder = _task_dir(tmp_path, "MyRetrieval", "Retrieval")
    (folder / "corpus.jsonl").write_text(json.dumps({"_id": "d1", "title": "", "text": "doc"}) + "\n", "utf-8")
    (folder / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "query"}) + "\n", "utf-8")
    (folder / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq1\td9\t1\n", "utf-8")
    with pytest.raises(DataError, match=r"qrels\.tsv:3: corpus-id 'd9' is not in corpus\.jsonl"):
        _load(tmp_path, "MyRetrieval")


def _retrieval(root: Path, qrels: list[str]) -> Path:
    """A retrieval task with queries q1, q2 and documents d1, d2, judged by the given qrels lines."""
    folder = _task_dir(root, "MyRetrieval", "Retrieval")
    (folder / "corpus.jsonl").write_text("".join(json.dumps({"_id": f"d{i}", "text": f"doc {i}"}) + "\n"
                                                 for i in (1, 2)), "utf-8")  # fmt: skip
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": f"q{i}", "text": f"query {i}"}) + "\n"
                                                  for i in (1, 2)), "utf-8")  # fmt: skip
    (folder / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{x}\n" for x in qrels), "utf-8")
    return folder


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("q2\td2\t0.5", r"qrels\.tsv:3: score '0\.5' must be a whole number"),
        ("q2\td2\tinf", r"qrels\.tsv:3: score 'inf' must be a whole number"),
        ("q2\td2\tnan", r"qrels\.tsv:3: score 'nan' must be a whole number"),
        ("q2\td2\t1e400", r"qrels\.tsv:3: score '1e400' must be a whole number"),
        ("q2\td2\ttrue", r"qrels\.tsv:3: score 'true' is not a number"),
        ("q1\td1\t0", r"qrels\.tsv:3: query-id 'q1' and corpus-id 'd1' are judged again \(first at line 2\)"),
    ],
)
def test_qrels_scores_are_whole_numbers_judged_once(tmp_path: Path, line: str, message: str) -> None:
    """Before: 0.5 became int(0.5) = 0 and a repeated pair replaced the earlier judgement (both scored 0.00 as ok),
    and inf raised a bare OverflowError."""
    _retrieval(tmp_path, ["q1\td1\t1", line])
    with pytest.raises(DataError, match=message):
        _load(tmp_path, "MyRetrieval")


def test_qrels_whole_number_grades_load(tmp_path: Path) -> None:
    _retrieval(tmp_path, ["q1\td1\t2", "q1\td2\t0", "q2\td2\t1.0"])
    assert _load(tmp_path, "MyRetrieval").dataset["default"]["test"]["relevant_docs"] == {
        "q1": {"d1": 2, "d2": 0}, "q2": {"d2": 1}}  # fmt: skip


def _sample_copy(root: Path, lang: str, name: str) -> Path:
    """A copy of a task of the embedded sample (real rows) under root; its folder."""
    from harness.data import default_data_root

    shutil.copytree(default_data_root() / lang / name, root / lang / name)
    return root / lang / name


def _edit_rows(path: Path, edit) -> None:
    """Rewrite a JSON Lines file as edit(its rows)."""
    rows = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]
    path.write_text("".join(json.dumps(r) + "\n" for r in edit(rows)), encoding="utf-8")


def _real_copy(root: Path, lang: str, name: str, line: int, edit) -> None:
    """A copy of an embedded sample task whose test.jsonl line `line` (1-based) is edit(parsed row) as raw JSON."""
    path = _sample_copy(root, lang, name) / "test.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[line - 1] = edit(json.loads(lines[line - 1]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.mark.parametrize(
    ("name", "edit", "message"),
    [
        ("STS16", lambda r: json.dumps({**r, "sentence1": r["sentence1"] + "\ud800"}),
         r"STS16/test\.jsonl:2: field 'sentence1' holds an unpaired surrogate escape \\ud800"),
        ("TrecQAReranking", lambda r: json.dumps({**r, "negative": [*r["negative"], "x\udc00"]}),
         r"TrecQAReranking/test\.jsonl:2: field 'negative' holds an unpaired surrogate escape \\udc00"),
        ("STS16", lambda r: json.dumps(r)[:-1] + ', "score": 0.0}',
         r"STS16/test\.jsonl:2: key 'score' is given twice in one object"),
    ],
)  # fmt: skip
def test_surrogate_escape_or_repeated_key_names_file_line_and_field(tmp_path: Path, name: str, edit,
                                                                     message: str) -> None:  # fmt: skip
    """Before: a lone surrogate passed validation and failed inside pyarrow (UnicodeEncodeError, no file:line);
    a repeated key silently kept the last value (STS16's score moved)."""
    _real_copy(tmp_path, "en", name, 2, edit)
    with pytest.raises(DataError, match=message):
        _load(tmp_path, name)


def test_repeated_key_in_task_json(tmp_path: Path) -> None:
    """Before: the last `type` won silently."""
    folder = _task_dir(tmp_path, "MySTS", "STS")
    (folder / "task.json").write_text('{"name": "MySTS", "type": "Clustering", "type": "STS", '
                                      '"main_score": "cosine_spearman"}', encoding="utf-8")  # fmt: skip
    with pytest.raises(DataError, match=r"MySTS/task\.json:1: key 'type' is given twice"):
        discover_tasks(tmp_path)


def test_task_json_problems(tmp_path: Path) -> None:
    folder = _task_dir(tmp_path, "Oops", "NotAType")
    with pytest.raises(DataError, match=r"Oops/task\.json:1: type 'NotAType'"):
        discover_tasks(tmp_path)
    (folder / "task.json").write_text('{"name": "Other", "type": "STS", "main_score": "cosine_spearman"}',
                                      encoding="utf-8")  # fmt: skip
    with pytest.raises(DataError, match="differs from its folder name"):
        discover_tasks(tmp_path)


def test_symlinked_task_cannot_escape_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    _task_dir(outside, "Evil", "STS")
    root = tmp_path / "root"
    (root / "en").mkdir(parents=True)
    (root / "en" / "Evil").symlink_to(outside / "en" / "Evil")
    with pytest.raises(UsageError, match="outside the data root"):
        discover_tasks(root)


def test_symlinked_task_is_listed_broken_and_others_still_load(tmp_path: Path, capsys) -> None:
    """Before: scan_tasks raised UsageError for the one escaping folder, stopping every run and `harness list
    tasks`. Now that folder is broken (with the reason) and the others load."""
    from harness.cli import main
    from harness.data import scan_tasks

    outside, root = tmp_path / "outside", tmp_path / "root"
    _task_dir(outside, "Evil", "STS")
    _task_dir(root, "Good", "STS")
    (root / "en" / "Evil").symlink_to(outside / "en" / "Evil")
    tasks, broken = scan_tasks(root)
    assert set(tasks) == {"Good"}
    assert f"resolves to {(outside / 'en' / 'Evil' / 'task.json').resolve()}, outside the data root" in str(
        broken["Evil"])  # fmt: skip
    assert main(["list", "tasks", "--data-dir", str(root)]) == 0
    assert "BROKEN:" in capsys.readouterr().out


@pytest.mark.parametrize("first_broken", [False, True])
def test_a_task_name_in_two_language_folders_is_refused_not_one_picked(tmp_path: Path, capsys,
                                                                        first_broken: bool) -> None:  # fmt: skip
    """Before stop 59 (a user's walk) the first folder in sorted order was run (exit 0), the other named only by
    `harness list tasks`: a user who edited zh/MySTS got en/MySTS's score. Now neither runs, and the run says why."""
    from harness.cli import main

    sts = "\n".join(json.dumps({"sentence1": f"a {i}", "sentence2": f"b {i}", "score": float(i)}) for i in range(4))
    for lang in ("en", "zh"):
        (_task_dir(tmp_path, "MySTS", "STS", lang) / "test.jsonl").write_text(sts, encoding="utf-8")
    if first_broken:  # then the other, valid one was run
        (tmp_path / "en" / "MySTS" / "task.json").write_text("{", encoding="utf-8")
    tasks, broken = scan_tasks(tmp_path)
    assert "MySTS" not in tasks
    assert str(broken["MySTS"]) == (f"{tmp_path / 'zh' / 'MySTS' / 'task.json'}: task 'MySTS' is defined in 2 folders "
                                    f"({tmp_path / 'en' / 'MySTS'}, {tmp_path / 'zh' / 'MySTS'}): a name is one task "
                                    "across the root's language folders; rename or remove all but one")  # fmt: skip
    code = main(["run", "--data-dir", str(tmp_path), "--tasks", "MySTS", "--model", "minilm", "--no-progress",
                 "--out", str(tmp_path / "runs"), "--no-cache"])  # fmt: skip
    assert code == 1 and "task 'MySTS' is defined in 2 folders" in capsys.readouterr().out


@pytest.mark.parametrize(("filename", "escaped"), [("task.json", "the data root"), ("qrels.tsv", "its task folder")])
def test_symlinked_spec_or_qrels_cannot_escape_root(tmp_path: Path, filename: str, escaped: str) -> None:
    """Inside a real task folder, its task.json or qrels.tsv as a link to a file outside the data root."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    folder = _retrieval(root, ["q1\td1\t1"])
    outside.mkdir()
    (folder / filename).rename(outside / filename)
    (folder / filename).symlink_to(outside / filename)
    with pytest.raises(UsageError, match=f"outside {escaped}"):
        _load(root, "MyRetrieval")


def test_real_mirror_rows_validate(shared_data: Path, tmp_path: Path) -> None:
    """Every evaluation file of the shared data passes validation (the checks are not too strict)."""
    for task in discover_tasks(shared_data).values():
        for filename in ("test.jsonl", "train.jsonl", "queries.jsonl", "corpus.jsonl"):
            if (task.path / filename).is_file():
                assert read_rows(task, filename), f"{task.name}/{filename} is empty"
    # and a copy with one broken row fails on exactly that row
    copy = tmp_path / "en" / "STS16"
    shutil.copytree(shared_data / "en" / "STS16", copy)
    lines = (copy / "test.jsonl").read_text(encoding="utf-8").splitlines()
    lines[41] = lines[41][:-5]
    (copy / "test.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"STS16/test\.jsonl:42: invalid JSON"):
        _load(tmp_path, "STS16")


def test_mirror_records_the_split_its_rows_are(shared_data: Path) -> None:
    """A mirror without an mteb twin (SQuADRetrieval holds SQuAD's dev questions) is scored and recorded under
    task.json's eval_split, not "test"; one with a twin keeps the twin's split name for the same rule."""
    tasks = discover_tasks(shared_data)
    squad = build_mirror(tasks["SQuADRetrieval"])
    assert tasks["SQuADRetrieval"].meta["eval_split"] == "dev"
    assert squad.eval_splits == ["dev"] and list(squad.dataset["default"]) == ["dev"]
    assert build_mirror(tasks["STS16"]).eval_splits == ["test"]


def test_eval_split_must_name_a_split_of_the_twin(tmp_path: Path, capsys) -> None:
    """Before: an eval_split naming no split of the mteb twin silently became its first split (ATEC's test rows
    recorded as validation). `dev` still finds `validation`; a one-split twin takes its split, noted as a warning
    (the run's warnings.log)."""
    for name in ("ATEC", "Ocnli", "TNews"):
        _sample_copy(tmp_path, "zh", name)
    assert _load(tmp_path, "Ocnli").eval_splits == ["validation"]  # task.json: dev
    assert _load(tmp_path, "ATEC").eval_splits == ["test"]
    assert capsys.readouterr().err == ""
    with pytest.warns(UserWarning, match="eval_split 'test' is no split of mteb's TNews; its rows are scored and "
                                         "recorded as its only split 'validation'"):  # fmt: skip
        assert _load(tmp_path, "TNews").eval_splits == ["validation"]  # FewCLUE's test: mteb's one split
    spec = tmp_path / "zh" / "ATEC" / "task.json"
    spec.write_text(json.dumps({**json.loads(spec.read_text(encoding="utf-8")), "eval_split": "tset"}), "utf-8")
    with pytest.raises(DataError, match=r"ATEC/task\.json:1: eval_split 'tset' is no split of mteb's ATEC: it has "
                                        r"validation, test"):  # fmt: skip
        _load(tmp_path, "ATEC")


def test_a_mirror_of_a_v2_clustering_task_holds_a_row_per_document(tmp_path: Path) -> None:
    """mteb's v2 clustering tasks (TwentyNewsgroupsClustering.v2, most of MTEB(eng, v2)'s) embed a sample of single
    documents and cluster bootstrapped draws of it; a mirror got the legacy layout (one row holding every document)
    and failed with `ValueError: max() arg is an empty sequence` from inside mteb (audit stop 35), then was refused
    (stop 35). Now it gets mteb's layout: a row per document, labels as strings."""
    rows = "".join(json.dumps({"text": f"text {i}", "label": i % 2}) + "\n" for i in range(500))
    for name in ("TwentyNewsgroupsClustering.v2", "AGNewsClusteringS2S"):
        (_task_dir(tmp_path, name, "Clustering", mteb_equivalent=name if name != "AGNewsClusteringS2S" else None)
         / "test.jsonl").write_text(rows, "utf-8")  # fmt: skip
    task = _load(tmp_path, "TwentyNewsgroupsClustering.v2")
    assert task.metadata.name == "TwentyNewsgroupsClustering.v2" and task.eval_splits == ["test"]
    assert task.dataset["test"]["sentences"] == [f"text {i}" for i in range(500)]
    assert task.dataset["test"]["labels"] == [str(i % 2) for i in range(500)]
    legacy = _load(tmp_path, "AGNewsClusteringS2S")  # a task of its own: the legacy evaluator, one set
    assert legacy.dataset["test"]["sentences"] == [[f"text {i}" for i in range(500)]]
    # mteb embeds 4% of the rows: 499 rows give 19 documents (24 gave none: mteb's own "empty sequence" error)
    spec = tmp_path / "en" / "TwentyNewsgroupsClustering.v2" / "test.jsonl"
    spec.write_text("".join(rows.splitlines(keepends=True)[:499]), "utf-8")
    with pytest.raises(DataError, match=r"test\.jsonl: mteb's TwentyNewsgroupsClustering\.v2 embeds 19 of these 499 "
                                        r"rows \(its own sample of the documents\), too few to cluster: give at least "
                                        r"500 rows"):  # fmt: skip
        _load(tmp_path, "TwentyNewsgroupsClustering.v2")


def test_a_mirror_of_a_hierarchical_clustering_task_holds_label_levels(tmp_path: Path) -> None:
    """mteb's hierarchical clustering tasks (ArXivHierarchicalClusteringS2S: arXiv's "cs.AI" as ["cs", "AI"]) score
    each level and average the v-measures. Before stop 37 their mirrors were refused (a row had one label); now a
    row's label may be its levels, coarsest first, which reach mteb's evaluator as lists of strings. Levels where
    the twin scores one label (or a task of its own, scored by the legacy one-set evaluator) would record another
    task's score under the name, as would one label where the twin averages levels: both refused, naming the
    file (and the line of the first list)."""
    name = "ArXivHierarchicalClusteringS2S"
    rows = [{"text": f"text {i}", "label": [f"top{i % 2}", f"sub{i % 4}"] if i % 5 else f"top{i % 2}"}
            for i in range(500)]  # fmt: skip
    lines = "".join(json.dumps(r) + "\n" for r in rows)
    for folder in ("ArXivHierarchicalClusteringS2S", "TwentyNewsgroupsClustering.v2", "MyClusters"):
        equivalent = folder if folder != "MyClusters" else None
        (_task_dir(tmp_path, folder, "Clustering", mteb_equivalent=equivalent) / "test.jsonl").write_text(
            "\n" + lines, "utf-8")  # fmt: skip
    task = _load(tmp_path, name)
    assert task.metadata.name == name and task.dataset["test"]["sentences"] == [f"text {i}" for i in range(500)]
    assert task.dataset["test"]["labels"][:2] == [["top0"], ["top1", "sub1"]]  # one level where a row gives one
    for other, whose in (("TwentyNewsgroupsClustering.v2", "mteb's TwentyNewsgroupsClustering.v2"),
                         ("MyClusters", "a clustering task of its own")):  # fmt: skip
        with pytest.raises(DataError, match=rf"{re.escape(other)}/test\.jsonl:3: 'label' is a list of levels, but "
                                            rf"{re.escape(whose)} scores one label per document"):  # fmt: skip
            _load(tmp_path, other)
    spec = tmp_path / "en" / name / "test.jsonl"
    spec.write_text("".join(json.dumps({**r, "label": str(i % 3)}) + "\n" for i, r in enumerate(rows)), "utf-8")
    with pytest.raises(DataError, match=rf"{name}/test\.jsonl: mteb's {name} averages the v-measure over label "
                                        r"levels, but every row has one label"):  # fmt: skip
        _load(tmp_path, name)
    bad_levels = (([], r":1: field 'label' is an empty list"),
                  (["cs", 1], r":1: field 'label' is int 1 but labels are str"),
                  (["cs", " "], r":1: field 'label' ' ' holds no visible character"))  # fmt: skip
    for bad, message in bad_levels:
        _edit_rows(spec, lambda rs, b=bad: [{**rs[0], "label": b}, *rs[1:]])
        with pytest.raises(DataError, match=message):
            _load(tmp_path, name)


def test_row_count_is_the_rows_read_rows_reads(tmp_path: Path) -> None:
    """official_coverage counts a file's rows where task.json gives no count: the same rows read_rows reads
    (a BOM, CRLF line ends, blank and whitespace-only lines, no final newline), nothing for a missing file or one
    linked from outside the task folder (which read_rows refuses)."""
    from harness.data import row_count

    folder = _task_dir(tmp_path, "Rows", "STS")
    rows = [{"sentence1": f"a {i}", "sentence2": f"b {i}", "score": i % 5} for i in range(4)]
    text = "\ufeff" + "\r\n".join(json.dumps(r) for r in rows[:2]) + "\r\n\r\n  \t\n" + "\n".join(
        json.dumps(r) for r in rows[2:])  # fmt: skip
    (folder / "test.jsonl").write_text(text, encoding="utf-8")
    task = discover_tasks(tmp_path)["Rows"]
    assert row_count(task, "test.jsonl") == len(read_rows(task, "test.jsonl")) == 4
    assert row_count(task, "train.jsonl") is None
    outside = tmp_path / "outside.jsonl"
    outside.write_text(json.dumps(rows[0]) + "\n", encoding="utf-8")
    (folder / "test.jsonl").unlink()
    (folder / "test.jsonl").symlink_to(outside)
    assert row_count(task, "test.jsonl") is None


def _scifact_judging(root: Path, keep, *extra: str) -> tuple[Path, list[str]]:
    """A copy of the embedded SciFact whose qrels.tsv keeps the judgement lines keep(query-id, score) accepts, plus
    the extra lines (and task.json's counts says so)."""
    folder = _sample_copy(root, "en", "SciFact")
    header, *lines = (folder / "qrels.tsv").read_text(encoding="utf-8").splitlines()
    lines = [x for x in lines if keep(*x.split("\t")[::2])] + list(extra)
    (folder / "qrels.tsv").write_text("\n".join([header, *lines]) + "\n", encoding="utf-8")
    meta = json.loads((folder / "task.json").read_text(encoding="utf-8"))
    (folder / "task.json").write_text(json.dumps({**meta, "counts": {**meta["counts"], "qrels.tsv": len(lines)}}))
    queries = [json.loads(x)["_id"] for x in (folder / "queries.jsonl").read_text(encoding="utf-8").splitlines()]
    return folder, queries


def test_unjudged_queries_are_refused_or_dropped_on_request(tmp_path: Path, capsys) -> None:
    """Before: queries without a qrels line were left out of the score without a word (10 of 12 dropped, ndcg 100).
    Now an error naming the first one's line, unless task.json opts in; then the count is said on stderr."""
    folder, queries = _scifact_judging(tmp_path, lambda qid, score: qid not in ("3", "48"))
    with pytest.raises(DataError, match=r"SciFact/queries\.jsonl:2: query '3' has no judgement in qrels\.tsv \(2 of "
                                        r"100 queries have no judgement"):  # fmt: skip
        _load(tmp_path, "SciFact")
    spec = folder / "task.json"
    spec.write_text(json.dumps({**json.loads(spec.read_text(encoding="utf-8")), "unjudged_queries": "drop"}), "utf-8")
    split = _load(tmp_path, "SciFact").dataset["default"]["test"]
    assert len(split["queries"]) == 98 and {"3", "48"}.isdisjoint(split["queries"]["id"])
    assert "SciFact/queries.jsonl: 2 of 100 queries have no judgement in qrels.tsv; left out of the score" in \
           capsys.readouterr().err  # fmt: skip


def test_query_judged_only_zero_is_scored(tmp_path: Path) -> None:
    """As mteb (AbsTaskRetrieval drops only queries without any qrels entry): a query judged only 0 is a judged
    query; it stays in the score and counts 0."""
    _scifact_judging(tmp_path, lambda qid, score: qid != "3", "3\t31715818\t0")
    split = _load(tmp_path, "SciFact").dataset["default"]["test"]
    assert "3" in split["queries"]["id"] and split["relevant_docs"]["3"] == {"31715818": 0}


def test_null_field_or_key_is_said_to_be_null(tmp_path: Path) -> None:
    """Before: a field present but null was reported as missing, sending the reader to look for an absent key."""
    folder = _task_dir(tmp_path, "MySTS", "STS")
    (folder / "test.jsonl").write_text(json.dumps({"sentence1": "a", "sentence2": None, "score": 1}) + "\n",
                                       encoding="utf-8")  # fmt: skip
    with pytest.raises(DataError, match=r"test\.jsonl:1: field 'sentence2' is null$"):
        _load(tmp_path, "MySTS")
    (folder / "task.json").write_text('{"name": "MySTS", "type": "STS", "main_score": null}', encoding="utf-8")
    with pytest.raises(DataError, match=r"task\.json:1: required key 'main_score' is null$"):
        discover_tasks(tmp_path)
    (folder / "task.json").write_text('{"name": "MySTS", "type": "STS"}', encoding="utf-8")
    with pytest.raises(DataError, match=r"task\.json:1: missing required key 'main_score'$"):
        discover_tasks(tmp_path)


def test_folder_without_task_json_is_named_once(tmp_path: Path, capsys) -> None:
    """Before: a task folder whose task.json was misnamed or not copied vanished from runs and `harness list tasks`
    without a word. Hidden folders, `_`-folders and train/ are no tasks: silent."""
    from harness.data import scan_tasks

    _task_dir(tmp_path, "Good", "STS")
    (tmp_path / "en" / "Forgotten").mkdir()
    (tmp_path / "en" / "Forgotten" / "task.JSON").write_text("{}", encoding="utf-8")
    for quiet in ("en/.hidden", "en/__pycache__", "zh/_parked", "train/pairs"):
        (tmp_path / quiet).mkdir(parents=True)
    assert set(scan_tasks(tmp_path)[0]) == {"Good"}
    err = capsys.readouterr().err
    assert err == (f"harness: warning: 1 folder(s) under the data root {tmp_path} hold no task.json and are "
                   "skipped: en/Forgotten\n")  # fmt: skip
    scan_tasks(tmp_path)
    assert capsys.readouterr().err == ""  # once


@pytest.mark.parametrize("command", ["list", "run"])
def test_a_task_outside_its_languages_folder_is_named_once(tmp_path: Path, capsys, command: str) -> None:
    """Walk 68: a Chinese task ("languages": ["zh"]) in en/ ran under local-en without a word. A warning, not an
    error: the folder decides the suite (docs/data-layout.md); en/ with "eng" and multi/ say nothing."""
    from harness.cli import main

    rows = [{"sentence1": f"今天天气很好 {i}", "sentence2": f"今天天气不错 {i}", "score": float(i)} for i in range(4)]
    folder = _task_dir(tmp_path / "data", "MyZhSTS", "STS", "en", languages=["zh"])
    (folder / "test.jsonl").write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    for lang, codes in (("en", ["eng"]), ("multi", ["de", "en"])):
        quiet = _task_dir(tmp_path / "data", f"Quiet{lang}", "STS", lang, languages=codes)
        (quiet / "test.jsonl").write_text((folder / "test.jsonl").read_text(encoding="utf-8"), encoding="utf-8")
    args = (["list", "tasks"] if command == "list" else
            ["run", "--tasks", "MyZhSTS", "--model", "minilm", "--no-progress", "--out", str(tmp_path / "runs")])
    assert main([*args, "--data-dir", str(tmp_path / "data")]) == 0
    if command == "list":  # the listing reads the root again for the suite a row is in: still one warning
        assert main(["list", "tasks", "--suite", "local-en", "--data-dir", str(tmp_path / "data")]) == 0
    said = (f"harness: warning: {folder / 'task.json'}: languages zh do not include 'en', the language folder it "
            "sits in, so it runs in suite local-en (the folder decides, docs/data-layout.md): move it to "
            f"{tmp_path / 'data' / 'zh' / 'MyZhSTS'}/ or correct languages\n")  # fmt: skip
    err = capsys.readouterr().err
    assert err.count("harness: warning:") == 1 and said in err


def test_a_language_folder_given_as_the_root_is_named(shared_data: Path, capsys) -> None:
    """Before stop 49 (audit): `--data-dir ../shared/data/en` found no task and said only "no local mirror"."""
    from harness.data import scan_tasks

    assert scan_tasks(shared_data / "en") == ({}, {})
    err = capsys.readouterr().err
    assert f"data root {shared_data / 'en'} holds task folders itself (AGNewsClusteringS2S, " in err
    assert f"give its parent, {shared_data}" in err


def test_a_root_of_task_folders_that_is_no_language_folder_is_told_to_move_them(tmp_path: Path, capsys) -> None:
    """A user walk (stop 67): flat/MyEnSTS/ given as --data-dir flat was told "give its parent, .", which made every
    folder beside flat/ a language; its parent is no data root, so the task is to move into a language folder.
    A root beside language folders of tasks is one of them (`data/xx`): its parent is named still."""
    from harness.data import scan_tasks

    _task_dir(tmp_path, "MyEnSTS", "STS", lang="flat")
    (tmp_path / "cases").mkdir()
    assert scan_tasks(tmp_path / "flat") == ({}, {})
    place = tmp_path / "flat" / "en" / "MyEnSTS"
    assert capsys.readouterr().err == (f"harness: warning: data root {tmp_path / 'flat'} holds task folders itself "
                                       "(MyEnSTS), where the layout is <root>/<language>/<Task>/ "
                                       f"(docs/data-layout.md): move each into a language folder, e.g. {place}/\n")
    _task_dir(tmp_path / "data", "MySTS", "STS", lang="xx")
    _task_dir(tmp_path / "data", "MyZhSTS", "STS", lang="zh")
    assert scan_tasks(tmp_path / "data" / "xx") == ({}, {})
    assert f"(docs/data-layout.md): give its parent, {tmp_path / 'data'}\n" in capsys.readouterr().err


def test_a_task_folder_given_as_the_root_is_named(shared_data: Path, capsys) -> None:
    """A user walk: `harness run --suite cmteb --data-dir ../shared/data/zh/PAWSX` said "31 missing" and nothing else
    (before stop 63); a language folder given as the root had its hint already."""
    from harness.data import scan_tasks

    assert scan_tasks(shared_data / "zh" / "PAWSX") == ({}, {})
    err = capsys.readouterr().err
    assert f"data root {shared_data / 'zh' / 'PAWSX'} is a task folder itself (task.json in it)" in err
    assert f"give {shared_data}, and --tasks PAWSX to run this task alone" in err
    assert err.count("harness: warning:") == 1


def test_the_train_folder_given_as_the_root_is_named(shared_data: Path, capsys) -> None:
    """Before stop 61 (a user's walk): `harness list tasks --data-dir ../shared/data/train` said "0 local tasks"
    and nothing else."""
    from harness.data import scan_tasks

    assert scan_tasks(shared_data / "train") == ({}, {})
    err = capsys.readouterr().err
    assert (f"data root {shared_data / 'train'} holds training sets of a data root's train/ folder, not tasks "
            "(afqmc_pairs_zh, atec_rest_pairs_zh, bq_dev_pairs_zh, ...)") in err  # fmt: skip
    assert f"give its parent, {shared_data}" in err


def test_the_folder_above_a_data_root_names_the_root(tmp_path: Path, capsys) -> None:
    """Before stop 60 (a user's walk): `--data-dir ../shared` named the skipped folders data/en, data/zh, … and
    not the way out, where one level too deep said "give its parent"."""
    from harness.data import default_data_root, scan_tasks

    shutil.copytree(default_data_root() / "en" / "STS16", tmp_path / "data" / "en" / "STS16")
    (tmp_path / "docs").mkdir()
    assert scan_tasks(tmp_path) == ({}, {})
    err = capsys.readouterr().err
    assert (f"harness: warning: data root {tmp_path} holds no task; {tmp_path / 'data'} holds <language>/<Task>/ "
            "folders (docs/data-layout.md): give it as --data-dir\n") in err


def test_documented_data_roots_scan_without_warnings(shared_data: Path, capsys) -> None:
    """../shared/data (train/ beside the task folders) and the embedded sample hold no folder to warn about."""
    from harness.data import default_data_root, scan_tasks

    assert len(scan_tasks(shared_data)[0]) == 45 and len(scan_tasks(default_data_root())[0]) == 34
    assert capsys.readouterr().err == ""


def _copy_task(shared_data: Path, root: Path, lang: str, name: str) -> Path:
    copy = root / lang / name
    shutil.copytree(shared_data / lang / name, copy)
    for path in copy.iterdir():
        path.chmod(0o644)  # ../shared/data is read-only; the copy is edited
    return copy


def test_files_saved_with_a_bom_load_like_the_original(shared_data: Path, tmp_path: Path) -> None:
    """Before: a UTF-8 byte-order mark (Notepad's "UTF-8") made task.json "invalid JSON: Unexpected UTF-8 BOM (decode
    using utf-8-sig)", every row file fail on line 1 and qrels.tsv's header "must be 'query-id...'"."""
    copy = _copy_task(shared_data, tmp_path, "multi", "XQuADRetrievalEnEn")
    for name in ("task.json", "corpus.jsonl", "queries.jsonl", "qrels.tsv"):
        (copy / name).write_bytes(b"\xef\xbb\xbf" + (copy / name).read_bytes())
    task = build_mirror(discover_tasks(tmp_path)["XQuADRetrievalEnEn"])
    original = build_mirror(discover_tasks(shared_data)["XQuADRetrievalEnEn"])
    split = original.eval_splits[0]
    loaded, expected = task.dataset["default"][split], original.dataset["default"][split]
    assert loaded["relevant_docs"] == expected["relevant_docs"]
    assert loaded["corpus"]["text"] == expected["corpus"]["text"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b"[" * 100_000 + b"]" * 100_000, r"invalid JSON: maximum recursion depth exceeded"),
        (b'{"sentence1": "a", "sentence2": "b", "score": ' + b"9" * 5000 + b"}", r"invalid JSON: Exceeds the limit"),
    ],
)
def test_json_beyond_the_parser_limits_names_file_and_line(shared_data: Path, tmp_path: Path, line: bytes,
                                                           message: str) -> None:  # fmt: skip
    """Before: a RecursionError or ValueError from json, recorded as the task's error without the file or line."""
    copy = _copy_task(shared_data, tmp_path, "en", "STS16")
    lines = (copy / "test.jsonl").read_bytes().splitlines()
    lines[9] = line
    (copy / "test.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(DataError, match=rf"STS16/test\.jsonl:10: {message}"):
        _load(tmp_path, "STS16")


@pytest.mark.parametrize(("kind", "file", "rows", "message"), [
    ("PairClassification", "test.jsonl", [{"sentence1": f"a {i}", "sentence2": f"b {i}", "label": 1} for i in range(4)],
     r"test\.jsonl: all 4 rows have label 1; pair classification needs both 0 and 1"),
    ("STS", "test.jsonl", [{"sentence1": f"a {i}", "sentence2": f"b {i}", "score": 3.0} for i in range(4)],
     r"test\.jsonl: all 4 rows have score 3\.0; Spearman's correlation with one gold score is undefined"),
    ("Classification", "train.jsonl", [{"text": f"t {i}", "label": "x"} for i in range(4)],
     r"train\.jsonl: all 4 rows have label 'x'; a classifier needs at least 2 classes"),
    ("Clustering", "test.jsonl", [{"text": f"t {i}", "label": "x"} for i in range(4)],
     r"test\.jsonl: all 4 rows have label 'x'; clustering needs at least 2 labels"),
])  # fmt: skip
def test_gold_of_one_value_is_refused_naming_the_file(tmp_path: Path, kind: str, file: str, rows: list,
                                                      message: str) -> None:  # fmt: skip
    """Before stop 36 a pair classification file whose labels were all 1 scored max_ap 100 for any model, silently;
    a classification train file of one label failed with sklearn's error naming no file, and STS gold scores all
    equal gave "a main score of nan" (audit). Clustering already refused one label."""
    folder = _task_dir(tmp_path, "MyTask", kind)
    lines = "".join(json.dumps(r) + "\n" for r in rows)
    (folder / file).write_text(lines, encoding="utf-8")
    if kind == "Classification":
        (folder / "test.jsonl").write_text(lines.replace('"x"', '"y"', 1), encoding="utf-8")
    with pytest.raises(DataError, match=message):
        _load(tmp_path, "MyTask")


def test_a_task_json_error_names_the_line_of_its_key(tmp_path: Path) -> None:
    """Before stop 36 every task.json error said line 1, however the file was laid out (audit)."""
    folder = tmp_path / "en" / "MySTS"
    folder.mkdir(parents=True)
    meta = {"name": "MySTS", "type": "STS", "languages": ["en"], "main_score": "spearman_cosine"}
    (folder / "task.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")  # main_score on line 7
    (folder / "test.jsonl").write_text(json.dumps({"sentence1": "a", "sentence2": "b", "score": 1}) + "\n", "utf-8")
    _, broken = scan_tasks(tmp_path)
    assert str(broken["MySTS"]).startswith(f"{folder / 'task.json'}:7: main_score 'spearman_cosine' is not")


def test_a_legacy_clustering_mirror_may_name_its_cluster_sets(tmp_path: Path) -> None:
    """mteb's legacy clustering (CLSClusteringS2S, the C-MTEB ones, a task of its own) clusters each set of its
    split alone and averages; before stop 48 a mirror was always one set of all its rows. Rows naming a `set`
    become one row of mteb's split per set, in the order the sets first appear; every row or none names one; a
    v2 twin (one pool of documents) refuses the field; sets that each hold one label (scored 1.0 unclustered)
    are refused."""
    rows = [{"text": f"text {i}", "label": f"l{i % 3}", "set": ["b", "a"][i % 2]} for i in range(40)]
    for name, twin in (("MyClusters", None), ("CLSClusteringS2S", "CLSClusteringS2S"),
                       ("TwentyNewsgroupsClustering.v2", "TwentyNewsgroupsClustering.v2")):  # fmt: skip
        folder = _task_dir(tmp_path, name, "Clustering", mteb_equivalent=twin)
        (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    for name in ("MyClusters", "CLSClusteringS2S"):
        split = _load(tmp_path, name).dataset["test"]
        assert split["sentences"] == [[f"text {i}" for i in range(0, 40, 2)], [f"text {i}" for i in range(1, 40, 2)]]
        assert split["labels"][1][:3] == ["l1", "l0", "l2"]
    with pytest.raises(DataError, match=r"TwentyNewsgroupsClustering\.v2/test\.jsonl:1: field 'set': mteb's "
                                        r"TwentyNewsgroupsClustering\.v2 clusters one pool of documents"):  # fmt: skip
        _load(tmp_path, "TwentyNewsgroupsClustering.v2")
    spec = tmp_path / "en" / "MyClusters" / "test.jsonl"
    for bad, message in (
        ([*rows[:5], {"text": "x", "label": "l0"}], r"test\.jsonl:6: no field 'set' where line 1 has one"),
        ([{"text": "x", "label": "l0"}, *rows[:5]], r"test\.jsonl:2: a field 'set' where line 1 has none"),
        ([*rows[:3], {**rows[3], "set": -1}], r"test\.jsonl:4: field 'set' must be a non-negative integer or a "
                                              r"non-blank string naming the document's cluster set, not -1"),
        ([*rows[:3], {**rows[3], "set": " "}], r"test\.jsonl:4: field 'set' must be"),
        ([*rows[:3], {**rows[3], "set": True}], r"test\.jsonl:4: field 'set' must be"),
        ([{**r, "set": r["label"]} for r in rows], r"test\.jsonl: each of the 3 cluster sets \(field 'set'\) holds "
                                                   r"one label: mteb scores such a set 1\.0 without clustering it"),
    ):  # fmt: skip
        spec.write_text("".join(json.dumps(r) + "\n" for r in bad), "utf-8")
        with pytest.raises(DataError, match=message):
            _load(tmp_path, "MyClusters")


def test_a_two_class_task_needs_labels_0_and_1(tmp_path: Path) -> None:
    """Audit, stop 48: two classes named 'neg' and 'pos' (or 3 and 7) failed inside mteb after the model's work
    ("pos_label=1 is not a valid label"): mteb scores a two-class task's average precision with label 1 as the
    positive class, on a test split of two labels (review: the train labels decide nothing; -1/1 is fine). Now
    refused when the rows are read, naming the file and the labels."""
    folder = _task_dir(tmp_path, "MyBinary", "Classification")
    for name, labels in (("train.jsonl", ["neg", "pos"] * 10), ("test.jsonl", ["pos", "neg"] * 5)):
        (folder / name).write_text("".join(json.dumps({"text": f"{name} {i}", "label": label}) + "\n"
                                           for i, label in enumerate(labels)), "utf-8")  # fmt: skip
    with pytest.raises(DataError, match=r"MyBinary/test\.jsonl: two classes, 'neg', 'pos': mteb scores a "
                                        r"two-class test split's average precision with label 1"):  # fmt: skip
        _load(tmp_path, "MyBinary")
    for name in ("train.jsonl", "test.jsonl"):
        path = folder / name
        path.write_text(path.read_text("utf-8").replace('"neg"', "0").replace('"pos"', "1"), "utf-8")
    assert sorted(set(_load(tmp_path, "MyBinary").dataset["train"]["label"])) == [0, 1]


def test_a_relative_task_or_language_folder_root_names_the_way_out(shared_data: Path, capsys, monkeypatch) -> None:
    """A review (stop 64): `--data-dir .` inside a task folder was told "give ., and --tasks " (Path('.').parent is
    '.', its name ''), and `--data-dir ATEC` from the language folder "give .", the language folder itself."""
    import harness.data
    from harness.data import scan_tasks

    def scanned_from(folder: Path, root: str) -> str:  # each case warns afresh (a root is named once a process)
        monkeypatch.setattr(harness.data, "_WARNED_UNSPECIFIED", set())
        monkeypatch.chdir(folder)
        assert scan_tasks(Path(root)) == ({}, {})
        return capsys.readouterr().err

    assert "give ../.., and --tasks ATEC to run this task alone" in scanned_from(shared_data / "zh" / "ATEC", ".")
    assert "give .., and --tasks ATEC to run this task alone" in scanned_from(shared_data / "zh", "ATEC")
    assert "give its parent, ../.." in scanned_from(shared_data / "zh" / "ATEC", "..")


@pytest.mark.parametrize(("lang", "task", "rename", "expected"), [
    ("en", "STS12", ("test.jsonl", "test.json"), "test.jsonl: file is missing; did you mean: test.json?"),
    ("zh", "TNews", ("train.jsonl", "training.jsonl"), "train.jsonl: file is missing; did you mean: training.jsonl?"),
    ("zh", "CSLTitleRetrieval", ("queries.jsonl", "query.jsonl"),
     "queries.jsonl: file is missing; did you mean: query.jsonl?"),
    ("zh", "CSLTitleRetrieval", ("qrels.tsv", "qrels.txt"), "qrels.tsv: file is missing; did you mean: qrels.txt?"),
])  # fmt: skip
def test_a_missing_row_file_names_the_near_named_file_beside_it(
    tmp_path: Path, lang: str, task: str, rename: tuple[str, str], expected: str
) -> None:
    """A user walk (stop 67): test.json, training.jsonl or query.jsonl beside the missing file got only "file is
    missing", where task.json's keys get a did-you-mean."""
    folder = _sample_copy(tmp_path, lang, task)
    (folder / rename[0]).rename(folder / rename[1])
    with pytest.raises(DataError) as raised:
        _load(tmp_path, task)
    assert str(raised.value) == f"{folder}/{expected}"


def test_a_dev_jsonl_is_told_the_rows_are_always_in_test_jsonl(tmp_path: Path) -> None:
    """A user walk (stop 67): with eval_split "dev", naming the file dev.jsonl is natural; eval_split names the
    split the rows are recorded under, the file is test.jsonl whatever it says (docs/data-layout.md)."""
    folder = _task_dir(tmp_path, "MySTS", "STS", eval_split="dev")
    (folder / "dev.jsonl").write_text(json.dumps({"sentence1": "a", "sentence2": "b", "score": 1.0}), "utf-8")
    with pytest.raises(DataError) as raised:
        _load(tmp_path, "MySTS")
    assert str(raised.value) == (f"{folder / 'test.jsonl'}: file is missing; dev.jsonl is there: rename it test.jsonl "
                                 "(a task's rows are read from test.jsonl whatever eval_split says; eval_split 'dev' "
                                 "records them under that split)")  # fmt: skip


STS_ROWS = [{"sentence1": f"一个人在做饭 {i}", "sentence2": f"有人在烹饪 {i}", "score": float(i % 5)} for i in range(4)]


@pytest.mark.parametrize(("content", "expected"), [
    (json.dumps(STS_ROWS, indent=1, ensure_ascii=False).encode(), ":1: the file is one JSON array, not JSON Lines: "
     "write one JSON object per line, with no enclosing [ ]"),
    (json.dumps(STS_ROWS, ensure_ascii=False).encode(), ":1: the file is one JSON array, not JSON Lines"),
    ("\n".join(json.dumps(r, ensure_ascii=False) for r in STS_ROWS).encode("utf-16"),
     ":1: the file is UTF-16 (little-endian, byte-order mark FF FE), not UTF-8: save it as UTF-8"),
    ("\n".join(json.dumps(r, ensure_ascii=False) for r in STS_ROWS).encode("gbk"),
     ":1: not valid UTF-8: save the file as UTF-8 (GBK/GB18030 files, common on Chinese Windows, are not read)"),
    ("\r".join(json.dumps(r, ensure_ascii=False) for r in STS_ROWS).encode(),
     ":1: invalid JSON: Extra data at column "),
])  # fmt: skip
def test_a_row_file_in_another_format_or_encoding_says_which(tmp_path: Path, content: bytes, expected: str) -> None:
    """A user walk (stop 67): a JSON array said "invalid JSON: Expecting value at column 2" (indented) or "row is not
    a JSON object"; UTF-16 and GBK files said "not valid UTF-8" alike; CR-only line ends "Extra data" alone."""
    folder = _task_dir(tmp_path, "MySTS", "STS")
    (folder / "test.jsonl").write_bytes(content)
    with pytest.raises(DataError) as raised:
        _load(tmp_path, "MySTS")
    assert str(raised.value).startswith(f"{folder / 'test.jsonl'}{expected}")
    if b"\r" in content:
        assert str(raised.value).endswith("; the lines end in CR alone (old Mac line ends), so the file reads as one "
                                          "line: save it with LF (or CRLF) line ends")  # fmt: skip


def test_a_task_json_or_qrels_in_utf16_or_with_cr_line_ends_says_so(tmp_path: Path) -> None:
    """The whole-file reads (task.json, qrels.tsv) name UTF-16 and CR-only line ends too (stop 67)."""
    folder = _task_dir(tmp_path, "MyRetrieval", "Retrieval")
    (folder / "corpus.jsonl").write_text('{"_id": "d1", "text": "doc"}\n', encoding="utf-8")
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "query"}\n', encoding="utf-8")
    (folder / "qrels.tsv").write_bytes(b"query-id\tcorpus-id\tscore\rq1\td1\t1\r")
    with pytest.raises(DataError) as raised:
        _load(tmp_path, "MyRetrieval")
    assert str(raised.value) == (f"{folder / 'qrels.tsv'}:1: the lines end in CR alone (old Mac line ends), so the "
                                 "file reads as one line: save it with LF (or CRLF) line ends")  # fmt: skip
    spec = folder / "task.json"
    spec.write_bytes(spec.read_text(encoding="utf-8").encode("utf-16-be").join([b"\xfe\xff", b""]))
    _, broken = scan_tasks(tmp_path)
    assert str(broken["MyRetrieval"]) == (f"{spec}:1: the file is UTF-16 (big-endian, byte-order mark FE FF), not "
                                          "UTF-8: save it as UTF-8")  # fmt: skip


def test_a_task_type_in_another_case_is_suggested(tmp_path: Path) -> None:
    """A user walk (stop 67): "type": "sts" was told the seven types, with no did-you-mean."""
    _task_dir(tmp_path, "MySTS", "sts")
    _, broken = scan_tasks(tmp_path)
    assert str(broken["MySTS"]) == (f"{tmp_path / 'en' / 'MySTS' / 'task.json'}:1: type 'sts'; did you mean: STS? "
                                    "(one of STS, PairClassification, Classification, Clustering, Reranking, "
                                    "Retrieval, BitextMining)")  # fmt: skip


def test_a_document_with_a_title_and_an_empty_text_is_refused(tmp_path: Path) -> None:
    """docs/data-layout.md (stop 67, a user walk asked): a title does not count as a document's text."""
    folder = _task_dir(tmp_path, "MyRetrieval", "Retrieval")
    (folder / "corpus.jsonl").write_text('{"_id": "d1", "title": "t", "text": "doc"}\n'
                                         '{"_id": "d2", "title": "标题", "text": ""}\n', encoding="utf-8")  # fmt: skip
    (folder / "queries.jsonl").write_text('{"_id": "q1", "text": "query"}\n', encoding="utf-8")
    (folder / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n", encoding="utf-8")
    with pytest.raises(DataError) as raised:
        _load(tmp_path, "MyRetrieval")
    assert str(raised.value) == f"{folder / 'corpus.jsonl'}:2: field 'text' is empty or not a string"


def test_a_huge_text_is_named_once_per_read_not_refused(tmp_path: Path, capsys) -> None:
    """A walk (stop 67): a 2-million-character text took 32.5 s to tokenize, said only as a slow rate. A text of a
    million characters or more is named with its file and line, the largest first, and the rows still load."""
    folder = _task_dir(tmp_path, "MySTS", "STS")
    rows = [{"sentence1": "a", "sentence2": "b", "score": 1.0},
            {"sentence1": "x" * 1_000_000, "sentence2": "b", "score": 2.0},
            {"sentence1": "a", "sentence2": "y" * 1_200_000, "score": 3.0}]  # fmt: skip
    (folder / "test.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    assert len(read_rows(discover_tasks(tmp_path)["MySTS"], "test.jsonl")) == 3
    assert capsys.readouterr().err == (
        f"harness: warning: {folder / 'test.jsonl'}:3: a text of 1,200,000 characters (and 1 more of 1,000,000+ "
        "characters): it is tokenized whole, slowly (about 15 s per million characters on 2 cores), before its first "
        "max_length tokens are embedded; check the file\n")
    (folder / "test.jsonl").write_text(json.dumps(rows[0]) + "\n", encoding="utf-8")
    read_rows(discover_tasks(tmp_path)["MySTS"], "test.jsonl")
    assert capsys.readouterr().err == ""
