"""Train/test overlap of every shipped ablation: texts its training data shares with its dev and test tasks.

An ablation claims an effect on test tasks no setting was chosen on; a training set that holds test texts makes a
trained arm's gain there partly memory. For each configs/ablations/*.toml (the `*_stage.toml` files are stages)
this resolves every unit's stage config as `harness ablate` does (each arm's overrides, each [choose] value), takes
the training folders they read, and compares each with each dev and test task (harness.ablate_overlap.
train_test_overlap: NFKC, lower case, no whitespace or punctuation, as the dev/test overlap check).
Prints the pairs that share texts and writes benchmarks/results/train_test_overlap.json with every pair.

    python benchmarks/bench_train_test_overlap.py [--data-dir ../shared/data]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from common import DEFAULT_DATA, REPO, run_main, write_report

from harness.ablate import Ablation
from harness.ablate_config import load_ablation


def measure(config: Path, data_dir: Path) -> dict:
    """One ablation's training sets, tasks and every (training set, task) pair's shared texts and items."""
    cfg = load_ablation(config)
    cfg["data_dir"] = str(data_dir)
    ablation = Ablation(cfg, config, measure_only=True)
    split = {**dict.fromkeys(ablation.dev, "dev"), **dict.fromkeys(ablation.test, "test")}
    return {"train_sets": sorted(ablation.train_sets), "dev": ablation.dev, "test": ablation.test,
            "train_overlap_ok": cfg["eval"].get("train_overlap_ok"),
            "pairs": sorted(({**pair, "split": split[pair["task"]]} for pair in ablation.train_pairs),
                            key=lambda pair: (pair["train"], pair["task"]))}  # one order whatever the set order


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA, help="evaluation data root (task folders)")
    args = parser.parse_args()
    data_dir = args.data_dir.resolve()
    os.chdir(REPO)  # the configs name their stages and data roots relative to the repository
    configs = sorted(p for p in Path("configs/ablations").glob("*.toml") if not p.stem.endswith("_stage"))
    results = {path.stem: measure(path, data_dir) for path in configs}
    rows = [[name, len(r["train_sets"]), len(r["dev"]) + len(r["test"]), len(r["pairs"]),
             sum(bool(p["shared"]) for p in r["pairs"]), max((p["shared"] for p in r["pairs"]), default=0)]
            for name, r in results.items()]  # fmt: skip
    shared = [[name, p["train"], p["task"], p["split"], f"{p['shared']} / {p['task_texts']}",
               f"{p['items_with_shared']} / {p['task_items']} {p['items']}"]
              for name, r in results.items() for p in r["pairs"] if p["shared"]]  # fmt: skip
    if shared:
        from tabulate import tabulate

        print(tabulate(shared, headers=["ablation", "training set", "task", "split", "shared texts",
                                        "items with a shared text"], tablefmt="github"), "\n")  # fmt: skip
    write_report("train_test_overlap", rows, ["ablation", "training sets", "dev+test tasks", "pairs compared",
                                              "pairs sharing texts", "most shared texts"],
                 {"data_dir": data_dir, "normalisation": "NFKC, lower case, no whitespace or punctuation "
                                                         "(harness.data.normalized_texts)",
                  "ablations": results})  # fmt: skip


if __name__ == "__main__":
    run_main(main)
