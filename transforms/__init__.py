"""Transforms of the workspace's data: the dbt-duckdb warehouse runner (warehouse.py) and the
items' text embeddings (text_embedding.py). The feature store is the package feature_store/."""
