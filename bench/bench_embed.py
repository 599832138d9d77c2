"""Benchmark `embed_items` against a bare `model.encode` on the same texts.

    .venv/bin/python bench/bench_embed.py [--n 600] [--repeats 5] [--no-write]

N items are sampled (seeded) from a generated `small` profile; both contenders use one loaded,
warmed-up packaged all-MiniLM-L6-v2 and batch size 64. Runs alternate (bare, embed_items, bare, ...)
so that load from other processes falls on both alike; embed_items starts each run from an empty
cache and an empty feature folder, so it encodes every text and writes both files. The goal is a
ratio embed_items / bare of at least 0.9. The figures are printed and written to the section
"Text embeddings" of docs/benchmarks.md (replaced if present, else appended).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from benchdoc import DOC, cpu_name, write_section  # noqa: E402
from gfm.config import load_config, parse_overrides  # noqa: E402
from gfm.workspace import Workspace  # noqa: E402
from ingest.synthetic import generate  # noqa: E402
from transforms.text_embedding import (  # noqa: E402
    embed_items,
    feature_dir,
    item_text,
    load_text_model,
)

SECTION = "## Text embeddings"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=600, help="texts (items) to encode")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench_embed_") as tmp:
        raw_small = Path(tmp) / "small"
        raw_small.mkdir()
        generate("small", 7, raw_small)
        items = pq.read_table(raw_small / "items.parquet")
        rows = np.sort(np.random.default_rng(0).choice(items.num_rows, min(args.n, items.num_rows),
                                                       replace=False))
        items = items.take(rows)
        workspace = Workspace.at(Path(tmp) / "ws")
        workspace.raw_dir.mkdir(parents=True)
        pq.write_table(items, workspace.raw_path("items"))
        texts = [item_text(t, d, k, g) for t, d, k, g in zip(
            items.column("title").to_pylist(), items.column("description").to_pylist(),
            items.column("item_type").to_pylist(), items.column("genre").to_pylist())]
        n = len(texts)
        config = load_config(overrides=parse_overrides([f"embed.batch_size={args.batch_size}"]))

        started = time.perf_counter()
        model = load_text_model(None)
        load_s = time.perf_counter() - started
        model.encoder.encode(texts[: 4 * args.batch_size], batch_size=args.batch_size)  # warm-up
        load_before = os.getloadavg()[0]

        bare_s, embed_s, bare_cpu, embed_cpu = [], [], [], []
        for repeat in range(args.repeats):
            started, cpu = time.perf_counter(), time.process_time()
            model.encoder.encode(texts, batch_size=args.batch_size)
            bare_s.append(time.perf_counter() - started)
            bare_cpu.append(time.process_time() - cpu)

            shutil.rmtree(feature_dir(workspace), ignore_errors=True)  # empty cache
            started, cpu = time.perf_counter(), time.process_time()
            run = embed_items(workspace, config, model=model)
            embed_s.append(time.perf_counter() - started)
            embed_cpu.append(time.process_time() - cpu)
            assert run.n_encoded == n and not run.existed
            print(f"repeat {repeat + 1}: bare {n / bare_s[-1]:6.1f} sentences/s   "
                  f"embed_items {n / embed_s[-1]:6.1f} sentences/s   "
                  f"ratio {bare_s[-1] / embed_s[-1]:.3f}", flush=True)

        # Rerun with every text cached but no version file: no encoding at all.
        run.path.unlink()
        run.metadata_path.unlink()
        started = time.perf_counter()
        cached = embed_items(workspace, config, model=model)
        cached_s = time.perf_counter() - started
        assert cached.n_encoded == 0
        started = time.perf_counter()
        existing = embed_items(workspace, config)  # version exists: model not even loaded
        existing_s = time.perf_counter() - started
        assert existing.existed
        load_after = os.getloadavg()[0]

    bare, embed = statistics.median(bare_s), statistics.median(embed_s)
    ratio = bare / embed
    # CPU seconds of this process (all threads): less sensitive to other processes on the cores.
    cpu_ratio = statistics.median(bare_cpu) / statistics.median(embed_cpu)
    print(f"\n{n} texts, batch {args.batch_size}, {args.repeats} alternating repeats (median):")
    print(f"  bare model.encode      {n / bare:7.1f} sentences/s  ({bare:.2f} s)")
    print(f"  embed_items, no cache  {n / embed:7.1f} sentences/s  ({embed:.2f} s)")
    verdict = "met" if ratio >= 0.9 else "MISSED"
    print(f"  ratio                  {ratio:.3f}  (goal >= 0.9: {verdict})")
    print(f"  ratio of CPU seconds   {cpu_ratio:.3f}  (bare {statistics.median(bare_cpu):.1f} s, "
          f"embed_items {statistics.median(embed_cpu):.1f} s)")
    print(f"  embed_items, all texts cached   {cached_s:.2f} s")
    print(f"  embed_items, version exists     {existing_s:.2f} s")
    print(f"  model load {load_s:.1f} s; load average {load_before:.2f} -> {load_after:.2f}")

    if args.no_write:
        return
    import torch

    write_section(
        SECTION,
        f"{SECTION}\n\n"
        f"`bench/bench_embed.py --n {args.n} --repeats {args.repeats}` ({dt.date.today()}): "
        f"{n} item texts sampled from the generated `small` profile (seed 7), packaged "
        f"all-MiniLM-L6-v2, batch {args.batch_size}, warm model, runs alternating, medians.\n"
        f"Machine: {os.cpu_count()} cores ({cpu_name()}), torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads; 1-min load average {load_before:.1f} -> "
        f"{load_after:.1f} during the run"
        + (" (other processes were sharing the cores: absolute figures are low, the ratio is "
           "what to read)" if max(load_before, load_after) > (os.cpu_count() or 1) + 0.5 else "")
        + ".\n\n"
        "| run | sentences/s | seconds |\n|---|---:|---:|\n"
        f"| bare `model.encode(texts, batch_size={args.batch_size})` | {n / bare:.1f} | "
        f"{bare:.2f} |\n"
        f"| `embed_items`, empty cache (hash, encode, write cache + file) | {n / embed:.1f} | "
        f"{embed:.2f} |\n"
        f"| `embed_items`, every text cached, new version file | | {cached_s:.2f} |\n"
        f"| `embed_items`, version already written (no model load) | | {existing_s:.2f} |\n\n"
        f"Ratio embed_items / bare: **{ratio:.3f}** (goal >= 0.9); per repeat: "
        + ", ".join(f"{b / e:.3f}" for b, e in zip(bare_s, embed_s))
        + f". Ratio of the process's CPU seconds (all threads; less sensitive to the other "
        f"processes): {cpu_ratio:.3f}.\n"
    )
    print(f"wrote the '{SECTION[3:]}' section of {DOC}")


if __name__ == "__main__":
    main()
