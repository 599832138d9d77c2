"""`gfm pipeline`: every stage that exists, in order, on one workspace."""

from __future__ import annotations

import argparse

from gfm.cli import generate, transform
from gfm.cli.common import Context


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "pipeline", help="run every stage in order (generates synthetic data if raw/ is empty)"
    )
    parser.add_argument("--profile", default="small", help="synthetic profile when raw/ is empty")
    parser.add_argument("--seed", type=int, default=7)
    return parser


def run(args: argparse.Namespace, ctx: Context) -> None:
    stages = []
    if not ctx.workspace.has_raw_data():
        stages.append(("generate", generate.run,
                       argparse.Namespace(profile=args.profile, seed=args.seed, overwrite=False)))
    stages.append(("transform", transform.run, argparse.Namespace(dbt_command="build")))
    for i, (name, run_stage, stage_args) in enumerate(stages, 1):
        print(f"== [{i}/{len(stages)}] {name}", flush=True)
        run_stage(stage_args, ctx)
