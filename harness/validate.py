"""Type checks of task.json and of every row value, so bad data fails at load with file:line, never as a score.

Without them a Reranking `positive` given as a string is split into characters and scored, a NaN or boolean
gold score passes into mteb and comes back as a NaN main score, mixed int/str labels are silently two
classes, and a repeated retrieval `_id` silently collides with the earlier row. Field presence and non-empty
texts are checked in data.iter_jsonl; values here.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from conan_model.text import text_problem
from harness.errors import DataError, did_you_mean

_AT_K = ("1", "3", "5", "10", "20", "100", "1000")
_RANKING = {f"{m}_at_{k}" for m in ("ndcg", "map", "mrr", "recall", "precision") for k in _AT_K} | {"map", "mrr"}
# main_score values task.json may name, per type: mteb 2.x's metric names (and the two old aliases).
MAIN_SCORES: dict[str, set[str]] = {
    "STS": {f"{s}_{c}" for s in ("cosine", "manhattan", "euclidean") for c in ("spearman", "pearson")}
    | {"pearson", "spearman"},
    "PairClassification": {f"{p}_{m}" for p in ("max", "similarity", "cosine", "dot", "euclidean", "manhattan")
                           for m in ("ap", "accuracy", "f1", "precision", "recall")},  # fmt: skip
    "Classification": {"accuracy", "f1", "f1_weighted", "precision", "recall", "ap", "ap_weighted"},
    "Clustering": {"v_measure"},
    "Reranking": _RANKING,
    "Retrieval": _RANKING,
    "BitextMining": {"f1", "accuracy", "precision", "recall"},
}

# Every key task.json may hold (docs/data-layout.md): any other is a typo that would silently fall back to a default
# (`mteb_equivalnt` runs the generic class instead of mteb's own).
TASK_KEYS = ("name", "type", "main_score", "languages", "eval_split", "mteb_equivalent", "score_range", "source",
             "license", "sampling", "counts", "labels", "n_clusters", "unjudged_queries")  # fmt: skip

RowCheck = Callable[[dict[str, Any], int], None]

# task.json language codes (ISO 639-1 or 639-3) → mteb's "{iso639-3}-{script}" codes, for generic mirror metadata
LANG_SCRIPT = {
    "en": "eng-Latn", "eng": "eng-Latn", "zh": "cmn-Hans", "cmn": "cmn-Hans", "zho": "cmn-Hans",
    "ar": "ara-Arab", "ara": "ara-Arab", "de": "deu-Latn", "deu": "deu-Latn", "fr": "fra-Latn",
    "fra": "fra-Latn", "ja": "jpn-Jpan", "jpn": "jpn-Jpan", "ko": "kor-Hang", "kor": "kor-Hang",
    "ru": "rus-Cyrl", "rus": "rus-Cyrl", "es": "spa-Latn", "spa": "spa-Latn", "el": "ell-Grek", "ell": "ell-Grek",
    "hi": "hin-Deva", "hin": "hin-Deva", "ro": "ron-Latn", "ron": "ron-Latn", "tr": "tur-Latn", "tur": "tur-Latn",
    "it": "ita-Latn", "ita": "ita-Latn", "pt": "por-Latn", "por": "por-Latn", "nl": "nld-Latn", "nld": "nld-Latn",
    "pl": "pol-Latn", "pol": "pol-Latn", "vi": "vie-Latn", "vie": "vie-Latn", "th": "tha-Thai", "tha": "tha-Thai",
    "id": "ind-Latn", "ind": "ind-Latn", "uk": "ukr-Cyrl", "ukr": "ukr-Cyrl", "fa": "fas-Arab", "fas": "fas-Arab",
}  # fmt: skip
_LANG_SCRIPT_FORM = re.compile(r"[a-z]{3}-[A-Z][a-z]{3}")
# eval_split names the split the rows are recorded under (mteb's `test`, `dev`, `validation`, `test_en`, ...)
_SPLIT = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")


def lang_script(code: str) -> str | None:
    """mteb's code for a task.json language: a known short code, or one already written as `ell-Grek`."""
    return LANG_SCRIPT.get(code) or (code if _LANG_SCRIPT_FORM.fullmatch(code) else None)


def is_number(value: Any) -> bool:
    """int or float, not bool (json `true` would otherwise pass as 1)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def key_line(path: Path, key: str) -> int:
    """The line of a task.json where ``key`` is given, so an error's file:line takes an editor to it (before stop
    36 every task.json error said line 1); 1 when the text cannot say."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return 1
    match = re.search(rf'"{re.escape(key)}"\s*:', text)
    return text.count("\n", 0, match.start()) + 1 if match else 1


