"""Local task folders: discovery, validation and row loading with file:line errors.

A data root holds `<lang>/<TaskName>/task.json` plus the row files of docs/data-layout.md. Everything read
here is checked row by row so a malformed file fails with the exact place to fix, never deep inside mteb.
"""

from __future__ import annotations

import json
import os
import re
import sys
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from conan_model.errors import json_error
from conan_model.fingerprint import files_fingerprint
from conan_model.text import RepeatedKey, text_problem, unique_keys
from harness.errors import DataError, UsageError, did_you_mean
from harness.validate import check_task_json, key_line, lang_script, row_checker

TASK_TYPES = (
    "STS",
    "PairClassification",
    "Classification",
    "Clustering",
    "Reranking",
    "Retrieval",
    "BitextMining",
)

# Row files each type needs and the fields every row of them must carry (non-empty text fields).
ROW_FIELDS: dict[str, dict[str, tuple[str, ...]]] = {
    "STS": {"test.jsonl": ("sentence1", "sentence2", "score")},
    "PairClassification": {"test.jsonl": ("sentence1", "sentence2", "label")},
    "Classification": {"train.jsonl": ("text", "label"), "test.jsonl": ("text", "label")},
    "Clustering": {"test.jsonl": ("text", "label")},
    "Reranking": {"test.jsonl": ("query", "positive", "negative")},
    "Retrieval": {"corpus.jsonl": ("_id", "text"), "queries.jsonl": ("_id", "text")},
    "BitextMining": {"test.jsonl": ("sentence1", "sentence2")},
}
# Every file a task of each type reads: what task.json's `counts` may name.
TASK_FILES = {kind: (*files, *(("qrels.tsv",) if kind == "Retrieval" else ())) for kind, files in ROW_FIELDS.items()}
QRELS_HEADER = ("query-id", "corpus-id", "score")
TEXT_FIELDS = {"sentence1", "sentence2", "text", "query"}
BOM = "\ufeff"  # a UTF-8 byte-order mark that starts a file: read past, as train.data's rows are


def warn(message: str) -> None:
    """A data note that is no error (the task still runs), on stderr where it is seen, not in warnings.log."""
    print(f"harness: warning: {message}", file=sys.stderr)


def default_data_root() -> Path:
    """The small embedded sample shipped inside the package (real rows, provenance kept)."""
    return Path(str(resources.files("harness") / "sample_data"))


@dataclass(frozen=True)
class LocalTask:
    """One task folder under a data root, with its validated task.json."""

    name: str
    type: str
    path: Path
    lang_dir: str
    meta: dict[str, Any] = field(hash=False, compare=False)

    @property
    def languages(self) -> list[str]:
        return list(self.meta.get("languages") or [self.lang_dir])

    @property
    def mteb_equivalent(self) -> str | None:
        return self.meta.get("mteb_equivalent")

    def files_identity(self) -> str:
        """'sha256:…' over every file of the folder: what a mirror's scores were computed from (the run identity's
        `data`, an ablation's evaluation settings)."""
        return f"sha256:{files_fingerprint(self.path, ignore=())}"


class OutsideRoot(DataError, UsageError):
    """A task folder leading outside the data root, or a file of a task leading outside its folder (symlinks): such
    a folder is listed as broken by `scan_tasks` like any bad folder, so the other tasks still run and `harness list
    tasks` still shows it; a usage error to callers that need every task (`discover_tasks`)."""


class DuplicateTask(DataError):
    """A task name defined in several language folders (`folders`): all are broken, one error per name for runs,
    one per folder for `harness list tasks` (`each`), where before stop 67 one row stood for them all."""

    def __init__(self, name: str, folders: list[Path]) -> None:
        self.name, self.folders = name, folders
        super().__init__(folders[-1] / "task.json", 0, self._message())

    def _message(self) -> str:
        return (f"task {self.name!r} is defined in {len(self.folders)} folders "
                f"({', '.join(str(f) for f in self.folders)}): a name is one task across the root's language "
                "folders; rename or remove all but one")  # fmt: skip

    def each(self) -> list[DataError]:
        """The error as each folder's own, naming the others as the whole does."""
        return [DataError(folder / "task.json", 0, self._message()) for folder in self.folders]


def _safe_child(folder: Path, *parts: str) -> Path:
    """Join parts under a task folder and refuse anything (.., absolute parts, symlinks) that lands outside it."""
    for part in parts:
        if not part or part in (".", "..") or "/" in part or "\\" in part or Path(part).is_absolute():
            raise UsageError(f"invalid path component {part!r} under the task folder {folder}")
    path = folder.joinpath(*parts)
    if escape := _outside(folder, path, "its task folder"):
        raise OutsideRoot(path, 0, escape)
    return path


