"""Configs (TOML + --set), the CLI entry points (`harness train`, `python -m train`) and their errors."""

from __future__ import annotations

import argparse
import dataclasses
import re
from pathlib import Path

import pytest

from train import cli
from train.config import RESUME_SAFE, PretrainConfig, WeakConfig, _coerce, config_diff, load_config, parse_set
from train.errors import ConfigError, DataError
from train.loop import build_optimizer, keep_update_kernel, lr_factor, micro_batches

REPO = Path(__file__).resolve().parents[2]


def test_shipped_configs_load(shared_data, monkeypatch):
    monkeypatch.chdir(REPO)
    for name, cls in (("pretrain", PretrainConfig), ("weak", WeakConfig)):
        cfg = load_config(cls, REPO / "configs" / f"{name}.toml")
        assert cfg.stage == name and all(p.is_file() for p in cfg.data_files()), cfg.data_files()


def test_set_overrides_parse_toml_values():
    assert parse_set(["lr=3e-4", "data=[\"a\", \"b\"]", "output_dir=runs/x", "model_overrides.max_length=64",
                      "tokenizer=none", "gradient_checkpointing=true"]) == {  # fmt: skip
        "lr": 3e-4, "data": ["a", "b"], "output_dir": "runs/x", "model_overrides": {"max_length": 64},
        "tokenizer": "none", "gradient_checkpointing": True}  # fmt: skip
    with pytest.raises(ConfigError, match="key=value"):
        parse_set(["lr"])
    # audit, stop 48: spaces around a bare string stayed in it (a folder named ' runs/x'); an empty value is unset,
    # as `none` (before, '' passed `init is not None` checks while the loop took it as no init)
    assert parse_set(["output_dir = runs/x ", "init="]) == {"output_dir": "runs/x", "init": ""}
    assert _coerce("init", "", str | None) is None and _coerce("init", " ", str | None) is None
    # before stop 60 (a user's walk): a list, table or string begun and not ended was a bare string, so
    # `data=["a",` named a data file `["a",`
    for begun in ('data=["a",', "model_overrides={max_length=64", 'init="runs/x'):
        with pytest.raises(ConfigError, match=r"^--set '.*': the value is not valid TOML \("):
            parse_set([begun])


def test_load_config_merges_file_and_overrides(tmp_path):
    path = tmp_path / "w.toml"
    path.write_text('stage = "weak"\ndata = ["x.jsonl"]\nlr = 1\nmodel_overrides = {max_length = 64, n_layers = 1}\n')
    cfg = load_config(WeakConfig, path, ["steps=7", "model_overrides.max_length=32", "micro_batch_size=none"])
    assert (cfg.lr, cfg.steps, cfg.micro_batch_size) == (1.0, 7, None) and isinstance(cfg.lr, float)
    assert cfg.model_overrides == {"max_length": 32, "n_layers": 1}
    assert cfg.to_dict()["stage"] == "weak"


@pytest.mark.parametrize(
    ("text", "overrides", "message"),
    [
        ('stage = "weak"\ndata = ["x"]\nlearning_rate = 1\n', [], r"unknown weak config key\(s\) \['learning_rate'\]"),
        ('stage = "weak"\ndata = ["x"]\n', ["steps=many"], "'steps' expects int, got 'many'"),
        ('stage = "pretrain"\ndata = ["x"]\n', [], "is a 'pretrain' config, not 'weak'"),
        ('stage = "weak"\n', [], "data is empty"),
        ('stage = "weak"\ndata = ["x"]\n', ["mask_schedule=cubic"], "mask_schedule must be one of"),
        ('stage = "weak"\ndata = ["x"]\n', ["model=huge"], "unknown model preset 'huge'"),
        ('stage = "weak"\ndata = ["x"]\n', ["on_long=drop"], "on_long must be 'truncate' or 'error'"),
        ('stage = "weak"\ndata = ["x"\n', [], "invalid TOML"),
        ('stage = "weak"\ndata = ["x", 3]\n', [], r"'data\[1\]' expects str, got 3"),
    ],
)
def test_config_errors_name_the_key(tmp_path, text, overrides, message):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_config(WeakConfig, path, overrides)


