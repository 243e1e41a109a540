"""`harness ablate CONFIG`: train every arm × seed, evaluate each model, report paired CIs against a reference arm.

An ablation asks whether one change (an arm's overrides) moves the scores by more than training-seed and test-set
noise explain. Config (TOML; paths relative to the working directory):

    name = "dhnm"                       # report folder: reports/ablations/<name>/ (or `report = "..."`)
    out = "runs/ablations/dhnm"         # work folder: checkpoints, evaluations, ablate.json (resume state)
    scale = "CPU: tiny preset, 300 steps"   # one line the report shows
    seeds = [0, 1, 2]
    reference = "static"                # the arm every other arm is compared with
    data_dir = "../shared/data"
    set = ["threads=1"]                 # overrides for every stage
    [[base]]                            # optional stages run once (their own seed): the model every run starts
    config = "configs/pretrain.toml"    #   from (or set `init = "<spec>"` on the stages instead)
    [[shared]]                          # optional stages run once per seed; their final model starts each arm
    config = "configs/weak.toml"
    [[stages]]                          # each arm's stages; stage i > 0 starts from stage i-1's final model
    config = "configs/ablations/dhnm_stage.toml"
    [arms.static]                       # arm names: letters, digits and '_' (they name folders)
    set = ["dhnm.mode='static'"]        # applied to the arm's last stage (`stages = [...]` replaces the list)
    [arms.dynamic]
    [eval]
    dev = ["CMRC2018Retrieval"]         # settings may be chosen on these only
    test = ["CSLTitleRetrieval"]        # evaluated with the final settings, never used for a choice
    dims = [24, 56]                     # optional: also compare at these MRL dims (prefixes)
    [choose]                            # optional: tune one key of the last stage on the dev tasks
    key = "lr"
    values = [1e-3, 3e-4]
    arm = "dynamic"                     # tuned with the first seed; default: the reference arm

Resumable: every finished unit (a stage of one arm and seed, an evaluation) is recorded in <out>/ablate.json
and skipped on a rerun; one process at a time holds <out>/.ablate.lock. A stage is recorded with a fingerprint of
its resolved config (without the keys train lets a resume change: micro_batch_size, gradient_checkpointing,
compile, ...; with the weak stage's micro-batch rows, each other's in-batch negatives), the sha256 of each
training data file and of its `init` (unless chained: the previous unit's record covers it), the model it started
from (its path, and for a chained stage its files), the precision it trained in and the hardware whose kernels
round its weights; one whose config, files, starting model (a [[base]] or [[shared]] stage added or removed, or
trained again into other files), precision or hardware changed is refused, naming them, and so is a checkpoint
resumed under another precision or hardware than it began in. Every module of the project is imported when the
ablation opens, so the code version it records is the code that runs to the end.
An evaluation is recorded with its settings ([eval] max_length and device, the sha256 of each task's files) and
evaluated again when they changed, or when its run directory, which the report reads, no longer holds the
recorded scores. A stage killed half-way continues from its newest checkpoint, an evaluation from its last
finished task, so kill -9 loses at most the arm in progress; a finished stage's checkpoints are deleted (its
final model stays). Each unit also records the code
version (git commit, "+dirty" with uncommitted .py edits) it ran at, not part of its key: the report names every
version it mixes (an evaluation evaluated again in which `harness run` found every task done keeps the code and
seconds of the run that computed its scores).
A stage whose fingerprint, file hashes and starting model equal a finished unit's (the [choose] run of the value
chosen and the tuned arm's first seed) reuses that unit's model instead of training it again. That seed-0 run is
thus the best of the candidates on its own dev noise, a small bias towards the tuned arm (docs/training-supervised.md,
"[choose] and the tuned arm's seed 0"); training it again at the same seed would repeat it, not remove the bias.
Every unit's stage config (with each arm's overrides and each [choose] value) and every dev and test task name
and its data (a folder, or an official copy `harness run` can read) are checked when the ablation opens, before
anything trains or is written; so are the texts the dev and test tasks share (refused unless
`eval.overlap_ok = "why"`) and those the training files share with them (refused unless
`eval.train_overlap_ok = "why"`): the report shows both.
An evaluation that leaves a task without a score (a failed task, a NaN score from a diverged arm) fails the
ablation with exit 1, not 2 (nothing the user gave was unusable): the other arms and seeds are still trained and
evaluated first, then every such evaluation is named with its tasks and why, and no report is written (its paired
CIs need every arm × seed on every task); the same command carries on once they are fixed. A [choose] dev
evaluation likewise, after every value ran: no arm trains on a choice made without every value's dev scores.
"""

from __future__ import annotations

import argparse
import fcntl
import importlib
import json
import pkgutil
import shutil
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from conan_model.fingerprint import files_fingerprint
from harness.ablate_config import check_folders, load_ablation, report_dir, stage_config_digests, work_dir
from harness.ablate_keys import (
    LATE_SETTINGS,
    LATE_TRAIN_KEYS,
    OPERATIONAL,
    changed_config,
    changed_inputs,
    changed_settings,
    describe_kernels,
    exported_config,
    fingerprint,
    input_hashes,
    stage_start,
    training_compute,
    training_hardware,
    unheld_scores,
)
from harness.ablate_overlap import dev_test_overlap, train_test_overlap, training_files
from harness.data import (
    discover_tasks,
)
from harness.env import data_root
from harness.errors import EXIT_TASK_FAILED, HarnessError, UsageError
from harness.pipeline import check_task_names, interrupted_note
from harness.runs import RAW_VIEW, atomic_write_json, has_score, no_score_reason, read_json
from harness.sysinfo import code_version

STATE = "ablate.json"
LOCK_NAME = ".ablate.lock"
# what the ablation sets on each unit after every override (Ablation._resolve)
PER_UNIT = {"seed": "the unit's seed (from `seeds`)", "output_dir": "the unit's folder under `out`",
            "init": "the model the stages before it export"}
PROJECT_PACKAGES = ("harness", "conan_model", "train", "reporting")  # the code an ablation runs
# `init_files` of a unit recorded before they were, whose starting model was then trained again: never its files
RETRAINED = "trained again after this unit started from it"


