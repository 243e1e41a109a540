"""The run directory: written atomically task by task, read back by leaderboards and reports.

Layout (docs/run-directory.md):
    run.json, efficiency.json, summary.md, predictions/ (mteb's per-item outputs and the items' gold labels;
    predictions/embed_dim_<d>/: the per-item outputs of each MRL dim),
    results/<org>__<model>/<revision>/<Task>.json                               (mteb TaskResult)
    results/<org>__<model>/<revision>/experiments/embed_dim_<d>/<Task>.json     (one per MRL dim)
A task counts as done when its result files and items (predictions, gold) exist, run.json says "ok" and the task's
recorded identity (every setting that changes a vector or a score, harness/identity.py) equals the rerun's, so a
rerun skips it.
run.json and efficiency.json are merged under a file lock: runs of other task lists, or concurrent runs, into
one directory add to them and never drop each other's tasks.
A task evaluated again writes its files into `.staging/<Task>/` first; only when that evaluation has ended do they
replace the task's old files (`RunDir.replace_task`), so an interrupted run keeps the old result, files and record
alike, and no reader ever sees files of two evaluations under one record.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import math
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

# one atomic write for every package; leaderboards and reports take it from here (they import harness.runs only)
from conan_model.atomic import atomic_write as atomic_write
from conan_model.atomic import atomic_write_json as atomic_write_json
from conan_model.atomic import atomic_write_text as atomic_write_text
from conan_model.atomic import check_file_target as check_file_target
from conan_model.atomic import durable_replace, parse_leftover, parse_writer, writer_mark
from harness.errors import DataError, UsageError

if TYPE_CHECKING:  # importing mteb takes seconds; the CLI parser and readers of run.json do not need it
    from mteb.results import TaskResult

RUN_JSON, EFFICIENCY_JSON, SUMMARY_MD, LOCK = "run.json", "efficiency.json", "summary.md", ".lock"
OFFICIAL, MIRROR, MISSING = "official", "mirror", "missing"  # a task's source, as run.json records it


# What a damaged file's error advises: removing a file must lead to a working state, so each says what removing it
# costs. A task's items (predictions, gold) removed make the task unfinished (`RunDir.unfinished_files`): the next
# run evaluates it again; before, it stayed "done earlier, skipped" without them for good.
REDO_ALL = "restore the file or remove it (every task of this run directory is then evaluated again)"
REDO_TASK = "restore the file or remove it (the next `harness run` into this directory evaluates the task again)"
LOSE_TIMINGS = "restore the file or remove it (the scores stay; the timings of the tasks finished so far are lost)"
RECOMPUTE = "restore the file or remove it (what it records is then computed again)"


def read_json(path: Path, default: Any = None, remedy: str = RECOMPUTE) -> Any:
    """A JSON file the harness wrote (run.json, efficiency.json, predictions, gold, pipeline and ablate state), or
    ``default`` when absent; a damaged one is a DataError naming it and saying what to do (``remedy``), never a
    traceback, and is left as it is."""
    if not path.is_file():
        return default
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise DataError(path, 0, f"damaged JSON (not UTF-8: {exc.reason} at byte {exc.start}); {remedy}") from None
    except json.JSONDecodeError as exc:
        raise DataError(path, exc.lineno, f"damaged JSON ({exc.msg}, column {exc.colno}); {remedy}") from None


# The fields of run.json that readers use, with the JSON types they may hold: a record of another shape (a list, a
# score written as text, a null where readers take an object) is a DataError naming the file and the field, not a
# traceback in whichever reader meets it first. Absent fields are the readers' business; others are not checked.
_NULL, _OBJECT, _LIST, _TEXT, _NUMBER = (type(None),), (dict,), (list,), (str,), (int, float)
RUN_FIELDS = {"tasks": _OBJECT, "model": _OBJECT, "identity": _OBJECT, "environment": _OBJECT, "dims": _LIST,
              "command": _LIST, "data_root": _TEXT + _NULL, "coverage": _TEXT + _NULL, "suite": _TEXT + _NULL,
              "started": _TEXT + _NULL, "finished": _TEXT + _NULL, "batch_size": _NUMBER + _NULL}  # fmt: skip
MODEL_FIELDS = {key: _TEXT + _NULL for key in ("name", "revision", "spec", "device", "dtype", "fingerprint")} | {
    "embed_dim": _NUMBER + _NULL, "n_parameters": _NUMBER + _NULL}  # fmt: skip
TASK_FIELDS = {"status": _TEXT, "main_score": _NUMBER + _NULL, "main_metric": _TEXT + _NULL,
               "identity": _OBJECT + _NULL, "source": _TEXT + _NULL, "data_root": _TEXT + _NULL,
               "type": _TEXT + _NULL, "error": _TEXT + _NULL, "split": _LIST + _NULL,
               "subsets": _LIST + _NULL}  # fmt: skip
_JSON_KINDS = {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number",
               bool: "a boolean", type(None): "null"}  # fmt: skip


def _check_fields(path: Path, value: Any, where: str, fields: dict[str, tuple[type, ...]], remedy: str) -> None:
    """``value`` (the file's field ``where``; '' for the whole file) is an object whose listed fields, where
    present, hold one of their types."""
    if not isinstance(value, dict):
        named = f"field {where!r}" if where else "the file"
        raise DataError(path, 0, f"{named} must be a JSON object, not {_json_kind(value)}; {remedy}")
    for key, kinds in fields.items():
        if key in value and type(value[key]) not in kinds:  # type(): a boolean is no number here
            name = f"{where}.{key}" if where else key
            expected = " or ".join(dict.fromkeys(_JSON_KINDS[kind] for kind in kinds))
            raise DataError(path, 0, f"field {name!r} must be {expected}, not {_json_kind(value[key])} "
                                     f"({shown_setting(value[key])}); {remedy}")  # fmt: skip


def _json_kind(value: Any) -> str:
    return _JSON_KINDS.get(type(value), type(value).__name__)


def read_record(path: Path) -> dict[str, Any] | None:
    """A run.json (None when absent), checked for the shape its readers rely on: the record, `model` and each task
    entry objects whose fields hold their types."""
    record = read_json(path, remedy=REDO_ALL)
    if record is None:
        return None
    _check_fields(path, record, "", RUN_FIELDS, REDO_ALL)
    _check_fields(path, record.get("model", {}), "model", MODEL_FIELDS, REDO_ALL)
    for name, entry in record.get("tasks", {}).items():
        _check_fields(path, entry, f"tasks.{name}", TASK_FIELDS, REDO_ALL)
    return record


def _readable(path: Path) -> bool:
    """A result file that exists and parses as JSON."""
    try:
        json.loads(path.read_bytes())
    except (OSError, ValueError):
        return False
    return True


def model_dir_name(name: str) -> str:
    return name.replace("/", "__").replace(" ", "_")


@dataclass
class RunDir:
    """One run's folder; `model_name`/`revision` locate its mteb results."""

    path: Path
    model_name: str
    revision: str
    _scores: dict[tuple[str, int, int], float] = field(default_factory=dict, repr=False, compare=False)
    _lock_depth: int = field(default=0, repr=False, compare=False)

    @property
    def results_dir(self) -> Path:
        return self.path / "results" / model_dir_name(self.model_name) / self.revision

    @property
    def predictions_dir(self) -> Path:
        return self.path / "predictions"

    def dim_predictions_dir(self, dim: int | None) -> Path:
        """Where mteb's per-item outputs of one MRL dim go (the full dimension's: ``predictions_dir``); the gold
        labels are the task's items, one file for every dim."""
        return self.predictions_dir if dim is None else self.predictions_dir / f"embed_dim_{dim}"

    def predictions_path(self, task: str, dim: int | None = None) -> Path:
        return self.dim_predictions_dir(dim) / f"{task}_predictions.json"

    def result_path(self, task: str, dim: int | None = None) -> Path:
        base = self.results_dir if dim is None else self.results_dir / "experiments" / f"embed_dim_{dim}"
        return base / f"{task}.json"

    def write_result(self, result: TaskResult, dim: int | None = None) -> Path:
        path = self.result_path(result.task_name, dim)
        atomic_write(path, result.to_disk)
        return path

    def write_model_meta(self, meta: dict[str, Any]) -> None:
        atomic_write_json(self.results_dir / "model_meta.json", meta)

    def load_result(self, task: str, dim: int | None = None) -> TaskResult:
        from mteb.results import TaskResult

        return TaskResult.from_disk(self.result_path(task, dim))

    # run.json / efficiency.json are small; every change is a read-modify-write under the directory's lock.
    @contextmanager
    def locked(self) -> Iterator[None]:
        """Exclusive lock on the run directory (flock: released by the kernel even on kill -9). Reentrant for this
        object, so a sequence of updates (`replace_task`) holds it whole; a second flock on a new descriptor in the
        same process would wait for itself."""
        if self._lock_depth:
            self._lock_depth += 1
            try:
                yield
            finally:
                self._lock_depth -= 1
            return
        self.path.mkdir(parents=True, exist_ok=True)
        with (self.path / LOCK).open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            self._lock_depth = 1
            try:
                yield
            finally:
                self._lock_depth = 0
                fcntl.flock(handle, fcntl.LOCK_UN)

    def read_run(self) -> dict[str, Any]:
        return read_record(self.path / RUN_JSON) or {}

    def write_run(self, record: dict[str, Any]) -> None:
        """Write run.json; its `coverage` is derived from its tasks at every write (`record_coverage`), so the two
        never disagree."""
        if "tasks" in record:
            record["coverage"] = record_coverage(record)
        atomic_write_json(self.path / RUN_JSON, record)

    def update_run(self, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
        """Apply change() to the run.json on disk (not to a stale copy) and write it back, under the lock."""
        with self.locked():
            record = self.read_run()
            change(record)
            self.write_run(record)
        return record

    def read_efficiency(self) -> dict[str, Any]:
        """Per task figures; a file of another shape is a DataError naming it and the task."""
        path = self.path / EFFICIENCY_JSON
        record = read_json(path, {}, LOSE_TIMINGS)
        _check_fields(path, record, "", {}, LOSE_TIMINGS)
        for task, figures in record.items():
            _check_fields(path, figures, task, {}, LOSE_TIMINGS)
        return record

    def drop_results(self) -> None:
        """Every result and prediction file, of every model revision; the caller holds the lock. A directory taken
        over by another model (`--overwrite`) keeps none of the old one's: before stop 54 (audit) its run.json was
        cleared but its files stayed, and `mteb.ResultCache` returned the replaced model's scores beside the new."""
        for folder in (self.path / "results", self.predictions_dir):
            shutil.rmtree(folder, ignore_errors=True)

    def drop_efficiency(self) -> None:
        """Empty efficiency.json; the caller holds the lock (`locked`, reentrant for this RunDir only: another
        RunDir of the same folder would wait on it)."""
        atomic_write_json(self.path / EFFICIENCY_JSON, {})

    def update_efficiency(self, task: str, figures: dict[str, Any] | None) -> None:
        """The task's figures; None drops them (an evaluation that failed has none, and its old result is gone)."""
        with self.locked():
            record = self.read_efficiency()
            if figures:
                record[task] = figures
            elif record.pop(task, None) is None:
                return
            atomic_write_json(self.path / EFFICIENCY_JSON, record)

    def finished_efficiency(self) -> dict[str, Any]:
        """The figures of the tasks run.json records as finished: a run directory written before stop 47 can hold
        the timings of a task whose later evaluation failed (the reports showed them as the failed run's)."""
        tasks = self.read_run().get("tasks", {})
        return {t: e for t, e in self.read_efficiency().items() if tasks.get(t, {}).get("status") == "ok"}

    def finished_entry(self, task: str, identity: dict[str, Any], dims: list[int] | None = None,
                       dim_items: bool = False) -> bool:  # fmt: skip
        """True when the task finished earlier under exactly this identity and all its files are there
        (`unfinished_files`)."""
        entry = self.read_run().get("tasks", {}).get(task, {})
        return (entry.get("status") == "ok" and entry.get("identity") == identity
                and not self.unfinished_files(task, dims, dim_items))  # fmt: skip

    def unfinished_files(self, task: str, dims: list[int] | None = None, dim_items: bool = False) -> list[Path]:
        """The files a finished task must have that are missing, or (result files) do not parse: a file cut short (a
        copy, a disk error) or removed as a damaged file's error advises is evaluated again, not skipped as done over
        a result that mteb's own readers fail on. Its items (predictions, gold) always; ``dim_items``: the per-item
        outputs of every dim too."""
        results = [self.result_path(task)] + [self.result_path(task, d) for d in dims or []]
        items = [self.predictions_path(task), self.gold_path(task)]
        items += [self.predictions_path(task, d) for d in dims or []] if dim_items else []
        return [p for p in results if not _readable(p)] + [p for p in items if not p.is_file()]

    def staging(self, task: str) -> RunDir:
        """An empty run directory of the same layout (`.staging/<Task>.<pid>-<nonce>@<machine>/`) that a task's new
        evaluation writes into while its old result stays in place. One per process: two runs redoing one task in
        one directory shared `.staging/<Task>/` before stop 26 and wiped each other's files, leaving run.json `ok`
        over no result. What a process of this machine no longer alive left for this task is cleared first; another
        machine's (a run directory shared over NFS) is its own: its pid means nothing here (conan_model.atomic)."""
        root = self.path / ".staging"
        for old in root.glob(f"{task}*"):
            name, _, owner = old.name.rpartition(".")
            if old.name == task or (name == task and (writer := parse_writer(owner)) and writer.gone()):
                shutil.rmtree(old, ignore_errors=True)
        path = root / f"{task}.{writer_mark()}"
        path.mkdir(parents=True)
        return RunDir(path, self.model_name, self.revision)

    def clear_dead_writes(self) -> list[str]:
        """Remove the temporary files (`.<name>.tmp-<pid>-<nonce>@<machine>`, conan_model.atomic) that a writer killed
        before its rename left, where that process of this machine no longer runs; nothing reads them, but before
        stop 49 (audit) they stayed for good. A live writer's (a concurrent run's) and another machine's are its
        own. Returns 'could not remove <path> (why)' for each the OS refused (another user's, in a shared
        directory): it stays and the run goes on."""
        failed: list[str] = []
        for tmp in self.path.rglob(".*.tmp-*") if self.path.is_dir() else []:
            left = parse_leftover(tmp.name)
            if tmp.is_file() and left is not None and left.writer.gone():
                try:
                    tmp.unlink(missing_ok=True)
                except OSError as exc:
                    failed.append(f"could not remove {tmp} ({exc.strerror or exc})")
        return failed

    def discard(self, staged: RunDir) -> None:
        """Remove a staging directory (`staging`) once its files moved in, or when its evaluation was interrupted:
        mteb writes predictions there unflushed, so an interrupted evaluation's are half files."""
        shutil.rmtree(staged.path, ignore_errors=True)
        with suppress(OSError):  # other tasks (a concurrent run's) may still be staging there
            staged.path.parent.rmdir()

    def task_files(self, task: str) -> list[Path]:
        """Every file of the task's result: its mteb result and predictions, both also one per MRL dim, and gold."""
        dims = (self.results_dir / "experiments").glob(f"embed_dim_*/{task}.json")
        dim_items = self.predictions_dir.glob(f"embed_dim_*/{task}_predictions.json")
        items = [self.predictions_path(task), self.gold_path(task)]
        return [p for p in [self.result_path(task), *dims, *items, *dim_items] if p.is_file()]

    def replace_task(self, task: str, pending: dict[str, Any], entry: dict[str, Any], staged: RunDir,
                     efficiency: dict[str, Any] | None) -> bool:  # fmt: skip
        """Put a task's new evaluation (`entry`, its files in `staged`) in place of its old one: files, efficiency
        figures and run.json entry; True when the old evaluation's timings stay (`earlier_timing`).

        run.json says `pending` while files change hands: a run killed in between leaves the task to be redone, never
        a record of one evaluation over files of another. The old files go even when the new evaluation failed
        (whatever it staged goes too), so mteb's own readers (`mteb.ResultCache`) never find a score that run.json
        does not record. The directory lock is held throughout: before stop 49 (audit) each step took it alone, and
        a concurrent run replacing the same task in between left one run's record over the other's files."""
        with self.locked():
            before = self.read_run().get("tasks", {}).get(task, {})
            if entry.get("status") == "ok" and not staged.result_path(task).is_file():
                entry = {**entry, "status": "failed", "main_score": None, "identity": None,
                         "error": f"the evaluation's result file is missing from {staged.path} (removed by another "
                                  "process?)", "traceback": None}  # fmt: skip
            self.update_run(lambda rec: rec.setdefault("tasks", {}).__setitem__(task, pending))
            for old in self.task_files(task):
                old.unlink(missing_ok=True)
            if entry.get("status") == "ok":
                for new in sorted(p for p in staged.path.rglob("*") if p.is_file()):
                    target = self.path / new.relative_to(staged.path)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    durable_replace(new, target)  # mteb wrote the predictions there, unflushed
            self._drop_empty_dim_folders()
            self.discard(staged)
            # a failed evaluation (or one whose result file went missing) keeps no timings: the old go with the old
            figures = efficiency if entry.get("status") == "ok" else None
            earlier = self.earlier_timing(task, before, entry, figures)
            self.update_efficiency(task, earlier or figures)
            self.update_run(lambda rec: rec.setdefault("tasks", {}).__setitem__(task, entry))
        return earlier is not None

    def _drop_empty_dim_folders(self) -> None:
        """Remove the `embed_dim_<d>` folders (results and predictions) that a task's old files left empty, and an
        empty `experiments/`; the caller holds the lock. Before, a rerun at other --dims left them behind, as if
        those dims still had results."""
        experiments = self.results_dir / "experiments"
        for folder in [*experiments.glob("embed_dim_*"), *self.predictions_dir.glob("embed_dim_*"), experiments]:
            with suppress(OSError):  # not empty: another task's files are there
                folder.rmdir()

    def earlier_timing(self, task: str, before: dict[str, Any], entry: dict[str, Any],
                       figures: dict[str, Any] | None) -> dict[str, Any] | None:  # fmt: skip
        """The task's recorded figures, where they stay in place of a new evaluation's ``figures``: that one timed no
        model work (every vector from the embedding cache or the memo), the earlier one (``before``) did, and both
        computed the same vectors (`same_vectors`). Else None. Before, a rerun that added a dim or
        --dim-predictions, or a warm --overwrite, replaced a measured rate with `cache only (no model time)`."""
        if not figures or measured(figures) or before.get("status") != "ok":
            return None
        if not same_vectors(before.get("identity"), entry.get("identity")):
            return None
        old = self.read_efficiency().get(task)
        if not old or not measured(old) or any(old.get(k) != figures.get(k) for k in SPEED_KEYS):
            return None  # a rate measured otherwise than this run's settings say (review of stop 62)
        return old

    def gold_path(self, task: str) -> Path:
        return self.predictions_dir / f"{task}_gold.json"

    def write_gold(self, task: str, gold: dict[str, Any]) -> None:
        """The gold side of the task's items (harness/gold.py), beside mteb's per-item outputs."""
        atomic_write_json(self.gold_path(task), gold)

    # Readers for reports (regression tests, MRL curves).
    def load_predictions(self, task: str, dim: int | None = None) -> dict[str, Any] | None:
        """mteb's per-item outputs for a task (predictions/<Task>_predictions.json; an MRL dim's under
        predictions/embed_dim_<d>/), or None if absent."""
        return read_json(self.predictions_path(task, dim), remedy=REDO_TASK)

    def load_gold(self, task: str) -> dict[str, Any] | None:
        """The gold side of the task's items as the run scored them (predictions/<Task>_gold.json), or None when
        the file is missing (a run from before the harness kept it, or removed): the next `harness run` into the
        directory evaluates such a task again (`unfinished_files`)."""
        return read_json(self.gold_path(task), remedy=REDO_TASK)

    def result_dims(self, task: str, entry: dict[str, Any] | None = None) -> list[int]:
        """The MRL dims of the task's recorded result (`entry`, else read from run.json) that have a readable result
        file (a damaged one is no score; the rerun evaluates the task again, `damaged_dims` names it)."""
        return [d for d in self._recorded_dims(task, entry) if _readable(self.result_path(task, d))]

    def damaged_dims(self, task: str, entry: dict[str, Any] | None = None) -> list[Path]:
        """The result files of the task's recorded MRL dims that are missing or do not parse, which `result_dims`
        leaves out: the leaderboard and the report name them (before, such a dim vanished from both without a
        word, and a mean over it quietly left the task out)."""
        return [path for d in self._recorded_dims(task, entry) if not _readable(path := self.result_path(task, d))]

    def _recorded_dims(self, task: str, entry: dict[str, Any] | None) -> list[int]:
        """The MRL dims the task's ok record (`entry`, else read from run.json) was scored at: those its identity
        lists, so dim files of an earlier evaluation under other settings are never shown next to the new full
        score. An ok record from before identities names no dims: the files there are all it has."""
        entry = self.read_run().get("tasks", {}).get(task, {}) if entry is None else entry
        if entry.get("status") != "ok":
            return []
        identity = entry.get("identity")
        if identity is None:
            found = [p.parent.name.removeprefix("embed_dim_")
                     for p in (self.results_dir / "experiments").glob(f"embed_dim_*/{task}.json")]  # fmt: skip
            return sorted(int(d) for d in found if d.isdigit())
        return sorted(identity.get("dims") or [])

    def damaged_dims_note(self, tasks: dict[str, dict[str, Any]]) -> str | None:
        """One line naming the damaged or missing dim result files (`damaged_dims`) of ``tasks`` (name → run.json
        record), as paths inside the run directory, or None: what the leaderboard's and the report's notes say."""
        files = [path for name, entry in tasks.items() for path in self.damaged_dims(name, entry)]
        if not files:
            return None
        return ("results at MRL dims that run.json lists are missing or damaged, left out of the dims: "
                + ", ".join(path.relative_to(self.path).as_posix() for path in files)
                + f" (`harness run` into {shown_path(self.path)} with the same --dims evaluates those tasks again)")

    def dim_scores(self, task: str, entry: dict[str, Any] | None = None) -> dict[int, float]:
        """Main score per MRL dimension, from the experiments/embed_dim_<d>/ result files: the one home of per-dim
        scores (run.json does not copy them), read by the summary, the leaderboard and the reports alike."""
        return {dim: self._score(task, dim) for dim in self.result_dims(task, entry)}

    def _score(self, task: str, dim: int) -> float:
        """A result file's main score, remembered per file version: the summary rereads every task after each one."""
        key = (task, dim, self.result_path(task, dim).stat().st_mtime_ns)
        if key not in self._scores:
            self._scores[key] = float(self.load_result(task, dim).get_score())
        return self._scores[key]


def open_run(path: Path) -> RunDir:
    """A finished (or partial) run directory, for readers such as leaderboards and reports."""
    record = read_record(Path(path) / RUN_JSON)
    if record is None:
        raise FileNotFoundError(f"{path} is not a run directory (no {RUN_JSON})")
    model = record.get("model", {})
    for key in ("name", "revision"):
        if model.get(key) is None:
            state = "null" if key in model else "missing"
            raise DataError(Path(path) / RUN_JSON, 0, f"field 'model.{key}' is {state}; {REDO_ALL}")
    return RunDir(Path(path), model["name"], model["revision"])


def open_run_arg(path: Path, option: str) -> RunDir:
    """The run directory a command was given (``option``: --baseline, a leaderboard's RUN ...); one error naming it
    and what is wrong when it is none (no such folder, a file, no run.json) or its run.json has another shape than
    `harness run` writes (`read_record`), instead of a traceback deep in the command."""
    path = Path(path)
    if not (path / RUN_JSON).is_file():
        why = "no such folder" if not path.exists() else "a file" if not path.is_dir() else f"no {RUN_JSON}"
        raise UsageError(f"{option} {path}: not a run directory ({why})")
    try:
        return open_run(path)
    except DataError as exc:
        raise DataError(exc.path, exc.line, f"{exc.detail} ({option})") from None


# The task-record fields that say which data a score was computed on, and by which metric; not "path": the same
# rows may live elsewhere. `data` is the task's recorded data identity (harness/identity.py): a mirror's file hash,
# an official task's dataset revision, so replaced rows behind an unchanged sampling note count as other data;
# `main_metric` another score of the same rows (a task.json edit, an mteb upgrade), never comparable either.
SAME_DATA_KEYS = ("source", "sampling", "data_source", "split", "subsets", "data", "main_metric")


def data_differences(records: list[dict[str, Any]]) -> list[str]:
    """The SAME_DATA_KEYS on which run.json records of one task disagree: those runs scored different data, so
    their scores must not be compared (regress, leaderboard and report all ask this). A key only some records
    hold is compared among those: older records lack some keys, and a missing key is not a difference. Mirrors
    with one file hash read the same rows whatever split name was recorded (before stop 26 a mirror without an
    mteb twin recorded "test" for dev rows), so their split names are not compared."""
    hashes = {_data_key(record) for record in records}
    same_files = None not in hashes and len(hashes) == 1 and all(r.get("source") == MIRROR for r in records)
    differing = []
    for key in SAME_DATA_KEYS:
        if key == "split" and same_files:
            continue
        values = [value for record in records if (value := data_value(record, key)) is not None]
        if any(value != values[0] for value in values[1:]):
            differing.append(key)
    return differing


def _data_key(record: dict[str, Any]) -> str | None:
    return (record.get("identity") or {}).get("data")


def data_value(record: dict[str, Any], key: str) -> Any:
    """A task record's value of one SAME_DATA_KEYS key (`data`: its identity's data hash), as `data_differences`
    compares it: the leaderboard's `‡` notes show these same values."""
    return _data_key(record) if key == "data" else record.get(key)


def has_score(task: dict[str, Any]) -> bool:
    """Whether a run.json task record holds a finished score: status ok and a finite main score. A NaN (a record
    from before `harness run` refused one, or edited) is no score: the leaderboard crashed ranking it, and
    `harness regress` called it *within noise* (the per-item check cannot reproduce NaN, nor tell it apart)."""
    score = task.get("main_score")
    return task.get("status") == "ok" and score is not None and math.isfinite(score)


LIST_SEPARATORS = ",，、"  # the ASCII comma, and the full-width comma and enumeration comma of a CJK keyboard


def comma_list(value: str) -> list[str]:
    """argparse type of a comma-separated option (`--tasks`, `--dims`), for every command (here: the house lets
    reporting import harness.runs, and nothing else of the harness's option code). The full-width `，` and
    `、` separate too: before stop 63 `--tasks "ATEC，BQ"` was one unknown task "ATEC，BQ". An empty list is a usage
    error, not an empty selection (before stop 49 `harness regress --tasks ,` compared nothing and exited 3)."""
    for separator in LIST_SEPARATORS[1:]:
        value = value.replace(separator, ",")
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return items


REASON_CHARS = 160  # of an error's first line, in a leaderboard's or report's notes


def no_score_reason(task: dict[str, Any]) -> str:
    """Why a task record holds no score (`has_score`), in one line: its status and the first line of its error,
    the data root shown as `shown_path` shows it (no machine's absolute path in a report)."""
    if task.get("status") == "ok":
        return f"status ok but its main score is {task.get('main_score')}"
    why = str(task.get("error") or task.get("reason") or "no score").splitlines()[0]
    root = task.get("data_root")
    why = why.replace(root, shown_path(root)) if root else why
    if len(why) > REASON_CHARS:  # at a word's end, marked: before stop 63 cut mid-word (and mid-path) without a sign
        why = why[:REASON_CHARS].rsplit(" ", 1)[0] + " …"
    return f"status {task.get('status')}: {why}"


def coverage_line(label: str, sources: dict[str, str]) -> str:
    """'<label>: 13/31 tasks — 0 official, 13 mirror, 18 missing: <names>' for tasks by name → source."""
    counts = Counter(sources.values())
    line = (f"{label}: {len(sources) - counts[MISSING]}/{len(sources)} tasks — {counts[OFFICIAL]} official, "
            f"{counts[MIRROR]} mirror, {counts[MISSING]} missing")  # fmt: skip
    missing = [name for name, source in sources.items() if source == MISSING]
    return line + (f": {', '.join(missing)}" if missing else "")


def record_coverage(record: dict[str, Any]) -> str:
    """The coverage of what a run directory holds: every task its run.json records (scored, failed, pending or
    missing), each by its recorded source, under the record's suite (`tasks` for none). Before stop 63 it was the
    last run's plan: a `--tasks` subset run into a suite's folder relabelled a 13/31 folder `1/1 tasks`."""
    sources = {name: task.get("source", "") for name, task in record.get("tasks", {}).items()}
    return coverage_line(record.get("suite") or "tasks", sources)


def scored_tasks(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A run.json's tasks that hold a finished score (`has_score`), for every reader that ranks or compares them."""
    return {name: task for name, task in record.get("tasks", {}).items() if has_score(task)}


# What a run identity with dims but no `dim_view` scored them on: every such view was renormalised (a unit-vector
# model's until stop 35, an st: folder without Normalize's until stop 31), where a view now is the raw prefix
RENORMALISED_VIEW = "renormalised prefixes (before stop 35)"
RAW_VIEW = "raw prefixes"  # `dim_view` of every run with dims since: harness.identity, ablate's eval settings


def other_views(record: dict[str, Any]) -> dict[str, str]:
    """Finished tasks whose dim results are not raw prefixes (`dim_view`; before stop 35 they were renormalised), each
    task by its own identity: the run's is the latest run's, which may have asked for no dims at all. regress
    refuses them at a dim; the efficiency report's MRL curves leave them out."""
    found = {}
    for name, task in record.get("tasks", {}).items():
        identity = with_implied_keys(task.get("identity") or {})
        if task.get("status") == "ok" and identity.get("dims") and identity.get("dim_view") != RAW_VIEW:
            found[name] = f"dim_view {shown_setting(identity.get('dim_view'))}"
    return found


# identity keys harness/identity.py leaves out at their default, so that results recorded before the key existed
# stay valid: what their absence means
IMPLIED_DEFAULTS = {"pad_multiple": 1, "kernels": None, "similarity_fn_name": "cosine"}


def with_implied_keys(identity: dict[str, Any]) -> dict[str, Any]:
    """`identity` with what an older version left unsaid said: a run with dims and no `dim_view` scored them on
    renormalised prefixes. Without it, comparing such a run with a newer one would pass over the convention, a key
    only one side holds (for classification 30.65 renormalised against 27.42 as the raw prefix, minilm, 64 dims).
    Likewise the keys recorded only away from their default (IMPLIED_DEFAULTS)."""
    if identity.get("dims") and "dim_view" not in identity:
        identity = {**identity, "dim_view": RENORMALISED_VIEW}
    if identity:  # keys recorded only away from their default (harness/identity.py): before stop 52 (audit) a run
        # padded to 16 against one padded to the longest showed no differing setting in regress or the leaderboard
        identity = {**IMPLIED_DEFAULTS, **identity}
    return identity


def identity_differences(identities: list[dict[str, Any]], skip: tuple[str, ...] = ()) -> list[str]:
    """The keys (other than ``skip``) on which run identities (run.json `identity`) disagree: the settings a gap
    between the runs may owe to. A key only some identities hold is compared among those, as `data_differences`
    does; every key is looked at, so a setting added to the identity is compared without a change here. The
    leaderboard's "Settings that differ" and regress's header both ask this."""
    differing = []
    for key in dict.fromkeys(k for identity in identities for k in identity if k not in skip):
        held = [identity[key] for identity in identities if key in identity]
        if any(value != held[0] for value in held[1:]):
            differing.append(key)
    return differing


# The identity keys that belong to the task itself (harness/identity.py); every other key is a setting of the whole
# run, recorded once in run.json (`identity`), against which `other_settings` compares each task's.
TASK_KEYS = ("source", "data")
# identity keys that move no full-width score: the MRL dims asked for and how they are viewed (before stop 47 only
# regress ignored them; summary, leaderboard and efficiency report marked an identical score "kept from other
# settings" after a rerun into the directory with other --dims, and left it out of means and ranks)
DIM_KEYS = ("dims", "dim_view")


# the settings besides the identity that move a task's speed, not its vectors: a kept timing (`earlier_timing`) must
# have been measured under this run's, which the reports show beside it
SPEED_KEYS = ("batch_size", "max_batch_tokens", "dtype", "device", "world_size", "threads", "processor")


def same_vectors(old: dict[str, Any] | None, new: dict[str, Any] | None) -> bool:
    """Whether two task identities differ at most in the MRL dims scored besides (DIM_KEYS): then both evaluations
    computed the same vectors and the same full-width score."""
    if not old or not new:
        return False
    return {k: v for k, v in old.items() if k not in DIM_KEYS} == {k: v for k, v in new.items() if k not in DIM_KEYS}


def only_tasks(record: dict[str, Any], tasks: list[str] | None) -> dict[str, Any]:
    """A run.json record narrowed to ``tasks`` (None: as it is), for a report over a chosen task list: a run
    directory also holds the tasks of earlier runs into it (a pipeline whose [eval] tasks were narrowed)."""
    if tasks is None:
        return record
    wanted = set(tasks)
    return {**record, "tasks": {n: t for n, t in record.get("tasks", {}).items() if n in wanted}}


def other_settings(record: dict[str, Any], ignore: tuple[str, ...] = DIM_KEYS) -> dict[str, str]:
    """Finished tasks computed under settings other than the run's: task → 'dtype bfloat16, max_length 8'; keys in
    ``ignore`` are not compared (by default the dims, which move no full-width score; ``()`` compares them too).

    Such a task was kept from an earlier run into the directory; summary.md lists it and the leaderboard marks it,
    both from this answer. Every identity key is compared (a key only one side has counts as a difference), against
    the run's own (run.json `identity`), so a setting added to the identity is flagged without a change here. The
    task's own keys (`source`, `data`) have no run-wide value: a mirror task is flagged when it was read from another
    data root than the header's, whose rows its score must not pass for; shown as `shown_path` does, with the start
    of its files' hash (identity `data`), which tells two roots of one folder name apart."""
    current = record.get("identity", {})
    root = record.get("data_root")
    found = {}
    for name, task in record.get("tasks", {}).items():
        identity = task.get("identity") or {}
        if task.get("status") != "ok" or not identity:
            continue
        diff = [f"{name} {shown_setting(value)}" for k in settings_apart(identity, current, ignore)
                for name, value, _ in changed_entries(k, identity.get(k), current.get(k))]  # fmt: skip
        if task.get("source") == MIRROR and task.get("data_root", root) != root:
            files = identity.get("data") or ""
            diff.append(f"data root {shown_path(task['data_root'])}" + (f" (files {files[:15]}…)" if files else ""))
        if diff:
            found[name] = ", ".join(diff)
    return found


def settings_apart(identity: dict[str, Any], current: dict[str, Any], ignore: tuple[str, ...] = DIM_KEYS) -> list[str]:
    """The run-wide keys (not TASK_KEYS, not ``ignore``) on which a task's identity differs from its run's header
    (``current``), a key only one side holds included: what `other_settings` shows, and all that regress needs the
    other run's task to share for a kept task to be compared like for like."""
    return [k for k in dict.fromkeys([*identity, *current])
            if k not in TASK_KEYS and k not in ignore and identity.get(k) != current.get(k)]  # fmt: skip


def shown_path(root: str | Path | None) -> str:
    """A data root or run directory as summary.md and the reports show it: no machine's absolute path (run.json
    keeps the absolute one, which the comparisons use). The embedded sample as its place in the package; a folder
    under the working directory relative to it; any other as `…/<its name>`."""
    if root is None:
        return "none"
    path = Path(root)
    if not path.is_absolute():
        return path.as_posix()
    if path.parts[-2:] == ("harness", "sample_data"):
        return "harness/sample_data (the embedded sample)"
    with suppress(ValueError):
        return path.relative_to(Path.cwd().resolve()).as_posix() or "."
    return f"…/{path.name}"


def given_once(paths: list[Path], option: str) -> None:
    """Each run directory or --published folder (``option``) is one source of rows: one given twice is an error
    naming it, not two rows of one source under one label."""
    seen: set[Path] = set()
    for path in paths:
        if Path(path).resolve() in seen:
            raise UsageError(f"{option} {path}: given twice; give each once")
        seen.add(Path(path).resolve())


def folder_tails(names: list[str], folders: list[Path]) -> list[str]:
    """How rows (``names[i]`` from ``folders[i]``) name their folder: its name, or, for rows of one name whose folder
    names coincide (runs/a/minilm and nightly/minilm), the fewest trailing folders that no other row of that name ends
    in, below the folder holding them all (`a/minilm`, `nightly/minilm`): never a machine's absolute path, which
    `shown_path` keeps out of the reports too."""
    paths = [Path(folder).resolve() for folder in folders]
    tails = [path.name for path in paths]
    for name in dict.fromkeys(names):
        group = [i for i, other in enumerate(names) if other == name]
        holder = Path(os.path.commonpath([paths[i].parent for i in group]))
        parts = {i: paths[i].relative_to(holder).parts for i in group}
        longest = max(map(len, parts.values()))
        for i, tail in parts.items():
            depth = next((k for k in range(1, longest + 1)
                          if all(parts[j][-k:] != tail[-k:] for j in group if j != i)), longest)  # fmt: skip
            tails[i] = "/".join(tail[-depth:])
    return tails


def run_labels(runs: list[RunDir]) -> list[str]:
    """Row labels `<model> [<run folder>]`, one for the leaderboard and the report: runs that would share one (both
    `all-MiniLM-L6-v2 [minilm]`) name the fewest trailing folders that tell them apart (`folder_tails`:
    `[a/minilm]`, `[nightly/minilm]`). A run directory given twice is an error naming it (one row per run)."""
    given_once([run.path for run in runs], "run")
    models = [run.model_name.split("/")[-1] for run in runs]
    tails = folder_tails(models, [run.path for run in runs])
    return [f"{model} [{tail}]" for model, tail in zip(models, tails, strict=True)]


def cell_text(value: Any) -> Any:
    """A string as one Markdown table cell (`|` escaped, line breaks as spaces); other values as they are. A `|` in
    a cell (a run folder named `p|q`, a model folder's name) split it into two columns and shifted the rest of the
    row under the wrong headers, a newline ended the row: every report table goes through `md_table` since stop 47
    (before, only the default run name was cleaned)."""
    if not isinstance(value, str):
        return value
    return value.replace("\\|", "|").replace("|", "\\|").replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


def counted(n: int, noun: str) -> str:
    """'1 task', '3 tasks': a count with its noun, as table headers say it (a report's read "(1 tasks)")."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def md_table(rows: Iterable[Sequence[Any]], headers: Sequence[Any], **options: Any) -> str:
    """A github-flavoured Markdown table of the reports (tabulate ``options`` such as ``disable_numparse``)."""
    from tabulate import tabulate

    return tabulate([[cell_text(v) for v in row] for row in rows], headers=[cell_text(h) for h in headers],
                    tablefmt="github", **options)  # fmt: skip


# models whose engine runs a batch's texts concatenated, bounded by tokens alone: no batch size applies to them
PACKED_MODELS = ("me5-small",)


def applied_batch(record: dict[str, Any]) -> int | None:
    """A run's batch size (run.json `batch_size`) as applied: none for a model that packs its texts, whatever a run
    from before stop 54 recorded (the unused --batch-size, 64), so the two compare alike (review)."""
    return None if record.get("model", {}).get("spec") in PACKED_MODELS else record.get("batch_size")


def shown_batch(record: dict[str, Any]) -> str:
    """A run's batch size as reports show it: "by tokens (packed)" for a model that packs its texts (me5-small)."""
    if "batch_size" not in record:
        return "—"
    batch = applied_batch(record)
    return "by tokens (packed)" if batch is None else str(batch)


def changed_entries(key: str, old: Any, new: Any) -> list[tuple[str, Any, Any]]:
    """(name, old, new) of a setting that differs: a table too long to show whole (the versions of four packages)
    by the entries that differ (`scoring.scikit-learn`), which a cut would hide; any other value whole."""
    if isinstance(old, dict) and isinstance(new, dict) and max(len(json.dumps(old)), len(json.dumps(new))) > 60:
        return [(f"{key}.{k}", old.get(k), new.get(k)) for k in dict.fromkeys([*old, *new]) if old.get(k) != new.get(k)]
    return [(key, old, new)]


def shown_setting(value: Any) -> str:
    """A setting as `other_settings` shows it: plain for scalars, `none` for an absent one, JSON (cut in the middle)
    for prompts and lists."""
    text = "none" if value is None else value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else f"{text[:40]}…{text[-12:]}"


CACHE_ONLY = "cache only (no model time)"


def timed_world(record: dict[str, Any], eff: dict[str, Any]) -> int:
    """The number of processes that timed a task: its efficiency entry's, else the run's (entries before stop 47
    carry none). A task kept from a torchrun run in a one-process run's folder differs from run.json's header."""
    return int(eff.get("world_size", record.get("world_size", 1)))


def measured(eff: dict[str, Any]) -> bool:
    """True when a task's record times real model work: model_s and texts encoded, or an old record without hits.
    No record (an efficiency.json removed as its damage error advises, or lost) times nothing: before stop 50 it
    counted as 0 texts in 0 s, so a row read 0.00 s, or a sum over fewer tasks than its header said."""
    if not eff:
        return False
    if "model_s" in eff:
        return bool(eff.get("encoded_texts")) and bool(eff["model_s"])
    return not eff.get("cache_hits")


def cache_only(eff: dict[str, Any]) -> bool:
    """True when the embedding cache served every text of a task (efficiency.json's record): the model did no work,
    so there is no rate to show, and a blank would read as a missing figure (summary.md, reports, regress)."""
    return "model_s" in eff and not eff.get("encoded_texts") and bool(eff.get("cache_hits"))
