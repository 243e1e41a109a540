"""What a user reads: the console keeps to the harness's lines, long work speaks when output is not a terminal,
throughput counts model work only, and every written file has one mode (issue 14, items 10-13 and 11)."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from data_helpers import cut_rows
from tqdm.auto import tqdm

from harness.cli import main
from harness.console import WARNINGS_LOG, library_tqdm_off, quiet_console
from harness.data import default_data_root

SAMPLE = default_data_root()


def _run(out: Path, name: str, *args: str, data: Path = SAMPLE) -> int:
    return main(["run", "--model", "minilm", "--data-dir", str(data), "--out", str(out), "--run-name", name, *args])


@pytest.mark.slow
def test_no_progress_run_prints_only_harness_lines(tmp_path: Path, capfd) -> None:
    """Before: transformers' weight-loading bar and mteb's search bars reached the console despite --no-progress."""
    assert _run(tmp_path, "q", "--tasks", "STS16,TrecQAReranking", "--no-progress", "--no-cache") == 0
    captured = capfd.readouterr()
    assert captured.err == ""
    assert "Loading weights" not in captured.out and "it/s" not in captured.out
    assert re.search(r"^\[2/2\] TrecQAReranking: map_at_1000 = ", captured.out, re.M)


def test_no_progress_silences_mteb_bars(shared_data: Path, tmp_path: Path, capfd) -> None:
    """Before stop 49: `--no-progress` set TQDM_DISABLE after mteb had imported tqdm, so bitext mining's bars
    ("Matching sentences") still reached stderr. The harness's own bar keeps its explicit choice."""
    data = tmp_path / "data"
    shutil.copytree(shared_data / "multi" / "TatoebaDeuEng", data / "multi" / "TatoebaDeuEng")
    cut_rows(data / "multi" / "TatoebaDeuEng", 12)
    assert _run(tmp_path, "b", "--tasks", "TatoebaDeuEng", "--no-progress", "--no-cache", data=data) == 0
    err = capfd.readouterr().err
    assert "Matching sentences" not in err and "it/s" not in err
    with library_tqdm_off():
        list(tqdm(range(2), file=(quiet := io.StringIO())))
        list(tqdm(range(2), file=(own := io.StringIO()), disable=False))
    list(tqdm(range(2), file=(after := io.StringIO())))
    assert quiet.getvalue() == "" and "2/2" in own.getvalue() and "2/2" in after.getvalue()
    first, second = library_tqdm_off(), library_tqdm_off()  # two runs overlapping in threads: ended out of order
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)
    list(tqdm(range(2), file=(during := io.StringIO())))
    second.__exit__(None, None, None)
    list(tqdm(range(2), file=(end := io.StringIO())))
    assert during.getvalue() == "" and "2/2" in end.getvalue()  # review of stop 49: bars stayed off for good


def test_a_run_closes_its_embedding_cache(tmp_path: Path) -> None:
    """Before stop 49 (audit): the cache was left to the garbage collector, so every run's warnings.log held a
    ResourceWarning for its lock file, which the console's warning count missed."""
    assert _run(tmp_path, "c", "--tasks", "STS16", "--cache-dir", str(tmp_path / "cache"), "--no-progress") == 0
    log = tmp_path / "c" / WARNINGS_LOG
    assert not log.exists() or "ResourceWarning" not in log.read_text(encoding="utf-8")


def test_files_of_a_run_share_the_umask_mode(tmp_path: Path) -> None:
    """Before: run.json/summary.md/results were forced to 0644 while mteb's predictions and the trainer's
    checkpoints followed the umask; under umask 027 the run directory mixed 0644 and 0640 files."""
    old = os.umask(0o027)
    try:
        assert _run(tmp_path, "m", "--tasks", "STS16", "--no-progress", "--no-cache") == 0
        from test_conan_spec import _tiny_checkpoint

        checkpoint = _tiny_checkpoint(tmp_path / "tiny")
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "m").rglob("*") if p.is_file()] + list(checkpoint.iterdir())
    modes = {p.relative_to(tmp_path).as_posix(): oct(p.stat().st_mode & 0o777) for p in files}
    assert "m/run.json" in modes and any("predictions" in p for p in modes) and "tiny/model.safetensors" in modes
    assert set(modes.values()) == {"0o640"}, {p: m for p, m in modes.items() if m != "0o640"}


