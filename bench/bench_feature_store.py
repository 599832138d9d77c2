"""Benchmark of the feature store: materialize, online reads, point-in-time joins.

    python bench/bench_feature_store.py [--workdir W] [--examples 100000] [--repeats 3]

Without --workdir, builds the `tiny` synthetic workspace in a temporary folder (generate,
transform, embed, a 1-epoch HGNN). Prints a markdown section for docs/benchmarks.md:

- materialize: entity rows written per second, all views (SQLite, and Redis when a
  `redis-server` is on PATH: started on a free loopback port, no persistence);
- get_online_features of the user tower's features (user_avg_hgnn_vN, user_metadata,
  user_history) for 1 and 100 users: p50 / p99 over many calls;
- get_training_frame (Feast point-in-time join through the two_tower_features service) for
  --examples synthetic examples (random users, top-level items and instants in the label
  window), in one call and split by entity, against a bare DuckDB ASOF join over the same
  parquet files producing the same columns (checked equal on the user vectors).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gfm.cli.main import main as gfm  # noqa: E402
from gfm.config import load_config  # noqa: E402
from gfm.ports import free_local_port  # noqa: E402
from gfm.timeline import resolve_timeline  # noqa: E402
from gfm.workspace import Workspace  # noqa: E402


def _percentiles(samples: list[float]) -> tuple[float, float]:
    values = np.asarray(samples) * 1000
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def build_tiny(root: Path) -> Path:
    workdir = root / "ws"
    for command in (["generate", "--profile", "tiny", "--seed", "3"], ["transform"], ["embed"],
                    ["train", "hgnn", "--set", "hgnn.max_epochs=1"]):
        assert gfm([*command, "--workdir", str(workdir)]) == 0, command
    return workdir


def deploy(workdir: Path) -> dict:
    from feature_store import materialize_features

    ws = Workspace.at(workdir)
    assert gfm(["features", "apply", "--workdir", str(workdir)]) == 0
    timeline = resolve_timeline(load_config(ws.root).timeline, ws)
    stats = materialize_features(ws, timeline)
    rows, seconds = sum(s.rows for s in stats), sum(s.seconds for s in stats)
    biggest = max(stats, key=lambda s: s.rows)
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds,
            "biggest": f"{biggest.view} {biggest.rows:,} rows at {biggest.rows_per_s:,.0f}/s"}


def online_latency(workdir: Path, calls_1: int, calls_100: int) -> dict:
    from feature_store import latest_feature_service, open_store, service_spec

    ws = Workspace.at(workdir)
    service = latest_feature_service(ws)
    store = open_store(ws)
    user_views = [v for v in service_spec(ws, service)["views"]
                  if isinstance(v, str) and v.startswith(("user_avg", "user_metadata"))]
    features = [f"{v}:{f.name}" for v in [*user_views, "user_history"]
                for f in store.get_feature_view(v).features]
    users = pd.read_parquet(ws.features_dir / "user_metadata.parquet").user_id.tolist()
    rng = np.random.default_rng(0)
    result: dict = {"features": len(features)}
    for size, calls in ((1, calls_1), (100, calls_100)):
        samples = []
        for i in range(calls + 5):
            rows = [{"user_id": u} for u in rng.choice(users, size, replace=False)]
            began = time.perf_counter()
            response = store.get_online_features(features=features, entity_rows=rows).to_dict()
            if i >= 5:  # warm-up calls left out
                samples.append(time.perf_counter() - began)
        assert len(response["avg_hgnn_all"]) == size
        result[size] = _percentiles(samples)
    return result


def examples_for(workdir: Path, n: int) -> pd.DataFrame:
    ws = Workspace.at(workdir)
    timeline = resolve_timeline(load_config(ws.root).timeline, ws)
    users = pd.read_parquet(ws.features_dir / "user_metadata.parquet").user_id.to_numpy()
    items = pd.read_parquet(ws.features_dir / "item_metadata.parquet").query("is_top_level")
    rng = np.random.default_rng(0)
    span = (timeline.cutoff - timeline.graph_as_of).total_seconds()
    seconds = np.sort(rng.uniform(0, span, n)).round(6)
    return pd.DataFrame({
        "user_id": rng.choice(users, n), "item_id": rng.choice(items.item_id.to_numpy(), n),
        "event_timestamp": pd.Timestamp(timeline.graph_as_of) + pd.to_timedelta(seconds, unit="s"),
        "label": np.ones(n, dtype=np.int8),
    })


def bare_asof(workdir: Path, service: str, examples: pd.DataFrame):
    """The same join in plain DuckDB: one ASOF LEFT JOIN per view, the 1-day snapshot ttl as
    a CASE; arrow out, like Feast's to_arrow()."""
    from feature_store import open_store, service_spec

    ws = Workspace.at(workdir)
    store = open_store(ws)
    spec = service_spec(ws, service)
    con = duckdb.connect()
    frame = examples.assign(example_id=np.arange(len(examples)))
    con.register("examples", frame)
    selects, joins = [], []
    for i, view_name in enumerate(spec["views"]):
        view = store.get_feature_view(view_name)
        source = view.batch_source
        assert getattr(source, "path", None), f"{view_name}: not a file source"
        key = "user_id" if "user" in view.entities else "item_id"
        alias = f"v{i}"
        mapping = {new: old for old, new in (source.field_mapping or {}).items()}
        for feature in view.features:
            column = f"{alias}.{mapping.get(feature.name, feature.name)}"
            if view.ttl and view.ttl.total_seconds() > 0:
                column = (f"case when e.event_timestamp <= {alias}.event_timestamp + "
                          f"interval {int(view.ttl.total_seconds())} second then {column} end")
            selects.append(f"{column} as {feature.name}")
        joins.append(f"asof left join read_parquet('{source.path}') {alias} "
                     f"on e.{key} = {alias}.{key} and e.event_timestamp >= {alias}.event_timestamp")
    sql = (f"select e.example_id, {', '.join(selects)} from examples e {' '.join(joins)} "
           "order by e.example_id")
    began = time.perf_counter()
    table = con.sql(sql).to_arrow_table()
    seconds = time.perf_counter() - began
    con.close()
    return table, seconds