def _linked_out(folder: Path) -> tuple[Path, str] | None:
    """The first link in a task folder (any depth, links not entered) that leads outside it, or resolves nowhere (a
    loop), with `_outside`'s words; None when every one stays inside. The task's data identity hashes every file of
    its folder: before stop 69 (a walk) a folder `notes -> /usr` made each run read all of /usr, where the files a
    task reads were refused. `os.scandir` entries: a folder of 50,000 files costs a directory read, no stat each."""
    folders = [str(folder)]
    while folders:
        with os.scandir(folders.pop()) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
        for entry in entries:
            if entry.is_symlink():
                try:
                    escape = _outside(folder, Path(entry.path), "its task folder")
                except (OSError, RuntimeError) as exc:  # a link loop: 3.11's resolve raises RuntimeError
                    return Path(entry.path), f"a link that resolves to nothing ({exc})"
                if escape:
                    return Path(entry.path), escape
            elif entry.is_dir(follow_symlinks=False):
                folders.append(entry.path)
    return None


def _outside(root: Path, path: Path, what: str = "the data root") -> str:
    """'resolves to X, outside <what> R' when path (symlinks followed) leaves root, else ''. `what` says which
    folder root is (the data root, a task folder), so the message sends the reader to the right one."""
    resolved, root_resolved = path.resolve(), root.resolve()
    if resolved != root_resolved and root_resolved not in resolved.parents:
        return f"resolves to {resolved}, outside {what} {root_resolved}"
    return ""


def discover_tasks(root: Path) -> dict[str, LocalTask]:
    """All task folders under root, keyed by task name. The first invalid task.json raises DataError."""
    tasks, broken = scan_tasks(root)
    if broken:
        raise next(iter(broken.values()))
    return tasks


def scan_tasks(root: Path) -> tuple[dict[str, LocalTask], dict[str, DataError]]:
    """(valid tasks, broken task folders → their error): one bad task.json does not hide the others."""
    root = Path(root)
    if not root.is_dir():
        raise UsageError(f"data root {root} does not exist or is not a directory (--data-dir / HARNESS_DATA)")
    tasks: dict[str, LocalTask] = {}
    broken: dict[str, DataError] = {}
    unspecified: list[Path] = []
    places: dict[str, list[Path]] = {}  # task folder name → every language folder's folder of that name
    for lang_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if lang_dir.name == "train":
            continue
        for task_dir in sorted(p for p in lang_dir.iterdir() if p.is_dir()):
            spec = task_dir / "task.json"
            if not spec.is_file():
                if not task_dir.name.startswith((".", "_")):
                    unspecified.append(task_dir)
                continue
            places.setdefault(task_dir.name, []).append(task_dir)
            if escape := _outside(root, spec):  # the folder and its spec stay inside
                broken[task_dir.name] = OutsideRoot(spec, 0, f"{escape}; the folder is skipped")
                continue
            if linked := _linked_out(task_dir):
                broken[task_dir.name] = OutsideRoot(linked[0], 0, f"{linked[1]}; the folder is skipped")
                continue
            try:
                meta = _read_task_json(spec)
                if meta["name"] != task_dir.name:
                    at = key_line(spec, "name")
                    raise DataError(spec, at, f"name {meta['name']!r} differs from its folder name {task_dir.name!r}")
            except DataError as exc:
                broken[task_dir.name] = exc
                continue
            tasks[meta["name"]] = LocalTask(meta["name"], meta["type"], task_dir, lang_dir.name, meta)
            _warn_other_languages(root, spec, lang_dir.name, meta.get("languages"))
    for name, folders in places.items():  # before stop 59 the first valid one was run, the others said nowhere
        if len(folders) > 1:
            tasks.pop(name, None)
            broken[name] = DuplicateTask(name, folders)
    _warn_unspecified(root, unspecified)
    if not tasks and not broken:
        _warn_language_folder(root)
        _warn_root_above(root)
    return tasks, broken


