"""What counts as a text to embed, and a JSON object with a key given twice: one rule for training rows (train.data)
and evaluation rows (harness.validate, harness.data); lives in conan_model, the bottom package, because train may not
import harness."""

from __future__ import annotations

import unicodedata
from typing import Any


def text_problem(value: Any) -> str:
    """Why a value is no text to embed ('is empty or not a string: 3'), else ''. A text of only control or
    zero-width characters (NUL, U+200B-U+200D, U+2060, U+FEFF) is empty too: str.strip() keeps them, so such a text
    passed as non-empty and was encoded as an empty one."""
    if not isinstance(value, str):
        return f"is empty or not a string: {value!r:.60}"
    if not value.strip():
        return "is empty or not a string"
    if all(char.isspace() or unicodedata.category(char) in ("Cc", "Cf") for char in value):
        return f"holds only invisible characters {value[:20]!r} (control or zero-width), so it is empty"
    return ""


class RepeatedKey(ValueError):
    """A JSON object giving one key twice (json.loads silently keeps the last value)."""

    def __init__(self, key: str) -> None:
        super().__init__(f"key {key!r} is given twice in one object")
        self.key = key


def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json's ``object_pairs_hook`` refusing a key given twice (RepeatedKey)."""
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise RepeatedKey(key)
        obj[key] = value
    return obj
