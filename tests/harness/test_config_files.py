"""A TOML config handed to `harness pipeline`, `harness ablate` or `harness train` that cannot be read: one line
naming the file and what is wrong with it (exit 2), never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main


@pytest.mark.parametrize("command", ["pipeline", "ablate", "train"])
def test_a_config_that_is_not_utf8_is_named(tmp_path: Path, capsys, command: str) -> None:
    """Before: a UnicodeDecodeError traceback (audit)."""
    config = tmp_path / "latin1.toml"
    config.write_bytes('name = "café"\n'.encode("latin-1"))
    assert main([command, str(config)]) == 2
    err = capsys.readouterr().err
    assert f"{config}: not UTF-8 text (byte 11: invalid continuation byte)" in err and "Traceback" not in err


def test_train_names_a_stage_config_given_with_config_that_is_not_utf8(tmp_path: Path, capsys) -> None:
    config = tmp_path / "weak.toml"
    config.write_bytes('lr = 1e-3 # é\n'.encode("latin-1"))
    assert main(["train", "weak", "--config", str(config)]) == 2
    assert f"{config}: not UTF-8 text" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["pipeline", "ablate", "train"])
def test_a_config_path_that_is_a_directory_says_so(tmp_path: Path, capsys, command: str) -> None:
    """Before: `harness ablate dir.toml` said the directory does not exist."""
    folder = tmp_path / "dir.toml"
    folder.mkdir()
    assert main([command, str(folder)]) == 2
    assert f"config {folder} is a directory, not a TOML file" in capsys.readouterr().err
