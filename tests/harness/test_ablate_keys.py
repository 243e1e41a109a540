"""What a training unit of `harness ablate` is keyed by beyond its config and data (audit, stop 55): the hardware
whose kernels round its weights, the files of the model a chained stage started from; the code a reused model and
the report name; every module imported when the ablation opens. Real one-step units from a tiny `hf:` folder."""

from __future__ import annotations

import json
import pkgutil
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file
from test_ablate import SAMPLE, one_arm_config, one_step_stage

from harness import ablate, sysinfo
from harness.ablate import PROJECT_PACKAGES, Ablation
from harness.ablate_config import load_ablation
from harness.ablate_keys import changed_config, training_hardware
from harness.cli import main
from harness.errors import UsageError
from harness.sysinfo import code_version

TWO_ARMS = '[arms.b]\nset = ["lr=0.0002"]\n'  # b trains other weights than a
SHARED = '[[shared]]\nconfig = "{stage}"\nset = ["steps=2"]'


def shared_config(tmp_path: Path, shared_data: Path) -> tuple[Path, Path]:
    """A [[shared]] one-step stage chained into arm a: (config, the shared unit's final folder)."""
    stage = one_step_stage(tmp_path / "data", shared_data)[-1]
    config = one_arm_config(tmp_path, stage, "keys", SHARED.format(stage=stage))
    return config, tmp_path / "work" / "seed0" / "shared" / "stage0" / "final"


def perturb(final: Path) -> None:
    """Other weights in a model folder, as a stage trained again under the same path on other code or a GPU gives."""
    weights = final / "model.safetensors"
    tensors = load_file(weights)
    name = next(iter(tensors))
    tensors[name] = tensors[name] + 1e-3
    save_file(tensors, weights, metadata={"format": "pt"})


def state(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "work" / "ablate.json").read_text(encoding="utf-8"))


def test_the_recorded_world_size_makes_no_unit_look_changed(tmp_path: Path) -> None:
    """train_config.json records the run's world_size since stop 61 (and since stop 66 final/'s `world_sizes`, where
    resumes changed it); the config has no such key, so a unit's record with them (or without, from before) shows
    no change to `harness ablate`."""
    from train.config import PretrainConfig
    from train.distributed import Runtime
    from train.loop import recorded_config

    cfg = PretrainConfig(data=["x"], output_dir=str(tmp_path / "unit"))
    final = tmp_path / "final"
    final.mkdir()
    spans = [{"from_step": 1, "to_step": 2, "world_size": 2}, {"from_step": 3, "to_step": 4, "world_size": 1}]
    mixed = recorded_config(cfg, Runtime(0, 1, 0, None), spans)
    assert (mixed["world_size"], mixed["world_sizes"]) == (1, spans)
    for record in (recorded_config(cfg, Runtime(0, 2, 0, None)), mixed, cfg.to_dict()):
        (final / "train_config.json").write_text(json.dumps(record))
        assert changed_config(str(final), cfg, chained=False) == ""
    (final / "train_config.json").write_text(json.dumps({**cfg.to_dict(), "lr": 0.5}))
    assert changed_config(str(final), cfg, chained=False).startswith("lr 0.5 → ")


def test_training_hardware_is_the_rule_evaluations_are_keyed_by(monkeypatch: pytest.MonkeyPatch) -> None:
    """None for float32 on a CPU (the tests' CONAN_CPU_BF16=0); a CPU's bf16 kernels below it, as `harness run`."""
    from conan_model.device import cpu_bf16

    cfg = type("Stage", (), {"device": "cpu"})()
    assert training_hardware(cfg) is None
    monkeypatch.setenv("CONAN_CPU_BF16", "1")
    cpu_bf16.cache_clear()
    try:
        assert training_hardware(cfg) == sysinfo.cpu_kernels()
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # oneDNN's AVX2 kernels round bf16 weights otherwise
        assert training_hardware(cfg) == sysinfo.cpu_kernels() and "ONEDNN_MAX_CPU_ISA=AVX2" in training_hardware(cfg)
    finally:
        monkeypatch.setenv("CONAN_CPU_BF16", "0")
        cpu_bf16.cache_clear()


