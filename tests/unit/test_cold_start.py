"""Cold-start views of the evaluation: HR@k by item age and for users without history.

Hand-made split, cutoff 2025-07-04, popularity a0 > a1 > a2 and p0 > p1 > p2:

    item  released                  age bucket         user  history  hold-out
    a0    2 years before the cutoff 1 y+               u0    a0, p0   a0, a1, p2
    a1    20 days before            14-29 d            u1    a1       a2, p1
    a2    3 days after              released in h-o    u2    -        a2, p0
    p0    100 days before           90-364 d           u3    -        a0
    p1    5 days before             0-13 d
    p2    1 day after               released in h-o
k = 1, history excluded: u0 hits a1 (14-29 d), misses p2 (p1 ranks first); u1 misses a2 (a0
first) and p1 (p0 first: only a1 is in its history). Cold: u2 misses a2, hits p0; u3 hits a0.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from evaluation.cold_start import (
    AGE_BUCKETS,
    age_bucket_codes,
    format_cold_start_markdown,
    write_cold_start_reports,
)
from evaluation.evaluate import evaluate_retrievers, write_reports
from evaluation.retrievers import PopularityRetriever
from evaluation.split import EvalSplit, Ragged

CUTOFF = dt.datetime(2025, 7, 4)
LABELS = [label for _, label in AGE_BUCKETS]


def _split(with_release: bool = True) -> EvalSplit:
    items = ["a0", "a1", "a2", "p0", "p1", "p2"]
    index = {item: i for i, item in enumerate(items)}
    days = [-730, -20, 3, -100, -5, 1]

    def rows(lists):
        return Ragged.from_lists([[index[i] for i in row] for row in lists])

    created = np.array([np.datetime64(CUTOFF + dt.timedelta(days=d), "s") for d in days])
    return EvalSplit(
        item_ids=np.array(items),
        item_types=np.array(["audiobook"] * 3 + ["podcast"] * 3),
        user_ids=np.array(["u0", "u1", "u2", "u3"]),
        histories=rows([["a0", "p0"], ["a1"], [], []]),
        targets=rows([["a0", "a1", "p2"], ["a2", "p1"], ["a2", "p0"], ["a0"]]),
        is_new_item=np.array([d >= 0 for d in days]),
        item_popularity=np.array([30.0, 20, 10, 3, 2, 1]),
        item_created_at=created if with_release else np.zeros(0, "datetime64[s]"),
        cutoff=CUTOFF,
    )


def test_age_buckets_bounds_and_unknown_release():
    split = _split()
    split.item_created_at = np.array(
        [np.datetime64(CUTOFF + dt.timedelta(days=d), "s") for d in (-0.5, 0, 13.9, 14, 365, 0)],
        "datetime64[s]")
    split.item_created_at[-1] = np.datetime64("NaT")
    # ages: 0.5 d, 0, -13.9 (released in the hold-out), -14, -365, unknown
    assert age_bucket_codes(split).tolist() == [1, 1, 0, 0, 0, -1]
    split.item_created_at = np.array(
        [np.datetime64(CUTOFF - dt.timedelta(days=d), "s") for d in (13.9, 14, 29, 30, 364, 365)])
    assert [LABELS[c] for c in age_bucket_codes(split)] == [
        "0-13 d", "14-29 d", "14-29 d", "30-89 d", "90-364 d", "1 y+"]


def test_hit_rates_by_item_age_and_of_users_without_history():
    split = _split()
    report = evaluate_retrievers(split, {"popularity": PopularityRetriever(split)}, k=1,
                                 mrr_k=3, progress=False)
    cold_start = report["results"]["popularity"]["cold_start"]
    cold = cold_start["cold_users"]
    assert (cold["audiobook"]["n_users"], cold["audiobook"]["hits"]) == (2, 1)
    assert (cold["podcast"]["n_users"], cold["podcast"]["hits"]) == (1, 1)
    assert cold["audiobook"]["hr"] == 0.5
    # the same users and hit rate as the cold-start table of the report
    assert report["results"]["popularity"]["cold_users"]["hr@1"] == {"audiobook": 0.5,
                                                                      "podcast": 1.0}
    lo, hi = cold["audiobook"]["ci"]
    assert 0.0 <= lo <= 0.5 <= hi <= 1.0

    by_type = cold_start["item_age"]["by_type"]
    assert cold_start["item_age"]["buckets"] == LABELS

    def counts(t):
        return [(b["n_users"], b["hits"]) for b in by_type[t]]

    assert counts("audiobook") == [(1, 0), (0, 0), (1, 1), (0, 0), (0, 0), (0, 0)]
    assert counts("podcast") == [(1, 0), (1, 0), (0, 0), (0, 0), (0, 0), (0, 0)]
    assert by_type["audiobook"][1]["hr"] is None and by_type["audiobook"][1]["ci"] is None
    # the hold-out bucket is the report's "new items" group
    new_items = report["results"]["popularity"]["new_items"]["hr@1"]
    assert new_items == {"audiobook": by_type["audiobook"][0]["hr"],
                         "podcast": by_type["podcast"][0]["hr"]}

    # k = 2: u0 reaches p2 and u1 reaches a2 (second once the history is left out)
    report = evaluate_retrievers(split, {"popularity": PopularityRetriever(split)}, k=2,
                                 mrr_k=3, progress=False)
    by_type = report["results"]["popularity"]["cold_start"]["item_age"]["by_type"]
    assert by_type["audiobook"][0]["hits"] == 1 and by_type["podcast"][0]["hits"] == 1


def test_items_without_release_fall_outside_every_bucket():
    split = _split(with_release=False)
    report = evaluate_retrievers(split, {"popularity": PopularityRetriever(split)}, k=1,
                                 mrr_k=3, progress=False)
    cold_start = report["results"]["popularity"]["cold_start"]
    assert all(b["n_users"] == 0 for t in ("audiobook", "podcast")
               for b in cold_start["item_age"]["by_type"][t])
    assert cold_start["cold_users"]["audiobook"]["n_users"] == 2


def test_reports_have_the_plots_and_the_table(tmp_path):
    split = _split()
    retrievers = {"popularity": PopularityRetriever(split), "again": PopularityRetriever(split)}
    report = evaluate_retrievers(split, retrievers, k=1, mrr_k=3, progress=False)
    paths = write_reports(report, tmp_path / "reports")
    for key in ("plot_item_age", "plot_cold_users"):
        assert paths[key].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    markdown = paths["markdown"].read_text()
    assert "## Cold start with 95% intervals: HR@1" in markdown
    assert "| popularity | 0.500 [" in markdown
    assert "released in hold-out" in markdown
    # a report without the tallies (an older metrics.json) gives nothing, and no error
    for r in report["results"].values():
        del r["cold_start"]
    assert format_cold_start_markdown(report) == ""
    assert write_cold_start_reports(report, tmp_path) == {}


@pytest.mark.parametrize("batch_size", [1, 3])
def test_batching_does_not_change_the_tallies(batch_size):
    split = _split()
    whole = evaluate_retrievers(split, {"p": PopularityRetriever(split)}, k=1, mrr_k=3,
                                progress=False)
    batched = evaluate_retrievers(split, {"p": PopularityRetriever(split)}, k=1, mrr_k=3,
                                  batch_size=batch_size, progress=False)
    assert whole["results"]["p"]["cold_start"] == batched["results"]["p"]["cold_start"]


class _LeastPopularFirst(PopularityRetriever):
    def score(self, user_indices):
        return -self.popularity_scores(len(user_indices))


def test_each_model_is_paired_with_popularity_on_users_without_history():
    split = _split()
    retrievers = {"popularity": PopularityRetriever(split), "again": PopularityRetriever(split),
                  "reverse": _LeastPopularFirst(split)}
    report = evaluate_retrievers(split, retrievers, k=1, mrr_k=3, progress=False)
    results = report["results"]
    assert "versus_popularity" not in results["popularity"]["cold_start"]
    paired = results["reverse"]["cold_start"]["versus_popularity"]
    # k = 1, cold users u2 (a2, p0) and u3 (a0): reversed, u2 finds a2 but loses p0, u3 loses a0
    assert (paired["audiobook"]["n_users"], paired["audiobook"]["diff"]) == (2, 0.0)
    assert (paired["audiobook"]["only_a"], paired["audiobook"]["only_b"]) == (1, 1)
    assert (paired["podcast"]["n_users"], paired["podcast"]["diff"]) == (1, -1.0)
    assert paired["all types"]["n_users"] == 3
    assert paired["all types"]["diff"] == pytest.approx(-1 / 3, abs=1e-6)
    assert results["again"]["cold_start"]["versus_popularity"]["all types"]["diff"] == 0.0
    markdown = format_cold_start_markdown(report)
    assert "Minus popularity on the same users without history" in markdown
    assert "| reverse | +0.000 [" in markdown
    assert "| again | +0.000" not in markdown  # it serves them popularity's list


def test_each_model_is_paired_with_text_knn_on_new_items():
    split = _split()
    # Only the reference's name matters here: a popularity list stands in for text_knn's.
    retrievers = {"text_knn": PopularityRetriever(split), "reverse": _LeastPopularFirst(split)}
    report = evaluate_retrievers(split, retrievers, k=1, mrr_k=3, progress=False)
    results = report["results"]
    assert "new_items_versus_text_knn" not in results["text_knn"]["cold_start"]
    paired = results["reverse"]["cold_start"]["new_items_versus_text_knn"]
    # k = 1, history excluded: u1's new a2 and u0's new p2 rank last by popularity and first
    # reversed; the users without history (u2, u3) do not count on new items.
    assert (paired["audiobook"]["n_users"], paired["audiobook"]["diff"]) == (1, 1.0)
    assert (paired["podcast"]["n_users"], paired["podcast"]["diff"]) == (1, 1.0)
    assert (paired["all types"]["n_users"], paired["all types"]["only_a"]) == (2, 2)
    assert results["reverse"]["new_items"]["hr@1"] == {"audiobook": 1.0, "podcast": 1.0}
    markdown = format_cold_start_markdown(report)
    section = markdown.split("Minus text_knn on the same users counted on new items")[1]
    assert "| reverse | **+1.000 [+1.000, +1.000]** | **+1.000 [" in section
