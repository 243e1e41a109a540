"""`harness leaderboard`: registered into the harness CLI through PLUGIN_COMMANDS; work is imported lazily."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from harness.runs import atomic_write_text
    from leaderboards.build import build_board
    from leaderboards.render import render

    board = build_board([Path(p) for p in args.runs], [Path(p) for p in args.published or []], args.suite, args.dims)
    text = render(board)
    atomic_write_text(Path(args.out), text)
    print(text)
    print(f"leaderboard written to {args.out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    from leaderboards.published import SNAPSHOT

    lb = subparsers.add_parser("leaderboard", help="rank runs (and published baselines) in a markdown table")
    lb.add_argument("runs", nargs="*", metavar="RUN_DIR", help="run directories written by `harness run`")
    lb.add_argument("--published", action="append", nargs="?", const=str(SNAPSHOT), metavar="DIR",
                    help="published results in the embeddings-benchmark/results layout; without DIR, the "
                    "snapshot shipped in leaderboards/published (repeatable)")  # fmt: skip
    lb.add_argument("--suite", help="rank over this suite's task list: cmteb, mteb-en, mteb-en-v1 "
                    "(default: the tasks of the given runs)")  # fmt: skip
    lb.add_argument("--dims", action="store_true", help="add per-dimension tables from experiments/embed_dim_<d>")
    lb.add_argument("--out", default="leaderboard.md", help="markdown file to write (default leaderboard.md)")
    lb.set_defaults(func=cmd_leaderboard)
