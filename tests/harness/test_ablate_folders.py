"""Where `harness ablate` writes, checked when the ablation opens (a walk, stop 60): `out` and `report` that are
files, and a report folder that holds another ablation's report, are refused before anything trains."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_ablate import one_arm_config

from harness.ablate_config import check_folders, load_ablation, report_dir, work_dir
from harness.cli import main
from harness.errors import UsageError
from reporting.ablation import out_from_report


def config_with(tmp_path: Path, top: str) -> Path:
    """A one-arm config (its stage never read: the folders are checked first) with ``top`` lines."""
    return one_arm_config(tmp_path, tmp_path / "weak.toml", "folders", top)


@pytest.mark.parametrize("key", ["out", "report"])
def test_an_out_or_report_that_is_a_file_is_refused_at_open(tmp_path: Path, capsys, key: str) -> None:
    """Before: `out` a file was a FileExistsError traceback at start, `report` one after every unit had trained."""
    afile = tmp_path / "afile"
    afile.write_text("x", encoding="utf-8")
    config = config_with(tmp_path, f'report = "{tmp_path / "report"}"')
    text = config.read_text(encoding="utf-8")
    old = f'{key} = "{tmp_path / ("work" if key == "out" else "report")}"'
    config.write_text(text.replace(old, f'{key} = "{afile}"'), encoding="utf-8")
    assert main(["ablate", str(config)]) == 2
    assert f"{config}: {key} {afile}: is a file, not a directory" in capsys.readouterr().err
    assert not (tmp_path / "work").exists()


def test_a_report_folder_of_another_ablation_is_refused_and_its_own_is_rewritten(tmp_path: Path, capsys,
                                                                               monkeypatch) -> None:
    """Before: another ablation's report.json, report.md and scores.png were written over without a word. Its name
    tells one apart, and since stop 60 its `out` too (two configs of one name writing one folder)."""
    report = tmp_path / "report"
    report.mkdir()
    config = config_with(tmp_path, f'report = "{report}"')
    cfg = load_ablation(config)
    (report / "report.json").write_text(json.dumps({"name": "other", "comparisons": {}}), encoding="utf-8")
    assert main(["ablate", str(config)]) == 2
    assert (f"{config}: report {report} holds the report of another ablation (name 'other'; this one: name "
            f"'folders', out {tmp_path / 'work'}); set another `report`, or delete {report / 'report.json'}"
            ) in capsys.readouterr().err  # fmt: skip
    assert not (tmp_path / "work").exists()
    elsewhere = {"name": "folders", "out": "../elsewhere", "out_from_report": "../elsewhere"}
    (report / "report.json").write_text(json.dumps(elsewhere))
    with pytest.raises(UsageError, match=r"another ablation \(name 'folders', out \.\./elsewhere; this one"):
        check_folders(cfg, config)
    # review of stop 60: `out` is relative to the working directory the report was written from, so a report
    # written from another one named another out; `out_from_report` is the same from anywhere
    seen = out_from_report(work_dir(cfg), report_dir(cfg))
    own = {"name": "folders", "out": "some/cwd/relative/work", "out_from_report": seen}
    for recorded in ({"name": "folders"}, own):  # before stop 60 reports recorded no out: by name alone
        (report / "report.json").write_text(json.dumps(recorded), encoding="utf-8")
        check_folders(cfg, config)  # the same ablation's report: rewritten when it ends
    monkeypatch.chdir(report)
    check_folders(cfg, config)
