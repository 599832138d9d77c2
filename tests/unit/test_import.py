"""`gfm import` refuses bad input by name and leaves the workspace as it was."""

import datetime as dt
import hashlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gfm.cli.main import main
from ingest.contract import arrow_schema

T0 = dt.datetime(2025, 1, 1)


def _good_tables():
    items = pa.table(
        {
            "item_id": ["s1", "e1", "b1"],
            "item_type": ["podcast", "episode", "audiobook"],
            "parent_id": [None, "s1", None],
            "title": ["Show", "Episode one", "Book"],
            "description": ["a show", None, "a book"],
            "language": ["en", "en", "en"],
            "genre": ["History", "History", "Fantasy"],
            "created_at": [T0, T0, T0],
        },
        schema=arrow_schema("items"),
    )
    users = pa.table(
        {"user_id": ["u1", "u2"], "country": ["SE", None], "age_bucket": ["25-34", None],
         "signup_at": [T0, T0]},
        schema=arrow_schema("users"),
    )
    interactions = pa.table(
        {
            "user_id": ["u1", "u1", "u2"],
            "item_id": ["e1", "b1", "s1"],
            "event_ts": [T0 + dt.timedelta(days=d) for d in (1, 2, 3)],
            "event_type": ["stream", "stream", "follow"],
            "played_ms": [60_000, 120_000, None],
        },
        schema=arrow_schema("interactions"),
    )
    return {"items": items, "users": users, "interactions": interactions}


def _write(tmp_path, tables):
    paths = {}
    for name, table in tables.items():
        paths[name] = tmp_path / f"in_{name}.parquet"
        pq.write_table(table, paths[name])
    return paths


def _import(workdir, paths, *extra):
    return main(["import", "parquet", "--workdir", str(workdir),
                 "--interactions", str(paths["interactions"]), "--items", str(paths["items"]),
                 "--users", str(paths["users"]), *extra])


def _tree_digest(root):
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def test_good_import_writes_raw_and_is_idempotent(tmp_path):
    paths = _write(tmp_path, _good_tables())
    ws = tmp_path / "ws"
    assert _import(ws, paths) == 0
    assert pq.read_table(ws / "raw" / "interactions.parquet").num_rows == 3
    before = _tree_digest(ws)
    assert _import(ws, paths) == 0  # the same input again: nothing to do, nothing changes
    assert _tree_digest(ws) == before


def _drop(name, column):
    def change(tables):
        tables[name] = tables[name].drop_columns([column])
    return change


def _set(name, column, values, type_=None):
    def change(tables):
        table = tables[name]
        array = pa.array(values, type=type_ or table.schema.field(column).type)
        tables[name] = table.set_column(table.column_names.index(column), column, array)
    return change


@pytest.mark.parametrize(
    "change, expected",
    [
        (_drop("items", "genre"), ["in_items.parquet", "'genre' is missing"]),
        (_set("interactions", "event_ts", ["2025-01-02"] * 3, pa.string()),
         ["in_interactions.parquet", "'event_ts' has type string"]),
        (_set("interactions", "event_ts",
              [dt.datetime(2025, 1, 2)] * 3, pa.timestamp("us", tz="UTC")),
         ["'event_ts'", "naive UTC"]),
        (_set("interactions", "item_id", ["e1", "nope", "s1"]),
         ["in_interactions.parquet", "'item_id'", "not found in items.item_id", "item_id='nope'"]),
        (_set("interactions", "user_id", ["u1", None, "u2"]),
         ["in_interactions.parquet", "'user_id' has 1 null", "row 1"]),
        (_set("items", "item_id", ["s1", "s1", "b1"]), ["'item_id' must be unique", "s1"]),
        (_set("items", "parent_id", [None, "zz", None]), ["'parent_id'", "not found", "zz"]),
        (_set("users", "user_id", ["u1", ""]), ["in_users.parquet", "'user_id' has 1 null or empty"]),
    ],
)
def test_bad_import_is_refused_by_name_and_changes_nothing(tmp_path, capsys, change, expected):
    ws = tmp_path / "ws"
    good = _write(tmp_path, _good_tables())
    assert _import(ws, good) == 0
    before = _tree_digest(ws)
    tables = _good_tables()
    change(tables)
    bad = _write(tmp_path, tables)
    # Even with --overwrite, validation comes first: nothing is written.
    assert _import(ws, bad, "--overwrite") == 2
    err = capsys.readouterr().err
    for fragment in expected:
        assert fragment in err
    assert _tree_digest(ws) == before


