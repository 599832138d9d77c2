"""`gfm train hgnn`: train by link prediction, infer a vector for every catalog item, write metrics.

One call trains (early stopping on validation MRR, a time budget), then infers with the best
weights: top-level items from the model (inductive: an item without edges gets a vector from its
text), episodes inherit their show's vector. The version id is derived from the config, the
graph's as-of time and the input versions, so a rerun with the same inputs is recognised.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import resource
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from tqdm import tqdm

from gfm.device import deterministic_torch, device_name, resolve_device
from gfm.errors import GfmError
from gfm.workspace import Workspace
from training.hgnn.config import HGNNConfig
from training.hgnn.graph import EdgeSplit, ItemGraph, edge_fingerprint, load_item_graph, split_edges
from training.hgnn.model import HeteroGraphSAGE
from training.hgnn.sampler import NeighborSampler
from training.text_neighbours import normalise, text_neighbour_mean

if TYPE_CHECKING:
    from gfm.timeline import Timeline

log = logging.getLogger(__name__)

FEATURE_DIR = "item_hgnn_embedding"


@dataclass
class HGNNRun:
    version: str
    vectors_path: Path
    checkpoint_path: Path
    metrics: dict
    reused: bool = False


def to_adjacency(edge_index: np.ndarray, n_src: int, n_dst: int) -> torch.Tensor:
    """(n_dst, n_src) CSR adjacency with unit weights, duplicates removed.

    PyG's SAGEConv aggregates over a sparse adjacency with one sparse-dense product, 2-3x
    faster on CPU than gathering a message per edge (forward and backward).
    """
    index = torch.from_numpy(np.ascontiguousarray(edge_index[::-1]))
    size = (n_dst, n_src)
    # Invariant checks explicitly off (the indices come from the warehouse's edge table, in
    # range by construction): left implicit, torch warns on every run.
    coalesced = torch.sparse_coo_tensor(index, torch.ones(index.shape[1]), size,
                                        check_invariants=False).coalesce()
    ones = torch.ones(coalesced.indices().shape[1])  # a duplicate edge must not count twice
    adjacency = torch.sparse_coo_tensor(coalesced.indices(), ones, size, check_invariants=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta",
                                category=UserWarning)
        return adjacency.to_sparse_csr()


def message_index(edge_index: np.ndarray, n_src: int, n_dst: int, device: str) -> torch.Tensor:
    """What SAGEConv aggregates over, on `device`: on CPU the CSR adjacency of to_adjacency; on
    CUDA the (2, n) edge index itself (PyG's sparse product has no max reduction on CUDA; its
    scatter-max over the edges does the same, and duplicate edges do not change a max)."""
    if device == "cpu":
        return to_adjacency(edge_index, n_src, n_dst)
    return torch.from_numpy(np.ascontiguousarray(edge_index)).to(device)


def hgnn_version(config: HGNNConfig, graph_as_of: dt.datetime, text_version: str, edges: str) -> str:
    semantic = {k: v for k, v in dataclasses.asdict(config).items()
                if k not in ("threads", "device", "refresh_every_days")}
    payload = json.dumps([semantic, graph_as_of.isoformat(), text_version, edges], sort_keys=True)
    return "hgnn_" + hashlib.sha256(payload.encode()).hexdigest()[:10]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


class LinkPredictionTrainer:
    """Holds the graph tensors, the model and the sampling state of one training run."""

    def __init__(self, graph: ItemGraph, split: EdgeSplit, config: HGNNConfig):
        self.graph, self.split, self.config = graph, split, config
        self.device = resolve_device(config.device, "hgnn.device")
        self.rng = np.random.default_rng(config.seed)
        torch.manual_seed(config.seed)
        n_message = sum(e.shape[1] for e in split.message_edges.values())
        if config.batch_mode not in ("auto", "full", "sampled"):
            raise GfmError(f"hgnn.batch_mode must be auto, full or sampled, not {config.batch_mode!r}")
        if config.inductive_vectors not in ("text_knn", "regressor", "text_path"):
            raise GfmError(f"hgnn.inductive_vectors must be text_knn, regressor or text_path, "
                           f"not {config.inductive_vectors!r}")
        if config.regressor_loss not in ("cosine", "ranking"):
            raise GfmError(f"hgnn.regressor_loss must be cosine or ranking, not "
                           f"{config.regressor_loss!r}")
        self.mode = config.batch_mode
        if self.mode == "auto":
            self.mode = "full" if n_message <= config.full_batch_max_edges else "sampled"
        self.x = {t: torch.from_numpy(v).to(self.device) for t, v in graph.x.items()}
        num_nodes = {t: graph.num_nodes(t) for t in graph.node_types}
        self.num_nodes = num_nodes
        self.message_edges = {r: message_index(e, num_nodes[r[0]], num_nodes[r[2]], self.device)
                              for r, e in split.message_edges.items()}
        self.sampler = NeighborSampler(num_nodes, split.message_edges)
        in_dim = next(iter(graph.x.values())).shape[1]
        self.model = HeteroGraphSAGE(graph.node_types, sorted(split.message_edges), in_dim,
                                     config).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr,
                                          weight_decay=config.weight_decay)
        if config.negative_pool not in ("all", "connected"):
            raise GfmError(f"hgnn.negative_pool must be all or connected, not "
                           f"{config.negative_pool!r}")
        # Harder negatives: in proportion to degree^0.75 in the training graph.
        degree = {t: np.zeros(n) for t, n in num_nodes.items()}
        for (_, _, dst), e in split.message_edges.items():
            degree[dst] += np.bincount(e[1], minlength=num_nodes[dst])
        self.degree = degree
        self.negative_cdf, self.uniform_pool = {}, {}
        for t, d in degree.items():
            pool = np.flatnonzero(d > 0)
            if config.negative_pool == "all" or len(pool) == 0:
                pool = np.arange(len(d))
            w = (d[pool] + 1.0) ** 0.75
            self.uniform_pool[t] = pool
            self.negative_cdf[t] = (pool, np.cumsum(w) / w.sum())
        self.val_negatives = {
            name: self.rng.integers(0, num_nodes[d], (pairs.shape[1], config.val_negatives))
            for name, (_, d, pairs) in split.val.items()
        }

    # -- sampling ---------------------------------------------------------------------------
    def epoch_edges(self) -> list[tuple[str, str, np.ndarray]]:
        """Positive pairs of one epoch, by edge type (the multi-link sampler when enabled)."""
        counts = {name: pairs.shape[1] for name, (_, _, pairs) in self.split.train.items()}
        cap = None
        if self.config.multi_link_sampler and counts:
            cap = max(min(counts.values()), self.config.min_edges_per_type_per_epoch)
        chosen = []
        for s, d, pairs in self.split.train.values():
            n = pairs.shape[1]
            take = self.rng.permutation(n)[: cap if cap is not None else n]
            chosen.append((s, d, pairs[:, take]))
        return chosen

    def negatives(self, node_type: str, n: int) -> np.ndarray:
        k = self.config.negatives_per_edge
        pool = self.uniform_pool[node_type]
        uniform = pool[self.rng.integers(0, len(pool), (n, k - k // 2))]
        hard_pool, cdf = self.negative_cdf[node_type]
        hard = hard_pool[np.minimum(np.searchsorted(cdf, self.rng.random((n, k // 2))),
                                    len(hard_pool) - 1)]
        return np.concatenate([uniform, hard], axis=1)

    def batches(self) -> list[list[tuple[str, str, np.ndarray]]]:
        """Shuffle pairs of every type together (random direction), cut into batches."""
        flat_s, flat_d, flat_a, flat_b = [], [], [], []
        for s, d, pairs in self.epoch_edges():
            flip = self.rng.random(pairs.shape[1]) < 0.5
            a = np.where(flip, pairs[1], pairs[0])
            b = np.where(flip, pairs[0], pairs[1])
            flat_s.append(np.where(flip, d, s).astype(object))
            flat_d.append(np.where(flip, s, d).astype(object))
            flat_a.append(a)
            flat_b.append(b)
        if not flat_a:
            return []
        src_t, dst_t = np.concatenate(flat_s), np.concatenate(flat_d)
        a, b = np.concatenate(flat_a), np.concatenate(flat_b)
        order = self.rng.permutation(len(a))
        out = []
        for start in range(0, len(a), self.config.batch_size):
            idx = order[start : start + self.config.batch_size]
            groups = []
            for s, d in sorted({(x, y) for x, y in zip(src_t[idx], dst_t[idx])}):
                m = idx[(src_t[idx] == s) & (dst_t[idx] == d)]
                groups.append((s, d, np.stack([a[m], b[m]])))
            out.append(groups)
        return out

    # -- forward ----------------------------------------------------------------------------
    def embed_batch(self, seeds: dict[str, np.ndarray]) -> tuple[dict[str, torch.Tensor], callable]:
        """Embeddings for `seeds`; returns them and a lookup (type, global ids) -> rows."""
        if self.mode == "full":
            z = self.model(self.x, self.message_edges, self.cold_mask(self.num_nodes))
            return z, lambda t, ids: z[t][torch.from_numpy(ids)]
        sub = self.sampler.sample(seeds, self.config.fanouts, self.rng)
        x = {t: self.x[t][torch.from_numpy(ids)] for t, ids in sub.nodes.items()}
        edges = {r: message_index(e, len(sub.nodes[r[0]]), len(sub.nodes[r[2]]), self.device)
                 for r, e in sub.edges.items()}
        z = self.model(x, edges, self.cold_mask({t: len(ids) for t, ids in sub.nodes.items()}))
        return z, lambda t, ids: z[t][torch.from_numpy(sub.local(t, ids))]

    def cold_mask(self, sizes: dict[str, int]) -> dict[str, torch.Tensor] | None:
        """While training, a random share of nodes loses its neighbours (see HGNNConfig)."""
        if not self.model.training or self.config.cold_start_node_rate <= 0:
            return None
        rate = self.config.cold_start_node_rate
        return {t: torch.from_numpy((self.rng.random((n, 1)) >= rate).astype(np.float32))
                .to(self.device) for t, n in sizes.items()}

    def train_epoch(self, deadline: float) -> tuple[float, int]:
        self.model.train()
        total, steps = 0.0, 0
        batches = self.batches()
        for groups in tqdm(batches, desc="  steps", leave=False, disable=None):
            negs = [self.negatives(d, pairs.shape[1]) for _, d, pairs in groups]
            seeds: dict[str, list[np.ndarray]] = {}
            for (s, d, pairs), neg in zip(groups, negs):
                seeds.setdefault(s, []).append(pairs[0])
                seeds.setdefault(d, []).extend([pairs[1], neg.ravel()])
            _, lookup = self.embed_batch({t: np.concatenate(v) for t, v in seeds.items()})
            losses, align = [], []
            for (s, d, pairs), neg in zip(groups, negs):
                za, zp = lookup(s, pairs[0]), lookup(d, pairs[1])  # (b, dim)
                zn = lookup(d, neg.ravel()).view(len(pairs[0]), neg.shape[1], -1)  # (b, k, dim)
                pos = (za * zp).sum(-1, keepdim=True)  # (b, 1)
                neg_scores = torch.einsum("bd,bkd->bk", za, zn)  # (b, k)
                losses.append(torch.relu(neg_scores - pos + self.config.margin).flatten())
                if self.config.text_alignment_weight > 0:
                    for t, ids, z in ((s, pairs[0], za), (d, pairs[1], zp)):
                        text = self.text_only(t, ids)
                        align.append(1.0 - (text * z.detach()).sum(-1))
            loss = torch.cat(losses).mean()
            if align:
                loss = loss + self.config.text_alignment_weight * torch.cat(align).mean()
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            total += loss.item()
            steps += 1
            if time.monotonic() > deadline:
                break
        return total / max(steps, 1), steps

    def text_only(self, node_type: str, ids: np.ndarray) -> torch.Tensor:
        """The vectors these nodes would get without any edge: what a new item gets."""
        return self.model({node_type: self.x[node_type][torch.from_numpy(ids)]}, {})[node_type]

    @torch.no_grad()
    def embed_text_only(self) -> dict[str, np.ndarray]:
        """Every node's text-only vector (no messages: as if it had no edges)."""
        self.model.eval()
        return {t: self.model({t: v}, {})[t].cpu().numpy() for t, v in self.x.items()}

    @torch.no_grad()
    def embed_all(self) -> dict[str, np.ndarray]:
        """Inference for every node (full graph, or sampled neighbourhoods in chunks)."""
        self.model.eval()
        if self.mode == "full":
            return {t: v.cpu().numpy()
                    for t, v in self.model(self.x, self.message_edges).items()}
        rng_state = self.rng
        self.rng = np.random.default_rng(self.config.seed + 1)  # same vectors on every call
        out = {}
        try:
            for t in self.graph.node_types:
                parts = []
                n = self.graph.num_nodes(t)
                for start in range(0, n, self.config.inference_batch_nodes):
                    ids = np.arange(start, min(n, start + self.config.inference_batch_nodes))
                    _, lookup = self.embed_batch({t: ids})
                    parts.append(lookup(t, ids).cpu().numpy())
                out[t] = np.concatenate(parts) if parts else np.zeros((0, self.config.out_dim))
        finally:
            self.rng = rng_state
        return out

    def validate(self, z: dict[str, np.ndarray]) -> dict[str, float]:
        return link_metrics(z, self.split.val, self.val_negatives)


