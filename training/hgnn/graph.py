"""The item-item graph as arrays: nodes per top-level item type, typed edges, train/val split."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from gfm.errors import WorkspaceError
from gfm.workspace import Workspace

log = logging.getLogger(__name__)

Relation = tuple[str, str, str]  # (src node type, "co", dst node type)


@dataclass
class ItemGraph:
    node_types: list[str]
    item_ids: dict[str, np.ndarray]  # node type -> top-level item ids, index = node id
    x: dict[str, np.ndarray]  # node type -> (n_nodes, text_dim) float32 text vectors
    edges: dict[Relation, np.ndarray]  # (2, n_edges) node ids, both directions stored
    episodes: dict[str, str]  # episode item id -> its show's item id
    item_types: dict[str, str]  # every catalog item id -> its item type

    def num_nodes(self, node_type: str) -> int:
        return len(self.item_ids[node_type])

    @property
    def relations(self) -> list[Relation]:
        return sorted(self.edges)

    def num_edges(self) -> int:
        return sum(e.shape[1] for e in self.edges.values())


def read_vectors(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(item_ids, (n, dim) float32) from a features parquet with item_id and embedding."""
    table = pq.read_table(path, columns=["item_id", "embedding"])
    ids = np.asarray(table.column("item_id").to_pylist(), dtype=object)
    flat = table.column("embedding").combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return ids, flat.astype(np.float32).reshape(len(ids), -1)


def edge_fingerprint(workspace: Workspace) -> str:
    """Content fingerprint of co_interaction_edges: part of the HGNN version id."""
    # here, not at import: the trainer imports without DuckDB (bench/device.py)
    from transforms.warehouse import open_warehouse

    con = open_warehouse(workspace)
    try:
        rows = con.execute(
            "select count(*), coalesce(sum(hash(src_item_id, dst_item_id, n_users)) % 1000000007, 0),"
            " min(as_of) from co_interaction_edges"
        ).fetchall()
    finally:
        con.close()
    n, h, as_of = rows[0]
    return f"{n}_{h}_{as_of}"


CATALOG_SQL = "select item_id, item_type, parent_id from item_catalog order by item_id"


def read_catalog(workspace: Workspace) -> list[tuple[str, str, str | None]]:
    """(item_id, item_type, parent_id) of every catalogue item, by id (parent: an episode's show)."""
    from transforms.warehouse import open_warehouse

    con = open_warehouse(workspace)
    try:
        return con.execute(CATALOG_SQL).fetchall()
    finally:
        con.close()


def load_item_graph(workspace: Workspace, text_path: Path) -> ItemGraph:
    from transforms.warehouse import open_warehouse

    con = open_warehouse(workspace)
    try:
        catalog = con.execute(CATALOG_SQL).fetchall()
        # Node ids are assigned in SQL so edges map to them without a Python loop per edge.
        nodes_sql = """
            select item_id, item_type,
                   (row_number() over (partition by item_type order by item_id) - 1)::bigint
                       as node_id
            from item_catalog where parent_id is null
        """
        nodes = con.execute(nodes_sql + " order by item_type, node_id").fetchall()
        edges = con.execute(f"""
            with nodes as ({nodes_sql})
            select e.src_item_type, e.dst_item_type, s.node_id as src, d.node_id as dst
            from co_interaction_edges e
            join nodes s on s.item_id = e.src_item_id
            join nodes d on d.item_id = e.dst_item_id
            order by 1, 2, 3, 4
        """).fetchnumpy()
    finally:
        con.close()

    item_types = {item_id: item_type for item_id, item_type, _ in catalog}
    episodes = {item_id: parent for item_id, _, parent in catalog if parent is not None}
    node_types = sorted({t for _, t, _ in nodes})
    item_ids = {t: np.array([i for i, tt, _ in nodes if tt == t], dtype=object) for t in node_types}

    text_ids, text_vectors = read_vectors(text_path)
    text_row = {item: r for r, item in enumerate(text_ids)}
    x = {}
    for t in node_types:
        missing = [i for i in item_ids[t] if i not in text_row]
        if missing:
            raise WorkspaceError(
                f"{len(missing)} {t} item(s) have no text vector in {text_path.name} (e.g. "
                f"{missing[:3]}): rerun `gfm embed` after the last import"
            )
        x[t] = text_vectors[[text_row[i] for i in item_ids[t]]]

    src_types = np.asarray(edges["src_item_type"], dtype=object)
    dst_types = np.asarray(edges["dst_item_type"], dtype=object)
    edge_arrays = {}
    for s_type in node_types:
        for d_type in node_types:
            mask = (src_types == s_type) & (dst_types == d_type)
            if mask.any():
                edge_arrays[(s_type, "co", d_type)] = np.stack(
                    [np.asarray(edges["src"])[mask], np.asarray(edges["dst"])[mask]]
                ).astype(np.int64)
    graph = ItemGraph(node_types, item_ids, x, edge_arrays, episodes, item_types)
    log.info(
        "graph: %s nodes, %s directed edges over %s relations",
        {t: graph.num_nodes(t) for t in node_types}, f"{graph.num_edges():,}", len(edge_arrays),
    )
    return graph


@dataclass
class EdgeSplit:
    """Undirected positive pairs per edge type, split into train and validation."""

    # edge type name -> (src_type, dst_type, (2, n) node ids), one direction per pair
    train: dict[str, tuple[str, str, np.ndarray]]
    val: dict[str, tuple[str, str, np.ndarray]]
    message_edges: dict[Relation, np.ndarray]  # train pairs in both directions


def split_edges(graph: ItemGraph, val_fraction: float, max_val: int, seed: int) -> EdgeSplit:
    """Hold out a share of each edge type; held-out pairs leave message passing in both directions."""
    rng = np.random.default_rng(seed)
    train, val = {}, {}
    message: dict[Relation, list[np.ndarray]] = {}
    for (s, _, d), ei in sorted(graph.edges.items()):
        if (s, d) != tuple(sorted((s, d))):
            continue  # the reverse relation of a cross-type pair: same undirected edges
        pairs = ei[:, ei[0] < ei[1]] if s == d else ei
        pairs = pairs[:, rng.permutation(pairs.shape[1])]
        n_val = min(max_val, int(pairs.shape[1] * val_fraction))
        if pairs.shape[1] - n_val < 1:
            n_val = 0
        name = f"{s}__{d}"
        val[name] = (s, d, pairs[:, :n_val])
        train[name] = (s, d, pairs[:, n_val:])
        kept = pairs[:, n_val:]
        message.setdefault((s, "co", d), []).append(kept)
        message.setdefault((d, "co", s), []).append(kept[::-1])
    message_edges = {r: np.concatenate(parts, axis=1) for r, parts in message.items()}
    return EdgeSplit(train, {k: v for k, v in val.items() if v[2].shape[1]}, message_edges)
