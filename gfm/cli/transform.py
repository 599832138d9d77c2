"""`gfm transform`: build the warehouse (dbt build: staging, tests, marts)."""

from __future__ import annotations

import argparse

from gfm.cli.common import Context
from gfm.errors import WorkspaceError


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "transform", help="run `dbt build` over raw/ into <workdir>/warehouse.duckdb"
    )
    parser.add_argument("--dbt-command", default="build", choices=["build", "run", "test", "docs"],
                        help="dbt command (docs = `dbt docs generate`)")
    parser.add_argument("--print-dbt-command", action="store_true",
                        help="print the shell command that runs this dbt command by hand on the "
                             "workspace (its environment, paths and --vars; swap `build` for "
                             "any dbt command: ls, show, test ...) and exit without running it")
    return parser


def run(args: argparse.Namespace, ctx: Context) -> None:
    from transforms.warehouse import dbt_shell_command, run_dbt  # dbt: slow to import

    dbt_args = ["docs", "generate"] if args.dbt_command == "docs" else [args.dbt_command]
    if args.print_dbt_command:
        print(dbt_shell_command(ctx.workspace, ctx.config, ctx.timeline(), dbt_args))
        return
    if not ctx.workspace.has_raw_data():
        raise WorkspaceError(
            f"{ctx.workspace.raw_dir} has no raw data: run `gfm generate` or `gfm import` first"
        )
    timeline = ctx.timeline()
    print(f"timeline: graph_as_of {timeline.graph_as_of:%Y-%m-%d}, cutoff {timeline.cutoff:%Y-%m-%d}, "
          f"hold-out until {timeline.holdout_end:%Y-%m-%d}")
    run_dbt(ctx.workspace, ctx.config, timeline, dbt_args)
    print(f"warehouse ready: {ctx.workspace.warehouse_path}")
