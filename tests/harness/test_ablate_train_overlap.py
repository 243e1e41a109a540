"""`harness ablate` and training data that holds evaluation texts: measured when the ablation opens, refused unless
the config says why (`eval.train_overlap_ok`), shown in the report; the shipped ablations share none."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_ablate import REPO, SAMPLE, write_configs

from harness.ablate import Ablation
from harness.ablate_config import load_ablation
from harness.data import discover_tasks
from harness.errors import UsageError


def leaky_training_set(tmp: Path, shared_data: Path) -> Path:
    """Real parallel_en_zh rows plus one whose English side is STS12's first sentence, in other case and spacing."""
    rows = (shared_data / "train" / "parallel_en_zh" / "train.jsonl").read_text(encoding="utf-8").splitlines()[:200]
    first = json.loads((SAMPLE / "en" / "STS12" / "test.jsonl").read_text(encoding="utf-8").splitlines()[0])
    leak = {"query": "  " + first["sentence1"].upper().replace(" ", "   "), "positive": json.loads(rows[0])["positive"]}
    folder = tmp / "train_data" / "leaky"
    folder.mkdir(parents=True)
    (folder / "train.jsonl").write_text("\n".join([*rows, json.dumps(leak, ensure_ascii=False)]) + "\n",
                                        encoding="utf-8")  # fmt: skip
    return folder


def test_training_data_sharing_test_texts_is_refused_unless_the_config_says_why(tmp_path: Path, shared_data: Path
                                                                                 ) -> None:  # fmt: skip
    """Before: only dev and test tasks were compared with each other, so a stage trained on STS12's sentences was
    scored on STS12 without a word in the report."""
    config = write_configs(tmp_path, shared_data)
    folder = leaky_training_set(tmp_path, shared_data)
    stage = tmp_path / "weak.toml"
    stage.write_text(stage.read_text().replace(f'data_root = "{shared_data / "train"}"',
                                               f'data_root = "{folder.parent}"').replace('"parallel_en_zh"', '"leaky"'))
    with pytest.raises(UsageError) as refused:
        Ablation(load_ablation(config), config)
    expected = (f"{config}: eval: training data and evaluation tasks share texts ({folder} and STS12: 1 of the "
                "task's 80 texts, 1 of its 41 pairs), so a trained arm's score on them is partly memory")
    assert expected in str(refused.value) and "eval.train_overlap_ok" in str(refused.value)
    assert not (tmp_path / "work").exists()  # nothing written before the config is accepted

    config.write_text(config.read_text().replace('test = ["STS12"]', 'test = ["STS12"]\ntrain_overlap_ok = "why"'))
    ablation = Ablation(load_ablation(config), config)  # accepted; the report will show it with the reason
    assert ablation.train_overlap == [{"train": str(folder), "task": "STS12", "shared": 1, "task_texts": 80,
                                       "items_with_shared": 1, "task_items": 41, "items": "pairs"}]  # fmt: skip


def test_queries_are_the_items_of_a_retrieval_task(tmp_path: Path, shared_data: Path) -> None:
    """A training set holding real CMRC2018Retrieval queries counts those queries, not the documents they ask of."""
    from harness.ablate_overlap import train_test_overlap

    task = discover_tasks(shared_data)["CMRC2018Retrieval"]
    queries = (task.path / "queries.jsonl").read_text(encoding="utf-8").splitlines()[:3]
    folder = tmp_path / "qa"
    folder.mkdir()
    (folder / "train.jsonl").write_text("".join(json.dumps({"text": json.loads(q)["text"]}, ensure_ascii=False)
                                                + "\n" for q in queries), encoding="utf-8")  # fmt: skip
    [found] = train_test_overlap({task.name: task}, {"qa": {folder / "train.jsonl"}}, [task.name])
    assert (found["shared"], found["items_with_shared"], found["task_items"], found["items"]) == (3, 3, 3218,
                                                                                                 "queries")


def test_shipped_ablations_train_on_no_text_of_their_tasks(shared_data: Path, monkeypatch) -> None:
    """Every configs/ablations/*.toml opens with its training data checked against its tasks (the numbers quoted
    in docs/training-supervised.md: benchmarks/results/train_test_overlap.json)."""
    monkeypatch.chdir(REPO)
    committed = json.loads((REPO / "benchmarks" / "results" / "train_test_overlap.json").read_text())["ablations"]
    for name in ("dhnm", "mrl_decoder"):  # one Chinese QA set; four English sets under two data_root spellings
        path = Path("configs/ablations") / f"{name}.toml"
        ablation = Ablation(load_ablation(path), path, measure_only=True)
        assert ablation.train_overlap == [] and sorted(ablation.train_sets) == committed[name]["train_sets"]
        assert len(ablation.train_pairs) == len(committed[name]["pairs"]) > 0


