"""`gfm config`: print the resolved configuration (defaults, then gfm.yaml, then flags) as YAML."""

from __future__ import annotations

import argparse

import yaml

from gfm.cli.common import Context


def register(subparsers) -> argparse.ArgumentParser:
    return subparsers.add_parser(
        "config", help="print the resolved configuration as YAML (a starting point for gfm.yaml)"
    )


def run(args: argparse.Namespace, ctx: Context) -> None:
    print(yaml.safe_dump(ctx.config.to_dict(), sort_keys=False), end="")