@pytest.mark.parametrize(("overrides", "where"), [([], "file"), (["lr=abc"], "--set"), (["lerning_rate=1"], "--set")])
def test_key_errors_say_whether_the_file_or_set_gave_the_key(tmp_path, overrides, where):
    """A bad key is looked for where it was written: the TOML file (named) or the --set overrides."""
    path = tmp_path / "c.toml"
    path.write_text('stage = "weak"\ndata = ["x"]\nsteps = "many"\n' if where == "file" else 'stage = "weak"\n')
    with pytest.raises(ConfigError) as info:
        load_config(WeakConfig, path, overrides)
    assert str(info.value).startswith(f"{path}: " if where == "file" else "--set: ")


def test_batch_sizes_must_divide(tmp_path):
    from train.distributed import Runtime

    cfg = WeakConfig(data=["x"], batch_size=12, micro_batch_size=4)
    assert micro_batches(cfg, Runtime(0, 1, 0, None)) == (4, 3)
    with pytest.raises(ConfigError, match="batch_size 12 is not a multiple of micro_batch_size 4 x 2"):
        micro_batches(cfg, Runtime(0, 2, 0, None))
    unset = WeakConfig(data=["x"], batch_size=8)  # no micro_batch_size: stop 61 said "micro_batch_size 2 x 3"
    with pytest.raises(ConfigError, match=r"^batch_size 8 is not divisible by 3 processes; use a multiple of 3 "
                                          r"\(6 or 9\)$"):
        micro_batches(unset, Runtime(0, 3, 0, None))
    # a walk, stop 69: the hint named micro_batch_size, which cannot make 9 rows split over 2 processes
    odd = WeakConfig(data=["x"], batch_size=9, micro_batch_size=3)
    with pytest.raises(ConfigError, match=r"^batch_size 9 is not divisible by 2 processes; use a multiple of 2 "
                                          r"\(8 or 10\)$"):
        micro_batches(odd, Runtime(0, 2, 0, None))
    with pytest.raises(ConfigError, match=r"use a multiple of 4 \(4\)$"):
        micro_batches(WeakConfig(data=["x"], batch_size=3), Runtime(0, 4, 0, None))
    assert micro_batches(unset, Runtime(0, 2, 0, None)) == (4, 1)


def test_config_diff_names_keys():
    saved = {"lr": 1e-3, "log_every": 1, "model_overrides": {"hidden_size": 128}}
    now = {"lr": 1e-3, "log_every": 5, "model_overrides": {"hidden_size": 256}}
    assert config_diff(saved, now) == ["model_overrides.hidden_size: 128 -> 256"]


def test_nested_set_overrides_merge_at_every_depth(tmp_path):
    from train.supervised_config import SupervisedConfig

    path = tmp_path / "s.toml"
    path.write_text('stage = "supervised"\n[tasks.sts]\nkind = "sts"\ndata = ["a"]\nbatch_size = 32\n'
                    '[tasks.ret]\nkind = "retrieval"\ndata = ["b"]\n')  # fmt: skip
    cfg = load_config(SupervisedConfig, path, ["tasks.sts.batch_size=16", "tasks.ret.weight=2"])
    assert cfg.tasks == {"sts": {"kind": "sts", "data": ["a"], "batch_size": 16},
                         "ret": {"kind": "retrieval", "data": ["b"], "weight": 2}}  # fmt: skip
    assert cfg.data == ["a", "b"]
    # a whole table as the value merges alike (docs/training.md says so: a user walk asked, stop 63)
    cfg = load_config(SupervisedConfig, path, ['tasks={cls={kind="classification", data=["c"]}}'])
    assert list(cfg.tasks) == ["sts", "ret", "cls"] and cfg.tasks["cls"] == {"kind": "classification", "data": ["c"]}


def test_typed_lists_are_coerced_per_item():
    assert _coerce("dims", [64, 128.0], list[int]) == [64, 128]
    assert _coerce("weights", [1, 0.5], list[float]) == [1.0, 0.5] and _coerce("dims", 64, list[int]) == [64]
    assert _coerce("data", "a.jsonl", list[str]) == ["a.jsonl"]
    with pytest.raises(ConfigError, match=r"'dims\[1\]' expects int, got 'x'"):
        _coerce("dims", [64, "x"], list[int])
    with pytest.raises(ConfigError, match="'dims' expects a list"):
        _coerce("dims", {"a": 1}, list[int])


