"""Every ablation config the report ships (reports/supervised/ablations/) must load and point at data that exists,
so a reader who copies a command from the docs does not meet a stale key or a renamed folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from train.cli import resolve
from train.config import SupervisedConfig

REPO = Path(__file__).resolve().parents[2]
ABLATIONS = sorted((REPO / "reports" / "supervised" / "ablations").glob("*.toml"))


def test_ablation_folder_is_not_empty() -> None:
    assert len(ABLATIONS) >= 10


@pytest.mark.parametrize("path", ABLATIONS, ids=lambda p: p.stem)
def test_ablation_config_loads_and_its_data_exists(path: Path, shared_data: Path, monkeypatch) -> None:
    monkeypatch.chdir(REPO)  # the configs use repo-relative paths, as their README's commands do
    _, cfg = resolve(str(path.relative_to(REPO)), None, [f"data_root={shared_data}"])
    assert str(cfg.output_dir).startswith("runs/ablations/"), "ablation outputs stay under runs/ablations"
    if not isinstance(cfg, SupervisedConfig):  # weak-stage ablations read pairs the report script cuts under runs/
        return
    specs = cfg.task_specs()
    assert specs, f"{path.name} defines no task"
    for name, spec in specs.items():
        folders = [spec["parallel"]] if spec["kind"] == "clr" else spec["data"]
        for entry in folders:
            assert (shared_data / entry).exists(), f"{path.name}: tasks.{name} names missing {entry}"
