"""Load test of the HTTP service: a real `gfm serve` on loopback, open-loop, then the bare parts.

    python bench/bench_serving.py --workdir W [--rates 20,50,100] [--duration 60] [--k 10]
    python bench/bench_serving.py --workdir W --exact-k [--users 150]

W is a workspace after `gfm pipeline` (its last stage, `gfm index`, included). Without
--workdir, the `tiny` profile is built in a temporary folder first (a few minutes).

1. `gfm serve --workdir W` (default mode: 1 worker, embedded milvus-lite, the workspace's online
   store) on a free loopback port, until /readyz says 200; then a warm-up.
2. At each rate, POST /recommend {user_id, k} for `--duration` seconds, open loop: request i
   leaves at t0 + i/rate whatever happened to the earlier ones (a slow server cannot slow the
   load down), and its latency runs from that scheduled instant to the end of the response
   (so queueing in the client counts too). Users: a seeded sample of those with history at
   the cutoff (the full path: Feast read, user tower, Milvus search). Errors: non-200 answers,
   timeouts and refused connections.
3. The server stopped, the same engine in this process (`serving.engine.Engine`): the bare
   Feast online read it does (the model's user features + user_history, one user), the
   bare Milvus search it does (limit k + history length, the index's search parameters), and
   `Engine.recommend` without HTTP, for the same users, one at a time.
4. Prints a markdown section for docs/benchmarks.md and writes <W>/reports/bench_serving.json.
   Ratio = /recommend p50 over HTTP / (bare Feast p50 + bare Milvus p50).

The load generator shares the machine's cores with the server: on 2 cores that costs the
server part of a core at 100 requests/s; the figures are an upper bound for the server alone.

--exact-k, instead (in-process, no server): the cost of exact-k answers. For each sampled user
and each item type, `Engine.recommend` with that type filter at k = 10 and at k = 500, and
`Engine.similar` likewise from items of each type; how many of those milvus-lite's filtered
search alone answers short (fewer than min(k, items left)), and the latency of the engine
(Milvus, then the exact answer in memory when short) against the exact answer alone. Writes
<W>/reports/bench_serving_exact_k.json and prints a paragraph for docs/serving.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gfm.ports import free_local_port  # noqa: E402
from gfm.workspace import Workspace  # noqa: E402
from serving.milvus import stop_process  # noqa: E402

GOAL_P99_MS, GOAL_RATE = 50.0, 50


def _ms(samples) -> dict[str, float]:
    values = np.asarray(samples, dtype=np.float64) * 1000
    if len(values) == 0:
        return {"p50": float("nan"), "p99": float("nan"), "mean": float("nan")}
    return {"p50": round(float(np.percentile(values, 50)), 2),
            "p99": round(float(np.percentile(values, 99)), 2),
            "mean": round(float(values.mean()), 2)}


def build_tiny(root: Path) -> Path:
    workdir = root / "ws"
    argv = ["pipeline", "--workdir", str(workdir), "--profile", "tiny", "--seed", "3",
            "--set", "hgnn.max_epochs=2", "--set", "two_tower.epochs=2"]
    if subprocess.run([sys.executable, "-m", "gfm.cli.main", *argv]).returncode != 0:
        raise SystemExit("building the tiny workspace failed")
    return workdir


def sample_users(workdir: Path, n: int, seed: int) -> list[str]:
    """Users with history at the model's cutoff (the ones /recommend runs the model for)."""
    from training.two_tower.store import load_bundle
    from transforms.warehouse import warehouse_query

    cutoff = load_bundle(Workspace.at(workdir)).metadata["cutoff"]
    rows = warehouse_query(Workspace.at(workdir),
                           "select distinct user_id from user_history where snapshot_ts = ? "
                           "order by 1", [cutoff])
    users = [r[0] for r in rows]
    rng = np.random.default_rng(seed)
    return [users[i] for i in rng.choice(len(users), size=min(n, len(users)), replace=False)]


# ---------------------------------------------------------------------------------------------
# the server


