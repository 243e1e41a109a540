"""Task resolution: each name becomes an mteb AbsTask from the official source, a local mirror, or MISSING.

Mirrors of an mteb task reuse mteb's own task class (same evaluator, same settings as the published number)
with the local rows injected; local tasks without an mteb twin get a generic subclass of the mteb AbsTask for
their type. Either way mteb scores them: we never re-implement a metric.
"""

from __future__ import annotations

import logging
import math
import socket
import threading
import time
import warnings
from contextlib import nullcontext, suppress
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple

import mteb
from datasets import Dataset, DatasetDict
from mteb.abstasks import (
    AbsTask,
    AbsTaskBitextMining,
    AbsTaskClassification,
    AbsTaskClusteringLegacy,
    AbsTaskPairClassification,
    AbsTaskRetrieval,
    AbsTaskSTS,
)
from mteb.abstasks.aggregated_task import AbsTaskAggregate
from mteb.abstasks.retrieval_dataset_loaders import RetrievalSplitData
from mteb.abstasks.task_metadata import TaskMetadata

from harness.data import (
    LocalTask,
    first_line,
    judged_queries,
    read_qrels,
    read_rows,
    row_count,
    warn,
    warn_test_texts_in_train,
)
from harness.env import go_offline, hub_off, hub_offline
from harness.errors import DataError
from harness.runs import MIRROR, MISSING, OFFICIAL
from harness.validate import NOT_PREPARED, key_line, label_kind, lang_script, prepared_copy_problem

log = logging.getLogger(__name__)


# task.json main scores that are spelled differently in mteb 2.x.
MAIN_SCORE_ALIASES = {"map": "map_at_1000", "mrr": "mrr_at_10"}
# How a mirror's rows become mteb's dataset, per task type: bumped by hand when that changes a score (stop 48:
# clustering sets, reranking rows without negatives left out), and kept in each finished task's data identity
# (harness.identity.data_identity), so a rerun after the change evaluates the task again. Before (audit) a rerun
# kept the old code's score. tests/harness/test_mirror_code_guard.py trips on any change of that code.
MIRROR_LAYOUT = {"Clustering": 2, "Reranking": 2}


def mirror_identity(local: LocalTask) -> str:
    """A mirror's data as its scores depend on it: the hash of its files and, above 1, its type's MIRROR_LAYOUT
    (absent at 1, so results of unchanged types stay). `harness run`'s identity and `harness ablate`'s evaluation
    settings both key by it."""
    layout = MIRROR_LAYOUT.get(local.type, 1)
    return local.files_identity() + (f" layout={layout}" if layout > 1 else "")
BASES: dict[str, type[AbsTask]] = {
    "STS": AbsTaskSTS,
    "PairClassification": AbsTaskPairClassification,
    "Classification": AbsTaskClassification,
    "Clustering": AbsTaskClusteringLegacy,
    "Reranking": AbsTaskRetrieval,
    "Retrieval": AbsTaskRetrieval,
    "BitextMining": AbsTaskBitextMining,
}


@dataclass
class ResolvedTask:
    """A task name with where its data comes from; `task` is None only for MISSING."""

    name: str
    source: str
    type: str | None = None
    task: AbsTask | None = None
    local: LocalTask | None = None
    reason: str = ""
    broken: bool = False  # MISSING because its folder in the data root is broken: a failure, not coverage
    prepared: bool = False  # OFFICIAL read from the datasets cache's prepared copy (not downloaded)

    def load(self) -> AbsTask:
        """Load the task's data now (mirrors are parsed and validated here), so loading is timed on its own."""
        if self.task is None and self.local is not None:
            self.task = build_mirror(self.local)
        if self.task is None:
            raise RuntimeError(f"task {self.name} is missing: {self.reason}")
        if not self.task.data_loaded and self.source == OFFICIAL:
            load_official(self.task, self.prepared)
        elif not self.task.data_loaded:
            self.task.load_data()
        return self.task

    def record(self) -> dict[str, Any]:
        """What run.json stores about this task's provenance."""
        rec: dict[str, Any] = {"source": self.source, "type": self.type}
        if self.local is not None:
            rec.update(
                path=str(self.local.path),
                mteb_equivalent=self.local.mteb_equivalent,
                sampling=self.local.meta.get("sampling"),
                data_source=self.local.meta.get("source"),
                license=self.local.meta.get("license"),
            )
            coverage = official_coverage(self.local)
            if coverage is not None:
                rec["full_split"], rec["split_coverage"] = coverage
        if self.reason:
            rec["reason"] = self.reason
        return rec