def test_progress_lines_when_output_is_not_a_terminal(tmp_path: Path, capsys, monkeypatch) -> None:
    """Before: with output to a file (CI, nohup) a long task printed nothing until it finished."""
    monkeypatch.setenv("HARNESS_PROGRESS_INTERVAL", "0")  # every ~50 ms, so even a short task shows lines
    assert _run(tmp_path, "p", "--tasks", "STS16", "--no-cache") == 0
    err = capsys.readouterr().err
    line = r"^  \.\.\. \[1/1\] STS16: (\d+/\d+ texts encoded( \(encode call \d+\))?|loading or scoring), \d+ s$"
    assert re.search(line, err, re.M), err[-500:]
    assert _run(tmp_path, "p2", "--tasks", "STS16", "--no-cache", "--no-progress") == 0
    assert "  ... " not in capsys.readouterr().err


def test_library_warnings_go_to_the_run_log(tmp_path: Path, capfd) -> None:
    with quiet_console() as log:
        warnings.warn("lbfgs failed to converge", UserWarning, stacklevel=1)
        logging.getLogger("transformers").warning("Some weights were not used")
        log.attach(tmp_path)
        logging.getLogger("sklearn").warning("after attach")
    assert capfd.readouterr().err == ""
    text = (tmp_path / WARNINGS_LOG).read_text()
    assert "lbfgs failed to converge" in text and "Some weights were not used" in text and "after attach" in text
    assert log.count == 3


def test_throughput_counts_model_work_not_hits(tmp_path: Path, capsys) -> None:
    """Before: a warm run reported tens of thousands of texts/s (hits counted as encoding), `--dims` counted each
    text once per dimension pass, and `harness report`'s Table 5 was empty once a run had any cache hit."""
    cache = ["--cache-dir", str(tmp_path / "cache"), "--no-progress"]
    data = tmp_path / "data"
    shutil.copytree(SAMPLE / "en" / "STS16", data / "en" / "STS16")
    cut_rows(data / "en" / "STS16", 20)
    assert _run(tmp_path, "part", "--tasks", "STS16", *cache, data=data) == 0  # caches 20 of the 47 pairs
    assert _run(tmp_path, "full", "--tasks", "STS16", "--dims", "64,128", *cache) == 0
    assert _run(tmp_path, "warm", "--tasks", "STS16", *cache) == 0
    out = capsys.readouterr().out
    full = json.loads((tmp_path / "full" / "efficiency.json").read_text())["STS16"]
    warm = json.loads((tmp_path / "warm" / "efficiency.json").read_text())["STS16"]
    assert 0 < full["cache_hits"] < full["unique_texts"]
    assert full["cache_hits"] + full["encoded_texts"] == full["unique_texts"] == warm["cache_hits"]
    assert full["texts"] == warm["texts"]  # the two dimension passes are not counted again
    assert full["texts_per_s"] == pytest.approx(full["encoded_texts"] / full["model_s"], rel=0.01, abs=0.1)
    assert warm["encoded_texts"] == 0 and warm["texts_per_s"] is None and warm["tokens_per_s"] is None
    assert f"nothing encoded; {warm['cache_hits']} cache hits" in out
    assert f"{full['encoded_texts']} encoded at " in out
    summary = (tmp_path / "warm" / "summary.md").read_text()
    assert "| encoded | texts/s | tokens/s | cache hits |" in re.sub(r" +", " ", summary)
    served = r"cache only \(no model time\)"  # not `—`, a missing figure: the model did no work to time
    assert re.search(rf"\| 0 \| {served} \| {served} \| {warm['cache_hits']} \| ok \|", re.sub(r" +", " ", summary))
    assert main(["report", str(tmp_path / "full"), "--out", str(tmp_path / "report")]) == 0
    text = (tmp_path / "report" / "efficiency.md").read_text()
    assert "Model time and throughput count real model work only" in text and "STS16" in text


