"""The commands in README.md and docs/*.md (```bash blocks) must keep working as the CLI changes.

Every `harness ...`, `torchrun ... -m harness|train ...` and `python -m train ...` line must parse with today's
parser, and the repository files it names (configs, constraints) must exist; the cheap ones (`--help`, `list`,
`cache info`) run for real. The slow test runs README's everyday chain (two short runs, leaderboard, regress,
report on the embedded sample) exactly as written, in a scratch folder.
"""

from __future__ import annotations

import argparse
import re
import shlex
import shutil
import subprocess
from contextlib import redirect_stdout
from io import StringIO
from pathlib import Path

import pytest

from harness.cli import build_parser
from harness.cli import main as harness_main
from train.cli import add_arguments as train_arguments

REPO = Path(__file__).resolve().parents[1]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
CHEAP = {"list", "cache", "--help"}


def bash_lines(path: Path) -> list[str]:
    """Lines of the ```bash blocks of a markdown file, continuation lines joined."""
    lines, inside = [], False
    for raw in path.read_text(encoding="utf-8").splitlines():
        if raw.startswith("```"):
            inside = raw.strip() == "```bash"
            continue
        if inside:
            if lines and lines[-1].endswith("\\"):
                lines[-1] = lines[-1][:-1] + " " + raw.strip()
            else:
                lines.append(raw.strip())
    return [line for line in lines if line and not line.startswith("#")]


def commands(line: str) -> list[list[str]]:
    """The simple commands of a shell line (split at ; && || |), comments dropped."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split, lexer.commenters = True, "#"
    out: list[list[str]] = [[]]
    for token in lexer:
        if set(token) <= set(";&|"):
            out.append([])
        else:
            out[-1].append(token)
    return [c for c in out if c]


def ours(argv: list[str]) -> tuple[str, list[str]] | None:
    """('harness' | 'train', arguments) when the command runs one of our CLIs, else None."""
    if argv[0] == "harness":
        return "harness", argv[1:]
    for i in range(len(argv) - 1):
        if argv[i] == "-m" and argv[i + 1] in ("harness", "train") and argv[0] in ("python", "python3", "torchrun"):
            return argv[i + 1], argv[i + 2 :]
    return None


def documented() -> list[tuple[str, str, list[str]]]:
    found = []
    for path in DOCS:
        for line in bash_lines(path):
            for argv in commands(line):
                cli = ours(argv)
                if cli:
                    found.append((f"{path.relative_to(REPO)}: {line}", *cli))
    return found


def parse(cli: str, args: list[str]) -> argparse.Namespace:
    if cli == "harness":
        return build_parser().parse_args(args)
    parser = argparse.ArgumentParser(prog="python -m train")
    train_arguments(parser)
    return parser.parse_args(args)


def test_docs_have_commands_for_every_subcommand():
    shown = {args[0] for _, cli, args in DOCUMENTED if cli == "harness" and args}
    subcommands = set(build_parser()._subparsers._group_actions[0].choices)
    assert subcommands <= shown, f"README/docs give no example of: {sorted(subcommands - shown)}"


DOCUMENTED = documented()


@pytest.mark.parametrize(("where", "cli", "args"), DOCUMENTED, ids=[w[:70] for w, _, _ in DOCUMENTED])
def test_documented_command_parses(where: str, cli: str, args: list[str]):
    try:
        with redirect_stdout(StringIO()):
            parse(cli, args)
    except SystemExit as exc:
        assert exc.code == 0, f"does not parse: {where}"
    for token in args:
        if re.fullmatch(r"configs/[\w./-]+\.toml", token):
            assert (REPO / token).is_file(), f"{where}: {token} does not exist"


def test_setup_commands_install_through_the_constraints_file():
    setup = [line for line in bash_lines(REPO / "README.md") if "pip install" in line]
    # the two set-up commands and the npu extra's (README.md, Ascend NPU)
    assert len(setup) == 3 and all("-c constraints.txt" in line for line in setup), setup
    assert (REPO / "constraints.txt").is_file()
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "-c constraints.txt" in ci
    test_command = next(line for line in setup if "pytest" in line).split("&& ")[-1]
    assert ci.rstrip().splitlines()[-1] == test_command, "README's test command and .ci/run must be identical"


def test_cheap_documented_commands_run(tmp_path, monkeypatch):
    """`--help`, `list ...`, `cache info` as written (cache in a scratch folder, as conftest sets)."""
    monkeypatch.chdir(REPO)
    cheap = [(where, args) for where, cli, args in DOCUMENTED if cli == "harness" and args and args[0] in CHEAP
             and "--data-dir" not in args]  # fmt: skip
    assert cheap
    for where, args in cheap:
        with redirect_stdout(StringIO()):
            try:
                code = harness_main(args)
            except SystemExit as exc:
                code = exc.code
        assert code == 0, where


README_CHAIN = ("runs/minilm", "--run-name minilm")  # the everyday commands that build on two short runs


@pytest.mark.slow
def test_readme_everyday_chain_runs(tmp_path: Path, monkeypatch):
    """README's two runs on the embedded sample, then leaderboard, regress and report on them, exactly as written."""
    monkeypatch.chdir(tmp_path)
    lines = [line for line in bash_lines(REPO / "README.md") if any(key in line for key in README_CHAIN)]
    assert [commands(line)[0][1] for line in lines] == ["run", "run", "leaderboard", "regress", "report"], lines
    codes = {}
    for line in lines:
        args = commands(line)[0][1:]
        with redirect_stdout(StringIO()):
            codes[args[0]] = max(codes.get(args[0], 0), harness_main(args))
    assert codes == {"run": 0, "leaderboard": 0, "regress": 1, "report": 0}, codes  # regress: --max-length 8 is worse
    assert (tmp_path / "leaderboard.md").is_file() and (tmp_path / "regression.md").is_file()
    assert (tmp_path / "report" / "efficiency.md").is_file()
    assert (tmp_path / "runs" / "minilm" / "results").is_dir()
    assert (tmp_path / "runs" / "minilm-short" / "run.json").is_file()


