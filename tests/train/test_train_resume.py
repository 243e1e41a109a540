"""kill -9 in the middle of a run, then --resume: the loss curve continues step for step; config changes are refused."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from conan_model import train_tokenizer as train_bbpe
from conan_model.fingerprint import files_fingerprint
from train import checkpoint as ckpt_io
from train import loop
from train.config import PretrainConfig, WeakConfig, load_config
from train.errors import ResumeError, TrainError
from train.pretrain import run as run_pretrain
from train.weak import run as run_weak

REPO = Path(__file__).resolve().parents[2]
STEPS, KILL_AFTER = 30, 5


def write_config(tmp_path: Path, shared_data: Path) -> Path:
    tok = tmp_path / "tokenizer.json"
    files = [shared_data / "train" / "parallel_en_zh" / "train.jsonl"]
    train_bbpe(files, 800, ("query", "positive"), max_rows=600, save_path=tok)
    path = tmp_path / "weak.toml"
    path.write_text(f"""stage = "weak"
data_root = "{shared_data / "train"}"
data = ["parallel_en_zh"]
tokenizer = "{tok}"
model_overrides = {{max_length = 24}}
max_length = 24
holdout = 64
bucket_window = 3
batch_size = 16
steps = {STEPS}
lr = 2e-3
log_every = 1
save_every = {KILL_AFTER}
eval_every = 10
keep_last = 2
threads = 1
""")
    return path


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def train_cmd(config: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "train", str(config), "--set", f"output_dir={out}", *extra]


@pytest.mark.slow
def test_kill9_then_resume_reproduces_the_uninterrupted_run(tmp_path, shared_data, one_thread):
    config = write_config(tmp_path, shared_data)
    reference = run_weak(load_config(WeakConfig, config, [f"output_dir={tmp_path / 'ref'}"]))

    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(train_cmd(config, out), cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)  # fmt: skip
    marker = out / "checkpoints" / f"step_{KILL_AFTER:08d}" / "state.json"
    deadline = time.monotonic() + 120
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    _, err = proc.communicate()
    assert proc.returncode == -signal.SIGKILL, err.decode()
    assert not (out / "final").exists(), "the run finished before it could be killed"
    assert max(r["step"] for r in metrics(out)) < STEPS

    done = subprocess.run(train_cmd(config, out, "--resume"), cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "resumed from" in done.stdout

    got, want = metrics(out), metrics(tmp_path / "ref")
    assert [r["step"] for r in got] == [r["step"] for r in want]
    for a, b in zip(got, want, strict=True):
        assert a.keys() == b.keys()
        for key in {"loss", "lr", "alpha", "grad_norm", "truncated", "eval_mrr"} & b.keys():
            assert a[key] == pytest.approx(b[key], rel=1e-6, abs=1e-7), (a["step"], key)
    final, ref = load_file(out / "final" / "model.safetensors"), load_file(reference / "model.safetensors")
    assert all(torch.allclose(final[k], ref[k], rtol=0, atol=1e-6) for k in ref)


def test_resume_refuses_a_different_config(tmp_path, shared_data, one_thread, capsys):
    base = dict(output_dir=str(tmp_path / "out"), data_root=str(shared_data / "train"), data=["news_en_raw"],
                tokenizer_vocab=400, tokenizer_rows=100, model_overrides={"max_length": 32}, seq_len=32,
                batch_size=4, steps=2, save_every=1, threads=1)  # fmt: skip
    run_pretrain(PretrainConfig(**base))
    changed = PretrainConfig(**{**base, "steps": 4, "model_overrides": {"max_length": 32, "hidden_size": 64}})
    with pytest.raises(ResumeError, match=r"differs .* in 2 key\(s\): model_overrides\.hidden_size: '<unset>' -> 64; "
                                          r"steps: 2 -> 4"):  # fmt: skip
        run_pretrain(changed, resume="latest")
    with pytest.raises(ResumeError, match="already holds checkpoints .*; pass --resume to continue that run"):
        run_pretrain(PretrainConfig(**base))
    with pytest.raises(ResumeError, match=r"holds checkpoints of a different run .*differs in 2 key\(s\): "
                                          r"model_overrides\.hidden_size: '<unset>' -> 64; steps: 2 -> 4\), which "
                                          r"--resume cannot continue; choose another output_dir$"):  # fmt: skip
        run_pretrain(changed)
    with pytest.raises(ResumeError, match="elsewhere: it does not exist"):  # before stop 63: "no state.json there"
        run_pretrain(PretrainConfig(**base), resume=str(tmp_path / "elsewhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ResumeError, match="no state.json there"):
        run_pretrain(PretrainConfig(**base), resume=str(tmp_path / "empty"))
    # operational keys may change: the finished run resumes at its last step and just re-exports, saying so (a walk,
    # stop 66: "resumed from … at step 2" alone)
    capsys.readouterr()
    assert run_pretrain(PretrainConfig(**{**base, "log_every": 5}), resume="latest").is_dir()
    assert (f"resumed from {tmp_path / 'out' / 'checkpoints' / 'step_00000002'} at step 2; nothing left to train "
            "(steps = 2): final/ is written again from it") in capsys.readouterr().out


def test_another_stage_s_checkpoint_is_named_by_its_stage(tmp_path):
    """Before stop 60 a weak run resumed from a pretrain checkpoint listed every differing key (23) and no stage."""
    (tmp_path / "state.json").write_text(json.dumps({"step": 2, "config": {"stage": "pretrain", "seq_len": 32}}))
    with pytest.raises(ResumeError, match=rf"cannot resume from {tmp_path}: this checkpoint is from the pretrain "
                                          r"stage, not weak; resume it with a pretrain config, or train into another "
                                          r"output_dir \(the config differs in 3 key\(s\)\)$"):  # fmt: skip
        ckpt_io.check_resume_config(tmp_path, {"stage": "weak", "max_length": 32}, {})


def test_a_fresh_run_over_another_stage_s_checkpoints_is_not_told_to_resume_them(tmp_path):
    """A user walk: a supervised run into a weak run's output_dir was told "pass --resume to continue that run", and
    --resume was then refused as the weak stage's (before stop 63). The first refusal now names the stage."""
    step = tmp_path / "checkpoints" / "step_00000002"
    step.mkdir(parents=True)
    (step / "state.json").write_text(json.dumps({"step": 2, "config": {"stage": "weak"}}))
    with pytest.raises(ResumeError, match=rf"^{tmp_path} already holds checkpoints of the weak stage \(newest "
                                          r"step_00000002\), which a supervised run cannot continue; choose another "
                                          r"output_dir$"):  # fmt: skip
        ckpt_io.resolve_resume(None, tmp_path, {"stage": "supervised"})
    with pytest.raises(ResumeError, match="pass --resume to continue that run"):  # the same stage: resume it
        ckpt_io.resolve_resume(None, tmp_path, {"stage": "weak"})


