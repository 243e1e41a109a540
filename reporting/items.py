"""Per-item data of a finished task, and how to recompute its main score on any resample of the items.

A run's predictions/<Task>_predictions.json holds mteb's per-item outputs (pair similarities, per-query document
scores, per-experiment predicted labels, cluster assignments, nearest neighbours), and predictions/<Task>_gold.json
the gold side of the same items as the run scored them (written by the runner, harness/gold.py), so nothing is
re-read from the task's data. Each scorer computes the main metric with the function mteb itself uses (scipy
correlations, sklearn AP / V-measure, mteb's threshold searches, pytrec_eval per-query measures), and every
scorer is checked to reproduce the run's recorded main score on all items before it is trusted.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.errors import DataError
from harness.runs import RunDir

REPRODUCE_TOL = 1e-4
# PairClassification / STS prefixes → the key of mteb's per-pair outputs and whether higher means more similar.
SIMILARITIES = {
    "similarity": ("similarity_scores", True), "cosine": ("cosine_scores", True),
    "manhattan": ("manhattan_distances", False), "euclidean": ("euclidean_distances", False),
    "dot": ("dot_scores", True),
}  # fmt: skip
PYTREC = {"ndcg_at": ("ndcg_cut", "ndcg_cut"), "map_at": ("map_cut", "map_cut"), "recall_at": ("recall", "recall"),
          "precision_at": ("P", "P")}  # fmt: skip


class NotTestable(Exception):
    """The task has no usable per-item data; the message says why (shown as 'not tested: ...')."""


class OtherItems(NotTestable):
    """The runs scored other items (gold labels or item texts that differ as collections, not only in order; other
    judgements under a query id): their scores do not compare, whatever their recorded data identities say."""


@dataclass
class TaskItems:
    """Item keys (pair index, query id, ...), each item's gold as JSON (its score, label or relevance judgements:
    two runs' items are the same only when their gold is, and their text digests where both runs keep them,
    ``paired_positions``) and a function from item positions to the task's main score."""

    keys: list[str]
    gold: list[str]
    score: Callable[[np.ndarray], float]
    unit: str
    metric: str = ""  # the main metric the scores are of
    digests: list[str] | None = None  # positional items' text digests (gold file's `items`); None in older files

    @property
    def keyed(self) -> bool:
        """Items named by an id of the data (queries); the others are named by their position ("0", "1", ...)."""
        return self.unit == "queries"


def _by_position(gold: list[Any], score: Callable[[np.ndarray], float], unit: str) -> TaskItems:
    """Items named by their position in the evaluation split, as mteb's per-item outputs list them."""
    return TaskItems([str(i) for i in range(len(gold))], [json.dumps(g) for g in gold], score, unit)


def paired_positions(runs: list[TaskItems]) -> tuple[list[str], list[np.ndarray]]:
    """The items every run holds (in the first run's order) and each run's positions of them, for a paired
    resample. Items named by position are one list: unless every run holds the same items in the same order,
    item i of one run need not be item i of another (another loader order, other rows), and pairing them by
    position would compare unrelated items. Equal gold labels do not show that (two same-label items swapped,
    other rows with the same labels; BitextMining keeps no labels), so runs whose gold files carry item text
    digests (harness/gold.py) must agree on those too; older gold files are held to their labels alone. Items
    named by id (queries) must carry the same relevance judgements under the same id. Raises NotTestable naming
    the first difference."""
    first = runs[0]
    if not first.keyed:
        digests = [r.digests for r in runs if r.digests is not None]
        for other in digests[1:]:
            _same_list(digests[0], other, "item texts", first.unit)
        for other in runs[1:]:
            _same_list(first.gold, other.gold, "gold labels", first.unit)
        everything = np.arange(len(first.keys))
        return first.keys, [everything] * len(runs)
    golds = [dict(zip(r.keys, r.gold, strict=True)) for r in runs]
    keys = [k for k in first.keys if all(k in g for g in golds)]
    differ = [k for k in keys if any(g[k] != golds[0][k] for g in golds[1:])]
    if differ:
        judged = [sorted(json.dumps(g[k], sort_keys=True) for k in keys) for g in golds]
        kind = NotTestable if all(j == judged[0] for j in judged[1:]) else OtherItems  # ids swapped, or other items
        raise kind(f"items differ in {'order' if kind is NotTestable else 'content'}: {len(differ)} of the "
                   f"{len(keys)} shared query ids have other relevance judgements in another run (first: "
                   f"{differ[0]})")  # fmt: skip
    where = [{k: i for i, k in enumerate(r.keys)} for r in runs]
    return keys, [np.asarray([w[k] for k in keys], dtype=int) for w in where]


