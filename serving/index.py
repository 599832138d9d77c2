"""`gfm index`: the served model's item vectors in a Milvus collection, and how good its ANN is.

1. The served two-tower model (`gfm train two-tower` sets it) and its FeatureService.
2. Every top-level item of `item_catalog` (new ones included: the item tower is inductive),
   its features read through that FeatureService from Feast's offline store as of the model's
   cutoff: the same call and instant `gfm evaluate` uses, so the index holds exactly the
   vectors the offline evaluation scored (and the online store, materialized at the cutoff,
   holds the same values). An item released after the cutoff is read as of its release, with
   the static features it has then (as in the evaluation).
3. The vectors go into `items_<model version>` (HNSW by default, `serving.index_type`). A
   model with a popularity prior or the hgnn_knn path (two_tower.hgnn_skip) scores by inner
   product over vectors off unit length: they are indexed through the MIPS-to-cosine
   transform (`mips_to_cosine`; the manifest says `vector_transform`), and queries are padded
   to match (`user_query`, `item_query`).
4. Recall@10 of the index against exact search (numpy, brute force over the same vectors) for
   user vectors of users with history at the cutoff (unfiltered and per item type, as
   /recommend searches) and for item vectors (as /similar searches), written to
   `<workdir>/reports/index_metrics.json`.

The warehouse is read here, by this offline job, never by the server.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from tqdm import tqdm

from gfm.config import Config
from gfm.errors import GfmError, WorkspaceError
from gfm.timeline import Timeline
from gfm.workspace import Workspace
from serving import milvus

logger = logging.getLogger(__name__)

RECALL_K = 10
RECALL_GOAL = 0.99
INSERT_BATCH = 5000
METRICS_FILE = "index_metrics.json"


@dataclass
class IndexResult:
    collection: str
    uri: str
    manifest: dict[str, Any]
    metrics: dict[str, Any]


# ---------------------------------------------------------------------------------------------
# inputs


def catalog_items(workspace: Workspace) -> tuple[list[str], list[str]]:
    """(item ids, top-level types) of every top-level item in item_catalog, by type then id."""
    from transforms.warehouse import warehouse_query

    rows = warehouse_query(
        workspace,
        "select item_id, item_type from item_catalog where is_top_level "
        "order by item_type, item_id",
    )
    if not rows:
        raise WorkspaceError("item_catalog holds no top-level item: run `gfm transform` first")
    return [r[0] for r in rows], [r[1] for r in rows]


def servable(item_ids: list[str], item_types: list[str]) -> tuple[list[str], list[str]]:
    """The items whose ids the API accepts (schemas.Id); the others are left out, loudly."""
    from serving.schemas import ID_PATTERN, MAX_ID_LENGTH

    pattern = re.compile(ID_PATTERN)
    keep = [bool(pattern.match(i)) and len(i) <= MAX_ID_LENGTH for i in item_ids]
    if not all(keep):
        dropped = [i for i, k in zip(item_ids, keep, strict=True) if not k]
        logger.warning("%d item id(s) cannot be served (quotes, backslashes, control characters "
                       "or over %d characters) and are left out of the index: %s",
                       len(dropped), MAX_ID_LENGTH, ", ".join(map(repr, dropped[:5])))
    return ([i for i, k in zip(item_ids, keep, strict=True) if k],
            [t for t, k in zip(item_types, keep, strict=True) if k])


def users_with_history(workspace: Workspace, cutoff: dt.datetime) -> list[str]:
    """The users with a history snapshot at the cutoff (the recall measurement's queries)."""
    from transforms.warehouse import warehouse_query

    built_for = [r[0] for r in warehouse_query(
        workspace, "select distinct as_of from item_catalog")]
    if built_for != [cutoff]:
        raise WorkspaceError(
            f"the warehouse was built for cutoff {', '.join(map(str, built_for)) or 'none'}, "
            f"but the model was trained for cutoff {cutoff}: its users' snapshots are not in "
            f"the warehouse; rerun `gfm transform --cutoff {cutoff:%Y-%m-%d}` before `gfm index`")
    rows = warehouse_query(
        workspace,
        "select distinct user_id from user_history where snapshot_ts = ? order by user_id",
        [cutoff],
    )
    return [r[0] for r in rows]


def encode_catalog(workspace: Workspace, bundle, item_ids: Sequence[str],
                   at: dt.datetime) -> np.ndarray:
    """(n, d) item-tower vectors, features through the model's FeatureService as of `at`, or
    of an item's release when that is later, new items' weight solved on the same users (as
    evaluation reads and scores them)."""
    from evaluation.two_tower import calibrate_new_items, item_features
    from training.two_tower.train import encode_items

    frame = item_features(workspace, bundle.feature_service, list(item_ids), at)
    missing = int(frame["hgnn_embedding"].isna().sum())
    if missing:
        logger.warning("%d item(s) have no HGNN vector at %s: encoded with zeros there",
                       missing, at)
    items = bundle.item_inputs(frame)
    calibrate_new_items(workspace, bundle, items, at)
    return encode_items(bundle, items).astype(np.float32)


def encode_user_sample(workspace: Workspace, bundle, user_ids: Sequence[str],
                       at: dt.datetime) -> np.ndarray:
    from evaluation.two_tower import user_features  # what evaluation reads with
    from training.two_tower.train import encode_users

    frame = user_features(workspace, bundle.feature_service, bundle.item_types, list(user_ids), at)
    return encode_users(bundle, bundle.user_inputs(frame)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# the collection


def create_collection(client, name: str, dim: int, config: Config) -> None:
    from pymilvus import DataType, MilvusClient

    if client.has_collection(name):
        logger.info("dropping the existing collection %s (rebuilt)", name)
        client.drop_collection(name)
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False,
                                        description="item-tower vectors of one two-tower model")
    schema.add_field(milvus.ID_FIELD, DataType.VARCHAR, is_primary=True,
                     max_length=milvus.MAX_ID_LENGTH)
    schema.add_field(milvus.TYPE_FIELD, DataType.VARCHAR, max_length=64)
    schema.add_field(milvus.VECTOR_FIELD, DataType.FLOAT_VECTOR, dim=dim)
    index = client.prepare_index_params()
    index.add_index(field_name=milvus.VECTOR_FIELD, index_type=config.serving.index_type.upper(),
                    metric_type=milvus.METRIC, params=milvus.build_params(config.serving))
    index.add_index(field_name=milvus.TYPE_FIELD, index_type="INVERTED")
    client.create_collection(name, schema=schema, index_params=index)


def insert_vectors(client, name: str, item_ids: Sequence[str], item_types: Sequence[str],
                   vectors: np.ndarray) -> None:
    starts = range(0, len(item_ids), INSERT_BATCH)
    for s in tqdm(starts, desc="insert", unit="batch", disable=None, leave=False):
        rows = [{milvus.ID_FIELD: i, milvus.TYPE_FIELD: t, milvus.VECTOR_FIELD: v.tolist()}
                for i, t, v in zip(item_ids[s:s + INSERT_BATCH], item_types[s:s + INSERT_BATCH],
                                   vectors[s:s + INSERT_BATCH], strict=True)]
        client.insert(name, rows)
    client.flush(name)
    client.load_collection(name)


# ---------------------------------------------------------------------------------------------
# vectors off unit length (a popularity prior, the hgnn_knn path): the MIPS-to-cosine transform

MIPS_TO_COSINE = "mips_to_cosine"


def mips_to_cosine(vectors: np.ndarray) -> tuple[np.ndarray, float]:
    """((n, d + 1) unit vectors, M): x' = [x, sqrt(M^2 - |x|^2)] / M with M the largest norm
    (Bachrach et al., RecSys 2014). A query q searches as [q, 0] (`user_query`): q'.x' =
    q.x / M, the model's ranking; and on unit vectors the HNSW graph is built in a cosine
    geometry, where its recall holds (with raw off-unit vectors it fell to 0.84)."""
    norms = np.linalg.norm(vectors, axis=1)
    max_norm = float(norms.max()) if len(norms) else 1.0
    extra = np.sqrt(np.clip(max_norm ** 2 - norms ** 2, 0.0, None))[:, None]
    return (np.hstack([vectors, extra]) / max_norm).astype(np.float32), max_norm


def user_query(vector: np.ndarray, manifest: dict[str, Any]) -> np.ndarray:
    """A user-tower vector (or a batch, (n, d)) as the index searches with it."""
    if manifest.get("vector_transform") != MIPS_TO_COSINE:
        return vector
    pad = np.zeros((*vector.shape[:-1], 1), dtype=vector.dtype)
    return np.concatenate([vector, pad], axis=-1)


def item_query(indexed: np.ndarray, manifest: dict[str, Any]) -> np.ndarray:
    """An indexed item vector as the query of "similar items": without the transform's extra
    component, so the score is the item vectors' inner product (over M^2)."""
    if manifest.get("vector_transform") != MIPS_TO_COSINE:
        return indexed
    query = np.array(indexed, dtype=np.float32, copy=True)
    query[..., -1] = 0.0
    return query


def type_filter(types: Sequence[str] | None) -> str:
    if not types:
        return ""
    return f"{milvus.TYPE_FIELD} in {json.dumps(list(types))}"


# ---------------------------------------------------------------------------------------------
# recall


def exact_top_k(queries: np.ndarray, vectors: np.ndarray, k: int) -> np.ndarray:
    """(n_queries, k) indices of the k best inner products, best first (ties: lower index)."""
    scores = queries @ vectors.T
    k = min(k, vectors.shape[0])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.lexsort((part, -np.take_along_axis(scores, part, axis=1)), axis=1)
    return np.take_along_axis(part, order, axis=1)


def ann_top_k(client, name: str, manifest: dict[str, Any], queries: np.ndarray, k: int,
              filter_: str = "") -> list[list[str]]:
    out: list[list[str]] = []
    for s in range(0, len(queries), 256):
        hits = client.search(name, data=queries[s:s + 256].tolist(), limit=k, filter=filter_,
                             output_fields=[milvus.TYPE_FIELD],
                             search_params=milvus.search_params(manifest, k))
        out += [[h[milvus.ID_FIELD] for h in row] for row in hits]
    return out


def recall_at_k(ann: list[list[str]], exact: list[list[str]], exclude: Sequence[str] | None = None,
                k: int = RECALL_K) -> float:
    """Mean over queries of |ANN top k ∩ exact top k| / |exact top k| (exclude: one id per
    query left out of both, e.g. the query item itself)."""
    values = []
    for q, (a, e) in enumerate(zip(ann, exact, strict=True)):
        skip = exclude[q] if exclude is not None else None
        a = [i for i in a if i != skip][:k]
        e = [i for i in e if i != skip][:k]
        if e:
            values.append(len(set(a) & set(e)) / len(e))
    return float(np.mean(values)) if values else float("nan")


def measure_recall(client, name: str, manifest: dict[str, Any], item_ids: np.ndarray,
                   item_types: np.ndarray, vectors: np.ndarray, user_vectors: np.ndarray,
                   n_item_queries: int, seed: int = 0) -> dict[str, Any]:
    """Recall@10 of the collection vs exact search, per filter, for user and item queries.
    `vectors` as indexed, `user_vectors` as queries (`user_query`)."""
    by_filter: dict[str, float] = {}
    for label, types in [("all", None)] + [(t, [t]) for t in sorted(set(item_types))]:
        if len(user_vectors) == 0:
            break
        columns = (np.arange(len(item_ids)) if types is None
                   else np.flatnonzero(item_types == types[0]))
        exact = exact_top_k(user_vectors, vectors[columns], RECALL_K)
        exact_ids = [[item_ids[columns[j]] for j in row] for row in exact]
        ann = ann_top_k(client, name, manifest, user_vectors, RECALL_K, type_filter(types))
        by_filter[label] = recall_at_k(ann, exact_ids)
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(len(item_ids), size=min(n_item_queries, len(item_ids)),
                                replace=False))
    item_queries = item_query(vectors[sample], manifest)
    exact = exact_top_k(item_queries, vectors, RECALL_K + 1)
    exact_ids = [[item_ids[j] for j in row] for row in exact]
    ann = ann_top_k(client, name, manifest, item_queries, RECALL_K + 1)
    similar = recall_at_k(ann, exact_ids, exclude=list(item_ids[sample]))

    latencies = []
    for q in user_vectors[:50] if len(user_vectors) else item_queries[:50]:
        t0 = time.perf_counter()
        client.search(name, data=[q.tolist()], limit=RECALL_K, output_fields=[milvus.TYPE_FIELD],
                      search_params=milvus.search_params(manifest, RECALL_K))
        latencies.append(time.perf_counter() - t0)
    values = [*by_filter.values(), similar]
    return {
        f"recall@{RECALL_K}_user_queries": by_filter,
        f"recall@{RECALL_K}_item_queries": similar,
        f"recall@{RECALL_K}_min": float(np.nanmin(values)),
        "n_user_queries": int(len(user_vectors)),
        "n_item_queries": int(len(sample)),
        "search_ms_p50": round(float(np.median(latencies)) * 1000, 3),
        "search_ms_p99": round(float(np.percentile(latencies, 99)) * 1000, 3),
    }