def link_metrics(z: dict[str, np.ndarray], val: dict, negatives: dict) -> dict[str, float]:
    """AUC and MRR of held-out pairs against the same negatives, pooled over edge types."""
    hits, ranks = [], []
    per_type = {}
    for name, (s, d, pairs) in val.items():
        za = z[s][pairs[0]]
        pos = (za * z[d][pairs[1]]).sum(-1)  # (n,)
        neg = np.einsum("nd,nkd->nk", za, z[d][negatives[name]])  # (n, k)
        auc = (neg < pos[:, None]).mean(1) + 0.5 * (neg == pos[:, None]).mean(1)
        rr = 1.0 / (1.0 + (neg >= pos[:, None]).sum(1))
        hits.append(auc)
        ranks.append(rr)
        per_type[name] = {"auc": float(auc.mean()), "mrr": float(rr.mean()), "n": int(len(pos))}
    if not hits:
        return {"auc": float("nan"), "mrr": float("nan"), "per_edge_type": {}}
    return {"auc": float(np.concatenate(hits).mean()), "mrr": float(np.concatenate(ranks).mean()),
            "per_edge_type": per_type}


def cold_link_metrics(z: dict[str, np.ndarray], cold: dict[str, np.ndarray], val: dict,
                      negatives: dict) -> dict[str, float]:
    """How well a node without edges lands next to the nodes it will be co-consumed with, on
    the held-out pairs (a, p) and their negatives n, with the cold node's vector from `cold`
    (text-only path or regressor) and every other from `z`:
    - query: a is cold, scored against p and the n (a new item looking for its neighbours);
    - candidate: p is cold and competes with the n for a (a new item among the others, as in
      retrieval: a user built from warm items ranks it among warm items);
    - intruder: the n are cold and compete with a warm p for a (a new item must not crowd
      the lists of users it does not suit; low values mean cold vectors are hubs)."""
    out = {}
    for side in ("query", "candidate", "intruder"):
        hits, ranks = [], []
        for name, (s, d, pairs) in val.items():
            za = cold[s][pairs[0]] if side == "query" else z[s][pairs[0]]
            zp = cold[d][pairs[1]] if side == "candidate" else z[d][pairs[1]]
            zn = (cold if side == "intruder" else z)[d][negatives[name]]
            pos = (za * zp).sum(-1)
            neg = np.einsum("nd,nkd->nk", za, zn)
            hits.append((neg < pos[:, None]).mean(1) + 0.5 * (neg == pos[:, None]).mean(1))
            ranks.append(1.0 / (1.0 + (neg >= pos[:, None]).sum(1)))
        out[f"auc_{side}"] = float(np.concatenate(hits).mean()) if hits else float("nan")
        out[f"mrr_{side}"] = float(np.concatenate(ranks).mean()) if ranks else float("nan")
    return out


