"""Joining torchrun's group (conan_model/process_group.py): a rank that never joins stops the others within
HARNESS_DIST_TIMEOUT_S with one line naming the world size and who did not join, in `harness run` and in training
(before stop 61: a DistStoreError traceback, and training waited torch's 30 minutes)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conan_model.process_group import collective_timed_out, not_formed_message

REPO = Path(__file__).resolve().parents[2]

# rank 0 of 2 alone, on a free port the OS picked: rank 1 never starts
RANK_0_ALONE = textwrap.dedent("""
    import os, socket, sys
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    os.environ.update(WORLD_SIZE="2", RANK="0", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                      HARNESS_DIST_TIMEOUT_S="2")
    from conan_model.process_group import GroupNotFormed
    try:
        if sys.argv[1] == "harness":
            from harness.distributed import init_from_env
            init_from_env("cpu")
        else:
            from train.distributed import init_runtime
            init_runtime("cpu")
    except GroupNotFormed as exc:
        print(f"refused (exit {exc.exit_code}): {exc}")
""")


@pytest.mark.parametrize("side", ["harness", "train"])
def test_a_rank_that_never_joins_is_named_within_the_timeout(side: str) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", RANK_0_ALONE, side], env=env, capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.stdout.startswith("refused (exit 2): torchrun's group of 2 ranks did not form within 2 s "
                                  "(HARNESS_DIST_TIMEOUT_S): "), done.stdout + done.stderr[-3000:]
    assert "Traceback" not in done.stderr


def test_the_ranks_torch_waited_for_are_named() -> None:
    gloo = not_formed_message("wait timeout after 30000ms, keys: /default_pg/0//cpu//0/1", 2, 30, "kept")
    assert ": rank 1 did not join (it failed or died before joining" in gloo and "; kept (torch: wait timeout" in gloo
    store = not_formed_message("Timed out after 3 seconds waiting for clients. 1/3 clients joined.", 3, 2, "kept")
    assert ": 2 of them did not join" in store
    assert ": another rank did not join" in not_formed_message("", 2, 2, "kept")


# a 2-rank gloo group met through a file; rank 1 never reaches the collective (it waits for its stdin to close)
HUNG_PEER = textwrap.dedent("""
    import datetime, sys
    import torch, torch.distributed as dist
    from conan_model.process_group import collective_timed_out
    rank = int(sys.argv[1])
    dist.init_process_group("gloo", init_method=f"file://{sys.argv[2]}", rank=rank, world_size=2,
                            timeout=datetime.timedelta(seconds=2))
    if rank == 1:
        sys.stdin.read()
    else:
        try:
            dist.all_reduce(torch.ones(1))
        except BaseException as exc:
            print("timed out:", collective_timed_out(exc))
""")


def test_gloo_s_collective_timeout_is_told_apart(tmp_path: Path) -> None:
    """What training turns into its one line naming the checkpoint kept (train/cli.py), from a real gloo group."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    store = tmp_path / "store"
    hung = subprocess.Popen([sys.executable, "-c", HUNG_PEER, "1", str(store)], env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        waits = subprocess.run([sys.executable, "-c", HUNG_PEER, "0", str(store)], env=env, capture_output=True,
                               text=True, timeout=120)  # fmt: skip
    finally:
        hung.communicate(b"", timeout=60)
    assert waits.stdout.strip() == "timed out: True", waits.stdout + waits.stderr[-2000:]
    assert not collective_timed_out(RuntimeError("CUDA out of memory")) and not collective_timed_out(KeyError())
