"""The embedding cache's namespace carries the versions of the packages that compute a vector and, below float32 on
a CPU, the CPU model (audit finding 4): before, an upgrade of torch/transformers/sentence-transformers, or a cache
shared by machines with other installs or other CPUs, served vectors other kernels had rounded. `tokenizers` since
stop 46 (audit): it makes the token ids of every st:/hf:/conan: model (harness.backend_tokenizer.BackendTokenizer)."""

from __future__ import annotations

import importlib.metadata

import pytest

from harness import sysinfo
from harness.cache import namespace_key
from harness.embedder import ModelOptions
from harness.models import load_model

PACKAGES = ("torch", "tokenizers", "transformers", "sentence-transformers")


def test_a_changed_package_version_is_a_new_namespace(minilm, monkeypatch) -> None:
    before = minilm.cache_identity("query")
    assert before["packages"] == {name: importlib.metadata.version(name) for name in PACKAGES}
    assert "cpu" not in before  # float32 kernels give the same vectors on every CPU here
    installed = sysinfo.package_versions()
    for name in PACKAGES:  # the same model after an upgrade of one package (as sysinfo would then read it)
        monkeypatch.setattr(sysinfo, "package_versions", lambda name=name: {**installed, name: "0.0.1"})
        assert namespace_key(minilm.cache_identity("query")) != namespace_key(before), name
    monkeypatch.setattr(sysinfo, "package_versions", lambda: {**installed, "numpy": "0.0.1"})
    assert namespace_key(minilm.cache_identity("query")) == namespace_key(before)  # not a kernel package


def test_bf16_on_a_cpu_is_keyed_by_the_cpu_model_and_its_bf16_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Audit, stop 52: keyed by the model name alone, vectors of a VM host with native bf16 were served to one
    whose oneDNN emulates it (or runs under an ISA cap), under the same generic name."""
    identity = load_model("minilm", ModelOptions(device="cpu", dtype="bfloat16")).cache_identity("query")
    assert identity["cpu"] == sysinfo.cpu_kernels() and identity["cpu"].startswith(sysinfo.cpu_model() + " | ")
    assert namespace_key({**identity, "cpu": "another CPU"}) != namespace_key(identity)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE")
    assert sysinfo.cpu_kernels().endswith(" | ONEDNN_MAX_CPU_ISA=AVX512_CORE")


def test_an_accelerator_run_is_keyed_by_the_accelerator_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """Audit, stop 54: a cache shared by nodes of two GPU models (an A100's and an H100's bf16 kernels round
    otherwise) served one's vectors to the other, keyed by the device type alone. No GPU here: torch.cuda's answers
    are the ones an H100 gives, and the Embedder is the real minilm one with its device set as a GPU run sets it."""
    import torch

    asked: list[int | None] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=None: asked.append(i) or (9, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=None: "NVIDIA H100 80GB HBM3")
    assert sysinfo.accelerator_model("cuda:1") == "NVIDIA H100 80GB HBM3 (sm_90)" and asked == [1]
    embedder = load_model("minilm", ModelOptions(device="cpu"))
    monkeypatch.setattr(embedder, "device", "cuda:0")
    identity = embedder.cache_identity("query")
    assert identity["accelerator"] == "NVIDIA H100 80GB HBM3 (sm_90)" and "cpu" not in identity
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=None: "NVIDIA A100-SXM4-80GB")
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda i=None: (8, 0))
    assert namespace_key(embedder.cache_identity("query")) != namespace_key(identity)
