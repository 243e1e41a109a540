"""scripts/reverdict_ablations.py: today's verdict rules applied to a report written before them, numbers kept."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# clr_control's XQuAD tr row as its stop-47 run wrote it (report.json at a5d0740, before the stop-52 rerun, whose
# row is clear of the rule): numbers only, no `edge_mc_se`, verdict as written before the rule
STOP47_ROW = {"delta": 0.0049066666666666885, "seeds": 3, "lo": 5.995967527403032e-05, "hi": 0.009753373658059346,
              "items": 1184, "verdict": "improves", "reason": "", "se_items": 0.002220906614328654,
              "se_seeds": 0.0004953683065792705, "se_item_seed": 0.0010117476493326156,
              "per_seed": [0.004162032760483547, 0.004714872846175222, 0.005845322986469337], "unit": "queries"}


def test_a_report_from_before_the_rule_gets_its_withheld_verdicts(tmp_path: Path) -> None:
    """clr_control's XQuAD tr row (+0.49 [+0.01, +0.98]) as its stop-47 run wrote it: **improves**, an edge within
    the bootstrap's own noise. Rewritten, it says no effect shown with the reason; every number is unchanged, and a
    second pass changes nothing."""
    folder = tmp_path / "clr_control"
    shutil.copytree(REPO / "reports" / "ablations" / "clr_control", folder)
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    row = report["comparisons"]["on"]["XQuADRetrievalTrEn"] = dict(STOP47_ROW)
    (folder / "report.json").write_text(json.dumps(report), encoding="utf-8")
    script = [sys.executable, str(REPO / "scripts" / "reverdict_ablations.py"), str(tmp_path)]
    done = subprocess.run(script, capture_output=True, text=True, check=True, cwd=REPO)
    assert done.stdout == "clr_control on XQuADRetrievalTrEn (dim full): improves -> no effect shown\n"
    after = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    fixed = after["comparisons"]["on"]["XQuADRetrievalTrEn"]
    assert fixed["verdict"] == "no effect shown" and "within the bootstrap's own noise" in fixed["reason"]
    assert {k: v for k, v in fixed.items() if k not in ("verdict", "reason")} == \
        {k: v for k, v in row.items() if k not in ("verdict", "reason")}
    assert "| on    | XQuADRetrievalTrEn (test) | +0.49 | [+0.01, +0.98] | no effect shown" in \
        (folder / "report.md").read_text(encoding="utf-8")
    assert subprocess.run(script, capture_output=True, text=True, check=True, cwd=REPO).stdout == ""


def test_one_seed_and_few_item_rows_written_before_stop_69_lose_their_verdicts(tmp_path: Path) -> None:
    """The stop-69 rules: a one-seed row (no se_seeds) and a row of fewer than 30 items get no verdict; a report
    written before them said **improves** on both. Rewritten, each says why; its numbers stay."""
    folder = tmp_path / "clr_control"
    shutil.copytree(REPO / "reports" / "ablations" / "clr_control", folder)
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    clear = {**STOP47_ROW, "lo": 0.004, "hi": 0.0058, "se_items": 0.0001}  # far from 0: the stop-48 rule keeps it
    report["comparisons"]["on"]["XQuADRetrievalTrEn"] = {**clear, "se_seeds": None, "se_item_seed": None}
    report["comparisons"]["on"]["XQuADRetrievalEsEn"] = {**clear, "items": 12}
    (folder / "report.json").write_text(json.dumps(report), encoding="utf-8")
    script = [sys.executable, str(REPO / "scripts" / "reverdict_ablations.py"), str(tmp_path)]
    done = subprocess.run(script, capture_output=True, text=True, check=True, cwd=REPO)
    assert sorted(done.stdout.splitlines()) == [f"clr_control on XQuADRetrieval{lang}En (dim full): improves -> no "
                                                "effect shown" for lang in ("Es", "Tr")]
    rows = json.loads((folder / "report.json").read_text(encoding="utf-8"))["comparisons"]["on"]
    assert rows["XQuADRetrievalTrEn"]["reason"].startswith("would be improves on one seed")
    assert rows["XQuADRetrievalEsEn"]["reason"].startswith("would be improves: 12 items, fewer than 30")
    assert rows["XQuADRetrievalEsEn"]["lo"] == clear["lo"] and rows["XQuADRetrievalEsEn"]["items"] == 12
