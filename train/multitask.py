"""The supervised stage's data: task rows and their mined pools, per-task seeded batches drawn by weight, and
the DHNM state that rides in checkpoints (train/supervised.py runs the stage, train/supervised_step.py the step)."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conan_model.atomic import atomic_write_json

from .clr import ParallelTranslator, build_clr, format_report
from .data import JsonlIndex, permutation
from .dhnm import DHNM, STATE_VERSION
from .distributed import barrier
from .errors import ConfigError, DataError, ResumeError
from .mining import ensure_pools, labelled_matches, matching_pools
from .supervised_config import SupervisedConfig


def text_id(text: str) -> int:
    """Stable 63-bit id of a text (the same on every rank), for masking duplicate texts in a batch."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") & (2**63 - 1)


def _files(root: str, entries: list[str]) -> list[Path]:
    paths = [Path(root) / e for e in entries]
    return [p / "train.jsonl" if p.is_dir() else p for p in paths]


@dataclass
class Task:
    """One task's rows in memory; retrieval-like tasks also carry pools and their DHNM."""

    name: str
    kind: str
    batch_size: int
    weight: float
    rows: list[dict[str, Any]]
    pools: list[list[str]] = field(default_factory=list)
    pools_file: Path | None = None  # where the pools were mined to (named when a resume finds them changed)
    dhnm: DHNM | None = None
    # classification: each file's label set, and which one a row draws its negative labels from (its own file's:
    # two datasets of one task have unrelated label sets, e.g. TNews's news topics and Emotion's feelings)
    label_spaces: list[list[str]] = field(default_factory=list)
    space_of: list[int] = field(default_factory=list)
    hard_negatives: int = SupervisedConfig.hard_negatives  # K of this task (its table's, else the stage's)
    # retrieval-like: each text's group among the texts the data labels as matches (labelled_matches' components;
    # the same numbers on every rank) and each row's query's group; the loss masks a candidate in its query's group
    groups: dict[str, int] = field(default_factory=dict)
    row_groups: list[int] = field(default_factory=list)
    dhnm_ids: list[int] = field(default_factory=list)  # each row's DHNM query: one per query text and pool

    def slots(self, row: int) -> list[str | None]:
        """Texts of the row's current hard-negative slots (None: empty), from its query's DHNM state; none at K = 0
        (no pools mined)."""
        if not self.hard_negatives:
            return []
        assert self.dhnm is not None, f"task {self.name} has no pools"
        return [None if j is None else self.pools[row][j] for j in self.dhnm.negatives(self.dhnm_ids[row])]


def read_rows(files: list[Path], kind: str) -> list[dict[str, Any]]:
    """Rows of a task's files, validated by JsonlIndex (errors name file:line)."""
    return [row for part in read_parts(files, kind) for row in part]


def check_batch_fits(name: str, rows: int, batch_size: int, world_size: int) -> None:
    """A task's batch must fit its rows and split evenly over the ranks."""
    if rows < batch_size:
        raise ConfigError(f"tasks.{name}: {rows} rows, fewer than its batch_size {batch_size}")
    if batch_size % world_size:
        raise ConfigError(f"tasks.{name}: batch_size {batch_size} is not a multiple of {world_size} ranks")


def check_row_counts(cfg: SupervisedConfig) -> None:
    """:func:`check_batch_fits` for every task read from files (a ``clr`` task's rows are built, and counted,
    only when the stage starts), on one process: `harness ablate` checks every unit before any trains."""
    for name, spec in cfg.task_specs().items():
        if spec["kind"] != "clr":
            rows = sum(map(len, read_parts(_files(cfg.data_root, spec["data"]), spec["kind"])))
            check_batch_fits(name, min(rows, spec["max_rows"] or rows), spec["batch_size"], 1)


