"""Hard-negative candidate pools, mined once before the supervised stage (the pools DHNM walks through).

For every query, the corpus is ranked by a scorer and every text the data labels as a match of the query (its
positives, and what paraphrase links in either direction or a shared positive join to it: ``labelled_matches``) is
removed; the top ``depth`` candidates are saved, best first, as one JSONL line per query. Scorers:
* any embedder the harness can load (``minilm``, ``me5-small``, ``conan:<dir>``, ``st:<path>``...; through
  `harness train`, see train/scorer.py): cosine of the query ('query' role) against the documents ('document' role);
* ``bm25``: a small Okapi BM25 of our own (no dependency), over words for Latin text and character bigrams for
  CJK runs, so Chinese needs no segmenter.
The paper does not say how v2's pools were built (notes §5.1); v1 used a teacher model.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse

from conan_model.atomic import atomic_write_text

from .errors import DataError
from .scorer import load_scorer

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_TOKEN = re.compile(rf"[{_CJK}]+|[^\W{_CJK}]+")


def bm25_tokens(text: str) -> list[str]:
    """Lower-cased words for Latin-like text; character bigrams (a lone character as itself) for CJK runs."""
    out: list[str] = []
    for run in _TOKEN.findall(text.lower()):
        if re.match(rf"[{_CJK}]", run):
            out.extend([run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)])
        else:
            out.append(run)
    return out


class BM25:
    """Okapi BM25 over a fixed corpus, scored as one sparse product (queries × terms) · (terms × docs)."""

    def __init__(self, corpus: Sequence[str], k1: float = 1.5, b: float = 0.75) -> None:
        self.vocab: dict[str, int] = {}
        rows, cols, vals, lengths = [], [], [], []
        for d, text in enumerate(corpus):
            tokens = bm25_tokens(text)
            lengths.append(len(tokens))
            counts: dict[int, int] = {}
            for tok in tokens:
                tid = self.vocab.setdefault(tok, len(self.vocab))
                counts[tid] = counts.get(tid, 0) + 1
            rows += [d] * len(counts)
            cols += list(counts)
            vals += list(counts.values())
        n_docs, lengths_a = len(corpus), np.asarray(lengths, dtype=np.float64)
        tf = sparse.csr_matrix((vals, (rows, cols)), shape=(n_docs, len(self.vocab)), dtype=np.float64)
        df = np.bincount(cols, minlength=len(self.vocab))
        idf = np.log1p((n_docs - df + 0.5) / (df + 0.5))
        norm = k1 * (1 - b + b * lengths_a / max(lengths_a.mean(), 1e-9))
        tf = tf.tocoo()
        weights = tf.data * (k1 + 1) / (tf.data + norm[tf.row]) * idf[tf.col]
        self._doc_term = sparse.csr_matrix((weights, (tf.row, tf.col)), shape=tf.shape).T.tocsr()

    def scores(self, queries: Sequence[str]) -> np.ndarray:
        """(len(queries), n_docs) scores; a repeated query term counts once (standard for short queries)."""
        rows, cols = [], []
        for i, text in enumerate(queries):
            ids = {self.vocab[t] for t in bm25_tokens(text) if t in self.vocab}
            rows += [i] * len(ids)
            cols += sorted(ids)
        q = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(queries), len(self.vocab)))
        return np.asarray((q @ self._doc_term).todense(), dtype=np.float32)


def embed_texts(embedder: Any, texts: Sequence[str], role: str | None, batch_size: int = 64) -> np.ndarray:
    """L2-normalised float32 embeddings from a harness Embedder (``encode_batch(texts, role)``)."""
    parts = []
    for i in range(0, len(texts), batch_size):
        parts.append(embedder.encode_batch(list(texts[i : i + batch_size]), role))
    emb = np.concatenate(parts).astype(np.float32) if parts else np.zeros((0, 1), np.float32)
    return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)


def _top(scores: np.ndarray, excluded: Iterable[int], depth: int) -> tuple[list[int], list[float]]:
    scores = scores.copy()
    scores[list(excluded)] = -np.inf
    n = min(depth, int(np.isfinite(scores).sum()))
    if n <= 0:
        return [], []
    top = np.argpartition(-scores, n - 1)[:n]
    top = top[np.argsort(-scores[top], kind="stable")]
    return top.tolist(), scores[top].tolist()


def mine_pools(
    queries: Sequence[str],
    positives: Sequence[Iterable[str]],
    corpus: Sequence[str],
    scorer: str | Any = "bm25",
    depth: int = 32,
    chunk: int = 256,
    batch_size: int = 64,
) -> list[dict[str, Any]]:
    """Ranked candidates for each query: ``{"query", "candidates": [text...], "scores": [...]}``, best first.

    ``positives[i]`` are query i's positive texts; they and the query text are never candidates. ``scorer`` is
    'bm25', a harness model spec (resolved by train/scorer.py's installed loader) or a loaded embedder.
    """
    if len(queries) != len(positives):
        raise ValueError(f"{len(queries)} queries but {len(positives)} positive sets")
    corpus = list(dict.fromkeys(corpus))
    index = {text: i for i, text in enumerate(corpus)}
    if scorer == "bm25":
        bm25 = BM25(corpus)

        def score_chunk(texts: Sequence[str]) -> np.ndarray:
            scores = bm25.scores(texts)
            scores[scores <= 0] = -np.inf  # no shared term: a random text, not a hard negative
            return scores
    else:
        if isinstance(scorer, str):
            scorer = load_scorer(scorer)
        docs = embed_texts(scorer, corpus, "document", batch_size)

        def score_chunk(texts: Sequence[str]) -> np.ndarray:
            return embed_texts(scorer, texts, "query", batch_size) @ docs.T

    pools = []
    for lo in range(0, len(queries), chunk):
        block = list(queries[lo : lo + chunk])
        for offset, row in enumerate(score_chunk(block)):
            i = lo + offset
            excluded = {index[t] for t in [queries[i], *positives[i]] if t in index}
            top, scores = _top(row, excluded, depth)
            pools.append({"query": queries[i], "candidates": [corpus[j] for j in top],
                          "scores": [round(float(s), 6) for s in scores]})  # fmt: skip
    return pools


def labelled_matches(pairs: Iterable[tuple[str, str]]) -> dict[str, frozenset[str]]:
    """Every text of ``pairs`` (query, positive) → the texts the data labels as its matches: its connected
    component over the pairs, taken both ways. A query's pool excludes all of them, not only its own positives:
    paraphrase data labels pairs in both directions and in clusters ((a, b) and (b, a); (a, c) and (b, c)), and a
    text labelled as a's match, mined for a, is a false hard negative that DHNM keeps (its cosine starts high).
    Before stop 46 (audit) only a's own positives were excluded: 1,223 of the 37,424 rows of configs/supervised.toml's
    retrieval task had such a text among the 7 hard negatives served first (benchmarks/bench_pool_matches.py)."""
    parent: dict[str, str] = {}

    def root(text: str) -> str:
        parent.setdefault(text, text)
        while parent[text] != text:
            parent[text] = parent[parent[text]]  # path halving: near-flat trees, no recursion
            text = parent[text]
        return text

    for a, b in pairs:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[ra] = rb
    members: dict[str, set[str]] = {}
    for text in parent:
        members.setdefault(root(text), set()).add(text)
    groups = {r: frozenset(texts) for r, texts in members.items()}
    return {text: groups[root(text)] for text in parent}


def save_pools(path: str | Path, pools: Sequence[dict[str, Any]], meta: dict[str, Any] | None = None) -> None:
    """JSONL, one pool per line in query order; ``meta`` goes to ``<path>.meta.json`` (scorer, depth, corpus
    size..., and the sha256 of the pools file it describes). Both are written atomically under per-call temporary
    names, so readers never see half a file and concurrent runs sharing one ``pools_dir`` do not collide. The old
    meta goes first: a crash before the new one leaves none, so the pools are mined again (before stop 48 a run
    with the earlier settings then found the earlier meta and reused these pools, mined otherwise)."""
    path = Path(path)
    lines = "".join(json.dumps(pool, ensure_ascii=False) + "\n" for pool in pools)
    meta_path = path.with_name(path.name + ".meta.json")
    meta_path.unlink(missing_ok=True)
    atomic_write_text(path, lines)
    if meta is not None:
        text = json.dumps({**meta, "pools_sha256": _sha256(lines)}, indent=2, ensure_ascii=False)
        atomic_write_text(meta_path, text)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def load_pools(path: str | Path) -> list[dict[str, Any]]:
    """Pools saved by ``save_pools``; a malformed line names the file and line number."""
    pools = []
    with Path(path).open(encoding="utf-8") as handle:
        for n, line in enumerate(handle, 1):
            try:
                pool = json.loads(line)
                if not isinstance(pool.get("candidates"), list):
                    raise ValueError("no 'candidates' list")
            except (ValueError, AttributeError) as exc:
                raise ValueError(f"{path}:{n}: bad pool line ({exc})") from exc
            pools.append(pool)
    return pools


def matching_pools(path: Path, queries: list[str], matches: dict[str, frozenset[str]]) -> list[list[str]]:
    """The candidates of each query's pool, read from ``path``: a file whose lines are not the queries' pools, in
    their order, is refused, naming the line, and a candidate the rows label a match of its query is never served.
    The meta's checksum only finds a file changed without it: before stop 70 (a walk) a line gone from a file
    edited with its meta was a bare `zip()` error, and a positive put back in a pool was served as a negative."""
    pools = load_pools(path)
    for line, (pool, query) in enumerate(zip(pools, queries, strict=False), 1):
        if pool.get("query") != query:
            raise DataError(path, line, f"the pool is for query {pool.get('query')!r}, where the task's rows give "
                                        f"{query!r}: remove the file and its .meta.json to mine the pools again")
    if len(pools) != len(queries):
        raise DataError(path, 0, f"{len(pools)} pools for {len(queries)} queries: remove the file and its "
                                 ".meta.json to mine the pools again")  # fmt: skip
    return [[c for c in pool["candidates"] if c not in matches.get(query, ())]
            for pool, query in zip(pools, queries, strict=True)]


def code_digest(source: str) -> str:
    """sha256 of a module's syntax tree: an edit of what runs changes it, comments and layout do not (unparsed,
    not dumped: ast.dump's fields vary with the Python version, as tests/harness/test_vector_code_guard.py notes)."""
    return _sha256(ast.unparse(ast.parse(source)))


@functools.cache
def mining_code() -> str:
    """This module's `code_digest`: the pools meta keys the code that mines (tokens, BM25, ranking, exclusion), so
    pools kept in a work folder across a commit that changes it are mined again rather than served to units
    recorded at the new code."""
    return code_digest(Path(__file__).read_text(encoding="utf-8"))


def ensure_pools(
    path: str | Path,
    queries: Sequence[str],
    positives: Sequence[Iterable[str]],
    corpus: Sequence[str],
    scorer: str = "bm25",
    depth: int = 32,
) -> bool:
    """Mine and save pools at ``path`` unless its meta file shows they were mined from these very inputs:
    the scorer (a model spec is loaded first and keyed by its cache identity: weights fingerprint, prompts,
    length, dtype, so retrained weights behind the same ``conan:<dir>`` mine again), the depth, the mining code
    (``mining_code``) and sha256 of the queries, their positives (which decide what is excluded) and the corpus.
    An embedder object passed in code without ``cache_identity`` is keyed by its type alone. Returns whether it
    mined; read with ``load_pools``."""
    path = Path(path)
    corpus = list(dict.fromkeys(corpus))
    positives = [list(p) for p in positives]
    keyed = [list(queries), [sorted(set(p)) for p in positives], corpus]
    digest = hashlib.sha256(json.dumps(keyed, ensure_ascii=False).encode()).hexdigest()
    if isinstance(scorer, str) and scorer != "bm25":
        spec, scorer = scorer, load_scorer(scorer)
    else:
        spec = scorer if isinstance(scorer, str) else type(scorer).__name__
    identity = scorer.cache_identity if hasattr(scorer, "cache_identity") else None
    meta = {"scorer": spec, "depth": depth, "queries": len(queries), "corpus": len(corpus), "sha256": digest,
            "mining_code": mining_code(),
            **({"scorer_identity": {r: identity(r) for r in ("query", "document")}} if identity else {})}  # fmt: skip
    meta = json.loads(json.dumps(meta, default=str))  # as the meta file gives it back
    meta_path = path.with_name(path.name + ".meta.json")
    if path.is_file() and meta_path.is_file():
        saved = json.loads(meta_path.read_text(encoding="utf-8"))
        # the pools file must be the one the meta describes: another run's settings may have replaced it since
        if saved.pop("pools_sha256", None) == _sha256(path.read_text(encoding="utf-8")) and saved == meta:
            return False
    save_pools(path, mine_pools(queries, positives, corpus, scorer, depth), meta)
    return True
