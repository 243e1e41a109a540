"""A warm rerun (every text in the embedding cache) loads no model (issue 15 item 2, harness/lazy.py).

The cold run loads minilm and describes it into the cache; the warm rerun, in a fresh process as a user runs it,
re-scores every task from cached vectors with the model's weights never loaded and neither sentence-transformers
nor transformers imported. A run that finds a text the cache lacks loads the weights then, checked against the
stored description, and scores as an eager load does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import mteb

from harness import lazy
from harness.cli import main
from harness.data import default_data_root, discover_tasks
from harness.encoding import HarnessEncoder
from harness.evaluation import _evaluate
from harness.runner import RunConfig
from harness.tasks import build_mirror

REPO = Path(__file__).resolve().parents[2]
PROBE = """
import json, sys
from harness import lazy
from harness.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "loads": lazy.LOADS["count"],
                  "imported": [m for m in ("transformers", "sentence_transformers") if m in sys.modules]}))
"""


def _score(out: Path, name: str, task: str) -> float:
    return json.loads((out / name / "run.json").read_text())["tasks"][task]["main_score"]


def test_warm_rerun_loads_no_model(tmp_path: Path, shared_data: Path) -> None:
    cache = tmp_path / "cache"
    args = ["run", "--tasks", "STS16", "--model", "minilm", "--data-dir", str(shared_data), "--out", str(tmp_path),
            "--cache-dir", str(cache), "--no-progress"]  # fmt: skip
    before = lazy.LOADS["count"]
    assert main([*args, "--run-name", "r"]) == 0  # cold: nothing known yet, the model loads at once and is described
    assert lazy.LOADS["count"] == before + 1  # into the cache
    cold = _score(tmp_path, "r", "STS16")

    # into a directory of its own: an --overwrite into "r" keeps the cold run's measured timings, where this run
    # timed no model work (RunDir.earlier_timing), and its own figures are what is checked here
    warm = subprocess.run([sys.executable, "-c", PROBE, *args, "--run-name", "warm"], cwd=REPO, capture_output=True,
                          text=True, check=True)  # fmt: skip
    got = json.loads(warm.stdout.strip().splitlines()[-1])
    assert got["code"] == 0 and got["loads"] == 0, got  # every text cached: the weights were never loaded
    assert got["imported"] == [], got  # nor sentence-transformers/transformers imported (harness/evaluation._evaluate)
    assert _score(tmp_path, "warm", "STS16") == cold
    eff = json.loads((tmp_path / "warm" / "efficiency.json").read_text())["STS16"]
    assert eff["encoded_texts"] == 0 and eff["model_load_s"] == 0.0

    sample = default_data_root()  # texts the cache lacks: the lazy model loads at the first of them
    sts12 = ["run", "--tasks", "STS12", "--model", "minilm", "--data-dir", str(sample), "--out", str(tmp_path),
             "--no-progress"]  # fmt: skip
    before = lazy.LOADS["count"]
    assert main([*sts12, "--cache-dir", str(cache), "--run-name", "lazy"]) == 0
    assert lazy.LOADS["count"] == before + 1
    eff = json.loads((tmp_path / "lazy" / "efficiency.json").read_text())["STS12"]
    assert eff["encoded_texts"] > 0 and eff["model_load_s"] > 0 and eff["load_s"] >= eff["model_load_s"]
    assert main([*sts12, "--no-cache", "--run-name", "eager"]) == 0  # no cache: loaded at once, as before
    eager = json.loads((tmp_path / "eager" / "efficiency.json").read_text())["STS12"]
    # charged to the first task, as the lazy load is (before stop 26 recorded nowhere: model_load_s 0)
    assert eager["model_load_s"] > 0 and eager["load_s"] >= eager["model_load_s"]
    assert eager["wall_s"] >= eager["load_s"] + eager["encode_s"]
    assert _score(tmp_path, "lazy", "STS12") == _score(tmp_path, "eager", "STS12")
    lazy_record = json.loads((tmp_path / "lazy" / "run.json").read_text())
    eager_record = json.loads((tmp_path / "eager" / "run.json").read_text())
    assert lazy_record["model"] == eager_record["model"]
    assert lazy_record["tasks"]["STS12"]["identity"] == eager_record["tasks"]["STS12"]["identity"]


def test_evaluate_is_mteb_evaluate_without_the_sanitizer(minilm, tmp_path: Path) -> None:
    """The runner's entry into mteb (which skips the sentence-transformers import) scores as `mteb.evaluate` does."""
    local = discover_tasks(default_data_root())["STS16"]
    encoder = HarnessEncoder(minilm, show_progress=False)
    cfg = RunConfig(model="minilm", data_dir=default_data_root())
    ours = _evaluate(encoder, build_mirror(local), cfg, tmp_path / "ours")
    theirs = mteb.evaluate(encoder, build_mirror(local), cache=None, overwrite_strategy="always",
                           show_progress_bar=False, prediction_folder=tmp_path / "theirs",
                           encode_kwargs={"batch_size": cfg.batch_size, "show_progress_bar": False})  # fmt: skip
    assert ours.scores == theirs.task_results[0].scores
    assert (tmp_path / "ours" / "STS16_predictions.json").read_text() == \
        (tmp_path / "theirs" / "STS16_predictions.json").read_text()  # fmt: skip


def test_another_mteb_falls_back_to_the_public_evaluate(minilm, tmp_path: Path, monkeypatch) -> None:
    """An mteb whose private steps differ (here: `_evaluate_resolved` lacks an argument the runner passes) is
    evaluated through the public `mteb.evaluate`, with the same scores."""
    from harness import evaluation

    local = discover_tasks(default_data_root())["STS16"]
    encoder = HarnessEncoder(minilm, show_progress=False)
    cfg = RunConfig(model="minilm", data_dir=default_data_root())
    fast = _evaluate(encoder, build_mirror(local), cfg, tmp_path / "fast")
    assert evaluation._mteb_steps() is not None  # the pinned mteb (constraints.txt) takes the fast path
    monkeypatch.setattr(evaluation, "_RESOLVED_ARGS", evaluation._RESOLVED_ARGS | {"an_argument_of_another_mteb"})
    assert evaluation._mteb_steps() is None
    public = _evaluate(encoder, build_mirror(local), cfg, tmp_path / "public")
    assert public.scores == fast.scores
