"""`gfm serve`: the BentoML service (`bentoml serve serving.service:Recommender`) on a workspace."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from gfm.cli.common import Context
from gfm.errors import ConfigError

SERVICE = "serving.service:Recommender"


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "serve",
        help="serve /recommend, /similar and /score over HTTP (BentoML; OpenAPI at /docs.json, "
             "readiness at /readyz) from the served two-tower model, Feast's online store and "
             "the Milvus index of `gfm index` (docs/serving.md)",
    )
    parser.add_argument("--port", type=int, default=3000, help="HTTP port (default: 3000)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default: 127.0.0.1, loopback only)")
    parser.add_argument("--workers", type=int, default=None,
                        help="worker processes (default: serving.workers); more than 1 needs "
                             "serving.milvus_uri and features.online_store=redis")
    return parser


def _check(ctx: Context, workers: int) -> None:
    from serving import milvus

    milvus.check_config(ctx.config.serving)
    if workers > 1:
        missing = []
        if not ctx.config.serving.milvus_uri.strip():
            missing.append("a Milvus server (`python -m milvus_lite server --data-dir "
                           f"{milvus.embedded_path(ctx.workspace)} --host 127.0.0.1 --port 19530` "
                           "and --set serving.milvus_uri=http://127.0.0.1:19530)")
        if ctx.config.features.online_store != "redis":
            missing.append("the Redis online store (features.online_store=redis, then `gfm "
                           "features apply` and `gfm features materialize`)")
        if missing:
            raise ConfigError(f"--workers {workers}: each worker opens the stores itself, and the "
                              f"embedded ones take one process each; use {' and '.join(missing)}, "
                              "or --workers 1 (docs/serving.md, scale-out)")


def service_environment(args: argparse.Namespace, ctx: Context, workers: int) -> dict[str, str]:
    """What the service process needs to open the same workspace with the same configuration."""
    env = dict(os.environ)
    env.update({
        "GFM_WORKDIR": str(ctx.workspace.root),
        "GFM_SET": json.dumps(list(args.overrides)),
        "GFM_SERVE_WORKERS": str(workers),
        "BENTOML_HOME": str(ctx.workspace.root / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "True",
        "DO_NOT_TRACK": "1",
    })
    if args.config is not None:
        env["GFM_CONFIG"] = str(Path(args.config).resolve())
    else:
        env.pop("GFM_CONFIG", None)
    return env


def run(args: argparse.Namespace, ctx: Context) -> None:
    workers = args.workers if args.workers is not None else ctx.config.serving.workers
    if workers < 1:
        raise ConfigError("--workers must be at least 1")
    if not 0 < args.port < 65536:
        raise ConfigError(f"--port {args.port}: give a TCP port between 1 and 65535")
    _check(ctx, workers)
    from training.two_tower.store import served_tag
    from serving import milvus

    tag = served_tag(ctx.workspace)  # fails with the fix if nothing was trained yet
    collection = milvus.collection_name(tag.split(":", 1)[1])
    milvus.read_manifest(ctx.workspace, collection)  # fails with the fix if never indexed
    repo_root = Path(__file__).resolve().parents[2]
    command = [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", args.host,
               "--port", str(args.port), "--working-dir", str(repo_root)]
    print(f"serving {tag} from {ctx.workspace.root} on http://{args.host}:{args.port} "
          f"({workers} worker{'s' if workers > 1 else ''}); readiness: /readyz, "
          f"OpenAPI: /docs.json", flush=True)
    # Replace this process: signals (Ctrl-C, SIGTERM from a supervisor) reach BentoML directly.
    os.execve(sys.executable, command, service_environment(args, ctx, workers))
