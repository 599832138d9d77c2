"""`gfm refresh --to YYYY-MM-DD [--static]`: move the workspace's cutoff on and bring what is
served to it.

The dynamic layer is rebuilt at the new cutoff: the warehouse's marts (user histories, item
popularity), the text vectors of new or changed items, the user average vectors and the online
store, a new two-tower version and its index. The static layer (the HGNN on the co-interaction
graph) is kept, as the paper's Table 3 found daily retraining buys nothing, unless --static is
given or its graph is hgnn.refresh_every_days behind. The cutoff is written into the config
file first, so every later command works at it; `<workdir>/refresh.json` records the refresh
until it is done, so one that stops part-way is finished by running the same command again.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gfm.cli.common import Context, child_flags
from gfm.cli.pipeline import run_plan
from gfm.config import (
    CONFIG_FILE_NAME,
    Config,
    load_config,
    parse_overrides,
    write_timeline_cutoff,
)
from gfm.errors import ConfigError, WorkspaceError
from gfm.files import atomic_write_text
from gfm.stages import refresh_stages
from gfm.timeline import Timeline, last_event_ts

# The last refresh: where it moved the cutoff from and to, and whether it finished.
STATE_FILE = "refresh.json"


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


def _state_path(ctx: Context) -> Path:
    return ctx.workspace.root / STATE_FILE


def _read_state(ctx: Context) -> dict[str, Any]:
    path = _state_path(ctx)
    return json.loads(path.read_text()) if path.exists() else {}


@dataclass
class RefreshPlan:
    """What a refresh to `to` will do, decided before anything is written."""

    to: dt.date
    previous: dt.datetime  # the cutoff it moves from
    static: bool  # retrain the HGNN
    why: str  # why the static layer is kept or retrained
    resume: bool  # finishing a refresh to `to` that stopped part-way
    last_event: dt.datetime

    def summary(self) -> str:
        return (f"refresh: cutoff {self.previous:%Y-%m-%d} -> {self.to}; events up to "
                f"{self.last_event}; static layer {self.why}")


def plan_refresh(ctx: Context, to: dt.date, force_static: bool = False) -> RefreshPlan:
    """Check that a refresh to `to` can run, and decide what it runs; writes nothing."""
    current = ctx.timeline()
    new_cutoff = dt.datetime.combine(to, dt.time())
    state = _read_state(ctx)
    resume = (new_cutoff == current.cutoff and state.get("to") == str(to)
              and state.get("status") == "running")
    if new_cutoff <= current.cutoff and not resume:
        raise ConfigError(
            f"--to {to} is not after the workspace's cutoff {current.cutoff:%Y-%m-%d}: a "
            "refresh moves the timeline forward. To evaluate an earlier cutoff, run "
            "`gfm pipeline --cutoff DATE` on another --workdir")
    if resume:
        current = dataclasses.replace(current, cutoff=dt.datetime.fromisoformat(state["from"]))
    last = last_event_ts(ctx.workspace)
    if last < new_cutoff - dt.timedelta(days=1):  # the day before --to must hold events
        raise WorkspaceError(
            f"raw/ holds events up to {last}, not up to the day before --to {to}: append "
            "the new days first (`gfm import parquet --append`), then refresh")
    static, why = static_layer_due(ctx, dataclasses.replace(current, cutoff=new_cutoff),
                                   force_static)
    if resume and state.get("static"):  # its HGNN may be trained already: then it is reused
        static, why = True, "retrained, as the interrupted refresh decided"
    if resume:
        why += f" (resuming the refresh begun at {state['started_at']}, which did not finish)"
    return RefreshPlan(to, current.cutoff, static, why, resume, last)


def begin_refresh(ctx: Context, plan: RefreshPlan, config_path: Path | None,
                  overrides: dict[str, Any]) -> Config:
    """Record the refresh as running, then move the cutoff in the config file; returns the
    configuration at the new cutoff."""
    path = config_path or ctx.workspace.root / CONFIG_FILE_NAME
    ctx.workspace.ensure()
    began = dt.datetime.now(dt.UTC)
    # Before the cutoff moves: a refresh that stops part-way is finished by the same command.
    record = {"to": str(plan.to), "from": plan.previous.isoformat(), "static": plan.static,
              "started_at": f"{began:%Y-%m-%d %H:%M:%S} UTC", "status": "running"}
    atomic_write_text(_state_path(ctx), json.dumps(record, indent=2) + "\n")
    write_timeline_cutoff(path, plan.to, f"gfm refresh, {began:%Y-%m-%d %H:%M} UTC, from "
                                         f"{plan.previous:%Y-%m-%d}")
    resolved = load_config(ctx.workspace.root, config_path, overrides)
    if resolved.timeline.cutoff != plan.to:  # a --set flag wins over the file
        raise ConfigError(f"a --set timeline.cutoff flag overrides the cutoff {plan.to} that "
                          f"gfm refresh wrote into {path}: drop the flag")
    return resolved


def finish_refresh(ctx: Context, config: Config) -> str:
    """Retire versions beyond serving.keep_versions and record the refresh as done; returns
    what was retired, as a line."""
    from serving.retention import retire_old_versions

    retired = retire_old_versions(ctx.workspace, config, config.serving.keep_versions)
    record = _read_state(ctx)
    finished = dt.datetime.now(dt.UTC)
    record.update(status="done", finished_at=f"{finished:%Y-%m-%d %H:%M:%S} UTC")
    atomic_write_text(_state_path(ctx), json.dumps(record, indent=2) + "\n")
    return f"{retired.summary()} (serving.keep_versions {config.serving.keep_versions})"


def run(args: argparse.Namespace, ctx: Context) -> None:
    if args.cutoff is not None:
        raise ConfigError("gfm refresh sets the cutoff itself (--to); drop --cutoff")
    plan = plan_refresh(ctx, args.to, args.static)
    print(plan.summary(), flush=True)
    begin_refresh(ctx, plan, args.config, parse_overrides(args.overrides))
    run_plan(refresh_stages(plan.static), ["--workdir", str(args.workdir), *child_flags(args)],
             what="refresh")
    print(finish_refresh(ctx, load_config(ctx.workspace.root, args.config,
                                          parse_overrides(args.overrides))))
    print(f"workspace {ctx.workspace.root} refreshed to {args.to}; a running `gfm serve` swaps "
          "to the new model by itself (docs/serving.md)")
