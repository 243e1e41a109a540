"""What the supervised stage counts as a query's labelled match, across its tasks (audit, stop 50): a pair one task
trains as a match is no other task's hard negative, STS's zero-scored partner is never a match, DHNM keeps one
state per query (not per row), and ``max_rows`` says what it keeps of each file."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from train.distributed import init_runtime
from train.errors import ConfigError
from train.mining import labelled_matches
from train.multitask import Task, _pairs, build_tasks, group_numbers
from train.supervised_config import SupervisedConfig
from train.supervised_step import Stepper


def write(path: Path, rows: list[dict[str, str]]) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "train.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
                                      encoding="utf-8")  # fmt: skip


def test_a_pair_another_task_labels_a_match_is_no_hard_negative(tmp_path: Path):
    """The retrieval rows alone leave "apple question 0 asked again" a mined candidate of "apple question 0 asked":
    the STS task's paraphrase pair labels it a match. Before, pools and in-batch groups read their own task's rows
    only (the CLR stage served STS-B paraphrases as hard negatives: "A man played the piano." got "A man plays a
    piano.")."""
    ret = [{"query": f"apple question {i} asked", "positive": f"apple answer {i}"} for i in range(8)]
    ret.append({"query": "pear question", "positive": "apple question 0 asked again"})
    write(tmp_path / "ret", ret)
    write(tmp_path / "para", [{"query": "apple question 0 asked", "positive": "apple question 0 asked again"},
                              *({"query": f"pear {i}", "positive": f"plum {i}"} for i in range(4))])  # fmt: skip
    tasks = {"r": {"kind": "retrieval", "data": ["ret"], "batch_size": 4},
             "s": {"kind": "sts", "data": ["para"], "batch_size": 4}}  # fmt: skip
    alone = SupervisedConfig(output_dir=str(tmp_path / "alone"), data_root=str(tmp_path), hard_negatives=2,
                             dhnm={"skip_top": 0}, tasks={"r": tasks["r"]})  # fmt: skip
    assert "apple question 0 asked again" in build_tasks(alone, init_runtime("cpu"))["r"].pools[0]  # mined alone
    cfg = SupervisedConfig(output_dir=str(tmp_path / "both"), data_root=str(tmp_path), hard_negatives=2,
                           dhnm={"skip_top": 0}, tasks=tasks)  # fmt: skip
    built = build_tasks(cfg, init_runtime("cpu"))
    r = built["r"]
    assert "apple question 0 asked again" not in r.pools[0]
    assert r.groups["apple question 0 asked again"] == r.row_groups[0]  # masked if another row brings it in-batch
    assert built["s"].groups["apple question 0 asked"] == built["s"].groups["apple question 0 asked again"]


def test_the_sts_partner_is_never_a_labelled_match_of_the_query():
    """Rows 0 and 1 share their positive, rows 2 and 3 are one paraphrase both ways: the plain draw (another row's
    positive) scored a query's own positive, or the query itself, 0 while its pair was scored 1."""
    rows = [{"query": "a", "positive": "p"}, {"query": "b", "positive": "p"}, {"query": "c", "positive": "d"},
            {"query": "d", "positive": "c"}, *({"query": f"q{i}", "positive": f"x{i}"} for i in range(4))]
    pairs = [(r["query"], r["positive"]) for r in rows]
    task = Task("s", "sts", 4, 1.0, rows, groups=group_numbers(labelled_matches(pairs)))
    matches = labelled_matches(pairs)
    plain_hits = 0
    for seed in range(200):
        for r, row in enumerate(rows):
            partner = Stepper.partner(task, r, seed)
            assert partner is not None and partner not in matches[row["query"]], (seed, r, partner)
            plain = rows[(r + 1 + random.Random(f"{seed}-{r}").randrange(len(rows) - 1)) % len(rows)]
            plain_hits += plain["positive"] in matches[row["query"]]
    assert plain_hits > 50  # the cases the old draw hit are exercised
    one = Task("one", "sts", 2, 1.0, rows[:2], groups=group_numbers(labelled_matches(pairs[:2])))
    assert Stepper.partner(one, 0, 0) is None  # every row one component: no zero-scored pair at all
    # a given negative is taken unless it is a match (csnli_nli_zh line 2706 gives its positive as its negative)
    women, people = "三个女人站在一个房间里。", "三个人站在一个房间里。"
    given = [{"query": women, "positive": people, "negative": people},
             {"query": "a", "positive": "p", "negative": "x1"}, *rows[4:]]  # fmt: skip
    task = Task("g", "sts", 4, 1.0, given, groups=group_numbers(labelled_matches(_pairs(given))))
    assert Stepper.partner(task, 1, 0) == "x1"
    assert all(Stepper.partner(task, 0, seed) in {"x0", "x1", "x2", "x3", "p"} for seed in range(50))


def test_an_sts_task_whose_rows_are_all_one_match_is_refused(tmp_path: Path):
    write(tmp_path / "para", [{"query": "a", "positive": "b"}, {"query": "b", "positive": "c"},
                              {"query": "c", "positive": "a"}, {"query": "a", "positive": "c"}])  # fmt: skip
    cfg = SupervisedConfig(output_dir=str(tmp_path / "run"), data_root=str(tmp_path),
                           tasks={"s": {"kind": "sts", "data": ["para"], "batch_size": 2}})  # fmt: skip
    with pytest.raises(ConfigError, match="tasks.s: the data labels every row's texts matches of each other"):
        build_tasks(cfg, init_runtime("cpu"))


def test_dhnm_keeps_one_state_per_query_not_per_row(tmp_path: Path):
    """TrecQA's rows are (question, answer) pairs, several per question: a negative DHNM dropped for one row was
    served again through its other rows (the decoder ablations' 200 rows are 46 questions)."""
    rows = [{"query": f"apple question {i // 3}", "positive": f"apple answer {i}"} for i in range(12)]
    rows += [{"query": f"apple question {i}", "positive": f"apple answer {i}"} for i in range(10, 14)]
    write(tmp_path / "qa", rows)
    cfg = SupervisedConfig(output_dir=str(tmp_path / "run"), data_root=str(tmp_path), hard_negatives=1,
                           dhnm={"skip_top": 0}, tasks={"r": {"kind": "retrieval", "data": ["qa"], "batch_size": 4}})
    task = build_tasks(cfg, init_runtime("cpu"))["r"]
    assert task.dhnm_ids[:3] == [0, 0, 0] and task.dhnm_ids[3:6] == [1, 1, 1]
    assert len(task.dhnm.pool_sizes) == len(set(r["query"] for r in rows)) == 8
    first = task.slots(0)
    task.dhnm.update([task.dhnm_ids[0]], [[0.1]])  # too easy from the start: replaced for the question
    assert task.slots(1) == task.slots(2) == task.slots(0) != first


def test_per_row_dhnm_state_resumes_where_every_row_has_its_own_query(tmp_path: Path):
    """A checkpoint from before stop 50 (state version 1, per row) is per-query state when no two rows share a query
    (every CLR and cmrc stage): accepted there; refused where rows share one, naming the task."""
    from train.errors import ResumeError
    from train.multitask import StageState

    write(tmp_path / "own", [{"query": f"apple question {i}", "positive": f"apple answer {i}"} for i in range(8)])
    write(tmp_path / "shared", [{"query": f"apple question {i // 2}", "positive": f"apple answer {i}"}
                                for i in range(8)])  # fmt: skip
    for data, accepted in (("own", True), ("shared", False)):
        cfg = SupervisedConfig(output_dir=str(tmp_path / data), data_root=str(tmp_path), hard_negatives=1,
                               dhnm={"skip_top": 0}, tasks={"r": {"kind": "retrieval", "data": [data],
                                                                  "batch_size": 4}})  # fmt: skip
        tasks = build_tasks(cfg, init_runtime("cpu"))
        tasks["r"].dhnm.update([0], [[0.1]])
        state = StageState(tasks).state_dict()
        state["dhnm"]["r"]["version"] = 1
        resumed = StageState(build_tasks(cfg, init_runtime("cpu")))
        if accepted:
            resumed.load_state_dict(state)
            assert resumed.by_task["r"].negatives(0) == tasks["r"].dhnm.negatives(0)
        else:
            with pytest.raises(ResumeError, match="task r: DHNM state of version 1 is per training row"):
                resumed.load_state_dict(state)


def test_max_rows_names_what_it_keeps_of_each_file(tmp_path: Path, capsys):
    """Before, a cap that cut a file (or a label) away entirely was unsaid: `tasks.<t>.max_rows` on
    configs/supervised.toml trained Chinese alone."""
    write(tmp_path / "zh", [{"text": f"文本 {i}", "label": f"标签{i % 3}"} for i in range(6)])
    write(tmp_path / "en", [{"text": f"text {i}", "label": f"label {i % 2}"} for i in range(4)])
    cfg = SupervisedConfig(output_dir=str(tmp_path / "run"), data_root=str(tmp_path),
                           tasks={"c": {"kind": "classification", "data": ["zh", "en"], "batch_size": 2,
                                        "max_rows": 2}})  # fmt: skip
    task = build_tasks(cfg, init_runtime("cpu"))["c"]
    assert len(task.rows) == 2
    assert capsys.readouterr().out.splitlines()[:3] == [
        "tasks.c: max_rows 2 keeps the files' first rows; warning: nothing of en (put the files to keep first, or "
        "raise max_rows)",
        "  zh/train.jsonl: 2 of 6 rows; labels 2 of 3",
        "  en/train.jsonl: 0 of 4 rows; labels 0 of 2"]  # fmt: skip
