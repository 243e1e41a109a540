"""Save and load a checkpoint folder in the Hugging Face layout:

    <dir>/config.json          ConanConfig.to_dict()
    <dir>/model.safetensors    the state dict (safetensors: no pickle, memory-mappable)
    <dir>/tokenizer.json       the byte-level BPE (or an imported model's own tokenizer)

Each file is written to a temporary name in the same folder, flushed to the disk and moved into place with
os.replace (conan_model.atomic), so neither a crash nor a power loss leaves a half-written file under a final
name. Loading checks that every file is there, that the config parses, and that every tensor name and shape
matches the config before any weight is assigned.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer

from .atomic import atomic_write, atomic_write_text
from .config import ConanConfig
from .modeling import Backbone, model_for
from .tokenizer import load_tokenizer, save_tokenizer

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
TOKENIZER_NAME = "tokenizer.json"
CHECKPOINT_FILES = (CONFIG_NAME, WEIGHTS_NAME, TOKENIZER_NAME)


def save_pretrained(model: Backbone, tokenizer: Tokenizer, path: str | os.PathLike) -> Path:
    """Write config.json, model.safetensors and tokenizer.json into folder ``path`` (created if needed)."""
    path = Path(path)
    config = model.config
    if tokenizer.get_vocab_size() > config.vocab_size:
        raise ValueError(
            f"tokenizer has {tokenizer.get_vocab_size()} tokens but vocab_size is {config.vocab_size}"
        )
    if any(t.is_meta for t in model.state_dict().values()):
        raise ValueError("cannot save a model on the meta device: materialise its weights first")
    state = {name: t.detach().to("cpu").contiguous() for name, t in model.state_dict().items()}
    path.mkdir(parents=True, exist_ok=True)
    text = json.dumps(config.to_dict(), indent=2, ensure_ascii=False) + "\n"
    atomic_write_text(path / CONFIG_NAME, text)
    atomic_write(path / WEIGHTS_NAME, lambda p: save_file(state, str(p), metadata={"format": "pt"}))
    save_tokenizer(tokenizer, path / TOKENIZER_NAME)
    return path


def load_config(path: str | os.PathLike) -> ConanConfig:
    """ConanConfig from a checkpoint folder or a config.json file. Another kind of model (a GGUF file, a transformers
    folder) is named with the spec that loads it (:func:`other_kind`), and a damaged prepared base with the command
    that mends it: before, "'utf-8' codec can't decode byte", "unknown config keys [...]", "Expecting value"."""
    path = Path(path)
    if not path.exists():  # before a user walk: "no config file at <path>", as for a folder without one
        # a .json path names the file (before stop 63 it too was called a missing "checkpoint folder")
        what = "config file" if path.suffix == ".json" else "checkpoint folder"
        raise FileNotFoundError(f"{what} {path} does not exist")
    if path.is_file() and path.suffix != ".json":  # a GGUF or weights file: never read as JSON
        raise ValueError(other_kind(path, "conan"))
    if path.is_dir():
        path = path / CONFIG_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no config file at {path}")
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):  # a list or a number was an AttributeError traceback
            raise ValueError(f"expected a JSON object, not {type(raw).__name__}")
        if (kind := other_kind(path.parent, "conan")) is None:
            return ConanConfig.from_dict(raw)
    except (ValueError, TypeError) as e:
        raise ValueError(f"{path}: invalid ConanConfig: {e}{_mend(path)}") from e
    raise ValueError(kind)


def _mend(path: Path) -> str:
    """'; <the command that mends it>' for a file of a prepared base (pretrained.repair_hint), else ''."""
    from .pretrained import repair_hint  # here: pretrained imports this module

    hint = repair_hint(path, "")
    return f"; {hint}" if hint else ""


def model_type_of(folder: Path) -> str | None:
    """The model_type a folder's config.json names (as transformers reads it: "conan" for ours), or None when there
    is none to read (no file, not a JSON object, no string model_type)."""
    try:
        raw = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    kind = raw.get("model_type") if isinstance(raw, dict) else None
    return kind if isinstance(kind, str) else None


def other_kind(path: Path, given: str, flag: str = "") -> str | None:
    """What ``path``, given as a ``given`` model ('conan', 'hf' or 'st'), is instead, with the spec that loads it
    (``flag`` before it: "--model "), or None when nothing says it is another kind. One sentence for every loader: the
    conan one (`models import`, a stage's ``init``, `run --model conan:`), the hf: import and `run --model hf:|st:`;
    before, each said its parser's error ("unknown config keys [...]", "'utf-8' codec can't decode byte 0xc3",
    "model_type 'conan' is not supported")."""
    path = Path(path)
    if path.is_file():
        with path.open("rb") as handle:
            if path.suffix.lower() == ".gguf" or handle.read(4) == b"GGUF":
                return f"{path} is a GGUF file: use {flag}gguf:{path}"
        return f"{path} is a file; {given}: takes the model's folder ({path.parent}), not a file in it"
    kind = model_type_of(path)
    if given == "conan" and kind not in (None, "conan"):
        return f"{path} is a transformers {kind!r} folder (config.json model_type {kind!r}): use {flag}hf:{path}"
    if given != "conan" and kind == "conan":
        return f"{path} is a conan checkpoint (config.json model_type 'conan'): use {flag}conan:{path}"
    return None


def load_pretrained(
    path: str | os.PathLike, device: torch.device | str | None = None, dtype: torch.dtype | None = None
) -> tuple[Backbone, Tokenizer]:
    """(model in eval mode, tokenizer) from a folder written by :func:`save_pretrained`.

    ``device`` defaults to CPU; ``dtype`` defaults to the stored dtype.
    """
    path = Path(path)
    if path.is_file():
        raise ValueError(other_kind(path, "conan"))
    if not path.is_dir():
        raise FileNotFoundError(f"checkpoint folder {path} does not exist")
    missing = [name for name in CHECKPOINT_FILES if not (path / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{path} is not a conan_model checkpoint: missing {', '.join(missing)}")
    config = load_config(path)
    tokenizer = load_checkpoint_tokenizer(path)
    with readable_weights(path / WEIGHTS_NAME):
        state = load_file(str(path / WEIGHTS_NAME), device="cpu")
    with torch.device("meta"):
        model = model_for(config)
    _check_state(path, state, {name: tuple(t.shape) for name, t in model.state_dict().items()})
    if dtype is not None:
        state = {name: t.to(dtype) for name, t in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    return model.to(device or "cpu").eval(), tokenizer


@contextlib.contextmanager
def readable_weights(path: Path) -> Iterator[None]:
    """Around opening a safetensors file: a damaged one (cut short, a bad header, not safetensors at all) is a
    ValueError naming it, which every CLI reports in one line; a bare SafetensorError was a traceback."""
    try:
        yield
    except SafetensorError as e:
        from .pretrained import repair_hint  # here: pretrained imports this module

        raise ValueError(f"{path}: damaged safetensors file ({e}); {repair_hint(path)}") from None


def safetensors_damage(path: Path) -> str | None:
    """Why a .safetensors file cannot be loaded (truncated, bad header, unreadable), or None: reads only its
    header. A file that cannot be opened (a dangling link, no permission) is a reason too: before stop 63 its
    OSError was a traceback in `harness run --model`'s folder check."""
    try:
        size = path.stat().st_size
        handle = path.open("rb")
    except OSError as exc:
        return f"cannot be read: {exc.strerror or exc}"
    with handle:
        head = handle.read(8)
        if len(head) < 8:
            return f"{size} bytes, shorter than the 8-byte header length"
        length = int.from_bytes(head, "little")
        if length > size - 8:
            return f"header of {length} bytes does not fit in the file's {size} bytes"
        try:
            header = json.loads(handle.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return "header is not valid JSON"
    if not isinstance(header, dict):  # before stop 63 an AttributeError traceback in `harness models list`
        return "header is not a JSON object"
    ends = []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(type(o) is int and o >= 0 for o in offsets)
                and offsets[0] <= offsets[1]):  # fmt: skip
            return f"header entry {name!r} has no data_offsets [begin, end]"
        ends.append(offsets[1])
    needed = 8 + length + max(ends, default=0)
    if needed > size:
        return f"truncated: {size} bytes, the header needs {needed}"
    return None