def check_task_json(path: Path, meta: dict[str, Any]) -> None:
    """Value checks of a task.json whose required keys are present; raises DataError(path:line of the key)."""
    for key in meta:
        if key not in TASK_KEYS:
            at = key_line(path, key)
            raise DataError(path, at, f"unknown key {key!r}{did_you_mean(key, TASK_KEYS)} (task.json keys: "
                                      f"{', '.join(TASK_KEYS)}; docs/data-layout.md)")  # fmt: skip
    allowed = MAIN_SCORES[meta["type"]]
    if meta["main_score"] not in allowed:
        at = key_line(path, "main_score")
        raise DataError(path, at, f"main_score {meta['main_score']!r} is not a {meta['type']} metric; one of "
                                  f"{', '.join(sorted(allowed))}")  # fmt: skip
    languages = meta.get("languages")
    if languages is not None and (not isinstance(languages, list) or not languages
                                  or not all(isinstance(x, str) and x for x in languages)):  # fmt: skip
        at = key_line(path, "languages")
        raise DataError(path, at, f"languages must be a list of language codes such as [\"en\"], not {languages!r}")
    unknown_codes = [code for code in languages or [] if lang_script(code) is None]
    if unknown_codes:
        at = key_line(path, "languages")
        code = unknown_codes[0]  # 'zh-CN', 'en_US', 'ZH': the code suggested without region and case (stop 67)
        base = re.split(r"[-_]", code)[0].lower()
        suggested = f"; did you mean: {base}?" if base in LANG_SCRIPT else ""
        raise DataError(path, at, f"languages: unknown code {code!r}{suggested} (use one of "
                                  f"{', '.join(sorted(LANG_SCRIPT))} or mteb's ISO 639-3-script form, e.g. "
                                  "'ell-Grek')")  # fmt: skip
    if "score_range" in meta:
        lo_hi = meta["score_range"]
        numbers = isinstance(lo_hi, list) and len(lo_hi) == 2 and all(is_number(x) and math.isfinite(x) for x in lo_hi)
        if not numbers or lo_hi[0] >= lo_hi[1]:
            at = key_line(path, "score_range")
            raise DataError(path, at, f"score_range must be [low, high] with low < high, not {lo_hi!r}")
    if meta.get("unjudged_queries", "refuse") not in ("refuse", "drop"):
        at = key_line(path, "unjudged_queries")
        raise DataError(path, at, f"unjudged_queries must be \"refuse\" (the default) or \"drop\", not "
                                  f"{meta['unjudged_queries']!r}")  # fmt: skip
    counts = meta.get("counts")
    if counts is not None and (not isinstance(counts, dict) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in counts.values())):  # fmt: skip
        at = key_line(path, "counts")
        raise DataError(path, at, f"counts must map file names to row counts, e.g. {{\"test.jsonl\": 1186}}, not "
                                  f"{counts!r}")  # fmt: skip
    equivalent = meta.get("mteb_equivalent")
    if equivalent is not None and not isinstance(equivalent, str):
        at = key_line(path, "mteb_equivalent")
        raise DataError(path, at, f"mteb_equivalent must be a string, not {equivalent!r}")
    if "eval_split" in meta and not (isinstance(meta["eval_split"], str) and _SPLIT.fullmatch(meta["eval_split"])):
        at = key_line(path, "eval_split")
        raise DataError(path, at, f"eval_split must be a split name such as \"test\" or \"dev\" (letters, digits, "
                                  f"'_', '-'), not {meta['eval_split']!r}")  # fmt: skip


def _text_list(path: Path, key: str, row: dict[str, Any], lineno: int, allow_empty: bool) -> None:
    value = row[key]
    if not isinstance(value, list) or not (value or allow_empty):
        raise DataError(path, lineno, f"field {key!r} must be a {'' if allow_empty else 'non-empty '}list of "
                                      f"texts, not {type(value).__name__} {str(value)[:40]!r}")  # fmt: skip
    for i, item in enumerate(value):
        if problem := text_problem(item):
            raise DataError(path, lineno, f"field {key!r} item {i} {problem}")


class _LabelKind:
    """Labels of one task must all be int or all be str; the first row fixes which."""

    def __init__(self) -> None:
        self.kind: type | None = None
        self.first = ""

    def check(self, path: Path, key: str, value: Any, lineno: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int | str) or (isinstance(value, str) and not value):
            raise DataError(path, lineno, f"field {key!r} must be an integer or a non-empty string, not {value!r}")
        if self.kind is None:
            self.kind, self.first = type(value), f"{path.name}:{lineno}"
        elif type(value) is not self.kind:
            raise DataError(path, lineno, f"field {key!r} is {type(value).__name__} {value!r} but labels are "
                                          f"{self.kind.__name__} from {self.first} on (mixed label types)")  # fmt: skip


