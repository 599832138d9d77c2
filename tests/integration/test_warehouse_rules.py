"""The dbt warehouse on a hand-made workspace whose edges, histories and hold-out are known.

Timeline: cutoff 2025-04-01, label_days 14 -> graph_as_of (T0) 2025-03-18, history_days 90 ->
edge window [2024-12-18, 2025-03-18), hold-out [2025-04-01, 2025-04-15).
Warehouse: min_edge_support 2, max_items_per_user 3.

Streams in the edge window, per user (episodes epA1/epA2 roll up to podA):
    u1  epA1, book1                      -> podA-book1
    u2  epA2, book1, podB                -> podA-book1, podA-podB, book1-podB
    u3  podA, podB (+ book2 AT T0: out)  -> podA-podB
    u4  podB, book2                      -> podB-book2
    u5  podA (+ book2 1 s before the window: out)
    u6  book1 (exactly at window start: in), book2 -> book1-book2
    u7  book1, book2                     -> book1-book2
    u8  podA, book2                      -> podA-book2
    u9  book1 (+ a follow of podA: not a stream)
    u10 podC, podA                       -> podA-podC
    uh  podA, podB, book1, and podC oldest (4th: beyond the bound of 3)
                                         -> podA-podB, podA-book1, podB-book1
Support: podA-book1 3, podA-podB 3, book1-podB 2, book1-book2 2; podB-book2, podA-book2 and
podA-podC have 1 and are dropped. Each rule, if broken, adds or removes an edge.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import socket
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gfm.config import Config, WarehouseConfig
from gfm.errors import GfmError
from gfm.timeline import Timeline
from gfm.workspace import Workspace
from ingest.contract import arrow_schema
from transforms.warehouse import run_dbt, warehouse_query

pytestmark = pytest.mark.integration

D = dt.timedelta
TIMELINE = Timeline(cutoff=dt.datetime(2025, 4, 1), history_days=90, label_days=14, holdout_days=14)
T0 = TIMELINE.graph_as_of
WINDOW_START = TIMELINE.edge_window_start
CUTOFF = TIMELINE.cutoff
HOLDOUT_END = TIMELINE.holdout_end
CONFIG = Config(warehouse=WarehouseConfig(min_edge_support=2, max_items_per_user=3))

ITEMS = [
    # item_id, item_type, parent_id
    ("podA", "podcast", None),
    ("epA1", "episode", "podA"),
    ("epA2", "episode", "podA"),
    ("podB", "podcast", None),
    ("podC", "podcast", None),
    ("book1", "audiobook", None),
    ("book2", "audiobook", None),
]
USERS = ["u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8", "u9", "u10", "uh", "u_idle"]
INTERACTIONS = [
    # user_id, item_id, event_ts, event_type
    ("u1", "epA1", T0 - D(days=10), "stream"),
    ("u1", "book1", T0 - D(days=5), "stream"),
    ("u2", "epA2", T0 - D(days=20), "stream"),
    ("u2", "book1", T0 - D(days=3), "stream"),
    ("u2", "podB", T0 - D(days=2), "stream"),
    ("u3", "podA", T0 - D(days=1), "stream"),
    ("u3", "podB", T0 - D(hours=1), "stream"),
    ("u3", "book2", T0, "stream"),  # at graph_as_of: never an edge
    ("u4", "podB", T0 - D(days=30), "stream"),
    ("u4", "book2", T0 - D(days=30), "stream"),
    ("u5", "podA", T0 - D(days=1), "stream"),
    ("u5", "book2", WINDOW_START - D(seconds=1), "stream"),  # before the window
    ("u6", "book1", WINDOW_START, "stream"),  # window start is inclusive
    ("u6", "book2", T0 - D(days=1), "stream"),
    ("u7", "book1", T0 - D(days=4), "stream"),
    ("u7", "book2", T0 - D(days=4), "stream"),
    ("u7", "podB", T0 - D(days=1), "like"),  # neither edges nor histories
    ("u8", "podA", T0 - D(days=6), "stream"),
    ("u8", "book2", T0 - D(days=6), "stream"),
    ("u9", "podA", T0 - D(days=2), "follow"),  # histories only
    ("u9", "book1", T0 - D(days=2), "stream"),
    ("u10", "podC", T0 - D(days=7), "stream"),
    ("u10", "podA", T0 - D(days=7), "stream"),
    ("uh", "podA", T0 - D(days=1), "stream"),
    ("uh", "epA1", T0 - D(days=1) + D(hours=1), "stream"),  # same show again: one item
    ("uh", "podB", T0 - D(days=2), "stream"),
    ("uh", "book1", T0 - D(days=3), "stream"),
    ("uh", "podC", T0 - D(days=50), "stream"),  # 4th most recent: beyond the bound
    # label window [T0, cutoff): histories only
    ("u1", "book2", T0 + D(days=3, hours=12), "preview"),
    ("u2", "epA1", T0 + D(days=5), "stream"),  # podA again: first in u2's list for a while
    ("u2", "podB", CUTOFF - D(seconds=1), "stream"),
    # hold-out [cutoff, holdout_end)
    ("u1", "epA2", CUTOFF, "stream"),
    ("u1", "epA1", CUTOFF + D(days=1), "stream"),
    ("u2", "book2", HOLDOUT_END - D(seconds=1), "stream"),
    ("u2", "podB", HOLDOUT_END, "stream"),  # after the hold-out
    ("u3", "book1", CUTOFF + D(days=2), "follow"),  # not a stream
]
EXPECTED_EDGES = {
    # (src, dst): (edge_type, n_users), both directions
    ("podA", "book1"): ("audiobook__podcast", 3),
    ("podA", "podB"): ("podcast__podcast", 3),
    ("book1", "podB"): ("audiobook__podcast", 2),
    ("book1", "book2"): ("audiobook__audiobook", 2),
}
TYPE_OF = {item_id: item_type for item_id, item_type, _ in ITEMS}
TOP_OF = {item_id: parent or item_id for item_id, _, parent in ITEMS}


def write_raw(workspace: Workspace, interactions_rows: list[tuple] = INTERACTIONS) -> None:
    workspace.raw_dir.mkdir(parents=True, exist_ok=True)
    items = [
        {
            "item_id": item_id,
            "item_type": item_type,
            "parent_id": parent,
            "title": f"Title of {item_id}",
            "description": None if parent else f"About {item_id}",
            "language": "en",
            "genre": "comedy",
            "created_at": dt.datetime(2024, 1, 1),
        }
        for item_id, item_type, parent in ITEMS
    ]
    users = [
        {"user_id": u, "country": "SE", "age_bucket": "25-34", "signup_at": dt.datetime(2024, 1, 1)}
        for u in USERS
    ]
    interactions = [
        {"user_id": u, "item_id": i, "event_ts": ts, "event_type": e, "played_ms": 1000}
        for u, i, ts, e in interactions_rows
    ]
    for name, rows in (("items", items), ("users", users), ("interactions", interactions)):
        pq.write_table(pa.Table.from_pylist(rows, schema=arrow_schema(name)), workspace.raw_path(name))


class _ConnectWatch:
    """Records socket connections that leave the machine (not unix sockets, not loopback)
    made while `active`."""

    def __init__(self) -> None:
        self.active = False
        self.calls: list[tuple] = []
        sys.addaudithook(self)

    def __call__(self, event: str, args: tuple) -> None:
        if self.active and event == "socket.connect":
            sock, address = args[0], args[1]
            if getattr(sock, "family", None) == socket.AF_UNIX:
                return
            host = address[0] if isinstance(address, tuple) else str(address)
            if host in ("localhost", "::1") or str(host).startswith("127."):
                return
            self.calls.append(address)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Workspace, float, list[tuple]]:
    workspace = Workspace.at(tmp_path_factory.mktemp("warehouse"))
    write_raw(workspace)
    watch = _ConnectWatch()
    watch.active = True
    start = time.perf_counter()
    try:
        run_dbt(workspace, CONFIG, TIMELINE)
    finally:
        watch.active = False
    return workspace, time.perf_counter() - start, watch.calls


def query(workspace: Workspace, sql: str) -> list[tuple]:
    return warehouse_query(workspace, sql)


def test_build_writes_outside_the_repo_and_makes_no_network_call(built):
    workspace, seconds, connects = built
    assert connects == [], f"dbt opened network connections: {connects}"
    assert (workspace.dbt_dir / "target" / "manifest.json").exists()
    assert (workspace.dbt_dir / "logs" / "dbt.log").exists()
    repo_dbt = Path(__file__).resolve().parents[2] / "dbt"
    assert not (repo_dbt / "target").exists() and not (repo_dbt / "logs").exists()
    print(f"dbt build: {seconds:.1f} s")


def test_edges_are_exactly_the_hand_computed_set(built):
    workspace, _, _ = built
    rows = query(
        workspace,
        "select src_item_id, dst_item_id, src_item_type, dst_item_type, edge_type, n_users, as_of "
        "from co_interaction_edges",
    )
    expected = {}
    for (a, b), (edge_type, n_users) in EXPECTED_EDGES.items():
        expected[(a, b)] = (TYPE_OF[a], TYPE_OF[b], edge_type, n_users, T0)
        expected[(b, a)] = (TYPE_OF[b], TYPE_OF[a], edge_type, n_users, T0)
    got = {(r[0], r[1]): r[2:] for r in rows}
    assert len(rows) == len(got)  # no duplicate edge
    assert got == expected


def test_edges_roll_episodes_up_and_ignore_out_of_window_events(built):
    workspace, _, _ = built
    ends = {r[0] for r in query(workspace, "select src_item_id from co_interaction_edges")}
    assert not ends & {"epA1", "epA2"}, "episodes must roll up to their show"
    pairs = {(r[0], r[1]) for r in query(workspace, "select src_item_id, dst_item_id from co_interaction_edges")}
    # u3's book2 at graph_as_of and u5's book2 before the window would each lift these to 2 users
    assert ("podB", "book2") not in pairs and ("podA", "book2") not in pairs
    # u6's book1 exactly at the window start counts
    assert ("book1", "book2") in pairs


def test_min_edge_support_and_heavy_user_bound(built):
    workspace, _, _ = built
    assert query(workspace, "select min(n_users) from co_interaction_edges") == [(2,)]
    # podC is uh's 4th most recent item (bound 3): with u10 alone podA-podC has 1 user
    rows = query(workspace, "select count(*) from co_interaction_edges where 'podC' in (src_item_id, dst_item_id)")
    assert rows == [(0,)]


def expected_history(timeline: Timeline = TIMELINE, at_events: bool = False,
                     rows: list[tuple] = INTERACTIONS) -> dict[tuple[str, dt.datetime, str], tuple[list[str], dt.datetime]]:
    """A naive reference: for each snapshot d, the items with a history event in [d - 90 d, d),
    most recent first, and the most recent event among them. `at_events`: also a snapshot at
    every stream instant t in [examples_start, cutoff) but midnight, from [day(t) - 90 d, t)."""
    history_types = set(CONFIG.warehouse.history_event_types)
    instants = [(None, day, day) for day in timeline.snapshot_days()]
    if at_events:
        instants += sorted({
            (user, ts, dt.datetime.combine(ts.date(), dt.time()))
            for user, _, ts, event_type in rows
            if event_type == "stream" and timeline.examples_start <= ts < timeline.cutoff
            and ts.time() != dt.time()})
    out = {}
    for only_user, instant, day in instants:
        last_seen: dict[tuple[str, str], dt.datetime] = {}
        for user, item, ts, event_type in rows:
            if only_user not in (None, user):
                continue
            if event_type in history_types and day - D(days=90) <= ts < instant:
                key = (user, TOP_OF[item])
                last_seen[key] = max(ts, last_seen.get(key, ts))
        by_user_type = defaultdict(list)
        for (user, item), ts in last_seen.items():
            by_user_type[(user, instant, TYPE_OF[item])].append((ts, item))
        for key, entries in by_user_type.items():
            entries.sort(key=lambda e: (-e[0].timestamp(), e[1]))
            out[key] = ([item for _, item in entries], entries[0][0])
    return out


def test_user_history_snapshots_match_a_naive_reference(built):
    workspace, _, _ = built
    rows = query(
        workspace,
        "select user_id, snapshot_ts, item_type, item_ids, n_items, last_event_ts "
        "from user_history",
    )
    got = {(r[0], r[1], r[2]): (list(r[3]), r[5]) for r in rows}
    assert all(r[4] == len(r[3]) for r in rows)
    assert got == expected_history()
    days = sorted({r[1] for r in rows})
    assert days == TIMELINE.snapshot_days()  # 15 snapshots, graph_as_of .. cutoff


def test_early_label_days_add_earlier_snapshots_that_match_the_reference(tmp_path):
    """timeline.early_label_days: snapshots start that many days before graph_as_of, each
    still built only from its own 90 days before it."""
    timeline = dataclasses.replace(TIMELINE, early_label_days=20)
    workspace = Workspace.at(tmp_path)
    write_raw(workspace)
    run_dbt(workspace, CONFIG, timeline)
    rows = query(workspace, "select user_id, snapshot_ts, item_type, item_ids, last_event_ts "
                            "from user_history")
    got = {(r[0], r[1], r[2]): (list(r[3]), r[4]) for r in rows}
    assert got == expected_history(timeline)
    days = sorted({r[1] for r in rows})
    assert days[0] == timeline.graph_as_of - D(days=20) and days[-1] == timeline.cutoff
    assert len(got) > len(expected_history())  # the earlier days hold snapshots too


def test_history_at_events_adds_a_snapshot_at_each_example_instant(tmp_path):
    """warehouse.history_at_events: besides the daily snapshots, one at every stream instant of
    the example window (but midnight), holding that day's earlier events too."""
    config = Config(warehouse=WarehouseConfig(min_edge_support=2, max_items_per_user=3,
                                              history_at_events=True))
    day = T0 + D(days=2)
    session = [  # one user's session within a day: each stream sees the earlier ones
        ("u8", "podA", day + D(hours=9), "stream"),
        ("u8", "podB", day + D(hours=10), "stream"),
        ("u8", "book1", day + D(hours=11), "stream"),
        ("u8", "podA", day + D(hours=12), "stream"),
    ]
    interactions = [*INTERACTIONS, *session]
    workspace = Workspace.at(tmp_path)
    write_raw(workspace, interactions)
    run_dbt(workspace, config, TIMELINE)
    rows = query(workspace, "select user_id, snapshot_ts, item_type, item_ids, last_event_ts "
                            "from user_history")
    got = {(r[0], r[1], r[2]): (list(r[3]), r[4]) for r in rows}
    assert got == expected_history(at_events=True, rows=interactions)
    at_events = {k: v for k, v in got.items() if k[1] not in TIMELINE.snapshot_days()}
    assert all(k[1].time() != dt.time() for k in at_events)
    assert got[("u8", day + D(hours=12), "podcast")] == (["podB", "podA"], day + D(hours=10))
    assert got[("u8", day + D(hours=12), "audiobook")] == (["book1", "book2"], day + D(hours=11))
    assert got[("u8", day + D(hours=9), "podcast")] == (["podA"], T0 - D(days=6))
    # The daily snapshots are the same as without the setting.
    assert {k: v for k, v in got.items() if k not in at_events} == expected_history(
        rows=interactions)


