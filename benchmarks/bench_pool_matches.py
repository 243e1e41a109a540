"""False hard negatives in mined pools: served slots holding a text the training data labels as a match of the query.

A query's pool must not serve a text the data itself calls its match: InfoNCE would push the query away from it,
and DHNM keeps it (a match's cosine starts high, so the S₀ < 0.4 drop never fires). Before stop 46 a pool excluded
the query and its own positives only; paraphrase data labels pairs both ways and in clusters, so the reverse pair
(b, a) and queries sharing a positive were mined. Stops 46-49 excluded the query's whole component over the task's
labelled pairs (train.mining.labelled_matches), for the CLR task also English texts sharing each one's first
translation; since stop 50 the component spans every task of the stage (a pair one task trains as a match) and every
translation (train.clr.ParallelTranslator.shared). For configs/supervised.toml's retrieval and clr tasks this mines
each task's pools with BM25 (the config's scorer and depth) under the three rules and counts, among the K slots each
row is served first (after the skipped top ranks, its given negative first, as train/multitask.py attach_pools lays
them out), the rows and slots holding a labelled match: of the task's component (every translation's links
included), and after the ";" of the stage's. A given negative the rows label a match of its query (a row whose
negative is its positive) is dropped since stop 46.

The same count for every committed ablation's supervised stage (configs/ablations/*.toml: its stage config, the
arms' task settings, `max_rows` cutting the queries and not the corpus, as train/multitask.py does), with the number
of its queries whose whole mined pool (every rank to the depth, which DHNM's replacements draw from) differs between
stop 46's two rules, and between stops 46-49's and stop 50's: a report trained on identical pools is unchanged by
the rule; the others were trained on the old pools. For the CLR task every English source text is counted (a
seed's CLR examples use a subset of them).
Last, `in_batch`: over one epoch of each task's batches, the columns another row brings to query i (its positive
and served hard negatives) that the data labels a match of i's query and the text rule of the loss leaves; the
loss masks them by group since stop 47 (train.losses.counted_candidates, rule 3).

    python benchmarks/bench_pool_matches.py [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path

from common import DEFAULT_DATA, REPO, run_main, write_report

from train.clr import ParallelTranslator, shared_translation_links
from train.data import permutation
from train.mining import labelled_matches, mine_pools
from train.multitask import _files, _pairs, pool_layout, read_rows


def served(pool: list[str], given: str | None, skip: int, k: int) -> list[str]:
    """The K slots a row starts with, in attach_pools' layout (`pool_layout`)."""
    laid, start = pool_layout(pool, given, skip)
    return laid[start : start + k]


def measure(source: list[dict], links: list[tuple[str, str]], depth: int, skip: int, k: int, batch_size: int,
            used: int | None = None, stage_links: list[tuple[str, str]] = (), old_links: list[tuple[str, str]] = ()
            ) -> dict:  # fmt: skip
    """Rows and served slots holding a labelled match over the first ``used`` rows (all by default; the corpus and
    the labelled pairs are every row's either way), pools mined under three rules: ``before`` (stop 46) excludes
    the query's own positives, ``task`` (stops 46-49) its component over the task's rows and ``old_links`` (a CLR
    task's first-translation links), ``now`` (stop 50) over every task of the stage (``stage_links``: their pairs
    and every translation's links). ``match_slots`` counts against the task's components (``links``: every
    translation's), ``stage_match_slots`` against the stage's; and ``in_batch`` under the task's."""
    queries = list(dict.fromkeys(r["query"] for r in source[:used]))
    own: dict[str, set[str]] = {}
    for r in source:
        own.setdefault(r["query"], set()).add(r["positive"])
    pairs = [(r["query"], r["positive"]) for r in source]
    truth = labelled_matches([*pairs, *links])
    stage = labelled_matches([*pairs, *links, *stage_links])
    rule = {"before": own, "task": labelled_matches([*pairs, *old_links]), "now": stage}
    corpus = [r["positive"] for r in source] + [r["negative"] for r in source if "negative" in r]
    out = {"rows": len(source), "queries": len(queries), "corpus": len(set(corpus)),
           "largest_component": max(len(g) for g in truth.values())}  # fmt: skip
    mined, laid = {}, {}
    for name, excluded in rule.items():
        mined[name] = dict(zip(queries, (p["candidates"] for p in mine_pools(queries, [excluded[q] for q in queries],
                                                                              corpus, "bm25", depth)), strict=True))
        rows = source[:used]
        given = [None if name != "before" and r.get("negative") in excluded[r["query"]] else r.get("negative")
                 for r in rows]  # since stop 46 a given negative the rows label a match is dropped (attach_pools)
        slots = laid[name] = [served(mined[name][r["query"]], n, skip, k) for r, n in zip(rows, given, strict=True)]
        hits = [sum(c in truth[r["query"]] for c in row) for r, row in zip(rows, slots, strict=True)]
        stage_hits = [sum(c in stage[r["query"]] for c in row) for r, row in zip(rows, slots, strict=True)]
        out[name] = {"rows_with_a_match": sum(h > 0 for h in hits), "match_slots": sum(hits),
                     "rows_with_a_stage_match": sum(h > 0 for h in stage_hits), "stage_match_slots": sum(stage_hits),
                     "slots": sum(map(len, slots)), "given_negatives_dropped": sum(g is None for g in given)
                     - sum("negative" not in r for r in rows)}  # fmt: skip
    out["used_rows"], out["used_queries"] = len(source[:used]), len(queries)
    out["pools_differing"] = sum(mined["before"][q] != mined["task"][q] for q in queries)
    out["pools_differing_stop50"] = sum(mined["task"][q] != mined["now"][q] for q in queries)
    out["in_batch"] = in_batch(source[:used], laid["task"], own, truth, batch_size)
    return out