class TextRegressor(torch.nn.Module):
    """text vector (+ node type) -> HGNN vector, for items without edges."""

    def __init__(self, in_dim: int, n_types: int, out_dim: int, hidden: int = 256):
        super().__init__()
        self.n_types = n_types
        self.net = torch.nn.Sequential(torch.nn.Linear(in_dim + n_types, hidden), torch.nn.ReLU(),
                                       torch.nn.Linear(hidden, out_dim))

    def forward(self, x: torch.Tensor, type_code: torch.Tensor) -> torch.Tensor:
        one_hot = torch.nn.functional.one_hot(type_code, self.n_types).float()
        return torch.nn.functional.normalize(self.net(torch.cat([x, one_hot], 1)), dim=-1)


def _fit_regressor(x: np.ndarray, codes: np.ndarray, y: np.ndarray, rows: np.ndarray,
                   n_types: int, epochs: int, seed: int,
                   ranking: tuple[np.ndarray, np.ndarray, float] | None = None) -> TextRegressor:
    """Fit on `rows` (global node indices). cosine: 1 - cos(f(x), y), full batch per step.
    ranking (pairs, negative pool per node, margin): besides the cosine term, for a pair
    (a, p) with p in `rows` and negatives n of p's type, relu(y_a.y_n - y_a.f(x_p) + margin)
    (the text-only p beats a's non-neighbours) + relu(y_a.f(x_n) - y_a.y_p + margin) (text-only
    non-neighbours do not beat a's neighbour): calibrated against the graph vectors, so a new
    item neither stays away from everyone nor crowds every list."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = TextRegressor(x.shape[1], n_types, y.shape[1])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    xt, ct, yt = torch.from_numpy(x), torch.from_numpy(codes), torch.from_numpy(y)
    index = torch.from_numpy(rows)
    model.train()
    if ranking is None:
        for _ in range(epochs):
            loss = (1.0 - (model(xt[index], ct[index]) * yt[index]).sum(-1)).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        model.eval()
        return model
    pairs, pool_of, margin = ranking
    in_rows = np.zeros(len(x), dtype=bool)
    in_rows[rows] = True
    pairs = pairs[:, in_rows[pairs[1]]]
    pool_of = {c: pool[in_rows[pool]] for c, pool in pool_of.items() if in_rows[pool].any()}
    steps_per_epoch, batch, k = 8, 2048, 8
    for _ in range(epochs // 10 or 1):
        for _ in range(steps_per_epoch):
            pick = pairs[:, rng.integers(0, pairs.shape[1], batch)]
            a, p = torch.from_numpy(pick[0]), torch.from_numpy(pick[1])
            negatives = np.empty((batch, k), dtype=np.int64)
            for code, pool in pool_of.items():
                of_type = codes[pick[1]] == code
                negatives[of_type] = pool[rng.integers(0, len(pool), (int(of_type.sum()), k))]
            n = torch.from_numpy(negatives)
            ya, yp, yn = yt[a], yt[p], yt[n]  # (b, d), (b, d), (b, k, d)
            f = model(xt, ct)  # every node once: cheaper than once per use
            fp, fn = f[p], f[n]
            cold_positive = torch.relu(torch.einsum("bd,bkd->bk", ya, yn)
                                       - (ya * fp).sum(-1, keepdim=True) + margin)
            cold_negative = torch.relu(torch.einsum("bd,bkd->bk", ya, fn)
                                       - (ya * yp).sum(-1, keepdim=True) + margin)
            loss = (cold_positive.mean() + cold_negative.mean()
                    + (1.0 - (fp * yp).sum(-1)).mean())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    return model


def fit_text_regressor(
    graph: ItemGraph, z: dict[str, np.ndarray], connected: dict[str, np.ndarray], epochs: int,
    seed: int, edges: dict[str, tuple[str, str, np.ndarray]] | None = None,
    margin: float = 0.3,
) -> tuple[TextRegressor, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Fit text -> HGNN vector on the connected nodes. Returns the model fitted on all of them,
    its vector for every node, and out-of-fold vectors (two halves, each predicted by the model
    fitted on the other) for measuring it on connected nodes without having seen them.
    edges (EdgeSplit.train): fit with the ranking loss of _fit_regressor on these pairs."""
    types = graph.node_types
    xs = np.concatenate([graph.x[t] for t in types]).astype(np.float32)
    codes = np.concatenate([np.full(graph.num_nodes(t), i) for i, t in enumerate(types)])
    ys = np.concatenate([z[t] for t in types]).astype(np.float32)
    warm = np.concatenate([connected[t] for t in types])
    bounds = np.cumsum([0] + [graph.num_nodes(t) for t in types])
    offset = {t: int(bounds[i]) for i, t in enumerate(types)}
    ranking = None
    if edges is not None:
        parts = []
        for s, d, pairs in edges.values():
            g = np.stack([pairs[0] + offset[s], pairs[1] + offset[d]])
            parts += [g, g[::-1]]
        pool_of = {i: np.flatnonzero(warm & (codes == i)) for i in range(len(types))}
        pool_of = {i: pool for i, pool in pool_of.items() if len(pool)}
        ranking = (np.concatenate(parts, axis=1) if parts else np.zeros((2, 0), np.int64),
                   pool_of, margin)
    fold = np.random.default_rng(seed).random(len(xs)) < 0.5
    oof = np.zeros_like(ys)
    for side in (False, True):
        part = _fit_regressor(xs, codes, ys, np.flatnonzero(warm & (fold != side)), len(types),
                              epochs, seed, ranking)
        with torch.no_grad():
            rows = fold == side
            oof[rows] = part(torch.from_numpy(xs[rows]), torch.from_numpy(codes[rows])).numpy()
    model = _fit_regressor(xs, codes, ys, np.flatnonzero(warm), len(types), epochs, seed, ranking)
    with torch.no_grad():
        full = model(torch.from_numpy(xs), torch.from_numpy(codes)).numpy()
    split = lambda a: {t: a[bounds[i]:bounds[i + 1]] for i, t in enumerate(types)}  # noqa: E731
    return model, split(full), split(oof)


