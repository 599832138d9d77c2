"""Training sets for the two-tower model: examples from the warehouse, features from Feast.

    examples = build_training_examples(workspace, timeline)
    frame = get_training_frame(workspace, "two_tower_features_v1", examples)
    user_vectors, has_user = vector_matrix(frame, "avg_hgnn_all")        # (n, 128), (n,)

Examples (DESIGN.md, "Two-tower training examples"): every stream in [graph_as_of, cutoff),
rolled up to its top-level item (an episode counts for its show), stamped with its own time.
`label` is 1 for all of them: the user streamed the item (or one of its episodes) at
`event_timestamp`. They are positives only; negatives are the trainer's (in-batch or sampled),
because what a user did not stream is not known per instant.

Features come from Feast's point-in-time join through the FeatureService: each example gets the
user snapshot of its day (built only from events before that midnight; a snapshot is valid for
one day), or with warehouse.history_at_events the one at its own instant (events before it),
and the item vectors stamped at or before it (HGNN:
graph_as_of; text: the item's release). Feast returns rows in another order than it was given
(STACK.md): rows are put back in the examples' order by an example_id column.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from gfm.errors import GfmError, WorkspaceError
from gfm.timeline import Timeline
from gfm.workspace import Workspace

logger = logging.getLogger(__name__)

EXAMPLE_COLUMNS = ["user_id", "item_id", "event_timestamp", "label"]
ROW_ID = "example_id"


def build_training_examples(
    workspace: Workspace,
    timeline: Timeline,
    event_types: Sequence[str] = ("stream",),
    max_examples: int | None = None,
    seed: int = 0,
    start: dt.datetime | None = None,
    end: dt.datetime | None = None,
) -> pd.DataFrame:
    """Positive examples (user_id, item_id, event_timestamp, label=1) from the interactions in
    [start, end), by default [examples_start, cutoff) (graph_as_of unless
    timeline.early_label_days), rolled up to top-level items, one per distinct (user, item,
    instant), ordered by time. A window must lie within the default one: the daily user
    snapshots exist only there. `max_examples`: a seeded uniform sample of that many (still by
    time)."""
    from transforms.warehouse import warehouse_query

    if not event_types:
        raise GfmError("event_types is empty: give at least one, e.g. ('stream',)")
    start, end = example_window(timeline, start, end)
    placeholders = ", ".join("?" for _ in event_types)
    rows = warehouse_query(
        workspace,
        f"""
        select distinct user_id, top_item_id as item_id, event_ts as event_timestamp
        from int_interactions_rolled_up
        where event_type in ({placeholders})
            and event_ts >= ? and event_ts < ?
        order by event_timestamp, user_id, item_id
        """,
        [*event_types, start, end],
    )
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "event_timestamp"])
    frame["event_timestamp"] = pd.to_datetime(frame["event_timestamp"])
    if max_examples is not None and len(frame) > max_examples:
        keep = np.sort(np.random.default_rng(seed).choice(len(frame), max_examples, replace=False))
        frame = frame.iloc[keep].reset_index(drop=True)
    frame["label"] = np.ones(len(frame), dtype=np.int8)
    logger.info("%d training examples in [%s, %s)", len(frame), start, end)
    return frame[EXAMPLE_COLUMNS]


def example_window(timeline: Timeline, start: dt.datetime | None = None,
                   end: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) checked against the timeline: examples have user snapshots only in
    [examples_start, cutoff), and the days after the cutoff are the hold-out."""
    first, last = timeline.examples_start, timeline.cutoff
    start = first if start is None else start
    end = last if end is None else end
    if start >= end:
        raise GfmError(f"the example window [{start:%Y-%m-%d}, {end:%Y-%m-%d}) is empty: "
                       "give a start before the end")
    if end > last:
        raise GfmError(f"the example window ends {end:%Y-%m-%d}, after the cutoff {last:%Y-%m-%d}"
                       ": the days after it are the hold-out, kept for evaluation. End at or "
                       "before the cutoff (or move it: timeline.cutoff)")
    if start < first:
        raise GfmError(
            f"the example window starts {start:%Y-%m-%d}, before {first:%Y-%m-%d}, the first "
            "day with user snapshots (graph_as_of - timeline.early_label_days). Start there, "
            "or raise timeline.early_label_days and rerun `gfm transform`")
    return start, end


