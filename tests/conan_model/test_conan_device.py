import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conan_model import default_dtype, dist_backend, pick_device, synchronize
from conan_model.device import NPU_DOCS, _note_once, device_problem, local_rank_problem, npu_available, npu_problem


def test_device_helpers():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device().type in {"cuda", "npu", "mps", "cpu"}
    assert default_dtype("cpu") == torch.float32
    assert default_dtype("npu") == torch.bfloat16
    assert (dist_backend("cuda:1"), dist_backend("npu"), dist_backend("cpu")) == ("nccl", "hccl", "gloo")
    synchronize("cpu")


def test_device_problem_names_what_is_missing(monkeypatch):
    """The check `train` runs before any work (harness has its own for --device)."""
    assert device_problem("cpu") is None
    assert "unknown device type 'tpu'" in device_problem("tpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device_problem("cuda:0") == "no CUDA device is available here"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert device_problem("cuda:1") is None
    assert device_problem("cuda:2") == "no cuda device '2': 2 present (indices 0-1)"
    if not npu_available():
        assert "torch_npu is not installed" in device_problem("npu")


def test_the_npu_refusal_points_to_the_install_notes():
    """Before, `--device npu` said "torch_npu is not installed" and no document said how to install it."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert NPU_DOCS == "README.md, Ascend NPU" and "\n### Ascend NPU\n" in readme
    assert 'pip install -c constraints.txt -e ".[npu]"' in readme and "TORCH_DEVICE_BACKEND_AUTOLOAD=0" in readme
    if not npu_available():
        assert device_problem("npu").endswith(f"; see {NPU_DOCS})")


@pytest.fixture
def broken_torch_npu(tmp_path, monkeypatch):
    """A torch_npu that is installed but fails to load, as the real one raises without the CANN toolkit; no CUDA or
    MPS, so the NPU is the pick's next choice."""
    (tmp_path / "torch_npu").mkdir()
    (tmp_path / "torch_npu" / "__init__.py").write_text('raise RuntimeError("CANN not found")\n', encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    npu_problem.cache_clear()
    _note_once.cache_clear()
    yield
    npu_problem.cache_clear()
    _note_once.cache_clear()
    sys.modules.pop("torch_npu", None)


def test_a_torch_npu_that_fails_to_load_is_passed_over_with_one_note(broken_torch_npu, capsys):
    """Before, its RuntimeError escaped the pick: a CPU run that named no device died with a traceback."""
    assert pick_device() == torch.device("cpu") and pick_device() == torch.device("cpu")
    failure = "torch_npu failed to load: RuntimeError: CANN not found"
    assert capsys.readouterr().err == f"note: no NPU used: {failure} (README.md, Ascend NPU)\n"  # once
    assert importlib.util.find_spec("torch_npu") is None  # hidden: transformers imported it again, unguarded
    assert device_problem("npu") == f"no NPU device is available here ({failure}; see README.md, Ascend NPU)"
    with pytest.raises(RuntimeError, match=f"device 'npu' requested but {failure}"):
        pick_device("npu")


def test_harness_says_the_npu_failure_in_one_line(broken_torch_npu, tmp_path, capsys):
    """`--device npu` is refused naming the failure; without --device the options resolve to the CPU."""
    from harness.cli import main
    from harness.embedder import ModelOptions
    from harness.models import resolve_options

    assert main(["run", "--model", "minilm", "--tasks", "STS16", "--out", str(tmp_path / "runs"), "--device",
                 "npu"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert err == ("harness: error: --device npu: no NPU device is available here (torch_npu failed to load: "
                   "RuntimeError: CANN not found; see README.md, Ascend NPU); use --device cpu\n")
    assert resolve_options("minilm", ModelOptions())[0].device == "cpu"


@pytest.mark.parametrize("requested", ["cpu", "cuda"])
def test_a_torch_npu_that_fails_to_load_is_hidden_whatever_device_is_asked(broken_torch_npu, requested, capsys):
    """Before stop 63 only a pick without a device (or of npu) hid it, and transformers imported it again."""
    device_problem(requested)
    assert importlib.util.find_spec("torch_npu") is None
    npu_problem.cache_clear()
    sys.modules.pop("torch_npu")
    assert pick_device(requested) == torch.device(requested) and importlib.util.find_spec("torch_npu") is None
    assert capsys.readouterr().err == ""  # a device was asked: no note about an NPU nobody wanted


def test_a_cpu_run_goes_on_past_a_torch_npu_that_fails_to_load(tmp_path):
    """The whole path in a fresh process, as `harness run --device cpu` takes it: the options resolve, then
    transformers' import (its sdpa integration asks is_torch_npu_available) no longer meets the plugin's error."""
    (tmp_path / "torch_npu").mkdir()
    (tmp_path / "torch_npu" / "__init__.py").write_text('raise RuntimeError("CANN not found")\n', encoding="utf-8")
    script = ("from harness.embedder import ModelOptions\n"
              "from harness.models import resolve_options\n"
              "print(resolve_options('minilm', ModelOptions(device='cpu'))[0].device)\n"
              "from transformers import BertModel\n"
              "print(BertModel.__name__)\n")
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(repo)])}
    child = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert child.returncode == 0, child.stderr
    assert child.stdout.split() == ["cpu", "BertModel"]


def test_a_local_rank_past_the_visible_devices_is_named():
    """torchrun's rank LOCAL_RANK takes device LOCAL_RANK: with more processes per node than devices the check names
    both (before, torch's set_device failed with a traceback); given the count, so it runs without a GPU."""
    assert local_rank_problem("cuda", 1, 2) is None
    problem = local_rank_problem("cuda", 2, 2)
    assert problem.startswith("torchrun LOCAL_RANK 2 has no cuda device of its own")
    assert "--nproc_per_node 3 or more" in problem and "2 visible cuda device(s)" in problem


def test_npu_request_without_plugin_is_a_clear_error():
    if npu_available():
        pytest.skip("an NPU is present")
    with pytest.raises(RuntimeError, match="torch_npu"):
        pick_device("npu")


def test_leaving_the_process_group_frees_fsdp_cycles_first(tmp_path):
    """An FSDP2 module survives its last name (a reference cycle); left to interpreter exit, gloo aborted a rank."""
    import gc
    import weakref

    import torch.distributed as dist
    from torch.distributed.fsdp import fully_shard

    from conan_model import leave_process_group

    dist.init_process_group("gloo", store=dist.FileStore(str(tmp_path / "store"), 1), rank=0, world_size=1)
    gc.disable()  # no collection may happen between dropping the name and leaving the group
    try:
        model = fully_shard(torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 1)))
        model(torch.randn(3, 4)).sum().backward()
        alive = weakref.ref(model)
        del model
        assert alive() is not None, "the wrapped module is no longer in a cycle: this test guards nothing"
        leave_process_group()
        assert alive() is None and not dist.is_initialized()
    finally:
        gc.enable()
        if dist.is_initialized():
            dist.destroy_process_group()
