"""`gfm report`: print the evaluation table written by `gfm evaluate`."""

from __future__ import annotations

import argparse

from gfm.cli.common import Context
from gfm.errors import WorkspaceError


def register(subparsers) -> argparse.ArgumentParser:
    return subparsers.add_parser(
        "report", help="print the evaluation report (<workdir>/reports/metrics.md)"
    )


def run(args: argparse.Namespace, ctx: Context) -> None:
    path = ctx.workspace.reports_dir / "metrics.md"
    if not path.exists():
        raise WorkspaceError(
            f"{path} does not exist: run `gfm evaluate --workdir {ctx.workspace.root}` first"
        )
    print(path.read_text(), end="")
