"""The two-tower model as a retriever: user features at the cutoff and item features, read
through the model's own FeatureService, encoded by its towers; exact dot-product scoring."""

from __future__ import annotations

import numpy as np
import pandas as pd

from evaluation.retrievers import ModelUnavailable, Retriever
from evaluation.split import EvalSplit
from gfm.errors import WorkspaceError
from gfm.workspace import Workspace


class TwoTowerRetriever(Retriever):
    def __init__(self, split: EvalSplit, user_vectors: np.ndarray, item_vectors: np.ndarray,
                 source: str):
        super().__init__(split)
        self.user_vectors = user_vectors.astype(np.float32)  # (n_users, d)
        self.item_vectors = item_vectors.astype(np.float32)  # (n_items, d)
        self.source = source

    def score(self, user_indices: np.ndarray) -> np.ndarray:
        return self.user_vectors[user_indices] @ self.item_vectors.T


def two_tower_vectors(workspace: Workspace, bundle, user_ids, item_ids, at):
    """(user vectors, item vectors) for these ids, features as of `at` through the model's
    FeatureService: what `gfm serve` computes from the online store at the same instant.
    Items are read as of max(at, their release): one released after `at` is scored with the
    static features it has once released (DESIGN.md), and never with interactions after `at`."""
    from training.two_tower.train import encode_items, encode_users

    users = user_features(workspace, bundle.feature_service, bundle.item_types, user_ids, at)
    items = item_features(workspace, bundle.feature_service, item_ids, at)
    return (encode_users(bundle, bundle.user_inputs(users)),
            encode_items(bundle, bundle.item_inputs(items)))


def item_features(workspace: Workspace, service: str, item_ids, at) -> pd.DataFrame:
    """The item features of a FeatureService, each item read as of max(at, its release)."""
    from evaluation.split import release_instants
    from feature_store.training_set import entity_features

    return entity_features(workspace, service, "item_id", item_ids,
                           release_instants(workspace, item_ids, at))


def user_features(workspace: Workspace, service: str, item_types, user_ids, at) -> pd.DataFrame:
    """The user features of a FeatureService as of `at`, with the history lists
    item_ids_<type> (a service without the history view gets them read beside it)."""
    from feature_store.training_set import entity_features, user_history_frame

    users = entity_features(workspace, service, "user_id", user_ids, at)
    missing = [t for t in item_types if f"item_ids_{t}" not in users]
    if missing:
        history = user_history_frame(workspace, user_ids, [at] * len(user_ids), missing)
        users = pd.concat([users, history], axis=1)
    return users


def build_two_tower(split: EvalSplit, workspace: Workspace, tag: str | None = None) -> Retriever:
    from training.two_tower.store import load_bundle

    try:
        bundle = load_bundle(workspace, tag)
    except WorkspaceError as exc:
        raise ModelUnavailable(str(exc)) from None
    user_vectors, item_vectors = two_tower_vectors(
        workspace, bundle, split.user_ids, split.item_ids, split.cutoff)
    retriever = TwoTowerRetriever(split, user_vectors, item_vectors,
                                  f"{bundle.metadata['model_name']}:{bundle.version}")
    retriever.settings = bundle.metadata.get("config")
    return retriever
