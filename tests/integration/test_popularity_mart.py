"""The mart `user_item_streams`, the one source of popularity: evaluation's split reads its
counts, equal to a naive count over the raw events."""

from __future__ import annotations

import datetime as dt
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evaluation.split import load_split
from gfm.config import Config
from gfm.timeline import Timeline
from gfm.workspace import Workspace
from ingest.contract import arrow_schema
from transforms.warehouse import run_dbt, warehouse_query

pytestmark = pytest.mark.integration

D = dt.timedelta
TIMELINE = Timeline(cutoff=dt.datetime(2025, 4, 1), history_days=30, label_days=7, holdout_days=7)
CUTOFF, START = TIMELINE.cutoff, TIMELINE.cutoff - D(days=30)
ITEMS = [("podA", "podcast", None), ("epA1", "episode", "podA"), ("book1", "audiobook", None),
         ("book2", "audiobook", None)]
TOP_OF = {i: p or i for i, _, p in ITEMS}
INTERACTIONS = [
    ("u1", "epA1", START, "stream"),  # window start: in, counts for podA
    ("u1", "podA", CUTOFF - D(days=1), "stream"),
    ("u1", "book1", CUTOFF - D(days=2), "follow"),  # not a stream
    ("u2", "book1", START - D(seconds=1), "stream"),  # before the window
    ("u2", "book1", CUTOFF - D(days=3), "stream"),
    ("u2", "book1", CUTOFF - D(days=2), "stream"),
    ("u2", "book2", CUTOFF, "stream"),  # at the cutoff: hold-out, not popularity
    ("u3", "book2", CUTOFF - D(hours=1), "stream"),
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Workspace:
    workspace = Workspace.at(tmp_path_factory.mktemp("popularity"))
    workspace.raw_dir.mkdir(parents=True)
    created = dt.datetime(2024, 1, 1)
    rows = {
        "items": [{"item_id": i, "item_type": t, "parent_id": p, "title": i, "description": None,
                   "language": "en", "genre": "comedy", "created_at": created}
                  for i, t, p in ITEMS],
        "users": [{"user_id": u, "country": "SE", "age_bucket": "25-34", "signup_at": created}
                  for u in ("u1", "u2", "u3")],
        "interactions": [{"user_id": u, "item_id": i, "event_ts": ts, "event_type": e,
                          "played_ms": 1000} for u, i, ts, e in INTERACTIONS],
    }
    for name, table in rows.items():
        pq.write_table(pa.Table.from_pylist(table, schema=arrow_schema(name)),
                       workspace.raw_path(name))
    run_dbt(workspace, Config(), TIMELINE)
    return workspace


def _reference() -> Counter:
    return Counter((u, TOP_OF[i]) for u, i, ts, e in INTERACTIONS
                   if e == "stream" and START <= ts < CUTOFF)


def test_mart_counts_streams_per_user_and_top_item_in_the_history_window(workspace):
    rows = warehouse_query(workspace, "select user_id, item_id, n_streams, as_of "
                                      "from user_item_streams")
    assert {(u, i): n for u, i, n, _ in rows} == _reference()
    assert {r[3] for r in rows} == {CUTOFF}


def test_evaluation_reads_the_marts_popularity(workspace):
    by_item = Counter()
    for (_, item), n in _reference().items():
        by_item[item] += n
    split = load_split(workspace, TIMELINE)
    expected = np.array([by_item.get(i, 0) for i in split.item_ids], dtype=float)
    np.testing.assert_array_equal(split.item_popularity, expected)