def read_parts(files: list[Path], kind: str) -> list[list[dict[str, Any]]]:
    """Each file's rows (:func:`read_rows`, file by file: a classification row draws its labels from its own file,
    and ``max_rows`` says what it keeps of each)."""
    parts, scored_files = [], set()
    for path in files:
        rows: list[dict[str, Any]] = []
        if kind == "classification":
            required, optional, known = ("text", "label"), (), ()
        else:
            scored = kind == "sts" and "score" in JsonlIndex([path], required=()).row(0)
            scored_files.add(scored)
            required, optional = (("sentence1", "sentence2") if scored else ("query", "positive")), ("negative",)
            known = ("score",) if scored else ()  # checked below: a number, no text
        index = JsonlIndex([path], required=required, optional=optional, known=known)
        for i in range(len(index)):
            row = index.row(i)
            score = row.get("score")
            real = isinstance(score, int | float) and not isinstance(score, bool) and math.isfinite(score)
            if kind == "sts" and "sentence1" in required and not real:  # NaN: CoSENT dropped the row silently
                raise DataError(*index.where(i), f"STS row needs a finite numeric 'score', not {score!r:.40}")
            rows.append(row)
        if kind == "classification" and len({str(row["label"]) for row in rows}) < 2:
            # one label: each row's gold is its only candidate, the loss 0 and nothing learned (before stop 63
            # it trained so, "loss 0.0000", without a word)
            raise DataError(path, 0, f"a classification file needs rows of at least 2 labels; all {len(rows)} "
                                     f"rows are labelled {str(rows[0]['label'])!r}")  # fmt: skip
        parts.append(rows)
    if len(scored_files) > 1:  # scored rows make one pair, others two: ranks would gather different shapes
        raise DataError(files[0], 0, "an sts task mixes scored (sentence1/sentence2/score) and pair files; split it")
    return parts


def pool_layout(mined: list[str], given: str | None, skip: int) -> tuple[list[str], int]:
    """(a row's pool, the index DHNM serves from): the mined candidates with the row's given negative put right
    after the ``skip`` top ranks, or after all of them when fewer were mined (a short pool's given negative is not
    skipped with them)."""
    if not given:
        return mined, skip
    rest = [c for c in mined if c != given]
    start = min(skip, len(rest))
    return [*rest[:start], given, *rest[start:]], start


def group_numbers(matches: dict[str, frozenset[str]]) -> dict[str, int]:
    """Each text's component as a number, in the pairs' order: the same on every rank."""
    numbers: dict[frozenset[str], int] = {}
    return {text: numbers.setdefault(group, len(numbers)) for text, group in matches.items()}


def attach_pools(
    task: Task, cfg: SupervisedConfig, rt: Any, source: list[dict[str, Any]], source_of: list[int],
    links: Iterable[tuple[str, str]] = (),
) -> None:
    """The labelled-match groups of ``source`` rows; then, for a task with hard negatives (K > 0), mine (rank 0,
    cached in pools_dir) or load their pools: row i of the task uses the pool
    of source row ``source_of[i]``. That source row's given negative goes right after the skipped top ranks, or
    after all mined candidates when fewer were mined, and DHNM serves it first either way (a CLR row, translated
    from a source row, keeps its source's negative as it keeps its positive). A pool excludes every text the rows
    (and ``links``, more pairs of matching texts) join to its query (``train.mining.labelled_matches``)."""
    path = Path(cfg.pools_dir or Path(cfg.output_dir) / "pools") / f"{task.name}.jsonl"
    used = sorted(set(source_of))  # only sources the task uses get a pool
    queries = [source[i]["query"] for i in used]
    matches = labelled_matches([*((r["query"], r["positive"]) for r in source), *links])
    task.groups = group_numbers(matches)
    task.row_groups = [task.groups[source[src]["query"]] for src in source_of]
    if not task.hard_negatives:  # K = 0: in-batch negatives only, so no pool is read (before stop 65 one was mined)
        if rt.is_main:
            print(f"task {task.name}: hard_negatives = 0, so no pools are mined: in-batch negatives only",
                  flush=True)  # fmt: skip
        return
    corpus = [r["positive"] for r in source] + [r["negative"] for r in source if "negative" in r]
    if rt.is_main and ensure_pools(path, queries, [matches[q] for q in queries], corpus, cfg.pool_scorer,
                                   cfg.pool_depth):  # fmt: skip
        print(f"mined {len(queries)} pools (one per row) for task {task.name} with "
              f"{cfg.pool_scorer} -> {path}", flush=True)  # fmt: skip
    barrier()
    mined = dict(zip(used, matching_pools(path, queries, matches), strict=True))
    task.pools_file = path
    skip = cfg.dhnm_config().skip_top
    queries_of: dict[tuple[Any, ...], int] = {}  # (query text, start, pool) -> DHNM query id, in the rows' order
    sizes, starts = [], []
    for row, src in zip(task.rows, source_of, strict=True):
        negative = source[src].get("negative")  # dropped where the rows label it a match (a row with n == p)
        pool, start = pool_layout(mined[src], negative if negative not in matches[source[src]["query"]] else None,
                                  skip)  # fmt: skip
        task.pools.append(pool)
        qid = queries_of.setdefault((row["query"], start, tuple(pool)), len(queries_of))
        if qid == len(sizes):
            sizes.append(len(pool))
            starts.append(start)
        task.dhnm_ids.append(qid)
    task.dhnm = DHNM(sizes, cfg.dhnm_config(task.hard_negatives), starts)
    cover = task.dhnm.coverage()
    if rt.is_main and cover["queries_short_of_k"]:
        print(f"task {task.name}: {cover['queries_short_of_k']} of {cover['queries']} queries have fewer than "
              f"{task.hard_negatives} hard negatives after the top {skip} ranks of their pools "
              f"({cover['mean_initial_slots']:.2f} per query on average, {cover['queries_without_hard_negative']} "
              "with none): a deeper pool_depth or a larger corpus fills more", flush=True)  # fmt: skip