def history_set_examples(workspace: Workspace, timeline: Timeline) -> pd.DataFrame:
    """One positive example (user_id, item_id, event_timestamp = cutoff, label=1) per row of
    the mart user_item_streams: each top-level item a user streamed in the history window
    [cutoff - history_days, cutoff), i.e. the items of their history snapshot at the cutoff.
    The trainer takes each item out of its own row's user features
    (training.two_tower.data.leave_one_out)."""
    from transforms.warehouse import warehouse_query

    rows = warehouse_query(workspace,
                           "select user_id, item_id from user_item_streams order by user_id, item_id")
    frame = pd.DataFrame(rows, columns=["user_id", "item_id"])
    frame["event_timestamp"] = pd.Timestamp(timeline.cutoff)
    frame["label"] = np.ones(len(frame), dtype=np.int8)
    logger.info("%d history-set examples at %s", len(frame), timeline.cutoff)
    return frame[EXAMPLE_COLUMNS]


def service_refs(store, service_name: str, missing: str = "") -> dict[str, list[str]]:
    """The FeatureService's feature references ("view:feature"), grouped by join key (training
    frames here, online reads in serving). `missing`: what to do when the registry lacks it."""
    try:
        service = store.get_feature_service(service_name)
    except Exception as exc:  # Feast raises its own FeatureServiceNotFoundException
        raise WorkspaceError(
            f"feature service {service_name} is not in the Feast registry "
            f"({type(exc).__name__}){': ' + missing if missing else ''}") from None
    refs: dict[str, list[str]] = {}
    for projection in service.feature_view_projections:
        view = store.get_feature_view(projection.name)
        keys = sorted(view.join_keys) if hasattr(view, "join_keys") else sorted(
            c.name for c in view.entity_columns)
        if len(keys) != 1:
            raise GfmError(f"{projection.name}: expected one join key, got {keys}")
        refs.setdefault(keys[0], []).extend(
            f"{projection.name_to_use()}:{feature.name}" for feature in projection.features
        )
    return refs


def get_training_frame(
    workspace: Workspace,
    feature_service_name: str,
    examples: pd.DataFrame,
    split_by_entity: bool = False,
) -> pd.DataFrame:
    """The examples, in their order, with every feature of the service joined point-in-time.

    `examples` needs user_id, item_id and event_timestamp (naive UTC, or tz-aware); every
    other column is kept. Vectors come back as numpy arrays in object columns (None where no
    row was valid at that instant); `vector_matrix` stacks one into a matrix.

    Default: one get_historical_features call with the FeatureService object.
    split_by_entity: one call per entity instead (user features on (user_id,
    event_timestamp), item features on (item_id, event_timestamp)), over the same service's
    feature list. Measured on 100k examples the two cost the same (docs/benchmarks.md); the
    split keeps each join narrower, should a service grow much wider.
    """
    from feature_store import open_store

    missing = [c for c in ("user_id", "item_id", "event_timestamp") if c not in examples]
    if missing:
        raise GfmError(f"examples lack column(s) {', '.join(missing)}")
    store = open_store(workspace)
    timestamps = pd.to_datetime(examples["event_timestamp"])
    if timestamps.dt.tz is None:
        timestamps = timestamps.dt.tz_localize("UTC")  # project-wide: naive means UTC
    # Feast's DuckDB path casts to microseconds and refuses to drop nanoseconds.
    timestamps = timestamps.dt.floor("us")
    n = len(examples)
    keys = pd.DataFrame({"user_id": examples["user_id"].to_numpy(),
                         "item_id": examples["item_id"].to_numpy(),
                         "event_timestamp": timestamps.reset_index(drop=True),
                         ROW_ID: np.arange(n, dtype=np.int64)})

    began = time.perf_counter()
    if split_by_entity:
        parts = []
        for key, refs in service_refs(store, feature_service_name).items():
            entity_df = keys[[key, "event_timestamp", ROW_ID]]
            job = store.get_historical_features(entity_df=entity_df, features=refs)
            parts.append(_in_order(job.to_arrow(), n, drop=[key, "event_timestamp"]))
        features = pa.Table.from_arrays(
            [c for p in parts for c in p.columns], names=[c for p in parts for c in p.column_names]
        )
    else:
        service = store.get_feature_service(feature_service_name)
        job = store.get_historical_features(entity_df=keys, features=service)
        features = _in_order(job.to_arrow(), n, drop=["user_id", "item_id", "event_timestamp"])
    logger.info("point-in-time join of %d examples: %.2f s", n, time.perf_counter() - began)

    frame = examples.reset_index(drop=True).copy()
    for name, column in zip(features.column_names, features.columns):
        frame[name] = column.to_pandas()
    return frame


