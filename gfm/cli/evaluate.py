"""`gfm evaluate`: HR@10 per item type on the hold-out for every available model -> reports/.

Parses and checks the flags; evaluation.run does the work."""

from __future__ import annotations

import argparse

from gfm.cli.common import Context, child_flags
from gfm.errors import ConfigError


def register(subparsers) -> argparse.ArgumentParser:
    from evaluation.evaluate import MODELS  # light: numpy only; model libraries load on use

    parser = subparsers.add_parser(
        "evaluate",
        help="Hit-Rate@10, MRR@100 and coverage@10 per item type on the hold-out, for every "
             "model available; writes <workdir>/reports/",
    )
    parser.add_argument("--models", default=None, metavar="NAME[,NAME...]",
                        help="comma-separated models to evaluate (default: every one whose "
                             f"inputs exist): {', '.join(MODELS)}")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="users scored at once (default: sized for about 64 MiB of scores)")
    parser.add_argument("--sample-users", type=int, default=None, metavar="N",
                        help="evaluate a seeded random sample of N hold-out users (default: all; "
                             "for quick looks at big workspaces)")
    parser.add_argument("--sample-seed", type=int, default=0, help="seed of --sample-users")
    parser.add_argument("--experiments", choices=["paper"], default=None,
                        help="paper: also train and evaluate the seed paper's variants on the "
                             "same split (Table 1 audiobook_2t, Table 2 unified_2t_no_gnn, "
                             "Table 3 unified_2t_hgnn_daily), with paired comparisons in "
                             "metrics.json's 'paper' section and "
                             "reports/hr_at_10_ci.png (minutes: trains models)")
    parser.add_argument("--daily-days", type=int, default=3, metavar="N",
                        help="with --experiments paper: simulated days of Table 3, the HGNN "
                             "retrained daily vs frozen (default 3; 0 skips it; each day "
                             "retrains the HGNN and two two-towers on workspace copies)")
    parser.add_argument("--table1-type", default="audiobook", metavar="TYPE",
                        help="with --experiments paper: the item type of Table 1's single-type "
                             "model TYPE_2t (default audiobook, as in the paper)")
    parser.add_argument("--rolling", type=int, default=1, metavar="N",
                        help="also evaluate at N-1 earlier cutoffs, every --every days back, "
                             "each rebuilt from raw data in <workdir>/rolling/ (transform and "
                             "the models' training: minutes per cutoff), and pool hits and "
                             "users over all N; for small hold-outs (default 1: off)")
    parser.add_argument("--every", type=int, default=None, metavar="D",
                        help="days between rolling cutoffs (default: timeline.holdout_days, "
                             "so the hold-outs do not overlap)")
    return parser


def run(args: argparse.Namespace, ctx: Context) -> None:
    from evaluation.evaluate import MODELS
    from evaluation.run import EvaluateOptions, run_evaluation

    if args.models:
        names = [n.strip() for n in args.models.split(",") if n.strip()]
        unknown = [n for n in names if n not in MODELS]
        if unknown:
            raise ConfigError(f"--models: unknown model(s) {', '.join(unknown)}; "
                              f"known: {', '.join(MODELS)}")
    else:
        names = list(MODELS)
    for flag in ("batch_size", "sample_users"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            raise ConfigError(f"--{flag.replace('_', '-')} must be at least 1")
    if args.daily_days < 0:
        raise ConfigError("--daily-days must be 0 (skip Table 3) or more")
    if args.rolling < 1:
        raise ConfigError("--rolling must be at least 1 (1 = the configured cutoff only)")

    options = EvaluateOptions(
        models=names, explicit=bool(args.models), batch_size=args.batch_size,
        sample_users=args.sample_users, sample_seed=args.sample_seed,
        experiments=getattr(args, "experiments", None), daily_days=args.daily_days,
        table1_type=args.table1_type, rolling=args.rolling, every=args.every,
        child_flags=child_flags(args))
    paths = run_evaluation(ctx.workspace, ctx.config, ctx.timeline(), options)
    print()
    print(paths["markdown"].read_text())
    print("reports: " + ", ".join(str(p) for p in paths.values()))
