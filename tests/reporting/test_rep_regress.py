"""`harness regress`: a real degraded model is flagged, a batch-size change is not, bad input exits 2."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from reporting.regress import compare, paired_bootstrap, verdict


def _regress(base: Path, cand: Path, out: Path, *extra: str) -> tuple[int, str]:
    code = main(["regress", "--baseline", str(base), "--candidate", str(cand), "--n-boot", "200",
                 "--out", str(out), *extra])  # fmt: skip
    return code, re.sub(r" +", " ", out.read_text(encoding="utf-8")) if out.exists() else ""


def test_degraded_model_is_a_regression(tiny_runs, tmp_path):
    code, text = _regress(tiny_runs["base"], tiny_runs["short"], tmp_path / "r.md")
    assert code == 1
    assert "**REGRESSION**" in text
    assert re.search(r"\| TinySTS \| STS \| cosine_spearman \| 80 pairs .*\*\*regressed", text)
    assert "## Efficiency" in text and "tokens/s" in text


def test_every_task_type_reproduces_its_score_from_items(tiny_runs):
    comp = compare(tiny_runs["base"], tiny_runs["short"], n_boot=50)
    assert {t.kind for t in comp.tasks} == {"STS", "PairClassification", "Reranking", "Retrieval", "Classification",
                                            "Clustering", "BitextMining"}  # fmt: skip
    assert all(t.verdict != "not tested" for t in comp.tasks), [(t.task, t.reason) for t in comp.tasks]
    assert all(t.lo <= t.delta <= t.hi for t in comp.tasks)


def test_batch_size_change_is_not_flagged(tiny_runs, tmp_path):
    code, text = _regress(tiny_runs["base"], tiny_runs["batch8"], tmp_path / "r.md")
    assert code == 0 and "No significant regression." in text
    table = text.split("## Efficiency")[0]
    assert table.count("within noise") == 3 and "not tested" not in table
    assert "task sets differ; tested on the 3 shared task(s)" in text  # batch8 ran three of the seven tasks
    assert "batch size: 64 → 8" in text  # efficiency flagged as not like for like


def test_unusable_input_exits_2(tiny_runs, tmp_path, capsys):
    assert _regress(tmp_path, tiny_runs["base"], tmp_path / "r.md")[0] == 2
    assert "not a run directory" in capsys.readouterr().err
    other = tmp_path / "other"
    shutil.copytree(tiny_runs["base"], other, ignore=shutil.ignore_patterns("results", "predictions"))
    record = json.loads((other / "run.json").read_text())
    record["tasks"] = {f"Renamed{k}": v for k, v in record["tasks"].items()}
    (other / "run.json").write_text(json.dumps(record))
    assert _regress(tiny_runs["base"], other, tmp_path / "r2.md")[0] == 2
    assert "no finished task in common" in capsys.readouterr().err
    assert _regress(tiny_runs["base"], tiny_runs["short"], tmp_path / "r3.md", "--alpha", "2")[0] == 2


def test_missing_predictions_are_not_tested_not_failed(tiny_runs, tmp_path):
    cand = tmp_path / "cand"
    shutil.copytree(tiny_runs["short"], cand)
    (cand / "predictions" / "TinySTS_predictions.json").unlink()
    comp = compare(tiny_runs["base"], cand, n_boot=20, tasks=["TinySTS"])
    (sts,) = comp.tasks
    assert sts.verdict == "not tested" and "no predictions file" in sts.reason and not comp.regressed


def test_gold_labels_come_from_the_run_directory(tiny_runs, tiny_root, tmp_path):
    """Regress reads the items' gold labels from the run directory (predictions/<Task>_gold.json), not from the
    data root; a run from before they were kept is not tested, says what to rerun, and that rerun repairs it."""
    base, cand = tmp_path / "base", tmp_path / "cand"
    shutil.copytree(tiny_runs["base"], base)
    shutil.copytree(tiny_runs["short"], cand)
    gold = json.loads((base / "predictions" / "TinySTS_gold.json").read_text())
    assert gold["type"] == "STS" and gold["split"] == "test" and len(gold["gold"]) == 80
    for run in (base, cand):  # the mirror folder is gone: nothing may need it
        record = json.loads((run / "run.json").read_text())
        record["data_root"] = str(tmp_path / "moved")
        record["tasks"]["TinySTS"]["path"] = str(tmp_path / "moved" / "en" / "TinySTS")
        record["tasks"]["TinySTS"]["data_root"] = str(tmp_path / "moved")
        (run / "run.json").write_text(json.dumps(record))
    (sts,) = compare(base, cand, n_boot=50, tasks=["TinySTS"]).tasks
    assert sts.verdict == "regressed"
    (base / "predictions" / "TinySTS_gold.json").unlink()
    (sts,) = compare(base, cand, n_boot=50, tasks=["TinySTS"]).tasks
    assert sts.verdict == "not tested" and "keeps no gold labels for TinySTS" in sts.reason
    assert "--overwrite" in sts.reason
    assert main(["run", "--tasks", "TinySTS", "--model", "minilm", "--data-dir", str(tiny_root), "--out", str(tmp_path),
                 "--run-name", "base", "--batch-size", "64", "--dims", "64,full", "--no-progress",
                 "--overwrite"]) == 0  # fmt: skip
    (sts,) = compare(base, cand, n_boot=50, tasks=["TinySTS"]).tasks
    assert sts.verdict == "regressed"


def test_verdict_rules():
    assert verdict(-0.05, -0.08, -0.02, 0.001) == "regressed"
    assert verdict(-0.0005, -0.0008, -0.0002, 0.001) == "within noise"  # significant but below min effect
    assert verdict(0.03, 0.01, 0.05, 0.001) == "improved"
    assert verdict(0.01, -0.01, 0.03, 0.0) == "within noise"


def test_paired_bootstrap_cancels_shared_item_difficulty():
    # Per-item scores vary a lot between items, but the candidate is the baseline + 0.01 on every item:
    # a paired bootstrap sees exactly 0.01 on every resample.
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 1, 200)
    cand = base + 0.01
    pos = np.arange(200)
    deltas = paired_bootstrap(lambda i: base[i].mean(), lambda i: cand[i].mean(), pos, pos, 100, rng)
    assert deltas == pytest.approx(np.full(100, 0.01))


def test_records_without_metric_or_split_are_still_tested(tiny_runs, tmp_path):
    """A rerun that skips finished tasks may rewrite run.json with fewer keys; the gold data still decides."""
    base = tmp_path / "base"
    shutil.copytree(tiny_runs["base"], base)
    record = json.loads((base / "run.json").read_text())
    for task in record["tasks"].values():
        task.pop("main_metric", None)
        task.pop("split", None)
    (base / "run.json").write_text(json.dumps(record))
    (sts,) = compare(base, tiny_runs["short"], n_boot=50, tasks=["TinySTS"]).tasks
    assert sts.verdict == "regressed" and sts.metric == "cosine_spearman"


def test_task_on_different_data_is_not_tested(tiny_runs, tmp_path):
    short = tmp_path / "short"
    shutil.copytree(tiny_runs["short"], short)
    record = json.loads((short / "run.json").read_text())
    record["tasks"]["TinySTS"]["sampling"] = "another sample"
    (short / "run.json").write_text(json.dumps(record))
    (sts,) = compare(tiny_runs["base"], short, n_boot=50, tasks=["TinySTS"]).tasks
    assert sts.verdict == "not tested" and sts.reason == "the runs' scores are not comparable (sampling differ)"


@pytest.mark.parametrize(("where", "value", "named"), [
    (("identity", "data"), "sha256:other-rows", "data"), (("main_metric",), "cosine_pearson", "main_metric"),
])  # fmt: skip
def test_other_rows_or_another_metric_are_not_tested(tiny_runs, tmp_path, where, value, named):
    """Rows edited behind an unchanged task.json (the recorded file hash differs; audit I: the same vectors gave
    a REGRESSION of −44 points, exit 1) and another main metric of one task are no basis for a verdict."""
    short = tmp_path / "short"
    shutil.copytree(tiny_runs["short"], short)
    record = json.loads((short / "run.json").read_text())
    target = record["tasks"]["TinySTS"]
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    (short / "run.json").write_text(json.dumps(record))
    (sts,) = compare(tiny_runs["base"], short, n_boot=50, tasks=["TinySTS"]).tasks
    assert sts.verdict == "not tested" and sts.reason == f"the runs' scores are not comparable ({named} differ)"


def test_a_task_the_candidate_failed_fails_the_gate(tiny_runs, tmp_path, capsys):
    """Before: only a 'task sets differ' warning, "No significant regression." and exit 0."""
    cand = tmp_path / "cand"
    shutil.copytree(tiny_runs["short"], cand)
    record = json.loads((cand / "run.json").read_text())
    record["tasks"]["TinySTS"].update(status="failed", main_score=None, error="ValueError: bad row\ntrace")
    (cand / "run.json").write_text(json.dumps(record))
    comp = compare(tiny_runs["base"], cand, n_boot=20, tasks=["TinySTS"])
    assert comp.failed == ["TinySTS"] and comp.tasks[0].reason == "status failed: ValueError: bad row"
    out = tmp_path / "r.md"
    assert main(["regress", "--baseline", str(tiny_runs["base"]), "--candidate", str(cand), "--n-boot", "20",
                 "--tasks", "TinySTS", "--out", str(out)]) == 1  # fmt: skip
    text = out.read_text()
    assert "**FAILED** in the candidate: TinySTS." in text and "No significant regression" not in text
    assert re.search(r"\| TinySTS +\| STS +\| cosine_spearman +\| — +\| [\d.]+ +\| — +\| — +\| — +\| "
                     r"\*\*failed in candidate\*\* \(status failed: ValueError: bad row\)", text)


def test_a_tasks_name_in_neither_run_is_a_usage_error(tiny_runs, tmp_path, capsys):
    """A typo in a nightly gate's --tasks silently dropped the task (audit I F8)."""
    assert main(["regress", "--baseline", str(tiny_runs["base"]), "--candidate", str(tiny_runs["short"]),
                 "--tasks", "TinySTS,TinySTSS", "--out", str(tmp_path / "r.md")]) == 2  # fmt: skip
    assert "--tasks: TinySTSS in neither run" in capsys.readouterr().err


