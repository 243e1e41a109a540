"""What a run.json record says, for every reader that compares or ranks runs: which tasks hold a score, under
which settings each was computed (a task kept from an earlier run into the directory), which data it scored, how
it was timed. Pure functions of the parsed record.
"""

from __future__ import annotations

import json
import math
import os
from collections import Counter
from typing import Any

from harness.runs.text import brief_value, changed_entries, paths_apart, shown_path, shown_setting

OFFICIAL, MIRROR, MISSING = "official", "mirror", "missing"  # a task's source, as run.json records it


# The task-record fields that say which data a score was computed on, and by which metric; not "path": the same
# rows may live elsewhere. `data` is the task's recorded data identity (harness/identity.py): a mirror's file hash,
# an official task's dataset revision, so replaced rows behind an unchanged sampling note count as other data;
# `main_metric` another score of the same rows (a task.json edit, an mteb upgrade), never comparable either.
SAME_DATA_KEYS = ("source", "sampling", "data_source", "split", "subsets", "data", "main_metric")


def data_differences(records: list[dict[str, Any]]) -> list[str]:
    """The SAME_DATA_KEYS on which run.json records of one task disagree: those runs scored different data, so
    their scores must not be compared (regress, leaderboard and report all ask this). A key only some records
    hold is compared among those: older records lack some keys, and a missing key is not a difference. Mirrors
    with one file hash read the same rows whatever split name was recorded (before stop 26 a mirror without an
    mteb twin recorded "test" for dev rows), so their split names are not compared."""
    hashes = {_data_key(record) for record in records}
    same_files = None not in hashes and len(hashes) == 1 and all(r.get("source") == MIRROR for r in records)
    differing = []
    for key in SAME_DATA_KEYS:
        if key == "split" and same_files:
            continue
        values = [value for record in records if (value := data_value(record, key)) is not None]
        if any(value != values[0] for value in values[1:]):
            differing.append(key)
    return differing


def data_apart(records: list[dict[str, Any]], sides: tuple[str, ...] = ("baseline", "candidate")) -> list[str]:
    """What `data_differences` finds, said with each side's value: `data differs: baseline `sha256:cf96706e…`,
    candidate `sha256:0b1c…``, a file hash by its start, as the leaderboard's `‡` note shows the values. Before,
    regress said "not comparable (data differ)" without saying what (a user's walk, stop 64)."""
    found = []
    for key in data_differences(records):
        shown = values_apart([data_value(record, key) for record in records], 16 if key == "data" else 70)
        found.append(f"{key} differs: " + ", ".join(f"{side} {text}" for side, text in zip(sides, shown, strict=True)))
    return found


def values_apart(values: list[Any], chars: int) -> list[str]:
    """Each value as `brief_value` shows it, narrowed to where they differ, so two sides never read alike: tables to
    their differing keys (a `data_source` whose commit alone moved showed `repo/path` on both sides), texts cut from
    a little before their first difference (two sampling notes differing past the cut read the same; a review,
    stop 64)."""
    if all(isinstance(value, dict) for value in values):
        keys = [k for k in dict.fromkeys(k for value in values for k in value)
                if len({json.dumps(value.get(k), sort_keys=True) for value in values}) > 1]  # fmt: skip
        return [", ".join(f"{k} {brief_value(value.get(k), chars)}" for k in keys) for value in values]
    shown = [brief_value(value, chars) for value in values]
    if len(set(shown)) == 1 and all(isinstance(value, str) for value in values):
        start = max(len(os.path.commonprefix(values)) - 8, 0)
        shown = ["`…" + brief_value(value[start:], chars)[1:] for value in values]
    return shown


def _data_key(record: dict[str, Any]) -> str | None:
    return (record.get("identity") or {}).get("data")


def data_value(record: dict[str, Any], key: str) -> Any:
    """A task record's value of one SAME_DATA_KEYS key (`data`: its identity's data hash), as `data_differences`
    compares it: the leaderboard's `‡` notes show these same values."""
    return _data_key(record) if key == "data" else record.get(key)


