"""`gfm features apply|materialize|path|versions|retire`: the Feast feature store of a workspace."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
from pathlib import Path

from gfm.cli.common import Context

ACTIONS = ("apply", "materialize", "training-set", "path", "versions", "retire")


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "features",
        help="the Feast feature store: versioned feature views over <workdir>/features/, "
             "DuckDB offline store, SQLite or Redis online store (docs/feature_store.md)",
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="{" + ",".join(ACTIONS) + "}")
    apply = actions.add_parser(
        "apply",
        help="register every text/HGNN version as its own feature views (item_text_embedding_vN, "
             "item_hgnn_embedding_vN, user_avg_hgnn_vN), build the user average vectors and "
             "metadata tables (dbt), one two_tower_features_vN service per HGNN run, then "
             "`feast apply` the workspace's repository",
    )
    apply.add_argument("--rebuild", action="store_true",
                       help="rebuild the user average vectors of every active HGNN version "
                            "(default: only versions that have none)")
    materialize = actions.add_parser(
        "materialize",
        help="load the online store with what is true at the cutoff: the cutoff snapshot of the "
             "user views, every item vector and metadata row stamped at or before the cutoff "
             "(windows from the data, never 'incremental from now')",
    )
    materialize.add_argument("--views", default=None, metavar="NAME[,NAME...]",
                             help="only these feature views (default: all)")
    training_set = actions.add_parser(
        "training-set",
        help="write the two-tower's point-in-time training frame to Parquet: one row per "
             "example (user_id, item_id, event_timestamp, label, example_kind), every feature "
             "of the FeatureService as of that instant, the user's history lists; the same "
             "frame `gfm train two-tower` trains on",
    )
    training_set.add_argument("--out", type=Path, required=True, metavar="FILE.parquet",
                              help="where to write it (whole or not at all)")
    training_set.add_argument("--start", type=_day, default=None, metavar="YYYY-MM-DD",
                              help="first day of examples (default: the training window's, "
                                   "graph_as_of - timeline.early_label_days)")
    training_set.add_argument("--end", type=_day, default=None, metavar="YYYY-MM-DD",
                              help="examples before this day (default: the cutoff; never after)")
    training_set.add_argument("--service", default=None,
                              help="the FeatureService to join through (default: the latest "
                                   "two_tower_features_vN, the one training reads)")
    training_set.add_argument("--force", action="store_true", help="replace an existing --out")
    actions.add_parser(
        "path",
        help="print the workspace's Feast repository directory (last line), for "
             "`feast -c \"$(gfm features path --workdir W)\" apply|materialize|feature-views list`",
    )
    versions = actions.add_parser(
        "versions", help="list the versioned feature views and services with their lineage"
    )
    versions.add_argument("--json", action="store_true", help="machine-readable output")
    retire = actions.add_parser(
        "retire",
        help="retire a versioned view or a feature service: it leaves the registry and the online "
             "store (its parquet file stays) and is never registered again",
    )
    retire.add_argument("name", help="e.g. item_hgnn_embedding_v1 or two_tower_features_v1")
    retire.add_argument("--cascade", action="store_true",
                        help="also retire the feature services that pin the view")
    return parser


def run(args: argparse.Namespace, ctx: Context) -> None:
    # Feast and dbt are slow to import: only when a command needs them.
    import feature_store

    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        logging.getLogger("feast").setLevel(logging.WARNING)  # one line per registry refresh

    if args.action == "path":
        directory = feature_store.repo_dir(ctx.workspace)
        if not (directory / "feature_store.yaml").exists():
            from gfm.errors import WorkspaceError

            raise WorkspaceError(f"{directory} holds no feature repository yet: run "
                                 f"`gfm features apply --workdir {ctx.workspace.root}` first")
        from feature_store.repo import relocate

        relocate(ctx.workspace)  # a copied registry names the original's files: re-applied here
        print(directory)
    elif args.action == "apply":
        result = feature_store.apply_features(ctx.workspace, ctx.config, ctx.timeline(),
                                              rebuild=args.rebuild)
        for line in result.skipped:
            print(f"skipped {line}")
        if result.built_user_avg:
            print(f"built user average vectors: {', '.join(result.built_user_avg)}")
        print(f"new: {', '.join(result.added) or 'nothing'}")
        print(f"feature views: {', '.join(result.views)}")
        print(f"feature services: {', '.join(result.services) or 'none yet (run gfm train hgnn)'}")
        print(f"online store: {ctx.config.features.online_store}; next: gfm features materialize")
        print(result.repo)
    elif args.action == "materialize":
        views = [v.strip() for v in args.views.split(",") if v.strip()] if args.views else None
        stats = feature_store.materialize_features(ctx.workspace, ctx.timeline(), views)
        for s in stats:
            print(f"{s.view:32s} {s.rows:>9,} rows  {s.start:%Y-%m-%d %H:%M} .. "
                  f"{s.end:%Y-%m-%d %H:%M}  {s.seconds:6.2f} s  {s.rows_per_s:,.0f} rows/s"
                  + ("  (incremental)" if s.incremental else ""))
        total = sum(s.rows for s in stats)
        seconds = sum(s.seconds for s in stats)
        print(f"online store ({ctx.config.features.online_store}): {total:,} rows in "
              f"{seconds:.1f} s")
    elif args.action == "training-set":
        from training.two_tower.export import write_training_set

        written = write_training_set(ctx.workspace, ctx.config, ctx.timeline(), args.out,
                                     service=args.service, start=args.start, end=args.end,
                                     force=args.force)
        print(f"{written.rows:,} examples in [{written.start:%Y-%m-%d}, {written.end:%Y-%m-%d}) "
              f"through {written.service}: {len(written.columns)} columns, "
              f"{written.size_bytes / 2**20:.1f} MiB in {written.seconds:.1f} s")
        print(written.path)
    elif args.action == "versions":
        rows, services = feature_store.list_versions(ctx.workspace)
        if args.json:
            print(json.dumps({"views": [r.__dict__ for r in rows], "feature_services": services},
                             indent=2))
            return
        if not rows:
            print("no feature versions yet: run `gfm features apply`")
            return
        for r in rows:
            print(f"{r.name:28s} {r.status:8s} {r.version:30s} {_lineage(r.kind, r.lineage)}")
        for name, service in services.items():
            pinned = ", ".join(v["view"] for v in service["views"])
            print(f"{name:28s} {service['status']:8s} {'(feature service)':30s} {pinned}")
    elif args.action == "retire":
        retired = feature_store.retire(ctx.workspace, ctx.config, args.name, args.cascade)
        print(f"retired {', '.join(retired)} (parquet files kept; removed from the registry "
              "and the online store)")


def _day(value: str) -> dt.datetime:
    """A YYYY-MM-DD argument as its midnight (naive UTC, as the timeline's instants are)."""
    try:
        return dt.datetime.combine(dt.date.fromisoformat(value), dt.time())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a day as YYYY-MM-DD") from None


def _lineage(kind: str, lineage: dict) -> str:
    keys: tuple[str, ...]
    if kind == "item_text_embedding":
        keys = ("text_model", "text_template_version", "cutoff", "dbt_manifest_hash")
    elif kind == "item_hgnn_embedding":
        keys = ("graph_as_of", "text_version", "hgnn_checkpoint", "cutoff", "dbt_manifest_hash")
    else:
        keys = ("hgnn_view", "graph_as_of", "cutoff", "dbt_manifest_hash")
    return "  ".join(f"{k}={lineage[k]}" for k in keys if lineage.get(k) not in (None, ""))