def _warn_other_languages(root: Path, spec: Path, folder: str, languages: list[str] | None) -> None:
    """Name, once per process, a task.json whose `languages` leave out the language folder it sits in: the folder
    decides its suite, so a Chinese task in en/ runs under local-en (before walk 68 without a word). Not an error:
    the layout lets any folder name a suite; a folder named by no language code (multi/) says nothing here."""
    codes = {lang_script(code) for code in languages or []}
    if not codes or lang_script(folder) is None or lang_script(folder) in codes or spec.resolve() in _WARNED_LANGUAGES:
        return
    _WARNED_LANGUAGES.add(spec.resolve())
    home = languages[0] if len(languages) == 1 else "multi"
    warn(f"{spec}: languages {', '.join(languages)} do not include {folder!r}, the language folder it sits in, so "
         f"it runs in suite local-{folder} (the folder decides, docs/data-layout.md): move it to "
         f"{root / home / spec.parent.name}/ or correct languages")  # fmt: skip


def _warn_root_above(root: Path) -> None:
    """A root one level above the data root (`../shared` for `../shared/data`) holds no task, and its skipped
    folders were named without the way out (before stop 60, a user's walk): name the subfolder that is a root."""
    roots = sorted(child for child in root.iterdir() if child.is_dir() and not child.name.startswith((".", "_"))
                   and any(task.is_file() for task in child.glob("*/*/task.json")))  # fmt: skip
    if roots and root.resolve() not in _WARNED_ABOVE:
        _WARNED_ABOVE.add(root.resolve())
        warn(f"data root {root} holds no task; {', '.join(str(r) for r in roots)} "
             f"{'holds' if len(roots) == 1 else 'hold'} <language>/<Task>/ folders (docs/data-layout.md): give "
             f"{'it' if len(roots) == 1 else 'one of them'} as --data-dir")


def _warn_language_folder(root: Path) -> None:
    """A root whose own subfolders hold task.json is a language folder given one level too deep: its tasks would
    be 'no local mirror' without a word (before stop 49, audit; one level too high is named by _warn_unspecified).
    One whose subfolders hold source.json is the root's train/ folder, training sets (before stop 61: no word). One
    holding task.json itself is a task folder, two levels too deep (before stop 63: "31 missing" and no word)."""
    if (root / "task.json").is_file() and root.resolve() not in _WARNED_UNSPECIFIED:
        _WARNED_UNSPECIFIED.add(root.resolve())
        task = Path(os.path.abspath(root)).name
        warn(f"data root {root} is a task folder itself (task.json in it), where the layout is "
             f"<root>/<language>/<Task>/ (docs/data-layout.md): give {_above(root, 2)}, and --tasks {task} "
             "to run this task alone")  # fmt: skip
        return
    for marker, what in (("task.json", "task folders itself"),
                         ("source.json", "training sets of a data root's train/ folder, not tasks")):  # fmt: skip
        direct = sorted(p.name for p in root.iterdir() if (p / marker).is_file())
        if direct and root.resolve() not in _WARNED_UNSPECIFIED:
            _WARNED_UNSPECIFIED.add(root.resolve())
            # before stop 67 a root of task folders was always told to give its parent, which made every folder
            # beside it a language (a user walk: `flat/` gave `.`); the parent is a data root only where it looks one
            way = (f"give its parent, {_above(root, 1)}" if marker == "source.json" or _parent_is_data_root(root)
                   else f"move each into a language folder, e.g. {misplaced_advice(root, direct[0])}")  # fmt: skip
            warn(f"data root {root} holds {what} ({', '.join(direct[:3])}{', ...' if len(direct) > 3 else ''}), "
                 f"where the layout is <root>/<language>/<Task>/ (docs/data-layout.md): {way}")


def _parent_is_data_root(root: Path) -> bool:
    """Whether the folder above a root of task folders is a data root, so the root a language folder given one level
    too deep: the root is named like one (`en`, `multi`), or a folder beside it holds task folders too."""
    here = Path(os.path.abspath(root))
    if here.name == "multi" or lang_script(here.name) is not None:
        return True
    return any(other != here and other.is_dir() and any(other.glob("*/task.json")) for other in here.parent.iterdir())


def misplaced_task(root: Path, name: str) -> Path | None:
    """The folder of task `name` sitting directly under the data root (no language folder), else None: a run asking
    for it is told to move it, where before stop 67 it got mteb names that look like it."""
    folder = Path(root) / name
    return folder if name and (folder / "task.json").is_file() else None


def misplaced_advice(root: Path, name: str) -> str:
    """Where a task folder found directly under the data root belongs: `<root>/<language>/<Task>/`, the language
    its task.json names first (else en)."""
    try:
        languages = json.loads((Path(root) / name / "task.json").read_text(encoding="utf-8-sig")).get("languages")
        lang = languages[0] if isinstance(languages[0], str) and lang_script(languages[0]) else "en"
    except (OSError, ValueError, AttributeError, TypeError, IndexError, KeyError):
        lang = "en"
    return f"{Path(root) / lang / name}/"


