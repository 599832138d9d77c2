"""`gfm train hgnn --new-items`: vectors for the items released since the kept HGNN ran.

A daily refresh keeps the static layer (the paper's Table 3), but the catalogue grows: an item
released after the HGNN's run has no vector in its file, and the two-tower FeatureService pins
that run's text version too, so the new item would be served with neither text nor HGNN vector.
Here the kept run is extended, not retrained: every vector it wrote is copied as it is, and each
item it lacks gets the inductive vector the run would have given it (hgnn.inductive_vectors of
the run's own config: the mean vector of its text neighbours among the connected items, the
text regressor, or the model's text-only path), from the latest text embedding. The result is
a new HGNN version (same checkpoint and graph_as_of, the new text version, `extends` naming
the kept one), so `gfm features apply` registers views and a FeatureService over it, and the
vectors the served two-tower learnt on stay where they were: a warm start remains valid.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import torch

from gfm.errors import WorkspaceError
from gfm.files import atomic_write_text
from gfm.workspace import Workspace
from training.hgnn.config import HGNNConfig
from training.hgnn.graph import read_catalog, read_vectors
from training.hgnn.model import HeteroGraphSAGE
from training.hgnn.train import FEATURE_DIR, TextRegressor, write_vector_table
from training.text_neighbours import normalise, text_neighbour_mean

log = logging.getLogger(__name__)


@dataclass
class NewItemsRun:
    version: str  # the HGNN version now newest (the kept one when there was nothing to add)
    extends: str  # the kept run's version
    vectors_path: Path
    n_new: int  # items that got an inductive vector
    skipped: dict[str, int]  # why -> items left without a vector
    reused: bool = False  # this extension existed already
    up_to_date: bool = False  # the newest vectors are over this text already: nothing written


def extension_version(kept_version: str, text_version: str) -> str:
    payload = json.dumps([kept_version, text_version])
    return "hgnn_" + hashlib.sha256(payload.encode()).hexdigest()[:10]


def newest_hgnn_run(workspace: Workspace) -> tuple[str, dict[str, Any], Path]:
    """(version, sidecar, parquet) of the newest HGNN vectors (a trained run or an extension)."""
    from gfm.files import version_files

    runs = version_files(workspace.features_dir / FEATURE_DIR)
    if not runs:
        raise WorkspaceError(f"no HGNN vectors under {workspace.features_dir / FEATURE_DIR}: "
                             "run `gfm train hgnn` first")
    meta, path = runs[-1]
    return meta.get("version", path.stem), meta, path


def inductive_rows(checkpoint: dict[str, Any], node_type: str, text: np.ndarray,
                   pool_text: np.ndarray, pool_vectors: np.ndarray) -> np.ndarray:
    """(n, out_dim) vectors for `text` (n, text_dim) of items of `node_type` that have no edge,
    as the checkpoint's run gives them: text_knn over the pool (the type's connected items:
    their text and HGNN vectors), its text regressor, or its model's text-only path."""
    config = HGNNConfig(**checkpoint["config"])
    method = config.inductive_vectors
    if method == "text_knn":
        rows = np.concatenate([pool_text, text]).astype(np.float32)
        vectors = np.concatenate([pool_vectors, np.zeros((len(text), pool_vectors.shape[1]),
                                                         np.float32)])
        return text_neighbour_mean(rows, vectors, np.arange(len(pool_text)),
                                   config.inductive_knn)[len(pool_text):]
    x = torch.from_numpy(np.ascontiguousarray(text, dtype=np.float32))
    node_types = list(checkpoint["node_types"])
    with torch.no_grad():
        if method == "regressor":
            regressor = TextRegressor(checkpoint["in_dim"], len(node_types), config.out_dim)
            regressor.load_state_dict(checkpoint["regressor_state_dict"])
            regressor.eval()
            codes = torch.full((len(text),), node_types.index(node_type), dtype=torch.long)
            return regressor(x, codes).numpy()
        model = HeteroGraphSAGE(node_types, [tuple(r) for r in checkpoint["relations"]],
                                checkpoint["in_dim"], config)
        model.load_state_dict(checkpoint["state_dict"])
        model.eval()
        return model({node_type: x}, {})[node_type].numpy()


