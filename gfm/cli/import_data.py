"""`gfm import parquet|movielens`: validate outside data against the contract, then write raw/.

`gfm import parquet --append` adds new days (and new items and users) to the raw data already
there, from the workspace's cutoff on: never a day the trained models learnt from.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gfm.cli.common import Context
from gfm.errors import ConfigError
from ingest.importers import append_parquet, import_movielens, import_parquet


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "import", help="import raw data (validated against docs/data_contract.md)"
    )
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="{parquet,movielens}")
    pq = kinds.add_parser("parquet", help="three parquet files on the raw data contract")
    pq.add_argument("--interactions", type=Path, required=True)
    pq.add_argument("--items", type=Path, help="required, except with --append")
    pq.add_argument("--users", type=Path, help="required, except with --append")
    pq.add_argument("--append", action="store_true",
                    help="add these rows to the workspace's raw data: new events, items and "
                         "users from the cutoff on (refused if they would rewrite the past; the "
                         "same file twice adds nothing)")
    ml = kinds.add_parser("movielens", help="a MovieLens directory (e.g. ml-latest-small)")
    ml.add_argument("directory", type=Path)
    for sub in (pq, ml):
        sub.add_argument("--overwrite", action="store_true",
                         help="replace raw data of another origin already in the workspace")
    return parser


def run(args: argparse.Namespace, ctx: Context) -> None:
    if args.kind == "parquet" and args.append:
        if args.overwrite:
            raise ConfigError("--append adds to raw/ and --overwrite replaces it: pass one")
        cutoff = ctx.timeline().cutoff
        counts = append_parquet(ctx.workspace, cutoff, args.interactions, args.items, args.users)
        print(f"appended to {ctx.workspace.raw_dir} (from the cutoff {cutoff:%Y-%m-%d} on): "
              + ", ".join(f"{v:,} {k}" for k, v in counts.items()))
        return
    if args.kind == "parquet":
        if args.items is None or args.users is None:
            raise ConfigError("gfm import parquet needs --items and --users (all three tables), "
                              "except with --append")
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
