"""The Spark settings' parts that need no Spark: the refusal without the extra, failures read
from a child run's run_results.json, the DuckDB views over Spark's Parquet tables, and the
Feast repository's offline store (tests/integration/test_spark.py runs the real thing)."""

from __future__ import annotations

import importlib.util
import json
import os

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gfm.config import load_config
from gfm.errors import GfmError
from gfm.workspace import Workspace
from transforms import warehouse


def _spark_config(tmp_path):
    return load_config(tmp_path, overrides={"warehouse": {"engine": "spark"}})


def test_spark_without_the_extra_says_how_to_install_it(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pyspark" else real(name, *a))
    workspace = Workspace.at(tmp_path)
    with pytest.raises(GfmError, match=r'pip install -e "\.\[spark\]"'):
        warehouse._run_dbt_on_spark(workspace, _spark_config(tmp_path), [])


def test_spark_offline_store_without_the_extra_says_how_to_install_it(tmp_path, monkeypatch):
    from feature_store.repo import feature_store_yaml

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "pyspark" else real(name, *a))
    config = load_config(tmp_path, overrides={"features": {"offline_store": "spark"}})
    with pytest.raises(GfmError, match=r'features.offline_store is spark.*pip install -e '
                                       r'"\.\[spark\]"'):
        feature_store_yaml(config)
    assert "type: spark" not in feature_store_yaml(load_config(tmp_path))  # duckdb: no check


def test_failures_of_a_child_run_are_read_from_run_results(tmp_path):
    results = {"results": [
        {"unique_id": "model.gfm.stg_items", "status": "error", "message": "bad\nfile"},
        {"unique_id": "model.gfm.item_catalog", "status": "skipped", "message": None},
        {"unique_id": "test.gfm.not_null_x.abc", "status": "pass", "message": None},
    ]}
    path = tmp_path / "run_results.json"
    path.write_text(json.dumps(results))
    lines, failed_staging = warehouse._describe_run_results(path)
    assert failed_staging
    assert lines == ["  - model stg_items: error: bad\n      file",
                     "  (1 downstream node(s) skipped)"]
    assert warehouse._describe_run_results(tmp_path / "absent.json") == ([], False)


def test_spark_tables_become_movable_duckdb_views(tmp_path):
    workspace = Workspace.at(tmp_path / "ws")
    config = _spark_config(workspace.root)
    tables = warehouse.spark_warehouse_dir(workspace, config) / "gfm.db"
    for name, n in (("item_catalog", 3), ("user_history", 2)):
        (tables / name).mkdir(parents=True)
        for part in range(2):  # Spark writes one file per task
            pq.write_table(pa.table({"id": [f"{name}{part}{i}" for i in range(n)]}),
                           tables / name / f"part-{part:05d}.snappy.parquet")
    (tables / "empty_dir").mkdir()  # no Parquet file: not a table
    (tmp_path / "ws" / "warehouse.duckdb").write_text("stale")  # replaced whole

    assert warehouse.publish_spark_tables(workspace, config) == ["item_catalog", "user_history"]
    moved = tmp_path / "moved"
    (tmp_path / "ws").rename(moved)  # paths are relative to the workspace
    assert warehouse.warehouse_query(Workspace.at(moved),
                                     "select count(*) from item_catalog") == [(6,)]
    con = duckdb.connect(str(moved / "warehouse.duckdb"), read_only=True)
    assert "spark-warehouse/gfm.db/user_history/*.parquet" in con.execute(
        "select sql from duckdb_views() where view_name = 'user_history'").fetchone()[0]
    con.close()


def test_no_spark_tables_is_an_error_not_an_empty_warehouse(tmp_path):
    workspace = Workspace.at(tmp_path)
    config = _spark_config(tmp_path)
    (warehouse.spark_warehouse_dir(workspace, config) / "gfm.db").mkdir(parents=True)
    with pytest.raises(GfmError, match="holds no Parquet tables"):
        warehouse.publish_spark_tables(workspace, config)


def test_the_offline_store_setting_reaches_feast_with_the_warehouse_spark_settings(tmp_path):
    """Needs the spark extra (feature_store_yaml checks it is there): skipped without it, as
    on a machine that ran only `make setup`, unless GFM_REQUIRE_SPARK=1 (CI)."""
    import yaml

    from feature_store.repo import feature_store_yaml
    from gfm.spark import require_spark

    try:
        require_spark("features.offline_store", ("pyspark",))
    except GfmError as exc:
        if os.environ.get("GFM_REQUIRE_SPARK") == "1":
            pytest.fail(f"GFM_REQUIRE_SPARK=1 but {exc}")
        pytest.skip(str(exc))

    assert yaml.safe_load(feature_store_yaml(load_config(tmp_path)))["offline_store"] == {
        "type": "duckdb"}
    config = load_config(tmp_path, overrides={
        "features": {"offline_store": "spark"},
        "warehouse": {"spark_master": "spark://head:7077", "spark_driver_memory": "8g"}})
    offline = yaml.safe_load(feature_store_yaml(config))["offline_store"]
    assert offline["type"] == "spark"
    assert offline["spark_conf"]["spark.master"] == "spark://head:7077"
    assert offline["spark_conf"]["spark.driver.memory"] == "8g"
    assert offline["spark_conf"]["spark.sql.session.timeZone"] == "UTC"
