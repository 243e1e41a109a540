"""`harness pipeline CONFIG`: train stages → evaluate checkpoints (and baselines) → leaderboard → efficiency report.

Every step is resumable: a finished step is recorded in `<out>/pipeline.json` and skipped on a rerun; a training
stage interrupted half-way continues from its newest checkpoint (`--resume latest` semantics); an evaluation
skips the tasks its run directory already finished. A stage is recorded by its output_dir (since stop 64: before,
by its position, so dropping a stage refused the next one) under a key: the fingerprint of its
resolved config (TOML contents + `set`, train's config loader), its output_dir, the contents (sha256 of the bytes,
not the path) of its `init` (a folder, a gguf: file, a prepared base), of every training data file it reads and
of a local tokenizer file or pool-scorer model, and the previous stage's key.
A stage whose key changed trains again from scratch (its old output_dir is moved
aside to `<output_dir>.replaced` and deleted once the new model is exported; it is never resumed into; a change
reverted while the new config's training was interrupted puts the model kept aside back, untrained: before stop 67
it was trained again and the kept one deleted), and so does every later stage; an evaluation whose checkpoint
changed replaces its old results, and a rerun after an interruption keeps the tasks it had finished for the new
checkpoint (it replaces only while run.json still holds
the old one); a baseline given as a local folder (st:/hf:/conan:) is keyed by its files the same way (since
stop 47: before, by its spec, so replaced files stopped the pipeline at `harness run`'s refusal; a gguf: file is
refused when the config loads, as by `harness run`: import it first with `harness models import`). Each model is
evaluated into `<out>/evals/<spec, readable>-<hash of the spec>`, or `<out>/evals/<spec>` for a spec that reads as
it is (`minilm`; before stop 47 two specs differing in `/` and `_` shared one folder), and the leaderboard and
report cover the tasks [eval] names (its suite, narrowed by its `tasks`) only: a run folder keeps the tasks of an
earlier, longer list. (The new folder names mean a pipeline from
before stop 47 evaluates every model once more, into new folders; the old `evals/*` folders can be deleted.)
An `out` that is a file or cannot be made (below a file; before stop 67 a NotADirectoryError traceback) is refused.
An output_dir this pipeline did not train is refused (an empty one is trained into), and so is one another process
trains in now (another pipeline sharing it: train.loop.output_dir_lock), and a finished stage's export (`final/`)
whose files changed since it was exported. While a model the leaderboard and report show is being replaced, both
carry an "Out of date" banner until the pipeline writes them anew. Every table's keys and value types are checked (a
typo or a string for a list is an error), and so, when the config loads and before any stage trains, is every
stage's config with its `set` (its `init` must exist or be an earlier stage's export, `<output_dir>/final`, its
training data files must exist and hold a row, and no two stages share an output_dir), every [eval] checkpoint (the
same rule), every task or suite name and every MRL dim.
Exit status 1 when a model's evaluation had a task that failed (the other models are still evaluated, and the
leaderboard and report mark it), 2 for a refused config.
Config (TOML), with paths relative to the working directory:

    out = "runs/pipeline"
    [[train]]                                   # zero or more stages, run in order
    config = "configs/pretrain.toml"
    set = ["steps=200", "output_dir='runs/pipeline/pretrain'"]
    [[train]]
    config = "configs/weak.toml"
    set = ["steps=200", "output_dir='runs/pipeline/weak'", "init='runs/pipeline/pretrain/final'"]
    [eval]
    tasks = ["STSBenchmark", "STS16"]           # or suite = "local-en"
    data_dir = "../shared/data"                 # default: $HARNESS_DATA, else the embedded sample
    checkpoints = ["runs/pipeline/weak/final"]  # conan checkpoints; default: every train stage's final export
    baselines = ["minilm"]                      # any harness model specs
    dims = ["64", "128", "full"]                # optional MRL sweep
    device = "cuda"                             # optional: cpu, cuda[:N], npu[:N], mps, auto (default: the best found)
    [leaderboard]
    published = true                            # add the shipped published-score snapshot
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from pathlib import Path
from typing import Any

from conan_model.atomic import folder_problem, fsync_dir
from harness.errors import UsageError, did_you_mean
from harness.runs import RUN_JSON, atomic_write_json, read_json, read_record

STATE = "pipeline.json"
DEFAULT_OUT = "runs/pipeline"  # the work folder when the config names no `out`
# The keys each table accepts: anything else is a typo that would otherwise be dropped silently.
KEYS = {
    "top level": {"out", "train", "eval", "leaderboard"},
    "[[train]]": {"config", "set"},
    "[eval]": {"tasks", "suite", "data_dir", "checkpoints", "baselines", "dims", "device"},
    "[leaderboard]": {"published"},
}  # fmt: skip


def _check_keys(path: Path, table: str, values: Any) -> None:
    """Refuse a table that is not one, or an unknown key in it, naming the file, the table and a close key."""
    if not isinstance(values, dict):
        raise UsageError(f"{path}: {table} must be a table, got {values!r}")
    unknown = sorted(set(values) - KEYS[table])
    if unknown:
        hint = did_you_mean(unknown[0], KEYS[table])
        raise UsageError(f"{path}: {table}: unknown key(s) {unknown}{hint} (expected {', '.join(sorted(KEYS[table]))})")


def load_pipeline(path: Path) -> dict[str, Any]:
    """Read and check the config; every error names the file, the table and the key (exit status 2)."""
    from train.cli import read_toml

    cfg = read_toml(path, "pipeline", UsageError)
    _check_keys(path, "top level", cfg)
    out = cfg.get("out", DEFAULT_OUT)
    if not isinstance(out, str) or not out:  # before stop 59: a TypeError traceback once the pipeline made its folder
        raise UsageError(f"{path}: out must be a folder path (a string), got {out!r}")
    if Path(out).exists() and not Path(out).is_dir():  # before stop 64: a FileExistsError traceback
        raise UsageError(f"{path}: out = {out!r} is a file; give a folder")
    if problem := folder_problem(Path(out)):  # below a file, or read-only: before stop 67 a NotADirectoryError
        raise UsageError(f"{path}: out = {out!r} {problem}; give a folder")  # traceback (a walk)
    if (Path(out) / RUN_JSON).exists():  # before stop 64 (a user's walk) its evals/, leaderboard.md and report/ went in
        raise UsageError(f"{path}: out = {out!r} is a `harness run` directory (it holds {RUN_JSON}); give the "
                         "pipeline a folder of its own")  # fmt: skip
    stages = cfg.get("train", [])
    if not isinstance(stages, list):
        raise UsageError(f"{path}: `train` must be an array of tables ([[train]]), got {stages!r}")
    for i, stage in enumerate(stages):
        _check_keys(path, "[[train]]", stage)
        if not isinstance(stage.get("config"), str):
            raise UsageError(f"{path}: [[train]] #{i + 1}: `config` (a stage TOML path) is required")
        sets = stage.get("set", [])
        if not isinstance(sets, list) or not all(isinstance(item, str) for item in sets):
            raise UsageError(f'{path}: [[train]] #{i + 1}: `set` must be a list of "key=value" strings, got {sets!r}')
    _check_keys(path, "[eval]", cfg.get("eval", {}))
    _check_keys(path, "[leaderboard]", cfg.get("leaderboard", {}))
    evaluation = cfg.get("eval")
    if not evaluation or not (evaluation.get("suite") or evaluation.get("tasks")):
        raise UsageError(f"{path}: [eval] needs `suite` or `tasks`")
    for key in ("tasks", "checkpoints", "baselines"):
        checked_list(path, f"[eval] {key}", evaluation.get(key, []), str)
    checked_list(path, "[eval] dims", evaluation.get("dims", []), (int, str))
    for key in ("suite", "data_dir", "device"):
        if not isinstance(evaluation.get(key, ""), str):
            raise UsageError(f"{path}: [eval] {key} must be a string, got {evaluation[key]!r}")
    if evaluation.get("device") == "auto":  # what leaving it out means, as `harness run --device auto`
        del evaluation["device"]
    if not isinstance(cfg.get("leaderboard", {}).get("published", False), bool):
        raise UsageError(f"{path}: [leaderboard] published must be true or false")
    _check_before_training(path, cfg)
    return cfg


def _check_before_training(path: Path, cfg: dict[str, Any]) -> None:
    """What the steps after training would refuse, refused now: every stage's resolved config, the task or suite
    names and the MRL dims (before: a typo surfaced only once every training stage had run). Paths a stage checks
    at load (`tokenizer`) must exist now; an earlier stage's model and tokenizer come through `init`, which must
    exist now or be the export of a stage before it, as every [eval] checkpoint must (since stop 59)."""
    from conan_model.device import device_problem
    from harness.ablate_keys import exported_config, stage_start
    from harness.checks import parse_dims
    from harness.env import data_root
    from harness.models import check_spec
    from train import loop
    from train.cli import resolve
    from train.errors import TrainError

    exports: dict[Path, int] = {}  # each stage's <output_dir>/final, resolved → its stage number
    exported: dict[Path, Any] = {}  # each stage's <output_dir>/final, resolved → the model config it will export
    for i, stage in enumerate(cfg.get("train", [])):
        where = f"{path}: [[train]] #{i + 1} ({stage['config']})"
        try:
            module, stage_cfg = resolve(stage["config"], None, list(stage.get("set", [])), "set")
        except TrainError as exc:
            raise UsageError(f"{where}: {exc}{looked_up(stage['config'])}") from exc
        final = Path(stage_cfg.output_dir, "final").resolve()
        if final in exports:  # before stop 59: found after the first had trained, as "not trained by this pipeline"
            raise UsageError(f"{where}: output_dir {stage_cfg.output_dir} is also [[train]] #{exports[final]}'s; "
                             "give each stage its own")  # fmt: skip
        if stage_cfg.init is not None and (problem := _missing_model(stage_cfg.init, exports)):
            raise UsageError(f"{where}: init: {problem}")
        if problem := _missing_data(stage_cfg):  # before: found once the stages before it had trained (stop 64)
            raise UsageError(f"{where}: {problem}")
        # the stage's own checks on the model it starts from and on every row of its data, as `harness ablate`
        # runs them (before stop 65 a bad row of a later stage's file was found once the stages before it trained)
        chained = exported.get(_init_path(stage_cfg.init)) if stage_cfg.init else None
        start = stage_start(stage_cfg, chained)
        try:
            if start is not None:
                getattr(module, "precheck", loop.precheck)(stage_cfg, start)
        except TrainError as exc:
            raise UsageError(f"{where}: {exc}") from exc
        exports[final], exported[final] = i + 1, exported_config(start, stage_cfg)
    evaluation = cfg["eval"]
    for checkpoint in evaluation.get("checkpoints", []):  # before stop 59: refused once every stage had trained
        if Path(checkpoint).resolve() not in exports:
            try:
                check_spec(f"conan:{checkpoint}")  # what the evaluation loads it as
            except UsageError as exc:  # said of `--model conan:<c>`, an option the user never typed
                detail = str(exc).removeprefix(f"--model conan:{checkpoint}: ")
                raise UsageError(f"{path}: [eval] checkpoints: {checkpoint!r}: {detail}, nor the export "
                                 "(<output_dir>/final) of a [[train]] stage") from None  # fmt: skip
    if not evaluation.get("checkpoints", exports) and not evaluation.get("baselines"):
        raise UsageError(f"{path}: [eval]: nothing to evaluate: no [[train]] stage (or `checkpoints = []`) and no "
                         "`baselines`")  # before stop 59: leaderboard's "give run directories and/or --published"
    data_dir = data_root(evaluation.get("data_dir"))[0]
    if evaluation.get("data_dir") and not data_dir.is_dir():  # before stop 49 (audit): said under [eval] tasks
        raise UsageError(f"{path}: [eval] data_dir: {data_dir} does not exist or is not a directory")
    if evaluation.get("suite"):
        check_task_names(path, "[eval] suite", data_dir, None, evaluation["suite"])
    if evaluation.get("tasks"):
        check_task_names(path, "[eval] tasks", data_dir, evaluation["tasks"], evaluation.get("suite"))
    parse_dims([str(value) for value in evaluation.get("dims", [])], f"{path}: [eval] dims")
    for spec in evaluation.get("baselines", []):  # before: refused after the stages had trained
        try:
            check_spec(spec)
        except UsageError as exc:
            raise UsageError(f"{path}: [eval] baselines: {exc}") from None
    if evaluation.get("device") is not None and (problem := device_problem(str(evaluation["device"]))):
        raise UsageError(f"{path}: [eval] device = {evaluation['device']!r}: {problem}")


def _init_path(spec: str) -> Path:
    """What an `init` names, resolved as the stages' exports are keyed: `conan:<out>/final` as the bare path (the
    review of stop 65: looked up as written, a `conan:` init of an earlier stage's export ran no precheck, or one
    against the old export left in its place)."""
    from conan_model.importing import PREFIXES

    prefix = next((p for p in PREFIXES if spec.startswith(p)), "")
    return Path(spec[len(prefix) :]).expanduser().resolve()


def _missing_model(spec: str, exports: dict[Path, int]) -> str | None:
    """Why a stage's `init` names no model, or None: an earlier stage's export (<output_dir>/final) is made by the
    pipeline; anything else must be there now (a folder, a gguf: file, a prepared base), or the pipeline would stop
    at it after the stages before it had trained."""
    from conan_model.errors import ModelImportError
    from conan_model.importing import PREFIXES, split_spec
    from conan_model.pretrained import BASES

    not_made = "nor the export (<output_dir>/final) of a [[train]] stage before this"
    try:
        kind, target = split_spec(spec)
    except ModelImportError as exc:  # a bare path that is not there (yet: an earlier stage may make it); `hf:`
        if Path(spec).resolve() in exports:
            return None
        # only a bare path can be an export; a damaged base's or an empty `hf:`'s message ends with its own mend
        return str(exc) if spec in (*PREFIXES, *BASES) else f"{exc}, {not_made}"
    except FileNotFoundError as exc:  # a base name not prepared: the message says how
        return str(exc)
    if Path(target).resolve() in exports:
        return None
    found = Path(target).expanduser() if kind in ("hf", "gguf") else Path(target)  # as their loaders read them
    return None if found.exists() else f"{target} does not exist, {not_made}"


def looked_up(config: str, kind: str = "a pipeline") -> str:
    """Where a relative stage config that is not there was looked for: from a config (``kind``: a pipeline's, an
    ablation's) run in another folder the bare "nor a config file" read as if the file were missing (a user's
    walk, stop 64)."""
    if Path(config).is_absolute() or Path(config).exists() or ("/" not in config and not config.endswith(".toml")):
        return ""
    return (f" (looked up from the working directory {Path.cwd()}: paths in {kind} config are relative to "
            "the working directory, not to the config file)")


def _missing_data(stage_cfg: Any) -> str | None:
    """Why a stage's training data cannot be read, or None: a file that is not there or holds no row, named by
    its `data` entry (else it is a supervised task's file). Checked when the config loads, as a path outside
    data_root is, so a missing file costs no training of the stages before it (a user's walk, stop 64); every row
    is checked then too, by the stage's ``precheck``, where the model the stage starts from is known (a preset, an
    earlier stage's export, an init readable here; else when the stage starts)."""
    from train.config import entry_file

    named = {entry_file(stage_cfg.data_root, entry): f"data[{i}] = {entry!r}" for i, entry in enumerate(stage_cfg.data)}
    for file in stage_cfg.input_files():
        key = named.get(file, "tasks: a task's data file")
        if not file.is_file():
            return f"{key}: {file} does not exist (data_root = {stage_cfg.data_root!r})"
        with open(file, "rb") as rows:
            if not any(line.strip() for line in rows):
                return f"{key}: {file} is empty (no rows)"
    return None


def check_task_names(path: Path, key: str, data_dir: Path, tasks: list[str] | None, suite: str | None = None) -> None:
    """Refuse unknown task or suite names as the evaluation will (`harness.runner.plan_tasks`), naming the config
    file and key, so that a typo costs no training."""
    from harness.runner import NotInSuite

    try:
        planned_tasks(data_dir, tasks, suite)
    except NotInSuite as exc:  # before stop 64 (a user's walk) said in the CLI's words: "run it without --suite"
        raise UsageError(f"{path}: {key}: {exc.what}: `tasks` narrows [eval] suite; "
                         "remove `suite` to evaluate the tasks alone") from None
    except UsageError as exc:
        raise UsageError(f"{path}: {key}: {exc}") from None


def planned_tasks(data_dir: Path, tasks: list[str] | None, suite: str | None) -> list[str]:
    """The tasks an evaluation of ``suite`` narrowed by ``tasks`` resolves to (`harness.runner.plan_tasks`)."""
    from harness.data import scan_tasks
    from harness.runner import RunConfig, plan_tasks

    local, broken = scan_tasks(data_dir)
    plan = RunConfig(model="", data_dir=data_dir, suite=suite, tasks=tasks or None)
    return [r.name for r in plan_tasks(plan, local, {name: str(exc) for name, exc in broken.items()}).resolved]


def checked_list(path: Path, key: str, value: Any, kind: type | tuple[type, ...], example: str = "") -> list[Any]:
    """``value`` when it is a list of ``kind``; else an error naming the file and key, with ``example`` (default:
    task names or dims). A string where a list belongs was read character by character before stop 26
    (`tasks = "STS16"`: "unknown task 'S'")."""
    if not isinstance(value, list) or not all(isinstance(v, kind) and not isinstance(v, bool) for v in value):
        example = example or ('["STS16", "STSB"]' if kind is str else "[64, 128]")
        raise UsageError(f"{path}: {key} must be a list (e.g. {example}), got {value!r}")
    return value


def source_fingerprint(spec: str | None) -> str | None:
    """What a stage starts from: the contents of its local folder or file (a conan:/hf: folder, a gguf: file, a
    prepared base's folder: files replaced under the same name change it), else the spec itself."""
    if spec is None:
        return None
    from conan_model.fingerprint import files_fingerprint
    from conan_model.importing import split_spec

    try:
        target = Path(split_spec(spec)[1])
    except FileNotFoundError as exc:  # a base name not prepared yet: say how, before any stage runs
        raise UsageError(str(exc)) from None
    return files_fingerprint(target) if target.exists() else spec


def run_name(spec: str) -> str:
    """The evaluation folder of a model spec: readable, and one per spec (a short hash of it): before stop 47
    (audit) `st:/x/a/m` and `st:/x/a_m` shared `st__x_a_m`, so the second replaced the first's results and the
    pipeline could not finish."""
    readable = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in spec)
    return readable if readable == spec else f"{readable}-{hashlib.sha256(spec.encode()).hexdigest()[:8]}"


def baseline_key(spec: str) -> str:
    """What a baseline's evaluation is keyed by: the contents of its local folder (st:/hf:/conan:), so files
    replaced under the same path replace its results (before stop 47, audit, the spec alone: `harness run` then
    refused the folder's old results and the pipeline could not go on); a packaged or hub name, itself."""
    prefix, _, target = spec.partition(":")
    path = Path(target).expanduser()
    if prefix in ("st", "hf", "conan") and path.exists():
        from conan_model.fingerprint import files_fingerprint

        return f"{spec} {files_fingerprint(path)}"
    return spec


def stage_step(output_dir: str | Path) -> str:
    """What a training stage is recorded under in pipeline.json: its output_dir, not its position, so a stage
    dropped or inserted before it leaves its record (a user's walk, stop 64: before, the next stage was refused as
    "not trained by this pipeline" after an earlier one was removed)."""
    return f"train:{Path(output_dir)}"


def by_output_dir(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` with training records written before stop 64 (keyed `train:<position>`) re-keyed by the
    output_dir each holds (:func:`stage_step`)."""
    for table in (state.get("done", {}), state.get("started", {})):
        old = {step: table.pop(step) for step in [s for s in table if s.removeprefix("train:").isdigit()]}
        for record in old.values():
            if isinstance(record, dict) and isinstance(record.get("output_dir"), str):
                table.setdefault(stage_step(record["output_dir"]), record)
    return state


class Pipeline:
    def __init__(self, cfg: dict[str, Any], path: Path | None = None) -> None:
        """``path``: the config file, named in errors."""
        self.cfg, self.path = cfg, path
        self.out = Path(cfg.get("out", DEFAULT_OUT))  # made at the first record: a refused stage leaves none
        self.state: dict[str, Any] = by_output_dir(read_json(self.out / STATE, {"done": {}}))
        self.failed: list[str] = []  # the models whose evaluation had a task that failed or was not evaluated
        self.hashed: dict[str, str] = {}  # a model folder → its files' fingerprint, hashed once per command

    def _done(self, step: str) -> Any:
        return self.state["done"].get(step)

    def _finish(self, step: str, value: Any) -> None:
        self.state["done"][step] = value
        self._write()

    def _write(self) -> None:
        """Record the state, making `out` first: before stop 64 (a user's walk) it was made before any stage was
        checked, and a refused stage left it empty."""
        self.out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.out / STATE, self.state)

    def _say(self, step: str, message: str) -> None:
        print(f"[pipeline] {step}: {message}", flush=True)

    @property
    def _in_config(self) -> str:
        """`<config file>: ` before a stage's error, '' where the pipeline was built without one."""
        return f"{self.path}: " if self.path else ""

    def _model_key(self, folder: str) -> str | None:
        """The fingerprint of a model folder's files (`source_fingerprint`), once per command: a stage's export is
        checked when training is skipped and keys its evaluation after."""
        if folder not in self.hashed:
            self.hashed[folder] = source_fingerprint(folder)
        return self.hashed[folder]

    def _outdate(self, why: str) -> None:
        """Mark the leaderboard and report an earlier run wrote as out of date, once a model they show is being
        replaced (``why``): a banner at their top and their records dropped from pipeline.json, until this run writes
        them anew. Before stop 68 an interrupted rerun left them showing a model that no longer existed, unmarked
        (a walk)."""
        banner = (f"> **Out of date**: {why}; this file still shows the earlier models. `harness pipeline` rewrites "
                  "it when it finishes.\n\n")  # fmt: skip
        for step in ("leaderboard", "report"):
            written = self.state["done"].get(step)
            if isinstance(written, str) and Path(written).is_file():
                from harness.runs import atomic_write_text

                atomic_write_text(Path(written), banner + Path(written).read_text(encoding="utf-8"))
            if self.state["done"].pop(step, None) is not None:
                self._write()

    def _start(self, step: str, value: dict[str, Any]) -> None:
        """Record what a step is about to do, so a rerun tells its own half-done work from stale work."""
        self.state.setdefault("started", {})[step] = value
        self._write()

    def train(self) -> list[str]:
        """Run each stage (or skip it when recorded done under the same key); returns the final checkpoints."""
        from conan_model.fingerprint import data_fingerprint
        from harness.ablate_keys import OPERATIONAL, fingerprint, input_hashes
        from train.cli import resolve

        finals: list[str] = []
        upstream = None  # the previous stage's key: a retrained stage makes every later one train again
        for i, stage in enumerate(self.cfg.get("train", [])):
            label = f"[[train]] #{i + 1} ({stage['config']})"  # as the config's errors name it (before stop 68
            # `train:0`, counted from 0, a walk)
            module, stage_cfg = resolve(stage["config"], None, list(stage.get("set", [])), "set")
            step = stage_step(stage_cfg.output_dir)
            parts = [fingerprint(stage_cfg, operational=OPERATIONAL), stage_cfg.output_dir, input_hashes(stage_cfg),
                     upstream]  # fmt: skip
            key = data_fingerprint(parts)[:16]
            done = self._done(step)
            if isinstance(done, dict) and done.get("key") == key and Path(done["final"]).is_dir():
                self._check_export(label, done)
                self._say(label, f"done earlier → {done['final']}")
            else:
                done = {"key": key, "config": stage["config"], "output_dir": str(Path(stage_cfg.output_dir)),
                        "final": str(self._train_stage(label, key, module, stage_cfg))}  # fmt: skip
                done["export"] = self._model_key(done["final"])
                self._finish(step, done)
            finals.append(done["final"])
            upstream = key
        return finals

    def _check_export(self, label: str, done: dict[str, Any]) -> None:
        """Refuse a finished stage whose export (`final/`) is not the model it exported: replaced by hand, or
        rewritten by a `harness train --resume` of other steps. Before stop 68 (a walk) it counted as done, and the
        leaderboard showed that model under the stage's name. A record from before then has no fingerprint: the
        export is taken as it is, and its fingerprint recorded."""
        found, recorded = self._model_key(done["final"]), done.get("export")
        if recorded is None:
            done["export"] = found
            self._write()
        elif found != recorded:
            raise UsageError(f"{self._in_config}{label}: {done['final']} is not the model this stage exported (its "
                             f"files changed since: fingerprint {found[:12]}, exported {recorded[:12]}); remove it to "
                             f"export it again from the stage's last checkpoint, or {done['output_dir']} to train "
                             "the stage again")  # fmt: skip

    def _train_stage(self, name: str, key: str, module: Any, stage_cfg: Any) -> Path:
        """Train one stage (``name``: `[[train]] #<n> (<config>)`, as said) into its output_dir: resumed when it
        holds this key's unfinished run, else from scratch. An empty output_dir (made beforehand) is trained into.

        A stale output_dir is renamed to `<output_dir>.replaced` (kept until the new model is exported), so a
        changed config is never resumed into and the old model is not lost before the new one exists."""
        from train.loop import output_dir_lock

        out = Path(stage_cfg.output_dir)
        step = stage_step(out)
        started = self.state.get("started", {}).get(step)
        # an empty folder is trained into (before stop 68 "exists but was not trained by this pipeline", a walk)
        made = out.exists() and (not out.is_dir() or any(out.iterdir()))
        if made and started != {"key": key, "output_dir": str(out)}:
            records = [r for r in (started, self._done(step)) if isinstance(r, dict)]
            if not any(r.get("output_dir") == str(out) for r in records):
                held = sorted(p.name for p in out.iterdir())[:3] if out.is_dir() else []  # `.DS_Store` alone: said
                holds = f" (it holds {', '.join(held)}{', …' if len(held) == 3 else ''})" if held else ""
                raise UsageError(f"{self._in_config}{name}: output_dir {out} exists but was not trained by this "
                                 f"pipeline ({self.out / STATE}){holds}; remove it or set another "
                                 "output_dir")  # fmt: skip
            aside = out.with_name(f"{out.name}.replaced")
            done = self._done(step)
            if aside.is_dir() and isinstance(done, dict) and done.get("key") == key and (aside / "final").is_dir():
                # the model of this very config, set aside while another config's run (interrupted) trained here:
                # a reverted change. Before stop 67 (a walk) it was trained again, and the kept model then deleted
                with output_dir_lock(out):
                    shutil.rmtree(out)
                    aside.rename(out)
                fsync_dir(out.parent)
                self._say(name, f"this config's model, kept aside in {aside} while another config trained here, is "
                                "back in place: not trained again")  # fmt: skip
                self._outdate(f"{name}'s model was put back in place")
                return Path(done["final"])
            self._outdate(f"a pipeline run began training {name} again")  # said so, as it may be stopped since
            with output_dir_lock(out):  # another pipeline sharing this output_dir may be training in it now
                if aside.exists():  # an earlier replacement was interrupted: `aside` holds the last finished model
                    shutil.rmtree(out)
                else:
                    out.rename(aside)
            fsync_dir(out.parent)  # on disk before the new `started` record: a lost rename would be resumed into
            # before stop 64 (a user's walk) "old output kept in" it, which went without a word once trained
            self._say(name, f"config, starting model, a stage before it or training data changed: training again "
                            f"(old output kept in {aside} until the new model is exported, then removed)")  # fmt: skip
        self._start(step, {"key": key, "output_dir": str(out)})
        self._say(name, f"training stage {module.__name__.split('.')[-1]} into {out}")
        final = module.run(stage_cfg, resume="latest")
        shutil.rmtree(out.with_name(f"{out.name}.replaced"), ignore_errors=True)
        return Path(final)

    def evaluate(self, finals: list[str]) -> list[Path]:
        from harness.checks import parse_dims
        from harness.embedder import ModelOptions
        from harness.env import data_root
        from harness.runner import RunConfig, run

        ev = self.cfg["eval"]
        checkpoints = list(ev.get("checkpoints", finals))
        models = {f"conan:{c}": self._model_key(c) for c in checkpoints}
        models |= {spec: baseline_key(spec) for spec in ev.get("baselines", [])}
        runs = []
        for spec, model_key in models.items():
            name = run_name(spec)
            data_dir = data_root(ev.get("data_dir"))[0]
            step = f"eval:{spec}"  # a checkpoint retrained since its last evaluation: its old results are replaced
            replaces = self._replaced_model(step, model_key, self.out / "evals" / name)
            run_cfg = RunConfig(model=spec, data_dir=data_dir,
                                out=self.out / "evals", suite=ev.get("suite"), tasks=ev.get("tasks"), run_name=name,
                                dims=parse_dims([str(d) for d in ev.get("dims", [])]),
                                options=ModelOptions(device=ev.get("device")), show_progress=False,
                                overwrite=replaces is not None, dims_option="[eval] dims",
                                dims_policy="drop", redo_hint="", replace_stale=True,
                                replaced_by="the retrained model")  # fmt: skip
            if replaces is not None:
                self._outdate(f"a pipeline run began evaluating {spec} again (its model changed)")
            self._start(step, {"key": model_key, "replaces": replaces})
            self._say(step, "evaluating (replacing the old model's results)" if run_cfg.overwrite
                      else "evaluating (finished tasks are skipped)")  # fmt: skip
            code = run(run_cfg)
            self._start(step, {"key": model_key, "replaces": None})  # the run directory is this model's now
            if code != 0:  # the other models are still evaluated and summarized (a user's walk, stop 64)
                self.failed.append(f"{spec} (see {run_cfg.out / name / 'summary.md'})")
            else:
                self._finish(step, str(run_cfg.out / name))
            if (run_cfg.out / name / RUN_JSON).is_file():  # its failed tasks are marked in the leaderboard and report
                runs.append(run_cfg.out / name)
        return runs

    def _replaced_model(self, step: str, model_key: str, run_dir: Path) -> str | None:
        """The fingerprint of another model whose results ``run_dir`` holds and this evaluation replaces (run with
        overwrite), else None (finished tasks are kept and skipped).

        Decided when the step's model changed since it last started (or never started here) and recorded with the
        step, so a rerun after an interruption replaces only while run.json still holds that model: once
        `harness run` has taken the directory over, the tasks it finished for the new model are this model's and
        are kept. Before, the flag stayed set until an evaluation ended, and every rerun redid every task."""
        held = (read_record(run_dir / RUN_JSON) or {}).get("model", {}).get("fingerprint")
        started = self.state.get("started", {}).get(step)
        if isinstance(started, str):  # recorded before stop 26: the key alone
            started = {"key": started}
        if started is None or started.get("key") != model_key:
            return held
        if started.get("replacing"):  # recorded before `replaces`: which model it replaced is unknown
            return held
        replaces = started.get("replaces")
        return held if replaces is not None and held == replaces else None

    def summarize(self, runs: list[Path]) -> None:
        from harness.runs import atomic_write_text
        from harness.suites import OFFICIAL_SUITES
        from leaderboards.build import SuiteRef, build_board
        from leaderboards.published import SNAPSHOT
        from leaderboards.render import render
        from reporting.efficiency import write_report

        lb = self.cfg.get("leaderboard", {})
        published = [SNAPSHOT] if lb.get("published") else []
        name = self.cfg["eval"].get("suite")  # a local suite ranks over the tasks the runs hold
        suite = SuiteRef(name, OFFICIAL_SUITES[name]) if name in OFFICIAL_SUITES else None
        from harness.env import data_root

        ev = self.cfg["eval"]  # a run folder keeps the tasks of earlier [eval] lists too: only [eval]'s are shown
        tasks = planned_tasks(data_root(ev.get("data_dir"))[0], ev.get("tasks"), ev.get("suite"))
        board = build_board(runs, published, suite, bool(self.cfg["eval"].get("dims")), tasks)
        atomic_write_text(self.out / "leaderboard.md", render(board))
        self._finish("leaderboard", str(self.out / "leaderboard.md"))
        report = write_report(runs, self.out / "report", tasks)
        self._finish("report", str(report))
        self._say("done", f"leaderboard {self.out / 'leaderboard.md'}, report {report}")


def run_pipeline(path: Path, args: argparse.Namespace | None = None) -> int:
    """The whole pipeline; ``args``' interrupt note (what the CLI says on Ctrl-C/SIGTERM) gets the config's out."""
    from harness.distributed import refuse_torchrun
    from train.errors import TrainError

    refuse_torchrun("pipeline", "pipeline.json, the leaderboard and the report")
    cfg = load_pipeline(path)
    if args is not None:
        args.interrupted = interrupted_note(Path(cfg.get("out", DEFAULT_OUT)), trains=bool(cfg.get("train")))
    pipeline = Pipeline(cfg, path)
    try:
        finals = pipeline.train()
    except TrainError as exc:  # the train CLI's one-line errors, surfaced through the harness CLI
        raise UsageError(f"train stage: {exc}") from exc
    runs = pipeline.evaluate(finals)
    if runs:
        pipeline.summarize(runs)
    if pipeline.failed:  # exit 1 as `harness run`'s: some task failed (before stop 64: exit 2 at the first model)
        print(f"harness: some task failed or could not be evaluated, for {'; '.join(pipeline.failed)}; the same "
              "command evaluates them again once fixed", file=sys.stderr)  # fmt: skip
        return 1
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("pipeline", help="train stages → evaluate checkpoints → leaderboard → report",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", type=Path, help="pipeline TOML (see configs/pipeline.toml)")
    parser.set_defaults(func=lambda args: run_pipeline(args.config, args), interrupted=interrupted_note(None))


def interrupted_note(out: Path | None, state: str = STATE, kept: str = "steps", trains: bool = True) -> str:
    """What an interrupted pipeline (or ablation: its ``state`` file and finished ``kept``) keeps; ``out`` None
    before the config is read, when nothing was done; a training stage is named only when ``trains`` (a user's walk,
    stop 64: before, "<out>/pipeline.json" unfilled, and a training stage named for an eval-only config)."""
    if out is None:
        return "; the config was not read yet, so nothing was done (the same command starts again)"
    # said of a stage it may not have reached: before stop 67 a stop before its first checkpoint, or during an
    # evaluation, read as if one were kept (a walk)
    resumes = ", a training stage from its newest checkpoint if it wrote one" if trains else ""
    return f"; finished {kept} are kept ({out / state}): the same command continues{resumes}"
