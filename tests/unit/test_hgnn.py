"""The HGNN on a graph of a few nodes: shapes, learning, inductive vectors, episodes, seeds."""

import dataclasses
import datetime as dt

import numpy as np
import pyarrow.parquet as pq
import pytest

from training.hgnn.config import HGNNConfig
from training.hgnn.graph import ItemGraph, split_edges
from training.hgnn.sampler import NeighborSampler
from training.hgnn.train import (
    LinkPredictionTrainer,
    cold_link_metrics,
    fit_text_regressor,
    link_metrics,
    text_knn_vectors,
    write_item_vectors,
)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny models: one thread is faster than two fighting over a busy machine (measured 5 s
    against 59 s for one regressor fit)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


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
    # pc3 and ab3 have no edge: their vectors are exactly the text-only path's (no message
    # reaches them); a connected node's is not.
    text_only = trainer.embed_text_only()
    for t in ("podcast", "audiobook"):
        np.testing.assert_allclose(z[t][3], text_only[t][3], atol=1e-6)
        assert not np.allclose(z[t][0], text_only[t][0], atol=1e-3)


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
    for s, d, pairs in split.val.values():
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
    # One hop alone: each seed receives exactly min(its in-degree, fan-out) messages, and only
    # the seeds receive any.
    degree = np.bincount(dst, minlength=n)
    one = sampler.sample({"a": np.array([0, 1, 2])}, [3], rng)
    receivers = one.nodes["a"][one.edges[("a", "co", "a")][1]]
    assert set(receivers.tolist()) <= {0, 1, 2}
    for seed in (0, 1, 2):
        assert (receivers == seed).sum() == min(degree[seed], 3)


def test_config_is_saved_whole():
    """Every field, each set away from its default, survives the JSON of metrics.json and the
    checkpoint's dict (dataclasses.asdict)."""
    import json

    def changed(value):
        if isinstance(value, bool):
            return not value
        if isinstance(value, (int, float)):
            return value * 2 + 1
        if isinstance(value, str):
            return value + "_x"
        if isinstance(value, list):
            return [*value, *value]
        raise AssertionError(f"no test value for {value!r}")

    default = HGNNConfig()
    config = HGNNConfig(**{f.name: changed(getattr(default, f.name))
                           for f in dataclasses.fields(HGNNConfig)})
    assert all(getattr(config, f.name) != getattr(default, f.name)
               for f in dataclasses.fields(HGNNConfig))
    assert HGNNConfig(**json.loads(json.dumps(dataclasses.asdict(config)))) == config


# --- items without edges (cold start) --------------------------------------------------------


@pytest.mark.parametrize("mode", ["full", "sampled"])
def test_connected_negative_pool_never_draws_a_node_without_edges(mode):
    graph = _graph()  # pc3 and ab3 have no edges
    split = split_edges(graph, 0.0, 10, 0)
    trainer = LinkPredictionTrainer(graph, split, _config(batch_mode=mode,
                                                          negative_pool="connected"))
    for t in ("podcast", "audiobook"):
        drawn = trainer.negatives(t, 500)
        assert drawn.shape == (500, 2)
        assert 3 not in drawn and set(np.unique(drawn)) == {0, 1, 2}
    everyone = LinkPredictionTrainer(graph, split, _config(batch_mode=mode, negative_pool="all"))
    assert 3 in everyone.negatives("podcast", 500)  # the default pool: every node of the type
    with pytest.raises(Exception, match="negative_pool"):
        LinkPredictionTrainer(graph, split, _config(negative_pool="nearby"))


def test_text_only_vectors_are_what_an_isolated_node_gets():
    graph = _graph()
    trainer = LinkPredictionTrainer(graph, split_edges(graph, 0.0, 10, 0), _config())
    for _ in range(3):
        trainer.train_epoch(deadline=float("inf"))
    z, text = trainer.embed_all(), trainer.embed_text_only()
    np.testing.assert_allclose(text["podcast"][3], z["podcast"][3], atol=1e-6)  # no edges
    assert not np.allclose(text["podcast"][0], z["podcast"][0], atol=1e-3)  # has neighbours


