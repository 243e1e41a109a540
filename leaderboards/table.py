"""The leaderboard's numbers: one row per model, MTEB's two averages, coverage and the Borda rank.

Kept free of I/O so the arithmetic can be checked by hand on small tables (tests/leaderboards/test_lb_table.py).
All scores are on mteb's 0–1 scale here; rendering multiplies by 100.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from statistics import mean

from scipy.stats import rankdata

from harness.runs import percent


@dataclass
class Entry:
    """One row: a run of ours or a published model."""

    label: str
    kind: str  # "run" | "published"
    scores: dict[str, float] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # task → official | mirror | published
    dim_scores: dict[int, dict[str, float]] = field(default_factory=dict)  # dim → task → score
    width: int = 0  # a run's full embedding width (run.json's model.embed_dim; 0: not known, or a published row)
    detail: str = ""
    # task → score kept from an earlier run under other settings than the row's: shown, never counted (no coverage,
    # means or Borda points; the row has no score under its own settings)
    kept: dict[str, float] = field(default_factory=dict)
    # task → what of the task's splits/subsets a published score lacks: shown and counted, but marked `¶`
    partial: dict[str, str] = field(default_factory=dict)


def coverage(entry: Entry, tasks: list[str]) -> tuple[int, int]:
    """(tasks with a score, tasks in the table): shown as n/N, never a silent gap."""
    return sum(1 for t in tasks if t in entry.scores), len(tasks)


def type_means(entry: Entry, tasks: list[str], types: dict[str, str]) -> dict[str, float]:
    """Mean score per task type over the tasks of that type the entry has."""
    by_type: dict[str, list[float]] = {}
    for task in tasks:
        if task in entry.scores:
            by_type.setdefault(types.get(task, "Unknown"), []).append(entry.scores[task])
    return {kind: mean(values) for kind, values in by_type.items()}


def mean_over_tasks(entry: Entry, tasks: list[str]) -> float | None:
    """MTEB's 'Mean (Task)': the plain mean over the tasks present."""
    values = [entry.scores[t] for t in tasks if t in entry.scores]
    return mean(values) if values else None


def mean_over_types(entry: Entry, tasks: list[str], types: dict[str, str]) -> float | None:
    """MTEB's 'Mean (TaskType)': the mean of the per-type means, so big task types do not dominate."""
    per_type = type_means(entry, tasks, types)
    return mean(per_type.values()) if per_type else None


def borda_points(entries: list[Entry], tasks: list[str]) -> dict[str, float]:
    """Per task, the models with a score are ranked (1 = best); each earns n_models − rank points.

    As in mteb's leaderboard: n_models counts every row, a missing task earns 0, and tied scores share the
    average of the ranks they span (two models tied for first both get rank 1.5).
    """
    points = {e.label: 0.0 for e in entries}
    n_models = len(entries)
    for task in tasks:
        scored = [e for e in entries if task in e.scores]
        if not scored:
            continue
        # ranks compare the scores as shown (harness.runs.percent), so what reads as a tie is one, and only that
        # (before stop 35 the 0–1 score rounded to 4 decimals was compared)
        ranks = rankdata([-float(percent(e.scores[task])) for e in scored], method="average")
        for e, rank in zip(scored, ranks, strict=True):
            points[e.label] += n_models - float(rank)
    return points


def borda_ranks(points: dict[str, float]) -> dict[str, int]:
    """Final rank from Borda points, highest first; equal points share the better rank (1, 1, 3)."""
    labels = list(points)
    ranks = rankdata([-points[label] for label in labels], method="min")
    return {label: int(rank) for label, rank in zip(labels, ranks, strict=True)}


@dataclass
class Row:
    entry: Entry
    rank: int
    points: float
    covered: int
    total: int
    mean_tasks: float | None
    mean_types: float | None
    per_type: dict[str, float]
    group: str = ""  # which rows this one is ranked among ("A", "B", …) when the board splits; "" when it does not


def rank_groups(entries: list[Entry], tasks: list[str], groups: Mapping[str, list[list[str]]]) -> list[list[Entry]]:
    """The rows split into sets that can be ranked together: two rows join when some task scores both on the same
    data (a task outside ``groups`` scores every row that has it on the same data; a task in it, on the data of each
    of its label groups). Rows of different sets share no task on the same data, so their Borda points say nothing
    about each other. A row with no score (a night whose tasks all failed) joins the first set, ranked last there
    with 0 points as on a board of one set, not a set of its own ranked 1. Before stop 38 all rows were ranked as
    one board: with every task `‡` (our runs on a sample beside published full-split rows) no row earned a point
    and all tied at rank 1, our own runs included."""
    parent = {e.label: e.label for e in entries}

    def root(label: str) -> str:
        while parent[label] != label:
            label = parent[label]
        return label

    for task in tasks:
        have = {e.label for e in entries if task in e.scores}
        for labels in groups.get(task, [sorted(have)]):
            members = [label for label in labels if label in have]
            for label in members[1:]:
                parent[root(label)] = root(members[0])
    sets: dict[str, list[Entry]] = {}
    unscored = []
    for e in entries:
        if any(task in e.scores for task in tasks):
            sets.setdefault(root(e.label), []).append(e)
        else:
            unscored.append(e)
    ranked = list(sets.values()) or [[]]
    ranked[0] += unscored  # ranked last there, as on a board of one set
    return ranked


def _rankable(rows: list[Entry], task: str, groups: Mapping[str, list[list[str]]]) -> bool:
    """A task ranks a set of rows when all of them that score it scored the same data."""
    have = {e.label for e in rows if task in e.scores}
    return task not in groups or any(have <= set(labels) for labels in groups[task])


def build_rows(entries: list[Entry], tasks: list[str], types: dict[str, str],
               groups: Mapping[str, list[list[str]]] | None = None) -> list[Row]:  # fmt: skip
    """Every entry's summary row: rank sets first (`rank_groups`, in the order of their first row), then best Borda
    rank, mean over tasks, label.

    ``groups`` maps each task that rows scored on different data to the labels that scored it on the same data.
    Within a rank set, such a task earns Borda points only when the set's rows that score it all share one data
    group (else none, as their scores do not compare); it still counts in coverage and in each row's own means.
    Points count `n_rows` of the set."""
    groups = groups or {}
    sets = rank_groups(entries, tasks, groups)
    names = [_set_name(i) for i in range(len(sets))] if len(sets) > 1 else [""]
    rows = []
    for name, members in zip(names, sets, strict=True):
        points = borda_points(members, [t for t in tasks if _rankable(members, t, groups)])
        ranks = borda_ranks(points)
        for e in members:
            covered, total = coverage(e, tasks)
            rows.append(Row(e, ranks[e.label], points[e.label], covered, total, mean_over_tasks(e, tasks),
                            mean_over_types(e, tasks, types), type_means(e, tasks, types), name))  # fmt: skip
    order = {name: i for i, name in enumerate(names)}
    rows.sort(key=lambda r: (order[r.group], r.rank, -(r.mean_tasks or 0.0), r.entry.label))
    return rows


def _set_name(index: int) -> str:
    """A, B, …, Z, then 27, 28, …: boards rarely split into more than a few sets."""
    return chr(ord("A") + index) if index < 26 else str(index + 1)
