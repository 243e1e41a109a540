"""harness.runs.comma_list: how every command reads a comma-separated option (--tasks, --dims)."""

from __future__ import annotations

import argparse

import pytest

from harness.cli import build_parser
from harness.runs import comma_list
from reporting.cli import _check_regress_options


def test_a_cjk_keyboard_s_commas_separate_too() -> None:
    """A user walk: `--tasks "ATEC，BQ"` (a full-width comma, typed on a Chinese keyboard) was one unknown task
    'ATEC，BQ' before stop 63. The full-width comma and the enumeration comma 、 now separate like ","."""
    assert comma_list("ATEC，BQ、LCQMC, PAWSX") == ["ATEC", "BQ", "LCQMC", "PAWSX"]
    args = build_parser().parse_args(["run", "--tasks", "ATEC，BQ", "--tasks", "STSB", "--dims", "64，full"])
    assert args.tasks == ["ATEC", "BQ", "STSB"] and args.dims == ["64", "full"]
    regress = build_parser().parse_args(["regress", "--baseline", "a", "--candidate", "b", "--tasks", "ATEC，BQ"])
    _check_regress_options(regress)  # regress reads its values after parsing (reporting/cli.py), with comma_list
    assert regress.tasks == ["ATEC", "BQ"]


@pytest.mark.parametrize("value", ["", " , ", "，", "、 ,"])
def test_an_empty_list_is_refused(value: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="expected a comma-separated list"):
        comma_list(value)
