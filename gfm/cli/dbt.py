"""`gfm dbt -- <dbt args>`: any dbt command on the workspace's warehouse, with its vars and paths.

The command line is the one `gfm transform --print-dbt-command` prints
(transforms.warehouse.dbt_invocation): the workspace's DuckDB file and folder in the
environment, target/ and logs/ under <workdir>/dbt/, the timeline and warehouse settings as
--vars, run from the workspace. dbt's console output and exit status are passed through.
"""

from __future__ import annotations

import argparse
import os
import subprocess

from gfm.cli.common import Context
from gfm.errors import GfmError


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "dbt", help="run any dbt command on the workspace: gfm dbt --workdir W -- ls",
        description="Run dbt on the workspace's warehouse with its vars and paths. gfm's flags "
                    "come first, dbt's after `--`: gfm dbt --workdir W -- ls; "
                    "-- test; -- show --select item_catalog; -- docs generate.",
    )
    parser.add_argument("dbt_args", nargs=argparse.REMAINDER, metavar="-- DBT_ARGS",
                        help="the dbt command and its arguments, after `--`")
    return parser


def run(args: argparse.Namespace, ctx: Context) -> int:
    """dbt's exit status."""
    from transforms.warehouse import dbt_invocation  # dbt: slow to import

    dbt_args = list(args.dbt_args)
    if dbt_args[:1] == ["--"]:
        dbt_args = dbt_args[1:]
    if not dbt_args:
        raise GfmError("name a dbt command after `--`, e.g. gfm dbt --workdir W -- ls")
    if not ctx.workspace.root.is_dir():
        raise GfmError(f"workspace {ctx.workspace.root} does not exist: run `gfm generate` or "
                       "`gfm import` first")
    argv, environment, cwd = dbt_invocation(ctx.workspace, ctx.config, ctx.timeline(), dbt_args)
    ctx.workspace.dbt_dir.mkdir(parents=True, exist_ok=True)
    completed = subprocess.run(argv, env={**os.environ, **environment}, cwd=cwd, check=False)
    return completed.returncode
