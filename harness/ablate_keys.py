"""What an ablation unit's record is keyed by: a fingerprint of its resolved config (without the keys that change
where or how fast it runs), the contents of what it trains from, the precision and hardware it trains in; and the
words that say which of them changed when a record is refused.

Split from harness/ablate.py (stop 64); `harness pipeline` keys its stages with the same fingerprint.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from conan_model.fingerprint import data_fingerprint, files_fingerprint
from harness.errors import ConanError
from harness.pipeline import source_fingerprint
from harness.runs import open_run, read_json

# Keys that change where or how fast a stage runs, not what it learns: left out of a unit's fingerprint, with the
# stage's own resume-safe keys (train's RESUME_SAFE: micro_batch_size, gradient_checkpointing, compile, ...: the
# weak stage's micro-batch rows are keyed apart, `learned_extras`; before stop 53 this set alone, so turning on a
# memory knob refused every finished unit). A chained `init` (the previous unit's final folder) is left out too:
# that unit's own fingerprint covers it. `harness pipeline` keys its stages by this set alone (its records predate
# the wider one).
OPERATIONAL = frozenset({"output_dir", "threads", "device", "log_every", "save_every", "keep_last", "pools_dir"})
# evaluation settings keyed since stop 54: a record without them is kept when the rest matches (Ablation.evaluate)
LATE_SETTINGS = {"scoring": "the scorers' package versions", "hardware": "the hardware's model"}
# what a training unit is keyed by since stop 55 beside its config, inputs and precision (audit): a unit recorded
# without them is kept, today's values taken as its own (Ablation.train_chain)
LATE_TRAIN_KEYS = {"hardware": "the hardware whose kernels round its weights",
                   "init_files": "the files of the model it started from"}


def stage_start(stage_cfg: Any, chained: Any = None) -> Any:
    """The ConanConfig a stage builds its model from, known before it trains: its preset with `model_overrides`,
    else ``chained`` (the config its predecessor exports, which does not exist yet), else its init's; None when
    the init cannot be read here (training says why when the unit comes up)."""
    from conan_model.config import ConanConfig
    from conan_model.errors import ModelImportError
    from conan_model.importing import init_config

    if stage_cfg.init is None:
        return ConanConfig.preset(stage_cfg.model, **stage_cfg.model_overrides)
    if chained is not None:
        return chained
    try:
        return init_config(stage_cfg.init)
    except (ModelImportError, OSError, ValueError):
        return None


def exported_config(start: Any, stage_cfg: Any) -> Any:
    """The config of the model a stage exports, as far as the next stage's checks need it: its start cut to
    ``init_layers``."""
    if start is None or not (stage_cfg.init and stage_cfg.init_layers is not None):
        return start
    return dataclasses.replace(start, n_layers=stage_cfg.init_layers)


def fingerprint(stage_cfg: Any, chained: bool = False, operational: frozenset[str] | None = None) -> str:
    """Hash of a stage's resolved config without its operational keys (what decides the trained weights);
    ``operational``: those keys (default: OPERATIONAL and the stage's resume-safe ones)."""
    skip, values = skipped_keys(stage_cfg, chained, operational), stage_cfg.to_dict()
    extras = stage_cfg.learned_extras(values) if operational is None else {}  # (older keys had none)
    return data_fingerprint({**{k: v for k, v in values.items() if k not in skip}, **extras})[:16]


def skipped_keys(stage_cfg: Any, chained: bool, operational: frozenset[str] | None = None) -> frozenset[str]:
    """The keys a unit's config is compared without: operational ones, ``init`` when chained, and what
    train_config.json records of the launch (``launch_keys``: a record from before stop 61 lacks it)."""
    keys = OPERATIONAL | stage_cfg.resume_safe if operational is None else operational
    return keys | stage_cfg.launch_keys | ({"init"} if chained else set())


def training_precision(stage_cfg: Any) -> tuple[Any, str]:
    """(device, dtype name) a stage trains in on this machine: train's own choice
    (conan_model.device.default_dtype)."""
    from conan_model.device import default_dtype, pick_device

    device = pick_device(stage_cfg.device)
    return device, str(default_dtype(device)).removeprefix("torch.")


def training_compute(stage_cfg: Any) -> str:
    """What a stage's autocast computes in on this machine ("bfloat16 on cpu"), so a unit's seeds and arms can be
    kept in one precision."""
    device, dtype = training_precision(stage_cfg)
    return f"{dtype} on {device.type}"


def training_hardware(stage_cfg: Any) -> str | None:
    """The hardware whose kernels round a stage's weights, by the rule that keys evaluations
    (`sysinfo.kernel_hardware`): an accelerator's model, a CPU's bf16 kernels, None for float32 on a CPU. Two
    runs of one unit under oneDNN's AVX2 and AVX-512 bf16 kernels differ by up to 1e-2 in every tensor after 6
    steps (audit, stop 55), so the seeds and arms of one ablation are kept on one."""
    from harness.sysinfo import kernel_hardware

    device, dtype = training_precision(stage_cfg)
    return kernel_hardware(str(device), dtype)


def describe_kernels(kernels: dict[str, Any]) -> str:
    """'bfloat16 on cpu (AMD EPYC | avx512_bf16)': a unit's precision and hardware, for refusals."""
    hardware = kernels.get("hardware")
    return f"{kernels.get('compute') or 'an unrecorded precision'}{f' ({hardware})' if hardware else ''}"


def changed_config(unit_final: str, stage_cfg: Any, chained: bool, operational: frozenset[str] | None = None) -> str:
    """The keys whose value differs from the config a unit trained with (its final model's train_config.json),
    e.g. "lr 0.002 → 0.01"; empty when that file is gone."""
    recorded = read_json(Path(unit_final) / "train_config.json", None)
    if not isinstance(recorded, dict):
        return ""
    current, skip = stage_cfg.to_dict(), skipped_keys(stage_cfg, chained, operational)
    keys = [key for key in sorted({*recorded, *current} - skip) if recorded.get(key) != current.get(key)]
    changes = [f"{key} {recorded.get(key, '(unset)')!r} → {current.get(key, '(unset)')!r}" for key in keys]
    then, now = stage_cfg.learned_extras(recorded), stage_cfg.learned_extras(current)
    changes += [f"{key} {then.get(key)!r} → {now[key]!r}" for key in now if then.get(key) != now[key]]
    return ", ".join(changes)


def input_hashes(stage_cfg: Any, chained: bool = False) -> dict[str, str]:
    """{path: sha256 of its contents} of what a stage trains from: each training data file, unless chained (the
    previous unit covers it) the ``init`` model, and a local ``tokenizer`` or ``pool_scorer`` model. The config
    names these by path only, and a path keeps its name when its files are replaced. A pool scorer counts only
    where a task mines pools: at hard_negatives = 0 none is read (before stop 66 its files were hashed, and a
    replaced one made the unit stale)."""
    hashes = stage_cfg.data_hashes()
    if stage_cfg.init and not chained:
        hashes[f"init {stage_cfg.init}"] = source_fingerprint(stage_cfg.init)
    for key in ("tokenizer", "pool_scorer"):  # a tokenizer file, a local model that mines the pools
        spec = getattr(stage_cfg, key, None)
        if key == "pool_scorer" and spec and not stage_cfg.mines_pools():
            continue
        target = Path(spec.split(":", 1)[-1]) if spec else None
        if target is not None and target.exists():
            hashes[f"{key} {spec}"] = files_fingerprint(target)
    return hashes


def unheld_scores(run_dir: Path, scores: dict[str, float], dims: list[int]) -> tuple[list[str], list[str]]:
    """What run_dir no longer holds of a recorded evaluation (one phrase per task; none: it holds it all), and the
    tasks recorded `ok` there at another score, which `harness run` keeps as done (their identity is the same): it
    redoes them when asked to (`RunConfig.redo`). The report reads the run directory, not ablate.json: each task `ok`
    at the recorded score, and the per-item files it pairs (before stop 53 a record was trusted alone; before stop
    65 run.json alone, so a deleted predictions file left the task "not tested" in a rewritten report, and an
    edited score was "evaluated again" by a `harness run` that skipped it, then recorded)."""
    try:
        run = open_run(run_dir)
        recorded = run.read_run().get("tasks", {})
    except (OSError, ConanError):  # no folder, a damaged run.json: `harness run` redoes or says why
        return [f"{run_dir / 'run.json'} cannot be read"], []
    lost, other = [], []
    for task, score in scores.items():
        entry = recorded.get(task, {})
        if entry.get("status") != "ok":
            lost.append(f"{task} is {entry.get('status', 'not in its run.json')}")
        elif entry.get("main_score") != score:
            lost.append(f"{task} scores {entry.get('main_score')}, not the recorded {score}")
            other.append(task)
        elif lacking := run.unfinished_files(task, entry, dims, dim_items=bool(dims)):
            lost.append(f"{task} lacks {', '.join(str(p.relative_to(run_dir)) for p in lacking)}")
    return lost, other


def changed_settings(recorded: dict[str, Any] | None, current: dict[str, Any]) -> str:
    """'max_length 256 → 128, data of SQuADRetrieval': why a recorded evaluation's settings do not match."""
    if recorded is None:
        return "none recorded: evaluated before ablate recorded them"
    changed = [f"{k} {recorded.get(k)} → {current.get(k)}" for k in ("max_length", "device", "dtype", "dim_view")
               if recorded.get(k) != current.get(k)]  # fmt: skip
    changed += [what for key, what in (("model_files", "the model folder's files"), ("packages", "package versions"),
                                       *LATE_SETTINGS.items())
                if recorded.get(key) != current.get(key)]  # fmt: skip
    old_data = recorded.get("data", {})
    changed += [f"data of {t}" for t, h in current["data"].items() if old_data.get(t) != h]
    return ", ".join(changed)


def changed_inputs(recorded: dict[str, str], current: dict[str, str]) -> str:
    """Why a unit's recorded input contents do not match: the files that changed."""
    changed = sorted(k for k in {*recorded, *current} if recorded.get(k) != current.get(k))
    return f"was trained from other contents of {', '.join(changed)}"