def _same_list(first: list[str], other: list[str], what: str, unit: str) -> None:
    """Two runs' per-item lists of positional items; raises NotTestable at the first position they differ."""
    if other == first:
        return
    at = next((i for i, (a, b) in enumerate(zip(first, other, strict=False)) if a != b), None)
    where = f"first difference at item {at}" if at is not None else "one list is the other's start"
    if sorted(first) != sorted(other):  # other items, not the same ones in another order (stop 54, audit)
        raise OtherItems(f"items differ in content: the runs' {what} are not the same collection ({len(first)} and "
                         f"{len(other)} {unit}, {where})")  # fmt: skip
    raise NotTestable(f"items differ in order: the runs' {what} are the same collection in another order "
                      f"({len(first)} {unit}, {where})")  # fmt: skip


def listed_dims(record: dict[str, Any]) -> list[int]:
    """The MRL dims a task's run.json record says it was scored at: a result file of one that is gone is a damaged
    file, not a dim the run lacks."""
    return (record.get("identity") or {}).get("dims") or []


def rerun_dims(dims: list[int], dim: int) -> str:
    """The --dims a rerun that adds per-item outputs at ``dim`` is to give: the run's own ``dims`` too, since a rerun
    scores only the dims it names (before stop 64 the hint said `--dims 256` to a run scored at 64,128,256: a user's
    walk)."""
    return ",".join(map(str, sorted({*dims, dim})))


def at_dim(run: RunDir, name: str, record: dict[str, Any], dim: int | None) -> dict[str, Any]:
    """The task's run.json ``record`` with its main score at MRL ``dim`` (from that dim's result file; None: the
    full width, ``record`` as it is); raises NotTestable when the run has no result at that dim, DataError when its
    task identity lists the dim but the result file is missing or damaged (`RunDir.result_dims` skips such a file:
    before stop 46 a gate at that dim called the task "not tested" and passed)."""
    if dim is None:
        return record
    scores = run.dim_scores(name, record)
    if dim not in scores and dim in listed_dims(record):
        raise DataError(run.result_path(name, dim), 0, f"{name}'s result at MRL dim {dim}, which run.json lists, is "
                        f"missing or not JSON; `harness run` into {run.path} evaluates {name} again")  # fmt: skip
    if dim not in scores:
        # the width's own note only where it can be why: regress refuses a dim at a recorded width before this
        width = (run.read_run().get("model") or {}).get("embed_dim")
        why = "" if isinstance(width, int) and dim != width else (
            "; a dim equal to the model's width is its full score, not an MRL dim")  # fmt: skip
        raise NotTestable(f"{run.path}: {name} has no result at MRL dim {dim} (dims there: {sorted(scores)}{why})")
    return {**record, "main_score": scores[dim]}


_RERUN = "; remove it and `harness run` into {run} evaluates {task} again"


def task_items(run: RunDir, name: str, record: dict[str, Any], dim: int | None = None, side: str = "") -> TaskItems:
    """The per-item scorer for one task of one run (``dim``: at that MRL dim, whose main score ``record`` then
    holds; ``side``: the run's part in the comparison, "baseline", named where a file is missing); raises
    NotTestable with the reason when there is none, DataError naming the files when they are JSON of another layout
    than the harness writes (before stop 36 a traceback that ended the whole comparison) or are missing from a task
    the harness recorded finished with them (`_lost_items`)."""
    _lost_items(run, name, record, dim, side)
    try:
        return _task_items(run, name, record, dim, side)
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as exc:
        raise DataError(run.predictions_path(name, dim), 0, f"this file or {run.gold_path(name).name} beside it "
                        f"holds JSON of another layout than `harness run` writes ({type(exc).__name__}: {exc}); "
                        f"remove them and `harness run` into {run.path} evaluates {name} again") from exc  # fmt: skip


