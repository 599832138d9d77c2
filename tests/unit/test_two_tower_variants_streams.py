"""bench/two_tower_variants.py: HR@10 on the validation split by the target item's training
streams, and the doc's table of it paired with the baseline per bucket."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import two_tower_variants  # noqa: E402
from test_hits_by_item_popularity import FixedScores, _split  # noqa: E402

STREAMS = two_tower_variants.STREAMS


def _table(records: dict, hits: dict, baseline: str) -> str:
    measured, header, deltas = two_tower_variants._stream_deltas(records, hits, baseline, ["a"])
    return "\n".join(two_tower_variants._streams_table(records, header, measured, deltas,
                                                       baseline))


def test_by_streams_buckets_the_targets_and_keeps_their_units():
    # u0's targets 10 and 9 (100 and 90 streams) are hits, u2's target 0 (0 streams) is not.
    rates, unit_hits = two_tower_variants._by_streams(_split(), FixedScores())
    assert "released since the cutoff" not in rates  # no new item: no such bucket
    low = next(label for label in rates if label.startswith("0-"))
    assert rates[low] == 0.0 and all(v == 1.0 for k, v in rates.items() if k != low)
    users, hits = unit_hits[f"a|{low}"]
    assert users.tolist() == [2] and hits.tolist() == [False]
    # u2 is the lowest bucket's one unit; u0 one unit in each other bucket (only its targets
    # fill them), however many of its targets fall there
    assert sum(len(u) for u, _ in unit_hits.values()) == len(rates)


def test_streams_table_pairs_each_bucket_with_the_baseline():
    users = np.arange(4)
    hits = {"base" + STREAMS: {"a|0-9": (users, np.array([True, False, False, False])),
                               "a|10-99": (users, np.array([True, True, False, False]))},
            "ids" + STREAMS: {"a|0-9": (users, np.array([True, True, True, True])),
                              "a|10-99": (users, np.array([True, True, False, False]))}}
    records = {"base": {"by_streams": {"0-9": 0.25, "10-99": 0.5}},
               "ids": {"by_streams": {"0-9": 1.0, "10-99": 0.5}},
               "old": {"mean": 0.3}}  # a record from before the measure: not a row
    text = _table(records, hits, "base")
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")]
            for line in text.splitlines() if line.startswith("| `")}
    assert set(rows) == {"`base`", "`ids`"}
    assert rows["`ids`"][1:3] == ["1.000", "0.500"]
    assert rows["`ids`"][3].lstrip("*").startswith("+0.750")  # 3 of 4 units gained
    assert rows["`ids`"][4].startswith("+0.000") and rows["`base`"][3] == "–"
    assert _table({"x": {}}, {}, "x") == ""


def test_streams_table_matches_buckets_by_position_across_label_versions():
    users = np.arange(2)
    hits = {"base" + STREAMS: {"a|0-9": (users, np.array([False, False]))},
            "new" + STREAMS: {"a|0-8": (users, np.array([True, True]))}}
    records = {"base": {"by_streams": {"0-9": 0.0}}, "new": {"by_streams": {"0-8": 1.0}}}
    text = _table(records, hits, "base")
    assert "| variant | 0-8 | Δ 0-8 |" in text  # the newest record's labels
    assert "| `new` | 1.000 | **+1.000" in text
