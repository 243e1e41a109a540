"""`harness models`: a path that is not what its spec or variable needs is named with what it is (a user walk:
a missing folder read "not a transformers model folder", a folder "GGUF file does not exist", an empty spec or
--out the working directory)."""

from __future__ import annotations

import pytest

from harness.cli import main


@pytest.mark.parametrize("under", [False, True])
def test_a_models_dir_that_is_a_file_names_the_variable(under: bool, tmp_path, monkeypatch, capsys):
    """Before: `harness models list` listed it as the models folder, and a fetch said "<it>/gguf: Not a directory"."""
    file = tmp_path / "afile"
    file.write_text("mine", encoding="utf-8")
    value = file / "models" if under else file
    monkeypatch.setenv("HARNESS_MODELS_DIR", str(value))
    assert main(["models", "list"]) == 2
    assert capsys.readouterr().err == (f"harness models: error: HARNESS_MODELS_DIR={value}: {file} is a file, not a "
                                       "folder; set it to a folder (a missing one is made)\n")  # fmt: skip


@pytest.mark.parametrize(("spec", "message"), [
    ("hf:nope", "nope: does not exist (hf: takes a transformers model folder)"),
    ("gguf:folder", "folder: is a folder; gguf: takes the .gguf file itself"),
    ("hf:m.gguf", "m.gguf: is a GGUF file; import it as gguf:m.gguf"),
    ("conan:nope", "checkpoint folder nope does not exist"),
    ("conan:", "'conan:' names no folder (conan:<folder>)"),
    ("hf:", "'hf:' names no folder (hf:<folder>)"),
    ("gguf:", "'gguf:' names no file (gguf:<file>)"),
])  # fmt: skip
def test_an_import_path_is_named_for_what_it_is(spec: str, message: str, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    assert main(["models", "import", spec, "--out", "out"]) == 2
    assert capsys.readouterr().err == f"harness models: error: {message}\n"
    assert not (tmp_path / "out").exists()


def test_an_empty_out_is_refused(tmp_path, monkeypatch, capsys):
    """Before: Path('') is the working directory, and the import was checked (and would be written) there."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(["models", "import", "smollm2-135m", "--out", ""])
    assert stop.value.code == 2
    assert "harness models import: error: argument --out: empty: give the conan_model folder to write" in (
        capsys.readouterr().err)
