"""Which languages a model's card and a task name, and the note for a model run on tasks in none of its own."""

from __future__ import annotations

from typing import TYPE_CHECKING

import mteb

from harness.runs import MISSING
from harness.validate import lang_script

if TYPE_CHECKING:
    from harness.tasks import ResolvedTask


CHINESE = {"cmn", "zho", "yue", "wuu"}  # mteb's tasks say cmn, its model cards zho: one language here


def _language(code: str) -> str:
    """The language of an mteb code or a task.json one (`cmn-Hans`, `zh`, `eng`): ISO 639-3, Chinese as one."""
    base = (lang_script(code) or code).split("-")[0]
    return "zho" if base in CHINESE else base


def task_languages(resolved: ResolvedTask) -> set[str]:
    """A task's languages (`_language`), from its task.json for a mirror (not yet built), else mteb's metadata;
    none known (a `multi/` folder whose task.json names none) is an empty set, which `language_note` passes over."""
    if resolved.local is not None:
        return {_language(code) for code in resolved.local.languages if lang_script(code)}
    return {_language(code) for code in resolved.task.metadata.languages} if resolved.task is not None else set()


def language_note(model_name: str, resolved: list[ResolvedTask]) -> str | None:
    """A note naming the tasks none of whose languages mteb's model card for ``model_name`` lists (all-MiniLM-L6-v2,
    English only, on the Chinese suite), or None (all covered, or the model has no card in mteb's registry: a
    conan checkpoint, a local folder). Its scores there are real, but a measure of transfer: before stop 70 (a C-MTEB
    walk) minilm ran the cmteb suite without a word, mean 29.70."""
    try:
        meta = mteb.get_model_meta(model_name)  # the registry only: fetch_from_hf is off by default
    except (KeyError, ValueError):
        return None
    speaks = {_language(code) for code in meta.languages or []}
    by_language: dict[str, list[str]] = {}
    for r in resolved if speaks else []:
        if r.source != MISSING and (langs := task_languages(r)) and not langs & speaks:
            by_language.setdefault("/".join(sorted(langs)), []).append(r.name)
    if not by_language:
        return None
    named = "; ".join(f"{lang}: {', '.join(names)}" for lang, names in by_language.items())
    count = sum(map(len, by_language.values()))
    return (f"note: mteb's card for {model_name} lists {', '.join(sorted(speaks))} only; {count} task(s) are in "
            f"other languages ({named}): its scores there measure how it transfers")
