"""leave_one_out: a history-set example never sees its own item in its user features."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.two_tower.data import leave_one_out


def _frame() -> pd.DataFrame:
    a, b, c = (np.array([1.0, 0.0], np.float32), np.array([0.0, 1.0], np.float32),
               np.array([3.0, 3.0], np.float32))
    return pd.DataFrame({
        "user_id": ["u1", "u1", "u2"],
        "item_id": ["a", "c", "a"],
        "item_type": ["book", "pod", "book"],
        "hgnn_embedding": [a, c, a],
        # u1's history: books a and b, podcast c; u2's: book a only
        "item_ids_book": [["a", "b"], ["a", "b"], ["a"]],
        "item_ids_pod": [["c"], ["c"], None],
        "n_items_book": [2, 2, 1],
        "avg_hgnn_book": [(a + b) / 2, (a + b) / 2, a],
        "n_items_pod": [1, 1, 0],
        "avg_hgnn_pod": [c, c, np.zeros(2, np.float32)],
        "n_items_all": [3, 3, 1],
        "avg_hgnn_all": [(a + b + c) / 3, (a + b + c) / 3, a],
    })


def test_each_row_loses_its_own_item_and_nothing_else():
    frame = _frame()
    out = leave_one_out(frame, ["book", "pod"])
    # u1 / a: book a leaves the book list, count and mean; the podcast side is unchanged
    assert out.item_ids_book[0] == ["b"] and out.item_ids_pod[0] == ["c"]
    assert out.n_items_book[0] == 1 and out.n_items_pod[0] == 1 and out.n_items_all[0] == 2
    np.testing.assert_allclose(out.avg_hgnn_book[0], [0.0, 1.0], atol=1e-6)
    np.testing.assert_allclose(out.avg_hgnn_all[0], [1.5, 2.0], atol=1e-6)  # (b + c) / 2
    # u1 / c: the only podcast leaves: an empty list, count 0, a zero mean
    assert out.item_ids_pod[1] == [] and out.n_items_pod[1] == 0
    np.testing.assert_allclose(out.avg_hgnn_pod[1], [0.0, 0.0])
    np.testing.assert_allclose(out.avg_hgnn_book[1], [0.5, 0.5], atol=1e-6)
    # u2 / a: nothing is left: the overall mean is missing, as for a user without history
    assert out.item_ids_book[2] == [] and out.n_items_all[2] == 0
    assert out.avg_hgnn_all[2] is None
    # the input frame is untouched
    assert frame.item_ids_book[0] == ["a", "b"] and frame.n_items_all[0] == 3