class EvaluationFailed(HarnessError):
    """Evaluations that left a task without a score: the run failed (exit 1, as `harness run`'s), the input was
    not unusable (before stop 65: exit 2 at the first one, the arms after it neither trained nor evaluated)."""

    exit_code = EXIT_TASK_FAILED


def failures(failed: list[str], outcome: str, why: str) -> EvaluationFailed:
    """One error for every evaluation that failed, once the others ran: ``outcome`` (what is not made) and ``why``."""
    return EvaluationFailed(f"{outcome}: {len(failed)} evaluation(s) left tasks without a score, and {why}: "
                            + " | ".join(failed) + "; fix them and run the same command: finished units are skipped")


def unscored(run_json: Path, tasks: list[str]) -> str:
    """The tasks of an evaluation's run.json without a score, each with why (`no_score_reason`)."""
    record = read_json(run_json, {})
    entries = {t: (record.get("tasks") or {}).get(t) or {"status": "not evaluated"} for t in tasks}
    return "; ".join(f"{t}: {no_score_reason(e)}" for t, e in entries.items() if not has_score(e))


def hold_lock(out: Path, config_path: Path) -> TextIO:
    """An exclusive flock on `<out>/.ablate.lock`, refusing a second `harness ablate` of the same work folder: two
    (a requeued job beside the first) read ablate.json once each, trained every unit twice, rewrote a `final/`
    the other was evaluating and kept whichever record was written last (audit, stop 53)."""
    handle = open(out / LOCK_NAME, "a")  # noqa: SIM115 - open for the life of the process
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise UsageError(f"{config_path}: out {out} is in use: another `harness ablate` holds {out / LOCK_NAME}; "
                         "wait for it to finish, or set another out") from None  # fmt: skip
    return handle


def import_all_code() -> list[str]:
    """Import every module of PROJECT_PACKAGES now; returns the loaded project files written since this process
    started (empty: the code that runs is the checkout's code as it stands). An ablation runs for hours, often from
    a checkout someone commits to meanwhile; a module first imported later (the encoder at the first evaluation,
    the report's statistics at the end) was read from the newer files while every unit recorded the commit at the
    start (audit, stop 55: a commit landing mid-run moved a test Δ from +9.50 to +2.43 under one recorded sha).
    The harness's first import in this process, not the ablation's opening, bounds the check: the config checks
    import the training loop seconds before (review). Before stop 66 the bound was psutil's process start, which
    Linux dates from its boot time in whole seconds, off the wall clock by up to a second or two: files written
    just before the process started (a fresh clone, a save then a run) were refused as written since."""
    import harness

    for name in PROJECT_PACKAGES:
        package = importlib.import_module(name)
        for module in pkgutil.walk_packages(package.__path__, f"{name}."):
            if not module.name.endswith(".__main__"):
                importlib.import_module(module.name)
    started = harness.IMPORTED_AT
    files = {getattr(module, "__file__", None) for name, module in list(sys.modules.items())
             if name.partition(".")[0] in PROJECT_PACKAGES}  # fmt: skip
    return sorted(f for f in files if f and Path(f).is_file() and Path(f).stat().st_mtime > started)


def drop_checkpoints(unit_dir: Path) -> None:
    """A finished unit's resume checkpoints: its final model is all that evaluation and the next stage read, and
    at GPU scale each arm's optimizer state and second copy of the weights cost gigabytes (SmolLM2: ~1.6 GB)."""
    shutil.rmtree(unit_dir / "checkpoints", ignore_errors=True)


def choose_value(values: list[Any], dev_scores: list[dict[str, float]], dev_tasks: list[str]) -> Any:
    """The value whose mean main score over the dev tasks is highest (ties: the first listed).

    Takes dev scores only and refuses anything else: a test task here would let the test set pick a setting."""
    for scores in dev_scores:
        leaked = sorted(set(scores) - set(dev_tasks))
        if leaked:
            raise UsageError(f"choose: scores of non-dev task(s) {leaked} offered to a choice; only dev tasks may be")
        if set(scores) != set(dev_tasks):
            raise UsageError(f"choose: dev task(s) {sorted(set(dev_tasks) - set(scores))} have no score")
    means = [sum(s[t] for t in dev_tasks) / len(dev_tasks) for s in dev_scores]
    return values[max(range(len(values)), key=lambda i: (means[i], -i))]



