"""`harness report | regress`: registered through PLUGIN_COMMANDS; work is imported lazily."""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from harness.errors import EXIT_USAGE, ConanError
from harness.runs import comma_list

if TYPE_CHECKING:
    from reporting.regress import Comparison


REGRESS_OUT = "regression.md"  # regress's --out when none is given


def regress_refused(words: list[str], message: str) -> None:
    """--out and --json for a regress that argparse itself refused (``message``: a missing --baseline, a misspelt
    option, an option without its value): before stop 60 they kept the last night's PASS. The paths are read from
    ``words`` (the arguments after `regress`) as argparse reads them (`--out X`, `--out=X`, `--ou X`); an --out
    given without its value writes none; argparse's own error line and exit status 2 follow as before."""
    from harness.errors import UsageError

    class Tolerant(argparse.ArgumentParser):
        def error(self, message: str) -> NoReturn:  # an ambiguous abbreviation: nothing is known to be named
            raise UsageError(message)

    parser = Tolerant(add_help=False)
    for option in ("--out", "--json", "--baseline", "--candidate"):
        parser.add_argument(option, nargs="?", default=REGRESS_OUT if option == "--out" else None)
    try:
        args = parser.parse_known_args(words)[0]
    except UsageError:
        return
    args.baseline, args.candidate = args.baseline or "(not given)", args.candidate or "(not given)"
    reason = UsageError(message)
    if args.json:
        _write_stopped_json(args, reason, None)
    if args.out:
        _write_stopped_markdown(args, reason)


def cmd_regress(args: argparse.Namespace) -> int:
    try:
        comp = _compared_and_written(args)
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: the last run's verdict must not stay (a user's walk, 64)
        _write_interrupted(args, exc)
        raise
    print(f"regression report written to {args.out}" + (f" and {args.json}" if args.json else "")
          + f" — {comp.outcome}")  # fmt: skip
    return comp.exit_status


def _compared_and_written(args: argparse.Namespace) -> Comparison:
    """The comparison, with --out (and --json) written; a stop on bad input writes both saying why (exit 2 or 3)."""
    from harness.runs import atomic_write_json, atomic_write_text
    from reporting.regress import compare
    from reporting.regress_report import as_json, render

    comp = None
    args.files_given = [path for path in (args.out, args.json) if path]  # an option refused is set to None below
    try:
        _check_regress_options(args)
        comp = compare(Path(args.baseline), Path(args.candidate), alpha=args.alpha, n_boot=args.n_boot,
                       seed=args.seed, min_effect=args.min_effect / 100, bonferroni=args.bonferroni, tasks=args.tasks,
                       dim=args.dim)  # fmt: skip
        text = render(comp)
        try:
            _written("--out", args.out, lambda path: atomic_write_text(path, text))
        finally:  # an --out that fails at writing (disk full, a name too long) still leaves the report on stdout
            print(text)
    except ConanError as exc:  # exit 2 or 3: a CI job parsing --json still finds why, and --out says so too
        if args.json:
            _write_stopped_json(args, exc, comp)
        if args.out and comp is None:  # with a comparison, writing --out is what failed
            _write_stopped_markdown(args, exc)
        raise
    if args.json:  # here an unwritable --json is the bad input itself: its own error, exit 2
        _written("--json", args.json, lambda path: atomic_write_json(path, as_json(comp)))
    return comp


