"""What a model folder's own settings allow and do, read before a run trusts them: the tokens its position table
holds, the lengths its sentence-transformers modules cut texts at (and whether --max-length can move them), the
prompts it names for mteb, and whether its weights set every parameter.

Split from harness/backends.py (stop 64).
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from pathlib import Path
from typing import Any

from harness.errors import UsageError

# sentence-transformers' per-role text lengths on its Transformer module (`task` query / document)
ROLE_LENGTHS = {"query": "query_length", "document": "document_length"}
# the buckets of a sentence-transformers module's processing_kwargs that reach a text tokenizer's call, the first
# winning (Transformer._call_single_modality_processor)
PROCESSING_BUCKETS = ("common", "text")


def input_modules(model: Any) -> list[Any]:
    """The modules a SentenceTransformer's texts enter: its first, or the first of each route of a Router."""
    from sentence_transformers.base.modules import Router

    first = model[0]
    return [route[0] for route in first.sub_modules.values()] if isinstance(first, Router) else [first]


def _processing_setting(module: Any, key: str) -> tuple[str, Any] | None:
    """(bucket, value) of a key of a module's processing_kwargs as its tokenizer is called with it: `common` wins
    over `text` (sentence-transformers merges them so for a text tokenizer); None where neither sets it."""
    kwargs = getattr(module, "processing_kwargs", None) or {}
    return next(((b, kwargs[b][key]) for b in PROCESSING_BUCKETS if key in (kwargs.get(b) or {})), None)


def processing_length(module: Any) -> int | None:
    """The max_length a module's processing_kwargs cut texts at (over max_seq_length and the role lengths)."""
    found = _processing_setting(module, "max_length")
    return None if found is None or found[1] is None else int(found[1])


def truncation_off(module: Any) -> str | None:
    """The processing_kwargs setting that turns a module's truncation off ("processing_kwargs.text.truncation is
    False"), else None."""
    found = _processing_setting(module, "truncation")
    off = found is not None and found[1] in (False, "do_not_truncate")
    return f"processing_kwargs.{found[0]}.truncation is {found[1]!r}" if off else None


def module_positions(module: Any) -> int | None:
    """`usable_positions` of a sentence-transformers input module's transformers model; None without one."""
    return usable_positions(getattr(getattr(module, "auto_model", None), "config", None))


def length_settable(module: Any) -> bool:
    """Whether a module has a max_seq_length that can be set (StaticEmbedding's is a read-only infinity)."""
    attr = getattr(type(module), "max_seq_length", None)
    return hasattr(module, "max_seq_length") and not (isinstance(attr, property) and attr.fset is None)


def check_length_settable(spec: str, folder: Path, module: Any, requested: int) -> None:
    """Refuse --max-length for an input module that would not cut at it: one whose max_seq_length cannot be set
    (StaticEmbedding's, which only its tokenizer's own truncation cuts; before stop 54, audit, an AttributeError)
    or whose processing_kwargs turn truncation off (whole texts would run under the recorded cut)."""
    if not length_settable(module):
        raise UsageError(f"--max-length {requested}: model {spec} cannot cut texts at another length (its "
                         f"{type(module).__name__} module's max_seq_length cannot be set); run it without "
                         "--max-length")  # fmt: skip
    if off := truncation_off(module):
        raise UsageError(f"--max-length {requested}: model {spec} does not truncate texts ({off} in a "
                         f"sentence_bert_config.json of {folder}); run it without --max-length")  # fmt: skip


def cap_folder_lengths(module: Any, limit: int | None) -> None:
    """A module's own lengths, which sentence-transformers applies over max_seq_length (`query_length` /
    `document_length`; its processing_kwargs' max_length, which wins over those too), capped at ``limit``
    (--max-length, else the positions): else the option was recorded but not applied (role lengths before stop 47;
    processing_kwargs before stop 54, audit)."""
    if limit is None:
        return
    for key in ROLE_LENGTHS.values():
        if getattr(module, key, None) is not None:
            setattr(module, key, min(getattr(module, key), limit))
    kwargs = getattr(module, "processing_kwargs", None) or {}
    for bucket in PROCESSING_BUCKETS:
        if (kwargs.get(bucket) or {}).get("max_length") is not None:
            kwargs[bucket]["max_length"] = min(int(kwargs[bucket]["max_length"]), limit)


