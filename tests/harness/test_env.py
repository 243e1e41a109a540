"""harness/env.py: the one place that sets the offline environment and finds the data roots."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.data import default_data_root
from harness.env import data_root, go_offline, hub_offline, scratch_env, shared_data_root


def test_data_root_prefers_the_option_then_the_variable_then_the_sample(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("HARNESS_DATA", raising=False)
    assert data_root(None) == (default_data_root(), "the embedded sample")
    assert (default_data_root() / "en" / "STS16" / "task.json").is_file()
    monkeypatch.setenv("HARNESS_DATA", str(tmp_path / "env"))
    assert data_root(None) == (tmp_path / "env", "$HARNESS_DATA")
    assert data_root(str(tmp_path / "opt")) == (tmp_path / "opt", "--data-dir")


def test_shared_data_root_follows_the_variable(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HARNESS_SHARED_DATA", str(tmp_path))
    assert shared_data_root() == tmp_path
    monkeypatch.delenv("HARNESS_SHARED_DATA")
    assert shared_data_root().parts[-2:] == ("shared", "data")


@pytest.mark.parametrize("value", ["1", "true", "YES", "on", "0", "", "False", "FALSE", "no", "off", None])
@pytest.mark.parametrize("transformers", [None, "1", "0"])
def test_hub_offline_reads_the_variables_as_huggingface_hub_does(value: str | None, transformers: str | None,
                                                                  monkeypatch) -> None:  # fmt: skip
    """Before stop 49 (audit): "no", "off", "FALSE" read as offline, and TRANSFORMERS_OFFLINE=1 alone as online."""
    from huggingface_hub.constants import _is_true

    for name, setting in (("HF_HUB_OFFLINE", value), ("TRANSFORMERS_OFFLINE", transformers)):
        if setting is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, setting)
    expected = _is_true(os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE"))
    assert hub_offline() is expected


def test_scratch_env_goes_offline_and_keeps_chosen_places(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("MTEB_CACHE", str(tmp_path / "chosen"))
    monkeypatch.delenv("HF_HOME", raising=False)
    monkeypatch.delenv("HF_DATASETS_CACHE", raising=False)
    scratch_env(tmp_path)
    assert hub_offline()
    assert os.environ["MTEB_CACHE"] == str(tmp_path / "chosen")
    assert os.environ["HF_HOME"] == str(tmp_path / "hf")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    go_offline()
    assert os.environ["HF_HUB_OFFLINE"] == os.environ["TRANSFORMERS_OFFLINE"] == "1"


def test_go_offline_switches_libraries_imported_already(monkeypatch) -> None:
    """Before: go_offline set the variables only, which huggingface_hub and datasets read once at import: after the
    hub probe failed, later hub calls still retried for ~23 s each. hub_off is offline for a block, then as before."""
    import datasets.config
    import huggingface_hub.constants

    def flags() -> tuple[bool, bool]:
        return datasets.config.HF_HUB_OFFLINE, huggingface_hub.constants.HF_HUB_OFFLINE

    for module in (datasets.config, huggingface_hub.constants):
        monkeypatch.setattr(module, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    go_offline()
    assert flags() == (True, True)

    from harness.env import hub_off

    for module in (datasets.config, huggingface_hub.constants):
        monkeypatch.setattr(module, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with hub_off():
        assert flags() == (True, True)
    assert flags() == (False, False)
    assert "HF_HUB_OFFLINE" not in os.environ  # the user's setting, as it was