@cache
def hub_reachable(timeout: float = 1.5) -> bool:
    """Decide once, up front, whether the HF hub can be reached, so nothing stalls in DNS retries later: ``timeout``
    seconds in all, the name's lookup included (`host_addresses`)."""
    if hub_offline():
        return False
    end = time.monotonic() + timeout
    for address in host_addresses("huggingface.co", 443, timeout):
        with suppress(OSError):
            if (left := end - time.monotonic()) > 0:
                socket.create_connection(address[:2], timeout=left).close()  # an address: no lookup again
                return True
    go_offline()
    return False


def host_addresses(host: str, port: int, timeout: float) -> list[tuple[Any, ...]]:
    """The socket addresses of ``host``, or none when the lookup fails or takes longer than ``timeout``: getaddrinfo
    runs in a daemon thread left behind at the deadline, since a socket's timeout bounds its connect only. Before
    stop 69 (a walk) a resolver that drops queries held the probe for its own timeouts, 5 s × tries, not 1.5 s."""
    found: list[list[tuple[Any, ...]]] = []

    def lookup() -> None:
        with suppress(OSError):
            found.append([info[4] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)])

    thread = threading.Thread(target=lookup, name=f"resolve {host}", daemon=True)
    thread.start()
    thread.join(timeout)
    return found[0] if found else []


def official_task(name: str) -> AbsTask | None:
    try:
        return mteb.get_task(name)
    except (KeyError, ValueError):
        return None


def datasets_cache_dir(task: AbsTask) -> Path:
    """Where `datasets` keeps the prepared (arrow) copy of a task's hub dataset: <cache>/<org>___<name>/."""
    import datasets.config
    from datasets.naming import camelcase_to_snakecase

    org, _, name = task.metadata.dataset["path"].rpartition("/")
    folder = f"{org}___{camelcase_to_snakecase(name)}" if org else camelcase_to_snakecase(name)
    return Path(datasets.config.HF_DATASETS_CACHE) / folder


def is_aggregate(task: AbsTask | None) -> bool:
    """Whether mteb scores the task as the mean of its subtasks (`task.tasks`), with no dataset of its own."""
    return isinstance(task, AbsTaskAggregate)


def official_problem(task: AbsTask) -> str:
    """'' when the revision mteb pins is prepared, whole, in the datasets cache and is what load_dataset reads offline
    (offline it never consults the hub download cache, so a bare `huggingface-cli download` is not enough), else
    why not, naming the dataset and revision: 'C-MTEB/AFQMC@b44c3b011063 is not prepared in the datasets cache'.
    An aggregate task (CQADupstackRetrieval: mteb scores its subtasks and averages) has no dataset of its own: it is
    ready when every subtask is, else the first subtask that is not is named (before stop 46: "aggregate tasks do
    not have a path@1 is not prepared", whatever its subtasks' state)."""
    if is_aggregate(task):
        problems = [(sub.metadata.name, official_problem(sub)) for sub in task.tasks]
        missing = [(name, problem) for name, problem in problems if problem]
        if not missing:
            return ""
        (name, problem), more = missing[0], len(missing) - 1
        return f"{problem} (its subtask {name}{f', and {more} more' if more else ''})"
    dataset = task.metadata.dataset
    problem = prepared_copy_problem(datasets_cache_dir(task), str(dataset.get("revision")))
    return f"{dataset['path']}@{str(dataset.get('revision'))[:12]} {problem}" if problem else ""


def load_official(task: AbsTask, prepared: bool) -> None:
    """mteb's own load_data; a prepared copy is read with the hub off (its revision is pinned: the hub has nothing
    to add). A failure names the dataset and where it was read from, not only an exception from inside `datasets`.
    An aggregate's data is its subtasks' (mteb.evaluate scores each of these objects and combines their results)."""
    if is_aggregate(task):
        for sub in task.tasks:
            load_official(sub, prepared)
        return
    dataset = task.metadata.dataset
    try:
        with hub_off() if prepared else nullcontext():
            task.load_data()
    except Exception as exc:
        where = f"its prepared copy in {datasets_cache_dir(task)}" if prepared else "the hub"
        raise DataError(dataset["path"], 0, f"revision {dataset.get('revision')} could not be loaded from {where} "
                        f"({type(exc).__name__}: {exc}); prepare it again (docs/harness.md, Official datasets "
                        "offline) or run the mirror (--source mirror)") from exc  # fmt: skip


