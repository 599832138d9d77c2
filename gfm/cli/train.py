"""`gfm train hgnn`: the static layer (and, later, `gfm train two-tower`)."""

from __future__ import annotations

import argparse

from gfm.cli.common import Context


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("train", help="train a model")
    models = parser.add_subparsers(dest="model", required=True, metavar="{hgnn}")
    hgnn = models.add_parser(
        "hgnn",
        help="heterogeneous GraphSAGE by link prediction on co_interaction_edges; writes a vector "
             "for every item to features/item_hgnn_embedding/<version>.parquet and "
             "reports/hgnn_metrics.json (settings: the hgnn section of the config)",
    )
    hgnn.add_argument("--force", action="store_true",
                      help="retrain even if this version (same config and inputs) exists")
    return parser


def run(args: argparse.Namespace, ctx: Context) -> None:
    from training.hgnn.train import train_hgnn  # torch is slow to import; only when needed
    from transforms.text_embedding import latest_text_embedding

    run_ = train_hgnn(ctx.workspace, ctx.config.hgnn, ctx.timeline(),
                      latest_text_embedding(ctx.workspace), force=args.force)
    m = run_.metrics
    state = "reused" if run_.reused else "trained"
    print(f"HGNN {run_.version} {state}: val_auc {m['val_auc']:.4f} (text cosine "
          f"{m['text_cosine_auc']:.4f}), val_mrr {m['val_mrr']:.4f} (text cosine "
          f"{m['text_cosine_mrr']:.4f})")
    print(f"wrote {run_.vectors_path}")
