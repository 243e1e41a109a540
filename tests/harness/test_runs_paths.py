"""harness.runs.paths_apart and data_apart: two things shown side by side (a change of data root, two runs' data)
say what differs, never a machine's absolute path (a user's walk, stop 64)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.runs import data_apart, other_settings, paths_apart


def test_two_roots_of_one_folder_name_are_told_apart(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: `data root …/data → …/data` for /work/shared/data and /tmp/walk64c/data."""
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")  # neither root lies under the working directory
    shared, copy = tmp_path / "shared" / "data", tmp_path / "walk" / "data"
    assert paths_apart(shared, copy) == ("…/shared/data", "…/walk/data")
    assert paths_apart(str(shared), tmp_path / "other") == ("…/data", "…/other")  # names that differ: as they were
    assert paths_apart(shared, shared) == ("…/data", "…/data") and paths_apart(None, shared) == ("none", "…/data")
    assert str(tmp_path) not in "".join(paths_apart(shared, copy))


def test_a_kept_task_s_data_root_is_told_from_the_run_s(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """summary.md's kept-task note read `PAWSX: data root …/data (files sha256:cf96706e…)` beside a header whose root
    is `…/data` too."""
    monkeypatch.chdir(tmp_path)
    root, other = "/srv/shared/data", "/srv/walk/data"
    task = {"status": "ok", "source": "mirror", "data_root": other, "identity": {"data": "sha256:cf96706e" + "0" * 56}}
    record = {"data_root": root, "identity": {}, "tasks": {"PAWSX": task}}
    assert other_settings(record) == {"PAWSX": "data root …/walk/data (files sha256:cf96706e…)"}


def test_data_that_differ_are_named_with_each_side_s_value() -> None:
    """Before: regress said "not comparable (data differ)", not what differed nor how."""
    base = {"identity": {"data": "sha256:70b91834" + "1" * 56}, "split": "test", "sampling": "all rows"}
    cand = {"identity": {"data": "sha256:5a60e2fd" + "2" * 56}, "split": "test", "sampling": "first 100 rows"}
    assert data_apart([base, cand]) == [
        "sampling differs: baseline `all rows`, candidate `first 100 rows`",
        "data differs: baseline `sha256:70b91834…`, candidate `sha256:5a60e2fd…`",
    ]
    assert data_apart([base, base]) == []


def test_data_apart_names_what_differs_however_long_or_nested() -> None:
    """A review (stop 64): a `data_source` whose commit alone moved read `repo/path` on both sides, and two sampling
    notes differing past the cut read alike; an infinite score was an InvalidOperation traceback in `percent`."""
    from harness.runs import percent

    source = {"repo": "zejunwang1/CSTS", "path": "Chinese-STS-B/sts-b-test.txt", "commit": "2e7eeedf"}
    base = {"data_source": source, "sampling": "the first 2,000 rows of the test split, " * 3 + "seed 0"}
    cand = {"data_source": {**source, "commit": "01234567"}, "sampling": base["sampling"][:-1] + "1"}
    sampling, source_line = data_apart([base, cand])  # in SAME_DATA_KEYS' order
    assert source_line == "data_source differs: baseline commit `2e7eeedf`, candidate commit `01234567`"
    assert sampling == "sampling differs: baseline `…t, seed 0`, candidate `…t, seed 1`"
    assert (percent(float("inf")), percent(float("nan")), percent(0.5)) == ("—", "—", "50.00")
