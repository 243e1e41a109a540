"""`harness list`: which options each listing takes, and what `list tasks --suite` shows (harness/cli.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main


def _rows(out: str) -> dict[str, list[str]]:
    """A printed table's rows by their first cell (the header and rule lines left out)."""
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines() if line.startswith("| ")]
    return {row[0]: row for row in cells[1:]}


def test_list_tasks_of_a_suite_says_which_have_data_here(shared_data: Path, capsys) -> None:
    """Before stop 61 (a user's walk) `--suite` was taken and ignored: every local task was listed, English ones
    too, and none of the suite's tasks without a mirror."""
    assert main(["list", "tasks", "--suite", "cmteb", "--data-dir", str(shared_data)]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert len(rows) == 31 and "STS16" not in rows
    assert rows["AFQMC"][1:3] == ["STS", "zh"] and rows["AFQMC"][-1] == "ok"
    assert rows["T2Retrieval"][1] == "Retrieval" and rows["T2Retrieval"][-1] == "no local mirror"
    assert "cmteb: 13/31 tasks — 0 official, 13 mirror, 18 missing: T2Retrieval" in out
    assert "official datasets: `harness list official --suite cmteb`" in out


def test_list_tasks_of_a_local_suite_keeps_its_broken_folders(shared_data: Path, tmp_path: Path, capsys) -> None:
    """A local suite lists what a run of it covers: its language folder's tasks, a broken one with its reason."""
    import shutil

    shutil.copytree(shared_data / "en" / "STS16", tmp_path / "en" / "STS16")
    shutil.copytree(shared_data / "zh" / "AFQMC", tmp_path / "zh" / "AFQMC")
    (tmp_path / "en" / "Broken").mkdir()
    (tmp_path / "en" / "Broken" / "task.json").write_text("{", encoding="utf-8")
    assert main(["list", "tasks", "--suite", "local-en", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    rows = _rows(out)
    assert set(rows) == {"STS16", "Broken"} and rows["Broken"][-1].startswith("BROKEN: ")
    assert "local-en: 1/2 tasks — 0 official, 1 mirror, 1 missing: Broken" in out


def _exit(argv: list[str]) -> int:
    """main's status, or the one argparse exits with."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)


def test_an_unknown_suite_suggests_a_known_one(capsys) -> None:
    """Before stop 61 argparse named the three official suites only ("invalid choice"), not local ones."""
    assert _exit(["list", "tasks", "--suite", "cmtb"]) == 2
    captured = capsys.readouterr()
    assert "unknown suite 'cmtb'; did you mean: cmteb" in captured.err and captured.out == ""


@pytest.mark.parametrize("what", ["suites", "models"])
def test_a_suite_is_refused_where_the_listing_takes_none(what: str, capsys) -> None:
    """Before stop 61 `list suites --suite cmteb` and `list models --suite cmteb` listed everything, as if it
    had not been given."""
    assert _exit(["list", what, "--suite", "cmteb"]) == 2
    captured = capsys.readouterr()
    assert f"--suite cmteb: `harness list {what}` takes no suite" in captured.err and captured.out == ""


def test_list_models_says_what_conan_and_hf_folders_hold(capsys) -> None:
    """Walk 68: conan: was "harness train output" only (imports and prepared bases load too), and hf: said nothing
    of decoders, which a run pools without the eos token the import appends."""
    assert main(["list", "models"]) == 0
    rows = _rows(capsys.readouterr().out.replace("\\|", "/"))
    assert "`harness models import` output or a prepared base (`harness models list`)" in rows["conan:<path>"][1]
    assert "a decoder (Llama/Qwen2/Mistral): import it with `harness models import hf:<folder>`" in rows["hf:<path>"][1]


def test_list_tasks_shows_each_task_s_languages(shared_data: Path, capsys) -> None:
    """Before stop 61 (a user's walk) the lang column showed the language folder: "multi" for every bilingual task."""
    assert main(["list", "tasks", "--data-dir", str(shared_data)]) == 0
    rows = _rows(capsys.readouterr().out)
    assert rows["TatoebaDeuEng"][2] == "deu, eng" and rows["XQuADRetrievalDeEn"][2] == "de, en"
    assert rows["STS16"][2] == "en"


def test_list_suites_names_the_data_root_its_local_counts_come_from(shared_data: Path, capsys) -> None:
    """A user walk: `list suites` said "local-zh 14 local tasks" (the embedded sample), README 15 (../shared/data),
    and nothing said which folder was counted (before stop 63)."""
    from harness.data import default_data_root

    assert main(["list", "suites"]) == 0
    out = capsys.readouterr().out
    assert f"local suites: the task folders in {default_data_root().resolve()} (from the embedded sample)" in out
    assert main(["list", "suites", "--data-dir", str(shared_data)]) == 0
    out = capsys.readouterr().out
    assert f"the task folders in {shared_data.resolve()} (from --data-dir)" in out
    assert _rows(out)["local-zh"][1] == "15 local tasks"


def test_list_tasks_says_not_run_for_a_folder_every_run_refuses(tmp_path: Path, capsys) -> None:
    """A user walk (stop 67): a folder named STSBenchmark without mteb_equivalent was listed `ok`, though every run
    refuses it (only `--suite local` said `not run`); the reason said "mteb_equivalent is None" for an absent key."""
    import json
    import shutil

    from harness.data import default_data_root

    folder = tmp_path / "en" / "STSBenchmark"
    shutil.copytree(default_data_root() / "en" / "STS12", folder)
    meta = {k: v for k, v in json.loads((folder / "task.json").read_text("utf-8")).items() if k != "mteb_equivalent"}
    (folder / "task.json").write_text(json.dumps({**meta, "name": "STSBenchmark"}), "utf-8")
    expected = (f"not run: {folder / 'task.json'}: the folder takes the name of mteb's STS task STSBenchmark but "
                "task.json sets no mteb_equivalent: rename the folder and its name, or set mteb_equivalent to "
                "'STSBenchmark' if it holds that task's data")  # fmt: skip
    for suite in ([], ["--suite", "local"]):
        assert main(["list", "tasks", "--data-dir", str(tmp_path), *suite]) == 0
        assert _rows(capsys.readouterr().out)["STSBenchmark"][-1] == expected


def test_list_tasks_shows_each_folder_of_a_name_defined_twice(tmp_path: Path, capsys) -> None:
    """A user walk (stop 67): en/MyEnSTS and zh/MyEnSTS were one BROKEN row, "1 local tasks (1 broken)" for three
    folders, where docs/data-layout.md says both are broken, naming each other."""
    import shutil

    from harness.data import default_data_root

    for lang in ("en", "zh"):
        shutil.copytree(default_data_root() / "en" / "STS12", tmp_path / lang / "STS12")
    shutil.copytree(default_data_root() / "zh" / "AFQMC", tmp_path / "zh" / "AFQMC")
    assert main(["list", "tasks", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines() if line.startswith("| STS12")]
    named = f"({tmp_path / 'en' / 'STS12'}, {tmp_path / 'zh' / 'STS12'})"
    assert [(row[2], row[-1].split(": task ")[0]) for row in cells] == [
        ("en", f"BROKEN: {tmp_path / 'en' / 'STS12' / 'task.json'}"),
        ("zh", f"BROKEN: {tmp_path / 'zh' / 'STS12' / 'task.json'}")]  # fmt: skip
    assert all(named in row[-1] for row in cells)
    assert f"1 local tasks (1 broken, in 2 folders) in {tmp_path.resolve()}" in out