def resolve(name: str, local_tasks: dict[str, LocalTask], source: str = "auto",
            official: AbsTask | None = None) -> ResolvedTask:  # fmt: skip
    """OFFICIAL if mteb knows the task and its pinned revision is prepared (whole, and what an offline load reads) or
    nothing is prepared and the hub is reachable, else MIRROR, else MISSING.

    `official`: the task as a benchmark selects it (its splits and subsets); by default mteb's whole task."""
    official = official if official is not None else official_task(name)
    local = local_tasks.get(name)
    if official is not None and local is not None and source != OFFICIAL and (clash := _name_clash(local, official)):
        return ResolvedTask(name, MISSING, local.type, reason=clash)
    problem = official_problem(official) if official is not None and source in ("auto", OFFICIAL) else ""
    if official is not None and source in ("auto", OFFICIAL):
        if not problem or (NOT_PREPARED in problem and hub_reachable()):
            return ResolvedTask(name, OFFICIAL, official.metadata.type, official, prepared=not problem)
    if local is not None and source in ("auto", MIRROR):
        if official is not None and (refused := _multilingual_twin(local, official) or
                                     _outside_selection(local, official)):  # fmt: skip
            return ResolvedTask(name, MISSING, local.type, reason=refused)
        if problem and NOT_PREPARED not in problem:  # something is prepared, but unusable: say why it is not read
            warn(f"{name}: official data not used ({problem}): the local mirror runs instead")
        return ResolvedTask(name, MIRROR, local.type, local=local)
    if official is None and local is None:
        reason = "unknown task"
    elif source == MIRROR:
        reason = "no local mirror (--source mirror)"
    elif official is None:
        reason = "not an mteb task, so no official data (--source official)"
    else:
        unreachable = " and the hub is unreachable" if NOT_PREPARED in problem else ""
        where = f"{problem}{unreachable}; see `harness list official`"
        reason = f"no local mirror and the hub is unreachable ({where})" if source != OFFICIAL and unreachable \
            else f"official data unavailable: {where}"  # fmt: skip
    return ResolvedTask(name, MISSING, official.metadata.type if official else None, reason=reason)


def _outside_selection(local: LocalTask, official: AbsTask) -> str:
    """Why a mirror's rows are not what a suite's benchmark scores of its task, else '': a benchmark that scores
    fewer splits than the task defines (MTEB(cmn, v1) scores ATEC's and BQ's test only) would otherwise get the
    mirror's validation rows in its summary and mean (before stop 48, audit)."""
    defined, selected = list(official.metadata.eval_splits), list(official.eval_splits)
    split = _split_name(local, defined) or (defined[0] if len(defined) == 1 else None)
    if split is None or defined == selected or split in selected:
        return ""
    return (f"{local.path / 'task.json'}: the mirror holds {local.name}'s {split} rows (eval_split "
            f"{local.meta.get('eval_split', 'test')!r}), but the suite's benchmark scores it on {', '.join(selected)} "
            "only; run it by --tasks (mteb's whole task) or give the mirror those rows")  # fmt: skip


def _name_clash(local: LocalTask, official: AbsTask) -> str:
    """Why a task folder named like an mteb task is not its mirror, else '': its scores would be recorded and ranked
    under mteb's name (beside the published number) though its rows are another task's, and `auto` would run either
    one depending on the cache. A mirror names itself as its mteb_equivalent and has the same type."""
    spec, kind = local.path / "task.json", official.metadata.type
    if local.mteb_equivalent != local.name:  # before stop 67 an absent key read "mteb_equivalent is None"
        given = ("sets no mteb_equivalent" if local.mteb_equivalent is None
                 else f"gives mteb_equivalent {local.mteb_equivalent!r}")  # fmt: skip
        return (f"{spec}: the folder takes the name of mteb's {kind} task {local.name} but task.json {given}: rename "
                f"the folder and its name, or set mteb_equivalent to {local.name!r} if it holds that task's "
                "data")  # fmt: skip
    if local.type != kind:
        return (f"{spec}: type {local.type!r}, but mteb's {local.name} (its mteb_equivalent) is a {kind} task: rename "
                "the folder and its name, or fix the type")  # fmt: skip
    return ""


