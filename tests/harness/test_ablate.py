"""`harness ablate` end to end on a tiny config (2 arms × 2 seeds, a dev choice): kill -9 and resume, the CI
against a hand computation from the raw prediction files, and the dev/test rule."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pretrained_helpers import make_qwen2_folder
from scipy.stats import norm, spearmanr
from scipy.stats import t as t_dist

from conan_model import train_tokenizer as train_bbpe
from harness import identity, sysinfo
from harness.ablate import Ablation, choose_value
from harness.ablate_config import load_ablation
from harness.ablate_keys import OPERATIONAL, fingerprint, input_hashes
from harness.cli import main
from harness.embedder import ModelOptions
from harness.errors import UsageError
from harness.models import resolve_options
from harness.sysinfo import code_version
from train.config import RESUME_SAFE

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "harness" / "sample_data"
N_BOOT = 200


def write_configs(tmp: Path, shared_data: Path, **extra: str) -> Path:
    tok = tmp / "tokenizer.json"
    if not tok.exists():
        train_bbpe([shared_data / "train" / "parallel_en_zh" / "train.jsonl"], 800, ("query", "positive"),
                   max_rows=600, save_path=tok)  # fmt: skip
    stage = tmp / "weak.toml"
    stage.write_text(f"""stage = "weak"
data_root = "{shared_data / "train"}"
data = ["parallel_en_zh"]
tokenizer = "{tok}"
model_overrides = {{max_length = 32}}
max_length = 32
batch_size = 16
steps = 6
lr = 2e-3
log_every = 3
save_every = 3
""")
    body = {
        "name": '"tiny"', "out": f'"{tmp / "work"}"', "report": f'"{tmp / "report"}"', "scale": '"test: 6 steps"',
        "seeds": "[0, 1]", "reference": '"bidir"', "data_dir": f'"{SAMPLE}"', "set": '["threads=1"]',
        "n_boot": str(N_BOOT), **extra,
    }  # fmt: skip
    text = "\n".join(f"{k} = {v}" for k, v in body.items()) + f"""
[[stages]]
config = "{stage}"
[arms.bidir]
set = ["mask_schedule='bidirectional'"]
[arms.linear]
set = ["mask_schedule='linear'"]
[eval]
dev = ["STS16"]
test = ["STS12"]
[choose]
key = "lr"
values = [1e-3, 3e-3]
"""
    path = tmp / "ablation.toml"
    path.write_text(text, encoding="utf-8")
    return path


def hand_ci(report: dict, task: str, arm: str) -> tuple[float, float, float]:
    """The CI written out from the prediction files and the gold scores, with scipy: a paired item bootstrap
    (seeds fixed) for the items, the per-seed spread with a t on n - 1 df for the seeds, in quadrature."""
    gold = [json.loads(x)["score"] for x in (SAMPLE / "en" / task / "test.jsonl").read_text().splitlines()]
    gold = np.asarray(gold, dtype=float)

    def sims(run: str) -> np.ndarray:
        preds = json.loads((Path(run) / "predictions" / f"{task}_predictions.json").read_text())
        return np.asarray(preds["default"]["test"]["cosine_scores"], dtype=float)

    ref = [sims(r["eval"]) for r in report["arms"]["bidir"]["runs"].values()]
    cand = [sims(r["eval"]) for r in report["arms"][arm]["runs"].values()]
    per_seed = [spearmanr(gold, c)[0] - spearmanr(gold, r)[0] for r, c in zip(ref, cand, strict=True)]
    item_rng = np.random.default_rng([0, zlib.crc32(task.encode())])
    deltas = []
    for _ in range(N_BOOT):
        idx = item_rng.integers(0, len(gold), len(gold))
        deltas.append(np.mean([spearmanr(gold[idx], c[idx])[0] - spearmanr(gold[idx], r[idx])[0]
                               for r, c in zip(ref, cand, strict=True)]))  # fmt: skip
    se_seeds, se_items = np.std(per_seed, ddof=1) / np.sqrt(len(per_seed)), np.std(deltas, ddof=1)
    half = np.sqrt((t_dist.ppf(0.975, len(per_seed) - 1) * se_seeds) ** 2 + (norm.ppf(0.975) * se_items) ** 2)
    full = float(np.mean(per_seed))
    return full, full - half, full + half


@pytest.mark.slow
def test_ablate_kill_resume_ci_and_dev_test_rule(tmp_path: Path, shared_data: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    config = write_configs(tmp_path, shared_data)
    work = tmp_path / "work"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "harness", "ablate", str(config)], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline:  # kill -9 once the first arm's model is trained
        state = json.loads((work / "ablate.json").read_text()) if (work / "ablate.json").exists() else {"done": {}}
        if "seed0/bidir/stage0" in state["done"]:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    before = json.loads((work / "ablate.json").read_text())["done"]
    assert "seed0/bidir/stage0" in before and "report" not in before
    finals = {u: Path(v["final"]) / "model.safetensors" for u, v in before.items() if "final" in v}
    mtimes = {u: p.stat().st_mtime_ns for u, p in finals.items()}

    assert main(["ablate", str(config)]) == 0
    log = capsys.readouterr().out
    for unit in finals:  # every unit finished before the kill is skipped, its weights untouched
        assert f"[ablate] {unit}: done earlier, skipped" in log
        assert finals[unit].stat().st_mtime_ns == mtimes[unit]

    units = json.loads((work / "ablate.json").read_text())["done"].values()
    trained = [v for v in units if "final" in v and "reused" not in v]
    assert len(list(work.glob("seed*/*/stage*/final"))) == len(trained) >= 4
    assert not list(work.glob("seed*/*/stage*/checkpoints"))  # finished units keep their final model only
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    md = (tmp_path / "report" / "report.md").read_text()
    assert report["code"] == {code_version(): len(json.loads((work / "ablate.json").read_text())["done"])}
    assert f"- code: every unit trained and evaluated at `{code_version()}`" in md  # killed and resumed: one code
    assert (tmp_path / "report" / "scores.png").stat().st_size > 1000
    assert "STS16 (dev)" in md and "STS12 (test)" in md
    assert "- dev/test overlap: none" in md and report["dev_test_overlap"]["pairs"] == []
    assert "- train/test overlap: none" in md and report["train_test_overlap"] == {"pairs": [], "why_acceptable": None,
                                                                           "unchecked": []}
    assert "`/" not in md and str(REPO) not in md and str(REPO) not in json.dumps(report)  # relative paths only
    # Dev/test rule: the choice saw dev scores only, and its runs never evaluated a test task.
    chosen = report["chosen"]
    assert chosen["key"] == "lr" and chosen["value"] in (1e-3, 3e-3)
    assert all(set(s) == {"STS16"} for s in chosen["dev_scores"])
    for i in range(2):
        run = json.loads((work / "evals" / f"choose{i}-bidir-seed0" / "run.json").read_text())
        assert set(run["tasks"]) == {"STS16"}
    better = max(range(2), key=lambda i: chosen["dev_scores"][i]["STS16"])
    assert chosen["value"] == chosen["values"][better]
    # The tuned arm's first seed at the chosen value is that choice run: its model is reused, not trained again.
    done = json.loads((work / "ablate.json").read_text())["done"]
    assert done["seed0/bidir/stage0"]["reused"] == f"seed0/bidir-choose{better}/stage0"
    assert done["seed0/bidir/stage0"]["final"] == done[f"seed0/bidir-choose{better}/stage0"]["final"]
    assert not (work / "seed0" / "bidir").exists() and "reused" not in done["seed1/bidir/stage0"]
    # The CI against the hand computation (same resampling scheme, written out with scipy on the raw files).
    for task in ("STS16", "STS12"):
        row = report["comparisons"]["linear"][task]
        delta, lo, hi = hand_ci(report, task, "linear")
        assert row["delta"] == pytest.approx(delta, abs=1e-9) and row["items"] == len(
            (SAMPLE / "en" / task / "test.jsonl").read_text().splitlines())
        assert (row["lo"], row["hi"]) == pytest.approx((lo, hi), abs=1e-9)
        assert row["verdict"] == ("improves" if lo > 0 else "hurts" if hi < 0 else "no effect shown")
        arm = report["arms"]["linear"]
        assert arm["mean"][task] == pytest.approx(np.mean(list(arm["scores"][task].values())), abs=1e-12)

    assert main(["ablate", str(config)]) == 0  # all done: nothing is trained or evaluated again
    log = capsys.readouterr().out
    assert "training" not in log and log.count("done earlier, skipped") == 4 + 2 + 4 + 2  # chains, evals

    # eval.dims added afterwards: every evaluation runs again at the dims (an evaluation recorded without them is not
    # done), nothing is trained, and the report compares the arms at dim 32 too, from that dim's per-item outputs.
    config.write_text(config.read_text().replace("[eval]\n", "[eval]\ndims = [32]\n"), encoding="utf-8")
    assert main(["ablate", str(config)]) == 0
    log = capsys.readouterr().out
    assert "training" not in log and log.count("done earlier, skipped") == 4 + 2  # chains only
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    for task in ("STS16", "STS12"):
        row = report["dims"]["32"]["comparisons"]["linear"][task]
        assert row["items"] > 0 and row["lo"] <= row["delta"] <= row["hi"]  # tested: the items reproduced the score
        assert row["delta"] != pytest.approx(report["comparisons"]["linear"][task]["delta"], abs=1e-6)
    assert "### dim 32" in (tmp_path / "report" / "report.md").read_text()


def one_arm_config(tmp: Path, stage: Path, name: str, top: str = "", eval_extra: str = "") -> Path:
    """tmp/ablation.toml: one arm "a" of ``stage``, one seed, dev STS16, test STS12 (``top`` and ``eval_extra``:
    more lines for the top table and for [eval])."""
    config = tmp / "ablation.toml"
    config.write_text(f"""name = "{name}"
