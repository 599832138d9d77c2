"""The recommender behind the HTTP endpoints: Feast online reads, the towers, Milvus search.

One `Engine` per worker process. It opens, once: the served two-tower model (BentoML model
store), the Feast store (online reads only: SQLite or Redis, never the DuckDB warehouse), and
the model's Milvus collection with its manifest (`gfm index`).

Per request:
- user features: ONE online read of the user-keyed features of the model's FeatureService
  (the views it was trained on) plus `user_history` (what to leave out);
- a user with a snapshot at the cutoff -> the user tower on those features (strategy "model");
  otherwise, with `recent_item_ids`, the same features computed from those items' HGNN vectors
  (per-type means and counts, as dbt builds them; strategy "recent_items"); otherwise the user
  tower on what the store has (country and age bucket, or nothing for a user it has never
  seen; strategy "new_user"): the model's own answer for a user without history, the one
  `gfm evaluate` scores, with the popularity prior in it;
- Milvus search filtered by item type, over-fetching by the number of items to leave out, so
  that exactly k remain after they are removed. An approximate index may answer a filtered
  search with fewer hits than asked (milvus-lite's HNSW does, for a selective type filter and
  a large limit); then the answer is computed exactly, over the same item vectors held in
  memory (`Catalogue`), so that a list is always min(k, eligible items) long. A limit that is
  a large share of the filtered items (EXACT_SHARE) goes to the exact answer directly.
- scores are inner products in the index's space: the model's own scores, or, for a model
  with vectors off unit length (a popularity prior, the hgnn_knn path; indexed through the
  MIPS-to-cosine transform), the model's scores divided by the manifest's `mips_max_norm`
  (the same ranking).

Errors are `RequestError`s with an HTTP status and a message that says what to send instead.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gfm.config import Config
from gfm.errors import GfmError, WorkspaceError
from gfm.workspace import Workspace
from serving import milvus
from serving.index import item_query, user_query
from serving.schemas import (
    RecommendRequest,
    RecommendResponse,
    ScoredItem,
    ScoreRequest,
    ScoreResponse,
    SimilarRequest,
    SimilarResponse,
)

logger = logging.getLogger(__name__)

HISTORY_VIEW = "user_history"
CATALOGUE_BATCH = 4096
# A search whose limit is at least this share of the items of its types is answered exactly in
# memory without asking Milvus: an approximate search that must return most of a filtered set
# visits most of it anyway, milvus-lite's HNSW then often answers short, and the exact answer
# over a few thousand vectors takes about a millisecond (bench/bench_serving.py --exact-k).
EXACT_SHARE = 0.25


class RequestError(GfmError):
    """A request the service cannot answer as asked: HTTP `status`, message for the caller."""

    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status = status
        self.extra = extra

    def body(self) -> dict[str, Any]:
        return {"error": str(self), **self.extra}


def _dedupe(ids: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(ids))


@dataclass
class Catalogue:
    """Every indexed item's id, type and vector, in memory, read once per index build from
    the collection itself (n x dim float32: 3 MB for 5,800 items of 128-d): how many items a
    filtered request can get, and the exact answer when the index's is short."""

    ids: np.ndarray  # (n,) str, sorted
    types: np.ndarray  # (n,) str
    vectors: np.ndarray  # (n, d) float32

    def __post_init__(self) -> None:
        self.type_of = dict(zip(self.ids.tolist(), self.types.tolist(), strict=True))
        self.n_by_type = {str(t): int(n) for t, n in zip(*np.unique(self.types,
                                                                     return_counts=True))}

    def n_eligible(self, types: list[str] | None, exclude: set[str]) -> int:
        """How many items of these types are not excluded."""
        chosen = set(types) if types else set(self.n_by_type)
        excluded = sum(self.type_of.get(i) in chosen for i in exclude)
        return sum(self.n_by_type.get(t, 0) for t in chosen) - excluded

    @classmethod
    def read(cls, client, collection: str) -> "Catalogue":
        ids, types, vectors = [], [], []
        iterator = client.query_iterator(
            collection, batch_size=CATALOGUE_BATCH, filter="",
            output_fields=[milvus.ID_FIELD, milvus.TYPE_FIELD, milvus.VECTOR_FIELD])
        try:
            while batch := iterator.next():
                for row in batch:
                    ids.append(row[milvus.ID_FIELD])
                    types.append(row[milvus.TYPE_FIELD])
                    vectors.append(row[milvus.VECTOR_FIELD])
        finally:
            iterator.close()
        order = np.argsort(np.asarray(ids, dtype=str), kind="stable")  # ties: by id
        return cls(np.asarray(ids, dtype=str)[order], np.asarray(types, dtype=str)[order],
                   np.asarray(vectors, dtype=np.float32).reshape(len(ids), -1)[order])

    def eligible(self, types: list[str] | None, exclude: set[str]) -> np.ndarray:
        mask = np.ones(len(self.ids), bool) if not types else np.isin(self.types, types)
        if exclude:
            mask &= ~np.isin(self.ids, list(exclude))
        return np.flatnonzero(mask)

    def top_k(self, vector: np.ndarray, k: int, types: list[str] | None,
              exclude: set[str]) -> list[ScoredItem]:
        """Exact: the k best inner products among the eligible items (ties: by id)."""
        rows = self.eligible(types, exclude)
        scores = self.vectors[rows] @ vector
        best = np.argsort(-scores, kind="stable")[:k]
        return [self.item(rows[j], float(scores[j])) for j in best]

    def item(self, row: int, score: float) -> ScoredItem:
        return ScoredItem(item_id=str(self.ids[row]), item_type=str(self.types[row]), score=score)


