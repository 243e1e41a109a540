"""`harness --help`, every `--help`, `harness list` and `python -m train --help` import no torch, mteb, transformers.

Each of those takes seconds to import on a small machine; the parser's registration modules (harness.cli and its
PLUGIN_COMMANDS) import them only inside the commands that need them. Checked in a fresh interpreter, since the
test process itself has imported everything already. `harness list tasks` and `harness list official` import
mteb (tasks: the main score each mirror's mteb twin reports, which only mteb's task metadata knows; official: mteb's
benchmarks), so they are not probed here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

HEAVY = ("torch", "mteb", "transformers")

PROBE = """
import contextlib, io, json, sys
from harness.cli import build_parser, main
from train.cli import main as train_main

parser = build_parser()
commands = sorted(parser._subparsers._group_actions[0].choices)
for argv in [["--help"], *[[c, "--help"] for c in commands], ["list", "suites"], ["list", "models"]]:
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            main(argv)
        except SystemExit:
            pass
with contextlib.redirect_stdout(io.StringIO()):
    try:
        train_main(["--help"])  # python -m train --help
    except SystemExit:
        pass
print(json.dumps({"commands": commands, "heavy": [m for m in sys.argv[1:] if m in sys.modules]}))
"""


def test_parser_help_and_list_import_no_heavy_library():
    out = subprocess.run([sys.executable, "-c", PROBE, *HEAVY], cwd=REPO, capture_output=True, text=True, check=True)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"run", "list", "cache", "train", "pipeline", "leaderboard", "report", "regress", "alignment"} <= set(
        got["commands"])
    assert got["heavy"] == [], f"imported while building the parser / printing help: {got['heavy']}"
