"""`gfm train hgnn --new-items`: the kept HGNN run extended to items released since it ran."""

import dataclasses
import datetime as dt
import json

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from gfm.workspace import Workspace
from training.hgnn.config import HGNNConfig
from training.hgnn.graph import read_vectors
from training.hgnn.model import HeteroGraphSAGE
from training.hgnn.new_items import add_new_items, extension_version, inductive_rows
from training.hgnn.train import write_vector_table
from training.text_neighbours import normalise

TYPES = ["audiobook", "podcast"]
RELATIONS = [("audiobook", "co", "podcast"), ("podcast", "co", "audiobook")]
GRAPH_AS_OF = dt.datetime(2025, 6, 1)


def _checkpoint(**config) -> dict:
    cfg = HGNNConfig(hidden_dim=8, out_dim=4, inductive_knn=1, **config)
    torch.manual_seed(0)
    model = HeteroGraphSAGE(TYPES, RELATIONS, 6, cfg)
    return {"config": dataclasses.asdict(cfg), "state_dict": model.state_dict(),
            "regressor_state_dict": None, "node_types": TYPES, "relations": RELATIONS,
            "in_dim": 6, "connected_items": {"audiobook": ["ab0", "ab1"],
                                             "podcast": ["pc0", "pc1"]}}


def test_text_knn_gives_the_vector_of_the_closest_connected_text():
    pool_text = np.eye(6, dtype=np.float32)[:2]
    pool_vectors = normalise(np.array([[1, 0, 0, 0], [0, 1, 1, 0]], np.float32))
    text = np.array([[0.1, 0.9, 0, 0, 0, 0], [1, 0.2, 0, 0, 0, 0]], np.float32)
    rows = inductive_rows(_checkpoint(), "audiobook", text, pool_text, pool_vectors)
    np.testing.assert_allclose(rows, pool_vectors[[1, 0]], atol=1e-6)


def test_text_path_gives_the_models_edge_less_forward():
    checkpoint = _checkpoint(inductive_vectors="text_path")
    text = np.random.default_rng(0).normal(size=(3, 6)).astype(np.float32)
    rows = inductive_rows(checkpoint, "podcast", text, text[:0], np.zeros((0, 4), np.float32))
    model = HeteroGraphSAGE(TYPES, RELATIONS, 6, HGNNConfig(**checkpoint["config"]))
    model.load_state_dict(checkpoint["state_dict"])
    model.eval()
    with torch.no_grad():
        expected = model({"podcast": torch.from_numpy(text)}, {})["podcast"].numpy()
    np.testing.assert_allclose(rows, expected, atol=1e-6)


def _write_text(path, vectors: dict[str, np.ndarray]) -> None:
    ids = sorted(vectors)
    flat = np.stack([vectors[i] for i in ids]).astype(np.float32)
    pq.write_table(pa.table({"item_id": ids, "embedding": pa.FixedSizeListArray.from_arrays(
        pa.array(flat.ravel()), 6).cast(pa.list_(pa.float32()))}), path)


