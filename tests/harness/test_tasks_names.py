"""A task folder that takes an mteb task's name must be that task's mirror: otherwise its scores would be recorded
and ranked under mteb's name, beside the published number, though its rows are another task's."""

from __future__ import annotations

import json
from pathlib import Path

from test_data import _sample_copy

from harness.data import discover_tasks
from harness.runs import MIRROR, MISSING
from harness.tasks import resolve


def _rename(folder: Path, name: str, **changes) -> None:
    """The task folder renamed to `name`, its task.json's name with it, plus `changes`."""
    spec = folder / "task.json"
    spec.write_text(json.dumps({**json.loads(spec.read_text(encoding="utf-8")), "name": name, **changes}), "utf-8")
    folder.rename(folder.parent / name)


def test_folder_named_like_an_mteb_task_is_not_run_as_it(tmp_path: Path) -> None:
    """Before: TrecQA's rows ran as mteb's SciDocsRR (and `auto` ran mteb's own data instead when it was cached)."""
    _rename(_sample_copy(tmp_path, "en", "TrecQAReranking"), "SciDocsRR", mteb_equivalent=None)
    for source in ("auto", "mirror"):
        resolved = resolve("SciDocsRR", discover_tasks(tmp_path), source)
        assert resolved.source == MISSING and resolved.task is None
        spec = tmp_path / "en" / "SciDocsRR" / "task.json"
        assert resolved.reason.startswith(f"{spec}: the folder takes the name of mteb's Reranking task SciDocsRR but "
                                          "task.json sets no mteb_equivalent: rename")  # fmt: skip


def test_mirror_of_another_type_is_refused(tmp_path: Path) -> None:
    """Before: a Reranking folder calling itself STS12 ran as a generic Reranking task recorded under STS12."""
    _rename(_sample_copy(tmp_path, "en", "TrecQAReranking"), "STS12", mteb_equivalent="STS12")
    resolved = resolve("STS12", discover_tasks(tmp_path), "mirror")
    assert resolved.source == MISSING
    assert "type 'Reranking', but mteb's STS12 (its mteb_equivalent) is a STS task" in resolved.reason


def test_real_mirrors_and_local_tasks_still_resolve(tmp_path: Path) -> None:
    for lang, name in (("en", "STS12"), ("en", "TrecQAReranking")):
        _sample_copy(tmp_path, lang, name)
    tasks = discover_tasks(tmp_path)
    assert [resolve(name, tasks, "mirror").source for name in ("STS12", "TrecQAReranking")] == [MIRROR, MIRROR]


def test_a_mirror_of_a_multilingual_mteb_task_is_refused(tmp_path: Path) -> None:
    """Audit, stop 48: a folder named AmazonCounterfactualClassification (mteb's is multilingual: de, en, en-ext,
    ja) ran as a generic Classification task recorded under mteb's name, with the generic class's 8 samples per
    label where mteb's takes 32 (accuracy 0.675 against mteb's class's 0.751 on the same rows), and task.json's
    main score where mteb reports accuracy."""
    _rename(_sample_copy(tmp_path, "zh", "TNews"), "AmazonCounterfactualClassification",
            mteb_equivalent="AmazonCounterfactualClassification")  # fmt: skip
    resolved = resolve("AmazonCounterfactualClassification", discover_tasks(tmp_path), "mirror")
    assert resolved.source == MISSING and resolved.task is None
    assert "mteb's AmazonCounterfactualClassification is multilingual (4 subsets: " in resolved.reason
    assert "rename the folder and its name (a task of its own), or run --source official" in resolved.reason


def test_a_mirror_of_rows_a_suite_does_not_score_is_not_run_in_it(tmp_path: Path) -> None:
    """Audit, stop 48: MTEB(cmn, v1) scores ATEC on its test split only; an ATEC mirror of validation rows
    (eval_split "dev") ran under --suite cmteb and counted in its summary and mean. Now MISSING in the suite,
    naming why; by --tasks (mteb's whole task, validation and test) it still runs, and test rows run in the
    suite as before."""
    from harness.suites import official_suite

    suite_task = official_suite("cmteb").official["ATEC"]
    folder = _sample_copy(tmp_path, "zh", "ATEC")
    assert resolve("ATEC", discover_tasks(tmp_path), "mirror", suite_task).source == MIRROR
    spec = folder / "task.json"
    spec.write_text(json.dumps({**json.loads(spec.read_text(encoding="utf-8")), "eval_split": "dev"}), "utf-8")
    resolved = resolve("ATEC", discover_tasks(tmp_path), "mirror", suite_task)
    assert resolved.source == MISSING
    assert resolved.reason == (f"{spec}: the mirror holds ATEC's validation rows (eval_split 'dev'), but the suite's "
                               "benchmark scores it on test only; run it by --tasks (mteb's whole task) or give the "
                               "mirror those rows")  # fmt: skip
    assert resolve("ATEC", discover_tasks(tmp_path), "mirror").source == MIRROR
