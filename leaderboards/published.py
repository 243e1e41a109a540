"""Published MTEB scores from a local copy of the embeddings-benchmark/results layout.

Layout: `<root>/results/<org>__<model>/<revision>/<Task>.json` (the root may also be the `results/` folder
itself). Both JSON schemas load through mteb's own `TaskResult.from_disk`: the new one (mteb ≥ 1.11:
`"scores": {split: [{"main_score", "hf_subset", "languages", ...}]}`) and the old one (flat
`"test": {...}` with the task's main-score key), which mteb converts.

Choices, documented in docs/reports.md:
- revision: a model folder often holds several revision folders; each task's file comes from the one mteb's
  leaderboard keeps (`BenchmarkResults.join_revisions`): the model's own revision in mteb's registry
  (ModelMeta.revision) first, then the newest mteb version, then the last folder name. So a row can mix
  revisions, as the MTEB leaderboard's does; the notes name each. (Before stop 53 one folder served every task,
  the one holding most of them: multilingual-e5-small's ATEC then read 35.14 from an older revision where mteb
  shows 34.00 from the model's own.)
- splits: every eval split of the task (the benchmark's selection with a suite, the splits our runs scored
  without one), the score being the mean over splits and subsets, as mteb's leaderboard and `harness run` compute
  it. A file lacking some of them is scored on what it holds and marked partial (`PublishedModel.partial`), so
  the leaderboard flags that row's cell instead of passing a one-split mean for the task's.
- subsets: when a suite restricts a multilingual task (STS17 → en-en in MTEB(eng, v2)) only those subsets count;
  the score is the mean main score over the kept subsets, as mteb's TaskResult.get_score does.
- a `harness run` result on a local mirror (its dataset_revision `local-mirror:…`, since stop 68) is no published
  score: left out, naming its run directory as the way to compare it (a walk: a copied sample's 160 rows ranked
  as the official split's).
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from packaging.version import InvalidVersion, Version

from harness.runs import MIRROR_REVISION

log = logging.getLogger(__name__)

SNAPSHOT = Path(__file__).resolve().parent / "published"
NOT_TASK_FILES = {"model_meta.json"}


@dataclass
class PublishedModel:
    """One model's published scores (0–1 scale), with where each came from."""

    name: str
    folder: str = ""  # its model folder under the results root (`org__m`): tells apart two folders of one name
    scores: dict[str, float] = field(default_factory=dict)
    splits: dict[str, str] = field(default_factory=dict)
    revisions: dict[str, str] = field(default_factory=dict)  # task → the revision folder its score came from
    # a skipped result file, by its path under the --published folder (`org__m/rev/STS16.json`) → why
    skipped: dict[str, str] = field(default_factory=dict)
    partial: dict[str, str] = field(default_factory=dict)  # task → the splits/subsets its file lacks
    # task → the metric its file's main score is, where that is not the task's main score now (`metric_of`)
    metrics: dict[str, str] = field(default_factory=dict)

    @property
    def revision(self) -> str:
        """The revision of every score, or each revision with its count of tasks (most first) when they differ."""
        counts = Counter(self.revisions.values())
        if len(counts) <= 1:
            return next(iter(counts), "")
        return ", ".join(f"{rev} ({n} task{'s' * (n > 1)})" for rev, n in counts.most_common())


class TaskScore(NamedTuple):
    """One result file's score: its mean main score, the splits it came from, and what of the wanted selection the
    file lacked (empty when it holds all of it)."""

    score: float
    splits: str
    partial: str
    metric: str = ""  # the file's own name for its main score, where the task's main score now is another


def results_root(path: Path) -> Path:
    """The folder holding `<org>__<model>/` folders: `path/results` when it exists, else path."""
    path = Path(path)
    return path / "results" if (path / "results").is_dir() else path


