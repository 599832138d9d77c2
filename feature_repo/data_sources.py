"""Parquet files under the workspace's features/ directory, read by the offline store.

One source per file: a versioned feature view reads its own file, so a new text or HGNN run
never changes what an older view (and the models trained on it) reads. The versioned sources
are declared in registered.py, one per version. With features.offline_store duckdb (the
default) each is a FileSource; with spark, a SparkSource over the same file.
"""

from feast import FileSource

from repo_spec import SPEC


def _source(name: str, path: str, description: str, tags: dict | None = None,
            field_mapping: dict | None = None):
    common = {"name": name, "timestamp_field": "event_timestamp",
              "field_mapping": field_mapping, "description": description, "tags": tags or {}}
    if SPEC.get("offline_store", "duckdb") == "spark":
        from feast.infra.offline_stores.contrib.spark_offline_store.spark_source import (
            SparkSource,
        )

        return SparkSource(path=path, file_format="parquet", **common)
    return FileSource(path=path, **common)


def _table_source(table: str, description: str) -> FileSource:
    """The source of an unversioned view: the parquet file of the dbt model `table`."""
    return _source(f"{table}_source", SPEC["tables"][table], description)


item_metadata_source = _table_source(
    "item_metadata",
    "dbt model item_metadata: static item attributes, stamped with the release (created_at).")
user_metadata_source = _table_source(
    "user_metadata",
    "dbt model user_metadata: static user attributes, stamped with the account's first trace.")
user_history_source = _table_source(
    "user_history",
    "dbt model user_history_wide: daily snapshots of each user's history window.")
item_popularity_daily_source = _table_source(
    "item_popularity_daily",
    "dbt model item_popularity_daily: daily snapshots of each item's recent listeners.")

# Versioned sources, one per file: registered.py (written by `gfm features apply`) calls these
# once per version, with its entry of feature_repo.json.


def text_source(spec: dict) -> FileSource:
    return _source(f"{spec['name']}_source", spec["path"],
                   f"Sentence-BERT text vectors, version {spec['version']} (gfm embed).",
                   spec["tags"], field_mapping={"embedding": "text_embedding"})


def hgnn_source(spec: dict) -> FileSource:
    return _source(f"{spec['name']}_source", spec["path"],
                   f"HGNN item vectors, version {spec['version']} (gfm train hgnn).",
                   spec["tags"], field_mapping={"embedding": "hgnn_embedding"})


def user_avg_source(spec: dict) -> FileSource:
    return _source(f"{spec['name']}_source", spec["path"],
                   f"dbt model user_avg_hgnn over HGNN version {spec['hgnn_version']}.",
                   spec["tags"])