def test_task_kept_from_other_settings_is_not_tested(tiny_runs, tmp_path):
    """A task the candidate's directory kept from a run with other settings scores that configuration, not the
    candidate's: a verdict on it would test something else, so it is not tested, and the reason says so."""
    short = tmp_path / "short"
    shutil.copytree(tiny_runs["short"], short)
    record = json.loads((short / "run.json").read_text())
    record["tasks"]["TinySTS"]["identity"]["max_length"] = 8
    (short / "run.json").write_text(json.dumps(record))
    (sts,) = compare(tiny_runs["base"], short, n_boot=50, tasks=["TinySTS"]).tasks
    assert sts.verdict == "not tested"
    assert sts.reason == "the candidate kept it from a run with other settings (max_length 8)"


def test_too_few_resamples_for_the_ci_level_are_named(tiny_runs):
    """Each CI end is a quantile of the resamples: with Bonferroni over 7 tasks at 200 resamples it would rest
    on 0.7 of them, and the report says how many to use instead."""
    few = compare(tiny_runs["base"], tiny_runs["short"], n_boot=200, bonferroni=True)
    assert any("rests on 0.7 of 200 resamples; use --n-boot 2800 or more" in w for w in few.warnings)
    enough = compare(tiny_runs["base"], tiny_runs["short"], n_boot=400, tasks=["TinySTS"])
    assert not any("rests on" in w for w in enough.warnings)  # 400 × 0.025 = 10 beyond each end


