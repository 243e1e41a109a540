"""Stage configs: one dataclass per stage, read from TOML (tomllib) and overridden with ``--set key=value``.

A TOML file names its stage (``stage = "weak"``) and sets any field of that stage's dataclass; unknown keys and
wrong types are errors that name the key. ``--set`` values are parsed as TOML values (``lr=3e-4``,
``data=["a","b"]``, ``tokenizer=none``), falling back to a bare string (``output_dir=runs/x``); a dotted key sets
one entry of a table (``model_overrides.max_length=64``). Relative paths are relative to the working directory.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from conan_model import PRESETS, SCHEDULES
from conan_model.atomic import not_a_folder
from conan_model.config import ATTENTION_BACKENDS
from conan_model.errors import did_you_mean
from conan_model.fingerprint import files_fingerprint
from conan_model.pooling import POOLINGS
from conan_model.tokenizer import MIN_VOCAB, load_tokenizer

from .errors import ConfigError, DataError

# Keys that may change when resuming: they do not change which batches are seen or what the model computes.
RESUME_SAFE = frozenset({
    "output_dir", "log_every", "save_every", "keep_last", "eval_every", "device", "threads", "parallel",
    "gradient_checkpointing", "peak_tflops", "micro_batch_size", "compile", "attention_backend",
})  # fmt: skip

MASK_SCHEDULES = (*SCHEDULES, "causal", "bidirectional")
MODEL_DEFAULT = "tiny"
SEED_LIMIT = 2**63  # a seed is kept as a signed 64-bit integer (checkpoints, JSON readers in other languages)
DECIDED_WHY = {
    "arch": "a fresh model is a decoder; start from an encoder with `init`",
    "attention": "each stage trains under its own mask: the weak stage's `mask_schedule`",
    "attention_alpha": "each stage trains under its own mask: the weak stage's `mask_schedule`",
    "pooling": "pretrain exports a causal model pooling its last token; MNTP has its own `pooling` key",
}
# what torch.device accepts for the back-ends this project runs on: a type, optionally with an index
DEVICE_PATTERN = re.compile(r"(cpu|cuda|npu|mps|xpu)(:\d+)?")


@dataclass
class StageConfig:
    """Options every stage shares. ``batch_size`` is global: all ranks and all accumulation steps together."""

    stage: ClassVar[str] = ""
    resume_safe: ClassVar[frozenset[str]] = RESUME_SAFE  # stages add their own keys
    # ConanConfig fields the stage itself sets on its model, refused in model_overrides (since stop 54, audit: they
    # were recorded and overwritten): the mask each stage trains under, and the architecture (a fresh model is a
    # decoder; an encoder comes as an `init`)
    decided_fields: ClassVar[frozenset[str]] = frozenset({"arch", "attention", "attention_alpha"})
    per_task_batches: ClassVar[bool] = False  # batches sized per task (supervised): no global batch_size
    length_key: ClassVar[str] = ""  # the stage's key of tokens per sequence, checked against the model's positions
    # what train_config.json records beside the keys (train/loop.py `recorded_config`): how the run was launched,
    # which the config does not hold, so `harness ablate` compares it with nothing (records before stop 61 lack it)
    launch_keys: ClassVar[frozenset[str]] = frozenset({"world_size", "world_sizes"})
    # where `load_config` read ``device`` (the TOML file, or the overrides' name), set on the instance: a device this
    # machine lacks is refused once the config is built (train/loop.py `exclusive`), and names it as a bad value does
    device_source: ClassVar[str] = ""
    output_dir: str = "runs/train"
    data: list[str] = field(default_factory=list)  # JSONL files, or folders holding train.jsonl
    data_root: str = ""  # prefix joined to each entry of ``data``
    model: str = MODEL_DEFAULT  # ConanConfig preset of a fresh model (with init only the default: init fixes it)
    model_overrides: dict[str, Any] = field(default_factory=dict)  # e.g. {max_length = 128}
    # what to start from: a conan_model folder (a previous stage's final/), conan:<dir>, hf:<dir>, gguf:<file>
    # or a prepared base name such as "smollm2-135m" (see docs/pretrained.md)
    init: str | None = None
    init_layers: int | None = None  # keep only the first N decoder layers of ``init`` (smaller CPU-scale runs)
    freeze: list[str] = field(default_factory=list)  # parameter-name prefixes never trained, e.g. ["embed_tokens"]
    tokenizer: str | None = None  # tokenizer.json (or folder); None: train a BBPE on ``data`` at stage start
    tokenizer_vocab: int = 4096
    tokenizer_rows: int | None = 20_000  # rows per file used to train the tokenizer
    steps: int = 1000
    batch_size: int = 32
    micro_batch_size: int | None = None  # per rank; None = batch_size / world (no gradient accumulation)
    lr: float = 1e-4  # paper App. B.2
    warmup_ratio: float = 0.05  # paper App. B.2
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio (the paper gives no schedule shape)
    weight_decay: float = 0.001  # paper App. B.2
    beta1: float = 0.9
    beta2: float = 0.95
    eps: float = 1e-8
    grad_clip: float = 1.0  # 0 disables clipping (the norm is still logged)
    seed: int = 0
    device: str | None = None  # None or 'auto': pick_device (cuda > npu > mps > cpu); torchrun adds LOCAL_RANK
    parallel: str = "ddp"  # 'ddp' or 'fsdp' (FSDP2 fully_shard per block); only used with several processes
    threads: int | None = None  # torch.set_num_threads
    gradient_checkpointing: bool = False
    compile: bool = False  # torch.compile each decoder block (train/distributed.py wrap); the loss head stays eager
    attention_backend: str = "auto"  # soft mask via 'flex' (FlexAttention) or 'sdpa' (float bias); auto: masks.py
    log_every: int = 10
    save_every: int = 500  # a checkpoint is also written after the last step
    keep_last: int = 3  # checkpoints kept in output_dir/checkpoints; 0 keeps all
    eval_every: int = 0  # stage-specific evaluation; 0: only before the first and after the last step
    peak_tflops: float | None = None  # per device, for MFU; None: known table by device name (none on CPU)

    def __post_init__(self) -> None:
        self._check_output_dir()
        positive = {"steps": self.steps, "batch_size": self.batch_size, "log_every": self.log_every,
                    "save_every": self.save_every}  # fmt: skip
        for key, value in positive.items():
            if value < 1:
                raise ConfigError(f"{key} must be at least 1, got {value}")
        self._check_tokenizer()
        if not 0 <= self.seed < SEED_LIMIT:  # torch takes -1 as 2**64-1 (two seeds, one run) and refuses 2**64
            raise ConfigError(f"seed must be in [0, 2**63), got {self.seed}")
        if self.micro_batch_size is not None and self.micro_batch_size < 1:
            raise ConfigError(f"micro_batch_size must be at least 1, got {self.micro_batch_size}")
        if not 0.0 <= self.warmup_ratio < 1.0:  # each key alone, with its value (before stop 60 one line for both)
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ConfigError(f"min_lr_ratio must be in [0, 1], got {self.min_lr_ratio}")
        if self.attention_backend not in ATTENTION_BACKENDS:
            raise ConfigError(f"attention_backend must be one of {ATTENTION_BACKENDS}, got {self.attention_backend!r}")
        if self.parallel not in ("ddp", "fsdp"):
            raise ConfigError(f"parallel must be 'ddp' or 'fsdp', got {self.parallel!r}")
        if self.model not in PRESETS:
            raise ConfigError(f"unknown model preset {self.model!r}; choose from {sorted(PRESETS)}")
        if self.init is not None and self.model != MODEL_DEFAULT:  # before stop 54 (audit) recorded, and ignored
            raise ConfigError(f"model = {self.model!r} cannot be combined with init ({self.init!r} brings its own "
                              "model); drop `model`, or drop `init` to train a fresh preset")  # fmt: skip
        if self.init_layers is not None and self.init is None:  # each problem alone (before stop 66 one line for
            # both, which told a run with an init to give one)
            raise ConfigError(f"init_layers={self.init_layers} needs an `init` model (it keeps that model's first "
                              "layers)")  # fmt: skip
        if self.init_layers is not None and self.init_layers < 1:
            raise ConfigError(f"init_layers must be at least 1, got {self.init_layers}")
        if self.init is not None and self.model_overrides:
            raise ConfigError("model_overrides cannot be combined with init (the checkpoint fixes the model)")
        if self.init is None and self.model_overrides:
            self._check_model_overrides()
        self._check_optimizer()
        not_negative = {"threads": (self.threads, "torch's default"), "keep_last": (self.keep_last, "keep all"),
                        "eval_every": (self.eval_every, "only before the first and after the last step")}  # fmt: skip
        for key, (value, zero) in not_negative.items():
            if value is not None and value < 0:  # keep_last = -1 kept every checkpoint, silently
                raise ConfigError(f"{key} must be at least 0 (0: {zero}), got {value}")
        if self.device == "auto":  # the best available (pick_device), as `harness run` without --device
            self.device = None
        if self.device is not None and not DEVICE_PATTERN.fullmatch(self.device):
            raise ConfigError(f"device must be auto, cpu, cuda, npu, mps or xpu, optionally with ':<index>', "
                              f"got {self.device!r}")  # fmt: skip
        if not self.data:
            raise ConfigError("data is empty: list the JSONL files (or folders with train.jsonl) to train on")
        check_listed_once(self.data_root, self.data, "data")

    def _check_output_dir(self) -> None:
        """Before stop 60 an empty output_dir trained into the working directory (``Path("")`` is ``.``), and one
        that is a file or lies under one died in a FileExistsError or NotADirectoryError traceback at start."""
        if not self.output_dir.strip():
            raise ConfigError("output_dir is empty: give the folder to train into (checkpoints, metrics.jsonl, "
                              "final/)")  # fmt: skip
        if blocker := not_a_folder(Path(self.output_dir)):
            raise ConfigError(f"output_dir = {self.output_dir!r} cannot be a folder: {blocker[0]} is {blocker[1]}")

    def _check_model_overrides(self) -> None:
        """The preset with its overrides, built now: before stop 36 a misspelt key ("ConanConfig.__init__() got an
        unexpected keyword argument") or a bad size surfaced after the tokenizer had been trained."""
        from conan_model.config import ConanConfig

        keys = {f.name for f in dataclasses.fields(ConanConfig)}
        for key in self.model_overrides:
            if key not in keys:
                raise ConfigError(f"model_overrides: unknown key {key!r}{did_you_mean(key, keys)}")
            if key in self.decided_fields:
                raise ConfigError(f"model_overrides: {key!r} is set by the {self.stage} stage itself "
                                  f"({DECIDED_WHY[key]}), so an override would be recorded and not used")
        try:  # the tokenizer's vocab_size is known only once it is trained or read: no token id is refused here
            ConanConfig.preset(self.model, **{"vocab_size": 2**31 - 1, **self.model_overrides})
        except (TypeError, ValueError) as e:
            raise ConfigError(f"model_overrides {self.model_overrides}: {e}") from e

    def _check_tokenizer(self) -> None:
        """Tokenizer settings that would otherwise fail after the data is read (or, ``tokenizer_rows = 0``, train
        a 260-token BPE on no text without a word)."""
        if self.tokenizer_vocab < MIN_VOCAB:
            raise ConfigError(f"tokenizer_vocab must be at least {MIN_VOCAB} (the special tokens and the 256 bytes "
                              f"of a byte-level BPE), got {self.tokenizer_vocab}")  # fmt: skip
        if self.tokenizer_rows is not None and self.tokenizer_rows < 1:
            raise ConfigError(f"tokenizer_rows must be at least 1 (rows per file; none: every row), "
                              f"got {self.tokenizer_rows}")  # fmt: skip
        if self.tokenizer:
            path = Path(self.tokenizer)
            if not (path / "tokenizer.json" if path.is_dir() else path).is_file():
                raise ConfigError(f"tokenizer = {self.tokenizer!r}: no such file (give a tokenizer.json, or a folder "
                                  "holding one)")  # fmt: skip
            try:  # its specials and framing too, before any work (before stop 49, audit: a traceback at the start)
                load_tokenizer(path)
            except ValueError as exc:
                raise ConfigError(f"tokenizer = {self.tokenizer!r}: {exc} (`init` brings a checkpoint's own "
                                  "tokenizer)") from None  # fmt: skip

    def _check_optimizer(self) -> None:
        """AdamW takes nan, inf and negative values without complaint and trains to NaN (or uphill): refuse them."""
        for key, value in (("lr", self.lr), ("eps", self.eps), ("weight_decay", self.weight_decay)):
            if not (math.isfinite(value) and value >= 0):  # lr = 0: export the init unchanged (tests use it)
                raise ConfigError(f"{key} must be a finite number >= 0, got {value}")
        for key, value in (("beta1", self.beta1), ("beta2", self.beta2)):
            if not 0.0 <= value < 1.0:
                raise ConfigError(f"{key} must be in [0, 1), got {value}")
        if not self.grad_clip >= 0:  # a negative max_norm flips every gradient: gradient ascent
            raise ConfigError(f"grad_clip must be >= 0 (0: no clipping), got {self.grad_clip}")

    def data_files(self) -> list[Path]:
        """Entries of ``data`` under ``data_root``; a folder means its train.jsonl."""
        return entry_files(self.data_root, self.data)

    def input_files(self) -> list[Path]:
        """Every file the stage reads training rows from (the supervised stage adds its tasks' files)."""
        return self.data_files()

    def data_hashes(self) -> dict[str, str]:
        """{file: sha256 of its contents} over :meth:`input_files`: the pipeline's and ablate's stage keys and
        the resume check hold these, so a data file edited under the same path is never trained past. Files are
        named relative to ``data_root``, so the same data read from another working directory or a moved root
        keeps its key."""
        hashes = {}
        root = Path(self.data_root)
        for path in self.input_files():
            if not path.is_file():
                raise DataError(path, 0, "data file does not exist")
            name = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
            hashes[name] = files_fingerprint(path)
        return hashes

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, **dataclasses.asdict(self)}

    @staticmethod
    def resume_view(config: dict[str, Any]) -> dict[str, Any]:
        """A to_dict() config, saved or current, as a resume compares it: a stage whose tables have defaults fills
        them in, so a key set to its default is the key left out (as it is here: no such tables)."""
        return config

    @staticmethod
    def learned_extras(values: dict[str, Any]) -> dict[str, Any]:
        """What a stage learns from beyond its keys that are not resume-safe, read from a config's ``values``
        (``to_dict``, or a recorded train_config.json): part of `harness ablate`'s unit key. None by default."""
        return {}


