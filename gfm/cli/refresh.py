"""`gfm refresh --to YYYY-MM-DD [--static]`: move the workspace's cutoff on and bring what is
served to it.

The dynamic layer is rebuilt at the new cutoff: the warehouse's marts (user histories, item
popularity), the text vectors of new or changed items, the user average vectors and the online
store, a new two-tower version and its index. The static layer (the HGNN on the co-interaction
graph) is kept, as the paper's Table 3 found daily retraining buys nothing, unless --static is
given or its graph is hgnn.refresh_every_days behind. The cutoff is written into the config
file first, so every later command works at it, and a refresh that fails part-way is finished
by running it again.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt

from gfm.cli.common import Context, child_flags
from gfm.cli.pipeline import run_plan
from gfm.config import CONFIG_FILE_NAME, load_config, parse_overrides, write_timeline_cutoff
from gfm.errors import ConfigError, WorkspaceError
from gfm.stages import refresh_stages
from gfm.timeline import Timeline, last_event_ts


def _date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date like 2025-07-01, got {text!r}") from None


def register(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "refresh",
        help="move the cutoff on to --to and rebuild the dynamic layer there (marts, features, "
             "online store, a new two-tower and its index); the HGNN is kept unless --static "
             "or hgnn.refresh_every_days have passed",
    )
    parser.add_argument("--to", required=True, type=_date, metavar="YYYY-MM-DD",
                        help="the new cutoff: midnight that ends the data the models learn from")
    parser.add_argument("--static", action="store_true",
                        help="retrain the static layer (the HGNN) too")
    return parser


def latest_hgnn_graph_as_of(ctx: Context) -> dt.datetime | None:
    """graph_as_of of the newest HGNN vectors in the workspace, None when there are none."""
    from feature_store.versions import discover_hgnn_versions

    stamps = [dt.datetime.fromisoformat(lineage["graph_as_of"])
              for _, lineage in discover_hgnn_versions(ctx.workspace) if lineage["graph_as_of"]]
    return max(stamps, default=None)


def static_layer_due(ctx: Context, timeline: Timeline, forced: bool) -> tuple[bool, str]:
    """(retrain the HGNN?, why) for a refresh to `timeline`."""
    if forced:
        return True, "retrained (--static)"
    as_of = latest_hgnn_graph_as_of(ctx)
    if as_of is None:
        return True, "trained (the workspace has no HGNN vectors yet)"
    every = ctx.config.hgnn.refresh_every_days
    behind = (timeline.graph_as_of - as_of).days
    if every and behind >= every:
        return True, (f"retrained: its graph (as of {as_of:%Y-%m-%d}) is {behind} days behind "
                      f"(hgnn.refresh_every_days {every})")
    return False, (f"kept: its graph is as of {as_of:%Y-%m-%d}, {behind} day(s) behind; it is "
                   f"retrained every {every or 'no'} days (hgnn.refresh_every_days), or with "
                   "--static")


def run(args: argparse.Namespace, ctx: Context) -> None:
    if args.cutoff is not None:
        raise ConfigError("gfm refresh sets the cutoff itself (--to); drop --cutoff")
    current = ctx.timeline()
    new_cutoff = dt.datetime.combine(args.to, dt.time())
    if new_cutoff <= current.cutoff:
        raise ConfigError(
            f"--to {args.to} is not after the workspace's cutoff {current.cutoff:%Y-%m-%d}: a "
            "refresh moves the timeline forward. To evaluate an earlier cutoff, run "
            "`gfm pipeline --cutoff DATE` on another --workdir")
    last = last_event_ts(ctx.workspace)
    if last < new_cutoff - dt.timedelta(days=1):  # the day before --to must hold events
        raise WorkspaceError(
            f"raw/ holds events up to {last}, not up to the day before --to {args.to}: append "
            "the new days first (`gfm import parquet --append`), then refresh")
    timeline = dataclasses.replace(current, cutoff=new_cutoff)
    static, why = static_layer_due(ctx, timeline, args.static)
    print(f"refresh: cutoff {current.cutoff:%Y-%m-%d} -> {args.to}; events up to {last}; "
          f"static layer {why}", flush=True)

    path = args.config or ctx.workspace.root / CONFIG_FILE_NAME
    ctx.workspace.ensure()
    today = dt.datetime.now(dt.UTC)
    write_timeline_cutoff(path, args.to, f"gfm refresh, {today:%Y-%m-%d %H:%M} UTC, from "
                                         f"{current.cutoff:%Y-%m-%d}")
    resolved = load_config(ctx.workspace.root, args.config, parse_overrides(args.overrides))
    if resolved.timeline.cutoff != args.to:  # a --set flag wins over the file
        raise ConfigError(f"a --set timeline.cutoff flag overrides the cutoff {args.to} that "
                          f"gfm refresh wrote into {path}: drop the flag")
    run_plan(refresh_stages(static), ["--workdir", str(args.workdir), *child_flags(args)],
             what="refresh")
    from serving.retention import retire_old_versions

    retired = retire_old_versions(ctx.workspace, resolved, resolved.serving.keep_versions)
    print(f"{retired.summary()} (serving.keep_versions {resolved.serving.keep_versions})")
    print(f"workspace {ctx.workspace.root} refreshed to {args.to}; a running `gfm serve` swaps "
          "to the new model by itself (docs/serving.md)")
