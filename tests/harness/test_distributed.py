"""torchrun ranks stay in step: a task that fails on one rank fails on all, with that rank's error, and the next
task scores as one process does; ranks that drift apart stop with a clear error instead of pairing wrong vectors.

Two CPU processes over gloo; the rendezvous is a file (group tests) or `--standalone` (runs): no fixed ports."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from data_helpers import cut_rows

from conan_model.errors import ConanError
from harness.cli import main
from harness.data import default_data_root
from harness.distributed import bind_rank_device, group_timeout_s, launcher, rounding_note
from harness.errors import UsageError

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="gloo over localhost")

GROUP = textwrap.dedent("""
    import json, os, sys
    import numpy as np
    import torch.distributed as dist
    from harness.distributed import ShardGroup
    from harness.errors import PeerFailed, ShardMismatch

    rank, store, scenario = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    group, out = ShardGroup(rank, 2, "cpu"), {}
    local = np.full((3 - rank, 2), rank, dtype=np.float32)  # slice of 5 texts: rank 0 holds 3, rank 1 holds 2
    try:
        if scenario == "in_step":
            group.begin_task("A")
            out["rows"] = [p.tolist() for p in group.gather(local, 5, 2)]
            out["failures"] = group.finish_task(None)
        elif scenario == "other_task":
            group.begin_task("A" if rank == 0 else "B")
            group.gather(local, 5, 2)
        elif scenario == "other_slice":
            group.begin_task("A")
            group.gather(local, 5 + rank, 2)
        elif scenario == "one_fails":
            group.begin_task("A")
            if rank == 0:
                try:
                    group.gather(local, 5, 2)
                except PeerFailed as exc:
                    out["peer"] = str(exc)
                out["failures"] = group.finish_task(None)
            else:
                out["failures"] = group.finish_task({"error": "RuntimeError: boom", "traceback": "tb"})
            group.begin_task("B")  # still in step: the next task gathers as usual
            out["rows"] = [p.tolist() for p in group.gather(local, 5, 2)]
        elif scenario == "lookup":  # each rank's cache read saw other texts: both go on with what both saw
            group.begin_task("A")
            out["agreed"] = [sorted(group.agree_hits({0, 1, 3} if rank == 0 else {0, 2, 3}, 5)),
                             sorted(group.agree_hits({1} if rank == 0 else set(), 2))]
            out["rows"] = [p.tolist() for p in group.gather(local, 5, 2)]
        elif scenario == "lookup_vs_gather":
            group.begin_task("A")
            group.agree_hits({0}, 5) if rank == 0 else group.gather(local, 5, 2)
        elif scenario == "one_ends_ok":
            group.begin_task("A")
            group.gather(local, 5, 2) if rank == 0 else group.finish_task(None)
    except ShardMismatch as exc:
        out["mismatch"] = str(exc)
    print(json.dumps(out), flush=True)
    dist.destroy_process_group()
    os._exit(0)  # past gloo's teardown: after a mismatch its threads can abort interpreter shutdown (SIGABRT)
""")


def _group(tmp_path: Path, scenario: str) -> list[dict]:
    """Both ranks' outcome of `scenario` (GROUP), rank 0 first."""
    script = tmp_path / "group.py"
    script.write_text(GROUP)
    store = tmp_path / f"store_{scenario}"
    procs = [subprocess.Popen([sys.executable, str(script), str(rank), str(store), scenario], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for rank in (0, 1)]  # fmt: skip
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-3000:]
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]


def test_ranks_in_step_gather_all_rows(tmp_path: Path) -> None:
    for out in _group(tmp_path, "in_step"):
        assert out["rows"] == [[[0, 0]] * 3, [[1, 1]] * 2] and out["failures"] == {}


def test_ranks_agree_on_the_cache_hits_all_of_them_saw(tmp_path: Path) -> None:
    """Before: each rank went on with its own cache read, so a text cached between two ranks' reads gave them
    different texts to encode and the run stopped out of step."""
    for out in _group(tmp_path, "lookup"):
        assert out["agreed"] == [[0, 3], []] and out["rows"] == [[[0, 0]] * 3, [[1, 1]] * 2]