def text_knn_vectors(
    graph: ItemGraph, z: dict[str, np.ndarray], connected: dict[str, np.ndarray], k: int,
    leave_self_out: bool = False, chunk: int = 2048,
) -> dict[str, np.ndarray]:
    """Per node: the normalised mean of the vectors `z` of the k connected nodes of its type
    whose text vectors are closest by cosine. leave_self_out: a connected node does not count
    as its own neighbour (to measure the method on nodes whose vectors are known)."""
    return {t: text_neighbour_mean(graph.x[t], z[t], np.flatnonzero(connected[t]), k,
                                   leave_self_out, chunk)
            for t in graph.node_types}


def write_item_vectors(
    path: Path, graph: ItemGraph, z: dict[str, np.ndarray], as_of: dt.datetime, version: str
) -> int:
    """Every catalog item: top-level items from the model, episodes from their show."""
    row = {}
    for t in graph.node_types:
        for i, item in enumerate(graph.item_ids[t]):
            row[item] = (t, i)
    ids, types, vectors = [], [], []
    for item, item_type in sorted(graph.item_types.items()):
        t, i = row[graph.episodes.get(item, item)]
        ids.append(item)
        types.append(item_type)
        vectors.append(z[t][i])
    write_vector_table(path, ids, types, np.stack(vectors), as_of, version)
    return len(ids)