def _mean_text_graph_cosine(**config) -> float:
    graph = _graph()
    trainer = LinkPredictionTrainer(graph, split_edges(graph, 0.0, 10, 0), _config(**config))
    for _ in range(40):
        trainer.train_epoch(deadline=float("inf"))
    z, text = trainer.embed_all(), trainer.embed_text_only()
    return float(np.mean([(text[t][:3] * z[t][:3]).sum(1).mean() for t in z]))


def test_alignment_loss_pulls_the_text_only_path_to_the_graph_vector():
    aligned = _mean_text_graph_cosine(text_alignment_weight=1.0)
    assert aligned > 0.9
    assert aligned > _mean_text_graph_cosine() + 0.05


def test_cold_start_training_places_text_only_nodes_next_to_their_neighbours():
    """With every node's messages dropped half the time, a node's text-only vector scores
    its neighbour above a non-neighbour."""
    graph = _graph()
    trainer = LinkPredictionTrainer(graph, split_edges(graph, 0.0, 10, 0),
                                    _config(cold_start_node_rate=0.5, negative_pool="connected"))
    for _ in range(60):
        trainer.train_epoch(deadline=float("inf"))
    z, text = trainer.embed_all(), trainer.embed_text_only()
    # pc0 - pc1 are neighbours, pc0 - pc2 are not (pc2's only edge goes to ab2)
    pc0 = text["podcast"][0]
    assert (pc0 * z["podcast"][1]).sum() > (pc0 * z["podcast"][2]).sum()


def test_cold_link_metrics_equal_link_metrics_when_cold_vectors_are_the_graph_vectors():
    rng = np.random.default_rng(0)
    z = {t: rng.normal(size=(30, 4)) for t in ("a", "b")}
    val = {"a__b": ("a", "b", rng.integers(0, 30, (2, 40)))}
    negatives = {"a__b": rng.integers(0, 30, (40, 10))}
    warm = link_metrics(z, val, negatives)
    cold = cold_link_metrics(z, z, val, negatives)
    for side in ("query", "candidate", "intruder"):
        assert cold[f"auc_{side}"] == pytest.approx(warm["auc"])
        assert cold[f"mrr_{side}"] == pytest.approx(warm["mrr"])
    # cold vectors placed exactly on their neighbours: every neighbour ranks first
    unit = {t: v / np.linalg.norm(v, axis=1, keepdims=True) for t, v in z.items()}
    pairs = np.stack([np.arange(30), rng.integers(0, 30, 30)])
    placed = {"a": unit["b"][pairs[1]], "b": unit["b"]}
    val = {"a__b": ("a", "b", pairs)}
    negatives = {"a__b": (pairs[1][:, None] + 1 + rng.integers(0, 29, (30, 10))) % 30}
    cold = cold_link_metrics(unit, placed, val, negatives)
    assert (cold["auc_query"], cold["mrr_query"]) == (1.0, 1.0)
    assert link_metrics(unit, val, negatives)["mrr"] < 1.0
    # a cold candidate placed on its query: first among the query's negatives
    placed = {"a": unit["a"], "b": unit["b"].copy()}
    pairs = np.stack([rng.integers(0, 30, 30), np.arange(30)])
    placed["b"][pairs[1]] = unit["a"][pairs[0]]
    negatives = {"a__b": (pairs[1][:, None] + 1 + rng.integers(0, 29, (30, 10))) % 30}
    cold = cold_link_metrics(unit, placed, {"a__b": ("a", "b", pairs)}, negatives)
    assert (cold["auc_candidate"], cold["mrr_candidate"]) == (1.0, 1.0)


