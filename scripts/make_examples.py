"""Regenerate the committed examples under reports/examples/ (leaderboards: reports/examples/leaderboards/).

    python scripts/make_examples.py [--data-dir ../shared/data] [--runs-dir runs/examples] [--conan DIR]

Runs (skipped when already done in --runs-dir; `harness run` resumes task by task), all with --no-cache so the
timings measure the model:
- minilm and me5-small on 4 English and 2 Chinese mirror tasks, with MRL dims 64/128/256 scored;
- minilm with --max-length 8 on the English tasks: a real degraded candidate for the regression example;
- with --conan DIR: that conan_model checkpoint (e.g. `harness train` output) on the same tasks.
Then writes the leaderboards (tasks of the runs; MTEB(eng, v2) and MTEB(cmn, v1) coverage views with the shipped
published baselines), the regression report, the efficiency report and the cross-lingual alignment report.
Run from the repository root; paths in the outputs are relative to it. me5-small runs at about 20 texts/s on
2 cores, so a first full regeneration takes tens of minutes; later ones only redo what is missing.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from harness.cli import main as harness
from harness.runs import atomic_write_text

EN_TASKS = ["STS16", "STSBenchmark", "TrecQAReranking", "MSRPC"]
ZH_TASKS = ["STSB", "PAWSX"]
DIMS = "64,128,256,full"
PARALLEL = ["parallel_en_de", "parallel_en_es", "parallel_en_fr", "parallel_en_ja", "parallel_en_ru", "parallel_en_zh"]


def run(model: str, name: str, tasks: list[str], data: Path, runs: Path, *extra: str) -> Path:
    """One `harness run` in its own process, so its peak-memory figures are its own."""
    argv = ["run", "--model", model, "--tasks", ",".join(tasks), "--data-dir", str(data), "--out", str(runs),
            "--run-name", name, "--no-cache", "--no-progress", *extra]  # fmt: skip
    code = subprocess.call([sys.executable, "-m", "harness", *argv])
    if code != 0:
        sys.exit(f"harness {' '.join(argv)} exited {code}")
    return runs / name


def conan_dims(folder: Path) -> str:
    """MRL dims below the checkpoint's width (powers of two from 32), plus full."""
    width = json.loads((folder / "config.json").read_text(encoding="utf-8"))["hidden_size"]
    return ",".join([str(d) for d in (32, 64, 128, 256, 512, 1024, 2048) if d < width] + ["full"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default="../shared/data", help="full data root (default ../shared/data)")
    parser.add_argument("--runs-dir", default="runs/examples", help="where the run directories go (git-ignored)")
    parser.add_argument("--conan", help="a conan_model checkpoint folder to include (harness train output)")
    parser.add_argument("--n-pairs", type=int, default=150, help="parallel pairs per language for alignment")
    args = parser.parse_args()
    data, runs = Path(args.data_dir), Path(args.runs_dir)
    lb_dir, rep_dir = Path("reports/examples/leaderboards"), Path("reports/examples")

    minilm = run("minilm", "minilm", EN_TASKS + ZH_TASKS, data, runs, "--dims", DIMS)
    me5 = run("me5-small", "me5-small", EN_TASKS + ZH_TASKS, data, runs, "--dims", DIMS)
    short = run("minilm", "minilm-maxlen8", EN_TASKS, data, runs, "--max-length", "8")
    models = [minilm, me5]
    specs = ["minilm", "me5-small"]
    if args.conan:
        folder = Path(args.conan)
        name = folder.name if folder.name.startswith("conan") else f"conan-{folder.name}"
        models.append(run(f"conan:{folder}", name, EN_TASKS + ZH_TASKS, data, runs, "--dims", conan_dims(folder)))
        specs.append(f"conan:{folder}")

    lb_dir.mkdir(parents=True, exist_ok=True)
    paths = [str(p) for p in models + [short]]
    assert harness(["leaderboard", *paths, "--published", "--dims", "--out", str(lb_dir / "leaderboard.md")]) == 0
    for suite in ("mteb-en", "cmteb"):
        out = lb_dir / f"leaderboard_{suite}.md"
        assert harness(["leaderboard", *paths, "--published", "--suite", suite, "--out", str(out)]) == 0
    code = harness(["regress", "--baseline", str(minilm), "--candidate", str(short), "--tasks", ",".join(EN_TASKS),
                    "--out", str(rep_dir / "regression.md")])  # fmt: skip
    assert code == 1, "the --max-length 8 candidate should be flagged as a regression"
    assert harness(["report", *[str(p) for p in models], "--out", str(rep_dir / "efficiency")]) == 0
    parallel = [str(data / "train" / name) for name in PARALLEL]
    assert harness(["alignment", *[a for s in specs for a in ("--model", s)], "--parallel", *parallel,
                    "--n", str(args.n_pairs), "--tsne", "--out", str(rep_dir / "alignment")]) == 0  # fmt: skip
    readme = [
        "# Examples (generated; do not edit)", "",
        f"Regenerate with `python {' '.join(sys.argv)}` from the repository root. Runs (in `{runs}/`, git-ignored), "
        f"all on mirrors of `{data}` with `--no-cache`:", "",
        f"- `minilm`, `me5-small`: {', '.join(EN_TASKS + ZH_TASKS)}; MRL dims {DIMS}",
        f"- `minilm-maxlen8`: minilm with `--max-length 8` (a degraded candidate) on {', '.join(EN_TASKS)}",
        "",
        "Timed on a shared 2-core CPU machine while other jobs ran: the timings show the report format and rough "
        "ratios, not the models' best speed.",
    ]  # fmt: skip
    if args.conan:
        train = Path(args.conan) / "train_config.json"
        how = json.loads(train.read_text(encoding="utf-8")) if train.is_file() else {}
        start = f"from {how['init']}" if how.get("init") else f"preset {how.get('model')}"
        knobs = ", ".join(f"{k} {how[k]}" for k in ("init_layers", "mask_schedule", "pooling", "lr") if k in how)
        made = f" (harness train: stage {how.get('stage')}, {start}, {how.get('steps')} steps, {knobs})"
        made = made if how else ""
        readme.insert(5, f"- `{models[-1].name}`: the conan_model checkpoint `{args.conan}`{made} on the same tasks")
    for folder in (lb_dir, rep_dir):
        atomic_write_text(folder / "README.md", "\n".join(readme) + "\n")
    print(f"examples written under {lb_dir}/ and {rep_dir}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
