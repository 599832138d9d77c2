"""Training the two-tower for items released after it: text-neighbour HGNN vectors."""

import numpy as np
import pandas as pd
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


def _two_type_model(new_item_knn: int, new_item_vector: str = "unit", **scoring):
    """A small trained two-tower over podcasts i00-i05 and audiobooks i06-i11, each item with
    its own text vector; (bundle, the trained catalogue's inputs, the texts by item)."""
    from tests.unit.test_popularity_prior import _frame
    from training.two_tower.train import fit_two_tower

    frame, snapshots = _frame(days=2)
    rng = np.random.default_rng(2)
    texts = {f"i{i:02d}": rng.normal(size=4).astype(np.float32) for i in range(12)}
    frame["text_embedding"] = [texts[i] for i in frame["item_id"]]
    frame["item_type"] = ["podcast" if int(i[1:]) < 6 else "audiobook" for i in frame["item_id"]]
    config = TwoTowerConfig(tower_dims=[8], new_item_knn=new_item_knn,
                            new_item_vector=new_item_vector, **scoring, epochs=1, batch_size=32,
                            val_fraction=0.0, device="cpu")
    bundle, _ = fit_two_tower(frame, config, ["audiobook", "podcast"], item_popularity=snapshots)
    catalogue = frame.drop_duplicates("item_id").sort_values("item_id").reset_index(drop=True)
    return bundle, catalogue, texts


def _released(catalogue, row: int, text, item_type: str):
    """One catalogue row as an item released after training: another id, this text and type."""
    new = catalogue.iloc[[row]].copy()
    new["item_id"], new["item_type"] = "released_after_training", item_type
    new["text_embedding"] = [np.asarray(text, np.float32)]
    return new


@pytest.mark.parametrize("new_item_vector", ["unit", "centred"])
def test_an_item_never_trained_borrows_the_tower_vectors_of_its_closest_trained_texts(
        new_item_vector):
    import torch

    bundle, catalogue, texts = _two_type_model(new_item_knn=2, new_item_vector=new_item_vector)
    model = bundle.model
    served = bundle.item_inputs(catalogue)
    text = texts["i00"] + 0.05
    with torch.no_grad():
        own = model._tower_items(served)  # (12, 8) each trained item from its own inputs
        # a trained item is scored from its own inputs, as without the setting
        torch.testing.assert_close(model.items(served)[:, :8], own)
        for item_type, rows in (("podcast", np.arange(6)), ("audiobook", np.arange(6, 12))):
            new = bundle.item_inputs(_released(catalogue, 0, text, item_type))
            assert int(new.ids[0]) == 0  # unknown to the model
            unit = np.stack([texts[i] / np.linalg.norm(texts[i]) for i in catalogue["item_id"]])
            closest = rows[np.argsort(-(unit[rows] @ (text / np.linalg.norm(text))))[:2]]
            expected = own[closest].mean(0)
            if new_item_vector == "centred":  # the type's centre + the mean offset, stretched
                centre = own[rows].mean(0)
                spread = (own[rows] - centre).norm(dim=-1).mean()
                expected = centre + torch.nn.functional.normalize(expected - centre,
                                                                  dim=-1) * spread
            expected = torch.nn.functional.normalize(expected, dim=-1)
            torch.testing.assert_close(model.items(new)[0, :8], expected)
            assert not torch.allclose(model._tower_items(new)[0], expected)

    # the reference is part of the saved weights: a model rebuilt from them scores alike
    from training.two_tower.model import TwoTowerModel

    rebuilt = TwoTowerModel(bundle.config, bundle.hgnn_dim, bundle.text_dim, bundle.item_types,
                            bundle.item_vocab.sizes(), bundle.user_vocab.sizes(),
                            n_item_ids=len(bundle.id_index))
    rebuilt.load_state_dict(model.state_dict())
    rebuilt.eval()
    new = bundle.item_inputs(_released(catalogue, 0, text, "podcast"))
    with torch.no_grad():
        torch.testing.assert_close(rebuilt.items(new), model.items(new))


def test_without_new_item_knn_a_new_item_is_scored_from_its_own_features():
    import torch

    bundle, catalogue, texts = _two_type_model(new_item_knn=0)
    new = bundle.item_inputs(_released(catalogue, 0, texts["i00"] + 0.05, "podcast"))
    with torch.no_grad():
        torch.testing.assert_close(bundle.model.items(new)[:, :8],
                                   bundle.model._tower_items(new))
    with pytest.raises(ConfigError, match="new_item_knn"):
        TwoTowerConfig(new_item_knn=-1)
    with pytest.raises(ConfigError, match="new_item_vector must be one of unit, centred"):
        TwoTowerConfig(new_item_vector="median")


