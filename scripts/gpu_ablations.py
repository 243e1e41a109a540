"""Device script: the three shipped ablations (soft mask, DHNM, CLR) at GPU scale, one after the other.

Each configs/ablations/<name>.toml is rescaled in memory (every SmolLM2 block; DHNM and CLR fine-tune all of
multilingual-e5-small, embeddings included, with the paper's K = 7, larger batches, more steps and longer texts;
DHNM also trains on drcd_qp_zh and English QA/paraphrase pairs) and run by `harness ablate`'s runner into
runs/ablations/gpu/<name>, with its report in reports/ablations/gpu/<name>/;
reports/ablations/gpu/gpu_run.json records the device and each ablation's wall time.
At GPU scale every ablation first chooses the ablated stage's lr on its dev task (`[choose]`, the reference arm,
seed 0, as configs/ablations/*_lr.toml do at CPU scale): the CPU runs showed that an effect measured at one
fixed lr need not survive a tuned one (reports/ablations/dhnm_lr), and nothing says the CPU choice carries over
to a fully trained model with larger batches. The sizes target ≤ 10 minutes for all three on one H100/H200;
that target is an estimate until a device run measures it (docs/training-supervised.md says which).

    python scripts/gpu_ablations.py                    # on the device machine (all three, 3 seeds)
    python scripts/gpu_ablations.py --only dhnm        # one ablation
    python scripts/gpu_ablations.py --init SPEC        # another start model (the stages' `init` key)
    python scripts/gpu_ablations.py --dry-run          # CPU plumbing check: tiny sizes, sample tasks, 1 seed
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # run as a file from anywhere
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from conan_model import pick_device  # noqa: E402
from harness.ablate import Ablation  # noqa: E402
from harness.ablate_config import check_ablation, load_ablation  # noqa: E402
from harness.runs import atomic_write_json  # noqa: E402
from train.metrics import device_name  # noqa: E402

NAMES = ("softmask", "dhnm", "clr")
# Overrides per scale for the base stages (by stage file), the ablated stage (by ablation), and the evaluation.
SCALES: dict[str, dict[str, Any]] = {
    "gpu": {
        "seeds": [0, 1, 2],
        "set": ["device=auto"],
        # soft mask: all 30 SmolLM2 blocks (the CPU config keeps the bottom 4); DHNM and CLR: all of e5-small
        "stage": {"softmask": ["init_layers=none", "steps=300", "batch_size=64", "max_length=128", "save_every=300"],
                  "dhnm": ["steps=1100", "max_length=96", "save_every=1100", "freeze=[]", "hard_negatives=7",
                           "tasks.qa_zh.batch_size=32", "tasks.qa_zh.max_rows=0",
                           "tasks.qa_zh.data=['train/cmrc_qp_zh', 'train/drcd_qp_zh']", "tasks.qa_en.kind='retrieval'",
                           "tasks.qa_en.data=['train/trecqa_pairs_en', 'train/msrp_pairs_en']",
                           "tasks.qa_en.batch_size=32", "tasks.qa_en.weight=0.3"],
                  "clr": ["steps=600", "max_length=96", "save_every=600", "freeze=[]", "hard_negatives=7",
                          "tasks.ret_en.batch_size=32", "tasks.ret_zh.batch_size=32"]},
        "arms": {"clr": {"on": ["tasks.clr.batch_size=32"]}},
        # lr candidates of the ablated stage, chosen on dev. SmolLM2's weak stage: one step up from the CPU grid,
        # whose top value (1e-4) won there at a quarter of this batch (reports/ablations/softmask_lr)
        "choose": {"softmask": [5e-5, 1e-4, 2e-4], "dhnm": [1e-5, 2e-5, 5e-5], "clr": [1e-5, 2e-5, 5e-5]},
        "mntp": ["init_layers=none", "steps=100", "batch_size=32", "seq_len=256", "save_every=100"],
        "eval": {"max_length": 256, "batch_size": 256},
        # test tasks that share no text with the dev task (harness.ablate_overlap.dev_test_overlap): STSBenchmark,
        # compiled from the STS 2012-2016 sets, shares 443 texts with STS16; SICK-R is out as the weak stage trains
        # on SICK
        "test": {"dhnm": ["CMRC2018Retrieval", "SQuADRetrieval"],  # English pairs train at this scale
                 "softmask": ["STS12", "STS13", "SQuADRetrieval", "TrecQAReranking"]},
        # the lr is chosen on dev here: CLR's dev XQuADRetrievalDeEn is the four XQuAD test tasks' items in German
        "dev": {"clr": ["TatoebaRusEng"]},
        "overlap_ok": {"clr": "Tatoeba's English side repeats short sentences across its language pairs: "
                              "TatoebaRusEng shares 2 and 12 of the 2000 texts of TatoebaDeuEng and TatoebaSpaEng"},
        "scale": "GPU: soft mask from SmolLM2-135M (all 30 blocks), weak stage 300 x 64 pairs, LLM2Vec arm 100 "
                 "MNTP steps x 32 x 256 tokens first; DHNM and CLR: multilingual-e5-small, all parameters, K = 7: "
                 "DHNM 1100 x 32 (cmrc+drcd : trecqa+msrp = 1 : 0.3, each ~3.4 epochs), CLR 600 x 32; "
                 "eval max_length 256; lr of the ablated stage chosen on dev (reference arm, seed 0)",
    },
    "dry": {
        "seeds": [0],
        "set": ["threads=1", "device=cpu"],
        "stage": {"softmask": ["steps=3", "batch_size=8", "max_length=32", "save_every=3"],
                  "dhnm": ["steps=3", "max_length=32", "save_every=3", "pool_depth=12", "init_layers=1"],
                  "clr": ["steps=3", "max_length=32", "save_every=3", "pool_depth=12", "init_layers=1"]},
        "mntp": ["steps=2", "batch_size=2", "seq_len=32", "save_every=2"],
        "eval": {"max_length": 32, "batch_size": 64, "dev": ["STS16"], "test": ["STS12"]},
        "scale": "dry run: 3 steps per stage on CPU, sample tasks; checks the plumbing, measures nothing",
    },
}  # fmt: skip


def rescale(cfg: dict[str, Any], scale: str, init: str | None, root: Path) -> dict[str, Any]:
    """The ablation config at ``scale``: outputs under <root>/runs and <root>/reports, sizes from SCALES."""
    s, cfg = SCALES[scale], copy.deepcopy(cfg)
    name = cfg["name"]
    cfg["out"] = str(root / "runs" / "ablations" / scale / name)
    cfg["report"] = str(root / "reports" / "ablations" / scale / name)
    shared_pools = any(o.startswith("pools_dir") for o in cfg.get("set", []))  # mined once, beside this scale's runs
    pools = [f"pools_dir={str(Path(cfg['out']) / 'pools')!r}"] if shared_pools else []
    cfg["seeds"], cfg["set"], cfg["scale"] = s["seeds"], [*s["set"], *pools], s["scale"]
    if name in s.get("choose", {}):
        cfg["choose"] = {"key": "lr", "values": s["choose"][name]}
    for stage in cfg["stages"]:
        stage["set"] = [*stage.get("set", []), *s["stage"][name]]
    for arm_name, arm in cfg["arms"].items():  # an arm with its own stages (LLM2Vec: mntp, then the ablated stage)
        for stage in (arm or {}).get("stages", []):
            sizes = s["mntp"] if Path(stage["config"]).stem == "mntp" else s["stage"][name]
            stage["set"] = [*stage.get("set", []), *sizes]
        extra = s.get("arms", {}).get(name, {}).get(arm_name, [])
        if extra:  # sizes of what only this arm trains (the CLR task), applied after the arm's own overrides
            cfg["arms"][arm_name] = {**(arm or {}), "set": [*(arm or {}).get("set", []), *extra]}
    if init:
        cfg["stages"][0]["set"].append(f"init={init}")
    ev = {k: v for k, v in s["eval"].items() if k not in ("dev", "test")}
    cfg["eval"] = {**cfg["eval"], **ev}
    cfg["eval"]["test"] = s.get("test", {}).get(name, cfg["eval"]["test"])
    cfg["eval"]["dev"] = s.get("dev", {}).get(name, cfg["eval"]["dev"])
    cfg["eval"].pop("overlap_ok", None)  # the CPU config's reason is about its own tasks and choices
    if name in s.get("overlap_ok", {}):
        cfg["eval"]["overlap_ok"] = s["overlap_ok"][name]
    if "dev" in s["eval"]:  # dry run: the embedded sample's tasks (the real ones take minutes on a CPU)
        cfg["eval"].update(dev=s["eval"]["dev"], test=s["eval"]["test"])
        cfg["data_dir"] = str(REPO / "harness" / "sample_data")
        cfg.pop("choose", None)
    return cfg


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=NAMES, action="append", help="run these ablations only (repeatable)")
    ap.add_argument("--init", help="model spec every ablation starts from (needs the stages' `init` key)")
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes, sample tasks")
    ap.add_argument("--root", type=Path, default=REPO, help="where runs/ and reports/ go (default: the repository)")
    args = ap.parse_args(argv)
    os.chdir(REPO)  # the configs name stages and data relative to the repository root
    scale = "dry" if args.dry_run else "gpu"
    device = torch.device("cpu") if args.dry_run else pick_device()
    if scale == "gpu":
        if device.type == "cpu":
            print("gpu_ablations: no accelerator here; use --dry-run for the CPU plumbing check", file=sys.stderr)
            return 0
    record: dict[str, Any] = {"scale": scale, "init": args.init, "ablations": {}}
    for name in args.only or NAMES:
        path = Path("configs") / "ablations" / f"{name}.toml"
        cfg = check_ablation(rescale(load_ablation(REPO / path), scale, args.init, args.root), path)
        start = time.perf_counter()
        report = Ablation(cfg, path).run()
        record["ablations"][name] = {"wall_s": round(time.perf_counter() - start, 1), "scale": cfg["scale"],
                                     "report": str(Path(cfg["report"]).relative_to(args.root))}  # fmt: skip
        print(f"[gpu_ablations] {name}: {record['ablations'][name]['wall_s']} s -> {report}", flush=True)
    record["device"] = device_name(device)
    record["total_wall_s"] = round(sum(a["wall_s"] for a in record["ablations"].values()), 1)
    atomic_write_json(args.root / "reports" / "ablations" / scale / "gpu_run.json", record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
