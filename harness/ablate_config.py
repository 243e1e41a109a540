"""An ablation config's schema: every key checked when the ablation opens, before anything trains or is written,
each error naming the file and the key; and the folders it writes (`out`, the report).

Split from harness/ablate.py (stop 64): the checks are read (and changed) apart from the run that follows them.
"""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Any

from harness.checks import check_writable_dir
from harness.errors import UsageError, did_you_mean
from harness.pipeline import checked_list
from harness.runs import read_json

EVAL_KEYS = {"dev", "test", "dims", "batch_size", "device", "max_length", "overlap_ok", "train_overlap_ok"}
TOP_KEYS = {"name", "out", "report", "scale", "seeds", "reference", "data_dir", "set", "base", "shared", "stages",
            "arms", "eval", "choose", "n_boot", "bootstrap_seed"}  # fmt: skip

# a `set` in a list-type error (before stop 60 its example was task names)
SET_EXAMPLE = "[\"lr=1e-3\", \"mask_schedule='linear'\"]"
# the keys that hold a table, with an example for the error that finds something else there
TABLES = {"arms": '[arms.<name>] with optional set = [...]', "eval": '[eval] with dev = [...] and test = [...]',
          "choose": '[choose] with key = "lr" and values = [...]'}


def _placed(unknown: list[str]) -> str:
    """Where each unknown top-level key belongs: a close top-level key (`seed` → seeds), [eval], or a training key
    set through `set` (before stop 67 the bare list alone, though every other layer suggests; a user's walk)."""
    from train.config import StageConfig, stages_with_key

    said = []
    for key in unknown:
        if key in EVAL_KEYS and stages_with_key(key, StageConfig):
            said.append(f'{key}: [eval] {key} for the evaluation, set = ["{key}=…"] for training')
        elif key in EVAL_KEYS:
            said.append(f"{key} belongs in [eval]")
        elif close := difflib.get_close_matches(key, TOP_KEYS, n=1, cutoff=0.8):  # `seed`; not `steps` → stages
            said.append(f"{key}: did you mean {close[0]}?")
        elif stages_with_key(key, StageConfig):
            said.append(f'{key} is a training key: set = ["{key}=…"] sets it in every arm, arms.<arm>.set in one')
        elif close := did_you_mean(key, TOP_KEYS):
            said.append(f"{key}: {close.removeprefix('; ')}")
    return f"; {'; '.join(said)}" if said else ""


def load_ablation(path: Path) -> dict[str, Any]:
    """Read and check the config; every error names the file and the key (exit status 2)."""
    from train.cli import read_toml

    return check_ablation(read_toml(path, "ablation", UsageError), path)


