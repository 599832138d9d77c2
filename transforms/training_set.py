"""Moved: training sets are `feature_store.training_set`, beside the rest of the feature store.

This alias keeps `from transforms.training_set import ...` working for the callers not moved yet
(training/two_tower/train.py, evaluation/tune.py). New code imports `feature_store.training_set`.
"""

from feature_store.training_set import *  # noqa: F403
from feature_store.training_set import (  # noqa: F401
    HISTORY_VIEW,
    build_training_examples,
    get_training_frame,
    user_history_frame,
)
