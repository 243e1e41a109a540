import pytest
import torch

from conan_model import default_dtype, dist_backend, pick_device, synchronize
from conan_model.device import npu_available


def test_device_helpers():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device().type in {"cuda", "npu", "mps", "cpu"}
    assert default_dtype("cpu") == torch.float32
    assert default_dtype("npu") == torch.bfloat16
    assert (dist_backend("cuda:1"), dist_backend("npu"), dist_backend("cpu")) == ("nccl", "hccl", "gloo")
    synchronize("cpu")


def test_npu_request_without_plugin_is_a_clear_error():
    if npu_available():
        pytest.skip("an NPU is present")
    with pytest.raises(RuntimeError, match="torch_npu"):
        pick_device("npu")
