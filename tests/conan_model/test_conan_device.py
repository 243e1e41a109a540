from pathlib import Path

import pytest
import torch

from conan_model import default_dtype, dist_backend, pick_device, synchronize
from conan_model.device import NPU_DOCS, device_problem, local_rank_problem, npu_available


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