def _check_regress_options(args: argparse.Namespace) -> None:
    """A UsageError naming the first option regress cannot use, before any run is read. The values are parsed
    here, not by argparse, whose own errors exit before `cmd_regress` runs: before stop 59 `--alpha abc` left
    the last night's --json and --out as they were (a PASS)."""
    from harness.errors import UsageError

    if args.out and args.json and Path(args.out).resolve() == Path(args.json).resolve():
        # one file for both held only the JSON, the markdown report lost without a word (a user's walk, stop 64);
        # the markdown saying why regress stopped is written there, no JSON over it (checked first: any other error
        # would write both there too)
        given, args.json = args.json, None
        raise UsageError(f"--out {args.out} and --json {given}: one file for both; give each its own path")
    if isinstance(args.dim, list):  # each --dim given: argparse's own store kept the last, silently (a walk, 65)
        if len(args.dim) > 1:
            raise UsageError(f"--dim given {len(args.dim)} times ({', '.join(args.dim)}): regress compares at one "
                             "MRL dim: run it once per dim")  # fmt: skip
        args.dim = args.dim[0]
    for option, kind in (("--alpha", float), ("--n-boot", int), ("--seed", int), ("--min-effect", float),
                         ("--dim", int)):  # fmt: skip
        name = option[2:].replace("-", "_")
        value = getattr(args, name)
        if isinstance(value, str):
            try:
                if not value.isascii():  # int() takes other scripts' digits, which parse_dims refuses
                    raise ValueError(value)
                setattr(args, name, kind(value))
            except ValueError:
                what = "an integer" if kind is int else "a number"
                if option == "--dim" and "," in value:  # `--dims 64,128`, as `harness run` takes it
                    what += "; regress compares at one MRL dim: run it once per dim"
                raise UsageError(f"{option} {value!r}: not {what}") from None
    if args.tasks is not None:  # each --tasks given (repeated ones join, as `harness run`'s); idempotent
        names = []
        for value in args.tasks:
            try:
                names += comma_list(value)
            except argparse.ArgumentTypeError as exc:
                raise UsageError(f"--tasks {value!r}: {exc}") from None
        args.tasks = names
    if not 0 < args.alpha < 1:
        raise UsageError(f"--alpha {args.alpha}: must be between 0 and 1 (exclusive)")
    if args.n_boot < 10:
        raise UsageError(f"--n-boot {args.n_boot}: must be at least 10")
    if args.seed < 0:  # numpy refused it after the runs were read: exit 1, which a gate reads as a regression
        raise UsageError(f"--seed {args.seed}: must be 0 or more (a random seed)")
    if not math.isfinite(args.min_effect) or args.min_effect < 0:  # nan would make no change significant
        raise UsageError(f"--min-effect {args.min_effect}: must be a finite number of points, 0 or more")
    if args.dim is not None and args.dim < 1:
        raise UsageError(f"--dim must be a positive integer (an MRL dim the runs were scored at), got {args.dim}")
    from harness.runs import check_file_target

    for option in ("--out", "--json"):  # before the bootstraps (minutes on a large retrieval task), not after
        if (value := getattr(args, option[2:])) is not None:
            try:
                _written(option, value, check_file_target)  # a name too long: an OSError, named like a failed write
            except ConanError:
                setattr(args, option[2:], None)  # refused itself: no file saying why regress stopped is tried there
                raise


def _write_interrupted(args: argparse.Namespace, exc: KeyboardInterrupt) -> None:
    """--out and --json of a regress stopped by Ctrl-C or SIGTERM, saying so with no verdict (the handler ignores a
    second signal while they are written), and the interrupt line names them; before, both kept the previous run's
    verdict. The files are written atomically: each holds the old report or the new one, never half of either."""
    from reporting.regress_report import Interrupted

    reason = Interrupted(str(exc) or "interrupted", getattr(exc, "exit_code", 130))
    done = [args.out if args.out and _write_stopped_markdown(args, reason) else None,
            args.json if args.json and _write_stopped_json(args, reason, None) else None]  # fmt: skip
    written = " and ".join(str(path) for path in done if path)
    args.interrupted = f"; {written} now say{'s' if ' and ' not in written else ''} so (no verdict)" if written else ""


def _write_stopped_json(args: argparse.Namespace, reason: ConanError, comp: Comparison | None) -> bool:
    """--json for a regress stopped by ``reason`` (exit 2 or 3), atomically; when that path cannot be written
    either, says so beside the reason regress stopped for, which stays the error (and returns False)."""
    from harness.runs import atomic_write_json
    from reporting.regress_report import stopped_json

    try:
        result = stopped_json(reason, comp, args.baseline, args.candidate, *_files(args))
        _written("--json", args.json, lambda path: atomic_write_json(path, result))
    except ConanError as exc:  # an OSError's message names --json already (`_written`)
        said = str(exc) if str(exc).startswith("--json ") else f"--json {args.json} not written: {exc}"
        print(f"harness: error: {said}", file=sys.stderr)
        return False
    return True


def _write_stopped_markdown(args: argparse.Namespace, reason: ConanError) -> bool:
    """--out for a regress stopped by ``reason`` before comparing, atomically; when it cannot be written, says so
    beside the reason regress stopped for, which stays the error (and returns False)."""
    from harness.runs import atomic_write_text, set_aside
    from reporting.regress_report import stopped_markdown

    try:
        text = stopped_markdown(reason, args.baseline, args.candidate, *_files(args))

        def write(path: Path) -> None:
            set_aside(path)  # a good report from before stays beside it (a newcomer's walk, stop 70)
            atomic_write_text(path, text)

        _written("--out", args.out, write)
    except ConanError as exc:
        print(f"harness: error: {exc}", file=sys.stderr)
        return False
    return True


def _files(args: argparse.Namespace) -> list[str]:
    """--out and --json as given, which an error the reports carry may name (shown there without a machine's path),
    also one refused (a folder)."""
    return getattr(args, "files_given", None) or [path for path in (args.out, args.json) if path]