def check_ablation(cfg: dict[str, Any], path: Path) -> dict[str, Any]:
    """Check a config dict (read from ``path``, possibly rescaled by a script); errors name the file and key."""
    unknown = sorted(set(cfg) - TOP_KEYS)
    if unknown:
        raise UsageError(f"{path}: unknown key(s) {unknown} (expected {sorted(TOP_KEYS)}){_placed(unknown)}")
    for key in ("name", "seeds", "reference", "stages", "arms", "eval"):
        if key not in cfg:
            raise UsageError(f"{path}: missing key `{key}`")
    # before stop 60 (a walk) a list or a number here was a traceback (`reference = ["bidir"]`, `arms = "bidir"`),
    # `eval = ["STS12"]` "unknown key(s) ['STS12']", and `name = 5` or `scale = 6` taken as text
    for key in ("name", "reference", "out", "report", "scale", "data_dir"):
        if key in cfg and not (isinstance(cfg[key], str) and cfg[key].strip()):
            raise UsageError(f"{path}: {key} must be a non-empty string, got {cfg[key]!r}")
    for key, example in TABLES.items():
        if key in cfg and not isinstance(cfg[key], dict):
            raise UsageError(f"{path}: {key} must be a table ({example}), got {cfg[key]!r}")
    arms, ev = cfg["arms"], cfg["eval"]
    if cfg["reference"] not in arms:
        raise UsageError(f"{path}: reference = {cfg['reference']!r} is not one of [arms]: {sorted(arms)}")
    for name, arm in arms.items():
        # the name makes folders and run names (seed<N>/<arm>, <arm>-seed<N>, <arm>-choose<i>): before stop 52
        # (audit) `arms."../x"` trained outside `out`, and an arm named `shared` wrote over the shared stages
        if not re.fullmatch(r"[A-Za-z0-9_]+", name) or name == "shared":
            raise UsageError(f"{path}: arms.{name}: an arm's name is a folder name of letters, digits and '_' "
                             "(and not `shared`, the shared stages' folder)")  # fmt: skip
        if not isinstance(arm, dict):
            raise UsageError(f"{path}: arms.{name} must be a table ([arms.{name}] with optional set = [...] and "
                             f"stages), got {arm!r}")  # fmt: skip
        bad = sorted(set(arm) - {"set", "stages"})
        if bad:
            raise UsageError(f"{path}: arms.{name}: unknown key(s) {bad} (expected set, stages)")
        # before stop 60 a string here was read letter by letter
        sets = checked_sets(path, f"arms.{name}.set", arm.get("set", []))
        if sets and arm.get("stages") == [] and (cfg.get("base") or cfg.get("shared")):  # (else: no model, below)
            raise UsageError(f"{path}: arms.{name}.set applies to the arm's last stage, and it has none "
                             "(stages = []: it evaluates the shared stages' model); give the arm a stage, or drop "
                             "its set")  # fmt: skip
    checked_sets(path, "set", cfg.get("set", []))
    for key, stages in [(k, cfg.get(k, [])) for k in ("base", "shared", "stages")] + [
            (f"arms.{name}.stages", arm["stages"]) for name, arm in arms.items() if "stages" in arm]:  # fmt: skip
        _check_stages(path, key, stages)
    # an arm trains its own stages, else the top-level ones, after any [[base]] and [[shared]]: before stop 60 an
    # arm left with none was an AssertionError once it came up, after the arms before it had trained
    for name, arm in arms.items() if not cfg.get("base") and not cfg.get("shared") else ():
        if not arm.get("stages", cfg["stages"]):
            key = f"arms.{name}.stages" if "stages" in arm else "stages"
            raise UsageError(f"{path}: {key} names no stage and there is no [[base]] or [[shared]] stage: arm {name} "
                             "would train no model to evaluate ([[stages]] with config = \"...\")")  # fmt: skip
    for key, least in (("n_boot", 10), ("bootstrap_seed", 0)):  # read only by the report, after every unit trained
        value = cfg.get(key, least)
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise UsageError(f"{path}: {key} must be an integer of at least {least}, got {value!r}")
    seeds = cfg["seeds"]
    integers = isinstance(seeds, list) and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)
    if not integers or len(seeds) < 1 or len(set(seeds)) != len(seeds):
        raise UsageError(f"{path}: seeds must be a list of distinct integers, got {cfg['seeds']!r}")
    from train.config import SEED_LIMIT  # imports torch, as checked_sets above already did

    if out_of_range := [s for s in seeds if not 0 <= s < SEED_LIMIT]:  # train refuses it, once the unit is up
        raise UsageError(f"{path}: seeds must be in [0, 2**63) (train's `seed`), got {out_of_range[0]}")
    bad_eval = sorted(set(ev) - EVAL_KEYS)
    if bad_eval:
        raise UsageError(f"{path}: eval: unknown key(s) {bad_eval} (expected {sorted(EVAL_KEYS)})")
    dev, test = (checked_list(path, f"eval.{key}", ev.get(key, []), str) for key in ("dev", "test"))
    if not dev or not test:
        raise UsageError(f"{path}: eval.dev and eval.test must each name at least one task")
    for key, names in (("dev", dev), ("test", test)):  # a task named twice would weigh twice in [choose]'s mean
        twice = sorted({t for t in names if names.count(t) > 1})
        if twice:
            raise UsageError(f"{path}: eval.{key} names {', '.join(twice)} more than once")
    for key in ("overlap_ok", "train_overlap_ok"):  # before stop 60 `= false` read as the reason "False" (a walk)
        if key in ev and not (isinstance(ev[key], str) and ev[key].strip()):
            raise UsageError(f"{path}: eval.{key} must be a reason string (why the overlap is acceptable, "
                             f"e.g. \"no [choose]: dev informs nothing\"), got {ev[key]!r}")  # fmt: skip
    for key in ("max_length", "batch_size"):  # before: refused at the first evaluation, after a unit trained
        value = ev.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise UsageError(f"{path}: eval.{key} must be a positive integer, got {value!r}")
    if ev.get("device") == "auto":  # what leaving it out means, as `harness run --device auto`
        del ev["device"]
    if ev.get("device") is not None:
        from conan_model.device import device_problem  # imports torch: only when a device is named

        if problem := device_problem(str(ev["device"])):
            raise UsageError(f"{path}: eval.device = {ev['device']!r}: {problem}")
    dims = checked_list(path, "eval.dims", ev.get("dims", []), int)
    if any(d < 1 for d in dims) or len(set(dims)) != len(dims):
        raise UsageError(f"{path}: eval.dims must be distinct positive integers (MRL dims below the model's width; "
                         f"the full width is always compared), got {dims!r}")  # fmt: skip
    both = sorted(set(dev) & set(test))
    if both:
        raise UsageError(f"{path}: eval: task(s) {both} are in both dev and test; a test task may not inform choices")
    choose = cfg.get("choose")
    if choose is not None:
        values = choose.get("values")
        if set(choose) - {"key", "values", "arm"} or not isinstance(choose.get("key"), str) or not choose["key"]:
            raise UsageError(f"{path}: choose needs `key` (a stage config key) and at least two `values` (optional "
                             f"`arm`), got {choose!r}")  # fmt: skip
        if not isinstance(values, list) or len(values) < 2:  # before stop 60 "13" was read as 1 and 3
            raise UsageError(f"{path}: choose.values must be a list of at least two values (e.g. [1e-3, 3e-4]), "
                             f"got {values!r}")  # fmt: skip
        twice = [value for i, value in enumerate(values) if json.dumps(value) in map(json.dumps, values[:i])]
        if twice:  # the same run trained twice, and a tie between them
            raise UsageError(f"{path}: choose.values names {twice[0]!r} more than once")
        arm = choose.get("arm", cfg["reference"])
        if not isinstance(arm, str) or arm not in arms:
            raise UsageError(f"{path}: choose.arm = {arm!r} is not one of [arms]: {sorted(arms)}")
    return cfg