def module_cut(module: Any) -> int | None:
    """The tokens an input module cuts a text at: its processing_kwargs' max_length, else its max_seq_length, else
    (StaticEmbedding's is infinite) its `tokenizers.Tokenizer`'s own truncation; None where it cuts nowhere."""
    if truncation_off(module):
        return None
    cut = processing_length(module) or getattr(module, "max_seq_length", None)
    if cut == math.inf:
        cut = (getattr(getattr(module, "tokenizer", None), "truncation", None) or {}).get("max_length")
    return cut


def cut_length(modules: list[Any]) -> int | None:
    """The most tokens the input modules cut a text at, as run.json records it; None where one cuts nowhere.
    Before stop 54 (audit) max_seq_length was recorded, not the processing_kwargs' cut."""
    cuts = [module_cut(module) for module in modules]
    return None if None in cuts else int(max(cuts))


def transformers_tokenizer(tokenizer: Any) -> bool:
    """Whether `BackendTokenizer` can stand beside the tokenizer: a transformers one (callable, with a length)."""
    from transformers.tokenization_utils_base import PreTrainedTokenizerBase

    return isinstance(tokenizer, PreTrainedTokenizerBase)


def preprocess_counts(features: dict[str, Any]) -> list[int]:
    """Tokens per text in a module's own features: its attention mask's, else the spans of an EmbeddingBag's flat
    ids between its offsets (StaticEmbedding's)."""
    if "attention_mask" in features:
        return [int(n) for n in features["attention_mask"].sum(1)]
    starts = features["offsets"].tolist()
    return [end - start for start, end in zip(starts, [*starts[1:], len(features["input_ids"])], strict=True)]


def plain_text_transformer(model: Any) -> bool:
    """Whether a SentenceTransformer's input is sentence-transformers' own `Transformer` module with none of what
    makes its `preprocess` more than the tokenizer's padded call: processing kwargs (pad_to_multiple_of, lengths),
    per-task lengths, query expansion, chat messages, flattened (unpadded) inputs. Only then may the backend's
    batches, once probed, stand in for it."""
    from sentence_transformers.base.modules.transformer import Transformer

    first = model[0]
    return (type(first) is Transformer and first.processor is first.tokenizer and not first.processing_kwargs
            and first.query_expansion is None and first.query_length is None and first.document_length is None
            and not first.can_flatten_inputs and set(first.modality_config) == {"text"})  # fmt: skip


def mteb_task_prompts(prompts: dict[str, str]) -> dict[str, str]:
    """The prompts of an st: folder that plain mteb applies by task (`task_prompts`): the keys its sentence-transformers
    wrapper keeps (mteb's own check, which drops what names no task, task type or role, quietly here) less the role
    names, which the model's `prompt` applies as encode_query / encode_document do."""
    from mteb.models.abs_encoder import AbsEncoder

    mteb_log = logging.getLogger("mteb")
    level = mteb_log.level
    mteb_log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            valid, _ = AbsEncoder.validate_task_to_prompt_name(prompts, raise_for_invalid_keys=False)
    finally:
        mteb_log.setLevel(level)
    return {key: text for key, text in (valid or {}).items() if key not in ("query", "document")}


def check_weights_loaded(spec: str, folder: Path, model_class: str, loading: dict[str, Any]) -> None:
    """Refuse a folder whose weights leave parameters of the model unset: transformers starts them at random and
    only logs it (in `harness run`, to warnings.log), so the vectors would be random and differ from load to load
    under one fingerprint, cached and scored as the model's (a checkpoint saved from a wrapper, `wrapper.encoder.…`;
    before stop 46, audit). The pooler, which mean / cls / last pooling never reads, may be missing."""
    missing = sorted(k for k in loading.get("missing_keys", ()) if not k.startswith("pooler."))
    mismatched = sorted(str(k[0] if isinstance(k, tuple) else k) for k in loading.get("mismatched_keys", ()))
    if not missing and not mismatched:
        return
    unset = missing + mismatched
    unexpected = sorted(loading.get("unexpected_keys", ()))
    names = f"; the files hold other names, e.g. {', '.join(unexpected[:2])}" if unexpected else ""
    raise UsageError(f"--model {spec}: the weights in {folder} leave {len(unset)} parameter(s) of {model_class} "
                     f"unset, e.g. {', '.join(unset[:3])}{names}: they would be random, not the model")


