"""Confidence intervals and paired comparisons of hit rates, resampling users.

The per-user outcome of HR@k is a hit (1) or a miss (0). Resampling n users with replacement
from a 0/1 vector, the number of hits in a resample is Binomial(n, p_hat) exactly, so the
percentile bootstrap of HR@k needs no (B x n) index matrix: one binomial draw per resample.
Likewise, two models on the same users give each user one of four outcomes (both hit, only A,
only B, neither); a resample of users is a multinomial draw over those four cells, and the
difference of hit rates is (n_A_only - n_B_only) / n. Both are the same distributions as the
index-resampling bootstrap, in O(B) instead of O(B n). `bootstrap_mean_ci` resamples indices for
non-binary per-user values (e.g. reciprocal ranks), in chunks.

McNemar's test (exact binomial on the discordant pairs) complements the bootstrap of the
difference: it asks whether A-only and B-only hits are equally likely.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

N_RESAMPLES = 1000
SEED = 0
LEVEL = 0.95


def _quantiles(samples: np.ndarray, level: float) -> tuple[float, float]:
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(samples, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def bootstrap_ci(hits: np.ndarray, n_resamples: int = N_RESAMPLES, level: float = LEVEL,
                 seed: int = SEED) -> tuple[float, float]:
    """Percentile bootstrap interval of the hit rate of per-user 0/1 `hits` (users resampled).
    (nan, nan) for no users."""
    hits = np.asarray(hits, dtype=bool)
    n = len(hits)
    if n == 0:
        return math.nan, math.nan
    p = hits.mean()
    rng = np.random.default_rng(seed)
    rates = rng.binomial(n, p, size=n_resamples) / n
    return _quantiles(rates, level)


def bootstrap_mean_ci(values: np.ndarray, n_resamples: int = N_RESAMPLES, level: float = LEVEL,
                      seed: int = SEED, chunk_bytes: int = 64 * 2**20) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of any per-user values (indices resampled)."""
    values = np.asarray(values, dtype=np.float64)
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    per_chunk = max(1, chunk_bytes // (8 * n))
    means = np.empty(n_resamples)
    for start in range(0, n_resamples, per_chunk):
        stop = min(start + per_chunk, n_resamples)
        means[start:stop] = values[rng.integers(0, n, size=(stop - start, n))].mean(axis=1)
    return _quantiles(means, level)


def bootstrap_cluster_ci(hits: np.ndarray, clusters: np.ndarray,
                         n_resamples: int = N_RESAMPLES, level: float = LEVEL, seed: int = SEED,
                         chunk_bytes: int = 64 * 2**20) -> tuple[float, float]:
    """Percentile bootstrap interval of a pooled hit rate whose units are grouped in clusters
    (the same user counted at several cutoffs): whole clusters are resampled, the rate of a
    resample is its hits over its units. (nan, nan) for no units."""
    hits = np.asarray(hits, dtype=bool)
    if len(hits) == 0:
        return math.nan, math.nan
    rates = _cluster_resampled_means(hits.astype(np.float64), clusters, n_resamples, seed,
                                     chunk_bytes)
    return _quantiles(rates, level)


def _cluster_resampled_means(values: np.ndarray, clusters: np.ndarray, n_resamples: int,
                             seed: int, chunk_bytes: int = 64 * 2**20) -> np.ndarray:
    """The mean of `values` over the units of n_resamples cluster resamples (whole clusters
    drawn with replacement; a resample's mean is its values' sum over its units)."""
    _, cluster = np.unique(np.asarray(clusters), return_inverse=True)
    n_clusters = int(cluster.max()) + 1
    cluster_sums = np.bincount(cluster, weights=values, minlength=n_clusters)
    cluster_units = np.bincount(cluster, minlength=n_clusters).astype(np.float64)
    rng = np.random.default_rng(seed)
    per_chunk = max(1, chunk_bytes // (8 * n_clusters))
    means = np.empty(n_resamples)
    for start in range(0, n_resamples, per_chunk):
        stop = min(start + per_chunk, n_resamples)
        draw = rng.integers(0, n_clusters, size=(stop - start, n_clusters))
        means[start:stop] = cluster_sums[draw].sum(axis=1) / cluster_units[draw].sum(axis=1)
    return means


def align(users_a: np.ndarray, hits_a: np.ndarray, users_b: np.ndarray,
          hits_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two models' hits on the users both counted, in the same order."""
    _, ia, ib = np.intersect1d(users_a, users_b, assume_unique=True, return_indices=True)
    return np.asarray(hits_a, dtype=bool)[ia], np.asarray(hits_b, dtype=bool)[ib]


def mcnemar_p(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar p-value: only_a ~ Binomial(only_a + only_b, 1/2) under the null."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    from scipy.stats import binom

    return float(min(1.0, 2.0 * binom.cdf(min(only_a, only_b), n, 0.5)))


def _paired_counts(hits_a: np.ndarray, hits_b: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                     dict[str, int]]:
    """(a, b) as bools and the counts of a paired comparison: n_users, both, only_a, only_b,
    neither."""
    a = np.asarray(hits_a, dtype=bool)
    b = np.asarray(hits_b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"paired hits differ in shape: {a.shape} vs {b.shape}")
    return a, b, {"n_users": len(a), "both": int((a & b).sum()), "only_a": int((a & ~b).sum()),
                  "only_b": int((~a & b).sum()), "neither": int((~a & ~b).sum())}


def paired_comparison(hits_a: np.ndarray, hits_b: np.ndarray, n_resamples: int = N_RESAMPLES,
                      level: float = LEVEL, seed: int = SEED) -> dict[str, Any]:
    """A vs B on the same users (aligned 0/1 vectors): HR difference A - B with its paired
    bootstrap interval, the discordant counts and McNemar's exact p-value."""
    a, b, out = _paired_counts(hits_a, hits_b)
    n, only_a, only_b = out["n_users"], out["only_a"], out["only_b"]
    if n == 0:
        return {**out, "hr_a": None, "hr_b": None, "diff": None, "diff_ci": None,
                "mcnemar_p": None, "significant": False}
    rng = np.random.default_rng(seed)
    cells = rng.multinomial(n, np.array([only_a, only_b, n - only_a - only_b]) / n,
                            size=n_resamples)
    diffs = (cells[:, 0] - cells[:, 1]) / n
    lo, hi = _quantiles(diffs, level)
    p = mcnemar_p(only_a, only_b)
    return {**out, "hr_a": float(a.mean()), "hr_b": float(b.mean()),
            "diff": float((only_a - only_b) / n), "diff_ci": [lo, hi], "mcnemar_p": p,
            "significant": bool(lo > 0 or hi < 0)}


def clustered_mcnemar_p(only_a: np.ndarray, only_b: np.ndarray) -> float:
    """McNemar's test for units grouped in clusters (Durkalski et al., Stat Med 2003): with
    b_k, c_k the units of cluster k that only A, only B hit, X^2 = (sum b_k - c_k)^2 /
    sum (b_k - c_k)^2 on 1 degree of freedom. Where every cluster holds one unit this is the
    ordinary (asymptotic) McNemar statistic."""
    d = np.asarray(only_a, dtype=np.float64) - np.asarray(only_b, dtype=np.float64)
    spread = float((d ** 2).sum())
    if spread == 0:
        return 1.0
    from scipy.stats import chi2

    return float(chi2.sf(float(d.sum()) ** 2 / spread, df=1))


def paired_cluster_comparison(hits_a: np.ndarray, hits_b: np.ndarray, clusters: np.ndarray,
                              n_resamples: int = N_RESAMPLES, level: float = LEVEL,
                              seed: int = SEED) -> dict[str, Any]:
    """paired_comparison for units grouped in clusters (a user counted at several cutoffs, or
    in several types): the interval of A - B resamples whole clusters, and McNemar's p is the
    clustered one (clustered_mcnemar_p), since a user's units are not independent draws. With
    one unit per cluster, the exact McNemar p of paired_comparison. "n_clusters": how many."""
    a, b, out = _paired_counts(hits_a, hits_b)
    clusters = np.asarray(clusters)
    if clusters.shape != a.shape:
        raise ValueError(f"hits and clusters differ in shape: {a.shape} vs {clusters.shape}")
    n = out["n_users"]
    if n == 0:
        return {**out, "n_clusters": 0, "hr_a": None, "hr_b": None, "diff": None,
                "diff_ci": None, "mcnemar_p": None, "significant": False}
    _, cluster = np.unique(clusters, return_inverse=True)
    n_clusters = int(cluster.max()) + 1
    if n_clusters == n:
        p = mcnemar_p(out["only_a"], out["only_b"])
    else:
        p = clustered_mcnemar_p(np.bincount(cluster, weights=a & ~b, minlength=n_clusters),
                                np.bincount(cluster, weights=~a & b, minlength=n_clusters))
    diffs = _cluster_resampled_means(a.astype(np.float64) - b, cluster, n_resamples, seed)
    lo, hi = _quantiles(diffs, level)
    return {**out, "n_clusters": n_clusters, "hr_a": float(a.mean()), "hr_b": float(b.mean()),
            "diff": float((out["only_a"] - out["only_b"]) / n), "diff_ci": [lo, hi],
            "mcnemar_p": p, "significant": bool(lo > 0 or hi < 0)}


def compare_models(user_hits: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]], a: str, b: str,
                   types: list[str] | None = None, **kwargs) -> dict[str, dict[str, Any]]:
    """paired_comparison of models a and b per type, on the users both counted."""
    types = types or [t for t in user_hits[a] if t in user_hits[b]]
    out = {}
    for t in types:
        ua, ha = user_hits[a][t]
        ub, hb = user_hits[b][t]
        out[t] = paired_comparison(*align(ua, ha, ub, hb), **kwargs)
    return out


def compare_pooled(user_hits: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]], a: str, b: str,
                   types: list[str] | None = None, **kwargs) -> dict[str, Any]:
    """paired_comparison of models a and b over the (user, type) units of every type (default:
    the types both have), each type on the users both counted there."""
    types = types or [t for t in user_hits[a] if t in user_hits[b]]
    pairs = [align(*user_hits[a][t], *user_hits[b][t]) for t in types]
    return paired_comparison(np.concatenate([x for x, _ in pairs]),
                             np.concatenate([y for _, y in pairs]), **kwargs)


def format_difference(c: dict[str, Any] | None) -> str:
    """A paired_comparison as a table cell, '+0.012 [-0.010, +0.034]', bold when its interval
    excludes 0; 'n/a' without one."""
    if not c or c.get("diff") is None:
        return "n/a"
    lo, hi = c["diff_ci"]
    text = f"{c['diff']:+.3f} [{lo:+.3f}, {hi:+.3f}]"
    return f"**{text}**" if c.get("significant") else text
