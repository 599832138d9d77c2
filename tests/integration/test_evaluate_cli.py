"""`gfm evaluate` and `gfm report` on the tiny synthetic workspace, end to end."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from gfm.cli.main import main
from gfm.workspace import Workspace
from transforms.warehouse import warehouse_query

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def evaluated(tiny_raw_workspace, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("evaluate") / "ws"
    shutil.copytree(tiny_raw_workspace, workdir)
    assert main(["transform", "--workdir", str(workdir)]) == 0

    # Stand-in text vectors (random, seeded): exercise the text_knn path without the model.
    # The version is the one its json records (as `gfm embed` writes it); a file starting with _
    # (a write in progress) must be ignored, even if newer and unreadable.
    ids = [r[0] for r in warehouse_query(Workspace.at(workdir),
                                         "select item_id from item_catalog order by item_id")]
    vectors = np.random.default_rng(0).normal(size=(len(ids), 8)).astype(np.float32)
    features = workdir / "features" / "item_text_embedding"
    features.mkdir(parents=True)
    pq.write_table(pa.table({"item_id": ids,
                             "embedding": pa.array(list(vectors), type=pa.list_(pa.float32()))}),
                   features / "v1.parquet")
    (features / "v1.json").write_text(json.dumps({"created_at": "2025-01-01T00:00:00"}))
    (features / "_v2.parquet").write_bytes(b"not parquet yet")
    return workdir


def test_report_before_evaluate_names_the_fix(tmp_path, capsys):
    assert main(["report", "--workdir", str(tmp_path)]) == 2
    assert "gfm evaluate" in capsys.readouterr().err


def test_evaluate_writes_reports(evaluated, capsys):
    assert main(["evaluate", "--workdir", str(evaluated)]) == 0
    printed = capsys.readouterr().out
    reports = evaluated / "reports"
    metrics = json.loads((reports / "metrics.json").read_text())

    results = metrics["results"]
    assert list(results) == ["als", "ease", "text_knn", "popularity"]  # no HGNN vectors, no model
    assert "skipping hgnn_knn" in printed
    assert list(metrics["skipped"]) == ["unified_2t", "hgnn_knn"]
    assert "gfm train hgnn" in metrics["skipped"]["hgnn_knn"]
    assert results["text_knn"]["source"].endswith("v1.parquet")
    types = sorted(metrics["split"]["n_items"])
    assert types == ["audiobook", "podcast"]
    for name, result in results.items():
        for group in (result, result["inclusive"]):
            assert sorted(group["hr@10"]) == types and sorted(group["mrr@100"]) == types
            values = [*group["hr@10"].values(), *group["mrr@100"].values(), group["coverage@10"]]
            assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in values), (name, values)
            # MRR@100 can only exceed HR@10 through ranks 11-100, which add at most 1/11 each.
            for t in types:
                assert group["mrr@100"][t] <= group["hr@10"][t] + 1 / 11
        assert sorted(result["cold_users"]["hr@10"]) == types
    assert all(results["popularity"]["hr@10"][t] > 0 for t in types)
    counts = metrics["split"]["n_users"]
    for t in types:  # excluding history can only remove users
        assert 0 < counts["exclude_history"][t] <= counts["inclusive"][t]

    table = (reports / "metrics.md").read_text()
    assert table in printed
    for name in results:
        assert f"| {name} |" in table
    assert (reports / "hr_at_10.png").stat().st_size > 0

    assert main(["report", "--workdir", str(evaluated)]) == 0
    assert capsys.readouterr().out == table


def test_evaluate_named_model_without_inputs_fails(evaluated, capsys):
    assert main(["evaluate", "--workdir", str(evaluated), "--models", "hgnn_knn"]) == 2
    assert "item_hgnn_embedding" in capsys.readouterr().err


def test_rolling_cutoffs_pool_hits_and_users(evaluated, capsys):
    argv = ["evaluate", "--workdir", str(evaluated), "--models", "popularity,als",
            "--rolling", "3", "--every", "7"]
    own = "select distinct as_of from item_catalog"
    before = warehouse_query(Workspace.at(evaluated), own)
    assert main(argv) == 0
    # the earlier cutoffs' copies leave the workspace's own warehouse as it was
    assert warehouse_query(Workspace.at(evaluated), own) == before
    first = capsys.readouterr().out
    metrics = json.loads((evaluated / "reports" / "metrics.json").read_text())
    rolling = metrics["rolling"]
    cutoffs = [c[:10] for c in rolling["cutoffs"]]
    assert cutoffs[0] == metrics["split"]["cutoff"][:10]
    days = np.diff(np.array(rolling["cutoffs"], dtype="datetime64[D]")).astype(int)
    assert list(days) == [-7, -7]
    # Each earlier cutoff has its own warehouse, built for that cutoff.
    for c in rolling["per_cutoff"][1:]:
        built = warehouse_query(Workspace.at(c["workspace"]),
                                "select distinct as_of from item_catalog")
        assert [str(r[0])[:10] for r in built] == [c["cutoff"][:10]]
    assert rolling["versus"] == {}  # no unified_2t evaluated: nothing paired with it
    per = rolling["per_cutoff"]
    for model in ("popularity", "als"):
        # cutoff 0 is the ordinary evaluation
        assert per[0]["hr@10"][model] == metrics["results"][model]["hr@10"]
        pooled = rolling["pooled"][model]
        for t in ("audiobook", "podcast"):
            units = sum(c["n_users"][t] for c in per)
            assert pooled["units"][t] == units > metrics["split"]["n_users"]["exclude_history"][t]
            hits = sum(round(c["hr@10"][model][t] * c["n_users"][t]) for c in per)
            assert pooled["hits"][t] == hits
            assert pooled["hr@10"][t] == pytest.approx(hits / units)
            lo, hi = pooled["hr@10_ci"][t]
            assert lo <= pooled["hr@10"][t] <= hi
    markdown = (evaluated / "reports" / "metrics.md").read_text()
    assert "Rolling cutoffs: 3 cutoffs every 7 days" in markdown
    assert (evaluated / "reports" / "hr_at_10_rolling.png").stat().st_size > 0
    assert "reusing" not in first
    # A rerun reuses the finished copies and gives the same figures.
    assert main(argv) == 0
    assert "reusing" in capsys.readouterr().out
    again = json.loads((evaluated / "reports" / "metrics.json").read_text())["rolling"]
    assert again["pooled"] == rolling["pooled"]


def test_rolling_refuses_the_per_user_protocol(evaluated, capsys):
    assert main(["evaluate", "--workdir", str(evaluated), "--models", "popularity",
                 "--rolling", "2", "--set", "timeline.protocol=per_user"]) == 2
    assert "per_user" in capsys.readouterr().err
