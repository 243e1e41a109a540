"""`harness report`'s hardware: the table of each run's machine and settings, and the note that names each row's
machine when the rows were timed on different ones (Table 5, the per-task table, the throughput chart's legend)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.runs import md_table, shown_batch

if TYPE_CHECKING:
    from reporting.efficiency import RunInfo


def hardware(info: RunInfo) -> str:
    """Where a run's tasks were timed: the processor efficiency.json records per task (the CPU's model, or the
    accelerator's), else run.json's CPU, with run.json's core count and accelerator."""
    env = info.record.get("environment", {})
    processors = sorted({str(p) for e in info.efficiency.values() if (p := e.get("processor"))})
    shown = " / ".join(processors) or str(env.get("cpu") or "CPU not recorded")
    cores = f", {env['cpu_count']} cores" if env.get("cpu_count") else ""
    accelerator = f", accelerator {env['accelerator']}" if env.get("accelerator") else ""
    return shown + cores + accelerator


def hardware_note(infos: list[RunInfo]) -> str:
    """A note naming each row's hardware when the rows with timings were timed on different hardware (another
    processor, core count or accelerator), "" when they were not: before stop 67 (a walk) a row timed on a 64-core
    EPYC sat 5× faster beside 2-core Xeon rows with only the Hardware table to tell them apart."""
    timed = {i.label: hardware(i) for i in infos if i.efficiency}
    if len(set(timed.values())) < 2:
        return ""
    return ("The rows were timed on different hardware, so their times and rates compare the machines as well as "
            "the runs: " + "; ".join(f"{label} ({where})" for label, where in timed.items()) + ".")


def started_busy(record: dict[str, Any]) -> str | None:
    """'load 9.8 on 2 cores' when run.json's `environment.load_average` (as the run started) was above its core
    count in the last minute, else None (not busy, or no load recorded: a run from before stop 70)."""
    env = record.get("environment", {})
    load, cores = env.get("load_average"), env.get("cpu_count")
    if isinstance(load, list) and load and isinstance(load[0], int | float) and isinstance(cores, int):
        return f"load {load[0]:g} on {cores} cores" if load[0] > cores else None
    return None


def busy_note(infos: list[RunInfo]) -> str:
    """A note naming each run with timings that started on a busy machine (its 1-minute load average, run.json's
    `environment.load_average`, above its core count): other work took CPU time from it, so its times are longer
    and its rates lower than the machine gives alone. "" when none did, or none recorded a load (before stop 70)."""
    busy = [f"{info.label} ({load})" for info in infos if info.efficiency and (load := started_busy(info.record))]
    if not busy:
        return ""
    return ("Started on a busy machine, its 1-minute load average above its core count, so other work shared the "
            "CPUs and the times are longer and the rates lower than the machine gives alone: " + "; ".join(busy) + ".")


def hardware_table(infos: list[RunInfo]) -> str:
    rows = []
    for info in infos:
        env, model, rec = info.record.get("environment", {}), info.record.get("model", {}), info.record
        packages = env.get("packages", {})
        rows.append([info.label, env.get("cpu", "—"), env.get("cpu_count", "—"), env.get("torch_threads", "—"),
                     env.get("accelerator") or "none", model.get("device", "—"), model.get("dtype", "—"),
                     shown_batch(rec), rec.get("max_batch_tokens", "—"), rec.get("world_size", 1),
                     packages.get("torch", "—"), packages.get("mteb", "—")])  # fmt: skip
    headers = ["Run", "CPU", "cores", "torch threads", "accelerator", "device", "dtype", "batch", "max batch tokens",
               "world size", "torch", "mteb"]  # fmt: skip
    return md_table(rows, headers=headers, disable_numparse=True)
