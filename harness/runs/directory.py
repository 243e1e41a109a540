"""The run directory itself (`RunDir`): written atomically task by task, read back by leaderboards and reports.

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

import fcntl
import json
import math
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from conan_model.atomic import (
    atomic_write,
    atomic_write_json,
    durable_replace,
    parse_leftover,
    parse_writer,
    writer_mark,
)
from harness.errors import DataError, UsageError
from harness.runs.records import SPEED_KEYS, measured, record_coverage, same_vectors
from harness.runs.text import folder_tails, given_once, one_line, shown_path, shown_setting

if TYPE_CHECKING:  # importing mteb takes seconds; the CLI parser and readers of run.json do not need it
    from mteb.results import TaskResult

RUN_JSON, EFFICIENCY_JSON, SUMMARY_MD, LOCK = "run.json", "efficiency.json", "summary.md", ".lock"


# What a damaged file's error advises: removing a file must lead to a working state, so each says what removing it
# costs. A task's items (predictions, gold) removed make the task unfinished (`RunDir.unfinished_files`): the next
# run evaluates it again; before, it stayed "done earlier, skipped" without them for good.
# mteb writes a result file's scores rounded to 6 decimals (`TaskResult._round_scores`); run.json keeps the
# evaluation's own float, so the two may differ by half a unit in the 6th decimal (and a float's last bit)
FILE_ROUNDING = 5e-7 + 1e-12
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
    except ValueError:  # Python's limit on integer digits (before stop 69, a walk: a traceback)
        raise DataError(path, 0, f"damaged JSON (a number of more than {sys.get_int_max_str_digits()} digits); "
                                 f"{remedy}") from None  # fmt: skip
    except RecursionError:  # arrays or objects nested thousands deep (before stop 70: a traceback)
        raise DataError(path, 0, f"damaged JSON (nested deeper than Python's recursion limit, "
                                 f"{sys.getrecursionlimit()}); {remedy}") from None  # fmt: skip


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
               "subsets": _LIST + _NULL, "evaluated": _OBJECT + _NULL}  # fmt: skip


# efficiency.json's figures that readers compute with or print as numbers: a number or null each, finite, not
# negative and below FIGURE_LIMIT, as run.json's `model.embed_dim` and `model.n_parameters` (before stop 69, a walk:
# `"texts_per_s": "fast"` was a traceback in `harness report`, and NaN, inf and -1e308 were printed as `nan`, `inf`
# and a 300-digit number).
EFFICIENCY_FIELDS = {key: _NUMBER + _NULL for key in (
    "wall_s", "load_s", "encode_s", "score_s", "model_s", "model_load_s", "texts", "unique_texts", "encoded_texts",
    "at_max_length",
    "memo_hits", "cache_hits", "tokens", "texts_per_s", "tokens_per_s", "encode_tokens_per_s", "forward_tokens_per_s",
    "peak_rss_mb", "peak_accelerator_mb", "batch_size", "world_size", "max_batch_tokens", "threads")}  # fmt: skip

FIGURE_LIMIT = 1e15  # 31 million years in seconds, a petabyte in MB: past any count, time or rate a run records


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


def _check_numbers(path: Path, value: dict[str, Any], where: str, keys: Iterable[str], remedy: str) -> None:
    """Each of ``keys`` of ``value`` (the file's field ``where``), a number where present, is finite, not negative
    and below `FIGURE_LIMIT`: counts, sizes, times and rates that readers print or compute with."""
    for key in keys:
        number = value.get(key)
        if number is not None and not 0 <= number < FIGURE_LIMIT:  # NaN fails both comparisons
            raise DataError(path, 0, f"field '{where}.{key}' must be a finite number from 0 to below "
                                     f"{FIGURE_LIMIT:.0e}, not {shown_setting(number)}; {remedy}")  # fmt: skip


def _json_kind(value: Any) -> str:
    return _JSON_KINDS.get(type(value), type(value).__name__)


def read_record(path: Path) -> dict[str, Any] | None:
    """A run.json (None when absent), checked for the shape its readers rely on: the record, `model` and each task
    entry objects whose fields hold their types, the model's size and dim in range (`_check_numbers`)."""
    record = read_json(path, remedy=REDO_ALL)
    if record is None:
        return None
    _check_fields(path, record, "", RUN_FIELDS, REDO_ALL)
    model = record.get("model", {})
    _check_fields(path, model, "model", MODEL_FIELDS, REDO_ALL)
    _check_numbers(path, model, "model", ("embed_dim", "n_parameters"), REDO_ALL)
    if problem := folder_name_problem(model.get("name") or "x", model.get("revision") or "x"):  # null: open_run's
        key, _, why = problem
        raise DataError(path, 0, f"field 'model.{key}' ({shown_setting(model[key])}) {why}: it names a folder of "
                                 f"the run directory; {REDO_ALL}")  # fmt: skip
    for name, entry in record.get("tasks", {}).items():
        if why := not_a_name(name):
            raise DataError(path, 0, f"task {shown_setting(name)} of field 'tasks' {why}: a task's name names its "
                                     f"result files; {REDO_ALL}")  # fmt: skip
        _check_fields(path, entry, f"tasks.{name}", TASK_FIELDS, REDO_ALL)
        score = entry.get("main_score")
        if isinstance(score, (int, float)) and math.isfinite(score) and not -1 <= score <= 1:
            # before stop 69 (a walk) a board showed 1.5 as 150.00, ranked first, and 1e300 stopped it
            raise DataError(path, 0, f"field 'tasks.{name}.main_score' is {score!r}, outside [-1, 1], where every "
                                     f"mteb main score lies; {REDO_ALL}")  # fmt: skip
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


def has_control_character(text: str) -> bool:
    """Whether ``text`` holds a control character (a line break, a tab, DEL): no name of a folder or run has one."""
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def not_a_name(value: str) -> str | None:
    """Why ``value`` cannot be one folder or file name that stays where it is joined (None when it can): empty, `.`
    or `..`, a path separator, or a control character (a line break in a report). A model's name and revision and a
    task's name become paths of a run directory, and they come from run.json and the embedding cache, which may be
    another machine's (before stop 69, a walk: a revision `../../pwn` wrote a run's results outside it)."""
    if value in ("", ".", ".."):
        return "is not a name" if value else "is empty"
    if "/" in value or "\\" in value:
        return "holds a path separator"
    if has_control_character(value):
        return "holds a control character"
    return None


def _left_by_dead_writer(staged: Path) -> bool:
    """Whether a staging folder (`<Task>.<mark>`, `RunDir.staging`) was left by a process of this machine that no
    longer runs: another machine's (a run directory shared over NFS) is its own (conan_model.atomic)."""
    writer = parse_writer(staged.name.rpartition(".")[2])
    return writer is not None and writer.gone()


def folder_name_problem(name: str, revision: str) -> tuple[str, str, str] | None:
    """The first of a model's name (as its results folder, `model_dir_name`) and revision that is no plain folder
    name (`not_a_name`), as (which, the folder name, why); None when both are. One rule for run.json, the embedding
    cache's stored descriptions and `RunDir` itself."""
    for which, value in (("name", model_dir_name(name)), ("revision", revision)):
        if why := not_a_name(value):
            return which, value, why
    return None


@dataclass
class RunDir:
    """One run's folder; `model_name`/`revision` locate its mteb results."""

    path: Path
    model_name: str
    revision: str
    _scores: dict[tuple[str, int | None, int], float] = field(default_factory=dict, repr=False, compare=False)
    _lock_depth: int = field(default=0, repr=False, compare=False)

    def __post_init__(self) -> None:
        """Its results folder stays inside it (`not_a_name`): the last guard, after run.json's and the cache's."""
        if problem := folder_name_problem(self.model_name, self.revision):
            which, value, why = problem
            what = "model name" if which == "name" else which
            raise UsageError(f"{self.path}: the {what} {value!r} {why}; it would lead out of the run directory")

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

    def write_result(self, result: TaskResult, dim: int | None = None, mirror: str | None = None) -> Path:
        """``mirror``: the data identity of a local mirror's rows, written as the file's `dataset_revision`
        (`mirror_revision`) in place of the official dataset's: mteb's readers and `harness leaderboard --published`
        then never take a sample's score for one on mteb's split (before stop 68 they did; a walk)."""
        if mirror is not None:
            result.dataset_revision = mirror_revision(mirror)
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
        """Per task figures; a file of another shape, or a figure that is no finite number in range
        (`_check_numbers`), is a DataError naming it, the task and the field."""
        path = self.path / EFFICIENCY_JSON
        record = read_json(path, {}, LOSE_TIMINGS)
        _check_fields(path, record, "", {}, LOSE_TIMINGS)
        for task, figures in record.items():
            _check_fields(path, figures, task, EFFICIENCY_FIELDS, LOSE_TIMINGS)
            _check_numbers(path, figures, task, EFFICIENCY_FIELDS, LOSE_TIMINGS)
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
        """The task's figures; None drops them (an evaluation that failed over no whole result has none)."""
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
        """True when the task finished earlier under exactly this identity, all its files are there
        (`unfinished_files`) and its last evaluation did not fail (`failed_again`: evaluated again as a failed task
        is; before stop 68's review the rerun skipped it as done, the failure's mark kept for good)."""
        entry = self.read_run().get("tasks", {}).get(task, {})
        return (entry.get("status") == "ok" and entry.get("identity") == identity and "failed_again" not in entry
                and not self.unfinished_files(task, entry, dims, dim_items))  # fmt: skip

    def unfinished_files(self, task: str, entry: dict[str, Any], dims: list[int] | None = None,
                         dim_items: bool = False) -> list[Path]:  # fmt: skip
        """The files a finished task must have that are missing, or (result files) do not parse or hold another score
        than run.json (`score_mismatch`): a file cut short (a copy, a disk error), edited, or removed as a damaged
        file's error advises is evaluated again, not skipped as done over a result that mteb's own readers fail on or
        read otherwise. Its items (predictions, gold) always; ``dim_items``: the per-item
        outputs of every dim too."""
        results = [self.result_path(task)] + [self.result_path(task, d) for d in dims or []]
        differ = [self.result_path(task)] if self.score_mismatch(task, entry) else []  # ``entry``: its run.json record
        return [p for p in results if not _readable(p)] + differ + self.missing_items(task, dims, dim_items)

    def missing_items(self, task: str, dims: list[int] | None = None, dim_items: bool = False) -> list[Path]:
        """The per-item files a finished task must have that are missing (`unfinished_files`): its predictions and
        gold always, ``dim_items`` each dim's predictions too. Regress reads them so as well: a task recorded
        finished without them is a damaged run directory, not one that never had them."""
        items = [self.predictions_path(task), self.gold_path(task)]
        items += [self.predictions_path(task, d) for d in dims or []] if dim_items else []
        return [p for p in items if not p.is_file()]

    def staging(self, task: str) -> RunDir:
        """An empty run directory of the same layout (`.staging/<Task>.<pid>-<nonce>@<machine>/`) that a task's new
        evaluation writes into while its old result stays in place. One per process: two runs redoing one task in
        one directory shared `.staging/<Task>/` before stop 26 and wiped each other's files, leaving run.json `ok`
        over no result. What a process of this machine no longer alive left for this task is cleared first; another
        machine's (a run directory shared over NFS) is its own: its pid means nothing here (conan_model.atomic)."""
        root = self.path / ".staging"
        for old in root.glob(f"{task}*"):
            if old.name == task or (old.name.rpartition(".")[0] == task and _left_by_dead_writer(old)):
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
        # a staging folder such a writer left (`staging`), whatever its task: before stop 69 (a nightly walk) only the
        # task staged again cleared its own, so a rerun that skipped it left `.staging/` for good
        staging = self.path / ".staging"
        for old in sorted(staging.iterdir()) if staging.is_dir() else []:
            if old.is_dir() and _left_by_dead_writer(old):
                shutil.rmtree(old, ignore_errors=True)
                if old.exists():
                    failed.append(f"could not remove {old}")
        with suppress(OSError):  # empty now, unless a live run (or another machine's) stages there
            staging.rmdir()
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
                     efficiency: dict[str, Any] | None) -> str | None:  # fmt: skip
        """Put a task's new evaluation (`entry`, its files in `staged`) in place of its old one: files, efficiency
        figures and run.json entry. Returns what of the old evaluation stays: "timings" (`earlier_timing`),
        "result" (the new evaluation failed, the old result is whole: it stays, `failed_again` on its entry), or went:
        "dropped" (the new evaluation failed over a finished result that was damaged), else None.

        run.json says `pending` while files change hands: a run killed in between leaves the task to be redone, never
        a record of one evaluation over files of another. A failed evaluation replaces an old result only where that
        was damaged or missing: before stop 68 it removed a whole one too (a transient error under --overwrite lost
        a finished score). The directory lock is held throughout: before stop 49 (audit) each step took it alone, and
        a concurrent run replacing the same task in between left one run's record over the other's files."""
        with self.locked():
            before = self.read_run().get("tasks", {}).get(task, {})
            if entry.get("status") == "ok" and not staged.result_path(task).is_file():
                entry = {**entry, "status": "failed", "main_score": None, "identity": None,
                         "error": f"the evaluation's result file is missing from {staged.path} (removed by another "
                                  "process?)", "traceback": None}  # fmt: skip
            if entry.get("status") != "ok" and self._whole(task, before):
                self.discard(staged)
                failure = {k: entry.get(k) for k in ("error", "traceback")}
                self.update_run(lambda rec: rec["tasks"].__setitem__(task, {**before, "failed_again": failure}))
                return "result"
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
        if entry.get("status") != "ok" and before.get("status") == "ok":
            return "dropped"
        return "timings" if earlier is not None else None

    def _whole(self, task: str, entry: dict[str, Any]) -> bool:
        """Whether a recorded result is kept over a failed evaluation: finished, its result file readable and holding
        its score. Its per-item files (predictions, gold) and dim files need not all be there: one removed to save
        disk lost the whole result before stop 68's review (a walk); readers name what is missing, as before."""
        return (entry.get("status") == "ok" and _readable(self.result_path(task))
                and not self.score_mismatch(task, entry))  # fmt: skip

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

    def damaged_results_note(self, tasks: dict[str, dict[str, Any]], full: bool = True,
                             dims: bool = True) -> str | None:  # fmt: skip
        """One line naming the result files of ``tasks`` (name → run.json record) that their ok records list and that
        are missing or do not parse, as paths inside the run directory, or None: what the leaderboard's, the report's
        and regress's notes say. A full-width one's (``full``) score is shown from run.json alone (mteb's own readers,
        `mteb.ResultCache`, fail on the file; before stop 66 nothing said so); a dim's (``dims``, `damaged_dims`) is
        left out of the dims. A ``full`` note also names the tasks whose latest evaluation failed over a whole earlier
        result, shown (`failed_again`, `replace_task`)."""
        finished = {name: entry for name, entry in tasks.items() if entry.get("status") == "ok"}
        whole = [path for name in finished if not _readable(path := self.result_path(name))] if full else []
        at_dims = [path for name, entry in finished.items() for path in self.damaged_dims(name, entry)] if dims else []
        differ = [said for name, entry in finished.items() if full and (said := self.score_mismatch(name, entry))]
        said = []
        if whole:
            said.append(f"mteb result files of finished tasks are missing or damaged, their scores shown from run.json "
                        f"alone: {self._inside(whole)}")  # fmt: skip
        if differ:
            said.append(f"run.json's scores differ from their mteb result files (one was edited, or another evaluation "
                        f"wrote the file), shown from run.json: {'; '.join(differ)}")  # fmt: skip
        if at_dims:
            said.append(f"results at MRL dims that run.json lists are missing or damaged, left out of the dims: "
                        f"{self._inside(at_dims)}")  # fmt: skip
        again = [name for name, entry in finished.items() if full and "failed_again" in entry]
        if said:
            redo = " with the same --dims" if at_dims else ""
            said[-1] += f" (`harness run` into {shown_path(self.path)}{redo} evaluates those tasks again)"
        if again:
            said.append(f"the latest evaluation of {', '.join(again)} failed, the earlier result shown (its error in "
                        "run.json's failed_again)")  # fmt: skip
        return "; ".join(said) or None

    def score_mismatch(self, task: str, entry: dict[str, Any]) -> str | None:
        """`Task: run.json 0.850000, results/…/Task.json 0.789935` when a finished task's readable result file holds
        another main score than its run.json record (beyond mteb's rounding of the file, `FILE_ROUNDING`): one was
        edited, or another evaluation wrote the file. Before stop 67 the leaderboard and the reports showed run.json's
        score whatever the file said, and `harness run` skipped the task as done (a user's leftover)."""
        recorded = entry.get("main_score")
        if not isinstance(recorded, int | float) or not math.isfinite(recorded):
            return None
        try:
            on_file = self._score(task, None)
        except (OSError, ValueError, KeyError, TypeError):  # missing, or a file mteb cannot read: said as damaged
            return None
        if abs(on_file - recorded) <= FILE_ROUNDING:
            return None
        return f"{task}: run.json {recorded:.6f}, {self._inside([self.result_path(task)])} {on_file:.6f}"

    def _inside(self, files: list[Path]) -> str:
        return ", ".join(path.relative_to(self.path).as_posix() for path in files)

    def dim_scores(self, task: str, entry: dict[str, Any] | None = None) -> dict[int, float]:
        """Main score per MRL dimension, from the experiments/embed_dim_<d>/ result files: the one home of per-dim
        scores (run.json does not copy them), read by the summary, the leaderboard and the reports alike."""
        return {dim: self._score(task, dim) for dim in self.result_dims(task, entry)}

    def _score(self, task: str, dim: int | None) -> float:
        """A result file's main score, remembered per file version: the summary rereads every task after each one."""
        key = (task, dim, self.result_path(task, dim).stat().st_mtime_ns)
        if key not in self._scores:
            self._scores[key] = float(self.load_result(task, dim).get_score())
        return self._scores[key]


