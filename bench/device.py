"""GPU against CPU: text embedding, HGNN training and two-tower training on the same inputs.

Three steps, because the GPU machine has torch (CUDA), torch-geometric, sentence-transformers,
pyarrow, pandas, numpy and scikit-learn but neither DuckDB, Feast, dbt nor a network:

    # 1. here, on a built workspace (gfm generate, transform, embed, train hgnn, features apply):
    .venv/bin/python bench/device.py export --workdir /tmp/wt14_medium --out bench_inputs
    # 2. there (bench_inputs/ travels with the working tree; only `run` is needed there):
    python3 bench/device.py run --inputs bench_inputs --out $OUT/device_bench.json --devices cpu,cuda
    # 3. here again: the table of section "GPU and CPU" of docs/benchmarks.md, from that file
    .venv/bin/python bench/device.py doc --result device_bench.json

export writes the exact inputs of the three stages (checked to stay under --max-mib):
- texts.parquet: every catalog item's text (`item_text`, what `gfm embed` encodes);
- text_model/: the sentence-transformers model, its weights as float16 and its token-embedding
  matrix cut to the rows the texts use (the tokens of no text cannot change any vector);
  `run` rebuilds a float32 model directory from it. Checked at export: the rebuilt model's
  vectors agree with the original's (cosine >= 0.9999 on a sample);
- hgnn_graph.npz: the HGNN's graph (text vectors of the top-level items, float16, and the
  co-interaction edges, one direction, int32) as `load_item_graph` reads it from the warehouse;
- two_tower/: the two-tower's point-in-time training frame (Feast features + history lists),
  for a seeded uniform sample of --two-tower-examples examples at most: the frame that
  `gfm train two-tower --set two_tower.max_examples=N` fits on (the same sample of examples);
  scalar and list columns in frame.parquet, every vector column as a table of its distinct
  vectors (float16) and a row -> vector index;
- manifest.json: commit, profile figures, the HGNN / two-tower / embed settings, file sizes.

run (torch, torch-geometric, sentence-transformers, pyarrow, pandas, numpy; it refuses to
import duckdb, feast, dbt, bentoml and optuna, so a run here proves the same there) times each
stage per device with the project's own code (`_encode_missing`, `LinkPredictionTrainer`,
`fit_two_tower`), warm-up excluded, and checks that CPU and CUDA agree:
- embed: the same texts on each device, texts/s; agreement: cosine of the two vectors per text;
- HGNN, per batch mode (sampled, full): s/step over the steps that fit in --hgnn-budget-s (after
  --warmup-steps steps), an epoch's time extrapolated (the time to cut an epoch's batches, a
  pure-Python CPU step, + steps per epoch x s/step), and the
  inference (every node's vector) time; agreement: every node's vector (before training too,
  full batch) after the same --agree-steps steps from the same seed (same batches, negatives and
  neighbours), dropout off (each device draws its dropout masks from its own generator);
- two-tower: `fit_two_tower` for --two-tower-epochs epochs; the steady epoch time is the last
  epoch's (the first carries the warm-up); agreement: a 1-epoch fit, dropout off, on the same
  --agree-examples rows (a seeded sample) on each device, then the item-tower vectors.
Results go to --out after every stage (a run cut short keeps what it measured).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))
from benchdoc import cpu_name  # noqa: E402 (stdlib only: importable on the GPU machine)

# What the GPU machine lacks: `run` must not need any of it.
NOT_ON_GPU_MACHINE = ("duckdb", "feast", "dbt", "bentoml", "optuna")
SECTION = "## GPU and CPU"
TEXT_MODEL_SMALL_FILES = ("config.json", "config_sentence_transformers.json", "modules.json",
                          "sentence_bert_config.json", "special_tokens_map.json",
                          "tokenizer.json", "tokenizer_config.json", "vocab.txt")
AGREE = {"embed_cosine_min": 0.999, "hgnn_cosine_min": 0.999, "two_tower_cosine_min": 0.999}


def block_unavailable_modules() -> None:
    """Make `import duckdb` (and the rest of NOT_ON_GPU_MACHINE) fail, as on the GPU machine."""
    for name in NOT_ON_GPU_MACHINE:
        if name in sys.modules and sys.modules[name] is not None:
            continue  # already imported by the caller (tests in one process): leave it
        sys.modules[name] = None  # type: ignore[assignment]


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "*.py"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "") if out.returncode == 0 else ""
    except (OSError, subprocess.SubprocessError):
        return ""


def _mib(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 2**20
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


# ---------------------------------------------------------------------------------------------
# export (here: needs the workspace, DuckDB and Feast)


def export_text_model(model_dir: Path, texts: list[str], out: Path) -> dict:
    """float16 weights, token embeddings cut to the rows `texts` use; returns what was kept."""
    import numpy as np
    from safetensors.numpy import load_file, save_file
    from transformers import AutoTokenizer

    out.mkdir(parents=True, exist_ok=True)
    for name in TEXT_MODEL_SMALL_FILES:
        if (model_dir / name).exists():
            shutil.copy2(model_dir / name, out / name)
    for sub in model_dir.iterdir():  # module folders (1_Pooling, 2_Normalize, ...)
        if sub.is_dir() and sub.name[:1].isdigit():
            shutil.copytree(sub, out / sub.name, dirs_exist_ok=True)
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    max_len = json.loads((model_dir / "sentence_bert_config.json").read_text()).get(
        "max_seq_length", 256) if (model_dir / "sentence_bert_config.json").exists() else 256
    used: set[int] = set(tokenizer.all_special_ids)
    for start in range(0, len(texts), 4096):
        encoded = tokenizer(texts[start:start + 4096], truncation=True, max_length=max_len)
        for ids in encoded["input_ids"]:
            used.update(ids)
    weights = load_file(str(model_dir / "model.safetensors"))
    key = next(k for k in weights if k.endswith("word_embeddings.weight"))
    rows = np.array(sorted(used), dtype=np.int64)
    kept = {k: v.astype(np.float16) if v.dtype == np.float32 else v
            for k, v in weights.items() if k != key}
    kept[key + ".rows"] = weights[key][rows].astype(np.float16)
    kept[key + ".index"] = rows
    save_file(kept, str(out / "weights.safetensors"))
    info = {"embedding_key": key, "vocab_rows": int(weights[key].shape[0]),
            "kept_rows": int(len(rows)), "dim": int(weights[key].shape[1])}
    (out / "export.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def rebuild_text_model(exported: Path, target: Path) -> Path:
    """A float32 sentence-transformers directory from export_text_model's output."""
    import numpy as np
    from safetensors.numpy import load_file, save_file

    info = json.loads((exported / "export.json").read_text())
    weights = load_file(str(exported / "weights.safetensors"))
    key = info["embedding_key"]
    full = np.zeros((info["vocab_rows"], info["dim"]), dtype=np.float32)
    full[weights.pop(key + ".index")] = weights.pop(key + ".rows").astype(np.float32)
    weights = {k: v.astype(np.float32) if v.dtype == np.float16 else v for k, v in weights.items()}
    weights[key] = full
    target.mkdir(parents=True, exist_ok=True)
    for item in exported.iterdir():
        if item.name in ("weights.safetensors", "export.json"):
            continue
        if item.is_dir():
            shutil.copytree(item, target / item.name, dirs_exist_ok=True)
        else:
            shutil.copy2(item, target / item.name)
    save_file(weights, str(target / "model.safetensors"), metadata={"format": "pt"})
    return target