def test_a_fresh_run_over_a_different_config_s_checkpoints_is_not_told_to_resume_them(tmp_path):
    """A user's walk (stop 66): a fresh run into a same-stage output_dir with another `lr` and `steps` was told
    "pass --resume to continue that run", and --resume was then refused as a different config. The first refusal
    now compares the configs as the resume does; resume-safe keys may still differ, and --resume is advised."""
    step = tmp_path / "checkpoints" / "step_00000020"
    step.mkdir(parents=True)
    saved = {"stage": "weak", "lr": 5e-05, "steps": 20, "log_every": 10}
    (step / "state.json").write_text(json.dumps({"step": 20, "config": saved}))
    with pytest.raises(ResumeError, match=rf"^{tmp_path} already holds checkpoints of a different run \(newest "
                                          r"step_00000020; the config differs in 2 key\(s\): lr: 5e-05 -> 0.0001; "
                                          r"steps: 20 -> 40\), which --resume cannot continue; choose another "
                                          r"output_dir$"):  # fmt: skip
        ckpt_io.resolve_resume(None, tmp_path, {**saved, "lr": 1e-4, "steps": 40})
    with pytest.raises(ResumeError, match=rf"^{tmp_path} already holds checkpoints \(newest step_00000020\); pass "
                                          r"--resume to continue that run or choose another output_dir$"):  # fmt: skip
        ckpt_io.resolve_resume(None, tmp_path, {**saved, "log_every": 5})


def tiny_pretrain(tmp_path: Path, shared_data: Path, **overrides) -> PretrainConfig:
    values = dict(output_dir=str(tmp_path / "out"), data_root=str(shared_data / "train"), data=["news_en_raw"],
                  tokenizer_vocab=400, tokenizer_rows=100, model_overrides={"max_length": 32}, seq_len=32,
                  batch_size=4, steps=2, save_every=1, threads=1)  # fmt: skip
    return PretrainConfig(**{**values, **overrides})


