"""Two runs are paired item by item only when they hold the same items: positional items ("0", "1", ...) in the
same order with the same gold, queries under the same id with the same relevance judgements. Before, a candidate
holding the same rows in another order (each run's own score unchanged) was paired to the wrong items: STS16's
CI widened from [-4.38, +2.32] to [-21.03, +19.65], with a verdict and exit 0."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from reporting import ablation
from reporting.regress import compare


def _reordered(run: Path, task: str, out: Path) -> Path:
    """A copy of ``run`` whose ``task`` lists its items in another order, predictions and gold together: the
    task's score is the same, as when another loader orders the same rows differently."""
    shutil.copytree(run, out)
    preds_file, gold_file = out / "predictions" / f"{task}_predictions.json", out / "predictions" / f"{task}_gold.json"
    preds, gold = json.loads(preds_file.read_text()), json.loads(gold_file.read_text())
    n = len(gold["gold"])
    order = np.random.default_rng(0).permutation(n)
    gold["gold"] = [gold["gold"][i] for i in order]
    split = preds["default"]["test"]
    if isinstance(split, dict):  # per-pair similarities
        preds["default"]["test"] = {k: [v[i] for i in order] if isinstance(v, list) and len(v) == n else v
                                    for k, v in split.items()}  # fmt: skip
    else:  # per-experiment predicted labels
        preds["default"]["test"] = [[experiment[i] for i in order] for experiment in split]
    preds_file.write_text(json.dumps(preds))
    gold_file.write_text(json.dumps(gold))
    return out


@pytest.mark.parametrize("task", ["TinySTS", "TinyClassification"])
def test_the_same_items_in_another_order_are_not_paired_by_position(tiny_runs, tmp_path, task):
    cand = _reordered(tiny_runs["batch8"], task, tmp_path / "cand")
    (tv,) = compare(tiny_runs["base"], cand, n_boot=50, tasks=[task]).tasks
    assert tv.verdict == "not tested" and tv.lo is None
    assert tv.reason.startswith("items differ in order or content: the runs' gold labels are not the same list")
    (same,) = compare(tiny_runs["base"], tiny_runs["batch8"], n_boot=50, tasks=[task]).tasks
    assert same.verdict == "within noise" and tv.cand == same.cand  # the reordered run's own score is unchanged


def test_a_query_id_naming_another_query_is_not_paired(tiny_runs, tmp_path):
    """Queries are paired by id; an id that names another query in the other run (other relevance judgements)
    would pair two unrelated queries."""
    cand = tmp_path / "cand"
    shutil.copytree(tiny_runs["short"], cand)
    preds_file = cand / "predictions" / "TinyRetrieval_predictions.json"
    gold_file = cand / "predictions" / "TinyRetrieval_gold.json"
    preds, gold = json.loads(preds_file.read_text()), json.loads(gold_file.read_text())
    first, second = sorted(gold["gold"])[:2]
    assert gold["gold"][first] != gold["gold"][second]
    swap = {first: second, second: first}
    gold["gold"] = {swap.get(q, q): docs for q, docs in gold["gold"].items()}
    preds["default"]["test"] = {swap.get(q, q): docs for q, docs in preds["default"]["test"].items()}
    preds_file.write_text(json.dumps(preds))
    gold_file.write_text(json.dumps(gold))
    (tv,) = compare(tiny_runs["base"], cand, n_boot=50, tasks=["TinyRetrieval"]).tasks
    assert tv.verdict == "not tested"
    assert tv.reason == ("items differ in order or content: 2 of the 10 shared query ids have other relevance "
                         f"judgements in another run (first: {first})")  # fmt: skip


def test_ablation_does_not_pair_runs_holding_other_items(tiny_runs, tmp_path):
    """ablate's compare paired by position with no check at all."""
    cand = _reordered(tiny_runs["batch8"], "TinySTS", tmp_path / "cand")
    row = ablation.compare({0: str(tiny_runs["base"])}, {0: str(cand)}, "TinySTS", 50, 0)
    assert row["lo"] is None and row["resamples"] is None
    assert row["reason"].startswith("not tested: items differ in order or content")
    same = ablation.compare({0: str(tiny_runs["base"])}, {0: str(tiny_runs["batch8"])}, "TinySTS", 50, 0)
    assert same["lo"] <= same["delta"] <= same["hi"] and same["items"] == 80