def refused_mirror(local: LocalTask) -> str:
    """Why every run refuses this folder whatever the suite (its name is an mteb task's that it does not mirror, or
    a multilingual one's), else '': `harness list tasks` says so, where before stop 67 it said `ok`."""
    official = official_task(local.name)
    if official is None:
        return ""
    return _name_clash(local, official) or _multilingual_twin(local, official)


def _multilingual_twin(local: LocalTask, official: AbsTask) -> str:
    """Why a folder named as one of mteb's multilingual tasks cannot run as its mirror, else '': it would be scored
    by a generic class under mteb's name (before stop 48, audit). Asked only where the mirror would run, so
    `auto` still runs mteb's official data when that is ready."""
    if not official.metadata.is_multilingual:
        return ""
    subsets = list(official.metadata.eval_langs)
    return (f"{local.path / 'task.json'}: mteb's {local.name} is multilingual ({len(subsets)} subsets: "
            f"{', '.join(subsets[:4])}{', ...' if len(subsets) > 4 else ''}); a mirror of it is not scored by "
            "mteb's own class here (its sampling, experiments and main score per subset), so its score would "
            "not be mteb's under mteb's name: rename the folder and its name (a task of its own), or run "
            "--source official")  # fmt: skip


def mteb_twin(local: LocalTask) -> AbsTask | None:
    """mteb's own task for a mirror that names itself as its equivalent (same type, one language: `_multilingual_twin`
    refuses a folder named as a multilingual one where its mirror would run), else None."""
    twin = official_task(local.name) if local.mteb_equivalent == local.name else None
    if twin is not None and not twin.metadata.is_multilingual and twin.metadata.type == local.type:
        return twin
    return None


def mirror_main_score(local: LocalTask) -> str:
    """The main score a run of this mirror reports: its mteb twin's, else task.json's (mteb 2.x spelling)."""
    twin = mteb_twin(local)
    if twin is not None:
        return twin.metadata.main_score
    return MAIN_SCORE_ALIASES.get(local.meta["main_score"], local.meta["main_score"])


def build_mirror(local: LocalTask) -> AbsTask:
    """An mteb task that evaluates the local rows: mteb's own class when the mirror has an mteb twin."""
    twin = mteb_twin(local)
    if twin is not None:
        task = twin
        split = _pick_split(local, list(task.metadata.eval_splits))
        task.filter_eval_splits([split])
    else:
        task = _generic_task(local)
        split = task.eval_splits[0]
    task.dataset = _load_dataset(local, task, split)
    task.data_loaded = True
    return task


class Held(NamedTuple):
    """One file of a mirror held against one statistic of its mteb twin's split: the evaluation split, or (TRAIN)
    the split the twin trains its evaluator on."""

    file: str
    statistic: str
    split: str = "eval"


TRAIN = "train"
# What a mirror's task.json `counts` are held against in its twin's descriptive statistics (shipped with mteb), per
# task type; every other type compares test.jsonl's rows with `num_samples`. Classification samples its
# `samples_per_label` training rows from the train split: another train split is another score, so it is held too.
COVERAGE_STATS = {
    "Retrieval": (Held("queries.jsonl", "num_queries"), Held("corpus.jsonl", "num_documents")),
    "Reranking": (Held("test.jsonl", "num_queries"),),
    "Classification": (Held("test.jsonl", "num_samples"), Held("train.jsonl", "num_samples", TRAIN)),
}


