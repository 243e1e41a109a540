"""A config file that is not valid TOML: the error starts with <file>:<line>:<column>, as a DataError does."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main


@pytest.mark.parametrize(("text", "where", "reason"), [
    ('stage = "weak"\ndata = ["x"\nsteps = 3\n', "3:1", "Unclosed array"),
    ('stage = "weak"\n[model_overrides]\nmax_length = 32\n[model_overrides]\n', "4:17", "Cannot declare"),
])  # fmt: skip
def test_a_toml_syntax_error_is_named_file_line_column(tmp_path: Path, capsys, text: str, where: str,
                                                       reason: str) -> None:  # fmt: skip
    """Before: `c.toml: invalid TOML: Unclosed array (at line 3, column 1)`, a position no editor or terminal
    jumps to; the stage, pipeline and ablation configs are all read by this one reader."""
    path = tmp_path / "c.toml"
    path.write_text(text, encoding="utf-8")
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"harness train: error: {path}:{where}: invalid TOML: {reason}") and "(at line" not in err
    assert err.count("\n") == 1


@pytest.mark.parametrize(("in_file", "sets", "where"), [
    ("lr = -1.0\n", [], "FILE"),
    ("", ["--set", "lr=-1"], "--set"),
    ("lr = 1e-4\n", ["--set", "steps=-5"], "--set"),
    ("warmup_ratio = 0.1\n", ["--set", "min_lr_ratio=2"], "--set"),  # before stop 60 one message for both keys
    ("min_lr_ratio = 2.0\n", ["--set", "warmup_ratio=0.1"], "FILE"),
    ('model = "tiny"\n', ["--set", "init_layers=2"], "--set"),  # "an `init` model": `model` only in passing
])  # fmt: skip
def test_a_value_out_of_range_names_where_it_was_given(tmp_path: Path, capsys, in_file: str, sets: list[str],
                                                       where: str) -> None:  # fmt: skip
    """Before stop 49 (audit): `train: error: lr must be a finite number >= 0, got -1.0`, naming neither the file
    nor --set, where a key or type error names its source."""
    path = tmp_path / "c.toml"
    path.write_text('stage = "pretrain"\n' + in_file, encoding="utf-8")
    assert main(["train", str(path), *sets]) == 2
    source = where.replace("FILE", str(path))
    assert capsys.readouterr().err.startswith(f"harness train: error: {source}: ")


def test_a_tokenizer_file_that_does_not_frame_texts_is_refused_at_load(tmp_path: Path, capsys) -> None:
    """Audit of stop 49: `tokenizer` was only checked to exist, so a file without the framing specials (an imported
    model's own tokenizer.json) failed with a ValueError traceback after the output folder was locked."""
    from tokenizers import processors

    from conan_model.tokenizer import load_tokenizer, save_tokenizer, train_tokenizer_from_texts

    bare = train_tokenizer_from_texts([f"a line of text number {i}" for i in range(50)], 300)
    save_tokenizer(bare, tmp_path / "good.json")
    bare = load_tokenizer(tmp_path / "good.json")
    bare.post_processor = processors.ByteLevel(trim_offsets=False)
    save_tokenizer(bare, tmp_path / "bare.json")
    config = tmp_path / "c.toml"
    config.write_text(f'stage = "pretrain"\noutput_dir = "{tmp_path / "out"}"\n', encoding="utf-8")
    assert main(["train", str(config), "--set", f"tokenizer={tmp_path / 'bare.json'}"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness train: error: --set: tokenizer = ") and "does not add <bos> and <eos>" in err
    assert err.count("\n") == 1 and not (tmp_path / "out").exists()


SUPERVISED = ('stage = "supervised"\n[tasks.ret]\nkind = "retrieval"\ndata = ["r.jsonl"]\n'
              '[tasks.sts]\nkind = "sts"\ndata = ["s.jsonl"]\n')  # fmt: skip


@pytest.mark.parametrize(("config", "in_file", "sets", "message"), [
    (SUPERVISED, "", ["hard_negatives=-1"], "--set: hard_negatives must be at least 0, got -1"),
    (SUPERVISED, "", ["pool_depth=0"], "--set: pool_depth must be at least 1, got 0"),
    (SUPERVISED, "", ["cosent_scale=-5"], "--set: cosent_scale must be positive, got -5.0"),
    (SUPERVISED, "temperature = 0.0\n", [], "FILE: temperature must be positive, got 0.0"),
    # before stop 63 these failed after the pools were mined and a tokenizer trained, naming no source
    (SUPERVISED, "", ["max_length=0"], "--set: max_length must be at least 2, got 0"),
    (SUPERVISED, "max_length = -1\n", [], "FILE: max_length must be at least 2, got -1"),
    (SUPERVISED, "", ["dhnm.skip_tops=1"], "--set: [dhnm]: unknown key(s) ['skip_tops']; did you mean: skip_top?; "
                                           "the keys are decay_ratio, init_threshold, max_current, mode, skip_top"),
    (SUPERVISED, "[dhnm]\nskip_tops = 1\n", [], "FILE: [dhnm]: unknown key(s) ['skip_tops']; did you mean"),
    (SUPERVISED, "", ["tasks.rett.batch_size=3"], "--set: tasks.rett: unknown task 'rett' (no kind); did you mean: "
                                                  "ret?; the tasks are ret, sts, and a new one needs kind = one of "
                                                  "retrieval, clr, classification, sts"),
    ('stage = "weak"\ndata = ["x"]\n', "", ["holdout=-1"], "--set: holdout must be at least 0 (0: no held-out "
                                                           "evaluation), got -1"),
    ('stage = "weak"\ndata = ["x"]\n', "bucket_window = 0\n", [], "FILE: bucket_window must be at least 1 (1: no "
                                                                  "bucketing), got 0"),
    ('stage = "pretrain"\n', "", ["warmup_ratio=2"], "--set: warmup_ratio must be in [0, 1), got 2.0"),
    ('stage = "pretrain"\n', "min_lr_ratio = 5\n", [], "FILE: min_lr_ratio must be in [0, 1], got 5.0"),
    ('stage = "pretrain"\n', "", ["seed=-1"], "--set: seed must be in [0, 2**63), got -1"),  # torch: 2**64-1
    ('stage = "pretrain"\n', "seed = 9223372036854775808\n", [], "FILE: seed must be in [0, 2**63), got "
                                                                  "9223372036854775808"),
])  # fmt: skip
def test_each_range_check_names_its_key_value_and_source(tmp_path: Path, capsys, config: str, in_file: str,
                                                         sets: list[str], message: str) -> None:  # fmt: skip
    """Before stop 60 one line named several keys and no value ("temperature and cosent_scale must be positive,
    hard_negatives >= 0, pool_depth >= 1", "warmup_ratio must be in [0, 1) and min_lr_ratio in [0, 1]"), a stage
    `--set hard_negatives=-1` was blamed on the TOML file and a task key never written, a misspelt [dhnm] key was
    "DHNMConfig.__init__() got an unexpected keyword argument", a misspelt task in --set "kind must be one of"; and
    (before stop 63) a supervised max_length below 2 failed late, leaving pools/ and tokenizer.json behind."""
    path = tmp_path / "c.toml"
    head, tables, rest = config.partition("[tasks")  # top-level keys before the first table
    path.write_text(head + (in_file if not in_file.startswith("[") else "") + tables + rest
                    + (in_file if in_file.startswith("[") else ""), encoding="utf-8")  # fmt: skip
    assert main(["train", str(path), *[a for s in sets for a in ("--set", s)]]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"harness train: error: {message.replace('FILE', str(path))}") and err.count("\n") == 1


def _two_tasks(tmp_path: Path, ret: str, sts: str) -> Path:
    """A supervised config whose tasks `ret` and `sts` read the data lists ``ret`` and ``sts`` under tmp_path,
    which holds folder/train.jsonl and good.jsonl."""
    (tmp_path / "folder").mkdir(exist_ok=True)
    for name in ("folder/train.jsonl", "good.jsonl"):
        (tmp_path / name).write_text('{"query": "q", "positive": "p", "score": 1.0}\n', encoding="utf-8")
    path = tmp_path / "c.toml"
    path.write_text(f'stage = "supervised"\ndata_root = "{tmp_path}"\noutput_dir = "{tmp_path / "out"}"\n'
                    f'[tasks.ret]\nkind = "retrieval"\ndata = {ret}\n[tasks.sts]\nkind = "sts"\ndata = {sts}\n')
    return path


def test_a_file_shared_by_tasks_is_one_stage_file_however_spelled(tmp_path: Path) -> None:
    """Before stop 63 the stage's `data` held every task's spellings, so `folder` in one task and
    `folder/train.jsonl` in another were refused: `data[1] = 'folder/train.jsonl' names the same file as data[0]`,
    a key the user never wrote (configs/supervised.toml shares files between tasks)."""
    from train.config import load_config
    from train.supervised_config import SupervisedConfig

    path = _two_tasks(tmp_path, '["folder", "good.jsonl"]', '["folder/train.jsonl", "./good.jsonl"]')
    cfg = load_config(SupervisedConfig, path)
    assert cfg.data == ["./good.jsonl", "folder"]
    assert cfg.input_files() == [tmp_path / "good.jsonl", tmp_path / "folder" / "train.jsonl"]


@pytest.mark.parametrize(("ret", "sets", "where", "task"), [
    ('["good.jsonl"]', ["tasks.ret.data=['good.jsonl', './good.jsonl']"], "--set", "ret"),
    ('["good.jsonl"]', ["tasks.sts.data=['good.jsonl', './good.jsonl']", "tasks.ret.batch_size=4"], "--set", "sts"),
    ('["good.jsonl", "./good.jsonl"]', [], "FILE", "ret"),
    ('["good.jsonl", "./good.jsonl"]', ["tasks.sts.batch_size=4"], "FILE", "ret"),  # a --set of another task
])  # fmt: skip
def test_a_task_listing_a_file_twice_however_spelled_names_the_task_key_and_source(
        tmp_path: Path, capsys, ret: str, sets: list[str], where: str, task: str) -> None:  # fmt: skip
    """Before stop 63 `--set 'tasks.ret.data=["good.jsonl","./good.jsonl"]'` was caught only in the stage's
    `data`: `sup.toml: data[1] = 'good.jsonl' names the same file as data[0] = './good.jsonl'`, order swapped,
    a key never written, blamed on the TOML file."""
    path = _two_tasks(tmp_path, ret, '["folder"]')
    assert main(["train", str(path), *[a for s in sets for a in ("--set", s)]]) == 2
    source = str(path) if where == "FILE" else "--set"
    assert capsys.readouterr().err == (f"harness train: error: {source}: tasks.{task}.data[1] = './good.jsonl' "
                                       f"names the same file as tasks.{task}.data[0] = 'good.jsonl'; list each "
                                       "file once\n")  # fmt: skip


def test_a_supervised_max_length_below_two_is_refused_before_any_work(shared_data: Path, tmp_path: Path,
                                                                       capsys) -> None:  # fmt: skip
    """Before stop 63 the supervised stage mined its BM25 pools and trained a tokenizer first, then failed at the
    prompt-room check naming no source, leaving pools/ and tokenizer.json in output_dir; the weak stage refused
    it at load."""
    path = tmp_path / "s.toml"
    path.write_text(f'stage = "supervised"\ndata_root = "{shared_data / "train"}"\noutput_dir = "{tmp_path / "out"}"\n'
                    'tokenizer_vocab = 300\ntokenizer_rows = 20\n'
                    '[tasks.ret]\nkind = "retrieval"\ndata = ["sick_nli_en"]\nmax_rows = 8\nbatch_size = 2\n',
                    encoding="utf-8")  # fmt: skip
    assert main(["train", str(path), "--set", "max_length=0", "--set", "steps=1"]) == 2
    assert capsys.readouterr().err == "harness train: error: --set: max_length must be at least 2, got 0\n"
    assert not (tmp_path / "out").exists()
