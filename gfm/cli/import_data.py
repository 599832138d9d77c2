"""`gfm import parquet|movielens`: validate outside data against the contract, then write raw/."""

from __future__ import annotations

import argparse
from pathlib import Path

from gfm.cli.common import Context
from ingest.importers import import_movielens, import_parquet


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "import", help="import raw data (validated against docs/data_contract.md)"
    )
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="{parquet,movielens}")
    pq = kinds.add_parser("parquet", help="three parquet files on the raw data contract")
    pq.add_argument("--interactions", type=Path, required=True)
    pq.add_argument("--items", type=Path, required=True)
    pq.add_argument("--users", type=Path, required=True)
    ml = kinds.add_parser("movielens", help="a MovieLens directory (e.g. ml-latest-small)")
    ml.add_argument("directory", type=Path)
    for sub in (pq, ml):
        sub.add_argument("--overwrite", action="store_true",
                         help="replace raw data of another origin already in the workspace")
    return parser


def run(args: argparse.Namespace, ctx: Context) -> None:
    if args.kind == "parquet":
        counts = import_parquet(ctx.workspace, args.interactions, args.items, args.users,
                                args.overwrite)
    else:
        counts = import_movielens(ctx.workspace, args.directory, args.overwrite)
    print(f"imported into {ctx.workspace.raw_dir}: "
          + ", ".join(f"{v:,} {k}" for k, v in counts.items()))
    if args.kind == "movielens" and not ctx.config.warehouse.history_at_events:
        # Rating sessions: most of a user's ratings share one day, so daily snapshots leave
        # most two-tower examples without history (docs/configuration.md).
        print("MovieLens users rate in sessions: set warehouse.history_at_events: true in "
              f"{ctx.workspace.root / 'gfm.yaml'} so that each example sees the ratings before it")
