"""bench/two_tower_variants.py's new-item share of top-10 slots: label-free, history left out."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import two_tower_variants  # noqa: E402

from evaluation.split import EvalSplit, Ragged  # noqa: E402


def test_slot_share_counts_new_items_in_each_types_top_k_leaving_history_out():
    # 12 podcasts (the last 3 new) and 12 audiobooks (none new); item i scores i for user 0
    types = np.array(["podcast"] * 12 + ["audiobook"] * 12, dtype=object)
    new = np.zeros(24, dtype=bool)
    new[9:12] = True
    split = EvalSplit(item_ids=np.array([f"i{i}" for i in range(24)], dtype=object),
                      item_types=types, user_ids=np.array(["u0", "u1"], dtype=object),
                      histories=Ragged.from_lists([[11, 0], []]),  # u1 has none: not sampled
                      targets=Ragged.from_lists([[], [5]]), is_new_item=new)
    items = np.zeros((24, 2), dtype=np.float32)
    items[:12, 0] = np.arange(12)
    items[12:, 1] = np.arange(12)
    users = np.array([[1.0, 1.0], [1.0, 1.0]], dtype=np.float32)
    got = two_tower_variants._new_item_slot_share(split, users, items, k=4)
    # podcasts: top 4 of items 1..10 (11 is history) are 10, 9, 8, 7: two new of four
    assert got == {"podcast": 0.5, "audiobook": 0.0}
    # a history item is never counted, however high it scores: with k 2, items 10 and 9
    assert two_tower_variants._new_item_slot_share(split, users, items, k=2)["podcast"] == 1.0
