"""Rows of one board told apart: run folders of one name under different parents, and runs of one model whose
settings differ."""

from __future__ import annotations

import re
from pathlib import Path

from lb_helpers import make_run, result_json, write_json

from harness.cli import main

TYPES = {"STS16": "STS"}


def test_run_folders_of_one_name_are_told_apart_by_their_parents(tmp_path: Path, capsys) -> None:
    """Before: runs/a/minilm and nightly/minilm could not go on one board ("two rows share a label")."""
    a = make_run(tmp_path / "runs" / "a", "minilm", {"STS16": 0.80}, TYPES)
    nightly = make_run(tmp_path / "nightly", "minilm", {"STS16": 0.70}, TYPES)
    other = make_run(tmp_path / "runs" / "b", "other", {"STS16": 0.75}, TYPES)
    out = tmp_path / "lb.md"
    assert main(["leaderboard", str(a), str(nightly), str(other), "--out", str(out)]) == 0
    text = re.sub(r" +", " ", out.read_text(encoding="utf-8"))
    assert "| 1 | model [a/minilm] (1 mirror) |" in text and "| 3 | model [nightly/minilm] (1 mirror) |" in text
    assert "| model [other] (1 mirror) |" in text  # a folder name no other run has keeps its plain label
    assert str(tmp_path) not in text  # no machine path in a label
    assert main(["leaderboard", str(a), str(a), "--out", str(tmp_path / "twice.md")]) == 2
    err = capsys.readouterr().err
    assert f"run {a}: given twice" in err and "Traceback" not in err


def test_the_fewest_distinguishing_folders_below_the_common_parent(tmp_path: Path) -> None:
    """x/minilm is a trailing part of y/x/minilm: the shorter path is named from the folder holding both."""
    short = make_run(tmp_path / "x", "minilm", {"STS16": 0.80}, TYPES)
    deep = make_run(tmp_path / "y" / "x", "minilm", {"STS16": 0.70}, TYPES)
    out = tmp_path / "lb.md"
    assert main(["leaderboard", str(short), str(deep), "--out", str(out)]) == 0
    text = re.sub(r" +", " ", out.read_text(encoding="utf-8"))
    assert "| model [x/minilm] (1 mirror) |" in text and "| model [y/x/minilm] (1 mirror) |" in text


RUN = {"model_fingerprint": "minilm==1", "dtype": "float32", "max_length": 256, "pooling": "model",
       "prompts": {"query": "", "document": ""}, "dims": [], "mteb": "2.26.24"}  # fmt: skip


def test_rows_of_one_model_name_the_settings_they_differ_in(tmp_path: Path) -> None:
    """Before: a `--max-length 16` run of a model sat beside its default run with nothing but the run names to tell
    them apart. The MRL dims scored besides move no score; another model's settings are not compared."""
    default = make_run(tmp_path, "default", {"STS16": 0.80}, TYPES, identity={**RUN, "dims": [64]})
    short = make_run(tmp_path, "short", {"STS16": 0.70}, TYPES, identity={**RUN, "max_length": 16})
    prompted = make_run(tmp_path, "prompted", {"STS16": 0.75}, TYPES,
                        identity={**RUN, "prompts": {"query": "query: ", "document": ""}})  # fmt: skip
    other = make_run(tmp_path, "other", {"STS16": 0.60}, TYPES, model="org/other",
                     identity={**RUN, "model_fingerprint": "other==1", "dtype": "bfloat16"})  # fmt: skip
    out = tmp_path / "lb.md"
    assert main(["leaderboard", *map(str, (default, short, prompted, other)), "--out", str(out)]) == 0
    text = re.sub(r" +", " ", out.read_text(encoding="utf-8"))
    assert "| Rank (Borda) | Model | Settings that differ | Coverage |" in text
    empty = '`{"document": "", "query": ""}`'
    assert f"| model [default] (1 mirror) | max_length `256`, prompts {empty} | 1/1 |" in text
    assert f"| model [short] (1 mirror) | max_length `16`, prompts {empty} | 1/1 |" in text
    assert '| model [prompted] (1 mirror) | max_length `256`, prompts `{"document": "", "query": "query: "}` |' in text
    assert "| other [other] (1 mirror) | | 1/1 |" in text and "- **Settings that differ**" in text


