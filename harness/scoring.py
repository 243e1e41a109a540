"""mteb's scoring, faster where it spends its time in Python on output that is already fixed.

On a GPU the model is no longer what a run waits for: on an H200, mteb's scoring was 77-93% of the wall of the
three retrieval and classification tasks a budget-stopped run reached (docs/harness.md, "Where the time goes").
Profiled on CPU, much of it was not the scoring arithmetic:

- `_save_task_predictions` writes the per-item predictions (for retrieval, the top 1000 hits of every query: 86 MB
  of JSON for CMRC2018) with `json.dump`, which always takes the pure-Python encoder; `json.dumps` takes the C
  one and gives the same text.
- classification reads its label column, a lazy `datasets` Column, row by row: sklearn's metrics turn it into an
  array one row fetch at a time (seven metrics and ten experiments a task), and the undersampling loop fetches one
  row per training item per experiment. Read once as a list, the column holds the same values.

`faster_scoring(task)` puts these on the task object for one evaluation and takes them off after, only where the
task's method is mteb's own (a task class with its own writer or undersampling keeps it); mteb's evaluators,
metrics and files are unchanged (tests/harness/test_scoring.py compares bytes and scores with mteb's
own methods).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from datasets.arrow_dataset import Column
from mteb.abstasks.abstask import AbsTask
from mteb.abstasks.classification import AbsTaskClassification


def as_list(values: Any) -> Any:
    """A `datasets` Column read in one slice (a list of the same values); anything else as it is."""
    return values[:] if isinstance(values, Column) else values


class ListColumns:
    """A Dataset seen through list-valued columns, each read once: what mteb's per-row label loops index into.

    Everything else (``select``, ``len``, rows) is the dataset's own."""

    def __init__(self, dataset: Any) -> None:
        self._dataset, self._columns = dataset, {}

    def __len__(self) -> int:
        return len(self._dataset)

    def __getitem__(self, key: Any) -> Any:
        if not isinstance(key, str):
            return self._dataset[key]
        if key not in self._columns:
            self._columns[key] = as_list(self._dataset[key])
        return self._columns[key]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dataset, name)


def save_predictions(task: Any, predictions: Any, model: Any, prediction_folder: Path, hf_split: str,
                     hf_subset: str) -> None:  # fmt: skip
    """mteb's `AbsTask._save_task_predictions`, the same file, through the C JSON encoder."""
    path = task._predictions_path(prediction_folder)
    meta = model.mteb_model_meta
    record = {"mteb_model_meta": {"model_name": meta.name, "revision": meta.revision}}
    if path.exists():
        record = json.loads(path.read_text(encoding="utf-8"))
    record.setdefault(hf_subset, {})[hf_split] = predictions
    path.write_text(json.dumps(record), encoding="utf-8")


@contextlib.contextmanager
def faster_scoring(task: Any) -> Iterator[None]:
    """The task's slow Python steps replaced for the block: instance attributes over its class's methods, removed
    on the way out (an instance attribute of the same name that was there is put back). The predictions writer
    and the undersampling are replaced only where the class's method is mteb's own; ``_calculate_scores`` is
    wrapped wherever it exists, changing only a Column first argument into a list of its values."""
    overrides: dict[str, Callable[..., Any]] = {}
    if getattr(type(task), "_save_task_predictions", None) is AbsTask._save_task_predictions:  # mteb's own writer
        overrides["_save_task_predictions"] = lambda *args, **kwargs: save_predictions(task, *args, **kwargs)
    calculate = getattr(task, "_calculate_scores", None)
    if callable(calculate):
        overrides["_calculate_scores"] = lambda y_test, *args, **kwargs: calculate(as_list(y_test), *args, **kwargs)
    undersample = getattr(task, "_undersample_data", None)
    if getattr(type(task), "_undersample_data", None) is AbsTaskClassification._undersample_data:  # returns a select()
        overrides["_undersample_data"] = lambda dataset, *args, **kwargs: undersample(
            ListColumns(dataset), *args, **kwargs)  # fmt: skip
    before = {name: vars(task)[name] for name in overrides if name in vars(task)}  # put back on the way out
    for name, method in overrides.items():
        setattr(task, name, method)
    try:
        yield
    finally:
        for name in overrides:
            vars(task).pop(name, None)
        vars(task).update(before)
