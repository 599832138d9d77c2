"""The Dagster code location (orchestrate/) on a copy of the tiny pipeline workspace: its asset
graph holds the dbt models and every stage, the web UI (`make dagster`) lists that graph, and
its `refresh` job, run by Dagster's own CLI, moves the workspace one day on as `gfm refresh`
does.

Needs the `orchestrate` extra (`make setup-orchestrate`): without it these tests skip, unless
GFM_REQUIRE_DAGSTER=1 (CI), where they fail instead.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

pytestmark = [pytest.mark.integration, pytest.mark.orchestrate]


def _served(workdir: Path) -> str:
    return json.loads((workdir / "models" / "two_tower" / "serving.json").read_text())["tag"]


@pytest.fixture(scope="module")
def location(tiny_pipeline_workspace, tmp_path_factory):
    """(workdir, the code location's Definitions) on a copy of the tiny workspace."""
    try:
        import dagster  # noqa: F401
        import dagster_dbt  # noqa: F401
    except ImportError as exc:
        if os.environ.get("GFM_REQUIRE_DAGSTER") == "1":
            pytest.fail(f"GFM_REQUIRE_DAGSTER=1 but the orchestrate extra is missing ({exc})")
        pytest.skip(f"the orchestrate extra is not installed ({exc}): make setup-orchestrate")
    from orchestrate.assets import Target, build_definitions

    workdir = tmp_path_factory.mktemp("dagster") / "ws"
    shutil.copytree(tiny_pipeline_workspace, workdir, symlinks=True)
    return workdir, build_definitions(Target(workdir))


def test_the_asset_graph_holds_the_dbt_models_and_every_stage(location):
    _, defs = location
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert {"raw/interactions", "stg_interactions", "co_interaction_edges", "user_history",
            "item_catalog", "text_embeddings", "hgnn_vectors", "feature_views", "online_store",
            "two_tower_model", "milvus_index", "retired_versions"} <= keys
    assert not {k for k in keys if k.startswith("user_avg_hgnn")}  # built by feature_views

    def upstream(name: str) -> set[str]:
        seen, todo = set(), [graph.get(dg_key(name))]
        while todo:
            node = todo.pop()
            for parent in node.parent_keys:
                if parent.to_user_string() not in seen:
                    seen.add(parent.to_user_string())
                    todo.append(graph.get(parent))
        return seen

    # the lineage the daily job runs in: raw data -> dbt -> vectors -> features -> model -> index
    assert {"raw/interactions", "user_history", "hgnn_vectors",
            "feature_views"} <= upstream("milvus_index")
    assert {schedule.name for schedule in defs.schedules} == {"daily_refresh",
                                                              "weekly_static_refresh"}


def _dagster_env(workdir: Path, home: Path) -> dict[str, str]:
    """What `make dagster` sets: Dagster's state in `home`, telemetry off, the workspace."""
    home.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    return {**os.environ, "GFM_WORKDIR": str(workdir), "DAGSTER_HOME": str(home),
            "DAGSTER_DISABLE_TELEMETRY": "1"}


def test_the_web_ui_lists_the_asset_graph(location, tmp_path):
    """`dagster-webserver` on the code location, as `make dagster` starts it: the page loads,
    and its GraphQL API (what the UI draws the asset graph from) lists every stage and the dbt
    models, in their groups and lineage."""
    from gfm.ports import free_local_port

    workdir, _ = location
    port = free_local_port()
    log = tmp_path / "webserver.log"
    query = "{ assetNodes { assetKey { path } groupName dependencyKeys { path } } }"
    with log.open("w") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "dagster_webserver", "-m", "orchestrate.definitions",
             "-h", "127.0.0.1", "-p", str(port)],
            stdout=handle, stderr=subprocess.STDOUT, env=_dagster_env(workdir, tmp_path / "home"))
    url = f"http://127.0.0.1:{port}"
    try:
        deadline, answer = time.monotonic() + 180, None
        while answer is None:
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            try:
                response = httpx.post(f"{url}/graphql", json={"query": query}, timeout=30)
                if response.status_code == 200 and (response.json().get("data") or {}).get(
                        "assetNodes"):
                    answer = response.json()["data"]["assetNodes"]
            except httpx.HTTPError:
                pass
            time.sleep(1)
        page = httpx.get(f"{url}/asset-groups", timeout=30)
    finally:
        process.terminate()
        process.wait(timeout=60)
    assert page.status_code == 200 and "<html" in page.text.lower()
    nodes = {"/".join(n["assetKey"]["path"]): n for n in answer}
    assert {"raw/interactions", "user_history", "co_interaction_edges", "text_embeddings",
            "hgnn_vectors", "feature_views", "online_store", "two_tower_model", "milvus_index",
            "retired_versions"} <= set(nodes)
    assert nodes["hgnn_vectors"]["groupName"] == "static_layer"
    assert nodes["two_tower_model"]["groupName"] == "dynamic_layer"
    parents = {"/".join(k["path"]) for k in nodes["hgnn_vectors"]["dependencyKeys"]}
    assert "text_embeddings" in parents


def dg_key(name: str):
    import dagster as dg

    return dg.AssetKey(name.split("/"))


def test_the_refresh_job_moves_the_workspace_one_day_on(location, tmp_path):
    """`dagster job execute` of `refresh` (a subprocess: its embedded milvus-lite stays out of
    this process): the cutoff moves, a new two-tower is served, warm-started, the HGNN kept."""
    from gfm.config import load_config
    from gfm.timeline import resolve_timeline
    from gfm.workspace import Workspace

    workdir, _ = location
    old = resolve_timeline(load_config(workdir).timeline, Workspace.at(workdir)).cutoff
    new = (old + dt.timedelta(days=1)).date()
    served, hgnn = _served(workdir), sorted((workdir / "features" / "item_hgnn_embedding").glob(
        "*.parquet"))
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(
        {"ops": {"raw_at_cutoff": {"config": {"to": str(new)}}}}))
    env = {**_dagster_env(workdir, tmp_path / "dagster_home"),
           "GFM_SET": json.dumps(["two_tower.epochs=2", "hgnn.max_epochs=2"])}
    result = subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), "job", "execute", "-m",
         "orchestrate.definitions", "-j", "refresh", "-c", str(tmp_path / "run.yaml")],
        capture_output=True, text=True, timeout=1200, env=env)
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-4000:]}"
    assert yaml.safe_load((workdir / "gfm.yaml").read_text())["timeline"]["cutoff"] == new
    assert _served(workdir) != served
    record = json.loads((workdir / "refresh.json").read_text())
    assert record["status"] == "done" and record["to"] == str(new) and not record["static"]
    assert sorted((workdir / "features" / "item_hgnn_embedding").glob("*.parquet")) == hgnn
    from training.two_tower.store import load_bundle

    bundle = load_bundle(Workspace.at(workdir))
    assert bundle.metadata["warm_started_from"] == served.split(":", 1)[1]
