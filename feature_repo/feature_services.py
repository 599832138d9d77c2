"""Feature services: each pins the exact view versions one model trains and serves on.

two_tower_features_v<N> (registered by `gfm features apply` for HGNN run N): the item tower's
text, HGNN and metadata features and the user tower's average vectors and metadata. The
two-tower training adds one service per model version (feature_store.
register_feature_service); a service is never redefined, only retired. Each is declared in
registered.py (written by `gfm features apply`) with its views named one by one.
"""

from feast import FeatureService, FeatureView


def feature_service(spec: dict, features: list[FeatureView]) -> FeatureService:
    """The service of a feature_repo.json entry over these views (or `view[[features]]`
    selections of them)."""
    return FeatureService(name=spec["name"], features=features,
                          description=spec["description"], tags=spec["tags"])
