"""How `harness regress` judges one task: its verdict kinds, and per task Δ with its paired CI (`judge_task`), or
why it was not compared (`untested`, `kept_settings`: a task a run kept from another run's settings)."""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness.errors import DataError
from harness.runs import TASK_KEYS, RunDir, data_apart, has_score, no_score_reason, settings_apart, with_implied_keys
from reporting.bootstrap import finite_resamples, paired_bootstrap, verdict
from reporting.items import NotTestable, OtherItems, at_dim, paired_positions, task_items

TESTED = ("regressed", "improved", "within noise")
FAILED, NOT_RUN, DAMAGED = "failed in candidate", "not run in candidate", "damaged file"
NO_BASELINE, NOT_COMPARABLE = "no baseline score", "not comparable"
UNCOMPARED = (NOT_RUN, NO_BASELINE, NOT_COMPARABLE, DAMAGED)


@dataclass
class TaskVerdict:
    task: str
    kind: str
    metric: str
    base: float
    cand: float
    n: int = 0
    unit: str = ""
    lo: float | None = None
    hi: float | None = None
    verdict: str = "not tested"
    reason: str = ""
    advisory: str = ""  # why a significant verdict does not gate: its CI leaves out a known source of variance

    @property
    def delta(self) -> float:
        return self.cand - self.base

    @property
    def shown_delta(self) -> float:
        """Δ as the report and the JSON give it: none (NaN) for a task declared not compared, whose scores' gap is
        no change of the model (before stop 63 a not comparable row read "Δ +0.00")."""
        return math.nan if self.verdict in UNCOMPARED else self.delta


def kept_settings(name: str, kept: dict[str, dict[str, str]], rb: dict[str, Any], rc: dict[str, Any],
                   records: tuple[dict[str, Any], dict[str, Any]]) -> tuple[str, str]:  # fmt: skip
    """(why a task is not comparable, a note for its row) where a run kept it from an earlier run into its folder
    (``kept``: `other_settings` of each side; ``records``: both run.json records). Its score is then that run's
    settings', so it is judged by the settings it was computed under (run.json records them per task, `identity`)
    against the other side's task: where the keys it differs in from its own run's header (`settings_apart`) and its
    data are the other side's, it differs from that task only as the headers do, and is compared like for like, the
    row saying why; before stop 63 any kept task was not comparable, so a folder rerun on one task with
    --max-length 16 blocked the gate on the 12 it kept at the baseline's 512."""
    sides = [side for side in ("baseline", "candidate") if name in kept[side]]
    if not sides:
        return "", ""
    ident_b, ident_c = (with_implied_keys(record.get("identity") or {}) for record in (rb, rc))
    # only those keys, not the whole identity (review, stop 64): that held model_fingerprint, so a kept task was
    # compared only where both runs were one model, and two checkpoints, regress's usual pair, were not comparable
    apart = {key for side, task, record in zip(("baseline", "candidate"), (rb, rc), records, strict=True)
             if side in sides
             for key in settings_apart(task.get("identity") or {}, record.get("identity", {}))}  # fmt: skip
    if ident_b and ident_c and all(ident_b.get(key) == ident_c.get(key) for key in (*apart, *TASK_KEYS)):
        if len(sides) == 2:
            return "", f"both runs kept it from earlier runs with the same settings ({kept['baseline'][name]})"
        (side,) = sides
        other = "candidate" if side == "baseline" else "baseline"
        return "", (f"the {side} kept it from an earlier run with the {other}'s settings ({kept[side][name]}), not "
                    "its header's: compared like for like")  # fmt: skip
    foreign = "; ".join(f"the {side} kept it from a run with other settings ({kept[side][name]})" for side in sides)
    unrecorded = [side for side, ident in (("baseline", ident_b), ("candidate", ident_c)) if not ident]
    if unrecorded:  # a record from before per-task settings: nothing to judge the kept task against
        foreign += f"; the {unrecorded[0]}'s record of the task holds no settings to compare it with"
    return foreign, ""


def untested(base: RunDir, name: str, rb: dict[str, Any] | None, rc: dict[str, Any] | None,
              dim: int | None) -> TaskVerdict:  # fmt: skip
    """A task one of the runs holds no score for (``rb``/``rc``: its records, None where the run has none), and
    what that means for the gate: failed in the candidate, not run there, or no baseline score to compare with."""
    rb, rc = rb or {}, rc or {}
    score_b = math.nan
    if has_score(rb):
        try:
            score_b = float(at_dim(base, name, rb, dim)["main_score"])
        except (NotTestable, DataError):  # the baseline's full-width score would read as this dim's
            pass
    kind, metric = (rb.get(key) or rc.get(key) or "" for key in ("type", "main_metric"))
    tv = TaskVerdict(name, kind, metric, score_b, float(rc["main_score"]) if has_score(rc) else math.nan)
    if not rc and not has_score(rb):  # nothing the candidate could lose: "run it there" would compare nothing
        tv.verdict = NO_BASELINE
        tv.reason = f"baseline {no_score_reason(rb)}; not in the candidate's run.json either"
    elif not rc:
        tv.verdict = NOT_RUN
        tv.reason = "not in the candidate's run.json: run it there, or leave it out with --tasks"
    elif rc.get("status") == "pending":  # attempted by no run yet: interrupted, or still running
        tv.verdict, tv.reason = NOT_RUN, "status pending: the candidate run has not evaluated it"
    elif not has_score(rc):
        tv.verdict, tv.reason = FAILED, no_score_reason(rc)
        if not has_score(rb):
            tv.reason += f"; no baseline score either ({no_score_reason(rb) if rb else 'not in its run.json'})"
    else:
        tv.verdict = NO_BASELINE
        tv.reason = f"baseline {no_score_reason(rb)}; rerun the task into the baseline"
    return tv


