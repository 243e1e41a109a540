"""Nights served from the embedding cache: a team's nightly `harness run` into dated run directories with the cache
on, so a night can encode nothing (every text a cache hit), then `harness report` over the nights and
`harness regress` between two of them. Real minilm runs on two tiny tasks (tests/reporting/conftest.py) and a real
cache (`--cache-dir`)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from harness.cli import main
from reporting.efficiency import CACHE_ONLY

NIGHT_TASKS = ["TinySTS", "TinyRerank"]


@pytest.fixture(scope="module")
def nights(tiny_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """night-1 encodes and fills a fresh cache, night-2 reruns the same settings (every text from the cache),
    night-3 runs without the cache."""
    out, cache = tmp_path_factory.mktemp("nights"), tmp_path_factory.mktemp("cache")
    for name, extra in (("night-1", ["--cache-dir", str(cache)]), ("night-2", ["--cache-dir", str(cache)]),
                        ("night-3", ["--no-cache"])):  # fmt: skip
        argv = ["run", "--tasks", ",".join(NIGHT_TASKS), "--model", "minilm", "--data-dir", str(tiny_root),
                "--out", str(out), "--run-name", name, "--no-progress", *extra]  # fmt: skip
        assert main(argv) == 0, name
    runs = {name: out / name for name in ("night-1", "night-2", "night-3")}
    warm = json.loads((runs["night-2"] / "efficiency.json").read_text(encoding="utf-8"))
    assert all(warm[t]["encoded_texts"] == 0 and warm[t]["cache_hits"] for t in NIGHT_TASKS)  # served whole
    return runs


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _row(text: str, start: str) -> list[str]:
    (line,) = [line for line in text.splitlines() if line.startswith(start)]
    return _cells(line)


def test_report_marks_the_cached_night_and_times_the_others(nights, tmp_path):
    """Before: one night served from the cache blanked the model time, texts/s and tokens/s of every row ("No task
    was encoded by the model in every run"), the two nights that did encode included."""
    out = tmp_path / "report"
    assert main(["report", *map(str, nights.values()), "--out", str(out)]) == 0
    text = re.sub(r" +", " ", (out / "efficiency.md").read_text(encoding="utf-8"))
    table5 = text.split("## Hardware")[0]
    assert "Model time, s (2 tasks)" in table5
    assert _row(table5, "| all-MiniLM-L6-v2 [night-2] |")[3:6] == [CACHE_ONLY] * 3
    for name in ("night-1", "night-3"):
        seconds, texts_s, tokens_s = _row(table5, f"| all-MiniLM-L6-v2 [{name}] |")[3:6]
        assert float(seconds) > 0 and float(texts_s.replace(",", "")) > 0 and float(tokens_s.replace(",", "")) > 0
    assert (f"all-MiniLM-L6-v2 [night-2]: the embedding cache served every text of the 2 task(s), so the model did "
            f"no work to time (`{CACHE_ONLY}`); the other rows' times are compared without it.") in table5
    assert "over the 2 task(s) every other run finished on the same data and encoded: TinyRerank, TinySTS." in table5
    assert "No task was encoded by the model" not in table5


def test_report_over_cached_nights_alone_says_so_in_every_row(nights, tmp_path):
    out = tmp_path / "report"
    assert main(["report", str(nights["night-2"]), "--out", str(out)]) == 0
    table5 = re.sub(r" +", " ", (out / "efficiency.md").read_text(encoding="utf-8")).split("## Hardware")[0]
    assert _row(table5, "| all-MiniLM-L6-v2 [night-2] |")[3:6] == [CACHE_ONLY] * 3
    assert "no model time to compare (rerun with `harness run --no-cache`)." in table5


def test_summary_of_a_cached_night_says_cache_only(nights):
    """Before: summary.md of a night served from the cache showed `—` for texts/s and tokens/s, a missing figure."""
    text = (nights["night-2"] / "summary.md").read_text(encoding="utf-8")
    header = _cells(next(line for line in text.splitlines() if line.startswith("| task ")))
    for task in NIGHT_TASKS:
        row = dict(zip(header, _row(text, f"| {task} "), strict=True))
        assert (row["encoded"], row["texts/s"], row["tokens/s"]) == ("0", CACHE_ONLY, CACHE_ONLY)
    assert f"`{CACHE_ONLY}`: the embedding cache served every text of the task" in text
    assert CACHE_ONLY not in (nights["night-1"] / "summary.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("cached", ["candidate", "baseline"])
def test_regress_marks_efficiency_deltas_of_a_cached_side(nights, tmp_path, cached):
    """Before: a candidate night served from the cache showed a peak-RSS Δ (its process never did the model's
    work) as if the model had changed, beside a `—` texts/s."""
    sides = {"baseline": nights["night-1"], "candidate": nights["night-1"]} | {cached: nights["night-2"]}
    out = tmp_path / "r.md"
    assert main(["regress", "--baseline", str(sides["baseline"]), "--candidate", str(sides["candidate"]),
                 "--n-boot", "20", "--out", str(out)]) == 0  # fmt: skip
    text = out.read_text(encoding="utf-8")
    efficiency = text.split("## Efficiency")[1].split("## Warnings")[0]
    header = _cells(next(line for line in efficiency.splitlines() if line.startswith("| Task ")))
    for task in NIGHT_TASKS:
        row = _row(efficiency, f"| {task} ")
        deltas = [cell for name, cell in zip(header, row, strict=True) if name == "Δ"]
        assert deltas == ["— (cache-only side)"] * 3 and "%" not in "".join(row)
        rates = row[1:3] + row[4:6]  # texts/s base, cand, tokens/s base, cand
        assert [cell == CACHE_ONLY for cell in rates] == [cached == "baseline", cached == "candidate"] * 2
    assert (f"the embedding cache served the {cached} whole on TinySTS, TinyRerank: the model did no work there, "
            "so its rates and peak memory are not the model's and no Δ is shown") in text