def export_graph(graph, out: Path) -> dict:
    """The ItemGraph as split_edges and the trainer read it: text vectors (float16) and one
    direction of every undirected edge (int32), in the warehouse's order."""
    import numpy as np

    arrays = {}
    for t in graph.node_types:
        arrays[f"x__{t}"] = graph.x[t].astype(np.float16)
    relations = []
    for (s, _, d), ei in sorted(graph.edges.items()):
        if (s, d) != tuple(sorted((s, d))):
            continue  # the reverse of a cross-type relation: rebuilt from the other one
        pairs = ei[:, ei[0] < ei[1]] if s == d else ei
        arrays[f"edges__{s}__{d}"] = pairs.astype(np.int32)
        relations.append([s, d])
    np.savez_compressed(out, **arrays)
    directed = {f"{s}__{d}": int(graph.edges[(s, "co", d)].shape[1]
                                 + (graph.edges[(d, "co", s)].shape[1] if s != d else 0))
                for s, d in relations}
    return {"node_types": graph.node_types, "relations": relations,
            "relation_directed_edges": directed,
            "nodes": {t: graph.num_nodes(t) for t in graph.node_types},
            "directed_edges": int(graph.num_edges())}


def load_graph(path: Path, meta: dict):
    """The ItemGraph of export_graph (float32 vectors; both directions, as load_item_graph)."""
    import numpy as np

    from training.hgnn.graph import ItemGraph

    data = np.load(path)
    x = {t: data[f"x__{t}"].astype(np.float32) for t in meta["node_types"]}
    edges = {}
    for s, d in meta["relations"]:
        pairs = data[f"edges__{s}__{d}"].astype(np.int64)
        if s == d:
            edges[(s, "co", d)] = np.concatenate([pairs, pairs[::-1]], axis=1)
        else:
            edges[(s, "co", d)] = pairs
            edges[(d, "co", s)] = np.ascontiguousarray(pairs[::-1])
    ids = {t: np.array([f"{t}{i}" for i in range(len(x[t]))], dtype=object)
           for t in meta["node_types"]}
    return ItemGraph(list(meta["node_types"]), ids, x, edges, {}, {})


def _is_vector_column(values) -> bool:
    import numpy as np

    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)):
            continue
        if isinstance(v, (list, tuple, np.ndarray)) and len(v) and isinstance(
                v[0], (float, np.floating)):
            return True
        return False
    return False


def export_frame(frame, out: Path) -> dict:
    """Vector columns as (distinct vectors float16, row index, -1 = missing); the rest as
    parquet (list<string> history columns included)."""
    import numpy as np
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    vector_columns = [c for c in frame.columns if frame[c].dtype == object
                      and _is_vector_column(frame[c])]
    arrays = {}
    for c in vector_columns:
        values = frame[c].to_numpy()
        present = np.array([v is not None and not (isinstance(v, float) and math.isnan(v))
                            for v in values])
        dim = len(next(v for v, p in zip(values, present) if p))
        matrix = np.zeros((len(values), dim), dtype=np.float16)
        matrix[present] = np.stack([np.asarray(v, dtype=np.float32)
                                    for v in values[present]]).astype(np.float16)
        distinct, inverse = np.unique(matrix[present], axis=0, return_inverse=True)
        index = np.full(len(values), -1, dtype=np.int32)
        index[present] = inverse.reshape(-1).astype(np.int32)
        arrays[f"{c}__vectors"] = distinct
        arrays[f"{c}__index"] = index
    np.savez_compressed(out / "vectors.npz", **arrays)
    rest = frame.drop(columns=vector_columns).copy()
    for c in rest.columns:
        if pd.api.types.is_datetime64_any_dtype(rest[c]) and getattr(rest[c].dt, "tz", None):
            rest[c] = rest[c].dt.tz_convert(None)
    rest.to_parquet(out / "frame.parquet", compression="zstd", index=False)
    return {"vector_columns": vector_columns, "rows": int(len(frame)),
            "distinct_vectors": {c: int(arrays[f"{c}__vectors"].shape[0])
                                 for c in vector_columns}}