def build_tasks(cfg: SupervisedConfig, rt: Any) -> dict[str, Task]:
    """Every task's rows; pooled tasks' pools and DHNM, and the labelled-match groups of every task whose rows are
    (query, positive) matches. The groups span tasks: a pair one task trains as a match is no other task's
    negative (before stop 50 each task saw its own rows only, and STS-B paraphrases were CLR hard negatives)."""
    tasks: dict[str, Task] = {}
    pooled: list[tuple[Task, list[dict[str, Any]], list[int]]] = []
    labelled: list[tuple[str, str]] = []  # every (query, positive) any task's rows give, and shared translations
    for name, spec in cfg.task_specs().items():
        task = Task(name, spec["kind"], spec["batch_size"], float(spec["weight"]), [],
                    hard_negatives=spec["hard_negatives"])
        if spec["kind"] == "clr":
            translator = ParallelTranslator.from_dir(Path(cfg.data_root) / spec["parallel"])
            source = (read_rows(_files(cfg.data_root, spec["data"]), "retrieval") if spec["data"]
                      else [{"query": t, "positive": t} for t in translator.source_texts()])  # fmt: skip
            if spec["data"] and not set(translator.source_texts()).intersection(row["query"] for row in source):
                # before stop 51 such a task trained its `data` as a monolingual retrieval task labelled "en" (Chinese
                # queries too): the tables are keyed by English text, so nothing else could be produced
                raise ConfigError(f"tasks.{name}: none of the {len(source)} queries of `data` {spec['data']} has a "
                                  f"translation in `parallel` ({spec['parallel']}): CLR translates English queries by "
                                  "looking them up in the parallel_en_<lang>* files' English side (query), so it "
                                  "would produce no cross-lingual example; leave `data` out to use the parallel "
                                  "files' English texts, or give English queries they translate")  # fmt: skip
            examples, report = build_clr(source, translator, spec["mix"] or None, spec["total"] or None,
                                         seed=cfg.seed)  # fmt: skip
            if not examples:
                raise ConfigError(f"tasks.{name}: the clr builder produced no examples\n{format_report(report)}")
            if rt.is_main:
                print(format_report(report), flush=True)
                out = Path(cfg.output_dir) / f"clr_report_{name}.json"
                atomic_write_json(out, report)
            task.rows = [{"query": e["query"], "positive": e["positive"]} for e in examples]
            pooled.append((task, source, [e["source_index"] for e in examples]))
            labelled += _pairs(source) + translator.shared() + _pairs(task.rows)  # and its own (translation, English)
        else:
            files, cut = _files(cfg.data_root, spec["data"]), spec["max_rows"] or None
            parts = read_parts(files, spec["kind"])
            rows = [row for part in parts for row in part]
            task.rows = rows[:cut]  # max_rows: the files' first rows, the same for every seed
            if spec["kind"] == "classification":  # each row's label set is its own file's
                task.space_of = [i for i, part in enumerate(parts) for _ in part][:cut]
                task.label_spaces = [sorted({str(row["label"]) for row, i in zip(task.rows, task.space_of, strict=True)
                                             if i == space}) for space in range(len(parts))]  # fmt: skip
            else:
                labelled += _pairs(rows)
            if rt.is_main and cut is not None and cut < len(rows):
                print(_cut_note(name, files, parts, cut, task.label_spaces), flush=True)
            single = [path.name for path, space in zip(files, task.label_spaces, strict=False) if len(space) == 1]
            if single:  # what read_parts refuses of a whole file, made by the cut (review, stop 64)
                raise ConfigError(f"tasks.{name}: max_rows {cut} keeps rows of one label only of {', '.join(single)}: "
                                  "each row's gold would be its only candidate (loss 0, nothing learned); raise "
                                  "max_rows, or shuffle the file's rows so that its first rows hold several labels")
            few = [(path, len(space)) for path, space in zip(files, task.label_spaces, strict=False)
                   if space and len(space) - 1 < task.hard_negatives]  # fmt: skip
            if rt.is_main and few:  # as retrieval's pools short of K are said
                print(f"task {name}: " + "; ".join(f"{path.name} has {n} labels" for path, n in few) + f", so a row "
                      f"scores its label against {', '.join(str(n - 1) for _, n in few)} others, fewer than "
                      f"hard_negatives = {task.hard_negatives}", flush=True)  # fmt: skip
            if spec["kind"] == "retrieval":  # pools mined from every row's texts: max_rows cuts queries, not corpus
                pooled.append((task, rows, list(range(len(task.rows)))))
        check_batch_fits(name, len(task.rows), task.batch_size, rt.world_size)
        tasks[name] = task
    for task, source, source_of in pooled:
        attach_pools(task, cfg, rt, source, source_of, labelled)
    stage_groups: dict[str, int] | None = None
    for task in tasks.values():  # STS from pairs: its zero-scored partner is never a labelled match of the query
        if task.kind == "sts" and not task.groups and "query" in task.rows[0]:
            stage_groups = stage_groups or group_numbers(labelled_matches(labelled))
            task.groups = stage_groups
            if len({task.groups[row["query"]] for row in task.rows}) == 1:
                raise ConfigError(f"tasks.{task.name}: the data labels every row's texts matches of each other, so "
                                  "no text can be a query's zero-scored pair; give it unrelated pairs or scores")
    return tasks


