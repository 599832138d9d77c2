"""Parquet files under the workspace's features/ directory, read by the DuckDB offline store.

One source per file: a versioned feature view reads its own file, so a new text or HGNN run
never changes what an older view (and the models trained on it) reads.
"""

from feast import FileSource

from repo_spec import SPEC


def _source(name: str, path: str, description: str, tags: dict | None = None,
            field_mapping: dict | None = None) -> FileSource:
    return FileSource(
        name=name,
        path=path,
        timestamp_field="event_timestamp",
        field_mapping=field_mapping,
        description=description,
        tags=tags or {},
    )


item_metadata_source = _source(
    "item_metadata_source", SPEC["tables"]["item_metadata"],
    "dbt model item_metadata: static item attributes, stamped with the release (created_at).",
)
user_metadata_source = _source(
    "user_metadata_source", SPEC["tables"]["user_metadata"],
    "dbt model user_metadata: static user attributes, stamped with the account's first trace.",
)
user_history_90d_source = _source(
    "user_history_90d_source", SPEC["tables"]["user_history_90d"],
    "dbt model user_history_90d_wide: daily snapshots of each user's 90-day history.",
)
item_popularity_daily_source = _source(
    "item_popularity_daily_source", SPEC["tables"]["item_popularity_daily"],
    "dbt model item_popularity_daily: daily snapshots of each item's recent listeners.",
)

# Versioned sources, one per file; each is also a module attribute named like itself.
SOURCES: dict[str, FileSource] = {}
for _spec in SPEC["item_text_embedding"]:
    SOURCES[_spec["name"]] = _source(
        f"{_spec['name']}_source", _spec["path"],
        f"Sentence-BERT text vectors, version {_spec['version']} (gfm embed).",
        _spec["tags"], field_mapping={"embedding": "text_embedding"},
    )
for _spec in SPEC["item_hgnn_embedding"]:
    SOURCES[_spec["name"]] = _source(
        f"{_spec['name']}_source", _spec["path"],
        f"HGNN item vectors, version {_spec['version']} (gfm train hgnn).",
        _spec["tags"], field_mapping={"embedding": "hgnn_embedding"},
    )
for _spec in SPEC["user_avg_hgnn_90d"]:
    SOURCES[_spec["name"]] = _source(
        f"{_spec['name']}_source", _spec["path"],
        f"dbt model user_avg_hgnn_90d over HGNN version {_spec['hgnn_version']}.",
        _spec["tags"],
    )
globals().update({source.name: source for source in SOURCES.values()})
