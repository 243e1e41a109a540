"""Cross-lingual retrieval (CLR) data builder (paper §3.3, App. A.1; notes §4).

The paper translates only the queries of monolingual retrieval sets (with Qwen2.5-7B) and keeps the documents
in their language, allocating query languages by its 26-language table. Here a translator is any callable
``(text, lang) -> translation | None``; ``ParallelTranslator`` looks translations up in parallel files
(``train/parallel_en_<lang>*/train.jsonl``: query = English, positive = translation). Only languages the
translator covers can be produced: the report lists requested and produced counts side by side and says why a
language fell short, instead of quietly renormalising.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .data import JsonlIndex

# Notes §4, Table 7: query-language shares in percent. They add up to 106, so they are normalised.
PAPER_LANGUAGE_MIX: dict[str, float] = {
    "en": 25, "zh": 12, "es": 8, "fr": 6, "ja": 6, "de": 5, "ru": 5, "it": 4, "pt": 4, "ar": 3, "ko": 3,
    "bn": 2, "da": 2, "sv": 2, "th": 2, "ms": 2, "tr": 2, "vi": 2, "nl": 2, "pl": 2, "hi": 2,
    "km": 1, "fi": 1, "he": 1, "hu": 1, "no": 1,
}  # fmt: skip
LANGUAGE_NAMES = {
    "en": "English", "zh": "Chinese", "es": "Spanish", "fr": "French", "ja": "Japanese", "de": "German",
    "ru": "Russian", "it": "Italian", "pt": "Portuguese", "ar": "Arabic", "ko": "Korean", "bn": "Bengali",
    "da": "Danish", "sv": "Swedish", "th": "Thai", "ms": "Malay", "tr": "Turkish", "vi": "Vietnamese",
    "nl": "Dutch", "pl": "Polish", "hi": "Hindi", "km": "Khmer", "fi": "Finnish", "he": "Hebrew",
    "hu": "Hungarian", "no": "Norwegian",
}  # fmt: skip
_PARALLEL_DIR = re.compile(r"^parallel_en_([a-z]{2,3})(?:_.+)?$")

Translator = Callable[[str, str], str | None]


def normalise_mix(mix: Mapping[str, float]) -> dict[str, float]:
    """Shares scaled to sum to 1 (the paper's table sums to 106%)."""
    total = float(sum(mix.values()))
    if total <= 0 or any(v < 0 for v in mix.values()):
        raise ValueError(f"language mix needs non-negative shares with a positive sum, got {dict(mix)}")
    return {lang: share / total for lang, share in mix.items()}


def allocate(mix: Mapping[str, float], total: int) -> dict[str, int]:
    """Integer counts per language that sum to ``total`` exactly (largest remainder, ties in table order)."""
    shares = normalise_mix(mix)
    raw = {lang: share * total for lang, share in shares.items()}
    counts = {lang: int(v) for lang, v in raw.items()}
    by_remainder = sorted(raw, key=lambda lang: -(raw[lang] - counts[lang]))
    for lang in by_remainder[: total - sum(counts.values())]:
        counts[lang] += 1
    return counts


class ParallelTranslator:
    """Translations looked up in parallel files; the first translation of an English text wins. ``pairs``: every
    (English, translation) row per language, later translations too (default: the tables'), for :meth:`shared`."""

    def __init__(self, tables: Mapping[str, Mapping[str, str]],
                 pairs: Mapping[str, Sequence[tuple[str, str]]] | None = None) -> None:  # fmt: skip
        self.tables = {lang: dict(table) for lang, table in tables.items()}
        self.pairs = ({lang: list(rows) for lang, rows in pairs.items()} if pairs is not None
                      else {lang: list(table.items()) for lang, table in self.tables.items()})  # fmt: skip

    @classmethod
    def from_dir(cls, train_root: str | Path, languages: Sequence[str] | None = None) -> ParallelTranslator:
        """Read every ``parallel_en_<lang>*`` folder under ``train_root`` (optionally only some languages)."""
        tables: dict[str, dict[str, str]] = {}
        pairs: dict[str, list[tuple[str, str]]] = {}
        for folder in sorted(Path(train_root).iterdir()):
            match = _PARALLEL_DIR.match(folder.name)
            if not match or (languages is not None and match.group(1) not in languages):
                continue
            table, rows = tables.setdefault(match.group(1), {}), pairs.setdefault(match.group(1), [])
            # checked as every training file is (errors name file:line; a BOM, blank lines; no empty text: before
            # stop 47 a translation of spaces became a CLR query, and a BOM or a blank line a JSON traceback)
            index = JsonlIndex([folder / "train.jsonl"], required=("query", "positive"))
            for i in range(len(index)):
                row = index.row(i)
                table.setdefault(row["query"], row["positive"])
                rows.append((row["query"], row["positive"]))
        if not tables:
            raise FileNotFoundError(f"no parallel_en_<lang> folders under {train_root}")
        return cls(tables, pairs)

    def languages(self) -> list[str]:
        return sorted(self.tables)

    def source_texts(self) -> list[str]:
        """Every English text that has at least one translation, in first-seen order."""
        return list(dict.fromkeys(text for table in self.tables.values() for text in table))

    def __call__(self, text: str, lang: str) -> str | None:
        return self.tables.get(lang, {}).get(text)

    def shared(self) -> list[tuple[str, str]]:
        """Pairs of English texts with one translation in some language (628 in ../shared/data, 1,154 texts): that
        translation, as a CLR query, is a labelled match of both, so neither may be the other's hard negative
        (train/multitask.py ``attach_pools``). Each text linked to the first with its translation, over every row:
        before stop 50 only each text's first translation was read, and 24 such pairs were missed ("How much is
        it?" and "How much does it cost?" share 多少錢? on a later row; 605 pairs, 54 texts' groups short)."""
        return shared_translation_links(self.pairs.values())


def shared_translation_links(languages: Iterable[Iterable[tuple[str, str]]]) -> list[tuple[str, str]]:
    """Per language's (English, translation) rows, each English text linked to the first with its translation."""
    links = []
    for rows in languages:
        first: dict[str, str] = {}
        for text, translation in rows:
            if first.setdefault(translation, text) != text:
                links.append((first[translation], text))
    return list(dict.fromkeys(links))


def build_clr(
    examples: Sequence[Mapping[str, Any]],
    translate: Translator,
    mix: Mapping[str, float] | None = None,
    total: int | None = None,
    source_lang: str = "en",
    seed: int = 0,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Cross-lingual examples from a monolingual retrieval set ``{"query", "positive"[, "negative"]}``.

    ``total`` examples (default: as many as the input) are split over query languages by ``mix`` (default: the
    paper's table). For a language X each source example (drawn in a seeded shuffle, at most once per language)
    becomes (query translated to X, the original positive). The source language's share keeps the
    untranslated query; examples whose query equals their positive (self-retrieval sets) are skipped there.
    Each output carries ``query_lang``, ``doc_lang`` and ``source_index``: the stage serves the source row's
    given negative and mined pool through it (train/multitask.py ``attach_pools``).
    """
    mix = dict(PAPER_LANGUAGE_MIX if mix is None else mix)
    total = len(examples) if total is None else total
    requested = allocate(mix, total)
    shares = normalise_mix(mix)
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    rows = []
    for lang, want in requested.items():
        order = list(range(len(examples)))
        rng.shuffle(order)
        made, untranslatable, identity = 0, 0, 0
        for i in order:
            if made >= want:
                break
            ex = examples[i]
            if lang == source_lang:
                query = ex["query"]
                if query == ex["positive"]:
                    identity += 1
                    continue
            else:
                query = translate(ex["query"], lang)
                if not query:
                    untranslatable += 1
                    continue
            out.append({"query": query, "positive": ex["positive"], "query_lang": lang, "doc_lang": source_lang,
                        "source_index": i})  # fmt: skip
            made += 1
        note = ""
        if made < want:
            if lang == source_lang and identity:
                note = f"{identity} self-retrieval examples (query == positive) skipped"
            elif made == 0 and untranslatable:
                note = "no translations available"
            else:
                note = f"only {made} of {len(examples)} source examples translatable"
        rows.append({"lang": lang, "name": LANGUAGE_NAMES.get(lang, lang), "requested_share": shares[lang],
                     "requested": want, "produced": made, "note": note})  # fmt: skip
    produced = sum(r["produced"] for r in rows)
    for r in rows:
        r["produced_share"] = r["produced"] / produced if produced else 0.0
    report = {"requested_total": total, "produced_total": produced, "source_lang": source_lang, "seed": seed,
              "languages": rows}  # fmt: skip
    rng.shuffle(out)
    return out, report


def format_report(report: Mapping[str, Any]) -> str:
    """Markdown table of requested vs produced languages, shortfalls explained."""
    lines = [
        f"CLR: requested {report['requested_total']}, produced {report['produced_total']} "
        f"(documents in {report['source_lang']})",
        "",
        "| lang | language | requested share | requested | produced | produced share | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["languages"]:
        lines.append(
            f"| {r['lang']} | {r['name']} | {r['requested_share']:.1%} | {r['requested']} | {r['produced']} | "
            f"{r['produced_share']:.1%} | {r['note']} |"
        )
    return "\n".join(lines)
