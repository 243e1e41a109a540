"""Suites: a name → an ordered list of task names.

Official suites come from mteb's benchmark registry, with the benchmark's own task objects: a benchmark evaluates
some tasks on fewer splits or subsets than the task defines (ATEC on test alone in MTEB(cmn, v1), STS17 on en-en
alone in MTEB(eng, v2)), and a run of the suite must score what the benchmark scores. Local suites (`local`,
`local-en`, `local-zh`, `local-multi`, ...) are every task folder of a data root, per language folder.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from harness.data import LocalTask
from harness.errors import UsageError, unknown

OFFICIAL_SUITES = {"cmteb": "MTEB(cmn, v1)", "mteb-en": "MTEB(eng, v2)", "mteb-en-v1": "MTEB(eng, v1)"}
# The default model per suite: Chinese needs a Chinese-capable model; English runs the fast MiniLM.
DEFAULT_MODEL = {"cmteb": "me5-small", "mteb-en": "minilm", "mteb-en-v1": "minilm", "local-en": "minilm"}


@dataclass(frozen=True)
class Suite:
    name: str
    tasks: list[str]
    description: str
    official: dict[str, Any] = field(default_factory=dict)  # task name → the benchmark's (filtered) mteb task


def official_benchmark(name: str) -> str:
    """The mteb benchmark an official suite stands for (what `harness leaderboard --suite` ranks over)."""
    if name not in OFFICIAL_SUITES:
        raise UsageError(f"--suite {name!r}: choose one of {', '.join(OFFICIAL_SUITES)}")
    return OFFICIAL_SUITES[name]


def official_suite(name: str) -> Suite:
    import mteb  # seconds to import: only when an official suite is resolved, never for `--help` or `list`

    benchmark = mteb.get_benchmark(official_benchmark(name))
    # copies: mteb hands out the same task objects on every call, and a run loads data into them and advances
    # their random state
    tasks = {t.metadata.name: copy.deepcopy(t) for t in benchmark.tasks}
    return Suite(name, list(tasks), f"mteb {benchmark.name}", tasks)


def local_suites(local_tasks: dict[str, LocalTask]) -> dict[str, Suite]:
    suites = {"local": Suite("local", sorted(local_tasks), "every task folder of the data root")}
    for lang in sorted({t.lang_dir for t in local_tasks.values()}):
        names = sorted(n for n, t in local_tasks.items() if t.lang_dir == lang)
        suites[f"local-{lang}"] = Suite(f"local-{lang}", names, f"task folders under {lang}/ of the data root")
    return suites


def all_suite_names(local_tasks: dict[str, LocalTask]) -> list[str]:
    return list(OFFICIAL_SUITES) + list(local_suites(local_tasks))


def get_suite(name: str, local_tasks: dict[str, LocalTask]) -> Suite:
    if name in OFFICIAL_SUITES:
        return official_suite(name)
    local = local_suites(local_tasks)
    if name in local:
        return local[name]
    raise unknown("suite", name, all_suite_names(local_tasks), "see `harness list suites`")


def default_model(suite: str | None) -> str:
    return DEFAULT_MODEL.get(suite or "", "me5-small")