def load_frame(directory: Path, vector_columns: list[str]):
    import numpy as np
    import pandas as pd

    frame = pd.read_parquet(directory / "frame.parquet")
    data = np.load(directory / "vectors.npz")
    for c in vector_columns:
        vectors = data[f"{c}__vectors"].astype(np.float32)
        index = data[f"{c}__index"]
        column = np.empty(len(index), dtype=object)
        for row in np.flatnonzero(index >= 0):
            column[row] = vectors[index[row]]
        frame[c] = column
    # parquet gives numpy arrays for lists; the trainer takes any sequence
    return frame


def cmd_export(args: argparse.Namespace) -> None:
    import pandas as pd

    from gfm.config import load_config
    from gfm.timeline import resolve_timeline
    from gfm.workspace import Workspace
    from training.hgnn.graph import load_item_graph
    from transforms.text_embedding import (
        _read_items,
        item_text,
        latest_text_embedding,
        model_identity,
    )

    ws = Workspace.at(args.workdir)
    config = load_config(ws.root)
    timeline = resolve_timeline(config.timeline, ws)
    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    started = time.perf_counter()

    items = _read_items(ws)
    texts = [item_text(a, b, c, d) for a, b, c, d in zip(
        items.column("title").to_pylist(), items.column("description").to_pylist(),
        items.column("item_type").to_pylist(), items.column("genre").to_pylist())]
    pd.DataFrame({"item_id": items.column("item_id").to_pylist(), "text": texts}).to_parquet(
        out / "texts.parquet", compression="zstd", index=False)
    print(f"texts: {len(texts):,}", flush=True)

    identity = model_identity(config.embed.model_path)
    model_info = export_text_model(identity.path, texts, out / "text_model")
    model_info["model_id"] = identity.model_id
    print(f"text model: {model_info['kept_rows']:,} of {model_info['vocab_rows']:,} token rows",
          flush=True)
    model_info["check"] = check_rebuilt_model(identity.path, out / "text_model", texts)
    print(f"rebuilt model against the original: {model_info['check']}", flush=True)

    text_path = latest_text_embedding(ws)
    graph = load_item_graph(ws, text_path)
    graph_info = export_graph(graph, out / "hgnn_graph.npz")
    print(f"graph: {graph_info['nodes']} nodes, {graph_info['directed_edges']:,} directed edges",
          flush=True)

    frame, item_types, service, n_all = two_tower_frame(ws, config, timeline,
                                                       args.two_tower_examples)
    frame_info = export_frame(frame, out / "two_tower")
    from training.two_tower.train import popularity_snapshots  # the "recent" prior's input

    popularity_snapshots(ws, timeline, frame).to_parquet(out / "item_popularity.parquet",
                                                        compression="zstd", index=False)
    frame_info.update({"rows_in_workspace": int(n_all), "item_types": list(item_types),
                       "feature_service": service})
    print(f"two-tower frame: {frame_info['rows']:,} of {n_all:,} rows", flush=True)

    manifest = {
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "workdir": str(ws.root),
        "profile": args.profile,
        "cutoff": timeline.cutoff.isoformat(),
        "n_items": len(texts),
        "text_model": model_info,
        "text_version": text_path.stem,
        "graph": graph_info,
        "two_tower_frame": frame_info,
        "config": {"embed": dataclasses.asdict(config.embed),
                   "hgnn": dataclasses.asdict(config.hgnn),
                   "two_tower": dataclasses.asdict(config.two_tower)},
        "export_s": round(time.perf_counter() - started, 1),
    }
    manifest["files_mib"] = {p.name: round(_mib(p), 2) for p in sorted(out.iterdir())}
    manifest["total_mib"] = round(_mib(out), 2)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"{out}: {manifest['total_mib']:.1f} MiB {manifest['files_mib']}", flush=True)
    if manifest["total_mib"] > args.max_mib:
        raise SystemExit(f"{out} is {manifest['total_mib']:.1f} MiB, over --max-mib "
                         f"{args.max_mib}: lower --two-tower-examples")


def check_rebuilt_model(original: Path, exported: Path, texts: list[str], n: int = 200) -> dict:
    """Vectors of the rebuilt (float16-rounded) model against the original's, on n texts."""
    import numpy as np
    from sentence_transformers import SentenceTransformer

    sample = [texts[i] for i in np.random.default_rng(0).choice(len(texts), min(n, len(texts)),
                                                                   replace=False)]
    with tempfile.TemporaryDirectory() as tmp:
        rebuilt = rebuild_text_model(exported, Path(tmp) / "model")
        a = SentenceTransformer(str(original), device="cpu").encode(sample, batch_size=64)
        b = SentenceTransformer(str(rebuilt), device="cpu").encode(sample, batch_size=64)
    cos = _row_cosine(a, b)
    result = {"texts": len(sample), "cosine_min": float(cos.min()),
              "cosine_mean": float(cos.mean())}
    if result["cosine_min"] < 0.9999:
        raise SystemExit(f"the exported text model differs from the original: {result}")
    return result


