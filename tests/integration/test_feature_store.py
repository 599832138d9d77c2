"""The feature store end to end on the tiny workspace: gfm features apply/materialize, online
reads on SQLite and on Redis, point-in-time training sets, and versions side by side."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from gfm.cli.main import main
from gfm.config import load_config
from gfm.timeline import resolve_timeline
from gfm.workspace import Workspace

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
VERSIONED = ("item_text_embedding_v1", "item_hgnn_embedding_v1", "user_avg_hgnn_v1")


@pytest.fixture(scope="module")
def built(tiny_raw_workspace, tmp_path_factory) -> Path:
    """The tiny workspace through transform, embed and a 1-epoch HGNN (no feature store yet)."""
    workdir = tmp_path_factory.mktemp("features") / "built"
    shutil.copytree(tiny_raw_workspace, workdir)
    # Snapshots and examples from graph_as_of only: these tests check the label window's
    # point-in-time rules (earlier days: test_warehouse_rules and the examples test below).
    (workdir / "gfm.yaml").write_text("timeline:\n  early_label_days: 0\n")
    for command in (["transform"], ["embed"], ["train", "hgnn", "--set", "hgnn.max_epochs=1"]):
        assert main([*command, "--workdir", str(workdir)]) == 0, command
    return workdir


class Store:
    def __init__(self, workdir: Path):
        self.workspace = Workspace.at(workdir)
        self.config = load_config(self.workspace.root)
        self.timeline = resolve_timeline(self.config.timeline, self.workspace)

    def open(self):
        from feature_store import open_store

        return open_store(self.workspace)

    def view_file(self, view: str) -> pd.DataFrame:
        """The parquet file a versioned view reads, as the rendered repository says."""
        from feature_store.repo import load_spec

        spec = load_spec(self.workspace)
        entries = [e for kind in ("item_text_embedding", "item_hgnn_embedding",
                                  "user_avg_hgnn") for e in spec[kind]]
        return pd.read_parquet(next(e["path"] for e in entries if e["name"] == view))


def _deploy(built: Path, directory: Path, redis: str | None = None) -> Store:
    workdir = directory / "ws"
    shutil.copytree(built, workdir)
    if redis:
        with (workdir / "gfm.yaml").open("a") as config:
            config.write(f"features:\n  online_store: redis\n"
                         f"  redis_connection_string: \"{redis}\"\n")
    assert main(["features", "apply", "--workdir", str(workdir)]) == 0
    assert main(["features", "materialize", "--workdir", str(workdir)]) == 0
    return Store(workdir)


@pytest.fixture(scope="module")
def sqlite_store(built, tmp_path_factory) -> Store:
    return _deploy(built, tmp_path_factory.mktemp("sqlite"))


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def online_store(request, built, tmp_path_factory) -> Store:
    if request.param == "sqlite":
        store = request.getfixturevalue("sqlite_store")
    else:
        store = _deploy(built, tmp_path_factory.mktemp("redis"),
                        request.getfixturevalue("redis_server"))
    assert store.open().config.online_store.type == request.param
    return store


def _user_avg(store: Store) -> pd.DataFrame:
    return store.view_file("user_avg_hgnn_v1")


# ---------------------------------------------------------------------------------------------
# apply: repository, views, services


def test_plain_feast_cli_lists_the_versioned_views(sqlite_store, tmp_path):
    """`feast -c $(gfm features path) feature-views list` with no environment variables."""
    env = {"PATH": "/usr/bin:/bin"}
    path = subprocess.run([str(BIN / "gfm"), "features", "path", "--workdir",
                           str(sqlite_store.workspace.root)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=True).stdout.splitlines()[-1]
    assert Path(path) == sqlite_store.workspace.root / "feature_repo"
    listed = subprocess.run([str(BIN / "feast"), "-c", path, "feature-views", "list"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout
    names = {line.split()[0] for line in listed.splitlines()[1:] if line.strip()}
    assert set(VERSIONED) <= names
    assert {"item_metadata", "user_metadata", "user_history"} <= names


def test_views_and_service_carry_lineage_tags(sqlite_store):
    store = sqlite_store.open()
    hgnn = store.get_feature_view("item_hgnn_embedding_v1")
    text = store.get_feature_view("item_text_embedding_v1")
    user = store.get_feature_view("user_avg_hgnn_v1")
    assert hgnn.tags["version"].startswith("hgnn_")
    assert hgnn.tags["hgnn_checkpoint"].endswith("checkpoint.pt")
    assert hgnn.tags["text_version"] == text.tags["version"]
    assert text.tags["text_model"].startswith("sentence-transformers/all-MiniLM-L6-v2@")
    assert user.tags["hgnn_version"] == hgnn.tags["version"]
    for view in (hgnn, text, user):
        assert view.tags["cutoff"] == f"{sqlite_store.timeline.cutoff:%Y-%m-%d %H:%M:%S}"
        assert len(view.tags["dbt_manifest_hash"]) == 12
    service = store.get_feature_service("two_tower_features_v1")
    pinned = {p.name for p in service.feature_view_projections}
    assert pinned == {*VERSIONED, "item_metadata", "user_metadata", "item_popularity_daily"}
    assert service.tags["hgnn_version"] == hgnn.tags["version"]


def test_user_averages_are_the_mean_of_the_history(sqlite_store):
    """avg_hgnn_<type> = mean of that type's history items' HGNN vectors; zeros and 0 when
    the user has none of a type; avg_hgnn_all over the whole history."""
    s = sqlite_store
    averages = _user_avg(s)
    vectors = s.view_file("item_hgnn_embedding_v1")
    by_item = dict(zip(vectors["item_id"], vectors["embedding"]))
    con = duckdb.connect(str(s.workspace.warehouse_path), read_only=True)
    try:
        history = con.execute("select user_id, snapshot_ts, item_type, item_ids "
                              "from user_history").df()
    finally:
        con.close()
    assert len(averages) == history.groupby(["user_id", "snapshot_ts"]).ngroups
    types = sorted(history["item_type"].unique())
    sample = averages.sample(40, random_state=0)
    checked_zero = False
    for row in sample.itertuples():
        rows = history[(history.user_id == row.user_id) & (history.snapshot_ts == row.event_timestamp)]
        all_items = [i for ids in rows.item_ids for i in ids]
        np.testing.assert_allclose(row.avg_hgnn_all, np.mean([by_item[i] for i in all_items], 0),
                                   rtol=1e-4, atol=1e-6)
        assert row.n_items_all == len(all_items)
        for t in types:
            items = [i for ids in rows[rows.item_type == t].item_ids for i in ids]
            got = np.asarray(getattr(row, f"avg_hgnn_{t}"))
            assert getattr(row, f"n_items_{t}") == len(items)
            if items:
                np.testing.assert_allclose(got, np.mean([by_item[i] for i in items], 0),
                                           rtol=1e-4, atol=1e-6)
            else:
                assert got.shape == (128,) and not got.any()
                checked_zero = True
    assert checked_zero or (averages[[f"n_items_{t}" for t in types]] > 0).all().all()


# ---------------------------------------------------------------------------------------------
# online: the same tests on SQLite and on Redis


def test_online_store_holds_the_cutoff_snapshot(online_store):
    s = online_store
    store = s.open()
    averages = _user_avg(s)
    at_cutoff = averages[averages.event_timestamp == pd.Timestamp(s.timeline.cutoff)]
    users = sorted(at_cutoff.user_id)[:25]
    all_users = set(pd.read_parquet(s.workspace.features_dir / "user_metadata.parquet").user_id)
    silent = sorted(all_users - set(at_cutoff.user_id))[:3]  # no history in the last 90 days
    assert users
    response = store.get_online_features(
        features=["user_avg_hgnn_v1:avg_hgnn_all", "user_avg_hgnn_v1:n_items_all",
                  "user_metadata:country"],
        entity_rows=[{"user_id": u} for u in users + silent],
    ).to_dict()
    expected = at_cutoff.set_index("user_id")
    for i, user in enumerate(users):
        np.testing.assert_allclose(response["avg_hgnn_all"][i], expected.loc[user, "avg_hgnn_all"],
                                   rtol=1e-6)
        assert response["n_items_all"][i] == expected.loc[user, "n_items_all"]
        assert response["country"][i] is not None
    for i in range(len(users), len(users) + len(silent)):
        assert response["avg_hgnn_all"][i] is None
    # a user with history also has its item lists online, and every item its vectors
    history = store.get_online_features(
        features=[f"user_history:item_ids_{t}" for t in ("audiobook", "podcast")],
        entity_rows=[{"user_id": users[0]}]).to_dict()
    assert history["item_ids_audiobook"][0] or history["item_ids_podcast"][0]
    hgnn = s.view_file("item_hgnn_embedding_v1")
    items = hgnn.item_id.tolist()[:10]
    vectors = store.get_online_features(
        features=["item_hgnn_embedding_v1:hgnn_embedding", "item_text_embedding_v1:text_embedding"],
        entity_rows=[{"item_id": i} for i in items]).to_dict()
    for i in range(len(items)):
        np.testing.assert_allclose(vectors["hgnn_embedding"][i], hgnn.embedding[i], rtol=1e-6)
        assert len(vectors["text_embedding"][i]) == 384


# ---------------------------------------------------------------------------------------------
# training sets: point in time


def test_training_examples_are_rolled_up_streams_of_the_label_window(sqlite_store):
    from feature_store.training_set import build_training_examples

    s = sqlite_store
    examples = build_training_examples(s.workspace, s.timeline)
    assert list(examples.columns) == ["user_id", "item_id", "event_timestamp", "label"]
    assert len(examples) > 100 and (examples.label == 1).all()
    assert examples.event_timestamp.min() >= pd.Timestamp(s.timeline.graph_as_of)
    assert examples.event_timestamp.max() < pd.Timestamp(s.timeline.cutoff)
    top_level = set(pd.read_parquet(s.workspace.features_dir / "item_metadata.parquet")
                    .query("is_top_level").item_id)
    assert set(examples.item_id) <= top_level
    assert examples.event_timestamp.is_monotonic_increasing
    # timeline.early_label_days: the same streams, from that many days before graph_as_of
    early = dataclasses.replace(s.timeline, early_label_days=7)
    more = build_training_examples(s.workspace, early)
    assert more.event_timestamp.min() >= pd.Timestamp(early.examples_start)
    assert (more.event_timestamp < pd.Timestamp(s.timeline.graph_as_of)).any()
    later = more[more.event_timestamp >= pd.Timestamp(s.timeline.graph_as_of)]
    assert later.reset_index(drop=True).equals(examples)


def test_point_in_time_join_never_uses_a_later_row(sqlite_store):
    from feature_store.training_set import build_training_examples, get_training_frame

    s = sqlite_store
    examples = build_training_examples(s.workspace, s.timeline, max_examples=300, seed=1)
    user, item = examples.user_id[0], examples.item_id[0]
    graph_as_of = pd.Timestamp(s.timeline.graph_as_of)
    probes = pd.DataFrame({
        "user_id": user, "item_id": item, "label": 1,
        "event_timestamp": [pd.Timestamp("1971-01-01"), graph_as_of - pd.Timedelta("1s")],
    })
    frame = get_training_frame(s.workspace, "two_tower_features_v1",
                               pd.concat([examples, probes], ignore_index=True))
    assert len(frame) == len(examples) + 2
    assert (frame.user_id.to_numpy() == np.r_[examples.user_id, probes.user_id]).all()
    assert (frame.item_id.to_numpy() == np.r_[examples.item_id, probes.item_id]).all()

    # the user snapshot joined is the one of the example's day: stamped at or before it, and
    # the latest such (a snapshot stamped after the example is never used)
    averages = _user_avg(s).set_index(["user_id", "event_timestamp"])
    joined = frame.iloc[: len(examples)]
    for row in joined.itertuples():
        day = pd.Timestamp(row.event_timestamp).floor("D")
        key = (row.user_id, day)
        if key in averages.index:
            assert row.n_items_all == averages.loc[key, "n_items_all"]
            np.testing.assert_allclose(row.avg_hgnn_all, averages.loc[key, "avg_hgnn_all"])
        else:
            assert row.avg_hgnn_all is None  # no history before that midnight: null, not stale
    assert joined.hgnn_embedding.notna().all()  # stamped graph_as_of <= every example

    # 1971: nothing exists yet; one second before graph_as_of: no HGNN vector nor snapshot yet
    ancient, before = frame.iloc[-2], frame.iloc[-1]
    feature_columns = [c for c in frame.columns if c not in probes.columns]
    assert all(ancient[c] is None or pd.isna(ancient[c]) for c in feature_columns)
    assert before.hgnn_embedding is None and before.avg_hgnn_all is None
    assert before.text_embedding is not None  # valid from the item's release

    # one call per entity (over the service's features) gives the same values
    split = get_training_frame(s.workspace, "two_tower_features_v1", examples,
                               split_by_entity=True)
    for column in ("avg_hgnn_all", "hgnn_embedding", "text_embedding"):
        for a, b in zip(split[column], joined[column]):
            assert (a is None and b is None) or np.allclose(a, b)


def test_training_set_file_is_the_frame_training_reads(sqlite_store, tmp_path, capsys):
    """`gfm features training-set` writes training_frame's rows and features to Parquet, a
    --start/--end window narrows it, and a window past the cutoff or an existing file is
    refused with nothing written."""
    from feature_store.core import service_spec
    from training.two_tower.export import read_description
    from training.two_tower.train import training_frame

    s = sqlite_store
    command = ["features", "training-set", "--workdir", str(s.workspace.root)]
    out = tmp_path / "train.parquet"
    assert main([*command, "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip().endswith(str(out))
    written = pd.read_parquet(out)
    types = service_spec(s.workspace, "two_tower_features_v1")["item_types"]
    expected = training_frame(s.workspace, s.timeline, "two_tower_features_v1", types,
                              s.config.two_tower)
    assert len(written) == len(expected) > 100
    assert set(expected.columns) | {"example_kind"} == set(written.columns)
    # history_set_examples is on by default: the leave-one-out rows at the cutoff, told apart
    assert set(written.example_kind) == {"stream", "history_set"}
    history_set = written[written.example_kind == "history_set"]
    assert (pd.to_datetime(history_set.event_timestamp) == s.timeline.cutoff).all()
    for column in ("user_id", "item_id", "label", "item_type"):
        assert (written[column].to_numpy() == expected[column].to_numpy()).all(), column
    assert (pd.to_datetime(written.event_timestamp).to_numpy()
            == pd.to_datetime(expected.event_timestamp).to_numpy()).all()
    for column in ("avg_hgnn_all", "hgnn_embedding", "text_embedding", f"item_ids_{types[0]}"):
        for a, b in zip(written[column], expected[column]):
            assert (a is None and b is None) or np.array_equal(np.asarray(a), np.asarray(b))
    description = read_description(out)
    assert description["feature_service"] == "two_tower_features_v1"
    assert description["rows"] == len(written)
    assert description["cutoff"] == s.timeline.cutoff.isoformat()

    start = s.timeline.graph_as_of + dt.timedelta(days=2)
    end = s.timeline.cutoff - dt.timedelta(days=3)
    narrow = tmp_path / "narrow.parquet"
    assert main([*command, "--out", str(narrow), "--start", f"{start:%Y-%m-%d}",
                 "--end", f"{end:%Y-%m-%d}"]) == 0
    stamps = pd.to_datetime(written.event_timestamp)
    inside = written[(stamps >= start) & (stamps < end)].reset_index(drop=True)
    got = pd.read_parquet(narrow)
    assert 0 < len(got) == len(inside) < len(written)
    assert (got[["user_id", "item_id"]].to_numpy() == inside[["user_id", "item_id"]].to_numpy()
            ).all()

    # with history_set_examples off, the last day's streams alone
    last_day = tmp_path / "last_day.parquet"
    assert main([*command, "--out", str(last_day), "--set", "two_tower.history_set_examples=false",
                 "--start", f"{s.timeline.cutoff - dt.timedelta(days=1):%Y-%m-%d}"]) == 0
    got = pd.read_parquet(last_day)
    assert len(got) > 0 and (got.example_kind == "stream").all()
    last_day_streams = written[(written.example_kind == "stream") & (
        pd.to_datetime(written.event_timestamp) >= s.timeline.cutoff - dt.timedelta(days=1))]
    assert len(got) == len(last_day_streams)

    capsys.readouterr()
    holdout = tmp_path / "holdout.parquet"
    after = s.timeline.cutoff + dt.timedelta(days=1)
    assert main([*command, "--out", str(holdout), "--end", f"{after:%Y-%m-%d}"]) == 2
    assert "hold-out" in capsys.readouterr().err
    assert not holdout.exists() and not list(tmp_path.glob(".*partial"))
    before = out.read_bytes()
    assert main([*command, "--out", str(out)]) == 2
    assert "--force" in capsys.readouterr().err and out.read_bytes() == before


def test_history_at_events_gives_each_example_its_history_before_its_instant(built, tmp_path,
                                                                            capsys):
    """warehouse.history_at_events end to end: the user averages are rebuilt from the new
    snapshots, and each example's history lists are every item of the user's window before
    its own instant, that day's earlier ones included."""
    from feature_store.training_set import build_training_examples, two_tower_frame
    from transforms.warehouse import warehouse_query

    s = _deploy(built, tmp_path)
    workdir = str(s.workspace.root)
    with (s.workspace.root / "gfm.yaml").open("a") as config:
        config.write("warehouse:\n  history_at_events: true\n")
    assert main(["transform", "--workdir", workdir]) == 0
    capsys.readouterr()
    assert main(["features", "apply", "--workdir", workdir]) == 0
    assert "user_avg_hgnn_v1" in capsys.readouterr().out  # rebuilt: other snapshots
    s = Store(s.workspace.root)
    examples = build_training_examples(s.workspace, s.timeline)
    events = warehouse_query(
        s.workspace, "select user_id, top_item_id, top_item_type, event_ts "
                     "from int_interactions_rolled_up "
                     "where event_type in ('stream', 'follow', 'preview')")
    by_user: dict[str, list] = {}
    for user, item, item_type, ts in events:
        by_user.setdefault(user, []).append((item, item_type, pd.Timestamp(ts)))
    types = sorted({t for _, _, t, _ in events})
    frame = two_tower_frame(s.workspace, "two_tower_features_v1", examples, types)
    same_day = 0
    for row in frame.itertuples():
        instant = pd.Timestamp(row.event_timestamp)
        window_start = instant.floor("D") - pd.Timedelta(days=s.timeline.history_days)
        seen = [(i, t, ts) for i, t, ts in by_user.get(row.user_id, [])
                if window_start <= ts < instant]
        same_day += any(ts >= instant.floor("D") for _, _, ts in seen)
        for item_type in types:
            got = getattr(row, f"item_ids_{item_type}")
            got = set() if got is None else set(got)
            assert got == {i for i, t, _ in seen if t == item_type}, (row, item_type)
    assert same_day > 0  # some examples do see that day's earlier events