def test_resume_safe_keys_are_per_stage():
    from train.supervised_config import SupervisedConfig

    assert WeakConfig.resume_safe == RESUME_SAFE and SupervisedConfig.resume_safe == RESUME_SAFE | {"pools_dir"}
    # the weak stage's micro-batch rows are each other's in-batch negatives: keyed apart (stop 54, audit)
    assert WeakConfig.learned_extras({"batch_size": 16, "micro_batch_size": None}) == {"micro-batch rows": 16}
    assert WeakConfig.learned_extras({"batch_size": 16, "micro_batch_size": 4}) == {"micro-batch rows": 4}
    assert PretrainConfig.learned_extras({"batch_size": 16, "micro_batch_size": 4}) == {}
    saved, now = {"pools_dir": "a", "lr": 1e-4}, {"pools_dir": "b", "lr": 1e-4}
    assert config_diff(saved, now, SupervisedConfig.resume_safe) == []
    assert config_diff(saved, now, WeakConfig.resume_safe) == ["pools_dir: 'a' -> 'b'"]


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    factors = [lr_factor(s, 100, 0.05, 0.1) for s in range(100)]
    assert factors[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert factors[-1] == pytest.approx(0.1) and all(a >= b for a, b in zip(factors[4:], factors[5:], strict=False))
    # 0.07 x 100 is 7.000000000000001 in floats: before stop 52 (audit) ceil made it 8 warmup steps, not 7
    assert [lr_factor(s, 100, 0.07, 0.1) for s in (5, 6)] == pytest.approx([6 / 7, 1.0])


def test_optimizer_decays_matrices_only_and_is_fused_only_on_cuda():
    """Fused AdamW is for plain CUDA parameters (issue 16.3: compiled pretrain MFU 43.5% -> 49.9% on an H200); CPU
    runs keep torch's default update, which every committed CPU report was trained with."""
    import torch

    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4))
    optimizer = build_optimizer(module, WeakConfig(data=["-"], weight_decay=0.1))
    decayed, plain = optimizer.param_groups
    assert [p.dim() for p in decayed["params"]] == [2] and decayed["weight_decay"] == 0.1
    assert len(plain["params"]) == 3 and plain["weight_decay"] == 0.0
    assert optimizer.defaults["fused"] is None and optimizer.defaults["foreach"] is None


def test_a_resumed_optimizer_keeps_this_run_s_update_kernel():
    """A checkpoint saved by a fused CUDA run carries `fused: True` per group; loaded on the CPU it must not switch
    this run to torch's fused CPU kernel (other numerics than every CPU report's)."""
    import torch

    module = torch.nn.Linear(3, 4)
    optimizer = build_optimizer(module, WeakConfig(data=["-"]))
    module(torch.ones(2, 3)).sum().backward()
    optimizer.step()
    saved = optimizer.state_dict()
    for group in saved["param_groups"]:
        group["fused"] = True
    optimizer.load_state_dict(saved)
    assert all(group["fused"] for group in optimizer.param_groups)  # what loading alone does
    keep_update_kernel(optimizer)
    assert all(group["fused"] is None and group["foreach"] is None for group in optimizer.param_groups)


def _harness_like_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="harness")
    cli.register(parser.add_subparsers(dest="command", required=True))
    return parser


def test_harness_train_subcommand_reports_bad_input(tmp_path, capsys):
    path = tmp_path / "w.toml"
    path.write_text(f'stage = "weak"\noutput_dir = "{tmp_path / "out"}"\ndata_root = "{tmp_path}"\n'
                    'data = ["missing.jsonl"]\n')
    args = _harness_like_parser().parse_args(["train", str(path), "--set", "steps=2", "--resume"])
    assert (args.target, args.overrides, args.resume) == (str(path), ["steps=2"], "latest")
    assert args.func(args) == 2
    # the command as typed, as argparse's own refusals name it (before: `train: error:`, a user walk)
    assert capsys.readouterr().err.startswith(f"harness train: error: {tmp_path / 'missing.jsonl'}: data file does "
                                              "not exist")  # fmt: skip


