"""What keys a finished task: every setting that changes one of its vectors or its score.

A rerun into the same run directory skips a task only when the identity recorded with its result equals the
rerun's (docs/harness.md, "Reruns and safety"); any difference evaluates the task again, so a score is never
relabelled with settings it was not computed under.
"""

from __future__ import annotations

from typing import Any

from harness.embedder import Embedder
from harness.runs import IMPLIED_DEFAULTS, RAW_VIEW, changed_entries
from harness.sysinfo import scoring_packages
from harness.tasks import MIRROR, ResolvedTask, is_aggregate, mirror_identity


def data_identity(resolved: ResolvedTask) -> str:
    """Mirror: the hash of its files and its type's MIRROR_LAYOUT (how its rows become mteb's dataset). Official:
    the dataset id and the revision mteb pins, plus the splits and subsets when a benchmark evaluates fewer than
    the task defines (STS17 in MTEB(eng, v2): en-en), so a suite's result and a whole-task result of one task are
    never taken for each other."""
    if resolved.source == MIRROR and resolved.local is not None:
        return mirror_identity(resolved.local)
    if is_aggregate(resolved.task):  # no dataset of its own: its subtasks' (each scored whole)
        return " + ".join(data_identity(ResolvedTask(sub.metadata.name, resolved.source, sub.metadata.type, sub))
                          for sub in resolved.task.tasks)  # fmt: skip
    if resolved.task is not None:
        task, dataset = resolved.task, resolved.task.metadata.dataset
        splits, subsets = list(task.eval_splits), list(task.hf_subsets)
        narrowed = (splits, subsets) != (list(task.metadata.eval_splits), task.metadata.hf_subsets)
        return f"{dataset['path']}@{dataset.get('revision')}" + (
            f" splits={','.join(splits)} subsets={','.join(subsets)}" if narrowed else "")
    return "missing"


def run_identity(embedder: Embedder, dims: list[int], mteb_version: str) -> dict[str, Any]:
    """The part of every task's identity that the run decides (model, numerics and the hardware that computed
    them, prompts, dims, scoring function, the versions of mteb and of the packages its scorers run on): every key
    but `harness.runs.TASK_KEYS`, recorded once
    in run.json (`identity`), so summary.md and the leaderboard can flag tasks kept from runs with other settings
    (`harness.runs.other_settings`)."""
    identity = {
        "model_fingerprint": embedder.fingerprint,
        "dtype": embedder.dtype,
        "device": embedder.device_type,
        "max_length": embedder.max_length,
        "pooling": embedder.pooling,
        "prompts": {"query": embedder.prompt("query"), "document": embedder.prompt("document"),
                    "none": embedder.prompt(None)},  # fmt: skip
        "dims": list(dims),
        "mteb": mteb_version,
        "scoring": scoring_packages(),  # since stop 54 (audit): an upgrade of the scorers' packages evaluates again
    }
    # what else the cache's namespace holds because it moves vectors (Embedder.cache_identity): the versions of the
    # packages that compute them and, below float32 on a CPU, the CPU model. Before stop 46 (audit) a rerun after an
    # upgrade kept every finished task, listed under the new versions in run.json's environment
    identity.update(embedder.kernel_identity())
    # keys absent at their default (IMPLIED_DEFAULTS, which comparisons fill back in), so results from before stay
    if embedder.similarity_fn_name != IMPLIED_DEFAULTS["similarity_fn_name"]:
        identity["similarity_fn_name"] = embedder.similarity_fn_name
    if embedder.task_prompts:  # absent without them, so other models' results stay; old runs of such a folder redo
        identity["task_prompts"] = dict(embedder.task_prompts)
    if embedder.pad_multiple != IMPLIED_DEFAULTS["pad_multiple"]:  # 1: padding to the longest
        identity["pad_multiple"] = embedder.pad_multiple
    if dims:  # dim views are raw prefixes (stop 31 for raw vectors, 35 for unit ones): dims recorded before redo
        identity["dim_view"] = RAW_VIEW
    return {**identity, "kernels": embedder.kernels} if embedder.kernels else identity


def task_identity(resolved: ResolvedTask, embedder: Embedder, dims: list[int], mteb_version: str) -> dict[str, Any]:
    """The key a finished task is recorded under: the run's settings plus the task's source and data."""
    return {**run_identity(embedder, dims, mteb_version), "source": resolved.source, "data": data_identity(resolved)}


def describe_change(old: dict[str, Any] | None, new: dict[str, Any]) -> str:
    """'max_length 256 → 8, dtype float32 → bfloat16': what differs between a recorded and a current identity."""
    if not old:
        return "no settings recorded with the earlier result"
    # keys of either side: a setting written only when not at its default (pad_multiple, task_prompts...) can be
    # dropped; before stop 49 (audit) only the new side's keys were read and such a rerun blamed damaged files
    keys = dict.fromkeys([*old, *new])
    changed = [_change(key, old.get(key, UNSET), new.get(key, UNSET)) for key in keys
               if old.get(key, UNSET) != new.get(key, UNSET)]  # fmt: skip
    return ", ".join(changed) or "result files missing or damaged"


UNSET = "(not set)"


def _change(key: str, old: Any, new: Any) -> str:
    """One key's change; a value that only gained a tail (a mirror's data identity gaining its layout) shows it,
    and a long table of versions the entries that changed (`scoring.scikit-learn '1.9.1' → '1.6.1'`)."""
    if isinstance(old, dict) and isinstance(new, dict):
        entries = changed_entries(key, old, new)
        if len(entries) > 1 or entries[0][0] != key:
            return ", ".join(_change(name, UNSET if a is None else a, UNSET if b is None else b)
                             for name, a, b in entries)  # fmt: skip
    if isinstance(old, str) and isinstance(new, str) and new.startswith(old) and UNSET not in (old, new):
        return f"{key} {_short(old)} + {new[len(old):].strip()!r}"
    return f"{key} {_short(old)} → {_short(new)}"


def _short(value: Any) -> str:
    if value is UNSET:
        return UNSET
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:24]}…{text[-8:]}"