# ---------------------------------------------------------------------------------------------
# versions


def test_two_hgnn_versions_coexist_and_one_can_be_retired(sqlite_store, capsys):
    from feature_store.training_set import build_training_examples, get_training_frame

    s = sqlite_store
    workdir = str(s.workspace.root)
    assert main(["train", "hgnn", "--workdir", workdir,
                 "--set", "hgnn.max_epochs=1", "--set", "hgnn.seed=7"]) == 0
    assert main(["features", "apply", "--workdir", workdir]) == 0
    out = capsys.readouterr().out
    assert "item_hgnn_embedding_v2" in out and "two_tower_features_v2" in out

    store = s.open()
    views = {v.name for v in store.list_feature_views()}
    assert {"item_hgnn_embedding_v1", "item_hgnn_embedding_v2",
            "user_avg_hgnn_v1", "user_avg_hgnn_v2"} <= views
    assert {"two_tower_features_v1", "two_tower_features_v2"} <= {
        f.name for f in store.list_feature_services()}
    assert "item_text_embedding_v2" not in views  # same text: one text view serves both

    examples = build_training_examples(s.workspace, s.timeline, max_examples=50)
    one = get_training_frame(s.workspace, "two_tower_features_v1", examples)
    two = get_training_frame(s.workspace, "two_tower_features_v2", examples)
    v2 = s.view_file("item_hgnn_embedding_v2").set_index("item_id").embedding
    v2_file = Path(store.get_data_source("item_hgnn_embedding_v2_source").path)
    item = examples.item_id[0]
    np.testing.assert_allclose(two.hgnn_embedding[0], v2[item], rtol=1e-6)
    assert not np.allclose(one.hgnn_embedding[0], two.hgnn_embedding[0])

    assert main(["features", "versions", "--workdir", workdir]) == 0
    listing = capsys.readouterr().out
    assert "item_hgnn_embedding_v2" in listing and "graph_as_of=" in listing

    # a pinned view is refused; --cascade retires its services too; v1 is untouched
    assert main(["features", "retire", "item_hgnn_embedding_v2", "--workdir", workdir]) == 2
    assert "two_tower_features_v2" in capsys.readouterr().err
    assert main(["features", "retire", "item_hgnn_embedding_v2", "--cascade",
                 "--workdir", workdir]) == 0
    store = s.open()
    views = {v.name for v in store.list_feature_views()}
    assert "item_hgnn_embedding_v2" not in views and "item_hgnn_embedding_v1" in views
    services = {f.name for f in store.list_feature_services()}
    assert "two_tower_features_v2" not in services and "two_tower_features_v1" in services
    # retired stays retired on the next apply; the file is kept
    assert main(["features", "apply", "--workdir", workdir]) == 0
    assert "item_hgnn_embedding_v2" not in {v.name for v in s.open().list_feature_views()}
    assert v2_file.exists()