def in_batch(rows: list[dict], slots: list[list[str]], own: dict[str, set[str]], truth: dict[str, frozenset[str]],
             batch_size: int) -> dict:
    """Over one epoch of batches (one seeded random order of the rows, as train/multitask.py draws), the columns
    another row gives query i (its positive, its served hard negatives) that the data labels a match of i's query
    and the text rule leaves (not a positive of i's query text, not the query itself): the loss's group rule
    masks them since stop 47 (`train.losses.counted_candidates` rule 3)."""
    order = permutation(len(rows), 0, "task", 0)
    hit_rows = columns = candidates = 0
    for start in range(0, len(order) - batch_size + 1, batch_size):
        batch = [int(i) for i in order[start : start + batch_size]]
        for i in batch:
            query = rows[i]["query"]
            texted = own[query] | {query}
            found = sum(text in truth[query] and text not in texted
                        for j in batch if j != i for text in (rows[j]["positive"], *slots[j]))  # fmt: skip
            hit_rows, columns = hit_rows + (found > 0), columns + found
            candidates += sum(1 + len(slots[j]) for j in batch if j != i)
    return {"batch_size": batch_size, "rows": len(order) // batch_size * batch_size, "rows_with_a_match": hit_rows,
            "match_columns": columns, "columns": candidates}


def stage_tasks(stage_cfg: dict, arm_sets: list[str] = ()) -> dict[str, dict]:
    """A supervised stage config's tasks (the arms' `tasks.*` settings applied: the CLR arm adds its task), each spec
    holding the stage's K, depth and skip unless it sets its own K."""
    from train.config import merge_tables, parse_set

    stage_cfg = merge_tables(stage_cfg, parse_set(list(arm_sets)))
    shared = {"hard_negatives": stage_cfg.get("hard_negatives", 7), "depth": stage_cfg.get("pool_depth", 32),
              "skip": stage_cfg.get("dhnm", {}).get("skip_top", 3)}  # fmt: skip
    return {name: {**shared, **spec} for name, spec in stage_cfg.get("tasks", {}).items()}


def pooled(tasks: dict[str, dict]) -> dict[str, dict]:
    return {name: spec for name, spec in tasks.items() if spec.get("kind") in ("retrieval", "clr")}


def ablation_stages(ablation: Path) -> list[tuple[str, dict[str, dict]]]:
    """(stage config name, its tasks) for each supervised stage of an ablation config."""
    cfg = tomllib.loads(ablation.read_text(encoding="utf-8"))
    arm_sets = [s for arm in cfg.get("arms", {}).values() for s in arm.get("set", []) if s.startswith("tasks.")]
    stages = [(Path(st["config"]).stem, tomllib.loads((REPO / st["config"]).read_text(encoding="utf-8")))
              for st in cfg.get("stages", [])]  # fmt: skip
    return [(name, stage_tasks(stage, arm_sets)) for name, stage in stages if stage.get("stage") == "supervised"]