def _above(root: Path, levels: int) -> Path:
    """The folder ``levels`` above ``root``, as a user can type it: `Path(".").parent` is `.` (before stop 64, a
    review: `--data-dir .` inside a task folder was told "give ., and --tasks " with no task name)."""
    return Path(os.path.normpath(root.joinpath(*[".."] * levels)))


_WARNED_UNSPECIFIED: set[Path] = set()  # folders named already: a process that scans a root again says nothing new


_WARNED_ABOVE: set[Path] = set()  # roots named as one level too high already


_WARNED_LANGUAGES: set[Path] = set()  # task.json files named as outside their languages' folder already


def _warn_unspecified(root: Path, folders: list[Path]) -> None:
    """Name, once per process, the folders in a task's place that hold no task.json: a task whose task.json was
    misnamed or not copied would otherwise vanish from runs and `harness list tasks` without a word. Hidden
    folders and ones whose name starts with `_` are not tasks (`__pycache__`, a task parked aside) and are passed
    over in silence, as is `train/`."""
    new = [folder for folder in folders if folder.resolve() not in _WARNED_UNSPECIFIED]
    if not new:
        return
    _WARNED_UNSPECIFIED.update(folder.resolve() for folder in new)
    names = ", ".join(folder.relative_to(root).as_posix() for folder in new)
    warn(f"{len(new)} folder(s) under the data root {root} hold no task.json and are skipped: {names}")


def _read_task_json(path: Path) -> dict[str, Any]:
    meta = _loads(path, 1, _read_text(path))
    if not isinstance(meta, dict):
        raise DataError(path, 1, "task.json must hold a JSON object")
    for key in ("name", "type", "main_score"):
        if key not in meta:
            raise DataError(path, 1, f"missing required key {key!r}")
        if not meta[key]:
            at = key_line(path, key)
            raise DataError(path, at, f"required key {key!r} is {'null' if meta[key] is None else 'empty'}")
        if not isinstance(meta[key], str):  # a list or object would fail as a traceback in the checks below
            at = key_line(path, key)
            raise DataError(path, at, f"required key {key!r} must be a string, not {meta[key]!r}")
    if meta["type"] not in TASK_TYPES:
        at = key_line(path, "type")
        raise DataError(path, at, f"type {meta['type']!r}{did_you_mean(meta['type'], TASK_TYPES)} (one of "
                                  f"{', '.join(TASK_TYPES)})")  # before stop 67 no did-you-mean, 'sts' for STS
    check_task_json(path, meta)
    files = TASK_FILES[meta["type"]]
    for name in meta.get("counts") or {}:  # a typo ("tset.jsonl") would otherwise leave the real file unchecked
        if name not in files:
            at = key_line(path, "counts")
            raise DataError(path, at, f"counts names {name!r}, a file {meta['type']} tasks do not read"
                                      f"{did_you_mean(name, files)} (they read {', '.join(files)})")  # fmt: skip
    return meta