class _Unique:
    """Values of one field of a file that must be unique as text. Retrieval ids (int 1 and "1" are one id once mteb
    sees them): a repeated id would otherwise silently collide with the earlier row and move the score. Bitext
    sentences: row i's gold is row i's sentence2, so two rows with one text get one prediction and one of them is
    scored wrong whatever the model. `why` ends the message with that reason."""

    def __init__(self, path: Path, field: str, why: str = "") -> None:
        self.path, self.field, self.why = path, field, why
        self.first: dict[str, tuple[int, int | str]] = {}

    def check(self, value: int | str, lineno: int) -> None:
        key = str(value)
        if key in self.first:
            line, earlier = self.first[key]
            spelled = "" if type(earlier) is type(value) else f" as {earlier!r}, the same id as text"
            shown = repr(value) if len(key) <= 60 else repr(f"{key[:60]}...")
            raise DataError(self.path, lineno, f"duplicate {self.field} {shown} (first at line {line}{spelled})"
                                               f"{self.why}")  # fmt: skip
        self.first[key] = (lineno, value)


class _SetField:
    """A clustering row's optional `set`: the cluster set a document belongs to in a mirror of one of mteb's legacy
    clustering tasks, which cluster each set alone and average (docs/data-layout.md). Every row names one or none
    does: a row without it would join no set, or make a set of its own by accident."""

    def __init__(self, path: Path) -> None:
        self.path, self.first = path, None  # (line, whether it has `set`) of the first row

    def check(self, row: dict[str, Any], lineno: int) -> None:
        has = "set" in row
        if has:
            value = row["set"]
            if isinstance(value, bool) or not (isinstance(value, int) and value >= 0 or isinstance(value, str)
                                               and value.strip()):  # fmt: skip
                raise DataError(self.path, lineno, f"field 'set' must be a non-negative integer or a non-blank string "
                                                   f"naming the document's cluster set, not {value!r}")  # fmt: skip
        if self.first is None:
            self.first = (lineno, has)
        elif self.first[1] != has:
            line, first_has = self.first
            raise DataError(self.path, lineno, f"{'no' if first_has else 'a'} field 'set' where line {line} "
                                               f"{'has one' if first_has else 'has none'}: give every row its cluster "
                                               "set, or none (all rows are then one set)")  # fmt: skip


def row_checker(task_type: str, path: Path, meta: dict[str, Any], labels: _LabelKind | None = None) -> RowCheck:
    """The value checks for rows of one file of a task type (pass one `labels` for all of a task's files)."""
    labels = labels or _LabelKind()
    score_range = meta.get("score_range", [0, 5])  # the generic STS task's default (docs/data-layout.md)
    ids = _Unique(path, "_id")
    sets = _SetField(path)
    mined = ": mining finds the same match for both rows, so one of them counts wrong whatever the model"
    sentences = {side: _Unique(path, side, mined) for side in ("sentence1", "sentence2")}

    def check(row: dict[str, Any], lineno: int) -> None:
        if task_type == "STS":
            score = row["score"]
            if not is_number(score) or not math.isfinite(score):
                raise DataError(path, lineno, f"field 'score' must be a finite number, not {score!r}")
            if not score_range[0] <= score <= score_range[1]:
                raise DataError(path, lineno, f"score {score} is outside score_range {score_range} of task.json")
        elif task_type == "PairClassification":
            if isinstance(row["label"], bool) or row["label"] not in (0, 1):
                raise DataError(path, lineno, f"field 'label' must be 0 or 1, not {row['label']!r}")
        if task_type == "Clustering":
            sets.check(row, lineno)
        if task_type == "Clustering" and isinstance(row["label"], list):  # levels, coarse first (hierarchical)
            if not row["label"]:
                raise DataError(path, lineno, "field 'label' is an empty list: give the document's label, or its "
                                              "labels from the coarsest level down")  # fmt: skip
            for level in row["label"]:
                labels.check(path, "label", level, lineno)
        elif task_type in ("Classification", "Clustering"):
            labels.check(path, "label", row["label"], lineno)
        elif task_type == "Reranking":
            _text_list(path, "positive", row, lineno, allow_empty=False)
            _text_list(path, "negative", row, lineno, allow_empty=True)
            positives = set(row["positive"])
            both = [text for text in row["negative"] if text in positives]
            if both:  # one text is one candidate document: it would be scored as a positive only
                raise DataError(path, lineno, f"text {both[0][:60]!r} is both in 'positive' and in 'negative'")
        elif task_type == "Retrieval":
            if isinstance(row["_id"], bool) or not isinstance(row["_id"], int | str) or row["_id"] == "":
                raise DataError(path, lineno, f"field '_id' must be a non-empty string or an integer, not "
                                              f"{row['_id']!r}")  # fmt: skip
            if row.get("title") is not None and not isinstance(row["title"], str):
                raise DataError(path, lineno, f"field 'title' must be a string, not {row['title']!r}")
            ids.check(row["_id"], lineno)
        elif task_type == "BitextMining":
            for side, seen in sentences.items():
                seen.check(row[side], lineno)

    return check