def entity_features(
    workspace: Workspace, feature_service_name: str, key: str, ids: Sequence[str],
    at: dt.datetime | Sequence[dt.datetime],
) -> pd.DataFrame:
    """The service's features of one entity ("user_id" or "item_id") for `ids`, as of the
    instant `at` (naive UTC), in the order of `ids`: the offline twin of an online read of
    a store materialized at `at` (evaluation reads the cutoff this way). `at` may also be one
    instant per id (an item released after the cutoff is read as of its release)."""
    from feature_store import open_store

    store = open_store(workspace)
    refs = service_refs(store, feature_service_name).get(key)
    if not refs:
        raise GfmError(f"{feature_service_name} has no features keyed by {key}")
    n = len(ids)
    per_id = isinstance(at, Sequence | np.ndarray | pd.Series) and not isinstance(at, str)
    instants = pd.to_datetime(pd.Series(list(at) if per_id else [at] * n, dtype=object))
    if len(instants) != n:
        raise GfmError(f"{len(instants)} instants for {n} ids")
    if instants.dt.tz is None:
        instants = instants.dt.tz_localize("UTC")  # project-wide: naive means UTC
    entity_df = pd.DataFrame({key: np.asarray(ids, dtype=object),
                              "event_timestamp": instants.dt.floor("us").reset_index(drop=True),
                              ROW_ID: np.arange(n, dtype=np.int64)})
    table = _in_order(store.get_historical_features(entity_df=entity_df, features=refs).to_arrow(),
                      n, drop=[key, "event_timestamp"])
    frame = pd.DataFrame({key: list(ids)})
    for name, column in zip(table.column_names, table.columns):
        frame[name] = column.to_pandas()
    return frame


HISTORY_VIEW = "user_history"


def history_refs(item_types: Sequence[str]) -> list[str]:
    """Feature references of the users' history lists, one per top-level item type."""
    return [f"{HISTORY_VIEW}:item_ids_{t}" for t in item_types]


def user_history_frame(workspace: Workspace, user_ids: Sequence[str], timestamps,
                       item_types: Sequence[str]) -> pd.DataFrame:
    """item_ids_<type> (latest first; None where no snapshot was valid) of `user_history`,
    point-in-time at each (user, timestamp), in the given order."""
    from feature_store import open_store

    ts = pd.to_datetime(pd.Series(list(timestamps)))
    if ts.dt.tz is None:
        ts = ts.dt.tz_localize("UTC")
    n = len(ts)
    entity_df = pd.DataFrame({"user_id": np.asarray(user_ids, dtype=object),
                              "event_timestamp": ts.dt.floor("us").reset_index(drop=True),
                              ROW_ID: np.arange(n, dtype=np.int64)})
    job = open_store(workspace).get_historical_features(entity_df=entity_df,
                                                        features=history_refs(item_types))
    table = _in_order(job.to_arrow(), n, drop=["user_id", "event_timestamp"])
    frame = pd.DataFrame(index=range(n))
    for name, column in zip(table.column_names, table.columns):
        frame[name] = column.to_pylist()
    return frame


