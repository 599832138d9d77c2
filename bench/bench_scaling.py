"""The warehouse on DuckDB and on Spark, measured side by side, and projected to the paper's
scale: writes docs/scaling.md.

    .venv/bin/python bench/bench_scaling.py [--profiles tiny small medium large]
                                            [--engines duckdb spark] [--seed 7]
    .venv/bin/python bench/bench_scaling.py --stage training-set --profiles small medium \
                                            [--spark-driver-memory 8g]
    .venv/bin/python bench/bench_scaling.py --render-only   # docs/scaling.md from saved runs

Each profile's raw data is generated once (seed 7) into /tmp/bench_scaling_<profile>/raw; each
engine transforms its own copy (`gfm transform`, `warehouse.engine` set, as a child process).
Measured per run: wall seconds, the peak resident memory of the whole process tree (sampled
every 0.25 s with psutil: on Spark most of it is the JVM, a grandchild that os.wait4 would not
count), its CPU seconds, and the marts' sizes. Every run is kept in bench/results_scaling/ (one
JSON per profile and engine, in git) and the document is rendered from all of them, so
profiles can be measured in separate sessions. The projection is computed from the paper's
figures and the measured runs; its formulas are printed beside it.

`--stage training-set` measures `gfm features training-set` through each offline store
(features.offline_store duckdb, spark) on one workspace per profile (the DuckDB transform's copy
with text vectors, a 1-epoch HGNN and the feature store), and checks both files are the same.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchdoc import REPO, commit_label, cpu_name  # noqa: E402

GFM = REPO / ".venv" / "bin" / "gfm"
OUT = REPO / "bench" / "results_scaling"  # committed: the document is rendered from all of them
DOC = REPO / "docs" / "scaling.md"
PROFILES = ("tiny", "small", "medium", "large")
ENGINES = ("duckdb", "spark")

# The paper's deployment (Spotify, WWW'24 and its 2T-HGNN companion).
PAPER = {"users": 10_000_000, "podcasts": 3_500_000, "audiobooks": 250_000, "days": 90,
         "dim": 128}


def run_tree(argv: list[str], log_path: Path) -> dict:
    """Run argv to completion, output to log_path: wall s, peak RSS MiB of the process and every
    descendant together, and their CPU s (each process's last sample)."""
    started = time.perf_counter()
    peak, cpu_by_pid = 0, {}
    with open(log_path, "w") as log:
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                break
            rss = 0
            for p in tree:
                try:
                    rss += p.memory_info().rss
                    times = p.cpu_times()
                    cpu_by_pid[p.pid] = times.user + times.system
                except psutil.NoSuchProcess:
                    pass
            peak = max(peak, rss)
            time.sleep(0.25)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}); log {log_path}:\n"
                           f"{log_path.read_text()[-3000:]}")
    return {"wall_s": wall, "peak_rss_mb": peak / 2**20, "cpu_s": sum(cpu_by_pid.values())}


def mart_sizes(workdir: Path) -> dict:
    import duckdb

    con = duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True,
                         config={"file_search_path": str(workdir)})
    try:
        counts = {name: con.execute(f"select count(*) from {table}").fetchone()[0]
                  for name, table in (("interactions", "stg_interactions"),
                                      ("edges", "co_interaction_edges"),
                                      ("history_rows", "user_history"))}
        return counts
    finally:
        con.close()


def measure(profile: str, engine: str, seed: int) -> dict:
    base = Path(f"/tmp/bench_scaling_{profile}")
    raw = base / "raw"
    if not (raw / "interactions.parquet").exists():
        subprocess.run([str(GFM), "generate", "--profile", profile, "--seed", str(seed),
                        "--workdir", str(base)], check=True, capture_output=True)
    workdir = base / engine
    shutil.rmtree(workdir, ignore_errors=True)  # a cold build each time
    workdir.mkdir(parents=True)
    shutil.copytree(raw, workdir / "raw")
    load_before = os.getloadavg()[0]
    run = run_tree([str(GFM), "transform", "--workdir", str(workdir),
                    "--set", f"warehouse.engine={engine}"], base / f"transform_{engine}.log")
    result = {"profile": profile, "engine": engine, "seed": seed, **run, **mart_sizes(workdir),
              "load": [load_before, os.getloadavg()[0]], "commit": commit_label(),
              "date": dt.date.today().isoformat(), "machine": machine()}
    if engine == "spark" and (base / "duckdb" / "warehouse.duckdb").exists():
        add_mart_comparison(result, base / "duckdb", workdir)
    print(f"[{profile} {engine}] {run['wall_s']:.0f} s, peak {run['peak_rss_mb']:,.0f} MiB, "
          f"CPU {run['cpu_s']:.0f} s", flush=True)
    return result