def test_a_unit_trained_on_other_hardware_is_refused_and_an_older_record_is_keyed_from_now_on(
        tmp_path: Path, shared_data: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """Before stop 55 a training unit said `bfloat16 on cpu` alone: resumed under oneDNN's AVX2 cap (or on another
    GPU model) its evaluations were redone but its finished seeds kept, and later seeds trained on other kernels
    (up to 1e-2 apart in every tensor after 6 steps), without a word."""
    stage = one_step_stage(tmp_path / "data", shared_data)[-1]
    config = one_arm_config(tmp_path, stage, "hw")
    Ablation(load_ablation(config), config).train_arm("a", 0)
    unit = state(tmp_path)["done"]["seed0/a/stage0"]
    assert unit["hardware"] is None and unit["packages"]["torch"] == sysinfo.package_versions()["torch"]
    monkeypatch.setattr(ablate, "training_hardware", lambda cfg: "NVIDIA H100 80GB HBM3 (sm_90)")
    with pytest.raises(UsageError, match=r"seed0/a/stage0 trained on float32 on cpu, and a stage here trains on "
                                         r"float32 on cpu \(NVIDIA H100 80GB HBM3 \(sm_90\)\), whose kernels round"):
        Ablation(load_ablation(config), config).train_arm("a", 0)
    monkeypatch.undo()
    recorded = state(tmp_path)  # as recorded before stop 55: no hardware, no packages
    for key in ("hardware", "packages"):
        del recorded["done"]["seed0/a/stage0"][key]
    (tmp_path / "work" / "ablate.json").write_text(json.dumps(recorded), encoding="utf-8")
    capsys.readouterr()
    Ablation(load_ablation(config), config).train_arm("a", 0)
    log = capsys.readouterr().out
    assert "recorded before ablate keyed the hardware whose kernels round its weights: today's are taken" in log
    assert "done earlier, skipped" in log and "hardware" in state(tmp_path)["done"]["seed0/a/stage0"]


def test_a_chained_unit_is_refused_when_the_model_it_started_from_was_trained_again(
        tmp_path: Path, shared_data: Path, capsys) -> None:  # fmt: skip
    """A chained stage was keyed by its starting model's path: the [[shared]] model trained again into other
    weights (its final deleted in a clean-up, then a resume on other code) left the arm's finished units skipped
    though they started from the old one, and an arm added then compared against them (audit, stop 55)."""
    config, shared_final = shared_config(tmp_path, shared_data)
    Ablation(load_ablation(config), config).train_arm("a", 0)
    assert state(tmp_path)["done"]["seed0/a/stage0"]["init_files"] == ablate.files_fingerprint(shared_final)
    Ablation(load_ablation(config), config).train_arm("a", 0)  # the same files: skipped
    assert capsys.readouterr().out.count("done earlier, skipped") == 2
    perturb(shared_final)
    with pytest.raises(UsageError, match=r"seed0/a/stage0 was trained from other files of \S+/seed0/shared/stage0/"
                                         r"final \(trained again since\?\)"):
        Ablation(load_ablation(config), config).train_arm("a", 0)


def test_a_reused_model_is_not_one_started_from_other_files_and_keeps_the_code_that_trained_it(
        tmp_path: Path, shared_data: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """Arm a's seed 0 trains what its [choose] run at the chosen value trained: that model is reused, recorded
    under the code that trained it (before stop 55: the reusing process's); after the shared model it starts from
    changed, a unit of the same config is trained, not reused. (An arm whose settings equal the reference's is
    refused since stop 61, so the reuse is the [choose] run's.)"""
    config, shared_final = shared_config(tmp_path, shared_data)
    monkeypatch.setattr(ablate, "code_version", lambda: "a" * 40)  # the choice's code: an older commit
    Ablation(load_ablation(config), config).train_arm("a", 0, tag="-choose0")
    monkeypatch.setattr(ablate, "code_version", lambda: "b" * 40)
    Ablation(load_ablation(config), config).train_arm("a", 0)
    assert "same config and starting model as seed0/a-choose0/stage0: its model is reused" in capsys.readouterr().out
    a = state(tmp_path)["done"]["seed0/a/stage0"]
    assert a["reused"] == "seed0/a-choose0/stage0" and a["code"] == "a" * 40 and a["packages"] is not None
    perturb(shared_final)  # as trained again on other code (on this CPU the same code gives the same bytes)
    Ablation(load_ablation(config), config).train_arm("a", 0, tag="-choose1")
    log = capsys.readouterr().out
    assert "seed0/a-choose1/stage0: training" in log and "its model is reused" not in log


def test_every_module_is_imported_when_the_ablation_opens(tmp_path: Path, shared_data: Path) -> None:
    """The encoder and the report's statistics were first imported hours into a run, from whatever a commit had
    put on disk meanwhile, while every unit named the commit at the start (audit, stop 55: a test Δ of +9.50
    became +2.43 under one recorded sha). In a fresh interpreter, as `harness ablate` starts."""
    stage = one_step_stage(tmp_path / "data", shared_data)[-1]
    config = one_arm_config(tmp_path, stage, "imports")
    script = f"""import sys
from pathlib import Path
from harness.ablate import Ablation
from harness.ablate_config import load_ablation
path = Path({str(config)!r})
Ablation(load_ablation(path), path)
import json
print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {PROJECT_PACKAGES!r})))"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    imported = set(json.loads(out.strip().splitlines()[-1]))
    expected = set()
    for name in PROJECT_PACKAGES:
        package = __import__(name)
        expected |= {m.name for m in pkgutil.walk_packages(package.__path__, f"{name}.")
                     if not m.name.endswith(".__main__")}  # fmt: skip
    assert {"conan_model.encoder", "reporting.ablation", "reporting.items"} <= expected <= imported


def test_code_written_after_the_process_started_is_refused_when_the_ablation_opens(
        tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """Which version of a file written meanwhile was imported is not known, so the recorded commit would not say
    which code runs; the config checks import the training loop seconds before the ablation opens (review, stop
    55), so the harness's first import in the process bounds it. Here that is dated to 1970: every loaded file is
    newer. (A fresh clone run at once is no such file: before stop 66 the bound was psutil's process start, dated
    from whole-second boot time, and every file of the clone was refused.)"""
    import harness

    stage = one_step_stage(tmp_path / "data", shared_data)[-1]
    config = one_arm_config(tmp_path, stage, "race")
    monkeypatch.setattr(harness, "IMPORTED_AT", 0.0)
    with pytest.raises(UsageError, match=r"the code changed while the ablation opened \(\S+\.py, \S+\.py, \S+\.py … "
                                         r"written since this process started\); run the same command again"):
        Ablation(load_ablation(config), config)


def test_an_older_unit_whose_starting_model_is_trained_again_is_refused(tmp_path: Path, shared_data: Path,
                                                                      capsys) -> None:  # fmt: skip
    """A unit recorded before starting files were keyed takes today's as its own, unless this process (or an
    earlier one) trained that model again after it: then it started from a model that is gone (review, stop 55:
    the [[shared]] final deleted, retrained, and the arm's older unit kept today's files, an added arm reusing it)."""
    config, shared_final = shared_config(tmp_path, shared_data)
    Ablation(load_ablation(config), config).train_arm("a", 0)
    recorded = state(tmp_path)  # as written before stop 55: no starting files, hardware or packages
    for unit in recorded["done"].values():
        for key in ("init_files", "hardware", "packages"):
            unit.pop(key, None)
    del recorded["done"]["seed0/shared/stage0"]  # its final deleted in a clean-up: trained again on the resume
    (tmp_path / "work" / "ablate.json").write_text(json.dumps(recorded), encoding="utf-8")
    shutil.rmtree(shared_final)  # (kept, train refuses to replace it since stop 60: a finished model)
    with pytest.raises(UsageError, match=r"seed0/a/stage0 was trained from other files of \S+/seed0/shared/stage0/"
                                         r"final \(trained again since\?\)"):
        Ablation(load_ablation(config), config).train_arm("a", 0)
    assert state(tmp_path)["done"]["seed0/a/stage0"]["init_files"] == ablate.RETRAINED  # kept across processes
    capsys.readouterr()
    Ablation(load_ablation(config), config).train_arm("a", 0, tag="-choose0")  # not a twin of a's unit: trained
    log = capsys.readouterr().out
    assert "seed0/a-choose0/stage0: training" in log and "its model is reused" not in log


def test_a_reused_model_whose_maker_recorded_no_code_is_not_credited_to_this_one(
        tmp_path: Path, shared_data: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    config, _ = shared_config(tmp_path, shared_data)
    Ablation(load_ablation(config), config).train_arm("a", 0, tag="-choose0")
    recorded = state(tmp_path)
    recorded["done"]["seed0/a-choose0/stage0"]["code"] = None  # recorded before ablate recorded code versions
    (tmp_path / "work" / "ablate.json").write_text(json.dumps(recorded), encoding="utf-8")
    Ablation(load_ablation(config), config).train_arm("a", 0)
    a = state(tmp_path)["done"]["seed0/a/stage0"]
    assert a["reused"] == "seed0/a-choose0/stage0" and a["code"] is None


def test_the_report_names_the_seeds_where_compared_arms_ran_other_code_or_packages(tmp_path: Path,
                                                                                  shared_data: Path) -> None:
    """The header counted versions only (`units from 2 versions: X (8 units), Y (4 units)`), which reads the same
    for a split along seeds (noise) and one along arms, where the Δ is a code effect: an arm added after a commit
    showed −1.42 points against a twin of itself (audit, stop 55)."""
    stage = one_step_stage(tmp_path / "data", shared_data)[-1]
    config = one_arm_config(tmp_path, stage, "split", f'data_dir = "{SAMPLE}"\nreport = "{tmp_path / "report"}"')
    text = config.read_text(encoding="utf-8").replace("seeds = [0]", "seeds = [0, 1]")
    config.write_text(text.replace("[eval]", f"{TWO_ARMS}[eval]"), encoding="utf-8")
    assert main(["ablate", str(config)]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text(encoding="utf-8"))
    now = code_version() or "not recorded"
    assert report["code_splits"] == {} and report["code_by_arm"]["b"] == {"0": [now], "1": [now]}
    recorded = state(tmp_path)
    for unit in ("seed1/b/stage0", "eval/b-seed1"):  # arm b's seed 1 as if trained and evaluated by older code
        recorded["done"][unit]["code"] = "0" * 40
    recorded["done"]["seed1/b/stage0"]["packages"] = {"torch": "0.0"}
    (tmp_path / "work" / "ablate.json").write_text(json.dumps(recorded), encoding="utf-8")
    assert main(["ablate", str(config)]) == 0
    report = json.loads((tmp_path / "report" / "report.json").read_text(encoding="utf-8"))
    assert report["code_splits"] == {"b": ["1"]} and report["code_by_arm"]["b"]["1"] == ["0" * 40]
    md = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    assert (f"- **b and a ran other code at 1 of 2 seeds** (seed 1: `{'0' * 12}` vs `{now[:12]}`): their Δ there "
            "holds the code change too") in md
    assert "- **packages: units ran under 2 sets**: " in md and "torch 0.0 (1 units)" in md