def test_one_slow_text_is_not_called_nothing_encoded() -> None:
    """User walk (stop 67): one 2-million-character text took 32.5 s to encode; its rate, rounded to one decimal,
    was 0.0 texts/s, and the task line read "nothing encoded; 260 cache hits". Rates below 1/s keep two significant
    digits, and the line counts the texts the model encoded."""
    from harness.encoding import EncodeStats
    from harness.runner import work

    stats = EncodeStats(texts=261, encoded_texts=1, cache_hits=260, tokens=256, model_s=32.5)
    eff = {**stats.as_dict(), **stats.speed()}
    assert (eff["texts_per_s"], eff["tokens_per_s"]) == (0.031, 7.9)
    assert work(eff) == "1 encoded at 0.031 texts/s, 8 tokens/s; 260 cache hits"
    fast = EncodeStats(encoded_texts=1379, tokens=27580, model_s=15.27)
    assert work({**fast.as_dict(), **fast.speed()}) == "1379 encoded at 90.3 texts/s, 1,806 tokens/s; 0 cache hits"
    assert work({**EncodeStats(cache_hits=5).as_dict(), **EncodeStats().speed()}) == "nothing encoded; 5 cache hits"


def test_texts_cut_at_the_max_length_are_counted_and_said(minilm, tmp_path: Path, capsys) -> None:
    """A C-MTEB walk (stop 70): texts cut at the model's max length were never said (CMRC2018Retrieval cuts 151
    documents at 512). efficiency.json's `at_max_length` counts the encoded texts whose tokens reached it, the task
    line says so; checked against the model's own tokenizer on the whole texts (16 tokens, [CLS] and [SEP] in)."""
    assert _run(tmp_path, "cut", "--tasks", "STS16", "--max-length", "16", "--no-cache", "--no-progress") == 0
    figures = json.loads((tmp_path / "cut" / "efficiency.json").read_text())["STS16"]
    rows = [json.loads(line) for line in (SAMPLE / "en" / "STS16" / "test.jsonl").read_text().splitlines()]
    texts = list(dict.fromkeys(t for row in rows for t in (row["sentence1"], row["sentence2"])))
    long = sum(len(ids) >= 16 for ids in minilm._model.tokenizer(texts)["input_ids"])
    assert figures["encoded_texts"] == len(texts) and 0 < figures["at_max_length"] == long < len(texts)
    assert f"{len(texts)} encoded ({long} cut at the max length) at " in capsys.readouterr().out


def test_progress_counts_texts_every_batch_before_the_first_slice_is_done(minilm, tmp_path: Path) -> None:
    """Before: texts were counted once per 1,024-text slice (the embedder hands vectors back a slice at a time),
    so the sample SciFact read `0/400 texts encoded` for 43 s and the terminal bar sat still; now both the line
    and the bar count each batch's texts as the model runs it."""
    from harness.data import discover_tasks, read_rows
    from harness.encoding import HarnessEncoder

    corpus = [r["text"] for r in read_rows(discover_tasks(SAMPLE)["SciFact"], "corpus.jsonl")][:48]
    encoder = HarnessEncoder(minilm, batch_size=8, show_progress=True)  # 6 batches, all in the first slice
    seen: list[str] = []
    real = minilm.encode_batch

    def noting_progress(texts: list[str], role: str | None) -> np.ndarray:
        seen.append(encoder.progress())  # what the heartbeat thread reads while this batch runs
        return real(texts, role)

    bar_counts: list[int] = []
    real_update = tqdm.update

    def noting_bar(bar: tqdm, n: float = 1) -> bool | None:
        bar_counts.append(n)
        return real_update(bar, n)

    minilm.encode_batch = noting_progress
    tqdm.update = noting_bar
    try:
        encoder.encode_texts(corpus, "document")
    finally:
        minilm.encode_batch = real
        tqdm.update = real_update
    assert seen == [f"{8 * n}/48 texts encoded" for n in range(6)]
    assert bar_counts == [8] * 6  # the terminal bar moved every batch too
    assert encoder.progress() == "loading or scoring"
    seen.clear()  # a second call of the task (mteb encodes queries and documents apart) says which it is
    minilm.encode_batch = noting_progress
    try:
        encoder.encode_texts(corpus[:8], "query")
    finally:
        minilm.encode_batch = real
    assert seen == ["0/8 texts encoded (encode call 2)"]