@dataclass
class PretrainConfig(StageConfig):
    """Causal-LM pretraining on raw text, documents packed into ``seq_len``-token rows."""

    stage: ClassVar[str] = "pretrain"
    length_key: ClassVar[str] = "seq_len"
    decided_fields: ClassVar[frozenset[str]] = StageConfig.decided_fields | {"pooling"}
    seq_len: int = 128
    text_field: str = "text"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.seq_len < 2:
            raise ConfigError(f"seq_len must be at least 2, got {self.seq_len}")


@dataclass
class WeakConfig(StageConfig):
    """Weakly-supervised contrastive stage: in-batch InfoNCE on (query, positive) pairs under the soft mask."""

    stage: ClassVar[str] = "weak"
    length_key: ClassVar[str] = "max_length"
    max_length: int = 128  # tokens per text, <bos>/<eos> included
    on_long: str = "truncate"  # longer texts: 'truncate' (counted, warned once) or 'error'
    temperature: float = 0.05  # not given by the paper; 0.05 is the common choice (E5, GTE)
    mask_schedule: str = "linear"  # alpha(t): linear | accelerating | decelerating | hard | causal | bidirectional
    pooling: str = ""  # 'mean' or 'last', trained and written to the exported config.json; "": the model's own
    bucket_window: int = 16  # global batches sorted by length together (1: no bucketing)
    holdout: int = 0  # rows held out of training for the pair-ranking evaluation (MRR, recall@1)

    @staticmethod
    def learned_extras(values: dict[str, Any]) -> dict[str, Any]:
        """The rows of one micro-batch, each other's in-batch negatives: `micro_batch_size` is resume-safe only
        while they stay the same (PairBatches checks that), so it changes the loss and keys an ablate unit (before
        stop 54, audit, an arm differing only in it was given another arm's model)."""
        return {"micro-batch rows": values.get("micro_batch_size") or values.get("batch_size")}

    def __post_init__(self) -> None:
        super().__post_init__()
        check_max_length(self.max_length)
        if self.on_long not in ("truncate", "error"):
            raise ConfigError(f"on_long must be 'truncate' or 'error', got {self.on_long!r}")
        if self.temperature <= 0:
            raise ConfigError(f"temperature must be positive, got {self.temperature}")
        if self.mask_schedule not in MASK_SCHEDULES:
            raise ConfigError(f"mask_schedule must be one of {MASK_SCHEDULES}, got {self.mask_schedule!r}")
        if self.bucket_window < 1:
            raise ConfigError(f"bucket_window must be at least 1 (1: no bucketing), got {self.bucket_window}")
        if self.holdout < 0:
            raise ConfigError(f"holdout must be at least 0 (0: no held-out evaluation), got {self.holdout}")
        if self.pooling not in ("", *POOLINGS):
            raise ConfigError(f"pooling must be one of {POOLINGS} (or empty: the model's), got {self.pooling!r}")


