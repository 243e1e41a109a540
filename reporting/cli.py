"""`harness report | regress`: registered through PLUGIN_COMMANDS; work is imported lazily."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_regress(args: argparse.Namespace) -> int:
    from harness.errors import UsageError
    from harness.runs import atomic_write_text
    from reporting.regress import EXIT_OK, EXIT_REGRESSION, compare, render

    if not 0 < args.alpha < 1 or args.n_boot < 10 or args.min_effect < 0:
        raise UsageError("--alpha must be in (0, 1), --n-boot at least 10, --min-effect non-negative")
    if args.dim is not None and args.dim < 1:
        raise UsageError(f"--dim must be a positive integer (an MRL dim the runs were scored at), got {args.dim}")
    comp = compare(Path(args.baseline), Path(args.candidate), alpha=args.alpha, n_boot=args.n_boot, seed=args.seed,
                   min_effect=args.min_effect / 100, bonferroni=args.bonferroni, tasks=args.tasks,
                   dim=args.dim)  # fmt: skip
    text = render(comp)
    atomic_write_text(Path(args.out), text)
    print(text)
    print(f"regression report written to {args.out}")
    return EXIT_REGRESSION if comp.regressed or comp.failed else EXIT_OK


def cmd_report(args: argparse.Namespace) -> int:
    from reporting.efficiency import write_report

    path = write_report([Path(p) for p in args.runs], Path(args.out))
    print(f"efficiency report written to {path}")
    return 0


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def register(subparsers: argparse._SubParsersAction) -> None:
    rg = subparsers.add_parser("regress", help="candidate vs baseline run: per-task bootstrap CIs, exit 1 on a "
                               "significant regression or a task that failed in the candidate")  # fmt: skip
    rg.add_argument("--baseline", required=True, help="run directory of the reference model")
    rg.add_argument("--candidate", required=True, help="run directory of the model under test")
    rg.add_argument("--alpha", type=float, default=0.05, help="two-sided significance level (default 0.05)")
    rg.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    rg.add_argument("--seed", type=int, default=0)
    rg.add_argument("--min-effect", type=float, default=0.1, help="smallest change, in points of the ×100 score, "
                    "that can count as a regression or improvement (default 0.1)")  # fmt: skip
    rg.add_argument("--bonferroni", action="store_true", help="divide alpha by the number of tasks tested")
    rg.add_argument("--tasks", type=_csv, help="only these tasks (comma-separated)")
    rg.add_argument("--dim", type=int, help="compare at this MRL dim (first DIM dimensions, renormalised); both runs "
                    "need `harness run --dims DIM --dim-predictions`")  # fmt: skip
    rg.add_argument("--out", default="regression.md", help="markdown file to write (default regression.md)")
    rg.set_defaults(func=cmd_regress)

    rp = subparsers.add_parser("report", help="efficiency report: Table 5, throughput, MRL curves (PNG + markdown)")
    rp.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run directories written by `harness run`")
    rp.add_argument("--out", default="report", help="folder for efficiency.md and the plots (default report/)")
    rp.set_defaults(func=cmd_report)
