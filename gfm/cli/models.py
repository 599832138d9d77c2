"""`gfm models`: the workspace's BentoML models and their lineage, and which one is served.

The store is <workdir>/bentoml/models (training.two_tower.store.model_store); `bentoml models
list` shows the same models with BENTOML_HOME=<workdir>/bentoml. Lineage comes from each
model's metadata, written by `gfm train two-tower`.
"""

from __future__ import annotations

import argparse
import json

from gfm.cli.common import Context
from gfm.errors import WorkspaceError

# Metadata keys shown per model, in this order.
LINEAGE = ("model_version", "feature_service", "input_feature_service", "hgnn_version",
           "text_version", "graph_as_of", "cutoff", "val_recall@10")
COLUMNS = ("tag", "served", "created", "feature_service", "hgnn_version", "text_version",
           "cutoff")


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "models", help="list the workspace's BentoML models with their lineage",
        description="The workspace's BentoML models (<workdir>/bentoml), newest first, with the "
                    "model version, FeatureService, HGNN and text embedding versions and cutoff "
                    "each was trained with; `served` marks the one `gfm serve` loads.",
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per model")
    return parser


def model_rows(ctx: Context) -> list[dict]:
    """One dict per model in the workspace's store, newest first."""
    from training.two_tower.store import bentoml_home, model_store, served_tag

    bentoml_home(ctx.workspace)
    try:
        served = served_tag(ctx.workspace)
    except WorkspaceError:
        served = None
    rows = []
    for model in model_store(ctx.workspace).list():
        metadata = model.info.metadata
        row = {"tag": str(model.tag), "served": str(model.tag) == served,
               "created": model.creation_time.isoformat(timespec="seconds"),
               "labels": dict(model.info.labels)}
        row.update({key: metadata.get(key) for key in LINEAGE})
        rows.append(row)
    rows.sort(key=lambda r: r["created"], reverse=True)
    return rows


def _cell(value) -> str:
    if value is True:
        return "*"
    return "" if value in (None, False) else str(value)


def run(args: argparse.Namespace, ctx: Context) -> None:
    if not ctx.workspace.root.is_dir():
        raise WorkspaceError(f"workspace {ctx.workspace.root} does not exist")
    rows = model_rows(ctx)
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return
    if not rows:
        print(f"no models in {ctx.workspace.root / 'bentoml'}: run `gfm train two-tower`")
        return
    table = [COLUMNS] + [tuple(_cell(row[c]) for c in COLUMNS) for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    for line in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())
    print(f"(bentoml CLI: BENTOML_HOME={ctx.workspace.root / 'bentoml'} bentoml models list)")
