"""The two-tower's "recent" popularity prior and the index's MIPS-to-cosine transform."""

import numpy as np
import pandas as pd
import pytest
import torch

from gfm.errors import ConfigError, GfmError
from serving.index import MIPS_TO_COSINE, exact_top_k, item_query, mips_to_cosine, user_query
from training.two_tower.config import TwoTowerConfig
from training.two_tower.data import POPULARITY_FEATURES, popularity_inputs
from training.two_tower.train import fit_two_tower, popularity_by_day


def test_mips_to_cosine_keeps_every_ranking_on_unit_vectors():
    rng = np.random.default_rng(0)
    items = rng.normal(size=(300, 9)).astype(np.float32) * rng.uniform(0.2, 3.0, (300, 1))
    users = rng.normal(size=(40, 9)).astype(np.float32)
    indexed, max_norm = mips_to_cosine(items)
    assert indexed.shape == (300, 10)
    np.testing.assert_allclose(np.linalg.norm(indexed, axis=1), 1.0, atol=1e-5)
    assert max_norm == pytest.approx(float(np.linalg.norm(items, axis=1).max()), rel=1e-6)
    manifest = {"vector_transform": MIPS_TO_COSINE}
    queries = user_query(users, manifest)
    np.testing.assert_allclose(queries @ indexed.T, users @ items.T / max_norm, atol=1e-4)
    assert np.array_equal(exact_top_k(queries, indexed, 10), exact_top_k(users, items, 10))
    # similar items: the item vectors' own inner products, not the transform's extra part
    np.testing.assert_allclose(item_query(indexed[:5], manifest) @ indexed.T,
                               items[:5] @ items.T / max_norm ** 2, atol=1e-4)
    # without the transform, queries pass through unchanged
    assert user_query(users, {"vector_transform": "none"}) is users


def test_popularity_inputs_are_log1p_and_missing_values_are_zero():
    frame = pd.DataFrame({"listener_days_7d": [0, 3, None], "listener_days_28d": [1, 15, None],
                          "days_since_release": [0, 40, np.nan]})
    got = popularity_inputs(frame)
    np.testing.assert_allclose(got, np.log1p([[0, 1, 0], [3, 15, 40], [0, 0, 0]]), rtol=1e-6)
    assert popularity_inputs(pd.DataFrame({"item_id": ["a"]})).tolist() == [[0.0, 0.0, 0.0]]


def test_popularity_by_day_places_each_snapshot_and_leaves_unreleased_items_at_zero():
    day0 = pd.Timestamp("2025-01-01")
    snapshots = pd.DataFrame({
        "item_id": ["a", "b", "a", "zz"],
        "snapshot_ts": [day0, day0 + pd.Timedelta(days=1), day0 + pd.Timedelta(days=2), day0],
        "listener_days_7d": [1, 2, 3, 9], "listener_days_28d": [1, 2, 3, 9],
        "days_since_release": [0, 5, 2, 9]})
    table, released = popularity_by_day(snapshots, np.array(["a", "b", "c"]), day0, 3)
    assert table.shape == (3, 3, len(POPULARITY_FEATURES))
    assert released.tolist() == [[True, False, False], [False, True, False],
                                 [True, False, False]]
    assert table[0, 0, 0] == pytest.approx(np.log1p(1)) and table[2, 0, 0] == pytest.approx(np.log1p(3))
    assert table[1, 1, 2] == pytest.approx(np.log1p(5))
    assert not table[:, 2].any()  # "c": no snapshot; "zz" is not a trained item
    assert not table[0, 1].any() and not table[1, 0].any()


def test_popularity_prior_kinds_and_old_boolean_configs():
    assert TwoTowerConfig(popularity_prior=True).popularity_prior == "training_share"
    assert TwoTowerConfig(popularity_prior=False).popularity_prior == "none"
    with pytest.raises(ConfigError, match="popularity_prior"):
        TwoTowerConfig(popularity_prior="trending")


def _frame(n_items: int = 12, days: int = 6, per_day: int = 40, seed: int = 0):
    """Examples of users with no history or features: what they stream follows each item's
    listeners of the day before, which only the recent prior can see."""
    rng = np.random.default_rng(seed)
    day0 = pd.Timestamp("2025-03-01")
    weights = rng.permutation(np.arange(1, n_items + 1) ** 2.0)
    rows, snapshots = [], []
    for d in range(days):
        drift = np.roll(weights, d)  # popularity moves from day to day
        listeners = (drift / drift.sum() * 200).astype(int)
        for i in range(n_items):
            snapshots.append({"item_id": f"i{i:02d}", "snapshot_ts": day0 + pd.Timedelta(days=d),
                              "listener_days_7d": int(listeners[i]),
                              "listener_days_28d": int(listeners[i]) * 3,
                              "days_since_release": 30 + d})
        for item in rng.choice(n_items, per_day, p=drift / drift.sum()):
            rows.append({"user_id": f"u{len(rows):04d}", "item_id": f"i{item:02d}",
                         "event_timestamp": day0 + pd.Timedelta(days=d, hours=12)})
    frame = pd.DataFrame(rows)
    frame["item_type"] = "podcast"
    frame["text_embedding"] = [np.ones(4, np.float32)] * len(frame)  # items look alike
    frame["hgnn_embedding"] = [np.ones(3, np.float32)] * len(frame)
    return frame, pd.DataFrame(snapshots)