def two_tower_frame(ws, config, timeline, max_rows: int):
    """The frame `gfm train two-tower` fits on (training/two_tower/train.py:train_two_tower),
    for a uniform sample of max_rows of its examples (0 = all); also the examples' count."""
    import numpy as np

    from feature_store import core as feature_store
    from feature_store.training_set import build_training_examples, two_tower_frame

    cfg = config.two_tower
    service = feature_store.latest_feature_service(ws)
    spec = feature_store.service_spec(ws, service)
    examples = build_training_examples(ws, timeline, max_examples=cfg.max_examples or None,
                                       seed=cfg.seed)
    n_all = len(examples)
    if max_rows and n_all > max_rows:
        keep = np.sort(np.random.default_rng(cfg.seed).choice(n_all, max_rows, replace=False))
        examples = examples.iloc[keep].reset_index(drop=True)
    item_types = spec["item_types"]
    return two_tower_frame(ws, service, examples, item_types), item_types, service, n_all


# ---------------------------------------------------------------------------------------------
# run (there: torch, torch-geometric, sentence-transformers, pyarrow, pandas, numpy)


def _row_cosine(a, b):
    import numpy as np

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    norms = np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return (a * b).sum(1) / norms


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _free(device: str) -> None:
    import gc

    import torch

    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def _peak_gpu_mib(device: str) -> float | None:
    import torch

    if not device.startswith("cuda"):
        return None
    return round(torch.cuda.max_memory_allocated() / 2**20, 1)