def test_resume_refuses_data_edited_since_the_run_started(tmp_path, shared_data, one_thread):
    """The config names data files by path; their contents at the start go into every checkpoint, and a resume
    from other contents (the rest of the epoch would be other rows) is refused naming the file and the checkpoint
    holding the hashes. With the recorded bytes back it resumes."""
    data = tmp_path / "data" / "news.jsonl"
    data.parent.mkdir()
    rows = (shared_data / "train" / "news_en_raw" / "train.jsonl").read_text(encoding="utf-8").splitlines()
    data.write_text("\n".join(rows[:200]) + "\n", encoding="utf-8")
    cfg = tiny_pretrain(tmp_path, shared_data, data_root=str(data.parent), data=["news.jsonl"])
    run_pretrain(cfg)
    state = Path(cfg.output_dir) / "checkpoints" / "step_00000002" / "state.json"
    assert json.loads(state.read_text())["data_hashes"] == {"news.jsonl": files_fingerprint(data)}
    data.write_text("\n".join(rows[:150]) + "\n", encoding="utf-8")
    with pytest.raises(ResumeError, match=rf"data file\(s\) changed since the run started \(their hashes in "
                                          rf"{state}\): news.jsonl;"):  # fmt: skip
        run_pretrain(cfg, resume="latest")
    data.write_text("\n".join(rows[:200]) + "\n", encoding="utf-8")
    assert run_pretrain(cfg, resume="latest").is_dir()


def test_final_records_the_world_sizes_that_trained_it(tmp_path, shared_data, one_thread, monkeypatch):
    """final/train_config.json's `world_size` is what trained the weights, not the last start's (a walk, stop 66: a
    finished 1-process run re-exported under torchrun was stamped 2): a re-export that trains no step keeps the
    checkpoint's record, and a run resumed on another world size lists each span in `world_sizes`. Two processes
    are simulated in-process: rank 0 of 2, unwrapped (no process group; the record is what is checked)."""
    from train.distributed import Runtime, Task

    cfg = tiny_pretrain(tmp_path, shared_data, steps=4)
    final = Path(cfg.output_dir) / "final" / "train_config.json"
    run_pretrain(cfg)
    assert json.loads(final.read_text())["world_size"] == 1
    monkeypatch.setattr(loop, "init_runtime", lambda device: Runtime(0, 2, 0, torch.device("cpu")))
    monkeypatch.setattr(loop, "wrap", lambda model, rt, parallel, compile: Task(model.to(rt.device)))
    run_pretrain(cfg, resume="latest")  # nothing left to train: final/ is written again from step 4
    record = json.loads(final.read_text())
    assert (record["world_size"], "world_sizes" in record) == (1, False)
    run_pretrain(cfg, resume=str(Path(cfg.output_dir) / "checkpoints" / "step_00000002"))  # steps 3-4 on 2
    spans = [{"from_step": 1, "to_step": 2, "world_size": 1}, {"from_step": 3, "to_step": 4, "world_size": 2}]
    record = json.loads(final.read_text())
    assert (record["world_size"], record["world_sizes"]) == (2, spans)
    assert ckpt_io.read_state(Path(cfg.output_dir) / "checkpoints" / "step_00000004")["world_sizes"] == spans
    monkeypatch.undo()
    run_pretrain(cfg, resume="latest")  # a 1-process re-export keeps that history
    assert json.loads(final.read_text())["world_sizes"] == spans
    assert loop.trained_world_sizes({"step": 2, "world_size": 2}, 3, 1) == [  # a checkpoint from before stop 66
        {"from_step": 1, "to_step": 2, "world_size": 2}, {"from_step": 3, "to_step": 3, "world_size": 1}]  # fmt: skip


def test_finished_model_without_checkpoints_is_never_replaced(tmp_path, shared_data, one_thread):
    """An output_dir holding final/ but no checkpoints (deleted to save disk): a fresh run and a --resume (which
    would start fresh) are refused naming final/, and final/ and metrics.jsonl stay as they were (before stop 60
    both were silently replaced)."""
    cfg = tiny_pretrain(tmp_path, shared_data)
    final = run_pretrain(cfg)
    shutil.rmtree(Path(cfg.output_dir) / "checkpoints")
    kept = {p: p.read_bytes() for p in (final / "model.safetensors", Path(cfg.output_dir) / "metrics.jsonl")}
    for resume in (None, "latest"):
        with pytest.raises(ResumeError, match=rf"holds a finished model \({final}\) and none of its run's checkpoints"
                                              rf"; .*: delete {final} to train it again, or train into another "
                                              "output_dir"):  # fmt: skip
            run_pretrain(cfg, resume=resume)
    assert {p: p.read_bytes() for p in kept} == kept


