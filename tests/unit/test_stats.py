"""Bootstrap intervals and paired comparisons of per-user hits (evaluation.stats)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2

from evaluation.stats import (
    align,
    bootstrap_ci,
    bootstrap_cluster_ci,
    bootstrap_mean_ci,
    clustered_mcnemar_p,
    compare_models,
    mcnemar_p,
    paired_cluster_comparison,
    paired_comparison,
)


def _hits(n: int, p: float, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(n) < p


def test_ci_contains_point_estimate_and_is_deterministic():
    for n, p in [(50, 0.1), (400, 0.35), (3000, 0.6)]:
        hits = _hits(n, p, seed=n)
        lo, hi = bootstrap_ci(hits)
        assert 0.0 <= lo <= hits.mean() <= hi <= 1.0
        assert bootstrap_ci(hits) == (lo, hi)  # fixed seed


def test_ci_narrows_with_more_users():
    widths = []
    for n in (100, 1_000, 10_000):
        lo, hi = bootstrap_ci(_hits(n, 0.3, seed=1))
        widths.append(hi - lo)
    assert widths[0] > widths[1] > widths[2]
    # close to the normal approximation 2 * 1.96 * sqrt(p (1 - p) / n)
    assert abs(widths[2] - 2 * 1.96 * np.sqrt(0.3 * 0.7 / 10_000)) < 0.004


def test_binomial_shortcut_matches_index_resampling():
    hits = _hits(500, 0.25, seed=2)
    lo, hi = bootstrap_ci(hits, n_resamples=4000)
    lo2, hi2 = bootstrap_mean_ci(hits.astype(float), n_resamples=4000, seed=5)
    assert abs(lo - lo2) < 0.012 and abs(hi - hi2) < 0.012


def test_ci_of_no_users_is_nan():
    lo, hi = bootstrap_ci(np.zeros(0, dtype=bool))
    assert np.isnan(lo) and np.isnan(hi)


def test_paired_detects_a_real_difference():
    rng = np.random.default_rng(3)
    b = rng.random(2000) < 0.3
    a = b | (rng.random(2000) < 0.15)  # A hits wherever B does, and more
    result = paired_comparison(a, b)
    assert result["diff"] > 0 and result["diff_ci"][0] > 0
    assert result["significant"] and result["mcnemar_p"] < 1e-6
    assert result["only_b"] == 0 and result["n_users"] == 2000


def test_paired_finds_no_difference_under_the_null():
    rng = np.random.default_rng(4)
    base = rng.random(2000) < 0.3
    # the same hit rate, discordant pairs swapped at random: no real difference
    flip = rng.random(2000) < 0.2
    a = np.where(flip, rng.random(2000) < 0.3, base)
    b = np.where(flip, rng.random(2000) < 0.3, base)
    result = paired_comparison(a, b)
    lo, hi = result["diff_ci"]
    assert lo <= 0 <= hi and not result["significant"]
    assert result["mcnemar_p"] > 0.05
    assert paired_comparison(a, a)["diff_ci"] == [0.0, 0.0]


def test_mcnemar_p_values():
    assert mcnemar_p(0, 0) == 1.0
    assert mcnemar_p(5, 5) == 1.0
    assert abs(mcnemar_p(0, 10) - 2 * 0.5 ** 10) < 1e-12


def test_align_and_compare_models_pair_the_same_users():
    users_a, hits_a = np.array([1, 3, 5, 7]), np.array([True, False, True, True])
    users_b, hits_b = np.array([3, 5, 7, 9]), np.array([True, False, True, False])
    a, b = align(users_a, hits_a, users_b, hits_b)
    assert a.tolist() == [False, True, True] and b.tolist() == [True, False, True]
    out = compare_models({"A": {"t": (users_a, hits_a)}, "B": {"t": (users_b, hits_b)}}, "A", "B")
    assert out["t"]["n_users"] == 3 and out["t"]["only_a"] == 1 and out["t"]["only_b"] == 1


def test_evaluate_adds_intervals_and_per_user_hits():
    from evaluation.evaluate import evaluate_retrievers
    from evaluation.retrievers import PopularityRetriever, Retriever
    from evaluation.split import EvalSplit, Ragged

    rng = np.random.default_rng(0)
    n_users, n_items = 300, 40
    types = np.array(["audiobook"] * 20 + ["podcast"] * 20)
    split = EvalSplit(
        item_ids=np.array([f"i{j}" for j in range(n_items)]),
        item_types=types,
        user_ids=np.array([f"u{u}" for u in range(n_users)]),
        histories=Ragged.from_lists([rng.choice(n_items, 3, replace=False)
                                     for _ in range(n_users)]),
        targets=Ragged.from_lists([rng.choice(n_items, 2, replace=False) for _ in range(n_users)]),
        is_new_item=np.zeros(n_items, dtype=bool),
        item_popularity=rng.random(n_items),
    )

    class Random(Retriever):
        def score(self, user_indices):
            return np.random.default_rng(len(user_indices)).random((len(user_indices), n_items))

    hits: dict = {}
    report = evaluate_retrievers(split, {"pop": PopularityRetriever(split), "rnd": Random(split)},
                                 k=5, batch_size=64, progress=False, user_hits=hits)
    for name in ("pop", "rnd"):
        result = report["results"][name]
        assert list(result)[:2] == ["hr@5", "hr@5_ci"]
        for t in ("audiobook", "podcast"):
            users, h = hits[name][t]
            assert len(users) == report["split"]["n_users"]["exclude_history"][t]
            assert np.all(np.diff(users) > 0)
            assert abs(h.mean() - result["hr@5"][t]) < 1e-6
            lo, hi = result["hr@5_ci"][t]
            assert lo <= result["hr@5"][t] <= hi
    out = compare_models(hits, "pop", "rnd")
    assert out["audiobook"]["n_users"] == len(hits["pop"]["audiobook"][0])


def test_cluster_bootstrap_widens_when_units_repeat_a_user():
    # 300 users, each counted at 4 cutoffs with the same outcome: 1,200 units, but only 300
    # independent draws; the cluster interval must be as wide as the 300-user one.
    user_hits = _hits(300, 0.3, seed=3)
    hits = np.repeat(user_hits, 4)
    clusters = np.repeat(np.arange(300), 4)
    lo, hi = bootstrap_cluster_ci(hits, clusters)
    assert lo <= hits.mean() <= hi
    naive_lo, naive_hi = bootstrap_ci(hits)
    user_lo, user_hi = bootstrap_ci(user_hits)
    assert hi - lo > 1.5 * (naive_hi - naive_lo)
    assert abs((hi - lo) - (user_hi - user_lo)) < 0.02
    # one unit per cluster: the same as resampling users
    lo1, hi1 = bootstrap_cluster_ci(user_hits, np.arange(300))
    assert abs((hi1 - lo1) - (user_hi - user_lo)) < 0.02
    assert bootstrap_cluster_ci(hits, clusters) == (lo, hi)  # fixed seed
    assert all(np.isnan(bootstrap_cluster_ci(np.zeros(0), np.zeros(0))))


def test_paired_cluster_interval_widens_when_units_repeat_a_user():
    rng = np.random.default_rng(1)
    a, b = rng.random(300) < 0.5, rng.random(300) < 0.4
    one = paired_cluster_comparison(a, b, np.arange(300))
    # The same 300 users, each counted 4 times: the counts quadruple, the difference stays, and
    # the interval stays as wide as the 300-user one (not halved as for 1,200 independent users).
    four = paired_cluster_comparison(np.repeat(a, 4), np.repeat(b, 4), np.repeat(np.arange(300), 4))
    assert four["n_users"] == 1200 and four["n_clusters"] == 300 and one["n_clusters"] == 300
    assert four["only_a"] == 4 * one["only_a"] and four["diff"] == pytest.approx(one["diff"])
    width = lambda c: c["diff_ci"][1] - c["diff_ci"][0]  # noqa: E731
    assert width(four) == pytest.approx(width(one), rel=0.15)
    naive = paired_comparison(np.repeat(a, 4), np.repeat(b, 4))
    assert width(naive) < 0.7 * width(four)
    # McNemar: one unit per cluster, the exact test; each user 4 times, the clustered statistic
    # equals the one-unit-per-user McNemar statistic, not 4 times it as for independent units.
    assert one["mcnemar_p"] == mcnemar_p(one["only_a"], one["only_b"])
    statistic = (one["only_a"] - one["only_b"]) ** 2 / (one["only_a"] + one["only_b"])
    assert four["mcnemar_p"] == pytest.approx(chi2.sf(statistic, df=1))
    assert four["mcnemar_p"] > naive["mcnemar_p"]
    assert clustered_mcnemar_p(np.array([1, 0]), np.array([1, 0])) == 1.0
    with pytest.raises(ValueError, match="clusters"):
        paired_cluster_comparison(a, b, np.arange(299))