class Ablation:
    """Runs the units of one config in order, recording each in <out>/ablate.json as it finishes."""

    def __init__(self, cfg: dict[str, Any], config_path: Path, measure_only: bool = False, lock: bool = False,
                 check_only: bool = False) -> None:  # fmt: skip
        """Check the config and open its work folder (``lock``: held against another process, as `harness ablate`
        holds it); ``measure_only``: check and measure the overlaps (``train_pairs``: every training set against
        every dev and test task), neither refuse nor write anything (benchmarks/bench_train_test_overlap.py);
        ``check_only``: every check `harness ablate` makes before training, writing nothing (`--check`)."""
        self.cfg, self.config_path = cfg, config_path
        ev = cfg["eval"]
        self.dev, self.test = list(ev["dev"]), list(ev["test"])
        self.data_dir = data_root(cfg.get("data_dir"))[0]
        if cfg.get("data_dir") and not self.data_dir.is_dir():  # else said under eval.dev (audit, stop 49)
            raise UsageError(f"{config_path}: data_dir: {self.data_dir} does not exist or is not a directory")
        for key, tasks in (("eval.dev", self.dev), ("eval.test", self.test)):
            check_task_names(config_path, key, self.data_dir, tasks)
        from harness.tasks import MISSING, mirror_identity, resolve  # imports mteb: only once an ablation runs

        local = discover_tasks(self.data_dir)
        # where `harness run` would find each task's data (harness.runner.plan_tasks): before stop 60 a known task
        # with no data here (no folder, no official copy offline) failed the first evaluation, after a unit trained
        missing = [(key, task) for key, tasks in (("eval.dev", self.dev), ("eval.test", self.test))
                   for task in (resolve(name, local) for name in tasks) if task.source == MISSING]  # fmt: skip
        if missing:
            raise UsageError(f"{config_path}: task(s) with no data to evaluate here: " + "; ".join(
                f"{key}: {task.name}: {task.reason}" for key, task in missing))  # fmt: skip
        # each task's files (and type's mirror layout), hashed once per process: None for a task without a folder
        self.task_files = {t: mirror_identity(local[t]) if t in local else None for t in self.dev + self.test}
        self.overlap = dev_test_overlap(local, self.dev, self.test)
        if self.overlap and not ev.get("overlap_ok"):
            shared = "; ".join(f"{o['dev']} and {o['test']}: {o['shared']} of the test task's {o['test_texts']} "
                               "texts" for o in self.overlap)  # fmt: skip
            raise UsageError(f"{config_path}: eval: dev and test tasks share texts ({shared}), so a choice on dev is "
                             "partly made on test items; choose other dev tasks, or say why it is acceptable in "
                             "eval.overlap_ok = \"...\" (the report shows the overlap and the reason)")  # fmt: skip
        self.out = work_dir(cfg)  # made only once the config is accepted
        if not measure_only:  # (a measure writes nothing)
            check_folders(cfg, config_path)
        self.train_sets: dict[str, set[Path]] = {}  # {folder name: files} every unit reads (check_stages)
        self.check_stages()
        self.train_pairs = train_test_overlap(local, self.train_sets, self.dev + self.test)
        self.train_overlap = [o for o in self.train_pairs if o["shared"]]
        if measure_only:
            return
        if self.train_overlap and not ev.get("train_overlap_ok"):
            shared = "; ".join(f"{o['train']} and {o['task']}: {o['shared']} of the task's {o['task_texts']} texts, "
                               f"{o['items_with_shared']} of its {o['task_items']} {o['items']}"
                               for o in self.train_overlap)  # fmt: skip
            raise UsageError(f"{config_path}: eval: training data and evaluation tasks share texts ({shared}), so "
                             "a trained arm's score on them is partly memory; train on other data, or say why it is "
                             "acceptable in eval.train_overlap_ok = \"...\" (the report shows the overlap and the "
                             "reason)")  # fmt: skip
        if check_only:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        self._lock = hold_lock(self.out, config_path) if lock else None  # held while this object lives
        self.state: dict[str, Any] = read_json(self.out / STATE, {"done": {}})
        changed = import_all_code()  # all of it, now: this process runs the code it imported by here
        if changed:  # written after the process started: which version of them was imported is not known
            raise UsageError(f"{config_path}: the code changed while the ablation opened ({', '.join(changed[:3])}"
                             f"{' …' if len(changed) > 3 else ''} written since this process started); run the "
                             "same command again")  # fmt: skip
        self.code = code_version()  # once: the files imported are the checkout's as it stands
        self.touched: set[str] = set()  # the units this config's run walks: the report counts these alone

    def _record(self, unit: str, value: dict[str, Any], code: str | None = None) -> None:
        """A finished unit, with the code version that produced it (a work folder resumed after a commit holds
        units of several; the report says so): this process's unless ``code`` names an earlier one."""
        self.state["done"][unit] = {"code": code or self.code, **value}
        atomic_write_json(self.out / STATE, self.state)

    def _started(self, unit: str, kernels: dict[str, str | None]) -> str | None:
        """The code version that began training ``unit``: this process's when no checkpoint of it exists, else the
        one recorded when it began, so a unit resumed after a commit is recorded as "first→last" (before stop 54
        as the resuming commit alone); None for one begun before this was recorded. ``kernels`` (precision and
        hardware) are recorded with it, and a checkpoint begun under others is refused: before stop 55 a unit
        killed after steps in bfloat16 and resumed with CONAN_CPU_BF16=0 was finished in float32 and recorded as
        float32 alone (audit)."""
        from train.checkpoint import checkpoint_dirs

        started = self.state.setdefault("started", {})
        if not checkpoint_dirs(self.out / unit):  # what `resume="latest"` would continue from
            started[unit] = {"code": self.code, **kernels}
            atomic_write_json(self.out / STATE, self.state)
        first = started.get(unit)
        if not isinstance(first, dict):  # a code version alone (stop 54) or nothing: the kernels are not known
            self._say(unit, "its checkpoint was begun before ablate recorded the precision and hardware a unit "
                            f"begins in: not checked; it is finished in {describe_kernels(kernels)}")  # fmt: skip
            return first
        then = {key: first.get(key) for key in kernels}
        if then != kernels:
            raise UsageError(f"{self.config_path}: {unit} began training in {describe_kernels(then)}, and its "
                             f"newest checkpoint would be finished in {describe_kernels(kernels)}: resume it where "
                             f"it began, or delete {self.out / unit} to train it again")  # fmt: skip
        return first.get("code")

    def _say(self, unit: str, message: str) -> None:
        print(f"[ablate] {unit}: {message}", flush=True)

    def train_chain(self, prefix: str, stages: list[dict[str, Any]], extra: list[str], seed: int | None,
                    init: str | None) -> str | None:  # fmt: skip
        """Train ``stages`` in order (extra overrides on the last one; seed None: the stage's own); returns the
        last final model, or ``init`` when there are no stages."""
        for i, stage in enumerate(stages):
            unit = f"{prefix}/stage{i}"
            self.touched.add(unit)
            module, stage_cfg = self._resolve(unit, stage, extra if i == len(stages) - 1 else [], seed, init)
            fp, done = fingerprint(stage_cfg, chained=bool(init)), self.state["done"].get(unit)
            if done and done["fingerprint"] != fp and self._same_under_older_keys(done, stage_cfg, bool(init)):
                done = {**done, "fingerprint": fp}  # the same config, keyed by an older set of left-out keys
                self._record(unit, done, code=done.get("code"))
            if done and done["fingerprint"] != fp:
                change = (changed_config(done["final"], stage_cfg, bool(init))  # a record from before stop 53:
                          or changed_config(done["final"], stage_cfg, bool(init), OPERATIONAL)  # its narrower set
                          or "the keys are not known")  # fmt: skip
                # renaming an arm trains its units anew and keeps the others' (before stop 67 unsaid: a fresh
                # `out` alone was advised, which trains every arm again; a user's walk)
                name = prefix.rsplit("/", 1)[-1].split("-choose")[0]  # seed0/<arm>[-choose<i>], not base, shared
                arm = name if prefix.startswith("seed") and prefix.count("/") == 1 and not prefix.endswith(
                    "/shared") and name in self.cfg["arms"] else None  # fmt: skip
                rename = (f"give arms.{arm} another name (its units train anew, the other arms' are kept), or "
                          if arm else "")  # fmt: skip
                raise UsageError(f"{self.config_path}: {unit} was trained with another config ({change}; "
                                 f"fingerprint {done['fingerprint']} != {fp}); {rename}use a fresh `out` folder")
            compute = training_compute(stage_cfg)
            if done and done.get("compute", compute) != compute:  # (units recorded before stop 53: not known)
                raise UsageError(f"{self.config_path}: {unit} trained in {done['compute']}, and a stage here trains "
                                 f"in {compute}: the ablation's seeds and arms would mix precisions (on a CPU, "
                                 "CONAN_CPU_BF16=0 or 1 picks float32 or bfloat16); or use a fresh `out` "
                                 "folder")  # fmt: skip
            if done and "init" in done and done["init"] != init:  # a [[base]]/[[shared]] stage added or removed
                raise UsageError(f"{self.config_path}: {unit} was trained from {done['init'] or 'its own init'}; the "
                                 f"stages before it now start it from {init or 'its own init'}: use a fresh `out` "
                                 "folder")  # fmt: skip
            kernels = {"compute": compute, "hardware": training_hardware(stage_cfg)}
            keyed = {"hardware": kernels["hardware"], **({"init_files": files_fingerprint(Path(init))} if init else {})}
            late = [key for key in keyed if done and key not in done]
            if late:  # recorded before stop 55: kept, rather than every unit trained again to rewrite a report
                self._say(unit, f"recorded before ablate keyed {' and '.join(LATE_TRAIN_KEYS[k] for k in late)}: "
                                "today's are taken as the ones it trained with and checked from now on")  # fmt: skip
                done = {**done, **{name: keyed[name] for name in late}}
                self._record(unit, done, code=done.get("code"))
            if done and done.get("hardware", keyed["hardware"]) != keyed["hardware"]:
                raise UsageError(f"{self.config_path}: {unit} trained on {describe_kernels(done)}, and a stage here "
                                 f"trains on {describe_kernels(kernels)}, whose kernels round weights otherwise: the "
                                 "ablation's seeds and arms would mix them; run it where it began, or use a fresh "
                                 "`out` folder")  # fmt: skip
            if done and done.get("init_files", keyed.get("init_files")) != keyed.get("init_files"):
                raise UsageError(f"{self.config_path}: {unit} was trained from other files of {init} (trained again "
                                 "since?): the units after it started from a model that is gone; use a fresh `out` "
                                 "folder")  # fmt: skip
            inputs = input_hashes(stage_cfg, chained=bool(init))
            if done and "inputs" not in done:  # recorded before inputs were hashed: check from now on
                self._say(unit, "recorded before ablate hashed its training data and init model: today's files "
                                "are taken as the ones it trained from and checked from now on")  # fmt: skip
                done = {**done, "inputs": inputs, "code": done.get("code")}  # its code stays unknown
                self._record(unit, done)
            if done and done.get("inputs") != inputs:
                raise UsageError(f"{self.config_path}: {unit} {changed_inputs(done['inputs'], inputs)}; every "
                                 f"unit of {self.out} may hold the old ones: use a fresh `out` folder")  # fmt: skip
            if done and Path(done["final"]).is_dir():
                self._say(unit, "done earlier, skipped")
                drop_checkpoints(self.out / unit)  # a kill between recording the unit and dropping them
                init = done["final"]
                continue
            key = {"fingerprint": fp, "inputs": inputs, "init": init, **kernels, **keyed}
            twin = None if done else self._twin(key)
            if twin is not None:  # e.g. the reference arm's first seed at the value [choose] picked
                self._say(unit, f"same config and starting model as {twin}: its model is reused")
                made = self.state["done"][twin]  # its code and packages trained the model (before stop 55: ours)
                self._record(unit, {"final": made["final"], **key, "config": stage["config"], "seconds": 0.0,
                                    "packages": made.get("packages"), "reused": twin, "code": made.get("code")})
                init = made["final"]
                continue
            from harness.embedder import kernel_packages  # (not at CLI start-up)
            from train.checkpoint import checkpoint_dirs

            resumes = " (resumes from its newest checkpoint)" if checkpoint_dirs(self.out / unit) else ""
            self._say(unit, f"training {stage['config']}{resumes}")  # (before stop 60 said of every unit)
            first = self._started(unit, kernels)
            start = time.perf_counter()
            final = module.run(stage_cfg, resume="latest")
            self.state["started"].pop(unit, None)
            for value in self.state["done"].values():  # recorded before their starting files were: they started
                if value.get("init") == str(final) and "init_files" not in value:  # from a model now gone (review)
                    value["init_files"] = RETRAINED
            self._record(unit, {"final": str(final), **key, "config": stage["config"], "packages": kernel_packages(),
                                "seconds": round(time.perf_counter() - start, 1)},
                         code=self.code if first == self.code else f"{first or 'not recorded'}→{self.code}")
            drop_checkpoints(self.out / unit)
            init = str(final)
        return init

    @staticmethod
    def _same_under_older_keys(done: dict[str, Any], stage_cfg: Any, chained: bool) -> bool:
        """A unit recorded under an older key whose config is this one: before stop 53 OPERATIONAL alone; stops
        53-54 every resume-safe key and no `learned_extras` (a weak stage's micro-batch rows). Its final model's
        train_config.json must then show nothing that now counts changed (a weak unit trained at other micro-batch
        rows is refused)."""
        older = (OPERATIONAL, OPERATIONAL | stage_cfg.resume_safe)
        return (any(done["fingerprint"] == fingerprint(stage_cfg, chained, keys) for keys in older)
                and not changed_config(done["final"], stage_cfg, chained))  # fmt: skip

    def _resolve(self, unit: str, stage: dict[str, Any], extra: list[str], seed: int | None, init: str | None,
                 where: str = "", table: str = "") -> tuple[Any, Any]:  # fmt: skip
        """(stage module, config) of one unit: the ablation's, the stage's and ``extra`` overrides, then the unit's
        seed, output_dir and starting model; a bad key or value is one line naming the file, ``where`` (the
        config key at fault, when known) and the unit; a stage config that is not there names the stage's table
        (``table``, as the config spells it: `stages[0]`, `arms.x.stages[1]`)."""
        from harness.pipeline import looked_up
        from train.cli import STAGES, resolve
        from train.errors import TrainError

        place = f"{where}: {unit}" if where else unit
        # set by the ablation after every override: before stop 53 a chained stage's own init was replaced without
        # a word, before stop 60 (a walk) an arm's or [choose]'s seed or output_dir (the report named a choice
        # that never happened). A top-level `set` may name the first stage's init (a [[base]] stage's seed: its own)
        ours = {"seed": seed, "output_dir": self.out / unit, "init": init}
        named = [(e, e.partition("=")[0].strip()) for e in [*stage.get("set", []), *extra]]
        named += [(e, k) for e in self.cfg.get("set", []) if (k := e.partition("=")[0].strip()) != "init"]
        own = [(entry, key) for entry, key in named if ours.get(key) is not None]
        if own:
            entry, key = own[0]
            chained = ", or put it on the first stage of the chain" if key == "init" else ""
            raise UsageError(f"{self.config_path}: {place} ({stage['config']}): set: {entry} would be replaced by "
                             f"{PER_UNIT[key]} ({ours[key]}), which the ablation sets on each unit after every "
                             f"override; drop it{chained}")  # fmt: skip
        sets = [*self.cfg.get("set", []), *stage.get("set", []), *extra]
        sets += [f"{key}={value}" for key, value in ours.items() if value is not None]
        try:
            return resolve(stage["config"], None, sets, "set")
        except TrainError as exc:  # the train CLI's one-line errors (config key, type, missing file)
            if table and stage["config"] not in STAGES and not Path(stage["config"]).exists():  # before, the
                # unit alone: which table's `config` was not said (a walk)
                raise UsageError(f"{self.config_path}: {table}.config ({place}): {exc}"
                                 f"{looked_up(stage['config'], 'an ablation')}") from exc  # fmt: skip
            raise UsageError(f"{self.config_path}: {place} ({stage['config']}): {exc}") from exc

    def check_stages(self) -> None:
        """Resolve every unit's stage config before anything trains (first seed; a chained stage starts from where
        its predecessor will export): the stage as configured, then with the arm's `set`, then with each [choose]
        value, so an error names the key that broke it. Before, a typo in the last arm's overrides, or in
        `choose.key`, surfaced only after every earlier unit had trained. Collects the training folders every
        unit reads (``self.train_sets``) for the train/test overlap check, checks `eval.dims` against the
        width each arm's model will have (before, at its first evaluation, after a unit had trained), and runs
        each stage's ``precheck`` (`freeze`, `init_layers`, rows against the batch) on the model config it
        starts from."""
        from conan_model.device import device_problem
        from harness.runner import truncation_dims
        from train import loop
        from train.errors import TrainError

        spec = self.cfg.get("choose")
        choices = [[f"{spec['key']}={json.dumps(v)}"] for v in spec["values"]] if spec else []
        dims = self.cfg["eval"].get("dims", [])
        # {arm: each unit its own chain trains, as the reuse of a finished model keys it (fingerprint, precision,
        # hardware)}; an arm with no stages of its own evaluates the shared chain's model: []
        trained: dict[str, list[tuple[str, str, str | None]]] = {arm: [] for arm in self.cfg["arms"]}
        for arm in self.cfg["arms"]:
            init, exported = None, None
            chains = self._chains(arm, self.cfg["seeds"][0], [])
            # each chain's list of stage tables, as the config spells it
            lists = ("base", "shared", f"arms.{arm}.stages" if "stages" in (self.cfg["arms"][arm] or {}) else "stages")
            for n, (prefix, stages, extra, seed) in enumerate(chains):
                for i, stage in enumerate(stages):
                    unit, layers = f"{prefix}/stage{i}", [("", [])]
                    evaluated = i == len(stages) - 1 and n == len(chains) - 1
                    if evaluated:  # where the arm's and the choice's apply
                        layers += [(f"arms.{arm}.set", extra)] if extra else []
                        layers += [("choose", [*extra, *choice]) for choice in choices]
                    for where, sets in layers:
                        module, stage_cfg = self._resolve(unit, stage, sets, seed, init, where, f"{lists[n]}[{i}]")
                        place = f"{self.config_path}: {f'{where}: ' if where else ''}{unit} ({stage['config']})"
                        problem = device_problem(stage_cfg.device) if stage_cfg.device else None
                        if problem:  # before stop 53: a traceback once the earlier arms had trained
                            raise UsageError(f"{place}: device {stage_cfg.device!r}: {problem}")
                        # the evaluated stage trains under its last kind of layer: each [choose] value, else the
                        # arm's set, else as written
                        if n == len(chains) - 1 and (not evaluated or where == layers[-1][0]):
                            trained[arm].append((fingerprint(stage_cfg, chained=bool(init)),
                                                 training_compute(stage_cfg), training_hardware(stage_cfg)))
                        reads = training_files(stage_cfg, self.data_dir)
                        missing = sorted(str(p) for files in reads.values() for p in files if not p.is_file())
                        if missing:  # a training set named in an arm's `set` that is not there: the key named
                            raise UsageError(f"{place}: no training data file {missing[0]}")
                        for name, files in reads.items():
                            self.train_sets.setdefault(name, set()).update(files)
                        start = stage_start(stage_cfg, exported)
                        # the evaluated stage as written trains only when no arm `set` or [choose] value overrides it
                        trains = not (evaluated and not where and len(layers) > 1)
                        try:  # before stop 54 a bad `freeze` or a batch larger than the data failed in training
                            if start is not None and trains:
                                getattr(module, "precheck", loop.precheck)(stage_cfg, start)
                        except TrainError as exc:
                            raise UsageError(f"{place}: {exc}") from exc
                        if evaluated and dims and start is not None:
                            truncation_dims(dims, start.embed_dim, f"{self.config_path}: eval.dims ({unit}"
                                            f"{', ' + where if where else ''})", "strict")  # fmt: skip
                        if not where:  # the stage as configured: what the next stage starts from
                            following = exported_config(start, stage_cfg)
                    init, exported = str(self.out / unit / "final"), following
        self._refuse_reference_twins(trained)

    def _refuse_reference_twins(self, trained: dict[str, list[tuple[str, str, str | None]]]) -> None:
        """An arm whose units resolve to the reference's configs, precision and hardware (whatever [choose] picks)
        would reuse the reference's models and read Δ 0 by construction: before, said in the report after every
        unit had trained (stop 60, a walk), now refused before anything trains. So are two other arms that resolve
        alike: their rows would read as two results agreeing (before stop 67 trained, a user's walk)."""
        ref = self.cfg["reference"]
        twins = [arm for arm in trained if arm != ref and trained[arm] == trained[ref]]
        others = [arm for arm in trained if arm != ref and arm not in twins]
        for i, arm in enumerate(others):
            if same := [other for other in others[:i] if trained[other] == trained[arm]]:
                raise UsageError(f"{self.config_path}: arms.{arm}: its stages resolve to the same configs as arm "
                                 f"{same[0]!r} (the keys that decide the weights, precision and hardware): it would "
                                 f"reuse {same[0]}'s models, and the two rows would read as two results agreeing; "
                                 f"give it the setting it should test or drop it")  # fmt: skip
        if twins:
            every = " for every choose.values entry" if self.cfg.get("choose") else ""
            named = ", ".join(f"arms.{arm}" for arm in twins)
            raise UsageError(f"{self.config_path}: {named}: {'its' if len(twins) == 1 else 'their'} stages resolve "
                             f"to the same configs as the reference arm {ref!r}{every} (the keys that decide the "
                             f"weights, precision and hardware): {'it' if len(twins) == 1 else 'each'} would reuse "
                             f"{ref}'s models and read Δ 0 by construction; give it the setting it should test "
                             f"(arms.{twins[0]}.set = [\"key=value\"]) or drop it")  # fmt: skip

    def _chains(self, arm: str, seed: int, extra: list[str], tag: str = ""
                ) -> list[tuple[str, list[dict[str, Any]], list[str], int | None]]:  # fmt: skip
        """The chains one arm × seed trains, in order, as (unit prefix, stages, overrides of the last stage, seed):
        the base stages (once, their own seed), the shared stages of this seed, the arm's stages."""
        spec = self.cfg["arms"][arm] or {}
        return [("base", self.cfg.get("base", []), [], None),
                (f"seed{seed}/shared", self.cfg.get("shared", []), [], seed),
                (f"seed{seed}/{arm}{tag}", spec.get("stages", self.cfg["stages"]), [*spec.get("set", []), *extra],
                 seed)]  # fmt: skip

    def _twin(self, key: dict[str, Any]) -> str | None:
        """A finished unit recorded under this key (fingerprint, input contents, starting model by path and, since
        stop 55, by its files, precision and hardware): training this one would repeat it.

        The starting model is compared apart because a chained stage's fingerprint leaves ``init`` out; units
        recorded before ``init`` or their inputs were recorded are never twins, nor are units recorded before the
        starting model's files were (audit, stop 55: a `[[shared]]` stage trained again under the same path left
        an added arm reusing a model trained from the old one).
        """
        for unit, value in self.state["done"].items():
            recorded = {name: value.get(name, key[name] if name == "compute" else None) for name in key}
            if "init" in value and recorded == key and Path(value["final"]).is_dir():
                return unit
        return None

    def train_arm(self, arm: str, seed: int, extra: list[str] | None = None, tag: str = "") -> str:
        """Base stages (once), shared stages of this seed (once), then the arm's stages; returns the arm's final
        model."""
        init = None
        for prefix, stages, overrides, unit_seed in self._chains(arm, seed, extra or [], tag):
            init = self.train_chain(prefix, stages, overrides, unit_seed, init)
        assert init is not None  # load_ablation requires at least one stage
        return init

    def evaluate(self, model: str, name: str, tasks: list[str]) -> dict[str, float]:
        """Harness evaluation of one model on ``tasks`` (at full width and every ``eval.dims``); returns {task: main
        score} (0–1 scale)."""
        from harness.embedder import ModelOptions
        from harness.runner import RunConfig, run

        ev = self.cfg["eval"]
        dims = ev.get("dims", [])
        run_cfg = RunConfig(model=f"conan:{model}", data_dir=self.data_dir, out=self.out / "evals", tasks=tasks,
                            run_name=name, batch_size=ev.get("batch_size", 64), use_cache=False, dims=dims,
                            dim_predictions=bool(dims),
                            options=ModelOptions(device=ev.get("device"), max_length=ev.get("max_length")),
                            show_progress=False, dims_option=f"{self.config_path}: eval.dims",
                            dims_policy="strict", redo_hint="", replace_stale=True,
                            replaced_by="the retrained model")  # fmt: skip
        unit = f"eval/{name}"
        self.touched.add(unit)
        done = self.state["done"].get(unit)
        settings = self.eval_settings(tasks, model)
        recorded = (done or {}).get("settings") or {}
        late = {key: settings[key] for key in LATE_SETTINGS if key in settings and key not in recorded}
        if recorded and late and {**recorded, **late} == settings:
            # recorded before stop 54 keyed them; the kernel packages of the same install are checked: kept, as
            # `inputs` recorded late are, rather than every evaluation redone
            self._say(unit, f"recorded before ablate keyed {' and '.join(LATE_SETTINGS[k] for k in late)}: today's "
                            "are taken as the ones it was evaluated with")  # fmt: skip
            done = {**done, "settings": settings}
            self._record(unit, done, code=done.get("code"))
        covered = done and set(tasks) <= set(done["scores"]) and set(dims) <= set(done.get("dims", []))
        if covered and done["model"] == model and done.get("settings") == settings:
            # a task `ok` at another score than recorded, which `harness run` would keep as done: redone alone (before
            # stop 66 every task of the evaluation was, under overwrite)
            lost, run_cfg.redo = unheld_scores(run_cfg.out / name, {t: done["scores"][t] for t in tasks}, dims)
            if not lost:
                self._say(unit, "done earlier, skipped")
                return {t: done["scores"][t] for t in tasks}
            # the report reads the run directory: an evaluation stopped or failed there since (other settings,
            # then reverted; a task file broken for a while), a deleted folder or per-item file, or an edited record
            self._say(unit, f"recorded, but its run directory no longer holds it ({'; '.join(lost)}): evaluating "
                            "again")  # fmt: skip
        if covered and done["model"] == model and done.get("settings") != settings:  # `harness run` redoes
            # exactly the tasks whose settings changed
            change = changed_settings(done.get("settings"), settings)
            self._say(unit, f"recorded under other evaluation settings ({change}): evaluating again")
        # other files in the folder (retrained, or recorded before stop 47 keyed them): `harness run` would refuse
        # the run directory, whose results are of the old weights; they are this ablation's own, redone whole
        run_cfg.overwrite = bool(done) and (done.get("settings") or {}).get("model_files") != settings["model_files"]
        run_json, efficiency = run_cfg.out / name / "run.json", run_cfg.out / name / "efficiency.json"
        # run.json's start (to the second) and efficiency.json's timings change whenever `harness run` evaluates
        before = (read_json(run_json, {}).get("started"), efficiency.read_bytes() if efficiency.is_file() else None)
        start = time.perf_counter()
        if run(run_cfg) != 0:
            raise EvaluationFailed(f"evaluation {name} ({run_json.parent}): {unscored(run_json, tasks)}")
        record = json.loads(run_json.read_text(encoding="utf-8"))
        scores = {t: float(record["tasks"][t]["main_score"]) for t in tasks}
        value = {"model": model, "run_dir": str(run_cfg.out / name), "scores": scores, "dims": dims,
                 "settings": settings, "seconds": round(time.perf_counter() - start, 1)}  # fmt: skip
        after = (record.get("started"), efficiency.read_bytes() if efficiency.is_file() else None)
        if done and before[0] is not None and after == before:
            # `harness run` found every task done under these settings and kept run.json's header: the scores are
            # the earlier evaluation's, and so are its cost and code (a re-record cost ~10 s at today's commit)
            value["seconds"] = done.get("seconds")
            self._record(unit, value, code=done.get("code"))
        else:
            self._record(unit, value)
        return scores

    def eval_settings(self, tasks: list[str], model: str | None = None) -> dict[str, Any]:
        """What an evaluation's scores depend on: the model folder's files (``model``), [eval]'s max_length, the
        device and dtype it resolves to here, how dims are viewed (with dims: the raw prefix since stop 35,
        renormalised before), and each task's files. A recorded evaluation is reused only under equal settings;
        `batch_size` and `dims` are not here (the first moves no score, the second is checked by coverage). The
        versions of the packages that compute the vectors too, as `harness run`'s identity (since stop 46): an
        upgrade evaluates again. Before stop 47 (audit) the model was its folder's path and the device [eval]'s
        value (unset: None everywhere), so a resume on a GPU kept the CPU's float32 scores of the arms done, and a
        retrained unit's scores were kept from the old weights at the same path. Since stop 54 (audit, review) the
        versions of mteb and of the packages its scorers run on (`scoring`) and the hardware's model (`hardware`),
        as `harness run`'s identity."""
        from harness import sysinfo
        from harness.embedder import ModelOptions, kernel_packages
        from harness.models import resolve_options

        ev = self.cfg["eval"]
        view = {"dim_view": RAW_VIEW} if ev.get("dims") else {}
        opts, _ = resolve_options(f"conan:{model or '.'}", ModelOptions(device=ev.get("device")))
        weights = {"model_files": files_fingerprint(Path(model))} if model else {}
        # the hardware whose kernels round the vectors, as `harness run`'s identity keys it (since stop 54, review)
        hardware = sysinfo.kernel_hardware(str(opts.device), opts.dtype)
        scoring = {"mteb": sysinfo.package_versions()["mteb"], **sysinfo.scoring_packages()}
        return {"max_length": ev.get("max_length"), "device": opts.device, "dtype": opts.dtype, **view, **weights,
                "packages": kernel_packages(), "scoring": scoring, **({"hardware": hardware} if hardware else {}),
                "data": {t: self.task_files[t] for t in sorted(tasks)}}  # fmt: skip

    def choose(self) -> list[str]:
        """Tune [choose].key on the dev tasks (first seed); returns the override every arm then gets."""
        spec = self.cfg.get("choose")
        if not spec:
            return []
        arm, seed = spec.get("arm", self.cfg["reference"]), self.cfg["seeds"][0]
        dev_scores, failed = [], []
        for i, value in enumerate(spec["values"]):
            setting = f"{spec['key']}={json.dumps(value)}"
            final = self.train_arm(arm, seed, [setting], tag=f"-choose{i}")
            try:  # every value still trains and evaluates (review, stop 65: the first failure stopped them)
                dev_scores.append(self.evaluate(final, f"choose{i}-{arm}-seed{seed}", self.dev))  # dev tasks only
            except EvaluationFailed as exc:
                self._say(f"eval/choose{i}-{arm}-seed{seed}", f"failed: {exc}")
                failed.append(str(exc))
        if failed:
            raise failures(failed, f"no choice of {spec['key']}", "the choice compares every value's dev scores")
        chosen = choose_value(spec["values"], dev_scores, self.dev)
        self.state["chosen"] = {"key": spec["key"], "value": chosen, "arm": arm, "seed": seed,
                                "values": spec["values"], "dev_scores": dev_scores}  # fmt: skip
        atomic_write_json(self.out / STATE, self.state)
        self._say("choose", f"{spec['key']} = {chosen} (mean dev score; test tasks not evaluated)")
        return [f"{spec['key']}={json.dumps(chosen)}"]

    def run(self) -> Path:
        from reporting.ablation import write_report

        if len(self.cfg["arms"]) == 1:  # a seed-spread measure; before stop 61 an empty Δ table said nothing
            self._say("arms", f"only the reference arm {self.cfg['reference']}: the report gives its scores over "
                              "seeds and compares nothing")  # fmt: skip
        extra = self.choose()
        runs: dict[str, dict[int, dict[str, str]]] = {}
        failed: list[str] = []
        for arm in self.cfg["arms"]:
            for seed in self.cfg["seeds"]:
                final = self.train_arm(arm, seed, extra)
                try:
                    self.evaluate(final, f"{arm}-seed{seed}", self.dev + self.test)
                except EvaluationFailed as exc:  # the other units still train and evaluate (an overnight job)
                    self._say(f"eval/{arm}-seed{seed}", f"failed: {exc}")
                    failed.append(str(exc))
                runs.setdefault(arm, {})[seed] = {"final": final, "eval": str(self.out / "evals" / f"{arm}-seed{seed}")}
        if failed:
            raise failures(failed, "no report", "each Δ pairs every arm × seed on every task")
        folder = report_dir(self.cfg)
        # units of seeds, arms or stages dropped from the config since stay in ablate.json (a rerun may want them)
        # but not in the report's minutes and code versions (before stop 53 they were counted there)
        walked = {**self.state, "done": {u: v for u, v in self.state["done"].items() if u in self.touched}}
        report = write_report(self.cfg, self.config_path, walked, runs, self.dev, self.test, folder, self.overlap,
                              self.train_overlap, work=self.out, stage_digests=stage_config_digests(self.cfg),
                              unchecked=[t for t, files in self.task_files.items() if files is None])  # fmt: skip
        for arm in report["same_as_reference"]:
            self._say(f"arms.{arm}", f"trained the reference's models (its settings equal {self.cfg['reference']}'s"
                                     "): its Δ is 0 by construction; give it the setting it should test")  # fmt: skip
        self._say("done", f"report {folder / 'report.md'}")
        return folder


