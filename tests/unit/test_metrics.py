"""Ranking metrics, the evaluation protocol on a hand-made split, and vector KNN in 2-d.

The hand-made split (k=2, MRR@3), popularity a0 > a1 > a2 and p0 > p1 > p2, p2 released after
the cutoff:

    user  history   hold-out     audiobook ranking (excl.)   podcast ranking (excl.)
    u0    a0, p0    a0, a1, p2   a1 a2      (a1 @1)          p1 p2     (p2 @2)
    u1    a2        a2, p1       targets all in history      p0 p1 p2  (p1 @2)
    u2    -         a2           cold: a0 a1 a2 (a2 @3)
    u3    p0        -            not evaluated
Inclusive: u0 audiobook a0 @1, u1 audiobook a2 @3; u0 podcast p2 @3, u1 podcast p1 @2.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from evaluation import metrics as m
from evaluation.evaluate import evaluate_retrievers, write_reports
from evaluation.retrievers import MISSING_VECTOR_SCORE, PopularityRetriever, VectorKNNRetriever
from evaluation.split import EvalSplit, Ragged

NEG = -np.inf


# --- metric functions ------------------------------------------------------------------------


def test_target_ranks_count_higher_scores_and_break_ties_by_position():
    scores = np.array([[0.1, 0.9, 0.5, 0.3],
                       [2.0, 1.0, 2.0, 2.0]])
    rows, cols = np.array([0, 0, 1, 1, 1]), np.array([0, 2, 0, 3, 1])
    # Row 1 sorted: 0, 2, 3 (tied at 2.0, by position), then 1.
    assert m.target_ranks(scores, rows, cols).tolist() == [3, 1, 0, 2, 3]


def test_target_ranks_equal_positions_in_a_full_stable_sort():
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=(40, 30)).astype(np.float32)  # many ties
    rows, cols = np.repeat(np.arange(40), 3), rng.integers(0, 30, size=120)
    order = np.argsort(-scores, axis=1, kind="stable")
    expected = [int(np.flatnonzero(order[r] == c)[0]) for r, c in zip(rows, cols)]
    assert m.target_ranks(scores, rows, cols).tolist() == expected


def test_count_ranked_ahead_gives_ranks_without_the_excluded_items():
    scores = np.array([[0.1, 0.9, 0.5, 0.3],
                       [2.0, 1.0, 2.0, 2.0]])
    rows, cols = np.array([0, 1, 1]), np.array([0, 3, 2])
    excluded_rows, excluded_cols = np.array([1, 0, 0]), np.array([2, 1, 0])
    ahead = m.count_ranked_ahead(scores, rows, cols, excluded_rows, excluded_cols)
    # Row 0: 1 (0.9) is ahead of 0, itself does not count. Row 1: 2 (tied, lower position) is
    # ahead of 3; 2 is the target itself for the last pair.
    assert ahead.tolist() == [1, 1, 0]


def test_hit_rate_and_mrr_from_best_ranks():
    ranks, rows = np.array([2, 5, 0, 7, 150]), np.array([0, 0, 1, 2, 3])
    best = m.best_ranks(ranks, rows, 5)
    assert best.tolist() == [2, 0, 7, 150, m.NO_RANK]
    best = best[best != m.NO_RANK]  # row 4 has no target: not a user of this metric
    assert m.hits_at_k(best, 3).tolist() == [True, True, False, False]
    assert m.hit_rate_at_k(best, 3) == pytest.approx(2 / 4)
    assert m.hit_rate_at_k(best, 10) == pytest.approx(3 / 4)
    assert m.reciprocal_ranks_at_k(best, 100).tolist() == pytest.approx([1 / 3, 1.0, 1 / 8, 0.0])
    assert m.mrr_at_k(best, 100) == pytest.approx((1 / 3 + 1 + 1 / 8) / 4)
    assert m.mrr_at_k(best, 5) == pytest.approx((1 / 3 + 1) / 4)  # rank 8 is beyond 5: 0
    assert np.isnan(m.hit_rate_at_k(best[:0], 3))


def test_top_k_orders_by_score_and_pads_excluded_and_short_rows():
    scores = np.array([[0.1, 0.9, 0.5, 0.3],
                       [NEG, 0.2, NEG, NEG]])
    assert m.top_k(scores, 3).tolist() == [[1, 2, 3], [1, m.PAD, m.PAD]]
    assert m.top_k(scores[:, :2], 3).tolist() == [[1, 0, m.PAD], [1, m.PAD, m.PAD]]
    assert m.top_k(np.array([[1.0, 2.0, 2.0, 1.0]]), 4).tolist() == [[1, 2, 0, 3]]


def test_catalog_coverage_counts_distinct_items_in_anyones_top_k():
    top = np.array([[0, 1, 5], [1, 2, 4], [1, m.PAD, m.PAD]])
    assert m.covered_items(top, 2, 6).tolist() == [True, True, True, False, False, False]
    assert m.catalog_coverage_at_k(top, 2, 6) == pytest.approx(3 / 6)
    assert m.catalog_coverage_at_k(top, 3, 6) == pytest.approx(5 / 6)


# --- the protocol on a hand-made split -------------------------------------------------------


def tiny_split() -> EvalSplit:
    items = ["a0", "a1", "a2", "p0", "p1", "p2"]
    index = {item: i for i, item in enumerate(items)}

    def rows(lists):
        return Ragged.from_lists([[index[i] for i in row] for row in lists])

    return EvalSplit(
        item_ids=np.array(items),
        item_types=np.array(["audiobook"] * 3 + ["podcast"] * 3),
        user_ids=np.array(["u0", "u1", "u2", "u3"]),
        histories=rows([["a0", "p0"], ["a2"], [], ["p0"]]),
        targets=rows([["a0", "a1", "p2"], ["a2", "p1"], ["a2"], []]),
        is_new_item=np.array([False] * 5 + [True]),
        item_popularity=np.array([30.0, 20, 10, 3, 2, 1]),
    )


def test_ragged_take_gathers_rows_in_order():
    ragged = Ragged.from_lists([[1, 2], [], [3], [4, 5, 6]])
    local, values = ragged.take(np.array([3, 1, 0]))
    assert local.tolist() == [0, 0, 0, 2, 2]
    assert values.tolist() == [4, 5, 6, 1, 2]
    grouped = Ragged.from_pairs(np.array([2, 0, 2, 0]), np.array([7, 8, 9, 10]), 3)
    assert [grouped[i].tolist() for i in range(3)] == [[8, 10], [], [7, 9]]


@pytest.mark.parametrize("batch_size", [1, 3, None])
def test_popularity_on_hand_made_split(batch_size):
    split = tiny_split()
    report = evaluate_retrievers(split, {"popularity": PopularityRetriever(split)},
                                 k=2, mrr_k=3, batch_size=batch_size, progress=False)
    r = report["results"]["popularity"]
    # Discovery: u1's audiobook targets are all in its history, so only u0 counts there.
    assert r["hr@2"] == {"audiobook": 1.0, "podcast": 1.0}
    assert r["mrr@3"] == pytest.approx({"audiobook": 1.0, "podcast": 0.5})
    assert r["coverage@2_by_type"] == pytest.approx({"audiobook": 2 / 3, "podcast": 1.0})
    assert r["coverage@2"] == pytest.approx(5 / 6)
    inclusive = r["inclusive"]
    assert inclusive["hr@2"] == {"audiobook": 0.5, "podcast": 0.5}
    assert inclusive["mrr@3"] == pytest.approx({"audiobook": (1 + 1 / 3) / 2,
                                                "podcast": (1 / 3 + 1 / 2) / 2})
    assert inclusive["coverage@2"] == pytest.approx(4 / 6)
    # Cold start: u2 (no history) misses a2 at rank 3; nobody cold streamed a podcast.
    assert r["cold_users"]["hr@2"] == {"audiobook": 0.0, "podcast": None}
    assert r["cold_users"]["mrr@3"] == pytest.approx({"audiobook": 1 / 3, "podcast": None})
    # New items: only p2, which u0 finds at rank 2 once p0 (history) is excluded.
    assert r["new_items"]["hr@2"] == {"audiobook": None, "podcast": 1.0}
    assert report["split"]["n_users"] == {
        "exclude_history": {"audiobook": 1, "podcast": 2},
        "inclusive": {"audiobook": 2, "podcast": 2},
        "cold_users": {"audiobook": 1, "podcast": 0},
        "new_items": {"audiobook": 0, "podcast": 1},
    }


def test_per_user_hits_of_users_without_history_are_kept_on_request():
    from evaluation.evaluate import evaluate_retriever

    split = tiny_split()
    hits, cold_hits = {}, {}
    evaluate_retriever(split, PopularityRetriever(split), k=2, mrr_k=3, batch_size=2,
                       progress=False, user_hits=hits, cold_user_hits=cold_hits)
    # u2 (index 2, no history) misses a2 (rank 3); no user without history streamed a podcast
    assert cold_hits["audiobook"][0].tolist() == [2]
    assert cold_hits["audiobook"][1].tolist() == [False]
    assert len(cold_hits["podcast"][0]) == 0
    assert 2 not in hits["audiobook"][0].tolist()  # the discovery hits count warm users only


class _FixedScores(PopularityRetriever):
    """Scores a podcast above every audiobook, to show ranking is per type."""

    def score(self, user_indices):
        scores = super().score(user_indices)
        scores[:, self.split.item_index["p2"]] = 1000.0
        return scores


def test_ranking_is_per_type():
    split = tiny_split()
    r = evaluate_retrievers(split, {"m": _FixedScores(split)}, k=1, mrr_k=3,
                            progress=False)["results"]["m"]
    # p2 first in podcasts (u0 hits p2 at 1, u1 misses p1), while audiobooks are unaffected:
    # u0's top audiobook (a0 excluded) is still a1, a target.
    assert r["hr@1"] == {"audiobook": 1.0, "podcast": 0.5}


def test_write_reports(tmp_path):
    split = tiny_split()
    report = evaluate_retrievers(split, {"popularity": PopularityRetriever(split)},
                                 progress=False)
    paths = write_reports(report, tmp_path / "reports")
    data = json.loads(paths["json"].read_text())
    assert data["results"]["popularity"]["hr@10"] == {"audiobook": 1.0, "podcast": 1.0}
    table = paths["markdown"].read_text()
    assert "| popularity | 1.0000 | 1.0000 |" in table
    assert paths["plot"].name == "hr_at_10.png"
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- vector KNN ------------------------------------------------------------------------------


def knn_split() -> EvalSplit:
    return EvalSplit(
        item_ids=np.array(["i0", "i1", "i2", "i3"]),
        item_types=np.array(["podcast"] * 4),
        user_ids=np.array(["both", "first", "cold"]),
        histories=Ragged.from_lists([[0, 1], [0], []]),
        targets=Ragged.from_lists([[2], [1], [3]]),
        item_popularity=np.array([1.0, 2.0, 3.0, 4.0]),
    )


VECTORS = {"i0": [2.0, 0.0], "i1": [0.0, 10.0], "i2": [1.0, 0.2], "i3": [-1.0, 0.0]}


def test_vector_knn_averages_normalised_history_vectors():
    split = knn_split()
    scores = VectorKNNRetriever(split, VECTORS).score(np.array([0, 1, 2]))
    s = 1 / np.sqrt(2)
    # "both": mean of (1, 0) and (0, 1) -> cosine with each item. Without normalising first the
    # user would be (1, 5) and i1 would win; with it, i2 does.
    assert scores[0] == pytest.approx([s, s, (1 + 0.2) / np.sqrt(1.04) * s, -s], abs=1e-6)
    assert scores[1] == pytest.approx([1.0, 0.0, 1 / np.sqrt(1.04), -1.0], abs=1e-6)
    assert scores[2].tolist() == [1.0, 2.0, 3.0, 4.0]  # no history: popularity


def test_vector_knn_hit_rate_with_history_excluded():
    split = knn_split()
    r = evaluate_retrievers(split, {"knn": VectorKNNRetriever(split, VECTORS)}, k=1, mrr_k=3,
                            progress=False)["results"]["knn"]
    # "both": i2 first -> hit. "first": i0 excluded, ranking i2 i1 i3 -> i1 at 2: miss at k=1.
    assert r["hr@1"] == {"podcast": 0.5}
    assert r["mrr@3"] == {"podcast": 0.75}
    assert r["cold_users"]["hr@1"] == {"podcast": 1.0}  # popularity puts i3 first


def test_vector_knn_accepts_a_matrix_and_ranks_items_without_vector_last():
    split = knn_split()
    matrix = np.array([VECTORS["i0"], VECTORS["i1"], VECTORS["i2"], [0.0, 0.0]])
    scores = VectorKNNRetriever(split, matrix).score(np.array([1]))
    assert scores[0, 3] == MISSING_VECTOR_SCORE
    assert np.argsort(-scores[0]).tolist() == [0, 2, 1, 3]


def test_knn_vectors_are_the_versions_named_never_the_newest_file(tmp_path, monkeypatch):
    from evaluation import evaluate as ev
    from evaluation.retrievers import ModelUnavailable
    from gfm.workspace import Workspace

    ws = Workspace.at(tmp_path)
    hgnn = ws.features_dir / "item_hgnn_embedding"
    hgnn.mkdir(parents=True)
    for name in ("h_old.parquet", "h_new.parquet"):
        (hgnn / name).write_bytes(b"x")
    monkeypatch.setattr(ev, "served_lineage", lambda workspace: None)
    with pytest.raises(ModelUnavailable, match="gfm train hgnn"):  # no run recorded: no guess
        ev.vectors_path(ws, "item_hgnn_embedding", "hgnn_version", ev._last_hgnn_vectors)
    ws.reports_dir.mkdir()
    (ws.reports_dir / "hgnn_metrics.json").write_text(json.dumps({"version": "h_old"}))
    assert ev.vectors_path(ws, "item_hgnn_embedding", "hgnn_version",
                           ev._last_hgnn_vectors) == hgnn / "h_old.parquet"
    # A served two-tower's lineage wins over the last run; a version it names must exist.
    monkeypatch.setattr(ev, "served_lineage", lambda workspace: {"hgnn_version": "h_new"})
    assert ev.vectors_path(ws, "item_hgnn_embedding", "hgnn_version",
                           ev._last_hgnn_vectors) == hgnn / "h_new.parquet"
    monkeypatch.setattr(ev, "served_lineage", lambda workspace: {"hgnn_version": "h_gone"})
    with pytest.raises(ModelUnavailable, match="h_gone"):
        ev.vectors_path(ws, "item_hgnn_embedding", "hgnn_version", ev._last_hgnn_vectors)


def test_sampled_users_keep_histories_and_drop_other_targets():
    split = tiny_split()
    sampled = split.with_sampled_users(1, seed=0)
    assert len(split.eval_users()) == 3 and len(sampled.eval_users()) == 1
    kept = sampled.eval_users()[0]
    assert sampled.targets[kept].tolist() == split.targets[kept].tolist()
    assert sampled.histories.values.tolist() == split.histories.values.tolist()
    assert sampled.summary()["sampled_from_n_users"] == 3
    assert split.with_sampled_users(3) is split


def test_vector_knn_takes_the_last_row_of_a_repeated_item_and_ignores_unknown_ids():
    split = knn_split()
    ids = np.array(["i0", "i1", "i2", "i3", "i0", "not_a_candidate"])
    matrix = np.array([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [5.0, 5.0]])
    retriever = VectorKNNRetriever(split, (ids, matrix))
    assert retriever.vectors[0].tolist() == [1.0, 0.0]


def test_discovery_ranks_leave_the_history_out_of_the_ranking_and_the_count():
    scores = np.array([[0.9, 0.8, 0.7, 0.1], [0.1, 0.2, 0.3, 0.4]])
    rows, cols = np.array([0, 0, 1]), np.array([2, 0, 0])
    h_rows, h_cols = np.array([0, 1]), np.array([0, 3])  # row 0 streamed item 0, row 1 item 3
    ranks, ranks_fresh, fresh = m.discovery_ranks(scores, rows, cols, h_rows, h_cols)
    assert ranks.tolist() == [2, 0, 3]
    assert ranks_fresh[[0, 2]].tolist() == [1, 2]  # the history item ahead takes no place
    assert fresh.tolist() == [True, False, True]  # item 0 is row 0's history: not discovery