def _pairs(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """The (query, positive) matches of pair-shaped rows (a scored STS row is graded, not a match)."""
    return [(r["query"], r["positive"]) for r in rows if "query" in r]


def _cut_note(name: str, files: list[Path], parts: list[list[Any]], cut: int, spaces: list[list[str]]) -> str:
    """What ``max_rows`` keeps of each file (the first rows of the files in order): a file or a label cut away
    entirely was unsaid before stop 50 (a cap on configs/supervised.toml's tasks left Chinese alone)."""
    kept, left, lines = [], cut, []
    for part in parts:
        kept.append(min(left, len(part)))
        left -= kept[-1]
    for i, (path, part, n) in enumerate(zip(files, parts, kept, strict=True)):
        labels = f"; labels {len(spaces[i])} of {len({str(r['label']) for r in part})}" if spaces else ""
        lines.append(f"  {path.parent.name}/{path.name}: {n} of {len(part)} rows{labels}")
    lost = [path.parent.name for path, n in zip(files, kept, strict=True) if n == 0]
    warning = (f"; warning: nothing of {', '.join(lost)} (put the files to keep first, or raise max_rows)"
               if lost else "")  # fmt: skip
    return f"tasks.{name}: max_rows {cut} keeps the files' first rows{warning}\n" + "\n".join(lines)


def _uniform(*keys: Any) -> float:
    """A float in [0, 1) that is a pure function of ``keys`` (same on every rank, after any resume)."""
    return int.from_bytes(hashlib.blake2b(repr(keys).encode(), digest_size=8).digest(), "little") / 2**64


@dataclass
class TaskBatch:
    task: str
    rows: list[int]  # this rank's rows of the task
    global_rows: list[int]  # the whole global micro-batch (all ranks)
    seed: int  # for the batch's own sampling (negative labels, STS partners), per row so ranks agree


class MultiTaskBatches:
    """Global micro-batches, each from one task drawn by weight; per-task seeded epochs (last partial batch
    dropped). State: batches drawn so far and each task's (epoch, position)."""

    def __init__(self, tasks: dict[str, Task], rank: int, world: int, seed: int) -> None:
        self.tasks, self.rank, self.world, self.seed = tasks, rank, world, seed
        total = sum(t.weight for t in tasks.values())
        self.names, self.cumulative, acc = list(tasks), [], 0.0
        for t in tasks.values():
            acc += t.weight / total
            self.cumulative.append(acc)
        self.count = 0
        self.cursors = {name: [0, 0] for name in tasks}

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count, "cursors": {k: list(v) for k, v in self.cursors.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if set(state["cursors"]) != set(self.cursors):
            raise ResumeError(f"checkpoint tasks {sorted(state['cursors'])} differ from {sorted(self.cursors)}")
        self.count, self.cursors = int(state["count"]), {k: list(v) for k, v in state["cursors"].items()}

    def __iter__(self) -> MultiTaskBatches:
        return self

    def __next__(self) -> TaskBatch:
        u = _uniform(self.seed, "task", self.count)
        name = next((n for n, c in zip(self.names, self.cumulative, strict=True) if u < c), self.names[-1])
        task, cursor = self.tasks[name], self.cursors[name]
        if cursor[1] + task.batch_size > len(task.rows):
            cursor[0], cursor[1] = cursor[0] + 1, 0
        order = permutation(len(task.rows), self.seed, name, cursor[0])
        rows = order[cursor[1] : cursor[1] + task.batch_size].tolist()
        cursor[1] += task.batch_size
        micro = task.batch_size // self.world
        self.count += 1
        local = rows[self.rank * micro : (self.rank + 1) * micro]
        return TaskBatch(name, local, rows, self.seed * 1_000_003 + self.count)


def pools_digest(pools: list[list[str]], starts: list[int]) -> str:
    """sha256 of what a task's DHNM pointers index: its pools as served (texts in order) and each query's start."""
    return hashlib.sha256(json.dumps([pools, starts], ensure_ascii=False).encode()).hexdigest()


class StageState:
    """The ``extra`` state of loop.fit: every retrieval-like task's DHNM with the digest of the pools it points
    into, and the per-task losses of the log window still open at a checkpoint (so a resume off a log boundary
    logs what the uninterrupted run logs)."""

    def __init__(self, tasks: dict[str, Task]) -> None:
        self.by_task = {name: t.dhnm for name, t in tasks.items() if t.dhnm is not None}
        self.pools = {name: pools_digest(tasks[name].pools, [d.starts[q] for q in tasks[name].dhnm_ids])
                      for name, d in self.by_task.items()}  # fmt: skip
        self.pools_files = {name: tasks[name].pools_file for name in self.by_task}
        # a task whose rows all have queries of their own: per-row DHNM state (before stop 50) is per-query state
        self.one_row_queries = {name for name in self.by_task
                                if tasks[name].dhnm_ids == list(range(len(tasks[name].rows)))}
        self.window: dict[str, list[float]] = {}

    def state_dict(self) -> dict[str, Any]:
        return {"dhnm": {name: d.state_dict() for name, d in self.by_task.items()}, "pools": dict(self.pools),
                "loss_window": {k: list(v) for k, v in self.window.items()}}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Refuses DHNM state whose pools were mined again since (a retrained ``conan:<dir>`` scorer, another
        pools file): its slot pointers would silently index other texts. Older checkpoints lack the digests."""
        missing = sorted(set(self.by_task) - set(state.get("dhnm", {})))
        if missing:
            raise ResumeError(f"checkpoint has no DHNM state for task(s) {missing}")
        for name, d in self.by_task.items():
            saved = state.get("pools", {}).get(name, self.pools[name])
            if saved != self.pools[name]:
                raise ResumeError(f"task {name}: its hard-negative pools ({self.pools_files[name]}) are not the ones "
                                  "the checkpoint's DHNM slots point into (mined again since, e.g. by a retrained "
                                  "pool_scorer model); restore what they were mined from, or train afresh into "
                                  "another output_dir")  # fmt: skip
            saved_dhnm = state["dhnm"][name]
            if saved_dhnm.get("version") == 1 and name in self.one_row_queries:
                saved_dhnm = {**saved_dhnm, "version": STATE_VERSION}
            try:
                d.load_state_dict(saved_dhnm)
            except ValueError as e:  # another rule, K or pool set, or per-row state from before stop 50
                raise ResumeError(f"task {name}: {e}") from e
        self.window = {k: list(v) for k, v in state.get("loss_window", {}).items()}

    def metrics(self) -> dict[str, float]:
        """Totals over tasks (dhnm_<counter>) and each task's own counts and rates (dhnm_<task>_<counter>); none
        when no task has pools (an STS-only run logged DHNM zeros)."""
        if not self.by_task:
            return {}
        keys = ("replacements", "initial_drops", "decay_replacements", "exhausted", "used")
        out: dict[str, float] = {f"dhnm_{k}": sum(d.stats()[k] for d in self.by_task.values()) for k in keys}
        for name, d in self.by_task.items():
            stats = d.stats()
            for k in ("replacements", "used", "replacement_rate", "draws_per_query"):
                out[f"dhnm_{name}_{k}"] = stats[k]
        return out

    def summary(self, tasks: dict[str, Task]) -> dict[str, dict[str, Any]]:
        """Per task: rows, mode and every DHNM counter and rate at the end of training (dhnm_summary.json)."""
        return {name: {"rows": len(tasks[name].rows), "mode": d.config.mode, "k": d.config.k, **d.stats(),
                       "pools": d.coverage()} for name, d in self.by_task.items()}  # fmt: skip