def same_marts(duckdb_workdir: Path, spark_workdir: Path) -> dict[str, bool]:
    """Per model: do both engines' relations hold the same multiset of rows (EXCEPT ALL both
    ways, and equal counts)? Read in the Spark workspace, the DuckDB warehouse attached (its
    marts are tables; its staging views read raw/, which both workspaces hold the same)."""
    import duckdb

    from transforms.warehouse import transform_models

    con = duckdb.connect(str(spark_workdir / "warehouse.duckdb"), read_only=True,
                         config={"file_search_path": str(spark_workdir)})
    try:
        con.execute(f"attach '{duckdb_workdir / 'warehouse.duckdb'}' as local (read_only)")
        same = {}
        for model in transform_models():
            ours, theirs = f"main.{model}", f"local.main.{model}"
            counts = [con.execute(f"select count(*) from {t}").fetchone()[0]
                      for t in (ours, theirs)]
            differ = sum(con.execute(f"select count(*) from (select * from {a} except all "
                                     f"select * from {b})").fetchone()[0]
                         for a, b in ((ours, theirs), (theirs, ours)))
            same[model] = counts[0] == counts[1] and differ == 0
        return same
    finally:
        con.close()


def add_mart_comparison(result: dict, duckdb_workdir: Path, spark_workdir: Path) -> None:
    """Record in a Spark run's `result` whether its marts equal the DuckDB run's (same_marts)."""
    same = same_marts(duckdb_workdir, spark_workdir)
    result["same_marts_as_duckdb"] = all(same.values())
    result["marts_compared"] = same


def compare_engines(profile: str) -> None:
    """Add the mart comparison to the saved Spark run of `profile` (its two workspaces must
    still be under /tmp/bench_scaling_<profile>/)."""
    base = Path(f"/tmp/bench_scaling_{profile}")
    path = OUT / f"{profile}_spark.json"
    result = json.loads(path.read_text())
    add_mart_comparison(result, base / "duckdb", base / "spark")
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"[{profile}] marts equal on both engines: {result['same_marts_as_duckdb']} "
          f"{result['marts_compared']}", flush=True)


def measure_training_set(profile: str, seed: int, driver_memory: str) -> list[dict]:
    """`gfm features training-set` on one workspace through each offline store: the DuckDB
    transform's copy, with text vectors, a 1-epoch HGNN and the feature store (DuckDB) built
    once; the Spark store on a copy re-applied with features.offline_store spark and
    warehouse.spark_driver_memory `driver_memory` (Feast's Spark store collects the joined
    frame to the driver, so the driver holds every example's vectors). Also checks that both
    files hold the same rows and values."""
    base = Path(f"/tmp/bench_scaling_{profile}")
    if not (base / "duckdb" / "warehouse.duckdb").exists():
        measure(profile, "duckdb", seed)
    workdir = base / "features_duckdb"
    if not (workdir / "feature_repo" / "feature_store.yaml").exists():
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.copytree(base / "duckdb", workdir)
        for stage in (["embed"], ["train", "hgnn", "--set", "hgnn.max_epochs=1"],
                      ["features", "apply"]):
            subprocess.run([str(GFM), *stage, "--workdir", str(workdir)], check=True,
                           capture_output=True)
    spark_workdir = base / "features_spark"
    shutil.rmtree(spark_workdir, ignore_errors=True)
    shutil.copytree(workdir, spark_workdir)
    with (spark_workdir / "gfm.yaml").open("a") as config:
        config.write(f"\nfeatures:\n  offline_store: spark\nwarehouse:\n"
                     f"  spark_driver_memory: {driver_memory}\n")
    subprocess.run([str(GFM), "features", "apply", "--workdir", str(spark_workdir)], check=True,
                   capture_output=True)
    results, files = [], {}
    for store, where in (("duckdb", workdir), ("spark", spark_workdir)):
        files[store] = base / f"training_set_{store}.parquet"
        load_before = os.getloadavg()[0]
        run = run_tree([str(GFM), "features", "training-set", "--workdir", str(where),
                        "--out", str(files[store]), "--force"],
                       base / f"training_set_{store}.log")
        results.append({"kind": "training_set", "profile": profile, "engine": store,
                        "seed": seed, **run, "rows": pq_rows(files[store]),
                        "spark_driver_memory": driver_memory if store == "spark" else None,
                        "load": [load_before, os.getloadavg()[0]], "commit": commit_label(),
                        "date": dt.date.today().isoformat(), "machine": machine()})
        print(f"[{profile} training set, {store}] {run['wall_s']:.0f} s, "
              f"peak {run['peak_rss_mb']:,.0f} MiB", flush=True)
    results[-1]["same_as_duckdb"] = same_frames(files["duckdb"], files["spark"])
    return results