@pytest.mark.skipif(shutil.which("git") is None or not (REPO / ".git").exists(), reason="needs git and a clone")
def test_readme_commands_write_only_what_git_ignores():
    """Every `--out` of README's commands, run from the repository root as it says, is git-ignored: before stop 59
    leaderboard.md, report/ and alignment/ showed up untracked after the "Everyday use" block (a new user's walk)."""
    outs = sorted({args[args.index("--out") + 1] for where, cli, args in DOCUMENTED
                   if where.startswith("README.md") and "--out" in args})  # fmt: skip
    assert {"leaderboard.md", "regression.md", "report/", "alignment/"} <= set(outs), outs
    ignored = [subprocess.run(["git", "check-ignore", "-q", "--no-index", out], cwd=REPO).returncode == 0
               for out in outs]  # fmt: skip
    tracked = [out for out, skip in zip(outs, ignored, strict=True) if not skip]
    assert not tracked, f"README's commands write these into the checkout, which .gitignore does not cover: {tracked}"



def documented_scripts() -> list[str]:
    """The `python scripts/X.py ...` / `python benchmarks/X.py ...` files that README and docs run."""
    return sorted({argv[1] for path in DOCS for line in bash_lines(path) for argv in commands(line)
                   if argv[0] in ("python", "python3") and len(argv) > 1 and argv[1].endswith(".py")})  # fmt: skip


def test_documented_scripts_exist():
    scripts = documented_scripts()
    assert scripts
    missing = [s for s in scripts if not (REPO / s).is_file()]
    assert not missing, f"README/docs run scripts that do not exist: {missing}"


@pytest.mark.slow
def test_documented_scripts_take_help():
    """Each documented script's --help runs (they import torch and friends: seconds each)."""
    import subprocess
    import sys

    for script in documented_scripts():
        done = subprocess.run([sys.executable, script, "--help"], cwd=REPO, capture_output=True, text=True,
                              timeout=300)  # fmt: skip
        assert done.returncode == 0 and "usage" in done.stdout.lower(), (script, done.stderr[-2000:])
