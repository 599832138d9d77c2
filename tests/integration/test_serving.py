"""Serving end to end on the tiny workspace: `gfm index`, the BentoML service in-process (ASGI)
and as a real `gfm serve`, a schema-driven fuzz test, parity with `gfm evaluate`'s top 10, and
the scale-out mode (two workers, a milvus-lite server, the Redis online store).

One workspace for the module, built by `gfm pipeline` in a subprocess (so no embedded
milvus-lite stays open in this process). A `milvus_lite server` then holds its index and every
service of the module reaches it by URI: several processes share one index, as in production.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
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
from serving.milvus import start_lite_server, stop_process

pytestmark = pytest.mark.integration

PIPELINE_FLAGS = ["--set", "hgnn.max_epochs=2", "--set", "two_tower.epochs=2"]
START_TIMEOUT_S = 180


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    port = _free_port()
    handle = log.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "gfm.cli.main", "serve", "--workdir", str(workdir), "--port",
         str(port), *flags], stdout=handle, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, log)
    except BaseException:
        stop_process(process)
        raise
    return url, process


# ---------------------------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="module")
def workdir(tiny_raw_workspace, tmp_path_factory) -> Path:
    """The tiny workspace through every stage of `gfm pipeline`, `gfm index` (HNSW) included."""
    workdir = tmp_path_factory.mktemp("serving") / "ws"
    shutil.copytree(tiny_raw_workspace / "raw", workdir / "raw")
    _gfm("pipeline", "--workdir", str(workdir), *PIPELINE_FLAGS, timeout=1200)
    return workdir


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
    user's top 10 per type with history excluded (the primary setting)."""

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
        scores = self.scores = retriever.score(self.users)  # (n_users, n_items)
        self.row = {split.user_ids[u]: r for r, u in enumerate(self.users)}
        history_rows, history_items = split.histories.take(self.users)
        self.top10: dict[tuple[str, str], list[str]] = {}
        for t in split.types:
            columns = split.type_items[t]
            masked = scores[:, columns].copy()
            of_type = split.item_types[history_items] == t
            masked[history_rows[of_type], split.type_position[history_items[of_type]]] = -np.inf
            for row, top in enumerate(m.top_k(masked, 10)):
                user = split.user_ids[self.users[row]]
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
    # popular items: each type's list is sorted by streams, then id
    for rows in manifest["popular"].values():
        assert rows == sorted(rows, key=lambda r: (-r[1], r[0]))
        assert rows[0][1] > 0


# ---------------------------------------------------------------------------------------------
# in-process


def test_ready_and_openapi_describes_flat_bodies(client):
    assert client.get("/readyz").status_code == 200
    spec = client.get("/docs.json").json()
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


def test_unknown_user_gets_popular_items(client, manifest):
    response = client.post("/recommend", json={"user_id": "nobody-at-all", "k": 5})
    assert response.status_code == 200
    body = response.json()
    assert body["strategy"] == "popularity" and len(body["items"]) == 5
    pool = sorted(((n, i) for rows in manifest["popular"].values() for i, n in rows),
                  key=lambda x: (-x[0], x[1]))
    assert [i["item_id"] for i in body["items"]] == [i for _, i in pool[:5]]
    t = manifest["item_types"][-1]
    typed = client.post("/recommend", json={"user_id": "nobody-at-all", "k": 5,
                                            "item_types": [t]}).json()
    assert [i["item_id"] for i in typed["items"]] == [i for i, _ in manifest["popular"][t][:5]]


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
    # only unknown recent items: popularity
    fallback = client.post("/recommend", json={"user_id": "new-user-1", "k": 5,
                                               "recent_item_ids": ["not-an-item"]}).json()
    assert fallback["strategy"] == "popularity"


def test_similar_never_returns_the_query_item(client, manifest):
    for t, rows in manifest["popular"].items():
        for item_id, _ in rows[:5]:
            body = client.post("/similar", json={"item_id": item_id, "k": 10}).json()
            assert body["item_id"] == item_id
            ids = [i["item_id"] for i in body["items"]]
            assert len(ids) == 10 and item_id not in ids
            other = [x for x in manifest["item_types"] if x != t][0]
            typed = client.post("/similar", json={"item_id": item_id, "k": 3,
                                                  "item_types": [other]}).json()
            assert {i["item_type"] for i in typed["items"]} == {other}
    # k larger than the rest of the catalogue: everything but the item itself
    item_id = manifest["popular"][manifest["item_types"][0]][0][0]
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
    assert cold["strategy"] == "popularity"
    streams = [i["score"] for i in cold["items"]]
    assert streams == sorted(streams, reverse=True)


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
    answers 503 with the fix. (One BentoML app per process: the class is used directly.)"""
    from serving.schemas import RecommendRequest
    from serving.service import Recommender

    monkeypatch.setenv("GFM_WORKDIR", str(tmp_path))
    monkeypatch.setenv("GFM_SET", "[]")
    service = Recommender.inner()
    assert service.__is_ready__() is False
    response = service.recommend(user_id="u1")
    assert response.status_code == 503
    assert "gfm train two-tower" in json.loads(response.body)["error"]
    assert RecommendRequest(user_id="u1").k == 10


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


def test_parity_with_offline_top10(client, offline, workdir, milvus_uri, manifest):
    """/recommend's top 10 per type (history left out) against `gfm evaluate`'s, for every
    evaluation user: identical with a FLAT index (two items whose scores tie to 1e-6 may be
    exchanged: float noise decides their order, offline too), mean overlap >= 0.95 with HNSW."""
    assert set(manifest["popular"]) == set(offline.split.types)
    assert manifest["n_items"] == offline.split.n_items  # the same candidates
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
        assert len(unknown["items"]) == 5 and unknown["strategy"] == "popularity"
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