def _written(option: str, value: str, write: Callable[[Path], None]) -> None:
    """``write`` the file an option names; an OSError (permission, name too long, disk full) is a UsageError
    naming the option, not a traceback hiding the outcome, and so is a path that cannot be a file (a folder:
    before, "<path>: is a directory" named no option)."""
    from harness.errors import UsageError

    try:
        write(Path(value))
    except OSError as exc:
        raise UsageError(f"{option} {value}: cannot be written ({exc.strerror or exc})") from None
    except ConanError as exc:  # `check_file_target`'s, which names the path
        raise UsageError(f"{option} {exc}") from None


def cmd_report(args: argparse.Namespace) -> int:
    from harness.runs import atomic_write_text, set_aside, stopped_text
    from reporting.efficiency import PLOTS, REPORT_MD, write_report

    out = Path(args.out)
    try:
        path = write_report([Path(p) for p in args.runs], out)
    except ConanError as exc:  # unusable input: an earlier report in --out would stay, read as this one
        if exc.exit_code == EXIT_USAGE and (out / REPORT_MD).is_file():
            previous = set_aside(out / REPORT_MD)
            text = stopped_text("Efficiency report", exc.exit_code, str(exc), [out, *args.runs], previous)
            atomic_write_text(out / REPORT_MD, text)
            for plot in PLOTS:
                (out / plot).unlink(missing_ok=True)
        raise
    print(f"efficiency report written to {path}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    rg = subparsers.add_parser(
        "regress", help="candidate vs baseline run: per-task bootstrap CIs; exit 1 on a regression",
        description="Candidate vs baseline run: per-task paired bootstrap CIs of the main score (docs/reports.md).",
        epilog="exit status: 0 no significant regression; 1 a task regressed (not clustering: its verdicts are "
        "advisory) or failed in the candidate; 2 unusable input (not a run directory, bad option); 3 nothing "
        "compared (no task got a verdict) or a task not compared (a baseline task the candidate has not run, no "
        "baseline score, scored on other data or settings, a per-item file damaged or missing); 130 / 143 "
        "interrupted (Ctrl-C / SIGTERM; --out and --json say so). A task not tested (no per-item pairing: mteb's "
        "v2 clustering; a run from before per-item files) is named with why and does not fail the gate by itself. "
        "The first line of the report says which, and why")  # fmt: skip
    rg.add_argument("--baseline", required=True, help="run directory of the reference model")
    rg.add_argument("--candidate", required=True, help="run directory of the model under test")
    rg.add_argument("--alpha", default=0.05, help="two-sided significance level (default 0.05)")
    rg.add_argument("--n-boot", default=1000, help="bootstrap resamples (default 1000)")
    rg.add_argument("--seed", default=0)
    rg.add_argument("--min-effect", default=0.1, help="smallest change, in points of the ×100 score, "
                    "that can count as a regression or improvement (default 0.1)")  # fmt: skip
    rg.add_argument("--bonferroni", action="store_true", help="divide alpha by the number of tasks both runs "
                    "finished, whether or not each gets a verdict (conservative; the report's header names it)")
    rg.add_argument("--tasks", action="append", help="only these tasks (comma-separated; repeatable)")
    # `--dims` too, as `harness run` spells it (before, "unrecognized arguments: --dims 128" and no word of --dim)
    rg.add_argument("--dim", "--dims", dest="dim", action="append", metavar="DIM", help="compare at this MRL dim "
                    "(the first DIM dimensions as they are, as mteb's embed_dim gives them); both runs need `harness "
                    "run --dims DIM --dim-predictions`; once")  # fmt: skip
    rg.add_argument("--out", default=REGRESS_OUT, help="markdown file to write (default regression.md)")
    rg.add_argument("--json", metavar="PATH", help="also write the verdicts as JSON for a CI job to parse: the "
                    "exit status, the outcome line, per task its verdict, whether it fails the gate (a regression "
                    "or failed task: exit 1; a task not compared: exit 3), scores, Δ, CI; "
                    "also when regress stops on unusable input (exit 2) or finds no task to compare (exit 3), with "
                    "the reason (`error`); a path other than --out's")  # fmt: skip
    rg.set_defaults(func=cmd_regress)

    rp = subparsers.add_parser("report", help="efficiency report: Table 5, throughput, MRL curves (PNG + markdown)",
                               epilog="exit status: 0 the report is written (failed, pending or damaged tasks and "
                               "runs without timings are named in its notes); 2 unusable input (a folder that is no "
                               "run directory, a damaged run.json, --out a file); 130 / 143 interrupted (Ctrl-C / "
                               "SIGTERM)")  # fmt: skip
    rp.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories written by `harness run`")
    rp.add_argument("--out", default="report", help="folder for efficiency.md and the plots (default report/)")
    rp.set_defaults(func=cmd_report)
