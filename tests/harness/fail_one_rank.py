"""Test-only torchrun entry: `torchrun ... tests/harness/fail_one_rank.py RANK run ...` is `python -m harness run
...` whose first model pass on rank RANK fails, as a CUDA OOM on one GPU would. The fault lives here, not in the
harness: it replaces HarnessEncoder._stream in this process only.

FAULT (env) says how the pass fails: `raise` an error, `block` forever without dying (a hung rank; it says
`rank N blocks` first), `kill` the rank with SIGKILL, `slow`: run FAULT_S (env) seconds late; without FAULT no rank
fails. FAULT_TASK (env) moves the fault
to the first pass of that task. Every rank dumps its threads' stacks on SIGUSR1 (faulthandler), so a test can see
where a rank that outlives a stop hangs."""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import time
from typing import Any

from conan_model.signals import raise_if_interrupted
from harness.cli import main
from harness.encoding import HarnessEncoder


def fail_first_pass(how: str, task: str | None) -> None:
    original = HarnessEncoder._stream
    failed: list[bool] = []

    def stream(self: HarnessEncoder, texts: list[str], role: str | None, *args: Any, **kwargs: Any):  # noqa: ANN202
        if not failed and task in (None, self.shards.task):
            failed.append(True)
            rank = os.environ["RANK"]
            if how == "block":
                print(f"rank {rank} blocks", flush=True)
                while True:  # only a signal ends it. Not a wait on a lock (Event().wait()): the kernel may hand a
                    time.sleep(0.1)  # signal to another thread of the rank, and a main thread blocked on a lock
                    # is then never woken to run the handler (CPython runs them there only); seen in CI at stop 44
                    raise_if_interrupted()  # as the harness's own waits: a swallowed interrupt still ends it
            if how == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if how == "slow":  # a slower rank: the pass runs, FAULT_S seconds late
                time.sleep(float(os.environ["FAULT_S"]))
                return original(self, texts, role, *args, **kwargs)
            raise RuntimeError(f"injected failure on rank {rank}")
        return original(self, texts, role, *args, **kwargs)

    HarnessEncoder._stream = stream


if __name__ == "__main__":
    faulthandler.register(signal.SIGUSR1, all_threads=True)  # C-level: dumps even from inside a blocked call
    if os.environ["RANK"] == sys.argv[1] and os.environ.get("FAULT"):
        fail_first_pass(os.environ["FAULT"], os.environ.get("FAULT_TASK"))
    sys.argv[1:] = sys.argv[2:]  # the command line `python -m harness` would get
    sys.exit(main())  # as the process entry point does: signals stay handled through the exit
