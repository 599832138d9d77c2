"""Training the two-tower for items released after it: text-neighbour HGNN vectors."""

import numpy as np
import pytest

from gfm.errors import ConfigError
from training.two_tower.config import TwoTowerConfig
from training.two_tower.train import text_neighbour_vectors


def test_text_neighbour_vectors_average_the_closest_texts_of_the_type_but_never_the_item():
    text = np.array([[1.0, 0, 0], [0.9, 0.1, 0], [0, 1.0, 0], [0.95, 0, 0.05], [1.0, 0, 0]])
    hgnn = np.array([[1.0, 0], [0, 1.0], [1.0, 1.0], [2.0, 0], [0, 3.0]])
    types = np.array(["a", "a", "a", "a", "b"])
    got = text_neighbour_vectors(text, hgnn, types, k=2)
    # item 0: its two closest other "a" texts are items 3 and 1 (never itself, never "b")
    expected = (hgnn[3] + hgnn[1]) / 2
    np.testing.assert_allclose(got[0], expected / np.linalg.norm(expected), atol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(got[:4], axis=1), 1.0, atol=1e-6)
    assert not got[4].any()  # alone in its type: no neighbour, no vector


def test_cold_item_rate_is_a_share_and_needs_the_catalogue_softmax():
    with pytest.raises(ConfigError, match="cold_item_rate"):
        TwoTowerConfig(cold_item_rate=1.0)
    with pytest.raises(ConfigError, match="negatives: catalog"):
        TwoTowerConfig(cold_item_rate=0.2, negatives="in_batch")
    assert TwoTowerConfig(cold_item_rate=0.2).cold_item_rate == 0.2


def test_training_with_cold_items_runs_and_leaves_the_served_catalogue_as_it_is():
    from tests.unit.test_popularity_prior import _frame
    from training.two_tower.train import encode_items, fit_two_tower

    frame, snapshots = _frame(days=2)
    rng = np.random.default_rng(1)
    frame["hgnn_embedding"] = [rng.normal(size=3).astype(np.float32) for _ in range(len(frame))]
    config = TwoTowerConfig(tower_dims=[8], cold_item_rate=0.5, epochs=2, batch_size=32,
                            val_fraction=0.0, device="cpu")
    bundle, _ = fit_two_tower(frame, config, ["podcast"], item_popularity=snapshots)
    served = bundle.item_inputs(frame.drop_duplicates("item_id"))
    assert bool((served.ids > 0).all())  # served items keep their ids
    vectors = encode_items(bundle, served)
    assert np.isfinite(vectors).all() and vectors.shape[1] == bundle.vector_dim