def official_coverage(local: LocalTask) -> tuple[bool, str] | None:
    """(whether a mirror holds its mteb twin's whole data, 'test.jsonl 47 rows, mteb's test 1186'): task.json's
    counts (checked against the files), else the files' own row counts, against the twin's statistics for each
    split the score depends on (the evaluation split, and a classifier's train split). Before stop 35 only
    task.json's optional counts were read, so a sample without them was taken for the whole split. A known count
    that differs settles it (not whole) even when another is unknown (a statistic mteb lacks); None only when no
    count differs and one is unknown. A score on other rows is no
    peer of a published score on the official splits (the leaderboard ranks them apart); the text only gives the
    counts, since a mirror with other counts may be a sample of mteb's split or another split altogether
    (OnlineShopping: 2000 rows where mteb's test has 1000)."""
    twin = mteb_twin(local)
    if twin is None:
        return None
    splits = list(twin.metadata.eval_splits)
    split = _split_name(local, splits) or (splits[0] if len(splits) == 1 else None)
    names = {"eval": split, TRAIN: getattr(twin, "train_split", TRAIN)}
    stats = twin.metadata.descriptive_stats or {}
    held = COVERAGE_STATS.get(local.type, (Held("test.jsonl", "num_samples"),))
    given = local.meta.get("counts") or {}  # read_rows holds the files to these
    counts = {h.file: given[h.file] if h.file in given else row_count(local, h.file) for h in held}
    counts = {file: n for file, n in counts.items() if n is not None}
    official = {h: (stats.get(names[h.split]) or {}).get(h.statistic) if names[h.split] else None for h in held}
    known = [h for h in held if h.file in counts and isinstance(official[h], int)]
    parts = [f"{h.file} {counts[h.file]} rows, mteb's {names[h.split]} {official[h]}" for h in known]
    whole = all(counts[h.file] == official[h] for h in known)
    if not known or (whole and len(known) < len(held)):
        return None
    if whole and isinstance(twin, AbsTaskClusteringLegacy):  # its count is of all its sets' documents together
        sets = len(cluster_sets(read_rows(local, "test.jsonl")))
        if sets == 1:
            return False, "; ".join([*parts, LEGACY_SETS])
        parts.append(f"in {sets} cluster sets (mteb's statistics do not count its sets)")
    return whole, "; ".join(parts)


# Why a legacy clustering mirror of one set is never taken for mteb's split: mteb's AbsTaskClusteringLegacy clusters
# each row of its split (a set of documents) apart and averages the v-measures, and its statistics count the
# documents of all sets together; a mirror whose rows carry no `set` is one set of all its rows (`_load_dataset`),
# so even one holding every document scores otherwise whenever the split has more than one set. Rows that name
# their sets are taken for the split when the documents add up (the statistics give no number of sets to check).
LEGACY_SETS = ("scored as one set of all rows, where mteb's legacy clustering averages over the split's sets "
               "(give each row its `set` to mirror them)")


def _split_name(local: LocalTask, official_splits: list[str]) -> str | None:
    """The twin's split that task.json's eval_split names (`dev` finds `validation`), or None."""
    local_split = local.meta.get("eval_split", "test")
    if local_split in official_splits:
        return local_split
    if local_split == "dev" and "validation" in official_splits:
        return "validation"
    return None


def _pick_split(local: LocalTask, official_splits: list[str]) -> str:
    """The twin's split that task.json's eval_split names (`dev` finds `validation`). A twin with one split takes the
    rows under that split, noted in the run's warnings.log (IFlyTek and TNews of ../shared/data: FewCLUE's "test", a
    subset of the CLUE dev set, is mteb's "validation"); with several, guessing could record the rows under another
    split: an error."""
    named = _split_name(local, official_splits)
    if named is not None:
        return named
    local_split = local.meta.get("eval_split", "test")
    spec = local.path / "task.json"
    given = "eval_split" if "eval_split" in local.meta else "eval_split (default 'test')"
    if len(official_splits) == 1:  # a naming difference, not a problem: noted in the run's warnings.log
        warnings.warn(f"{spec}: {given} {local_split!r} is no split of mteb's {local.name}; its rows are scored and "
                      f"recorded as its only split {official_splits[0]!r}", UserWarning, stacklevel=2)  # fmt: skip
        return official_splits[0]
    at = key_line(spec, "eval_split")
    raise DataError(spec, at, f"{given} {local_split!r} is no split of mteb's {local.name}: it has "
                              f"{', '.join(official_splits)}")  # fmt: skip


