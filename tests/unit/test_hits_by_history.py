"""bench/hits_by_history.py: buckets of history length and the rates and pairings inside them."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from hits_by_history import bucket_edges, by_history, render  # noqa: E402


def test_buckets_hold_about_a_fifth_each_and_keep_ties_together():
    lengths = np.arange(1, 101)
    edges = bucket_edges(lengths)
    assert edges[0] == 1 and edges[-1] == 101 and len(edges) == 6
    counts = np.histogram(lengths, bins=edges)[0]
    assert counts.sum() == 100 and counts.min() >= 19
    # Most users with the same length: fewer buckets, none empty, every unit in one.
    tied = np.array([5] * 90 + list(range(6, 16)))
    edges = bucket_edges(tied)
    assert len(edges) < 6 and all(np.diff(edges) > 0)
    counts = np.histogram(tied, bins=edges)[0]
    assert counts.sum() == 100 and counts.min() > 0


def test_rates_and_pairings_per_bucket():
    users = np.array([f"u{i}" for i in range(100)])
    lengths = {u: i + 1 for i, u in enumerate(users)}  # u0 has 1 item, u99 has 100
    short = np.arange(100) < 50
    # unified_2t hits the long-history half, EASE the short one; one type.
    hits = {"unified_2t": {"t": (users, ~short)}, "ease": {"t": (users, short)},
            "popularity": {"t": (users, np.zeros(100, dtype=bool))}}
    result = by_history(hits, lengths)
    assert result["models"] == ["unified_2t", "ease", "popularity"]
    first, last = result["buckets"][0], result["buckets"][-1]
    assert first["history"][0] == 1 and last["history"][1] == 100
    assert sum(b["units"] for b in result["buckets"]) == 100
    assert first["hr"] == {"unified_2t": 0.0, "ease": 1.0, "popularity": 0.0}
    assert last["hr"]["unified_2t"] == 1.0 and last["versus"]["ease"]["diff"] == 1.0
    assert "als" not in first["versus"]  # not evaluated: not paired
    text = render({"run": result}, {"run": {"commit": "abcdef123456"}}, None)
    assert "| 1-20 | 20 | 0.000 | **1.000** | 0.000 |" in text
    # Models must count the same users: one split.
    hits["ease"]["t"] = (users[::-1], short)
    with pytest.raises(ValueError, match="one split"):
        by_history(hits, lengths)
