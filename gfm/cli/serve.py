"""`gfm serve`: the BentoML service (`bentoml serve serving.service:Recommender`) on a workspace."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from gfm.cli.common import Context
from gfm.errors import ConfigError, WorkspaceError
from serving.http import MAX_BODY_ENV

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
                        help="worker processes (default: serving.workers); more than 1 needs a "
                             "Milvus server (serving.milvus_uri); across machines also "
                             "features.online_store=redis")
    return parser


def _online_store(ctx: Context) -> str:
    """The online store the workspace's Feast repository really uses (as last applied)."""
    import yaml

    from feature_store.repo import repo_dir

    path = repo_dir(ctx.workspace) / "feature_store.yaml"
    if not path.exists():
        raise WorkspaceError(f"{path} does not exist: run `gfm features apply --workdir "
                             f"{ctx.workspace.root}` first")
    return str((yaml.safe_load(path.read_text()).get("online_store") or {}).get("type", "sqlite"))


def _check(ctx: Context, workers: int) -> None:
    """Several workers each open the stores: the embedded milvus-lite takes one process."""
    from serving import milvus

    milvus.check_config(ctx.config.serving)
    if workers == 1:
        return
    if not ctx.config.serving.milvus_uri.strip():
        raise ConfigError(
            f"--workers {workers}: each worker opens the index, and the embedded milvus-lite "
            "takes one process: start `python -m milvus_lite server --data-dir "
            f"{milvus.embedded_path(ctx.workspace)} --host 127.0.0.1 --port 19530` and set "
            "serving.milvus_uri=http://127.0.0.1:19530, or use --workers 1 (docs/serving.md)")
    if _online_store(ctx) != "redis":
        print("note: several workers read the SQLite online store (fine on one machine); for "
              "more than one machine use features.online_store=redis, then `gfm features apply` "
              "and `gfm features materialize` (docs/serving.md)", file=sys.stderr)


def service_environment(args: argparse.Namespace, ctx: Context, workers: int) -> dict[str, str]:
    """What the service process needs to open the same workspace with the same configuration."""
    env = dict(os.environ)
    env.update({
        "GFM_WORKDIR": str(ctx.workspace.root),
        "GFM_SET": json.dumps(list(args.overrides)),
        "GFM_SERVE_WORKERS": str(workers),
        "GFM_ACCESS_LOG": "1" if ctx.config.serving.access_log else "0",
        MAX_BODY_ENV: str(ctx.config.serving.max_body_bytes),
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
    from serving import milvus
    from training.two_tower.store import served_tag

    tag = served_tag(ctx.workspace)  # fails with the fix if nothing was trained yet
    collection = milvus.collection_name(tag.split(":", 1)[1])
    milvus.read_manifest(ctx.workspace, collection)  # fails with the fix if never indexed
    # BentoML imports SERVICE from --working-dir: the folder that holds the `serving` package
    # (the checkout, or site-packages for an installed wheel).
    import serving

    packages_root = Path(serving.__file__).resolve().parents[1]
    command = [sys.executable, "-m", "bentoml", "serve", SERVICE, "--host", args.host,
               "--port", str(args.port), "--working-dir", str(packages_root)]
    print(f"serving {tag} from {ctx.workspace.root} on http://{args.host}:{args.port} "
          f"({workers} worker{'s' if workers > 1 else ''}); readiness: /readyz, "
          f"OpenAPI: /docs.json", flush=True)
    # Replace this process: signals (Ctrl-C, SIGTERM from a supervisor) reach BentoML directly.
    os.execve(sys.executable, command, service_environment(args, ctx, workers))
