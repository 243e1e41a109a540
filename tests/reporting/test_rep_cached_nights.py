"""Nights served from the embedding cache: a team's nightly `harness run` into dated run directories with the cache
on, so a night can encode nothing (every text a cache hit), then `harness report` over the nights and
`harness regress` between two of them. Real minilm runs on two tiny tasks (tests/reporting/conftest.py) and a real
cache (`--cache-dir`)."""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.runs import CACHE_ONLY

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


def _regress_json(base: Path, cand: Path, out: Path, json_path: Path, *extra: str) -> tuple[int, dict | None]:
    code = main(["regress", "--baseline", str(base), "--candidate", str(cand), "--n-boot", "20", "--out", str(out),
                 "--json", str(json_path), *extra])  # fmt: skip
    return code, json.loads(json_path.read_text(encoding="utf-8")) if json_path.is_file() else None


def test_json_is_written_on_unusable_input(nights, tmp_path, capsys):
    """Before: exit 2 wrote no JSON, and a CI job parsing it found no file."""
    night = nights["night-1"]
    code, result = _regress_json(night, night, tmp_path / "r.md", tmp_path / "bad-alpha.json", "--alpha", "2")
    assert code == 2 and result is not None
    assert (result["exit_status"], result["passed"], result["tasks"]) == (2, False, [])
    assert result["outcome"] == "UNUSABLE INPUT (exit 2): --alpha 2.0: must be between 0 and 1 (exclusive)"
    assert result["error"] == "--alpha 2.0: must be between 0 and 1 (exclusive)"
    assert result["baseline"] == {"path": result["baseline"]["path"], "name": None, "spec": None, "fingerprint": None}
    code, result = _regress_json(tmp_path / "absent", night, tmp_path / "r.md", tmp_path / "absent.json")
    assert code == 2 and result["error"] == "--baseline …/absent: not a run directory (no such folder)"
    assert result["baseline"]["path"] == "…/absent"
    # since stop 59 --out says it too: before, the file was left as it was (the last night's PASS)
    assert (tmp_path / "r.md").read_text().startswith(f"# Regression report — {result['outcome']}\n")
    assert "Traceback" not in capsys.readouterr().err
    # before (audit, stop 46): numpy's traceback, exit 1 (what a CI gate reads as a regression), no JSON
    code, result = _regress_json(night, night, tmp_path / "r.md", tmp_path / "bad-seed.json", "--seed", "-1")
    assert code == 2 and result["error"] == "--seed -1: must be 0 or more (a random seed)"


def test_json_keeps_the_comparison_when_only_the_report_cannot_be_written(nights, tmp_path, capsys, monkeypatch):
    """An --out naming a folder is refused before the comparison (the JSON says so, with no verdict); one that
    fails only at writing (a full disk, injected) keeps the finished verdicts in the JSON."""
    folder = tmp_path / "reports"
    folder.mkdir()
    code, result = _regress_json(nights["night-1"], nights["night-3"], folder, tmp_path / "r.json")
    assert code == 2 and result["exit_status"] == 2 and result["passed"] is False and result["tasks"] == []
    assert result["error"] == "--out …/reports: is a directory; give the name of a file to write"  # stop 64: no
    # machine's path in the JSON (a user's walk); stderr keeps it
    assert f"harness: error: --out {folder}: is a directory" in capsys.readouterr().err

    def disk_full(path: Path, text: str) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr("harness.runs.atomic_write_text", disk_full)
    code, result = _regress_json(nights["night-1"], nights["night-3"], tmp_path / "r.md", tmp_path / "r.json")
    assert code == 2 and result["error"] == "--out …/r.md: cannot be written (No space left on device)"
    assert sorted(t["task"] for t in result["tasks"]) == sorted(NIGHT_TASKS)  # the finished verdicts, kept


def test_json_is_written_when_there_is_no_task_to_compare(nights, tmp_path, capsys):
    """Before: exit 3 with no task in common wrote no JSON ("the reason on stderr" only)."""
    empty = tmp_path / "empty"
    shutil.copytree(nights["night-1"], empty, ignore=shutil.ignore_patterns("results", "predictions"))
    record = json.loads((empty / "run.json").read_text(encoding="utf-8"))
    record["tasks"] = {}
    (empty / "run.json").write_text(json.dumps(record), encoding="utf-8")
    shutil.copytree(empty, tmp_path / "empty2")  # one directory as both sides is refused (exit 2) since stop 50
    code, result = _regress_json(empty, tmp_path / "empty2", tmp_path / "r.md", tmp_path / "r.json")
    assert code == 3 and (result["exit_status"], result["passed"], result["tasks"]) == (3, False, [])
    assert result["outcome"].startswith("NOT COMPARED (exit 3): nothing compared: no task to compare between ")
    assert "nothing compared: no task to compare between" in capsys.readouterr().err


def test_an_unwritable_json_path_is_named_beside_the_reason(nights, tmp_path, capsys):
    """The --json path itself being the bad input: nothing is written there, and the error still names why
    regress stopped (here --alpha) as well as the --json path."""
    folder = tmp_path / "taken"
    folder.mkdir()
    night = nights["night-1"]
    assert _regress_json(night, night, tmp_path / "r.md", folder, "--alpha", "2") == (2, None)
    err = capsys.readouterr().err
    assert f"harness: error: --json {folder}: is a directory; give the name of a file to write" in err
    assert "harness: error: --alpha 2.0: must be between 0 and 1 (exclusive)" in err
    assert list(folder.iterdir()) == [] and "Traceback" not in err


def test_an_os_error_writing_json_or_out_is_an_error_naming_the_option(nights, tmp_path, capsys):
    """Before: an OSError other than 'is a directory' (a read-only folder, a name too long) escaped as a traceback,
    hiding why regress stopped; a name too long stands in for them here (root ignores permissions)."""
    night = nights["night-1"]
    long_json = tmp_path / ("j" * 300 + ".json")
    assert main(["regress", "--baseline", str(night), "--candidate", str(night), "--out", str(tmp_path / "r.md"),
                 "--json", str(long_json), "--alpha", "2"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert f"harness: error: --json {long_json}: cannot be written (File name too long)" in err
    assert "--alpha 2.0: must be between 0 and 1" in err
    assert _regress_json(night, night, tmp_path / ("r" * 300 + ".md"), tmp_path / "r.json")[0] == 2
    err = capsys.readouterr().err
    assert "--out " in err and "cannot be written (File name too long)" in err and "Traceback" not in err
    assert json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))["exit_status"] == 2