def test_non_finite_loss_stops_before_the_update_and_keeps_the_last_good_checkpoint(
    tmp_path, shared_data, one_thread, monkeypatch
):
    """Step 3's loss is made infinite: the run stops naming step 3; steps 1-2 stay checkpointed, nothing NaN is
    saved and no final/ is exported (the audit's lr=inf run exported a NaN model with exit 0)."""
    real_fit = loop.fit

    def poisoned_fit(cfg, rt, model, tokenizer, batches, step_fn, *args, **kwargs):
        def step_fn_inf(module, batch, step: int) -> loop.StepResult:
            result = step_fn(module, batch, step)
            scale = math.inf if step == 2 else 1.0  # 0-based: the third step
            return dataclasses.replace(result, loss=result.loss * scale, value=result.value * scale)

        return real_fit(cfg, rt, model, tokenizer, batches, step_fn_inf, *args, **kwargs)

    monkeypatch.setattr(loop, "fit", poisoned_fit)
    cfg = tiny_pretrain(tmp_path, shared_data, steps=4)
    with pytest.raises(TrainError, match="non-finite training at step 3"):
        run_pretrain(cfg)
    out = Path(cfg.output_dir)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step_00000001", "step_00000002"]
    assert not (out / "final").exists()
    weights = load_file(out / "checkpoints" / "step_00000002" / "model.safetensors")
    assert all(torch.isfinite(w).all() for w in weights.values())


class Killed(Exception):
    """Stands for a kill -9 right after a checkpoint is written."""