out = "{tmp / "work"}"
seeds = [0]
reference = "a"
set = ["threads=1"]
{top}
[[stages]]
config = "{stage}"
[arms.a]
[eval]
dev = ["STS16"]
test = ["STS12"]
{eval_extra}
""", encoding="utf-8")  # fmt: skip
    return config


def one_step_stage(folder: Path, shared_data: Path) -> tuple[Path, list[str], Any, Path, Path]:
    """A one-step weak stage from a tiny Qwen2 `hf:` folder on 200 parallel pairs under ``folder``: (the pairs
    file, the source rows, the tokenizer, the hf folder, the stage config)."""
    data = folder / "pairs.jsonl"
    data.parent.mkdir(parents=True)
    rows = (shared_data / "train" / "parallel_en_zh" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    data.write_text("\n".join(rows[:200]) + "\n", encoding="utf-8")
    tok = train_bbpe([data], 400, ("query", "positive"), max_rows=200)
    hf, _ = make_qwen2_folder(folder.parent / "qwen2", tok, seed=0)
    stage = folder.parent / "weak.toml"
    stage.write_text(f"""stage = "weak"
data_root = "{folder}"
data = ["pairs.jsonl"]
init = "hf:{hf}"
max_length = 32
batch_size = 8
steps = 1
""", encoding="utf-8")  # fmt: skip
    return data, rows, tok, hf, stage


@pytest.mark.parametrize("replaced", ["data", "init"])
def test_ablate_refuses_a_unit_whose_data_or_init_files_changed(tmp_path: Path, shared_data: Path, capsys,
                                                                replaced: str) -> None:  # fmt: skip
    """A unit is recorded with the contents of its data files and its hf: init, not only their paths: edited
    under the same paths, the rerun is refused naming what changed (the ablation's other units hold the old
    contents too; they were reused before); the same bytes again are reused, nothing retrained."""
    data, rows, tok, hf, stage = one_step_stage(tmp_path / "data", shared_data)
    config = one_arm_config(tmp_path, stage, "inputs")

    def train() -> str:
        """Train the arm (evaluation plays no part in a unit's record); returns the log."""
        Ablation(load_ablation(config), config).train_arm("a", 0)
        return capsys.readouterr().out

    assert "[ablate] seed0/a/stage0: training" in train()
    state_file = tmp_path / "work" / "ablate.json"
    assert json.loads(state_file.read_text())["done"]["seed0/a/stage0"]["code"] == code_version()  # its code
    weights = tmp_path / "work" / "seed0" / "a" / "stage0" / "final" / "model.safetensors"
    trained = weights.stat().st_mtime_ns
    checkpoints = weights.parents[1] / "checkpoints"  # the resume state of a finished unit is dropped ...
    assert not checkpoints.exists()
    (checkpoints / "step_00000001").mkdir(parents=True)  # ... also when a kill came between record and drop
    assert "done earlier, skipped" in train() and weights.stat().st_mtime_ns == trained
    assert not checkpoints.exists()
    if replaced == "data":
        data.write_text("\n".join(rows[:150]) + "\n", encoding="utf-8")  # the data file edited in place
        with pytest.raises(UsageError, match=r"seed0/a/stage0 was trained from other contents of pairs.jsonl; every"):
            train()
        data.write_text("\n".join(rows[:200]) + "\n", encoding="utf-8")  # the recorded bytes again
    else:
        make_qwen2_folder(hf, tok, seed=1)  # other weights behind the same hf: folder
        with pytest.raises(UsageError, match=rf"seed0/a/stage0 was trained from other contents of init hf:{hf}; "):
            train()
        make_qwen2_folder(hf, tok, seed=0)
    assert "done earlier, skipped" in train() and weights.stat().st_mtime_ns == trained
    if replaced == "data":  # a unit recorded before inputs were hashed: kept with a warning, checked from then on
        state = json.loads(state_file.read_text())
        del state["done"]["seed0/a/stage0"]["inputs"], state["done"]["seed0/a/stage0"]["code"]
        state_file.write_text(json.dumps(state))
        log = train()
        assert "recorded before ablate hashed its training data" in log and "done earlier, skipped" in log
        unit = json.loads(state_file.read_text())["done"]["seed0/a/stage0"]
        assert "inputs" in unit and unit["code"] is None  # today's code is not stamped on an older unit
        data.write_text("\n".join(rows[:150]) + "\n", encoding="utf-8")
        with pytest.raises(UsageError, match="was trained from other contents"):
            train()
    assert weights.stat().st_mtime_ns == trained


@pytest.mark.parametrize(("change", "message"), [
    ({'dev = ["STS16"]': 'dev = ["STS61"]'}, "eval.dev: unknown task 'STS61'"),
    ({'reference = "a"\n': 'reference = "a"\ndata_dir = "no/such/dir"\n'},
     "data_dir: no/such/dir does not exist or is not a directory"),  # before stop 49 (audit): under eval.dev
    ({'test = ["STS12"]': 'test = ["STS12", "SciFakt"]'}, "eval.test: unknown task 'SciFakt'; did you mean: SciFact"),
    ({"[arms.a]\n": "[arms.a]\n[arms.b]\nset = [\"stepz=2\"]\n"},
     "arms.b.set: seed0/b/stage0 (STAGE): set: unknown weak config key(s) ['stepz']; did you mean: steps, eps?"),
    ({"[arms.a]\n": "[arms.a]\n[arms.b]\nset = [\"lr='fast'\"]\n"},
     "arms.b.set: seed0/b/stage0 (STAGE): set: config key 'lr' expects float, got 'fast'"),
    ({"[eval]\n": '[choose]\nkey = "lrr"\nvalues = [1e-3, 3e-3]\n[eval]\n'},
     "choose: seed0/a/stage0 (STAGE): set: unknown weak config key(s) ['lrr']; did you mean: lr?"),
    ({"[arms.a]\n": "[arms.a]\n[arms.b]\nset = [\"data=['nope']\"]\n"},  # before stop 53: no file, arm or key
     "arms.b.set: seed0/b/stage0 (STAGE): no training data file "),
    ({"[arms.a]\n": "[arms.a]\n[arms.b]\nset = [\"device='xpu'\"]\n"},  # no XPU in CI
     "arms.b.set: seed0/b/stage0 (STAGE): device 'xpu': no XPU device is available here"),
    ({"[arms.a]\n": "[arms.a]\n[arms.b]\nset = [\"freeze=['bogus']\"]\n"},  # before stop 54: when b trained
     "arms.b.set: seed0/b/stage0 (STAGE): freeze: 'bogus' names no parameter; top-level names are "),
    ({"[arms.a]\n": "[arms.a]\n[arms.b]\nset = [\"init_layers=9\"]\n"},
     "arms.b.set: seed0/b/stage0 (STAGE): init_layers=9 but init 'hf:"),
    ({"[arms.a]\n": "[arms.a]\n[arms.b]\nset = [\"batch_size=256\"]\n"},  # the pairs file holds 200 rows
     "arms.b.set: seed0/b/stage0 (STAGE): DATA: 200 training rows (after holdout=0) are fewer than one global "
     "batch of 256"),
    ({"[[stages]]\n": "[[base]]\nconfig = \"STAGE\"\nset = [\"init_layers=1\"]\n[[stages]]\n",
      "[arms.a]\n": "[arms.a]\n[arms.b]\nset = [\"init_layers=2\"]\n"},  # the base stage exports 1 block
     "arms.b.set: seed0/b/stage0 (STAGE): init_layers=2 but init "),
    ({"[[stages]]\n": "[[base]]\nconfig = \"STAGE\"\n[[stages]]\n", "[arms.a]\n": "[arms.a]\nset = [\"init='x'\"]\n"},
     "arms.a.set: seed0/a/stage0 (STAGE): set: init='x' would be replaced by the model the stages before it "
     "export"),  # before stop 53: silently replaced
    # before stop 60 (a walk): replaced by the unit's own, and the report named a choice that never happened
    ({"[arms.a]\n": "[arms.a]\n[arms.b]\nset = [\"seed=5\"]\n"},
     "arms.b.set: seed0/b/stage0 (STAGE): set: seed=5 would be replaced by the unit's seed (from `seeds`) (0), "
     "which the ablation sets on each unit after every override; drop it"),
    ({"[eval]\n": '[choose]\nkey = "seed"\nvalues = [1, 2]\n[eval]\n'},
     "choose: seed0/a/stage0 (STAGE): set: seed=1 would be replaced by the unit's seed (from `seeds`) (0)"),
    ({"[eval]\n": '[choose]\nkey = "output_dir"\nvalues = ["x", "y"]\n[eval]\n'},
     "choose: seed0/a/stage0 (STAGE): set: output_dir=\"x\" would be replaced by the unit's folder under `out` ("),
    ({'set = ["threads=1"]': 'set = ["threads=1", "output_dir=\'x\'"]'},
     "seed0/a/stage0 (STAGE): set: output_dir='x' would be replaced by the unit's folder under `out`"),
    # before stop 61 (stop 60's walk): trained, reusing the reference's models, then "Δ 0 by construction"
    ({"[arms.a]\n": "[arms.a]\n[arms.b]\n"},
     "arms.b: its stages resolve to the same configs as the reference arm 'a' (the keys that decide the weights, "
     "precision and hardware): it would reuse a's models"),
    ({"[arms.a]\n": "[arms.a]\n[arms.b]\nset = [\"batch_size=8\", \"threads=2\"]\n"},  # the stage's value; a
     "arms.b: its stages resolve to the same configs as the reference arm 'a' (the keys"),  # knob
    # before stop 67 (a walk): two arms of one config trained, their rows read as two results agreeing
    ({"[arms.a]\n": "[arms.a]\n[arms.b]\nset = [\"lr=5e-3\"]\n[arms.c]\nset = [\"lr=0.005\", \"threads=2\"]\n"},
     "arms.c: its stages resolve to the same configs as arm 'b' (the keys that decide the weights, precision and "
     "hardware): it would reuse b's models, and the two rows would read as two results agreeing"),
    ({"[arms.a]\n": "[arms.a]\n[arms.b]\nset = [\"lr=5e-3\"]\n",  # [choose] replaces the one difference
      "[eval]\n": '[choose]\nkey = "lr"\nvalues = [1e-3, 3e-3]\n[eval]\n'},
     "arms.b: its stages resolve to the same configs as the reference arm 'a' for every choose.values entry"),
])  # fmt: skip
def test_a_typo_that_training_would_reach_late_is_refused_before_any_unit_trains(
        tmp_path: Path, shared_data: Path, capsys, change: dict[str, str], message: str) -> None:  # fmt: skip
    """Before, task names were checked by the evaluation and an arm's overrides (or the [choose] key) when that
    arm trained: a typo in a test task or the last arm cost every unit before it (audit). Now the config is
    refused when the ablation opens, naming the file and the key, and nothing is written."""
    stage = one_step_stage(tmp_path / "data", shared_data)[-1]
    config = one_arm_config(tmp_path, stage, "typo")
    text = config.read_text(encoding="utf-8")
    for old, new in change.items():
        assert old in text
        text = text.replace(old, new.replace("STAGE", str(stage)), 1)
    config.write_text(text, encoding="utf-8")
    assert main(["ablate", str(config)]) == 2
    message = message.replace("STAGE", str(stage)).replace("DATA", str(tmp_path / "data" / "pairs.jsonl"))
    assert f"{config}: {message}" in capsys.readouterr().err
    assert not (tmp_path / "work").exists()


def test_a_known_task_with_no_data_here_is_refused_before_any_unit_trains(tmp_path: Path, capsys,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """ArguAna is an mteb task with no folder in the sample data: before stop 60 (a walk) the config opened and the
    first evaluation failed, after a unit had trained. Now refused by the decision `harness run` makes (no mirror,
    nothing prepared, the hub unreachable), naming the key, the task and why."""
    import datasets

    from harness import tasks

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "datasets")  # nothing prepared
    monkeypatch.setattr(tasks, "hub_reachable", lambda: False)
    config = one_arm_config(tmp_path, tmp_path / "weak.toml", "nodata", f'data_dir = "{SAMPLE}"')
    config.write_text(config.read_text(encoding="utf-8").replace('dev = ["STS16"]', 'dev = ["ArguAna"]'))
    assert main(["ablate", str(config)]) == 2
    assert (f"{config}: task(s) with no data to evaluate here: eval.dev: ArguAna: no local mirror and the hub is "
            "unreachable (mteb/arguana@") in capsys.readouterr().err
    assert not (tmp_path / "work").exists()


def test_the_evaluated_stage_as_written_is_not_prechecked_when_every_arm_overrides_it(tmp_path: Path,
                                                                                       shared_data: Path) -> None:
    """Review, stop 54: the stage file's batch (256 over 200 pairs) never trains when the arm sets its own: the
    ablation opens; a batch the arm does train with is still refused."""
    stage = one_step_stage(tmp_path / "data", shared_data)[-1]
    stage.write_text(stage.read_text(encoding="utf-8").replace("batch_size = 8", "batch_size = 256"))
    config = one_arm_config(tmp_path, stage, "asw")
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("[arms.a]\n", '[arms.a]\nset = ["batch_size=8"]\n'), encoding="utf-8")
    Ablation(load_ablation(config), config, measure_only=True)
    config.write_text(text, encoding="utf-8")
    with pytest.raises(UsageError, match="fewer than one global batch of 256"):
        Ablation(load_ablation(config), config, measure_only=True)


