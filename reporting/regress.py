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
comparable*; one whose per-item file is damaged, or missing though its record says the harness wrote it, is
*damaged file*, naming it, and the other tasks are still tested. A damaged or missing efficiency.json is a warning:
timings are no part of the verdict. Clustering verdicts are advisory (their CI holds the k-means assignment
fixed): reported, never failing the gate. Exit status (`Comparison.exit_status`): 1 on any significant regression or
failed task; else 3 when nothing was compared (none of the tasks got a verdict) or a task could not be compared (not
run in the candidate, no baseline score, not comparable, a damaged file); 0 otherwise; 2 on unusable input (not a
run directory, a run.json of another shape, a bad option, a --tasks name in neither run, a --dim neither run has);
130 / 143 when stopped by Ctrl-C / SIGTERM (`Interrupted`: --out and --json then say so, no verdict). A nightly gate
never passes on nothing, nor on part of its tasks: the report's first line says which (`Comparison.outcome`).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from harness.errors import HarnessError, UsageError, did_you_mean
from harness.runs import (
    MISSING,
    RunDir,
    changed_entries,
    has_score,
    identity_differences,
    open_run_arg,
    other_settings,
    other_views,
    paths_apart,
    paths_shown,
    scored_tasks,
    shown_path,
    shown_setting,
    with_implied_keys,
)
from reporting.items import (
    listed_dims,
    rerun_dims,
)
from reporting.regress_efficiency import efficiency_warnings, read_timings, timed_worlds
from reporting.regress_tasks import (
    FAILED,
    TESTED,
    UNCOMPARED,
    TaskVerdict,
    judge_task,
    kept_settings,
    untested,
)

EXIT_OK, EXIT_REGRESSION, EXIT_NOT_COMPARED = 0, 1, 3


class NothingCompared(HarnessError):
    """Neither run has a task to compare (within --tasks): a gate that tested nothing must not read as a pass."""

    exit_code = EXIT_NOT_COMPARED


