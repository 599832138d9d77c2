"""The resolved timeline (DESIGN.md): one set of instants every stage agrees on.

          graph_as_of = cutoff - label_days            cutoff              cutoff + holdout_days
 ... [---- history_days ----)[---- label_days ----)[---- holdout_days ----)
                 [- early_label_days -)  two-tower examples also here (no HGNN vectors yet)
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from gfm.config import TimelineConfig
from gfm.errors import WorkspaceError
from gfm.workspace import Workspace


@dataclass(frozen=True)
class Timeline:
    cutoff: dt.datetime
    history_days: int
    label_days: int
    holdout_days: int
    protocol: str = "global"  # or "per_user": see TimelineConfig
    per_user_holdout_items: int = 1
    early_label_days: int = 0  # two-tower examples also from [examples_start, graph_as_of)
    per_user_skip_items: int = 0  # per_user: each user's last K items dropped (validation)

    @property
    def graph_as_of(self) -> dt.datetime:
        return self.cutoff - dt.timedelta(days=self.label_days)

    @property
    def holdout_end(self) -> dt.datetime:
        return self.cutoff + dt.timedelta(days=self.holdout_days)

    @property
    def edge_window_start(self) -> dt.datetime:
        return self.graph_as_of - dt.timedelta(days=self.history_days)

    @property
    def examples_start(self) -> dt.datetime:
        """Where the two-tower's examples begin: graph_as_of - early_label_days."""
        return self.graph_as_of - dt.timedelta(days=self.early_label_days)

    def snapshot_days(self) -> list[dt.datetime]:
        """Daily user-history snapshots d in [examples_start, cutoff]."""
        return [self.examples_start + dt.timedelta(days=i)
                for i in range(self.early_label_days + self.label_days + 1)]

    def as_dbt_vars(self) -> dict[str, str | int]:
        fmt = "%Y-%m-%d %H:%M:%S"
        return {
            "cutoff": self.cutoff.strftime(fmt),
            "graph_as_of": self.graph_as_of.strftime(fmt),
            "holdout_end": self.holdout_end.strftime(fmt),
            "history_days": self.history_days,
            "label_days": self.label_days,
            "holdout_days": self.holdout_days,
            "holdout_protocol": self.protocol,
            "per_user_holdout_items": self.per_user_holdout_items,
            "early_label_days": self.early_label_days,
            "per_user_skip_items": self.per_user_skip_items,
        }


def last_event_ts(workspace: Workspace) -> dt.datetime:
    path = workspace.raw_path("interactions")
    if not path.exists():
        raise WorkspaceError(
            f"{path} does not exist: run `gfm generate` or `gfm import` for this workspace first"
        )
    import duckdb  # here, not at import: the training modules import without it

    con = duckdb.connect()
    try:
        rows = con.execute("select max(event_ts) from read_parquet(?)", [str(path)]).fetchall()
    finally:
        con.close()
    if not rows or rows[0][0] is None:
        raise WorkspaceError(f"{path} holds no interactions")
    return rows[0][0]


def resolve_timeline(config: TimelineConfig, workspace: Workspace) -> Timeline:
    """Fix the cutoff: the configured date, else the last event's day minus holdout_days."""
    if config.cutoff is not None:
        cutoff = dt.datetime.combine(config.cutoff, dt.time())
    else:
        # Midnight of the last event's day, minus the hold-out, so a whole hold-out exists.
        last_day = dt.datetime.combine(last_event_ts(workspace).date(), dt.time())
        cutoff = last_day - dt.timedelta(days=config.holdout_days)
    return Timeline(cutoff, config.history_days, config.label_days, config.holdout_days,
                    config.protocol, config.per_user_holdout_items, config.early_label_days,
                    config.per_user_skip_items)
