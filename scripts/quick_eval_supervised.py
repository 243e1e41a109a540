"""Fast proxy evaluator for supervised-stage ablations (seconds per checkpoint instead of a harness run).

    python scripts/quick_eval_supervised.py runs/ablations/bal_lr3e4/final [more checkpoint folders ...]

Prints, per conan checkpoint: top-1 bitext accuracy on the fra, spa, deu, rus and jpn Tatoeba mirrors (foreign
-> English argmax over the 1000 English sentences; the harness reports mteb's F1 instead), the cosine Spearman of
STSBenchmark, the mean of the six English and the five Chinese STS mirrors, and STSBenchmarkZhEn. The STS
numbers equal the harness's main scores for the same checkpoint (same encoder, same metric); use `harness run`
for anything reported.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from scipy.stats import spearmanr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from conan_model import ConanEncoder  # noqa: E402

EN_STS = ["STSBenchmark", "STS12", "STS13", "STS15", "STS16", "SICK-R"]
ZH_STS = ["AFQMC", "ATEC", "BQ", "PAWSX", "STSB"]
TATOEBA = ["TatoebaFraEng", "TatoebaSpaEng", "TatoebaDeuEng", "TatoebaRusEng", "TatoebaJpnEng"]


def rows(data: Path, lang: str, task: str) -> list[dict]:
    with (data / lang / task / "test.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def pair_embeddings(enc: ConanEncoder, items: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    return enc.encode([r["sentence1"] for r in items]), enc.encode([r["sentence2"] for r in items])


def bitext_accuracy(enc: ConanEncoder, items: list[dict]) -> float:
    a, b = pair_embeddings(enc, items)
    return 100 * float(((a @ b.T).argmax(1) == np.arange(len(items))).mean())


def sts_spearman(enc: ConanEncoder, items: list[dict]) -> float:
    a, b = pair_embeddings(enc, items)
    return 100 * float(spearmanr((a * b).sum(1), [r["score"] for r in items]).statistic)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for folder in args.checkpoints:
        enc = ConanEncoder.from_pretrained(folder, device="cpu")
        out = {t[7:10].lower(): bitext_accuracy(enc, rows(args.data, "multi", t)) for t in TATOEBA}
        en = {t: sts_spearman(enc, rows(args.data, "en", t)) for t in EN_STS}
        zh = [sts_spearman(enc, rows(args.data, "zh", t)) for t in ZH_STS]
        out |= {"STSBenchmark": en["STSBenchmark"], "en STS": float(np.mean(list(en.values()))),
                "zh STS": float(np.mean(zh)), "zh-en": sts_spearman(enc, rows(args.data, "multi", "STSBenchmarkZhEn"))}
        print(f"{str(folder):48s} " + "  ".join(f"{k} {v:6.2f}" for k, v in out.items()), flush=True)


if __name__ == "__main__":
    main()
