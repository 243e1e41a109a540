"""The efficiency half of `harness regress`: both runs' rates and peak memory per task with their Δ, and why a Δ
is not like for like (other hardware or settings, the embedding cache serving a side, other process counts)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from harness.errors import DataError
from harness.runs import CACHE_ONLY, EFFICIENCY_JSON, RunDir, applied_batch, cache_only, md_table, timed_world
from reporting.efficiency import rates
from reporting.hardware import started_busy

if TYPE_CHECKING:
    from reporting.regress import Comparison


def _pct(b: float | None, c: float | None) -> str:
    return "—" if not b or c is None else f"{100 * (c - b) / b:+.1f}%"


def _num(v: float | None, digits: int = 1) -> str:
    """A figure for the tables; None or NaN (a score the run does not have) as a dash."""
    return "—" if v is None or math.isnan(v) else f"{v:,.{digits}f}"


SERVED_SIDE = "(cache-only side)"


def _change(b: float | None, c: float | None, mark: str) -> str:
    """The Δ of a figure, or the mark saying why it is none: one side served from the cache (its figure is no
    model's), or the sides timed by different numbers of processes."""
    return f"— {mark}" if mark else _pct(b, c)


def read_timings(base: RunDir, cand: RunDir, tasks: list[str]) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Each side's figures of its finished tasks (`RunDir.finished_efficiency`), by "baseline" and "candidate",
    and a warning naming a side's efficiency.json that is damaged, or missing where both runs finished ``tasks``:
    that side then has no figures (dashes in the efficiency table). Timings are reported, not part of the verdict,
    so they never stop the gate: before stop 66 a damaged file ended regress (exit 2) and a missing one emptied
    its side's columns without a word (a user's walk)."""
    timings: dict[str, dict[str, Any]] = {}
    warnings = []
    for side, run in (("baseline", base), ("candidate", cand)):
        lost = f"so the efficiency table shows no figures for the {side}"
        try:
            timings[side] = run.finished_efficiency()
        except DataError as exc:
            timings[side] = {}
            warnings.append(f"the {side}'s efficiency.json is damaged, {lost} ({exc})")
            continue
        if tasks and not (path := run.path / EFFICIENCY_JSON).is_file():
            warnings.append(f"the {side}'s {path} is missing, {lost} (the scores are all in run.json; `harness "
                            "run` records the timings of the tasks it evaluates)")  # fmt: skip
    return timings, warnings


def timed_worlds(base: RunDir, cand: RunDir, timings: dict[str, dict[str, Any]],
                 tasks: list[str]) -> dict[str, tuple[int, int]]:  # fmt: skip
    """Tasks the two sides timed with different numbers of processes, per task (a task kept from a torchrun run in
    a one-process run's folder: run.json's header alone does not show it), as (baseline, candidate)."""
    rb, rc, eb, ec = base.read_run(), cand.read_run(), timings["baseline"], timings["candidate"]
    pairs = {t: (timed_world(rb, eb[t]), timed_world(rc, ec[t])) for t in tasks if t in eb and t in ec}
    return {t: pair for t, pair in pairs.items() if pair[0] != pair[1]}


def _world_mark(pair: tuple[int, int]) -> str:
    return f"(world size {pair[0]} → {pair[1]})"


def _rate(eff: dict[str, Any], value: float | None, digits: int = 1) -> str:
    """A side's texts/s or tokens/s; a side the embedding cache served whole says so (no figure is missing)."""
    return CACHE_ONLY if cache_only(eff) else _num(value, digits)