def _read_text(path: Path) -> str:
    """A whole UTF-8 file (task.json, qrels.tsv); a leading byte-order mark, as Windows editors write, is dropped."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8").removeprefix(BOM)
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise not_utf8(path, line, raw[:2], f" (byte {e.start})") from None


UTF16_BOMS = {b"\xff\xfe": "UTF-16 (little-endian, byte-order mark FF FE)", b"\xfe\xff": "UTF-16 (big-endian, "
              "byte-order mark FE FF)"}  # fmt: skip


def not_utf8(path: Path, line: int, head: bytes, where: str = "") -> DataError:
    """A file that is not UTF-8, naming UTF-16 where its byte-order mark shows it (Notepad's "Unicode"), else the
    usual other encoding: before stop 67 (a user walk) "not valid UTF-8" alone, for a GBK file as for UTF-16."""
    if (utf16 := UTF16_BOMS.get(head[:2])) is not None:
        return DataError(path, 1, f"the file is {utf16}, not UTF-8: save it as UTF-8")
    return DataError(path, line, f"not valid UTF-8{where}: save the file as UTF-8 (GBK/GB18030 files, common on "
                                 "Chinese Windows, are not read)")  # fmt: skip


def _loads(path: Path, lineno: int, text: str) -> Any:
    """JSON text starting at line `lineno` of path, refusing what json.loads lets through: a key given twice in one
    object (the last would silently win) and an unpaired surrogate escape such as "\\ud800" (valid UTF-8 on disk,
    no character after decoding: pyarrow and the tokenizer fail on it far from the file)."""
    try:
        value = json.loads(text, object_pairs_hook=unique_keys)
    except json.JSONDecodeError as e:
        raise DataError(path, lineno + e.lineno - 1, f"invalid JSON: {json_error(e)}") from None
    except RepeatedKey as e:
        raise DataError(path, lineno, f"key {e.key!r} is given twice in one object (JSON keeps the last)") from None
    except (ValueError, RecursionError) as e:  # a number of thousands of digits, arrays nested thousands deep
        raise DataError(path, lineno, f"invalid JSON: {e}") from None
    if "\\u" in text:  # a surrogate can only come from an escape
        for key, item in value.items() if isinstance(value, dict) else [("", value)]:
            if (char := _surrogate(key) or _surrogate(item)) is not None:
                where = f"field {key!r}" if isinstance(value, dict) else "a value"
                raise DataError(path, lineno, f"{where} holds an unpaired surrogate escape \\u{ord(char):04x} (half "
                                              "of a UTF-16 pair, not a character)")  # fmt: skip
    return value


def _loads_line(path: Path, lineno: int, line: str) -> Any:
    """One JSON Lines row; a syntax error on a line holding a CR alone says the lines end so (old Mac files read as
    one line: before stop 67 "invalid JSON: Extra data" without a word on the line ends)."""
    try:
        return _loads(path, lineno, line)
    except DataError as e:
        if "\r" not in line or not e.detail.startswith("invalid JSON"):
            raise
        raise DataError(path, e.line, f"{e.detail}; the lines end in CR alone (old Mac line ends), so the file reads "
                                      "as one line: save it with LF (or CRLF) line ends") from None


def _surrogate(value: Any) -> str | None:
    """The first lone surrogate in a JSON value (strings, keys and items of nested objects and lists), else None."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            return value[e.start]
        return None
    items = [*value, *value.values()] if isinstance(value, dict) else value if isinstance(value, list) else []
    return next((char for item in items if (char := _surrogate(item)) is not None), None)


def iter_jsonl(path: Path, required: tuple[str, ...] = (),
               check: Callable[[dict[str, Any], int], None] | None = None) -> Iterator[dict[str, Any]]:  # fmt: skip
    """Rows of a JSON Lines file; each row must be an object with the required fields, texts non-empty,
    and pass check(row, line) (value types, harness/validate.py)."""
    return (row for _, row in _numbered_rows(path, required, check))


def row_count(task: LocalTask, filename: str) -> int | None:
    """The number of rows iter_jsonl yields from one of the task's files (its lines holding more than whitespace),
    unparsed; None for a file that is missing or leaves the task folder (reading it fails, and says why). Counted
    once per file version: a run asks for each task's coverage several times."""
    try:
        path = _safe_child(task.path, filename)
        stat = path.stat()
    except (OSError, DataError):
        return None
    return _row_count(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=256)
def _row_count(path: Path, mtime_ns: int, size: int) -> int:
    with path.open("rb") as handle:
        return sum(1 for raw in handle if raw.decode("utf-8", "replace").removeprefix(BOM).strip())


def _numbered_rows(path: Path, required: tuple[str, ...] = (),
                   check: Callable[[dict[str, Any], int], None] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) for each row of iter_jsonl."""
    if not path.is_file():
        raise DataError(path, 0, "file is missing")
    first_row = True
    with path.open("rb") as handle:
        for lineno, raw in enumerate(handle, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise not_utf8(path, lineno, raw if lineno == 1 else b"") from None
            if lineno == 1:
                line = line.removeprefix(BOM)
            if not line.strip():
                continue
            if first_row and line.lstrip().startswith("["):  # before stop 67: "invalid JSON: Expecting value ..."
                raise DataError(path, lineno, "the file is one JSON array, not JSON Lines: write one JSON object per "
                                              "line, with no enclosing [ ]")  # fmt: skip
            first_row = False
            row = _loads_line(path, lineno, line.rstrip("\r\n"))
            if not isinstance(row, dict):
                raise DataError(path, lineno, "row is not a JSON object")
            for key in required:
                if key not in row:
                    raise DataError(path, lineno, f"missing field {key!r}")
                if row[key] is None:
                    raise DataError(path, lineno, f"field {key!r} is null")
                if key in TEXT_FIELDS and (problem := text_problem(row[key])):
                    raise DataError(path, lineno, f"field {key!r} {problem}")
            if check is not None:
                check(row, lineno)
            yield lineno, row


SPLIT_STEMS = ("dev", "validation", "val", "valid", "eval")  # row files named for their split, not their role


def missing_file(task: LocalTask, path: Path) -> DataError:
    """"file is missing", naming the near-named files beside it (test.json, training.jsonl, query.jsonl): before
    stop 67 (a user walk) a misnamed row file got no hint where task.json's keys get a did-you-mean. A dev.jsonl
    for test.jsonl is told the rows are always in test.jsonl: eval_split names their split, not their file."""
    others = sorted(p.name for p in task.path.iterdir() if p.is_file() and p.name != "task.json"
                    and p.name not in TASK_FILES[task.type])  # fmt: skip
    split = str(task.meta.get("eval_split", "test"))
    stems = {split, *SPLIT_STEMS} - {"test"}
    named = [name for name in others if path.name == "test.jsonl" and name.endswith(".jsonl") and name[:-6] in stems]
    if named:
        return DataError(path, 0, f"file is missing; {named[0]} is there: rename it test.jsonl (a task's rows are "
                                  f"read from test.jsonl whatever eval_split says; eval_split {split!r} records them "
                                  "under that split)")  # fmt: skip
    return DataError(path, 0, f"file is missing{did_you_mean(path.name, others)}")


def first_line(task: LocalTask, filename: str, match: Callable[[dict[str, Any]], bool]) -> int:
    """The line of the first row of one of the task's files that `match`es (0 if none), for an error or warning
    found after the rows were read."""
    return next((n for n, row in _numbered_rows(_safe_child(task.path, filename)) if match(row)), 0)


def read_rows(task: LocalTask, filename: str, labels: Any = None) -> list[dict[str, Any]]:
    """All rows of one of the task's files, validated against the fields and value types its type requires.

    Pass one `labels` (validate.label_kind()) when reading several files of a task whose labels must agree."""
    required = ROW_FIELDS[task.type].get(filename, ())
    path = _safe_child(task.path, filename)
    if not path.is_file():
        raise missing_file(task, path)
    check = row_checker(task.type, path, task.meta, labels) if required else None
    if check is not None and "label" in required:
        check = _named_labels(check, path)
    numbered = list(_numbered_rows(path, required, check))
    if not numbered:
        raise DataError(task.path / filename, 0, "file holds no rows")
    _check_count(task, path, len(numbered))
    _warn_huge_texts(path, numbered)
    return [row for _, row in numbered]


HUGE_TEXT = 1_000_000  # characters: a whole book in one field, likely a mistake, and slow to tokenize


def _warn_huge_texts(path: Path, numbered: list[tuple[int, dict[str, Any]]]) -> None:
    """Name a file's texts of HUGE_TEXT characters or more, once per read: each is tokenized whole before its first
    max_length tokens are embedded (a 2-million-character text took 32.5 s on 2 cores, said only as a slow rate
    before stop 68; a walk). A note, not an error: its score is right."""
    huge = [(line, len(text)) for line, row in numbered for text in row_texts(row) if len(text) >= HUGE_TEXT]
    if huge:
        line, size = max(huge, key=lambda found: found[1])
        more = f" (and {len(huge) - 1} more of {HUGE_TEXT:,}+ characters)" if len(huge) > 1 else ""
        warn(f"{path}:{line}: a text of {size:,} characters{more}: it is tokenized whole, slowly (about 15 s per "
             "million characters on 2 cores), before its first max_length tokens are embedded; check the file")


def _named_labels(check: Callable[[dict[str, Any], int], None], path: Path) -> Callable[[dict[str, Any], int], None]:
    """check, then refuse a string label of only whitespace (or invisible characters): " " would be one more class,
    trained and scored like a real one, where the value was lost or mistyped."""

    def checked(row: dict[str, Any], lineno: int) -> None:
        check(row, lineno)
        for label in row["label"] if isinstance(row["label"], list) else [row["label"]]:
            if isinstance(label, str) and text_problem(label):
                raise DataError(path, lineno, f"field 'label' {label!r} holds no visible character (only "
                                              "whitespace, control or zero-width characters): a class needs a "
                                              "name")  # fmt: skip

    return checked


def _check_count(task: LocalTask, path: Path, rows: int) -> None:
    """A file must hold the rows task.json's `counts` gives for it (when it gives any): a copy cut short or a
    sample taken from another file would otherwise be scored as the documented data."""
    expected = (task.meta.get("counts") or {}).get(path.name)
    if expected is not None and expected != rows:
        raise DataError(path, 0, f"holds {rows} rows but task.json's counts gives {expected} for it")


_NOT_WORD = re.compile(r"[\W_]+")


def normalized_text(text: str) -> str:
    """One text as ../shared/data's own leakage rule normalises it (NFKC, lower case, no whitespace or
    punctuation); '' for a text of none of those."""
    return _NOT_WORD.sub("", unicodedata.normalize("NFKC", text)).lower()


def task_jsonl_files(task: LocalTask) -> list[Path]:
    """A task folder's .jsonl files, each refused (OutsideRoot) when a link takes it outside the folder, as the
    evaluation's own reads refuse it (before stop 47 the overlap checks read such a file's texts)."""
    return [_safe_child(task.path, path.name) for path in sorted(task.path.glob("*.jsonl"))]


def task_file(task: LocalTask, name: str) -> Path:
    """One file of a task folder, refused when it leads outside the folder."""
    return _safe_child(task.path, name)


def normalized_texts(task: LocalTask) -> set[str]:
    """Every text of a task folder (each string of its .jsonl rows, inside lists too, ids and labels left out),
    normalised as ../shared/data's own leakage rule does: NFKC, lower case, no whitespace or punctuation. What
    two tasks share is what `harness ablate` reports as dev/test overlap."""
    return normalized_file_texts(task_jsonl_files(task))


def normalized_file_texts(paths: Iterable[Path]) -> set[str]:
    """normalized_texts of the rows of these .jsonl files (:func:`normalized_row_texts`, the texts as written)."""
    return {text for path in paths for row in iter_jsonl(path) for text in normalized_row_texts(row, joined=False)}


def normalized_row_texts(row: dict[str, Any], joined: bool = True) -> set[str]:
    """A row's normalised texts: each of :func:`row_texts`, and (``joined``) a titled document's "title text" too, the
    form mteb embeds: before stop 50 a training set holding a test corpus's documents so was not seen to share them.
    Counts of a task's texts take them as written, matches look at both."""
    forms = {*row_texts(row), *(row_texts(row, join_title=True) if joined else ())}
    return {norm for text in forms if (norm := normalized_text(text))}