@dataclass
class MntpConfig(PretrainConfig):
    """LLM2Vec's masked next-token prediction: bidirectional attention, ``mask_ratio`` of the tokens replaced
    (80% by ``mask_token``, 10% by a random token, 10% kept) and predicted from the previous position."""

    stage: ClassVar[str] = "mntp"
    mask_ratio: float = 0.2  # LLM2Vec's choice for Llama-family models
    mask_token: str = "_"  # decoder vocabularies have no mask token; LLM2Vec uses "_" for Llama/Mistral
    pooling: str = "mean"  # written to the exported config.json (LLM2Vec's pooling)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.mask_ratio < 1.0:
            raise ConfigError(f"mask_ratio must be in (0, 1), got {self.mask_ratio}")
        if self.pooling not in POOLINGS:
            raise ConfigError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")


def check_max_length(max_length: int) -> None:
    """The pair stages' tokens per text: ``<bos>`` and ``<eos>`` alone take 2. Checked when the config loads, so a
    wrong value is named with its source before any work (before stop 63 the supervised stage mined its pools and
    trained a tokenizer first)."""
    if max_length < 2:
        raise ConfigError(f"max_length must be at least 2, got {max_length}")


def under_root(root: str, entry: str, key: str) -> Path:
    """``root / entry``, refused when it resolves (``..``, an absolute entry, a symlink) outside ``root``: training
    data never escapes the data root (``""``: the working directory)."""
    base = Path(root).resolve()
    path = (base / entry).resolve()
    if not path.is_relative_to(base):
        raise ConfigError(f"{key} = {entry!r} lies outside data_root {str(base)!r}; set data_root to a folder "
                          f"holding it and give paths relative to it")  # fmt: skip
    return Path(root) / entry