# ---------------------------------------------------------------------------------------------
# gfm index


def build_index(workspace: Workspace, config: Config, timeline: Timeline,
                tag: str | None = None) -> IndexResult:
    """Encode every top-level catalog item with the served model (or `tag`), load the
    collection, measure recall, write the manifest and reports/index_metrics.json."""
    from evaluation.two_tower import solved_new_item_weights
    from training.two_tower.store import load_bundle, served_tag

    milvus.check_config(config.serving)
    began = time.perf_counter()
    tag = tag or served_tag(workspace)
    bundle = load_bundle(workspace, tag)
    cutoff = dt.datetime.fromisoformat(bundle.metadata["cutoff"])
    if cutoff != timeline.cutoff:
        logger.warning("the model was trained for cutoff %s, the configuration says %s: the "
                       "index uses the model's", cutoff, timeline.cutoff)
    item_ids, item_types = catalog_items(workspace)
    item_ids, item_types = servable(item_ids, item_types)
    t0 = time.perf_counter()
    vectors = encode_catalog(workspace, bundle, item_ids, cutoff)
    encode_s = time.perf_counter() - t0
    if not np.isfinite(vectors).all():
        raise GfmError("the item tower returned NaN or infinite vectors: retrain the model")
    # With a popularity prior or the hgnn_knn path the vectors are off unit length: index them
    # transformed.
    transform, max_norm = "none", 1.0
    if not bundle.model.unit_vectors:
        vectors, max_norm = mips_to_cosine(vectors)
        transform = MIPS_TO_COSINE

    name = milvus.collection_name(bundle.version)
    uri = milvus.resolve_uri(workspace, config.serving)
    serving = config.serving
    manifest: dict[str, Any] = {
        "collection": name,
        "uri": milvus.stored_uri(workspace, uri),
        "model_tag": tag,
        "model_version": bundle.version,
        "feature_service": bundle.feature_service,
        "cutoff": cutoff.isoformat(),
        "index_type": serving.index_type.upper(),
        "metric": milvus.METRIC,
        "build_params": milvus.build_params(serving),
        "search_params": milvus.base_search_params(serving),
        "dim": int(vectors.shape[1]),
        "vector_transform": transform,
        "mips_max_norm": max_norm,
        "n_items": len(item_ids),
        "n_items_by_type": {t: item_types.count(t) for t in sorted(set(item_types))},
        "item_types": sorted(set(item_types)),
        "item_features": f"offline store as of {cutoff.isoformat()} through "
                         f"{bundle.feature_service}",
    }
    if solved_new_item_weights(bundle) is not None:  # two_tower.new_item_exposure
        manifest["new_item_hgnn_weights"] = solved_new_item_weights(bundle)
    users = users_with_history(workspace, cutoff)
    rng = np.random.default_rng(0)
    if len(users) > serving.recall_queries:
        users = sorted(rng.choice(users, size=serving.recall_queries, replace=False).tolist())
    client = milvus.connect(uri)
    try:
        t0 = time.perf_counter()
        create_collection(client, name, int(vectors.shape[1]), config)
        insert_vectors(client, name, item_ids, item_types, vectors)
        load_s = time.perf_counter() - t0

        user_vectors = (user_query(encode_user_sample(workspace, bundle, users, cutoff), manifest)
                        if users else np.zeros((0, vectors.shape[1]), np.float32))
        recall = measure_recall(client, name, manifest, np.asarray(item_ids, dtype=object),
                                np.asarray(item_types, dtype=object), vectors, user_vectors,
                                serving.recall_queries)
    finally:
        client.close()

    manifest["recall"] = recall
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    manifest["built_at"] = now.isoformat(timespec="seconds")
    milvus.write_manifest(workspace, manifest)

    metrics = {
        **{k: manifest[k] for k in ("collection", "uri", "model_tag", "feature_service",
                                    "index_type", "metric", "build_params", "search_params",
                                    "dim", "vector_transform", "n_items",
                                    "n_items_by_type")},
        **recall,
        "goal": RECALL_GOAL,
        "meets_goal": bool(recall[f"recall@{RECALL_K}_min"] >= RECALL_GOAL),
        "encode_s": round(encode_s, 3),
        "load_s": round(load_s, 3),
        "total_s": round(time.perf_counter() - began, 3),
    }
    workspace.reports_dir.mkdir(parents=True, exist_ok=True)
    (workspace.reports_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    return IndexResult(name, uri, manifest, metrics)
