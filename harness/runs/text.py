"""How the reports and leaderboards write what they show: Markdown tables, a path without a machine's absolute part,
row labels that tell runs apart, a setting's value, a comma-separated option read the same by every command.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Iterable, Sequence
from contextlib import suppress
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from harness.errors import UsageError

LIST_SEPARATORS = ",，、"  # the ASCII comma, and the full-width comma and enumeration comma of a CJK keyboard


def comma_list(value: str) -> list[str]:
    """argparse type of a comma-separated option (`--tasks`, `--dims`), for every command (here: the house lets
    reporting import harness.runs, and nothing else of the harness's option code). The full-width `，` and
    `、` separate too: before stop 63 `--tasks "ATEC，BQ"` was one unknown task "ATEC，BQ". An empty list is a usage
    error, not an empty selection (before stop 49 `harness regress --tasks ,` compared nothing and exited 3)."""
    for separator in LIST_SEPARATORS[1:]:
        value = value.replace(separator, ",")
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise argparse.ArgumentTypeError("expected a comma-separated list")
    return items


def shown_path(root: str | Path | None) -> str:
    """A data root or run directory as summary.md and the reports show it: no machine's absolute path (run.json
    keeps the absolute one, which the comparisons use). The embedded sample as its place in the package; a folder
    under the working directory relative to it; any other as `…/<its name>`."""
    if root is None:
        return "none"
    path = Path(root)
    if not path.is_absolute():
        return path.as_posix()
    if path.parts[-2:] == ("harness", "sample_data"):
        return "harness/sample_data (the embedded sample)"
    with suppress(ValueError):
        return path.relative_to(Path.cwd().resolve()).as_posix() or "."
    return f"…/{path.name}"


def paths_apart(old: str | Path | None, new: str | Path | None) -> tuple[str, str]:
    """Two paths shown side by side (a change of data root): each as `shown_path` shows it, or, where that reads
    the same for two folders of one name, with the trailing folders that tell them apart (`folder_tails`): before,
    a regress header read `data root …/data → …/data` for /work/shared/data and a copy's data (a user's walk, stop
    64). Never a machine's absolute path."""
    shown = shown_path(old), shown_path(new)
    if old is None or new is None or shown[0] != shown[1] or Path(old).resolve() == Path(new).resolve():
        return shown
    tails = folder_tails(["path", "path"], [Path(old), Path(new)])
    return f"…/{tails[0]}", f"…/{tails[1]}"


def paths_shown(text: str, first: str | Path, second: str | Path, *others: str | Path) -> str:
    """``text`` (an error's message) with each path given, as given or resolved, written as the reports show it:
    the first two side by side (`paths_apart`), the others by `shown_path`. Before, a regress stopped on
    `--baseline /tmp/…/runs/gone: not a run directory` wrote that absolute path into --out's first line and the
    JSON's outcome and error (a user's walk, stop 64); stderr keeps it whole."""
    swaps: dict[str, str] = {}
    paths = (first, second, *others)
    for path, shown in zip(paths, [*paths_apart(first, second), *map(shown_path, others)], strict=True):
        for form in (str(path), str(Path(path).resolve())):
            if Path(form).is_absolute():
                swaps[form] = shown
    for form in sorted(swaps, key=len, reverse=True):  # a run's folder before the folder holding it
        text = text.replace(form, swaps[form])
    return text


def given_once(paths: list[Path], option: str) -> None:
    """Each run directory or --published folder (``option``) is one source of rows: one given twice is an error
    naming it, not two rows of one source under one label."""
    seen: set[Path] = set()
    for path in paths:
        if Path(path).resolve() in seen:
            raise UsageError(f"{option} {path}: given twice; give each once")
        seen.add(Path(path).resolve())


def folder_tails(names: list[str], folders: list[Path]) -> list[str]:
    """How rows (``names[i]`` from ``folders[i]``) name their folder: its name, or, for rows of one name whose folder
    names coincide (runs/a/minilm and nightly/minilm), the fewest trailing folders that no other row of that name ends
    in, below the folder holding them all (`a/minilm`, `nightly/minilm`): never a machine's absolute path, which
    `shown_path` keeps out of the reports too."""
    paths = [Path(folder).resolve() for folder in folders]
    tails = [path.name for path in paths]
    for name in dict.fromkeys(names):
        group = [i for i, other in enumerate(names) if other == name]
        holder = Path(os.path.commonpath([paths[i].parent for i in group]))
        parts = {i: paths[i].relative_to(holder).parts for i in group}
        longest = max(map(len, parts.values()))
        for i, tail in parts.items():
            depth = next((k for k in range(1, longest + 1)
                          if all(parts[j][-k:] != tail[-k:] for j in group if j != i)), longest)  # fmt: skip
            tails[i] = "/".join(tail[-depth:])
    return tails


def cell_text(value: Any) -> Any:
    """A string as one Markdown table cell (`|` escaped, line breaks as spaces); other values as they are. A `|` in
    a cell (a run folder named `p|q`, a model folder's name) split it into two columns and shifted the rest of the
    row under the wrong headers, a newline ended the row: every report table goes through `md_table` since stop 47
    (before, only the default run name was cleaned)."""
    if not isinstance(value, str):
        return value
    return one_line(value.replace("\\|", "|").replace("|", "\\|"))