def entry_file(root: str, entry: str, key: str = "data") -> Path:
    """The file a data ``entry`` under ``root`` names (checked by :func:`under_root`); a folder means its
    train.jsonl, checked too: a folder's train.jsonl linked out of the root trained from outside it (before stop 64,
    a user's walk; the file named directly was refused)."""
    path = under_root(root, entry, key)
    if not path.is_dir():
        return path
    file, base = path / "train.jsonl", Path(root).resolve()
    if not file.resolve().is_relative_to(base):
        raise ConfigError(f"{key} = {entry!r}: its train.jsonl links to {file.resolve()}, outside data_root "
                          f"{str(base)!r}; copy the file into the folder, or set data_root to a "
                          "folder holding it")  # fmt: skip
    return file


def entry_files(root: str, entries: list[str]) -> list[Path]:
    """The files of data ``entries`` under ``root``, as :func:`entry_file`."""
    return [entry_file(root, entry) for entry in entries]


def check_listed_once(root: str, entries: list[str], key: str) -> None:
    """Refuse an entry of the list ``key`` naming the same file as an earlier one however spelled (``news`` and
    ``news/train.jsonl``, ``./a.jsonl`` and ``a.jsonl``): its rows would be read, and trained on, twice per epoch."""
    first: dict[Path, int] = {}
    for i, entry in enumerate(entries):
        file = entry_file(root, entry, f"{key}[{i}]").resolve()
        if file in first:
            j = first[file]
            raise ConfigError(f"{key}[{i}] = {entry!r} names the same file as {key}[{j}] = {entries[j]!r}; "
                              "list each file once")  # fmt: skip
        first[file] = i


