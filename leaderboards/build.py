"""Gather leaderboard rows: our run directories (through harness/runs/) and published baselines."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, NamedTuple

from harness.errors import DataError, UsageError
from harness.runs import (
    MIRROR,
    RunDir,
    brief_value,
    data_differences,
    data_value,
    folder_tails,
    given_once,
    has_score,
    identity_differences,
    no_score_reason,
    one_line,
    only_tasks,
    open_run_arg,
    other_settings,
    run_labels,
    shown_path,
    with_implied_keys,
)
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
    mixed: dict[str, list[str]] = field(default_factory=dict)  # task → data keys on which our runs disagree
    groups: dict[str, list[list[str]]] = field(default_factory=dict)  # mixed task → row labels sharing its data
    settings: dict[str, str] = field(default_factory=dict)  # row label → its settings that differ within its model
    skipped: list[str] = field(default_factory=list)  # why each run --skip-damaged left out was (its error)


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


def run_entry(run: RunDir, record: dict[str, Any], label: str, with_dims: bool
              ) -> tuple[Entry, dict[str, dict[str, Any]], dict[str, str]]:  # fmt: skip
    """A run directory → its row, its per-task records (type, metric, source, status) and the tasks it kept from
    runs with other settings, with what differs (`harness.runs.other_settings`, as summary.md lists them).

    The row stands for the settings run.json records for the run; a kept task's score belongs to other settings,
    so it goes to `Entry.kept` (shown, marked `§`), not to the scores that coverage, means and Borda count."""
    tasks, kept = record.get("tasks", {}), other_settings(record)
    width = int((record.get("model") or {}).get("embed_dim") or 0)
    entry = Entry(label, "run", detail=shown_path(run.path), width=width)
    for name, task in tasks.items():
        if has_score(task):
            entry.sources[name] = task.get("source") or "official"
            if name in kept:
                entry.kept[name] = float(task["main_score"])
                continue
            entry.scores[name] = float(task["main_score"])
            if with_dims:
                for dim, score in run.dim_scores(name).items():
                    entry.dim_scores.setdefault(dim, {})[name] = score
    return entry, tasks, {name: kept[name] for name in entry.kept}


def published_names(models: list[tuple[Path, PublishedModel]]) -> list[str]:
    """How each (--published folder, model) row names its model: the model's name, followed for one model from
    several folders by the fewest trailing folders that tell its folders apart (`harness.runs.folder_tails`:
    `org/m [mirror-a]`, never a machine's absolute path), and by its model folder where two model folders of one
    --published folder name it (`org/m [pub/acme__m]`: a run's results copied in beside the real ones; before stop
    69 their notes read alike and the board was refused as two rows sharing a label)."""
    names = [model.name for _, model in models]
    tails = folder_tails(names, [folder for folder, _ in models])
    pairs = [(name, Path(folder).resolve()) for name, (folder, _) in zip(names, models, strict=True)]
    tails = [f"{tail}/{model.folder}" if pairs.count(pair) > 1 else tail
             for tail, pair, (_, model) in zip(tails, pairs, models, strict=True)]  # fmt: skip
    return [one_line(f"{name} [{tail}]" if names.count(name) > 1 else name)
            for name, tail in zip(names, tails, strict=True)]  # fmt: skip


def published_entry(model: PublishedModel, name: str) -> Entry:
    """A published model's row, ``name`` as `published_names` gives it."""
    entry = Entry(f"{name} (published)", "published", dict(model.scores), detail=f"revision {model.revision}")
    entry.sources = {t: "published" for t in model.scores}
    entry.partial = dict(model.partial)
    return entry


def opened_runs(runs: list[Path], skip_damaged: bool) -> tuple[list[RunDir], list[str]]:
    """The runs to rank, and what was said of each run left out: with ``skip_damaged``, one whose run.json is damaged
    or of another shape (a night's job killed mid-write on an old version; a board over `runs/*` then stopped on it,
    before stop 65 with no way round but naming every other run). A folder that is no run directory stays an error:
    a typo, not damage."""
    remedy = "" if skip_damaged else ("restore the file, leave this run directory out of the command, or add "
                                      "--skip-damaged to rank the others")  # fmt: skip
    opened, skipped = [], []
    for path in runs:
        try:
            opened.append(open_run_arg(Path(path), "run", remedy))
        except DataError as exc:  # what is wrong, and no remedy: the board says what it did
            if not skip_damaged:
                raise
            skipped.append(str(exc))
    return opened, skipped


def build_board(runs: list[Path], published: list[Path], suite: SuiteRef | None, with_dims: bool,
                tasks: list[str] | None = None, skip_damaged: bool = False) -> Board:
    """Rows for every run and published model, over the suite's tasks (or the tasks the runs hold; ``tasks``: only
    those of the runs' tasks). ``skip_damaged``: a run whose run.json is damaged is left out, with a note naming it
    and why, instead of stopping the board."""
    if not runs and not published:
        raise UsageError("nothing to rank: give run directories and/or --published")
    bench_name, bench_tasks = suite_tasks(suite.benchmark) if suite else (None, {})
    entries, types, metrics, notes = [], {}, {}, []
    order: list[str] = list(bench_tasks)
    scored: list[tuple[Entry, dict[str, dict[str, Any]]]] = []
    opened, skipped = opened_runs(runs, skip_damaged)
    if skipped:
        notes.append(f"Left out (--skip-damaged), damaged: {'; '.join(skipped)}.")
        if not opened:  # published rows alone would pass a nightly board whose runs are all damaged (review)
            raise UsageError(f"nothing to rank of ours: every run given is damaged ({'; '.join(skipped)})")
    run_records: list[tuple[Entry, dict[str, Any]]] = []
    read = [only_tasks(run.read_run(), tasks) for run in opened]
    idle = [] if suite or tasks else unattempted_tasks(read)
    for run, label, record in zip(opened, run_labels(opened), read, strict=True):
        entry, records, kept = run_entry(run, record, label, with_dims)
        run_records.append((entry, record))
        entries.append(entry)
        scored.append((entry, records))
        if kept:
            notes.append(kept_note(entry, kept))
        if damaged := run.damaged_results_note({name: record["tasks"][name] for name in entry.scores}, dims=with_dims):
            notes.append(f"{entry.label}: {damaged}.")
        if unscored := {name: task for name, task in records.items() if not has_score(task) and name not in idle}:
            notes.append(unscored_note(entry, unscored))
        for name, rec in records.items():
            if name in idle:
                continue
            types.setdefault(name, rec.get("type") or "Unknown")
            if rec.get("main_metric"):
                metrics.setdefault(name, rec["main_metric"])
            if not suite and name not in order:
                order.append(name)
    if idle:
        notes.append(f"Not run by any of the given runs (pending in each run that holds it: stopped before it), no "
                     f"column: {', '.join(idle)}.")  # fmt: skip
    if suite:
        outside = sorted({t for e in entries for t in e.scores} - set(order))
        if outside:
            notes.append(f"Run tasks outside {bench_name}, not shown: {', '.join(outside)}.")
    selections = {name: pick for name in order if (pick := scored_selection(scored, name)) is not None}
    wanted = {name: bench_tasks.get(name) or _selected(selections.get(name)) for name in order} if order else None
    given_once([Path(folder) for folder in published], "--published")
    loaded: list[tuple[Path, PublishedModel]] = []
    for folder in published:
        models = load_published(folder, wanted)
        if not models:  # a typo'd or empty folder must not read as "no baseline scored these tasks"
            raise UsageError(f"--published {folder}: no result files in the embeddings-benchmark/results layout "
                             "(<org>__<model>/<revision>/<Task>.json) under it")  # fmt: skip
        loaded += [(Path(folder), model) for model in models]
    for (folder, model), name in zip(loaded, published_names(loaded), strict=True):
        snapshot = folder.resolve() == SNAPSHOT
        where = "the shipped snapshot" if snapshot else shown_path(folder)
        # each skipped file by its path, shown as the folder is (before stop 64 by its task alone, "org/m: STS16
        # skipped — JSONDecodeError…", not saying which file to mend; a user's walk)
        base = "leaderboards/published" if snapshot else shown_path(folder)
        skipped = [f"{name}: {base}/{file} skipped — {why}" for file, why in model.skipped.items()]
        for metric in sorted(set(model.metrics.values())):  # one line per metric: mteb 1's reranking files, `map`
            tasks = [task for task, said in model.metrics.items() if said == metric]
            whose = "score of {} is its file's" if len(tasks) == 1 else "scores of {} are their files'"
            skipped.append(f"{name}: the published {whose.format(', '.join(tasks))} {metric}, not the Metric "
                           "column's: mteb has renamed or redefined the main score since; compare with care.")
        if not model.scores:
            notes += [f"{name} ({where}): no published score for these tasks; not shown.", *skipped]
            continue
        entries.append(published_entry(model, name))
        revision = (f"revision `{model.revision}`" if len(set(model.revisions.values())) == 1 else
                    f"revisions {model.revision}, each task's as mteb's leaderboard picks it")  # fmt: skip
        notes += [f"{name}: {revision} from {where}; {len(model.scores)} task(s).", *skipped]
        if not suite:
            order += [t for t in model.scores if t not in order]
    _fill_task_info(order, bench_tasks, types, metrics)
    differing = mixed_data(scored, order)
    mixed = dict(differing)
    notes += [mixed_note(task, keys, scored) for task, keys in mixed.items()]
    for task, (splits, subsets) in selections.items():
        bench = bench_tasks.get(task)
        if task in mixed or bench is None or (splits, subsets) == (list(bench.eval_splits), list(bench.hf_subsets)):
            continue
        mixed[task] = ["split", "subsets"]
        notes.append(f"‡ {task}: our runs scored {'+'.join(splits)} ({', '.join(subsets)}), {bench_name} scores "
                     f"{'+'.join(bench.eval_splits)} ({', '.join(bench.hf_subsets)}) — a run by `--tasks` takes mteb's "
                     f"whole task, `--suite` the benchmark's selection; so {task} earns no Borda points in a "
                     "ranking that holds rows of both.")  # fmt: skip
    for task in order:
        coverage = other_rows(scored, task) if task not in mixed else None
        if coverage and any(e.kind == "published" and task in e.scores for e in entries):
            mixed[task] = ["rows"]
            notes.append(f"‡ {task}: our runs scored a mirror whose rows are not mteb's ({coverage}), the published "
                         f"rows mteb's own; the two do not rank against each other, so {task} earns no Borda "
                         "points in a ranking that holds rows of both.")  # fmt: skip
    for task in order:
        notes += partial_notes(entries, task)
        if task not in mixed and len({e.partial.get(task, "") for e in entries if task in e.scores}) > 1:
            mixed[task] = ["splits"]
            notes.append(f"¶ {task}: a published row's score leaves out splits or subsets another row's covers, so "
                         f"{task} earns no Borda points in a ranking that holds rows of both.")  # fmt: skip
    labels = [e.label for e in entries]
    if len(set(labels)) != len(labels):
        raise UsageError("two rows share a label (rename a run folder to tell them apart): "
                         + ", ".join(sorted({label for label in labels if labels.count(label) > 1})))
    title = f"{bench_name} ({suite.name})" if suite else "tasks of the given runs"
    reported = any(Path(folder).resolve() == SNAPSHOT for folder in published)
    picks = {task: (list(b.eval_splits), list(b.hf_subsets)) if (b := bench_tasks.get(task)) else selections.get(task)
             for task in mixed}  # what each published file was scored on (None: not known here)
    groups = {task: task_groups(task, keys, differing.get(task, []), scored, entries, picks[task])
              for task, keys in mixed.items()}
    beside_published = any(e.kind == "published" for e in entries)
    return Board(title, order, types, metrics, entries, bench_name, notes, with_dims, reported, mixed, groups,
                 differing_settings(run_records, beside_published), skipped)  # fmt: skip


# Run-wide identity keys that move no row's scores: the model, which groups the rows, and the MRL prefixes scored
# besides the full vectors.
UNSCORED_KEYS = ("model_fingerprint", "dims")
# the evaluator's versions score every model alike, so they are compared between all rows, not only one model's
# (before stop 54, audit: two models scored under other scikit-learn or mteb versions were ranked without a word)
EVALUATOR_KEYS = ("mteb", "scoring")


def differing_settings(runs: list[tuple[Entry, dict[str, Any]]], beside_published: bool = False) -> dict[str, str]:
    """Row label → the run settings (run.json `identity`) in which it differs from other rows of its model (same
    fingerprint, else spec), or from any row for EVALUATOR_KEYS: max length, dtype, pooling, prompts, dim view,
    every key but UNSCORED_KEYS, so a setting added to the identity is compared without a change here. Before,
    only the run name told such rows apart. A key only some runs record is compared among those (as
    `data_differences`). ``beside_published``: a row computed below float32 names its dtype whatever its model's
    other rows (before stop 52, audit, a bf16 minilm row ranked beside published float32 scores with no dtype
    anywhere on the board)."""
    groups: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for entry, record in runs:
        identity, model = with_implied_keys(record.get("identity") or {}), record.get("model", {})
        if name := model.get("fingerprint") or identity.get("model_fingerprint") or model.get("spec"):
            groups.setdefault(name, []).append((entry.label, identity))
    found: dict[str, list[str]] = {}
    # the evaluator's keys are compared once, between every row (per model too, a row listed them twice)
    comparisons = [(rows, identity_differences([i for _, i in rows], UNSCORED_KEYS + EVALUATOR_KEYS))
                   for rows in groups.values()]  # fmt: skip
    everyone = [row for rows in groups.values() for row in rows]
    evaluator = [k for k in identity_differences([i for _, i in everyone], UNSCORED_KEYS) if k in EVALUATOR_KEYS]
    for rows, keys in [*comparisons, (everyone, evaluator)]:
        for key in keys:
            held = [identity[key] for _, identity in rows if key in identity]
            for label, identity in rows:
                part = _setting(key, identity[key], held) if key in identity else None
                if part and part not in found.get(label, []):
                    found.setdefault(label, []).append(part)
    if beside_published:
        for label, identity in (row for rows in groups.values() for row in rows):
            dtype = identity.get("dtype")
            if dtype not in (None, "float32") and f"dtype {brief_value(dtype)}" not in found.get(label, []):
                found.setdefault(label, []).append(f"dtype {brief_value(dtype)}")
    return {label: ", ".join(parts) for label, parts in found.items()}


def partial_notes(entries: list[Entry], task: str) -> list[str]:
    """`¶` notes: the published rows whose score for a task leaves out some of the splits/subsets it is scored on
    (the mean over what their file holds)."""
    return [f"¶ {e.label}: {task} is the mean over what its result file holds — {e.partial[task]}." for e in entries
            if task in e.partial]


def other_rows(runs: list[tuple[Entry, dict[str, dict[str, Any]]]], task: str) -> str | None:
    """"test.jsonl 2000 rows, mteb's test 2000; train.jsonl 15958 rows, mteb's train 16000" when a run scored a
    mirror whose rows differ from its mteb twin's (run.json's `full_split`, from task.json's counts against mteb's
    statistics for every split the score depends on: a sample, or another split), else None."""
    for entry, records in runs:
        record = records.get(task, {})
        if task not in entry.scores or record.get("source") != MIRROR or record.get("full_split") is True:
            continue
        if record.get("full_split") is False:
            return str(record.get("split_coverage"))
        # not known to be whole (mteb's statistics lack a count to compare, or a record from before stop 35): not
        # taken for the split (audit, stop 48: a 100-query sample ranked first against published full-split rows)
        return f"{record.get('split_coverage') or 'its row counts'}: not known to be mteb's whole split"
    return None


def scored_selection(runs: list[tuple[Entry, dict[str, dict[str, Any]]]], task: str
                     ) -> tuple[list[str], list[str]] | None:  # fmt: skip
    """(splits, subsets) our runs scored a task on, when every run that records them agrees; else None."""
    picks = {(tuple(records[task]["split"]), tuple(records[task]["subsets"])) for entry, records in runs
             if task in entry.scores and records[task].get("split") and records[task].get("subsets")}  # fmt: skip
    if len(picks) != 1:
        return None
    splits, subsets = picks.pop()
    return list(splits), list(subsets)


def _selected(selection: tuple[list[str], list[str]] | None) -> Any | None:
    """What a published file is scored on without a suite: exactly the splits and subsets our runs scored (a run
    of the suite scored the benchmark's selection; a file lacking one of them gives no score), else mteb's whole
    task (None: `load_published` asks mteb)."""
    if selection is None:
        return None
    return SimpleNamespace(eval_splits=selection[0], hf_subsets=selection[1], exact=True)


def kept_note(entry: Entry, kept: dict[str, str]) -> str:
    """What a row's `§` cells were computed under: each kept task with the settings that differ from the run's."""
    tasks = "; ".join(f"{task} ({settings})" for task, settings in kept.items())
    return (f"§ {entry.label}: kept from an earlier run into {entry.detail} under other settings than the run's, so "
            f"shown but counted in none of this row's coverage, means or Borda points — {tasks}.")  # fmt: skip


def unattempted_tasks(records: list[dict[str, Any]]) -> list[str]:
    """Tasks that every run holding them left pending (stopped before them): without --suite they are no column, so
    an interrupted run that finished nothing does not add gaps to the other rows, nor pull published scores for a
    task none of ours ran (a user's walk, stop 64: me5-intr beside me5 made AFQMC a column, me5's complete row 5/6†
    and moved the published rows' Borda points). Kept when no other task is left, so the board still has columns."""
    held = [record.get("tasks", {}) for record in records]
    names = list(dict.fromkeys(name for tasks in held for name in tasks))
    idle = [n for n in names if all(tasks[n].get("status") == "pending" for tasks in held if n in tasks)]
    return idle if len(idle) < len(names) else []


def unscored_note(entry: Entry, unscored: dict[str, dict[str, Any]]) -> str:
    """Why a row has no score for tasks its run attempted (failed, data missing, not run yet, a NaN score): a bare
    `—` read as a task the run never ran, and a night that failed a task looked like a night that skipped it."""
    tasks = "; ".join(f"{name} ({no_score_reason(task)})" for name, task in unscored.items())
    return f"{entry.label}: no score for {tasks} — shown as `—`, a gap of the row."


def mixed_data(runs: list[tuple[Entry, dict[str, dict[str, Any]]]], tasks: list[str]) -> dict[str, list[str]]:
    """Tasks our runs scored on different data (harness.runs.data_differences over the runs with a score), with
    the keys that differ: their scores cannot be ranked against each other."""
    mixed = {}
    for task in tasks:
        differing = data_differences([records[task] for entry, records in runs if task in entry.scores])
        if differing:
            mixed[task] = differing
    return mixed


def run_groups(task: str, keys: list[str], runs: list[tuple[Entry, dict[str, dict[str, Any]]]]
               ) -> list[tuple[list[Any], list[str]]]:  # fmt: skip
    """Our runs with a score for a task, grouped by their values of the differing data keys (one group for none)."""
    groups: list[tuple[list[Any], list[str]]] = []
    for entry, records in runs:
        if task not in entry.scores:
            continue
        values = [data_value(records[task], key) for key in keys]
        for known, labels in groups:
            if known == values:
                labels.append(entry.label)
                break
        else:
            groups.append((values, [entry.label]))
    return groups


def task_groups(task: str, why: list[str], differing: list[str], runs: list[tuple[Entry, dict[str, dict[str, Any]]]],
                entries: list[Entry], published_pick: tuple[list[str], list[str]] | None = None,
                ) -> list[list[str]]:  # fmt: skip
    """The labels of the rows that scored an unranked task (``why``: the board's `mixed` keys) on the same data:
    our runs by their values of the ``differing`` data keys, published rows by what of the task their files hold
    (`Entry.partial`). Our runs share the published rows' data when the task is unranked for a published file's
    missing splits alone (["splits"]), and a group of them does when it scored mteb's whole split on the splits
    and subsets the published files were scored on (``published_pick``; `on_published_data`): before stop 60 a
    full-split run was ranked apart from the published rows as soon as a sample run joined the board. The rest
    (a sample, another split, data not known to be whole) are apart."""
    ours = [labels for _, labels in run_groups(task, differing, runs)]
    published: dict[str, list[str]] = {}
    for e in entries:
        if e.kind == "published" and task in e.scores:
            published.setdefault(e.partial.get(task, ""), []).append(e.label)
    if why == ["splits"] and ours:
        published.setdefault("", []).extend(ours.pop())
    elif "" in published and published_pick is not None:
        whole = [labels for labels in ours if on_published_data(task, labels, runs, published_pick)]
        if len(whole) == 1:  # two such groups differ in their data (another dataset revision): neither is known to
            ours.remove(whole[0])  # hold the published rows' data, so both stay apart
            published[""] += whole[0]
    return ours + list(published.values())


def on_published_data(task: str, labels: list[str], runs: list[tuple[Entry, dict[str, dict[str, Any]]]],
                      pick: tuple[list[str], list[str]]) -> bool:  # fmt: skip
    """Whether every run of ``labels`` scored a task on mteb's own rows (the official dataset, or a mirror known
    to hold its twin's whole split) and on the splits and subsets ``pick`` the published files were scored on."""
    scored = [records[task] for entry, records in runs if entry.label in labels]
    return all((r.get("source") != MIRROR or r.get("full_split") is True)
               and [list(r.get("split") or []), list(r.get("subsets") or [])] == [list(pick[0]), list(pick[1])]
               for r in scored)  # fmt: skip


def mixed_note(task: str, keys: list[str], runs: list[tuple[Entry, dict[str, dict[str, Any]]]]) -> str:
    """Which runs scored which data for a task: runs grouped by their values of the differing keys."""
    parts = []
    for values, labels in run_groups(task, keys, runs):
        fields = ", ".join(f"{key} {brief_value(value)}" for key, value in zip(keys, values, strict=True))
        parts.append(f"{', '.join(labels)}: {fields}")
    differ = f"{', '.join(keys)} {'differ' if len(keys) > 1 else 'differs'}"
    return (f"‡ {task}: the runs scored different data ({differ}), so {task} earns no Borda points in a ranking "
            f"that holds rows of two of them — {'; '.join(parts)}.")  # fmt: skip


def _setting(key: str, value: Any, held: list[Any]) -> str:
    """`max_length 256`; of a table too long to show whole (the versions of four packages), the entries in which
    the rows differ (`scoring.scikit-learn 1.6.1`), which the cut would hide."""
    if isinstance(value, dict) and brief_value(value).endswith("…`") and all(isinstance(other, dict) for other in held):
        parts = [f"{key}.{k} {brief_value(value[k])}" for k in value if any(other.get(k) != value[k] for other in held)]
        if parts:
            return ", ".join(parts)
    return f"{key} {brief_value(value)}"


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