@pytest.fixture()
def kept_run(tmp_path):
    """A workspace whose HGNN ran on ab0, ab1, pc0, pc1 and pc0's episode pc0e1; since then
    the catalogue gained ab9 (ab1's text), pc0e9 (an episode of pc0), pc9 (another episode's
    show: pc9e1 inherits it) and vd1 (a type the HGNN never saw)."""
    workspace = Workspace.at(tmp_path)
    catalog = [("ab0", "audiobook", None), ("ab1", "audiobook", None), ("pc0", "podcast", None),
               ("pc1", "podcast", None), ("pc0e1", "episode", "pc0"), ("ab9", "audiobook", None),
               ("pc0e9", "episode", "pc0"), ("pc9", "podcast", None),
               ("pc9e1", "episode", "pc9"), ("vd1", "video", None)]
    workspace.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(workspace.warehouse_path))
    con.execute("create table item_catalog (item_id varchar, item_type varchar, "
                "parent_id varchar)")
    con.executemany("insert into item_catalog values (?, ?, ?)", catalog)
    con.close()
    eye = np.eye(6, dtype=np.float32)
    text = {"ab0": eye[0], "ab1": eye[1], "pc0": eye[2], "pc1": eye[3], "pc0e1": eye[2],
            "ab9": eye[1] + 0.1 * eye[0], "pc0e9": eye[2], "pc9": eye[3] + 0.1 * eye[2],
            "pc9e1": eye[3], "vd1": eye[5]}
    text_dir = workspace.features_dir / "item_text_embedding"
    text_dir.mkdir(parents=True)
    _write_text(text_dir / "text_old.parquet", {k: text[k] for k in ("ab0", "ab1", "pc0", "pc1",
                                                                      "pc0e1")})
    _write_text(text_dir / "text_new.parquet", text)
    hgnn_dir = workspace.features_dir / "item_hgnn_embedding"
    vectors = normalise(np.arange(1, 21, dtype=np.float32).reshape(5, 4) ** 2 % 7 + 1)
    ids = ["ab0", "ab1", "pc0", "pc0e1", "pc1"]
    write_vector_table(hgnn_dir / "hgnn_kept.parquet", ids,
                       ["audiobook", "audiobook", "podcast", "episode", "podcast"],
                       vectors[[0, 1, 2, 2, 4]], GRAPH_AS_OF, "hgnn_kept")
    checkpoint = workspace.models_dir / "hgnn" / "hgnn_kept" / "checkpoint.pt"
    checkpoint.parent.mkdir(parents=True)
    torch.save(_checkpoint(), checkpoint)
    (hgnn_dir / "hgnn_kept.json").write_text(json.dumps({
        "version": "hgnn_kept", "graph_as_of": GRAPH_AS_OF.isoformat(),
        "text_version": "text_old", "checkpoint": str(checkpoint.relative_to(tmp_path)),
        "val_auc": 0.8, "val_mrr": 0.5, "created_at": "2025-06-01T00:00:00", "config": {}}))
    return workspace, text_dir


def test_new_items_get_vectors_and_the_kept_ones_stay_as_they_were(kept_run):
    workspace, text_dir = kept_run
    run = add_new_items(workspace, text_dir / "text_new.parquet")
    assert run.version == extension_version("hgnn_kept", "text_new")
    assert (run.extends, run.n_new, run.reused, run.up_to_date) == ("hgnn_kept", 4, False, False)
    assert run.skipped == {"item type video unknown to the HGNN (retrain it: --static)": 1}
    kept = dict(zip(*read_vectors(workspace.features_dir / "item_hgnn_embedding"
                                  / "hgnn_kept.parquet")))
    extended = dict(zip(*read_vectors(run.vectors_path)))
    assert set(extended) == set(kept) | {"ab9", "pc0e9", "pc9", "pc9e1"}
    for item, vector in kept.items():
        np.testing.assert_array_equal(extended[item], vector)
    np.testing.assert_allclose(extended["ab9"], kept["ab1"], atol=1e-6)  # its text's neighbour
    np.testing.assert_allclose(extended["pc9"], kept["pc1"], atol=1e-6)
    np.testing.assert_array_equal(extended["pc0e9"], kept["pc0"])  # episodes: their show's
    np.testing.assert_array_equal(extended["pc9e1"], extended["pc9"])
    lineage = json.loads(run.vectors_path.with_suffix(".json").read_text())
    assert lineage["extends"] == "hgnn_kept" and lineage["text_version"] == "text_new"
    assert lineage["graph_as_of"] == GRAPH_AS_OF.isoformat()
    assert lineage["checkpoint"].endswith("hgnn_kept/checkpoint.pt")
    metrics = json.loads((workspace.reports_dir / "hgnn_metrics.json").read_text())
    assert metrics["version"] == run.version  # what gfm evaluate's hgnn_knn reads


def test_a_rerun_reuses_the_extension_and_is_then_up_to_date(kept_run):
    workspace, text_dir = kept_run
    first = add_new_items(workspace, text_dir / "text_new.parquet")
    again = add_new_items(workspace, text_dir / "text_new.parquet")
    assert again.up_to_date and again.version == first.version  # newest is over text_new
    (first.vectors_path.with_suffix(".json")).write_text(
        first.vectors_path.with_suffix(".json").read_text().replace("text_new", "text_other"))
    reused = add_new_items(workspace, text_dir / "text_new.parquet")
    assert reused.reused and reused.version == first.version and reused.n_new == 4