def check_st_modules(spec: str, folder: Path, trusted: bool) -> None:
    """Refuse, without the flag (``trusted``), an st: folder whose modules.json names a module class outside
    sentence-transformers: importing it runs the folder's own code. sentence-transformers refuses it too, but in its
    own terms, "pass the argument `trust_remote_code=True`", which before stop 69 (a walk) the harness printed on two
    lines followed by "offline, a hub name must be in the HF cache", a hint about hub names, not folders. A folder
    without a readable modules.json is left to the load, which says what is wrong."""
    try:
        entries = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    kinds = [e.get("type") for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []
    own = next((k for k in kinds if isinstance(k, str) and not k.startswith("sentence_transformers.")), None)
    if own is not None and not trusted:
        raise UsageError(f"--model {spec}: {folder / 'modules.json'} names module class {own!r}, which is not part of "
                         "sentence-transformers: importing it runs the folder's own code, which the harness does only "
                         "with --trust-remote-code (give it for a folder you trust)")  # fmt: skip


def check_st_weights(spec: str, model: Any, folder: Path) -> None:
    """`check_weights_loaded` for an st: folder: sentence-transformers loads each module's transformer weights
    without reporting what they leave unset, so each module with an `auto_model` is loaded again on the meta device
    (no weights read into memory) by the class it was built with, asking transformers for the loading report
    (before stop 47 such a folder loaded with random parameters, said only in warnings.log). Modules pair with
    modules.json's entries in order, as sentence-transformers loads them; one inside a Router, one whose folder
    holds an adapter (`adapter_config.json`, left to peft) and one its class cannot reload on the meta device are
    not checked."""
    try:
        entries = json.loads((folder / "modules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return  # a folder without modules.json: sentence-transformers built one Transformer from the folder
    if not isinstance(entries, list) or len(entries) != len(model):
        return
    for entry, module in zip(entries, model, strict=True):
        if not (isinstance(entry, dict) and hasattr(module, "auto_model")):
            continue
        path = folder / str(entry.get("path", ""))
        if (path / "adapter_config.json").is_file():
            continue
        try:
            _, loading = type(module.auto_model).from_pretrained(str(path), output_loading_info=True,
                                                                 device_map="meta")  # fmt: skip
        except Exception:  # noqa: BLE001 - a check, not the load: what cannot be reloaded so is not checked
            continue
        check_weights_loaded(spec, path, type(module.auto_model).__name__, loading)


# Encoders whose learned absolute positions are numbered from pad_token_id + 1 (transformers'
# create_position_ids_from_input_ids): XLM-R's 514 position embeddings hold 512 tokens, not 514.
PADDING_OFFSET_POSITIONS = ("roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "data2vec-text", "ibert",
                            "longformer", "roberta-prelayernorm", "xmod", "mpnet")  # fmt: skip


def usable_positions(config: Any) -> int | None:
    """Tokens a text may have in a transformers model with this config: max_position_embeddings, less the
    padding offset where positions start after pad_token_id; None when the config names no position table."""
    positions = getattr(config, "max_position_embeddings", None)
    if not positions:
        return None
    pad = getattr(config, "pad_token_id", None)
    if getattr(config, "model_type", None) in PADDING_OFFSET_POSITIONS and pad is not None:
        return int(positions) - (int(pad) + 1)
    return int(positions)


def check_max_length(spec: str, requested: int | None, positions: int | None) -> None:
    """--max-length beyond the tokens the model's position table holds would index past it (or silently
    truncate)."""
    if requested is not None and positions and requested > positions:
        raise UsageError(f"--max-length {requested}: model {spec} has {positions} positions at most")