def label_kind() -> _LabelKind:
    """One label-type tracker for all of a task's files (train and test must agree)."""
    return _LabelKind()


NOT_PREPARED = "is not prepared in the datasets cache"  # the one problem the hub can mend: nothing is there yet


def prepared_copy_problem(root: Path, revision: str) -> str:
    """Why `root`, a dataset's folder in the datasets cache (<cache>/<org>___<name>), cannot stand for the dataset
    at the pinned `revision` offline, else ''. Offline, load_dataset ignores the revision it is asked for: it reads
    the newest prepared folder of each config (corpus, queries, qrels, a language subset), and reads every folder's
    dataset_info.json on the way. So a revision prepared later than the pinned one, or a config prepared only at
    another revision, is scored in its place under the pinned name, and a half-copied folder of any revision fails
    the load deep in `datasets`; all are named here, before a model loads."""
    folders = sorted(p for p in root.glob("*/*/*") if p.is_dir())
    pinned = [p for p in folders if p.name == revision]
    if not pinned:
        others = sorted({p.name[:12] for p in folders})
        return NOT_PREPARED + (
            f" ({root} holds only revision {', '.join(others)})" if others else "")  # fmt: skip
    for folder in folders:
        if problem := _prepared_folder_problem(folder):
            return f"has a damaged prepared folder {folder}: {problem}; remove it (and prepare the dataset again)"
    configs: dict[str, list[Path]] = {}  # <config>/<version>/<revision>: load_dataset picks per config
    for folder in folders:
        configs.setdefault(folder.parent.parent.name, []).append(folder)
    for config, held in configs.items():
        at_pin = [p for p in held if p.name == revision]
        if not at_pin:  # before stop 48 (audit): the pinned revision anywhere passed, and this config's old rows ran
            others = ", ".join(sorted({p.name[:12] for p in held}))
            return (f"has its config {config!r} prepared only at revision {others}, not the pinned one: offline, "
                    "load_dataset reads that config's newest folder whatever revision is asked for, so its rows "
                    f"would be scored under the pinned name; remove {root / config} (and prepare the dataset again)")
        oldest_pinned = min(p.stat().st_mtime for p in at_pin)
        # equal times (a copy keeping them: cp -a, rsync, tar) leave the choice to glob order: not safe either
        later = [p for p in held if p.name != revision and p.stat().st_mtime >= oldest_pinned]
        if later:
            return (f"has {later[0]} prepared after (or with) the pinned revision: offline, load_dataset reads the "
                    "newest prepared folder whatever revision is asked for, so that revision's rows would be scored; "
                    "remove it")  # fmt: skip
    return ""


def _prepared_folder_problem(folder: Path) -> str:
    """What is missing or cut short in one prepared folder (dataset_info.json and each split's arrow files, whose
    rows must add up to the split's recorded count), else ''. The arrow files are memory-mapped, so only their
    message headers are read."""
    import pyarrow as pa
    from datasets.naming import filenames_for_dataset_split

    try:
        info = json.loads((folder / "dataset_info.json").read_text(encoding="utf-8"))
        splits = info["splits"]
        for split in splits.values():
            files = filenames_for_dataset_split(str(folder), info["dataset_name"], split["name"], "arrow",
                                                split.get("shard_lengths"))  # fmt: skip
            rows = 0
            for file in map(Path, files):
                if not file.is_file():
                    return f"{file.name} is missing (a preparation or a copy that did not finish)"
                with pa.memory_map(str(file)) as source:
                    rows += sum(batch.num_rows for batch in pa.ipc.open_stream(source))
            if rows != split["num_examples"]:
                return f"split {split['name']!r} holds {rows} rows, its dataset_info.json says {split['num_examples']}"
    except FileNotFoundError:
        return "dataset_info.json is missing (a preparation or a copy that did not finish)"
    except (OSError, ValueError, KeyError, TypeError, AttributeError, pa.ArrowException) as exc:
        return f"unreadable ({type(exc).__name__}: {exc})"
    return ""