def parse_set(items: list[str], name: str = "--set") -> dict[str, Any]:
    """``["lr=1e-4", "model_overrides.max_length=64"]`` -> {"lr": 1e-4, "model_overrides": {"max_length": 64}}; an
    error names the list as ``name`` (train's --set, an ablation's `arms.x.set`: before, always "--set")."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"{name} expects key=value, got {item!r}")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError as exc:
            # a list, table or quoted string begun and not ended: before stop 60 the raw text became a bare string,
            # `data=["a",` a data file named `["a",`
            if raw.strip().startswith(("[", "{", '"', "'")):
                raise ConfigError(f"{name} {item!r}: the value is not valid TOML ({exc})") from None
            value = raw.strip()  # `output_dir = runs/x`: a bare string, not ' runs/x' (before stop 48, audit)
        *tables, leaf = key.strip().split(".")
        target = out
        for name in tables:
            target = target.setdefault(name, {})
        target[leaf] = value
    return out


def merge_tables(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``, tables merged at every depth (``tasks.sts.batch_size=16`` keeps the
    other keys of ``[tasks.sts]`` and the other tasks)."""
    out = dict(base)
    for key, value in override.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = merge_tables(out[key], value) if both else value
    return out


def load_config(cls: type[StageConfig], path: str | Path | None = None, overrides: list[str] = (),
                overrides_name: str = "--set") -> StageConfig:  # fmt: skip
    """Build ``cls`` from an optional TOML file plus ``overrides`` ('key=value'; an error names them
    ``overrides_name``: the train CLI's --set, a pipeline or ablation's `set` list), checking every key and type."""
    from .cli import read_toml  # the train CLI's one reader: missing, directory, non-UTF-8 and malformed files

    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        values = read_toml(path, cls.stage)
    stage = values.pop("stage", cls.stage)
    if stage != cls.stage:
        raise ConfigError(f"{path} is a {stage!r} config, not {cls.stage!r}")
    sets = parse_set(list(overrides), overrides_name)
    values = merge_tables(values, sets)
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}

    def source(key: str, message: str = "") -> str:
        """Where a key was given, for the error: the overrides or the TOML file (for a table, where the entry
        ``message`` names was given)."""
        return overrides_name if path is None or _given_in(sets, key, message) else str(path)

    unknown = sorted(set(values) - fields)
    if "init_from" in unknown:
        raise ConfigError(f"{source('init_from')}: config key `init_from` is now called `init` (it takes the same "
                          "specs)")  # fmt: skip
    for key in unknown:
        if stages := stages_with_key(key, cls):  # `--set seq_len=64` on a weak config: "did you mean: seed?" before
            config = f"{path} is a {cls.stage} config" if path is not None else f"the stage is {cls.stage}"
            owners = f"{' and '.join(stages)} stage{'s' if len(stages) > 1 else ''}"
            raise ConfigError(f"{source(key)}: {key!r} is a key of the {owners}, not of the "
                              f"{cls.stage} stage ({config}); drop it, or set it in that stage's config")  # fmt: skip
    if unknown:
        hint = did_you_mean(unknown[0], fields)
        raise ConfigError(f"{source(unknown[0])}: unknown {cls.stage} config key(s) {unknown}{hint}")
    coerced = {}
    for key, value in values.items():
        try:
            coerced[key] = _coerce(key, value, hints[key])
        except ConfigError as exc:
            raise ConfigError(f"{source(key)}: {exc}") from None
    try:
        cfg = cls(**coerced)
    except ConfigError as exc:  # a range check of __post_init__ ("lr must be ..."): name where the key was given
        # the keys the message is about (each clause's subject), each where it was given, else any key it mentions
        # (review of stop 49: a message naming two keys was blamed on the first one's source, and a word such as
        # "model" in passing named the TOML's `model`)
        message = str(exc)
        named = _keys_named(message, values, r"(?:^|, |; | and |\[)") or _keys_named(message, values, r"(?<![\w.'`])")
        where = (" / ".join(dict.fromkeys(source(key, message) for key in named))
                 or (str(path) if path is not None else overrides_name))  # fmt: skip
        raise ConfigError(f"{where}: {exc}") from None
    if "device" in values:
        cfg.device_source = source("device")
    return cfg


