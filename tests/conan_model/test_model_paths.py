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
    ("hf:m.gguf", "m.gguf is a GGUF file: use gguf:m.gguf"),
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


@pytest.mark.parametrize(("spec", "message"), [
    ("hf/qwen2", "hf/qwen2 is a transformers 'qwen2' folder (config.json model_type 'qwen2'): use hf:hf/qwen2"),
    ("conan:hf/qwen2", "hf/qwen2 is a transformers 'qwen2' folder (config.json model_type 'qwen2'): use hf:hf/qwen2"),
    ("m.gguf", "m.gguf is a GGUF file: use gguf:m.gguf"),
    ("conan:m.gguf", "m.gguf is a GGUF file: use gguf:m.gguf"),
    ("conan:imp/config.json", "imp/config.json is a file; conan: takes the model's folder (imp), not a file in it"),
    ("hf:imp", "imp is a conan checkpoint (config.json model_type 'conan'): use conan:imp"),
    ("hf:imp/", "imp is a conan checkpoint (config.json model_type 'conan'): use conan:imp"),
])  # fmt: skip
def test_a_spec_of_the_wrong_kind_names_the_spec_that_loads_it(spec, message, qwen2_folder, tokenizer, tmp_path,
                                                               monkeypatch, capsys):  # fmt: skip
    """A user's walk: the conan loader (a bare path, conan:) read a transformers folder as a ConanConfig ("unknown
    config keys [... 17 keys]"), a GGUF as JSON ("'utf-8' codec can't decode byte 0xc3"), and conan:<dir>/config.json
    looked for "<it>/tokenizer.json"; hf: of a conan folder said "model_type 'conan' is not supported". Now each names
    the spec that loads it, as `harness run --model hf:<conan folder>` did."""
    from pretrained_helpers import make_gguf

    monkeypatch.chdir(tmp_path)
    (tmp_path / "hf").mkdir()
    qwen2_folder[0].rename(tmp_path / "hf" / "qwen2")
    make_gguf(tmp_path / "m.gguf", tokenizer)
    assert main(["models", "import", "hf:hf/qwen2", "--out", "imp"]) == 0
    capsys.readouterr()
    assert main(["models", "import", spec, "--out", "out"]) == 2
    assert capsys.readouterr().err == f"harness models: error: {message}\n"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("spec", "message"), [
    ("conan:hf/qwen2", "hf/qwen2 is a transformers 'qwen2' folder (config.json model_type 'qwen2'): use --model "
                       "hf:hf/qwen2"),
    ("hf:imp", "imp is a conan checkpoint (config.json model_type 'conan'): use --model conan:imp"),
])  # fmt: skip
def test_run_names_the_spec_that_loads_a_folder_of_another_kind(spec, message, qwen2_folder, tmp_path, monkeypatch,
                                                                capsys):  # fmt: skip
    """`harness run --model conan:<transformers folder>` said "invalid ConanConfig: unknown config keys [...]"; the
    message is the import's, with the option."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hf").mkdir()
    qwen2_folder[0].rename(tmp_path / "hf" / "qwen2")
    assert main(["models", "import", "hf:hf/qwen2", "--out", "imp"]) == 0
    capsys.readouterr()
    assert main(["run", "--model", spec, "--tasks", "STS16", "--out", "runs"]) == 2
    assert f"harness: error: --model {spec}: {message}\n" in capsys.readouterr().err


def test_an_hf_config_without_model_type_says_it_has_none(qwen2_folder, tmp_path, capsys):
    """Before: "model_type None is not supported"."""
    import json

    folder, _ = qwen2_folder
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    del config["model_type"]
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    assert main(["models", "import", f"hf:{folder}", "--out", str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err == (f"harness models: error: {folder / 'config.json'}: has no model_type "
                                       "(supported: llama, mistral, qwen2)\n")  # fmt: skip
