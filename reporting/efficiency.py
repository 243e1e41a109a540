"""`harness report`: efficiency.md + PNG plots for one or more runs.

The paper's Table 5 (size, embedding dim, inference time, MRL, average score) for our runs, with the hardware,
dtype and batch size that make the times comparable; per-task throughput and memory; score vs MRL dimension.
Reads run records only (harness/runs/); model sizes come from the run record or mteb's model
registry, never from loading a model or reading the files a record names.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from statistics import mean
from typing import Any

from harness.errors import UsageError
from harness.runs import (
    CACHE_ONLY,
    RunDir,
    atomic_write_text,
    bullets,
    cache_only,
    counted,
    data_differences,
    md_table,
    measured,
    only_tasks,
    open_run_arg,
    other_settings,
    other_views,
    other_worlds,
    percent,
    run_labels,
    scored_tasks,
    shown_batch,
    shown_path,
)
from reporting import plots
from reporting.hardware import busy_note, hardware_note, hardware_table


@dataclass
class RunInfo:
    """What the report needs from one run directory."""

    label: str
    run: RunDir
    record: dict[str, Any]
    efficiency: dict[str, Any]

    @cached_property
    def ok(self) -> dict[str, dict[str, Any]]:
        """Finished tasks scored under the run's own settings (a task kept from a run with other settings is
        another configuration's score and time, not this row's)."""
        return {n: t for n, t in scored_tasks(self.record).items() if n not in self.kept}

    @cached_property
    def kept(self) -> dict[str, str]:
        return other_settings(self.record)

    @cached_property
    def other_world(self) -> dict[str, int]:
        """Tasks timed by another number of processes than the run.json header's (a one-process run into a
        directory keeps a torchrun run's tasks): their scores are the row's (they do not depend on it), their
        times are not (before stop 47, audit, a 2-process rate fed the row's under `world size 1`)."""
        return other_worlds(self.record, self.efficiency)


def load_runs(paths: list[Path], tasks: list[str] | None = None) -> list[RunInfo]:
    """The runs to report, labelled as the leaderboard labels them (`harness.runs.run_labels`): runs/a/minilm beside
    nightly/minilm are `[a/minilm]` and `[nightly/minilm]` in every table and plot (before, an error)."""
    runs = [open_run_arg(path, "run") for path in paths]
    return [RunInfo(label, run, only_tasks(run.read_run(), tasks),
                    {t: e for t, e in run.finished_efficiency().items() if tasks is None or t in tasks})
            for run, label in zip(runs, run_labels(runs), strict=True)]  # fmt: skip


def parameters(model: dict[str, Any]) -> tuple[int | None, str]:
    """(parameter count, where it came from): run.json's `model.n_parameters` (`harness run` counts the loaded
    module), else mteb's model registry by name, else (None, "unknown"). Never a file the record names: before stop 69
    (a walk) a null count sent the report through the spec's folder, opening every *.safetensors under it, so a
    foreign run.json's `conan:/usr` walked all of /usr and a forged header was a SafetensorError traceback."""
    if model.get("n_parameters"):
        return int(model["n_parameters"]), "run.json"
    try:
        import mteb

        count = mteb.get_model_meta(str(model.get("name") or "")).n_parameters
    except Exception:  # noqa: BLE001 - unknown to mteb's registry
        count = None
    return (int(count), "mteb model registry") if count else (None, "unknown")


def encoded(eff: dict[str, Any]) -> tuple[int, int, float]:
    """(texts encoded, tokens encoded, model seconds) of one task: real model work, cache and memo hits apart.

    Records from before `model_s` existed only have `encode_s`, which includes the lookups."""
    return int(eff.get("encoded_texts", eff.get("unique_texts")) or 0), int(eff.get("tokens") or 0), \
        float(eff.get("model_s", eff.get("encode_s")) or 0.0)  # fmt: skip


def rates(eff: dict[str, Any]) -> tuple[float | None, float | None]:
    """(texts/s, tokens/s) of what the model encoded in one task: the record's own rates, from the unrounded model
    time (summary.md shows them), else the counts over `model_s` (before stop 50 always this, which divides by the
    recorded 3-decimal time: 583.3 texts/s here where summary.md says 583.2)."""
    texts, tokens, seconds = encoded(eff)
    return (eff.get("texts_per_s") or (texts / seconds if seconds and texts else None),
            eff.get("tokens_per_s") or (tokens / seconds if seconds and tokens else None))


def _throughput(info: RunInfo, tasks: list[str]) -> tuple[float, float | None, float | None]:
    texts = tokens = seconds = 0.0
    for task in tasks:
        n, k, s = encoded(info.efficiency.get(task, {}))
        texts, tokens, seconds = texts + n, tokens + k, seconds + s
    return seconds, (texts / seconds if seconds else None), (tokens / seconds if seconds else None)


def _fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def table5(infos: list[RunInfo]) -> tuple[str, list[str]]:
    """The paper's Table 5 shape for our runs: scores and times over the same tasks in every row.

    Both are taken over the tasks every run finished on the same data (harness.runs.data_differences), so rows
    compare like for like. With `model_s` recorded, cache hits do not distort the times (they take no model time
    and are not counted as encoded), so only tasks some run did not encode at all (a fully warm cache) are also
    left out of the times. A run the cache served whole on every one of those tasks (a night that encoded nothing)
    has no model time: its row says so and the other rows are timed without it (before, it blanked every row)."""
    shared, differing = _split_by_data(infos, sorted(set.intersection(*(set(i.ok) for i in infos))))
    served = [i.label for i in infos if shared and all(cache_only(i.efficiency.get(t, {})) for t in shared)]
    untimed = [i.label for i in infos if shared and i.label not in served and not any(i.efficiency.get(t)
                                                                                       for t in shared)]  # fmt: skip
    timed = [i for i in infos if i.label not in served and i.label not in untimed]
    clean = [t for t in shared if timed and all(measured(i.efficiency.get(t, {})) and t not in i.other_world
                                                for i in timed)]  # fmt: skip
    # a time is a sum over the work done: only tasks every timed run encoded whole (no cache hit) are the same work
    whole = [t for t in clean if not any(i.efficiency.get(t, {}).get("cache_hits") for i in timed)]
    rows, notes = [], []
    for info in infos:
        model = info.record.get("model", {})
        count, source = parameters(model)
        # the dims the run's results hold, not the last run's --dims (review of stop 49, as summary.md)
        dims = sorted({d for name, entry in info.ok.items() for d in info.run.result_dims(name, entry)})
        _, texts_s, tokens_s = _throughput(info, clean)
        seconds = _throughput(info, whole)[0]
        times = ([CACHE_ONLY] * 3 if info.label in served else ["—"] * 3 if info.label in untimed
                 else [_fmt(seconds, 2) if whole else "—", _fmt(texts_s), _fmt(tokens_s, 0)])  # fmt: skip
        scores = [info.ok[t]["main_score"] for t in shared]
        rows.append([info.label, _fmt(count / 1e6 if count else None), model.get("embed_dim", "—"), *times,
                     "✔ " + "/".join(map(str, dims)) if dims else "—",
                     percent(mean(scores)) if scores else "—",
                     model.get("device", "—"), model.get("dtype", "—"),
                     shown_batch(info.record), model.get("max_length") or "—"])  # fmt: skip
        notes.append(f"{info.label}: parameters from {source}." if count else f"{info.label}: parameter count "
                     "unknown (run.json records no `model.n_parameters` and mteb's model registry does not list the "
                     "model).")  # fmt: skip
    headers = ["Model", "Size (M params)", "Emb. dim", f"Model time, s ({counted(len(whole), 'task')})", "texts/s",
               "tokens/s", "MRL dims scored", f"Avg score ×100 ({counted(len(shared), 'task')})", "Device", "dtype",
               "Batch", "Max length"]  # fmt: skip
    notes += [f"{i.label}: left out as kept from runs with other settings: "
              + "; ".join(f"{t} ({why})" for t, why in i.kept.items()) + "." for i in infos if i.kept]  # fmt: skip
    notes += [f"{i.label}: left out of the times as timed by another number of processes than the run's "
              f"{i.record.get('world_size', 1)}: " + "; ".join(f"{t} (world size {w})"
                                                              for t, w in i.other_world.items()) + "."
              for i in infos if any(t in shared for t in i.other_world)]  # fmt: skip
    notes += [f"{i.label}: no timings recorded for " + ", ".join(lost) + " (efficiency.json lacks them): left out of "
              "every row's times." for i in timed if (lost := [t for t in shared if not i.efficiency.get(t)])]
    if untimed:
        notes.append(f"{', '.join(untimed)}: no timings recorded for the {len(shared)} task(s) (efficiency.json "
                     "missing or without them): " + ("the other rows' times are compared without it." if timed
                                                     else "no model time to compare."))  # fmt: skip
    notes += _score_notes(infos, shared, differing)
    notes += [f"{i.label}: {damaged}." for i in infos if (damaged := i.run.damaged_results_note(i.ok, dims=False))]
    lengths = {info.label: info.record.get("model", {}).get("max_length") for info in infos}
    if len(set(lengths.values())) > 1:
        notes.append("The rows truncate inputs at different max lengths (tokens kept per text), so their scores and "
                     "times are of different inputs: " + ", ".join(f"{label} {length or 'not recorded'}"
                                                              for label, length in lengths.items()) + ".")  # fmt: skip
    notes += [note for note in (hardware_note(timed), busy_note(timed)) if note]
    if served:
        notes.append(f"{', '.join(served)}: the embedding cache served every text of the "
                     f"{len(shared)} task(s), so the model did no work to time (`{CACHE_ONLY}`); "
                     + ("the other rows' times are compared without it." if timed else
                        "no model time to compare (rerun with `harness run --no-cache`)."))  # fmt: skip
    others = " other" if served or untimed else ""
    if timed and shared and not clean:
        notes.append(f"No task was encoded by the model in every{others} run (some served from the embedding "
                     "cache, or without timings): no model time to compare (rerun with `harness run "
                     "--no-cache`).")  # fmt: skip
    elif clean:
        notes.append(f"Model time and throughput count real model work only (memo and cache hits excluded), over "
                     f"the {len(clean)} task(s) every{others} run finished on the same data and encoded: "
                     f"{', '.join(clean)}.")  # fmt: skip
        if whole != clean:  # before stop 26 such tasks' times were summed too: one row's 158 texts beside 204
            partly = [t for t in clean if t not in whole]
            notes.append(f"Model time covers only the {len(whole)} task(s) every{others} run encoded whole; "
                         f"some run took part of {', '.join(partly)} from the embedding cache, so its time there is "
                         "for less work (texts/s and tokens/s still count them, per text encoded).")  # fmt: skip
    return md_table(rows, headers=headers, disable_numparse=True), notes


def _split_by_data(infos: list[RunInfo], tasks: list[str]) -> tuple[list[str], dict[str, list[str]]]:
    """(the tasks every run scored on the same data, {task: the record keys that differ} for the others)."""
    differing = {t: keys for t in tasks if (keys := data_differences([i.ok[t] for i in infos]))}
    return [t for t in tasks if t not in differing], differing


def _score_notes(infos: list[RunInfo], shared: list[str], differing: dict[str, list[str]]) -> list[str]:
    """Which tasks the average covers and which it leaves out, so no row's average hides another task set."""
    if shared:
        notes = [f"Avg score: the mean main score over the {len(shared)} task(s) every run finished on the same "
                 f"data, the same tasks in every row: {', '.join(shared)}."]  # fmt: skip
    else:
        notes = ["No task was finished on the same data by every run: no average score or model time to compare."]
    rest = {i.label: sorted(set(i.ok) - set(shared) - set(differing)) for i in infos}
    return notes + _left_out("the averages and times", differing, rest, "not every run finished them",
                             "not finished by")  # fmt: skip


def _left_out(what: str, differing: dict[str, list[str]], rest: dict[str, list[str]], why: str,
              lacking: str) -> list[str]:  # fmt: skip
    """Notes naming the tasks a comparison leaves out: those the runs scored on different data (with what differs)
    and those left out for `why`, each with the runs of ``rest`` (label → its tasks left out) that lack it, as
    `STSBenchmark (not finished by …)`: before stop 67 (a walk) each run was listed with its own extra tasks, which
    read as if the runs that had finished a task had failed it."""
    notes = []
    if differing:
        which = "; ".join(f"{task} (different {', '.join(keys)})" for task, keys in differing.items())
        notes.append(f"Left out of {what} because the runs scored different data: {which}.")
    tasks = sorted({task for left in rest.values() for task in left})
    only = "; ".join(f"{task} ({lacking} {', '.join(label for label, left in rest.items() if task not in left)})"
                     for task in tasks)  # fmt: skip
    if only:
        notes.append(f"Left out of {what} because {why}: {only}.")
    return notes


def task_table(infos: list[RunInfo]) -> str:
    """Every finished task's figures per run; `§` marks a task kept from a run with other settings (its timings
    are those settings', as its score is)."""
    rows = []
    for info in infos:
        for task, eff in info.efficiency.items():
            n, k, s = encoded(eff)
            texts_s, tokens_s = rates(eff)
            speed = [CACHE_ONLY] * 2 if cache_only(eff) else [_fmt(texts_s), _fmt(tokens_s, 0)]
            name = task + (" §" if task in info.kept else "") + (f" (world size {info.other_world[task]})"
                                                                  if task in info.other_world else "")  # fmt: skip
            rows.append([name, info.label, eff.get("texts", "—"), eff.get("unique_texts", "—"), n,
                         eff.get("cache_hits", 0), k, _fmt(s, 2), _fmt(eff.get("wall_s"), 1), *speed,
                         _fmt(eff.get("peak_rss_mb"), 0), _fmt(eff.get("peak_accelerator_mb"), 0)])  # fmt: skip
    headers = ["Task", "Run", "texts", "unique", "encoded", "cache hits", "tokens", "model s", "wall s", "texts/s",
               "tokens/s", "peak RSS MB", "peak accel. MB"]  # fmt: skip
    return md_table(rows, headers=headers, disable_numparse=True)


@dataclass
class DimCurves:
    """Score vs MRL dimension per task type: every run's curve is a mean over the same tasks (`tasks`)."""

    points: dict[str, dict[str, list[tuple[int, float]]]]  # type → run label → [(dim, mean)], full dim last
    tasks: dict[str, list[str]]  # type → the tasks each of its curves averages
    notes: list[str]  # per type, the tasks left out and why


def dim_curves(infos: list[RunInfo]) -> DimCurves:
    """Per task type, each run with MRL results gets the mean score at each of its dims over the type's tasks that
    every such run scored at its dims on the same data (as Table 5's average): a mean over each run's own tasks
    would set runs on different task sets side by side."""
    scored: dict[str, dict[str, dict[str, dict[int, float]]]] = {}  # type → label → task → dim → score
    curves = DimCurves({}, {}, [])
    for info in infos:
        for name, task in info.ok.items():
            if dims := info.run.dim_scores(name, task):
                scored.setdefault(task.get("type") or "Unknown", {}).setdefault(info.label, {})[name] = dims
        if damaged := info.run.damaged_results_note(info.ok, full=False):
            curves.notes.append(f"`{info.label}`: {damaged}.")
    for kind, runs in scored.items():
        compared = [i for i in infos if i.label in runs]
        common = sorted(set.intersection(*(set(tasks) for tasks in runs.values())))
        shared, differing = _split_by_data(compared, common)
        rest = {label: sorted(set(tasks) - set(common)) for label, tasks in runs.items()}
        curves.notes += _left_out(f"the {kind} curves", differing, rest, "not every run scored them at MRL dims",
                                  "not scored at MRL dims by")  # fmt: skip
        # a run's dim results viewed otherwise (renormalised, before stop 35) beside raw prefixes: not like for like
        viewed = [(t, i.label, why) for i in compared for t, why in other_views(i.record).items() if t in shared]
        if viewed:
            shared = [t for t in shared if t not in {task for task, _, _ in viewed}]
            curves.notes.append(f"Left out of the {kind} curves because a run's dim results are not raw prefixes: "
                                + "; ".join(f"{t} in {label} ({why})" for t, label, why in viewed) + ".")  # fmt: skip
        if not shared:
            curves.notes.append(f"No {kind} task was scored at MRL dims by every run on the same data: no curve.")
            continue
        curves.tasks[kind] = shared
        for info in compared:
            tasks = runs[info.label]
            dims = sorted(set.intersection(*(set(tasks[t]) for t in shared)))
            partial = sorted(set().union(*(set(tasks[t]) for t in shared)) - set(dims))
            if partial:  # before stop 60 left out without a word (a rerun at other --dims redoes some tasks only)
                curves.notes.append(
                    f"Left out of `{info.label}`'s {kind} curve: "
                    + "; ".join(f"dim {d} (scored on {', '.join(t for t in shared if d in tasks[t])}, not on "
                                f"{', '.join(t for t in shared if d not in tasks[t])})" for d in partial)
                    + " — a point is the mean over every task of the curve.")  # fmt: skip
            points = [(d, mean(tasks[t][d] for t in shared)) for d in dims]
            full = int(info.record.get("model", {}).get("embed_dim") or 0)
            points.append((full, mean(info.ok[t]["main_score"] for t in shared)))
            curves.points.setdefault(kind, {})[info.label] = points
    return curves


REPORT_MD, THROUGHPUT_PNG, DIMS_PNG = "efficiency.md", "throughput.png", "dims.png"
PLOTS = (THROUGHPUT_PNG, DIMS_PNG)  # what a report stopped by bad input removes beside its stopped efficiency.md


def write_report(paths: list[Path], out: Path, tasks: list[str] | None = None) -> Path:
    """efficiency.md and its PNGs in out/ (``tasks``: over those only); returns the markdown path."""
    if out.exists() and not out.is_dir():  # before any work: the report would have nowhere to go
        raise UsageError(f"report folder {out} (--out) is a file: give a folder, where efficiency.md and its PNGs go")
    infos = load_runs(paths, tasks)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"report folder {out} (--out) cannot be created: {exc.strerror}") from None
    t5, notes = table5(infos)
    runs = ", ".join(f"`{i.label}` ({shown_path(i.run.path)})" for i in infos)
    lines = ["# Efficiency report", "", "Runs: " + runs, "",
             "## Table 5 (shape of the Conan-v2 paper's Table 5)", "", t5, ""]  # fmt: skip
    lines += bullets(notes)
    lines += ["- The paper timed embedding the English train queries of MARC on one Ascend 910B (minutes); ours "
              "is the encode time of the run's evaluation texts on the hardware below. Compare times only between "
              "rows with the same hardware, dtype, batch size and max length. MRL: the dims this run scored "
              "(`harness run --dims`), not whether the model was trained for them.", "",
              "## Hardware and settings", "", hardware_table(infos), "",
              "## Throughput per task", "", "![throughput per task](throughput.png)", "", task_table(infos), "",
              *(line for note in (hardware_note(infos), busy_note(infos)) if note for line in (f"- {note}", "")),
              "`encoded` excludes memo and embedding-cache hits, and `model s` is the model's time alone, so "
              "texts/s and tokens/s measure the model even on a task with hits (a record without `model_s`, from "
              f"before it existed, timed the lookups too). A task the embedding cache served whole reads "
              f"`{CACHE_ONLY}`, here and in the plot: the model did no work to time, no figure is missing. Only "
              "finished tasks are listed (a task whose last evaluation failed has no timings); `§` marks a task "
              "kept from a run with other settings, timed under those; `(world size N)` a task timed by another "
              "number of processes than the run's.", "",
              "## Score vs embedding dimension (MRL)", ""]  # fmt: skip
    plots.throughput(infos, out / THROUGHPUT_PNG)
    curves = dim_curves(infos)
    if not curves.points:  # an earlier report's curves would stay beside this one, as if they were its own
        (out / DIMS_PNG).unlink(missing_ok=True)
    else:
        plots.dims(curves.points, out / DIMS_PNG)
        lines += ["![score vs dimension per task type](dims.png)", ""]
        for kind, per_run in curves.points.items():
            dims = sorted({d for pts in per_run.values() for d, _ in pts[:-1]})
            body = []
            for label, pts in per_run.items():
                at = dict(pts[:-1])
                full_dim, full = pts[-1]
                body.append([label, *[percent(at[d]) if d in at else "—" for d in dims],
                             f"{percent(full)} ({full_dim or 'dim unknown'})"])  # run.json embed_dim null: 0
            tasks = curves.tasks[kind]
            lines += [f"**{kind}**: mean score ×100 over the {len(tasks)} task(s) every run scored at its dims on the "
                      f"same data, the same tasks in every row: {', '.join(tasks)}", "",
                      md_table(body, headers=["Run", *map(str, dims), "full (dim)"],
                               disable_numparse=True), ""]  # fmt: skip
    if curves.notes:
        lines += [*bullets(curves.notes), ""]
    if not curves.points and not curves.notes:
        lines += ["No run has results under `experiments/embed_dim_<d>/`, so there is no curve: evaluate with "
                  "`harness run --dims 64,128,256,full ...` to score truncated embeddings.", ""]  # fmt: skip
    path = out / REPORT_MD
    atomic_write_text(path, "\n".join(lines))
    return path