def _reset_peak(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def _agreement(cos, threshold: float) -> dict:
    import numpy as np

    cos = np.asarray(cos)
    return {"n": int(len(cos)), "cosine_min": float(cos.min()), "cosine_mean": float(cos.mean()),
            "threshold": threshold, "ok": bool(cos.min() >= threshold)}


def _pair_agreement(vectors: dict, threshold: float) -> dict:
    """_agreement of the two devices' vectors, row by row over the rows both have."""
    a, b = vectors.values()
    n = min(len(a), len(b))
    return _agreement(_row_cosine(a[:n], b[:n]), threshold)


def bench_embed(inputs: Path, devices: list[str], manifest: dict, args) -> dict:
    import numpy as np
    import pyarrow.parquet as pq

    from transforms.text_embedding import _encode_missing, load_text_model

    texts = pq.read_table(inputs / "texts.parquet", columns=["text"]).column("text").to_pylist()
    order = np.random.default_rng(0).permutation(len(texts))
    texts = [texts[i] for i in order]
    batch_size = manifest["config"]["embed"]["batch_size"]
    chunk = args.embed_chunk
    out: dict = {"n_texts": len(texts), "batch_size": batch_size, "devices": {}}
    vectors = {}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = rebuild_text_model(inputs / "text_model", Path(tmp) / "model")
        for device in devices:
            t0 = time.perf_counter()
            model = load_text_model(model_dir, device)
            load_s = time.perf_counter() - t0
            _encode_missing(model, texts[:batch_size * 4], batch_size)  # warm-up
            _sync(device)
            _reset_peak(device)
            parts, done, t0 = [], 0, time.perf_counter()
            while done < len(texts):
                parts.append(_encode_missing(model, texts[done:done + chunk], batch_size))
                done += len(parts[-1])
                _sync(device)
                if time.perf_counter() - t0 > args.embed_budget_s:
                    break
            seconds = time.perf_counter() - t0
            vectors[device] = np.concatenate(parts)
            out["devices"][device] = _device_record(device, {
                "load_s": round(load_s, 2), "texts": done, "seconds": round(seconds, 3),
                "texts_per_s": round(done / seconds, 1),
                "all_texts_s": round(len(texts) * seconds / done, 2),
                "complete": done == len(texts)})
            print(f"embed {device}: {done:,} texts in {seconds:.1f} s "
                  f"({done / seconds:,.0f}/s)", flush=True)
            del model
            _free(device)
    if len(vectors) == 2:
        out["agreement"] = _pair_agreement(vectors, AGREE["embed_cosine_min"])
    return out


def _device_record(device: str, figures: dict) -> dict:
    """One device's figures with its name and its peak GPU memory since the last reset."""
    from gfm.device import device_name

    return {"device_name": device_name(device), **figures,
            "peak_gpu_mib": _peak_gpu_mib(device)}


def _hgnn_steps_per_epoch(trainer) -> int:
    """As LinkPredictionTrainer.epoch_edges + batches cut them."""
    counts = [pairs.shape[1] for _, _, pairs in trainer.split.train.values()]
    config = trainer.config
    if config.multi_link_sampler and counts:
        cap = max(min(counts), config.min_edges_per_type_per_epoch)
        counts = [min(c, cap) for c in counts]
    return math.ceil(sum(counts) / config.batch_size)


def synthetic_graph(meta: dict, n_nodes: int, n_directed_edges: int, seed: int = 0):
    """A graph of the exported one's node types and relation shares, scaled to n_nodes and
    n_directed_edges (e.g. the large profile's, which does not fit the 64 MiB that travels):
    endpoints drawn in proportion to rank^-0.8 per type (popular items have many edges),
    random unit text vectors. For timing at that size; the devices still get equal inputs."""
    import numpy as np

    from training.hgnn.graph import ItemGraph

    rng = np.random.default_rng(seed)
    total = sum(meta["nodes"].values())
    nodes = {t: max(2, round(n * n_nodes / total)) for t, n in meta["nodes"].items()}
    relations = [tuple(r) for r in meta["relations"]]
    weights = meta.get("relation_directed_edges") or {f"{s}__{d}": 1.0 for s, d in relations}
    norm = sum(weights.values())
    x = {}
    for t, n in nodes.items():
        v = rng.standard_normal((n, 384)).astype(np.float32)
        x[t] = v / np.linalg.norm(v, axis=1, keepdims=True)

    def draw(t: str, k: int) -> np.ndarray:
        p = np.arange(1, nodes[t] + 1, dtype=np.float64) ** -0.8
        return rng.choice(nodes[t], size=k, p=p / p.sum())

    edges = {}
    for s, d in relations:
        directed = int(n_directed_edges * weights[f"{s}__{d}"] / norm)
        k = directed // 2
        a, b = draw(s, k), draw(d, k)
        if s == d:
            keep = a != b
            a, b = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
            pairs = np.stack([a, b])
            edges[(s, "co", d)] = np.concatenate([pairs, pairs[::-1]], axis=1)
        else:
            edges[(s, "co", d)] = np.stack([a, b])
            edges[(d, "co", s)] = np.stack([b, a])
    ids = {t: np.array([f"{t}{i}" for i in range(n)], dtype=object) for t, n in nodes.items()}
    return ItemGraph(sorted(nodes), ids, x, edges, {}, {})


def bench_hgnn(inputs: Path, devices: list[str], manifest: dict, mode: str, args) -> dict:
    import numpy as np

    from training.hgnn.config import HGNNConfig
    from training.hgnn.graph import split_edges
    from training.hgnn.train import LinkPredictionTrainer

    synthetic = mode.startswith("synthetic_")
    mode = mode.removeprefix("synthetic_")
    if synthetic:
        graph = synthetic_graph(manifest["graph"], args.synthetic_nodes, args.synthetic_edges)
    else:
        graph = load_graph(inputs / "hgnn_graph.npz", manifest["graph"])
    base = HGNNConfig(**manifest["config"]["hgnn"])
    split = split_edges(graph, base.val_fraction, base.max_val_edges_per_type, base.seed)
    out: dict = {"mode": mode, "synthetic": synthetic,
                 "nodes": {t: graph.num_nodes(t) for t in graph.node_types},
                 "directed_edges": int(graph.num_edges()), "devices": {}}
    agree_z, initial_z = {}, {}
    for device in devices:
        config = dataclasses.replace(base, device=device, batch_mode=mode)
        # Agreement: the same first steps on every device from one seed (deadline passed: one
        # step per call; same batches, negatives and neighbours), then every node's vector.
        # Dropout off here: each device draws its masks from its own generator.
        probe = LinkPredictionTrainer(graph, split, dataclasses.replace(config, dropout=0.0))
        # An epoch's batches are cut once, before its first step (train_epoch calls batches()
        # each time): cut once here, timed apart, and reused by every call below.
        t0 = time.perf_counter()
        epoch_batches = probe.batches()
        batches_s = time.perf_counter() - t0
        probe.batches = lambda batches=epoch_batches: batches
        if mode == "full":  # one forward; sampled inference costs as much as several steps
            initial_z[device] = probe.embed_all()
        for _ in range(args.agree_steps):
            probe.train_epoch(deadline=0.0)
        agree_z[device] = probe.embed_all()
        del probe
        _free(device)
        _reset_peak(device)
        t0 = time.perf_counter()
        trainer = LinkPredictionTrainer(graph, split, config)
        setup_s = time.perf_counter() - t0
        steps_per_epoch = _hgnn_steps_per_epoch(trainer)
        trainer.batches = lambda batches=epoch_batches: batches
        for _ in range(args.warmup_steps):
            trainer.train_epoch(deadline=0.0)
        _sync(device)
        t0 = time.perf_counter()
        loss, steps = trainer.train_epoch(deadline=time.monotonic() + args.hgnn_budget_s)
        _sync(device)
        train_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        z = trainer.embed_all()
        _sync(device)
        infer_s = time.perf_counter() - t0
        val = trainer.validate(z)
        s_per_step = train_s / max(steps, 1)
        out["devices"][device] = _device_record(device, {
            "setup_s": round(setup_s, 2), "timed_steps": steps, "steps_per_epoch": steps_per_epoch,
            "s_per_step": round(s_per_step, 4), "batches_s": round(batches_s, 3),
            "epoch_s": round(batches_s + s_per_step * steps_per_epoch, 2),
            "epoch_measured": steps >= steps_per_epoch, "inference_s": round(infer_s, 3),
            "loss": round(float(loss), 5), "val_auc": round(val["auc"], 4)})
        print(f"hgnn {mode} {device}: {steps} steps, {s_per_step:.3f} s/step, epoch "
              f"~{batches_s + s_per_step * steps_per_epoch:.1f} s, inference {infer_s:.2f} s",
              flush=True)
        del trainer
        _free(device)
    if len(agree_z) == 2:
        a, b = agree_z.values()
        cos = np.concatenate([_row_cosine(a[t], b[t]) for t in a])
        out["agreement"] = {**_agreement(cos, AGREE["hgnn_cosine_min"]),
                            "after_steps": args.agree_steps}
    if len(initial_z) == 2:
        a, b = initial_z.values()
        cos = np.concatenate([_row_cosine(a[t], b[t]) for t in a])
        out["agreement_initial"] = _agreement(cos, AGREE["hgnn_cosine_min"])
    return out


def _sample_rows(frame, n: int):
    """n rows drawn uniformly (seeded), in the frame's order: every day of the label window,
    so examples with and without an HGNN vector alike."""
    import numpy as np

    if len(frame) <= n:
        return frame
    keep = np.sort(np.random.default_rng(0).choice(len(frame), n, replace=False))
    return frame.iloc[keep].reset_index(drop=True)


def bench_two_tower(inputs: Path, devices: list[str], manifest: dict, args) -> dict:
    import pandas as pd

    from training.two_tower.config import TwoTowerConfig
    from training.two_tower.train import encode_items, fit_two_tower

    info = manifest["two_tower_frame"]
    frame = load_frame(inputs / "two_tower", info["vector_columns"])
    if args.two_tower_rows and len(frame) > args.two_tower_rows:
        frame = _sample_rows(frame, args.two_tower_rows)
    item_types = info["item_types"]
    base = TwoTowerConfig(**manifest["config"]["two_tower"])
    base = dataclasses.replace(base, epochs=args.two_tower_epochs, time_budget_s=1e9)
    popularity_file = inputs / "item_popularity.parquet"  # absent in exports before the prior
    if popularity_file.exists():
        popularity = pd.read_parquet(popularity_file)
    else:
        popularity = None
        if base.popularity_prior == "recent":
            base = dataclasses.replace(base, popularity_prior="none")
    out: dict = {"rows": len(frame), "rows_in_workspace": info["rows_in_workspace"],
                 "epochs": args.two_tower_epochs, "batch_size": base.batch_size, "devices": {}}
    small = _sample_rows(frame, args.agree_examples)
    agree_vectors = {}
    for device in devices:
        config = dataclasses.replace(base, device=device)
        _reset_peak(device)
        # Agreement (and warm-up): the same small fit on each device, then the item tower;
        # dropout off (each device draws its masks from its own generator).
        bundle, _ = fit_two_tower(small, dataclasses.replace(config, epochs=1, dropout=0.0),
                                  item_types, item_popularity=popularity)
        from training.two_tower.data import item_inputs

        first = small.drop_duplicates("item_id").reset_index(drop=True)
        items = item_inputs(first, bundle.item_vocab, bundle.hgnn_dim, bundle.text_dim,
                            bundle.id_index)
        agree_vectors[device] = encode_items(bundle, items)
        _free(device)
        _sync(device)
        t0 = time.perf_counter()
        bundle, metrics = fit_two_tower(frame, config, item_types, item_popularity=popularity)
        _sync(device)
        total_s = time.perf_counter() - t0
        epochs = metrics["epochs"]
        steady = epochs[-1]
        out["devices"][device] = _device_record(device, {
            "fit_s": round(total_s, 2),
            "epoch_s": [e["epoch_time_s"] for e in epochs],
            "steady_epoch_s": steady["epoch_time_s"],
            "examples_per_s": steady["examples_per_s"],
            "setup_s": round(total_s - sum(e["epoch_time_s"] for e in epochs), 2),
            "val_recall@10": metrics["val_recall@10"],
            "loss": [round(e["loss"], 5) for e in epochs],
            "device_used": metrics.get("device")})
        print(f"two-tower {device}: epochs {[e['epoch_time_s'] for e in epochs]} s, "
              f"{steady['examples_per_s']:,.0f} examples/s", flush=True)
        del bundle
        _free(device)
    if len(agree_vectors) == 2:
        out["agreement"] = {**_pair_agreement(agree_vectors, AGREE["two_tower_cosine_min"]),
                            "fit_rows": len(small)}
    return out


def machine() -> dict:
    import torch

    info = {"python": platform.python_version(), "torch": torch.__version__,
            "torch_cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available(),
            "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cpu": cpu_name(), "platform": platform.platform()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    for module in ("torch_geometric", "sentence_transformers", "transformers"):
        try:
            info[module] = __import__(module).__version__
        except Exception as exc:  # noqa: BLE001 - reported, not fatal
            info[module] = f"unavailable: {exc}"
    return info


def cmd_run(args: argparse.Namespace) -> None:
    block_unavailable_modules()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    import torch

    inputs = Path(args.inputs)
    manifest = json.loads((inputs / "manifest.json").read_text())
    devices = [d.strip() for d in args.devices.split(",") if d.strip()]
    result: dict = {"started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
                    "commit": git_commit() or manifest.get("commit"),
                    "export_commit": manifest.get("commit"), "manifest": manifest,
                    "machine": machine(),
                    "args": {k: v for k, v in vars(args).items() if k != "func"},
                    "stages": {}, "errors": {}}
    if "cuda" in devices and not torch.cuda.is_available():
        result["errors"]["cuda"] = "torch sees no CUDA device: cuda left out"
        devices = [d for d in devices if d != "cuda"]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()

    def save() -> None:
        from gfm.files import atomic_write_text

        result["elapsed_s"] = round(time.monotonic() - started, 1)
        atomic_write_text(out, json.dumps(result, indent=2) + "\n")

    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    save()
    for stage in stages:
        if time.monotonic() - started > args.deadline_s:
            result["errors"][stage] = f"skipped: --deadline-s {args.deadline_s} reached"
            save()
            continue
        t0 = time.monotonic()
        try:
            torch.manual_seed(0)
            if stage == "embed":
                result["stages"][stage] = bench_embed(inputs, devices, manifest, args)
            elif stage.startswith("hgnn_"):
                result["stages"][stage] = bench_hgnn(inputs, devices, manifest,
                                                     stage.removeprefix("hgnn_"), args)
            elif stage == "two_tower":
                result["stages"][stage] = bench_two_tower(inputs, devices, manifest, args)
            else:
                raise ValueError(f"unknown stage {stage!r}")
            result["stages"][stage]["stage_s"] = round(time.monotonic() - t0, 1)
        except Exception as exc:  # noqa: BLE001 - one stage failing must not lose the others
            import traceback

            trace = traceback.format_exc()[-3000:]
            result["errors"][stage] = f"{type(exc).__name__}: {exc}\n{trace}"
            print(f"{stage} failed: {exc}", flush=True)
        save()
    agreement = {s: r.get("agreement", {}).get("ok") for s, r in result["stages"].items()}
    result["all_agree"] = all(v for v in agreement.values() if v is not None) and bool(
        [v for v in agreement.values() if v is not None])
    save()
    print(json.dumps({"agreement": agreement, "errors": list(result["errors"]),
                      "elapsed_s": result["elapsed_s"]}), flush=True)


# ---------------------------------------------------------------------------------------------
# doc (here: the table into docs/benchmarks.md)


def render(result: dict) -> str:
    m, man = result["machine"], result["manifest"]
    stages = result["stages"]
    hg, tt = man["config"]["hgnn"], man["config"]["two_tower"]
    date = result["started_at"][:10]
    lines = [
        SECTION, "",
        f"`bench/device.py` (run {date}, commit `{(result.get('commit') or '')[:12]}`; inputs "
        f"exported from commit `{(man.get('commit') or '')[:12]}` by `bench/device.py export` "
        f"from the `{man.get('profile') or '?'}` workspace, cutoff {man['cutoff']}): the same "
        "inputs on the CPU and on CUDA, one process, the project's own code "
        "(`_encode_missing`, `LinkPredictionTrainer`, `fit_two_tower`), warm-up excluded. "
        f"Machine: {m.get('gpu', 'no GPU')}; {m['cpu']} ({m['cpu_count']} logical CPUs, torch "
        f"threads {m['torch_threads']}); torch {m['torch']} (CUDA {m['torch_cuda']}), "
        f"torch-geometric {m.get('torch_geometric')}, sentence-transformers "
        f"{m.get('sentence_transformers')}.",
        "",
        f"Settings: embed batch {man['config']['embed']['batch_size']}; HGNN batch "
        f"{hg['batch_size']} positive edges, {hg['negatives_per_edge']} negatives, fanouts "
        f"{hg['fanouts']}, hidden/out {hg['hidden_dim']}/{hg['out_dim']}; two-tower batch "
        f"{tt['batch_size']}, towers {tt['tower_dims']}, item id dim {tt['item_id_dim']}. "
        "Stored vectors (text model weights, graph text vectors, frame vectors) are float16, "
        "widened to float32 for both devices.",
        "",
        "| stage | size | CPU | CUDA | speed-up | CPU and CUDA agree |",
        "|---|---|---:|---:|---:|---|",
    ]

    def agree(r: dict) -> str:
        a = r.get("agreement")
        if not a:
            return ""
        word = "yes" if a["ok"] else "**no**"
        return f"{word}: cosine min {a['cosine_min']:.6f} (n {a['n']:,}; >= {a['threshold']})"

    def speedup(c, g) -> str:
        return f"{c / g:.1f}x" if c and g else ""

    if "embed" in stages:
        r = stages["embed"]
        c, g = r["devices"].get("cpu", {}), r["devices"].get("cuda", {})
        def rate(d):
            if not d:
                return ""
            return (f"{d['texts_per_s']:,.0f} ({d['all_texts_s']:,.1f} s"
                    f"{'' if d.get('complete') else ', extrapolated'})")
        lines.append(
            f"| embed: texts/s (all {r['n_texts']:,} texts, s) | {r['n_texts']:,} item texts | "
            f"{rate(c)} | {rate(g)} | "
            f"{speedup(g.get('texts_per_s'), c.get('texts_per_s'))} | {agree(r)} |")
    for key in ("sampled", "full", "synthetic_sampled", "synthetic_full"):
        r = stages.get(f"hgnn_{key}")
        if not r:
            continue
        mode = r.get("mode", key) + (" (synthetic graph of the large profile's size)"
                            if r.get("synthetic") else "")
        c, g = r["devices"].get("cpu", {}), r["devices"].get("cuda", {})
        size = (f"{sum(r['nodes'].values()):,} nodes, {r['directed_edges']:,} edges, "
                f"{c.get('steps_per_epoch') or g.get('steps_per_epoch')} steps/epoch")

        def cell(d):
            if not d:
                return ""
            mark = "" if d.get("epoch_measured") else "~"
            return f"{d['s_per_step']:.3f} s/step, epoch {mark}{d['epoch_s']:,.1f} s"
        initial = r.get("agreement_initial")
        before = f"; before training {initial['cosine_min']:.6f}" if initial else ""
        lines.append(f"| HGNN training, {mode} | {size} | {cell(c)} | {cell(g)} | "
                     f"{speedup(c.get('s_per_step'), g.get('s_per_step'))} | {agree(r)}{before} |")
        def infer(d):
            return f"{d['inference_s']:.2f} s" if d else ""
        lines.append(f"| HGNN inference (every node), {mode} | | {infer(c)} | {infer(g)} | "
                     f"{speedup(c.get('inference_s'), g.get('inference_s'))} | |")
    if "two_tower" in stages:
        r = stages["two_tower"]
        c, g = r["devices"].get("cpu", {}), r["devices"].get("cuda", {})
        size = f"{r['rows']:,} examples (of {r['rows_in_workspace']:,})"

        def cell(d):
            if not d:
                return ""
            return f"epoch {d['steady_epoch_s']:,.1f} s ({d['examples_per_s']:,.0f} ex/s)"
        lines.append(f"| two-tower training | {size} | {cell(c)} | {cell(g)} | "
                     f"{speedup(c.get('steady_epoch_s'), g.get('steady_epoch_s'))} | "
                     f"{agree(r)} |")
    lines += ["", "- HGNN epoch times marked ~ are the time to cut an epoch's batches + s/step x "
              "steps of a full epoch (the timed steps fit in --hgnn-budget-s "
              f"{result['args'].get('hgnn_budget_s')} s). Two-tower: the "
              "last of the epochs run (the first carries the warm-up); val recall@10 "
              + ", ".join(f"{d} {v.get('val_recall@10', float('nan')):.4f}"
                          for d, v in stages.get("two_tower", {}).get("devices", {}).items())
              + ".",
              "- Agreement: embed = each text's two vectors; HGNN = every node's vector after "
              f"the same {result['args'].get('agree_steps')} steps from one seed; two-tower = the "
              "item-tower vectors after the same 1-epoch fit on "
              f"{result['args'].get('agree_examples'):,} examples (both trainings with dropout "
              "off: each device draws its masks from its own generator). On CUDA the HGNN "
              "aggregates over edge indices (PyG has no sparse max reduction there), on the CPU "
              "over a CSR adjacency."]
    if result.get("errors"):
        lines.append("- Not measured: " + "; ".join(
            f"{k}: {v.splitlines()[0]}" for k, v in result["errors"].items()) + ".")
    return "\n".join(lines) + "\n"


def cmd_doc(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(REPO / "bench"))
    from benchdoc import write_section

    results = [json.loads(Path(path).read_text()) for path in args.result]
    result = results[0]
    # Later runs (e.g. one stage rerun after a fix) replace the stages they hold.
    for later in results[1:]:
        for stage, value in later["stages"].items():
            result["stages"][stage] = value
            result["errors"].pop(stage, None)
        result["errors"].update(later["errors"])
    if args.commit:
        result["commit"] = args.commit
    text = render(result)
    write_section(SECTION, text)
    print(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("export", help="write the inputs of the three stages (here)")
    p.add_argument("--workdir", required=True)
    p.add_argument("--out", default="bench_inputs")
    p.add_argument("--profile", default=None, help="the workspace's profile, for the record")
    p.add_argument("--two-tower-examples", type=int, default=100_000,
                   help="uniform sample of the training frame's rows (0 = all)")
    p.add_argument("--max-mib", type=float, default=50.0)
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("run", help="time the stages per device (the GPU machine)")
    p.add_argument("--inputs", default="bench_inputs")
    p.add_argument("--out", required=True)
    p.add_argument("--devices", default="cpu,cuda")
    p.add_argument("--stages", default="embed,hgnn_sampled,two_tower,hgnn_full",
                   help="of embed, hgnn_sampled, hgnn_full, two_tower, hgnn_synthetic_sampled, "
                        "hgnn_synthetic_full (a graph of --synthetic-nodes/-edges)")
    p.add_argument("--embed-budget-s", type=float, default=30.0,
                   help="per device: texts are encoded in chunks until this is spent")
    p.add_argument("--embed-chunk", type=int, default=4096)
    p.add_argument("--hgnn-budget-s", type=float, default=20.0,
                   help="per device and mode: timed training steps")
    p.add_argument("--agree-steps", type=int, default=2,
                   help="HGNN steps (dropout off) after which CPU and CUDA vectors are compared")
    p.add_argument("--warmup-steps", type=int, default=1, help="HGNN steps before timing")
    p.add_argument("--two-tower-epochs", type=int, default=2)
    p.add_argument("--synthetic-nodes", type=int, default=34_000,
                   help="stages hgnn_synthetic_sampled|full: nodes (default: the large profile's)")
    p.add_argument("--synthetic-edges", type=int, default=21_741_582,
                   help="stages hgnn_synthetic_*: directed edges (default: the large profile's)")
    p.add_argument("--two-tower-rows", type=int, default=0,
                   help="fit on N rows of the exported frame, a seeded sample (0 = all)")
    p.add_argument("--agree-examples", type=int, default=4096)
    p.add_argument("--deadline-s", type=float, default=420.0,
                   help="stages not started by then are skipped (and said so in the JSON)")
    p.set_defaults(func=cmd_run)
    p = sub.add_parser("doc", help="write the table into docs/benchmarks.md")
    p.add_argument("--result", required=True, action="append",
                   help="a run's JSON; repeat it for runs of single stages, later ones win")
    p.add_argument("--commit", default=None,
                   help="the commit the run's tree held, when the GPU machine's copy of the "
                        "repository reports another (it may keep the session's first HEAD)")
    p.set_defaults(func=cmd_doc)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
