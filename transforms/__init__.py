"""Warehouse transforms: the dbt-duckdb project under dbt/, run for one workspace."""