def load_checkpoint_tokenizer(path: str | os.PathLike) -> Tokenizer:
    """A checkpoint folder's tokenizer, checked against its config (special ids exist, vocabulary fits)."""
    path = Path(path)
    if path.is_file():  # conan:<folder>/config.json: before, "no tokenizer file at <it>/tokenizer.json"
        raise ValueError(other_kind(path, "conan"))
    config = load_config(path)
    try:
        tokenizer = load_tokenizer(path / TOKENIZER_NAME, config.special_ids())
    except ValueError as e:
        raise ValueError(f"{e}{_mend(path / TOKENIZER_NAME)}") from None
    if tokenizer.get_vocab_size() > config.vocab_size:
        raise ValueError(
            f"{path}: tokenizer has {tokenizer.get_vocab_size()} tokens, vocab_size is {config.vocab_size}"
        )
    return tokenizer


def _check_state(path: Path, state: dict[str, torch.Tensor], expected: dict[str, tuple[int, ...]]) -> None:
    """Raise one ValueError naming every missing, unexpected or mis-shaped tensor."""
    problems = [f"missing {name}" for name in sorted(expected.keys() - state.keys())]
    problems += [f"unexpected {name}" for name in sorted(state.keys() - expected.keys())]
    problems += [
        f"{name}: shape {tuple(state[name].shape)} != {shape} from config.json"
        for name, shape in expected.items()
        if name in state and tuple(state[name].shape) != shape
    ]
    if problems:
        shown = "; ".join(problems[:8]) + (f"; ... ({len(problems)} problems)" if len(problems) > 8 else "")
        raise ValueError(f"{path / WEIGHTS_NAME} does not match {path / CONFIG_NAME}: {shown}")
