"""bench/hgnn_unseen_items.py: the HGNN it trains sees no edge of the items it scores as new."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import hgnn_unseen_items  # noqa: E402

from training.hgnn.graph import ItemGraph  # noqa: E402


def test_without_items_drops_every_edge_of_the_items_and_their_shows_only():
    # podcasts p0-p2 (p1 has an episode e1), audiobooks a0-a1; both directions stored
    pp = np.array([[0, 1, 0], [1, 2, 2]])  # p0-p1, p1-p2, p0-p2
    pa = np.array([[1, 2], [0, 1]])  # p1-a0, p2-a1
    edges = {("podcast", "co", "podcast"): np.concatenate([pp, pp[::-1]], axis=1),
             ("podcast", "co", "audiobook"): pa, ("audiobook", "co", "podcast"): pa[::-1]}
    graph = ItemGraph(
        node_types=["audiobook", "podcast"],
        item_ids={"audiobook": np.array(["a0", "a1"], dtype=object),
                  "podcast": np.array(["p0", "p1", "p2"], dtype=object)},
        x={"audiobook": np.zeros((2, 4), np.float32), "podcast": np.zeros((3, 4), np.float32)},
        edges=edges, episodes={"e1": "p1"},
        item_types={"a0": "audiobook", "a1": "audiobook", "p0": "podcast", "p1": "podcast",
                    "p2": "podcast", "e1": "podcast"})
    left, unseen = hgnn_unseen_items.without_items(graph, ["e1", "a1"])
    assert unseen["podcast"].tolist() == [False, True, False]
    assert unseen["audiobook"].tolist() == [False, True]
    for (s, _, d), e in left.edges.items():
        assert not unseen[s][e[0]].any() and not unseen[d][e[1]].any()
    # what touches neither p1 nor a1 stays, in both directions
    assert left.edges[("podcast", "co", "podcast")].T.tolist() == [[0, 2], [2, 0]]
    assert left.edges[("podcast", "co", "audiobook")].shape[1] == 0
    assert graph.edges[("podcast", "co", "podcast")].shape[1] == 6  # the input is not changed
