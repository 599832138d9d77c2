"""Feature services: each pins the exact view versions one model trains and serves on.

two_tower_features_v<N> (registered by `gfm features apply` for HGNN run N): the item tower's
text, HGNN and metadata features and the user tower's average vectors and metadata. The
two-tower training adds one service per model version (feature_store.
register_feature_service); a service is never redefined, only retired.
"""

from feast import FeatureService

from feature_views import VIEWS
from repo_spec import SPEC


def _features(entry: dict):
    view = VIEWS[entry["view"]]
    return view[entry["features"]] if entry.get("features") else view


SERVICES: dict[str, FeatureService] = {
    spec["name"]: FeatureService(
        name=spec["name"],
        features=[_features(entry) for entry in spec["views"]],
        description=spec["description"],
        tags=spec["tags"],
    )
    for spec in SPEC["feature_services"]
}
globals().update(SERVICES)