def judge_task(base: RunDir, cand: RunDir, name: str, rb: dict[str, Any], rc: dict[str, Any],
               s: dict[str, Any], foreign: str = "", viewed: str = "") -> TaskVerdict:  # fmt: skip
    """Δ and its paired CI, or the reason it is not tested: ``foreign`` names a run that kept the task from a run
    with other settings (its score is not the run's settings' score: a verdict would test something else),
    ``viewed`` one whose dim results were viewed otherwise (at a dim). What makes a task not comparable (kept from
    other settings, other data) or damaged is said before a missing result at the ``dim``, which only makes it "not
    tested": before stop 46 the dim was looked at first, so `--dim` passed a task that blocks the gate at full
    width. And which dims an earlier evaluation asked for no longer makes a kept task not comparable: they move no
    score (before, a task kept from a run without `--dims` blocked the gate at full width)."""
    tv = TaskVerdict(name, rb.get("type") or "", rb.get("main_metric") or "", math.nan, math.nan)
    try:
        rb, rc = at_dim(base, name, rb, s["dim"]), at_dim(cand, name, rc, s["dim"])
        tv.base, tv.cand = float(rb["main_score"]), float(rc["main_score"])
        missing = ""
    except NotTestable as exc:
        missing = str(exc)
    except DataError as exc:
        tv.verdict, tv.reason = DAMAGED, str(exc)
        return tv
    if foreign:
        tv.verdict, tv.reason = NOT_COMPARABLE, foreign
        return tv
    differing = data_apart([rb, rc])  # each side's value: "(data differ)" said not what (a user's walk, stop 64)
    if differing:
        tv.verdict = NOT_COMPARABLE
        tv.reason = (f"the runs' scores are not comparable ({'; '.join(differing)}): rerun the baseline on the "
                     "candidate's data and metric")  # fmt: skip
        return tv
    if missing:
        tv.reason = missing
        return tv
    if not math.isfinite(tv.cand):  # at full width `has_score` makes this a failed task; a dim's NaN passed before
        tv.verdict, tv.reason = FAILED, f"its score at MRL dim {s['dim']} is {tv.cand}"  # stop 59 ("not tested")
        return tv
    if not math.isfinite(tv.base):
        tv.verdict, tv.reason = NO_BASELINE, f"the baseline's score at MRL dim {s['dim']} is {tv.base}"
        return tv
    if viewed:
        tv.verdict, tv.reason = NOT_COMPARABLE, viewed
        return tv
    try:
        ib, ic = task_items(base, name, rb, s["dim"], "baseline"), task_items(cand, name, rc, s["dim"], "candidate")
        common, (pos_b, pos_c) = paired_positions([ib, ic])
    except OtherItems as exc:  # before stop 54 (audit) "not tested", which passes the gate: a −53.77 Δ went through
        tv.verdict = NOT_COMPARABLE
        tv.reason = f"the runs scored other items ({exc}): rerun the baseline on the candidate's data"
        return tv
    except NotTestable as exc:
        tv.reason = str(exc)
        return tv
    except DataError as exc:  # one task's damaged or lost file: named, and the other tasks are still tested
        tv.verdict, tv.reason = DAMAGED, str(exc)
        return tv
    tv.metric = tv.metric or ib.metric
    if len(common) < 2:
        tv.reason = "fewer than two items in common"
        return tv
    rng = np.random.default_rng([s["seed"], zlib.crc32(name.encode())])  # per task: independent of task order
    try:
        deltas = finite_resamples(paired_bootstrap(ib.score, ic.score, pos_b, pos_c, s["n_boot"], rng))
    except NotTestable as exc:
        tv.reason = str(exc)
        return tv
    tv.lo, tv.hi = (float(x) for x in np.quantile(deltas, [s["level"] / 2, 1 - s["level"] / 2]))
    tv.n, tv.unit = len(common), ib.unit
    tv.verdict = verdict(tv.delta, tv.lo, tv.hi, s["min_effect"])
    if tv.verdict == "within noise" and (tv.hi < 0 or tv.lo > 0):
        # both to 4 decimals: at 2, a Δ of -34.9286 beside --min-effect 34.93 read as equal (a nightly walk, 69)
        tv.reason = (f"CI excludes 0 but the change, {100 * abs(tv.delta):.4f}, is below --min-effect "
                     f"{100 * s['min_effect']:.4f}")  # fmt: skip
    if tv.kind == "Clustering" and tv.verdict in ("regressed", "improved"):
        tv.advisory = ("advisory, does not gate: the CI holds each run's k-means assignment fixed, and another "
                       "k-means start on the same embeddings can move v_measure further")  # fmt: skip
    return tv