MIRROR_REVISION = "local-mirror:"  # a result file's dataset_revision when its rows came from a local mirror


def mirror_revision(data: str) -> str:
    """`local-mirror:<16 hex digits>` for a mirror's data identity (`sha256:<hex>[ layout=N]`, run.json's
    `identity.data`): says where the rows came from and which files, in the field mteb keeps the dataset's."""
    return MIRROR_REVISION + data.removeprefix("sha256:")[:16]


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


def open_run_arg(path: Path, option: str, remedy: str | None = None) -> RunDir:
    """The run directory a command was given (``option``: --baseline, `run` for a leaderboard's or report's RUN_DIR);
    one error naming it and what is wrong when it is none (no such folder, a file, no run.json) or its run.json is
    damaged or of another shape than `harness run` writes (`read_record`), saying what to do in this command
    (``remedy``; "" for none, where the caller says its own), instead of a traceback deep in the command."""
    path = Path(path)
    if not (path / RUN_JSON).is_file():
        why = "no such folder" if not path.exists() else "a file" if not path.is_dir() else f"no {RUN_JSON}"
        raise UsageError(f"{option} {path}: not a run directory ({why})")
    try:
        return open_run(path)
    except DataError as exc:  # the remedy of the command reading it, not `harness run`'s (a user's walk, stop 64:
        # a leaderboard said "restore the file or remove it (every task … is then evaluated again) (run)")
        if remedy is None:
            remedy = "restore the file, or " + ("leave this run directory out of the command" if option == "run" else
                                                f"give another run directory as {option}")  # fmt: skip
        detail = exc.detail.replace(f"; {REDO_ALL}", f"; {remedy}" if remedy else "")
        raise DataError(exc.path, exc.line, detail if detail != exc.detail else f"{detail} ({option})") from None


def run_labels(runs: list[RunDir]) -> list[str]:
    """Row labels `<model> [<run folder>]`, one for the leaderboard and the report: runs that would share one (both
    `all-MiniLM-L6-v2 [minilm]`) name the fewest trailing folders that tell them apart (`folder_tails`:
    `[a/minilm]`, `[nightly/minilm]`). A run directory given twice is an error naming it (one row per run). One
    line each (`one_line`): a folder name's line break began a heading of the report (a walk, stop 69)."""
    given_once([run.path for run in runs], "run")
    models = [run.model_name.split("/")[-1] for run in runs]
    tails = folder_tails(models, [run.path for run in runs])
    return [one_line(f"{model} [{tail}]") for model, tail in zip(models, tails, strict=True)]
