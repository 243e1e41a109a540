"""The GPU ablation script's CPU dry run: all three shipped ablations rescaled, trained, evaluated and reported;
and the GPU scale's configs resolve (every stage key, every evaluation task present in the shared data)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from harness.ablate_config import check_ablation, load_ablation
from harness.data import discover_tasks
from train.cli import resolve

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("gpu_ablations", REPO / "scripts" / "gpu_ablations.py")
gpu_ablations = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gpu_ablations)


@pytest.mark.parametrize("scale", ["cpu", "gpu"])
def test_shipped_configs_resolve_and_name_real_tasks(scale: str, shared_data: Path, tmp_path: Path,
                                                     monkeypatch) -> None:  # fmt: skip
    monkeypatch.chdir(REPO)
    local = discover_tasks(shared_data)
    for name in gpu_ablations.NAMES:
        path = Path("configs/ablations") / f"{name}.toml"
        cfg = load_ablation(path)
        if scale == "gpu":
            cfg = check_ablation(gpu_ablations.rescale(cfg, "gpu", None, tmp_path), path)
            assert cfg["out"].startswith(str(tmp_path))
            assert cfg["choose"]["key"] == "lr" and len(cfg["choose"]["values"]) == 3  # chosen on dev, as *_lr.toml
            assert all(o.startswith(("device=", f"pools_dir='{tmp_path}")) for o in cfg["set"])  # not the CPU pools
        assert cfg["seeds"] == [0, 1, 2] and cfg["name"] == name
        assert all(t in local for t in cfg["eval"]["dev"] + cfg["eval"]["test"])
        for arm in cfg["arms"].values():  # every stage, with every arm's overrides, is a valid stage config
            stages = cfg.get("base", []) + arm.get("stages", cfg["stages"])
            for i, stage in enumerate(stages):
                last = i == len(stages) - 1
                _, stage_cfg = resolve(stage["config"], None,
                                       [*cfg["set"], *stage.get("set", []), *(arm.get("set", []) if last else [])])
                assert stage_cfg.steps >= (100 if scale == "gpu" else 30)
                assert stage_cfg.device is None or scale == "cpu"  # GPU scale: "auto", pick_device's choice
                if name == "softmask" and i == 0:  # the real decoder: all of it on the GPU, its bottom 4 blocks on CPU
                    assert stage_cfg.init == "smollm2-135m"
                    assert stage_cfg.init_layers == (None if scale == "gpu" else 4)
                elif name == "softmask":  # chained: starts from stage 0's final model, as it is
                    assert stage_cfg.init_layers is None
                else:  # DHNM and CLR fine-tune multilingual-e5-small: its token table frozen on CPU only
                    assert stage_cfg.init == "multilingual-e5-small" and stage_cfg.init_layers is None
                    assert stage_cfg.freeze == ([] if scale == "gpu" else ["embed_tokens"])
                    if "clr" in stage_cfg.tasks:  # the CLR task is as large as the others' batches
                        assert stage_cfg.tasks["clr"]["batch_size"] == stage_cfg.tasks["ret_en"]["batch_size"]
    dhnm = load_ablation(Path("configs/ablations/dhnm.toml"))
    if scale == "gpu":
        dhnm = gpu_ablations.rescale(dhnm, "gpu", None, tmp_path)
    _, stage_cfg = resolve(dhnm["stages"][0]["config"], None, [*dhnm["set"], *dhnm["stages"][0].get("set", [])])
    specs = stage_cfg.task_specs()
    total = sum(t["weight"] for t in specs.values())
    for name, task in specs.items():  # every query drawn >= 3 times in expectation
        rows = sum(len((shared_data / d / "train.jsonl").read_text().splitlines()) for d in task["data"])
        rows = min(rows, task["max_rows"] or rows)
        expected_draws = stage_cfg.steps * task["weight"] / total * task["batch_size"]
        assert expected_draws >= (3.3 if scale == "gpu" else 3.0) * rows, (name, expected_draws / rows)
    if scale == "gpu":
        assert {"cmrc_qp_zh", "drcd_qp_zh"} <= {Path(d).name for d in specs["qa_zh"]["data"]}
    assert "SQuADRetrieval" in dhnm["eval"]["test"]


@pytest.mark.parametrize("name", ["softmask", "dhnm", "clr", "mrl", "mrl_decoder"])
def test_lr_variant_is_the_ablation_with_lr_chosen_on_dev(name: str, monkeypatch) -> None:
    """configs/ablations/<name>_lr.toml says "everything else is <name>.toml": the two reports are read together.
    The lr variant may add seeds (softmask_lr has 5) but keeps the base's as its first, and may choose on another
    dev task (clr_lr: the base's XQuAD de holds the XQuAD test tasks' items), with its own overlap reason."""
    monkeypatch.chdir(REPO)
    base, tuned = (load_ablation(Path(f"configs/ablations/{n}.toml")) for n in (name, f"{name}_lr"))
    same = ("reference", "data_dir", "shared", "stages", "arms")
    assert {k: base.get(k) for k in same} == {k: tuned.get(k) for k in same}
    assert [{k: v for k, v in cfg["eval"].items() if k not in ("dev", "overlap_ok")} for cfg in (base, tuned)] == [
        {k: v for k, v in base["eval"].items() if k not in ("dev", "overlap_ok")}] * 2
    assert tuned["seeds"][: len(base["seeds"])] == base["seeds"]
    assert [s for s in base["set"] if "pools_dir" not in s] == [s for s in tuned["set"] if "pools_dir" not in s]
    assert "choose" not in base and tuned["choose"]["key"] == "lr" and "arm" not in tuned["choose"]  # the reference
    last = base["stages"][-1]
    _, stage_cfg = resolve(last["config"], None, [*base["set"], *last.get("set", [])])
    assert stage_cfg.lr in tuned["choose"]["values"]  # the fixed setting is one of the candidates


def test_gpu_script_exits_cleanly_without_an_accelerator(tmp_path: Path, capsys) -> None:
    if gpu_ablations.pick_device().type != "cpu":
        pytest.skip("an accelerator is present: the real run is not a unit test")
    assert gpu_ablations.main(["--root", str(tmp_path)]) == 0
    assert "no accelerator" in capsys.readouterr().err and not (tmp_path / "reports").exists()


@pytest.mark.slow
@pytest.mark.parametrize("name, arms", [("softmask", 6), ("dhnm", 3), ("clr", 2)])
def test_dry_run_trains_evaluates_and_reports(name: str, arms: int, tmp_path: Path, shared_data: Path, smollm2: Path,
                                             e5_small: Path, monkeypatch) -> None:  # fmt: skip
    """Each ablation, every arm (the soft mask's from SmolLM2, its LLM2Vec arm through MNTP; DHNM and CLR from
    multilingual-e5-small's bottom layer), 1 seed; one at a time, as each leaves ~1.5 GB of final models."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert gpu_ablations.main(["--dry-run", "--only", name, "--root", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "reports/ablations/dry/gpu_run.json").read_text())
    assert set(record["ablations"]) == {name} and record["device"] == "cpu"
    report = json.loads((tmp_path / "reports/ablations/dry" / name / "report.json").read_text())
    assert len(report["arms"]) == arms and len(report["comparisons"]) == arms - 1
    assert report["test"] == ["STS12"] and report["scale"].startswith("dry run")
    assert (tmp_path / "reports/ablations/dry" / name / "scores.png").is_file()
    assert not list((tmp_path / "runs").rglob("checkpoints"))  # finished units keep their final model only
    if name == "dhnm":
        assert report["arms"]["dynamic"]["dhnm"]["0"]["qa_zh"]["mode"] == "dynamic"
        assert report["arms"]["static"]["dhnm"]["0"]["qa_zh"]["replacements"] == 0


def test_clr_control_is_clr_lr_at_its_chosen_lr_plus_the_shorter_arm(monkeypatch) -> None:
    """configs/ablations/clr_control.toml: clr_lr's arms at the lr clr_lr chose on dev (nothing chosen again),
    plus off60, whose steps are the monolingual batches the on arm keeps in expectation."""
    monkeypatch.chdir(REPO)
    tuned, control = (load_ablation(Path(f"configs/ablations/{n}.toml")) for n in ("clr_lr", "clr_control"))
    chosen = json.loads((REPO / "reports/ablations/clr_lr/report.json").read_text())["chosen"]
    assert "choose" not in control and control["reference"] == "off60"
    assert [s["config"] for s in control["stages"]] == [s["config"] for s in tuned["stages"]]
    assert {k: v for k, v in control["arms"].items() if k != "off60"} == tuned["arms"]
    same = ("seeds", "data_dir")
    assert {k: control[k] for k in same} == {k: tuned[k] for k in same}
    assert [{k: v for k, v in cfg["eval"].items() if k not in ("dev", "overlap_ok")} for cfg in (control, tuned)] == [
        {k: v for k, v in tuned["eval"].items() if k not in ("dev", "overlap_ok")}] * 2  # dev: reported, not chosen on
    stage = control["stages"][0]
    _, on = resolve(stage["config"], None, [*control["set"], *stage["set"], *control["arms"]["on"]["set"]])
    _, off60 = resolve(stage["config"], None, [*control["set"], *stage["set"], *control["arms"]["off60"]["set"]])
    weights = {name: task["weight"] for name, task in on.task_specs().items()}
    mono_share = sum(w for name, w in weights.items() if name != "clr") / sum(weights.values())
    assert off60.steps == round(on.steps * mono_share) and "clr" not in off60.task_specs()
    assert chosen["key"] == "lr" and on.lr == off60.lr == chosen["value"]


def test_gpu_scale_dev_tasks_share_no_text_with_its_test_tasks(tmp_path: Path, shared_data: Path, monkeypatch) -> None:
    """Before: the GPU soft mask chose its lr on STS16 and tested on STSBenchmark (443 shared texts) and SICK-R
    (the weak stage trains on SICK); CLR chose on XQuAD de, the XQuAD test tasks' items in German."""
    from harness.ablate_overlap import dev_test_overlap

    monkeypatch.chdir(REPO)
    for name in gpu_ablations.NAMES:
        cfg = gpu_ablations.rescale(load_ablation(Path(f"configs/ablations/{name}.toml")), "gpu", None, tmp_path)
        overlap = dev_test_overlap(discover_tasks(shared_data), cfg["eval"]["dev"], cfg["eval"]["test"])
        shared = sum(o["shared"] for o in overlap) / max(1, sum(o["test_texts"] for o in overlap))
        assert not overlap or (cfg["eval"].get("overlap_ok") and shared < 0.01), (name, overlap)
        assert "SICK-R" not in cfg["eval"]["test"]