def _lost_items(run: RunDir, name: str, record: dict[str, Any], dim: int | None, side: str = "") -> None:
    """Raises DataError naming the per-item files this comparison reads (predictions at ``dim``, gold) that are
    missing from a task whose run.json ``record`` holds an identity. Every `harness run` that records one keeps
    the task's predictions with its result and evaluates a task without them (or its gold) again
    (`RunDir.missing_items`), so they were lost, not never written: a *damaged file*, as a truncated one is. Before
    stop 66 such a task was *not tested*, which passes a gate: a baseline that lost one file passed every night
    whatever the candidate scored (a user's walk). A record without an identity, from before the harness kept
    these files, is not tested (`_task_items`); a dim's predictions are kept only with --dim-predictions, which
    run.json does not record, so a missing one is not tested either."""
    if record.get("identity") is None:
        return
    lost = [p for p in run.missing_items(name) if p in (run.predictions_path(name, dim), run.gold_path(name))]
    if lost:
        also = f" (so is {lost[1].name} beside it)" if len(lost) > 1 else ""
        raise DataError(lost[0], 0, f"missing{also} in {_run_named(run, side)}, whose run.json records {name} as "
                        f"finished with it; `harness run` into {run.path} evaluates {name} again (run.json has the "
                        "command; a warm embedding cache makes it quick)")  # fmt: skip


def _run_named(run: RunDir, side: str) -> str:
    """'the baseline (runs/base)', or the run's folder alone where the caller has no side (an ablation's run)."""
    return f"the {side} ({run.path})" if side else str(run.path)


def _task_items(run: RunDir, name: str, record: dict[str, Any], dim: int | None, side: str) -> TaskItems:
    preds = run.load_predictions(name, dim)
    if preds is None:  # a record from before identities, or a dim kept without --dim-predictions (`_lost_items`)
        raise NotTestable(f"{_run_named(run, side)} keeps no predictions file for {name} "
                          f"({run.predictions_path(name, dim)}; " + (
                              "a run from before the harness recorded task identities): `harness run` into it "
                              "evaluates that task again" if dim is None else
                              f"kept only by `harness run --dims "
                              f"{rerun_dims(listed_dims(record) or run.read_run().get('dims') or [], dim)} "
                              "--dim-predictions`): rerun the task with them"))  # fmt: skip
    gold = run.load_gold(name)
    if gold is None:
        raise NotTestable(f"{_run_named(run, side)} keeps no gold labels for {name} ({run.gold_path(name)}; a run "
                          "from before the harness kept them in predictions/): `harness run` into it evaluates that "
                          "task again (run.json has the command; a warm embedding cache makes it quick)")  # fmt: skip
    if "reason" in gold:
        raise NotTestable(gold["reason"])
    scored = {(subset, split): out for subset, splits in preds.items() if subset != "mteb_model_meta"
              for split, out in splits.items()}  # fmt: skip
    parts = gold.get("parts") or [gold]  # several subsets, splits or cluster sets; or the one part
    named = {(part["subset"], part["split"]) for part in parts}
    if set(scored) != named:  # before stop 59 "not tested", which passes a gate: a `{}` file passed it
        raise DataError(run.predictions_path(name, dim), 0, f"predictions of {_listed(set(scored))} but gold labels "
                        f"of {_listed(named)} ({run.gold_path(name).name}){_RERUN.format(run=run.path, task=name)}")
    kind, metric = gold["type"], record.get("main_metric") or gold["main_score"]
    if kind not in BUILDERS:
        raise NotTestable(f"{kind} tasks: no per-item resampling")
    if "parts" in gold and kind == "Clustering":
        _check_cluster_sets(parts, scored)
    built = [_part_items(run, name, kind, metric, part, scored[part["subset"], part["split"]]) for part in parts]
    items = built[0] if len(built) == 1 else _in_parts(parts, built)
    full = items.score(np.arange(len(items.keys)))
    recorded = record.get("main_score")
    if recorded is None or not np.isfinite(recorded):  # nothing to reproduce (regress fails a NaN before this)
        raise NotTestable(f"per-item recomputation of {metric} gives {full:.4f}, the run recorded {recorded}")
    if not abs(full - recorded) <= REPRODUCE_TOL:  # a NaN recomputation reproduces nothing either
        raise DataError(run.predictions_path(name, dim), 0, f"per-item recomputation of {metric} gives {full:.4f}, "
                        f"the run recorded {recorded}: the file does not hold the outputs that score was computed "
                        f"from{_RERUN.format(run=run.path, task=name)}")  # fmt: skip
    items.metric = metric
    return items


def _listed(parts: set[tuple[str, str]]) -> str:
    return ", ".join(f"{subset}/{split}" for subset, split in sorted(parts)) or "nothing"


