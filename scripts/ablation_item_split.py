"""A finished ablation's Δ on the items of one test task that another task also holds, and on the rest.

Why: a confirmatory ablation tested on a task that shares items with the task the effect was first noticed on
must show that the effect does not rest on those items. `softmask_retrieval_rep` tests on SQuADRetrieval, whose
3000 questions include 332 of XQuADRetrievalEnEn's (XQuAD is SQuAD v1.1 dev translated), the task where
`softmask_lr` first saw the soft mask's retrieval gain. The runs, scores and CI are the report's own
(`reporting.ablation.paired_ci`: Δ ± √((t·se_seeds)² + (z·se_items)²), the report's resample count and seed),
only restricted to each part of the items.

    python scripts/ablation_item_split.py reports/ablations/softmask_retrieval_rep --task SQuADRetrieval \
        --ids-of XQuADRetrievalEnEn

prints a table and writes <report dir>/item_split_<task>_by_<ids-of task>.json (Δ, lo, hi ×1 per arm and part).
Run it where `harness ablate` ran: the report names its run directories relative to there.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np
from tabulate import tabulate

from harness.data import discover_tasks, iter_jsonl
from harness.errors import DataError, UsageError
from harness.runs import atomic_write_json, open_run, read_json
from reporting.ablation import item_rng, paired_ci, scorer_pairs, task_record
from reporting.items import NotTestable, paired_positions, task_items


def query_ids(data_dir: Path, task: str) -> set[str]:
    """The query ids of a local retrieval task (its queries.jsonl)."""
    tasks = discover_tasks(data_dir)
    if task not in tasks:
        raise UsageError(f"--ids-of {task}: no such task under {data_dir} (tasks there: {', '.join(sorted(tasks))})")
    path = tasks[task].path / "queries.jsonl"
    if not path.is_file():
        raise UsageError(f"--ids-of {task}: {path} does not exist; only a retrieval task's query ids can split items")
    return {str(row["_id"]) for row in iter_jsonl(path, ("_id",))}


def split(report: dict[str, Any], task: str, ids: set[str]) -> dict[str, dict[str, Any]]:
    """Per arm against the reference: the Δ row on the task's items in ``ids``, on the rest, and on all of them."""
    tasks = report["dev"] + report["test"]
    if task not in tasks:
        raise UsageError(f"--task {task}: not a task of this report (tasks: {', '.join(tasks)})")
    ref = report["arms"][report["reference"]]["runs"]
    n_boot, boot_seed = report["bootstrap"]["n_boot"], report["bootstrap"]["seed"]
    rows: dict[str, dict[str, Any]] = {}
    for arm, spec in report["arms"].items():
        if arm == report["reference"]:
            continue
        seeds = sorted(set(ref) & set(spec["runs"]), key=int)
        folders = [Path(runs[s]["eval"]) for s in seeds for runs in (ref, spec["runs"])]
        missing = [str(f) for f in folders if not f.is_dir()]
        if missing:
            raise UsageError(f"run directory {missing[0]} not found from {Path.cwd()}: the report names its runs "
                             "relative to where `harness ablate` ran; run this from there")  # fmt: skip
        runs = [open_run(f) for f in folders]
        try:
            items = [task_items(r, task, task_record(r, task)) for r in runs]
            keys, positions = paired_positions(items)
        except (NotTestable, DataError) as exc:
            raise UsageError(f"--task {task}: its per-item data cannot be paired ({exc})") from None
        if not items[0].keyed:
            raise UsageError(f"--task {task}: its items are {items[0].unit} named by position, not query ids; only a "
                             "retrieval task's queries can be split by another task's ids")  # fmt: skip
        inside = np.isin(np.asarray(keys), sorted(ids))
        if not inside.any():
            raise UsageError(f"--task {task}: none of its {len(keys)} query ids is one of the {len(ids)} given")
        rows[arm] = {}
        for part, mask in (("shared", inside), ("rest", ~inside), ("all", np.ones(len(keys), bool))):
            if not mask.any():
                rows[arm][part] = {"delta": None, "lo": None, "hi": None, "items": 0, "verdict": "not tested: no items"}
                continue
            pairs = scorer_pairs(items, [p[mask] for p in positions])
            everything = np.arange(int(mask.sum()))
            delta = float(np.mean([c(everything) - r(everything) for r, c in pairs]))
            salt = task if part == "all" else f"{task}:{part}"  # "all" draws the report's own resamples
            try:
                ci = paired_ci(pairs, int(mask.sum()), delta, n_boot, item_rng(boot_seed, salt))
            except NotTestable as exc:
                rows[arm][part] = {"delta": delta, "lo": None, "hi": None, "items": int(mask.sum()),
                                   "verdict": f"not tested: {exc}"}  # fmt: skip
                continue
            rows[arm][part] = {"delta": delta, "lo": ci["lo"], "hi": ci["hi"], "items": int(mask.sum()),
                               "se_items": ci["se_items"], "se_seeds": ci["se_seeds"], "verdict": ci["verdict"],
                               "seeds": len(seeds)}  # fmt: skip
    return rows


def _numbers(row: dict[str, Any]) -> list[str]:
    if row["delta"] is None:
        return ["—", "—"]
    ci = "—" if row["lo"] is None else f"[{100 * row['lo']:+.2f}, {100 * row['hi']:+.2f}]"
    return [f"{100 * row['delta']:+.2f}", ci]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report_dir", type=Path, help="reports/ablations/<name> (its report.json)")
    parser.add_argument("--task", required=True, help="the report's task whose items are split")
    parser.add_argument("--ids-of", required=True, help="a local retrieval task: its query ids are the shared part")
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    args = parser.parse_args(argv)
    try:
        report = read_json(args.report_dir / "report.json")
        rows = split(report, args.task, query_ids(args.data_dir, args.ids_of))
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    where = {"shared": f"also in {args.ids_of}", "rest": f"not in {args.ids_of}", "all": "all"}
    table = [[arm, f"{where[part]} ({row['items']})", *_numbers(row), row["verdict"]]
             for arm, parts in rows.items() for part, row in parts.items()]  # fmt: skip
    print(tabulate(table, headers=["arm", f"{args.task} items", "Δ ×100", "95% CI", "verdict"], tablefmt="github",
                   disable_numparse=True))  # fmt: skip
    out = args.report_dir / f"item_split_{args.task}_by_{args.ids_of}.json"
    atomic_write_json(out, {"report": report["name"], "reference": report["reference"], "task": args.task,
                            "ids_of": args.ids_of, "bootstrap": report["bootstrap"], "comparisons": rows})  # fmt: skip
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