def stages_with_key(key: str, cls: type[StageConfig]) -> list[str]:
    """The other stages whose config has ``key``: a key set on the wrong stage is named as such, not as a typo."""
    from .supervised_config import SupervisedConfig  # it builds on this module

    stages = (PretrainConfig, MntpConfig, WeakConfig, SupervisedConfig)
    return [other.stage for other in stages
            if other.stage != cls.stage and key in {f.name for f in dataclasses.fields(other)}]  # fmt: skip


def _given_in(sets: dict[str, Any], key: str, message: str) -> bool:
    """Whether ``sets`` gave ``key``, followed down the dotted path ``message`` names after it (``tasks.ret.data``):
    before stop 63 a ``--set`` of one task took the blame for another task's value in the TOML file."""
    node: Any = sets
    rest = (m.group(0) if (m := re.search(rf"(?<![\w.'`]){re.escape(key)}\S*", message)) else key)
    while isinstance(node, dict):
        entry = next((k for k in sorted(node, key=len, reverse=True)
                      if re.match(rf"{re.escape(k)}(?=[\s=\[\].:,]|$)", rest)), None)  # fmt: skip
        if entry is None:
            return False
        node, rest = node[entry], rest[len(entry):]
        if not rest.startswith("."):  # the message names the table itself, or an item of a list
            return True
        rest = rest[1:]
    return True