def _part_items(run: RunDir, name: str, kind: str, metric: str, part: dict[str, Any], out: Any) -> TaskItems:
    """One part's items: a cluster set of a split scored in sets reads its own assignment (``set``), or none when
    mteb scored it 1.0."""
    if "set" in part:
        if part["set"] is None:  # one label: mteb's v_measure is 1.0 whatever is drawn
            items = _by_position(part["gold"], lambda idx: 1.0, "documents")
        else:
            items = _clustering(part["gold"], [out[part["set"]]], metric)
    else:
        items = BUILDERS[kind](part["gold"], out, metric)
    digests = part.get("items")
    if digests is not None and len(digests) != len(items.keys):
        where = f" of {part['subset']}/{part['split']}" if "type" not in part else ""  # a part of several
        raise DataError(run.gold_path(name), 0, f"{name}'s gold file digests {len(digests)} items{where}, its "
                        f"predictions hold {len(items.keys)}{_RERUN.format(run=run.path, task=name)}")  # fmt: skip
    items.digests = digests
    return items


def _check_cluster_sets(parts: list[dict[str, Any]], scored: dict[tuple[str, str], Any]) -> None:
    """Each split's saved assignments are its clustered sets, one each (else set i would read another's)."""
    for (subset, split), out in scored.items():
        clustered = sum(p.get("set") is not None for p in parts if (p["subset"], p["split"]) == (subset, split))
        if len(out) != clustered:
            raise NotTestable(f"{subset}/{split}: {len(out)} cluster assignments saved for {clustered} clustered "
                              "sets")  # fmt: skip


def _in_parts(parts: list[dict[str, Any]], built: list[TaskItems]) -> TaskItems:
    """The items of a task scored in parts, as one list: mteb's main score is the mean over the evaluated (subset,
    split)s (TaskResult.get_score), a legacy clustering split's the mean over its cluster sets, so a resample is
    scored part by part on the items drawn from each and averaged so. Items are named by part, then key."""
    bounds = np.cumsum([0, *(len(items.keys) for items in built)])
    groups: dict[tuple[str, str], list[int]] = {}
    for i, part in enumerate(parts):
        groups.setdefault((part["subset"], part["split"]), []).append(i)

    def part_score(i: int, idx: np.ndarray) -> float:
        local = idx[(idx >= bounds[i]) & (idx < bounds[i + 1])] - bounds[i]
        return built[i].score(local) if len(local) else float("nan")  # no item of the part drawn: undefined

    def score(idx: np.ndarray) -> float:
        return float(np.mean([np.mean([part_score(i, idx) for i in members]) for members in groups.values()]))

    names = [f"{p['subset']}/{p['split']}" + (f"/set{p['set']}" if "set" in p else "") for p in parts]
    keys = [f"{n}/{k}" for n, items in zip(names, built, strict=True) for k in items.keys]
    gold = [g for items in built for g in items.gold]
    digests = None if any(items.digests is None for items in built) else [d for items in built for d in items.digests]
    return TaskItems(keys, gold, score, built[0].unit, digests=digests)


def _sts(gold_scores: list[float], out: dict[str, Any], metric: str) -> TaskItems:
    from scipy.stats import pearsonr, spearmanr

    prefix, _, corr = metric.rpartition("_")
    key = SIMILARITIES.get(prefix or "similarity", (None,))[0]
    if corr not in ("pearson", "spearman") or key is None:
        raise NotTestable(f"main metric {metric} not supported")
    values = out.get(key) if out.get(key) is not None else out["cosine_scores"]  # mteb: no model similarity → cosine
    sims, gold = np.asarray(values, dtype=float), np.asarray(gold_scores, dtype=float)
    fn = spearmanr if corr == "spearman" else pearsonr
    return _by_position(gold_scores, lambda idx: float(fn(gold[idx], sims[idx])[0]), "pairs")


def _pairs(gold_labels: list[int], out: dict[str, Any], metric: str) -> TaskItems:
    from mteb.abstasks import AbsTaskPairClassification
    from sklearn.metrics import average_precision_score

    mteb_task = AbsTaskPairClassification  # its threshold searches use no task state (mteb marks them PLR6301)
    labels = np.asarray(gold_labels, dtype=np.int64)
    prefix, _, name = metric.partition("_")
    fns = list(SIMILARITIES) if prefix == "max" else [prefix]
    if any(f not in SIMILARITIES for f in fns) or name not in ("ap", "accuracy", "f1", "precision", "recall"):
        raise NotTestable(f"main metric {metric} not supported")
    sims = {f: (np.asarray(out[SIMILARITIES[f][0]], dtype=float), SIMILARITIES[f][1]) for f in fns}

    def one(f: str, idx: np.ndarray) -> float:
        scores, high = sims[f]
        s, y = scores[idx], labels[idx]
        if name == "ap":
            return float(average_precision_score(y, s * (1 if high else -1)))
        if name == "accuracy":
            return float(mteb_task._find_best_acc_and_threshold(None, s, y, high)[0])
        f1, precision, recall, _ = mteb_task._find_best_f1_and_threshold(None, s, y, high)
        return float({"f1": f1, "precision": precision, "recall": recall}[name])

    return _by_position(gold_labels, lambda idx: max(one(f, idx) for f in fns), "pairs")


