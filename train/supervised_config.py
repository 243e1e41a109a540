"""The supervised stage's config (stage 4): its task tables and the DHNM, MRL and pool-mining keys, checked.

A `SupervisedConfig` is a `StageConfig` (train/config.py: the keys every stage shares, TOML and ``--set`` loading)
whose ``tasks`` map a task name to its table (kind, data, batch_size, weight[, clr keys]); every table's keys and
values are checked when the config is built, so a wrong value is a ConfigError naming it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from conan_model.errors import did_you_mean

from .clr import PAPER_LANGUAGE_MIX
from .config import RESUME_SAFE, StageConfig, check_listed_once, check_max_length, entry_file, entry_files, under_root
from .dhnm import DHNMConfig
from .errors import ConfigError

log = logging.getLogger(__name__)
# stage I's global batch_size: unused here, and kept at its default (recorded so in every supervised config)
STAGE_BATCH_SIZE = next(f.default for f in dataclasses.fields(StageConfig) if f.name == "batch_size")

KINDS = ("retrieval", "clr", "classification", "sts")
POOLED_KINDS = ("retrieval", "clr")  # tasks whose hard negatives come from mined pools (train.multitask.attach_pools)
TASK_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*")
TASK_KEYS = {"kind", "data", "batch_size", "weight", "hard_negatives", "parallel", "mix", "total", "max_rows"}
# keys only some kinds read: given to another kind they would change nothing, silently (`max_rows` on retrieval is
# what `total` on it was probably meant to be)
KIND_KEYS = {"parallel": ("clr",), "mix": ("clr",), "total": ("clr",),
             "max_rows": ("retrieval", "classification", "sts"),
             "hard_negatives": ("retrieval", "clr", "classification")}
# stage keys only some kinds read: set away from their default with no such task configured, they are refused too
# (before stop 54, audit: an STS-only run's `temperature` and `[dhnm]` were recorded and changed nothing)
STAGE_KIND_KEYS = {"temperature": ("retrieval", "clr", "classification"), "cosent_scale": ("sts",),
                   "hard_negatives": ("retrieval", "clr", "classification"), "share_hard_negatives": POOLED_KINDS,
                   "pool_scorer": POOLED_KINDS, "pool_depth": POOLED_KINDS, "dhnm": POOLED_KINDS}


# a task table's keys left out (`hard_negatives`: the stage's own)
TASK_DEFAULTS = {"data": [], "batch_size": 8, "weight": 1.0, "parallel": "", "mix": {}, "total": 0, "max_rows": 0}


@dataclass
class SupervisedConfig(StageConfig):
    """Stage-4 options; ``tasks`` maps a task name to its table (kind, data, batch_size, weight[, clr keys]).

    ``data`` (the stage-I key) is filled with every task's files when left empty. Batches are per task, so
    ``micro_batch_size`` (gradient accumulation) is not supported here.
    """

    stage: ClassVar[str] = "supervised"
    # pools are mined deterministically, so moving their cache folder changes nothing
    resume_safe: ClassVar[frozenset[str]] = RESUME_SAFE | {"pools_dir"}
    per_task_batches: ClassVar[bool] = True
    length_key: ClassVar[str] = "max_length"
    tasks: dict[str, Any] = field(default_factory=dict)
    max_length: int = 128
    temperature: float = 0.05  # InfoNCE τ; the paper gives none (notes §8.3)
    cosent_scale: float = 20.0  # CoSENT 1/τ, i.e. τ = 0.05 (notes §8.3)
    hard_negatives: int = 7  # K per query (paper App. B.2)
    share_hard_negatives: bool = True  # every query also sees the other rows' hard negatives
    mrl_dims: str = "auto"  # 'auto' (paper dims, scaled to the width), 'none' (full width only) or '64,<width>'
    mrl_weights: str = ""  # comma-separated, one per dim of mrl_dims, in its order; empty: equal
    dhnm: dict[str, Any] = field(default_factory=dict)  # DHNMConfig fields except k: mode, skip_top, thresholds
    pool_scorer: str = "bm25"  # 'bm25' or a harness model spec ('minilm', 'me5-small', 'conan:<dir>'; via `harness`)
    pool_depth: int = 32
    pools_dir: str | None = None  # mined pools are cached here (default <output_dir>/pools)

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ConfigError("no [tasks.<name>] tables: give at least one task (kinds: " + ", ".join(KINDS) + ")")
        self._check_stage_values()  # before the tasks, which take hard_negatives as their default
        check_max_length(self.max_length)
        specs = self.task_specs()
        if not self.data:
            self.data = self.task_entries(specs)
        super().__post_init__()
        if self.micro_batch_size is not None:
            raise ConfigError("micro_batch_size is not supported by the supervised stage (batches are per task)")
        # before stop 48 (audit): taken and ignored, and its default 32 refused 3 processes (32 % 30). The default
        # stays in the config as recorded, so fingerprints (ablate, pipeline) and checkpoints from before still match
        if self.batch_size != STAGE_BATCH_SIZE:
            raise ConfigError(f"batch_size = {self.batch_size}: the supervised stage's batches are per task; set "
                              "tasks.<name>.batch_size")  # fmt: skip
        if "k" in self.dhnm:  # K is the hard negatives a row trains with (before stop 49, audit: a TypeError text)
            raise ConfigError("[dhnm] k: the hard negatives per row are `hard_negatives` (or "
                              "tasks.<name>.hard_negatives); drop k from [dhnm]")  # fmt: skip
        keys = sorted(f.name for f in dataclasses.fields(DHNMConfig) if f.name != "k")
        # named with the valid keys, as a top-level key is (before stop 60: "DHNMConfig.__init__() got an unexpected
        # keyword argument")
        if unknown := sorted(set(self.dhnm) - set(keys)):
            raise ConfigError(f"[dhnm]: unknown key(s) {unknown}{did_you_mean(unknown[0], keys)}; the keys are "
                              f"{', '.join(keys)}")  # fmt: skip
        try:
            skip = self.dhnm_config().skip_top
        except (TypeError, ValueError) as e:
            raise ConfigError(f"[dhnm] {e}") from e
        for name, spec in specs.items():  # slots start after the skipped top ranks: a shallow pool fills few of K
            if spec["kind"] == "clr" and spec["mix"] and os.environ.get("RANK", "0") == "0":
                log.warning("tasks.%s.mix gives %d language(s) (%s): it replaces the paper's %d-language mix, "
                            "languages it leaves out get no share (`--set tasks.%s.mix.<lang>=...` alone makes the "
                            "whole mix)", name, len(spec["mix"]), ", ".join(sorted(spec["mix"])),
                            len(PAPER_LANGUAGE_MIX), name)  # fmt: skip
            k = spec["hard_negatives"]
            if spec["kind"] in POOLED_KINDS and k and skip + k > self.pool_depth and os.environ.get("RANK", "0") == "0":
                log.warning("tasks.%s: hard_negatives = %d after [dhnm] skip_top = %d need pool_depth >= %d, got %d: "
                            "each query trains with at most %d mined hard negatives besides its given one",
                            name, k, skip, skip + k, self.pool_depth, max(self.pool_depth - skip, 0))  # fmt: skip
        self.mrl_weight_values()
        self._check_stage_keys_are_read(specs)

    def _check_stage_values(self) -> None:
        """Each stage key alone, with its value: before stop 60 one line named all four, and a negative
        hard_negatives was blamed on the first task (which takes it as its default) and the TOML file."""
        for key, ok, expected in (("temperature", self.temperature > 0, "positive"),
                                  ("cosent_scale", self.cosent_scale > 0, "positive"),
                                  ("hard_negatives", self.hard_negatives >= 0, "at least 0"),
                                  ("pool_depth", self.pool_depth >= 1, "at least 1")):  # fmt: skip
            if not ok:
                raise ConfigError(f"{key} must be {expected}, got {getattr(self, key)}")
        # their form now, their fit to the model's width once it is known (`mrl`): before stop 65 `mrl_dims = "abc"`
        # was refused after the pools were mined, in int()'s words (a walk)
        written = str(self.mrl_dims).split(",")
        if self.mrl_dims not in ("none", "auto") and not all(d.strip().isdigit() and int(d) > 0 for d in written):
            raise ConfigError(f"mrl_dims = {self.mrl_dims!r}: expected 'auto', 'none' or comma-separated positive "
                              "integers (\"64,128,768\")")  # fmt: skip

    def _check_stage_keys_are_read(self, specs: dict[str, dict[str, Any]]) -> None:
        kinds = {spec["kind"] for spec in specs.values()}
        defaults = {f.name: f.default_factory() if callable(f.default_factory) else f.default
                    for f in dataclasses.fields(self)}  # fmt: skip
        for key, readers in STAGE_KIND_KEYS.items():
            if getattr(self, key) != defaults[key] and not kinds.intersection(readers):
                hint = "; CoSENT (sts) takes `cosent_scale`, 1/τ" if key == "temperature" else ""
                raise ConfigError(f"{key}: only a {' or '.join(readers)} task reads it, and the tasks here are "
                                  f"{', '.join(sorted(kinds))}{hint}")  # fmt: skip

    def task_entries(self, specs: dict[str, dict[str, Any]]) -> list[str]:
        """Every file (under ``data_root``) the tasks read, each once: their files and each clr task's
        parallel_en_* folders."""
        entries = {entry for spec in specs.values() for entry in spec["data"]}
        for spec in specs.values():
            if spec["kind"] == "clr":
                folders = (Path(self.data_root) / spec["parallel"]).glob("parallel_en_*")
                entries.update(str(Path(spec["parallel"]) / f.name) for f in folders)
        return self._once(entries)

    def input_files(self) -> list[Path]:
        """``data`` and the tasks' files: a ``data`` set by hand (a tokenizer's text) need not list them."""
        return entry_files(self.data_root, self._once({*self.data, *self.task_entries(self.task_specs())}))

    def _once(self, entries: set[str]) -> list[str]:
        """One spelling of each file, the first in sorted order: tasks may share a file, each spelling it their
        own way (``news``, ``news/train.jsonl``); before stop 63 the stage's ``data`` listed both and was refused."""
        first: dict[Path, str] = {}
        for entry in sorted(entries):
            first.setdefault(entry_file(self.data_root, entry).resolve(), entry)
        return list(first.values())

    def mines_pools(self) -> bool:
        """Whether a task mines hard-negative pools (a retrieval or clr task with hard_negatives > 0), the one use of
        ``pool_scorer`` (train.multitask.attach_pools)."""
        return any(spec["kind"] in POOLED_KINDS and spec["hard_negatives"] for spec in self.task_specs().values())

    def task_specs(self) -> dict[str, dict[str, Any]]:
        """Task tables with defaults filled in and every key and value checked."""
        specs = {}
        for name, raw in self.tasks.items():
            if not TASK_NAME.fullmatch(str(name)):  # it names files: <pools_dir>/<name>.jsonl, clr_report_<name>.json
                raise ConfigError(f"tasks.{name}: a task name is letters, digits, '_', '-' and '.' (not starting with "
                                  "'.'): it names the task's pools and report files, which must stay in their folder")
            if not isinstance(raw, dict):
                raise ConfigError(f"tasks.{name} must be a table, got {raw!r}")
            unknown = sorted(set(raw) - TASK_KEYS)
            if unknown:
                raise ConfigError(f"tasks.{name}: unknown key(s) {unknown}; expected some of {sorted(TASK_KEYS)}")
            spec = {**TASK_DEFAULTS, **raw}
            if "kind" not in raw:  # a table made by `--set tasks.<misspelt>.key=...` alone (stop 60: "kind must be")
                others = sorted(set(self.tasks) - {name})
                raise ConfigError(f"tasks.{name}: unknown task {name!r} (no kind){did_you_mean(name, others)}; the "
                                  f"tasks are {', '.join(others) or 'none'}, and a new one needs kind = one of "
                                  f"{', '.join(KINDS)}")  # fmt: skip
            if spec["kind"] not in KINDS:
                raise ConfigError(f"tasks.{name}.kind must be one of {KINDS}, got {spec['kind']!r}")
            if isinstance(spec["data"], str):
                spec["data"] = [spec["data"]]
            spec.setdefault("hard_negatives", self.hard_negatives)
            self._check_task_values(name, spec)
            if spec["kind"] == "clr" and not spec["parallel"]:
                raise ConfigError(f"tasks.{name}: a clr task needs `parallel` (folder with parallel_en_<lang>*)")
            if spec["kind"] == "clr" and spec["max_rows"]:
                raise ConfigError(f"tasks.{name}: a clr task sizes itself with `total`, not max_rows")
            for key in sorted(raw):  # read by other kinds only: refused rather than ignored (0, "", {}: nothing asked)
                if key in KIND_KEYS and spec["kind"] not in KIND_KEYS[key] and raw[key] not in (0, "", {}):
                    raise ConfigError(f"tasks.{name}.{key}: only a {' or '.join(KIND_KEYS[key])} task reads it; this "
                                      f"task is kind {spec['kind']!r}{_meant(key)}")  # fmt: skip
            if spec["kind"] != "clr" and not spec["data"]:
                raise ConfigError(f"tasks.{name}: `data` is empty")
            if len(set(spec["data"])) < len(spec["data"]):  # read twice, each row drawn twice as often
                twice = sorted({e for e in spec["data"] if spec["data"].count(e) > 1})
                raise ConfigError(f"tasks.{name}.data lists {', '.join(twice)} more than once")
            # each entry under data_root, named tasks.<name>.data[i], and each file once however spelled: before
            # stop 63 caught only in the stage's `data`, naming a key never written
            check_listed_once(self.data_root, spec["data"], f"tasks.{name}.data")
            if spec["parallel"]:
                under_root(self.data_root, spec["parallel"], f"tasks.{name}.parallel")
            specs[name] = spec
        return specs

    def _check_task_values(self, name: str, spec: dict[str, Any]) -> None:
        """Each task key's type and range, so a wrong value is a ConfigError naming it rather than a TypeError
        deep in the stage, or (``weight = inf``, ``total = "x"``) a value taken silently."""

        def bad(key: str, expected: str) -> ConfigError:
            return ConfigError(f"tasks.{name}.{key} must be {expected}, got {spec[key]!r}")

        def is_int(value: Any, low: int) -> bool:
            return isinstance(value, int) and not isinstance(value, bool) and value >= low

        data = spec["data"]
        if not (isinstance(data, list) and all(isinstance(d, str) for d in data)):
            raise bad("data", "a path or a list of paths")
        if not isinstance(spec["parallel"], str):
            raise bad("parallel", "a folder path")
        weight = spec["weight"]
        if not (isinstance(weight, int | float) and not isinstance(weight, bool)
                and math.isfinite(weight) and weight > 0):  # fmt: skip
            raise bad("weight", "a finite number above 0")
        for key, low, expected in (("batch_size", 2, "an integer >= 2"), ("total", 0, "an integer >= 0 (0: all)"),
                                   ("max_rows", 0, "an integer >= 0 (0: every row)"),
                                   ("hard_negatives", 0, "an integer >= 0")):  # fmt: skip
            if not is_int(spec[key], low):
                raise bad(key, expected)
        mix = spec["mix"]
        shares = mix.values() if isinstance(mix, dict) else ()
        if not (isinstance(mix, dict) and all(isinstance(v, int | float) and not isinstance(v, bool)
                                              and math.isfinite(v) and v >= 0 for v in shares)):  # fmt: skip
            raise bad("mix", "a table of language shares (finite numbers >= 0)")
        if mix and not sum(shares) > 0:  # all zero: nothing to draw (a ValueError when the stage built its tasks)
            raise bad("mix", "a table of language shares with a positive sum (omit it for the paper's mix)")

    @staticmethod
    def resume_view(config: dict[str, Any]) -> dict[str, Any]:
        """The `[dhnm]` and task tables with their defaults filled in (a path given as a string is a list of one):
        before stop 70 (a walk) `--set dhnm.max_current=0.7`, the default, refused a resume as a changed key."""
        dhnm = {f.name: f.default for f in dataclasses.fields(DHNMConfig) if f.name != "k"}
        hard_negatives = config.get("hard_negatives", SupervisedConfig.hard_negatives)
        tasks = {}
        for name, raw in (config.get("tasks") or {}).items():
            tasks[name] = table = {**TASK_DEFAULTS, **raw} if isinstance(raw, dict) else raw
            if not isinstance(table, dict):
                continue
            if isinstance(table["data"], str):
                table["data"] = [table["data"]]
            if table.get("hard_negatives") == hard_negatives:
                del table["hard_negatives"]  # the stage's own: one edit of the stage's value is one differing key
        return {**config, "dhnm": {**dhnm, **(config.get("dhnm") or {})}, "tasks": tasks}

    def dhnm_config(self, k: int | None = None) -> DHNMConfig:
        """DHNM settings for a task with ``k`` hard negatives (default: the stage's ``hard_negatives``)."""
        return DHNMConfig(k=self.hard_negatives if k is None else k, **self.dhnm)

    def mrl_weight_values(self) -> list[float] | None:
        """``mrl_weights`` as numbers (None: equal), each finite and >= 0 with a positive sum: the loss is their
        weighted mean, which a negative weight turns toward -inf and an all-zero or NaN one makes NaN."""
        if not self.mrl_weights:
            return None
        try:
            weights = [float(w) for w in self.mrl_weights.split(",")]
        except ValueError:
            raise ConfigError(f"mrl_weights = {self.mrl_weights!r}: expected comma-separated numbers") from None
        if not (all(math.isfinite(w) and w >= 0 for w in weights) and 0 < sum(weights) < math.inf):
            raise ConfigError(f"mrl_weights = {self.mrl_weights!r}: each weight must be a finite number >= 0, and "
                              "their sum above 0")  # fmt: skip
        return weights

    def mrl(self, hidden_size: int) -> tuple[list[int], list[float] | None]:
        """MRL dims, ascending, and their weights (None: equal), each weight kept with the dim it was written
        beside (``mrl_dims = "128,64"``, ``mrl_weights = "1,0"`` weights 128 alone)."""
        from conan_model.matryoshka import mrl_dims

        weights = self.mrl_weight_values()
        if self.mrl_dims in ("none", "auto"):
            written = None
            dims = [hidden_size] if self.mrl_dims == "none" else mrl_dims(hidden_size)
        else:
            try:
                written = [int(d) for d in self.mrl_dims.split(",")]
                dims = mrl_dims(hidden_size, written)
            except ValueError as e:
                raise ConfigError(f"mrl_dims = {self.mrl_dims!r}: {e}") from None
        if weights is not None and len(weights) != len(dims):
            raise ConfigError(f"mrl_weights has {len(weights)} entries for {len(dims)} MRL dims {dims}")
        if weights is not None and written is not None:
            weights = [w for _, w in sorted(zip(written, weights, strict=True))]
        return dims, weights


def _meant(key: str) -> str:
    """What a key refused on a task's kind was probably meant as there."""
    return {"total": " (to cap a task's rows, use max_rows)",
            "hard_negatives": " (CoSENT ranks the pairs of its batch; it takes no hard negatives)"}.get(key, "")