def has_score(task: dict[str, Any]) -> bool:
    """Whether a run.json task record holds a finished score: status ok and a finite main score. A NaN (a record
    from before `harness run` refused one, or edited) is no score: the leaderboard crashed ranking it, and
    `harness regress` called it *within noise* (the per-item check cannot reproduce NaN, nor tell it apart)."""
    score = task.get("main_score")
    return task.get("status") == "ok" and score is not None and math.isfinite(score)


REASON_CHARS = 160  # of an error's first line, in a leaderboard's or report's notes


def no_score_reason(task: dict[str, Any]) -> str:
    """Why a task record holds no score (`has_score`), in one line: its status and the first line of its error,
    the data root shown as `shown_path` shows it (no machine's absolute path in a report)."""
    if task.get("status") == "ok":
        return f"status ok but its main score is {task.get('main_score')}"
    why = str(task.get("error") or task.get("reason") or "no score").splitlines()[0]
    root = task.get("data_root")
    why = why.replace(root, shown_path(root)) if root else why
    if len(why) > REASON_CHARS:  # at a word's end, marked: before stop 63 cut mid-word (and mid-path) without a sign
        why = why[:REASON_CHARS].rsplit(" ", 1)[0] + " …"
    return f"status {task.get('status')}: {why}"


def coverage_line(label: str, sources: dict[str, str]) -> str:
    """'<label>: 13/31 tasks — 0 official, 13 mirror, 18 missing: <names>' for tasks by name → source."""
    counts = Counter(sources.values())
    line = (f"{label}: {len(sources) - counts[MISSING]}/{len(sources)} tasks — {counts[OFFICIAL]} official, "
            f"{counts[MIRROR]} mirror, {counts[MISSING]} missing")  # fmt: skip
    missing = [name for name, source in sources.items() if source == MISSING]
    return line + (f": {', '.join(missing)}" if missing else "")


def record_coverage(record: dict[str, Any]) -> str:
    """The coverage of what a run directory holds: every task its run.json records (scored, failed, pending or
    missing), each by its recorded source, under the record's suite (`tasks` for none). Before stop 63 it was the
    last run's plan: a `--tasks` subset run into a suite's folder relabelled a 13/31 folder `1/1 tasks`."""
    sources = {name: task.get("source", "") for name, task in record.get("tasks", {}).items()}
    failed = [name for name, task in record.get("tasks", {}).items() if task.get("status") == "failed"]
    # a task with data whose evaluation failed: before stop 67 the line read "7/7 … 0 missing" beside it (a walk)
    return coverage_line(record.get("suite") or "tasks", sources) + (
        f"; {len(failed)} failed: {', '.join(failed)}" if failed else "")  # fmt: skip