def _classification(gold_labels: list[str], out: list[list[Any]], metric: str) -> TaskItems:
    gold = np.asarray(gold_labels)
    if metric != "accuracy":
        raise NotTestable(f"main metric {metric} is not a per-item mean")
    if not out or any(len(exp) != len(gold) for exp in out):
        raise NotTestable("predictions do not cover the evaluation split item by item")
    correct = np.mean([np.asarray([str(v) for v in exp]) == gold for exp in out], axis=0)  # over experiments
    return _by_position(gold_labels, lambda idx: float(correct[idx].mean()), "items")


def _clustering(gold_labels: list[Any], out: list[list[Any]], metric: str) -> TaskItems:
    """Documents are resampled with their cluster assignment fixed: the CI covers sampling, not k-means."""
    from sklearn.metrics.cluster import v_measure_score

    if metric != "v_measure" or len(out) != 1:
        raise NotTestable(f"clustering scored by {metric} or with {len(out)} cluster assignments for one set: no "
                          "per-document resampling")  # fmt: skip
    gold, pred = np.asarray(gold_labels), np.asarray(out[0])
    if len(gold) != len(pred):
        raise NotTestable("cluster assignments do not cover the documents one to one")
    return _by_position(gold_labels, lambda idx: float(v_measure_score(gold[idx], pred[idx])), "documents")


def _retrieval(qrels: dict[str, dict[str, int]], out: dict[str, dict[str, float]], metric: str) -> TaskItems:
    import pytrec_eval

    base, _, k = metric.rpartition("_")
    if base not in PYTREC or not k.isdigit():
        raise NotTestable(f"main metric {metric} has no per-query pytrec_eval measure here")
    measure, key = PYTREC[base]
    run = {str(q): {str(d): float(s) for d, s in _top(docs, int(k)).items()} for q, docs in out.items()}
    per_query = pytrec_eval.RelevanceEvaluator(qrels, {f"{measure}.{k}"}).evaluate(run)
    keys = sorted(per_query)
    values = np.asarray([per_query[q][f"{key}_{k}"] for q in keys], dtype=float)
    gold = [json.dumps(qrels[q], sort_keys=True) for q in keys]
    return TaskItems(keys, gold, lambda idx: float(values[idx].mean()), "queries")


def _top(docs: dict[str, float], k: int) -> dict[str, float]:
    """The documents that can rank in a query's top k: every measure here reads the ranking down to k only (and
    its relevant count from the qrels), so the rest of mteb's ranked list (often 1,000 per query) only costs time.
    Ties at the k-th score are all kept, so pytrec_eval breaks them as it would on the whole list."""
    if len(docs) <= k:
        return docs
    kth = heapq.nlargest(k, docs.values())[-1]
    return {d: s for d, s in docs.items() if s >= kth}


def _bitext(_gold: None, out: dict[str, list[dict[str, Any]]], metric: str) -> TaskItems:
    """Sentence i translates sentence i: the gold pairs are the positions themselves."""
    from mteb.abstasks import AbsTaskBitextMining

    if len(out) != 1:
        raise NotTestable("several language pairs: per-item pairing not supported")
    neighbours = next(iter(out.values()))

    def score(idx: np.ndarray) -> float:
        metrics = AbsTaskBitextMining._compute_metrics(None, [neighbours[i] for i in idx],  # uses no task state
                                                       [(int(i), int(i)) for i in idx])  # fmt: skip
        return float(metrics[metric])

    return _by_position([None] * len(neighbours), score, "sentences")


BUILDERS: dict[str, Callable[[Any, Any, str], TaskItems]] = {
    "STS": _sts, "PairClassification": _pairs, "Classification": _classification, "Clustering": _clustering,
    "Retrieval": _retrieval, "Reranking": _retrieval, "BitextMining": _bitext,
}  # fmt: skip