def _check_stages(path: Path, key: str, stages: Any) -> None:
    """A list of stage tables, each with a `config` (a file) and optional `set` (a list of overrides): a misspelt
    key (`sets = [...]`) was ignored before stop 46 and the units trained without it; a missing `config` was a
    KeyError once the unit came up."""
    if not isinstance(stages, list) or not all(isinstance(stage, dict) for stage in stages):
        raise UsageError(f"{path}: {key} must be a list of tables ([[{key}]] with config = \"...\"), got {stages!r}")
    for i, stage in enumerate(stages):
        where = f"{key}[{i}]"
        unknown = sorted(set(stage) - {"config", "set"})
        if unknown:
            raise UsageError(f"{path}: {where}: unknown key(s) {unknown} (expected config, set)")
        if not isinstance(stage.get("config"), str):
            raise UsageError(f"{path}: {where}: needs config = \"<stage config file>\", got {stage.get('config')!r}")
        checked_sets(path, f"{where}.set", stage.get("set", []))


def checked_sets(path: Path, key: str, value: Any) -> list[str]:
    """A `set` list (``key`` as the config spells it: `set`, `arms.x.set`, `stages[0].set`) of `key=value` strings
    as train reads them (``parse_set``): before, a malformed entry (`set = ["lr"]`) read train's "--set expects
    key=value", naming neither the list nor an option the user gave (a walk)."""
    from train.config import parse_set  # imports torch (through conan_model): only when a config is read
    from train.errors import ConfigError

    sets = checked_list(path, key, value, str, SET_EXAMPLE)
    try:
        parse_set(sets, key)
    except ConfigError as exc:
        raise UsageError(f"{path}: {exc}") from None
    return sets


def report_dir(cfg: dict[str, Any]) -> Path:
    """Where an ablation's report goes: its `report`, else reports/ablations/<name>."""
    return Path(cfg.get("report", f"reports/ablations/{cfg['name']}"))


def work_dir(cfg: dict[str, Any]) -> Path:
    """An ablation's work folder: its `out`, else runs/ablations/<name>."""
    return Path(cfg.get("out", f"runs/ablations/{cfg['name']}"))


def check_folders(cfg: dict[str, Any], config_path: Path) -> None:
    """`out` and the report folder can be written, and the report folder holds no other ablation's report (another
    name or, as reports record it since stop 60, another `out`). Before stop 60 (a walk) an `out` that is a file was
    a traceback at start, a `report` that is a file one after every unit had trained, and another ablation's report
    was written over without a word."""
    from reporting.ablation import out_from_report

    out, folder = work_dir(cfg), report_dir(cfg)
    check_writable_dir(f"{config_path}: out", out)
    check_writable_dir(f"{config_path}: report", folder)
    earlier = read_json(folder / "report.json", None)
    if earlier is None:
        return
    earlier = earlier if isinstance(earlier, dict) else {}
    name, recorded = earlier.get("name"), earlier.get("out_from_report")
    if name != cfg["name"] or (recorded is not None and recorded != out_from_report(out, folder)):
        shown = f", out {earlier.get('out')}" if recorded is not None else ""
        raise UsageError(f"{config_path}: report {folder} holds the report of another ablation (name {name!r}"
                         f"{shown}; this one: name {cfg['name']!r}, out {out}); "
                         f"set another `report`, or delete {folder / 'report.json'} to write over it")  # fmt: skip


def stage_config_digests(cfg: dict[str, Any]) -> dict[str, dict[str, str] | str]:
    """{each stage config the ablation names ([[base]], [[shared]], [[stages]], arms' stages), as written: the
    ``key_digests`` of its TOML as parsed (comments and layout do not count)}; a stage named by its name (`weak`,
    no file: the stage's defaults) has {}, a file that cannot be read the reason. The ablation config's own digest
    saw only the file names: before, `steps = 30` → `31` in configs/weak.toml left --plan silent (a walk). Here, not
    in reporting: train reads the files, and reporting may not import it (tests/test_house.py)."""
    from reporting.ablation import key_digests
    from train.cli import STAGES, read_toml

    named = [stage["config"] for key in ("base", "shared", "stages") for stage in cfg.get(key, [])]
    named += [stage["config"] for arm in cfg.get("arms", {}).values() for stage in (arm or {}).get("stages", [])]
    digests: dict[str, dict[str, str] | str] = {}
    for name in dict.fromkeys(named):
        try:
            digests[name] = {} if name in STAGES else key_digests(read_toml(Path(name), "stage", UsageError))
        except UsageError as exc:
            digests[name] = str(exc)
    return digests