def run_ablation(path: Path, args: argparse.Namespace | None = None) -> int:
    """The whole ablation; ``args``' interrupt note (what the CLI says on Ctrl-C/SIGTERM) gets the config's out."""
    from harness.distributed import refuse_torchrun
    from train.errors import TrainError

    refuse_torchrun("ablate", "ablate.json, every unit's model and evaluation, and the report")
    cfg = load_ablation(path)
    if args is not None:
        args.interrupted = interrupted_note(work_dir(cfg), STATE, "units")  # before stop 60 "<out>/ablate.json"
    try:
        Ablation(cfg, path, lock=True).run()
    except TrainError as exc:
        raise UsageError(f"{path}: train stage: {exc}") from exc
    return 0


def check_ablation_config(path: Path) -> int:
    """`--check`: every check the ablation makes before training (keys, tasks and their data, dev/test and
    training/test overlap, each unit's stage config and prechecks, twin arms), then what it would train; nothing is
    trained or written. Before stop 67 only the real command ran them, training at once if they passed (a walk:
    three tries of about 50 s to find disjoint dev and test tasks)."""
    from train.errors import TrainError

    cfg = load_ablation(path)
    try:
        Ablation(cfg, path, check_only=True)
    except TrainError as exc:
        raise UsageError(f"{path}: train stage: {exc}") from exc
    arms, seeds, ev = list(cfg["arms"]), cfg["seeds"], cfg["eval"]
    print(f"{path}: the config passes every check made before training: {len(arms)} arm(s) ({', '.join(arms)}; "
          f"reference {cfg['reference']}) × {len(seeds)} seed(s) {seeds}; dev {', '.join(ev['dev'])}; test "
          f"{', '.join(ev['test'])}; out {work_dir(cfg)}. Nothing was trained or written; units already recorded "
          "there are compared with this config when the ablation runs.")  # fmt: skip
    return 0