def test_user_history_hand_checked_cases(built):
    workspace, _, _ = built

    def items(user, day, item_type):
        rows = query(
            workspace,
            f"select item_ids from user_history where user_id = '{user}' "
            f"and snapshot_ts = timestamp '{day:%Y-%m-%d %H:%M:%S}' and item_type = '{item_type}'",
        )
        return list(rows[0][0]) if rows else None

    assert items("u2", T0, "podcast") == ["podB", "podA"]  # most recent first; epA2 -> podA
    assert items("u9", T0, "podcast") == ["podA"]  # a follow counts for histories
    assert items("u3", T0, "audiobook") is None  # book2 at T0 is not before T0
    assert items("u3", T0 + D(days=1), "audiobook") == ["book2"]
    assert items("u1", T0 + D(days=3), "audiobook") == ["book1"]  # preview at T0+3d12h not yet
    assert items("u1", T0 + D(days=4), "audiobook") == ["book2", "book1"]
    assert items("u6", T0, "audiobook") == ["book2", "book1"]
    assert items("u6", T0 + D(days=1), "audiobook") == ["book2"]  # book1 left the 90-day window
    assert items("u5", T0, "audiobook") is None  # book2 1 s before the window
    assert items("u7", T0, "podcast") is None  # a like is not a history event
    assert items("u2", T0 + D(days=5), "podcast") == ["podB", "podA"]
    assert items("u2", T0 + D(days=6), "podcast") == ["podA", "podB"]  # podA again at T0 + 5 d
    assert items("u2", CUTOFF, "podcast") == ["podB", "podA"]  # podB again 1 s before
    # the cutoff snapshot never sees the hold-out: u1's podA is still from T0 - 10 d
    last = query(
        workspace,
        "select last_event_ts from user_history where user_id = 'u1' "
        f"and snapshot_ts = timestamp '{CUTOFF:%Y-%m-%d}' and item_type = 'podcast'",
    )
    assert last == [(T0 - D(days=10),)]
    assert query(workspace, "select count(*) from user_history where last_event_ts >= snapshot_ts") == [(0,)]