def scored_tasks(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A run.json's tasks that hold a finished score (`has_score`), for every reader that ranks or compares them."""
    return {name: task for name, task in record.get("tasks", {}).items() if has_score(task)}


# What a run identity with dims but no `dim_view` scored them on: every such view was renormalised (a unit-vector
# model's until stop 35, an st: folder without Normalize's until stop 31), where a view now is the raw prefix
RENORMALISED_VIEW = "renormalised prefixes (before stop 35)"

RAW_VIEW = "raw prefixes"  # `dim_view` of every run with dims since: harness.identity, ablate's eval settings


def other_views(record: dict[str, Any]) -> dict[str, str]:
    """Finished tasks whose dim results are not raw prefixes (`dim_view`; before stop 35 they were renormalised), each
    task by its own identity: the run's is the latest run's, which may have asked for no dims at all. regress
    refuses them at a dim; the efficiency report's MRL curves leave them out."""
    found = {}
    for name, task in record.get("tasks", {}).items():
        identity = with_implied_keys(task.get("identity") or {})
        if task.get("status") == "ok" and identity.get("dims") and identity.get("dim_view") != RAW_VIEW:
            found[name] = f"dim_view {shown_setting(identity.get('dim_view'))}"
    return found


# identity keys harness/identity.py leaves out at their default, so that results recorded before the key existed
# stay valid: what their absence means
IMPLIED_DEFAULTS = {"pad_multiple": 1, "kernels": None, "similarity_fn_name": "cosine"}


def with_implied_keys(identity: dict[str, Any]) -> dict[str, Any]:
    """`identity` with what an older version left unsaid said: a run with dims and no `dim_view` scored them on
    renormalised prefixes. Without it, comparing such a run with a newer one would pass over the convention, a key
    only one side holds (for classification 30.65 renormalised against 27.42 as the raw prefix, minilm, 64 dims).
    Likewise the keys recorded only away from their default (IMPLIED_DEFAULTS)."""
    if identity.get("dims") and "dim_view" not in identity:
        identity = {**identity, "dim_view": RENORMALISED_VIEW}
    if identity:  # keys recorded only away from their default (harness/identity.py): before stop 52 (audit) a run
        # padded to 16 against one padded to the longest showed no differing setting in regress or the leaderboard
        identity = {**IMPLIED_DEFAULTS, **identity}
    return identity


def identity_differences(identities: list[dict[str, Any]], skip: tuple[str, ...] = ()) -> list[str]:
    """The keys (other than ``skip``) on which run identities (run.json `identity`) disagree: the settings a gap
    between the runs may owe to. A key only some identities hold is compared among those, as `data_differences`
    does; every key is looked at, so a setting added to the identity is compared without a change here. The
    leaderboard's "Settings that differ" and regress's header both ask this."""
    differing = []
    for key in dict.fromkeys(k for identity in identities for k in identity if k not in skip):
        held = [identity[key] for identity in identities if key in identity]
        if any(value != held[0] for value in held[1:]):
            differing.append(key)
    return differing


# The identity keys that belong to the task itself (harness/identity.py); every other key is a setting of the whole
# run, recorded once in run.json (`identity`), against which `other_settings` compares each task's.
TASK_KEYS = ("source", "data")


# identity keys that move no full-width score: the MRL dims asked for and how they are viewed (before stop 47 only
# regress ignored them; summary, leaderboard and efficiency report marked an identical score "kept from other
# settings" after a rerun into the directory with other --dims, and left it out of means and ranks)
DIM_KEYS = ("dims", "dim_view")


# the settings besides the identity that move a task's speed, not its vectors: a kept timing (`earlier_timing`) must
# have been measured under this run's, which the reports show beside it
SPEED_KEYS = ("batch_size", "max_batch_tokens", "dtype", "device", "world_size", "threads", "processor")


def same_vectors(old: dict[str, Any] | None, new: dict[str, Any] | None) -> bool:
    """Whether two task identities differ at most in the MRL dims scored besides (DIM_KEYS): then both evaluations
    computed the same vectors and the same full-width score."""
    if not old or not new:
        return False
    return {k: v for k, v in old.items() if k not in DIM_KEYS} == {k: v for k, v in new.items() if k not in DIM_KEYS}


def only_tasks(record: dict[str, Any], tasks: list[str] | None) -> dict[str, Any]:
    """A run.json record narrowed to ``tasks`` (None: as it is), for a report over a chosen task list: a run
    directory also holds the tasks of earlier runs into it (a pipeline whose [eval] tasks were narrowed)."""
    if tasks is None:
        return record
    wanted = set(tasks)
    return {**record, "tasks": {n: t for n, t in record.get("tasks", {}).items() if n in wanted}}


def other_settings(record: dict[str, Any], ignore: tuple[str, ...] = DIM_KEYS) -> dict[str, str]:
    """Finished tasks computed under settings other than the run's: task → 'dtype bfloat16, max_length 8'; keys in
    ``ignore`` are not compared (by default the dims, which move no full-width score; ``()`` compares them too).

    Such a task was kept from an earlier run into the directory; summary.md lists it and the leaderboard marks it,
    both from this answer. Every identity key is compared (a key only one side has counts as a difference), against
    the run's own (run.json `identity`), so a setting added to the identity is flagged without a change here. The
    task's own keys (`source`, `data`) have no run-wide value: a mirror task is flagged when it was read from another
    data root than the header's, whose rows its score must not pass for; shown as `shown_path` does (by as many
    trailing folders as tell it from the header's root, `paths_apart`: `…/data` beside a header's `…/data` told
    nothing, a user's walk, stop 64), with the start of its files' hash (identity `data`)."""
    current = record.get("identity", {})
    root = record.get("data_root")
    found = {}
    for name, task in record.get("tasks", {}).items():
        identity = task.get("identity") or {}
        if task.get("status") != "ok" or not identity:
            continue
        diff = [f"{name} {shown_setting(value)}" for k in settings_apart(identity, current, ignore)
                for name, value, _ in changed_entries(k, identity.get(k), current.get(k))]  # fmt: skip
        if task.get("source") == MIRROR and task.get("data_root", root) != root:
            files = identity.get("data") or ""
            shown = paths_apart(task["data_root"], root)[0]  # `…/walk64c/data` beside the run's `…/shared/data`
            diff.append(f"data root {shown}" + (f" (files {files[:15]}…)" if files else ""))
        if diff:
            found[name] = ", ".join(diff)
    return found


def settings_apart(identity: dict[str, Any], current: dict[str, Any], ignore: tuple[str, ...] = DIM_KEYS) -> list[str]:
    """The run-wide keys (not TASK_KEYS, not ``ignore``) on which a task's identity differs from its run's header
    (``current``), a key only one side holds included: what `other_settings` shows, and all that regress needs the
    other run's task to share for a kept task to be compared like for like."""
    return [k for k in dict.fromkeys([*identity, *current])
            if k not in TASK_KEYS and k not in ignore and identity.get(k) != current.get(k)]  # fmt: skip


# models whose engine runs a batch's texts concatenated, bounded by tokens alone: no batch size applies to them
PACKED_MODELS = ("me5-small",)


def applied_batch(record: dict[str, Any]) -> int | None:
    """A run's batch size (run.json `batch_size`) as applied: none for a model that packs its texts, whatever a run
    from before stop 54 recorded (the unused --batch-size, 64), so the two compare alike (review)."""
    return None if record.get("model", {}).get("spec") in PACKED_MODELS else record.get("batch_size")


def shown_batch(record: dict[str, Any]) -> str:
    """A run's batch size as reports show it: "by tokens (packed)" for a model that packs its texts (me5-small)."""
    if "batch_size" not in record:
        return "—"
    batch = applied_batch(record)
    return "by tokens (packed)" if batch is None else str(batch)


CACHE_ONLY = "cache only (no model time)"


def timed_world(record: dict[str, Any], eff: dict[str, Any]) -> int:
    """The number of processes that timed a task: its efficiency entry's, else the run's (entries before stop 47
    carry none). A task kept from a torchrun run in a one-process run's folder differs from run.json's header."""
    return int(eff.get("world_size", record.get("world_size", 1)))


def other_worlds(record: dict[str, Any], efficiency: dict[str, Any]) -> dict[str, int]:
    """The tasks of ``efficiency`` (efficiency.json's) timed by another number of processes than run.json's header
    (`timed_world`): a one-process run into a directory keeps a torchrun run's tasks, whose header then says 1."""
    world = record.get("world_size", 1)
    return {t: w for t, e in efficiency.items() if (w := timed_world(record, e)) != world}


def measured(eff: dict[str, Any]) -> bool:
    """True when a task's record times real model work: model_s and texts encoded, or an old record without hits.
    No record (an efficiency.json removed as its damage error advises, or lost) times nothing: before stop 50 it
    counted as 0 texts in 0 s, so a row read 0.00 s, or a sum over fewer tasks than its header said."""
    if not eff:
        return False
    if "model_s" in eff:
        return bool(eff.get("encoded_texts")) and bool(eff["model_s"])
    return not eff.get("cache_hits")


def cache_only(eff: dict[str, Any]) -> bool:
    """True when the embedding cache served every text of a task (efficiency.json's record): the model did no work,
    so there is no rate to show, and a blank would read as a missing figure (summary.md, reports, regress)."""
    return "model_s" in eff and not eff.get("encoded_texts") and bool(eff.get("cache_hits"))
