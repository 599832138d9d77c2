"""Serving during a refresh: latency and errors of /recommend while `gfm refresh` runs and the
service swaps models.

    python bench/bench_swap.py --workdir W [--rate 50] [--after 20] [--json F]
    python bench/bench_swap.py --render-only F

W is a workspace after `gfm pipeline` whose raw data holds the day after its cutoff (the
synthetic profiles' hold-out does); it is copied, never changed. On the copy:

1. a milvus-lite server on its index, and `gfm serve` reaching it (a refresh under a running
   service needs the server: docs/serving.md);
2. an open-loop load of POST /recommend at --rate requests/s (bench/bench_serving.py's
   schedule: latency from each request's scheduled instant), from before `gfm refresh --to
   <cutoff + 1 day>` starts until --after seconds after the new model first answers;
3. each answer's status and model_version, in three phases: before the refresh, while it
   runs, after it (old model until the swap, then the new one).

Printed, and written to the section "Serving during a refresh" of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench_serving import _ms, sample_users, start_milvus, start_server  # noqa: E402

from benchdoc import commit_label, cpu_name, publish  # noqa: E402
from gfm.config import load_config  # noqa: E402
from gfm.ports import free_local_port  # noqa: E402
from gfm.timeline import resolve_timeline  # noqa: E402
from gfm.workspace import Workspace  # noqa: E402
from serving.milvus import stop_process  # noqa: E402

SECTION = "## Serving during a refresh"


class Refresh(threading.Thread):
    """`gfm refresh` in the background; its start and end on the event loop's clock."""

    def __init__(self, argv: list[str], log: Path, clock):
        super().__init__(daemon=True)
        self.argv, self.log, self.clock = argv, log, clock
        self.started = self.ended = None
        self.code = None

    def run(self) -> None:
        self.started = self.clock()
        with self.log.open("w") as out:
            self.code = subprocess.run(self.argv, stdout=out, stderr=subprocess.STDOUT).returncode
        self.ended = self.clock()


async def load_through_refresh(url: str, users: list[str], rate: float, refresh_argv: list[str],
                               log: Path, lead_s: float, after_s: float, served: str) -> dict:
    """Open-loop /recommend at `rate` from lead_s before the refresh until after_s after the
    new model's first answer (or the refresh's end plus 60 s, if it never answers)."""
    import aiohttp

    loop = asyncio.get_running_loop()
    records: list[tuple[float, float, str, str | None]] = []  # scheduled, latency, status, ver
    refresh = Refresh(refresh_argv, log, loop.time)
    first_new: list[float] = []

    async def one(http, user: str, scheduled: float) -> None:
        version = None
        try:
            async with http.post(f"{url}/recommend", json={"user_id": user, "k": 10}) as r:
                body = await r.json(content_type=None)
                status = str(r.status)
                version = body.get("model_version") if r.status == 200 else None
        except (TimeoutError, aiohttp.ClientError) as exc:
            status = type(exc).__name__
        done = loop.time()
        if version and version != served and not first_new:
            first_new.append(done)
        records.append((scheduled, done - scheduled, status, version))

    timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=30)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64),
                                     timeout=timeout) as http:
        tasks, start, i = [], loop.time() + 0.05, 0
        while True:
            scheduled = start + i / rate
            if not refresh.is_alive() and refresh.ended is None and scheduled - start >= lead_s:
                refresh.start()
            if refresh.ended is not None:
                stop = (first_new[0] + after_s) if first_new else refresh.ended + 60
                if scheduled > stop:
                    break
            delay = scheduled - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(http, users[i % len(users)], scheduled)))
            i += 1
        await asyncio.gather(*tasks)
    refresh.join()
    return {"records": records, "refresh_started": refresh.started,
            "refresh_ended": refresh.ended, "refresh_code": refresh.code,
            "first_new_answer": first_new[0] if first_new else None, "start": start}


def phases(run: dict, served: str) -> list[dict]:
    rows = []
    bounds = [("before the refresh", -np.inf, run["refresh_started"]),
              ("while it runs", run["refresh_started"], run["refresh_ended"]),
              ("after it", run["refresh_ended"], np.inf)]
    for name, lo, hi in bounds:
        part = [r for r in run["records"] if lo <= r[0] < hi]
        ok = [r[1] for r in part if r[2] == "200"]
        versions = sorted({r[3] for r in part if r[3]}, key=lambda v: v != served)
        rows.append({"phase": name, "requests": len(part),
                     "errors": sum(r[2] != "200" for r in part),
                     "statuses": {s: sum(r[2] == s for r in part) for s in {r[2] for r in part}},
                     "models": versions,
                     **{f"latency_ms_{q}": v for q, v in _ms(ok).items()}})
    return rows


