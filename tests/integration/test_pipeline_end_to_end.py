"""The whole pipeline on the strong-signal `tiny` profile: what the static and dynamic layers
promise, checked on their real outputs (fixed seeds, one thread)."""

from __future__ import annotations

import json
import shutil

import duckdb
import numpy as np
import pytest

from gfm.cli.main import main
from gfm.workspace import Workspace
from training.hgnn.graph import read_vectors

pytestmark = pytest.mark.integration

SETTINGS = ["--set", "hgnn.threads=1", "--set", "two_tower.threads=1",
            "--set", "hgnn.max_epochs=10", "--set", "two_tower.epochs=10"]


@pytest.fixture(scope="module")
def workspace(tiny_raw_workspace, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("e2e") / "ws"
    shutil.copytree(tiny_raw_workspace / "raw", workdir / "raw")
    for stage in (["transform"], ["embed"], ["train", "hgnn"], ["features", "apply"],
                  ["features", "materialize"], ["train", "two-tower"], ["evaluate"]):
        assert main([*stage, "--workdir", str(workdir), *SETTINGS]) == 0, stage
    return workdir


def _latest(directory):
    return max((p for p in directory.glob("*.parquet") if not p.name.startswith(("_", "."))),
               key=lambda p: p.stat().st_mtime)


def test_every_item_has_a_unit_hgnn_vector_and_episodes_carry_their_shows(workspace):
    ids, vectors = read_vectors(_latest(workspace / "features" / "item_hgnn_embedding"))
    text_ids, _ = read_vectors(_latest(workspace / "features" / "item_text_embedding"))
    con = duckdb.connect(str(workspace / "warehouse.duckdb"), read_only=True)
    catalog = con.execute("select item_id, parent_id from item_catalog").fetchall()
    con.close()
    assert set(ids) == set(text_ids) == {i for i, _ in catalog}
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    row = {item: r for r, item in enumerate(ids)}
    episodes = [(i, p) for i, p in catalog if p is not None]
    assert episodes
    for episode, show in episodes:
        assert np.array_equal(vectors[row[episode]], vectors[row[show]])


def test_graph_beats_text_on_held_out_edges(workspace):
    metrics = json.loads((workspace / "reports" / "hgnn_metrics.json").read_text())
    assert metrics["val_auc"] > metrics["text_cosine_auc"]


def test_two_tower_learns_and_records_its_inputs(workspace):
    metrics = json.loads((workspace / "reports" / "metrics.json").read_text())
    results = metrics["results"]
    two_tower, popularity = results["unified_2t"]["hr@10"], results["popularity"]["hr@10"]
    # Far above a random ranking of each type's candidates (10 / n_items) on every type.
    for item_type, n_items in metrics["split"]["n_items"].items():
        assert two_tower[item_type] > 3 * 10 / n_items, item_type
    # On tiny (500 users, ~150-200 hold-out users a type) the two-tower and popularity are level:
    # their mean HR@10 differ by about +-0.01 from run to run (two runs of this test: 0.249 vs
    # 0.249 and 0.259 vs 0.249; the pipeline is not bit-reproducible across processes). The win
    # is shown on small and medium (docs/results.md); here it must not fall clearly behind.
    assert np.mean(list(two_tower.values())) > np.mean(list(popularity.values())) - 0.03
    assert (workspace / "reports" / "hr_at_10.png").stat().st_size > 0
    # hgnn_knn lifts the items released since the cutoff (evaluation.hgnn_knn_new_item_exposure)
    # and says by how much, per type with new items; a lift never lowers them.
    hgnn_settings = results["hgnn_knn"]["settings"]
    assert hgnn_settings["new_item_exposure"] == 1.5
    with_new = {t for t, n in metrics["split"]["n_new_items"].items() if n}
    assert set(hgnn_settings["new_item_offset"]) == with_new
    assert all(offset >= 0 for offset in hgnn_settings["new_item_offset"].values())

    from training.two_tower.store import load_bundle

    bundle = load_bundle(Workspace.at(workspace))
    meta = bundle.metadata
    assert meta["feature_service"].startswith("two_tower_v")
    assert meta["hgnn_version"] and meta["text_version"]
    assert any(v.startswith("item_hgnn_embedding_v") for v in meta["feature_views"]
               if isinstance(v, str))