def test_items_released_after_the_cutoff_are_read_as_of_their_release(sqlite_store):
    """Evaluation reads an item as of max(cutoff, created_at): an item released in the hold-out
    gets its text and metadata (valid from its release) and its inductive HGNN vector (stamped
    graph_as_of, from text alone), as serving would once it is released."""
    from evaluation.split import release_instants
    from feature_store.training_set import entity_features

    s = sqlite_store
    cutoff = s.timeline.cutoff
    con = duckdb.connect(str(s.workspace.warehouse_path), read_only=True)
    try:
        rows = con.execute(
            "select item_id, created_at from item_catalog where is_top_level "
            "and created_at >= ? and created_at < ? order by item_id",
            [cutoff, s.timeline.holdout_end]).fetchall()
        (old,) = con.execute("select item_id from item_catalog where created_at < ? "
                             "order by item_id limit 1", [s.timeline.graph_as_of]).fetchall()[0]
    finally:
        con.close()
    assert rows, "the tiny workspace should release items during the hold-out"
    new = [item for item, _ in rows]
    instants = release_instants(s.workspace, [*new, old, "no_such_item"], cutoff)
    assert instants[:-2] == [created for _, created in rows]
    assert instants[-2:] == [cutoff, cutoff]

    at_cutoff = entity_features(s.workspace, "two_tower_features_v1", "item_id", new, cutoff)
    released = entity_features(s.workspace, "two_tower_features_v1", "item_id", new,
                               instants[:-2])
    assert at_cutoff.text_embedding.isna().all()  # not released yet at the cutoff
    text = s.view_file("item_text_embedding_v1").set_index("item_id")
    hgnn = s.view_file("item_hgnn_embedding_v1").set_index("item_id")
    for row in released.itertuples():
        np.testing.assert_allclose(row.text_embedding, text.loc[row.item_id, "embedding"])
        np.testing.assert_allclose(row.hgnn_embedding, hgnn.loc[row.item_id, "embedding"])
        assert row.genre is not None and not pd.isna(row.genre)
    # the HGNN run wrote a vector for every catalogue item, released after graph_as_of or not
    con = duckdb.connect(str(s.workspace.warehouse_path), read_only=True)
    try:
        (n_items,) = con.execute("select count(*) from item_catalog").fetchall()[0]
    finally:
        con.close()
    assert len(hgnn) == n_items
    assert (pd.to_datetime(hgnn.event_timestamp) == pd.Timestamp(s.timeline.graph_as_of)).all()