def pit(workdir: Path, n: int, repeats: int) -> dict:
    from feature_store import latest_feature_service
    from feature_store.training_set import get_training_frame

    ws = Workspace.at(workdir)
    service = latest_feature_service(ws)
    examples = examples_for(workdir, n)
    get_training_frame(ws, service, examples.head(1000))  # imports, registry, first query
    timings: dict[str, list[float]] = {"split": [], "single": [], "bare": []}
    frame: pd.DataFrame = pd.DataFrame()
    bare = None
    for _ in range(repeats):
        for split, key in ((True, "split"), (False, "single")):
            began = time.perf_counter()
            frame = get_training_frame(ws, service, examples, split_by_entity=split)
            timings[key].append(time.perf_counter() - began)
        bare, seconds = bare_asof(workdir, service, examples)
        timings["bare"].append(seconds)
    # the same answer: user vectors and their nulls
    assert bare is not None
    ours = frame["n_items_all"].to_numpy(dtype=float)
    theirs = bare.column("n_items_all").to_numpy(zero_copy_only=False).astype(float)
    assert np.array_equal(np.nan_to_num(ours, nan=-1), np.nan_to_num(theirs, nan=-1))
    medians = {k: statistics.median(v) for k, v in timings.items()}
    medians["n"] = n
    medians["rows_joined"] = int(np.isfinite(ours).sum())
    return medians


def start_redis(directory: Path):
    binary = shutil.which("redis-server")
    if binary is None:
        return None, None
    port = free_local_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(directory)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    for _ in range(100):
        try:
            client.ping()
            return process, f"127.0.0.1:{port}"
        except redis.exceptions.ConnectionError:
            time.sleep(0.1)
    process.kill()
    return None, None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--examples", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--calls", type=int, default=500, help="online calls for 1 entity")
    parser.add_argument("--calls-100", type=int, default=100, help="online calls for 100")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for name in ("feast", "feature_store", "transforms", "training", "gfm"):
        logging.getLogger(name).setLevel(logging.WARNING)
    os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")

    scratch = Path(tempfile.mkdtemp(prefix="bench_fs_"))
    try:
        workdir = args.workdir.resolve() if args.workdir else build_tiny(scratch)
        sqlite = scratch / "sqlite"
        shutil.copytree(workdir, sqlite, ignore=shutil.ignore_patterns("feature_repo", "feature_versions.json"))
        (sqlite / "gfm.yaml").unlink(missing_ok=True)
        results = {"sqlite": (deploy(sqlite), online_latency(sqlite, args.calls, args.calls_100))}
        process, connection = start_redis(scratch)
        if process is not None:
            try:
                redis_ws = scratch / "redis"
                shutil.copytree(workdir, redis_ws, ignore=shutil.ignore_patterns("feature_repo", "feature_versions.json"))
                (redis_ws / "gfm.yaml").write_text(
                    f"features:\n  online_store: redis\n  redis_connection_string: \"{connection}\"\n")
                results["redis"] = (deploy(redis_ws),
                                    online_latency(redis_ws, args.calls, args.calls_100))
            finally:
                process.terminate()
                process.wait()
        join = pit(sqlite, args.examples, args.repeats)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    load = os.getloadavg()[0]
    print(f"\n## Feature store\n\n`bench/bench_feature_store.py --examples {args.examples} "
          f"--repeats {args.repeats}` ({time.strftime('%Y-%m-%d')}): workspace "
          f"{'`' + str(args.workdir) + '`' if args.workdir else 'tiny profile (seed 3), 1-epoch HGNN'}; "
          f"2 cores, load average {load:.1f} at the end.\n")
    print("| online store | materialize rows/s (all views) | get_online_features 1 user p50 / p99 "
          "| 100 users p50 / p99 |")
    print("|---|---:|---:|---:|")
    for name, (mat, lat) in results.items():
        print(f"| {name} | {mat['rows_per_s']:,.0f} ({mat['rows']:,} rows in {mat['seconds']:.1f} s) "
              f"| {lat[1][0]:.2f} / {lat[1][1]:.2f} ms | {lat[100][0]:.1f} / {lat[100][1]:.1f} ms |")
    features = results["sqlite"][1]["features"]
    print(f"\nOnline reads fetch the user tower's {features} features (user average vectors, "
          "metadata, history lists).\n")
    print(f"| point-in-time join, {join['n']:,} examples | seconds (median) | ratio to DuckDB ASOF |")
    print("|---|---:|---:|")
    for key, label in (("single", "`get_training_frame` (the FeatureService in one call, default)"),
                       ("split", "`get_training_frame(split_by_entity=True)` (one call per entity)"),
                       ("bare", "bare DuckDB ASOF LEFT JOIN, same parquet and columns")):
        print(f"| {label} | {join[key]:.2f} | {join[key] / join['bare']:.1f}x |")
    print(f"\n{join['rows_joined']:,} of {join['n']:,} examples got a user snapshot "
          "(the rest: no history before that day).")


if __name__ == "__main__":
    main()
