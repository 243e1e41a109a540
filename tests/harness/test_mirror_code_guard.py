"""Tripwire for the code that turns a mirror's rows into mteb's dataset (harness/tasks.py, harness/data.py's
qrels and judged queries): a finished task is keyed by its files' hash plus its type's MIRROR_LAYOUT, bumped by
hand, so a change of that code that can move a score without the bump would keep the old code's scores on a
rerun (audit, stop 48: a CLSClusteringS2S mirror naming its sets kept 16.82 from the code before where it now
scores 27.41). Compared as the vector guard compares its code: the syntax tree without docstrings."""

from __future__ import annotations

import pytest
from test_vector_code_guard import GUARDS, code_hash

from harness.tasks import MIRROR_LAYOUT

TASKS = ("MAIN_SCORE_ALIASES", "mteb_twin", "mirror_main_score", "build_mirror", "_split_name", "_pick_split",
         "_generic_task", "_load_dataset", "cluster_sets", "hierarchical", "_label_levels", "_text_label",
         "_retrieval_split", "_reranking_split")  # fmt: skip
MIRROR_CODE = ((("harness/tasks.py", TASKS), ("harness/data.py", ("read_qrels", "judged_queries"))),
               "harness/tasks.py MIRROR_LAYOUT (the changed types')", "eb2cea7365103756")  # fmt: skip
# stop 67: messages only (read_qrels names CR-only line ends and near-named files, _name_clash an absent
# mteb_equivalent); every file that parsed before parses to the same rows, so no layout version moves


def test_mirror_code_changes_only_with_its_layout_version(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(GUARDS, "mirror", MIRROR_CODE)
    _, tag, recorded = MIRROR_CODE
    assert code_hash("mirror") == recorded, (
        f"the code that builds mirrors' datasets changed. If a score of some task type can change, bump that type "
        f"in {tag} (now {MIRROR_LAYOUT}): its finished tasks are then evaluated again. Then record the new hash in "
        f"{__name__}'s MIRROR_CODE: {code_hash('mirror')!r}")


def test_a_result_from_before_a_layout_change_is_evaluated_again(tmp_path, capsys) -> None:
    """A CLSClusteringS2S result recorded before stop 48 (its data identity without the layout) is not kept: the
    rerun says why and evaluates it again; an STS task (layout unchanged) is kept."""
    import json

    from harness.cli import main
    from harness.data import default_data_root

    args = ["run", "--tasks", "CLSClusteringS2S,STS16", "--model", "minilm", "--data-dir", str(default_data_root()),
            "--out", str(tmp_path), "--run-name", "r", "--no-progress"]  # fmt: skip
    assert main(args) == 0
    path = tmp_path / "r" / "run.json"
    record = json.loads(path.read_text(encoding="utf-8"))
    assert record["tasks"]["CLSClusteringS2S"]["identity"]["data"].endswith(" layout=2")
    assert " layout=" not in record["tasks"]["STS16"]["identity"]["data"]
    for where in (record["tasks"]["CLSClusteringS2S"]["identity"],):  # as the code before stop 48 recorded it
        where["data"] = where["data"].removesuffix(" layout=2")
    path.write_text(json.dumps(record), encoding="utf-8")
    capsys.readouterr()
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "CLSClusteringS2S: settings differ from the earlier result (data 'sha256:" in out
    assert "+ 'layout=2'): evaluating again" in out
    assert "STS16: done earlier, skipped" in out