def _ablate_or_plan(args: argparse.Namespace) -> int:
    if args.check and args.plan:
        raise UsageError("--check and --plan: give one (--check checks a config, --plan reads a finished report)")
    if not args.plan:
        given = [f"--{k}" for k in ("arm", "task", "delta", "power") if getattr(args, k) is not None]
        if given:
            raise UsageError(f"{', '.join(given)}: only with --plan")
        if args.config.suffix == ".json":
            raise UsageError(f"{args.config}: a report, not an ablation config; add --plan to plan a replication")
        return check_ablation_config(args.config) if args.check else run_ablation(args.config, args)
    from reporting.power import run_plan

    if args.config.suffix == ".json":
        source, expected = args.config, None
    else:
        from reporting.ablation import config_identity

        cfg = load_ablation(args.config)
        source = report_dir(cfg) / "report.json"
        expected = {"seeds": cfg["seeds"], "reference": cfg["reference"], "arms": list(cfg["arms"]),
                    "test": cfg["eval"]["test"], **config_identity(cfg, stage_config_digests(cfg))}  # fmt: skip
    return run_plan(args.config, source, args.arm, args.task, args.delta,
                    0.8 if args.power is None else args.power, expected)  # fmt: skip


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("ablate", help="train arms × seeds, evaluate, bootstrap CIs against a reference",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog="exit status: 0 the report was written; 1 an evaluation left a task without "
                                   "a score (every other unit still ran, or, for a [choose] value, every other "
                                   "value; no report); 2 unusable input (the config, "
                                   "its data, a unit recorded under other settings); 130 interrupted (Ctrl-C), 143 "
                                   "terminated (SIGTERM): finished units are kept and the same command carries "
                                   "on")  # fmt: skip
    parser.add_argument("config", type=Path, help="ablation TOML (see configs/ablations/); with --plan also its "
                        "report.json")  # fmt: skip
    parser.add_argument("--check", action="store_true", help="run every check made before training (keys, tasks, "
                        "overlaps, each unit's stage config) and exit, training and writing nothing")  # fmt: skip
    plan = parser.add_argument_group("--plan: the seeds a replication needs, from the finished report (trains nothing)")
    plan.add_argument("--plan", action="store_true", help="print the projected CI half-width and power per number of "
                      "seeds (reporting/power.py) instead of running")  # fmt: skip
    plan.add_argument("--arm", help="only this arm (default: every arm compared with the reference)")
    plan.add_argument("--task", help="the test row to plan for (default: test mean)")
    plan.add_argument("--delta", type=float, help="plan for this true Δ, in points ×100, instead of the observed Δ "
                      "and half of it")  # fmt: skip
    plan.add_argument("--power", type=float, help="target power for 'seeds needed' (default 0.8)")
    parser.set_defaults(func=_ablate_or_plan, interrupted=interrupted_note(None, STATE, "units"))