def test_failure_on_one_rank_reaches_every_rank(tmp_path: Path) -> None:
    zero, one = _group(tmp_path, "one_fails")
    assert zero["peer"] == "rank 1 failed task A"
    for out in (zero, one):
        assert out["failures"] == {"1": {"error": "RuntimeError: boom", "traceback": "tb"}}
        assert out["rows"] == [[[0, 0]] * 3, [[1, 1]] * 2]


@pytest.mark.parametrize(("scenario", "says"), [
    ("other_task", "gather #0 of 5 texts in another task (key "),  # as each rank sees it
    ("other_slice", "rank 0: gather #0 of 5 texts in task A; rank 1: gather #0 of 6 texts in task A"),
    ("one_ends_ok", "rank 0: gather #0 of 5 texts in task A; rank 1: end of task A (ok)"),
    ("lookup_vs_gather", "rank 0: cache lookup #0 of 5 texts in task A; rank 1: gather #0 of 5 texts in task A"),
])  # fmt: skip
def test_ranks_out_of_step_stop_with_a_clear_error(tmp_path: Path, scenario: str, says: str) -> None:
    for out in _group(tmp_path, scenario):
        assert "torchrun ranks are out of step" in out["mismatch"]
        assert says in out["mismatch"]


def _tasks(root: Path) -> Path:
    """Two 40-pair STS tasks from the sample, under their own names: short enough for two CPU processes."""
    sample = default_data_root() / "en"
    for name in ("STS16", "STS12"):
        folder = root / "en" / f"Eq{name}"
        folder.mkdir(parents=True)
        meta = json.loads((sample / name / "task.json").read_text())
        (folder / "task.json").write_text(json.dumps({**meta, "name": f"Eq{name}"}))
        shutil.copy(sample / name / "test.jsonl", folder / "test.jsonl")
        cut_rows(folder, 40)
    return root


def _torchrun(args: list[str], **fault: str) -> dict[str, Any]:
    """subprocess arguments of a 2-rank torchrun of `harness run args` whose rank 1 fails its first model pass as
    `fault` says (fail_one_rank.py: FAULT, FAULT_TASK; none without them)."""
    helper = Path(__file__).with_name("fail_one_rank.py")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(helper), "1",
           *args]  # fmt: skip
    return {"args": cmd, "env": {**os.environ, "OMP_NUM_THREADS": "1", **fault}}