def pq_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows


def same_frames(a_path: Path, b_path: Path) -> bool:
    """Same columns and rows in the same order; float vectors equal up to 1e-6."""
    import pandas as pd

    from training.two_tower.export import first_difference

    difference = first_difference(pd.read_parquet(a_path), pd.read_parquet(b_path))
    if difference:
        print(f"  training sets differ: {difference}", flush=True)
    return difference is None


def machine() -> str:
    memory = psutil.virtual_memory().total / 2**30
    return f"{os.cpu_count()} cores ({cpu_name()}), {memory:.0f} GiB, shared"


def render(all_runs: list[dict]) -> str:
    runs = [r for r in all_runs if r.get("kind", "transform") == "transform"]
    by = {(r["profile"], r["engine"]): r for r in runs}
    profiles = [p for p in PROFILES if any((p, e) in by for e in ENGINES)]
    lines = [
        "# Scaling: DuckDB and Spark",
        "",
        "**Generated by `bench/bench_scaling.py`: do not edit by hand.** The warehouse stage "
        "(`gfm transform`: the dbt models and their tests) on each engine and the point-in-time "
        "training set through each offline store, measured on this project's development "
        "machine, then projected to the paper's scale. How they plug in: "
        "docs/configuration.md (`warehouse.engine`, `features.offline_store`).",
        "",
        "## Measured",
        "",
        "`gfm transform` as a child process on a cold workspace (raw data generated with the "
        "profile's seed; Spark: `local[2]`, 8 shuffle partitions, a fresh JVM per run). Peak "
        "memory is the whole process tree's resident set (the JVM included), sampled every "
        "0.25 s; CPU s adds every process of the tree. Same marts: every relation dbt builds "
        "holds the same rows on both engines (EXCEPT ALL both ways, equal counts).",
        "",
        "| profile | interactions | edges | engine | wall s | peak RSS MiB | CPU s "
        "| Spark / DuckDB wall | Spark / DuckDB memory | same marts | commit, date "
        "| load before -> after |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for profile in profiles:
        duck = by.get((profile, "duckdb"))
        for engine in ENGINES:
            r = by.get((profile, engine))
            if r is None:
                lines.append(f"| {profile} | | | {engine} | not measured | | | | | | | |")
                continue
            ratio_wall = ratio_mem = ""
            if engine == "spark" and duck:
                ratio_wall = f"{r['wall_s'] / duck['wall_s']:.1f}x"
                ratio_mem = f"{r['peak_rss_mb'] / duck['peak_rss_mb']:.1f}x"
            lines.append(
                f"| {profile} | {r['interactions']:,} | {r['edges']:,} | {engine} | "
                f"{r['wall_s']:.0f} | {r['peak_rss_mb']:,.0f} | {r['cpu_s']:.0f} | "
                f"{ratio_wall} | {ratio_mem} | {same_cell(r)} | {r['commit']}, {r['date']} | "
                f"{r['load'][0]:.1f} -> {r['load'][1]:.1f} |")
    machines = sorted({r["machine"] for r in all_runs})
    lines += ["", f"Machine: {'; '.join(machines)}.", ""]
    lines += training_sets([r for r in all_runs if r.get("kind") == "training_set"])
    lines += crossover(by, profiles) + projection(by, profiles)
    return "\n".join(lines) + "\n"


def same_cell(run: dict) -> str:
    """"yes" / "**no** (models)" for a Spark run compared with DuckDB's, "" otherwise."""
    if "same_marts_as_duckdb" not in run:
        return ""
    if run["same_marts_as_duckdb"]:
        return f"yes ({len(run['marts_compared'])} models)"
    return "**no** (" + ", ".join(m for m, ok in run["marts_compared"].items() if not ok) + ")"


def training_sets(runs: list[dict]) -> list[str]:
    lines = ["## Point-in-time training sets", "",
             "`gfm features training-set` (the two-tower's training frame: every example of "
             "the training window with every feature of its FeatureService, joined point-in-time "
             "by Feast) as a child process, through each offline store (features.offline_store), "
             "on a workspace with text vectors, a 1-epoch HGNN and the feature store built once. "
             "Same file: both stores gave the same rows in the same order and the same values "
             "(vectors up to 1e-6). Feast's Spark store collects the joined frame to the "
             "driver, so warehouse.spark_driver_memory must hold every example's vectors "
             "(`--spark-driver-memory`).", ""]
    if not runs:
        return lines + ["Not measured yet (`--stage training-set`).", ""]
    lines += ["| profile | examples | offline store | Spark driver memory | wall s "
              "| peak RSS MiB | CPU s | Spark / DuckDB wall | same file | commit, date "
              "| load before -> after |",
              "|---|---:|---|---|---:|---:|---:|---:|---|---|---|"]
    by = {(r["profile"], r["engine"]): r for r in runs}
    for profile in PROFILES:
        for store in ENGINES:
            r = by.get((profile, store))
            if r is None:
                continue
            duck = by.get((profile, "duckdb"))
            ratio = (f"{r['wall_s'] / duck['wall_s']:.1f}x" if store == "spark" and duck
                     else "")
            same = {True: "yes", False: "**no**"}.get(r.get("same_as_duckdb"), "")
            lines.append(
                f"| {profile} | {r['rows']:,} | {store} | "
                f"{r.get('spark_driver_memory') or ('2g' if store == 'spark' else '')} | "
                f"{r['wall_s']:.0f} | "
                f"{r['peak_rss_mb']:,.0f} | {r['cpu_s']:.0f} | {ratio} | {same} | "
                f"{r['commit']}, {r['date']} | {r['load'][0]:.1f} -> {r['load'][1]:.1f} |")
    return lines + [""]


def crossover(by: dict, profiles: list[str]) -> list[str]:
    pairs = [(p, by[(p, "duckdb")], by[(p, "spark")]) for p in profiles
             if (p, "duckdb") in by and (p, "spark") in by]
    lines = ["## Crossover", ""]
    if not pairs:
        return lines + ["Not measured yet: no profile has runs on both engines.", ""]
    fixed = pairs[0][2]["wall_s"] - pairs[0][1]["wall_s"]
    lines.append(
        "On one machine Spark pays a fixed start-up (JVM, session, embedded metastore, one job "
        f"per model and test): {fixed:.0f} s more than DuckDB on {pairs[0][0]}. Wall time "
        "ratios Spark / DuckDB by size: " + ", ".join(
            f"{p} {s['wall_s'] / d['wall_s']:.1f}x ({d['interactions']:,} interactions)"
            for p, d, s in pairs) + ".")
    if all(s["wall_s"] > d["wall_s"] for _, d, s in pairs):
        lines.append(
            "Spark was slower at every measured size: on one machine there is no crossover in "
            "time. Spark's case is the memory and the machines DuckDB does not have: the "
            "crossover is where the largest build no longer fits one machine's memory "
            "(projection below), not a speed-up at sizes that fit.")
    else:
        first = next(p for p, d, s in pairs if s["wall_s"] <= d["wall_s"])
        lines.append(f"Spark was at least as fast as DuckDB from {first} on.")
    return lines + [""]


def projection(by: dict, profiles: list[str]) -> list[str]:
    dim = PAPER["dim"]
    items = PAPER["podcasts"] + PAPER["audiobooks"]
    vectors_gb = items * dim * 4 / 1e9
    users_gb = PAPER["users"] * dim * 4 / 1e9
    # HNSW (M = 16): 2M neighbour ids of 4 bytes per vector on the base layer.
    hnsw_gb = items * (dim * 4 + 2 * 16 * 4) / 1e9
    lines = ["## Projection to the paper's scale", "",
             f"The paper: {PAPER['users']:,} users, {PAPER['podcasts']:,} podcasts, "
             f"{PAPER['audiobooks']:,} audiobooks, {PAPER['days']} days, {dim}-dimensional "
             "vectors.", ""]
    from gfm.config import WarehouseConfig

    cap = WarehouseConfig().max_items_per_user
    pair_bound = PAPER["users"] * cap * (cap - 1) / 2
    duck = sorted((by[(p, "duckdb")] for p in profiles if (p, "duckdb") in by),
                  key=lambda r: r["interactions"])
    if duck:
        largest = duck[-1]
        growth = ""
        if len(duck) > 1:
            # the marginal cost between the two largest runs: the fixed part cancels out
            before = duck[-2]
            per_m = ((largest["peak_rss_mb"] - before["peak_rss_mb"])
                     / ((largest["interactions"] - before["interactions"]) / 1e6))
            memory_mib = machine_memory_gib(largest["machine"]) * 1024
            growth = (f" From {before['profile']} to {largest['profile']} it grew "
                      f"{per_m:,.0f} MiB per million more interactions")
            if per_m > 0 and memory_mib:
                headroom_mib = memory_mib - largest["peak_rss_mb"]
                reach = largest["interactions"] + headroom_mib / per_m * 1e6
                growth += (f": at that rate this machine's {memory_mib / 1024:.0f} GiB would be "
                           f"reached near {reach / 1e6:,.0f} million interactions (a linear "
                           "extrapolation; DuckDB can also spill to disk)")
            growth += "."
        lines.append(
            f"- **Warehouse.** DuckDB's peak memory on {largest['profile']} was "
            f"{largest['peak_rss_mb']:,.0f} MiB for {largest['interactions']:,} interactions."
            f"{growth} The co-interaction self-join forms "
            "n_u (n_u - 1) / 2 pairs per user, n_u capped at `warehouse.max_items_per_user` = "
            f"{cap}: at most {pair_bound:.1e} pairs for {PAPER['users']:,} users (= users x "
            f"{cap} x {cap - 1} / 2) before aggregation. That is beyond one machine, so the "
            "edge build and the user-history snapshots run on Spark (`warehouse.engine: "
            "spark`, a cluster's `spark_master`), with `spark_shuffle_partitions` set so that "
            "one partition's pairs fit an executor's memory.")
    lines += [
        f"- **Item vectors.** {items:,} items x {dim} float32 = {vectors_gb:.2f} GB "
        f"(= items x {dim} x 4 bytes); user average vectors, {PAPER['users']:,} users: "
        f"{users_gb:.2f} GB each version.",
        f"- **Milvus server (HNSW, M = 16).** About {hnsw_gb:.2f} GB for the item index "
        f"(= items x ({dim} x 4 + 2 x 16 x 4) bytes: vectors plus base-layer links); "
        "milvus-lite is for one machine, a Milvus server or cluster beyond.",
        f"- **Redis online store.** At least the raw values: {vectors_gb + users_gb:.2f} GB "
        "for one item and one user vector version, plus Feast's per-key overhead (a hash per "
        "entity and the serialized feature names), which this projection does not measure.",
        "- **What stays single-node.** HGNN training: as in the 2T-HGNN paper, the item graph "
        "(millions of nodes) and its sampled neighbourhoods train on one GPU machine; the "
        "two-tower trains on one machine from the point-in-time training set.",
        "",
    ]
    return lines


def machine_memory_gib(machine_text: str) -> float:
    """The memory of a run's machine, from its description ("..., 24 GiB, shared")."""
    found = re.search(r"([\d.]+) GiB", machine_text)
    return float(found.group(1)) if found else 0.0


def load_runs() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(OUT.glob("*.json"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="+", default=["tiny", "small"], choices=PROFILES)
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--stage", choices=("transform", "training-set", "compare"),
                        default="transform",
                        help="what to measure: gfm transform per engine, gfm features "
                             "training-set per offline store, or (compare) whether the marts "
                             "of the last transform runs are equal on both engines")
    parser.add_argument("--spark-driver-memory", default="2g",
                        help="training-set stage: warehouse.spark_driver_memory of the Spark "
                             "store's copy (default 2g, the config default; medium needs more)")
    parser.add_argument("--render-only", action="store_true",
                        help="measure nothing: write docs/scaling.md from the saved runs")
    args = parser.parse_args()
    if not args.render_only:
        OUT.mkdir(parents=True, exist_ok=True)
        for profile in args.profiles:
            if args.stage == "compare":
                compare_engines(profile)
                continue
            if args.stage == "training-set":
                for result in measure_training_set(profile, args.seed,
                                                   args.spark_driver_memory):
                    (OUT / f"{profile}_training_set_{result['engine']}.json").write_text(
                        json.dumps(result, indent=2) + "\n")
                continue
            for engine in args.engines:
                result = measure(profile, engine, args.seed)
                (OUT / f"{profile}_{engine}.json").write_text(json.dumps(result, indent=2) + "\n")
    DOC.write_text(render(load_runs()))
    print(f"wrote {DOC}")


if __name__ == "__main__":
    sys.exit(main())