@pytest.mark.parametrize("damaged", ["run.json", "efficiency.json", "predictions/TinySTS_gold.json"])
def test_a_damaged_run_file_is_an_error_naming_it(tiny_runs, tmp_path, capsys, damaged):
    """Before: a raw JSONDecodeError traceback (exit 1) from regress, report and leaderboard, naming no file
    (audit J4). Now exit 2 with file:line, and the file is left as it was."""
    cand = tmp_path / "cand"
    shutil.copytree(tiny_runs["short"], cand)
    target = cand / damaged
    text = target.read_text()[:40]
    target.write_text(text)
    commands = [["regress", "--baseline", str(tiny_runs["base"]), "--candidate", str(cand), "--tasks", "TinySTS",
                 "--n-boot", "20", "--out", str(tmp_path / "r.md")]]  # fmt: skip
    if damaged != "predictions/TinySTS_gold.json":  # only regress reads per-item files
        commands.append(["report", str(cand), "--out", str(tmp_path / "e.md")])
    if damaged == "run.json":  # the leaderboard reads scores only
        commands.append(["leaderboard", str(cand), "--out", str(tmp_path / "l.md")])
    for argv in commands:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert f"{target}:" in err and "damaged JSON" in err and "Traceback" not in err, (argv, err)
    assert target.read_text() == text