def row_texts(row: dict[str, Any], join_title: bool = False) -> Iterator[str]:
    """The texts of one .jsonl row: each string value, inside lists too, ids (`_id`, `id`), labels and scores left
    out. ``join_title``: a row with a non-empty `title` and a `text` (a retrieval corpus document) gives one text,
    "title text", as mteb joins them before it encodes a document, instead of the two."""
    title = row.get("title") if join_title and isinstance(row.get("text"), str) else None
    for key, value in row.items():
        if key.startswith("_") or key in ("id", "label", "labels", "score") or (title is not None and key == "title"):
            continue
        if key == "text" and isinstance(title, str) and title:
            value = f"{title} {value}".strip()
        for text in value if isinstance(value, list) else [value]:
            if isinstance(text, str):
                yield text


def read_qrels(task: LocalTask, query_ids: set[str], corpus_ids: set[str],
               ignore_identical_ids: bool = False) -> dict[str, dict[str, int]]:  # fmt: skip
    """The task's BEIR qrels.tsv (header query-id, corpus-id, score); ids must exist in queries and corpus. Read
    like every row file, through ``_safe_child``: a symlink leading outside its task folder is refused.

    Scores are integer relevance grades and each (query, document) pair is judged once: a 0.5 would be cut to 0
    and a repeated pair would replace the earlier judgement, both silently changing the score. A grade of 0 or below
    is kept as written and means not relevant (BEIR's convention: pytrec_eval, which mteb scores with, counts only
    grades above 0). Each line is exactly three tab-separated fields, taken as written (no CSV quoting: a stray
    quote would join the lines after it into one field): with a fourth, as in TREC's `qid 0 docid grade`, which
    column is the grade is a guess.

    ``ignore_identical_ids``: the evaluator (mteb's twin, as for ArguAna or QuoraRetrieval) drops a document whose
    id equals the query id from that query's ranking, so a relevant judgement of such a pair can never be found,
    whatever the model: refused, naming its line."""
    path = _safe_child(task.path, "qrels.tsv")
    if not path.is_file():
        raise missing_file(task, path)
    qrels: dict[str, dict[str, int]] = {}
    first: dict[tuple[str, str], int] = {}
    header, *lines = _read_text(path).split("\n")
    if "\r" in header.rstrip("\r") and not lines:  # before stop 67 read as a header of the whole file
        raise DataError(path, 1, "the lines end in CR alone (old Mac line ends), so the file reads as one line: save "
                                 "it with LF (or CRLF) line ends")  # fmt: skip
    if [h.strip() for h in header.split("\t")] != list(QRELS_HEADER):
        raise DataError(path, 1, f"header must be 'query-id<TAB>corpus-id<TAB>score', not {header.rstrip()[:80]!r}")
    for lineno, line in enumerate(lines, start=2):
        if not (line := line.rstrip("\r")):
            continue
        cols = line.split("\t")
        if len(cols) != len(QRELS_HEADER):
            raise DataError(path, lineno, f"expected 3 tab-separated columns (query-id, corpus-id, score), got "
                                          f"{len(cols)}: {line[:80]!r}")  # fmt: skip
        qid, did, score = cols
        if qid not in query_ids:
            raise DataError(path, lineno, f"query-id {qid!r} is not in queries.jsonl")
        if did not in corpus_ids:
            raise DataError(path, lineno, f"corpus-id {did!r} is not in corpus.jsonl")
        if (qid, did) in first:
            raise DataError(path, lineno, f"query-id {qid!r} and corpus-id {did!r} are judged again "
                                          f"(first at line {first[qid, did]})")  # fmt: skip
        first[qid, did] = lineno
        grade = _grade(path, lineno, score)
        if ignore_identical_ids and qid == did and grade > 0:
            raise DataError(path, lineno, f"query-id {qid!r} judges the document of the same id relevant (score "
                                          f"{grade}), but mteb's {task.name} leaves a document whose id equals the "
                                          "query id out of every ranking (ignore_identical_ids), so this judgement "
                                          "can never be found, whatever the model: give the document another "
                                          "id")  # fmt: skip
        qrels.setdefault(qid, {})[did] = grade
    if not qrels:
        raise DataError(path, 0, "no relevance judgements")
    _check_count(task, path, len(first))
    return qrels


