"""`gfm evaluate`: HR@10 per item type on the hold-out for every available model -> reports/."""

from __future__ import annotations

import argparse

from gfm.cli.common import Context
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
    return parser


def run(args: argparse.Namespace, ctx: Context) -> None:
    from evaluation.evaluate import MODELS, ModelUnavailable, evaluate_retrievers, write_reports
    from evaluation.split import load_split

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

    timeline = ctx.timeline()
    print(f"hold-out [{timeline.cutoff:%Y-%m-%d}, {timeline.holdout_end:%Y-%m-%d}), "
          f"users as of the cutoff snapshot")
    split = load_split(ctx.workspace, timeline)
    if args.sample_users is not None:
        split = split.with_sampled_users(args.sample_users, args.sample_seed)
    retrievers = {}
    for name in names:
        try:
            retrievers[name] = MODELS[name](split, ctx.workspace)
        except ModelUnavailable as exc:
            if args.models:  # asked for by name: not having it is an error
                raise
            print(f"skipping {name}: {exc}")
    report = evaluate_retrievers(split, retrievers, batch_size=args.batch_size)
    paths = write_reports(report, ctx.workspace.reports_dir)
    print()
    print(paths["markdown"].read_text())
    print("reports: " + ", ".join(str(p) for p in paths.values()))
