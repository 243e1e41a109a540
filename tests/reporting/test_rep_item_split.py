"""scripts/ablation_item_split.py: an ablation's Δ on the items another task shares and on the rest, from real
minilm runs on the tiny tasks (here, beside the tiny_runs fixture it needs)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from harness.errors import UsageError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import ablation_item_split as item_split  # noqa: E402


@pytest.fixture(scope="module")
def report(tiny_runs, tiny_root, tmp_path_factory) -> dict:
    """A report of two arms × two seeds on TinyRetrieval: base against the model cut to 4 and 6 tokens."""
    from harness.cli import main
    from reporting.ablation import build

    out = tmp_path_factory.mktemp("split")
    argv = ["run", "--tasks", "TinyRetrieval", "--model", "minilm", "--data-dir", str(tiny_root), "--out", str(out),
            "--run-name", "short6", "--no-progress", "--max-length", "6"]  # fmt: skip
    assert main(argv) == 0
    runs = {"base": {s: {"eval": str(tiny_runs["base"]), "final": str(out)} for s in (0, 1)},
            "short": {0: {"eval": str(tiny_runs["short"]), "final": str(out)},
                      1: {"eval": str(out / "short6"), "final": str(out)}}}  # fmt: skip
    cfg = {"name": "split", "seeds": [0, 1], "reference": "base", "n_boot": 300, "eval": {}}
    return json.loads(json.dumps(build(cfg, out / "a.toml", {"done": {}}, runs, [], ["TinyRetrieval"])))


def test_the_parts_add_up_to_the_report_row(report, tiny_root) -> None:
    """nDCG@10 is a mean over queries, so n·Δ_all = n_shared·Δ_shared + n_rest·Δ_rest whichever queries are
    shared; the "all" part draws the report's own resamples, so it is the report's row."""
    queries = [json.loads(line)["_id"] for line in (tiny_root / "en" / "TinyRetrieval" / "queries.jsonl")
               .read_text(encoding="utf-8").splitlines()]  # fmt: skip
    ids = set(queries[::3]) | {"not-a-query"}
    rows = item_split.split(report, "TinyRetrieval", ids)["short"]
    shared, rest, everything = rows["shared"], rows["rest"], rows["all"]
    assert (shared["items"], rest["items"], everything["items"]) == (len(queries[::3]), len(queries) - len(
        queries[::3]), len(queries))  # fmt: skip
    weighted = (shared["items"] * shared["delta"] + rest["items"] * rest["delta"]) / everything["items"]
    assert weighted == pytest.approx(everything["delta"], abs=1e-9)
    row = report["comparisons"]["short"]["TinyRetrieval"]
    # the report's Δ is of the result files' scores, which mteb rounds to 5 decimals: each within 5e-6 of the items'
    # exact score, a difference of two within 1e-5; the half-width is the same resamples' (to float rounding)
    assert everything["delta"] == pytest.approx(row["delta"], abs=1e-5)
    half = (everything["hi"] - everything["lo"]) / 2
    assert half == pytest.approx((row["hi"] - row["lo"]) / 2, abs=1e-12)
    assert shared["delta"] != pytest.approx(rest["delta"], abs=1e-6)  # the parts are scored apart


def test_cli_writes_the_split_and_names_bad_options(report, tiny_root, tmp_path, capsys) -> None:
    """Every query of the task is in itself: the rest is empty and said so, not a crash."""
    (tmp_path / "report.json").write_text(json.dumps(report), encoding="utf-8")
    argv = [str(tmp_path), "--task", "TinyRetrieval", "--ids-of", "TinyRetrieval", "--data-dir", str(tiny_root)]
    assert item_split.main(argv) == 0
    written = json.loads((tmp_path / "item_split_TinyRetrieval_by_TinyRetrieval.json").read_text(encoding="utf-8"))
    written = written["comparisons"]["short"]
    assert written["shared"]["delta"] == pytest.approx(written["all"]["delta"], abs=1e-12)
    assert written["rest"] == {"delta": None, "lo": None, "hi": None, "items": 0, "verdict": "not tested: no items"}
    assert "| short | not in TinyRetrieval (0)" in capsys.readouterr().out
    assert item_split.main([*argv[:2], "STS99", *argv[3:]]) == 2
    assert "--task STS99: not a task of this report" in capsys.readouterr().err
    assert item_split.main([*argv[:4], "TinySTS", *argv[5:]]) == 2
    assert "--ids-of TinySTS:" in capsys.readouterr().err
    with pytest.raises(UsageError, match="no such task"):
        item_split.query_ids(tiny_root, "Nope")


def test_a_split_that_would_mean_nothing_is_refused(report, tiny_runs, tmp_path) -> None:
    """Review 40 M2: numeric ids of another task matched a positional task's item numbers ("0", "1", ...) and
    split it silently; ids that match nothing, and runs not found from here, are refused too."""
    from reporting.ablation import build

    runs = {"base": {0: {"eval": str(tiny_runs["base"]), "final": str(tmp_path)}},
            "short": {0: {"eval": str(tiny_runs["short"]), "final": str(tmp_path)}}}  # fmt: skip
    cfg = {"name": "sts", "seeds": [0], "reference": "base", "n_boot": 50, "eval": {}}
    sts = json.loads(json.dumps(build(cfg, tmp_path / "a.toml", {"done": {}}, runs, [], ["TinySTS"])))
    with pytest.raises(UsageError, match="its items are pairs named by position, not query ids"):
        item_split.split(sts, "TinySTS", {"0", "1", "2"})
    with pytest.raises(UsageError, match="none of its 10 query ids is one of the 1 given"):
        item_split.split(report, "TinyRetrieval", {"nope"})
    moved = json.loads(json.dumps(report))
    moved["arms"]["short"]["runs"]["1"]["eval"] = str(tmp_path / "elsewhere")
    with pytest.raises(UsageError, match="elsewhere not found from .*: the report names its runs relative"):
        item_split.split(moved, "TinyRetrieval", {"x"})