def add_new_items(workspace: Workspace, text_path: Path) -> NewItemsRun:
    """Extend the newest HGNN vectors to every catalogue item they lack (see the module)."""
    kept_version, kept_meta, kept_path = newest_hgnn_run(workspace)
    base = kept_meta.get("extends") or kept_version  # the trained run: its model places them
    text_version = text_path.stem
    if kept_meta.get("text_version") == text_version:
        # Extended (or trained) on this very text: nothing the catalogue holds is missing.
        return NewItemsRun(kept_version, base, kept_path, 0, {}, up_to_date=True)
    version = extension_version(base, text_version)
    out_dir = workspace.features_dir / FEATURE_DIR
    path = out_dir / f"{version}.parquet"
    if path.exists() and (out_dir / f"{version}.json").exists():
        meta = json.loads((out_dir / f"{version}.json").read_text())
        return NewItemsRun(version, base, path, meta["n_new_items"], meta["skipped"],
                           reused=True)
    checkpoint_path = workspace.root / kept_meta["checkpoint"]
    if not checkpoint_path.exists():
        raise WorkspaceError(f"HGNN {kept_version} names its checkpoint {checkpoint_path}, which "
                             "is gone: retrain the static layer (`gfm refresh --static`, or "
                             "`gfm train hgnn`)")
    checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=False)

    kept = pq.read_table(kept_path, columns=["item_id", "item_type"]).to_pydict()
    kept_ids, kept_vectors = read_vectors(kept_path)
    vector_of = dict(zip(kept_ids, kept_vectors))
    type_of = dict(zip(kept["item_id"], kept["item_type"]))
    text_ids, text_vectors = read_vectors(text_path)
    text_row = {item: r for r, item in enumerate(text_ids)}
    catalog = read_catalog(workspace)
    node_types = list(checkpoint["node_types"])
    # The connected items the run placed by the graph (the pool text_knn averages over); a
    # checkpoint from before this was recorded: every item the run wrote of that type.
    connected = checkpoint.get("connected_items")
    skipped: dict[str, int] = {}

    def skip(why: str) -> None:
        skipped[why] = skipped.get(why, 0) + 1

    new_top = [(item, t) for item, t, parent in catalog if parent is None and item not in vector_of]
    n_new = 0
    for node_type in node_types:
        items = [item for item, t in new_top if t == node_type and item in text_row]
        if not items:
            continue
        pool = [i for i in (connected[node_type] if connected else
                            [i for i, t in type_of.items() if t == node_type])
                if i in vector_of and i in text_row]
        rows = inductive_rows(checkpoint, node_type, text_vectors[[text_row[i] for i in items]],
                              text_vectors[[text_row[i] for i in pool]],
                              np.stack([vector_of[i] for i in pool]) if pool
                              else np.zeros((0, kept_vectors.shape[1]), np.float32))
        for item, vector in zip(items, normalise(rows.astype(np.float32))):
            vector_of[item], type_of[item] = vector, node_type
        n_new += len(items)
    for item, item_type in new_top:
        if item not in vector_of:
            skip("no text vector" if item_type in node_types and item not in text_row
                 else f"item type {item_type} unknown to the HGNN (retrain it: --static)")
    for item, item_type, parent in catalog:  # episodes inherit their show's vector
        if parent is not None and item not in vector_of:
            if parent in vector_of:
                vector_of[item], type_of[item] = vector_of[parent], item_type
                n_new += 1
            else:
                skip("episode of a show without a vector")

    ids = sorted(vector_of)
    graph_as_of = dt.datetime.fromisoformat(kept_meta["graph_as_of"])
    write_vector_table(path, ids, [type_of[i] for i in ids],
                       np.stack([vector_of[i] for i in ids]), graph_as_of, version,
                       normalised=True)
    lineage = {**{k: kept_meta.get(k) for k in ("graph_as_of", "checkpoint", "val_auc", "val_mrr",
                                                "config")},
               "version": version, "text_version": text_version, "extends": base,
               "extended_from": kept_version, "n_new_items": n_new, "skipped": skipped,
               "inductive_vectors": HGNNConfig(**checkpoint["config"]).inductive_vectors,
               "created_at": dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat()}
    atomic_write_text(out_dir / f"{version}.json", json.dumps(lineage, indent=2) + "\n")
    _record_metrics(workspace, base, lineage)
    log.info("HGNN %s extends %s with %d new item(s)", version, base, n_new)
    return NewItemsRun(version, base, path, n_new, skipped)


def _record_metrics(workspace: Workspace, base: str, lineage: dict[str, Any]) -> None:
    """reports/hgnn_metrics.json names the extension (what `gfm evaluate`'s hgnn_knn reads),
    with the trained run's figures."""
    trained = workspace.models_dir / "hgnn" / base / "metrics.json"
    metrics = json.loads(trained.read_text()) if trained.exists() else {}
    metrics.update(version=lineage["version"], text_version=lineage["text_version"],
                   extends=base, n_new_items=lineage["n_new_items"])
    workspace.reports_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(workspace.reports_dir / "hgnn_metrics.json",
                      json.dumps(metrics, indent=2) + "\n")
