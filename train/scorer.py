"""How a ``pool_scorer`` model spec (``minilm``, ``me5-small``, ``conan:<dir>``, ``st:<path>``...) becomes an embedder.

Resolving a spec is the harness's job (harness.models.load_model), and train never imports the harness: the
harness CLI installs its loader at startup, so `harness train`, `harness pipeline` and `harness ablate` mine
with any harness model, while `python -m train` alone mines with ``bm25`` (or an embedder object passed in code).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .errors import ConfigError

_loader: Callable[[str], Any] | None = None


def install_spec_loader(loader: Callable[[str], Any]) -> None:
    """Let model specs resolve through ``loader`` (spec -> object with ``encode_batch(texts, role)``)."""
    global _loader
    _loader = loader


def load_scorer(spec: str) -> Any:
    """The embedder a spec names; without an installed loader, an error that says how to get one."""
    if _loader is None:
        raise ConfigError(f"pool_scorer {spec!r} is a harness model spec: run the stage with `harness train` "
                          "(or harness pipeline / ablate), or use pool_scorer = 'bm25'")  # fmt: skip
    return _loader(spec)
