"""Warm start copies the served model's weights by name, and its vocabulary tables by key."""

import torch

from training.two_tower.config import TwoTowerConfig
from training.two_tower.data import Vocabulary
from training.two_tower.model import TwoTowerModel
from training.two_tower.store import TwoTowerBundle
from training.two_tower.warm_start import warm_start_weights

TYPES = ["audiobook", "podcast"]


def _bundle(items: list[str], genres: list[str], countries: list[str], seed: int,
            tower_dims=(32, 16)) -> TwoTowerBundle:
    torch.manual_seed(seed)
    config = TwoTowerConfig(tower_dims=list(tower_dims), item_id_dim=8, categorical_dim=4)
    item_vocab = Vocabulary({"genre": {g: i + 1 for i, g in enumerate(genres)},
                             "item_type": {t: i + 1 for i, t in enumerate(TYPES)}})
    user_vocab = Vocabulary({"country": {c: i + 1 for i, c in enumerate(countries)}})
    id_index = {item: n + 1 for n, item in enumerate(items)}
    model = TwoTowerModel(config, 6, 5, TYPES, item_vocab.sizes(), user_vocab.sizes(),
                          n_item_ids=len(id_index))
    return TwoTowerBundle(model, config, item_vocab, user_vocab, TYPES, 6, 5,
                          {"model_version": f"2t_{seed}"}, id_index)


def test_layers_are_copied_and_tables_row_by_row_for_shared_keys():
    old = _bundle(["a", "b", "c"], ["Crime", "History"], ["SE", "NO"], seed=0)
    new = _bundle(["b", "c", "d", "e"], ["History", "Jazz"], ["SE"], seed=1)
    fresh_d = new.model.ids.weight[new.id_index["d"]].clone()
    report = warm_start_weights(new.model, new.item_vocab, new.user_vocab, new.id_index, old)
    assert report["from"] == "2t_0" and report["kept"] == []
    for name, tensor in old.model.item_net.state_dict().items():
        assert torch.equal(new.model.item_net.state_dict()[name], tensor)
    ids_old, ids_new = old.model.ids.weight, new.model.ids.weight
    for item in ("b", "c"):
        assert torch.equal(ids_new[new.id_index[item]], ids_old[old.id_index[item]])
    assert torch.equal(ids_new[new.id_index["d"]], fresh_d)  # new item: its initialisation
    genre_old = old.model.item_categoricals.embeddings["genre"].weight
    genre_new = new.model.item_categoricals.embeddings["genre"].weight
    assert torch.equal(genre_new[1], genre_old[2])  # History: row 2 there, row 1 here
    assert torch.equal(genre_new[0], genre_old[0])  # unknown
    assert report["rows"]["ids.weight"] == "3 of 5"  # unknown, b, c


def test_a_changed_shape_keeps_its_initialisation_and_is_reported():
    old = _bundle(["a"], ["Crime"], ["SE"], seed=0, tower_dims=(32, 16))
    new = _bundle(["a"], ["Crime"], ["SE"], seed=1, tower_dims=(24, 16))
    before = new.model.item_net[0].weight.clone()
    report = warm_start_weights(new.model, new.item_vocab, new.user_vocab, new.id_index, old)
    assert "item_net.0.weight" in report["kept"]
    assert torch.equal(new.model.item_net[0].weight, before)
    assert torch.equal(new.model.ids.weight[1], old.model.ids.weight[1])


def test_warm_start_examples_new_keeps_only_rows_since_the_served_cutoff():
    import numpy as np
    import pandas as pd
    import pytest

    from gfm.errors import ConfigError
    from training.two_tower.train import _new_since

    served = _bundle(["a"], ["Crime"], ["SE"], seed=0)
    served.metadata["cutoff"] = "2025-06-10T00:00:00"
    days = pd.Series(pd.to_datetime(["2025-06-08", "2025-06-09", "2025-06-10", "2025-06-10",
                                     "2025-06-11"], utc=True))
    rows = np.array([0, 2, 3, 4])  # row 1 is a validation row
    assert _new_since(rows, days, served).tolist() == [2, 3, 4]
    assert _new_since(rows, days.dt.tz_localize(None), served).tolist() == [2, 3, 4]
    served.metadata.pop("cutoff")  # a model from before the cutoff was recorded: every row
    assert _new_since(rows, days, served).tolist() == [0, 2, 3, 4]
    with pytest.raises(ConfigError, match="warm_start_examples"):
        TwoTowerConfig(warm_start_examples="recent")


def test_a_warm_start_on_new_days_reads_no_history_set_examples():
    from training.two_tower.train import examples_config

    served = _bundle(["a"], ["Crime"], ["SE"], seed=0)
    config = TwoTowerConfig(history_set_examples=True, warm_start_examples="new")
    assert examples_config(config, None).history_set_examples  # from scratch: the window too
    assert not examples_config(config, served).history_set_examples  # learned already
    every_day = TwoTowerConfig(history_set_examples=True, warm_start_examples="all")
    assert examples_config(every_day, served).history_set_examples  # "all": as from scratch
    assert config.history_set_examples  # the trainer's own settings are left as they are
