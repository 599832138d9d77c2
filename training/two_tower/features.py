"""What the two-tower reads from Feast besides training frames: a service's views and lineage,
and the features of one entity as of one instant (evaluation at the cutoff)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pandas as pd

from gfm.workspace import Workspace


def service_spec(workspace: Workspace, name: str) -> dict:
    """Views (in order), tags and the item types of a registered FeatureService."""
    from transforms.feature_store import open_store
    from transforms.feature_store.repo import load_spec

    service = open_store(workspace).get_feature_service(name)
    return {"views": [p.name for p in service.feature_view_projections],
            "tags": dict(service.tags), "item_types": list(load_spec(workspace)["item_types"])}


def entity_features(workspace: Workspace, service: str, key: str, ids: Sequence[str],
                    at: dt.datetime) -> pd.DataFrame:
    """The service's features of `key` (user_id or item_id) for `ids` as of `at`, one row per
    id in the given order (a point-in-time join of every id at the same instant)."""
    from transforms.feature_store import open_store
    from transforms.training_set import _in_order, _service_refs, ROW_ID

    store = open_store(workspace)
    refs = _service_refs(store, service)[key]
    entity_df = pd.DataFrame({key: list(ids),
                              "event_timestamp": pd.Timestamp(at, tz="UTC"),
                              ROW_ID: range(len(ids))})
    table = store.get_historical_features(entity_df=entity_df, features=refs).to_arrow()
    table = _in_order(table, len(ids), drop=["event_timestamp"])
    return table.to_pandas()
