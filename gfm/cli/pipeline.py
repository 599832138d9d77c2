"""`gfm pipeline`: every stage, in order, on one workspace (what `make demo` runs).

Each stage is run exactly as its own subcommand would be, with the same workspace and config
flags, so a failed pipeline can be resumed by hand from the stage that failed.
"""

from __future__ import annotations

import argparse
import time

from gfm.cli.common import Context, child_flags, context_from_args
from gfm.stages import pipeline_stages


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "pipeline",
        help="run every stage in order: generate (if raw/ is empty), transform, embed, "
             "train hgnn, features apply + materialize, train two-tower, evaluate, index",
    )
    parser.add_argument("--profile", default="small", help="synthetic profile when raw/ is empty")
    parser.add_argument("--seed", type=int, default=7)
    return parser


def stages(args: argparse.Namespace, ctx: Context) -> list[list[str]]:
    plan = []
    if not ctx.workspace.has_raw_data():
        plan.append(["generate", "--profile", args.profile, "--seed", str(args.seed)])
    return plan + pipeline_stages()


def _common_flags(args: argparse.Namespace) -> list[str]:
    """The workspace, cutoff and config flags of this command, for every stage."""
    flags = ["--workdir", str(args.workdir), *child_flags(args)]
    if args.cutoff is not None:
        flags += ["--cutoff", args.cutoff]
    return flags


def run_plan(plan: list[list[str]], flags: list[str], what: str = "pipeline") -> None:
    """Run each stage (a `gfm` argv) with `flags`, in order, as its own subcommand would run,
    with its own context: a stage sees what the stages before it wrote (gfm.yaml included)."""
    from gfm.cli.main import build_parser

    parser = build_parser()
    began = time.monotonic()
    for i, argv in enumerate(plan, 1):
        print(f"\n== [{i}/{len(plan)}] gfm {' '.join(argv)}", flush=True)
        t0 = time.monotonic()
        stage_args = parser.parse_args([*argv, *flags])
        stage_args.handler(stage_args, context_from_args(stage_args))
        print(f"== [{i}/{len(plan)}] done in {time.monotonic() - t0:.0f} s", flush=True)
    print(f"\n{what} finished in {time.monotonic() - began:.0f} s")


def run(args: argparse.Namespace, ctx: Context) -> None:
    run_plan(stages(args, ctx), _common_flags(args))
    print(f"workspace {ctx.workspace.root}")
