"""The two-tower model as a retriever: user features at the cutoff and item features, read
through the model's own FeatureService, encoded by its towers; exact dot-product scoring."""

from __future__ import annotations

import numpy as np

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
    FeatureService: what `gfm serve` computes from the online store at the same instant."""
    from training.two_tower.data import item_inputs, user_inputs
    from training.two_tower.train import encode_items, encode_users
    from transforms.training_set import entity_features

    users = entity_features(workspace, bundle.feature_service, "user_id", user_ids, at)
    items = entity_features(workspace, bundle.feature_service, "item_id", item_ids, at)
    user_vectors = encode_users(
        bundle, user_inputs(users, bundle.user_vocab, bundle.item_types, bundle.hgnn_dim))
    item_vectors = encode_items(
        bundle, item_inputs(items, bundle.item_vocab, bundle.hgnn_dim, bundle.text_dim))
    return user_vectors, item_vectors


def build_two_tower(split: EvalSplit, workspace: Workspace, tag: str | None = None) -> Retriever:
    from training.two_tower.store import load_bundle

    try:
        bundle = load_bundle(workspace, tag)
    except WorkspaceError as exc:
        raise ModelUnavailable(str(exc)) from None
    user_vectors, item_vectors = two_tower_vectors(
        workspace, bundle, split.user_ids, split.item_ids, split.cutoff)
    return TwoTowerRetriever(split, user_vectors, item_vectors,
                             f"{bundle.metadata['model_name']}:{bundle.version}")
