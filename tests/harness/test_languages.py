"""The note for a model run on tasks in none of its languages (mteb's model card against each task's languages)."""

from __future__ import annotations

from harness.data import default_data_root, discover_tasks
from harness.languages import language_note
from harness.tasks import resolve

SAMPLE = discover_tasks(default_data_root())


def test_an_english_model_on_chinese_tasks_is_noted_and_a_bilingual_task_is_not() -> None:
    """A C-MTEB walk (stop 70): minilm, English only on its card, ran the Chinese suite without a word. A task
    sharing one of the model's languages (zh-en) is not named; mteb's `cmn` and the cards' `zho` are one language."""
    tasks = [resolve(name, SAMPLE, "mirror") for name in ("AFQMC", "STSB", "STSBenchmarkZhEn", "STS16")]
    note = language_note("sentence-transformers/all-MiniLM-L6-v2", tasks)
    assert note == ("note: mteb's card for sentence-transformers/all-MiniLM-L6-v2 lists eng only; 2 task(s) are in "
                    "other languages (zho: AFQMC, STSB): its scores there measure how it transfers")  # fmt: skip
    assert language_note("intfloat/multilingual-e5-small", tasks) is None  # its card lists zho-Hans
    assert language_note("sentence-transformers/all-MiniLM-L6-v2", tasks[2:]) is None
    assert language_note("conan:runs/supervised/final", tasks) is None  # no card in mteb's registry: nothing said


def test_an_official_task_s_languages_come_from_mteb_and_the_run_prints_the_note(tmp_path, capsys) -> None:
    """The official path reads mteb's metadata (`cmn` for AFQMC); `harness run` prints the note below its plan."""
    import mteb

    from harness.cli import main
    from harness.runs import OFFICIAL
    from harness.tasks import ResolvedTask

    official = ResolvedTask("AFQMC", OFFICIAL, "STS", task=mteb.get_task("AFQMC"))
    assert language_note("sentence-transformers/all-MiniLM-L6-v2", [official]).startswith(
        "note: mteb's card for sentence-transformers/all-MiniLM-L6-v2 lists eng only; 1 task(s) are in other "
        "languages (zho: AFQMC)")  # fmt: skip
    assert main(["run", "--tasks", "AFQMC", "--model", "minilm", "--data-dir", str(default_data_root()), "--out",
                 str(tmp_path), "--no-cache", "--no-progress", "--source", "mirror"]) == 0  # fmt: skip
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("tasks: 1/1 tasks") and lines[1].startswith("note: mteb's card for sentence-"), lines