def write_vector_table(path: Path, ids: list[str], types: list[str], vectors: np.ndarray,
                       as_of: dt.datetime, version: str, normalised: bool = False) -> None:
    """features/item_hgnn_embedding/<version>.parquet: a row per item, L2-normalised (here,
    unless `normalised` says they are already: normalising again moves some floats by an ulp,
    and an extension keeps its kept run's vectors bit for bit)."""
    from gfm.files import atomic_write

    matrix = vectors.astype(np.float32) if normalised else normalise(vectors.astype(np.float32))
    dim = matrix.shape[1]
    table = pa.table({
        "item_id": pa.array(ids, pa.string()),
        "item_type": pa.array(types, pa.string()),
        "embedding": pa.FixedSizeListArray.from_arrays(pa.array(matrix.ravel()), dim).cast(
            pa.list_(pa.float32())),
        "event_timestamp": pa.array([as_of] * len(ids), pa.timestamp("us")),
        "version": pa.array([version] * len(ids), pa.string()),
    })
    atomic_write(path, lambda tmp: pq.write_table(table, tmp))


def fit_link_prediction(trainer: LinkPredictionTrainer, config: HGNNConfig,
                        deadline: float) -> tuple[list[dict], dict, dict]:
    """The epoch loop of link prediction: train an epoch, validate, keep the state of the best
    validation MRR; stop after `patience` epochs without a gain, at max_epochs or past
    `deadline` (time.monotonic()). Leaves the best state in trainer.model. (epochs, best
    validation metrics with their epoch, best state on the CPU)."""
    epochs, best, best_state, stale = [], None, None, 0
    for epoch in range(1, config.max_epochs + 1):
        t0 = time.monotonic()
        loss, steps = trainer.train_epoch(deadline)
        train_s = time.monotonic() - t0
        val = trainer.validate(trainer.embed_all())
        epochs.append({"epoch": epoch, "loss": loss, "steps": steps, "val_auc": val["auc"],
                       "val_mrr": val["mrr"], "epoch_time_s": round(train_s, 3),
                       "eval_time_s": round(time.monotonic() - t0 - train_s, 3)})
        print(f"epoch {epoch:03d}  loss {loss:.4f}  val_auc {val['auc']:.4f}  "
              f"val_mrr {val['mrr']:.4f}  time {train_s:.1f}s", flush=True)
        if best is None or val["mrr"] > best["mrr"]:
            best, stale = {**val, "epoch": epoch}, 0
            # On the CPU: the checkpoint loads on machines without a GPU.
            best_state = {k: v.detach().to("cpu", copy=True)
                          for k, v in trainer.model.state_dict().items()}
        else:
            stale += 1
        if stale >= config.patience:
            log.info("early stop: no val_mrr gain for %d epochs", config.patience)
            break
        if time.monotonic() > deadline:
            log.info("time budget of %.0f s spent", config.time_budget_s)
            break

    trainer.model.load_state_dict(best_state)
    return epochs, best, best_state


