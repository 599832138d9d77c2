"""`gfm tune MODEL`: hyper-parameters chosen on a validation split that ends at the cutoff
(evaluation.tune); the choice goes into the workspace's gfm.yaml."""

from __future__ import annotations

import argparse

from gfm.cli.common import Context, child_flags


def register(subparsers) -> argparse.ArgumentParser:
    from evaluation.tune import TUNABLE  # light: optuna loads only when a search runs

    parser = subparsers.add_parser(
        "tune",
        help="search a model's settings on a validation split that ends at the cutoff (the "
             "hold-out is never read); writes the best into gfm.yaml's tuned block, "
             "<workdir>/tune/<model>.json and reports/tune_<model>.png",
    )
    parser.add_argument("model", choices=TUNABLE)
    parser.add_argument("--trials", type=int, default=20,
                        help="trials in all, counting those of an interrupted earlier run of the "
                             "same search (default 20)")
    parser.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                        help="stop starting new trials after this long (default: none)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the sampler (default 0)")
    parser.add_argument("--max-epochs", type=int, default=None,
                        help="two-tower: epochs each trial may run; the best epoch is chosen "
                             "(default 15)")
    parser.add_argument("--rolling", type=int, default=1, metavar="N",
                        help="als, ease: for a run evaluated with `gfm evaluate --rolling N`: "
                             "score each trial on N validation splits before the first rolling "
                             "hold-out, --every days apart, hits pooled (default 1: the one "
                             "split that ends at the cutoff)")
    parser.add_argument("--every", type=int, default=None, metavar="D",
                        help="with --rolling: days between the cutoffs, as given to `gfm "
                             "evaluate` (default: timeline.holdout_days)")
    parser.add_argument("--dry-run", action="store_true",
                        help="search and report, but leave gfm.yaml as it is")
    return parser


def run(args: argparse.Namespace, ctx: Context) -> None:
    from evaluation.tune import tune

    summary = tune(ctx.workspace, ctx.config, ctx.timeline(), args.model, args.trials,
                   seed=args.seed, timeout_s=args.timeout, common=child_flags(args),
                   max_epochs=args.max_epochs, write=not args.dry_run, rolling=args.rolling,
                   every_days=args.every)
    best = summary["best"]
    print(f"\nbest of {summary['n_complete']} finished trial(s): validation HR@10 "
          + ", ".join(f"{t} {v:.4f}" for t, v in (best["hr@10"] or {}).items() if v is not None)
          + f" (mean {best['value']:.4f})")
    for key, value in best["params"].items():
        print(f"  {key} = {value}")
    where = ("left gfm.yaml as it is (--dry-run)" if args.dry_run
             else f"written to {ctx.workspace.root / 'gfm.yaml'} (block `tuned:`)")
    print(f"{where}; trials in {ctx.workspace.root / 'tune' / (args.model + '.json')}")
