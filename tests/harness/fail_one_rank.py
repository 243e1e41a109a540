"""Test-only torchrun entry: `torchrun ... tests/harness/fail_one_rank.py RANK run ...` is `python -m harness run
...` whose first model pass on rank RANK raises, as a CUDA OOM on one GPU would. The fault lives here, not in the
harness: it replaces HarnessEncoder._stream in this process only."""

from __future__ import annotations

import os
import sys

from harness.cli import main
from harness.encoding import HarnessEncoder


def fail_first_pass() -> None:
    original = HarnessEncoder._stream
    failed: list[bool] = []

    def stream(self: HarnessEncoder, texts: list[str], role: str | None, window: int | None = None):  # noqa: ANN202
        if not failed:
            failed.append(True)
            raise RuntimeError(f"injected failure on rank {os.environ['RANK']}")
        return original(self, texts, role, window)

    HarnessEncoder._stream = stream


if __name__ == "__main__":
    if os.environ["RANK"] == sys.argv[1]:
        fail_first_pass()
    sys.exit(main(sys.argv[2:]))
