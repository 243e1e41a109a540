"""`harness ablate` stopped by SIGTERM during a unit's training stage, then the same command: one line, exit 143,
the unit's checkpoints whole and resumed from. Real training on the shared data (a tiny weak stage, one seed)."""

from __future__ import annotations

import json
from pathlib import Path

from signal_helpers import last_line_of_sigterm_run
from test_ablate import write_configs

from harness import ablate
from harness.cli import main
from harness.sysinfo import code_version
from train import checkpoint as ckpt_io


def test_sigterm_in_a_unit_says_one_line_and_the_rerun_resumes_it(tmp_path: Path, shared_data: Path, monkeypatch,
                                                                  capsys) -> None:  # fmt: skip
    """Before: SIGTERM (a scheduler's time limit, `kill`) during an arm's training ended `harness ablate` on the
    spot, silently (exit -15)."""
    config = write_configs(tmp_path, shared_data, seeds="[0]")
    text = config.read_text(encoding="utf-8")
    config.write_text(text[: text.index("[choose]")], encoding="utf-8")  # no dev choice: two units, one each arm
    monkeypatch.setattr(ablate, "code_version", lambda: "a" * 40)  # the first run's code: an older commit
    said = last_line_of_sigterm_run(monkeypatch, capsys, ["ablate", str(config)], at_step=3)
    assert said == (f"harness: terminated (SIGTERM); finished units are kept ({tmp_path / 'work' / 'ablate.json'}): "
                    "the same command continues, a training stage from its newest checkpoint if it wrote "
                    "one")  # fmt: skip
    # (before stop 60 the placeholder "<out>/ablate.json")
    unit = tmp_path / "work" / "seed0" / "bidir" / "stage0"
    assert [p.name for p in ckpt_io.checkpoint_dirs(unit)] == ["step_00000003"]

    monkeypatch.setattr(ablate, "code_version", code_version)
    assert main(["ablate", str(config)]) == 0
    log = capsys.readouterr().out
    assert f"resumed from {unit / 'checkpoints' / 'step_00000003'} at step 3" in log
    stage = tmp_path / "weak.toml"  # a resume is said only of the unit with a checkpoint (before stop 60: of each)
    assert f"[ablate] seed0/bidir/stage0: training {stage} (resumes from its newest checkpoint)\n" in log
    assert f"[ablate] seed0/linear/stage0: training {stage}\n" in log
    done = json.loads((tmp_path / "work" / "ablate.json").read_text())["done"]
    assert set(done) >= {"seed0/bidir/stage0", "seed0/linear/stage0"}
    # begun at one commit, finished at another: both are recorded (before stop 54 the resuming one alone)
    assert done["seed0/bidir/stage0"]["code"] == f"{'a' * 40}→{code_version()}"
    assert done["seed0/linear/stage0"]["code"] == code_version()


def test_a_unit_begun_in_one_precision_is_not_finished_in_another(tmp_path: Path, shared_data: Path, monkeypatch,
                                                                  capsys) -> None:  # fmt: skip
    """A unit killed after steps in float32 and resumed where training resolves bfloat16 (CONAN_CPU_BF16, another
    machine) was finished in bfloat16 and recorded as that alone: the precision check covered finished units only
    (audit, stop 55). The kernels are recorded when a unit begins, and such a resume is refused, its checkpoint
    kept."""
    from conan_model.device import cpu_bf16

    config = write_configs(tmp_path, shared_data, seeds="[0]")
    text = config.read_text(encoding="utf-8")
    config.write_text(text[: text.index("[choose]")], encoding="utf-8")
    last_line_of_sigterm_run(monkeypatch, capsys, ["ablate", str(config)], at_step=3)  # the tests' float32
    unit = tmp_path / "work" / "seed0" / "bidir" / "stage0"
    began = json.loads((tmp_path / "work" / "ablate.json").read_text())["started"]["seed0/bidir/stage0"]
    assert began == {"code": code_version(), "compute": "float32 on cpu", "hardware": None}
    monkeypatch.setenv("CONAN_CPU_BF16", "1")  # as a resume in another process would read it
    cpu_bf16.cache_clear()
    try:
        assert main(["ablate", str(config)]) == 2
    finally:
        monkeypatch.setenv("CONAN_CPU_BF16", "0")
        cpu_bf16.cache_clear()
    err = capsys.readouterr().err
    assert ("seed0/bidir/stage0 began training in float32 on cpu, and its newest checkpoint would be finished in "
            "bfloat16 on cpu (") in err and f"or delete {unit} to train it again" in err
    assert [p.name for p in ckpt_io.checkpoint_dirs(unit)] == ["step_00000003"]
    state_file = tmp_path / "work" / "ablate.json"
    state = json.loads(state_file.read_text())
    state["started"]["seed0/bidir/stage0"] = "a" * 40  # begun before ablate recorded kernels: said, not checked
    state_file.write_text(json.dumps(state))
    assert main(["ablate", str(config)]) == 0
    assert ("seed0/bidir/stage0: its checkpoint was begun before ablate recorded the precision and hardware a unit "
            "begins in: not checked; it is finished in float32 on cpu") in capsys.readouterr().out