def test_regress_at_an_mrl_dim_tests_the_truncated_vectors(tiny_runs, tiny_root, tmp_path, capsys):
    """`--dim 64`: Δ and CI of the 64-dim prefixes (a model served at 64 dims), written out here with scipy from
    both runs' predictions/embed_dim_64/ and the same resamples; not the full width's. A run scored without the
    dim, or without its per-item outputs, is named, never silently compared at full width."""
    import zlib

    from scipy.stats import spearmanr

    from harness.runs import open_run

    cand = tmp_path / "short4"
    assert main(["run", "--tasks", "TinySTS", "--model", "minilm", "--data-dir", str(tiny_root), "--out",
                 str(tmp_path), "--run-name", "short4", "--no-progress", "--max-length", "4", "--dims", "64",
                 "--dim-predictions"]) == 0  # fmt: skip
    capsys.readouterr()
    code, text = _regress(tiny_runs["base"], cand, tmp_path / "r.md", "--dim", "64")
    (sts,) = compare(tiny_runs["base"], cand, n_boot=200, dim=64).tasks

    gold = np.asarray([json.loads(x)["score"] for x in (tiny_root / "en" / "TinySTS" / "test.jsonl").read_text()
                       .splitlines()], dtype=float)  # fmt: skip

    def sims(run: Path) -> np.ndarray:
        preds = json.loads((run / "predictions" / "embed_dim_64" / "TinySTS_predictions.json").read_text())
        return np.asarray(preds["default"]["test"]["cosine_scores"], dtype=float)

    ref, new = sims(tiny_runs["base"]), sims(cand)
    rng, deltas = np.random.default_rng([0, zlib.crc32(b"TinySTS")]), []
    for _ in range(200):
        idx = rng.integers(0, len(gold), len(gold))
        deltas.append(spearmanr(gold[idx], new[idx])[0] - spearmanr(gold[idx], ref[idx])[0])
    delta = spearmanr(gold, new)[0] - spearmanr(gold, ref)[0]
    # Δ is of the dim result files' scores, which mteb rounds to 6 decimals (each within 5e-7 of the items' exact
    # recomputation); the CI ends are quantiles of the resamples, computed from the items exactly.
    assert sts.delta == pytest.approx(delta, abs=1e-6) and sts.n == len(gold)
    assert (sts.lo, sts.hi) == pytest.approx(tuple(np.quantile(deltas, [0.025, 0.975])), abs=1e-12)
    full = open_run(cand).read_run()["tasks"]["TinySTS"]["main_score"]
    assert sts.cand == open_run(cand).dim_scores("TinySTS")[64] != pytest.approx(full, abs=1e-6)
    assert code == (1 if sts.verdict == "regressed" else 0) and "## Scores (main score ×100, at MRL dim 64)" in text
    assert "- scores at MRL dim 64: the first 64 dimensions of each embedding, L2-renormalised" in text

    # the candidate scored at full width only: exit 2 naming it and the fix
    assert _regress(tiny_runs["base"], tiny_runs["short"], tmp_path / "r2.md", "--dim", "64")[0] == 2
    err = capsys.readouterr().err
    assert f"--dim 64: no task has a result at MRL dim 64 in both runs ({tiny_runs['short']})" in err
    assert "harness run --dims 64 --dim-predictions" in err
    assert _regress(tiny_runs["base"], cand, tmp_path / "r3.md", "--dim", "0")[0] == 2
    # scored at the dim without its per-item outputs (no --dim-predictions): not tested, saying which flag
    shutil.rmtree(cand / "predictions" / "embed_dim_64")
    (sts,) = compare(tiny_runs["base"], cand, n_boot=20, dim=64).tasks
    assert sts.verdict == "not tested" and "--dims 64 --dim-predictions" in sts.reason and not sts.lo


def test_retrieval_items_read_each_ranking_down_to_k_only():
    """The per-query scorer hands pytrec_eval only the documents that can rank in a query's top k (mteb keeps up to
    1,000 per query; SQuADRetrieval's file is 119 MB): every measure's per-query value equals pytrec_eval's on the
    whole ranking, with scores rounded to one decimal so that ties at the k-th score are the rule."""
    import pytrec_eval

    from reporting.items import PYTREC, _retrieval

    rng = np.random.default_rng(0)
    qrels = {f"q{i}": {f"d{j}": int(rng.integers(1, 3)) for j in rng.choice(200, 5, replace=False)} for i in range(60)}
    out = {q: {f"d{j}": float(np.round(rng.random(), 1)) for j in range(200)} for q in qrels}
    for base, (measure, key) in PYTREC.items():
        for k in (1, 3, 10, 1000):
            items = _retrieval(qrels, out, f"{base}_{k}")
            whole = pytrec_eval.RelevanceEvaluator(qrels, {f"{measure}.{k}"}).evaluate(out)
            assert [items.score(np.asarray([i])) for i in range(len(items.keys))] == [
                whole[q][f"{key}_{k}"] for q in items.keys], (base, k)  # fmt: skip
