"""`gfm index`: the served two-tower model's item vectors into a Milvus collection."""

from __future__ import annotations

import argparse
import logging

from gfm.cli.common import Context


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "index",
        help="encode every top-level catalog item with the served two-tower model into the "
             "Milvus collection items_<model version> (embedded <workdir>/milvus/index.db, or "
             "serving.milvus_uri), measure ANN recall@10 against exact search "
             "(reports/index_metrics.json); settings: the serving section of the config",
    )
    parser.add_argument("--model", default=None, metavar="NAME:VERSION",
                        help="index this model of <workdir>/bentoml instead of the served one "
                             "(`gfm serve` only serves the served one's collection)")
    parser.add_argument("--index-type", default=None, metavar="TYPE",
                        help="shortcut for --set serving.index_type=TYPE (HNSW, FLAT, HNSW_SQ, "
                             "IVF_FLAT, IVF_SQ8, AUTOINDEX)")
    return parser


def run(args: argparse.Namespace, ctx: Context) -> None:
    from serving.index import RECALL_K, build_index  # torch, Feast, pymilvus: only when run

    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        for name in ("feast", "faiss"):  # registry refreshes; which CPU build faiss loaded
            logging.getLogger(name).setLevel(logging.WARNING)
    if args.index_type:
        ctx.config.serving.index_type = args.index_type
    result = build_index(ctx.workspace, ctx.config, ctx.timeline(), tag=args.model)
    m = result.metrics
    counts = ", ".join(f"{n:,} {t}" for t, n in m["n_items_by_type"].items())
    print(f"collection {result.collection} at {result.uri}: {m['n_items']:,} items ({counts}), "
          f"{m['index_type']} {m['build_params'] or ''}".rstrip())
    users = m[f"recall@{RECALL_K}_user_queries"]
    print(f"recall@{RECALL_K} vs exact search: users "
          + ", ".join(f"{k} {v:.4f}" for k, v in users.items())
          + f"; similar items {m[f'recall@{RECALL_K}_item_queries']:.4f}; "
          f"goal {m['goal']} {'met' if m['meets_goal'] else 'NOT met'}")
    print(f"search p50 {m['search_ms_p50']:.2f} ms; built in {m['total_s']:.1f} s")
    if not m["meets_goal"]:
        print("raise serving.hnsw_ef (or ivf_nprobe), or use serving.index_type=FLAT")
    print(f"next: gfm serve --workdir {ctx.workspace.root} --port 3000")
