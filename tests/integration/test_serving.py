"""Serving end to end on the tiny workspace: `gfm index`, the BentoML service in-process (ASGI)
and as a real `gfm serve`, exact-k answers, a schema-driven fuzz test and a content-type and
body-size matrix, parity with `gfm evaluate`'s top 10, a copied and moved workspace, and the
scale-out mode (two workers, a milvus-lite server, the Redis online store).

One workspace, the session's `tiny_pipeline_workspace` (conftest: `gfm pipeline` in a
subprocess, so no embedded milvus-lite stays open in this process). A `milvus_lite server` then
holds its index and every service of the module reaches it by URI: several processes share one
index, as in production.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from gfm.errors import GfmError
from gfm.ports import free_local_port
from serving.milvus import start_lite_server, stop_process

pytestmark = pytest.mark.integration

START_TIMEOUT_S = 180


def _gfm(*argv: str, timeout: float = 900, env: dict | None = None) -> str:
    """Run `gfm ...` in a subprocess; fail with its output."""
    result = subprocess.run([sys.executable, "-m", "gfm.cli.main", *argv], capture_output=True,
                            text=True, timeout=timeout, env={**os.environ, **(env or {})})
    assert result.returncode == 0, (
        f"gfm {' '.join(argv)}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result.stdout


def _wait_ready(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the server exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"{url} not ready after {START_TIMEOUT_S} s:\n{log.read_text()[-4000:]}")



def _start_server(workdir: Path, log: Path, *flags: str) -> tuple[str, subprocess.Popen]:
    """`gfm serve` on a free port. A port found free can be taken before the server binds it
    (other tests' milvus-lite and Redis processes open ports too): then a new port, at most
    three times."""
    for attempt in range(3):
        port = free_local_port()
        with log.open("w") as handle:
            process = subprocess.Popen(
                [sys.executable, "-m", "gfm.cli.main", "serve", "--workdir", str(workdir),
                 "--port", str(port), *flags], stdout=handle, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(url, process, log)
        except BaseException:
            stop_process(process)
            if attempt < 2 and f"Could not bind 127.0.0.1:{port}" in log.read_text():
                continue
            raise
        return url, process
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def workdir(tiny_pipeline_workspace) -> Path:
    """The tiny workspace through `gfm pipeline` (conftest), shared with test_bento."""
    return tiny_pipeline_workspace


@pytest.fixture(scope="module")
def milvus_uri(workdir, tmp_path_factory) -> Iterator[str]:
    """`python -m milvus_lite server` on the workspace's index, on a free loopback port."""
    log = tmp_path_factory.mktemp("milvus") / "server.log"
    try:
        uri, process = start_lite_server(workdir / "milvus" / "index.db", log)
    except GfmError as exc:
        pytest.fail(str(exc))
    yield uri
    stop_process(process)


@pytest.fixture(scope="module")
def service_env(workdir, milvus_uri) -> Iterator[dict[str, str]]:
    """GFM_WORKDIR / GFM_SET as `gfm serve` sets them, in this process (for in-process use)."""
    values = {"GFM_WORKDIR": str(workdir),
              "GFM_SET": json.dumps([f"serving.milvus_uri={milvus_uri}"]),
              "BENTOML_HOME": str(workdir / "bentoml")}
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    yield values
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture(scope="module")
def client(service_env):
    """The service in-process: BentoML's ASGI app in a starlette TestClient."""
    from starlette.testclient import TestClient

    from serving.service import Recommender

    with TestClient(Recommender.to_asgi()) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def engine(service_env):
    from serving.engine import engine_from_environment

    engine = engine_from_environment()
    yield engine
    engine.close()


class Offline:
    """What `gfm evaluate` computes for the served model: the split, and each evaluation
    user's top 10 per type with history excluded (the primary setting), users without history
    (its cold-start ranking) included."""

    def __init__(self, workdir: Path):
        from evaluation import metrics as m
        from evaluation.split import load_split
        from evaluation.two_tower import build_two_tower
        from gfm.config import load_config
        from gfm.timeline import resolve_timeline
        from gfm.workspace import Workspace

        self.workspace = Workspace.at(workdir)
        timeline = resolve_timeline(load_config(self.workspace.root).timeline, self.workspace)
        split = self.split = load_split(self.workspace, timeline)
        retriever = build_two_tower(split, self.workspace)
        users = split.eval_users()
        self.users = users[split.has_history[users]]  # evaluation users (the primary setting)
        self.cold_users = users[~split.has_history[users]]  # the cold-start ranking's users
        ranked = np.concatenate([self.users, self.cold_users])
        scores = self.scores = retriever.score(ranked)  # (n_users, n_items)
        self.row = {split.user_ids[u]: r for r, u in enumerate(ranked)}
        history_rows, history_items = split.histories.take(ranked)
        self.top10: dict[tuple[str, str], list[str]] = {}
        for t in split.types:
            columns = split.type_items[t]
            masked = scores[:, columns].copy()
            of_type = split.item_types[history_items] == t
            masked[history_rows[of_type], split.type_position[history_items[of_type]]] = -np.inf
            for row, top in enumerate(m.top_k(masked, 10)):
                user = split.user_ids[ranked[row]]
                self.top10[(user, t)] = [split.item_ids[columns[j]] for j in top if j != m.PAD]

    def same_up_to_ties(self, user_id: str, got: list[str], expected: list[str]) -> bool:
        """The same scores rank by rank (to 1e-6): any difference is an exchange of items
        whose scores tie within float noise (a batched and a single matmul, or Milvus' and
        numpy's inner products, differ in the last bits)."""
        if len(got) != len(expected):
            return False
        scores = self.scores[self.row[user_id]]
        index = self.split.item_index
        return bool(np.allclose([scores[index[i]] for i in got],
                                [scores[index[i]] for i in expected], rtol=0, atol=1e-6))

    def history(self, user_id: str) -> set[str]:
        return set(self.split.item_ids[self.split.histories[self.split.user_index[user_id]]])


@pytest.fixture(scope="module")
def offline(workdir) -> Offline:
    return Offline(workdir)


@pytest.fixture(scope="module")
def manifest(workdir) -> dict:
    (path,) = (workdir / "milvus").glob("items_*.json")
    return json.loads(path.read_text())


def _ids(response) -> list[str]:
    return [item["item_id"] for item in response.json()["items"]]


# ---------------------------------------------------------------------------------------------
# gfm index


def test_index_holds_every_top_level_item_and_meets_the_recall_goal(workdir, manifest):
    import duckdb

    con = duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True)
    try:
        top_level = {r[0] for r in con.execute(
            "select item_id from item_catalog where is_top_level").fetchall()}
    finally:
        con.close()
    served = json.loads((workdir / "models" / "two_tower" / "serving.json").read_text())["tag"]
    assert manifest["model_tag"] == served
    assert manifest["collection"] == "items_" + served.split(":")[1]
    assert manifest["n_items"] == len(top_level)
    assert manifest["index_type"] == "HNSW"
    metrics = json.loads((workdir / "reports" / "index_metrics.json").read_text())
    assert metrics["recall@10_min"] >= 0.99 and metrics["meets_goal"]
    assert set(metrics["recall@10_user_queries"]) == {"all", *manifest["item_types"]}
    assert metrics["n_user_queries"] > 0


