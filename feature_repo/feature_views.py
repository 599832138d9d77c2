"""Feature views. Versioned ones are named <kind>_v<N> and tagged with their lineage.

    item_text_embedding_v<N>   text_embedding (Sentence-BERT), valid from the item's release
    item_hgnn_embedding_v<N>   hgnn_embedding, stamped graph_as_of of HGNN run N
    user_avg_hgnn_v<N>     avg_hgnn_all, avg_hgnn_<type>, n_items_<type> per daily snapshot,
                               from the vectors of item_hgnn_embedding_v<N>
    user_history           item_ids_<type> per daily snapshot (what serving leaves out)
    item_popularity_daily      listener_days_7d, listener_days_28d, days_since_release per
                               daily snapshot (the two-tower's "recent" popularity prior)
    item_metadata, user_metadata

The versioned views are declared in registered.py (written by `gfm features apply`), one
assignment per version, from the builders here.

A daily snapshot is valid for one day (ttl): an example at time t joins the snapshot of t's
day, built only from events before that midnight, and never an older one. With
warehouse.history_at_events the user views also hold a snapshot at each example's own instant
(built from the events before it), which the join then takes.
"""

from datetime import timedelta

from feast import Entity, FeatureView, Field, FileSource
from feast.types import Array, Bool, Float32, Int64, String

import data_sources
from entities import item, user
from repo_spec import SPEC

SNAPSHOT_TTL = timedelta(days=1)
NO_TTL = timedelta(0)  # valid from its timestamp on
ITEM_TYPES = SPEC["item_types"]


def _table_view(name: str, entity: Entity, ttl: timedelta, source: FileSource,
                schema: list[Field], description: str) -> FeatureView:
    """An unversioned view: one dbt model's parquet file, served online."""
    return FeatureView(name=name, entities=[entity], ttl=ttl, schema=schema, source=source,
                       online=True, description=description, tags=SPEC["tags"]["tables"])


item_metadata = _table_view(
    "item_metadata", item, NO_TTL, data_sources.item_metadata_source,
    [
        Field(name="item_type", dtype=String, description="podcast | episode | audiobook | ..."),
        Field(name="top_item_type", dtype=String, description="type it is recommended as"),
        Field(name="is_top_level", dtype=Bool, description="recommendable (not an episode)"),
        Field(name="language", dtype=String, description="ISO 639-1, empty when unknown"),
        Field(name="genre", dtype=String, description="editorial genre, empty when unknown"),
    ],
    "Minimal item metadata for the item tower.",
)

user_metadata = _table_view(
    "user_metadata", user, NO_TTL, data_sources.user_metadata_source,
    [
        Field(name="country", dtype=String, description="ISO 3166-1 alpha-2"),
        Field(name="age_bucket", dtype=String, description="e.g. 18-24"),
    ],
    "Minimal user metadata for the user tower.",
)

user_history = _table_view(
    "user_history", user, SNAPSHOT_TTL, data_sources.user_history_source,
    [
        Field(name=f"item_ids_{t}", dtype=Array(String),
              description=f"{t} ids consumed in the history window before the snapshot, "
                          "latest first")
        for t in ITEM_TYPES
    ],
    "Each user's history window per item type, one snapshot a day; online: the cutoff "
    "snapshot (serving leaves these items out).",
)

item_popularity_daily = _table_view(
    "item_popularity_daily", item, SNAPSHOT_TTL, data_sources.item_popularity_daily_source,
    [
        Field(name="listener_days_7d", dtype=Int64,
              description="sum over the 7 days before the snapshot of each day's distinct "
                          "listeners"),
        Field(name="listener_days_28d", dtype=Int64, description="the same over 28 days"),
        Field(name="days_since_release", dtype=Int64,
              description="whole days from the item's release to the snapshot"),
    ],
    "Each top-level item's recent popularity, one snapshot a day; online: the cutoff snapshot "
    "(an item released since has no row: no listeners yet).",
)


def _item_vector_view(spec: dict, source: FileSource, feature: str, feature_description: str,
                      description: str) -> FeatureView:
    """One version of an item vector view: one vector feature, valid from its timestamp on."""
    return FeatureView(
        name=spec["name"],
        entities=[item],
        ttl=NO_TTL,
        schema=[Field(name=feature, dtype=Array(Float32), description=feature_description)],
        source=source,
        online=True,
        description=description,
        tags=spec["tags"],
    )


def text_view(spec: dict, source: FileSource) -> FeatureView:
    return _item_vector_view(
        spec, source, "text_embedding",
        f"Sentence-BERT vector ({spec['dimension']}-d) of the item's text",
        f"Text vectors of every item, version {spec['version']}.")


def hgnn_view(spec: dict, source: FileSource) -> FeatureView:
    return _item_vector_view(
        spec, source, "hgnn_embedding",
        f"HGNN vector ({spec['dimension']}-d); episodes inherit their show's",
        f"HGNN item vectors of run {spec['version']}, stamped at its graph_as_of.")


def user_avg_view(spec: dict, source: FileSource) -> FeatureView:
    schema = [
        Field(name="avg_hgnn_all", dtype=Array(Float32),
              description="mean HGNN vector of the whole history window"),
        Field(name="n_items_all", dtype=Int64, description="items behind avg_hgnn_all"),
    ]
    for t in spec["item_types"]:
        schema += [
            Field(name=f"avg_hgnn_{t}", dtype=Array(Float32),
                  description=f"mean HGNN vector of the {t} items; zeros when none"),
            Field(name=f"n_items_{t}", dtype=Int64, description=f"{t} items behind it; 0 when none"),
        ]
    return FeatureView(
        name=spec["name"],
        entities=[user],
        ttl=SNAPSHOT_TTL,
        schema=schema,
        source=source,
        online=True,
        description=f"User average HGNN vectors over {spec['hgnn_view']}, one snapshot a day.",
        tags=spec["tags"],
    )
