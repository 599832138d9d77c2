import hashlib

import duckdb
import pyarrow.parquet as pq
import pytest

from ingest.contract import validate
from ingest.synthetic import generate


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("gen")
    counts = generate("tiny", 11, out)
    return out, counts


def _digest(path):
    return hashlib.sha256(pq.read_table(path).to_pandas().to_csv().encode()).hexdigest()


def test_same_seed_same_data_other_seed_other_data(tiny, tmp_path):
    out, _ = tiny
    again = tmp_path / "again"
    other = tmp_path / "other"
    again.mkdir()
    other.mkdir()
    generate("tiny", 11, again)
    generate("tiny", 12, other)
    for name in ("items", "users", "interactions"):
        assert _digest(out / f"{name}.parquet") == _digest(again / f"{name}.parquet")
    assert _digest(out / "interactions.parquet") != _digest(other / "interactions.parquet")


def test_output_satisfies_the_contract(tiny):
    out, counts = tiny
    tables = {n: pq.read_table(out / f"{n}.parquet") for n in ("items", "users", "interactions")}
    validate(tables, {n: n for n in tables})
    assert counts["interactions"] == tables["interactions"].num_rows > 5_000


def test_world_has_the_properties_the_paper_needs(tiny):
    out, _ = tiny
    con = duckdb.connect()
    con.execute(f"create view i as select * from read_parquet('{out}/items.parquet')")
    con.execute(f"create view e as select * from read_parquet('{out}/interactions.parquet')")
    types = dict(con.execute("select item_type, count(*) from i group by 1").fetchall())
    assert set(types) == {"podcast", "episode", "audiobook"}
    # At least 120 days of timestamps.
    (span,) = con.execute("select date_diff('day', min(event_ts), max(event_ts)) from e").fetchall()[0]
    assert span >= 120
    # Weak signals exist beside streams.
    assert {r[0] for r in con.execute("select distinct event_type from e").fetchall()} == {
        "stream", "follow", "preview"}
    # Cross-type co-consumption: many users stream both podcasts and audiobooks.
    (both,) = con.execute("""
        select count(*) from (
          select e.user_id from e join i using (item_id) where e.event_type = 'stream'
          group by 1 having count(distinct case when i.item_type = 'audiobook' then 1 else 0 end) = 2)
    """).fetchall()[0]
    assert both > 50
    # Items released during the period (cold start), and nobody consumes before release.
    (new_items,) = con.execute(
        "select count(*) from i where item_type <> 'episode' and created_at >= '2025-03-01'"
    ).fetchall()[0]
    assert new_items > 0
    (early,) = con.execute(
        "select count(*) from e join i using (item_id) where e.event_ts < i.created_at"
    ).fetchall()[0]
    assert early == 0
    # Power-law popularity: the top 10% of top-level items take well over 10% of streams.
    (top_share,) = con.execute("""
        with s as (
          select coalesce(i.parent_id, i.item_id) as top, count(*) as n
          from e join i using (item_id) where e.event_type = 'stream' group by 1),
        r as (select n, row_number() over (order by n desc) as rk, count(*) over () as total from s)
        select sum(n) filter (where rk <= total / 10) / sum(n) from r
    """).fetchall()[0]
    assert top_share > 0.3