def test_text_regressor_learns_the_map_and_predicts_unseen_nodes():
    """z = normalise(x W): the regressor, fitted on connected nodes only, recovers it for nodes
    it never saw (out-of-fold and without edges)."""
    rng = np.random.default_rng(0)
    n, dim = 300, 16
    x = {t: rng.normal(size=(n, dim)).astype(np.float32) for t in ("audiobook", "podcast")}
    w = rng.normal(size=(dim, 8))
    z = {t: (v @ w) / np.linalg.norm(v @ w, axis=1, keepdims=True) for t, v in x.items()}
    z = {t: v.astype(np.float32) for t, v in z.items()}
    connected = {t: np.arange(n) < 250 for t in x}  # the last 50 have no edges
    graph = ItemGraph(["audiobook", "podcast"], {t: np.arange(n).astype(str) for t in x}, x, {},
                      {}, {})
    _, predicted, out_of_fold = fit_text_regressor(graph, z, connected, epochs=300, seed=0)
    for t in x:
        cold = ~connected[t]
        assert (predicted[t][cold] * z[t][cold]).sum(1).mean() > 0.8
        assert (out_of_fold[t][~cold] * z[t][~cold]).sum(1).mean() > 0.8
        assert np.allclose(np.linalg.norm(predicted[t], axis=1), 1.0, atol=1e-5)


def test_ranking_regressor_places_unseen_nodes_by_their_neighbours():
    """Two clusters whose text says which: the ranking regressor puts a node it never saw
    (no edges) next to its cluster's graph vectors and away from the other's."""
    rng = np.random.default_rng(0)
    n, dim = 200, 16
    cluster = {t: np.arange(n) % 2 for t in ("audiobook", "podcast")}
    centre = rng.normal(size=(2, dim))
    x = {t: (centre[c] + 0.5 * rng.normal(size=(n, dim))).astype(np.float32)
         for t, c in cluster.items()}
    axis = np.eye(8)[:2]
    z = {t: (axis[c] + 0.3 * rng.normal(size=(n, 8))) for t, c in cluster.items()}
    z = {t: (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32) for t, v in z.items()}
    connected = {t: np.arange(n) < 160 for t in x}
    pairs = np.array([(i, j) for i in range(160) for j in range(i + 2, 160, 2)][:3000]).T
    edges = {"audiobook__audiobook": ("audiobook", "audiobook", pairs),
             "podcast__podcast": ("podcast", "podcast", pairs)}
    graph = ItemGraph(["audiobook", "podcast"], {t: np.arange(n).astype(str) for t in x}, x, {},
                      {}, {})
    _, predicted, _ = fit_text_regressor(graph, z, connected, epochs=100, seed=0, edges=edges)
    for t in x:
        cold = np.flatnonzero(~connected[t])
        same = (predicted[t][cold] * axis[cluster[t][cold]]).sum(1)
        other = (predicted[t][cold] * axis[1 - cluster[t][cold]]).sum(1)
        assert (same > other).mean() > 0.9


def test_text_knn_vectors_average_the_graph_vectors_of_the_closest_connected_texts():
    x = {"podcast": np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [0.95, 0.05], [0, 1]],
                             dtype=np.float32)}
    z = {"podcast": np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, -1], [9, 9, 9], [9, 9, 9]],
                             dtype=np.float32)}
    connected = {"podcast": np.array([True, True, True, False, False, False])}
    graph = ItemGraph(["podcast"], {"podcast": np.arange(6).astype(str)}, x, {}, {}, {})
    out = text_knn_vectors(graph, z, connected, k=2)["podcast"]
    # node 4 (no edges) reads like 0 and 1: the mean of their vectors, never its own z
    np.testing.assert_allclose(out[4], np.array([1, 1, 0]) / np.sqrt(2), atol=1e-6)
    # node 3 reads like 2, then 1 (0.9 x 0.1 + 0.1 x 0.9 beats 0.1 x 1)
    np.testing.assert_allclose(out[3], np.array([0, 1, 1]) / np.sqrt(2), atol=1e-6)
    # node 0 with itself left out: its closest other connected text, 1
    left_out = text_knn_vectors(graph, z, connected, k=1, leave_self_out=True, chunk=2)["podcast"]
    np.testing.assert_allclose(left_out[0], [0, 1, 0], atol=1e-6)
    np.testing.assert_allclose(text_knn_vectors(graph, z, connected, k=1)["podcast"][0],
                               [1, 0, 0], atol=1e-6)