def test_holdout_is_rolled_up_streams_in_the_holdout_window(built):
    workspace, _, _ = built
    rows = query(
        workspace,
        "select user_id, item_id, item_type, first_event_ts, n_streams from holdout_interactions",
    )
    assert sorted(rows) == [
        ("u1", "podA", "podcast", CUTOFF, 2),
        ("u2", "book2", "audiobook", HOLDOUT_END - D(seconds=1), 1),
    ]


def test_catalogs_have_every_item_and_user(built):
    workspace, _, _ = built
    items = {
        r[0]: r[1:]
        for r in query(
            workspace,
            "select item_id, item_type, parent_id, top_item_id, top_item_type, is_top_level, "
            "n_episodes, n_streams_before_cutoff from item_catalog",
        )
    }
    assert set(items) == set(TYPE_OF)
    assert items["epA1"][:5] == ("episode", "podA", "podA", "podcast", False)
    assert items["podA"][:6] == ("podcast", None, "podA", "podcast", True, 2)
    # podA's streams before the cutoff, its episodes' included: u1, u2 x2, u3, u5, u8, u10, uh x2
    assert items["podA"][6] == 9
    users = {
        r[0]: r[1:]
        for r in query(
            workspace, "select user_id, first_seen_ts, n_events_before_cutoff from user_catalog"
        )
    }
    assert set(users) == set(USERS)
    assert users["u_idle"] == (None, 0)
    # u1: epA1, book1, the preview; the hold-out streams are after the cutoff
    assert users["u1"] == (T0 - D(days=10), 3)