def test_a_task_folder_s_train_file_is_compared_alone_not_its_test_file(tmp_path: Path, shared_data: Path) -> None:
    """A stage trained on zh/TNews/train.jsonl: the check read every .jsonl of the folder, so TNews's own test.jsonl
    counted as training text: 4,292 of 4,292 texts and 2,010 of 2,010 items shared, where train and test share
    none (audit, stop 36). Now only the files a stage reads are its training texts, and a classification task's
    texts are those it evaluates (its train.jsonl fits mteb's classifier: training on it is in-domain, not a test
    item learnt)."""
    from harness.ablate_overlap import train_test_overlap, training_files
    from train.supervised_config import SupervisedConfig

    stage = SupervisedConfig(output_dir=str(tmp_path / "out"), data_root=str(shared_data / "zh"), tasks={
        "cls": {"kind": "classification", "data": ["TNews"], "batch_size": 8}})  # fmt: skip
    files = training_files(stage, shared_data)
    assert files == {"zh/TNews": {(shared_data / "zh" / "TNews" / "train.jsonl").resolve()}}
    task = discover_tasks(shared_data)["TNews"]
    [found] = train_test_overlap({"TNews": task}, files, ["TNews"])
    assert (found["shared"], found["items_with_shared"], found["task_items"]) == (0, 0, 2010)
    assert found["task_texts"] == len({json.loads(line)["text"] for line in (task.path / "test.jsonl").open()})


def test_the_overlap_checks_refuse_a_task_file_linked_outside_its_folder(tmp_path: Path) -> None:
    """Audit, stop 47: the dev/test and train/test overlap checks globbed a task folder and read a test.jsonl
    symlinked to a file outside it (its texts were compared and reported), where the evaluation's own reads refuse
    it (OutsideRoot). Now they refuse it too, naming the file."""
    from harness.ablate_overlap import evaluated_files, task_items
    from harness.data import OutsideRoot, discover_tasks, normalized_texts

    shutil.copytree(SAMPLE / "en" / "STS16", tmp_path / "data" / "en" / "STS16")
    outside = tmp_path / "outside.jsonl"
    test = tmp_path / "data" / "en" / "STS16" / "test.jsonl"
    outside.write_bytes(test.read_bytes())
    task = discover_tasks(tmp_path / "data")["STS16"]
    test.unlink()
    test.symlink_to(outside)  # after the scan, which since stop 69 breaks such a task (test_data_checks)
    for read in (normalized_texts, task_items, evaluated_files):
        with pytest.raises(OutsideRoot, match="outside"):
            read(task)


def test_a_training_set_of_a_test_corpus_s_documents_counts_the_queries_they_answer(tmp_path: Path,
                                                                                      shared_data: Path) -> None:
    """Audit, stop 50: SciFact's relevant documents as "title text" (the form mteb embeds) were not seen at all
    (shared 0), and as text alone read "0 of its 300 queries": a Retrieval item was its query's text only."""
    from harness.ablate_overlap import train_test_overlap

    task = discover_tasks(shared_data)["SciFact"]
    relevant = {line.split("\t")[1] for line in (task.path / "qrels.tsv").read_text().splitlines()[1:] if line}
    docs = [row for row in map(json.loads, (task.path / "corpus.jsonl").open(encoding="utf-8"))
            if str(row["_id"]) in relevant]  # fmt: skip
    for form, text_of in (("joined", lambda d: f"{d['title']} {d['text']}"), ("text", lambda d: d["text"])):
        folder = tmp_path / form
        folder.mkdir()
        (folder / "train.jsonl").write_text("".join(json.dumps({"query": "q", "positive": text_of(d)}) + "\n"
                                                    for d in docs), encoding="utf-8")  # fmt: skip
        [found] = train_test_overlap({task.name: task}, {form: {folder / "train.jsonl"}}, [task.name])
        assert found["shared"] >= len(docs) > 200, form
        assert found["items_with_shared"] == found["task_items"] == 300, form