def test_python_m_train_resolves_stage_and_config(tmp_path, capsys):
    path = tmp_path / "p.toml"
    path.write_text('stage = "pretrain"\ndata = ["x"]\n')
    module, cfg = cli.resolve("pretrain", str(path), ["seq_len=16"])
    assert module.CONFIG is PretrainConfig and cfg.seq_len == 16
    assert cli.main(["weak", "--config", str(path)]) == 2
    assert "is a 'pretrain' config, not 'weak'" in capsys.readouterr().err
    assert cli.main([str(tmp_path / "none.toml")]) == 2
    assert "no such config file, and not a stage name" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("lr=inf", "lr must be a finite number >= 0, got inf"),
        ("lr=nan", "lr must be a finite number >= 0, got nan"),
        ("lr=-1", "lr must be a finite number >= 0, got -1.0"),
        ("beta1=2", r"beta1 must be in \[0, 1\), got 2.0"),
        ("beta2=1", r"beta2 must be in \[0, 1\), got 1.0"),
        ("eps=-1e-8", "eps must be a finite number >= 0"),
        ("weight_decay=nan", "weight_decay must be a finite number >= 0, got nan"),
        ("grad_clip=-1", r"grad_clip must be >= 0 \(0: no clipping\), got -1.0"),
        ("threads=-2", "threads must be at least 0 .*got -2"),
        ("device=gpu", "device must be auto, cpu, cuda, .*got 'gpu'"),
    ],
)
def test_optimizer_and_runtime_values_are_checked(override, message):
    """Values torch would take silently (lr=inf trains to NaN, grad_clip=-1 to gradient ascent) or fail on deep
    in a stage with a traceback naming no key."""
    with pytest.raises(ConfigError, match=message):
        load_config(WeakConfig, None, ["data=x.jsonl", override])


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("tokenizer_vocab=10", "tokenizer_vocab must be at least 260 .*got 10"),
        ("tokenizer_rows=0", r"tokenizer_rows must be at least 1 \(rows per file; none: every row\), got 0"),
        ("tokenizer_rows=-5", "tokenizer_rows must be at least 1 .*got -5"),
        ("tokenizer=no/such/tokenizer.json", "tokenizer = 'no/such/tokenizer.json': no such file"),
        ("keep_last=-1", r"keep_last must be at least 0 \(0: keep all\), got -1"),
        ("eval_every=-3", "eval_every must be at least 0 .*got -3"),
        ("data=['x.jsonl', 'sub/../x.jsonl']", "data\\[1\\] = 'sub/../x.jsonl' names the same file as data\\[0\\]"),
        # stop 36: these two failed after the tokenizer was trained, the first as a raw Python TypeError
        ("model_overrides.max_lenght=64", "model_overrides: unknown key 'max_lenght'; did you mean: max_length?"),
        ("model_overrides.hidden_size=-4", "model_overrides {'hidden_size': -4}: hidden_size -4: must be positive"),
    ],
)
def test_values_that_failed_late_or_silently_are_config_errors(override, message):
    """before: tokenizer_vocab=10 and a missing tokenizer file failed with a traceback after the data was read,
    tokenizer_rows=0 trained a 260-token BPE on no text, keep_last=-1 kept every checkpoint, a negative eval_every
    and a file listed twice (its rows trained twice per epoch) were taken as given."""
    with pytest.raises(ConfigError, match=message):
        load_config(WeakConfig, None, ["data=x.jsonl", override])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["init_layers=0"], r"^--set: init_layers=0 needs an `init` model \(it keeps that model's first layers\)$"),
        (["init=smollm2-135m", "init_layers=0"], r"^--set: init_layers must be at least 1, got 0$"),
        (["init=smollm2-135m", "init_layers=-2"], r"^--set: init_layers must be at least 1, got -2$"),
    ],
)
def test_init_layers_errors_say_only_what_is_wrong(overrides, message):
    """A user's walk (stop 66): `init_layers=0` with an init set was told it "needs an `init` model and must be at
    least 1"; the missing init is said only where there is none."""
    with pytest.raises(ConfigError, match=message):
        load_config(WeakConfig, None, ["data=x.jsonl", *overrides])


