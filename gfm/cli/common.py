"""Arguments every subcommand shares, and the context they resolve to."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from gfm.config import Config, load_config, parse_overrides
from gfm.timeline import Timeline, resolve_timeline
from gfm.workspace import Workspace


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("workspace and configuration")
    group.add_argument("--workdir", type=Path, default=Path("workspace"),
                       help="workspace directory; every stage reads and writes under it "
                            "(default: ./workspace)")
    group.add_argument("--config", type=Path, default=None,
                       help="YAML config (default: <workdir>/gfm.yaml if present, else built-in "
                            "defaults; see docs/configuration.md)")
    group.add_argument("--set", dest="overrides", action="append", default=[],
                       metavar="SECTION.KEY=VALUE",
                       help="override one config value, e.g. --set warehouse.min_edge_support=2 "
                            "(repeatable)")
    group.add_argument("--cutoff", default=None,
                       help="timeline.cutoff as YYYY-MM-DD (default: last event's day minus "
                            "holdout_days)")
    for name in ("history_days", "label_days", "holdout_days"):
        group.add_argument(f"--{name.replace('_', '-')}", dest=name, type=int, default=None,
                           help=f"timeline.{name}")


@dataclass
class Context:
    workspace: Workspace
    config: Config

    def timeline(self) -> Timeline:
        return resolve_timeline(self.config.timeline, self.workspace)


def context_from_args(args: argparse.Namespace) -> Context:
    overrides = parse_overrides(args.overrides)
    timeline = overrides.setdefault("timeline", {})
    if args.cutoff is not None:
        timeline["cutoff"] = args.cutoff
    for name in ("history_days", "label_days", "holdout_days"):
        if getattr(args, name) is not None:
            timeline[name] = getattr(args, name)
    workspace = Workspace.at(args.workdir)
    return Context(workspace, load_config(workspace.root, args.config, overrides))


def child_flags(args: argparse.Namespace) -> list[str]:
    """This command's config flags, for stages run on workspace copies (minus --cutoff, which
    each copy sets)."""
    flags = [x for o in args.overrides for x in ("--set", o)]
    if args.config is not None:
        flags += ["--config", str(args.config)]
    for name in ("history_days", "label_days", "holdout_days"):
        if getattr(args, name) is not None:
            flags += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    return flags
