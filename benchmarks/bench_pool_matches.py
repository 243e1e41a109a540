"""False hard negatives in mined pools: served slots holding a text the training data labels as a match of the query.

A query's pool must not serve a text the data itself calls its match: InfoNCE would push the query away from it,
and DHNM keeps it (a match's cosine starts high, so the S₀ < 0.4 drop never fires). Before stop 46 a pool excluded
the query and its own positives only; paraphrase data labels pairs both ways and in clusters, so the reverse pair
(b, a) and queries sharing a positive were mined. Now it excludes the query's whole component over the labelled
pairs (train.mining.labelled_matches), for the CLR task also English texts sharing a translation
(train.clr.ParallelTranslator.shared). For configs/supervised.toml's retrieval and clr tasks this mines each
task's pools with BM25 (the config's scorer and depth) both ways and counts, among the K slots each row is served
first (after the skipped top ranks, its given negative first, as train/multitask.py attach_pools lays them out),
the rows and slots holding a labelled match (its component, links included). A given negative the rows label a
match of its query (a row whose negative is its positive) is dropped now too.

    python benchmarks/bench_pool_matches.py [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

from common import DEFAULT_DATA, REPO, write_report

from train.clr import ParallelTranslator
from train.mining import labelled_matches, mine_pools
from train.multitask import _files, pool_layout, read_rows


def served(pool: list[str], given: str | None, skip: int, k: int) -> list[str]:
    """The K slots a row starts with, in attach_pools' layout (`pool_layout`)."""
    laid, start = pool_layout(pool, given, skip)
    return laid[start : start + k]


def measure(source: list[dict], links: list[tuple[str, str]], depth: int, skip: int, k: int) -> dict:
    """Rows and served slots holding a labelled match, pools mined excluding own positives vs the component."""
    queries = list(dict.fromkeys(r["query"] for r in source))
    own: dict[str, set[str]] = {}
    for r in source:
        own.setdefault(r["query"], set()).add(r["positive"])
    truth = labelled_matches([*((r["query"], r["positive"]) for r in source), *links])
    corpus = [r["positive"] for r in source] + [r["negative"] for r in source if "negative" in r]
    out = {"rows": len(source), "queries": len(queries), "corpus": len(set(corpus)),
           "largest_component": max(len(g) for g in truth.values())}  # fmt: skip
    for name, excluded in (("before", [own[q] for q in queries]), ("now", [truth[q] for q in queries])):
        pools = dict(zip(queries, (p["candidates"] for p in mine_pools(queries, excluded, corpus, "bm25", depth)),
                         strict=True))  # fmt: skip
        given = [None if name == "now" and r.get("negative") in truth[r["query"]] else r.get("negative")
                 for r in source]  # now: a given negative the rows label a match is dropped (attach_pools)
        slots = [served(pools[r["query"]], n, skip, k) for r, n in zip(source, given, strict=True)]
        hits = [sum(c in truth[r["query"]] for c in row) for r, row in zip(source, slots, strict=True)]
        out[name] = {"rows_with_a_match": sum(h > 0 for h in hits), "match_slots": sum(hits),
                     "slots": sum(map(len, slots))}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="data root (train/ folders)")
    args = parser.parse_args()
    cfg = tomllib.loads((REPO / "configs" / "supervised.toml").read_text(encoding="utf-8"))
    depth, skip, k = cfg.get("pool_depth", 32), cfg["dhnm"]["skip_top"], cfg.get("hard_negatives", 7)
    retrieval = read_rows(_files(str(args.data_dir), cfg["tasks"]["retrieval"]["data"]), "retrieval")
    translator = ParallelTranslator.from_dir(args.data_dir / cfg["tasks"]["clr"]["parallel"])
    clr = [{"query": t, "positive": t} for t in translator.source_texts()]  # the clr task's source rows
    results = {"retrieval": measure(retrieval, [], depth, skip, k),
               "clr": measure(clr, translator.shared(), depth, skip, k)}  # fmt: skip
    shown = {task: {when: f"{r[when]['rows_with_a_match']} ({r[when]['match_slots']})" for when in ("before", "now")}
             for task, r in results.items()}  # fmt: skip
    rows = [[task, r["rows"], r["largest_component"], shown[task]["before"], shown[task]["now"], r["now"]["slots"]]
            for task, r in results.items()]  # fmt: skip
    write_report("bench_pool_matches", rows, ["task", "rows", "largest component",
                                              "rows with a labelled match served (slots), before",
                                              "now", "slots served now"],
                 {"data_dir": args.data_dir.resolve(), "scorer": "bm25", "depth": depth, "skip_top": skip, "k": k,
                  "tasks": results})  # fmt: skip


if __name__ == "__main__":
    main()
