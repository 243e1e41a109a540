"""Rebuild harness/sample_data: a few hundred real rows per evaluation task of a full data root.

    python scripts/make_sample_data.py --src ../shared/data --dst harness/sample_data

Sampling is seeded (42) and recorded in each task.json ("sampling"), with source and licence kept, so the
embedded default data is traceable row by row to the public originals listed in PROVENANCE.md. The sample holds
the tasks in EMBEDDED (a data root may hold more; `--tasks all` takes every one). Chinese texts are cut at
ZH_MAX_CHARS characters (rows stay whole otherwise): the long ones (IFlyTek app descriptions, CSL abstracts)
cost the 4-bit me5-small engine several times more per row than a sentence, and the default
`harness run --suite cmteb` must stay within 3 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

from harness.data import discover_tasks, iter_jsonl

SEED = 42
# Rows per file scale with text length: about CHAR_BUDGET characters per file, within [MIN_ROWS, MAX_ROWS],
# so the default `harness run --suite cmteb` stays a few minutes with the slow 4-bit CPU me5-small engine.
CHAR_BUDGET, MIN_ROWS, MAX_ROWS, CLUSTER_ROWS = 6000, 40, 200, (80, 300)
QUERIES, CORPUS, RERANK_ROWS = 100, 400, 40
ZH_MAX_CHARS = 128  # about 90 me5-small tokens; applied to every text field of the zh/ tasks
EMBEDDED = (
    "AFQMC", "AGNewsClusteringS2S", "ATEC", "BQ", "Banking77Classification", "CLSClusteringP2P", "CLSClusteringS2S",
    "CSLTitleRetrieval", "Cmnli", "EmotionClassification", "IFlyTek", "MSRPC", "Ocnli", "OnlineShopping", "PAWSX",
    "QBQTC", "SICK-R", "STS12", "STS13", "STS15", "STS16", "STSB", "STSBenchmark", "STSBenchmarkZhEn", "SciFact",
    "TNews", "TatoebaAraEng", "TatoebaDeuEng", "TatoebaFraEng", "TatoebaJpnEng", "TatoebaKorEng", "TatoebaRusEng",
    "TatoebaSpaEng", "TrecQAReranking",
)  # fmt: skip


def _cut(row: dict[str, Any], limit: int | None) -> tuple[dict[str, Any], bool]:
    """The row with every text field (strings and lists of strings, not ids or labels) cut at `limit` chars."""
    if limit is None:
        return row, False
    out, cut = {}, False
    for key, value in row.items():
        if key not in ("_id", "label") and isinstance(value, str) and len(value) > limit:
            value, cut = value[:limit], True
        elif key not in ("_id", "label") and isinstance(value, list) and any(
                isinstance(v, str) and len(v) > limit for v in value):  # fmt: skip
            value, cut = [v[:limit] if isinstance(v, str) else v for v in value], True
        out[key] = value
    return out, cut


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")


def _sample(rows: list[Any], n: int, rng: random.Random) -> list[Any]:
    return rows if len(rows) <= n else rng.sample(rows, n)


def _row_chars(row: dict[str, Any]) -> int:
    return sum(len(v) if isinstance(v, str) else sum(map(len, v)) if isinstance(v, list) else 0
               for k, v in row.items() if k not in ("_id", "label"))  # fmt: skip


def _budget_rows(rows: list[dict[str, Any]], lo: int = MIN_ROWS, hi: int = MAX_ROWS) -> int:
    mean = sum(map(_row_chars, rows)) / max(len(rows), 1)
    return int(min(hi, max(lo, CHAR_BUDGET // max(mean, 1))))


def _per_label(rows: list[dict[str, Any]], per_label: int, rng: random.Random) -> list[dict[str, Any]]:
    by_label: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_label[row["label"]].append(row)
    picked = [r for label in sorted(by_label, key=str) for r in _sample(by_label[label], per_label, rng)]
    rng.shuffle(picked)
    return picked


def sample_task(src: Path, dst: Path, kind: str, rng: random.Random,
                max_chars: int | None = None) -> tuple[dict[str, int], int]:  # fmt: skip
    """Copy a sample of one task folder; returns rows per written file and how many rows had a text cut."""
    counts: dict[str, int] = {}
    if kind == "Retrieval":
        queries = list(iter_jsonl(src / "queries.jsonl"))
        lines = (src / "qrels.tsv").read_text(encoding="utf-8").splitlines()
        qrels = [line.split("\t") for line in lines[1:] if line.strip()]
        judged = sorted({q for q, _, _ in qrels})
        keep_q = set(_sample(judged, QUERIES, rng))
        kept_qrels = [r for r in qrels if r[0] in keep_q]
        relevant = {d for _, d, _ in kept_qrels}
        corpus = list(iter_jsonl(src / "corpus.jsonl"))
        others = [d for d in corpus if d["_id"] not in relevant]
        keep_d = relevant | {d["_id"] for d in _sample(others, max(CORPUS - len(relevant), 0), rng)}
        files = {
            "queries.jsonl": [q for q in queries if q["_id"] in keep_q],
            "corpus.jsonl": [d for d in corpus if d["_id"] in keep_d],
        }
        (dst / "qrels.tsv").write_text(lines[0] + "\n" + "".join("\t".join(r) + "\n" for r in kept_qrels), "utf-8")
        counts["qrels.tsv"] = len(kept_qrels)
    elif kind == "Classification":
        train, test = list(iter_jsonl(src / "train.jsonl")), list(iter_jsonl(src / "test.jsonl"))
        n_labels = len({r["label"] for r in train})
        per_label = min(16, max(1, _budget_rows(train, 1, 10**9) // n_labels))
        files = {"train.jsonl": _per_label(train, per_label, rng), "test.jsonl": _sample(test, _budget_rows(test), rng)}
    else:
        rows = list(iter_jsonl(src / "test.jsonl"))
        n = {"Clustering": _budget_rows(rows, *CLUSTER_ROWS), "Reranking": RERANK_ROWS}.get(kind) or _budget_rows(rows)
        files = {"test.jsonl": _sample(rows, n, rng)}
    cut_rows = 0
    for name, rows in files.items():
        pairs = [_cut(row, max_chars) for row in rows]
        cut_rows += sum(cut for _, cut in pairs)
        _write_jsonl(dst / name, [row for row, _ in pairs])
        counts[name] = len(rows)
    return counts, cut_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--src", type=Path, default=Path("../shared/data"))
    parser.add_argument("--dst", type=Path, default=Path("harness/sample_data"))
    parser.add_argument("--tasks", default=",".join(EMBEDDED), help="comma-separated task names, or `all`")
    args = parser.parse_args()
    if args.dst.exists():
        shutil.rmtree(args.dst)
    provenance = [
        "# Embedded sample data: provenance and licences",
        "",
        f"Real rows drawn (seed {SEED}) from each evaluation task of the full data root by "
        "`scripts/make_sample_data.py`; every task.json keeps its original source and licence. Texts of the "
        f"Chinese (zh/) tasks are cut at {ZH_MAX_CHARS} characters (rows cut: last column) so that the default "
        "`harness run --suite cmteb` stays short.",
        "",
        "| task | type | rows | source repo@commit | licence | rows cut |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    wanted = None if args.tasks == "all" else set(args.tasks.split(","))
    for name, task in sorted(discover_tasks(args.src).items()):
        if wanted is not None and name not in wanted:
            continue
        rng = random.Random(f"{SEED}-{name}")
        dst = args.dst / task.lang_dir / name
        dst.mkdir(parents=True)
        max_chars = ZH_MAX_CHARS if task.lang_dir == "zh" else None
        counts, cut_rows = sample_task(task.path, dst, task.type, rng, max_chars)
        meta = dict(task.meta)
        original = meta.get("counts", {})
        taken = ", ".join(f"{counts[f]} of {original.get(f, '?')} rows of {f}" for f in counts)
        cut = f" Texts cut at {max_chars} characters ({cut_rows} rows)." if cut_rows else ""
        meta["sampling"] = f"embedded sample (seed {SEED}): {taken}.{cut} Original: {meta.get('sampling')}"
        meta["counts"] = counts
        (dst / "task.json").write_text(json.dumps(meta, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        src = meta.get("source", {})
        origin = f"{src.get('repo')}@{str(src.get('commit'))[:10]}"
        provenance.append(f"| {name} | {task.type} | {sum(counts.values())} | {origin} | {meta.get('license')} | "
                          f"{cut_rows} |")  # fmt: skip
    (args.dst / "PROVENANCE.md").write_text("\n".join(provenance) + "\n", encoding="utf-8")
    print(f"wrote {args.dst}")


if __name__ == "__main__":
    main()