@pytest.mark.slow
def test_the_group_s_model_time_is_its_slowest_rank_s(tmp_path: Path) -> None:
    """Rank 1 runs its pass of EqSTS16 4 s late. The group's texts/s divides all ranks' texts by the group's model
    time, so that time is the slowest rank's: efficiency.json's model_s holds the 4 s. Before stop 53 it was rank
    0's own encoding (~0.1 s here), and the rate read as if the slow rank were as fast (audit: 6x the truth)."""
    data = _tasks(tmp_path / "data")
    args = ["run", "--tasks", "EqSTS16", "--model", "minilm", "--no-cache", "--no-progress", "--dtype", "float32",
            "--data-dir", str(data), "--out", str(tmp_path), "--run-name", "two"]  # fmt: skip
    proc = subprocess.run(**_torchrun(args, FAULT="slow", FAULT_S="4"), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    figures = json.loads((tmp_path / "two" / "efficiency.json").read_text())["EqSTS16"]
    assert figures["world_size"] == 2 and figures["model_s"] >= 4.0, figures
    assert figures["texts_per_s"] <= figures["encoded_texts"] / 4.0


def test_a_rank_s_accelerator_is_bound_before_the_model_loads(monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:  # fmt: skip
    """`harness run` makes the rank's accelerator current before the weights load: a model moved to plain "cuda"
    lands on the current GPU. Before stop 53 it was set after an eager load (--no-cache, or a model the cache did
    not describe), so every rank's weights went to GPU 0 (no GPU here: the order of the two calls is checked)."""
    from harness import runner

    calls: list[str] = []
    monkeypatch.setattr(runner, "bind_rank_device", lambda device: calls.append(f"bind {device}"))

    def open_model(*args: Any, **kwargs: Any) -> None:
        calls.append("load")
        raise KeyboardInterrupt  # stops the run here

    monkeypatch.setattr(runner, "open_model", open_model)
    code = main(["run", "--tasks", "STS16", "--model", "minilm", "--no-cache", "--no-progress", "--device", "cpu",
                 "--out", str(tmp_path)])  # fmt: skip
    assert calls == ["bind cpu", "load"] and code == 130  # 130: interrupted


def test_bind_rank_device_takes_the_local_rank_s_accelerator(monkeypatch: pytest.MonkeyPatch) -> None:
    """Under torchrun (WORLD_SIZE > 1) an accelerator without an index becomes LOCAL_RANK's and is made current
    (cuda and xpu alike; npu too, once torch_npu registers the type); an explicit index is kept; cpu sets nothing;
    a single process binds nothing."""
    import torch

    from conan_model import device as device_module

    made_current: list[tuple[str, int]] = []
    monkeypatch.setattr(device_module, "pick_device", lambda requested: torch.device(requested or "cuda"))
    monkeypatch.setattr(device_module, "device_count", lambda kind: 2)
    monkeypatch.setattr(torch, "get_device_module",
                        lambda kind: SimpleNamespace(set_device=lambda i: made_current.append((kind, i))))  # fmt: skip
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert bind_rank_device(None) == "cuda:1" and bind_rank_device("xpu") == "xpu:1"
    assert bind_rank_device("cuda:0") == "cuda:0" and bind_rank_device("cpu") == "cpu"
    assert made_current == [("cuda", 1), ("xpu", 1), ("cuda", 0)]
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert bind_rank_device("cuda") is None and len(made_current) == 3


def test_bind_rank_device_refuses_a_local_rank_past_the_visible_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    """torchrun --nproc_per_node 3 on 2 GPUs: rank 2 is refused naming both counts, before any set_device (it
    failed there with torch's traceback)."""
    import torch

    from conan_model import device as device_module

    monkeypatch.setattr(device_module, "pick_device", lambda requested: torch.device(requested))
    monkeypatch.setattr(device_module, "device_count", lambda kind: 2)
    monkeypatch.setattr(torch, "get_device_module", lambda kind: pytest.fail("set_device was called"))
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("LOCAL_RANK", "2")
    with pytest.raises(UsageError, match="LOCAL_RANK 2 has no cuda device of its own: --nproc_per_node 3"):
        bind_rank_device("cuda")


def test_a_missing_device_is_refused_under_torchrun_as_in_one_process(monkeypatch: pytest.MonkeyPatch,
                                                                       tmp_path: Path, capsys: Any) -> None:
    """A rank of `torchrun ... harness run --device cuda` on a machine without one says what one process says
    (exit 2): before, the rank's device was bound before --device was checked, and every rank printed torch's
    AttributeError traceback."""
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("LOCAL_RANK", "0")
    code = main(["run", "--tasks", "STS16", "--model", "minilm", "--no-cache", "--no-progress", "--device", "cuda",
                 "--out", str(tmp_path)])  # fmt: skip
    assert code == 2
    assert "--device cuda: no CUDA device is available here; use --device cpu" in capsys.readouterr().err


@pytest.mark.slow
def test_task_failing_on_one_rank_fails_on_all(tmp_path: Path) -> None:
    data = _tasks(tmp_path / "data")
    args = ["run", "--tasks", "EqSTS16,EqSTS12", "--model", "minilm", "--no-cache", "--no-progress",
            "--dtype", "float32", "--data-dir", str(data), "--out", str(tmp_path)]  # fmt: skip
    assert main([*args, "--run-name", "one"]) == 0
    single = json.loads((tmp_path / "one" / "run.json").read_text())["tasks"]
    run = _torchrun([*args, "--run-name", "two"], FAULT="raise")
    proc = subprocess.run(**run, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0, proc.stderr[-3000:]  # a task failed
    assert "out of step" not in proc.stdout + proc.stderr
    tasks = json.loads((tmp_path / "two" / "run.json").read_text())["tasks"]
    assert tasks["EqSTS16"]["status"] == "failed"
    assert tasks["EqSTS16"]["error"] == "rank 1: RuntimeError: injected failure on rank 1"
    assert "injected failure" in tasks["EqSTS16"]["traceback"]
    assert tasks["EqSTS12"]["status"] == "ok"
    assert abs(tasks["EqSTS12"]["main_score"] - single["EqSTS12"]["main_score"]) < 1e-6
    assert "EqSTS16: FAILED — rank 1: RuntimeError: injected failure on rank 1" in proc.stdout
    assert "scores may differ from one process" not in proc.stdout  # float32: equal
    # rank 0 carries the exit status (rank 1 exits 0 once rank 0 is done: test_other_ranks_leave_after_rank_0)
    assert "failed (exitcode: 1) local_rank: 0" in proc.stderr
    record = json.loads((tmp_path / "two" / "run.json").read_text())
    assert record["finished"]
    # how it was launched: `command` is rank 0's own argv (since stop 61; before, nothing said torchrun)
    assert record["launcher"] == {"torchrun": True, "world_size": 2, "nproc_per_node": 2, "nnodes": 1}
    assert json.loads((tmp_path / "one" / "run.json").read_text())["launcher"] is None


def test_a_torchrun_run_below_float32_notes_that_scores_may_differ_by_rounding() -> None:
    """Equality with one process holds in float32 alone: in bfloat16 each rank's own batches and padding round
    otherwise (stop 61: TrecQAReranking 74.64 vs 74.45, and the docs claimed equality without the dtype)."""
    assert rounding_note("float32") is None
    assert rounding_note("bfloat16") == ("note: under torchrun in bfloat16 scores may differ from one process's by "
                                         "bfloat16 rounding (each rank batches and pads its own slice of the texts); "
                                         "--dtype float32 gives equal ones")  # fmt: skip


def test_launcher_says_how_torchrun_started_the_ranks(monkeypatch: pytest.MonkeyPatch) -> None:
    """run.json's `launcher`: None in one process; torchrun's counts from its environment (a rank's argv, the
    `command`, names neither)."""
    for key in ("WORLD_SIZE", "LOCAL_WORLD_SIZE", "GROUP_WORLD_SIZE", "TORCHELASTIC_RUN_ID"):
        monkeypatch.delenv(key, raising=False)
    assert launcher() is None
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("GROUP_WORLD_SIZE", "2")
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "x")
    assert launcher() == {"torchrun": True, "world_size": 4, "nproc_per_node": 2, "nnodes": 2}


# `harness run` as one rank of a 2-process gloo group met through a file (as GROUP), each rank with its own cache
RUN_RANK = textwrap.dedent("""
    import os, sys
    import torch.distributed as dist

    rank, store, cache, args = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2")  # what torchrun sets
    dist.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=2)
    from harness.cli import main

    code = main([*args, "--cache-dir", cache])
    sys.stdout.flush()
    os._exit(code)
""")


@pytest.mark.slow
def test_ranks_whose_caches_differ_still_score_as_one_process(tmp_path: Path) -> None:
    """Rank 0's cache holds EqSTS16's texts and rank 1's does not; rank 1's holds EqSTS12's and rank 0's does not
    (as when another process writes the cache between two ranks' reads). Before: the rank with the hits skipped
    the encoding the other gathered for, and the run stopped out of step."""
    data = _tasks(tmp_path / "data")
    args = ["run", "--model", "minilm", "--no-progress", "--dtype", "float32", "--data-dir", str(data), "--out",
            str(tmp_path)]  # fmt: skip
    caches = [tmp_path / "cache0", tmp_path / "cache1"]
    single = {}
    for task, cache in (("EqSTS16", caches[0]), ("EqSTS12", caches[1])):  # one process each, filling one cache
        assert main([*args, "--tasks", task, "--run-name", f"one-{task}", "--cache-dir", str(cache)]) == 0
        single[task] = json.loads((tmp_path / f"one-{task}" / "run.json").read_text())["tasks"][task]["main_score"]
    script = tmp_path / "rank.py"
    script.write_text(RUN_RANK)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, str(script), str(rank), str(tmp_path / "store"), str(caches[rank]),
                               *args, "--tasks", "EqSTS16,EqSTS12", "--run-name", "two"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for rank in (0, 1)]  # fmt: skip
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, (out + err)[-3000:]
        assert "out of step" not in out + err
    tasks = json.loads((tmp_path / "two" / "run.json").read_text())["tasks"]
    efficiency = json.loads((tmp_path / "two" / "efficiency.json").read_text())
    for task, score in single.items():
        # fp32 vectors from other batches differ by rounding (~1e-7); a Spearman over 40 pairs moves only if two
        # cosines swap order, and then by at least 1/40 of a rank difference: far above 1e-6
        assert tasks[task]["status"] == "ok" and abs(tasks[task]["main_score"] - score) < 1e-6
        figures = efficiency[task]  # no text was in both ranks' caches: every one was encoded, over the two ranks
        assert figures["cache_hits"] == 0 and figures["encoded_texts"] == figures["unique_texts"]


def _run_ranks(tmp_path: Path, args: list[list[str]], program: str = RUN_RANK) -> list[tuple[int, str]]:
    """Both ranks' (exit status, output) of `harness run` started through `program` with each rank's own args."""
    script = tmp_path / "rank.py"
    script.write_text(program)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, str(script), str(rank), str(tmp_path / "store"),
                               str(tmp_path / f"cache{rank}"), *args[rank]],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
             for rank in (0, 1)]  # fmt: skip
    outs = [p.communicate(timeout=600)[0] for p in procs]
    return [(p.returncode, out) for p, out in zip(procs, outs, strict=True)]


