"""The process environment: how the HF hub is treated, where library caches go, where data is found.

One place for these facts, read by the CLI, the task resolver, the test suite and the benchmarks alike. It
imports nothing heavy (no hub library reads its variables before they are set here).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
_TRUE = ("1", "ON", "YES", "TRUE")  # huggingface_hub's spelling of a true flag, any case


def hub_offline() -> bool:
    """True when HF_HUB_OFFLINE (or, unset or empty, TRANSFORMERS_OFFLINE) is a true value, read as
    huggingface_hub reads it: no hub call is attempted. Before stop 49 (audit) "no"/"off" counted as offline and
    TRANSFORMERS_OFFLINE=1 alone did not, so the harness probed the hub where the libraries would not."""
    value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
    return value.upper() in _TRUE


# The offline flags huggingface_hub and datasets read from the environment once, when they are imported: after
# that only these module attributes count.
_IMPORTED_FLAGS = (("huggingface_hub.constants", "HF_HUB_OFFLINE"), ("datasets.config", "HF_HUB_OFFLINE"),
                   ("datasets.config", "HF_DATASETS_OFFLINE"))  # fmt: skip
_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def go_offline() -> None:
    """Every later hub call (huggingface_hub, transformers, datasets) fails fast instead of retrying; libraries
    imported already are switched too (setting the variables alone did nothing for them)."""
    for name in _VARIABLES:
        os.environ[name] = "1"
    for module, flag in _IMPORTED_FLAGS:
        if module in sys.modules:
            setattr(sys.modules[module], flag, True)


@contextmanager
def hub_off() -> Iterator[None]:
    """Offline for the block, then as before: a prepared copy of a pinned revision is read without asking the hub,
    which has nothing to add to it (with HF_HUB_OFFLINE unset and no network, datasets retried it ~23 s per task)."""
    variables = {name: os.environ.get(name) for name in _VARIABLES}
    flags = [(sys.modules[m], flag, getattr(sys.modules[m], flag)) for m, flag in _IMPORTED_FLAGS if m in sys.modules]
    go_offline()
    try:
        yield
    finally:
        for name, value in variables.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        for module, flag, value in flags:
            setattr(module, flag, value)


def user_cache_root() -> Path:
    """Where the harness keeps what it may reuse between runs (embeddings, mteb and datasets caches)."""
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "conan-harness"


def library_cache_defaults(root: Path) -> None:
    """mteb's and datasets' caches under `root` unless the user chose a place (MTEB_CACHE, HF_DATASETS_CACHE, or
    HF_HOME, whose datasets/ folder a pre-populated official cache lives in)."""
    os.environ.setdefault("MTEB_CACHE", str(root / "mteb"))
    if "HF_HOME" not in os.environ:
        os.environ.setdefault("HF_DATASETS_CACHE", str(root / "datasets"))


def scratch_env(scratch: Path) -> None:
    """Offline, with every library cache under `scratch`: a test session or a benchmark never touches ~/.cache."""
    go_offline()
    os.environ.setdefault("HF_HOME", str(scratch / "hf"))
    os.environ.setdefault("HF_DATASETS_CACHE", str(scratch / "hf" / "datasets"))
    library_cache_defaults(scratch)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def data_root(explicit: str | Path | None = None) -> tuple[Path, str]:
    """The evaluation data root and where it came from: `explicit` (--data-dir, a config's data_dir), else
    $HARNESS_DATA, else the small sample embedded in the package."""
    if explicit:
        return Path(explicit), "--data-dir"
    env = os.environ.get("HARNESS_DATA")
    if env:
        return Path(env), "$HARNESS_DATA"
    from harness.data import default_data_root

    return default_data_root(), "the embedded sample"


def shared_data_root() -> Path:
    """The full evaluation and training data of a development checkout: $HARNESS_SHARED_DATA, else the shared/data
    folder beside the checkout (tests and benchmarks)."""
    return Path(os.environ.get("HARNESS_SHARED_DATA", CHECKOUT.parent / "shared" / "data"))
