"""The feature store: Feast over the workspace's parquet files (DESIGN.md, "Data flow").

    apply_features        number new text/HGNN versions, build the feature tables, feast apply
    materialize_features  load the online store with what is true at the cutoff
    list_versions, retire, register_feature_service, latest_feature_service, service_spec
    open_store, repo_dir  the workspace's FeatureStore / repository directory

See docs/feature_store.md.
"""

from feature_store.core import (
    ApplyResult,
    MaterializeStat,
    VersionRow,
    apply_features,
    latest_feature_service,
    list_versions,
    materialize_features,
    publish,
    register_feature_service,
    retire,
    service_spec,
)
from feature_store.repo import open_store, repo_dir

__all__ = [
    "ApplyResult", "MaterializeStat", "VersionRow", "apply_features", "latest_feature_service",
    "list_versions", "materialize_features", "open_store", "publish", "register_feature_service",
    "repo_dir", "retire", "service_spec",
]