def test_recent_prior_learns_that_more_listeners_mean_more_streams():
    frame, snapshots = _frame()
    # popularity_lag_days 0: here the day's own snapshot is what predicts its streams
    config = TwoTowerConfig(tower_dims=[8], popularity_prior="recent", item_id_dim=0, epochs=30,
                            batch_size=64, lr=1e-2, val_fraction=0.0, device="cpu",
                            hgnn_skip=False, popularity_lag_days=0)
    bundle, _ = fit_two_tower(frame, config, ["podcast"], item_popularity=snapshots)
    low, high = torch.tensor(popularity_inputs(pd.DataFrame(
        {"listener_days_7d": [1, 60], "listener_days_28d": [3, 180],
         "days_since_release": [32, 32]})))
    with torch.no_grad():
        p = bundle.model.recent_popularity(torch.stack([low, high]))
    assert float(p[1]) > float(p[0]) + 0.5
    assert bundle.vector_dim == 9  # 8 + the prior's dimension


def test_recent_prior_without_snapshots_says_what_is_missing():
    frame, _ = _frame(days=1)
    with pytest.raises(GfmError, match="item_popularity_daily"):
        fit_two_tower(frame, TwoTowerConfig(tower_dims=[8], popularity_prior="recent",
                                            epochs=1, device="cpu"), ["podcast"])


def test_hgnn_skip_adds_the_hgnn_knn_cosine_to_the_score_and_nothing_without_vectors():
    from training.two_tower.data import IdLists, ItemInputs, UserInputs
    from training.two_tower.model import TwoTowerModel

    torch.manual_seed(0)
    config = TwoTowerConfig(tower_dims=[8], popularity_prior="recent", hgnn_skip=True,
                            item_id_dim=0, device="cpu")
    model = TwoTowerModel(config, hgnn_dim=3, text_dim=4, item_types=["podcast"],
                          item_vocab_sizes={"item_type": 2}, user_vocab_sizes={"country": 2}).eval()
    hgnn = torch.tensor([[1.0, 0, 0], [0, 2.0, 0], [0, 0, 0]])  # the last item has none
    items = ItemInputs(hgnn, torch.randn(3, 4), {"item_type": torch.ones(3, dtype=torch.long)},
                       torch.zeros(3, dtype=torch.long), torch.rand(3, len(POPULARITY_FEATURES)))
    avg = torch.tensor([[0.0, 3.0, 0], [0, 0, 0]])  # the second user has no history
    users = UserInputs(avg[:, None, :], torch.tensor([[2.0], [0.0]]), avg,
                       {"country": torch.ones(2, dtype=torch.long)}, IdLists.empty(2, 1))
    with torch.no_grad():
        score = model.user_vectors(users) @ model.item_vectors(items).T  # (2, 3)
        z_user, weight = model.users_with_prior(users)
        z_item = model.items(items)
        g = torch.nn.functional.softplus(model.hgnn_skip_net(model._user_input(users)[0]))[:, 0]
        prior = weight[:, None] * config.temperature * model.item_prior(items)[None, :]
        tower = z_user[:, :8] @ z_item[:, :8].T
    assert z_item.shape == (3, 8 + 3) and z_user.shape == (2, 8 + 3)
    expected = tower + prior
    expected[0, 1] += g[0]  # user 0's history points where item 1 does: cosine 1
    torch.testing.assert_close(score, expected)
    assert not model.unit_vectors
    # without HGNN inputs (Table 2's ablation) there is no path to add: unit cosine vectors
    no_gnn = TwoTowerModel(TwoTowerConfig(tower_dims=[8], popularity_prior="none",
                                          use_hgnn=False, item_id_dim=0),
                           hgnn_dim=3, text_dim=4, item_types=["podcast"],
                           item_vocab_sizes={"item_type": 2}, user_vocab_sizes={"country": 2})
    assert not no_gnn.hgnn_skip and no_gnn.unit_vectors and no_gnn.out_dim == 8


