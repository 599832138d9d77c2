"""`gfm generate`: write the synthetic audio-streaming platform into raw/."""

from __future__ import annotations

import argparse

from gfm.cli.common import Context
from ingest.raw_store import guard_existing, staged_raw_dir
from ingest.synthetic import PROFILES, generate, profile_manifest


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "generate", help="generate a synthetic audio-streaming platform into <workdir>/raw"
    )
    parser.add_argument("--profile", choices=sorted(PROFILES), default="small",
                        help="size: small (~150k interactions), medium (~1.5M), large (~11M); "
                             "tiny is for tests")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--overwrite", action="store_true",
                        help="replace raw data of another origin already in the workspace")
    return parser


def run(args: argparse.Namespace, ctx: Context) -> None:
    manifest = profile_manifest(args.profile, args.seed)
    if guard_existing(ctx.workspace, manifest, args.overwrite):
        print(f"{ctx.workspace.raw_dir} already holds profile {args.profile} seed {args.seed}")
        return
    with staged_raw_dir(ctx.workspace, manifest) as staging:
        counts = generate(args.profile, args.seed, staging)
    print(f"wrote {ctx.workspace.raw_dir}: " + ", ".join(f"{v:,} {k}" for k, v in counts.items()))
