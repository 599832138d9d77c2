"""Ranking metrics as pure, vectorised functions on score matrices and ranks.

Conventions: a batch of users is a row per user; `scores` is (n_users, n_candidates), higher is
better. The ranking of a row is the full sort by score, descending, ties broken by the lower
candidate position; a rank is 0-based (rank 0 = first). Hold-out targets are (row, column)
pairs. Ranks are computed for the targets only (one pass over the row per target), which is
exact over the whole catalogue and several times cheaper than sorting every row; `top_k` gives
the first k of each row where the items themselves are needed (coverage).
"""

from __future__ import annotations

import numpy as np

PAD = -1  # a ranking slot with no candidate
NO_RANK = np.iinfo(np.int64).max  # best rank of a user without any target
_PAIRS_PER_CHUNK = 256  # target rows compared at once: keeps the working set in cache


def target_ranks(scores: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """(n_pairs,) rank of candidate cols[i] in row rows[i]: the candidates scored higher, plus
    those scored equal at a lower position."""
    # np.take copies a non-contiguous input whole on every call: copy it once instead.
    scores = np.ascontiguousarray(scores)
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    ranks = np.empty(len(rows), dtype=np.int64)
    if len(rows) == 0:
        return ranks
    n_candidates = scores.shape[1]
    target_scores = scores[rows, cols]
    block = np.empty((min(_PAIRS_PER_CHUNK, len(rows)), n_candidates), dtype=scores.dtype)
    flags = np.empty(block.shape, dtype=bool)
    positions = np.arange(n_candidates)
    for start in range(0, len(rows), _PAIRS_PER_CHUNK):
        stop = min(start + _PAIRS_PER_CHUNK, len(rows))
        n = stop - start
        np.take(scores, rows[start:stop], axis=0, out=block[:n])  # (n, n_candidates)
        threshold = target_scores[start:stop, None]
        np.greater(block[:n], threshold, out=flags[:n])
        ahead = np.count_nonzero(flags[:n], axis=1)
        np.equal(block[:n], threshold, out=flags[:n])
        tied = np.flatnonzero(np.count_nonzero(flags[:n], axis=1) > 1)  # more than itself
        if len(tied):
            before = positions < cols[start + tied, None]
            ahead[tied] += np.count_nonzero(flags[tied] & before, axis=1)
        ranks[start:stop] = ahead
    return ranks


def count_ranked_ahead(
    scores: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    other_rows: np.ndarray,
    other_cols: np.ndarray,
) -> np.ndarray:
    """(n_pairs,) how many of the (other_rows, other_cols) candidates rank ahead of each target
    (rows[i], cols[i]) in the same row. A target's rank among the candidates that are not
    `other` is target_ranks(...) minus this."""
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
    order = np.argsort(other_rows, kind="stable")
    o_rows = np.asarray(other_rows, dtype=np.int64)[order]
    o_cols = np.asarray(other_cols, dtype=np.int64)[order]
    start = np.searchsorted(o_rows, rows, side="left")
    counts = np.searchsorted(o_rows, rows, side="right") - start
    pair = np.repeat(np.arange(len(rows)), counts)  # each target repeated once per other
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    other = np.repeat(start, counts) + offsets  # index into o_rows / o_cols
    target_score = scores[rows[pair], cols[pair]]
    other_score = scores[o_rows[other], o_cols[other]]
    tied_before = (other_score == target_score) & (o_cols[other] < cols[pair])
    ahead = (other_score > target_score) | tied_before
    return np.bincount(pair, weights=ahead, minlength=len(rows)).astype(np.int64)


def discovery_ranks(scores: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                    h_rows: np.ndarray, h_cols: np.ndarray,
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ranks, ranks_fresh, fresh) of the targets (rows, cols) given the history pairs
    (h_rows, h_cols) of the same rows: the rank among all candidates; the rank where history
    items take no places; and whether the target is outside the history (discovery counts
    only those)."""
    n_cols = scores.shape[1]
    ranks = target_ranks(scores, rows, cols)
    fresh = ~np.isin(rows * n_cols + cols, h_rows * n_cols + h_cols)
    return ranks, ranks - count_ranked_ahead(scores, rows, cols, h_rows, h_cols), fresh


def best_ranks(ranks: np.ndarray, rows: np.ndarray, n_rows: int) -> np.ndarray:
    """(n_rows,) the best (lowest) rank among each row's targets; NO_RANK for a row without any."""
    best = np.full(n_rows, NO_RANK, dtype=np.int64)
    np.minimum.at(best, np.asarray(rows, dtype=np.int64), np.asarray(ranks, dtype=np.int64))
    return best


def hits_at_k(best: np.ndarray, k: int) -> np.ndarray:
    """(n_users,) bool: a target is among the first k (from each user's best rank)."""
    return best < k


def reciprocal_ranks_at_k(best: np.ndarray, k: int) -> np.ndarray:
    """(n_users,) 1 / (1-based rank of the first target) if it is within the first k, else 0."""
    within = best < k
    return np.where(within, 1.0 / (np.where(within, best, 0) + 1.0), 0.0)


def hit_rate_at_k(best: np.ndarray, k: int) -> float:
    """Share of users with a target among their first k (nan for no users)."""
    return float(hits_at_k(best, k).mean()) if len(best) else float("nan")


def mrr_at_k(best: np.ndarray, k: int) -> float:
    """Mean reciprocal rank of the first target within the first k, 0 if none (nan for no users)."""
    return float(reciprocal_ranks_at_k(best, k).mean()) if len(best) else float("nan")


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """(n_users, k) the k best candidates of each row, best first; -inf candidates and missing
    slots are PAD. Ties are ordered by position (which tied item takes the k-th place is not)."""
    import torch  # its top-k is several times faster than numpy's argpartition on CPU

    scores = np.asarray(scores)
    n_users, n_candidates = scores.shape
    k_eff = min(k, n_candidates)
    if k_eff == 0 or n_users == 0:
        return np.full((n_users, k), PAD, dtype=np.int64)
    found = torch.topk(torch.from_numpy(np.ascontiguousarray(scores)), k_eff, dim=1)
    values, top = found.values.numpy(), found.indices.numpy()
    order = np.lexsort((top, -values), axis=1)  # by score desc, then position asc
    top = np.take_along_axis(top, order, axis=1).astype(np.int64)
    top[np.take_along_axis(values, order, axis=1) == -np.inf] = PAD
    if k_eff < k:
        top = np.pad(top, ((0, 0), (0, k - k_eff)), constant_values=PAD)
    return top


def covered_items(top: np.ndarray, k: int, n_candidates: int) -> np.ndarray:
    """(n_candidates,) bool: the candidate is in at least one user's first k."""
    covered = np.zeros(n_candidates, dtype=bool)
    first = top[:, :k]
    covered[first[first != PAD]] = True
    return covered


def catalog_coverage_at_k(top: np.ndarray, k: int, n_candidates: int) -> float:
    """Share of the candidates in at least one user's first k (nan for no candidates)."""
    if n_candidates == 0:
        return float("nan")
    return float(covered_items(top, k, n_candidates).mean())
