"""summary.md: the table printed at the end of a run (scores ×100, source marked, timing per task)."""

from __future__ import annotations

from harness.runs import (
    CACHE_ONLY,
    RunDir,
    cache_only,
    md_table,
    other_settings,
    other_worlds,
    percent,
    record_coverage,
    scored_tasks,
    shown_batch,
    shown_path,
)


def _fmt(value: float | None, scale: float = 1.0, digits: int = 2) -> str:
    return "—" if value is None else f"{value * scale:.{digits}f}"


# Cells are text as written (a score of 83.50 stays 83.50, not tabulate's 83.5 beside 76.87), numbers right-aligned
TASK_COLUMNS = ("left",) * 4 + ("right",) * 6 + ("left",)


def render_summary(run_dir: RunDir) -> str:
    """summary.md of the run directory's record: its header's coverage is every task recorded (`record_coverage`)."""
    record, eff = run_dir.read_run(), run_dir.read_efficiency()
    model = record.get("model", {})
    others = other_settings(record)  # their scores belong to other settings: marked §, not in the header's mean
    rows = []
    for name, task in record.get("tasks", {}).items():
        e = eff.get(name, {}) if task.get("status") == "ok" else {}
        source = task.get("source", "")
        rates = [CACHE_ONLY] * 2 if cache_only(e) else [e.get("texts_per_s") or "—", e.get("tokens_per_s") or "—"]
        rows.append([
            name, task.get("type") or "", source + (" *" if source == "mirror" else ""),
            task.get("main_metric") or "", percent(task.get("main_score")) + (" §" if name in others else ""),
            _fmt(e.get("wall_s"), digits=1), e.get("encoded_texts", "—") if e else "—", *rates,
            e.get("cache_hits", "—") if e else "—", _status(task),
        ])  # fmt: skip
    scores = [t["main_score"] for n, t in scored_tasks(record).items() if n not in others]  # a NaN is no score
    mean = sum(scores) / len(scores) if scores else None
    left_out = f" ({len(others)} § kept from other settings not counted)" if others else ""
    served = (f" `{CACHE_ONLY}`: the embedding cache served every text of the task, so the model did no work to "
              "time (no figure is missing)." if any(CACHE_ONLY in row for row in rows) else "")  # fmt: skip
    lines = [
        f"# Run summary: {model.get('name')} ({model.get('spec')})",
        "",
        f"- coverage: {record_coverage(record)}",
        f"- mean main score over {len(scores)} finished task(s){left_out}: {percent(mean)}",
        f"- device {model.get('device')}, dtype {model.get('dtype')}, batch {shown_batch(record)}, "
        f"{_processes(record)}data root {shown_path(record.get('data_root'))}",
        *_other_world_lines(record, eff),
        *_cache_stop_lines(record.get("cache_stopped")),
        "",
        md_table(rows, headers=["task", "type", "source", "metric", "score ×100", "wall s", "encoded", "texts/s",
                                "tokens/s", "cache hits", "status"], disable_numparse=True,
                 colalign=TASK_COLUMNS),  # fmt: skip
        "",
        "texts/s and tokens/s: model work only (texts the model encoded ÷ model time); memo and cache hits are "
        "not encoding speed and are counted apart." + served,
        "`*` mirror: the task's rows come from the local data root, not the official mteb dataset; "
        "compare with published numbers only where the mirror is the full official split.",
    ]
    dims_table = _dims_table(run_dir, record, others)
    if dims_table:
        lines += ["", f"## Matryoshka dimensions (score ×100, and as a fraction of the full {model.get('embed_dim')})",
                  "", dims_table]  # fmt: skip
    root = record.get("data_root")  # errors name data files by their absolute path: shown as the header shows it
    tasks = record.get("tasks", {})
    sections = (("Failed tasks", {n: t.get("error") or "" for n, t in tasks.items() if t.get("status") == "failed"}),
                ("Not evaluated", {n: t.get("reason") or "" for n, t in tasks.items() if t.get("status") == "missing"}),
                # the score shown is the earlier evaluation's, whole: the new one failed (RunDir.replace_task)
                ("Evaluated again and failed, the earlier result kept",
                 {n: t["failed_again"].get("error") or "" for n, t in tasks.items()
                  if "failed_again" in t}))  # fmt: skip
    for title, why in sections:
        if why:
            lines += ["", f"## {title}", ""] + [f"- {n}: {text.replace(root, shown_path(root)) if root else text}"
                                                 for n, text in why.items()]  # fmt: skip
    if others:
        lines += ["", "## Tasks kept from runs with other settings (§)", "",
                  "These finished in an earlier run into this directory; their scores belong to the settings shown, "
                  "not to the header's:", ""] + [f"- {n}: {d}" for n, d in others.items()]  # fmt: skip
    return "\n".join(lines) + "\n"


