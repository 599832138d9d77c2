"""`gfm refresh`: one day on, on a copy of the tiny pipeline workspace, while it is served.

The new day is appended (`gfm import parquet --append`: a new audiobook and a stream of it),
then refreshed while `gfm serve --workers 2` answers a steady load. The cutoff moves in
gfm.yaml; the dynamic layer is rebuilt there (a new two-tower, warm-started, and its index; the
online store's user histories of the new day); the static layer (the HGNN) is kept, its vectors
extended to the new item from its text. The running service swaps models with no failed
request; the day's new item is served, and not to whom streamed it. A refresh backwards, or
past data raw/ does not hold, is refused and changes nothing; versions beyond keep_versions are
retired.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from gfm.config import write_timeline_cutoff
from ingest.contract import arrow_schema
from serving.milvus import start_lite_server, stop_process
from test_serving import START_TIMEOUT_S, _start_server, _workers
from tests.integration.conftest import PIPELINE_FLAGS

pytestmark = pytest.mark.integration

SWAP_WAIT_S = 60
WORKERS = {"1", "2"}  # `gfm serve --workers 2`: each worker swaps by itself


def _gfm(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gfm.cli.main", *argv], capture_output=True,
                          text=True, timeout=1200)


def _served(workdir: Path) -> str:
    return json.loads((workdir / "models" / "two_tower" / "serving.json").read_text())["tag"]


def _version(tag: str) -> str:
    return tag.split(":", 1)[1]


def _hgnn_versions(workdir: Path) -> list[str]:
    return sorted(p.stem for p in (workdir / "features" / "item_hgnn_embedding").glob("*.parquet"))


def _hgnn_checkpoints(workdir: Path) -> list[str]:
    return sorted(p.parent.name for p in (workdir / "models" / "hgnn").glob("*/checkpoint.pt"))


class Load:
    """POST /recommend in a loop from a thread, keeping (status, model_version) of each answer.
    A new connection for each request: the kernel then spreads them over the workers."""

    def __init__(self, url: str, users: list[str]):
        self.url, self.users = url, users
        self.answers: list[tuple[int, str | None]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=30, limits=httpx.Limits(max_keepalive_connections=0)) as client:
            i = 0
            while not self._stop.is_set():
                user = self.users[i % len(self.users)]
                i += 1
                try:
                    response = client.post(f"{self.url}/recommend",
                                           json={"user_id": user, "k": 10})
                except httpx.HTTPError as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                body = response.json() if response.status_code == 200 else {}
                self.answers.append((response.status_code, body.get("model_version")))
                if response.status_code != 200:
                    self.errors.append(f"{response.status_code}: {response.text[:300]}")
                time.sleep(0.05)

    def versions(self) -> list[str | None]:
        return [version for _, version in self.answers]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


NEW_ITEM = "b_released_on_the_new_day"


@dataclass
class Refreshed:
    workdir: Path
    old: dt.datetime  # the cutoff before
    new: dt.datetime  # the cutoff after
    served_before: str  # the served model's tag before
    hgnn_before: list[str]  # HGNN vector versions
    checkpoints_before: list[str]  # trained HGNN runs
    output: str  # gfm refresh's
    load: Load
    answered_when_swapped: int  # answers before every worker had swapped
    serve_log: Path
    streamer: str  # the user who streamed NEW_ITEM on the new day
    probes: dict[str, httpx.Response]  # answers of the swapped service about NEW_ITEM


def _append_the_new_day(workdir: Path, base: Path, old: dt.datetime) -> str:
    """`gfm import parquet --append`: an audiobook released on the new day (another's text),
    streamed that day by a user with audiobook history; returns that user."""
    items = pd.read_parquet(workdir / "raw" / "items.parquet")
    events = pd.read_parquet(workdir / "raw" / "interactions.parquet")
    books = items[items.item_type == "audiobook"]
    user = sorted(events[events.item_id.isin(books.item_id) & (events.event_ts < old)]
                  .user_id)[0]
    item = books.iloc[[0]].assign(item_id=NEW_ITEM, created_at=old + dt.timedelta(hours=6))
    event = events.iloc[[0]].assign(user_id=user, item_id=NEW_ITEM, event_type="stream",
                                    event_ts=old + dt.timedelta(hours=8), played_ms=600_000)
    for frame, table, name in ((item, "items", "new_items"), (event, "interactions", "new_day")):
        pq.write_table(pa.Table.from_pandas(frame, schema=arrow_schema(table),
                                            preserve_index=False), base / f"{name}.parquet")
    result = _gfm("import", "parquet", "--append", "--workdir", str(workdir),
                  "--interactions", str(base / "new_day.parquet"),
                  "--items", str(base / "new_items.parquet"))
    assert result.returncode == 0, result.stderr[-3000:]
    return user


@pytest.fixture(scope="module")
def refreshed(tiny_pipeline_workspace, tmp_path_factory) -> Refreshed:
    """The new day appended to a copy, then the copy refreshed one day on while `gfm serve`
    with two workers (reaching a milvus-lite server, as a refresh under a running service and
    several workers need) answers a steady load; then the swapped service asked about the
    day's new item."""
    from gfm.config import load_config
    from gfm.timeline import resolve_timeline
    from gfm.workspace import Workspace

    base = tmp_path_factory.mktemp("refresh")
    workdir = base / "ws"
    shutil.copytree(tiny_pipeline_workspace, workdir, symlinks=True)
    workspace = Workspace.at(workdir)
    old = resolve_timeline(load_config(workdir).timeline, workspace).cutoff
    new = old + dt.timedelta(days=1)
    served, hgnn, checkpoints = (_served(workdir), _hgnn_versions(workdir),
                                 _hgnn_checkpoints(workdir))
    # Pinned before the append: the cutoff then stays where it was (left unset, it would move
    # with the last event's day).
    write_timeline_cutoff(workdir / "gfm.yaml", old.date(), "the tiny pipeline's")
    streamer = _append_the_new_day(workdir, base, old)
    users = sorted(pd.read_parquet(workdir / "raw" / "users.parquet").user_id)[:50]
    uri, milvus = start_lite_server(workdir / "milvus" / "index.db", base / "milvus.log")
    flags = ["--set", f"serving.milvus_uri={uri}"]
    try:
        log = base / "serve.log"
        url, server = _start_server(workdir, log, *flags, "--workers", "2")
        try:
            deadline = time.monotonic() + START_TIMEOUT_S  # /readyz reached one worker
            while _workers(log, "Service gfm_recommender initialized") != WORKERS:
                assert time.monotonic() < deadline, log.read_text()[-3000:]
                time.sleep(0.5)
            load = Load(url, users)
            result = _gfm("refresh", "--to", f"{new:%Y-%m-%d}", "--workdir", str(workdir),
                          *PIPELINE_FLAGS, *flags)
            # The swap is bounded: a check every SWAP_CHECK_S, then the new model's load.
            deadline = time.monotonic() + SWAP_WAIT_S
            while time.monotonic() < deadline and _workers(log, "swapped") != WORKERS:
                time.sleep(0.5)
            answered_when_swapped = len(load.answers)
            time.sleep(3)  # answers from the new model, on both workers
            load.stop()
            probes = {
                "score": httpx.post(f"{url}/score", timeout=30, json={
                    "user_id": streamer, "item_ids": [NEW_ITEM]}),
                "similar": httpx.post(f"{url}/similar", timeout=30, json={
                    "item_id": NEW_ITEM, "k": 5}),
                "recommend": httpx.post(f"{url}/recommend", timeout=30, json={
                    "user_id": streamer, "k": 500, "item_types": ["audiobook"]}),
            }
        finally:
            stop_process(server)
    finally:
        stop_process(milvus)
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return Refreshed(workdir, old, new, served, hgnn, checkpoints, result.stdout, load,
                     answered_when_swapped, log, streamer, probes)


def test_the_service_swaps_to_the_new_model_without_a_failed_request(refreshed):
    """Two workers under load: every answer during the refresh is a 200 naming one model; each
    worker swaps without a restart, and once both have, the old version does not answer."""
    load = refreshed.load
    assert load.errors == []
    versions = load.versions()
    assert len(versions) > 20, "the load generator hardly ran"
    old, new = _version(refreshed.served_before), versions[-1]
    assert versions[0] == old and new != old
    assert set(versions) == {old, new}
    assert _workers(refreshed.serve_log, "swapped") == WORKERS
    assert _workers(refreshed.serve_log, "path=/recommend", "status=200") == WORKERS
    after = versions[refreshed.answered_when_swapped:]
    assert len(after) > 5 and set(after) == {new}


def test_the_days_new_item_is_served_and_left_out_for_who_streamed_it(refreshed):
    """The item released on the new day (appended after the kept HGNN ran) is in the new
    model's index, scored for a user, and not recommended to the user who streamed
    it that day."""
    probes = refreshed.probes
    assert probes["score"].status_code == 200, probes["score"].text
    score = probes["score"].json()
    assert score["unknown_item_ids"] == []
    assert [item["item_id"] for item in score["items"]] == [NEW_ITEM]
    assert probes["similar"].status_code == 200, probes["similar"].text
    recommended = probes["recommend"].json()
    assert recommended["model_version"] == score["model_version"]
    # k is above the number of audiobooks: every one is listed but the user's history, so the
    # new item is missing because it was streamed that day, not because it ranked low.
    listed = [item["item_id"] for item in recommended["items"]]
    assert len(listed) < 500 and len(listed) > 100
    assert NEW_ITEM not in listed


def test_refresh_moves_the_cutoff_and_serves_a_new_model_on_the_same_hgnn(refreshed):
    r = refreshed
    workdir, new, served_before, out = r.workdir, r.new, r.served_before, r.output
    config = yaml.safe_load((workdir / "gfm.yaml").read_text())
    assert config["timeline"]["cutoff"] == new.date()
    assert "static layer kept" in out
    assert _hgnn_checkpoints(workdir) == r.checkpoints_before  # no HGNN trained
    extended = sorted(set(_hgnn_versions(workdir)) - set(r.hgnn_before))
    assert len(extended) == 1  # the kept run's vectors, extended to the new day's item
    lineage = json.loads((workdir / "features" / "item_hgnn_embedding"
                          / f"{extended[0]}.json").read_text())
    assert lineage["extends"] in r.hgnn_before
    # The kept run's user averages stay as built at the old cutoff (only the models kept for
    # rollback read them); the extension's are built at the new one.
    averages = json.loads((workdir / "features" / "feature_versions.json").read_text())[
        "views"]["user_avg_hgnn"]
    assert averages[extended[0]]["lineage"]["cutoff"] == f"{new:%Y-%m-%d %H:%M:%S}"
    assert averages[lineage["extends"]]["lineage"]["cutoff"] == f"{r.old:%Y-%m-%d %H:%M:%S}"
    served = _served(workdir)
    assert served != served_before
    from gfm.workspace import Workspace
    from training.two_tower.store import load_bundle

    bundle = load_bundle(Workspace.at(workdir), served)
    assert bundle.metadata["cutoff"] == new.isoformat()
    # the dynamic layer's daily step begins from the served model's weights
    assert bundle.metadata["warm_started_from"] == _version(served_before)
    assert f"warm-started from {_version(served_before)}" in out
    # on the days the served model had not seen (two_tower.warm_start_examples: new)
    trained = json.loads((workdir / "reports" / "two_tower_metrics_unified_2t.json").read_text())
    assert trained["warm_start"]["examples"]["since"] == (new - dt.timedelta(days=1)).isoformat()
    assert trained["n_train_examples"] == trained["warm_start"]["examples"]["n_train_examples"]
    assert trained["n_train_examples"] < trained["n_examples"]
    indexed = {json.loads(p.read_text())["model_version"]
               for p in (workdir / "milvus").glob("items_*.json")}
    assert bundle.version in indexed  # gfm index built the new model's collection


def test_the_refresh_computes_only_the_new_days_and_equals_a_rebuild(refreshed, tmp_path):
    """The daily snapshots and the user averages are incremental: user_history appended the
    new day (dbt incremental), and the extension's user averages kept the kept run's up to the
    old cutoff, computing only the new day's; both equal what a build from scratch gives. The
    online store loaded the static views incrementally (Feast's materialize_incremental): the
    item metadata only the day's new item."""
    import duckdb

    from transforms.warehouse import HISTORY_STATE

    workdir, old = refreshed.workdir, refreshed.old
    assert json.loads((workdir / "dbt" / HISTORY_STATE).read_text())["incremental"] is True
    extended = sorted(set(_hgnn_versions(workdir)) - set(refreshed.hgnn_before))[0]
    averages = json.loads((workdir / "features" / "feature_versions.json").read_text())[
        "views"]["user_avg_hgnn"]
    extends = json.loads((workdir / "features" / "item_hgnn_embedding"
                          / f"{extended}.json").read_text())["extends"]
    assert averages[extended]["lineage"]["reused"] == {"from": extends,
                                                       "until": f"{old:%Y-%m-%d %H:%M:%S}"}
    copy = tmp_path / "ws"
    shutil.copytree(workdir, copy, symlinks=True, ignore=shutil.ignore_patterns("milvus"))
    result = _gfm("features", "apply", "--rebuild", "--workdir", str(copy))
    assert result.returncode == 0, result.stderr[-3000:]
    con = duckdb.connect()
    query = "select * from read_parquet(?) order by user_id, event_timestamp"
    path = Path("features") / "user_avg_hgnn" / f"{extended}.parquet"
    rows = con.execute(query, [str(workdir / path)]).fetchall()
    assert len(rows) > 1000 and rows == con.execute(query, [str(copy / path)]).fetchall()
    assert any(r[1] > old for r in rows) and any(r[1] <= old for r in rows)
    loaded = {line.split()[0]: line for line in refreshed.output.splitlines()
              if line.endswith("(incremental)")}
    items = pd.read_parquet(workdir / "raw" / "items.parquet")
    released = int(((items.created_at >= old) & (items.created_at <= refreshed.new)).sum())
    assert NEW_ITEM in set(items.item_id) and released < len(items) // 10
    assert f" {released} rows " in loaded["item_metadata"]
    assert "user_metadata" in loaded and "item_metadata" in loaded


def test_the_days_new_item_gets_text_and_an_hgnn_vector_from_the_kept_run(refreshed):
    """The served model's views hold the new item: its text (the same as the audiobook whose
    text it copies) and a vector from the kept HGNN run (text-only, inductive), online."""
    from feature_store.repo import open_store
    from gfm.workspace import Workspace
    from training.two_tower.store import load_bundle

    workdir = refreshed.workdir
    assert "1 item(s) released since it ran got text-only vectors" in refreshed.output
    items = pd.read_parquet(workdir / "raw" / "items.parquet")
    twin = items[items.item_type == "audiobook"].item_id.iloc[0]
    workspace = Workspace.at(workdir)
    views = [v if isinstance(v, str) else v["view"]
             for v in load_bundle(workspace).metadata["feature_views"]]
    text_view = next(v for v in views if v.startswith("item_text_embedding_v"))
    hgnn_view = next(v for v in views if v.startswith("item_hgnn_embedding_v"))
    online = open_store(workspace).get_online_features(
        features=[f"{text_view}:text_embedding", f"{hgnn_view}:hgnn_embedding"],
        entity_rows=[{"item_id": NEW_ITEM}, {"item_id": twin}]).to_dict()
    text, hgnn = online["text_embedding"], online["hgnn_embedding"]
    assert text[0] is not None and text[0] == pytest.approx(text[1], abs=1e-6)
    assert hgnn[0] is not None and hgnn[1] is not None
    assert sum(v * v for v in hgnn[0]) == pytest.approx(1.0, abs=1e-4)


def test_the_new_days_streams_are_in_the_online_history(refreshed):
    """What a user streamed on the refreshed day is in their online history, which /recommend
    leaves out of what it returns."""
    from feature_store.repo import open_store
    from gfm.workspace import Workspace

    workdir, old, new = refreshed.workdir, refreshed.old, refreshed.new
    events = pd.read_parquet(workdir / "raw" / "interactions.parquet")
    items = pd.read_parquet(workdir / "raw" / "items.parquet").set_index("item_id")
    day = events[(events.event_ts >= old) & (events.event_ts < new)
                 & (events.event_type == "stream")]
    top = day.item_id.map(lambda i: items.parent_id.get(i) or i)  # episodes roll up to shows
    day = day.assign(top=top, item_type=top.map(items.item_type))
    assert len(day), "the tiny data has no stream on the day after its cutoff"
    store = open_store(Workspace.at(workdir))
    checked = 0
    for (user, item_type), rows in day.groupby(["user_id", "item_type"]):
        history = store.get_online_features(
            features=[f"user_history:item_ids_{item_type}"],
            entity_rows=[{"user_id": user}]).to_dict()[f"item_ids_{item_type}"][0]
        assert set(rows.top) <= set(history or []), (user, item_type)
        checked += 1
        if checked == 20:
            break
    assert checked


def test_a_user_whose_history_aged_out_reads_as_without_history_online(refreshed):
    """A user in an earlier daily snapshot but in none at the cutoff (their streams left the
    window) reads online as offline once the views are materialized: no history items, no
    average vector, rather than the row an earlier materialization left (upserts alone would
    keep it)."""
    import duckdb

    from feature_store.core import materialize_features
    from feature_store.repo import open_store
    from gfm.config import load_config
    from gfm.timeline import resolve_timeline
    from gfm.workspace import Workspace
    from training.two_tower.store import load_bundle

    workdir, new = refreshed.workdir, refreshed.new
    path = str(workdir / "features" / "user_history.parquet")
    con = duckdb.connect()
    aged = [row[0] for row in con.execute(
        "select distinct user_id from read_parquet(?) where event_timestamp < ? except "
        "select user_id from read_parquet(?) where event_timestamp = ? order by 1",
        [path, new, path, new]).fetchall()]
    assert aged, "no user's history ages out in the tiny data"
    user = aged[0]
    last_row = con.execute("select * from read_parquet(?) where user_id = ? order by "
                           "event_timestamp desc limit 1", [path, user]).df()
    last_row["event_timestamp"] = pd.to_datetime(last_row["event_timestamp"]).dt.tz_localize("UTC")
    workspace = Workspace.at(workdir)
    bundle = load_bundle(workspace)
    views = [v if isinstance(v, str) else v["view"] for v in bundle.metadata["feature_views"]]
    average = next(v for v in views if v.startswith("user_avg_hgnn_v"))
    refs = [f"user_history:item_ids_{t}" for t in bundle.item_types]
    store = open_store(workspace)

    def online() -> dict:
        return store.get_online_features(
            features=[*refs, f"{average}:avg_hgnn_all", f"{average}:n_items_all"],
            entity_rows=[{"user_id": user}]).to_dict()

    store.write_to_online_store("user_history", last_row)  # the row of an earlier day
    assert any(online()[f"item_ids_{t}"][0] for t in bundle.item_types)
    materialize_features(workspace, resolve_timeline(load_config(workdir).timeline, workspace),
                         ["user_history", average])
    after = online()
    assert all(after[f"item_ids_{t}"][0] == [] for t in bundle.item_types)
    assert after["avg_hgnn_all"] == [None] and not after["n_items_all"][0]


def test_refresh_backwards_or_past_the_data_is_refused_and_changes_nothing(refreshed):
    workdir, old = refreshed.workdir, refreshed.old
    before = (workdir / "gfm.yaml").read_text()
    result = _gfm("refresh", "--to", f"{old:%Y-%m-%d}", "--workdir", str(workdir))
    assert result.returncode == 2
    assert "is not after the workspace's cutoff" in result.stderr
    last = pd.read_parquet(workdir / "raw" / "interactions.parquet").event_ts.max()
    beyond = f"{last + dt.timedelta(days=3):%Y-%m-%d}"
    result = _gfm("refresh", "--to", beyond, "--workdir", str(workdir))
    assert result.returncode == 2
    assert "append the new days first" in result.stderr
    result = _gfm("refresh", "--to", beyond, "--cutoff", beyond, "--workdir", str(workdir))
    assert result.returncode == 2
    assert "drop --cutoff" in result.stderr
    assert (workdir / "gfm.yaml").read_text() == before


def test_versions_beyond_keep_are_retired_but_never_the_served_one(refreshed):
    """serving.keep_versions 1: the model served before the refresh leaves the model store,
    with its Milvus collection and its FeatureService; the served one stays whole."""
    from feature_store.versions import RETIRED, FeatureVersions
    from gfm.workspace import Workspace
    from serving.milvus import collection_name

    workdir, served_before = refreshed.workdir, refreshed.served_before
    code = ("import sys; from gfm.config import load_config; from gfm.workspace import Workspace;"
            " from serving.retention import retire_old_versions;"
            " w = Workspace.at(sys.argv[1]);"
            " print(retire_old_versions(w, load_config(w.root), 1).summary())")
    result = subprocess.run([sys.executable, "-c", code, str(workdir)], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "retired 1 model(s), 1 collection(s)" in result.stdout
    models = [json.loads(line) for line in
              _gfm("models", "--json", "--workdir", str(workdir)).stdout.splitlines()]
    assert [m["served"] for m in models if m["tag"].startswith("unified_2t:")] == [True]
    old_version = _version(served_before)
    assert not (workdir / "milvus" / f"{collection_name(old_version)}.json").exists()
    state = FeatureVersions.load(Workspace.at(workdir))
    assert state.services[f"two_tower_v{old_version.removeprefix('2t_')}"]["status"] == RETIRED
    assert (workdir / "milvus" / f"{collection_name(_version(_served(workdir)))}.json").exists()