def warn_test_texts_in_train(task: LocalTask, train: list[dict[str, Any]], test: list[dict[str, Any]]) -> None:
    """Count, on stderr, the Classification test rows whose text (leading and trailing whitespace aside) is also a
    training text: the classifier is trained on that very vector, which inflates accuracy. A warning, not an error:
    docs/data-layout.md does not promise disjoint splits (../shared/data's are) and mteb does not check its own."""
    trained = {row["text"].strip() for row in train}
    shared = [row["text"] for row in test if row["text"].strip() in trained]
    if not shared:
        return
    path = _safe_child(task.path, "test.jsonl")
    line = first_line(task, "test.jsonl", lambda row: row.get("text") == shared[0])
    warn(f"{path}: {len(shared)} of {len(test)} test texts are also in train.jsonl (the classifier is trained on "
         f"them, which inflates accuracy; first: test.jsonl:{line} {shared[0][:60]!r})")


def judged_queries(task: LocalTask, queries: list[dict[str, Any]], qrels: dict[str, dict[str, int]]
                   ) -> list[dict[str, Any]]:  # fmt: skip
    """The queries with a line in qrels.tsv. BEIR and mteb score only those, so a query without one would leave the
    score unseen (a qrels.tsv cut short scored 100 on 2 of 12 queries): refused, naming its line, unless task.json
    sets "unjudged_queries": "drop", which drops them with their count on stderr. A query judged only 0 (or below)
    stays, as in mteb: it counts 0."""
    unjudged = [q for q in queries if str(q["_id"]) not in qrels]
    if not unjudged:
        return queries
    path = _safe_child(task.path, "queries.jsonl")
    count = f"{len(unjudged)} of {len(queries)} queries have no judgement in qrels.tsv"
    if task.meta.get("unjudged_queries") == "drop":
        warn(f"{path}: {count}; left out of the score, as task.json's \"unjudged_queries\": \"drop\" asks")
        return [q for q in queries if str(q["_id"]) in qrels]
    first = str(unjudged[0]["_id"])
    line = first_line(task, "queries.jsonl", lambda row: str(row.get("_id")) == first)
    raise DataError(path, line, f"query {first!r} has no judgement in qrels.tsv ({count}; BEIR and mteb would leave "
                                "them out of the score): judge them, or set \"unjudged_queries\": \"drop\" in "
                                "task.json to score the judged ones only")  # fmt: skip


def _grade(path: Path, lineno: int, score: str) -> int:
    """A qrels score as an int: whole numbers only ("2" or "2.0"), so nothing is cut or overflows on the way."""
    try:
        value = float(score)
    except ValueError:
        raise DataError(path, lineno, f"score {score!r} is not a number") from None
    if not value.is_integer():  # also false for nan and inf
        raise DataError(path, lineno, f"score {score!r} must be a whole number (a relevance grade such as 0, 1, 2)")
    return int(value)