def measure(args: argparse.Namespace, tmp: Path) -> dict:
    workdir = tmp / "ws"
    shutil.copytree(args.workdir, workdir, symlinks=True)
    workspace = Workspace.at(workdir)
    cutoff = resolve_timeline(load_config(workdir).timeline, workspace).cutoff
    to = (cutoff + dt.timedelta(days=1)).date()
    served = json.loads((workdir / "models" / "two_tower" / "serving.json").read_text())["tag"]
    served = served.split(":", 1)[1]
    users = sample_users(workdir, 200, seed=0)
    uri, milvus = start_milvus(workdir, tmp / "milvus.log")
    flags = ["--set", f"serving.milvus_uri={uri}"]
    try:
        port = free_local_port()
        server = start_server(workdir, port, tmp / "serve.log", flags)
        try:
            print(f"serving {served}; gfm refresh --to {to} under {args.rate:g} req/s",
                  flush=True)
            refresh = [sys.executable, "-m", "gfm.cli.main", "refresh", "--to", str(to),
                       "--workdir", str(workdir), *flags]
            run = asyncio.run(load_through_refresh(
                f"http://127.0.0.1:{port}", users, args.rate, refresh, tmp / "refresh.log",
                args.lead, args.after, served))
        finally:
            stop_process(server)
    finally:
        stop_process(milvus)
    if run["refresh_code"] != 0:
        sys.exit(f"gfm refresh failed:\n{(tmp / 'refresh.log').read_text()[-3000:]}")
    swap = (run["first_new_answer"] - run["refresh_ended"]
            if run["first_new_answer"] is not None else None)
    return {"workdir": str(args.workdir), "rate": args.rate, "to": str(to), "served": served,
            "refresh_s": round(run["refresh_ended"] - run["refresh_started"], 1),
            "swap_after_refresh_s": None if swap is None else round(swap, 1),
            "phases": phases(run, served), "machine": cpu_name(),
            "commit": commit_label(),
            "measured_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")}


def render(result: dict) -> str:
    lines = [SECTION, "",
             f"`python bench/bench_swap.py --workdir {result['workdir']} --rate "
             f"{result['rate']:g}` at commit {result['commit']}, {result['measured_at']}; "
             f"{result['machine']}, shared; one worker, a milvus-lite server, the SQLite online "
             f"store. `gfm refresh --to {result['to']}` ran for {result['refresh_s']:.0f} s on "
             "the same cores as the server and the load generator.", "",
             "| phase | requests | errors | p50 ms | p99 ms | models answering |",
             "|---|---:|---:|---:|---:|---|"]
    for p in result["phases"]:
        lines.append(f"| {p['phase']} | {p['requests']:,} | {p['errors']} | "
                     f"{p.get('latency_ms_p50', float('nan')):.1f} | "
                     f"{p.get('latency_ms_p99', float('nan')):.1f} | "
                     f"{', '.join(p['models'])} |")
    swap = result["swap_after_refresh_s"]
    lines += ["", ("The new model answered its first request "
                   f"{swap:.1f} s after the refresh ended" if swap is not None and swap >= 0
                   else "The new model answered before the refresh ended (the swap follows "
                        "`gfm index`; the refresh then retires old versions)" if swap is not None
                   else "The new model never answered: see the server's log")
              + "; no restart.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--rate", type=float, default=50.0, help="requests per second")
    parser.add_argument("--lead", type=float, default=10.0,
                        help="seconds of load before the refresh starts")
    parser.add_argument("--after", type=float, default=20.0,
                        help="seconds of load after the new model first answers")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--render-only", type=Path, default=None, metavar="JSON",
                        help="render a saved --json again, measuring nothing")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/")
    args = parser.parse_args()
    if not args.render_only and args.workdir is None:
        parser.error("--workdir is required (or --render-only JSON)")
    if args.render_only:
        publish(SECTION, render(json.loads(args.render_only.read_text())), not args.no_write)
        return
    with tempfile.TemporaryDirectory(prefix="bench_swap_") as tmp:
        result = measure(args, Path(tmp))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    publish(SECTION, render(result), not args.no_write)


if __name__ == "__main__":
    main()
