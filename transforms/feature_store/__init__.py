"""Moved: the feature store is the top-level package `feature_store`, beside feature_repo/.

This alias keeps `from transforms.feature_store import core` working for the callers not moved
yet (training/two_tower/train.py, evaluation/tune.py). New code imports `feature_store`.
"""

from feature_store import *  # noqa: F403
from feature_store import core, repo, tables, versions  # noqa: F401