@pytest.mark.parametrize(
    ("cls", "override", "message"),
    [
        (WeakConfig, "model=small", "model = 'small' cannot be combined with init"),
        (WeakConfig, "model=nosuchpreset", "unknown model preset 'nosuchpreset'"),
        (PretrainConfig, "model_overrides.arch=bert", "model_overrides: 'arch' is set by the pretrain stage itself"),
        (WeakConfig, "model_overrides.attention=bidirectional", "'attention' is set by the weak stage itself "
                                                                r"\(each stage trains under its own mask"),
        (PretrainConfig, "model_overrides.pooling=mean", "'pooling' is set by the pretrain stage itself"),
    ],
)  # fmt: skip
def test_model_keys_a_stage_would_record_and_not_use_are_refused(tmp_path, cls, override, message):
    """Audit, stop 54: `model` beside `init` (the weak config ships one), a model_overrides field the stage sets
    itself, and an unknown preset beside `init` were recorded in train_config.json and changed no weight; `arch`
    trained a decoder to the first save, then failed loading it as a BERT."""
    init = ["init=" + str(tmp_path)] if "model=" in override else []
    with pytest.raises(ConfigError, match=message):
        load_config(cls, None, ["data=x.jsonl", *init, override])
    load_config(WeakConfig, None, ["data=x.jsonl", "model_overrides.pooling=last"])  # the weak stage honours it


def test_a_folder_and_its_train_jsonl_are_one_data_file(tmp_path):
    (tmp_path / "news").mkdir()
    (tmp_path / "news" / "train.jsonl").write_text('{"text": "x"}\n')
    with pytest.raises(ConfigError, match=r"data\[1\] = 'news/train.jsonl' names the same file as data\[0\] = 'news'"):
        load_config(PretrainConfig, None, [f"data_root={tmp_path}", "data=['news', 'news/train.jsonl']"])
    from conan_model.tokenizer import save_tokenizer, train_tokenizer_from_texts

    tok = tmp_path / "tok"
    tok.mkdir()
    save_tokenizer(train_tokenizer_from_texts(["x"] * 3, 300), tok / "tokenizer.json")  # the config loads it
    cfg = load_config(PretrainConfig, None, [f"data_root={tmp_path}", "data=news", f"tokenizer={tok}",
                                             "tokenizer_rows=none", "keep_last=0", "tokenizer_vocab=260"])  # fmt: skip
    assert (cfg.tokenizer, cfg.tokenizer_rows, cfg.keep_last) == (str(tok), None, 0)


def test_a_device_this_machine_lacks_is_refused_before_any_work(shared_data, tmp_path, monkeypatch):
    """before: device='cuda' without CUDA failed with an AssertionError traceback after the tokenizer was trained
    and the model built."""
    import torch

    from train.pretrain import run

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    cfg = PretrainConfig(output_dir=str(tmp_path / "out"), data_root=str(shared_data / "train"), data=["news_en_raw"],
                         tokenizer_vocab=300, tokenizer_rows=50, seq_len=16, batch_size=2, steps=1, device="cuda",
                         threads=1)  # fmt: skip
    with pytest.raises(ConfigError, match="^device = 'cuda': no CUDA device is available here; set device = 'cpu'"):
        run(cfg)
    assert not (tmp_path / "out").exists()
    # loaded, it names where the value was given, as an invalid value does (a walk, stop 66: it named neither)
    toml = tmp_path / "pre.toml"
    toml.write_text('stage = "pretrain"\ndevice = "cuda"\n')
    sets = [f"output_dir={tmp_path / 'out'}", f"data_root={shared_data / 'train'}", "data=news_en_raw"]
    given = ((toml, [], str(toml)), (toml, ["device=cuda"], "--set"), (None, ["device=cuda"], "--set"))
    for path, device, where in given:
        with pytest.raises(ConfigError, match=f"^{re.escape(where)}: device = 'cuda': no CUDA device is available"):
            run(load_config(PretrainConfig, path, sets + device))
    assert not (tmp_path / "out").exists()


