"""scripts/reverdict_ablations.py: the stop-48 verdict rule applied to a report written before it, numbers kept."""

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