@dataclass
class Comparison:
    base: RunDir
    cand: RunDir
    settings: dict[str, Any]
    tasks: list[TaskVerdict] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    differing: list[str] = field(default_factory=list)  # run settings that differ, 'dtype bfloat16 → float32'
    worlds: dict[str, tuple[int, int]] = field(default_factory=dict)  # tasks timed by other process counts
    timings: dict[str, dict[str, Any]] = field(default_factory=dict)  # each side's figures, `read_timings`

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
            # an advisory verdict said on this line too: before stop 69 (a nightly walk) a clustering CI wholly
            # below 0 read "no significant regression" here, the line a CI log shows
            advised = [t for t in self.advised if t.verdict == "regressed"]
            return (f"PASS (exit 0): no {'gating' if advised else 'significant'} regression on {len(self.tested)} "
                    "task(s)" + (f"; advisory (clustering, not gating): {', '.join(t.task for t in advised)} "
                                 "regressed" if advised else "")
                    + (f"; not tested: {', '.join(untested)}" if untested else ""))  # fmt: skip
        if status == EXIT_NOT_COMPARED:
            return f"NOT COMPARED (exit 3): {unsure or 'no task got a verdict'}"
        why = ([f"regression on {len(bad)} task(s): {', '.join(bad)}"] if bad else []) + (
            [f"failed in the candidate: {', '.join(lost)}"] if lost else []) + (
            [f"not compared: {unsure}"] if unsure else [])  # fmt: skip
        return f"FAIL (exit 1): {'; '.join(why)}"


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
            # each run's own dims with the one asked (before stop 69 both runs' dims together: a run at 64 was told
            # to add the other's 128 too)
            needs = [(path, rerun_dims(record.get("dims") or [], dim)) for path, record in
                     ((baseline, record_b), (candidate, record_c)) if not has[path] or all(has.values())]  # fmt: skip
            if len({dims for _, dims in needs}) == 1:
                which = "it" if len(needs) == 1 else "them"
                how = f"run {which} with `harness run --dims {needs[0][1]} --dim-predictions`"
            else:
                how = "run " + " and ".join(f"{path} with `harness run --dims {dims} --dim-predictions`"
                                            for path, dims in needs)  # fmt: skip
            raise UsageError(f"--dim {dim}: no task has a result at MRL dim {dim} in both runs ({lack}); {how}")
    level = alpha / max(len(shared), 1) if bonferroni else alpha  # one test per shared task: the header's count
    comp = Comparison(base, cand, {"alpha": alpha, "level": level, "n_boot": n_boot, "seed": seed, "tests": len(shared),
                                   "min_effect": min_effect, "bonferroni": bonferroni, "dim": dim},
                      differing=run_differences(record_b, record_c, dim, shared))  # fmt: skip
    if n_boot * level / 2 < 10:  # each CI end is a quantile of the resamples: it needs some beyond it
        need = math.ceil(20 / level)
        comp.warnings.append(f"each end of the {confidence(level)} CI rests on {n_boot * level / 2:.1f} of "
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
        foreign, note = kept_settings(name, kept, rec_b[name], rec_c[name], (record_b, record_c))
        viewed = [f"the {side} kept it from a run that viewed dims otherwise ({found[name]})"
                  for side, found in views.items() if name in found]  # fmt: skip
        tv = judge_task(base, cand, name, rec_b[name], rec_c[name], comp.settings, foreign, "; ".join(viewed))
        tv.reason = "; ".join(why for why in (note, tv.reason) if why)
        if again := rec_c[name].get("failed_again"):  # its score is an earlier evaluation's (RunDir.replace_task):
            # a nightly candidate whose evaluation failed must not pass on the score it kept
            tv.verdict = FAILED
            tv.reason = "; ".join(why for why in (f"its latest evaluation failed ({again.get('error')}); the score "
                                                  "compared is the earlier evaluation's it kept", tv.reason) if why)
        comp.tasks.append(tv)
    comp.tasks += [untested(base, name, attempted_b.get(name), attempted_c.get(name), dim) for name in unshared]
    comp.timings, unreadable = read_timings(base, cand, shared)
    comp.worlds = timed_worlds(base, cand, comp.timings, shared)
    comp.warnings += unreadable + efficiency_warnings(base, cand, comp.timings, shared, comp.worlds)
    comp.warnings += swapped_warning(record_b, record_c) + unfinished_warnings(baseline, record_b, candidate, record_c)
    sides = (("baseline", base, rec_b), ("candidate", cand, rec_c))
    comp.warnings += [f"the {side}: {damaged}" for side, run, rec in sides
                      if (damaged := run.damaged_results_note({t: rec[t] for t in shared}, dims=False))]  # fmt: skip
    for tv in comp.tasks:  # a damaged per-item file's error names it under the run's path as given
        tv.reason = paths_shown(tv.reason, baseline, candidate)
    comp.warnings = [paths_shown(warning, baseline, candidate) for warning in comp.warnings]
    return comp


def swapped_warning(record_b: dict[str, Any], record_c: dict[str, Any]) -> list[str]:
    """A warning when the baseline's run directory was evaluated after the candidate's (run.json `started`, the last
    run that evaluated in it): a nightly job's baseline is the older run, so the two options may be swapped, which
    turns every regression into an improvement (a user's leftover, stop 66). Not gating: comparing two models run in
    any order is as legitimate."""
    started = [_started(record) for record in (record_b, record_c)]
    if None in started or started[0] <= started[1]:
        return []
    return [f"the baseline was evaluated after the candidate (baseline {record_b['started']}, candidate "
            f"{record_c['started']}): check that --baseline and --candidate are not swapped"]


def unfinished_warnings(baseline: Path, record_b: dict[str, Any], candidate: Path,
                        record_c: dict[str, Any]) -> list[str]:  # fmt: skip
    """A warning per run whose last `harness run` began and did not finish (run.json `started` set, `finished`
    null): killed, or still running, so a task it had not reached holds an earlier evaluation's result, or none.
    Not gating: such results are whole and of the recorded settings (a nightly walk, stop 69: a killed night passed
    without a word, its exit 137 the only sign)."""
    return [f"the {side} run {shown_path(path)} did not finish its last `harness run` (started {record['started']}, "
            "finished null: killed, or still running): a task it had not reached shows an earlier evaluation"
            for side, path, record in (("baseline", baseline, record_b), ("candidate", candidate, record_c))
            if record.get("started") and record.get("finished") is None]


def _started(record: dict[str, Any]) -> datetime | None:
    try:
        return datetime.strptime(record.get("started") or "", "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:  # a run directory from before the field, or a hand-written one: nothing to compare
        return None


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


def _named(entry: dict[str, Any], record: dict[str, Any]) -> bool:
    """Whether a run failed a missing task, not counted it as a suite's coverage: asked for by name (recorded on the
    entry since stop 49; before, a run whose (last) header has no suite named every task it holds), or its folder in
    the data root is broken (since stop 67)."""
    if entry.get("broken"):
        return True
    return bool(entry["named"]) if "named" in entry else record.get("suite") is None


# Run-wide settings that move no score compared at full width: the MRL prefixes scored besides the full vectors.
UNSCORED_KEYS = ("dims",)


def confidence(level: float) -> str:
    """A CI's confidence, `95%`, with the digits it needs not to read 100% (α = 1e-7: `99.99999%`; before stop 69, a
    nightly walk, "100% CI")."""
    digits, text = 4, f"{100 * (1 - level):.4g}"
    while level > 0 and text.startswith("100") and digits < 17:
        digits += 1
        text = f"{100 * (1 - level):.{digits}g}"
    return f"{text}%"


def _commit(sha: Any) -> str | None:
    """A recorded commit as `git log --oneline` shows it (12 hex digits), `+dirty` kept; None when not known."""
    if not isinstance(sha, str) or not sha:
        return None
    head, dirty, _ = sha.partition("+dirty")
    return head[:12] + ("+dirty" if dirty else "")


def code_of(record: dict[str, Any], tasks: list[str]) -> str | None:
    """The commit that evaluated `tasks` in a run: each task's own (`evaluated.code`, since stop 70), else the run's
    last (`environment.git_sha`). A directory rerun after a commit keeps the tasks it had finished, evaluated by the
    older code, while run.json's environment names the newer: before stop 70 regress named the newer for all."""
    last = _commit(record.get("environment", {}).get("git_sha"))
    entries = [record.get("tasks", {}).get(t) or {} for t in tasks]
    codes = Counter(_commit(e["evaluated"].get("code")) if isinstance(e.get("evaluated"), dict) else last
                    for e in entries)  # fmt: skip
    if len(codes) <= 1:
        return next(iter(codes), last)
    return "mixed: " + ", ".join(f"{code or 'not recorded'} ({n} task{'s' * (n > 1)})" for code, n in
                                 sorted(codes.items(), key=lambda kv: (-kv[1], kv[0] or "")))  # fmt: skip


def run_differences(record_b: dict[str, Any], record_c: dict[str, Any], dim: int | None = None,
                    tasks: list[str] | None = None) -> list[str]:  # fmt: skip
    """The run settings in which the candidate differs from the baseline, 'dtype bfloat16 → float32': every identity
    key (the model's fingerprint, max length, dtype, pooling, prompts, mteb version...; `identity_differences`), the
    harness version and the data root (`paths_apart`). A verdict then describes these settings as well as the
    model; before, only the model name showed, and an efficiency warning for dtype alone. How the dims are viewed
    (`dim_view`) counts only when comparing at a dim. The harness's code too, as the commit that evaluated the
    compared `tasks` (`code_of`; `+dirty` with uncommitted edits): the version string has been 0.1.0 since the first
    commit, so before stop 69 (a nightly walk) a night run by other code compared without a word."""
    sides = [{**with_implied_keys(record.get("identity", {})),
              "harness_version": record.get("environment", {}).get("harness_version"),
              "harness_code": code_of(record, tasks or []),
              "data root": record.get("data_root")} for record in (record_b, record_c)]  # fmt: skip
    return [f"{name} {' → '.join(paths_apart(old, new) if key == 'data root' else map(shown_setting, (old, new)))}"
            for key in identity_differences(sides, UNSCORED_KEYS + (() if dim else ("dim_view",)))
            for name, old, new in changed_entries(key, sides[0].get(key), sides[1].get(key))]  # fmt: skip
