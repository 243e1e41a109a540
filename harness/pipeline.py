"""`harness pipeline CONFIG`: train stages → evaluate checkpoints (and baselines) → leaderboard → efficiency report.

Every step is resumable: a finished step is recorded in `<out>/pipeline.json` and skipped on a rerun; a training
stage interrupted half-way continues from its newest checkpoint (`--resume latest` semantics); an evaluation
skips the tasks its run directory already finished. Config (TOML), with paths relative to the working directory:

    out = "runs/pipeline"
    [[train]]                                   # zero or more stages, run in order
    config = "configs/pretrain.toml"
    set = ["steps=200", "output_dir='runs/pipeline/pretrain'"]
    [eval]
    tasks = ["STSBenchmark", "STS16"]           # or suite = "local-en"
    data_dir = "../shared/data"                 # default: $HARNESS_DATA, else the embedded sample
    checkpoints = ["runs/pipeline/weak/final"]  # conan checkpoints; default: every train stage's final export
    baselines = ["minilm"]                      # any harness model specs
    dims = ["64", "128", "full"]                # optional MRL sweep
    [leaderboard]
    published = true                            # add the shipped published-score snapshot
"""

from __future__ import annotations

import argparse
import tomllib
from pathlib import Path
from typing import Any

from harness.errors import UsageError
from harness.runs import atomic_write_json, read_json

STATE = "pipeline.json"


def read_toml(path: Path, kind: str) -> dict[str, Any]:
    """The parsed TOML of a `kind` config (pipeline, ablation); a missing or malformed file exits 2 naming it."""
    if not path.is_file():
        raise UsageError(f"{kind} config {path} does not exist")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: invalid TOML: {exc}") from exc


def load_pipeline(path: Path) -> dict[str, Any]:
    cfg = read_toml(path, "pipeline")
    evaluation = cfg.get("eval")
    if not evaluation or not (evaluation.get("suite") or evaluation.get("tasks")):
        raise UsageError(f"{path}: [eval] needs `suite` or `tasks`")
    unknown = set(cfg) - {"out", "train", "eval", "leaderboard"}
    if unknown:
        raise UsageError(f"{path}: unknown keys {sorted(unknown)} (expected out, train, eval, leaderboard)")
    return cfg


class Pipeline:
    def __init__(self, cfg: dict[str, Any]):
        self.cfg = cfg
        self.out = Path(cfg.get("out", "runs/pipeline"))
        self.out.mkdir(parents=True, exist_ok=True)
        self.state: dict[str, Any] = read_json(self.out / STATE, {"done": {}})

    def _done(self, step: str) -> Any:
        return self.state["done"].get(step)

    def _finish(self, step: str, value: Any) -> None:
        self.state["done"][step] = value
        atomic_write_json(self.out / STATE, self.state)

    def _say(self, step: str, message: str) -> None:
        print(f"[pipeline] {step}: {message}", flush=True)

    def train(self) -> list[str]:
        """Run each stage (or skip it when recorded done); returns the final checkpoints in order."""
        from train.cli import resolve

        finals = []
        for i, stage in enumerate(self.cfg.get("train", [])):
            step = f"train:{i}:{stage['config']}"
            if self._done(step):
                self._say(step, f"done earlier → {self._done(step)}")
                finals.append(self._done(step))
                continue
            module, stage_cfg = resolve(stage["config"], None, list(stage.get("set", [])))
            self._say(step, f"training stage {module.__name__.split('.')[-1]} into {stage_cfg.output_dir}")
            final = module.run(stage_cfg, resume="latest")
            self._finish(step, str(final))
            finals.append(str(final))
        return finals

    def evaluate(self, finals: list[str]) -> list[Path]:
        from harness.checks import parse_dims
        from harness.env import data_root
        from harness.models import ModelOptions
        from harness.runner import RunConfig, run

        ev = self.cfg["eval"]
        specs = [f"conan:{c}" for c in ev.get("checkpoints", finals)] + list(ev.get("baselines", []))
        runs = []
        for spec in specs:
            name = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in spec)
            data_dir = data_root(ev.get("data_dir"))[0]
            run_cfg = RunConfig(model=spec, data_dir=data_dir,
                                out=self.out / "evals", suite=ev.get("suite"), tasks=ev.get("tasks"), run_name=name,
                                dims=parse_dims([str(d) for d in ev.get("dims", [])]),
                                options=ModelOptions(device=ev.get("device")), show_progress=False)  # fmt: skip
            step = f"eval:{spec}"
            self._say(step, "evaluating (finished tasks are skipped)")
            if run(run_cfg) != 0:
                raise UsageError(f"evaluation of {spec} had failing tasks: see {run_cfg.out / name / 'run.json'}")
            self._finish(step, str(run_cfg.out / name))
            runs.append(run_cfg.out / name)
        return runs

    def summarize(self, runs: list[Path]) -> None:
        from harness.runs import atomic_write_text
        from harness.suites import OFFICIAL_SUITES
        from leaderboards.build import SuiteRef, build_board
        from leaderboards.published import SNAPSHOT
        from leaderboards.render import render
        from reporting.efficiency import write_report

        lb = self.cfg.get("leaderboard", {})
        published = [SNAPSHOT] if lb.get("published") else []
        name = self.cfg["eval"].get("suite")  # a local suite ranks over the tasks the runs hold
        suite = SuiteRef(name, OFFICIAL_SUITES[name]) if name in OFFICIAL_SUITES else None
        board = build_board(runs, published, suite, bool(self.cfg["eval"].get("dims")))
        atomic_write_text(self.out / "leaderboard.md", render(board))
        self._finish("leaderboard", str(self.out / "leaderboard.md"))
        report = write_report(runs, self.out / "report")
        self._finish("report", str(report))
        self._say("done", f"leaderboard {self.out / 'leaderboard.md'}, report {report}")


def run_pipeline(path: Path) -> int:
    from train.errors import TrainError

    pipeline = Pipeline(load_pipeline(path))
    try:
        finals = pipeline.train()
    except TrainError as exc:  # the train CLI's one-line errors, surfaced through the harness CLI
        raise UsageError(f"train stage: {exc}") from exc
    runs = pipeline.evaluate(finals)
    pipeline.summarize(runs)
    return 0


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("pipeline", help="train stages → evaluate checkpoints → leaderboard → report",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("config", type=Path, help="pipeline TOML (see configs/pipeline.toml)")
    parser.set_defaults(func=lambda args: run_pipeline(args.config))