def test_an_output_dir_that_cannot_be_a_folder_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    """Before stop 60 `--set output_dir=` trained into the working directory, and a file (or a path under one) was
    a FileExistsError / NotADirectoryError traceback, exit 1; a folder that cannot be written, a PermissionError."""
    file = tmp_path / "file"
    file.write_text("x")
    for value, message in (("", "--set: output_dir is empty: give the folder to train into"),
                           (str(file), f"--set: output_dir = '{file}' cannot be a folder: {file} is a file"),
                           (f"{file}/x", f"--set: output_dir = '{file}/x' cannot be a folder: {file} is a file")):
        assert cli.main(["weak", "--set", "data=x.jsonl", "--set", f"output_dir={value}"]) == 2
        assert f"train: error: {message}" in capsys.readouterr().err
    from train.loop import output_dir_lock

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "mkdir", denied)
    with pytest.raises(ConfigError, match=f"output_dir {tmp_path / 'out'}: cannot be written \\(Permission denied\\)"):
        with output_dir_lock(tmp_path / "out"):
            pass


def test_flex_attention_on_a_device_without_its_backward_is_refused_at_start(shared_data, tmp_path):
    """Before stop 60 attention_backend = 'flex' on the CPU trained until the first soft step (0 < alpha < 1), then
    died with FlexAttention's NotImplementedError traceback, exit 1; a resume did the same. A stage that takes no
    soft step never runs flex, and keeps training with the setting (review: pretrain was refused at first)."""
    from train.loop import takes_soft_steps
    from train.weak import run

    pairs = ["msrp_pairs_en"]
    cfg = WeakConfig(output_dir=str(tmp_path / "out"), data_root=str(shared_data / "train"), data=pairs,
                     tokenizer_vocab=300, tokenizer_rows=50, max_length=16, batch_size=2, steps=3, device="cpu",
                     threads=1, holdout=0, attention_backend="flex")  # fmt: skip
    with pytest.raises(ConfigError, match="attention_backend = 'flex' on cpu: FlexAttention has no backward on cpu "
                                          r"\(torch .*\), only on CUDA; set attention_backend = 'sdpa'"):  # fmt: skip
        run(cfg)
    assert not (tmp_path / "out").exists()
    assert takes_soft_steps(cfg) and takes_soft_steps(dataclasses.replace(cfg, mask_schedule="decelerating"))
    for fixed in ({"mask_schedule": "hard"}, {"mask_schedule": "bidirectional"}, {"steps": 2}):
        assert not takes_soft_steps(dataclasses.replace(cfg, **fixed))
    assert not takes_soft_steps(PretrainConfig(data=["x"], steps=50))


def test_accepted_runtime_values():
    cfg = load_config(WeakConfig, None, ["data=x.jsonl", "grad_clip=0", "threads=0", "device=cuda:1", "beta1=0"])
    assert (cfg.grad_clip, cfg.threads, cfg.device, cfg.beta1) == (0.0, 0, "cuda:1", 0.0)
    assert load_config(WeakConfig, None, ["data=x.jsonl", "device=auto"]).device is None  # pick_device's choice
    assert load_config(WeakConfig, None, ["data=x.jsonl", "device="]).device is None  # empty: unset, as auto