# ---------------------------------------------------------------------------------------------
# in-process


def test_ready_and_openapi_describes_flat_bodies(client, manifest):
    from gfm import __version__

    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["ready"] is True
    assert ready.json()["model_version"] == manifest["model_version"]
    spec = client.get("/docs.json").json()
    assert spec["info"]["version"] == __version__
    assert manifest["model_version"] in spec["info"]["description"]
    # the 400 body as sent: pydantic's errors are a list
    invalid = spec["components"]["schemas"]["InvalidArgument"]["properties"]
    assert invalid["detail"]["type"] == "array"
    sent = client.post("/recommend", json={"user_id": "u1", "k": 0}).json()
    assert isinstance(sent["detail"], list) and sent["detail"][0]["loc"] == ["k"]
    for path, fields in {"/recommend": {"user_id", "k", "item_types", "exclude_consumed",
                                        "recent_item_ids"},
                         "/similar": {"item_id", "k", "item_types"},
                         "/score": {"user_id", "item_ids", "recent_item_ids"}}.items():
        schema = spec["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
        assert set(schema["properties"]) == fields
    k = spec["paths"]["/recommend"]["post"]["requestBody"]["content"]["application/json"][
        "schema"]["properties"]["k"]
    assert (k["minimum"], k["maximum"]) == (1, 500)


def test_recommend_known_user(client, offline, manifest):
    user = offline.split.user_ids[offline.users[0]]
    response = client.post("/recommend", json={"user_id": user, "k": 10})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["strategy"] == "model"
    assert body["model_version"] == manifest["model_version"]
    assert body["feature_service"] == manifest["feature_service"]
    items = body["items"]
    assert len(items) == 10 and len({i["item_id"] for i in items}) == 10
    assert all(i["item_type"] in manifest["item_types"] for i in items)
    scores = [i["score"] for i in items]
    assert scores == sorted(scores, reverse=True)
    assert not {i["item_id"] for i in items} & offline.history(user)  # consumed items left out

    # the same request without exclusion may return history items; with a type filter only
    # that type; k as asked
    t = manifest["item_types"][0]
    typed = client.post("/recommend", json={"user_id": user, "k": 7, "item_types": [t]}).json()
    assert len(typed["items"]) == 7 and {i["item_type"] for i in typed["items"]} == {t}
    everything = client.post("/recommend", json={"user_id": user, "k": manifest["n_items"],
                                                 "exclude_consumed": False}).json()
    assert {i["item_id"] for i in everything["items"]} >= offline.history(user)


def test_recommend_returns_exactly_k_after_leaving_history_out(client, offline, manifest):
    """Over-fetching: the user with the longest history still gets exactly k, as long as the
    catalogue has k items they have not consumed."""
    user = max((offline.split.user_ids[u] for u in offline.users),
               key=lambda u: len(offline.history(u)))
    k = manifest["n_items"] - len(offline.history(user))
    items = _ids(client.post("/recommend", json={"user_id": user, "k": k}))
    assert len(items) == k and not set(items) & offline.history(user)


def _offline_unknown_user_query(offline, engine) -> np.ndarray:
    """The query vector of a user id the store has never seen, as the offline evaluation
    builds it (features read from the offline store at the cutoff, through the model's
    FeatureService)."""
    from serving.index import encode_user_sample, user_query

    cutoff = dt.datetime.fromisoformat(engine.manifest["cutoff"])
    return user_query(encode_user_sample(offline.workspace, engine.bundle, ["nobody-at-all"],
                                         cutoff), engine.manifest)[0]


def test_unknown_user_gets_the_models_answer_for_no_history(client, offline, engine):
    """An id the store has never seen: the towers on unknown metadata (and the popularity
    prior), the same query as the offline evaluation's; the list is ranked by it."""
    body = client.post("/recommend", json={"user_id": "nobody-at-all", "k": 5}).json()
    assert body["strategy"] == "new_user" and len(body["items"]) == 5
    served, strategy = engine._user_vector(engine._user_context("nobody-at-all"), [])
    assert strategy == "new_user"
    expected = _offline_unknown_user_query(offline, engine)
    np.testing.assert_allclose(served, expected, rtol=1e-5, atol=1e-6)
    catalogue = engine.catalogue()
    row = {item_id: j for j, item_id in enumerate(catalogue.ids)}
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    for item in body["items"]:
        assert item["score"] == pytest.approx(float(catalogue.vectors[row[item["item_id"]]]
                                                    @ expected), abs=1e-5)


def test_unknown_user_with_recent_items_gets_a_vector_from_them(client, offline, engine):
    user = offline.split.user_ids[offline.users[0]]
    history = sorted(offline.history(user))
    # the features built from a history equal the user's own snapshot (dbt's averages)
    built = engine._features_from_items(history, {"country": [None], "age_bucket": [None]})
    own = engine._user_context(user).features
    np.testing.assert_allclose(built["avg_hgnn_all"][0], own["avg_hgnn_all"][0], rtol=1e-5,
                               atol=1e-6)
    for t in engine.bundle.item_types:
        assert built[f"n_items_{t}"][0] == own[f"n_items_{t}"][0]
        np.testing.assert_allclose(built[f"avg_hgnn_{t}"][0], own[f"avg_hgnn_{t}"][0],
                                   rtol=1e-5, atol=1e-6)

    recent = history[:3]
    body = client.post("/recommend", json={"user_id": "new-user-1", "k": 5,
                                           "recent_item_ids": [*recent, "not-an-item"]}).json()
    assert body["strategy"] == "recent_items" and len(body["items"]) == 5
    assert not {i["item_id"] for i in body["items"]} & set(recent)
    assert body["unknown_item_ids"] == ["not-an-item"]  # said, not dropped silently
    # only unknown recent items: the answer for no history, and the ids are named
    fallback = client.post("/recommend", json={"user_id": "new-user-1", "k": 5,
                                               "recent_item_ids": ["not-an-item"]}).json()
    assert fallback["strategy"] == "new_user"
    assert fallback["unknown_item_ids"] == ["not-an-item"]
    known = client.post("/recommend", json={"user_id": user, "k": 5,
                                            "recent_item_ids": recent}).json()
    assert known["strategy"] == "model" and known["unknown_item_ids"] == []
    scored = client.post("/score", json={"user_id": "new-user-1", "item_ids": recent,
                                         "recent_item_ids": ["gone-item", recent[0]]}).json()
    assert scored["unknown_recent_item_ids"] == ["gone-item"]


def test_an_item_released_after_graph_as_of_is_recommended_to_a_user_close_to_it(client, offline):
    """An item released between graph_as_of and the cutoff has no co-interaction edges: its
    HGNN vector comes from its text alone (hgnn.inductive_vectors). It is indexed, and the
    user whose offline ranking puts it highest among the items of its type outside their
    history gets it from /recommend (#12: new items reached zero-shot)."""
    from gfm.config import load_config
    from gfm.timeline import resolve_timeline
    from transforms.warehouse import warehouse_query

    workspace, split = offline.workspace, offline.split
    timeline = resolve_timeline(load_config(workspace.root).timeline, workspace)
    released = warehouse_query(workspace, """
        select item_id, item_type from item_catalog
        where is_top_level and created_at >= ? and created_at < ?
          and item_id not in (select src_item_id from co_interaction_edges)
        order by item_id""", [timeline.graph_as_of, timeline.cutoff])
    assert released, "the tiny workspace releases items between graph_as_of and the cutoff"
    best = None  # (rank among the type's items outside the history, user, item, type)
    for item_id, item_type in released:
        j = split.item_index[item_id]
        columns = np.flatnonzero(split.item_types == item_type)
        for u in offline.users:
            user = split.user_ids[u]
            history = set(split.histories[u].tolist())
            if j in history:
                continue
            scores = offline.scores[offline.row[user]]
            others = np.array([c for c in columns if c not in history])
            rank = int((scores[others] > scores[j]).sum())
            if best is None or rank < best[0]:
                best = (rank, user, item_id, item_type)
    rank, user, item_id, item_type = best
    assert rank < 10, f"no user has any of {released} in their top 10 (best: {best})"
    body = client.post("/recommend", json={"user_id": user, "k": 10,
                                           "item_types": [item_type]}).json()
    assert body["strategy"] == "model"
    assert item_id in [i["item_id"] for i in body["items"]], (best, body["items"])


def test_new_item_exposure_gives_evaluation_and_the_index_the_same_new_item_weights(offline):
    """two_tower.new_item_exposure: `gfm evaluate` (two_tower_vectors) and `gfm index`
    (encode_catalog) solve the new items' weights from the same users and items, so the index
    holds the vectors evaluation scored; only items the model never trained on move."""
    import dataclasses

    from evaluation.two_tower import item_features, two_tower_vectors
    from serving.index import encode_catalog
    from training.two_tower.store import load_bundle

    workspace, split = offline.workspace, offline.split
    bundle = load_bundle(workspace, None)
    users, item_ids = list(split.user_ids[:3]), list(split.item_ids)
    _, plain = two_tower_vectors(workspace, bundle, users, item_ids, split.cutoff)
    assert bundle.model.new_item_hgnn_weights is None  # off by default
    bundle.config = dataclasses.replace(bundle.config, new_item_exposure=5.0)
    _, evaluated = two_tower_vectors(workspace, bundle, users, item_ids, split.cutoff)
    solved = dict(bundle.model.new_item_hgnn_weights)
    indexed = encode_catalog(workspace, bundle, item_ids, split.cutoff)
    assert bundle.model.new_item_hgnn_weights == solved
    np.testing.assert_allclose(indexed, evaluated, rtol=0, atol=1e-6)
    assert solved and all(w > 1.0 for w in solved.values()), solved
    never_trained = (bundle.item_inputs(item_features(
        workspace, bundle.feature_service, item_ids, split.cutoff)).ids == 0).numpy()
    moved = ~np.isclose(evaluated, plain, rtol=0, atol=1e-6).all(axis=1)
    assert moved.any() and not (moved & ~never_trained).any()
    # The model's own scores (the paper's Table 2 ranks the served model so): exposure off.
    _, own = two_tower_vectors(workspace, bundle, users, item_ids, split.cutoff,
                               apply_exposure=False)
    assert bundle.model.new_item_hgnn_weights is None
    np.testing.assert_allclose(own, plain, rtol=0, atol=1e-6)


def test_exact_k_at_500_for_every_type_filter(client, offline, manifest, engine):
    """k = 500 with each type filter, for every evaluation user (history left out) and for
    /similar from items of each type: exactly min(k, items left) come back. milvus-lite's
    filtered HNSW alone returned fewer for about half of these on this workspace."""
    split = offline.split
    n_by_type = manifest["n_items_by_type"]
    wrong = []
    for u in offline.users:
        user = split.user_ids[u]
        history = offline.history(user)
        for t in manifest["item_types"]:
            consumed = sum(split.item_types[split.item_index[i]] == t for i in history)
            items = client.post("/recommend", json={"user_id": user, "k": 500,
                                                    "item_types": [t]}).json()["items"]
            ids = [i["item_id"] for i in items]
            scores = [i["score"] for i in items]
            if (len(ids) != min(500, n_by_type[t] - consumed) or len(set(ids)) != len(ids)
                    or set(ids) & history or {i["item_type"] for i in items} != {t}
                    or scores != sorted(scores, reverse=True)):
                wrong.append(("recommend", user, t, len(ids)))
    catalogue = engine.catalogue()
    for item_id, item_type in list(zip(catalogue.ids, catalogue.types))[::7]:
        for t in manifest["item_types"]:
            items = client.post("/similar", json={"item_id": str(item_id), "k": 500,
                                                  "item_types": [t]}).json()["items"]
            ids = {i["item_id"] for i in items}
            if len(items) != n_by_type[t] - (item_type == t) or item_id in ids:
                wrong.append(("similar", item_id, t, len(items)))
    assert not wrong, wrong[:10]


def test_similar_never_returns_the_query_item(client, manifest, engine):
    catalogue = engine.catalogue()
    for t in manifest["item_types"]:
        for item_id in catalogue.ids[catalogue.types == t][:5]:
            body = client.post("/similar", json={"item_id": item_id, "k": 10}).json()
            assert body["item_id"] == item_id
            ids = [i["item_id"] for i in body["items"]]
            assert len(ids) == 10 and item_id not in ids
            other = [x for x in manifest["item_types"] if x != t][0]
            typed = client.post("/similar", json={"item_id": item_id, "k": 3,
                                                  "item_types": [other]}).json()
            assert {i["item_type"] for i in typed["items"]} == {other}
    # k larger than the rest of the catalogue: everything but the item itself
    item_id = catalogue.ids[0]
    body = client.post("/similar", json={"item_id": item_id, "k": 500}).json()
    assert len(body["items"]) == manifest["n_items"] - 1


def test_similar_unknown_item_is_a_404_naming_it(client):
    response = client.post("/similar", json={"item_id": "no-such-show", "k": 5})
    assert response.status_code == 404
    assert "no-such-show" in response.json()["error"]


def test_score_ranks_candidates_like_recommend(client, offline):
    user = offline.split.user_ids[offline.users[1]]
    recommended = client.post("/recommend", json={"user_id": user, "k": 20}).json()["items"]
    expected = {i["item_id"]: i["score"] for i in recommended}
    candidates = [i["item_id"] for i in reversed(recommended)]
    response = client.post("/score", json={
        "user_id": user, "item_ids": [*candidates, "ghost-item", candidates[0]]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["strategy"] == "model" and body["unknown_item_ids"] == ["ghost-item"]
    ranked = [i["item_id"] for i in body["items"]]
    assert sorted(ranked) == sorted(candidates)  # each once
    assert ranked == [i["item_id"] for i in recommended]  # the order of /recommend
    for item in body["items"]:
        assert item["score"] == pytest.approx(expected[item["item_id"]], abs=1e-5)
    cold = client.post("/score", json={"user_id": "nobody-at-all", "item_ids": candidates}).json()
    assert cold["strategy"] == "new_user"
    served = client.post("/recommend", json={"user_id": "nobody-at-all", "k": 20}).json()
    served_scores = {i["item_id"]: i["score"] for i in served["items"]}
    for item in cold["items"]:  # the same scores as /recommend's, where both have the item
        if item["item_id"] in served_scores:
            assert item["score"] == pytest.approx(served_scores[item["item_id"]], abs=1e-5)


BAD_REQUESTS = [
    ("/recommend", {"user_id": "u1", "k": 0}),
    ("/recommend", {"user_id": "u1", "k": 501}),
    ("/recommend", {"user_id": "u1", "k": "ten"}),
    ("/recommend", {"user_id": "u1", "k": 2.5}),
    ("/recommend", {"user_id": "u1", "k": True}),
    ("/recommend", {"user_id": "u1", "k": "10"}),
    ("/recommend", {"k": 5}),
    ("/recommend", {"user_id": 17}),
    ("/recommend", {"user_id": ""}),
    ("/recommend", {"user_id": "x" * 257}),
    ("/recommend", {"user_id": "u'1"}),
    ("/recommend", {"user_id": "u1", "item_types": ["film"]}),
    ("/recommend", {"user_id": "u1", "item_types": []}),
    ("/recommend", {"user_id": "u1", "item_types": "podcast"}),
    ("/recommend", {"user_id": "u1", "exclude_consumed": "maybe"}),
    ("/recommend", {"user_id": "u1", "exclude_consumed": 1}),
    ("/recommend", {"user_id": "u1", "recent_item_ids": ["i"] * 501}),
    ("/recommend", {"user_id": "u1", "colour": "blue"}),
    ("/recommend", ["u1"]),
    ("/recommend", None),
    ("/similar", {"item_id": "x", "k": -1}),
    ("/similar", {"k": 5}),
    ("/similar", {"item_id": "x", "item_types": ["podcast", "film"]}),
    ("/score", {"user_id": "u1", "item_ids": []}),
    ("/score", {"user_id": "u1", "item_ids": ["i"] * 1001}),
    ("/score", {"user_id": "u1"}),
    ("/score", {"user_id": "u1", "item_ids": [None]}),
]


@pytest.mark.parametrize(("path", "body"), BAD_REQUESTS,
                         ids=[f"{p}-{i}" for i, (p, _) in enumerate(BAD_REQUESTS)])
def test_bad_requests_are_400_with_a_message(client, path, body):
    response = client.post(path, json=body)
    assert response.status_code == 400, response.text
    message = json.dumps(response.json())
    assert "error" in response.json() and len(message) > 20


def test_malformed_json_is_a_400(client):
    response = client.post("/recommend", content=b"{user_id: u1",
                           headers={"content-type": "application/json"})
    assert response.status_code == 400


def test_not_ready_is_a_503_that_says_why(tmp_path, monkeypatch):
    """A workspace with nothing trained: the service object starts anyway, is not ready, and
    answers 503 with the fix, on the endpoints and on /readyz. (One BentoML app per process:
    the class and the middleware are used directly.)"""
    import anyio

    from serving import service as service_module
    from serving.http import EdgeMiddleware
    from serving.schemas import RecommendRequest
    from serving.service import Recommender

    monkeypatch.setenv("GFM_WORKDIR", str(tmp_path))
    monkeypatch.setenv("GFM_SET", "[]")
    monkeypatch.setattr(service_module, "_LIVE", {})  # leave the module's live service alone
    service = Recommender.inner()
    assert service.__is_ready__() is False
    response = service.recommend(user_id="u1")
    assert response.status_code == 503
    assert "gfm train two-tower" in json.loads(response.body)["error"]
    assert RecommendRequest(user_id="u1").k == 10

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    async def never_called(scope, receive, send_):
        raise AssertionError("a not-ready /readyz must not reach BentoML")

    edge = EdgeMiddleware(never_called, status=service_module._readiness,
                          openapi=service_module.openapi)
    anyio.run(edge, {"type": "http", "method": "GET", "path": "/readyz", "headers": []},
              None, send)
    assert sent[0]["status"] == 503
    body = json.loads(sent[1]["body"])
    assert body["ready"] is False and "gfm train two-tower" in body["error"]


# ---------------------------------------------------------------------------------------------
# parity with the offline evaluation


def _parity(client, offline) -> tuple[int, int, float]:
    """(lists identical, lists identical up to float ties, mean overlap) over every
    evaluation user and type."""
    identical, up_to_ties, overlaps = 0, 0, []
    for (user, t), expected in offline.top10.items():
        got = _ids(client.post("/recommend", json={"user_id": user, "k": 10, "item_types": [t]}))
        identical += got == expected
        up_to_ties += got == expected or offline.same_up_to_ties(user, got, expected)
        overlaps.append(len(set(got) & set(expected)) / len(expected))
    return identical, up_to_ties, float(np.mean(overlaps))


def test_parity_with_offline_top10(client, offline, workdir, milvus_uri, manifest, engine):
    """/recommend's top 10 per type (history left out) against `gfm evaluate`'s, for every
    evaluation user, those without history (the cold-start ranking, strategy new_user)
    included: identical with a FLAT index (two items whose scores tie to 1e-6 may be
    exchanged: float noise decides their order, offline too), mean overlap >= 0.95 with HNSW."""
    assert set(manifest["item_types"]) == set(offline.split.types)
    assert manifest["n_items"] == offline.split.n_items  # the same candidates
    assert len(offline.cold_users) > 0  # the tiny data has users without history
    cold = offline.split.user_ids[offline.cold_users[0]]
    assert client.post("/recommend", json={"user_id": cold}).json()["strategy"] == "new_user"
    n = len(offline.top10)
    identical, up_to_ties, overlap = _parity(client, offline)
    print(f"HNSW: {identical}/{n} identical ({up_to_ties} up to float ties), mean overlap "
          f"{overlap:.4f}")
    assert overlap >= 0.95

    flags = ["--workdir", str(workdir), "--set", f"serving.milvus_uri={milvus_uri}"]
    try:
        _gfm("index", "--index-type", "FLAT", *flags)
        assert client.post("/recommend", json={"user_id": "u", "k": 1}).status_code == 200
        identical, up_to_ties, overlap = _parity(client, offline)
        print(f"FLAT: {identical}/{n} identical ({up_to_ties} up to float ties), mean overlap "
              f"{overlap:.4f}")
        assert up_to_ties == n
        assert identical >= 0.99 * n  # exchanged near-ties are rare
        # an id the store has never seen: the exact ranking of the offline query, per type
        query, catalogue = _offline_unknown_user_query(offline, engine), engine.catalogue()
        for t in offline.split.types:
            expected = catalogue.top_k(query, 10, [t], set())
            got = client.post("/recommend", json={"user_id": "nobody-at-all", "k": 10,
                                                  "item_types": [t]}).json()["items"]
            assert [i["score"] for i in got] == pytest.approx([i.score for i in expected],
                                                              abs=1e-5), t
    finally:
        _gfm("index", *flags)  # back to the default (HNSW) for the other tests


# ---------------------------------------------------------------------------------------------
# fuzz: schema-driven, against the OpenAPI of the running service


@pytest.fixture(scope="module")
def real_server(workdir, milvus_uri, tmp_path_factory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("server") / "serve.log"
    url, process = _start_server(workdir, log, "--set", f"serving.milvus_uri={milvus_uri}")
    yield url
    stop_process(process)


FUZZ_EXAMPLES = 50


def test_fuzz_never_a_server_error(real_server):
    """About 50 requests generated from the service's own OpenAPI description (valid ones and
    deliberately invalid ones, on all three endpoints): never a 5xx."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis import GenerationMode
    from schemathesis.checks import not_a_server_error

    schema = schemathesis.openapi.from_url(f"{real_server}/docs.json").include(
        path_regex="^/(recommend|similar|score)$")
    strategy = (schema.as_strategy(GenerationMode.POSITIVE)
                | schema.as_strategy(GenerationMode.NEGATIVE))
    statuses: list[int] = []

    @given(case=strategy)
    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def fuzz(case) -> None:
        response = case.call(timeout=30)
        statuses.append(response.status_code)
        assert response.status_code < 500, (case.as_curl_command(), response.text)
        case.validate_response(response, checks=[not_a_server_error])

    fuzz()
    assert len(statuses) >= FUZZ_EXAMPLES // 2
    assert any(s == 200 for s in statuses) and any(400 <= s < 500 for s in statuses)


def test_fuzzed_responses_match_the_documented_schemas(real_server):
    """Valid and invalid bodies: every answer (200 and the error bodies) is what the OpenAPI
    description says it is."""
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis import GenerationMode
    from schemathesis.checks import response_schema_conformance

    schema = schemathesis.openapi.from_url(f"{real_server}/docs.json").include(
        path_regex="^/(recommend|similar|score)$")
    strategy = (schema.as_strategy(GenerationMode.POSITIVE)
                | schema.as_strategy(GenerationMode.NEGATIVE))

    @given(case=strategy)
    @settings(max_examples=30, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    def fuzz(case) -> None:
        response = case.call(timeout=30)
        case.validate_response(response, checks=[response_schema_conformance])

    fuzz()


JSON_BODY = b'{"user_id": "u1", "k": 3}'
CONTENT_TYPES = [None, "application/json", "application/json; charset=utf-8", "text/plain",
                 "application/octet-stream", "application/xml", "multipart/form-data",
                 "multipart/form-data; boundary=xyz", "multipart/mixed; boundary=xyz",
                 "application/x-www-form-urlencoded", "application/vnd.bentoml+pickle",
                 "no/such; type=", "\u00e9t\u00e9/json", "application/json\t; x=\u00ff"]
BODIES = [JSON_BODY, b"", b"{", b"[]", b"null", b"\xff\xfe\x00binary", b'{"user_id": "' + b"x" * 5000 + b'"}',
          b'--xyz\r\nContent-Disposition: form-data; name="user_id"\r\n\r\nu1\r\n--xyz--\r\n']


def test_content_types_methods_and_sizes_are_never_a_server_error(real_server):
    """Every endpoint with every content type and kind of body, other methods and paths, and
    bodies over the limit (announced and chunked): never a 5xx; forms and multipart are a
    415 that says to send JSON, oversized bodies a 413; every error body is one JSON object
    with "error"."""
    failures = []

    def check(response, expect: int | None = None) -> None:
        what = (response.request.method, str(response.request.url),
                response.request.headers.get("content-type"), response.status_code,
                response.text[:200])
        if response.status_code >= 500 or (expect is not None and response.status_code != expect):
            failures.append(what)
        elif response.status_code >= 400 and response.request.method != "HEAD":
            try:
                body = response.json()
            except ValueError:
                body = None
            if response.request.url.path in ("/recommend", "/similar", "/score") and not (
                    isinstance(body, dict) and isinstance(body.get("error"), str)):
                failures.append(what)

    with httpx.Client(base_url=real_server, timeout=30) as http:
        for path in ("/recommend", "/similar", "/score"):
            for content_type in CONTENT_TYPES:
                headers = {"content-type": content_type.encode("latin-1")} if content_type \
                    else {}
                form = content_type is not None and content_type.split(";")[0] in (
                    "multipart/form-data", "multipart/mixed",
                    "application/x-www-form-urlencoded", "application/vnd.bentoml+pickle")
                for body in BODIES:
                    response = http.post(path, content=body, headers=headers)
                    check(response, 415 if form else None)
                    if form:
                        assert "application/json" in response.json()["error"]
            # a real multipart upload (what a browser form or `curl -F` sends)
            check(http.post(path, files={"body": ("body.json", JSON_BODY, "application/json")}),
                  415)
            check(http.post(path, data={"user_id": "u1"}), 415)
            for method in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"):
                check(http.request(method, path, content=JSON_BODY))
            # over the limit: announced by Content-Length, and streamed (chunked)
            big = b'{"user_id": "' + b"x" * (2 << 20) + b'"}'
            check(http.post(path, content=big, headers={"content-type": "application/json"}),
                  413)
            chunks = (big[i:i + 65536] for i in range(0, len(big), 65536))
            check(http.post(path, content=chunks, headers={"content-type": "application/json"}),
                  413)
        for method in ("GET", "POST", "PUT"):
            for path in ("/", "/nope", "/recommend/x", "/readyz", "/docs.json", "/%00", "/..%2f"):
                check(http.request(method, path, content=JSON_BODY))
                check(http.request(method, path, content=JSON_BODY,
                                   headers={"content-type": "\u00e9t\u00e9".encode("latin-1")}))
    assert not failures, failures[:10]


# ---------------------------------------------------------------------------------------------
# a real `gfm serve` (`bentoml serve` on loopback)


def test_real_server(real_server, client, offline, manifest):
    user = offline.split.user_ids[offline.users[0]]
    with httpx.Client(base_url=real_server, timeout=30) as http:
        assert http.get("/readyz").status_code == 200
        known = http.post("/recommend", json={"user_id": user, "k": 10})
        assert known.status_code == 200
        items = known.json()["items"]
        assert len(items) == 10
        assert all(set(i) == {"item_id", "item_type", "score"} for i in items)
        assert all(i["item_type"] in manifest["item_types"] for i in items)
        unknown = http.post("/recommend", json={"user_id": "brand-new-user", "k": 5}).json()
        assert len(unknown["items"]) == 5 and unknown["strategy"] == "new_user"
        for bad in ({"user_id": user, "k": 0}, {"user_id": user, "k": 501}, {"k": 3}):
            assert http.post("/recommend", json=bad).status_code == 400
        query = items[0]["item_id"]
        similar = http.post("/similar", json={"item_id": query, "k": 10}).json()["items"]
        assert len(similar) == 10 and query not in {i["item_id"] for i in similar}
        assert http.post("/similar", json={"item_id": "zz-unknown"}).status_code == 404
        scored = http.post("/score", json={"user_id": user,
                                           "item_ids": [i["item_id"] for i in items[::-1]]})
        assert [i["item_id"] for i in scored.json()["items"]] == [i["item_id"] for i in items]
    # the same answer as in-process, for the same model, features and index
    assert _ids(known) == _ids(client.post("/recommend", json={"user_id": user, "k": 10}))


# ---------------------------------------------------------------------------------------------
# the documented examples: ids of the demo workspace (`make demo`: small profile, seed 7)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "serving.md"
DEMO_ID = r"(?:u|pc|ab)\d{3,}(?:e\d{3})?"  # the synthetic generator's user and item ids
CURL = re.compile(r"```bash\n(curl -s localhost:3000(/\w+) .*?)\n```\n```json\n(.*?)\n```",
                  re.S)


def _documented_requests() -> list[tuple[str, str, dict, dict]]:
    """(curl command, path, body, documented answer) of each curl example of docs/serving.md."""
    out = []
    for command, path, answer in CURL.findall(DOCS.read_text()):
        body = json.loads(re.search(r"-d '(.*)'", command, re.S).group(1))
        out.append((command, path, body, json.loads(answer)))
    return out


def _openapi_example_ids() -> set[str]:
    from serving.schemas import RecommendRequest, ScoreRequest, SimilarRequest

    found: set[str] = set()
    for model in (RecommendRequest, SimilarRequest, ScoreRequest):
        for field in model.model_fields.values():
            for example in field.examples or []:
                found.update(example if isinstance(example, list) else [example])
    return found


def test_documented_examples_name_ids_of_the_demo(tmp_path):
    """Every id in docs/serving.md and in the OpenAPI examples that looks like a demo id is
    a user or a top-level item of `make demo`'s data (small, seed 7); the ids the docs show
    as unknown are not."""
    import pyarrow.parquet as pq

    raw = tmp_path / "demo"
    _gfm("generate", "--workdir", str(raw), "--profile", "small", "--seed", "7")
    users = set(pq.read_table(raw / "raw" / "users.parquet").column("user_id").to_pylist())
    items = pq.read_table(raw / "raw" / "items.parquet", columns=["item_id", "parent_id"])
    top_level = {i for i, parent in zip(items.column("item_id").to_pylist(),
                                         items.column("parent_id").to_pylist()) if parent is None}
    text = DOCS.read_text()
    documented = set(re.findall(rf'"({DEMO_ID})"', text)) | {
        i for i in _openapi_example_ids() if re.fullmatch(DEMO_ID, i)}
    assert len(documented) >= 4
    missing = sorted(i for i in documented if i not in (users if i.startswith("u") else top_level))
    assert not missing, f"docs/serving.md or the OpenAPI examples name ids not in the demo: {missing}"
    unknown = set(re.findall(r'"unknown(?:_recent)?_item_ids": \[([^\]]*)\]', text))
    unknown_ids = {i for group in unknown for i in re.findall(r'"([^"]+)"', group)}
    assert unknown_ids and not unknown_ids & (users | top_level)
    assert len(_documented_requests()) >= 3  # the curl examples parse


@pytest.fixture(scope="module")
def demo_url(tmp_path_factory) -> Iterator[str]:
    """`gfm serve` on a copy of the workspace GFM_DEMO_WORKDIR names (`make demo`)."""
    source = os.environ.get("GFM_DEMO_WORKDIR")
    if not source:
        pytest.skip("set GFM_DEMO_WORKDIR to a `make demo` workspace (small profile, seed 7) "
                    "to run docs/serving.md's examples against it")
    copy = tmp_path_factory.mktemp("demo") / "ws"
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns("rolling"))
    log = copy.parent / "serve.log"
    url, process = _start_server(copy, log)
    yield url
    stop_process(process)


def _shape(answer: dict) -> dict:
    """What a documented answer promises, beyond the model's exact scores."""
    return {"keys": sorted(answer), "n_items": len(answer.get("items", [])),
            **{k: answer[k] for k in ("strategy", "item_id", "unknown_item_ids",
                                      "unknown_recent_item_ids") if k in answer}}


def test_documented_examples_run_against_the_demo(demo_url):
    """Each curl command of docs/serving.md, run as written against the demo workspace,
    answers as documented: the same fields, number of items, strategy and unknown ids (the
    items and scores depend on the trained model); the Python examples run."""
    port = demo_url.rsplit(":", 1)[1]
    for command, _path, _body, documented in _documented_requests():
        done = subprocess.run(["bash", "-c", command.replace("localhost:3000",
                                                             f"127.0.0.1:{port}")],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, (command, done.stderr)
        answer = json.loads(done.stdout)
        assert _shape(answer) == _shape(documented), (command, answer)
    for block in re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.S):
        code = block.replace("http://127.0.0.1:3000", demo_url)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              timeout=120)
        assert done.returncode == 0, (code, done.stderr[-2000:])


# ---------------------------------------------------------------------------------------------
# a copied, then moved, workspace


def _online_tables(workdir: Path) -> dict[str, int]:
    """Rows per table of the workspace's SQLite online store."""
    con = sqlite3.connect(workdir / "feature_repo" / "data" / "online_store.db")
    try:
        names = [r[0] for r in con.execute(
            "select name from sqlite_master where type = 'table' order by 1").fetchall()]
        return {n: con.execute(f'select count(*) from "{n}"').fetchall()[0][0] for n in names}
    finally:
        con.close()


def _paths_read(workdir: Path) -> bytes:
    """What a workspace reads its files through: the Feast registry's file sources (of the
    data sources and of the feature views) and SQLite online tables, the repository spec, the
    warehouse's view definitions, the index manifests. (The registry's version history of
    the views, lineage that nothing reads, keeps the paths a view once had.)"""
    import duckdb
    from feast.protos.feast.core.Registry_pb2 import Registry

    con = duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True)
    try:
        views = [r[0] for r in con.execute(
            "select sql from duckdb_views() where not internal").fetchall()]
    finally:
        con.close()
    repo = workdir / "feature_repo"
    registry = Registry()
    registry.ParseFromString((repo / "data" / "registry.db").read_bytes())
    sources = [s.file_options.uri for s in registry.data_sources]
    sources += [v.spec.batch_source.file_options.uri for v in registry.feature_views]
    sources += [o.sqlite_table.path for o in registry.infra.infra_objects]
    assert len(sources) > 10 and len(views) > 5
    return b"\n".join([*(x.encode() for x in sources + views),
                       (repo / "feature_repo.json").read_bytes(),
                       *[p.read_bytes() for p in (workdir / "milvus").glob("*.json")]])


def test_a_copied_workspace_never_touches_the_original_and_a_moved_one_works(
        workdir, client, offline, tmp_path_factory):
    """Feature-store steps on a copy (as the paper's Table 3 runs them) leave the original's
    online store and registry as they were (an apply in a copy used to drop every table of
    the original's SQLite store); the copy, moved and its source deleted, transforms,
    indexes, evaluates and serves from its own files only, the same answers as the original."""
    before = _online_tables(workdir)
    registry = (workdir / "feature_repo" / "data" / "registry.db").read_bytes()
    assert before and all(before.values())

    base = tmp_path_factory.mktemp("copies")
    first, moved = base / "first", base / "moved"
    shutil.copytree(workdir, first, ignore=shutil.ignore_patterns("index.db"))
    _gfm("features", "apply", "--rebuild", "--workdir", str(first))
    _gfm("features", "materialize", "--workdir", str(first))
    assert _online_tables(workdir) == before
    assert (workdir / "feature_repo" / "data" / "registry.db").read_bytes() == registry
    assert _online_tables(first) == before
    assert str(workdir).encode() not in _paths_read(first)

    shutil.copytree(first, moved)
    shutil.rmtree(first)
    _gfm("transform", "--workdir", str(moved))
    _gfm("index", "--index-type", "FLAT", "--workdir", str(moved))  # exact: comparable
    _gfm("evaluate", "--workdir", str(moved))
    assert (moved / "reports" / "metrics.json").exists()
    read = _paths_read(moved)
    assert str(first).encode() not in read and str(workdir).encode() not in read
    assert _online_tables(workdir) == before

    log = tmp_path_factory.mktemp("moved_server") / "serve.log"
    url, process = _start_server(moved, log)
    try:
        with httpx.Client(base_url=url, timeout=30) as http:
            for (user, t), expected in list(offline.top10.items())[:40]:
                got = _ids(http.post("/recommend", json={"user_id": user, "k": 10,
                                                         "item_types": [t]}))
                assert got == expected or offline.same_up_to_ties(user, got, expected)
    finally:
        stop_process(process)


# ---------------------------------------------------------------------------------------------
# scale-out: two workers, the milvus-lite server, the Redis online store


def test_scale_out_two_workers_redis_and_milvus_server(workdir, milvus_uri, redis_server,
                                                      real_server, tmp_path_factory, offline):
    scaled = tmp_path_factory.mktemp("scaled") / "ws"
    shutil.copytree(workdir, scaled, ignore=shutil.ignore_patterns("index.db"))
    (scaled / "gfm.yaml").write_text(
        "features:\n"
        "  online_store: redis\n"
        f"  redis_connection_string: \"{redis_server}\"\n"
        "  project: gfm_serving_test\n"
        "serving:\n"
        f"  milvus_uri: \"{milvus_uri}\"\n"
        "  workers: 2\n")
    _gfm("features", "apply", "--workdir", str(scaled))
    _gfm("features", "materialize", "--workdir", str(scaled))
    log = tmp_path_factory.mktemp("scaled_server") / "serve.log"
    url, process = _start_server(scaled, log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S  # /readyz reached one worker: wait for both
        while _workers(log, "Service gfm_recommender initialized") != {"1", "2"}:
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.5)
        users = [offline.split.user_ids[u] for u in offline.users[:20]]
        with httpx.Client(base_url=real_server, timeout=30) as http:
            single = {u: _ids(http.post("/recommend", json={"user_id": u, "k": 10}))
                      for u in users}
        answers: dict[str, list[list[str]]] = {u: [] for u in users}
        errors: list[str] = []

        def hammer(chunk: list[str]) -> None:
            for u in chunk * 3:  # a new connection each time: the kernel picks the worker
                response = httpx.post(f"{url}/recommend", json={"user_id": u, "k": 10},
                                      timeout=30)
                if response.status_code != 200:
                    errors.append(response.text)
                else:
                    answers[u].append(_ids(response))

        threads = [threading.Thread(target=hammer, args=(users[i::8],)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert not errors
        for u in users:  # Redis + Milvus server give what SQLite + the same index gave
            assert answers[u] and all(a == single[u] for a in answers[u])
    finally:
        stop_process(process)
    served_by = _workers(log, "path=/recommend", "status=200")
    assert served_by == {"1", "2"}, f"requests were answered by workers {served_by}"


def _workers(log: Path, *needles: str) -> set[str]:
    """BentoML worker ids ([entry_service:gfm_recommender:<id>]) of the log lines with these."""
    return {line.split("gfm_recommender:")[1].split("]")[0]
            for line in log.read_text().splitlines()
            if "gfm_recommender:" in line and all(n in line for n in needles)}
