"""Uniform neighbour sampling on CSR adjacency, for mini-batches of a heterogeneous graph.

pyg-lib and torch-sparse are not available for this torch (STACK.md), so PyG's loaders cannot
sample; this is the few dozen lines they would have run. Sampling is with replacement above the
fan-out; the max aggregator is indifferent to duplicate edges.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.hgnn.graph import Relation


@dataclass
class Subgraph:
    nodes: dict[str, np.ndarray]  # node type -> global node ids, sorted; local id = position
    edges: dict[Relation, np.ndarray]  # (2, n) local ids

    def local(self, node_type: str, global_ids: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.nodes[node_type], global_ids)


class NeighborSampler:
    def __init__(self, num_nodes: dict[str, int], edges: dict[Relation, np.ndarray]):
        # Per relation, CSR by destination: the sources that send messages to each node.
        self.num_nodes = num_nodes
        self.csr: dict[Relation, tuple[np.ndarray, np.ndarray]] = {}
        for relation, ei in edges.items():
            order = np.argsort(ei[1], kind="stable")
            counts = np.bincount(ei[1], minlength=num_nodes[relation[2]])
            self.csr[relation] = (np.r_[0, np.cumsum(counts)], ei[0][order])

    def _neighbours(
        self, relation: Relation, frontier: np.ndarray, fanout: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        indptr, indices = self.csr[relation]
        start, degree = indptr[frontier], indptr[frontier + 1] - indptr[frontier]
        take_all = degree <= fanout
        # Nodes with few neighbours: all of them.
        small_deg = degree[take_all]
        dst_all = np.repeat(frontier[take_all], small_deg)
        offsets = np.arange(small_deg.sum()) - np.repeat(np.cumsum(small_deg) - small_deg, small_deg)
        src_all = indices[np.repeat(start[take_all], small_deg) + offsets]
        # The others: `fanout` uniform draws.
        big = ~take_all
        dst_big = np.repeat(frontier[big], fanout)
        draws = (rng.random(len(dst_big)) * np.repeat(degree[big], fanout)).astype(np.int64)
        src_big = indices[np.repeat(start[big], fanout) + draws]
        return np.r_[src_all, src_big], np.r_[dst_all, dst_big]

    def sample(
        self, seeds: dict[str, np.ndarray], fanouts: list[int], rng: np.random.Generator
    ) -> Subgraph:
        frontier = {t: np.unique(ids) for t, ids in seeds.items()}
        seen = {t: [ids] for t, ids in frontier.items()}
        sampled: dict[Relation, list[tuple[np.ndarray, np.ndarray]]] = {r: [] for r in self.csr}
        for fanout in fanouts:
            reached: dict[str, list[np.ndarray]] = {}
            for relation in self.csr:
                src_type, _, dst_type = relation
                if dst_type not in frontier or len(frontier[dst_type]) == 0:
                    continue
                src, dst = self._neighbours(relation, frontier[dst_type], fanout, rng)
                sampled[relation].append((src, dst))
                reached.setdefault(src_type, []).append(src)
            frontier = {t: np.unique(np.concatenate(parts)) for t, parts in reached.items()}
            for t, ids in frontier.items():
                seen.setdefault(t, []).append(ids)
        nodes = {t: np.unique(np.concatenate(parts)) for t, parts in seen.items()}
        edges = {}
        for relation, parts in sampled.items():
            if not parts:
                continue
            src = np.concatenate([p[0] for p in parts])
            dst = np.concatenate([p[1] for p in parts])
            src_type, _, dst_type = relation
            edges[relation] = np.stack(
                [np.searchsorted(nodes[src_type], src), np.searchsorted(nodes[dst_type], dst)]
            )
        return Subgraph(nodes, edges)