def first_translation_links(translator: ParallelTranslator) -> list[tuple[str, str]]:
    """Stops 46-49's links: English texts sharing a translation, each text's first translation only."""
    return shared_translation_links(table.items() for table in translator.tables.values())


def task_rows(data_dir: Path, spec: dict) -> tuple[list[dict], list[tuple[str, str]], list[tuple[str, str]]]:
    """(source rows, every translation's links and the task's own pairs, first translations' links) of a task: a
    CLR task without `data` pools its English source texts, linked by translation; another task its files' rows."""
    if spec["kind"] == "clr":
        translator = ParallelTranslator.from_dir(data_dir / spec["parallel"])
        source = (read_rows(_files(str(data_dir), spec["data"]), "retrieval") if spec.get("data")
                  else [{"query": t, "positive": t} for t in translator.source_texts()])  # fmt: skip
        own = [(translation, text) for table in translator.tables.values() for text, translation in table.items()]
        return source, translator.shared() + own, first_translation_links(translator)  # own: every CLR row a seed
        # can draw (a text and its first translation), which the stage counts as labelled since stop 50
    kind = "sts" if spec["kind"] == "sts" else "retrieval"
    return (read_rows(_files(str(data_dir), spec["data"]), kind) if spec["kind"] != "classification" else []), [], []


def measure_stage(data_dir: Path, tasks: dict[str, dict]) -> dict[str, dict]:
    """`measure` on each pooled task of a stage, the stage's links being every task's (query, positive) pairs and
    translation links (what train/multitask.py build_tasks joins since stop 50)."""
    rows = {name: task_rows(data_dir, spec) for name, spec in tasks.items()}
    links = [pair for source, shared, _ in rows.values() for pair in [*_pairs(source), *shared]]
    return {name: measure(rows[name][0], rows[name][1], spec["depth"], spec["skip"], spec["hard_negatives"],
                          spec["batch_size"], spec.get("max_rows"), links, rows[name][2])
            for name, spec in pooled(tasks).items()}  # fmt: skip


def shown_of(result: dict, when: str) -> str:
    r = result[when]
    return f"{r['rows_with_a_match']} ({r['match_slots']}; {r['rows_with_a_stage_match']} ({r['stage_match_slots']}))"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="data root (train/ folders)")
    args = parser.parse_args()
    cfg = stage_tasks(tomllib.loads((REPO / "configs" / "supervised.toml").read_text(encoding="utf-8")))
    results = measure_stage(args.data_dir, cfg)
    stages: dict[str, dict] = {}  # one entry per stage config and task, with the ablations that train it
    for ablation in sorted((REPO / "configs" / "ablations").glob("*.toml")):
        for stage, tasks in ablation_stages(ablation):
            if not any(key.startswith(f"{stage}:") for key in stages):
                for name, result in measure_stage(args.data_dir, tasks).items():
                    stages[f"{stage}:{name}"] = {"ablations": [], **result}
            for key in (key for key in stages if key.startswith(f"{stage}:")):
                stages[key]["ablations"].append(ablation.stem)
    rows = [[task, r["used_rows"], r["largest_component"], shown_of(r, "before"), shown_of(r, "task"),
             shown_of(r, "now"), r["now"]["slots"], f"{r['pools_differing']} of {r['used_queries']}",
             f"{r['pools_differing_stop50']} of {r['used_queries']}",
             f"{r['in_batch']['rows_with_a_match']} ({r['in_batch']['match_columns']})",
             ", ".join(r.get("ablations", "-"))] for task, r in {**results, **stages}.items()]  # fmt: skip
    spec = cfg["retrieval"]
    write_report("bench_pool_matches", rows, ["task", "rows", "largest component",
                                              "rows served a labelled match (slots; the stage's matches): before",
                                              "stops 46-49", "now", "slots served now",
                                              "pools differing (stop 46)", "pools differing (stop 50)",
                                              "rows seeing another row's labelled match in an epoch (columns)",
                                              "ablations"],
                 {"data_dir": args.data_dir.resolve(), "scorer": "bm25", "depth": spec["depth"],
                  "skip_top": spec["skip"], "k": spec["hard_negatives"], "tasks": results,
                  "ablation_stages": stages})  # fmt: skip


if __name__ == "__main__":
    run_main(main)