def test_a_broken_raw_file_raises_gfm_error(tmp_path):
    workspace = Workspace.at(tmp_path)
    write_raw(workspace)
    workspace.raw_path("interactions").write_bytes(b"this is not parquet")
    with pytest.raises(GfmError) as info:
        run_dbt(workspace, CONFIG, TIMELINE)
    message = str(info.value)
    assert "stg_interactions" in message
    assert "skipped" in message  # says what did not run


def test_a_locked_warehouse_names_the_lock(tmp_path):
    workspace = Workspace.at(tmp_path)
    write_raw(workspace)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); "
            "time.sleep(120)",
            str(workspace.warehouse_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(GfmError, match="Another process holds the DuckDB file"):
            run_dbt(workspace, CONFIG, TIMELINE)
    finally:
        holder.kill()
        holder.wait()


def _per_user_reference(n_items: int) -> dict[tuple[str, str], tuple[dt.datetime, int]]:
    """Hold-out of the per_user protocol computed naively: shift each user's events so that the
    first stream of their n-th most recent distinct top-level item is the cutoff, then keep the
    streams inside [cutoff, holdout_end), rolled up: {(user, top item): (first ts, streams)}."""
    first: dict[str, dict[str, dt.datetime]] = defaultdict(dict)
    for user, item, ts, event in INTERACTIONS:
        top = TOP_OF[item]
        if event == "stream" and (top not in first[user] or ts < first[user][top]):
            first[user][top] = ts
    offsets = {}
    for user, items in first.items():
        recent = sorted(items.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)[:n_items]
        offsets[user] = CUTOFF - min(ts for _, ts in recent)
    holdout: dict[tuple[str, str], tuple[dt.datetime, int]] = {}
    for user, item, ts, event in INTERACTIONS:
        shifted = ts + offsets.get(user, D(0))
        if event == "stream" and CUTOFF <= shifted < HOLDOUT_END:
            key = (user, TOP_OF[item])
            ts0, n = holdout.get(key, (shifted, 0))
            holdout[key] = (min(ts0, shifted), n + 1)
    return holdout


def _last_items_start(rows: list[tuple], n_items: int) -> dict[str, dt.datetime]:
    """Per user, the first stream of their n-th most recent distinct top-level item."""
    first: dict[str, dict[str, dt.datetime]] = defaultdict(dict)
    for user, item, ts, event in rows:
        top = TOP_OF[item]
        if event == "stream" and (top not in first[user] or ts < first[user][top]):
            first[user][top] = ts
    return {user: min(sorted(items.values(), reverse=True)[:n_items])
            for user, items in first.items()}


@pytest.mark.parametrize("n_items", [1, 2])
def test_per_user_validation_is_the_protocol_on_data_without_the_holdout(tmp_path, n_items):
    """gfm tune's validation copy (per_user_skip_items = N) equals the plain protocol run on
    raw data from which every user's last N items (the evaluation's hold-out) are deleted:
    tuning under per_user never reads the evaluation's hold-out."""
    timeline = dataclasses.replace(TIMELINE, protocol="per_user", per_user_holdout_items=n_items)
    skipped = Workspace.at(tmp_path / "skipped")
    write_raw(skipped)
    run_dbt(skipped, CONFIG, dataclasses.replace(timeline, per_user_skip_items=n_items))
    starts = _last_items_start(INTERACTIONS, n_items)
    without = [row for row in INTERACTIONS if row[0] not in starts or row[2] < starts[row[0]]]
    assert len(without) < len(INTERACTIONS)
    deleted = Workspace.at(tmp_path / "deleted")
    write_raw(deleted, without)
    run_dbt(deleted, CONFIG, timeline)
    sql = ("select user_id, item_id, event_ts, event_type, event_ts_raw "
           "from int_interactions_on_timeline order by all")
    assert query(skipped, sql) == query(deleted, sql)
    assert query(skipped, "select * from holdout_interactions order by all") == query(
        deleted, "select * from holdout_interactions order by all")
    # No event of an evaluation hold-out item, at its raw instant, is in the copy.
    assert not [row for row in query(skipped, sql) if row[4] >= starts.get(row[0], row[4] + D(1))]


@pytest.mark.parametrize("n_items", [1, 2])
def test_per_user_protocol_holds_out_each_users_last_items(tmp_path, n_items):
    workspace = Workspace.at(tmp_path)
    write_raw(workspace)
    timeline = dataclasses.replace(TIMELINE, protocol="per_user", per_user_holdout_items=n_items)
    run_dbt(workspace, CONFIG, timeline)
    rows = query(workspace, "select user_id, item_id, first_event_ts, n_streams "
                            "from holdout_interactions")
    expected = _per_user_reference(n_items)
    assert {(u, i): (ts, n) for u, i, ts, n in rows} == expected
    # Every user who streamed is in the hold-out with at least one item starting at the cutoff.
    streamers = {u for u, _, _, e in INTERACTIONS if e == "stream"}
    assert {u for u, _, ts, _ in rows if ts == CUTOFF} == streamers
    # One offset per user: order and spacing within a user are kept.
    offsets = query(workspace, "select user_id, count(distinct event_ts - event_ts_raw) "
                               "from int_interactions_on_timeline group by 1")
    assert all(n == 1 for _, n in offsets)
    # A held-out item (first streamed at the cutoff) has no stream before the cutoff.
    early = query(workspace, """
        select count(*) from int_interactions_on_timeline as s
        inner join int_items_rolled_up as i on s.item_id = i.item_id
        inner join holdout_interactions as h
            on h.user_id = s.user_id and h.item_id = i.top_item_id
        where h.first_event_ts = timestamp '2025-04-01 00:00:00'
            and s.event_type = 'stream' and s.event_ts < timestamp '2025-04-01 00:00:00'""")
    assert early == [(0,)]
