"""bench/device.py: its `run` side imports only what the GPU machine has, and the inputs it
exports read back as the stages read them from the workspace."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_device", REPO / "bench" / "device.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_run_side_imports_without_duckdb_feast_dbt_bentoml_optuna():
    """What the GPU machine lacks is made unimportable, then everything `run` imports."""
    code = (
        "import sys; sys.path.insert(0, 'bench'); import device; device.block_unavailable_modules();"
        "import training.hgnn.train, training.two_tower.train, training.two_tower.data, "
        "transforms.text_embedding, gfm.device;"
        "bad = [m for m in device.NOT_ON_GPU_MACHINE if sys.modules.get(m) is not None];"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO,
                   env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})


def test_graph_round_trip_gives_the_same_split(tmp_path):
    from tests.unit.test_hgnn import _graph
    from training.hgnn.graph import split_edges

    bench = _bench()
    graph = _graph()
    meta = bench.export_graph(graph, tmp_path / "g.npz")
    back = bench.load_graph(tmp_path / "g.npz", meta)
    assert back.node_types == graph.node_types
    for t in graph.node_types:
        assert np.allclose(back.x[t], graph.x[t], atol=1e-2)  # stored as float16
    a, b = split_edges(graph, 0.5, 10, 3), split_edges(back, 0.5, 10, 3)
    assert a.train.keys() == b.train.keys() and a.val.keys() == b.val.keys()
    for name in a.train:
        assert np.array_equal(a.train[name][2], b.train[name][2])
    for name in a.val:
        assert np.array_equal(a.val[name][2], b.val[name][2])
    for r in a.message_edges:
        assert np.array_equal(a.message_edges[r], b.message_edges[r])


def test_frame_round_trip_keeps_vectors_missing_values_and_lists(tmp_path):
    bench = _bench()
    v = np.arange(4, dtype=np.float32) / 8
    frame = pd.DataFrame({
        "user_id": ["u1", "u2", "u3"],
        "event_timestamp": pd.to_datetime(["2025-01-01", "2025-01-02", "2025-01-03"]),
        "text_embedding": [v, v, v + 1],
        "hgnn_embedding": [None, list(v), None],
        "item_ids_podcast": [["pc1", "pc2"], None, []],
        "n_items_podcast": [2.0, np.nan, 0.0],
    })
    info = bench.export_frame(frame, tmp_path / "tt")
    assert set(info["vector_columns"]) == {"text_embedding", "hgnn_embedding"}
    assert info["distinct_vectors"] == {"text_embedding": 2, "hgnn_embedding": 1}
    back = bench.load_frame(tmp_path / "tt", info["vector_columns"])
    assert back["hgnn_embedding"].notna().tolist() == [False, True, False]
    assert np.allclose(back["hgnn_embedding"][1], v) and np.allclose(back["text_embedding"][2], v + 1)
    assert list(back["item_ids_podcast"][0]) == ["pc1", "pc2"] and back["item_ids_podcast"][1] is None
    assert back["user_id"].tolist() == ["u1", "u2", "u3"]


def test_doc_table_from_a_result():
    bench = _bench()
    result = {
        "started_at": "2026-11-29T22:00:00+00:00", "commit": "abc", "errors": {},
        "args": {"hgnn_budget_s": 30, "agree_steps": 3, "agree_examples": 4096},
        "machine": {"gpu": "NVIDIA H200", "cpu": "x", "cpu_count": 16, "torch_threads": 16,
                    "torch": "2.11", "torch_cuda": "12.8", "torch_geometric": "2.8",
                    "sentence_transformers": "6.0"},
        "manifest": {"commit": "abc", "profile": "medium", "cutoff": "2025-07-01",
                     "config": {"embed": {"batch_size": 64},
                                "hgnn": {"batch_size": 4096, "negatives_per_edge": 8,
                                         "fanouts": [10, 10], "hidden_dim": 128, "out_dim": 128},
                                "two_tower": {"batch_size": 512, "tower_dims": [512, 256, 128],
                                              "item_id_dim": 64}}},
        "stages": {
            "embed": {"n_texts": 100, "devices": {
                "cpu": {"texts_per_s": 100.0, "all_texts_s": 1.0, "complete": True},
                "cuda": {"texts_per_s": 1000.0, "all_texts_s": 0.1, "complete": True}},
                "agreement": {"ok": True, "cosine_min": 0.99999, "n": 100, "threshold": 0.999}},
            "hgnn_sampled": {"nodes": {"a": 5}, "directed_edges": 10, "devices": {
                "cpu": {"s_per_step": 1.0, "epoch_s": 10.0, "steps_per_epoch": 10,
                        "epoch_measured": False, "inference_s": 1.0},
                "cuda": {"s_per_step": 0.1, "epoch_s": 1.0, "steps_per_epoch": 10,
                         "epoch_measured": True, "inference_s": 0.5}}},
            "two_tower": {"rows": 10, "rows_in_workspace": 20, "devices": {
                "cpu": {"steady_epoch_s": 4.0, "examples_per_s": 5.0, "val_recall@10": 0.1},
                "cuda": {"steady_epoch_s": 1.0, "examples_per_s": 20.0, "val_recall@10": 0.1}}},
        },
    }
    text = bench.render(result)
    assert text.startswith(bench.SECTION)
    assert "| embed: texts/s" in text and "10.0x" in text and "epoch ~10.0 s" in text
    assert "| two-tower training | 10 examples (of 20) |" in text and "4.0x" in text