def test_validation_comes_before_the_workspace_guard(tmp_path, capsys):
    ws = tmp_path / "ws"
    assert main(["generate", "--workdir", str(ws), "--profile", "tiny", "--seed", "1"]) == 0
    tables = _good_tables()
    _drop("items", "title")(tables)
    assert _import(ws, _write(tmp_path, tables)) == 2
    err = capsys.readouterr().err
    assert "'title' is missing" in err  # the data problem, not "workspace not empty"


def test_other_data_needs_overwrite(tmp_path, capsys):
    ws = tmp_path / "ws"
    assert main(["generate", "--workdir", str(ws), "--profile", "tiny", "--seed", "1"]) == 0
    paths = _write(tmp_path, _good_tables())
    assert _import(ws, paths) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert _import(ws, paths, "--overwrite") == 0
    assert pq.read_table(ws / "raw" / "items.parquet").num_rows == 3


def test_missing_file_is_named(tmp_path, capsys):
    paths = _write(tmp_path, _good_tables())
    paths["users"] = tmp_path / "nowhere.parquet"
    assert _import(tmp_path / "ws", paths) == 2
    assert "nowhere.parquet: file not found" in capsys.readouterr().err
    assert not (tmp_path / "ws" / "raw").exists()


def test_movielens_mapping(tmp_path):
    ml = tmp_path / "ml"
    ml.mkdir()
    (ml / "movies.csv").write_text(
        "movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n2,Heat (1995),Crime|Thriller\n"
        "3,Sense (1995),Drama|Romance\n"
    )
    (ml / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,1,4.0,946684800\n1,2,2.0,946771200\n2,3,5.0,946857600\n"
    )
    (ml / "tags.csv").write_text("userId,movieId,tag,timestamp\n1,1,pixar,946684800\n")
    assert main(["import", "movielens", str(ml), "--workdir", str(tmp_path / "ws")]) == 0
    items = pq.read_table(tmp_path / "ws" / "raw" / "items.parquet").to_pylist()
    assert {i["item_id"]: i["item_type"] for i in items} == {"m1": "action", "m2": "action",
                                                              "m3": "drama"}
    assert "pixar" in items[0]["description"]
    events = pq.read_table(tmp_path / "ws" / "raw" / "interactions.parquet").to_pylist()
    assert [e["event_type"] for e in events] == ["stream", "preview", "stream"]
    assert events[0]["event_ts"] == dt.datetime(2000, 1, 1)


# -- gfm import parquet --append ---------------------------------------------------------------
# The base data's events fall on 2025-01-02..04; the workspace's cutoff is pinned at 01-03.
CUTOFF = "2025-01-03"


def _new_day(**changes):
    """A day after the cutoff: a new audiobook, a new user, three events (one on an old item)."""
    day = dt.datetime(2025, 1, 5)
    tables = {
        "items": pa.table({"item_id": ["b2"], "item_type": ["audiobook"], "parent_id": [None],
                           "title": ["New book"], "description": ["a new book"],
                           "language": ["en"], "genre": ["Fantasy"], "created_at": [day]},
                          schema=arrow_schema("items")),
        "users": pa.table({"user_id": ["u3"], "country": ["NO"], "age_bucket": ["18-24"],
                           "signup_at": [day]}, schema=arrow_schema("users")),
        "interactions": pa.table(
            {"user_id": ["u3", "u1", "u2"], "item_id": ["b2", "b2", "b1"],
             "event_ts": [day + dt.timedelta(hours=h) for h in (1, 2, 3)],
             "event_type": ["stream"] * 3, "played_ms": [60_000] * 3},
            schema=arrow_schema("interactions")),
    }
    for name, change in changes.items():
        tables[name] = change(tables[name])
    return tables


def _append(workdir, directory, tables, *extra):
    directory.mkdir(exist_ok=True)
    paths = _write(directory, tables)
    argv = ["import", "parquet", "--append", "--workdir", str(workdir), "--cutoff", CUTOFF,
            "--interactions", str(paths["interactions"])]
    for name in ("items", "users"):
        if name in paths:
            argv += [f"--{name}", str(paths[name])]
    return main([*argv, *extra])


