"""The HGNN on a graph of a few nodes: shapes, learning, inductive vectors, episodes, seeds."""

import dataclasses
import datetime as dt

import numpy as np
import pyarrow.parquet as pq
import pytest

from training.hgnn.config import HGNNConfig
from training.hgnn.graph import ItemGraph, split_edges
from training.hgnn.sampler import NeighborSampler
from training.hgnn.train import LinkPredictionTrainer, write_item_vectors


def _graph() -> ItemGraph:
    """Two communities across two types; pc3 and ab3 have no edges at all."""
    rng = np.random.default_rng(0)
    x = {"podcast": rng.normal(size=(4, 16)).astype(np.float32),
         "audiobook": rng.normal(size=(4, 16)).astype(np.float32)}
    pp = [(0, 1)]
    aa = [(0, 1)]
    pa_ = [(0, 0), (1, 1), (2, 2)]  # podcast -> audiobook

    def both(pairs):
        a = np.array(pairs).T
        return np.concatenate([a, a[::-1]], axis=1)

    edges = {
        ("podcast", "co", "podcast"): both(pp),
        ("audiobook", "co", "audiobook"): both(aa),
        ("podcast", "co", "audiobook"): np.array(pa_).T,
        ("audiobook", "co", "podcast"): np.array(pa_).T[::-1].copy(),
    }
    ids = {"podcast": np.array([f"pc{i}" for i in range(4)], dtype=object),
           "audiobook": np.array([f"ab{i}" for i in range(4)], dtype=object)}
    item_types = {f"pc{i}": "podcast" for i in range(4)} | {f"ab{i}": "audiobook" for i in range(4)}
    item_types |= {"pc0e1": "episode", "pc0e2": "episode"}
    return ItemGraph(["audiobook", "podcast"], ids, x, edges,
                     {"pc0e1": "pc0", "pc0e2": "pc0"}, item_types)


def _config(**kw) -> HGNNConfig:
    base = dict(hidden_dim=8, out_dim=4, batch_size=4, negatives_per_edge=2, val_fraction=0.0,
                min_edges_per_type_per_epoch=4, fanouts=[2, 2], seed=1, dropout=0.0, lr=0.05)
    return HGNNConfig(**{**base, **kw})


@pytest.mark.parametrize("mode", ["full", "sampled"])
def test_shapes_unit_length_and_isolated_nodes(mode):
    graph = _graph()
    trainer = LinkPredictionTrainer(graph, split_edges(graph, 0.0, 10, 0), _config(batch_mode=mode))
    z = trainer.embed_all()
    assert z["podcast"].shape == (4, 4) and z["audiobook"].shape == (4, 4)
    for v in z.values():
        assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
        assert np.isfinite(v).all()
    # pc3 has no edge: its vector comes from its text alone, and differs from its neighbours'.
    assert not np.allclose(z["podcast"][3], z["podcast"][0])


@pytest.mark.parametrize("mode", ["full", "sampled"])
def test_loss_decreases(mode):
    graph = _graph()
    trainer = LinkPredictionTrainer(graph, split_edges(graph, 0.0, 10, 0), _config(batch_mode=mode))
    first, _ = trainer.train_epoch(deadline=float("inf"))
    for _ in range(30):
        last, _ = trainer.train_epoch(deadline=float("inf"))
    assert last < first


def test_same_seed_same_vectors_other_seed_other_vectors():
    graph = _graph()

    def run(seed):
        trainer = LinkPredictionTrainer(graph, split_edges(graph, 0.0, 10, 0), _config(seed=seed))
        for _ in range(3):
            trainer.train_epoch(deadline=float("inf"))
        return trainer.embed_all()

    a, b, c = run(1), run(1), run(2)
    assert all(np.array_equal(a[t], b[t]) for t in a)
    assert not np.allclose(a["podcast"], c["podcast"])


def test_episode_inherits_its_show_and_every_item_is_written(tmp_path):
    graph = _graph()
    trainer = LinkPredictionTrainer(graph, split_edges(graph, 0.0, 10, 0), _config())
    path = tmp_path / "v.parquet"
    n = write_item_vectors(path, graph, trainer.embed_all(), dt.datetime(2025, 1, 1), "hgnn_x")
    rows = {r["item_id"]: r for r in pq.read_table(path).to_pylist()}
    assert n == len(rows) == len(graph.item_types)
    assert rows["pc0e1"]["embedding"] == rows["pc0"]["embedding"]
    assert rows["pc0e1"]["item_type"] == "episode"
    assert rows["pc3"]["event_timestamp"] == dt.datetime(2025, 1, 1)


def test_validation_edges_leave_message_passing_in_both_directions():
    graph = _graph()
    split = split_edges(graph, val_fraction=0.5, max_val=10, seed=0)
    assert split.val, "some pairs are held out"
    for name, (s, d, pairs) in split.val.items():
        for a, b in pairs.T:
            fwd = split.message_edges[(s, "co", d)]
            back = split.message_edges[(d, "co", s)]
            assert not ((fwd[0] == a) & (fwd[1] == b)).any()
            assert not ((back[0] == b) & (back[1] == a)).any()


def test_sampler_respects_fanout_and_only_follows_real_edges():
    rng = np.random.default_rng(0)
    n = 50
    src = rng.integers(0, n, 2000)
    dst = rng.integers(0, n, 2000)
    edges = {("a", "co", "a"): np.stack([src, dst])}
    real = set(zip(src.tolist(), dst.tolist()))
    sampler = NeighborSampler({"a": n}, edges)
    sub = sampler.sample({"a": np.array([0, 1, 2])}, [3, 2], rng)
    e = sub.edges[("a", "co", "a")]
    glob = sub.nodes["a"]
    for s, d in zip(glob[e[0]], glob[e[1]]):
        assert (s, d) in real
    # First hop: at most 3 draws for each of the 3 seeds.
    first_hop = [d for d in glob[e[1]] if d in (0, 1, 2)]
    assert len(first_hop) <= 9 + 2 * len(glob)  # later hops may also land on a seed


def test_config_is_saved_whole():
    config = _config()
    assert HGNNConfig(**dataclasses.asdict(config)) == config