def _mteb_version(path: Path) -> Version:
    """A result file's mteb version; 0 for a file that has none or is no result file (the task's own reading of it
    then says why it is skipped)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        raw = str((data.get("mteb_version") if isinstance(data, dict) else None) or "").split()
        return Version(raw[0] if raw else "0")
    except (InvalidVersion, ValueError, OSError):
        return Version("0")


@functools.cache
def main_revisions() -> dict[str, str | None]:
    """Each model's own revision in mteb's registry (ModelMeta.revision), by model name."""
    import mteb

    return {meta.name: meta.revision for meta in mteb.get_model_metas() if meta.name}


def pick_files(model_dir: Path, name: str, wanted: set[str] | None) -> dict[str, Path]:
    """Per wanted task, the result file mteb's leaderboard keeps among the model's revision folders: the model's
    own revision (mteb's registry) first, then the newest mteb version, then the last folder name."""
    own = main_revisions().get(name)
    best: dict[str, tuple[tuple[bool, Version, str], Path]] = {}
    for rev in sorted(p for p in model_dir.iterdir() if p.is_dir()):
        for file in rev.glob("*.json"):
            if file.name in NOT_TASK_FILES or (wanted is not None and file.stem not in wanted):
                continue
            key = (rev.name == own, _mteb_version(file), rev.name)
            if file.stem not in best or key > best[file.stem][0]:
                best[file.stem] = (key, file)
    return {task: file for task, (_, file) in sorted(best.items())}


def task_score(path: Path, task: Any | None) -> TaskScore | None:
    """Main score of one result file, both schemas; None when the file has no usable score.

    As mteb's own leaderboard scores a task: the mean main score over every (eval split, subset) of the task,
    so a task evaluated on validation and test (MultilingualSentiment in MTEB(cmn, v1)) is their mean, as
    `harness run` records it, not the first split's. Splits and subsets the file lacks are left out, and the
    result says so (`partial`): without a suite, a task's own eval splits can list one the published run never
    had (STSB: validation), and a one-split number must not pass for the task's. With no task known, every split
    of the file counts. A task marked `exact` (the selection our runs scored, `leaderboards.build`) needs a score
    for each of its splits and subsets."""
    from mteb.results import TaskResult

    result = TaskResult.from_disk(path)
    if str(result.dataset_revision).startswith(MIRROR_REVISION):
        raise MirrorResult(f"a `harness run` result on a local mirror's rows (dataset_revision "
                           f"{result.dataset_revision}), not a published score: give its run directory as a RUN_DIR "
                           "to compare it")  # fmt: skip
    wanted = list(getattr(task, "eval_splits", None) or task.metadata.eval_splits) if task is not None else list(
        result.scores)  # a benchmark's task object carries the benchmark's own split selection
    subsets = list(getattr(task, "hf_subsets", None) or []) if task is not None else []
    held = {split: {e.get("hf_subset"): e["main_score"] for e in result.scores[split]
                    if (not subsets or e.get("hf_subset") in subsets) and _finite(e.get("main_score"))}
            for split in wanted if split in result.scores}  # fmt: skip
    values = [score for per_subset in held.values() for score in per_subset.values()]
    if not values:
        return None
    if outside := [v for v in values if abs(v) > 1 + 1e-6]:  # ×100: shown 8150.00, it took the Borda points
        raise ValueError(f"main score {outside[0]} outside [-1, 1]: mteb's result files hold 0-1 scores (this one "
                         "×100?)")  # fmt: skip
    lacking = [split if not held.get(split) else f"{split} {', '.join(s for s in subsets if s not in held[split])}"
               for split in wanted if not held.get(split) or (subsets and len(held[split]) < len(subsets))]  # fmt: skip
    if lacking and getattr(task, "exact", False):  # a run's selection: all of it
        return None
    partial = f"the file lacks {'; '.join(lacking)} of the task's {'+'.join(wanted)}" if lacking else ""
    official = task if hasattr(task, "metadata") else _mteb_task(result.task_name)  # a selection carries no metadata
    metric = metric_of(result, official.metadata.main_score) if official is not None else ""
    return TaskScore(sum(values) / len(values), "+".join(split for split in wanted if held.get(split)), partial,
                     metric)  # fmt: skip


def metric_of(result: Any, main: str) -> str:
    """The metric a file's main score is, where its entries lack ``main`` (the task's main score in this mteb): the
    key holding the same value (mteb 1's reranking files score `map`, mteb 2 `map_at_1000`), else "an unnamed
    metric"; "" where the entries hold ``main``. Before stop 68 the board's one Metric column named the runs'
    metric for a published score of another (a walk)."""
    entries = [e for split in result.scores.values() for e in split if _finite(e.get("main_score"))]
    if not entries or all(main in e for e in entries):
        return ""
    same = [key for key, value in entries[0].items()
            if key != "main_score" and _finite(value) and value == entries[0]["main_score"]]  # fmt: skip
    return same[0] if same else "an unnamed metric"


class MirrorResult(ValueError):
    """A result file `harness run` wrote on a local mirror's rows (`MIRROR_REVISION`)."""


def _finite(score: Any) -> bool:
    """A usable published score: a number, not None or NaN (a NaN would break means and Borda ranks)."""
    return isinstance(score, (int, float)) and math.isfinite(score)


def load_published(path: Path, tasks: dict[str, Any | None] | None = None) -> list[PublishedModel]:
    """Every model under a results root; `tasks` maps wanted task names to their mteb task (or None)."""
    root = results_root(path)
    if not root.is_dir():
        raise FileNotFoundError(f"published results folder {root} does not exist")
    wanted = set(tasks) if tasks is not None else None
    models = []
    for model_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        metas = sorted(model_dir.glob("*/model_meta.json"))
        meta = json.loads(metas[-1].read_text(encoding="utf-8")) if metas else {}
        model = PublishedModel(meta.get("name") or model_dir.name.replace("__", "/", 1), model_dir.name)
        if not any(f.name not in NOT_TASK_FILES for f in model_dir.glob("*/*.json")):
            continue
        for name, file in pick_files(model_dir, model.name, wanted).items():
            where = file.relative_to(Path(path)).as_posix()  # the file, not its task: two revisions hold one task
            try:
                got = task_score(file, (tasks or {}).get(name) or _mteb_task(name))
            except MirrorResult as exc:
                model.skipped[where] = str(exc)
                continue
            except Exception as exc:  # noqa: BLE001 - one unreadable file must not hide the others
                model.skipped[where] = f"{type(exc).__name__}: {exc}"
                continue
            if got is None:
                model.skipped[where] = "no main score for the task's splits/subsets"
                continue
            model.scores[name], model.splits[name], model.revisions[name] = got.score, got.splits, file.parent.name
            if got.partial:
                model.partial[name] = got.partial
            if got.metric:
                model.metrics[name] = f"`{got.metric}` (mteb {_mteb_version(file)})"
        models.append(model)
    return models


def _mteb_task(name: str) -> Any | None:
    import mteb

    try:
        return mteb.get_task(name)
    except (KeyError, ValueError):
        return None