@pytest.mark.slow
def test_ranks_started_to_run_different_things_are_refused(tmp_path: Path) -> None:
    """Rank 1 has another --max-length and a data root whose EqSTS16 holds one other score (the same number of
    texts, so every header matched). Before: the ranks' vectors were paired silently and the run exited 0."""
    data = [_tasks(tmp_path / "data0"), _tasks(tmp_path / "data1")]
    rows = data[1] / "en" / "EqSTS16" / "test.jsonl"
    first, *rest = rows.read_text().splitlines()
    rows.write_text("\n".join([json.dumps({**json.loads(first), "score": 0.0}), *rest]) + "\n")
    args = ["run", "--tasks", "EqSTS16", "--model", "minilm", "--no-progress", "--dtype", "float32", "--out",
            str(tmp_path / "runs"), "--run-name", "two"]  # fmt: skip
    outs = _run_ranks(tmp_path, [[*args, "--data-dir", str(data[0])],
                                 [*args, "--data-dir", str(data[1]), "--max-length", "128"]])  # fmt: skip
    for code, out in outs:
        assert code == 2, out[-3000:]
        assert "torchrun ranks disagree on what to run: max_length: rank 0 256, rank 1 128;" in out
        assert 'task EqSTS16 data: rank 0 "mirror ' in out
        assert "Traceback" not in out
    assert not (tmp_path / "runs" / "two" / "run.json").exists()  # refused before anything was recorded


