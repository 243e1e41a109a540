"""Task folders cut for tests: fewer rows, with task.json's `counts` saying so (the harness checks them)."""

from __future__ import annotations

import json
from pathlib import Path


def cut_rows(folder: Path, n: int, filename: str = "test.jsonl") -> list[str]:
    """Keep the first ``n`` lines of ``folder/filename`` and record the count in task.json; the kept lines."""
    path = folder / filename
    rows = path.read_text(encoding="utf-8").splitlines()[:n]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    spec = folder / "task.json"
    meta = json.loads(spec.read_text(encoding="utf-8"))
    if "counts" in meta:
        meta["counts"] = {**meta["counts"], filename: len(rows)}
        spec.write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return rows