def _generic_task(local: LocalTask) -> AbsTask:
    base = BASES[local.type]
    # task.json's codes are validated; a folder without them is named by its language folder (multi/: English)
    langs = sorted({lang_script(code) or "eng-Latn" for code in local.languages})
    main_score = mirror_main_score(local)
    metadata = TaskMetadata(
        name=local.name,
        description=f"Local task from {local.path} ({local.meta.get('sampling') or 'no sampling note'})",
        reference=None,
        dataset={"path": str(local.path), "revision": "local"},
        type=local.type,
        category="t2t",
        modalities=["text"],
        eval_splits=[local.meta.get("eval_split", "test")],  # the split the rows are (SQuAD's are dev)
        eval_langs=langs,
        main_score=main_score,
        license="not specified",
    )
    attrs: dict[str, Any] = {"metadata": metadata, "load_data": _noop_load}
    if local.type == "STS":
        lo, hi = local.meta.get("score_range", [0, 5])
        attrs.update(min_score=lo, max_score=hi)
    return type(local.name.replace("-", "_"), (base,), attrs)()


def _noop_load(self: AbsTask, *args: Any, **kwargs: Any) -> None:
    """Data is injected by build_mirror; mteb must never try the hub for a local task."""


def _load_dataset(local: LocalTask, task: AbsTask, split: str) -> Any:
    kind = local.type
    if kind in ("STS", "PairClassification", "BitextMining"):
        rows = read_rows(local, "test.jsonl")
        cols: dict[str, list[Any]] = {"sentence1": [r["sentence1"] for r in rows],
                                      "sentence2": [r["sentence2"] for r in rows]}  # fmt: skip
        if kind == "STS":
            cols["score"] = [float(r["score"]) for r in rows]
            _one_value(local, "test.jsonl", cols["score"], "score", "Spearman's correlation with one gold score is "
                       "undefined (mteb's score would be NaN)")  # fmt: skip
        elif kind == "PairClassification":
            cols[getattr(task, "label_column_name", "labels")] = [int(r["label"]) for r in rows]
            _one_value(local, "test.jsonl", [r["label"] for r in rows], "label", "pair classification needs both 0 "
                       "and 1 (with one class every model scores average precision 100)")  # fmt: skip
        return DatasetDict({split: Dataset.from_dict(cols)})
    if kind == "Classification":
        labels = label_kind()  # train and test labels must be of one type
        train, test = read_rows(local, "train.jsonl", labels), read_rows(local, "test.jsonl", labels)
        _one_value(local, "train.jsonl", [r["label"] for r in train], "label", "a classifier needs at least 2 classes "
                   "to be trained")  # fmt: skip
        classes = {r["label"] for r in test}  # mteb calls a task binary by its test labels
        if len(classes) == 2 and classes not in ({0, 1}, {-1, 1}):  # else mteb fails after the model's work
            raise DataError(local.path / "test.jsonl", 0, f"two classes, {', '.join(sorted(map(repr, classes)))}: "
                            "mteb scores a two-class test split's average precision with label 1 as the positive "
                            "class, so give the labels as 0 and 1")  # fmt: skip
        unseen = sorted({r["label"] for r in test} - {r["label"] for r in train}, key=str)
        if unseen:  # legal (the rows may be so), but no classifier can get those rows right
            warn(f"{local.path / 'test.jsonl'}: {len(unseen)} test label(s) never in train.jsonl, so never predicted: "
                 f"{', '.join(map(repr, unseen[:5]))}{' ...' if len(unseen) > 5 else ''}")  # fmt: skip
        warn_test_texts_in_train(local, train, test)
        return DatasetDict({"train": _text_label(train, task), split: _text_label(test, task)})
    if kind == "Clustering":
        rows = read_rows(local, "test.jsonl")
        levels = _label_levels(local, task, rows)
        _one_value(local, "test.jsonl", [level[0] for level in levels], "label", "clustering needs at least 2 "
                   "labels (with one cluster every clustering scores v-measure 100)")  # fmt: skip
        texts = [r["text"] for r in rows]
        labels: list[Any] = levels if hierarchical(task) else [level[0] for level in levels]
        if isinstance(task, AbsTaskClusteringLegacy):  # a row per cluster set: one of all documents, or `set`'s
            sets = cluster_sets(rows)
            if len(sets) > 1 and all(len({labels[i] for i in ids}) == 1 for ids in sets):
                raise DataError(local.path / "test.jsonl", 0, f"each of the {len(sets)} cluster sets (field 'set') "
                                "holds one label: mteb scores such a set 1.0 without clustering it, so the task "
                                "would score 100 whatever the model")  # fmt: skip
            return DatasetDict({split: Dataset.from_dict({"sentences": [[texts[i] for i in ids] for ids in sets],
                                                          "labels": [[labels[i] for i in ids] for ids in sets]})})
        if "set" in rows[0]:
            raise DataError(local.path / "test.jsonl", 1, f"field 'set': mteb's {task.metadata.name} clusters one "
                            "pool of documents (its v2 clustering has no cluster sets); remove the field")  # fmt: skip
        # mteb's v2 clustering (e.g. TwentyNewsgroupsClustering.v2): a row per document, of which the evaluator embeds
        # its own sample (max_fraction_of_documents_to_embed) and clusters bootstrapped draws of it
        fraction, cap = task.max_fraction_of_documents_to_embed, task.max_document_to_embed
        embedded = min(len(rows), cap if cap is not None else int(fraction * len(rows)) if fraction else len(rows))
        if embedded < MIN_V2_DOCUMENTS:  # 0 documents: mteb's "max() arg is an empty sequence"; a few: one label
            needed = math.ceil(MIN_V2_DOCUMENTS / fraction) if fraction and cap is None else MIN_V2_DOCUMENTS
            raise DataError(local.path / "test.jsonl", 0, f"mteb's {local.name} embeds {embedded} of these "
                            f"{len(rows)} rows (its own sample of the documents), too few to cluster: give at least "
                            f"{needed} rows, so that it embeds {MIN_V2_DOCUMENTS}")  # fmt: skip
        return DatasetDict({split: Dataset.from_dict({task.input_column_name: texts, task.label_column_name: labels})})
    if kind == "Retrieval":
        return {"default": {split: _retrieval_split(local, getattr(task, "ignore_identical_ids", False))}}
    if kind == "Reranking":
        return {"default": {split: _reranking_split(local)}}
    raise ValueError(f"unsupported task type {kind}")