def test_user_scale_weighs_the_tower_cosine_per_user_and_starts_at_one():
    """score = s(user) * cosine + prior; s = 1 before training, so switching user_scale on
    changes no score until the model learns; a user with s = 0 is ranked by the prior."""
    from training.two_tower.data import IdLists, ItemInputs, UserInputs
    from training.two_tower.model import TwoTowerModel

    def model(user_scale: bool) -> TwoTowerModel:
        torch.manual_seed(0)
        config = TwoTowerConfig(tower_dims=[8], popularity_prior="recent", hgnn_skip=False,
                                item_id_dim=0, user_scale=user_scale, device="cpu")
        return TwoTowerModel(config, hgnn_dim=3, text_dim=4, item_types=["podcast"],
                             item_vocab_sizes={"item_type": 2},
                             user_vocab_sizes={"country": 3}).eval()

    items = ItemInputs(torch.randn(4, 3), torch.randn(4, 4),
                       {"item_type": torch.ones(4, dtype=torch.long)},
                       torch.zeros(4, dtype=torch.long), torch.rand(4, len(POPULARITY_FEATURES)))
    users = UserInputs(torch.randn(2, 1, 3), torch.tensor([[2.0], [0.0]]), torch.randn(2, 3),
                       {"country": torch.tensor([1, 2])}, IdLists.empty(2, 1))
    plain, scaled = model(False), model(True)
    assert not scaled.unit_vectors
    with torch.no_grad():
        torch.testing.assert_close(scaled.user_vectors(users) @ scaled.item_vectors(items).T,
                                   plain.user_vectors(users) @ plain.item_vectors(items).T)
        scaled.user_scale_net.bias.fill_(-50.0)  # s ~ 0 for every user
        score = scaled.user_vectors(users) @ scaled.item_vectors(items).T
        _, weight = scaled.users_with_prior(users)
        prior = weight[:, None] * scaled.temperature * scaled.item_prior(items)[None, :]
    torch.testing.assert_close(score, prior, atol=1e-6, rtol=0)


def test_an_unknown_user_is_ranked_by_the_prior_alone_and_a_known_one_is_not():
    """unknown_user_prior_only: no history and unknown demographics = no taste vector (the
    served vector is zeros but the prior's weight); history or a known country keeps it."""
    from training.two_tower.data import IdLists, ItemInputs, UserInputs
    from training.two_tower.model import TwoTowerModel

    torch.manual_seed(0)
    config = TwoTowerConfig(tower_dims=[8], popularity_prior="recent", hgnn_skip=True,
                            item_id_dim=4, unknown_user_prior_only=True, device="cpu")
    model = TwoTowerModel(config, hgnn_dim=3, text_dim=4, item_types=["podcast"],
                          item_vocab_sizes={"item_type": 2}, user_vocab_sizes={"country": 3},
                          n_item_ids=5).eval()
    items = ItemInputs(torch.randn(5, 3), torch.randn(5, 4),
                       {"item_type": torch.ones(5, dtype=torch.long)},
                       torch.arange(1, 6), torch.rand(5, len(POPULARITY_FEATURES)))
    # users: with history; no history but a known country; unknown (no history, country 0)
    avg = torch.tensor([[0.0, 3.0, 0], [0, 0, 0], [0, 0, 0]])
    history = IdLists([np.array([0, 2, 2, 2])], [np.array([1, 3])])
    users = UserInputs(avg[:, None, :], torch.tensor([[2.0], [0.0], [0.0]]), avg,
                       {"country": torch.tensor([1, 2, 0])}, history)
    with torch.no_grad():
        vectors = model.user_vectors(users)
        score = vectors @ model.item_vectors(items).T
        _, weight = model.users_with_prior(users)
        prior = weight[:, None] * config.temperature * model.item_prior(items)[None, :]
    assert vectors[:2, :-1].abs().sum(-1).gt(0).all()  # known users keep a taste vector
    assert not vectors[2, :-1].any() and vectors[2, -1] > 0  # the unknown one: the prior's weight
    torch.testing.assert_close(score[2], prior[2])
    assert not torch.allclose(score[:2], prior[:2])
    # without a prior there is nothing to rank an unknown user by: the towers still do
    no_prior = TwoTowerModel(TwoTowerConfig(tower_dims=[8], popularity_prior="none",
                                            item_id_dim=0, unknown_user_prior_only=True),
                             hgnn_dim=3, text_dim=4, item_types=["podcast"],
                             item_vocab_sizes={"item_type": 2}, user_vocab_sizes={"country": 3})
    with torch.no_grad():
        assert no_prior.user_vectors(users)[2].any()


def test_lagged_days_stay_within_the_lag_and_never_before_the_first_snapshot():
    from training.two_tower.train import lagged_days

    day = torch.arange(20).repeat(50)  # (1000,)
    same = lagged_days(day, 0, np.random.default_rng(0))
    assert torch.equal(same, day)
    lagged = lagged_days(day, 5, np.random.default_rng(0))
    assert ((lagged <= day) & (lagged >= (day - 5).clamp(min=0))).all()
    assert (lagged < day).float().mean() > 0.7  # most examples read an earlier snapshot
    assert set((day - lagged)[day >= 5].tolist()) == set(range(6))  # every lag in [0, 5] drawn
    assert torch.equal(lagged, lagged_days(day, 5, np.random.default_rng(0)))  # seeded


def test_popularity_lag_days_must_be_a_whole_number_of_days():
    with pytest.raises(ConfigError, match="popularity_lag_days"):
        TwoTowerConfig(popularity_lag_days=-1)
