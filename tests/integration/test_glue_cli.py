"""`gfm dbt -- <dbt args>` on a real workspace (dbt-duckdb)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gfm.cli.main import main

pytestmark = pytest.mark.integration

MARTS = ("co_interaction_edges", "holdout_interactions", "item_catalog", "user_catalog",
         "user_history_90d")


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