def start_milvus(workdir: Path, log_path: Path) -> tuple[str, subprocess.Popen]:
    """`python -m milvus_lite server` on the workspace's index (the scale-out mode)."""
    from gfm.errors import GfmError
    from serving.milvus import start_lite_server

    try:
        return start_lite_server(workdir / "milvus" / "index.db", log_path)
    except GfmError as exc:
        raise SystemExit(str(exc)) from None


def start_server(workdir: Path, port: int, log_path: Path,
                 flags: list[str]) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-m", "gfm.cli.main", "serve", "--workdir", str(workdir), "--port",
         str(port), *flags], stdout=log_path.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gfm serve exited:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.terminate()
    raise SystemExit(f"gfm serve not ready after 180 s:\n{log_path.read_text()[-3000:]}")


def cpu_seconds(processes: list[subprocess.Popen]) -> float:
    """User + system CPU of these processes and all their children (the BentoML workers)."""
    import psutil

    total = 0.0
    for process in processes:
        try:
            root = psutil.Process(process.pid)
            for p in [root, *root.children(recursive=True)]:
                times = p.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


async def open_loop(url: str, users: list[str], rate: float, duration: float, k: int,
                    max_connections: int = 64) -> dict:
    """Send rate*duration requests on a fixed schedule; latency from the scheduled instant.

    aiohttp rather than httpx: its connection pool stays cheap with many requests in flight,
    so an overloaded server is not hidden behind an overloaded client. Requests beyond
    `max_connections` in flight wait for a connection; that wait counts in their latency.
    """
    import aiohttp

    loop = asyncio.get_running_loop()
    n = int(rate * duration)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    lags: list[float] = []
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=30)

    async def one(http: aiohttp.ClientSession, user: str, scheduled: float) -> None:
        try:
            async with http.post(f"{url}/recommend", json={"user_id": user, "k": k}) as response:
                body = await response.json(content_type=None)
                key = str(response.status)
                if response.status == 200 and len(body["items"]) != k:
                    key = "200-short"
        except (TimeoutError, aiohttp.ClientError) as exc:
            key = type(exc).__name__
        statuses[key] = statuses.get(key, 0) + 1
        if key == "200":
            latencies.append(loop.time() - scheduled)

    connector = aiohttp.TCPConnector(limit=max_connections)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        tasks = []
        start = loop.time() + 0.05
        for i in range(n):
            scheduled = start + i / rate
            delay = scheduled - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            lags.append(max(0.0, loop.time() - scheduled))
            tasks.append(asyncio.create_task(one(http, users[i % len(users)], scheduled)))
        await asyncio.gather(*tasks)
        elapsed = loop.time() - start
    errors = sum(v for key, v in statuses.items() if key != "200")
    return {"rate": rate, "duration_s": duration, "requests": n, "ok": statuses.get("200", 0),
            "errors": errors, "statuses": statuses, "achieved_rps": round(n / elapsed, 1),
            "send_lag_ms_p99": round(float(np.percentile(lags, 99)) * 1000, 2),
            **{f"latency_ms_{q}": v for q, v in _ms(latencies).items()}}


def measured(processes: list[subprocess.Popen], url: str, users: list[str], rate: float,
             duration: float, k: int) -> dict:
    """One open-loop run, with the CPU the server side and this load generator spent."""
    server_before, client_before = cpu_seconds(processes), time.process_time()
    run = asyncio.run(open_loop(url, users, rate, duration, k))
    server_cpu = cpu_seconds(processes) - server_before
    client_cpu = time.process_time() - client_before
    run["server_cpu_ms_per_request"] = round(server_cpu / run["requests"] * 1000, 2)
    run["client_cpu_ms_per_request"] = round(client_cpu / run["requests"] * 1000, 2)
    return run


# ---------------------------------------------------------------------------------------------
# the bare parts, in-process


