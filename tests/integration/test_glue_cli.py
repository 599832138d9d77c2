"""`gfm dbt -- <dbt args>` and `gfm models` on real workspaces (dbt-duckdb, BentoML's store)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gfm.cli.main import main

pytestmark = pytest.mark.integration

MARTS = ("co_interaction_edges", "holdout_interactions", "item_catalog", "user_catalog",
         "user_history")


@pytest.fixture(scope="module")
def transformed(tiny_raw_workspace, tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("glue") / "ws"
    shutil.copytree(tiny_raw_workspace, workdir)
    assert main(["transform", "--workdir", str(workdir)]) == 0
    return workdir


def test_dbt_ls_lists_the_marts(transformed, capfd):
    capfd.readouterr()
    assert main(["dbt", "--workdir", str(transformed), "--", "ls", "--resource-type", "model",
                 "--output", "name"]) == 0
    listed = set(capfd.readouterr().out.split())
    assert set(MARTS) <= listed, listed
    # dbt ran with the workspace's target path, never inside the source tree.
    assert (transformed / "dbt" / "target" / "manifest.json").exists()


def test_dbt_show_reads_the_workspace_warehouse(transformed, capfd):
    capfd.readouterr()
    assert main(["dbt", "--workdir", str(transformed), "--", "show", "--select", "item_catalog",
                 "--limit", "3"]) == 0
    out = capfd.readouterr().out
    assert "item_id" in out and "item_type" in out, out


def test_dbt_test_passes_and_failures_pass_through(transformed, capfd):
    assert main(["dbt", "--workdir", str(transformed), "--", "test",
                 "--select", "item_catalog"]) == 0
    assert main(["dbt", "--workdir", str(transformed), "--", "no-such-command"]) != 0
    assert main(["dbt", "--workdir", str(transformed)]) == 2
    assert "after `--`" in capfd.readouterr().err


def _save_tiny_model(workdir: Path, version: str, serve: bool, hgnn_version: str) -> str:
    """A small untrained two-tower model saved through the real store code (save_bundle), with
    the lineage metadata `gfm train two-tower` writes."""
    from gfm.workspace import Workspace
    from training.two_tower.config import TwoTowerConfig
    from training.two_tower.data import Vocabulary
    from training.two_tower.model import TwoTowerModel
    from training.two_tower.store import SERVED_MODEL_NAME, TwoTowerBundle, save_bundle

    config = TwoTowerConfig()
    item_vocab = Vocabulary({"item_type": {"podcast": 1, "book": 2}})
    user_vocab = Vocabulary({"country": {"se": 1}})
    id_index = {"p1": 1, "b1": 2}
    model = TwoTowerModel(config, 4, 3, ["podcast", "book"], item_vocab.sizes(),
                          user_vocab.sizes(), n_item_ids=len(id_index))
    metadata = {"model_name": SERVED_MODEL_NAME, "model_version": version,
                "feature_service": f"two_tower_v{version.removeprefix('2t_')}",
                "input_feature_service": "gfm_features_v1", "hgnn_version": hgnn_version,
                "text_version": "text_v1", "graph_as_of": "2025-05-23T00:00:00",
                "cutoff": "2025-06-20T00:00:00", "feature_views": ["item_metadata"],
                "val_recall@10": 0.25}
    bundle = TwoTowerBundle(model, config, item_vocab, user_vocab, ["podcast", "book"], 4, 3,
                            metadata, id_index)
    return save_bundle(Workspace.at(workdir), SERVED_MODEL_NAME, bundle, serve=serve)


def test_models_lists_lineage_and_the_served_one(tmp_path, capsys):
    import json

    workdir = tmp_path / "ws"
    workdir.mkdir()
    assert main(["models", "--workdir", str(workdir)]) == 0
    assert "no models" in capsys.readouterr().out

    served = _save_tiny_model(workdir, "2t_aaaa", serve=True, hgnn_version="hgnn_v1")
    other = _save_tiny_model(workdir, "2t_bbbb", serve=False, hgnn_version="hgnn_v2")
    capsys.readouterr()
    assert main(["models", "--workdir", str(workdir), "--json"]) == 0
    rows = {row["tag"]: row for row in map(json.loads, capsys.readouterr().out.splitlines())}
    assert set(rows) == {served, other}
    assert rows[served]["served"] and not rows[other]["served"]
    assert rows[served]["feature_service"] == "two_tower_vaaaa"
    assert rows[other]["hgnn_version"] == "hgnn_v2"
    assert rows[served]["text_version"] == "text_v1"
    assert rows[served]["cutoff"] == "2025-06-20T00:00:00"
    assert rows[served]["val_recall@10"] == 0.25

    assert main(["models", "--workdir", str(workdir)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["tag", "served", "created"]
    served_line = next(line for line in table if line.startswith(served))
    assert served_line.split()[1] == "*" and "two_tower_vaaaa" in served_line
    other_line = next(line for line in table if line.startswith(other))
    assert other_line.split()[1] != "*"
    assert f"BENTOML_HOME={workdir / 'bentoml'}" in table[-1]


def test_every_warehouse_table_and_column_has_a_comment(transformed):
    """dbt persist_docs: the .yml descriptions are comments in warehouse.duckdb."""
    from gfm.workspace import Workspace
    from transforms.warehouse import warehouse_query

    workspace = Workspace.at(transformed)
    tables = dict(warehouse_query(
        workspace, "select table_name, comment from duckdb_tables() where schema_name = 'main'"))
    assert set(MARTS) <= set(tables), tables
    assert all(tables.values()), {t: c for t, c in tables.items() if not c}
    columns = warehouse_query(
        workspace, "select table_name, column_name, comment from duckdb_columns() "
                   "where schema_name = 'main' and table_name in (select table_name from "
                   "duckdb_tables() where schema_name = 'main')")
    assert len(columns) > len(tables)
    missing = [(t, c) for t, c, comment in columns if not comment]
    assert not missing, missing
