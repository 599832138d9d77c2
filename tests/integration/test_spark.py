"""warehouse.engine and features.offline_store spark on the tiny workspace: `gfm pipeline` runs
end to end with the dbt models on a local Spark session and Feast's Spark offline store; its
marts equal DuckDB's row for row, and its point-in-time training set equals the DuckDB store's.

Needs the `spark` extra and Java (`make setup-spark`): without them these tests skip, unless
GFM_REQUIRE_SPARK=1 (CI), where they fail instead.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from gfm.errors import GfmError
from gfm.spark import require_spark
from tests.integration.conftest import PIPELINE_FLAGS
from training.two_tower.export import first_difference
from transforms.warehouse import HISTORY_STATE, transform_models

pytestmark = [pytest.mark.integration, pytest.mark.spark]


def _spark_missing() -> str | None:
    try:
        require_spark("warehouse.engine", ("pyspark", "dbt.adapters.spark"))
    except GfmError as exc:
        return f"{exc} (make setup-spark installs both, and Debian's openjdk-17 as root)"
    return None


@pytest.fixture(scope="module")
def spark_workspace(tiny_raw_workspace, tmp_path_factory) -> Path:
    """The tiny workspace through `gfm pipeline` with both Spark settings."""
    missing = _spark_missing()
    if missing:
        if os.environ.get("GFM_REQUIRE_SPARK") == "1":
            pytest.fail(f"GFM_REQUIRE_SPARK=1 but {missing}")
        pytest.skip(missing)
    workdir = tmp_path_factory.mktemp("spark") / "ws"
    shutil.copytree(tiny_raw_workspace / "raw", workdir / "raw")
    result = subprocess.run(
        [sys.executable, "-m", "gfm.cli.main", "pipeline", "--workdir", str(workdir),
         *PIPELINE_FLAGS, "--set", "warehouse.engine=spark",
         "--set", "features.offline_store=spark",
         "--set", "warehouse.spark_shuffle_partitions=2"],
        capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return workdir


def _connect(workdir: Path) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True,
                          config={"file_search_path": str(workdir)})


def test_spark_marts_equal_duckdb_marts_row_for_row(spark_workspace, tiny_pipeline_workspace):
    spark, local = _connect(spark_workspace), _connect(tiny_pipeline_workspace)
    try:
        models = transform_models()
        assert {"co_interaction_edges", "user_history", "stg_items"} <= set(models)
        for model in models:
            # read from the Parquet tables Spark wrote, not from anything DuckDB built
            definition = spark.execute("select sql from duckdb_views() where view_name = ?",
                                       [model]).fetchone()
            assert definition and "spark-warehouse/gfm.db/" in definition[0], model
            described = ("select column_name, data_type from information_schema.columns "
                         "where table_name = ? order by ordinal_position")
            assert (spark.execute(described, [model]).fetchall()
                    == local.execute(described, [model]).fetchall()), model
            query = f"select * from {model} order by all"
            rows = spark.execute(query).fetchall()
            assert len(rows) > 0 and rows == local.execute(query).fetchall(), model
    finally:
        spark.close()
        local.close()


def test_the_pipeline_on_spark_serves_and_evaluates(spark_workspace):
    metrics = (spark_workspace / "reports" / "metrics.json").read_text()
    assert '"unified_2t"' in metrics
    assert list((spark_workspace / "features" / "item_hgnn_embedding").glob("*.parquet"))
    assert (spark_workspace / "spark-warehouse" / "metastore_db").is_dir()


def test_spark_training_set_equals_the_duckdb_one(spark_workspace, tiny_pipeline_workspace,
                                                  tmp_path):
    """`gfm features training-set` through the Spark offline store gives the DuckDB store's
    rows, in the same order, with the same features (vectors up to float tolerance: each
    workspace trained its own HGNN, from equal marts)."""
    frames = {}
    for name, workdir in (("spark", spark_workspace), ("duckdb", tiny_pipeline_workspace)):
        out = tmp_path / f"{name}.parquet"
        # a child process: Spark's JVM must not outlive this test in the test process
        result = subprocess.run([sys.executable, "-m", "gfm.cli.main", "features",
                                 "training-set", "--workdir", str(workdir), "--out", str(out)],
                                capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stderr[-3000:]
        frames[name] = pd.read_parquet(out)
    spark, local = frames["spark"], frames["duckdb"]
    assert "SparkSource" in (spark_workspace / "feature_repo" / "data_sources.py").read_text()
    assert len(local) > 100
    assert first_difference(spark, local, atol=1e-5) is None


def test_a_later_cutoff_appends_spark_snapshots_equal_to_duckdb_from_scratch(
        spark_workspace, tiny_pipeline_workspace, tmp_path):
    """user_history is incremental on Spark too (dbt-spark's append on the Parquet table).
    Last in this module: it moves the Spark workspace's cutoff on by two days."""
    local = _connect(tiny_pipeline_workspace)
    try:
        cutoff = local.execute("select max(snapshot_ts) from user_history").fetchall()[0][0]
    finally:
        local.close()
    later = (cutoff + dt.timedelta(days=2)).date()
    spark_flags = ["--set", "warehouse.engine=spark", "--set",
                   "warehouse.spark_shuffle_partitions=2"]
    scratch = tmp_path / "scratch"
    shutil.copytree(tiny_pipeline_workspace / "raw", scratch / "raw")
    for workdir, flags in ((spark_workspace, spark_flags), (scratch, [])):
        result = subprocess.run(
            [sys.executable, "-m", "gfm.cli.main", "transform", "--workdir", str(workdir),
             "--set", f"timeline.cutoff={later}", *flags],
            capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, result.stderr[-3000:]
    state = json.loads((spark_workspace / "dbt" / HISTORY_STATE).read_text())
    assert state["incremental"] is True
    spark, expected = _connect(spark_workspace), _connect(scratch)
    try:
        query = "select * from user_history where snapshot_ts >= ? order by all"
        window_start = expected.execute("select min(snapshot_ts) from user_history"
                                        ).fetchall()[0][0]
        rows = expected.execute(query, [window_start]).fetchall()
        assert len(rows) > 1000 and spark.execute(query, [window_start]).fetchall() == rows
    finally:
        spark.close()
        expected.close()