def bare_parts(workdir: Path, users: list[str], k: int, repeats: int) -> dict:
    from serving import milvus
    from serving.engine import engine_from_environment
    from serving.schemas import RecommendRequest

    os.environ["GFM_WORKDIR"] = str(workdir)
    os.environ.setdefault("GFM_SET", "[]")  # main() sets it to the server's flags
    engine = engine_from_environment()
    try:
        contexts = {u: engine._user_context(u) for u in users}
        vectors = {u: engine._user_vector(contexts[u], [])[0] for u in users}
        feast_s, milvus_s, engine_s = [], [], []
        for _ in range(repeats):
            for u in users:
                t0 = time.perf_counter()
                engine.store.get_online_features(
                    features=engine.user_refs + engine.history_refs,
                    entity_rows=[{"user_id": u}]).to_dict()
                feast_s.append(time.perf_counter() - t0)
                limit = k + len(contexts[u].history)
                t0 = time.perf_counter()
                engine.client.search(engine.collection, data=[vectors[u].tolist()], limit=limit,
                                     output_fields=[milvus.TYPE_FIELD],
                                     search_params=milvus.search_params(engine.manifest, limit))
                milvus_s.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                engine.recommend(RecommendRequest(user_id=u, k=k))
                engine_s.append(time.perf_counter() - t0)
        status = engine.status()
    finally:
        engine.close()
    return {"feast_online_read_ms": _ms(feast_s), "milvus_search_ms": _ms(milvus_s),
            "engine_recommend_ms": _ms(engine_s), "n_calls": len(feast_s), "engine": status,
            "mean_history_length": round(float(np.mean([len(c.history)
                                                        for c in contexts.values()])), 1)}


def exact_k(workdir: Path, users: list[str], repeats: int, ks: tuple[int, ...] = (10, 500),
            n_items: int = 100, seed: int = 0) -> dict:
    """See the module docstring (--exact-k)."""
    from serving import milvus
    from serving.engine import engine_from_environment
    from serving.index import item_query
    from serving.schemas import RecommendRequest, SimilarRequest

    os.environ["GFM_WORKDIR"] = str(workdir)
    os.environ.setdefault("GFM_SET", "[]")
    engine = engine_from_environment()
    try:
        catalogue = engine.catalogue()
        rng = np.random.default_rng(seed)
        items = [str(i) for i in rng.choice(catalogue.ids, size=min(n_items, len(catalogue.ids)),
                                            replace=False)]
        contexts = {u: engine._user_context(u) for u in users}
        vectors = {u: engine._user_vector(contexts[u], [])[0] for u in users}
        rows = {str(i): j for j, i in enumerate(catalogue.ids)}
        out: dict = {"n_users": len(users), "n_items": len(items), "types": engine.types}
        for endpoint in ("recommend", "similar"):
            for k in ks:
                engine_s, exact_s, short = [], [], 0
                queries = [(u, vectors[u], set(contexts[u].history)) for u in users] \
                    if endpoint == "recommend" else \
                    [(i, item_query(catalogue.vectors[rows[i]], engine.manifest), {i})
                     for i in items]
                for query, vector, exclude in queries:
                    for t in engine.types:
                        target = min(k, catalogue.n_eligible([t], exclude))
                        limit = min(k + len(exclude), milvus.MAX_TOP_K)
                        hits = engine.client.search(
                            engine.collection, data=[vector.tolist()], limit=limit,
                            filter=f'{milvus.TYPE_FIELD} in ["{t}"]',
                            search_params=milvus.search_params(engine.manifest, limit))[0]
                        short += sum(h[milvus.ID_FIELD] not in exclude for h in hits) < target
                        for _ in range(repeats):
                            t0 = time.perf_counter()
                            if endpoint == "recommend":
                                engine.recommend(RecommendRequest(user_id=query, k=k,
                                                                  item_types=[t]))
                            else:
                                engine.similar(SimilarRequest(item_id=query, k=k, item_types=[t]))
                            engine_s.append(time.perf_counter() - t0)
                            t0 = time.perf_counter()
                            catalogue.top_k(vector, k, [t], exclude)
                            exact_s.append(time.perf_counter() - t0)
                out[f"{endpoint}_k{k}"] = {
                    "requests": len(queries) * len(engine.types),
                    "short_from_milvus_alone": int(short),
                    "engine_ms": _ms(engine_s), "exact_in_memory_ms": _ms(exact_s)}
        out["engine"] = engine.status()
    finally:
        engine.close()
    return out