def test_data_stays_under_data_root(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sub").mkdir(parents=True)
    outside.mkdir()
    (outside / "news.jsonl").write_text('{"text": "x"}\n')
    (root / "link").symlink_to(outside)
    base = [f"data_root={root}"]
    for entry in ("../outside/news.jsonl", str(outside / "news.jsonl"), "link/news.jsonl", "sub/../../outside"):
        with pytest.raises(ConfigError, match=rf"data\[0\] = '{entry}' lies outside data_root '{root}'"):
            load_config(PretrainConfig, None, [*base, f"data=['{entry}']"])
    cfg = load_config(PretrainConfig, None, [*base, "data=['sub/../a.jsonl', 'sub']"])
    assert cfg.data_files() == [root / "sub/../a.jsonl", root / "sub" / "train.jsonl"]
    with pytest.raises(ConfigError, match="lies outside data_root"):  # no data_root: the working directory
        load_config(PretrainConfig, None, [f"data={outside / 'news.jsonl'}"])
    # a user's walk (stop 64): a folder entry whose train.jsonl links out trained from outside the root
    (root / "linked").mkdir()
    (root / "linked" / "train.jsonl").symlink_to(outside / "news.jsonl")
    with pytest.raises(ConfigError, match=rf"data\[1\] = 'linked': its train.jsonl links to {outside / 'news.jsonl'}, "
                                          rf"outside data_root '{root}'"):  # fmt: skip
        load_config(PretrainConfig, None, [*base, "data=['sub', 'linked']"])


def test_data_hashes_cover_every_file_a_stage_reads(shared_data, tmp_path):
    """The supervised stage reads its tasks' files and every parallel_en_* folder of a clr task even when `data`
    (its tokenizer text) is set by hand: all of them are hashed, by their bytes. A missing one is an error
    naming it (not a hash of nothing)."""
    from conan_model.fingerprint import files_fingerprint
    from train.supervised_config import SupervisedConfig

    train = shared_data / "train"
    tasks = {"ret": {"kind": "retrieval", "data": "train/cmrc_qp_zh"}, "clr": {"kind": "clr", "parallel": "train"}}
    cfg = SupervisedConfig(data_root=str(shared_data), data=["train/news_en_raw"], tasks=tasks)
    parallel = sorted(train.glob("parallel_en_*"))
    assert len(parallel) >= 2
    expected = {train / "news_en_raw" / "train.jsonl", train / "cmrc_qp_zh" / "train.jsonl",
                *(folder / "train.jsonl" for folder in parallel)}  # fmt: skip
    assert set(cfg.input_files()) == expected
    assert cfg.data_hashes() == {path.relative_to(shared_data).as_posix(): files_fingerprint(path)
                                for path in cfg.input_files()}  # named under data_root: cwd-independent
    (tmp_path / "a.jsonl").write_text('{"text": "x"}\n')
    weak = load_config(WeakConfig, None, [f"data_root={tmp_path}", "data=['a.jsonl', 'gone.jsonl']"])
    with pytest.raises(DataError, match=rf"{tmp_path / 'gone.jsonl'}: data file does not exist"):
        weak.data_hashes()


def test_a_tokenizer_smaller_than_asked_is_said(tmp_path, shared_data, caplog):
    """A BBPE trained on too little text stops short of tokenizer_vocab; before, silently (audit J10: 260 tokens
    for 512 asked). The stage still runs on it, and the log says how to get the size asked for."""
    import logging

    from train.distributed import Runtime
    from train.loop import get_tokenizer

    cfg = PretrainConfig(output_dir=str(tmp_path), data_root=str(shared_data / "train"), data=["news_en_raw"],
                         tokenizer_vocab=4000, tokenizer_rows=3)  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="train"):
        tok = get_tokenizer(cfg, Runtime(0, 1, 0, None), None, ["text"])
    assert tok.get_vocab_size() < 4000
    assert f"the tokenizer has {tok.get_vocab_size()} tokens, fewer than tokenizer_vocab 4000" in caplog.text


def test_tokenizer_keys_beside_init_and_eval_every_without_evaluation_are_said(tmp_path, shared_data, caplog):
    """Audit, stop 54: recorded, and unused without a word (a vocabulary sweep on a stage with `init` trained
    identical models; pretrain evaluates nothing at any eval_every)."""
    import logging

    from train import pretrain
    from train.distributed import Runtime
    from train.loop import get_tokenizer

    tok = tmp_path / "tok.json"
    get_tokenizer(PretrainConfig(output_dir=str(tmp_path), data_root=str(shared_data / "train"), data=["news_en_raw"],
                                 tokenizer_vocab=400, tokenizer_rows=50), Runtime(0, 1, 0, None), None, ["text"])
    (tmp_path / "tokenizer.json").rename(tok)
    cfg = PretrainConfig(output_dir=str(tmp_path / "run"), data_root=str(shared_data / "train"), data=["news_en_raw"],
                         tokenizer=str(tok), tokenizer_vocab=300, steps=1, eval_every=1, seq_len=16, batch_size=2,
                         threads=1)  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="train"):
        pretrain.run(cfg)
    assert f"tokenizer_vocab = 300: unused, {tok} brings its own tokenizer" in caplog.text
    assert "eval_every = 1 has no effect: the pretrain stage evaluates nothing here" in caplog.text


