"""One error base for every package (conan_model.errors): each CLI prints it as one line with its exit status."""

from __future__ import annotations

from pathlib import Path

import pytest

from conan_model.errors import EXIT_USAGE, ConanError
from conan_model.importing import ModelImportError, load_model
from harness.errors import DataError as HarnessDataError
from harness.errors import UsageError
from train.errors import ConfigError
from train.errors import DataError as TrainDataError


@pytest.mark.parametrize("kind", [HarnessDataError, TrainDataError])
def test_data_errors_of_both_sides_share_the_file_line_message(kind: type[ConanError]) -> None:
    assert str(kind("rows.jsonl", 7, "no text")) == "rows.jsonl:7: no text"
    assert str(kind("rows.jsonl", 0, "empty")) == "rows.jsonl: empty"
    assert kind("rows.jsonl", 7, "x").path == Path("rows.jsonl")


def test_every_package_raises_the_one_base_with_its_status(tmp_path: Path) -> None:
    for exc in (UsageError("x"), ConfigError("x"), HarnessDataError("f", 1, "x"), TrainDataError("f", 1, "x")):
        assert isinstance(exc, ConanError) and exc.exit_code == EXIT_USAGE == 2
    with pytest.raises(ModelImportError) as caught:  # a real refusal of conan_model's importer
        load_model(f"hf:{tmp_path}")
    assert isinstance(caught.value, ConanError) and isinstance(caught.value, ValueError)


def test_the_harness_cli_prints_a_train_error_as_one_line(tmp_path: Path, capsys) -> None:
    from harness.cli import main

    config = tmp_path / "bad.toml"
    config.write_text('stage = "pretrain"\nno_such_key = 1\n')
    assert main(["train", str(config)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "no_such_key" in err and "Traceback" not in err


@pytest.mark.parametrize("command", [["list", "tasks"], ["models", "list"]])
def test_a_closed_pipe_ends_the_cli_quietly(command: list[str]) -> None:
    """`harness list tasks | head -1`: the reader left before the output ended; before, a BrokenPipeError
    traceback followed (`harness models list` said "error: [Errno 32] Broken pipe", exit 2, until a user walk).
    Here the read end is closed before anything is written, so the first write fails."""
    import os
    import subprocess
    import sys

    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run([sys.executable, "-m", "harness", *command], stdout=write,
                              stderr=subprocess.PIPE, text=True, timeout=300)  # fmt: skip
    finally:
        os.close(write)
    assert proc.returncode == 141 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