def test_item_popularity_snapshots_count_daily_listeners_before_each_midnight(sqlite_store):
    """item_popularity_daily, recomputed here from the raw streams for every item and snapshot
    day, and read back point-in-time as the two-tower's recent prior reads it."""
    from feature_store.training_set import item_popularity_snapshots
    from training.two_tower.data import POPULARITY_FEATURES
    from transforms.warehouse import warehouse_query

    s = sqlite_store
    days = s.timeline.snapshot_days()
    items = warehouse_query(s.workspace, "select item_id, created_at from item_catalog "
                                         "where is_top_level order by item_id")
    streams = pd.DataFrame(warehouse_query(
        s.workspace, "select top_item_id, user_id, event_ts from int_interactions_rolled_up "
                     "where event_type = 'stream' and event_ts < ?", [s.timeline.cutoff]),
        columns=["top_item_id", "user_id", "event_ts"])
    streams["day"] = streams["event_ts"].dt.floor("D")
    daily = streams.groupby(["top_item_id", "day"])["user_id"].nunique()
    ids = [i for i, _ in items]
    got = item_popularity_snapshots(s.workspace, ids, days, POPULARITY_FEATURES)
    got = got.set_index(["item_id", "snapshot_ts"])
    checked = 0
    for item_id, created in items:
        per_day = daily.loc[item_id] if item_id in daily.index.get_level_values(0) else None
        for day in days:
            row = got.loc[(item_id, pd.Timestamp(day))]
            if created >= day:  # not released before this midnight: no snapshot
                assert pd.isna(row.listener_days_7d), (item_id, day)
                continue
            expected = {n: 0 for n in (7, 28)}
            if per_day is not None:
                for n in (7, 28):
                    window = per_day[(per_day.index >= day - pd.Timedelta(days=n))
                                     & (per_day.index < day)]
                    expected[n] = int(window.sum())
            assert (row.listener_days_7d, row.listener_days_28d) == (expected[7], expected[28])
            assert row.days_since_release == (pd.Timestamp(day) - pd.Timestamp(created)).days
            checked += row.listener_days_7d > 0
    assert checked > 0, "the tiny workspace should stream some items in the label window"