@deterministic_torch()
def train_hgnn(
    workspace: Workspace, config: HGNNConfig, timeline: Timeline, text_path: Path,
    force: bool = False,
) -> HGNNRun:
    text_version = text_path.stem
    version = hgnn_version(config, timeline.graph_as_of, text_version, edge_fingerprint(workspace))
    out_dir = workspace.features_dir / FEATURE_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    vectors_path = out_dir / f"{version}.parquet"
    model_dir = workspace.models_dir / "hgnn" / version
    checkpoint_path = model_dir / "checkpoint.pt"
    metrics_path = workspace.reports_dir / "hgnn_metrics.json"
    if vectors_path.exists() and checkpoint_path.exists() and not force:
        metrics = json.loads((model_dir / "metrics.json").read_text())
        workspace.reports_dir.mkdir(parents=True, exist_ok=True)
        metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
        log.info("HGNN %s already trained on these inputs; pass --force to retrain", version)
        return HGNNRun(version, vectors_path, checkpoint_path, metrics, reused=True)

    if config.threads:
        torch.set_num_threads(config.threads)
    graph = load_item_graph(workspace, text_path)
    if graph.num_edges() == 0:
        raise GfmError(
            "co_interaction_edges is empty: there is nothing to learn from. Check the timeline "
            "(graph_as_of must leave history_days of streams before it) and rerun `gfm transform`"
        )
    split = split_edges(graph, config.val_fraction, config.max_val_edges_per_type, config.seed)
    trainer = LinkPredictionTrainer(graph, split, config)
    text_z = {t: normalise(v) for t, v in graph.x.items()}
    text_metrics = link_metrics(text_z, split.val, trainer.val_negatives)
    log.info("mode %s; text cosine on validation edges: auc %.4f mrr %.4f", trainer.mode,
             text_metrics["auc"], text_metrics["mrr"])

    start = time.monotonic()
    epochs, best, best_state = fit_link_prediction(trainer, config, start + config.time_budget_s)
    z = trainer.embed_all()
    # Inductive vectors: a node without message-passing edges has only its text.
    connected = {t: trainer.degree[t] > 0 for t in graph.node_types}
    text_only = trainer.embed_text_only()
    inductive = {"method": config.inductive_vectors,
                 "n_without_edges": {t: int((~c).sum()) for t, c in connected.items()}}
    inductive.update({f"cold_val_{k}_text_path": v for k, v in cold_link_metrics(
        z, text_only, split.val, trainer.val_negatives).items()})
    regressor_state = None
    if config.inductive_vectors != "text_path":
        if config.inductive_vectors == "regressor":
            regressor, predicted, out_of_fold = fit_text_regressor(
                graph, z, connected, config.regressor_epochs, config.seed,
                edges=split.train if config.regressor_loss == "ranking" else None,
                margin=config.margin)
            regressor_state = regressor.state_dict()
        else:
            predicted = text_knn_vectors(graph, z, connected, config.inductive_knn)
            out_of_fold = text_knn_vectors(graph, z, connected, config.inductive_knn,
                                           leave_self_out=True)
        for t in graph.node_types:
            z[t] = np.where(connected[t][:, None], z[t], predicted[t])
        inductive.update({f"cold_val_{k}_{config.inductive_vectors}": v
                          for k, v in cold_link_metrics(
                              z, out_of_fold, split.val, trainer.val_negatives).items()})
    log.info("inductive vectors (%s) for %s nodes without edges; cold validation: %s",
             inductive["method"], inductive["n_without_edges"],
             {k: round(v, 4) for k, v in inductive.items() if k.startswith("cold_")})
    n_items = write_item_vectors(vectors_path, graph, z, timeline.graph_as_of, version)
    metrics = {
        "version": version,
        "val_auc": best["auc"],
        "val_mrr": best["mrr"],
        "text_cosine_auc": text_metrics["auc"],
        "text_cosine_mrr": text_metrics["mrr"],
        "best_epoch": best["epoch"],
        "per_edge_type": best["per_edge_type"],
        "text_per_edge_type": text_metrics["per_edge_type"],
        "epochs": epochs,
        "mean_epoch_time_s": float(np.mean([e["epoch_time_s"] for e in epochs])),
        "train_time_s": round(time.monotonic() - start, 2),
        "batch_mode": trainer.mode,
        "device": trainer.device,
        "device_name": device_name(trainer.device),
        # the same seed and inputs give the same vectors only with the same thread count (and
        # CPU): the kernels' summation order depends on both
        "torch_threads": torch.get_num_threads(),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "nodes": {t: graph.num_nodes(t) for t in graph.node_types},
        "edges": {"__".join(r): int(e.shape[1]) for r, e in graph.edges.items()},
        "n_items_written": n_items,
        "inductive": inductive,
        "graph_as_of": timeline.graph_as_of.isoformat(),
        "text_version": text_version,
    }
    model_dir.mkdir(parents=True, exist_ok=True)
    torch.save({"config": dataclasses.asdict(config), "state_dict": best_state,
                "regressor_state_dict": regressor_state,
                "node_types": graph.node_types, "relations": sorted(split.message_edges),
                "in_dim": next(iter(graph.x.values())).shape[1], "version": version,
                # what `gfm train hgnn --new-items` averages over (inductive_vectors text_knn)
                "connected_items": {t: graph.item_ids[t][c].tolist()
                                    for t, c in connected.items()},
                "text_version": text_version, "graph_as_of": timeline.graph_as_of.isoformat()},
               checkpoint_path)
    (model_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    lineage = {k: metrics[k] for k in ("version", "graph_as_of", "text_version", "val_auc", "val_mrr")}
    lineage.update({"checkpoint": str(checkpoint_path.relative_to(workspace.root)),
                    "created_at": dt.datetime.now(dt.timezone.utc).replace(tzinfo=None).isoformat(),
                    "config": dataclasses.asdict(config)})
    (out_dir / f"{version}.json").write_text(json.dumps(lineage, indent=2) + "\n")
    workspace.reports_dir.mkdir(parents=True, exist_ok=True)
    metrics_path.write_text(json.dumps(metrics, indent=2) + "\n")
    return HGNNRun(version, vectors_path, checkpoint_path, metrics)
