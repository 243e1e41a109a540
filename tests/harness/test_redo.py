"""summary.md labels every kept task whose settings (any identity key, or its data root) differ from the run's
(audit A, item 6). On the embedded sample's rows: each run takes seconds.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from harness.cli import main
from harness.data import default_data_root
from harness.summary import other_settings

SAMPLE = default_data_root()

def _args(out: Path, name: str, data: Path, *args: str) -> list[str]:
    return ["run", "--model", "minilm", "--data-dir", str(data), "--out", str(out), "--run-name", name,
            "--no-progress", "--no-cache", *args]  # fmt: skip


def _run(out: Path, name: str, *args: str, data: Path = SAMPLE) -> tuple[int, dict]:
    code = main(_args(out, name, data, *args))
    return code, json.loads((out / name / "run.json").read_text())


def _copy(tasks: tuple[str, ...], root: Path) -> Path:
    for task in tasks:
        shutil.copytree(SAMPLE / "en" / task, root / "en" / task)
    return root


def test_summary_flags_a_task_kept_from_another_data_root(tmp_path: Path) -> None:
    """Before: STS16 from one data root sat in the mean of a run whose header names another, without a note."""
    first, second = _copy(("STS16",), tmp_path / "a"), _copy(("STS12",), tmp_path / "b")
    _run(tmp_path, "r", "--tasks", "STS16", data=first)
    _, record = _run(tmp_path, "r", "--tasks", "STS12", data=second)
    assert record["data_root"] == str(second.resolve())
    summary = (tmp_path / "r" / "summary.md").read_text()
    assert f"- STS16: data root {first.resolve()}" in summary and "- STS12" not in summary


def test_summary_compares_every_identity_key() -> None:
    """Each key of the task's identity against the run's, by name: pooling, kernels, mteb, a key added later."""
    run = {"model_fingerprint": "f", "dtype": "float32", "max_length": 256, "pooling": "mean", "dims": [],
           "mteb": "2.1", "prompts": {"query": "q: "}}  # fmt: skip
    tasks = {
        "Same": {**run, "source": "official", "data": "x@1"},
        "Cls": {**run, "pooling": "cls", "source": "official", "data": "y@1"},
        "Fused": {**run, "kernels": "onednn-fused-linear", "mteb": "2.0", "source": "official", "data": "z@1"},
        "Prompt": {**run, "prompts": {"query": ""}, "source": "official", "data": "z@1"},
    }
    record = {"identity": {**run, "new_key": 1}, "data_root": "/d",
              "tasks": {n: {"status": "ok", "source": "official", "identity": i} for n, i in tasks.items()}}
    found = other_settings(record)
    assert found["Cls"] == "pooling cls, new_key none"
    assert found["Fused"] == "mteb 2.0, kernels onednn-fused-linear, new_key none"
    assert found["Prompt"] == 'prompts {"query": ""}, new_key none'
    del record["identity"]["new_key"]
    assert set(other_settings(record)) == {"Cls", "Fused", "Prompt"}