def test_final_evaluation_is_logged_before_the_last_checkpoint(tmp_path, shared_data, one_thread, monkeypatch):
    """Killed right after the step-N checkpoint: the resumed run (which starts at step N and trains nothing) must
    still have the held-out evaluation of step N in metrics.jsonl."""
    cfg = WeakConfig(output_dir=str(tmp_path / "out"), data_root=str(shared_data / "train"), data=["parallel_en_zh"],
                     tokenizer_vocab=400, tokenizer_rows=200, model_overrides={"max_length": 24}, max_length=24,
                     holdout=16, batch_size=8, steps=2, save_every=1, threads=1)  # fmt: skip
    real_save = ckpt_io.save_checkpoint

    def save_then_die(out, step, *args, **kwargs):
        real_save(out, step, *args, **kwargs)
        if step == cfg.steps:
            raise Killed

    monkeypatch.setattr(ckpt_io, "save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        run_weak(cfg)
    monkeypatch.setattr(ckpt_io, "save_checkpoint", real_save)
    assert run_weak(cfg, resume="latest").is_dir()
    rows = metrics(Path(cfg.output_dir))
    assert [r["step"] for r in rows if "eval_mrr" in r] == [0, 2]


def test_torn_last_metrics_line_is_dropped_on_resume(tmp_path, shared_data, one_thread, caplog):
    """A run that died mid-line (full disk, power loss) left half a JSON row: resume drops it with a warning and
    rewrites the log; a bad line before the last is an error naming file:line."""
    cfg = tiny_pretrain(tmp_path, shared_data)
    run_pretrain(cfg)
    log = Path(cfg.output_dir) / "metrics.jsonl"
    good = log.read_text()
    log.write_text(good + '{"step": 3, "loss": 4.')
    with caplog.at_level(logging.WARNING, logger="train"):
        assert run_pretrain(cfg, resume="latest").is_dir()
    assert "dropping a torn last line" in caplog.text
    assert log.read_text() == good
    log.write_text('{"step": 1, "loss\n' + good)
    with pytest.raises(TrainError, match=r"metrics\.jsonl:1: not a JSON row"):
        run_pretrain(cfg, resume="latest")


def test_resume_refuses_another_global_micro_batch(tmp_path, shared_data, one_thread):
    """The weak stage's data position counts global micro-batches: read in micro-batches of 8 after 16, a
    resumed step retrained 16 of 16 rows it had seen (audit K4: losses 1.93 for 2.77). micro_batch_size is an
    operational key only while micro x world stays the checkpoint's."""
    tok = tmp_path / "tokenizer.json"
    train_bbpe([shared_data / "train" / "parallel_en_zh" / "train.jsonl"], 400, ("query", "positive"),
               max_rows=300, save_path=tok)  # fmt: skip
    base = dict(output_dir=str(tmp_path / "out"), data_root=str(shared_data / "train"), data=["parallel_en_zh"],
                tokenizer=str(tok), model_overrides={"max_length": 16}, max_length=16, holdout=0, batch_size=16,
                steps=2, save_every=1, eval_every=0, threads=1)  # fmt: skip
    run_weak(WeakConfig(**base))
    with pytest.raises(ResumeError, match=r"^cannot resume from \S+step_00000002: the checkpoint's data position "
                                          r"counts global micro-batches of 16 rows .* this run's hold 8 \(8 x 1\)"):
        run_weak(WeakConfig(**base, micro_batch_size=8), resume="latest")
    assert run_weak(WeakConfig(**base, micro_batch_size=16), resume="latest").is_dir()  # the same size: resumes


@pytest.fixture(scope="module")
def two_checkpoints(tmp_path_factory, shared_data) -> Path:
    """A finished 2-step run with checkpoints step_1 and step_2 (copied per test, then damaged)."""
    tmp = tmp_path_factory.mktemp("whole")
    run_pretrain(tiny_pretrain(tmp, shared_data))
    return tmp / "out"


def damage(file: Path, how: str) -> None:
    data = file.read_bytes()
    if how == "truncate":
        file.write_bytes(data[:40])
    else:  # random bytes inside (for model.safetensors: in the tensor data, the header stays valid)
        mid = len(data) // 2
        file.write_bytes(data[:mid] + random.Random(0).randbytes(4000) + data[mid + 4000 :])


def copy_run(two_checkpoints: Path, tmp_path: Path, shared_data: Path) -> PretrainConfig:
    shutil.copytree(two_checkpoints, tmp_path / "out")
    return tiny_pretrain(tmp_path, shared_data)


@pytest.mark.parametrize(
    ("name", "how"),
    [(name, "truncate") for name in ("model.safetensors", "state.json", "optimizer.pt", "scheduler.pt",
                                     "rng_rank0.pt", "config.json", "tokenizer.json")]
    + [("model.safetensors", "garbage")],
)  # fmt: skip
def test_damaged_checkpoint_file_is_named_with_the_older_checkpoint(two_checkpoints, tmp_path, shared_data, name, how):
    """before: each damaged file gave a traceback (exit 1) naming neither the file nor the step_1 that still works,
    and random bytes inside model.safetensors resumed from garbage weights without a word (audit J5, J6)."""
    cfg = copy_run(two_checkpoints, tmp_path, shared_data)
    ckpts = Path(cfg.output_dir) / "checkpoints"
    damage(ckpts / "step_00000002" / name, how)
    with pytest.raises(ResumeError, match=rf"cannot resume from {ckpts / 'step_00000002'}: "
                                          rf"{ckpts / 'step_00000002' / name} is damaged \(.+\); resume from the older "
                                          rf"checkpoint: --resume {ckpts / 'step_00000001'}$"):  # fmt: skip
        run_pretrain(cfg, resume="latest")


def test_checkpoint_without_hash_record_still_names_a_file_that_fails_to_load(two_checkpoints, tmp_path, shared_data):
    """Checkpoints saved before state.json recorded file hashes load as before; a file that fails to load is
    still named (before: a PytorchStreamReader traceback). The suggested checkpoint resumes and the run
    rewrites step_2 whole."""
    cfg = copy_run(two_checkpoints, tmp_path, shared_data)
    newest = Path(cfg.output_dir) / "checkpoints" / "step_00000002"
    state = json.loads((newest / "state.json").read_text())
    state.pop("files", None)
    (newest / "state.json").write_text(json.dumps(state))
    damage(newest / "optimizer.pt", "truncate")
    older = newest.parent / "step_00000001"
    with pytest.raises(ResumeError, match=rf"{newest / 'optimizer.pt'} is damaged \(RuntimeError: .+\); resume "
                                          rf"from the older checkpoint: --resume {older}$"):  # fmt: skip
        run_pretrain(cfg, resume="latest")
    assert run_pretrain(cfg, resume=str(older)).is_dir()
    assert set(json.loads((newest / "state.json").read_text())["files"]) == {
        "config.json", "model.safetensors", "tokenizer.json", "optimizer.pt", "scheduler.pt", "rng_rank0.pt"}
    assert run_pretrain(cfg, resume="latest").is_dir()


class RunsCode:
    """An object whose unpickling would call os.system (it must never run): a resume checkpoint from elsewhere."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return os.system, (f"touch {self.marker}",)


def test_a_pt_file_holding_objects_other_than_tensors_says_so(two_checkpoints, tmp_path, shared_data):
    """A walk (stop 69): optimizer.pt holding a pickled os.system call (its hash in state.json forged to match) was
    refused, unpickled never, as "is damaged (UnpicklingError: Weights only load failed)", which did not say why."""
    cfg = copy_run(two_checkpoints, tmp_path, shared_data)
    newest, marker = Path(cfg.output_dir) / "checkpoints" / "step_00000002", tmp_path / "ran"
    torch.save({"state": RunsCode(marker)}, newest / "optimizer.pt")
    state = json.loads((newest / "state.json").read_text())
    state["files"]["optimizer.pt"] = files_fingerprint(newest / "optimizer.pt")
    (newest / "state.json").write_text(json.dumps(state))
    with pytest.raises(ResumeError) as caught:
        run_pretrain(cfg, resume="latest")
    said = str(caught.value)
    assert said == (f"cannot resume from {newest}: {newest / 'optimizer.pt'} holds objects other than tensors "
                    f"({os.system.__module__}.system), so it was not unpickled: torch's weights-only load refuses "
                    f"them (unpickling could run code); resume from the older checkpoint: --resume "
                    f"{newest.parent / 'step_00000001'}")  # fmt: skip
    assert "\n" not in said and not marker.exists()


def test_damaged_checkpoint_with_no_whole_older_one_is_one_line_exit_2(two_checkpoints, tmp_path, shared_data,
                                                                       capsys):  # fmt: skip
    """Through the CLI: one line, exit 2; step_1 is damaged too, so no older checkpoint is offered."""
    from train import cli

    cfg = copy_run(two_checkpoints, tmp_path, shared_data)
    ckpts = Path(cfg.output_dir) / "checkpoints"
    damage(ckpts / "step_00000002" / "model.safetensors", "garbage")
    damage(ckpts / "step_00000001" / "tokenizer.json", "truncate")
    assert cli.main([*tiny_cli_args(cfg), "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{ckpts / 'step_00000002' / 'model.safetensors'} is damaged (its sha256 differs" in err
    assert f"no older whole checkpoint in {ckpts}: train afresh into another output_dir" in err


def tiny_cli_args(cfg: PretrainConfig) -> list[str]:
    """`python -m train` arguments for a :func:`tiny_pretrain` config."""
    sets = [f"{key}={getattr(cfg, key)}" for key in ("output_dir", "data_root", "tokenizer_vocab", "tokenizer_rows",
                                                     "seq_len", "batch_size", "steps", "save_every", "threads")]
    sets += ["data=news_en_raw", "model_overrides.max_length=32"]
    return ["pretrain", *(a for s in sets for a in ("--set", s))]


def test_ctrl_c_names_the_checkpoint_kept_and_resume(tmp_path, shared_data, one_thread, monkeypatch, capsys):
    """before: `python -m train` printed a raw KeyboardInterrupt traceback (audit J11). Now one line naming the
    newest checkpoint and --resume, exit 130; the resume finishes the run."""
    from train import cli

    real_save = ckpt_io.save_checkpoint

    def save_then_ctrl_c(out, step, *args, **kwargs):
        real_save(out, step, *args, **kwargs)
        if step == 1:
            raise KeyboardInterrupt

    cfg = tiny_pretrain(tmp_path, shared_data)
    monkeypatch.setattr(ckpt_io, "save_checkpoint", save_then_ctrl_c)
    assert cli.main(tiny_cli_args(cfg)) == 130
    err = capsys.readouterr().err
    ckpts = Path(cfg.output_dir) / "checkpoints"
    assert err == f"train: interrupted; checkpoints up to step_00000001 are kept in {ckpts}; continue with --resume\n"
    monkeypatch.setattr(ckpt_io, "save_checkpoint", real_save)
    assert cli.main([*tiny_cli_args(cfg), "--resume"]) == 0
    assert (Path(cfg.output_dir) / "final" / "model.safetensors").is_file()
    fresh = tiny_pretrain(tmp_path / "new", shared_data)
    assert "before the first checkpoint (none in" in cli.interrupted_message(fresh)
