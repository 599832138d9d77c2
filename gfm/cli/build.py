"""`gfm build`: a Bento (`bentoml build`) of the HTTP service for the workspace's served model.

The Bento holds the service code (serving.service:Recommender and the project packages it
imports), the Feast repository definitions (feature_repo/), the served two-tower model
(`unified_2t:<version>`, labelled with its FeatureService) and the Python packages of
pyproject.toml. It is stored in the workspace's BentoML store, <workdir>/bentoml/bentos.

At run time it reads, as `gfm serve` does, the online store, the Milvus index and the
workspace's Feast registry from GFM_WORKDIR (with GFM_CONFIG / GFM_SET for the configuration:
features.online_store=redis and serving.milvus_uri point it at Redis and a Milvus server
instead). The last line printed is a complete command that serves it from any directory.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

from gfm.cli.common import Context
from gfm.errors import GfmError
from gfm.paths import source_checkout
from serving.http import MAX_BODY_ENV

SERVICE = "serving.service:Recommender"
PACKAGES = ("gfm", "ingest", "transforms", "feature_store", "training", "evaluation", "serving")


def register(subparsers) -> argparse.ArgumentParser:
    return subparsers.add_parser(
        "build",
        help="build a Bento of the service and the served model (bentoml build); prints the "
             "command that serves it from any directory",
    )


def _checkout() -> Path:
    """The source checkout a Bento is built from (it packages the code as files)."""
    root = source_checkout()
    if root is None:
        raise GfmError("gfm build packages the source code of a checkout, and this gfm is an "
                       "installed wheel: run it from a clone installed with `pip install -e .`")
    return root


def bentofile(ctx: Context, tag: str, feature_service: str) -> dict:
    """The build options (bentofile.yaml) for the served model `tag`."""
    dependencies = tomllib.loads((_checkout() / "pyproject.toml").read_text())["project"][
        "dependencies"]
    return {
        "service": SERVICE,
        "description": f"gfm recommender serving {tag} (FeatureService {feature_service}); "
                       "set GFM_WORKDIR to the workspace it reads its stores from.",
        "labels": {"model": tag, "feature_service": feature_service},
        "include": [*(f"{package}/**/*.py" for package in PACKAGES), "feature_repo/**",
                    "pyproject.toml"],
        "exclude": ["**/__pycache__", "tests/", ".venv/", "workspace/"],
        "models": [tag],
        # Not locked: pip-compile would reach the package index at build time.
        "python": {"packages": dependencies, "lock_packages": False},
    }


def serve_command(ctx: Context, args: argparse.Namespace, bento: str) -> str:
    """The shell command that serves `bento` from any directory."""
    env = {
        "BENTOML_HOME": str(ctx.workspace.root / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "True",
        "GFM_WORKDIR": str(ctx.workspace.root),
        MAX_BODY_ENV: str(ctx.config.serving.max_body_bytes),
    }
    if args.overrides:
        env["GFM_SET"] = json.dumps(list(args.overrides))
    if args.config is not None:
        env["GFM_CONFIG"] = str(Path(args.config).resolve())
    bentoml = Path(sys.executable).with_name("bentoml")
    return (" ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
            + f" {shlex.quote(str(bentoml))} serve {bento} --host 127.0.0.1 --port 3000")


def run(args: argparse.Namespace, ctx: Context) -> None:
    from gfm.cli.models import model_rows
    from serving import milvus
    from training.two_tower.store import served_tag

    checkout = _checkout()
    tag = served_tag(ctx.workspace)  # fails with the fix if nothing was trained yet
    milvus.read_manifest(ctx.workspace, milvus.collection_name(tag.split(":", 1)[1]))
    served = [row for row in model_rows(ctx) if row["tag"] == tag]
    if not served:
        raise GfmError(f"the served model {tag} is not in {ctx.workspace.root / 'bentoml'}: "
                       "run `gfm train two-tower` again")
    feature_service = served[0]["feature_service"]
    build_dir = ctx.workspace.root / "bento"
    build_dir.mkdir(parents=True, exist_ok=True)
    options = build_dir / "bentofile.yaml"
    options.write_text(yaml.safe_dump(bentofile(ctx, tag, feature_service), sort_keys=False))
    env = {**os.environ, "BENTOML_HOME": str(ctx.workspace.root / "bentoml"),
           "BENTOML_DO_NOT_TRACK": "True", "DO_NOT_TRACK": "1",
           "GFM_WORKDIR": str(ctx.workspace.root)}
    command = [str(Path(sys.executable).with_name("bentoml")), "build", str(checkout),
               "-f", str(options), "--output", "tag"]
    print(f"building a Bento of {tag} (build options: {options})", flush=True)
    result = subprocess.run(command, env=env, cwd=checkout, capture_output=True, text=True)
    lines = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    if result.returncode != 0 or not lines:
        raise GfmError(f"bentoml build failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    bento = lines[-1].removeprefix("__tag__:")
    print(f"built {bento} in {ctx.workspace.root / 'bentoml' / 'bentos'}; for Docker: "
          f"BENTOML_HOME={ctx.workspace.root / 'bentoml'} bentoml containerize {bento} "
          "(docs/serving.md). Serve it from any directory:")
    print(serve_command(ctx, args, bento))