# RUN_RANK, where rank 0 holds its last run.json update (the finish time) until rank 1 has either returned from
# `harness run` or waits for rank 0 (ShardGroup.meet); rank 1 prints the finish time it sees once it returned
RUN_RANK_ORDERED = RUN_RANK.replace(
    "code = main(",
    textwrap.dedent("""
    import json, pathlib, time
    from harness.distributed import ShardGroup
    from harness.runs import RunDir

    flags = pathlib.Path(store + "-flags")
    flags.mkdir(exist_ok=True)
    if rank == 0:
        update_run = RunDir.update_run

        def held(self, change):
            trial = {}
            change(trial)
            for _ in range(1200 if trial.get("finished") else 0):  # at most 2 minutes: never a hang
                if any(flags.iterdir()):
                    break
                time.sleep(0.1)
            return update_run(self, change)

        RunDir.update_run = held
    elif hasattr(ShardGroup, "meet"):
        meet = ShardGroup.meet

        def waiting(self):
            (flags / "rank1-waits").touch()
            meet(self)

        ShardGroup.meet = waiting
    code = main("""),
).replace(
    "sys.stdout.flush()",
    textwrap.dedent("""
    if rank == 1:
        record = pathlib.Path(args[args.index("--out") + 1]) / "two" / "run.json"
        print("rank 1 returned; finished:", json.loads(record.read_text())["finished"] is not None)
        (flags / "rank1-returned").touch()
    sys.stdout.flush()"""),
)


