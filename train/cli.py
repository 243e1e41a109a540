"""Train a stage (pretrain, mntp, weak, supervised) from a TOML config; `harness train` and `python -m train`.

    python -m train configs/weak.toml --set steps=200 --set init=runs/pretrain/final
    python -m train weak --config configs/weak.toml --resume
    torchrun --standalone --nproc_per_node 8 -m train configs/pretrain.toml --set parallel=fsdp

The stage comes from the TOML's ``stage`` key, or from a stage name given first. ``--set key=value`` overrides
any config key (repeatable); ``--resume`` continues from the newest checkpoint in output_dir, ``--resume PATH``
from that checkpoint.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

from conan_model.errors import ConanError, error_line
from conan_model.process_group import TIMEOUT_ENV, collective_timed_out, group_timeout_s
from conan_model.signals import how_stopped, sigterm_interrupts

from .errors import ConfigError

STAGES = ("pretrain", "mntp", "weak", "supervised")
TOML_POSITION = re.compile(r" \(at line (?P<line>\d+), column (?P<column>\d+)\)$")  # how tomllib's errors end


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("target", help="stage config TOML (its `stage` key picks the stage), or a stage name: "
                        + ", ".join(STAGES))  # fmt: skip
    parser.add_argument("--config", help="config TOML, when the first argument is a stage name")
    parser.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE",
                        help="override a config key (repeatable): --set lr=3e-4 --set model_overrides.max_length=64")
    parser.add_argument("--resume", nargs="?", const="latest", metavar="PATH",
                        help="resume from the newest checkpoint in output_dir, or from the checkpoint at PATH")


def resolve(target: str, config: str | None, overrides: list[str], overrides_name: str = "--set") -> tuple[Any, Any]:
    """(stage module, its config) for a stage name or a TOML path; ``overrides_name`` as `load_config` takes it."""
    from .config import load_config  # imports torch (via conan_model): only when a stage runs, not for `--help`

    if target in STAGES:
        stage, path = target, Path(config) if config else None
        if path is not None:
            read_toml(path, "stage")  # a missing, non-UTF-8 or malformed file: one line naming it
    else:
        if config:
            raise ConfigError(f"give the config once: {target!r} or --config {config!r}")
        path = Path(target)
        if not path.exists():
            # before stop 67 "is neither a stage … nor a config file", which never said the file is not there
            raise ConfigError(f"{target!r}: no such config file, and not a stage name ({', '.join(STAGES)})")
        stage = read_toml(path, "stage").get("stage")
        if stage not in STAGES:
            raise ConfigError(f"{path}: `stage` must be one of {', '.join(STAGES)}, got {stage!r}")
    try:
        module = importlib.import_module(f"train.{stage}")
    except ModuleNotFoundError as e:
        raise ConfigError(f"stage {stage!r} is not available: {e}") from e
    return module, load_config(module.CONFIG, path, overrides, overrides_name)


def read_toml(path: Path, kind: str, error: type[ConanError] = ConfigError) -> dict[str, Any]:
    """The parsed TOML of a ``kind`` config (stage, pipeline, ablation); a directory, a missing file, bytes that are
    not UTF-8 or malformed TOML raise ``error`` naming the file (a non-UTF-8 file was a UnicodeDecodeError
    traceback, a directory "does not exist")."""
    if path.is_dir():
        raise error(f"{kind} config {path} is a directory, not a TOML file")
    if not path.is_file():
        raise error(f"{kind} config {path} does not exist")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason}); save the {kind} config as "
                    "UTF-8") from exc  # fmt: skip
    except tomllib.TOMLDecodeError as exc:  # "<file>:<line>:<column>:", as compilers write it: editors jump there
        reason, at = str(exc), TOML_POSITION.search(str(exc))
        where = f"{path}:{at['line']}:{at['column']}" if at else str(path)
        raise error(f"{where}: invalid TOML: {reason[: at.start()] if at else reason}") from exc


def run_args(args: argparse.Namespace) -> int:
    """Run the stage named by parsed arguments; a ConanError (TrainError...) becomes one line and exit status 2.
    Each line starts with the command as it was typed (``args.said_as``): `harness train`, or `train` for
    `python -m train` and torchrun."""
    from conan_model.device import leave_process_group

    main_rank = os.environ.get("RANK", "0") == "0"
    logging.basicConfig(level=logging.INFO if main_rank else logging.WARNING, format="%(levelname)s: %(message)s")
    cfg = None
    try:
        module, cfg = resolve(args.target, args.config, args.overrides)
        module.run(cfg, resume=args.resume)
        return 0
    except ConanError as e:
        error_line(f"{args.said_as}: error: {e}")
        return e.exit_code
    except RuntimeError as exc:  # a rank hung: gloo's traceback named neither the rank nor the checkpoint kept
        if not collective_timed_out(exc):
            raise
        how = (f"stopped: a collective waited {group_timeout_s():g} s ({TIMEOUT_ENV}) for another rank, which hung "
               "or is slower than that (raise it if a rank needs longer)")  # fmt: skip
        error_line(f"{args.said_as}: error: {interrupted_message(cfg, how)}")
        return 1
    except KeyboardInterrupt as exc:  # what is kept and how to go on, not a traceback; Ctrl-C 130 (128 + SIGINT),
        # SIGTERM (conan_model.signals.Terminated: "terminated (SIGTERM)", either CLI's main) carries its own, 143
        if main_rank:
            print(f"{args.said_as}: {interrupted_message(cfg, how_stopped(exc))}", file=sys.stderr)
        return getattr(exc, "exit_code", 130)
    finally:
        leave_process_group()


def interrupted_message(cfg: Any | None, how: str = "interrupted") -> str:
    """What an interrupted stage leaves, for the user: the newest complete checkpoint in ``cfg.output_dir`` and
    that ``--resume`` continues from it (None: the config was not loaded yet). ``how`` it was stopped leads
    ("terminated (SIGTERM)"). No prefix, so ``harness train`` can print it as its own."""
    if cfg is None:
        return f"{how} before the stage started; nothing was trained"
    from .checkpoint import CHECKPOINTS, checkpoint_dirs

    kept, where = checkpoint_dirs(cfg.output_dir), Path(cfg.output_dir) / CHECKPOINTS
    if not kept:
        return (f"{how} before the first checkpoint (none in {where}); rerun, with or without --resume, to "
                "start again")  # fmt: skip
    return f"{how}; checkpoints up to {kept[-1].name} are kept in {where}; continue with --resume"


def register(subparsers: Any) -> None:
    """Add ``harness train`` to the harness CLI (harness/cli.py PLUGIN_COMMANDS)."""
    parser = subparsers.add_parser("train", help="train a stage (pretrain, mntp, weak, supervised) from a TOML config",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.set_defaults(func=run_args, said_as="harness train")  # as argparse's own refusals (before: `train:`)


def main(argv: list[str] | None = None, process_exits_after: bool = False) -> int:
    """`python -m train` and `torchrun -m train` (each rank): SIGTERM is said in one line and exits 143, as under
    `harness train`, instead of ending the process silently. ``process_exits_after``: from train/__main__.py, see
    `sigterm_interrupts`."""
    parser = argparse.ArgumentParser(prog="python -m train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    parser.set_defaults(said_as="train")
    args = parser.parse_args(argv)
    with sigterm_interrupts(process_exits_after):
        return run_args(args)
