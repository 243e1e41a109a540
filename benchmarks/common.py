"""Shared pieces of the harness benchmarks: offline env, timed harness runs, plain-mteb runs, table + JSON output."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

SCRATCH = Path(tempfile.mkdtemp(prefix="harness-bench-"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MTEB_CACHE", str(SCRATCH / "mteb"))
os.environ.setdefault("HF_HOME", str(SCRATCH / "hf"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("HARNESS_SHARED_DATA", REPO.parent / "shared" / "data"))
RESULTS = REPO / "benchmarks" / "results"


def harness_run(tasks: list[str], data: Path, name: str, *extra: str, model: str = "minilm",
                check: bool = True) -> tuple[float, dict]:  # fmt: skip
    """Wall seconds of one in-process `harness run` and its run.json (scores per task)."""
    from harness.cli import main

    start = time.perf_counter()
    code = main(["run", "--tasks", ",".join(tasks), "--model", model, "--data-dir", str(data), "--out",
                 str(SCRATCH / "runs"), "--run-name", name, "--no-progress", *extra])  # fmt: skip
    wall = time.perf_counter() - start
    if check and code != 0:
        raise SystemExit(f"harness run {name} failed with exit status {code}")
    return wall, json.loads((SCRATCH / "runs" / name / "run.json").read_text())


def scores(record: dict) -> dict[str, float]:
    return {name: round(100 * t["main_score"], 2) for name, t in record["tasks"].items()}


def write_report(name: str, rows: list[list[Any]], headers: list[str], payload: dict[str, Any]) -> None:
    from tabulate import tabulate

    from harness.runs import atomic_write_json
    from harness.sysinfo import environment

    print(tabulate(rows, headers=headers, tablefmt="github"))
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_json(RESULTS / f"{name}.json", {"environment": environment(), **payload})
    print(f"\nwrote {RESULTS / f'{name}.json'}")