def exact_k_markdown(result: dict) -> str:
    engine = result["engine"]
    parts = []
    for key, value in result.items():
        if not key.startswith(("recommend_k", "similar_k")):
            continue
        endpoint, k = key.split("_k")
        parts.append(
            f"| /{endpoint} | {k} | {value['requests']:,} | {value['short_from_milvus_alone']} | "
            f"{value['engine_ms']['p50']:.2f} | {value['engine_ms']['p99']:.2f} | "
            f"{value['exact_in_memory_ms']['p50']:.2f} | {value['exact_in_memory_ms']['p99']:.2f} |")
    return "\n".join([
        f"`bench/bench_serving.py --workdir W --exact-k` ({result['date']}; "
        f"{engine['n_items']:,} items, {engine['index_type']}, {result['n_users']} users with "
        f"history and {result['n_items']} items, each with each type filter "
        f"({', '.join(result['types'])}), in-process, {result['cpus']} cores, load average "
        f"{result['load_before']:.1f}):",
        "",
        "| endpoint | k | requests | short from Milvus alone | engine p50 ms | engine p99 ms | "
        "exact alone p50 ms | exact alone p99 ms |",
        "|---|--:|--:|--:|--:|--:|--:|--:|",
        *parts,
    ]) + "\n"


# ---------------------------------------------------------------------------------------------