POPULARITY_VIEW = "item_popularity_daily"


def item_popularity_snapshots(workspace: Workspace, item_ids: Sequence[str],
                              days: Sequence[dt.datetime], features: Sequence[str],
                              ) -> pd.DataFrame:
    """item_id, snapshot_ts and `features` of `item_popularity_daily` for every item at every
    day's midnight (naive UTC), point-in-time: a value is null where no snapshot was valid
    (the item was not released yet). What the two-tower's "recent" popularity prior scores
    the whole catalogue with at each example's day."""
    from feature_store import open_store

    ids = np.asarray(list(item_ids), dtype=object)
    instants = pd.to_datetime(pd.Series(list(days)))
    n = len(ids) * len(instants)
    snapshot = np.repeat(instants.to_numpy(), len(ids))
    stamps = pd.Series(snapshot).dt.tz_localize("UTC").dt.floor("us")
    entity_df = pd.DataFrame({"item_id": np.tile(ids, len(instants)), "event_timestamp": stamps,
                              ROW_ID: np.arange(n, dtype=np.int64)})
    store = open_store(workspace)
    try:
        store.get_feature_view(POPULARITY_VIEW)
    except Exception:  # Feast raises its own FeatureViewNotFoundException
        raise WorkspaceError(f"feature view {POPULARITY_VIEW} is not in this workspace's Feast "
                             "registry (built before the view existed): run `gfm features "
                             "apply`") from None
    job = store.get_historical_features(
        entity_df=entity_df, features=[f"{POPULARITY_VIEW}:{f}" for f in features])
    table = _in_order(job.to_arrow(), n, drop=["item_id", "event_timestamp"])
    frame = pd.DataFrame({"item_id": entity_df["item_id"], "snapshot_ts": snapshot})
    for name, column in zip(table.column_names, table.columns):
        frame[name] = column.to_pandas()
    return frame


def _in_order(table: pa.Table, n: int, drop: list[str]) -> pa.Table:
    """Rows sorted back by example_id; fails loudly if Feast lost or duplicated any."""
    if table.num_rows != n:
        raise GfmError(f"get_historical_features returned {table.num_rows} rows for {n} examples")
    order = pc.sort_indices(table.column(ROW_ID))
    table = table.take(order)
    ids = table.column(ROW_ID).to_numpy()
    if not np.array_equal(ids, np.arange(n)):
        raise GfmError("get_historical_features returned duplicated or missing examples")
    return table.drop_columns([c for c in [*drop, ROW_ID] if c in table.column_names])


def vector_matrix(frame: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """(n, d) float32 matrix of a vector column (zeros where null) and the (n,) mask of rows
    that had a vector."""
    values = frame[column].to_numpy()
    present = np.array([v is not None and not (isinstance(v, float) and np.isnan(v))
                        for v in values])
    if not present.any():
        raise GfmError(f"{column} is null in every row: nothing was valid at these instants")
    width = len(values[present.argmax()])
    matrix = np.zeros((len(values), width), dtype=np.float32)
    if present.any():
        matrix[present] = np.stack([np.asarray(v, dtype=np.float32) for v in values[present]])
    return matrix, present


def two_tower_frame(workspace: Workspace, service: str, examples: pd.DataFrame,
                    item_types: Sequence[str]) -> pd.DataFrame:
    """What the two-tower trains on: the point-in-time frame of `examples` through `service`,
    with the user's history lists item_ids_<type> of each example's instant beside it."""
    frame = get_training_frame(workspace, service, examples)
    history = user_history_frame(workspace, frame["user_id"], frame["event_timestamp"],
                                 item_types)
    return pd.concat([frame, history], axis=1)
