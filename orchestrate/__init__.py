"""Orchestration: the stages as Dagster assets and schedules (the `orchestrate` extra)."""