def _status(task: dict) -> str:
    """A task's status cell; `ok, failed again` for a kept result whose latest evaluation failed (words, not a mark:
    `‡` means other data on the leaderboard)."""
    return "ok, failed again" if "failed_again" in task else task.get("status", "")


def _processes(record: dict) -> str:
    """The header's process count under torchrun ('' for one process): each rank batches its own slice of the
    texts, so below float32 a score can differ from one process's by rounding (before stop 66 only the console's
    note said so; a walk)."""
    world = record.get("world_size") or 1
    if world == 1:
        return ""
    exact = record.get("model", {}).get("dtype") == "float32"
    rounding = "" if exact else ", scores may differ from one process's by rounding"
    return f"{world} processes (torchrun{rounding}), "


def _other_world_lines(record: dict, eff: dict) -> list[str]:
    """The finished tasks computed by another number of processes than the header's (efficiency.json records each
    task's): the process count is not part of a task's identity, as the batch a text is encoded in is not (its
    vectors move by rounding only), so a rerun with another count keeps them (before stop 66 unsaid)."""
    tasks = record.get("tasks", {})
    other = {name: count for name, count in other_worlds(record, eff).items()
             if tasks.get(name, {}).get("status") == "ok"}  # fmt: skip
    if not other:
        return []
    return [f"- computed by another number of processes than this run's {record.get('world_size', 1)}: "
            + ", ".join(f"{name} ({count})" for name, count in other.items())
            + " (their batches differ, so below float32 their scores may differ by rounding; `--overwrite` "
            "evaluates them again)"]  # fmt: skip


def _cache_stop_lines(stopped: dict | None) -> list[str]:
    """The header line saying the embedding cache turned itself off mid-run: the tasks from then on were encoded
    without it (their vectors computed, not read or stored; their scores are unaffected)."""
    if not stopped:
        return []
    since = f"during {stopped.get('task')}" if stopped.get("task") else "before the first task"
    return [f"- embedding cache off {since}, for the rest of the run (failed {stopped.get('reason')}): the tasks "
            "from there on were encoded without it (scores unaffected, vectors computed, not read or stored)"]


SHARE_FLOOR = 0.10  # a share of a full score under 10 points is a ratio of two small, noisy numbers: it says nothing


def _dims_table(run_dir: RunDir, record: dict, others: dict[str, str]) -> str:
    """Each dim's score, with its share of the full score where that share means something (a full score of at
    least `SHARE_FLOOR` and a dim score not below 0: before stop 70, a C-MTEB walk, me5-small's PAWSX at 2.48 read
    `-1.17 (-47.1%)` and `2.63 (105.9%)`; STS can go to or below 0 with a weak model), or '' when no task has one.
    Cells are text as written: 80.60 stays 80.60. The columns are every dim a task's recorded result holds (before
    stop 49, audit, only the last run's --dims: a rerun of one task hid the others' dims), a task kept from other
    settings marked § as above."""
    found = {}
    for name, task in record.get("tasks", {}).items():
        if task.get("status") == "ok" and task.get("main_score") is not None:
            found[name] = run_dir.dim_scores(name, task)  # only the dims of the recorded result
    dims = sorted({d for scores in found.values() for d in scores})
    if not dims:
        return ""
    rows = []
    for name, scores in found.items():
        full = record["tasks"][name]["main_score"]
        cells = []
        for d in dims:
            score = scores.get(d)
            share = f" ({score / full:.1%})" if score is not None and score >= 0 and full >= SHARE_FLOOR else ""
            cells.append("—" if score is None else percent(score) + share)
        rows.append([name + (" §" if name in others else ""), *cells, percent(full)])
    return md_table(rows, headers=["task", *map(str, dims), "full"], disable_numparse=True)
