"""two_tower.new_item_exposure: the new items' hgnn_knn-path weight solved per item type for a
share of the top-10 slots (training/two_tower/new_items.py)."""

import numpy as np
import pytest

from gfm.errors import ConfigError
from training.two_tower.config import TwoTowerConfig
from training.two_tower.new_items import (
    MAX_OFFSET,
    MAX_WEIGHT,
    exposure_sample,
    slot_share,
    solve_offsets,
    solve_weights,
)


def _catalogue(seed: int = 0):
    """200 users, two types of 100 items (5 new in each); at weight 2 a new item's vector gains
    a random direction, so its score grows with the weight for some users, falls for others."""
    rng = np.random.default_rng(seed)
    taste = np.array([1.0, 0, 0, 0, 0, 0])  # what the users share
    users = rng.normal(size=(200, 6)) * 0.5 + taste
    at_one = rng.normal(size=(200, 6))
    types = np.repeat([1, 2], 100)
    is_new = np.zeros(200, bool)
    is_new[[0, 1, 2, 3, 4, 100, 101, 102, 103, 104]] = True
    at_one[is_new] -= 1.5 * taste  # new items start out of most users' top 10
    at_two = at_one.copy()
    at_two[is_new] += taste + rng.normal(size=(10, 6)) * 0.5
    return users, at_one, at_two, is_new, types


def _share(users, at_one, at_two, is_new, types, code, weight):
    of_type = types == code
    vectors = at_one + (weight - 1.0) * (at_two - at_one)
    warm = users @ vectors[of_type & ~is_new].T
    new = users @ vectors[of_type & is_new].T
    return slot_share(warm, new)


def test_the_solved_weight_gives_each_type_its_target_share_of_the_top10():
    users, at_one, at_two, is_new, types = _catalogue()
    solved = solve_weights(users, at_one, at_two, is_new, types, exposure=2.0)
    assert set(solved) == {1, 2}
    for code, s in solved.items():
        assert s["new_items"] == 5 and s["target_share"] == pytest.approx(2.0 * 5 / 100)
        assert 1.0 < s["weight"] < MAX_WEIGHT
        # reached, and the smallest weight that reaches it (to the bisection's precision)
        assert s["share"] >= s["target_share"]
        assert _share(users, at_one, at_two, is_new, types, code, s["weight"]) == s["share"]
        assert _share(users, at_one, at_two, is_new, types, code,
                      s["weight"] - 1e-3) < s["target_share"]
    # another draw of the catalogue solves to another weight: the target is the share
    other = solve_weights(*_catalogue(seed=1), exposure=2.0)
    assert other[1]["weight"] != pytest.approx(solved[1]["weight"], abs=1e-3)


def test_the_weight_only_lifts_new_items_and_stops_at_its_bound():
    users, at_one, at_two, is_new, types = _catalogue()
    at_one_shown = at_one.copy()
    at_one_shown[is_new] += 4.0 * users.mean(0)  # new items already in every top 10
    shown = solve_weights(users, at_one_shown, at_two + (at_one_shown - at_one), is_new, types,
                          exposure=1.0)
    assert all(s["weight"] == 1.0 and s["share"] >= s["target_share"] for s in shown.values())
    unreachable = solve_weights(users, at_one, at_two, is_new, types, exposure=20.0)
    assert all(s["weight"] == MAX_WEIGHT for s in unreachable.values())
    # a type without new items (or only new ones) gets no weight: nothing to solve
    assert set(solve_weights(users, at_one, at_two, is_new & (types == 1), types, 3.0)) == {1}


def test_the_user_sample_is_fixed_whatever_the_order_of_the_ids():
    ids = [f"u{i:04d}" for i in range(5000)]
    sample = exposure_sample(ids, n=100)
    assert len(sample) == 100 and sample == sorted(sample)
    assert exposure_sample(list(reversed(ids)), n=100) == sample
    assert exposure_sample(ids[:50], n=100) == ids[:50]


