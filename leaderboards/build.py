"""Gather leaderboard rows: our run directories (through harness/runs.py) and published baselines."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from harness.errors import UsageError
from harness.runs import open_run
from leaderboards.published import SNAPSHOT, PublishedModel, load_published
from leaderboards.table import Entry

REPORTED_MEANS = SNAPSHOT / "reported_means.json"


@dataclass
class Board:
    """Everything the renderer needs: the task list (suite order), types, metrics, entries and notes."""

    title: str
    tasks: list[str]
    types: dict[str, str]
    metrics: dict[str, str]
    entries: list[Entry]
    benchmark: str | None = None
    notes: list[str] = field(default_factory=list)
    dims: bool = False
    reported: bool = False  # show the shipped snapshot's reported averages (only when it is used)


class SuiteRef(NamedTuple):
    """A suite to rank over: its name (for the title) and the mteb benchmark it stands for. The caller resolves the
    name (`harness.suites.official_benchmark`): the suite table belongs to the harness, and leaderboards import only
    its run directory."""

    name: str
    benchmark: str


def suite_tasks(benchmark: str) -> tuple[str, dict[str, Any]]:
    """mteb benchmark name and its tasks (as filtered by the benchmark: splits, subsets)."""
    import mteb

    bench = mteb.get_benchmark(benchmark)
    return bench.name, {t.metadata.name: t for t in bench.tasks}


def run_entry(path: Path, with_dims: bool) -> tuple[Entry, dict[str, dict[str, Any]]]:
    """A run directory → its row and its per-task records (type, metric, source, status)."""
    try:
        run = open_run(Path(path))
    except (FileNotFoundError, KeyError) as exc:
        raise UsageError(f"{path}: not a run directory ({exc})") from None
    record = run.read_run()
    tasks = record.get("tasks", {})
    model = record.get("model", {}).get("name") or run.model_name
    entry = Entry(f"{model.split('/')[-1]} [{run.path.name}]", "run", detail=str(run.path))
    for name, task in tasks.items():
        if task.get("status") == "ok" and task.get("main_score") is not None:
            entry.scores[name] = float(task["main_score"])
            entry.sources[name] = task.get("source") or "official"
            if with_dims:
                for dim, score in run.dim_scores(name).items():
                    entry.dim_scores.setdefault(dim, {})[name] = score
    return entry, tasks


def published_entry(model: PublishedModel) -> Entry:
    entry = Entry(f"{model.name} (published)", "published", dict(model.scores), detail=f"revision {model.revision}")
    entry.sources = {t: "published" for t in model.scores}
    return entry


def build_board(runs: list[Path], published: list[Path], suite: SuiteRef | None, with_dims: bool) -> Board:
    """Rows for every run and published model, over the suite's tasks (or the tasks the runs hold)."""
    if not runs and not published:
        raise UsageError("nothing to rank: give run directories and/or --published")
    bench_name, bench_tasks = suite_tasks(suite.benchmark) if suite else (None, {})
    entries, types, metrics, notes = [], {}, {}, []
    order: list[str] = list(bench_tasks)
    for path in runs:
        entry, records = run_entry(path, with_dims)
        entries.append(entry)
        for name, rec in records.items():
            types.setdefault(name, rec.get("type") or "Unknown")
            if rec.get("main_metric"):
                metrics.setdefault(name, rec["main_metric"])
            if not suite and name not in order:
                order.append(name)
    if suite:
        outside = sorted({t for e in entries for t in e.scores} - set(order))
        if outside:
            notes.append(f"Run tasks outside {bench_name}, not shown: {', '.join(outside)}.")
    wanted = {name: bench_tasks.get(name) for name in order} if order else None
    for folder in published:
        where = "the shipped snapshot" if Path(folder).resolve() == SNAPSHOT else str(folder)
        for model in load_published(folder, wanted):
            if not model.scores:
                notes.append(f"{model.name} ({where}): no published score for these tasks; not shown.")
                continue
            entries.append(published_entry(model))
            notes.append(f"{model.name}: revision `{model.revision}` from {where}; {len(model.scores)} task(s).")
            notes += [f"{model.name}: {task} skipped — {why}" for task, why in model.skipped.items()]
            if not suite:
                order += [t for t in model.scores if t not in order]
    _fill_task_info(order, bench_tasks, types, metrics)
    labels = [e.label for e in entries]
    if len(set(labels)) != len(labels):
        raise UsageError("two rows share a label (same run directory name twice?): " + ", ".join(labels))
    title = f"{bench_name} ({suite.name})" if suite else "tasks of the given runs"
    reported = any(Path(folder).resolve() == SNAPSHOT for folder in published)
    return Board(title, order, types, metrics, entries, bench_name, notes, with_dims, reported)


def _fill_task_info(tasks: list[str], bench_tasks: dict[str, Any], types: dict[str, str],
                    metrics: dict[str, str]) -> None:  # fmt: skip
    """Type and main metric of tasks that no run recorded, from mteb's task metadata."""
    import mteb

    for name in tasks:
        if name in types and name in metrics:
            continue
        task = bench_tasks.get(name)
        if task is None:
            try:
                task = mteb.get_task(name)
            except (KeyError, ValueError):
                task = None
        if task is not None:
            types.setdefault(name, task.metadata.type)
            metrics.setdefault(name, task.metadata.main_score)
        types.setdefault(name, "Unknown")


def reported_means(benchmark: str | None) -> list[dict[str, Any]]:
    """Averages a paper reports for the benchmark (for models whose per-task scores are not published)."""
    if benchmark is None or not REPORTED_MEANS.is_file():
        return []
    data = json.loads(REPORTED_MEANS.read_text(encoding="utf-8"))
    return [row for row in data.get("rows", []) if row.get("benchmark") == benchmark]
