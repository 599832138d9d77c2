"""The Dagster code location: `dagster dev -m orchestrate.definitions` (what `make dagster`
runs) loads `defs`, built for the workspace GFM_WORKDIR (orchestrate/assets.py)."""

from orchestrate.assets import Target, build_definitions

defs = build_definitions(Target.from_environment())
