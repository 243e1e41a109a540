"""A config file that is not valid TOML: the error starts with <file>:<line>:<column>, as a DataError does."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main


@pytest.mark.parametrize(("text", "where", "reason"), [
    ('stage = "weak"\ndata = ["x"\nsteps = 3\n', "3:1", "Unclosed array"),
    ('stage = "weak"\n[model_overrides]\nmax_length = 32\n[model_overrides]\n', "4:17", "Cannot declare"),
])  # fmt: skip
def test_a_toml_syntax_error_is_named_file_line_column(tmp_path: Path, capsys, text: str, where: str,
                                                       reason: str) -> None:  # fmt: skip
    """Before: `c.toml: invalid TOML: Unclosed array (at line 3, column 1)`, a position no editor or terminal
    jumps to; the stage, pipeline and ablation configs are all read by this one reader."""
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"train: error: {path}:{where}: invalid TOML: {reason}") and "(at line" not in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(("in_file", "sets", "where"), [
    ("lr = -1.0\n", [], "FILE"),
    ("", ["--set", "lr=-1"], "--set"),
    ("lr = 1e-4\n", ["--set", "steps=-5"], "--set"),
    ("warmup_ratio = 0.1\n", ["--set", "min_lr_ratio=2"], "FILE / --set"),  # one message, two keys, two sources
])  # fmt: skip
def test_a_value_out_of_range_names_where_it_was_given(tmp_path: Path, capsys, in_file: str, sets: list[str],
                                                       where: str) -> None:  # fmt: skip
    """Before stop 49 (audit): `train: error: lr must be a finite number >= 0, got -1.0`, naming neither the file
    nor --set, where a key or type error names its source."""
    path = tmp_path / "c.toml"
    path.write_text('stage = "pretrain"\n' + in_file, encoding="utf-8")
    assert main(["train", str(path), *sets]) == 2
    source = where.replace("FILE", str(path))
    assert capsys.readouterr().err.startswith(f"train: error: {source}: ")