def test_a_task_name_must_stay_a_file_name_and_its_data_list_unique(shared_data: Path, tmp_path: Path) -> None:
    """Audit, stop 47: `[tasks."../../escaped"]` wrote its pools (<pools_dir>/<name>.jsonl) and CLR report outside
    the output folder, and `data = ["a", "a"]` read the file twice (each row drawn twice as often), where
    `["a", "a/train.jsonl"]` was refused."""
    from train.supervised_config import SupervisedConfig

    spec = {"kind": "retrieval", "data": ["train/sick_nli_en"], "batch_size": 4}
    base = {"data_root": str(shared_data), "output_dir": str(tmp_path / "out")}
    for name in ("../../escaped", "a/b", ".hidden", ""):
        with pytest.raises(ConfigError, match=rf"tasks\.{re.escape(name)}: a task name is letters"):
            SupervisedConfig(**base, tasks={name: spec}).task_specs()
    with pytest.raises(ConfigError, match=r"tasks\.r\.data lists train/sick_nli_en more than once"):
        SupervisedConfig(**base, tasks={"r": {**spec, "data": ["train/sick_nli_en", "train/sick_nli_en"]}}).task_specs()
    assert list(SupervisedConfig(**base, tasks={"ret_en-2.b": spec}).task_specs()) == ["ret_en-2.b"]


def test_task_keys_another_kind_reads_are_refused_and_a_partial_mix_is_said(shared_data: Path, tmp_path: Path,
                                                                             caplog) -> None:  # fmt: skip
    """Audit, stop 48: `total`, `mix`, `parallel` on a retrieval task and `hard_negatives` on an STS task loaded
    and changed nothing (`total` was probably meant as max_rows); `--set tasks.clr.mix.zh=50` made a mix of zh
    alone (the paper's mix is no table to merge into), silently."""
    import logging

    from train.supervised_config import SupervisedConfig

    path = tmp_path / "s.toml"
    path.write_text(f'stage = "supervised"\ndata_root = "{shared_data}"\noutput_dir = "{tmp_path / "out"}"\n'
                    '[tasks.ret]\nkind = "retrieval"\ndata = ["train/sick_nli_en"]\n'
                    '[tasks.sts]\nkind = "sts"\ndata = ["train/sick_nli_en"]\n'
                    '[tasks.clr]\nkind = "clr"\nparallel = "train"\n')  # fmt: skip
    for override, message in (
        ("tasks.ret.total=6000", r"tasks\.ret\.total: only a clr task reads it; this task is kind 'retrieval' \(to "
                                 r"cap a task's rows, use max_rows\)"),
        ("tasks.ret.mix.zh=1", r"tasks\.ret\.mix: only a clr task reads it"),
        ("tasks.ret.parallel='train'", r"tasks\.ret\.parallel: only a clr task reads it"),
        ("tasks.sts.hard_negatives=3", r"tasks\.sts\.hard_negatives: only a retrieval or clr or classification task "
                                       r"reads it; this task is kind 'sts' \(CoSENT ranks the pairs of its batch"),
        ("tasks.clr.max_rows=5", "a clr task sizes itself with `total`"),
    ):  # fmt: skip
        with pytest.raises(ConfigError, match=message):
            load_config(SupervisedConfig, path, [override])
    for harmless in ("tasks.sts.hard_negatives=0", "tasks.clr.max_rows=0", "tasks.ret.total=0"):  # nothing asked
        load_config(SupervisedConfig, path, [harmless])
    with caplog.at_level(logging.WARNING, logger="train.supervised_config"):
        cfg = load_config(SupervisedConfig, path, ["tasks.clr.mix.zh=50"])
    assert cfg.tasks["clr"]["mix"] == {"zh": 50}
    assert ("tasks.clr.mix gives 1 language(s) (zh): it replaces the paper's 26-language mix, languages it leaves "
            "out get no share") in caplog.text


def test_one_number_for_a_comma_list_key_is_taken(tmp_path) -> None:
    """Audit of stop 49: `--set mrl_dims=128` (TOML reads a number) was refused, "expects str", where "64,128" was
    taken; a `k` in [dhnm] failed with a TypeError's text where hard_negatives is the key."""
    from train.supervised_config import SupervisedConfig

    config = Path(__file__).resolve().parents[2] / "configs" / "supervised.toml"
    cfg = load_config(SupervisedConfig, config, ["mrl_dims=128", "mrl_weights=1"])
    assert (cfg.mrl_dims, cfg.mrl_weights) == ("128", "1")
    with pytest.raises(ConfigError, match=r"\[dhnm\] k: the hard negatives per row are `hard_negatives`"):
        load_config(SupervisedConfig, config, ["dhnm.k=3"])
