"""Stage 4: supervised multi-task training (paper §3.1.2, §3.4, §4.1; notes §6.2).

    python -m train configs/supervised.toml [--set init=runs/weak/final] [--resume]

Tasks (``[tasks.<name>]`` tables, each with its own ``kind``, data, batch size and mixing weight):
* ``retrieval``: (query, positive[, negative]) rows; InfoNCE over the positive, K hard negatives served by DHNM
  from a pool mined before training (train/mining.py), and in-batch negatives;
* ``clr``: cross-lingual retrieval built by train/clr.py from parallel files; trained like retrieval, with the
  pool mined on the untranslated source query;
* ``classification``: (text, label) rows; InfoNCE with the label text as positive and other label texts
  (K sampled per row, pooled over the batch) as negatives;
* ``sts``: CoSENT on (sentence1, sentence2, score) rows, or on pairs made from (query, positive[, negative])
  rows: (query, positive) scores 1, (query, negative or another row's positive) scores 0.
Each global micro-batch holds one task, drawn by weight from a seeded function of the batch count, so every
rank runs the same task. Attention is bidirectional; every loss is MRL (train/objectives.py) on one forward pass.
Everything else (DDP/FSDP2, checkpoints with DHNM state in ``extra_state``, exact resume, metrics) is train/loop.py.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

import torch
from tokenizers import Tokenizer
from torch import nn

from conan_model import encode_batch
from conan_model.atomic import atomic_write

from . import loop
from .clr import ParallelTranslator, build_clr, format_report
from .config import RESUME_SAFE, StageConfig
from .data import JsonlIndex, permutation
from .dhnm import DHNM, DHNMConfig
from .distributed import barrier
from .errors import ConfigError, DataError, ResumeError
from .losses import gather_with_grad
from .metrics import flops_per_token
from .mining import ensure_pools, load_pools
from .objectives import cosent, label_info_nce, mrl_dims, mrl_loss, retrieval_info_nce

KINDS = ("retrieval", "clr", "classification", "sts")
TASK_KEYS = {"kind", "data", "batch_size", "weight", "hard_negatives", "parallel", "mix", "total"}
TEXT_FIELDS = ("query", "positive", "negative", "text", "sentence1", "sentence2")


@dataclass
class SupervisedConfig(StageConfig):
    """Stage-4 options; ``tasks`` maps a task name to its table (kind, data, batch_size, weight[, clr keys]).

    ``data`` (the stage-I key) is filled with every task's files when left empty. Batches are per task, so
    ``micro_batch_size`` (gradient accumulation) is not supported here.
    """

    stage: ClassVar[str] = "supervised"
    # pools are mined deterministically, so moving their cache folder changes nothing
    resume_safe: ClassVar[frozenset[str]] = RESUME_SAFE | {"pools_dir"}
    tasks: dict[str, Any] = field(default_factory=dict)
    max_length: int = 128
    temperature: float = 0.05  # InfoNCE τ; the paper gives none (notes §8.3)
    cosent_scale: float = 20.0  # CoSENT 1/τ, i.e. τ = 0.05 (notes §8.3)
    hard_negatives: int = 7  # K per query (paper App. B.2)
    share_hard_negatives: bool = True  # every query also sees the other rows' hard negatives
    mrl_dims: str = "auto"  # 'auto' (paper dims, scaled to the width), 'none' (full width only) or '64,128'
    mrl_weights: str = ""  # comma-separated, one per dim; empty: equal
    dhnm: dict[str, Any] = field(default_factory=dict)  # DHNMConfig fields except k: mode, skip_top, thresholds
    pool_scorer: str = "bm25"  # 'bm25' or a harness model spec ('minilm', 'me5-small', 'conan:<dir>')
    pool_depth: int = 32
    pools_dir: str | None = None  # mined pools are cached here (default <output_dir>/pools)

    def __post_init__(self) -> None:
        if not self.tasks:
            raise ConfigError("no [tasks.<name>] tables: give at least one task (kinds: " + ", ".join(KINDS) + ")")
        specs = self.task_specs()
        if not self.data:
            entries = {entry for spec in specs.values() for entry in spec["data"]}
            for spec in specs.values():
                if spec["kind"] == "clr":
                    folders = (Path(self.data_root) / spec["parallel"]).glob("parallel_en_*")
                    entries.update(str(Path(spec["parallel"]) / f.name) for f in folders)
            self.data = sorted(entries)
        super().__post_init__()
        if self.micro_batch_size is not None:
            raise ConfigError("micro_batch_size is not supported by the supervised stage (batches are per task)")
        if self.temperature <= 0 or self.cosent_scale <= 0 or self.hard_negatives < 0 or self.pool_depth < 1:
            raise ConfigError("temperature and cosent_scale must be positive, hard_negatives >= 0, pool_depth >= 1")
        try:
            self.dhnm_config()
        except (TypeError, ValueError) as e:
            raise ConfigError(f"[dhnm] {e}") from e

    def task_specs(self) -> dict[str, dict[str, Any]]:
        """Task tables with defaults filled in and every key and value checked."""
        specs = {}
        for name, raw in self.tasks.items():
            if not isinstance(raw, dict):
                raise ConfigError(f"tasks.{name} must be a table, got {raw!r}")
            unknown = sorted(set(raw) - TASK_KEYS)
            if unknown:
                raise ConfigError(f"tasks.{name}: unknown key(s) {unknown}; expected some of {sorted(TASK_KEYS)}")
            spec = {"data": [], "batch_size": 8, "weight": 1.0, "parallel": "", "mix": {}, "total": 0, **raw}
            if spec.get("kind") not in KINDS:
                raise ConfigError(f"tasks.{name}.kind must be one of {KINDS}, got {spec.get('kind')!r}")
            if isinstance(spec["data"], str):
                spec["data"] = [spec["data"]]
            if spec["kind"] == "clr" and not spec["parallel"]:
                raise ConfigError(f"tasks.{name}: a clr task needs `parallel` (folder with parallel_en_<lang>*)")
            if spec["kind"] != "clr" and not spec["data"]:
                raise ConfigError(f"tasks.{name}: `data` is empty")
            if not (isinstance(spec["batch_size"], int) and spec["batch_size"] >= 2 and spec["weight"] > 0):
                raise ConfigError(f"tasks.{name}: batch_size must be an integer >= 2 and weight positive")
            k = spec.setdefault("hard_negatives", self.hard_negatives)
            if not (isinstance(k, int) and not isinstance(k, bool) and k >= 0):
                raise ConfigError(f"tasks.{name}: hard_negatives must be an integer >= 0, got {k!r}")
            specs[name] = spec
        return specs

    def dhnm_config(self, k: int | None = None) -> DHNMConfig:
        """DHNM settings for a task with ``k`` hard negatives (default: the stage's ``hard_negatives``)."""
        return DHNMConfig(k=self.hard_negatives if k is None else k, **self.dhnm)

    def mrl(self, hidden_size: int) -> tuple[list[int], list[float] | None]:
        if self.mrl_dims == "none":
            dims = [hidden_size]
        else:
            explicit = None if self.mrl_dims == "auto" else [int(d) for d in self.mrl_dims.split(",")]
            dims = mrl_dims(hidden_size, explicit)
        weights = [float(w) for w in self.mrl_weights.split(",")] if self.mrl_weights else None
        if weights is not None and len(weights) != len(dims):
            raise ConfigError(f"mrl_weights has {len(weights)} entries for {len(dims)} MRL dims {dims}")
        return dims, weights


CONFIG = SupervisedConfig


def text_id(text: str) -> int:
    """Stable 63-bit id of a text (the same on every rank), for masking duplicate texts in a batch."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") & (2**63 - 1)


def _files(root: str, entries: list[str]) -> list[Path]:
    paths = [Path(root) / e for e in entries]
    return [p / "train.jsonl" if p.is_dir() else p for p in paths]


@dataclass
class Task:
    """One task's rows in memory; retrieval-like tasks also carry pools and their DHNM."""

    name: str
    kind: str
    batch_size: int
    weight: float
    rows: list[dict[str, Any]]
    pools: list[list[str]] = field(default_factory=list)
    dhnm: DHNM | None = None
    labels: list[str] = field(default_factory=list)
    hard_negatives: int = SupervisedConfig.hard_negatives  # K of this task (its table's, else the stage's)


def read_rows(files: list[Path], kind: str) -> list[dict[str, Any]]:
    """Rows of a task's files, validated by JsonlIndex (errors name file:line)."""
    rows, scored_files = [], set()
    for path in files:
        if kind == "classification":
            required, optional = ("text", "label"), ()
        else:
            scored = kind == "sts" and "score" in JsonlIndex([path], required=()).row(0)
            scored_files.add(scored)
            required, optional = (("sentence1", "sentence2") if scored else ("query", "positive")), ("negative",)
        index = JsonlIndex([path], required=required, optional=optional)
        for i in range(len(index)):
            row = index.row(i)
            if kind == "sts" and "sentence1" in required and not isinstance(row.get("score"), int | float):
                raise DataError(*index.where(i), "STS row needs a numeric 'score'")
            rows.append(row)
    if len(scored_files) > 1:  # scored rows make one pair, others two: ranks would gather different shapes
        raise DataError(files[0], 0, "an sts task mixes scored (sentence1/sentence2/score) and pair files; split it")
    return rows


def attach_pools(
    task: Task, cfg: SupervisedConfig, rt: Any, source: list[dict[str, Any]], source_of: list[int]
) -> None:
    """Mine (rank 0, cached in pools_dir) or load the pools of ``source`` rows; row i of the task uses the pool
    of source row ``source_of[i]``. A row's given negatives go right after the skipped top ranks."""
    path = Path(cfg.pools_dir or Path(cfg.output_dir) / "pools") / f"{task.name}.jsonl"
    used = sorted(set(source_of))  # only sources the task uses get a pool
    queries = [source[i]["query"] for i in used]
    by_query: dict[str, set[str]] = {}
    for r in source:
        by_query.setdefault(r["query"], set()).add(r["positive"])
    corpus = [r["positive"] for r in source] + [r["negative"] for r in source if "negative" in r]
    if rt.is_main and ensure_pools(path, queries, [by_query[q] for q in queries], corpus, cfg.pool_scorer,
                                   cfg.pool_depth):  # fmt: skip
        print(f"mined {len(queries)} pools for task {task.name} with {cfg.pool_scorer} -> {path}", flush=True)
    barrier()
    mined = dict(zip(used, (p["candidates"] for p in load_pools(path)), strict=True))
    skip = cfg.dhnm_config().skip_top
    for row, src in zip(task.rows, source_of, strict=True):
        given = [row["negative"]] if row.get("negative") else []
        rest = [c for c in mined[src] if c not in given]
        task.pools.append(rest[:skip] + given + rest[skip:])
    task.dhnm = DHNM([len(p) for p in task.pools], cfg.dhnm_config(task.hard_negatives))


def build_tasks(cfg: SupervisedConfig, rt: Any) -> dict[str, Task]:
    tasks = {}
    for name, spec in cfg.task_specs().items():
        task = Task(name, spec["kind"], spec["batch_size"], float(spec["weight"]), [],
                    hard_negatives=spec["hard_negatives"])
        if spec["kind"] == "clr":
            translator = ParallelTranslator.from_dir(Path(cfg.data_root) / spec["parallel"])
            source = (read_rows(_files(cfg.data_root, spec["data"]), "retrieval") if spec["data"]
                      else [{"query": t, "positive": t} for t in translator.source_texts()])  # fmt: skip
            examples, report = build_clr(source, translator, spec["mix"] or None, spec["total"] or None,
                                         seed=cfg.seed)  # fmt: skip
            if not examples:
                raise ConfigError(f"tasks.{name}: the clr builder produced no examples\n{format_report(report)}")
            if rt.is_main:
                print(format_report(report), flush=True)
                out = Path(cfg.output_dir) / f"clr_report_{name}.json"
                out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            task.rows = [{"query": e["query"], "positive": e["positive"]} for e in examples]
            attach_pools(task, cfg, rt, source, [e["source_index"] for e in examples])
        else:
            task.rows = read_rows(_files(cfg.data_root, spec["data"]), spec["kind"])
            if spec["kind"] == "retrieval":
                attach_pools(task, cfg, rt, task.rows, list(range(len(task.rows))))
            if spec["kind"] == "classification":
                task.labels = sorted({str(r["label"]) for r in task.rows})
        if len(task.rows) < task.batch_size:
            raise ConfigError(f"tasks.{name}: {len(task.rows)} rows, fewer than its batch_size {task.batch_size}")
        if task.batch_size % rt.world_size:
            raise ConfigError(f"tasks.{name}: batch_size {task.batch_size} is not a multiple of {rt.world_size} ranks")
        tasks[name] = task
    return tasks


def _uniform(*keys: Any) -> float:
    """A float in [0, 1) that is a pure function of ``keys`` (same on every rank, after any resume)."""
    return int.from_bytes(hashlib.blake2b(repr(keys).encode(), digest_size=8).digest(), "little") / 2**64


@dataclass
class TaskBatch:
    task: str
    rows: list[int]  # this rank's rows of the task
    global_rows: list[int]  # the whole global micro-batch (all ranks)
    seed: int  # for the batch's own sampling (negative labels, STS partners), per row so ranks agree


class MultiTaskBatches:
    """Global micro-batches, each from one task drawn by weight; per-task seeded epochs (last partial batch
    dropped). State: batches drawn so far and each task's (epoch, position)."""

    def __init__(self, tasks: dict[str, Task], rank: int, world: int, seed: int) -> None:
        self.tasks, self.rank, self.world, self.seed = tasks, rank, world, seed
        total = sum(t.weight for t in tasks.values())
        self.names, self.cumulative, acc = list(tasks), [], 0.0
        for t in tasks.values():
            acc += t.weight / total
            self.cumulative.append(acc)
        self.count = 0
        self.cursors = {name: [0, 0] for name in tasks}

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count, "cursors": {k: list(v) for k, v in self.cursors.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if set(state["cursors"]) != set(self.cursors):
            raise ResumeError(f"checkpoint tasks {sorted(state['cursors'])} differ from {sorted(self.cursors)}")
        self.count, self.cursors = int(state["count"]), {k: list(v) for k, v in state["cursors"].items()}

    def __iter__(self) -> MultiTaskBatches:
        return self

    def __next__(self) -> TaskBatch:
        u = _uniform(self.seed, "task", self.count)
        name = next((n for n, c in zip(self.names, self.cumulative, strict=True) if u < c), self.names[-1])
        task, cursor = self.tasks[name], self.cursors[name]
        if cursor[1] + task.batch_size > len(task.rows):
            cursor[0], cursor[1] = cursor[0] + 1, 0
        order = permutation(len(task.rows), self.seed, name, cursor[0])
        rows = order[cursor[1] : cursor[1] + task.batch_size].tolist()
        cursor[1] += task.batch_size
        micro = task.batch_size // self.world
        self.count += 1
        local = rows[self.rank * micro : (self.rank + 1) * micro]
        return TaskBatch(name, local, rows, self.seed * 1_000_003 + self.count)


class StageState:
    """The ``extra`` state of loop.fit: every retrieval-like task's DHNM, and the per-task losses of the log
    window still open at a checkpoint (so a resume off a log boundary logs what the uninterrupted run logs)."""

    def __init__(self, tasks: dict[str, Task]) -> None:
        self.by_task = {name: t.dhnm for name, t in tasks.items() if t.dhnm is not None}
        self.window: dict[str, list[float]] = {}

    def state_dict(self) -> dict[str, Any]:
        return {"dhnm": {name: d.state_dict() for name, d in self.by_task.items()},
                "loss_window": {k: list(v) for k, v in self.window.items()}}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        missing = sorted(set(self.by_task) - set(state.get("dhnm", {})))
        if missing:
            raise ResumeError(f"checkpoint has no DHNM state for task(s) {missing}")
        for name, d in self.by_task.items():
            d.load_state_dict(state["dhnm"][name])
        self.window = {k: list(v) for k, v in state.get("loss_window", {}).items()}

    def metrics(self) -> dict[str, float]:
        """Totals over tasks (dhnm_<counter>) and each task's own counts and rates (dhnm_<task>_<counter>)."""
        keys = ("replacements", "initial_drops", "decay_replacements", "exhausted", "used")
        out: dict[str, float] = {f"dhnm_{k}": sum(d.stats()[k] for d in self.by_task.values()) for k in keys}
        for name, d in self.by_task.items():
            stats = d.stats()
            for k in ("replacements", "used", "replacement_rate", "draws_per_query"):
                out[f"dhnm_{name}_{k}"] = stats[k]
        return out

    def summary(self, tasks: dict[str, Task]) -> dict[str, dict[str, Any]]:
        """Per task: rows, mode and every DHNM counter and rate at the end of training (dhnm_summary.json)."""
        return {name: {"rows": len(tasks[name].rows), "mode": d.config.mode, "k": d.config.k, **d.stats()}
                for name, d in self.by_task.items()}  # fmt: skip


def run(cfg: SupervisedConfig, resume: str | None = None) -> Path:
    """Train, checkpoint, and export ``<output_dir>/final``; ``resume`` is None, 'latest' or a path."""
    rt, ckpt, state = loop.start(cfg, resume)
    tasks = build_tasks(cfg, rt)
    tokenizer = loop.get_tokenizer(cfg, rt, ckpt, fields=TEXT_FIELDS)
    model = loop.build_model(cfg, tokenizer, ckpt, cfg.max_length)
    model.config = replace(model.config, attention="bidirectional")  # trained so: a causal import's export must say it
    dims, weights = cfg.mrl(model.config.hidden_size)
    batches = MultiTaskBatches(tasks, rt.rank, rt.world_size, cfg.seed)
    stage = StageState(tasks)
    step_fn = Stepper(cfg, rt, model.config, tokenizer, tasks, dims, weights)

    def step(module: nn.Module, batch: TaskBatch, step: int) -> loop.StepResult:
        result = step_fn(module, batch)
        stage.window.setdefault(batch.task, []).append(float(result.value))
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            result.metrics.update({f"loss_{k}": sum(v) / len(v) for k, v in stage.window.items()})
            result.metrics.update(stage.metrics())
            stage.window.clear()
        return result

    if rt.is_main:
        sizes = ", ".join(f"{t.name} ({t.kind}): {len(t.rows)} rows" for t in tasks.values())
        print(f"supervised tasks: {sizes}; MRL dims {dims}", flush=True)
    final = loop.fit(cfg, rt, model, tokenizer, batches, step, ckpt, state, extra=stage)
    if rt.is_main and stage.by_task:
        summary = stage.summary(tasks)
        text = json.dumps(summary, indent=2) + "\n"
        atomic_write(Path(cfg.output_dir) / "dhnm_summary.json", lambda tmp: tmp.write_text(text, encoding="utf-8"))
        for name, s in summary.items():
            print(f"DHNM {name} ({s['mode']}): {s['draws_per_query']:.2f} draws per query seen, "
                  f"{s['replacements']} replacements of {s['checked']} checked slots "
                  f"({100 * s['replacement_rate']:.1f}%), {s['used']} replaced negatives used", flush=True)  # fmt: skip
    return final


class Stepper:
    """One micro-batch of any task: texts -> ONE bidirectional forward -> MRL task loss (+ DHNM update)."""

    def __init__(self, cfg: SupervisedConfig, rt: Any, model_config: Any, tokenizer: Tokenizer,
                 tasks: dict[str, Task], dims: list[int], weights: list[float] | None) -> None:  # fmt: skip
        self.cfg, self.rt, self.model_config, self.tokenizer = cfg, rt, model_config, tokenizer
        self.tasks, self.dims, self.weights = tasks, dims, weights

    def __call__(self, module: nn.Module, batch: TaskBatch) -> loop.StepResult:
        task = self.tasks[batch.task]
        texts, loss_of = getattr(self, task.kind if task.kind != "clr" else "retrieval")(task, batch)
        enc = encode_batch(self.tokenizer, texts, self.cfg.max_length, self.rt.device)
        emb = module("embed", enc.input_ids, enc.attention_mask, mask_mode="bidirectional")
        with torch.autocast(self.rt.device.type, enabled=False):  # similarities in float32
            loss, is_global = loss_of(emb.float())
        tokens = sum(enc.lengths)
        flops = flops_per_token(self.model_config, enc.input_ids.shape[1], lm_head=False) * tokens
        # A global loss (gathered embeddings) is the same on every rank: x world turns DDP's mean into the sum.
        scale = self.rt.world_size if is_global else 1
        return loop.StepResult(loss=loss * scale, value=loss.detach(), tokens=tokens, flops=flops,
                               metrics={"task": batch.task})  # fmt: skip

    def retrieval(self, task: Task, batch: TaskBatch) -> tuple[list[str], Any]:
        k, b, device = task.hard_negatives, len(batch.rows), self.rt.device
        queries = [task.rows[r]["query"] for r in batch.rows]
        positives = [task.rows[r]["positive"] for r in batch.rows]
        slots = [[None if j is None else task.pools[r][j] for j in task.dhnm.negatives(r)] for r in batch.rows]
        negatives = [t for row in slots for t in row if t is not None]
        mask = torch.tensor([[t is not None for t in row] for row in slots], dtype=torch.bool).view(b, k)
        pos_ids = torch.tensor([text_id(t) for t in positives], dtype=torch.long)
        neg_ids = torch.tensor([[text_id(t) if t else -1 for t in row] for row in slots], dtype=torch.long).view(b, k)
        qids = torch.tensor(batch.rows, dtype=torch.long)

        def loss_of(emb: torch.Tensor) -> tuple[torch.Tensor, bool]:
            q, p = emb[:b], emb[b : 2 * b]
            negs = emb.new_zeros(b, k, emb.shape[1])
            negs[mask.to(device)] = emb[2 * b :]
            g = [gather_with_grad(x.to(device)) for x in (q, p, negs, mask.long(), pos_ids, neg_ids, qids)]

            def fn(q_: torch.Tensor, p_: torch.Tensor, n_: torch.Tensor) -> tuple[torch.Tensor, Any]:
                return retrieval_info_nce(q_, p_, n_ if k else None, self.cfg.temperature, neg_mask=g[3].bool(),
                                          shared_negatives=self.cfg.share_hard_negatives, pos_ids=g[4],
                                          neg_ids=g[5])  # fmt: skip

            loss, _, own = mrl_loss(fn, g[:3], self.dims, self.weights)
            if own is not None:
                task.dhnm.update(g[6].tolist(), own.cpu())
            return loss, True

        return queries + positives + negatives, loss_of

    def classification(self, task: Task, batch: TaskBatch) -> tuple[list[str], Any]:
        # The label set comes from the global batch (the same on every rank): K sampled negative labels per row.
        label_set = set()
        for r in batch.global_rows:
            gold = str(task.rows[r]["label"])
            others = [lab for lab in task.labels if lab != gold]
            rng = random.Random(f"{batch.seed}-{r}")
            label_set.update([gold, *rng.sample(others, min(task.hard_negatives, len(others)))])
        labels = sorted(label_set)
        rows = [task.rows[r] for r in batch.rows]
        targets = torch.tensor([labels.index(str(r["label"])) for r in rows], device=self.rt.device)
        b = len(rows)

        def loss_of(emb: torch.Tensor) -> tuple[torch.Tensor, bool]:
            # Local loss over the shared label set: DDP's gradient mean is then the global batch's gradient.
            fn = lambda q, lab: label_info_nce(q, lab, targets, self.cfg.temperature)  # noqa: E731
            return mrl_loss(fn, [emb[:b], emb[b:]], self.dims, self.weights)[0], False

        return [r["text"] for r in rows] + labels, loss_of

    def sts(self, task: Task, batch: TaskBatch) -> tuple[list[str], Any]:
        pairs = []
        for r in batch.rows:
            row = task.rows[r]
            if "sentence1" in row:
                pairs.append((row["sentence1"], row["sentence2"], float(row["score"])))
                continue
            pairs.append((row["query"], row["positive"], 1.0))
            step = 1 + random.Random(f"{batch.seed}-{r}").randrange(len(task.rows) - 1)
            partner = task.rows[(r + step) % len(task.rows)]["positive"]
            pairs.append((row["query"], row.get("negative") or partner, 0.0))
        n = len(pairs)
        scores = torch.tensor([s for _, _, s in pairs], device=self.rt.device)

        def loss_of(emb: torch.Tensor) -> tuple[torch.Tensor, bool]:
            e1, e2 = gather_with_grad(emb[:n]), gather_with_grad(emb[n:])
            fn = lambda a, b: cosent(a, b, gather_with_grad(scores), self.cfg.cosent_scale)  # noqa: E731
            return mrl_loss(fn, [e1, e2], self.dims, self.weights)[0], True

        return [a for a, _, _ in pairs] + [b for _, b, _ in pairs], loss_of