def one_line(text: str) -> str:
    """``text`` with its line breaks as spaces: a name from a run.json or a folder printed in a report's note or
    cell, where a line break ended the row or began a heading of the report (before stop 69, a walk: a model name
    with "\\n# …" in a leaderboard's notes)."""
    return text.replace("\r\n", " ").replace("\n", " ").replace("\r", " ")


def stopped_text(title: str, exit_code: int, reason: str, paths: Sequence[str | Path],
                 previous: Path | None = None) -> str:  # fmt: skip
    """What a leaderboard or report writes in place of the file it could not build: a nightly job that publishes
    it whatever the exit status then shows why, not the last night's board (before stop 69, a walk, the old file
    stayed as it was; regress has done so since stop 59). ``paths``: the command's, written as the reports write
    them (`paths_shown`), never a machine's absolute path; ``previous``: where `set_aside` kept the earlier file."""
    first, *others = paths  # paths_shown sets two side by side: a lone path stands beside itself
    shown = paths_shown(reason, first, *(others or [first]))
    kept = f"is kept beside it as `{previous.name}`" if previous is not None else "is replaced"
    return (f"# {title} — NOT WRITTEN (exit {exit_code}): {one_line(shown)}\n\nNothing was built: the command "
            f"stopped for the reason above. The file that was here before {kept}, so it is not taken for this "
            "run's.\n")


def set_aside(path: Path) -> Path | None:
    """Move the file at ``path`` to `<name>.previous` (replacing an older one) before a note of why nothing was built
    takes its place, and say so on stderr; None when there is none, or it cannot be moved (it is then replaced).
    Before stop 70 (a newcomer's walk) a typo in a run's path replaced a good leaderboard.md, regression.md or
    efficiency.md with the note, and only the one-line error was printed."""
    previous = path.with_name(path.name + ".previous")
    try:
        if not path.is_file():
            return None
        os.replace(path, previous)
    except OSError:
        return None
    print(f"harness: {path} now says why nothing was built; the file that was there is kept as {previous}",
          file=sys.stderr)  # fmt: skip
    return previous


def bullets(notes: Iterable[str]) -> list[str]:
    """A report's notes as Markdown list items, one line each (`one_line`)."""
    return [f"- {one_line(note)}" for note in notes]


def counted(n: int, noun: str) -> str:
    """'1 task', '3 tasks': a count with its noun, as table headers say it (a report's read "(1 tasks)")."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def md_table(rows: Iterable[Sequence[Any]], headers: Sequence[Any], **options: Any) -> str:
    """A github-flavoured Markdown table of the reports (tabulate ``options`` such as ``disable_numparse``)."""
    from tabulate import tabulate

    return tabulate([[cell_text(v) for v in row] for row in rows], headers=[cell_text(h) for h in headers],
                    tablefmt="github", **options)  # fmt: skip


def changed_entries(key: str, old: Any, new: Any) -> list[tuple[str, Any, Any]]:
    """(name, old, new) of a setting that differs: a table too long to show whole (the versions of four packages)
    by the entries that differ (`scoring.scikit-learn`), which a cut would hide; any other value whole."""
    if isinstance(old, dict) and isinstance(new, dict) and max(len(json.dumps(old)), len(json.dumps(new))) > 60:
        return [(f"{key}.{k}", old.get(k), new.get(k)) for k in dict.fromkeys([*old, *new]) if old.get(k) != new.get(k)]
    return [(key, old, new)]


def brief_value(value: Any, chars: int = 70) -> str:
    """A recorded data field in backticks, short enough for a note (sampling texts run to a paragraph; a file
    hash to its start with ``chars`` 16): the leaderboard's `‡` notes and regress's "not comparable" reasons."""
    if isinstance(value, dict):
        text = "/".join(str(value[k]) for k in ("repo", "path") if k in value) or json.dumps(value, sort_keys=True)
    elif isinstance(value, list):
        text = ",".join(map(str, value))
    else:
        text = "not recorded" if value is None else str(value)
    return f"`{text if len(text) <= chars else text[:chars - 1] + '…'}`"


def shown_setting(value: Any) -> str:
    """A setting as `other_settings` shows it: plain for scalars, `none` for an absent one, JSON (cut in the middle)
    for prompts and lists."""
    text = "none" if value is None else value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else f"{text[:40]}…{text[-12:]}"


def percent(score: float | None) -> str:
    """A 0–1 score as every table and line shows it: ×100, two decimals, half up, scaled as the decimal it is written
    as (its repr), not as a binary float: 100 × 0.48145 is 48.14499…, which showed a published 48.145 as 48.14 where
    its source and the paper read 48.15 (a user's walk, stop 64). One rule for the leaderboard, summary.md, the run's
    lines, regress and the reports: a review found the leaderboard's 78.13 beside the other reports' 78.12 for one
    score of 0.78125 (stop 64)."""
    if score is None or not math.isfinite(score):  # no score; Decimal('Infinity') cannot be quantized (a review)
        return "—"
    return str((Decimal(repr(float(score))) * 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