@pytest.mark.slow
def test_other_ranks_leave_after_rank_0(tmp_path: Path) -> None:
    """Rank 1 returns from `harness run` only once rank 0 wrote the run's end, and with status 0: rank 0 carries
    the run's. Before, rank 1 returned as soon as the last task was agreed (status 1 when a task had failed), and
    torchrun, which stops the ranks still running once one has exited with an error, SIGTERMed rank 0 while it
    wrote run.json's finish time and the summary."""
    data = _tasks(tmp_path / "data")
    args = ["run", "--tasks", "EqSTS12", "--model", "minilm", "--no-progress", "--dtype", "float32", "--data-dir",
            str(data), "--out", str(tmp_path / "runs"), "--run-name", "two"]  # fmt: skip
    (zero, out0), (one, out1) = _run_ranks(tmp_path, [args, args], RUN_RANK_ORDERED)
    assert zero == 0 and one == 0, (out0 + out1)[-3000:]
    assert "rank 1 returned; finished: True" in out1
    summary = tmp_path / "runs" / "two" / "summary.md"
    assert ", 2 processes (torchrun), data root" in summary.read_text()  # float32: no rounding to say
    # one process adds a task and keeps EqSTS12, which its summary names (a walk, stop 66: run.json then said 1
    # process, and nothing but efficiency.json that EqSTS12 was computed by 2)
    assert main([*args[:2], "EqSTS12,EqSTS16", *args[3:]]) == 0
    text = summary.read_text()
    assert "processes (torchrun" not in text
    assert ("- computed by another number of processes than this run's 1: EqSTS12 (2) (their batches differ, so "
            "below float32 their scores may differ by rounding; `--overwrite` evaluates them again)") in text


@pytest.mark.slow
def test_rank_0_decides_which_tasks_were_done_earlier(tmp_path: Path) -> None:
    """Rank 1 runs on a host whose copy of the run directory is empty while rank 0's holds EqSTS16 finished. Before:
    rank 0 skipped EqSTS16 and rank 1 evaluated it, and the run stopped out of step."""
    data = _tasks(tmp_path / "data")
    args = ["run", "--model", "minilm", "--no-progress", "--dtype", "float32", "--data-dir", str(data), "--run-name",
            "two"]  # fmt: skip
    assert main([*args, "--tasks", "EqSTS16", "--out", str(tmp_path / "host0"), "--no-cache"]) == 0
    both = [*args, "--tasks", "EqSTS16,EqSTS12"]
    (zero, out0), (one, out1) = _run_ranks(tmp_path, [[*both, "--out", str(tmp_path / "host0")],
                                                      [*both, "--out", str(tmp_path / "host1")]])  # fmt: skip
    assert zero == 0 and one == 0, (out0 + out1)[-3000:]
    assert "[1/2] EqSTS16: done earlier, skipped" in out0
    tasks = json.loads((tmp_path / "host0" / "two" / "run.json").read_text())["tasks"]
    assert tasks["EqSTS12"]["status"] == "ok" and tasks["EqSTS16"]["status"] == "ok"