def cluster_sets(rows: list[dict[str, Any]]) -> list[list[int]]:
    """The row positions of each cluster set, sets in the order they first appear: one set of all rows when the rows
    carry no `set` (validate._SetField holds them to all or none)."""
    if "set" not in rows[0]:
        return [list(range(len(rows)))]
    sets: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        sets.setdefault(str(row["set"]), []).append(i)
    return list(sets.values())


def hierarchical(task: AbsTask) -> bool:
    """Whether mteb's clustering task scores label levels (ArXivHierarchicalClusteringP2P and the others named so):
    its evaluator takes each document's labels, coarsest first, and averages the v-measure over the levels."""
    return not isinstance(task, AbsTaskClusteringLegacy) and "Hierarchical" in task.metadata.name


def _label_levels(local: LocalTask, task: AbsTask, rows: list[dict[str, Any]]) -> list[list[str]]:
    """Each row's labels as strings, coarsest level first (a single label is one level). Levels need a twin that
    scores them, and such a twin needs them: either way round, mteb's name would record the score of another task
    (one level where the published number averages several, or the reverse)."""
    levels = [[str(v) for v in r["label"]] if isinstance(r["label"], list) else [str(r["label"])] for r in rows]
    spec, name = local.path / "test.jsonl", task.metadata.name
    if hierarchical(task) and all(len(labels) == 1 for labels in levels):
        raise DataError(spec, 0, f"mteb's {name} averages the v-measure over label levels, but every row has one "
                                 "label: give each row its labels as a list, coarsest first (as [\"cs\", \"AI\"] "
                                 "for arXiv's cs.AI)")  # fmt: skip
    if not hierarchical(task) and any(len(labels) > 1 for labels in levels):
        at = first_line(local, "test.jsonl", lambda row: isinstance(row.get("label"), list) and len(row["label"]) > 1)
        whose = f"mteb's {name}" if local.mteb_equivalent == local.name else "a clustering task of its own"
        raise DataError(spec, at, f"'label' is a list of levels, but {whose} scores one label per document: give "
                                  "one label, or name one of mteb's hierarchical clustering tasks "
                                  "(ArXivHierarchicalClusteringP2P, ...) as mteb_equivalent")  # fmt: skip
    return levels