def markdown(result: dict) -> str:
    bare = result["bare"]
    base = bare["feast_online_read_ms"]["p50"] + bare["milvus_search_ms"]["p50"]
    engine = bare["engine"]
    lines = [
        "## Serving",
        "",
        f"`bench/bench_serving.py --workdir W --duration {result['duration_s']:g}` "
        f"({result['date']}): a real `gfm serve` on loopback ({result['workers']} worker(s), "
        f"{'milvus_lite server' if result['milvus_server'] else 'embedded milvus-lite'} "
        f"{engine['index_type']}, {engine['online_store']}), model {engine['model_version']}, "
        f"{engine['n_items']:,} indexed items; POST /recommend {{user_id, k: {result['k']}}} for "
        f"{result['n_users']} users with history (mean {bare['mean_history_length']} history "
        "items left out), open loop (latency from each request's scheduled send time).",
        f"Machine: {result['cpus']} cores, load generator on the same cores; 1-min load average "
        f"{result['load_before']:.1f} before, {result['load_after']:.1f} after.",
        "",
        "| rate (req/s) | requests | errors | p50 ms | p99 ms | mean ms | achieved req/s | "
        "server CPU ms/req | client CPU ms/req |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for r in result["runs"]:
        lines.append(f"| {r['rate']:g} | {r['requests']:,} | {r['errors']} | "
                     f"{r['latency_ms_p50']:.1f} | {r['latency_ms_p99']:.1f} | "
                     f"{r['latency_ms_mean']:.1f} | {r['achieved_rps']:.1f} | "
                     f"{r['server_cpu_ms_per_request']:.1f} | "
                     f"{r['client_cpu_ms_per_request']:.1f} |")
    lines += [
        "",
        f"Bare parts, in-process, one call at a time ({bare['n_calls']:,} calls each): Feast "
        f"online read p50 {bare['feast_online_read_ms']['p50']:.2f} ms / p99 "
        f"{bare['feast_online_read_ms']['p99']:.2f} ms; Milvus search p50 "
        f"{bare['milvus_search_ms']['p50']:.2f} / p99 {bare['milvus_search_ms']['p99']:.2f} ms; "
        f"`Engine.recommend` (read + user tower + search + filtering, no HTTP) p50 "
        f"{bare['engine_recommend_ms']['p50']:.2f} / p99 {bare['engine_recommend_ms']['p99']:.2f} "
        "ms.",
        "",
        "Ratio of /recommend p50 over HTTP to bare Feast p50 + bare Milvus p50 "
        f"({base:.2f} ms): " + ", ".join(f"{r['latency_ms_p50'] / base:.2f} at {r['rate']:g} req/s"
                                         for r in result["runs"])
        + f"; in-process engine: {bare['engine_recommend_ms']['p50'] / base:.2f}.",
    ]
    goal = next((r for r in result["runs"] if r["rate"] == GOAL_RATE), None)
    if goal:
        met = goal["latency_ms_p99"] < GOAL_P99_MS and goal["errors"] == 0
        lines += ["", f"Goal (p99 < {GOAL_P99_MS:g} ms at {GOAL_RATE} req/s, no errors): "
                      f"{'met' if met else 'NOT met'} (p99 {goal['latency_ms_p99']:.1f} ms, "
                      f"{goal['errors']} errors)."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--rates", default="20,50,100")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds per rate")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--repeats", type=int, default=3, help="passes of the bare measurements")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--milvus-server", action="store_true",
                        help="scale-out mode: the index behind `python -m milvus_lite server` "
                             "on loopback instead of embedded")
    parser.add_argument("--workers", type=int, default=1,
                        help="gfm serve --workers (more than 1 needs --milvus-server)")
    parser.add_argument("--exact-k", action="store_true",
                        help="instead: the cost of exact-k type-filtered answers, k=10 vs 500 "
                             "(in-process; see above)")
    args = parser.parse_args()
    os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")

    temp = None
    if args.workdir is None:
        temp = tempfile.TemporaryDirectory(prefix="bench_serving_")
        args.workdir = build_tiny(Path(temp.name))
    workdir = Workspace.at(args.workdir).root
    users = sample_users(workdir, args.users, args.seed)
    if args.exact_k:
        load_before = os.getloadavg()[0]
        result = exact_k(workdir, users, args.repeats, seed=args.seed)
        result.update({"date": time.strftime("%Y-%m-%d"), "workdir": str(workdir),
                       "cpus": os.cpu_count(), "load_before": load_before,
                       "load_after": os.getloadavg()[0]})
        (workdir / "reports").mkdir(parents=True, exist_ok=True)
        (workdir / "reports" / "bench_serving_exact_k.json").write_text(
            json.dumps(result, indent=2) + "\n")
        print(exact_k_markdown(result))
        return
    rates = [float(r) for r in args.rates.split(",")]

    port = free_local_port()
    reports = workdir / "reports"
    reports.mkdir(parents=True, exist_ok=True)
    load_before = os.getloadavg()[0]
    milvus_process, flags = None, ["--workers", str(args.workers)]
    if args.milvus_server:
        uri, milvus_process = start_milvus(workdir, reports / "bench_serving_milvus.log")
        flags += ["--set", f"serving.milvus_uri={uri}"]
        os.environ["GFM_SET"] = json.dumps([f"serving.milvus_uri={uri}"])
    runs = []
    try:
        process = start_server(workdir, port, reports / "bench_serving_server.log", flags)
        url = f"http://127.0.0.1:{port}"
        server_side = [process] + ([milvus_process] if milvus_process else [])
        try:
            asyncio.run(open_loop(url, users, 20, 5, args.k))  # warm-up, discarded
            for rate in rates:
                print(f"{rate:g} req/s for {args.duration:g} s ...", flush=True)
                runs.append(measured(server_side, url, users, rate, args.duration, args.k))
                print(json.dumps(runs[-1]), flush=True)
                time.sleep(2)  # let a backlog drain before the next rate
        finally:
            stop_process(process)
        load_after = os.getloadavg()[0]
        bare = bare_parts(workdir, users, args.k, args.repeats)
    finally:
        if milvus_process is not None:
            stop_process(milvus_process)
    result = {"date": time.strftime("%Y-%m-%d"), "workdir": str(workdir), "k": args.k,
              "n_users": len(users), "duration_s": args.duration, "runs": runs, "bare": bare,
              "workers": args.workers, "milvus_server": args.milvus_server,
              "cpus": os.cpu_count(), "python": platform.python_version(),
              "load_before": load_before, "load_after": load_after}
    mode = f"_{args.workers}w_server" if args.milvus_server else ""
    (reports / f"bench_serving{mode}.json").write_text(json.dumps(result, indent=2) + "\n")
    print()
    print(markdown(result))
    if temp is not None:
        temp.cleanup()


if __name__ == "__main__":
    main()