def test_a_row_below_float32_names_its_dtype_beside_published_rows(tmp_path: Path) -> None:
    """Audit, stop 52: a bf16 run (`--dtype auto` on this CPU) ranked beside the published float32 scores with no
    dtype anywhere on the board; a float32 run names none. A key recorded only away from its default (padding to a
    multiple) is named against a run that left it out (before: compared only among the runs that held it)."""
    bf16 = make_run(tmp_path, "bf16", {"STS16": 0.7898}, TYPES, identity={**RUN, "dtype": "bfloat16"})
    fp32 = make_run(tmp_path, "fp32", {"STS16": 0.7899}, TYPES, model="org/other",
                    identity={**RUN, "model_fingerprint": "other==1"})  # fmt: skip
    padded = make_run(tmp_path, "padded", {"STS16": 0.7899}, TYPES, model="org/other",
                      identity={**RUN, "model_fingerprint": "other==1", "pad_multiple": 16})  # fmt: skip
    out = tmp_path / "lb.md"
    assert main(["leaderboard", str(bf16), str(fp32), str(padded), "--published", "--out", str(out)]) == 0
    text = re.sub(r" +", " ", out.read_text(encoding="utf-8"))
    assert "| model [bf16] (1 mirror) | dtype `bfloat16` |" in text
    assert "| other [fp32] (1 mirror) | pad_multiple `1` |" in text
    assert "| other [padded] (1 mirror) | pad_multiple `16` |" in text
    assert main(["leaderboard", str(bf16), "--out", str(out)]) == 0  # no published rows: nothing to name
    assert "Settings that differ" not in out.read_text(encoding="utf-8")


def test_no_settings_column_when_the_settings_agree(tmp_path: Path) -> None:
    a = make_run(tmp_path, "a", {"STS16": 0.80}, TYPES, identity=RUN)
    b = make_run(tmp_path, "b", {"STS16": 0.70}, TYPES, identity={**RUN, "dims": [64, 128]})
    out = tmp_path / "lb.md"
    assert main(["leaderboard", str(a), str(b), "--out", str(out)]) == 0
    assert "Settings that differ" not in out.read_text(encoding="utf-8")


def test_one_published_model_from_two_folders_is_labelled_by_its_folder(tmp_path: Path, capsys) -> None:
    """Before: one model in two --published folders was refused ("two rows share a label"). Such rows name the
    fewest trailing folders that tell their --published folders apart; a model in one folder only keeps its label."""
    for folder, score in (("mirror-a/results", 0.71), ("mirror-b/results", 0.72)):
        write_json(tmp_path / folder / "org__pub" / "r" / "STS16.json", result_json("STS16", score))
    write_json(tmp_path / "mirror-b" / "results" / "org__solo" / "r" / "STS16.json", result_json("STS16", 0.6))
    run = make_run(tmp_path, "run", {"STS16": 0.80}, TYPES)
    out = tmp_path / "lb.md"
    argv = ["leaderboard", str(run), "--published", str(tmp_path / "mirror-a" / "results"),
            "--published", str(tmp_path / "mirror-b" / "results"), "--out", str(out)]  # fmt: skip
    assert main(argv) == 0
    text = re.sub(r" +", " ", out.read_text(encoding="utf-8"))
    assert "| org/pub [mirror-b/results] (published) |" in text and "| org/pub [mirror-a/results] (published) |" in text
    assert "| org/solo (published) |" in text and str(tmp_path) not in text
    assert main([*argv, "--published", str(tmp_path / "mirror-a" / "results")]) == 2
    err = capsys.readouterr().err
    assert f"--published {tmp_path / 'mirror-a' / 'results'}: given twice" in err and "Traceback" not in err


def test_two_model_folders_of_one_name_in_one_published_folder_are_told_apart(tmp_path: Path) -> None:
    """Before: a folder whose model_meta.json names a model another folder holds too (a run's results copied in
    beside the real ones) gave notes that read alike and, both holding scores, a refused board. Each now adds its
    model folder."""
    pub = tmp_path / "pub" / "results"
    for folder, score in (("acme__m", 0.61), ("org__m", 0.62)):
        write_json(pub / folder / "r" / "STS16.json", result_json("STS16", score))
        write_json(pub / folder / "r" / "model_meta.json", {"name": "org/m", "revision": "r"})
    run = make_run(tmp_path, "run", {"STS16": 0.80}, TYPES)
    out = tmp_path / "lb.md"
    assert main(["leaderboard", str(run), "--published", str(pub), "--out", str(out)]) == 0
    text = re.sub(r" +", " ", out.read_text(encoding="utf-8"))
    assert "| org/m [results/acme__m] (published) | 1/1 | 61.00‡ |" in text
    assert "| org/m [results/org__m] (published) | 1/1 | 62.00‡ |" in text
    assert "org/m [results/acme__m]: revision `r`" in text and "org/m [results/org__m]: revision `r`" in text


def test_a_run_folder_name_with_a_line_break_stays_on_its_line(tmp_path: Path) -> None:
    """A security walk (stop 69): a name with a line break became a heading of the leaderboard's notes. Labels and
    notes are one line each; the name's text is kept."""
    run = make_run(tmp_path, "evil\n# INJECTED", {"STS16": 0.80}, TYPES)
    other = make_run(tmp_path, "other", {"STS16": 0.70}, TYPES, data={"STS16": {"source": "official"}})
    out = tmp_path / "lb.md"
    assert main(["leaderboard", str(run), str(other), "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    assert not [line for line in text.splitlines() if line.startswith("# INJECTED")]
    assert "evil # INJECTED" in text