def test_new_item_hgnn_weight_scales_only_the_hgnn_path_of_items_never_trained():
    """A fixed weight, or one per item type (as new_item_exposure solves them)."""
    from training.two_tower.train import encode_items

    plain, catalogue, texts = _two_type_model(new_item_knn=2)
    weighted, _, _ = _two_type_model(new_item_knn=2, new_item_hgnn_weight=3.0)
    items = pd.concat([catalogue, _released(catalogue, 0, texts["i00"] + 0.05, "podcast")],
                      ignore_index=True)
    before = encode_items(plain, plain.item_inputs(items))
    after = encode_items(weighted, weighted.item_inputs(items))
    graph = slice(8, 8 + weighted.hgnn_dim)  # the towers' 8 dims, then the hgnn path's
    assert weighted.model.hgnn_skip and np.abs(before[-1, graph]).sum() > 0
    np.testing.assert_allclose(after[:-1], before[:-1], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(after[-1, graph], 3.0 * before[-1, graph], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(after[-1, :8], before[-1, :8], rtol=1e-6, atol=1e-6)
    # weights solved per type (new_item_exposure) apply to the new items of their type only
    released_audiobook = _released(catalogue, 6, texts["i06"] + 0.05, "audiobook")
    released_audiobook["item_id"] = "audiobook_released_after_training"
    items = pd.concat([items, released_audiobook], ignore_index=True)
    podcast = plain.item_vocab.codes["item_type"]["podcast"]
    before = encode_items(plain, plain.item_inputs(items))
    plain.model.new_item_hgnn_weights = {podcast: 2.5}
    by_type = encode_items(plain, plain.item_inputs(items))
    np.testing.assert_allclose(by_type[:-2], before[:-2], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(by_type[-2, graph], 2.5 * before[-2, graph], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(by_type[-1], before[-1], rtol=1e-6, atol=1e-6)
    with pytest.raises(ConfigError, match="new_item_hgnn_weight needs learned item ids"):
        TwoTowerConfig(new_item_hgnn_weight=2.0, hgnn_skip=False)
    with pytest.raises(ConfigError, match="new_item_hgnn_weight must be a number >= 0"):
        TwoTowerConfig(new_item_hgnn_weight=-1.0)


def test_table2_ablation_drops_the_hgnn_path_and_its_new_item_weight():
    import dataclasses

    from evaluation.paper import no_gnn_config
    from gfm.config import Config

    config = Config()
    config = dataclasses.replace(config, two_tower=dataclasses.replace(
        config.two_tower, new_item_hgnn_weight=1.3))
    ablation = no_gnn_config(config).two_tower
    assert not ablation.use_hgnn and ablation.new_item_hgnn_weight == 1.0
    exposure = dataclasses.replace(config, two_tower=dataclasses.replace(
        config.two_tower, new_item_hgnn_weight=1.0, new_item_exposure=2.0))
    assert no_gnn_config(exposure).two_tower.new_item_exposure == 0.0
    assert ablation.item_id_dim >= ablation.tower_dims[-1]
    assert config.two_tower.new_item_hgnn_weight == 1.3  # the run's own config is left alone


def test_table2_pairs_the_served_models_own_scores_when_its_new_item_exposure_is_on():
    """The ablation cannot hand new items top-10 slots; Table 2 then ranks the served model by
    its own scores too (unified_2t_own_scores), and pairs the served ranking apart."""
    from evaluation.paper import NO_GNN, OWN_SCORES, UNIFIED, table2_pairs

    users = np.arange(6)
    hits = {UNIFIED: [1, 0, 0, 1, 0, 0], OWN_SCORES: [1, 1, 0, 1, 0, 1], NO_GNN: [1, 0, 1, 1, 0, 0]}
    user_hits = {m: {"podcast": (users, np.array(h, dtype=bool))} for m, h in hits.items()}
    results = {m: {"hr@10": {"podcast": float(np.mean(h))}, "hr@10_ci": {"podcast": [0.0, 1.0]}}
               for m, h in hits.items()}
    report = {"results": results, "settings": {"k": 10}}
    pairs = table2_pairs(report, user_hits, ["podcast"])
    assert pairs["table2"]["models"] == [OWN_SCORES, NO_GNN]
    assert pairs["table2"]["comparison"]["podcast"]["diff"] == (4 - 3) / 6
    assert pairs["table2_served"]["models"] == [UNIFIED, NO_GNN]
    assert pairs["table2_served"]["comparison"]["podcast"]["diff"] == (2 - 3) / 6
    del results[OWN_SCORES]  # exposure off: the served ranking is the model's own
    assert list(table2_pairs(report, user_hits, ["podcast"])) == ["table2"]
    assert table2_pairs(report, user_hits, ["podcast"])["table2"]["models"] == [UNIFIED, NO_GNN]


def test_single_kind_batches_never_mix_rows_with_and_without_hgnn_vectors():
    from training.two_tower.train import epoch_batches

    rows = np.arange(50)
    has_hgnn = np.arange(60) % 3 != 0  # frame rows 0, 3, 6, ... are early examples
    mixed = epoch_batches(rows, has_hgnn, 8, np.random.default_rng(0))
    # mixed batches (single_kind off): one permutation cut in order, as before the option
    order = rows[np.random.default_rng(0).permutation(50)]
    assert [b.tolist() for b in mixed] == [order[s:s + 8].tolist() for s in range(0, 50, 8)]
    single = epoch_batches(rows, has_hgnn, 8, np.random.default_rng(0), single_kind=True)
    assert all(len(set(has_hgnn[b])) == 1 for b in single)
    assert sorted(np.concatenate(single).tolist()) == rows.tolist()  # every row, once
    kinds = [bool(has_hgnn[b[0]]) for b in single]
    assert kinds != sorted(kinds, reverse=True)  # the batches are shuffled, not kind by kind
