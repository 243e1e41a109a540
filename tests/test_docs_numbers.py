"""Every confidence interval README.md and docs/*.md quote must be one a committed ablation report holds.

A rerun rewrites reports/ablations/<name>/report.json; a quote left behind in the docs would then claim a number
nothing measured any more (stop 37's audit found such quotes by hand). Each `[lo, hi]` (×100, two decimals) in the
prose and tables must be a CI of some comparison in some committed report.json, and where a Δ stands right before
it (`+0.99 [+0.65, +1.33]`) the Δ must be that comparison's too. The quotes of runs no committed report holds any
more (earlier runs a rerun replaced, examples of other commands) are listed below with where they come from: the
docs mark each one as such ("before", "the first run", "not kept in a file").
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
INTERVAL = re.compile(r"(?:([+−-]\d+\.\d\d) )?\[([+−-]\d+\.\d\d), ([+−-]\d+\.\d\d)\]")

# [lo, hi] quoted for a run that no committed report holds now, and why.
HISTORICAL = {
    "[+0.89, +1.63]": "clr_lr (on vs off, test mean) at stop 48, before its stop-52 rerun under stop 50's rule",
    "[+0.14, +1.44]": "clr_lr's XQuAD zh at stop 48, before its stop-52 rerun",
    "[+0.04, +0.81]": "clr_lr's XQuAD ru at stop 48, before its stop-52 rerun",
    "[−0.96, +3.53]": "clr (on vs off, test mean) at stop 48, before its stop-52 rerun under stop 50's rule",
    "[+0.72, +1.35]": "clr_control (on vs off60, test mean) at stop 47, before its stop-52 rerun",
    "[+0.01, +0.98]": "clr_control's XQuAD tr (on vs off60) at stop 47, before its stop-52 rerun",
    "[−0.43, −0.02]": "clr_control (off vs off60, test mean) at stop 47, before its stop-52 rerun",
    "[−1.85, −0.32]": "clr_control's Tatoeba spa (off vs off60) at stop 47, before its stop-52 rerun",
    "[−1.06, +3.72]": "clr (on vs off, test mean) before its stop-48 rerun with the new pools",
    "[+0.80, +1.67]": "clr_lr (on vs off, test mean) before its stop-48 rerun with the new pools",
    "[−0.04, +0.87]": "clr_lr's XQuAD ru before its stop-48 rerun",
    "[−4.38, +2.32]": "docs/reports.md: harness regress example (STS16 items paired by position), not an ablation",
    "[−21.03, +19.65]": "docs/reports.md: the same example with unrelated items paired",
    "[+2.32, +22.40]": "docs/reports.md: harness regress of a --max-length 16 run, not kept in a file",
    "[−0.05, +0.11]": "dhnm_lr before its stop-37 rerun on full pools (dynamic vs static)",
    "[+0.14, +0.56]": "dhnm_lr before its stop-37 rerun (in-batch only vs static)",
    "[+0.57, +3.69]": "mrl before its stop-36 rerun on full pools (dim 24)",
    "[+1.07, +1.62]": "mrl_lr before its stop-37 rerun on full pools (dim 24)",
    "[+0.87, +1.67]": "the first clr_lr run, dev XQuAD de (stop 25 replaced it)",
    "[+0.61, +1.41]": "clr_control's first run, CI recomputed by hand in stop 25 (regenerated in stop 38)",
    "[−0.48, −0.04]": "clr_control's first run, off vs off60, recomputed by hand in stop 25",
    "[−0.16, +0.45]": "dhnm's stop-28 run (before the stop-36 rerun on full pools)",
    "[−0.99, +1.92]": "dhnm's stop-28 run, in-batch only vs static",
    "[−0.13, +0.53]": "dhnm's first run, a t interval over its 3 per-seed Δ alone (stop 23)",
    "[−1.20, +2.55]": "dhnm's first run, in-batch only, seeds-only bound (stop 23)",
    "[−1.15, +3.74]": "clr's first run, seeds-only bound (stop 23)",
    "[−0.60, +4.01]": "the tiny-preset soft-mask report (git show aa4a4f9:reports/ablations/softmask/report.md)",
    "[−0.19, +0.13]": "the tiny-preset DHNM report (0.9M parameters, session 4, at ba3b0ee)",
    "[−1.65, −0.20]": "the tiny-preset CLR report (0.9M parameters, at d2395dc)",
    "[+0.33, +2.17]": "clr's first run under the first CI method (a percentile bootstrap over 3 seeds)",
    "[+0.65, +1.33]": "clr_control's stop-38 run, on vs off60 (rerun in stop 47 with the new pools)",
    "[−0.15, +0.84]": "clr_control's stop-38 run, on vs off60 on XQuAD tr (rerun in stop 47)",
    "[−0.46, −0.01]": "clr_control's stop-38 run, off vs off60 (rerun in stop 47)",
    "[−0.58, −0.04]": "clr_control's stop-38 run, off vs off60 on XQuAD es (rerun in stop 47)",
    "[−0.03, +0.47]": "dhnm_decoder's stop-37 run, DHNM state per row (rerun in stop 51)",
    "[−0.01, +0.45]": "dhnm_decoder's stop-37 run, STS13 (rerun in stop 51)",
    "[−0.09, +0.54]": "dhnm_decoder's stop-37 run, XQuAD (rerun in stop 51)",
    "[−0.39, +0.80]": "dhnm_decoder's stop-37 run, TrecQA (rerun in stop 51)",
    "[−0.93, +0.92]": "dhnm_decoder's stop-37 run, in-batch only vs static (rerun in stop 51)",
    "[+0.76, +3.18]": "dhnm_decoder's stop-37 run, in-batch only, XQuAD (rerun in stop 51)",
    "[−4.35, −0.11]": "dhnm_decoder's stop-37 run, in-batch only, TrecQA (rerun in stop 51)",
    "[+0.04, +0.46]": "dhnm_decoder_rep's stop-38 run, DHNM state per row (rerun in stop 50 with a state per question)",
    "[+0.17, +0.48]": "dhnm_decoder_rep's stop-38 run, STS13 (rerun in stop 50)",
    "[−0.09, +0.34]": "dhnm_decoder_rep's stop-38 run, XQuAD (rerun in stop 50)",
    "[−0.19, +0.79]": "dhnm_decoder_rep's stop-38 run, TrecQA (rerun in stop 50)",
    "[−0.03, +0.34]": "dhnm_decoder_rep's stop-38 run, dev SciFact (rerun in stop 50)",
}


def _fmt(value: float) -> str:
    return f"{100 * value:+.2f}".replace("-", "−")


def reported() -> tuple[set[tuple[str, str]], set[tuple[str, str, str]]]:
    """Every (lo, hi) and (Δ, lo, hi), ×100 as the reports print them, of every committed report.json."""
    intervals: set[tuple[str, str]] = set()
    triples: set[tuple[str, str, str]] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("lo") is not None and node.get("hi") is not None and "delta" in node:
                lo, hi = _fmt(node["lo"]), _fmt(node["hi"])
                intervals.add((lo, hi))
                triples.add((_fmt(node["delta"]), lo, hi))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    for path in sorted((REPO / "reports" / "ablations").glob("*/*.json")):  # report.json, item_split_*.json
        walk(json.loads(path.read_text(encoding="utf-8")))
    return intervals, triples


def quotes() -> list[tuple[str, str | None, str, str]]:
    """(file:line, Δ or None, lo, hi) of every interval quoted in README.md and docs/*.md, minus signs as `−`."""
    found = []
    for doc in DOCS:
        for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
            for match in INTERVAL.finditer(line):
                delta, lo, hi = (g.replace("-", "−") if g else None for g in match.groups())
                found.append((f"{doc.relative_to(REPO)}:{number}", delta, lo, hi))
    return found


def test_every_quoted_interval_is_in_a_committed_report() -> None:
    intervals, _ = reported()
    assert len(intervals) > 100  # the reports were read (a layout change must not pass this test vacuously)
    stale = [f"{where}: [{lo}, {hi}]" for where, _, lo, hi in quotes()
             if (lo, hi) not in intervals and f"[{lo}, {hi}]" not in HISTORICAL]  # fmt: skip
    assert not stale, "intervals no committed report holds (rerun? quote the new report, or list it as historical): " \
        + "; ".join(stale)


def test_a_delta_quoted_with_its_interval_is_that_comparison_s() -> None:
    intervals, triples = reported()
    wrong = [f"{where}: {delta} [{lo}, {hi}]" for where, delta, lo, hi in quotes()
             if delta and (lo, hi) in intervals and (delta, lo, hi) not in triples]  # fmt: skip
    assert not wrong, "a Δ beside a reported interval that is not its comparison's Δ: " + "; ".join(wrong)


def test_every_historical_interval_is_still_quoted() -> None:
    """The list shrinks with the docs: a historical quote the docs dropped is dropped here too."""
    quoted = {f"[{lo}, {hi}]" for _, _, lo, hi in quotes()}
    assert not set(HISTORICAL) - quoted, sorted(set(HISTORICAL) - quoted)


VERDICTS = ("improves", "hurts", "no effect shown")
CELL_TRIPLE = re.compile(r"(?:dim (\d+)|full): ([+−-]\d+\.\d\d) \[([+−-]\d+\.\d\d), ([+−-]\d+\.\d\d)\]|"
                         r"^([+−-]\d+\.\d\d) \[([+−-]\d+\.\d\d), ([+−-]\d+\.\d\d)\]")  # fmt: skip


def readme_ablation_rows() -> list[tuple[int, list[str]]]:
    """(line, cells) of README.md's table of the ablations' findings."""
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| question | ablation (seeds) |"))
    rows = []
    for number, line in enumerate(lines[start + 2 :], start + 3):
        if not line.startswith("|"):
            break
        rows.append((number, [cell.strip() for cell in line.strip("|").split(" | ")]))
    return rows


def test_each_readme_ablation_row_is_its_own_report_s_test_mean_and_verdict() -> None:
    """Audit, stop 50: the quotes were checked against every report at once, so two rows' numbers swapped, or a
    verdict word changed, passed. Each row's Δ [CI] (at full width, or at each dim it names) must be a test-mean
    comparison of the report its ablation cell names, its seed count that report's, and its verdict the verdict of
    the first number it quotes."""
    rows = readme_ablation_rows()
    assert len(rows) >= 15
    for number, (_, ablation, quoted, verdict) in rows:
        name, seeds = re.fullmatch(r"`(\w+)` \((\d+)(?: new)?\)", ablation).groups()
        report = json.loads((REPO / "reports" / "ablations" / name / "report.json").read_text(encoding="utf-8"))
        assert len(report["seeds"]) == int(seeds), f"README.md:{number}: {name} has {len(report['seeds'])} seeds"
        found = []
        for match in CELL_TRIPLE.finditer(quoted):
            dim, *numbers = match.groups()
            triple = tuple(g.replace("-", "−") for g in numbers if g)
            table = report["dims"][dim]["comparisons"] if dim else report["comparisons"]
            means = [c["test mean"] for c in table.values()]
            same = [m for m in means if (_fmt(m["delta"]), _fmt(m["lo"]), _fmt(m["hi"])) == triple]
            assert same, f"README.md:{number}: {triple} is no test-mean comparison of {name}" + (f" at dim {dim}"
                                                                                               if dim else "")
            found.append(same[0]["verdict"])
        assert found, f"README.md:{number}: no Δ [CI] in {quoted!r}"
        said = next(v for v in VERDICTS if verdict.replace("**", "").startswith(v))
        assert said == found[0], f"README.md:{number}: says {said!r}, {name}'s report {found[0]!r}"
