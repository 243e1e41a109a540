"""pyproject.toml declares ranges, constraints.txt the tested set: each range must start at the version we test.

A lower bound below the pin would promise versions no test ran on; a pin outside its range would make
`pip install -c constraints.txt -e ".[test]"` (CI, the README) unsatisfiable.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]


def pins() -> dict[str, Version]:
    lines = (REPO / "constraints.txt").read_text(encoding="utf-8").splitlines()
    pairs = (line.split("==") for line in lines if line.strip() and not line.startswith("#"))
    return {canonicalize_name(name): Version(version) for name, version in pairs}


def declared() -> list[Requirement]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    return [Requirement(r) for r in [*project["dependencies"], *project["optional-dependencies"]["test"]]]


def test_every_range_starts_at_the_pinned_version():
    pinned = pins()
    for req in declared():
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} is a dependency but constraints.txt does not pin it"
        assert pinned[name] in req.specifier, f"{req.name}=={pinned[name]} is outside {req.specifier}"
        lower = [Version(s.version) for s in req.specifier if s.operator == ">="]
        assert lower == [pinned[name]], f"{req}: the lower bound must be the tested {pinned[name]}"
        assert not any(s.operator in ("==", "===") for s in req.specifier), f"{req}: exact pins belong in constraints"


def test_a_newer_compatible_torch_satisfies_the_range():
    """A user's newer torch (e.g. a CUDA build of the next minor release) must not be replaced on install."""
    torch = next(r for r in declared() if r.name == "torch")
    assert Version("2.14.1") in torch.specifier and Version("2.14.1+cu130") in torch.specifier
    assert pins()["torch"] in torch.specifier


def test_the_npu_extra_installs_through_the_torch_pin():
    """torch-npu X.Y.Z requires torch==X.Y.Z.*: the README installs the extra through constraints.txt, whose torch
    pin picks the matching torch-npu (without it pip took the newest and moved torch with it). It has no pin of its
    own: constraints.txt is the tested set, and nothing here has run torch-npu."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["optional-dependencies"]["npu"] == ["torch-npu"] and "torch-npu" not in pins()
    assert 'pip install -c constraints.txt -e ".[npu]"' in (REPO / "README.md").read_text(encoding="utf-8")
