"""`gfm train hgnn` (the static layer) and `gfm train two-tower` (the dynamic layer)."""

from __future__ import annotations

import argparse
from pathlib import Path

from gfm.cli.common import Context
from gfm.errors import ConfigError


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("train", help="train a model")
    models = parser.add_subparsers(dest="model", required=True, metavar="{hgnn,two-tower}")
    hgnn = models.add_parser(
        "hgnn",
        help="heterogeneous GraphSAGE by link prediction on co_interaction_edges; writes a vector "
             "for every item to features/item_hgnn_embedding/<version>.parquet and "
             "reports/hgnn_metrics.json (settings: the hgnn section of the config)",
    )
    hgnn.add_argument("--force", action="store_true",
                      help="retrain even if this version (same config and inputs) exists")
    hgnn.add_argument("--new-items", action="store_true",
                      help="train nothing: extend the newest HGNN vectors to the items released "
                           "since it ran (inductive vectors from their text, as that run gives "
                           "them), as a new version over the latest text embedding (what "
                           "`gfm refresh` runs when it keeps the static layer)")
    two_tower = models.add_parser(
        "two-tower",
        help="unified two-tower from Feast point-in-time joins (in-batch softmax, log-Q); saved "
             "to <workdir>/bentoml as unified_2t:<version>, which `gfm serve` then serves "
             "(settings: the two_tower section of the config)",
    )
    two_tower.add_argument("--warm-start", action="store_true",
                           help="begin from the served model's weights and train "
                                "two_tower.warm_start_epochs (what `gfm refresh` runs); from "
                                "scratch when no model is served")
    return parser


def run(args: argparse.Namespace, ctx: Context) -> None:
    if args.model == "two-tower":
        _run_two_tower(ctx, args.warm_start)
    else:
        _run_hgnn(args, ctx)


def _run_two_tower(ctx: Context, warm_start: bool) -> None:
    from training.two_tower.train import train_two_tower

    run_ = train_two_tower(ctx.workspace, ctx.config, ctx.timeline(), warm_start=warm_start)
    if run_.metrics.get("warm_start"):
        print(f"warm-started from {run_.metrics['warm_start']['from']}")
    print(f"two-tower {run_.tag}: validation recall@10 (discovery, last epoch) "
          f"{run_.metrics['val_recall@10']:.4f} on {run_.metrics['n_examples']:,} examples; feature service "
          f"{run_.metrics['feature_service']}")


def _run_hgnn(args: argparse.Namespace, ctx: Context) -> None:
    from training.hgnn.train import train_hgnn  # torch is slow to import; only when needed
    from transforms.text_embedding import latest_text_embedding

    if args.new_items:
        if args.force:
            raise ConfigError("--new-items trains nothing: drop --force")
        _extend_hgnn(ctx, latest_text_embedding(ctx.workspace))
        return

    run_ = train_hgnn(ctx.workspace, ctx.config.hgnn, ctx.timeline(),
                      latest_text_embedding(ctx.workspace), force=args.force)
    m = run_.metrics
    state = "reused" if run_.reused else "trained"
    print(f"HGNN {run_.version} {state}: val_auc {m['val_auc']:.4f} (text cosine "
          f"{m['text_cosine_auc']:.4f}), val_mrr {m['val_mrr']:.4f} (text cosine "
          f"{m['text_cosine_mrr']:.4f})")
    print(f"wrote {run_.vectors_path}")


def _extend_hgnn(ctx: Context, text_path: Path) -> None:
    from training.hgnn.new_items import add_new_items

    run_ = add_new_items(ctx.workspace, text_path)
    if run_.up_to_date:
        print(f"HGNN {run_.version}: up to date with the text embedding {text_path.stem}; "
              "nothing to add")
        return
    state = "reused" if run_.reused else "written"
    print(f"HGNN {run_.version} {state}: extends {run_.extends} (kept, not retrained); "
          f"{run_.n_new} item(s) released since it ran got text-only vectors")
    for why, n in run_.skipped.items():
        print(f"  {n} item(s) left without a vector: {why}")
    print(f"wrote {run_.vectors_path}")
