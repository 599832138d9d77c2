"""The two-tower model as a retriever: user features at the cutoff and item features, read
through the model's own FeatureService, encoded by its towers; exact dot-product scoring."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from evaluation.retrievers import ModelUnavailable, Retriever
from evaluation.split import EvalSplit
from gfm.errors import WorkspaceError
from gfm.workspace import Workspace

logger = logging.getLogger(__name__)


class TwoTowerRetriever(Retriever):
    def __init__(self, split: EvalSplit, user_vectors: np.ndarray, item_vectors: np.ndarray,
                 source: str):
        super().__init__(split)
        self.user_vectors = user_vectors.astype(np.float32)  # (n_users, d)
        self.item_vectors = item_vectors.astype(np.float32)  # (n_items, d)
        self.source = source

    def score(self, user_indices: np.ndarray) -> np.ndarray:
        return self.user_vectors[user_indices] @ self.item_vectors.T


def two_tower_vectors(workspace: Workspace, bundle, user_ids, item_ids, at,
                      apply_exposure: bool = True):
    """(user vectors, item vectors) for these ids, features as of `at` through the model's
    FeatureService: what `gfm serve` computes from the online store at the same instant.
    Items are read as of max(at, their release): one released after `at` is scored with the
    static features it has once released (DESIGN.md), and never with interactions after `at`.
    apply_exposure False: the model's own scores, its two_tower.new_item_exposure not applied
    (every new item at the trained weight), as a model without that setting ranks."""
    from training.two_tower.train import encode_items, encode_users

    users = user_features(workspace, bundle.feature_service, bundle.item_types, user_ids, at)
    items = bundle.item_inputs(item_features(workspace, bundle.feature_service, item_ids, at))
    if apply_exposure:
        calibrate_new_items(workspace, bundle, items, at)
    else:
        bundle.model.new_item_hgnn_weights = None
    return encode_users(bundle, bundle.user_inputs(users)), encode_items(bundle, items)


def calibrate_new_items(workspace: Workspace, bundle, items, at) -> dict[str, dict] | None:
    """With two_tower.new_item_exposure set: solve, per item type, the weight of the hgnn_knn
    path for the items among `items` (ItemInputs) the model never trained on, on the fixed
    sample of users with a history snapshot at `at` (training.two_tower.new_items), and set it
    on the model for the encoding that follows. Returns the solved weights by item type
    (weight, target and reached share of the top-10 slots, new items), or None when off."""
    exposure = bundle.config.new_item_exposure
    bundle.model.new_item_hgnn_weights = None
    if not exposure:
        return None
    from training.two_tower.new_items import exposure_sample
    from training.two_tower.train import encode_users
    from transforms.warehouse import warehouse_query

    users = exposure_sample([r[0] for r in warehouse_query(
        workspace, "select distinct user_id from user_history where snapshot_ts = ?", [at])])
    if not users:
        logger.warning("no user has a history snapshot at %s: new items keep weight 1", at)
        return {}
    frame = user_features(workspace, bundle.feature_service, bundle.item_types, users, at)
    report = set_new_item_weights(bundle, items, encode_users(bundle, bundle.user_inputs(frame)),
                                  exposure)
    logger.info("new items' hgnn_knn weight for exposure %s on %d users: %s", exposure,
                len(users), ", ".join(f"{t} {s['weight']:.3f} ({s['new_items']} new, "
                                      f"{s['share']:.2%} of the top-10 slots)"
                                      for t, s in report.items()))
    return report


def set_new_item_weights(bundle, items, user_vectors: np.ndarray, exposure: float) -> dict:
    """Solve the new items' weights among `items` for `exposure` on these users' vectors
    (training.two_tower.new_items.solve_weights), set them on the model; by item type name."""
    from training.two_tower.new_items import solve_weights
    from training.two_tower.train import encode_items

    model = bundle.model
    model.new_item_hgnn_weights = None
    try:  # the vectors at weight 1 and 2: a new item's score is linear in its weight
        at_weight = {}
        for weight in (1.0, 2.0):
            model.new_item_hgnn_weight = weight
            at_weight[weight] = encode_items(bundle, items)
    finally:
        model.new_item_hgnn_weight = 1.0
    solved = solve_weights(user_vectors, at_weight[1.0], at_weight[2.0],
                           (items.ids == 0).cpu().numpy(),
                           items.codes["item_type"].cpu().numpy(), exposure)
    model.new_item_hgnn_weights = {code: s["weight"] for code, s in solved.items()}
    return by_type_name(bundle, {code: {k: round(v, 5) if isinstance(v, float) else v
                                        for k, v in s.items()} for code, s in solved.items()})


def solved_new_item_weights(bundle) -> dict[str, float] | None:
    """The new items' weights the last calibrate_new_items set, by item type; None if off."""
    weights = bundle.model.new_item_hgnn_weights
    return None if weights is None else by_type_name(
        bundle, {code: round(w, 4) for code, w in weights.items()})


def by_type_name(bundle, by_code: dict) -> dict:
    """`by_code` keyed by item type name instead of the model's item_type code."""
    names = {code: name for name, code in bundle.item_vocab.codes["item_type"].items()}
    return {names.get(code, str(code)): value for code, value in by_code.items()}


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


def build_two_tower(split: EvalSplit, workspace: Workspace, tag: str | None = None,
                    apply_exposure: bool = True) -> Retriever:
    """The model `tag` (default: the served one) as a retriever; apply_exposure False:
    ranked by its own scores (two_tower_vectors), only for a model that has the setting on."""
    from training.two_tower.store import load_bundle

    try:
        bundle = load_bundle(workspace, tag)
    except WorkspaceError as exc:
        raise ModelUnavailable(str(exc)) from None
    if not apply_exposure and not bundle.config.new_item_exposure:
        raise ModelUnavailable("the model has no new-item exposure (two_tower.new_item_exposure "
                               "0): its ranking is already its own scores'")
    user_vectors, item_vectors = two_tower_vectors(
        workspace, bundle, split.user_ids, split.item_ids, split.cutoff, apply_exposure)
    retriever = TwoTowerRetriever(split, user_vectors, item_vectors,
                                  f"{bundle.metadata['model_name']}:{bundle.version}")
    retriever.settings = bundle.metadata.get("config")
    if not apply_exposure and retriever.settings:
        retriever.settings = {**retriever.settings, "new_item_exposure": 0.0}
    solved = solved_new_item_weights(bundle)
    if solved is not None and retriever.settings:
        retriever.settings = {**retriever.settings, "new_item_hgnn_weights": solved}
    return retriever