def _rerun_finishes(args: list[str]) -> None:
    """After a torchrun that stopped in EqSTS12 with EqSTS16 finished: EqSTS16 was kept, and the same command
    without the fault skips it and scores EqSTS12."""
    record = Path(args[args.index("--out") + 1]) / "two" / "run.json"
    assert json.loads(record.read_text())["tasks"]["EqSTS16"]["status"] == "ok"
    proc = subprocess.run(**_torchrun(args), capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "EqSTS16: done earlier, skipped" in proc.stdout
    assert {t["status"] for t in json.loads(record.read_text())["tasks"].values()} == {"ok"}


def _faulty_run_args(tmp_path: Path) -> list[str]:
    return ["run", "--tasks", "EqSTS16,EqSTS12", "--model", "minilm", "--no-cache", "--no-progress", "--dtype",
            "float32", "--data-dir", str(_tasks(tmp_path / "data")), "--out", str(tmp_path / "runs"), "--run-name",
            "two"]  # fmt: skip


@pytest.mark.slow
def test_a_hung_rank_is_named_once_the_group_timeout_passes(tmp_path: Path) -> None:
    """Rank 1 blocks in EqSTS12 without dying. Before: rank 0 waited inside the gather for torch's 30 minutes and
    then failed with a gloo error naming no rank (this test's subprocess timeout ended it first)."""
    args = _faulty_run_args(tmp_path)
    run = _torchrun(args, FAULT="block", FAULT_TASK="EqSTS12", HARNESS_DIST_TIMEOUT_S="45")
    proc = subprocess.run(**run, capture_output=True, text=True, timeout=400)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert "harness: error: torchrun rank 1 did not reach gather #0 of " in out, out[-3000:]
    assert " texts in task EqSTS12 within 45 s (HARNESS_DIST_TIMEOUT_S)" in out
    assert "Tasks finished earlier stay in the run directory" in out
    _rerun_finishes(args)


@pytest.mark.slow
@pytest.mark.parametrize(("fault", "stop"), [
    ("block", signal.SIGTERM),  # to the launcher, which passes it on to the ranks
    ("block", signal.SIGINT),  # Ctrl-C in a terminal: to the launcher and its ranks, one process group
    ("kill", None),  # rank 1 is SIGKILLed; the launcher stops rank 0
])  # fmt: skip
def test_a_run_stopped_while_a_rank_waits_keeps_its_finished_tasks(tmp_path: Path, fault: str,
                                                                   stop: signal.Signals | None) -> None:  # fmt: skip
    """Rank 1 blocks (or dies) at EqSTS12's first pass while rank 0 waits for it, then torchrun is stopped. Rank 0
    says what is kept and the rerun finishes. Before: rank 0 waited inside a collective, where no signal is
    handled, until torchrun SIGKILLed it after its grace period, without a word."""
    args = _faulty_run_args(tmp_path)
    launcher = subprocess.Popen(**_torchrun(args, FAULT=fault, FAULT_TASK="EqSTS12"), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)  # fmt: skip
    lines = []
    for line in launcher.stdout:  # the rank's own line: it blocks from here on (a killed rank says nothing)
        lines.append(line)
        if stop is not None and "rank 1 blocks" in line:
            (os.killpg if stop == signal.SIGINT else os.kill)(launcher.pid, stop)
            break
    try:  # ranks leave within seconds of a stop; torchrun SIGKILLs one still there after 30 s
        rest = launcher.communicate(timeout=20)[0]
    except subprocess.TimeoutExpired:  # a rank hangs (3 of 6 CI runs, stops 44-45): its stacks go to the output
        for pid in _children(launcher.pid):
            try:
                os.kill(pid, signal.SIGUSR1)
            except ProcessLookupError:  # it left meanwhile: only slow
                pass
        rest = launcher.communicate(timeout=300)[0]
    out = "".join(lines) + rest
    assert launcher.returncode != 0, out[-8000:]
    # rank 0 alone says so (before stop 61 rank 1 did too, the same line twice)
    assert out.count("finished tasks are kept in the run directory") == 1, out[-8000:]
    _rerun_finishes(args)


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux /proc): torchrun's ranks."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()  # after the command name, which may hold spaces
        except (OSError, IndexError):
            continue  # a process that ended meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_a_store_gone_before_a_rank_marks_its_arrival_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """A walk (stop 66): the torchrun launcher, which holds the rendezvous store, killed (-9) mid-run; a rank's next
    arrival mark failed in `store.set`, outside the handler, and each rank died in a DistNetworkError traceback
    instead of saying the store is unreachable. A real TCPStore, its server in a child process that is killed."""
    from datetime import timedelta

    import torch.distributed as dist

    from harness.distributed import ShardGroup
    from harness.errors import ShardMismatch

    serve = ("import time, torch.distributed as d; s = d.TCPStore('127.0.0.1', 0, 2, is_master=True, "
             "wait_for_workers=False); print(s.port, flush=True); time.sleep(600)")  # fmt: skip
    server = subprocess.Popen([sys.executable, "-c", serve], stdout=subprocess.PIPE, text=True)
    try:
        store = dist.TCPStore("127.0.0.1", int(server.stdout.readline()), 2, is_master=False,
                              timeout=timedelta(seconds=10))  # fmt: skip
    finally:
        server.kill()
        server.communicate()
    try:  # the first write after the server's death goes out unanswered; the next one finds the pipe broken
        store.set("harness/probe", "1")
    except RuntimeError:
        pass
    monkeypatch.setattr(dist.distributed_c10d, "_get_default_store", lambda: store)
    with pytest.raises(ShardMismatch, match=r"^torchrun's rendezvous store is unreachable at gather #0 \(.+\): "
                                            r"another rank or the launcher stopped"):  # fmt: skip
        ShardGroup(0, 2, "cpu")._arrive("gather #0")


@pytest.mark.parametrize("value", ["ten", "0", "-5", "inf", "nan"])
def test_a_bad_group_timeout_is_named(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("HARNESS_DIST_TIMEOUT_S", value)
    with pytest.raises(ConanError, match=f"HARNESS_DIST_TIMEOUT_S='{value}': give the seconds"):
        group_timeout_s()