def test_evaluation_settings_hold_the_hardware_as_harness_run_keys_it(tmp_path: Path, shared_data: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Review, stop 54: `harness run` keys a GPU run by the GPU's model and a CPU run below float32 by the CPU's,
    but ablate, which skips `harness run` for a recorded evaluation, kept the first machine's scores on a resume on
    another (the lent GPUs are H100s or H200s). No GPU here: the resolved device and the GPU's name are set."""
    import harness.models

    stage = one_step_stage(tmp_path / "data", shared_data)[-1]
    config = one_arm_config(tmp_path, stage, "hw")
    ablation = Ablation(load_ablation(config), config)
    resolved = {"device": "cpu", "dtype": "float32"}
    monkeypatch.setattr(harness.models, "resolve_options",
                        lambda spec, opts: (ModelOptions(**{**opts.__dict__, **resolved}), "set"))  # fmt: skip
    assert "hardware" not in ablation.eval_settings(["STS16"])  # float32 on a CPU: every CPU gives its vectors
    resolved["dtype"] = "bfloat16"
    assert ablation.eval_settings(["STS16"])["hardware"] == sysinfo.cpu_kernels()
    resolved.update(device="cuda:0")
    monkeypatch.setattr(sysinfo, "accelerator_model", lambda device: f"NVIDIA H100 80GB HBM3 (sm_90) on {device}")
    assert ablation.eval_settings(["STS16"])["hardware"] == "NVIDIA H100 80GB HBM3 (sm_90) on cuda:0"


def test_a_recorded_evaluation_is_reused_only_under_the_same_eval_settings_and_task_files(
        tmp_path: Path, shared_data: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """Before: an evaluation unit was skipped whenever its model and tasks matched, so a rerun after editing
    [eval] max_length (or a task's files) rebuilt the report from scores computed under the old settings. Now the
    settings and each task's file hash are recorded with the unit and any change evaluates again."""
    data = tmp_path / "data"
    (data / "en").mkdir(parents=True)
    shutil.copytree(SAMPLE / "en" / "STS16", data / "en" / "STS16")
    shutil.copytree(SAMPLE / "en" / "STS12", data / "en" / "STS12")
    stage = one_step_stage(tmp_path / "train", shared_data)[-1]

    def evaluate(eval_extra: str = "") -> tuple[dict[str, float], str]:
        config = one_arm_config(tmp_path, stage, "evalkey", f'data_dir = "{data}"', eval_extra)
        ablation = Ablation(load_ablation(config), config)
        scores = ablation.evaluate(ablation.train_arm("a", 0), "a-seed0", ["STS16"])
        return scores, capsys.readouterr().out

    def recorded_max_length() -> int:
        run = json.loads((tmp_path / "work" / "evals" / "a-seed0" / "run.json").read_text(encoding="utf-8"))
        return run["tasks"]["STS16"]["identity"]["max_length"]

    first, _ = evaluate()
    assert "eval/a-seed0: done earlier, skipped" in evaluate()[1]
    state_file = tmp_path / "work" / "ablate.json"
    state = json.loads(state_file.read_text(encoding="utf-8"))
    del state["done"]["eval/a-seed0"]["settings"]["scoring"]  # recorded before stop 54: kept, not redone
    state_file.write_text(json.dumps(state), encoding="utf-8")
    log = evaluate()[1]
    assert "eval/a-seed0: recorded before ablate keyed the scorers' package versions" in log
    assert "eval/a-seed0: done earlier, skipped" in log
    short, log = evaluate("max_length = 4")
    assert "eval/a-seed0: recorded under other evaluation settings (max_length None → 4): evaluating again" in log
    assert recorded_max_length() == 4 and short != first  # 4 tokens: another score, taken from the new run
    assert "eval/a-seed0: done earlier, skipped" in evaluate("max_length = 4")[1]
    gold = data / "en" / "STS16" / "test.jsonl"
    rows = [json.loads(line) for line in gold.read_text(encoding="utf-8").splitlines()]
    for row in rows:  # the task's gold scores edited in place: reversed
        row["score"] = 5.0 - row["score"]
    gold.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    reversed_gold, log = evaluate("max_length = 4")
    assert "(data of STS16): evaluating again" in log
    assert reversed_gold["STS16"] == pytest.approx(-short["STS16"], abs=1e-9)  # Spearman against reversed gold
    older = {**sysinfo.scoring_packages(), "scikit-learn": "1.6.1"}  # a scorer upgrade (since stop 54, audit)
    monkeypatch.setattr(sysinfo, "scoring_packages", lambda: older)
    monkeypatch.setattr(identity, "scoring_packages", lambda: older)
    assert "(the scorers' package versions): evaluating again" in evaluate("max_length = 4")[1]
    run = json.loads((tmp_path / "work" / "evals" / "a-seed0" / "run.json").read_text(encoding="utf-8"))
    assert run["tasks"]["STS16"]["identity"]["scoring"]["scikit-learn"] == "1.6.1"
    # dims are viewed as raw prefixes since stop 35 (renormalised before): a unit recorded then is evaluated again
    config = one_arm_config(tmp_path, stage, "evalkey", f'data_dir = "{data}"', "dims = [8]")
    assert Ablation(load_ablation(config), config).eval_settings(["STS16"])["dim_view"] == "raw prefixes"
    # a type whose mirror layout changed (stop 48: Clustering, Reranking) keys its evaluations by it, as `harness
    # run` does (review: ablate kept the file hash alone, so it reused old evaluations of such mirrors)
    import harness.tasks

    monkeypatch.setitem(harness.tasks.MIRROR_LAYOUT, "STS", 2)
    settings = Ablation(load_ablation(config), config).eval_settings(["STS16"])
    assert settings["data"]["STS16"].startswith("sha256:") and settings["data"]["STS16"].endswith(" layout=2")


def test_an_evaluation_recorded_again_without_new_work_keeps_its_code_and_cost(tmp_path: Path, shared_data: Path,
                                                                               capsys) -> None:  # fmt: skip
    """A unit recorded under settings that differ in a key `harness run`'s own identity does not (here its dtype,
    removed from the record) is evaluated again, and `harness run` finds every task done. Before: the unit was
    re-recorded at today's commit with the seconds of that skip, so a report re-rendered from old runs said its
    scores came from code that never computed them, at ~1/10 of their cost. (A unit recorded before stop 47, whose
    settings lack the model folder's files, is redone whole: see the next test.)"""
    stage = one_step_stage(tmp_path / "train", shared_data)[-1]
    config = one_arm_config(tmp_path, stage, "keepcode", f'data_dir = "{SAMPLE}"', "")
    ablation = Ablation(load_ablation(config), config)
    final = ablation.train_arm("a", 0)
    first = ablation.evaluate(final, "a-seed0", ["STS16"])
    state_file = tmp_path / "work" / "ablate.json"
    state = json.loads(state_file.read_text(encoding="utf-8"))
    old = state["done"]["eval/a-seed0"]
    del old["settings"]["dtype"]
    old.update(code="0" * 40, seconds=123.4)
    state_file.write_text(json.dumps(state), encoding="utf-8")
    capsys.readouterr()
    rerun = Ablation(load_ablation(config), config)
    assert rerun.evaluate(final, "a-seed0", ["STS16"]) == first
    assert "evaluating again" in capsys.readouterr().out
    unit = json.loads(state_file.read_text(encoding="utf-8"))["done"]["eval/a-seed0"]
    assert (unit["code"], unit["seconds"]) == ("0" * 40, 123.4) and "settings" in unit


def test_a_unit_the_stages_before_it_now_start_from_another_model_is_refused(tmp_path: Path, shared_data: Path,
                                                                             capsys) -> None:  # fmt: skip
    """A [[shared]] (or [[base]]) stage added after units trained: the arm's unit was trained from its own init,
    and the chain now starts it from the shared stage's model. Before stop 53 it was "done earlier, skipped" (a
    chained unit's fingerprint leaves init out) and the report described a pipeline its models never went through;
    now it is refused, naming both starting models."""
    stage = one_step_stage(tmp_path / "data", shared_data)[-1]
    base = f'[[base]]\nconfig = "{stage}"\nset = ["steps=2"]'
    config = one_arm_config(tmp_path, stage, "chain", base)
    Ablation(load_ablation(config), config).train_arm("a", 0)
    config = one_arm_config(tmp_path, stage, "chain", f'{base}\n[[shared]]\nconfig = "{stage}"\nset = ["steps=3"]')
    with pytest.raises(UsageError, match=r"seed0/a/stage0 was trained from \S+/base/stage0/final; the stages before "
                                         r"it now start it from \S+/shared/stage0/final: use a fresh `out` folder"):
        Ablation(load_ablation(config), config).train_arm("a", 0)


def test_a_recorded_evaluation_its_run_directory_no_longer_holds_is_evaluated_again(
        tmp_path: Path, shared_data: Path, capsys) -> None:  # fmt: skip
    """The report reads the evaluation's run directory, not ablate.json. Before stop 53 a recorded unit was
    skipped on its record alone: a re-evaluation stopped half-way under other settings (then reverted) was
    reported as the recorded one, and a failed task or a deleted folder left a traceback on every rerun. Now the
    run directory must hold each task `ok` at the recorded score, else `harness run` redoes what differs."""
    stage = one_step_stage(tmp_path / "train", shared_data)[-1]
    config = one_arm_config(tmp_path, stage, "stale", f'data_dir = "{SAMPLE}"', "")

    def evaluate() -> tuple[dict[str, float], str]:
        ablation = Ablation(load_ablation(config), config)
        scores = ablation.evaluate(ablation.train_arm("a", 0), "a-seed0", ["STS16", "STS12"])
        return scores, capsys.readouterr().out

    first, _ = evaluate()
    run_json = tmp_path / "work" / "evals" / "a-seed0" / "run.json"
    record = json.loads(run_json.read_text(encoding="utf-8"))
    record["tasks"]["STS16"].update(status="failed", main_score=None)  # as a failed re-evaluation leaves it
    run_json.write_text(json.dumps(record), encoding="utf-8")
    again, log = evaluate()
    assert "eval/a-seed0: recorded, but its run directory no longer holds it (STS16 is failed): evaluating again" in log
    assert again == first and json.loads(run_json.read_text(encoding="utf-8"))["tasks"]["STS16"]["status"] == "ok"
    assert "eval/a-seed0: done earlier, skipped" in evaluate()[1]
    # a per-item file the report pairs, deleted (a walk, stop 65: before, "done earlier, skipped", and the rewritten
    # report's row read "not tested")
    (run_json.parent / "predictions" / "STS16_predictions.json").unlink()
    again, log = evaluate()
    assert "no longer holds it (STS16 lacks predictions/STS16_predictions.json): evaluating again" in log
    assert again == first and (run_json.parent / "predictions" / "STS16_predictions.json").is_file()
    # a score edited in run.json: before stop 65 "evaluating again" by a `harness run` that kept it as done, and
    # the edited score was then recorded as the unit's
    record = json.loads(run_json.read_text(encoding="utf-8"))
    record["tasks"]["STS16"]["main_score"] = 0.99
    run_json.write_text(json.dumps(record), encoding="utf-8")
    again, log = evaluate()
    assert f"(STS16 scores 0.99, not the recorded {first['STS16']}): evaluating again\n" in log
    # that task alone (before stop 66 every task of the evaluation, under overwrite)
    assert "STS16: evaluating again (its score in run.json is not the one its ablation recorded)" in log
    assert "STS12: done earlier, skipped" in log
    assert again == first and json.loads(run_json.read_text(encoding="utf-8"))["tasks"]["STS16"]["main_score"] == \
        first["STS16"]  # fmt: skip
    shutil.rmtree(run_json.parent)
    again, log = evaluate()
    assert "evaluating again" in log and again == first


def test_a_second_ablation_of_the_same_work_folder_is_refused(tmp_path: Path, shared_data: Path) -> None:
    """`harness ablate` holds <out>/.ablate.lock: two processes of one config (a requeued job beside the first)
    each read ablate.json once, trained every unit twice and kept the last writer's record (before stop 53)."""
    stage = one_step_stage(tmp_path / "data", shared_data)[-1]
    config = one_arm_config(tmp_path, stage, "lock")
    first = Ablation(load_ablation(config), config, lock=True)
    with pytest.raises(UsageError, match=r"out \S+work is in use: another `harness ablate` holds \S+\.ablate\.lock"):
        Ablation(load_ablation(config), config, lock=True)
    del first  # its lock goes with it
    Ablation(load_ablation(config), config, lock=True)


def test_memory_knobs_keep_finished_units_and_a_changed_key_is_named(tmp_path: Path, shared_data: Path,
                                                                     capsys) -> None:  # fmt: skip
    """Keys train itself lets a resume change (gradient_checkpointing, ...: the stage's resume_safe) are left out of
    a unit's fingerprint: before stop 53 turning one on refused every finished unit. A unit recorded under an older
    set is the same config and is kept (re-keyed). A key that does change what trains is refused, named with both
    values (before: two hashes); in the weak stage `micro_batch_size` is one, since a micro-batch's rows are each
    other's negatives (before stop 54, audit, an arm differing only in it got another arm's model)."""
    stage = one_step_stage(tmp_path / "data", shared_data)[-1]
    config = one_arm_config(tmp_path, stage, "keys")
    ablation = Ablation(load_ablation(config), config)
    ablation.train_arm("a", 0)
    state_file = tmp_path / "work" / "ablate.json"
    fp = json.loads(state_file.read_text(encoding="utf-8"))["done"]["seed0/a/stage0"]["fingerprint"]
    stage_cfg = ablation._resolve("seed0/a/stage0", ablation.cfg["stages"][0], [], 0, None)[1]
    for older in (OPERATIONAL, OPERATIONAL | RESUME_SAFE):  # as recorded before stop 53, and in stops 53-54
        state = json.loads(state_file.read_text(encoding="utf-8"))
        state["done"]["seed0/a/stage0"]["fingerprint"] = fingerprint(stage_cfg, False, older)
        state_file.write_text(json.dumps(state), encoding="utf-8")
        capsys.readouterr()
        Ablation(load_ablation(config), config).train_arm("a", 0)
        assert "seed0/a/stage0: done earlier, skipped" in capsys.readouterr().out
        assert json.loads(state_file.read_text(encoding="utf-8"))["done"]["seed0/a/stage0"]["fingerprint"] == fp
    text = config.read_text(encoding="utf-8")
    for knobs in ('"log_every=1"', '"gradient_checkpointing=true", "micro_batch_size=8"'):  # 8: the rows as before
        config.write_text(text.replace('set = ["threads=1"]', f'set = ["threads=1", {knobs}]'), encoding="utf-8")
        Ablation(load_ablation(config), config).train_arm("a", 0)
        assert "seed0/a/stage0: done earlier, skipped" in capsys.readouterr().out
    for knobs, change in (('"micro_batch_size=4"', "micro-batch rows 8 → 4"), ('"lr=0.002"', r"lr \S+ → 0\.002")):
        config.write_text(text.replace('set = ["threads=1"]', f'set = ["threads=1", {knobs}]'), encoding="utf-8")
        with pytest.raises(UsageError, match=rf"seed0/a/stage0 was trained with another config \({change}; "
                                             r"fingerprint \w+ != \w+\); give arms.a another name \(its units "
                                             r"train anew, the other arms' are kept\), or use a fresh `out` "
                                             r"folder"):  # fmt: skip
            Ablation(load_ablation(config), config).train_arm("a", 0)


def test_a_unit_trained_in_another_precision_is_refused(tmp_path: Path, shared_data: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """Each unit records the precision it trained in: resumed where training resolves another (a CPU with native
    bf16, a GPU, CONAN_CPU_BF16 set otherwise), the rerun is refused. Before stop 53 seed 0 in float32 and seed 1
    in bfloat16 went into one report without a word."""
    stage = one_step_stage(tmp_path / "data", shared_data)[-1]
    config = one_arm_config(tmp_path, stage, "compute")
    Ablation(load_ablation(config), config).train_arm("a", 0)  # the tests' CONAN_CPU_BF16=0 (conftest)
    state = json.loads((tmp_path / "work" / "ablate.json").read_text(encoding="utf-8"))
    assert state["done"]["seed0/a/stage0"]["compute"] == "float32 on cpu"
    from conan_model.device import cpu_bf16

    monkeypatch.setenv("CONAN_CPU_BF16", "1")  # as a rerun in another process would read it (decided once a process)
    cpu_bf16.cache_clear()
    try:
        with pytest.raises(UsageError, match=r"seed0/a/stage0 trained in float32 on cpu, and a stage here trains "
                                             r"in bfloat16 on cpu: the ablation's seeds and arms would mix"):
            Ablation(load_ablation(config), config).train_arm("a", 0)
    finally:
        monkeypatch.setenv("CONAN_CPU_BF16", "0")
        cpu_bf16.cache_clear()


def test_the_report_counts_only_the_units_its_config_walks(tmp_path: Path, shared_data: Path) -> None:
    """Units of a seed dropped from the config (or of a removed [choose]) stay in ablate.json, but the report's
    code versions, minutes and choice are this config's: before stop 53 they counted every recorded unit (a
    header of "units from 2 versions" and 20 minutes that belonged to no reported unit)."""
    stage = one_step_stage(tmp_path / "data", shared_data)[-1]
    config = one_arm_config(tmp_path, stage, "walk", f'data_dir = "{SAMPLE}"\nreport = "{tmp_path / "report"}"')
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace("seeds = [0]", "seeds = [0, 1]"), encoding="utf-8")
    assert main(["ablate", str(config)]) == 0
    state_file = tmp_path / "work" / "ablate.json"
    state = json.loads(state_file.read_text(encoding="utf-8"))
    for unit in ("seed1/a/stage0", "eval/a-seed1"):  # as if from an older commit, and slow
        state["done"][unit].update(code="0" * 40, seconds=600.0)
    state["chosen"] = {"key": "lr", "value": 0.1, "arm": "a", "seed": 0, "values": [0.1], "dev_scores": []}
    state_file.write_text(json.dumps(state), encoding="utf-8")
    config.write_text(text, encoding="utf-8")  # seeds [0], no [choose]
    assert main(["ablate", str(config)]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text(encoding="utf-8"))
    assert report["code"] == {code_version(): 2} and report["chosen"] is None
    assert report["out_from_report"] == "../work"  # the report folder's owner, from any working directory
    assert report["compute_minutes"]["train"] + report["compute_minutes"]["eval"] < 10
    assert set(json.loads(state_file.read_text(encoding="utf-8"))["done"]) >= {"seed1/a/stage0", "eval/a-seed1"}


def test_input_hashes_cover_a_tokenizer_file_and_a_local_pool_scorer(tmp_path: Path) -> None:
    """Besides data and init, a stage reads a tokenizer file and mines with a pool scorer: local ones are keyed
    by their bytes (a packaged name or bm25 is fixed and stays out)."""
    from conan_model.tokenizer import save_tokenizer, train_tokenizer_from_texts
    from train.config import WeakConfig
    from train.supervised_config import SupervisedConfig

    (tmp_path / "a.jsonl").write_text('{"query": "q", "positive": "p"}\n', encoding="utf-8")
    tok, scorer = tmp_path / "tok.json", tmp_path / "scorer"
    save_tokenizer(train_tokenizer_from_texts(["q p"] * 3, 300), tok)  # a real one: the config loads it (stop 49)
    scorer.mkdir()
    (scorer / "model.safetensors").write_bytes(b"one")
    weak = WeakConfig(data_root=str(tmp_path), data=["a.jsonl"], tokenizer=str(tok))
    tasks = {"qa": {"kind": "retrieval", "data": "a.jsonl"}}
    sup = SupervisedConfig(data_root=str(tmp_path), tasks=tasks, pool_scorer=f"conan:{scorer}")
    before = input_hashes(weak), input_hashes(sup)
    assert f"tokenizer {tok}" in before[0] and f"pool_scorer conan:{scorer}" in before[1]
    assert "pool_scorer bm25" not in input_hashes(SupervisedConfig(data_root=str(tmp_path), tasks=tasks))
    tok.write_text('{"v": 2}', encoding="utf-8")
    (scorer / "model.safetensors").write_bytes(b"two")
    after = input_hashes(weak), input_hashes(sup)
    assert before[0][f"tokenizer {tok}"] != after[0][f"tokenizer {tok}"]
    assert before[1][f"pool_scorer conan:{scorer}"] != after[1][f"pool_scorer conan:{scorer}"]
    tasks["qa"]["hard_negatives"] = 0  # no pools mined, so the scorer is read by nothing (before stop 66: hashed)
    assert not any(k.startswith("pool_scorer") for k in input_hashes(SupervisedConfig(
        data_root=str(tmp_path), tasks=tasks, pool_scorer=f"conan:{scorer}")))


def test_choose_refuses_test_scores_and_picks_the_best_dev_mean() -> None:
    assert choose_value([1, 2], [{"a": 0.1, "b": 0.5}, {"a": 0.4, "b": 0.3}], ["a", "b"]) == 2
    assert choose_value([1, 2], [{"a": 0.3}, {"a": 0.3}], ["a"]) == 1  # a tie keeps the first value
    with pytest.raises(UsageError, match="non-dev task"):
        choose_value([1, 2], [{"a": 0.1, "t": 0.9}, {"a": 0.2}], ["a"])


@pytest.mark.parametrize(("change", "message"), [
    ({"[eval]\ndev = [\"STS16\"]": "[eval]\ndev = [\"STS16\", \"STS12\"]"}, "in both dev and test"),
    # before stop 48 (audit): accepted, and [choose] weighed a task named twice twice in its dev mean
    ({"[eval]\ndev = [\"STS16\"]": "[eval]\ndev = [\"STS16\", \"STS16\"]"}, "eval.dev names STS16 more than once"),
    ({"[arms.linear]\n": "[arms.linear]\nstep = 3\n"}, "arms.linear: unknown key(s) ['step']"),
    # before stop 67 (a walk): the bare list of top-level keys, no word of where the key belongs
    ({"seeds = [0, 1]": "seed = [0, 1]"}, "unknown key(s) ['seed'] (expected ['arms', "),
    ({"seeds = [0, 1]": "seed = [0, 1]"}, "'stages']); seed: did you mean seeds?"),
    ({'reference = "bidir"': 'reference = "bidir"\nsteps = 5'},
     "; steps is a training key: set = [\"steps=…\"] sets it in every arm, arms.<arm>.set in one"),
    ({'reference = "bidir"': 'reference = "bidir"\nmax_length = 64'},
     "; max_length: [eval] max_length for the evaluation, set = [\"max_length=…\"] for training"),
    ({'reference = "bidir"': 'reference = "bidir"\ndev = ["STS16"]'}, "; dev belongs in [eval]"),
    ({'reference = "bidir"': 'reference = "causal"'}, "reference = 'causal' is not one of"),
    ({"seeds = [0, 1]": 'seeds = [0, "a"]'}, "seeds must be a list of distinct integers, got [0, 'a']"),
    ({"seeds = [0, 1]": "seeds = [0, -1]"}, "seeds must be in [0, 2**63) (train's `seed`), got -1"),
    ({"[eval]\ndev = [\"STS16\"]": "[eval]\ndev = \"STS16\""}, "eval.dev must be a list"),  # was read as S, T, ...
    ({"[eval]\ndev = [\"STS16\"]": "[eval]\ndims = [64, 0]\ndev = [\"STS16\"]"}, "eval.dims must be distinct positive"),
    ({"[eval]\ndev = [\"STS16\"]": "[eval]\ndims = \"64\"\ndev = [\"STS16\"]"}, "eval.dims must be a list"),
    # before stop 36 these three were refused at the first evaluation, after a unit had trained (audit)
    ({"[eval]\ndev = [\"STS16\"]": "[eval]\nmax_length = -1\ndev = [\"STS16\"]"},
     "eval.max_length must be a positive integer, got -1"),
    ({"[eval]\ndev = [\"STS16\"]": "[eval]\nbatch_size = 0\ndev = [\"STS16\"]"},
     "eval.batch_size must be a positive integer, got 0"),
    ({"[eval]\ndev = [\"STS16\"]": "[eval]\ndevice = \"tpu\"\ndev = [\"STS16\"]"},
     "eval.device = 'tpu': unknown device type 'tpu'"),
    # before stop 46 (audit): ignored (the units trained without the override), a KeyError once the unit came up,
    # or refused by numpy after every unit had trained (n_boot 0: every CI nan, "no effect shown", exit 0)
    ({"[[stages]]\nconfig": "[[stages]]\nsets = [\"steps=50\"]\nconfig"}, "stages[0]: unknown key(s) ['sets']"),
    ({"[[stages]]\nconfig": "[[stages]]\nconfg"}, "stages[0]: unknown key(s) ['confg'] (expected config, set)"),
    ({"[[stages]]\nconfig": "[[stages]]\nset = []\n[arms.x]\n[[stages]]\nconfig"},
     "stages[0]: needs config = \"<stage config file>\", got None"),
    ({"[arms.linear]\n": "[arms.linear]\nstages = \"x.toml\"\n"}, "arms.linear.stages must be a list of tables"),
    ({"[[stages]]\nconfig": "[[shared]]\nset = \"seed=1\"\nconfig = \"x.toml\"\n[[stages]]\nconfig"},
     "shared[0].set must be a list (e.g. [\"lr=1e-3\""),
    # a walk: train's "--set expects key=value", naming neither the `set` list at fault nor an option given
    ({"set = [\"mask_schedule='linear'\"]": "set = [\"lr\"]"}, "arms.linear.set expects key=value, got 'lr'"),
    ({"[[stages]]\nconfig": "[[stages]]\nset = [\"steps\"]\nconfig"}, "stages[0].set expects key=value, got 'steps'"),
    ({'set = ["threads=1"]': 'set = ["threads=1", "lr=[1e-3"]'}, ": set 'lr=[1e-3': the value is not valid TOML ("),
    # a walk: "'nope.toml' is neither a stage (…) nor a config file" beside the unit alone, naming no table
    ({'[[stages]]\nconfig = "': '[[stages]]\nconfig = "nope.toml"\n# "'}, "stages[0].config (seed0/bidir/stage0): "
     "'nope.toml': no such config file, and not a stage name (pretrain, mntp, weak, supervised) (looked up from the "
     "working directory"),
    ({"set = [\"mask_schedule='linear'\"]": "set = [\"mask_schedule='linear'\"]\nstages = [{config = \"no/pe.toml\"}]"},
     "arms.linear.stages[0].config (seed0/linear/stage0): 'no/pe.toml': no such config file"),
    # before stop 52: refused by the first evaluation, after a unit had trained (the tiny preset is 128 wide)
    ({"[eval]\ndev = [\"STS16\"]": "[eval]\ndims = [64, 128]\ndev = [\"STS16\"]"},
     "eval.dims (seed0/bidir/stage0): 128 is the model's full width, not an MRL dim"),
    ({"[eval]\ndev = [\"STS16\"]": "[eval]\ndims = [64]\ndev = [\"STS16\"]",
      "set = [\"mask_schedule='linear'\"]": "set = [\"mask_schedule='linear'\", \"model_overrides.hidden_size=64\"]"},
     "eval.dims (seed0/linear/stage0, arms.linear.set): 64 is the model's full width"),
    # before stop 52 (audit): an arm trained outside `out`, or over the shared stages' folder
    ({"[arms.linear]": '[arms."../../escaped"]'}, "arms.../../escaped: an arm's name is a folder name of letters"),
    ({"[arms.linear]": "[arms.shared]"}, "arms.shared: an arm's name is a folder name of letters, digits and '_' "
     "(and not `shared`"),
    # before stop 60 (a walk): read as the reason "False", and the overlap was accepted
    ({"[eval]\ndev = [\"STS16\"]": "[eval]\noverlap_ok = false\ndev = [\"STS16\"]"},
     "eval.overlap_ok must be a reason string (why the overlap is acceptable, e.g. "),
    ({"[eval]\ndev = [\"STS16\"]": "[eval]\ntrain_overlap_ok = 1\ndev = [\"STS16\"]"},
     "eval.train_overlap_ok must be a reason string"),
    # before stop 60 (a walk): tracebacks (TypeError, AttributeError, AssertionError), `eval = [...]` "unknown
    # key(s)", and a string where a list belongs read letter by letter; a number taken as the name or scale
    ({'reference = "bidir"': 'reference = ["bidir"]'}, "reference must be a non-empty string, got ['bidir']"),
    ({'name = "tiny"': 'name = 5'}, "name must be a non-empty string, got 5"),
    ({'scale = "test: 6 steps"': 'scale = 6'}, "scale must be a non-empty string, got 6"),
    ({'out = "': 'out = ["x"]  # "'}, "out must be a non-empty string, got ['x']"),
    ({'reference = "bidir"': 'reference = "bidir"\narms = "bidir"',
      "[arms.bidir]\nset = [\"mask_schedule='bidirectional'\"]\n": "",
      "[arms.linear]\nset = [\"mask_schedule='linear'\"]\n": ""},
     "arms must be a table ([arms.<name>] with optional set = [...]), got 'bidir'"),
    ({"[arms.linear]\nset = [\"mask_schedule='linear'\"]": "[arms]\nlinear = 3"},
     "arms.linear must be a table ([arms.linear] with optional set = [...] and stages), got 3"),
    ({"[arms.linear]\nset = [\"mask_schedule='linear'\"]": "[arms.linear]\nset = \"mask_schedule='linear'\""},
     "arms.linear.set must be a list (e.g. [\"lr=1e-3\", \"mask_schedule='linear'\"]), got \"mask_schedule='linear'\""),
    ({'reference = "bidir"': 'reference = "bidir"\neval = ["STS12"]',
      '[eval]\ndev = ["STS16"]\ntest = ["STS12"]\n': ""},
     "eval must be a table ([eval] with dev = [...] and test = [...]), got ['STS12']"),
    ({'scale = "test: 6 steps"': "", '[[stages]]\nconfig = "': 'stages = []\nscale = "'},
     "stages names no stage and there is no [[base]] or [[shared]] stage: arm bidir would train no model"),
    ({"[arms.linear]\nset = [\"mask_schedule='linear'\"]": "[arms.linear]\nset = [\"mask_schedule='linear'\"]\n"
      "stages = []"}, "arms.linear.stages names no stage and there is no [[base]] or [[shared]] stage"),
    ({"values = [1e-3, 3e-3]": 'values = [1e-3, 3e-3]\narm = ["linear"]'}, "choose.arm = ['linear'] is not one of"),
    ({"values = [1e-3, 3e-3]": 'values = "13"'}, "choose.values must be a list of at least two values (e.g. "
     "[1e-3, 3e-4]), got '13'"),
    ({"values = [1e-3, 3e-3]": 'values = {a = 1, b = 2}'}, "choose.values must be a list of at least two values"),
    ({"values = [1e-3, 3e-3]": 'values = [1e-3, 3e-3, 1e-3]'}, "choose.values names 0.001 more than once"),
    ({'key = "lr"': 'key = 5'}, "choose needs `key` (a stage config key) and at least two `values`"),
    ({'n_boot = 200': 'n_boot = 0'}, "n_boot must be an integer of at least 10, got 0"),
    ({'n_boot = 200': 'n_boot = 2.7'}, "n_boot must be an integer of at least 10, got 2.7"),
    ({'n_boot = 200': 'n_boot = 200\nbootstrap_seed = -1'}, "bootstrap_seed must be an integer of at least 0, got -1"),
])  # fmt: skip
def test_bad_configs_exit_2_naming_file_and_key(tmp_path: Path, shared_data: Path, capsys, change, message) -> None:
    config = write_configs(tmp_path, shared_data)
    text = config.read_text()
    for old, new in change.items():
        assert old in text
        text = text.replace(old, new)
    config.write_text(text)
    assert main(["ablate", str(config)]) == 2
    err = capsys.readouterr().err
    assert message in err and str(config) in err


def test_check_runs_the_opening_checks_and_writes_nothing(tmp_path: Path, shared_data: Path, capsys) -> None:
    """A walk (stop 67): the checks made when an ablation opens ran only with the real command, which trained at once
    if they passed. `--check` runs them (a config refused here is refused alike) and writes nothing."""
    config = write_configs(tmp_path, shared_data)
    assert main(["ablate", str(config), "--check"]) == 0
    out = capsys.readouterr().out
    assert (f"{config}: the config passes every check made before training: 2 arm(s) (bidir, linear; reference "
            f"bidir) × 2 seed(s) [0, 1]; dev STS16; test STS12; out {tmp_path / 'work'}. Nothing was trained or "
            "written") in out  # fmt: skip
    assert not (tmp_path / "work").exists() and not (tmp_path / "report").exists()
    text = config.read_text(encoding="utf-8")
    config.write_text(text.replace('test = ["STS12"]', 'test = ["STS12", "STS16"]'), encoding="utf-8")
    assert main(["ablate", str(config), "--check"]) == 2
    assert "eval: task(s) ['STS16'] are in both dev and test" in capsys.readouterr().err
    config.write_text(text.replace("[eval]\n", "[arms.linear2]\nset = [\"mask_schedule='linear'\"]\n[eval]\n"),
                      encoding="utf-8")  # fmt: skip
    assert main(["ablate", str(config), "--check"]) == 2  # a twin of another arm: found by the stage checks
    assert "arms.linear2: its stages resolve to the same configs as arm 'linear'" in capsys.readouterr().err
    assert main(["ablate", str(config), "--check", "--plan"]) == 2
    assert "--check and --plan: give one" in capsys.readouterr().err
    assert not (tmp_path / "work").exists()


def test_no_top_level_stages_is_accepted_when_every_arm_has_its_own(tmp_path: Path, shared_data: Path) -> None:
    """Review of stop 60: the first check refused `stages = []` whatever the arms; an arm's own stages replace the
    top-level ones, so a config whose every arm names its stages trains every arm."""
    from harness.ablate_config import load_ablation

    config = write_configs(tmp_path, shared_data)
    text = config.read_text()
    stage = f'stages = [{{config = "{tmp_path / "weak.toml"}"}}]'
    text = text.replace(f'[[stages]]\nconfig = "{tmp_path / "weak.toml"}"\n', "")
    text = text.replace('scale = "test: 6 steps"', 'scale = "test: 6 steps"\nstages = []')
    for arm in ("bidir", "linear"):
        text = text.replace(f"[arms.{arm}]\n", f"[arms.{arm}]\n{stage}\n")
    config.write_text(text)
    loaded = load_ablation(config)
    assert loaded["stages"] == [] and all(len(arm["stages"]) == 1 for arm in loaded["arms"].values())


def test_eval_device_auto_is_leaving_it_out(tmp_path: Path, shared_data: Path) -> None:
    """Before stop 62 (a walk): `eval.device = "auto"` was "unknown device type 'auto'", while `harness run
    --device auto` and training's `device = "auto"` take it as the best available."""
    from harness.ablate_config import load_ablation

    config = write_configs(tmp_path, shared_data)
    config.write_text(config.read_text().replace('[eval]\ndev = ["STS16"]', '[eval]\ndevice = "auto"\ndev = ["STS16"]'))
    assert "device" not in load_ablation(config)["eval"]


@pytest.mark.parametrize("held", [{"tasks": {}}, [1, 2]])
def test_plan_of_a_json_that_is_not_an_ablation_report_is_refused(tmp_path: Path, capsys, held: Any) -> None:
    """Before stop 60 (a walk): a KeyError traceback ('comparisons', or a list's indices) instead of a reason."""
    source = tmp_path / "run.json"
    source.write_text(json.dumps(held), encoding="utf-8")
    assert main(["ablate", str(source), "--plan"]) == 2
    assert f"{source}: not a report of `harness ablate` (its report.json)" in capsys.readouterr().err


def test_dev_and_test_tasks_sharing_texts_are_refused_unless_the_config_says_why(tmp_path: Path, shared_data: Path,
                                                                                  capsys) -> None:  # fmt: skip
    """Before: only task names were compared, so softmask_lr chose its lr on STS16, which holds 285 of
    STSBenchmark's test pairs, and clr_lr on XQuAD de, the XQuAD test tasks' documents and questions in German."""
    config = write_configs(tmp_path, shared_data)
    text = config.read_text().replace('test = ["STS12"]', 'test = ["STSBenchmark"]')  # the sample: 2 shared texts
    config.write_text(text)
    assert main(["ablate", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"{config}: eval: dev and test tasks share texts (STS16 and STSBenchmark: 2 of the test task's" in err
    assert "eval.overlap_ok" in err and not (tmp_path / "work" / "ablate.json").exists()
    for refused in ("false", '" "'):  # before stop 60 `false` was the reason "False", and the overlap accepted
        config.write_text(text.replace('test = ["STSBenchmark"]', f'test = ["STSBenchmark"]\noverlap_ok = {refused}'))
        assert main(["ablate", str(config)]) == 2
        assert f"{config}: eval.overlap_ok must be a reason string" in capsys.readouterr().err
    config.write_text(text.replace('test = ["STSBenchmark"]', 'test = ["STSBenchmark"]\noverlap_ok = "a reason"'))
    ablation = Ablation(load_ablation(config), config)  # accepted, and the report will show it
    assert ablation.overlap == [{"dev": "STS16", "test": "STSBenchmark", "shared": 2, "test_texts": 109}]


def test_code_version_is_dirty_for_code_edits_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A report rewritten beside a running ablation is no other code (before: every later unit said +dirty)."""
    import subprocess

    from harness import sysinfo

    repo = tmp_path / "repo"
    (repo / "harness").mkdir(parents=True)
    (repo / "harness" / "__init__.py").write_text("")
    (repo / "report.md").write_text("a\n")
    git = ["git", "-C", str(repo), "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "x"], check=True)
    sha = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    monkeypatch.setattr(sysinfo, "harness", type("M", (), {"__file__": str(repo / "harness" / "__init__.py")}))
    (repo / "report.md").write_text("b\n")
    assert sysinfo.code_version() == sha
    (repo / "harness" / "__init__.py").write_text("x = 1\n")
    assert sysinfo.code_version() == sha + "+dirty"


def test_every_shipped_ablation_resolves_and_its_report_is_committed(shared_data: Path, monkeypatch) -> None:
    """Each configs/ablations/*.toml (the `*_stage.toml` files are its stages) loads; every stage of every arm, with
    the arm's overrides, is a valid stage config; its tasks are in ../shared/data; its MRL dims lie below the width
    it trains; and the report the docs quote is committed under its name, from these tasks and one code version."""
    from harness.data import discover_tasks
    from train.cli import resolve

    monkeypatch.chdir(REPO)
    local = discover_tasks(shared_data)
    configs = sorted(p for p in (REPO / "configs" / "ablations").glob("*.toml") if not p.stem.endswith("_stage"))
    assert {"softmask", "dhnm", "clr", "mrl", "mrl_lr", "mrl_decoder"} <= {p.stem for p in configs}
    for path in configs:
        cfg = load_ablation(path.relative_to(REPO))
        assert all(t in local for t in cfg["eval"]["dev"] + cfg["eval"]["test"]), path.name
        for arm in cfg["arms"].values():
            chain = [*cfg.get("base", []), *cfg.get("shared", []), *(arm or {}).get("stages", cfg["stages"])]
            for i, stage in enumerate(chain):
                last = i == len(chain) - 1
                sets = [*cfg.get("set", []), *stage.get("set", []), *((arm or {}).get("set", []) if last else [])]
                _, stage_cfg = resolve(stage["config"], None, sets)  # raises naming an unknown key or a bad value
                if last and stage_cfg.stage == "supervised" and cfg["eval"].get("dims"):
                    assert stage_cfg.mrl_dims in ("none", "auto"), path.name
        report = json.loads((REPO / "reports" / "ablations" / cfg["name"] / "report.json").read_text())
        assert report["test"] == cfg["eval"]["test"] and len(report.get("code") or [None]) == 1, path.name  # (older
        # reports predate the code field)


@pytest.mark.parametrize(("name", "dims", "message"), [
    ("mrl", "[24, 384]", "eval.dims (seed0/off/stage0): 384 is the model's full width"),  # multilingual-e5-small
    ("mrl_decoder", "[40, 600]", "eval.dims (seed0/off/stage0): 600 is larger than the model's embedding dimension "
     "576"),  # SmolLM2's width, carried from the shared weak stage to the chained supervised one
])  # fmt: skip
def test_eval_dims_are_checked_against_the_width_an_init_gives_before_anything_trains(
        tmp_path: Path, shared_data: Path, e5_small: Path, smollm2: Path, monkeypatch, name: str, dims: str,
        message: str) -> None:  # fmt: skip
    """The width comes from the init's config.json (no weights read), through a chain of stages; the shipped dims
    lie below it."""
    monkeypatch.chdir(REPO)
    shipped = REPO / "configs" / "ablations" / f"{name}.toml"
    Ablation(load_ablation(shipped.relative_to(REPO)), shipped.relative_to(REPO), measure_only=True)
    text = re.sub(r"(?m)^dims = \[.*\]$", f"dims = {dims}", shipped.read_text(encoding="utf-8"))
    text = re.sub(r'(?m)^out = ".*"$', f'out = "{tmp_path / "work"}"', text)
    config = tmp_path / f"{name}.toml"
    config.write_text(text, encoding="utf-8")
    with pytest.raises(UsageError, match=re.escape(f"{config}: {message}")):
        Ablation(load_ablation(config), config)
    assert not (tmp_path / "work").exists()


def test_a_recorded_evaluation_is_not_reused_for_other_weights_or_another_device(
        tmp_path: Path, shared_data: Path, capsys) -> None:  # fmt: skip
    """Before (audit, stop 47): a recorded evaluation was reused when the model folder's *path* and [eval]'s
    settings matched, [eval] device unset being None on every machine. A unit retrained into the same folder kept
    the old weights' scores, and a resume on a GPU kept the CPU's float32 scores beside the GPU's bfloat16 ones.
    Now the folder's files and the device and dtype the evaluation resolves to are keyed."""
    data = tmp_path / "data"
    (data / "en").mkdir(parents=True)
    for task in ("STS16", "STS12"):  # the config's dev and test tasks: each must have data (since stop 60)
        shutil.copytree(SAMPLE / "en" / task, data / "en" / task)
    stage = one_step_stage(tmp_path / "train", shared_data)[-1]
    config = one_arm_config(tmp_path, stage, "evalkey", f'data_dir = "{data}"')
    ablation = Ablation(load_ablation(config), config)
    final = ablation.train_arm("a", 0)
    settings = ablation.eval_settings(["STS16"], final)
    assert (settings["device"], settings["dtype"]) == ("cpu", resolve_options("conan:x", ModelOptions())[0].dtype)
    first = ablation.evaluate(final, "a-seed0", ["STS16"])
    capsys.readouterr()
    ablation.evaluate(final, "a-seed0", ["STS16"])
    assert "eval/a-seed0: done earlier, skipped" in capsys.readouterr().out
    cfg = json.loads((Path(final) / "config.json").read_text(encoding="utf-8"))
    cfg["prompts"] = {"default": "x: "}  # other vectors from the same folder path
    (Path(final) / "config.json").write_text(json.dumps(cfg), encoding="utf-8")
    again = ablation.evaluate(final, "a-seed0", ["STS16"])
    assert ("eval/a-seed0: recorded under other evaluation settings (the model folder's files): evaluating again"
            in capsys.readouterr().out)
    assert again != first
    state_file = tmp_path / "work" / "ablate.json"
    state = json.loads(state_file.read_text(encoding="utf-8"))
    del state["done"]["eval/a-seed0"]["settings"]["model_files"]  # recorded before stop 47: redone whole, once
    state_file.write_text(json.dumps(state), encoding="utf-8")
    efficiency = tmp_path / "work" / "evals" / "a-seed0" / "efficiency.json"
    timings = efficiency.read_bytes()
    assert Ablation(load_ablation(config), config).evaluate(final, "a-seed0", ["STS16"]) == again
    assert efficiency.read_bytes() != timings  # evaluated again: new timings (a skip keeps the file)


def test_ablate_under_torchrun_is_refused_saying_how_to_run_it(tmp_path: Path, shared_data: Path, monkeypatch,
                                                              capsys) -> None:  # fmt: skip
    """Before stop 61 every torchrun rank ran the whole ablation (as the pipeline did): refused before the config is
    read or anything made, as `harness pipeline` is (harness.distributed.refuse_torchrun)."""
    config = write_configs(tmp_path, shared_data)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert main(["ablate", str(config)]) == 2
    assert ("harness: error: harness ablate runs in one process, not under torchrun (2 processes): every rank would "
            "run its steps and write ablate.json" in capsys.readouterr().err)  # fmt: skip
    assert not (tmp_path / "work").exists()


@pytest.mark.parametrize(("arms", "message"), [
    ("[arms.a]\nstages = []\n[arms.ft]\n", None),  # the reference evaluates the shared model, ft trains on: opens
    ("[arms.a]\nstages = []\n[arms.b]\nstages = []\n",  # both evaluate the shared model
     "arms.b: its stages resolve to the same configs as the reference arm 'a'"),
    ("[arms.a]\nstages = []\n[arms.b]\nstages = []\nset = [\"lr=1e-3\"]\n",  # a set with no stage to apply to
     "arms.b.set applies to the arm's last stage, and it has none (stages = []"),
])  # fmt: skip
def test_arms_without_stages_of_their_own_evaluate_the_shared_model(
        tmp_path: Path, shared_data: Path, arms: str, message: str | None) -> None:  # fmt: skip
    """Review of stop 61: a reference arm with `stages = []` (the shared model evaluated as it is) was a KeyError
    in the twin check, and two such arms were not found twins; an arm's `set` with no stage of its own to reach
    was ignored without a word."""
    stage = one_step_stage(tmp_path / "data", shared_data)[-1]
    config = one_arm_config(tmp_path, stage, "empty", f'[[shared]]\nconfig = "{stage}"\nset = ["steps=1"]')
    config.write_text(config.read_text(encoding="utf-8").replace("[arms.a]\n", arms), encoding="utf-8")
    if message is None:
        Ablation(load_ablation(config), config, measure_only=True)
    else:
        with pytest.raises(UsageError, match=re.escape(message)):
            Ablation(load_ablation(config), config, measure_only=True)


def test_a_failed_evaluation_task_fails_the_ablation_after_every_unit_ran(tmp_path: Path, shared_data: Path,
                                                                        capsys) -> None:  # fmt: skip
    """A test task whose score is undefined (STS12 with one gold score for every row: mteb's Spearman is NaN)
    stopped the ablation with exit 2, "unusable input", at the first seed's evaluation, the second seed neither
    trained nor evaluated (before stop 65). Now every unit runs, the run fails with exit 1 naming each evaluation,
    its task and why, no report is written, and once the data is fixed the same command carries on."""
    data = tmp_path / "tasks"
    shutil.copytree(SAMPLE, data)
    sts12 = data / "en" / "STS12" / "test.jsonl"
    good = sts12.read_text(encoding="utf-8")
    rows = [json.loads(line) for line in good.splitlines()]
    sts12.write_text("".join(json.dumps({**row, "score": 2.5}) + "\n" for row in rows), encoding="utf-8")
    stage = one_step_stage(tmp_path / "train", shared_data)[-1]
    config = one_arm_config(tmp_path, stage, "failing", f'data_dir = "{data}"\nreport = "{tmp_path / "report"}"')
    config.write_text(config.read_text(encoding="utf-8").replace("seeds = [0]", "seeds = [0, 1]"), encoding="utf-8")
    assert main(["ablate", str(config)]) == 1
    out, err = capsys.readouterr()
    for seed in (0, 1):
        assert f"eval/a-seed{seed}: failed: evaluation a-seed{seed}" in out
        assert f"evaluation a-seed{seed} ({tmp_path / 'work' / 'evals' / f'a-seed{seed}'}): STS12: status failed" in err
    assert "no report: 2 evaluation(s) left tasks without a score" in err and "all 41 rows have score 2.5" in err
    assert not (tmp_path / "report").exists()
    sts12.write_text(good, encoding="utf-8")
    assert main(["ablate", str(config)]) == 0
    out = capsys.readouterr().out  # the trained models are kept
    assert "seed0/a/stage0: done earlier, skipped" in out and "seed1/a/stage0: done earlier, skipped" in out
    assert (tmp_path / "report" / "report.md").is_file()


def test_a_failed_choose_evaluation_stops_after_every_value_ran(tmp_path: Path, shared_data: Path, capsys) -> None:
    """A [choose] dev evaluation without a score (STS16 with one gold score: its Spearman is undefined): before the
    review of stop 65 the first failure stopped the ablation, the other values neither trained nor evaluated. Now
    every value runs, then exit 1 names each failed evaluation; no arm trains on a choice made without them."""
    data = tmp_path / "tasks"
    shutil.copytree(SAMPLE, data)
    sts16 = data / "en" / "STS16" / "test.jsonl"
    rows = [json.loads(line) for line in sts16.read_text(encoding="utf-8").splitlines()]
    sts16.write_text("".join(json.dumps({**row, "score": 2.5}) + "\n" for row in rows), encoding="utf-8")
    stage = one_step_stage(tmp_path / "train", shared_data)[-1]
    config = one_arm_config(tmp_path, stage, "choosing", f'data_dir = "{data}"\nreport = "{tmp_path / "report"}"')
    config.write_text(config.read_text(encoding="utf-8") + '[choose]\nkey = "lr"\nvalues = [1e-3, 3e-3]\n',
                      encoding="utf-8")  # fmt: skip
    assert main(["ablate", str(config)]) == 1
    out, err = capsys.readouterr()
    assert "eval/choose0-a-seed0: failed" in out and "eval/choose1-a-seed0: failed" in out
    assert "no choice of lr: 2 evaluation(s) left tasks without a score" in err and "STS16: status failed" in err
    assert "seed0/a/stage0" not in out and not (tmp_path / "report").exists()  # no arm trained on no choice
