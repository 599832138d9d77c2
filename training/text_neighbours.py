"""Vectors for items from their text neighbours: what an item without edges gets from the HGNN
(hgnn.inductive_vectors text_knn), and what the two-tower shows when it trains on items as new
ones read (two_tower.cold_item_rate). numpy only, so either stage imports it cheaply."""

from __future__ import annotations

import numpy as np


def normalise(v: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; all-zero rows stay zero."""
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def text_neighbour_mean(text: np.ndarray, vectors: np.ndarray, pool: np.ndarray, k: int,
                        leave_self_out: bool = False, chunk: int = 2048) -> np.ndarray:
    """(n, d) per row of `text` (n, text_dim): the normalised mean of `vectors` (n, d) over the
    k rows of `pool` (indices) whose text is closest by cosine. leave_self_out: a pool row is
    not its own neighbour. Zeros when the pool is empty."""
    n = len(text)
    out = np.zeros((n, vectors.shape[1]), dtype=np.float32)
    if len(pool) == 0:
        return out
    unit = normalise(text.astype(np.float32))
    kk = min(k, len(pool) - (1 if leave_self_out else 0)) if len(pool) > 1 else 1
    position = np.full(n, -1)
    position[pool] = np.arange(len(pool))
    for start in range(0, n, chunk):
        rows = np.arange(start, min(n, start + chunk))
        sims = unit[rows] @ unit[pool].T  # (rows, pool)
        if leave_self_out:
            own = position[rows] >= 0
            sims[np.flatnonzero(own), position[rows][own]] = -np.inf
        top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]  # (rows, kk)
        out[rows] = vectors[pool][top].mean(1)
    return normalise(out)