@dataclass
class UserContext:
    """What one online read says about a user."""

    features: dict[str, list[Any]]
    has_snapshot: bool
    history: list[str]  # all types, as in the cutoff snapshot


class Engine:
    def __init__(self, workspace: Workspace, config: Config):
        import torch

        from feature_store import open_store
        from feature_store.training_set import service_refs
        from training.two_tower.store import load_bundle

        milvus.quiet_logs()
        milvus.check_config(config.serving)
        torch.set_num_threads(config.serving.torch_threads)
        self.workspace, self.config = workspace, config
        self.bundle = load_bundle(workspace)
        self.bundle.model.eval()  # dropout off, once (load_bundle does it too)
        self.collection = milvus.collection_name(self.bundle.version)
        self._manifest_mtime = 0.0
        self._manifest_lock = threading.Lock()
        self._catalogue: Catalogue | None = None
        self._catalogue_lock = threading.Lock()
        self.short_answers = 0  # short approximate answers completed exactly (status())
        self.exact_answers = 0  # searches answered exactly from the start (EXACT_SHARE)
        self._load_manifest()

        self.store = open_store(workspace)
        refs = service_refs(self.store, self.bundle.feature_service,
                            missing="the served model reads it: rerun `gfm train two-tower`, "
                                    "or `gfm features apply`")
        self.user_refs = refs.get("user_id", [])
        item_refs = refs.get("item_id", [])
        self.hgnn_ref = next((r for r in item_refs if r.endswith(":hgnn_embedding")), None)
        if not self.user_refs or self.hgnn_ref is None:
            raise WorkspaceError(f"feature service {self.bundle.feature_service} lacks user "
                                 "features or hgnn_embedding: retrain with `gfm train two-tower`")
        self.type_ref = "item_metadata:top_item_type"
        self.history_refs = [f"{HISTORY_VIEW}:item_ids_{t}" for t in self.bundle.item_types]

        self.uri = milvus.resolve_uri(workspace, config.serving)
        self.client = milvus.connect(self.uri)
        if not self.client.has_collection(self.collection):
            raise WorkspaceError(f"{self.uri} has no collection {self.collection} (the served "
                                 f"model's): run `gfm index --workdir {workspace.root}`")
        self.client.load_collection(self.collection)
        self._warm_up()

    # -- setup ---------------------------------------------------------------------------------

    def _load_manifest(self) -> None:
        """(Re)read the manifest; `gfm index` may rebuild the collection while we serve."""
        path = milvus.manifest_path(self.workspace, self.collection)
        try:
            mtime = os.stat(path).st_mtime
        except FileNotFoundError:
            if self._manifest_mtime:
                return  # keep serving what we have
            milvus.read_manifest(self.workspace, self.collection)  # raises with the fix
            raise
        if mtime == self._manifest_mtime:
            return
        with self._manifest_lock:
            manifest = json.loads(path.read_text())
            if manifest["model_version"] != self.bundle.version:
                raise WorkspaceError(f"{path} indexes {manifest['model_version']}, not the served "
                                     f"{self.bundle.version}: rerun `gfm index`")
            self.manifest = manifest
            self.types = list(manifest["item_types"])
            self._catalogue = None  # the collection was rebuilt: read again when needed
            self._manifest_mtime = mtime

    def _refresh(self) -> None:
        """Per request: pick up a rebuilt index's manifest (a stat() when nothing changed); a
        manifest that cannot be used is logged and the current one kept."""
        try:
            self._load_manifest()
        except (GfmError, OSError, ValueError, KeyError) as exc:
            logger.warning("keeping the loaded index manifest: %s", exc)

    def _warm_up(self) -> None:
        """First calls are slow (Feast registry, torch kernels, Milvus load): pay them now."""
        self._user_context("__warm_up__")
        self._search(np.zeros(self.manifest["dim"], np.float32) + 1e-3, 1, None, set())
        self.catalogue()

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:  # closing is best effort at shutdown
            logger.debug("closing the Milvus client failed", exc_info=True)

    def status(self) -> dict[str, Any]:
        return {"model": self.manifest["model_tag"], "model_version": self.bundle.version,
                "feature_service": self.bundle.feature_service, "collection": self.collection,
                "index_type": self.manifest["index_type"], "milvus": self.uri,
                "online_store": str(getattr(self.store.config.online_store, "type", "?")),
                "n_items": self.manifest["n_items"], "short_answers": self.short_answers,
                "exact_answers": self.exact_answers}

    # -- inputs --------------------------------------------------------------------------------

    def _check_types(self, types: Sequence[str] | None) -> list[str] | None:
        if not types:
            return None
        unknown = [t for t in types if t not in self.types]
        if unknown:
            raise RequestError(400, f"unknown item type(s) {', '.join(map(repr, unknown))}; "
                                    f"send item_types from {self.types}, or leave it out for all")
        return _dedupe(types)

    def _user_context(self, user_id: str) -> UserContext:
        refs = self.user_refs + [r for r in self.history_refs if r not in self.user_refs]
        features = self.store.get_online_features(
            features=refs, entity_rows=[{"user_id": user_id}],
        ).to_dict()
        has_snapshot = features.get("avg_hgnn_all", [None])[0] is not None
        history = [i for ref in self.history_refs
                   for i in (features.get(ref.split(":", 1)[1], [None])[0] or [])]
        return UserContext(features, has_snapshot, history)

    def _user_vector(self, user: UserContext, recent: list[str]) -> tuple[np.ndarray, str]:
        """(the user's query as the index takes it (serving.index.user_query), the strategy)."""
        if user.has_snapshot:
            return user_query(self._encode_user(user.features), self.manifest), "model"
        frame = self._features_from_items(recent, user.features) if recent else None
        if frame is None:  # no history: the towers on the user's metadata, if the store has it
            return user_query(self._encode_user(user.features), self.manifest), "new_user"
        return user_query(self._encode_user(frame), self.manifest), "recent_items"

    def _encode_user(self, frame: dict[str, list[Any]]) -> np.ndarray:
        """The user tower on one row of features: training's encoder (`user_inputs`) and the
        forward `encode_users` runs, without its per-call eval() walk over the modules."""
        import torch

        with torch.inference_mode():
            z = self.bundle.model.user_vectors(self.bundle.user_inputs(frame))  # (1, d)
        return z[0].numpy().astype(np.float32)

    def _unknown_items(self, item_ids: list[str]) -> list[str]:
        """The ids the feature store has no item metadata for (not in the catalogue)."""
        if not item_ids:
            return []
        rows = self.store.get_online_features(
            features=[self.type_ref], entity_rows=[{"item_id": i} for i in item_ids],
        ).to_dict()
        return [i for i, t in zip(item_ids, rows["top_item_type"], strict=True) if t is None]

    def _features_from_items(self, item_ids: list[str],
                             user_features: dict[str, list[Any]]) -> dict[str, list[Any]] | None:
        """The user-average features of the model's FeatureService, computed from these items
        as dbt computes them from a history (per-type means and counts of the HGNN vectors,
        and the mean over all), plus the user's own metadata when the store has it."""
        rows = self.store.get_online_features(
            features=[self.hgnn_ref, self.type_ref],
            entity_rows=[{"item_id": i} for i in item_ids],
        ).to_dict()
        by_type: dict[str, list[np.ndarray]] = {t: [] for t in self.bundle.item_types}
        ids_by_type: dict[str, list[str]] = {t: [] for t in self.bundle.item_types}
        for item_id, vector, item_type in zip(item_ids, rows["hgnn_embedding"],
                                              rows["top_item_type"], strict=True):
            if vector is not None and item_type in by_type:
                by_type[item_type].append(np.asarray(vector, dtype=np.float32))
                ids_by_type[item_type].append(item_id)
        every = [v for vs in by_type.values() for v in vs]
        if not every:
            return None
        dim = self.bundle.hgnn_dim
        frame: dict[str, list[Any]] = {
            "avg_hgnn_all": [np.mean(every, axis=0)],
            "n_items_all": [len(every)],
        }
        for t, vs in by_type.items():
            frame[f"avg_hgnn_{t}"] = [np.mean(vs, axis=0) if vs else np.zeros(dim, np.float32)]
            frame[f"n_items_{t}"] = [len(vs)]
            frame[f"item_ids_{t}"] = [ids_by_type[t]]  # as given: the most recent first
        for name in self.bundle.user_vocab.codes:  # country, age_bucket
            frame[name] = user_features.get(name, [None])
        return frame

    # -- Milvus --------------------------------------------------------------------------------

    def catalogue(self) -> Catalogue:
        """The indexed items in memory (read from the collection on first use after each
        index build)."""
        catalogue = self._catalogue
        if catalogue is None:
            with self._catalogue_lock:
                if self._catalogue is None:
                    self._catalogue = Catalogue.read(self.client, self.collection)
                catalogue = self._catalogue
        return catalogue

    def _search(self, vector: np.ndarray, k: int, types: list[str] | None,
                exclude: set[str]) -> list[ScoredItem]:
        """`vector`: a query as the index takes it (serving.index.user_query / item_query).
        The k best items of these types, none of `exclude`, or all of them when fewer are
        left: Milvus, over-fetching by len(exclude); exact in memory if its answer is short, or
        from the start when the limit is a large share of the filtered items (EXACT_SHARE)."""
        catalogue = self.catalogue()
        target = min(k, catalogue.n_eligible(types, exclude))
        if target == 0:
            return []
        limit = min(k + len(exclude), milvus.MAX_TOP_K)
        if limit >= EXACT_SHARE * catalogue.n_eligible(types, set()):
            self.exact_answers += 1
            return catalogue.top_k(vector, k, types, exclude)
        expr = f"{milvus.TYPE_FIELD} in {json.dumps(types)}" if types else ""
        hits = self.client.search(
            self.collection, data=[vector.tolist()], limit=limit, filter=expr,
            output_fields=[milvus.TYPE_FIELD],
            search_params=milvus.search_params(self.manifest, limit),
        )[0]
        kept = [ScoredItem(item_id=h[milvus.ID_FIELD], item_type=h["entity"][milvus.TYPE_FIELD],
                           score=float(h["distance"]))
                for h in hits if h[milvus.ID_FIELD] not in exclude][:k]
        if len(kept) == target:
            return kept
        # The approximate index answered short (a selective filter with a large limit): the
        # exact answer over the same vectors.
        self.short_answers += 1
        logger.debug("short answer from %s (%d of %d, filter %r): exact search",
                     self.collection, len(kept), target, expr)
        return catalogue.top_k(vector, k, types, exclude)

    def _items(self, item_ids: list[str]) -> dict[str, dict[str, Any]]:
        rows = self.client.get(self.collection, ids=item_ids,
                               output_fields=[milvus.TYPE_FIELD, milvus.VECTOR_FIELD])
        return {r[milvus.ID_FIELD]: r for r in rows}

    # -- endpoints -----------------------------------------------------------------------------

    def _common(self) -> dict[str, str]:
        return {"model_version": self.bundle.version,
                "feature_service": self.bundle.feature_service}

    def recommend(self, req: RecommendRequest) -> RecommendResponse:
        self._refresh()
        types = self._check_types(req.item_types)
        recent = _dedupe(req.recent_item_ids or [])
        user = self._user_context(req.user_id)
        vector, strategy = self._user_vector(user, recent)
        exclude = set(user.history) | set(recent) if req.exclude_consumed else set()
        items = self._search(vector, req.k, types, exclude)
        return RecommendResponse(items=items, strategy=strategy,
                                 unknown_item_ids=self._unknown_items(recent), **self._common())

    def similar(self, req: SimilarRequest) -> SimilarResponse:
        self._refresh()
        types = self._check_types(req.item_types)
        found = self._items([req.item_id])
        if req.item_id not in found:
            raise RequestError(
                404, f"item_id {req.item_id!r} is not in the index of model "
                     f"{self.bundle.version} (top-level catalog items as of `gfm index`); send "
                     "the id of a podcast show or audiobook, not of an episode",
                item_id=req.item_id)
        vector = item_query(np.asarray(found[req.item_id][milvus.VECTOR_FIELD], dtype=np.float32),
                            self.manifest)
        items = self._search(vector, req.k, types, {req.item_id})
        return SimilarResponse(item_id=req.item_id, items=items, **self._common())

    def score(self, req: ScoreRequest) -> ScoreResponse:
        self._refresh()
        candidates = _dedupe(req.item_ids)
        found = self._items(candidates)
        known = [i for i in candidates if i in found]
        unknown = [i for i in candidates if i not in found]
        user = self._user_context(req.user_id)
        recent = _dedupe(req.recent_item_ids or [])
        vector, strategy = self._user_vector(user, recent)
        if not known:
            scores = np.zeros(0, np.float32)
        else:
            matrix = np.asarray([found[i][milvus.VECTOR_FIELD] for i in known], dtype=np.float32)
            scores = matrix @ vector  # (n_known,)
        order = np.argsort(-scores, kind="stable")  # ties keep the request's order
        items = [ScoredItem(item_id=known[j], item_type=found[known[j]][milvus.TYPE_FIELD],
                            score=float(scores[j])) for j in order]
        return ScoreResponse(items=items, unknown_item_ids=unknown,
                             unknown_recent_item_ids=self._unknown_items(recent),
                             strategy=strategy, **self._common())


def engine_from_environment() -> Engine:
    """The engine of the workspace named by GFM_WORKDIR, with the configuration `gfm serve`
    was given (GFM_CONFIG: a YAML file; GFM_SET: a JSON list of section.key=value)."""
    from gfm.config import load_config, parse_overrides
    from training.two_tower.store import bentoml_home

    workdir = os.environ.get("GFM_WORKDIR")
    if not workdir:
        raise WorkspaceError("GFM_WORKDIR is not set: start the service with `gfm serve "
                             "--workdir W`, or set GFM_WORKDIR to the workspace")
    workspace = Workspace.at(workdir)
    if not workspace.root.is_dir():
        raise WorkspaceError(f"GFM_WORKDIR={workdir} is not a directory")
    overrides = parse_overrides(json.loads(os.environ.get("GFM_SET") or "[]"))
    config_path = os.environ.get("GFM_CONFIG")
    config = load_config(workspace.root, Path(config_path) if config_path else None, overrides)
    bentoml_home(workspace)
    began = time.perf_counter()
    engine = Engine(workspace, config)
    logger.info("serving %s from %s (%.1f s to load)", engine.manifest["model_tag"],
                workspace.root, time.perf_counter() - began)
    return engine
