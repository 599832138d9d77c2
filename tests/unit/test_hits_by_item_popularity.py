"""bench/hits_by_item_popularity.py: per-target hits with the history left out, and units per
bucket of the target's training streams."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from hits_by_item_popularity import (  # noqa: E402
    NO_GNN,
    OWN,
    SERVED,
    K,
    by_popularity,
    check_against_run,
    streams_label,
    target_hits,
    target_units,
)

from evaluation.split import EvalSplit, Ragged  # noqa: E402

N_ITEMS = 20  # one type, "a"; item i has 10 * i training streams


class FixedScores:
    """Scores every user the same: item i scores i (so the top 10 are items 19 .. 10)."""

    def score(self, users: np.ndarray) -> np.ndarray:
        return np.tile(np.arange(N_ITEMS, dtype=np.float32), (len(users), 1))


def _split() -> EvalSplit:
    # u0: history {19}, targets {10, 9}: with 19 left out, the top 10 is 18 .. 9, both hit.
    # u1: history {}, target {5}: no history, not counted.
    # u2: history {3}, targets {3, 0}: 3 is in the history (not a discovery target), 0 missed.
    return EvalSplit(
        item_ids=np.array([f"i{i}" for i in range(N_ITEMS)]), item_types=np.array(["a"] * N_ITEMS),
        user_ids=np.array(["u0", "u1", "u2"]),
        histories=Ragged.from_lists([[19], [], [3]]),
        targets=Ragged.from_lists([[10, 9], [5], [3, 0]]),
        item_popularity=np.arange(N_ITEMS) * 10.0)


def test_targets_leave_out_the_history_and_users_without_one():
    units = target_units(_split())
    users, positions, items = units["a"]
    assert sorted(zip(users.tolist(), items.tolist())) == [(0, 9), (0, 10), (2, 0)]
    assert np.array_equal(positions, items)  # one type: its position is the item index


def test_the_top_k_is_cut_after_the_history_is_left_out():
    split = _split()
    units = target_units(split)
    hits = target_hits(split, FixedScores(), units)
    got = dict(zip(zip(units["a"][0].tolist(), units["a"][2].tolist()), hits["a"].tolist()))
    assert K == 10 and got == {(0, 10): True, (0, 9): True, (2, 0): False}
    # What `gfm evaluate` recorded must match these hits, per (user, type) unit: u0 hit, u2 not.
    check_against_run(units, hits, {"hr@10": {"a": 0.5}})
    with pytest.raises(SystemExit, match="changed since its run"):
        check_against_run(units, hits, {"hr@10": {"a": 0.9}})


def test_units_per_bucket_and_paired_differences():
    split = _split()
    units = target_units(split)
    yes = {"a": np.array([True, True, True])}
    no = {"a": np.array([False, False, False])}
    result = by_popularity(split, units, {SERVED: yes, OWN: yes, NO_GNN: no})
    buckets = result["buckets"]
    # Streams of the targets: 0, 90, 100; every target lands in exactly one bucket, and a
    # bucket the quantiles leave empty is not shown.
    assert sum(b["units"] for b in buckets) == 3 and all(b["units"] for b in buckets)
    assert [b["streams"] for b in buckets][0] == "0-35"  # no new item: no such bucket
    for b in buckets:
        assert b["hr"][SERVED] == 1.0 and b["hr"][NO_GNN] == 0.0
        assert b["versus"][f"{OWN} - {NO_GNN}"]["diff"] == pytest.approx(1.0)


def test_items_released_since_the_cutoff_have_a_bucket_of_their_own():
    split = _split()
    split.is_new_item = np.arange(N_ITEMS) == 0  # u2's target
    units = target_units(split)
    hits = {"a": units["a"][2] != 0}  # u0's targets hit, u2's new item missed
    buckets = by_popularity(split, units, {SERVED: hits, OWN: hits, NO_GNN: hits})["buckets"]
    assert buckets[0]["streams"] == "released since the cutoff"
    assert buckets[0]["units"] == 1 and buckets[0]["hr"][SERVED] == 0.0
    # u0's two older targets (90 and 100 streams) fall in two of the older items' buckets
    assert [b["units"] for b in buckets[1:]] == [1, 1]
    assert all(b["hr"][SERVED] == 1.0 for b in buckets[1:])


def test_a_run_without_table_2s_model_shows_the_pairs_it_has():
    from hits_by_item_popularity import render

    split = _split()
    units = target_units(split)
    hits = target_hits(split, FixedScores(), units)
    with_b = by_popularity(split, units, {SERVED: hits, OWN: hits, NO_GNN: hits, "ease": hits})
    without = by_popularity(split, units, {SERVED: hits, "ease": hits})
    text = render({"paper": with_b, "seed8": without},
                  {"paper": {"commit": "abc"}, "seed8": {"commit": "def"}}, "img/x.png",
                  {"paper": "the run docs/results.md records", "seed8": "a rerun"})
    paper, seed8 = text.split("## seed8")
    assert "Run at commit def, a rerun; a." in seed8
    assert f"{OWN} - {NO_GNN}" in paper and f"{SERVED} - ease" in paper
    assert NO_GNN not in seed8 and f"{SERVED} - ease" in seed8


def test_provenance_tells_a_rerun_from_the_recorded_run(tmp_path):
    import json

    from hits_by_item_popularity import provenance

    record = tmp_path / "medium"
    record.mkdir()
    stamp = {"key": "k1", "finished_at": "2026-12-07T10:20:31Z"}
    (record / "stamp.json").write_text(json.dumps(stamp))
    (record / "metrics.json").write_text(json.dumps(
        {"results": {SERVED: {"hr@10": {"a": 0.340, "b": 0.388}}, "ease": {"skipped": "big"}}}))
    assert provenance("medium", stamp, {}, tmp_path) == "the run docs/results.md records"
    rerun = {"key": "k1", "finished_at": "2026-12-07T15:06:58Z"}
    text = provenance("medium", rerun, {SERVED: {"hr@10": {"a": 0.342, "b": 0.388}},
                                        "ease": {"hr@10": {"a": 0.3}}}, tmp_path)
    assert "rerun, on the same inputs" in text and "by up to 0.0020 (unified_2t, a)" in text
    assert "does not record" in provenance("small", rerun, {}, tmp_path)


def test_stream_labels_do_not_overlap_on_fractional_edges():
    assert streams_label(0, 52.5) == "0-52" and streams_label(52.5, 158) == "53-157"
    assert streams_label(425.4, 1251) == "426-1,250"