def test_config_rejects_an_exposure_with_a_fixed_weight_or_without_the_hgnn_path():
    with pytest.raises(ConfigError, match="new_item_exposure must be a number >= 0"):
        TwoTowerConfig(new_item_exposure=-1.0)
    with pytest.raises(ConfigError, match="set new_item_hgnn_weight to 1"):
        TwoTowerConfig(new_item_exposure=2.0, new_item_hgnn_weight=1.3)
    with pytest.raises(ConfigError, match="new_item_exposure needs learned item ids"):
        TwoTowerConfig(new_item_exposure=2.0, hgnn_skip=False)
    TwoTowerConfig(new_item_exposure=2.0)  # the default model has both


# --- evaluation.hgnn_knn_new_item_exposure: an offset on a retriever's new items ------------


def test_the_solved_offset_is_the_smallest_that_gives_the_target_share():
    users, at_one, _, is_new, types = _catalogue()
    unit = at_one / np.linalg.norm(at_one, axis=1, keepdims=True)
    scores = users / np.linalg.norm(users, axis=1, keepdims=True) @ unit.T  # cosines
    solved = solve_offsets(scores, is_new, types, exposure=2.0)
    for code, s in solved.items():
        assert 0.0 < s["offset"] < MAX_OFFSET and s["share"] >= s["target_share"]
        warm, new = scores[:, (types == code) & ~is_new], scores[:, (types == code) & is_new]
        assert slot_share(warm, new + s["offset"]) == s["share"]
        assert slot_share(warm, new + s["offset"] - 1e-4) < s["target_share"]
    # already shown: no offset (it only lifts); out of reach: the bound
    lifted = scores + np.where(is_new, 100.0, 0.0)
    assert all(s["offset"] == 0.0 for s in solve_offsets(lifted, is_new, types, 1.0).values())
    sunk = scores - np.where(is_new, 100.0, 0.0)
    assert all(s["offset"] == MAX_OFFSET for s in solve_offsets(sunk, is_new, types, 1.0).values())


def test_hgnn_knn_lifts_only_new_items_of_users_with_history():
    from evaluation.retrievers import VectorKNNRetriever
    from evaluation.split import EvalSplit, Ragged

    rng = np.random.default_rng(0)
    n = 60  # one type; items 50.. are new, pointing away from every history
    vectors = rng.normal(size=(n, 4)).astype(np.float32)
    vectors[:, 0] = np.abs(vectors[:, 0]) + 1.0
    vectors[50:, 0] = -1.0
    new = np.arange(n) >= 50
    users = np.array([f"u{i}" for i in range(30)], dtype=object)
    split = EvalSplit(item_ids=np.array([f"i{i}" for i in range(n)], dtype=object),
                      item_types=np.array(["podcast"] * n, dtype=object), user_ids=users,
                      histories=Ragged.from_lists([[i, i + 1] for i in range(29)] + [[]]),
                      targets=Ragged.from_lists([[]] * 30), is_new_item=new,
                      item_popularity=np.arange(n, dtype=np.float64))
    retriever = VectorKNNRetriever(split, vectors)
    before = retriever.score(np.arange(30))
    assert slot_share(before[:29, ~new], before[:29, new]) == 0.0
    report = retriever.lift_new_items(1.0)
    after = retriever.score(np.arange(30))
    assert report["podcast"]["new_items"] == 10 and report["podcast"]["offset"] > 0
    assert slot_share(after[:29, ~new], after[:29, new]) >= 10 / 60
    assert np.array_equal(after[:, ~new], before[:, ~new])  # warm items as they were
    assert np.allclose(after[:29, new] - before[:29, new], report["podcast"]["offset"], atol=1e-4)
    assert np.array_equal(after[29], before[29])  # no history: popularity, unlifted


def test_config_rejects_a_negative_hgnn_knn_exposure():
    from gfm.config import load_config

    with pytest.raises(ConfigError, match="hgnn_knn_new_item_exposure must be a number >= 0"):
        load_config(overrides={"evaluation": {"hgnn_knn_new_item_exposure": -0.5}})
    assert load_config(overrides={"evaluation": {"hgnn_knn_new_item_exposure": 1}}) \
        .evaluation.hgnn_knn_new_item_exposure == 1