def _keys_named(message: str, keys: dict[str, Any], before: str) -> list[str]:
    """The keys that stand in ``message`` after the pattern ``before`` and before a separator."""
    return [key for key in keys if re.search(rf"{before}{re.escape(key)}(?=[\s=\[\].:,]|$)", message)]


# str keys that hold a comma-separated list of numbers ("64,128"), which TOML reads as a number when there is one
NUMBER_LIST_KEYS = frozenset({"mrl_dims", "mrl_weights"})


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against a field annotation (int, float, bool, str, list[T], dict, X | None)."""
    args = typing.get_args(hint)
    if isinstance(hint, types.UnionType) and type(None) in args:
        # an empty value (`--set init=`) unsets too: before stop 48 (audit) it was half set, half unset ('' passed
        # the `is not None` checks, and the loop's truthiness ones took it as unset: init_layers silently ignored)
        if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null", "")):
            return None
        (hint,) = [a for a in args if a is not type(None)]
    origin = typing.get_origin(hint) or hint
    if origin is list:
        (item,) = typing.get_args(hint) or (Any,)
        if isinstance(value, str | int | float) and not isinstance(value, bool):
            value = [value]  # `--set data=a.jsonl`, `--set dims=64`
        if not isinstance(value, list):
            raise ConfigError(f"config key {key!r} expects a list, got {value!r}")
        return [v if item is Any else _coerce(f"{key}[{i}]", v, item) for i, v in enumerate(value)]
    if origin is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if origin is int and isinstance(value, float) and value.is_integer():
        return int(value)
    if key in NUMBER_LIST_KEYS and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)  # one number of a comma list: `--set mrl_dims=128` (before stop 49, audit: "expects str")
    if not isinstance(value, origin) or (origin is int and isinstance(value, bool)):
        raise ConfigError(f"config key {key!r} expects {getattr(hint, '__name__', hint)}, got {value!r}")
    return value


ConfigView = Callable[[dict[str, Any]], dict[str, Any]]  # a config dict as a resume compares it


def config_diff(saved: dict[str, Any], current: dict[str, Any], ignore: frozenset[str] = RESUME_SAFE) -> list[str]:
    """'key: saved -> current' for every differing key (tables compared entry by entry, dotted)."""
    out = []
    for key in sorted(set(saved) | set(current)):
        if key in ignore:
            continue
        a, b = saved.get(key, "<unset>"), current.get(key, "<unset>")
        if isinstance(a, dict) and isinstance(b, dict):
            out += [f"{key}.{d}" for d in config_diff(a, b, frozenset())]
        elif a != b:
            out.append(f"{key}: {a!r} -> {b!r}")
    return out
