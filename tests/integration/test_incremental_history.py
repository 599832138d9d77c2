"""user_history is a dbt incremental model: a transform whose cutoff moves on appends the new
days' snapshots, and the window then equals a build from scratch row for row. Whatever could
make the kept snapshots wrong (a rewritten past, other settings or dbt code, a cutoff moved
back) builds from scratch instead."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from gfm.cli.main import main
from transforms.warehouse import HISTORY_STATE

pytestmark = pytest.mark.integration

COLUMNS = "user_id, snapshot_ts, item_type, item_ids, n_items, last_event_ts"


def _copy_raw(tiny_raw_workspace: Path, root: Path) -> Path:
    shutil.copytree(tiny_raw_workspace / "raw", root / "raw")
    return root


def _transform(workdir: Path, cutoff: dt.date, *sets: str) -> dict:
    flags = [f"--set=timeline.cutoff={cutoff}", "--set=warehouse.history_at_events=true"]
    assert main(["transform", "--workdir", str(workdir), *flags,
                 *(f"--set={s}" for s in sets)]) == 0
    return json.loads((workdir / "dbt" / HISTORY_STATE).read_text())


def _history(workdir: Path, since: dt.datetime | None = None) -> list[tuple]:
    con = duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True)
    try:
        where = "where snapshot_ts >= ?" if since else ""
        return con.execute(f"select {COLUMNS} from user_history {where} order by all",
                           [since] if since else []).fetchall()
    finally:
        con.close()


def _last_cutoff(tiny_raw_workspace: Path) -> dt.date:
    """The default cutoff: the last event's day less the 14-day hold-out."""
    events = pq.read_table(tiny_raw_workspace / "raw" / "interactions.parquet",
                           columns=["event_ts"])
    last = pc.max(events["event_ts"]).as_py()
    return last.date() - dt.timedelta(days=14)


def test_moving_the_cutoff_appends_days_equal_to_a_build_from_scratch(tiny_raw_workspace,
                                                                        tmp_path):
    cutoff = _last_cutoff(tiny_raw_workspace)
    daily = _copy_raw(tiny_raw_workspace, tmp_path / "daily")
    first = _transform(daily, cutoff - dt.timedelta(days=3))
    assert first["incremental"] is False
    before = _history(daily)
    state = _transform(daily, cutoff)
    assert state["incremental"] is True and state["build_id"] == first["build_id"]

    scratch = _copy_raw(tiny_raw_workspace, tmp_path / "scratch")
    assert _transform(scratch, cutoff)["incremental"] is False
    expected = _history(scratch)
    window_start = min(row[1] for row in expected)
    assert len(expected) > 1000
    assert _history(daily, window_start) == expected
    # the older days are kept as they were; three new days of snapshots came after them
    kept = [row for row in _history(daily) if row[1] < window_start]
    assert kept == [row for row in before if row[1] < window_start]
    new_days = {row[1].date() for row in expected if row[1] == row[1].replace(
        hour=0, minute=0, second=0, microsecond=0)} - {row[1].date() for row in before}
    assert len(new_days) == 3


def test_a_rewritten_past_other_settings_other_code_or_an_earlier_cutoff_build_from_scratch(
        tiny_raw_workspace, tmp_path, monkeypatch):
    cutoff = _last_cutoff(tiny_raw_workspace)
    workdir = _copy_raw(tiny_raw_workspace, tmp_path / "ws")
    built = _transform(workdir, cutoff - dt.timedelta(days=2))
    # the same cutoff again: nothing to append, still the same build
    assert _transform(workdir, cutoff - dt.timedelta(days=2))["build_id"] == built["build_id"]

    # the cutoff moved back: a snapshot after it would leak the future
    back = _transform(workdir, cutoff - dt.timedelta(days=4))
    assert back["incremental"] is False and back["build_id"] != built["build_id"]
    latest = max(row[1] for row in _history(workdir))
    assert latest == dt.datetime.combine(cutoff - dt.timedelta(days=4), dt.time())

    # another history window
    other = _transform(workdir, cutoff - dt.timedelta(days=3), "timeline.history_days=60")
    assert other["incremental"] is False

    # other SQL in the models user_history is built from (a new release of the project)
    import transforms.warehouse

    monkeypatch.setattr(transforms.warehouse, "dbt_code_digest", lambda *parts: "changed")
    assert _transform(workdir, cutoff - dt.timedelta(days=3),
                      "timeline.history_days=60")["incremental"] is False
    monkeypatch.undo()
    assert _transform(workdir, cutoff - dt.timedelta(days=3),
                      "timeline.history_days=60")["incremental"] is False
    assert _transform(workdir, cutoff - dt.timedelta(days=2),
                      "timeline.history_days=60")["incremental"] is True

    # one event before the last cutoff dropped from raw/: the kept snapshots would be wrong
    path = workdir / "raw" / "interactions.parquet"
    events = pq.read_table(path)
    early = pc.less(events["event_ts"], pa.scalar(
        dt.datetime.combine(cutoff - dt.timedelta(days=30), dt.time()), events["event_ts"].type))
    first_early = pc.index(early, True).as_py()
    pq.write_table(pa.concat_tables([events.slice(0, first_early),
                                     events.slice(first_early + 1)]), path)
    rewritten = _transform(workdir, cutoff - dt.timedelta(days=1), "timeline.history_days=60")
    assert rewritten["incremental"] is False