def _imported(tmp_path):
    ws = tmp_path / "ws"
    assert _import(ws, _write(tmp_path, _good_tables())) == 0
    return ws


def test_append_adds_new_days_once(tmp_path, capsys):
    ws = _imported(tmp_path)
    assert _append(ws, tmp_path / "day5", _new_day()) == 0
    assert "1 items, 1 users, 3 interactions" in capsys.readouterr().out
    events = pq.read_table(ws / "raw" / "interactions.parquet")
    assert events.num_rows == 6
    assert "b2" in pq.read_table(ws / "raw" / "items.parquet").column("item_id").to_pylist()
    after = _tree_digest(ws)
    assert _append(ws, tmp_path / "day5", _new_day()) == 0  # the same file: nothing to do
    assert _tree_digest(ws) == after
    assert "0 interactions" in capsys.readouterr().out
    # The same rows from another file (a re-export, in another order) add nothing either.
    again = _new_day(interactions=lambda t: t.take([2, 1, 0]))
    assert _append(ws, tmp_path / "again", again) == 0
    assert "0 items, 0 users, 0 interactions" in capsys.readouterr().out
    assert _tree_digest(ws) == after
    # Only new events may reference items and users raw/ already holds.
    later = _new_day(items=lambda t: t.slice(0, 0), users=lambda t: t.slice(0, 0))
    later["interactions"] = later["interactions"].set_column(
        2, "event_ts", pa.array([dt.datetime(2025, 1, 6)] * 3, pa.timestamp("us")))
    del later["items"], later["users"]
    assert _append(ws, tmp_path / "day6", later) == 0
    assert pq.read_table(ws / "raw" / "interactions.parquet").num_rows == 9


def _early(column, when=dt.datetime(2025, 1, 2, 12)):
    def change(table):
        return table.set_column(table.column_names.index(column), column,
                                pa.array([when] * table.num_rows, pa.timestamp("us")))
    return change


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"interactions": _early("event_ts")},
         ["3 event(s) before the workspace's cutoff 2025-01-03", "--overwrite"]),
        ({"items": _early("created_at")}, ["1 new item(s) released before", "2025-01-03"]),
        ({"users": _early("signup_at")}, ["1 new user(s) signed up before"]),
        # A changed title of an item raw/ holds: the past rewritten.
        ({"items": lambda t: pa.concat_tables([t, pa.table(
            {"item_id": ["b1"], "item_type": ["audiobook"], "parent_id": [None],
             "title": ["Renamed"], "description": ["a book"], "language": ["en"],
             "genre": ["Fantasy"], "created_at": [T0]}, schema=arrow_schema("items"))])},
         ["1 row(s) change a item_id raw/ already holds ('b1')"]),
        # The contract holds for the whole: an event of an item in neither file nor raw/.
        ({"items": lambda t: t.slice(0, 0)}, ["'item_id'", "not found in items.item_id", "b2"]),
    ],
)
def test_append_that_rewrites_the_past_or_breaks_the_contract_changes_nothing(
        tmp_path, capsys, changes, expected):
    ws = _imported(tmp_path)
    before = _tree_digest(ws)
    assert _append(ws, tmp_path / "bad", _new_day(**changes)) == 2
    err = capsys.readouterr().err
    for fragment in expected:
        assert fragment in err
    assert _tree_digest(ws) == before


def test_append_needs_data_and_refuses_events_sent_twice_among_new_ones(tmp_path, capsys):
    assert _append(tmp_path / "empty", tmp_path / "day5", _new_day()) == 2
    assert "import the data once without --append" in capsys.readouterr().err
    ws = _imported(tmp_path)
    assert _append(ws, tmp_path / "day5", _new_day()) == 0
    before = _tree_digest(ws)
    twice = _new_day()
    del twice["items"], twice["users"]
    twice["interactions"] = pa.concat_tables([twice["interactions"], pa.table(
        {"user_id": ["u1"], "item_id": ["b1"], "event_ts": [dt.datetime(2025, 1, 7)],
         "event_type": ["stream"], "played_ms": [1]}, schema=arrow_schema("interactions"))])
    assert _append(ws, tmp_path / "twice", twice) == 2
    assert "3 event(s) are already in raw/" in capsys.readouterr().err
    assert _tree_digest(ws) == before
