"""`harness report`'s hardware (reporting/hardware.py): rows timed on different machines are named as such."""

from __future__ import annotations

import json
import re
import shutil

from harness.cli import main
from reporting.efficiency import load_runs
from reporting.plots import throughput_figure


def test_rows_timed_on_different_hardware_say_so_and_a_run_without_timings_has_no_bars(tiny_runs, tmp_path):
    """A walk (stop 67): a row timed on a 64-core EPYC sat 5x faster beside 2-core rows with no note (the CPU only
    in the Hardware table), the throughput chart said nothing of it, and a run with no efficiency.json sat in the
    chart's legend with no bar."""
    base, other, untimed = tmp_path / "base", tmp_path / "other", tmp_path / "untimed"
    for run in (base, other):
        shutil.copytree(tiny_runs["base"], run)
    shutil.copytree(tiny_runs["short"], untimed)
    (untimed / "efficiency.json").unlink()
    record = json.loads((other / "run.json").read_text(encoding="utf-8"))
    record["environment"].update(cpu="AMD EPYC 7B13", cpu_count=64)
    (other / "run.json").write_text(json.dumps(record), encoding="utf-8")
    eff = json.loads((other / "efficiency.json").read_text(encoding="utf-8"))
    for figures in eff.values():
        figures["processor"] = "AMD EPYC 7B13"
    (other / "efficiency.json").write_text(json.dumps(eff), encoding="utf-8")
    here = json.loads((base / "run.json").read_text(encoding="utf-8"))["environment"]
    processor = json.loads((base / "efficiency.json").read_text(encoding="utf-8"))["TinySTS"]["processor"]
    out = tmp_path / "report"
    assert main(["report", str(base), str(other), str(untimed), "--out", str(out)]) == 0
    text = re.sub(r"\s+", " ", (out / "efficiency.md").read_text(encoding="utf-8"))
    note = (f"The rows were timed on different hardware, so their times and rates compare the machines as well as "
            f"the runs: all-MiniLM-L6-v2 [base] ({processor}, {here['cpu_count']} cores); all-MiniLM-L6-v2 [other] "
            "(AMD EPYC 7B13, 64 cores).")  # fmt: skip
    assert text.count(note) == 2  # under Table 5 and under the per-task table
    figure = throughput_figure(load_runs([base, other, untimed]))
    (legend,) = figure.legends
    assert [t.get_text() for t in legend.get_texts()] == [
        f"all-MiniLM-L6-v2 [base] — {processor}, {here['cpu_count']} cores",
        "all-MiniLM-L6-v2 [other] — AMD EPYC 7B13, 64 cores"]  # fmt: skip
    tasks = json.loads((base / "run.json").read_text(encoding="utf-8"))["tasks"]
    assert len(figure.axes[0].patches) == 2 * len(tasks)  # two runs' bars, none for the untimed one
    assert main(["report", str(base), str(tiny_runs["short"]), "--out", str(out)]) == 0  # one machine: no note
    assert "timed on different hardware" not in (out / "efficiency.md").read_text(encoding="utf-8")


def test_a_run_started_on_a_busy_machine_is_named(tiny_runs, tmp_path):
    """A C-MTEB walk (stop 70): a report gave texts/s measured at load 10 on 2 cores as the machine's rates. run.json
    records the load average as the run starts; a timed run whose 1-minute load exceeds its cores is named, by
    `harness report` and among regress's efficiency warnings."""
    from harness import sysinfo

    base, busy = tmp_path / "base", tmp_path / "busy"
    for run in (base, busy):
        shutil.copytree(tiny_runs["base"], run)
    assert len(sysinfo.load_average()) == 3 and all(x >= 0 for x in sysinfo.load_average())
    for run, load in ((base, [0.4, 0.5, 0.6]), (busy, [9.8, 7.1, 5.0])):
        record = json.loads((run / "run.json").read_text(encoding="utf-8"))
        record["environment"].update(load_average=load, cpu_count=2)
        (run / "run.json").write_text(json.dumps(record), encoding="utf-8")
    out = tmp_path / "report"
    assert main(["report", str(base), str(busy), "--out", str(out)]) == 0
    text = re.sub(r"\s+", " ", (out / "efficiency.md").read_text(encoding="utf-8"))
    note = ("Started on a busy machine, its 1-minute load average above its core count, so other work shared the "
            "CPUs and the times are longer and the rates lower than the machine gives alone: all-MiniLM-L6-v2 "
            "[busy] (load 9.8 on 2 cores).")  # fmt: skip
    assert text.count(note) == 2 and "[base] (load" not in text  # under Table 5 and under the per-task table
    from reporting.regress import compare

    warnings = compare(base, busy, n_boot=20).warnings
    assert "the candidate started on a busy machine (load 9.8 on 2 cores): its times are longer and its rates lower " \
        "than the machine gives alone" in warnings and not any(w.startswith("the baseline started") for w in warnings)