# Documents a mirror of an mteb v2 clustering task must have its evaluator embed: below it mteb fails (0) or a
# handful of documents, often of one label, scores v-measure 1 whatever the model.
MIN_V2_DOCUMENTS = 20


def _one_value(local: LocalTask, filename: str, values: list[Any], field: str, why: str) -> None:
    """A file whose gold `field` holds one value for every row scores the same whatever the model (or nothing)."""
    if len(set(values)) < 2:
        raise DataError(local.path / filename, 0, f"all {len(values)} rows have {field} {values[0]!r}; {why}")


def _text_label(rows: list[dict[str, Any]], task: AbsTask) -> Dataset:
    return Dataset.from_dict({
        getattr(task, "input_column_name", "text"): [r["text"] for r in rows],
        getattr(task, "label_column_name", "label"): [r["label"] for r in rows],
    })  # fmt: skip


def _retrieval_split(local: LocalTask, ignore_identical_ids: bool) -> RetrievalSplitData:
    """The BEIR files as mteb's split. ``ignore_identical_ids``: the evaluating task's own setting (mteb's twin of
    ArguAna, QuoraRetrieval, MSMARCO and others), under which a judgement of the document with the query's id is
    unreachable, so read_qrels refuses it."""
    corpus = read_rows(local, "corpus.jsonl")
    queries = read_rows(local, "queries.jsonl")
    qids, dids = {str(q["_id"]) for q in queries}, {str(d["_id"]) for d in corpus}
    qrels = read_qrels(local, qids, dids, ignore_identical_ids)
    queries = judged_queries(local, queries, qrels)  # BEIR: only judged queries are evaluated
    return RetrievalSplitData(
        corpus=Dataset.from_dict({
            "id": [str(d["_id"]) for d in corpus],
            "title": [d.get("title") or "" for d in corpus],
            "text": [d["text"] for d in corpus],
        }),
        queries=Dataset.from_dict({"id": [str(q["_id"]) for q in queries], "text": [q["text"] for q in queries]}),
        relevant_docs=qrels,
        top_ranked=None,
    )  # fmt: skip


def _reranking_split(local: LocalTask) -> RetrievalSplitData:
    """Each row's positives and negatives become its candidate list; identical texts share one doc id. A row without
    negatives is left out, as mteb's own loading of this layout leaves it out (AbsTaskReranking's
    transform_old_dataset_format): it would rank its positives first whatever the model. Said on stderr, with a
    count; before stop 48 (audit) such rows were scored (TrecQA with 10 of 30 rows emptied: MAP 0.872 where mteb
    scores 0.808 on the same file). Query ids keep the row's position in the file."""
    rows = read_rows(local, "test.jsonl")
    if unranked := [row["query"] for row in rows if not row["negative"]]:
        if len(unranked) == len(rows):
            raise DataError(local.path / "test.jsonl", 0, "no row has a negative: mteb leaves out a query without "
                                                          "negatives, so nothing would be scored")  # fmt: skip
        warn(f"{local.path / 'test.jsonl'}: {len(unranked)} of {len(rows)} queries have no negative and are left out, "
             f"as mteb leaves them out (first: {unranked[0][:60]!r})")  # fmt: skip
    doc_ids: dict[str, str] = {}
    qids, qtexts, qrels, top_ranked = [], [], {}, {}
    for i, row in enumerate(rows):
        if not row["negative"]:
            continue
        qid = f"q{i}"
        qids.append(qid)
        qtexts.append(row["query"])
        candidates = []
        for text in list(row["positive"]) + list(row["negative"]):
            candidates.append(doc_ids.setdefault(text, f"d{len(doc_ids)}"))
        qrels[qid] = {doc_ids[t]: 1 for t in row["positive"]}
        top_ranked[qid] = list(dict.fromkeys(candidates))
    return RetrievalSplitData(
        corpus=Dataset.from_dict({"id": list(doc_ids.values()), "title": [""] * len(doc_ids),
                                  "text": list(doc_ids.keys())}),
        queries=Dataset.from_dict({"id": qids, "text": qtexts}),
        relevant_docs=qrels,
        top_ranked=top_ranked,
    )  # fmt: skip