def efficiency_section(comp: Comparison) -> list[str]:
    """Per task, both sides' rates and peak memory with their Δ. Where the embedding cache served one side whole,
    the model did no work there (a warm run may not even load it), so no Δ is a change of the model: each is marked
    instead."""
    eb, ec = comp.timings["baseline"], comp.timings["candidate"]
    rows = []
    for t in comp.tasks:
        b, c = eb.get(t.task, {}), ec.get(t.task, {})
        (tb, kb), (tc, kc) = rates(b), rates(c)
        rb, rc = b.get("peak_rss_mb"), c.get("peak_rss_mb")
        ab, ac = b.get("peak_accelerator_mb"), c.get("peak_accelerator_mb")
        served = cache_only(b) or cache_only(c)
        mark = SERVED_SIDE if served else _world_mark(comp.worlds[t.task]) if t.task in comp.worlds else ""
        accel = f"{_num(ab, 0)} → {_num(ac, 0)}" + (f" {mark}" if mark and (ab or ac) else "")
        rows.append([t.task, _rate(b, tb), _rate(c, tc), _change(tb, tc, mark), _rate(b, kb, 0), _rate(c, kc, 0),
                     _change(kb, kc, mark), _num(rb, 0), _num(rc, 0), _change(rb, rc, mark), accel])  # fmt: skip
    headers = ["Task", "texts/s base", "texts/s cand", "Δ", "tokens/s base", "tokens/s cand", "Δ",
               "peak RSS MB base", "cand", "Δ", "peak accel. MB"]  # fmt: skip
    return ["## Efficiency", "", md_table(rows, headers=headers, disable_numparse=True), ""]


def efficiency_warnings(base: RunDir, cand: RunDir, timings: dict[str, dict[str, Any]], tasks: list[str],
                        worlds: dict[str, tuple[int, int]]) -> list[str]:  # fmt: skip
    """Why the efficiency deltas may not be like for like: other hardware/settings, or cache hits (``timings``:
    `read_timings`)."""
    out = []
    records = {"baseline": base.read_run(), "candidate": cand.read_run()}
    env_b, env_c = (_hardware(record) for record in records.values())
    if env_b != env_c:
        diff = [f"{k}: {env_b.get(k)} → {env_c.get(k)}" for k in env_b if env_b.get(k) != env_c.get(k)]
        out.append("efficiency not like for like: " + "; ".join(diff))
    for side, record in records.items():
        if load := started_busy(record):  # since stop 70: other work shared the CPUs
            out.append(f"the {side} started on a busy machine ({load}): its times are longer and its rates lower "
                       "than the machine gives alone")  # fmt: skip
    eb, ec = timings["baseline"], timings["candidate"]
    for side, eff in (("baseline", eb), ("candidate", ec)):
        served = [t for t in tasks if cache_only(eff.get(t, {}))]
        if served:
            out.append(f"the embedding cache served the {side} whole on {', '.join(served)}: the model did no work "
                       f"there, so its rates and peak memory are not the model's and no Δ is shown ({SERVED_SIDE} "
                       "in the efficiency table; rerun with --no-cache to compare them)")  # fmt: skip
    if worlds:
        out.append("timed by different numbers of processes, so no efficiency Δ is shown: "
                   + ", ".join(f"{t} {_world_mark(pair)}" for t, pair in worlds.items())
                   + " (a torchrun rate is all processes together)")  # fmt: skip
    cached = [t for t in tasks if eb.get(t, {}).get("cache_hits") or ec.get(t, {}).get("cache_hits")]
    if cached:
        out.append("embedding-cache hits in " + ", ".join(cached) + ": texts/s counts only what was encoded, but "
                   "the timings are not a clean speed measurement (run with --no-cache)")  # fmt: skip
    return out


def _hardware(rec: dict[str, Any]) -> dict[str, Any]:
    env, model = rec.get("environment", {}), rec.get("model", {})
    return {"cpu": env.get("cpu"), "accelerator": env.get("accelerator"), "threads": env.get("torch_threads"),
            "device": model.get("device"), "dtype": model.get("dtype"),
            "batch size": _batch(rec), "processes": rec.get("world_size", 1)}  # fmt: skip


def _batch(rec: dict[str, Any]) -> int | str | None:
    """A run's batch size as applied, or what bounds a batch of a model that packs its texts: its token budget
    (before stop 63 "batch size: 64 → None" for me5-small); None for a run.json without one."""
    batch = applied_batch(rec)
    if batch is None and "batch_size" in rec:
        return f"by tokens ({rec.get('max_batch_tokens')}-token budget)"
    return batch
