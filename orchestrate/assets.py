"""The platform's stages as Dagster assets, with `gfm refresh` on a schedule
(orchestrate/definitions.py is the code location Dagster loads).

    pip install -e ".[orchestrate]"
    make dagster WORKDIR=workspace          # the UI on http://127.0.0.1:3001

The workspace is GFM_WORKDIR (default ./workspace), with the configuration of GFM_CONFIG (a
YAML file) and GFM_SET (a JSON list of section.key=value), as for `gfm serve`. The assets run
the code of the CLI, so a run here equals `gfm refresh`:

    raw_at_cutoff          gfm refresh's checks, then the cutoff moved in gfm.yaml (plan_refresh,
      |                    begin_refresh); run config: to (YYYY-MM-DD, default the run's day),
      |                    static (retrain the HGNN)
    dbt models             `gfm transform`'s dbt build (one asset per model, from the project's
      |                    manifest; dagster-dbt), through transforms.warehouse.run_dbt
    text_embeddings        gfm embed
    hgnn_vectors           gfm train hgnn when the refresh retrains the static layer; else the
      |                    kept run extended to the day's new items (gfm train hgnn --new-items)
    feature_views          gfm features apply
    online_store           gfm features materialize
    two_tower_model        gfm train two-tower (--warm-start when the HGNN was kept)
    milvus_index           gfm index
    retired_versions       retire beyond serving.keep_versions, record the refresh as done

One job, `refresh`, on two schedules: daily (the dynamic layer; the HGNN is retrained only once
hgnn.refresh_every_days have passed) and weekly (static: true). The dbt models run on DuckDB
(warehouse.engine duckdb): on Spark, run `gfm refresh`. No `from __future__ import
annotations` here: Dagster reads the config classes from the functions' annotations.
"""

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from graphlib import TopologicalSorter
from pathlib import Path

import dagster as dg
from dagster_dbt import dbt_assets

from gfm.cli.common import Context
from gfm.cli.pipeline import run_plan
from gfm.cli.refresh import STATE_FILE, begin_refresh, finish_refresh, plan_refresh
from gfm.config import load_config, parse_overrides
from gfm.errors import GfmError
from gfm.timeline import Timeline, resolve_timeline
from gfm.workspace import Workspace
from transforms.warehouse import parse_manifest, run_dbt

# Schedules, in the UTC day: the daily refresh after midnight's data is complete; the weekly
# static refresh on Sundays instead of that day's daily one.
DAILY_CRON = "30 2 * * 1-6"
WEEKLY_CRON = "30 2 * * 0"


@dataclass(frozen=True)
class Target:
    """The workspace and configuration every asset of a code location works on."""

    workdir: Path
    config_path: Path | None = None
    sets: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_environment(cls) -> "Target":
        config = os.environ.get("GFM_CONFIG")
        return cls(Path(os.environ.get("GFM_WORKDIR", "workspace")).resolve(),
                   Path(config).resolve() if config else None,
                   tuple(json.loads(os.environ.get("GFM_SET") or "[]")))

    def context(self) -> Context:
        """Read afresh at each step: raw_at_cutoff moves the cutoff the later ones read."""
        workspace = Workspace.at(self.workdir)
        return Context(workspace, load_config(workspace.root, self.config_path,
                                              parse_overrides(list(self.sets))))

    def flags(self) -> list[str]:
        flags = ["--workdir", str(self.workdir)]
        if self.config_path is not None:
            flags += ["--config", str(self.config_path)]
        for item in self.sets:
            flags += ["--set", item]
        return flags

    def stage(self, *argv: str) -> None:
        """One `gfm` stage, exactly as the CLI runs it."""
        run_plan([list(argv)], self.flags(), what=f"gfm {' '.join(argv)}")

    def refresh_record(self) -> dict:
        path = self.workdir / STATE_FILE
        return json.loads(path.read_text()) if path.exists() else {}


class RefreshConfig(dg.Config):
    to: str = ""  # the new cutoff, YYYY-MM-DD; empty: the day the run starts (UTC)
    static: bool = False  # retrain the static layer (the HGNN) whatever its age


def _parse_timeline(ctx: Context) -> Timeline:
    """The timeline the manifest is parsed with; any date does when there is no data yet
    (parsing reads none)."""
    try:
        return resolve_timeline(ctx.config.timeline, ctx.workspace)
    except GfmError:
        t = ctx.config.timeline
        return Timeline(dt.datetime.combine(dt.date.today(), dt.time()), t.history_days,
                        t.label_days, t.holdout_days)


def build_definitions(target: Target) -> dg.Definitions:
    ctx = target.context()
    ctx.workspace.ensure()
    manifest = parse_manifest(ctx.workspace, ctx.config, _parse_timeline(ctx), "dagster")
    raw_keys = [dg.AssetKey(["raw", table]) for table in ("items", "users", "interactions")]

    @dg.multi_asset(specs=[dg.AssetSpec(key, description="raw/ as of the refreshed cutoff",
                                        group_name="raw") for key in raw_keys])
    def raw_at_cutoff(context: dg.AssetExecutionContext, config: RefreshConfig):
        c = target.context()
        to = dt.date.fromisoformat(config.to) if config.to else dt.datetime.now(dt.UTC).date()
        plan = plan_refresh(c, to, config.static)
        context.log.info(plan.summary())
        begin_refresh(c, plan, target.config_path, parse_overrides(list(target.sets)))
        for key in raw_keys:
            yield dg.MaterializeResult(asset_key=key, metadata={
                "cutoff": str(to), "previous_cutoff": str(plan.previous.date()),
                "static": plan.static, "last_event": str(plan.last_event)})

    @dbt_assets(manifest=manifest, exclude="path:models/features", name="warehouse_marts")
    def warehouse_marts(context: dg.AssetExecutionContext):
        c = target.context()
        if c.config.warehouse.engine != "duckdb":
            raise GfmError("the Dagster code location runs the dbt models on DuckDB; with "
                           "warehouse.engine spark, run `gfm refresh`")
        keys = set(context.selected_asset_keys)
        select = (["--select", *sorted(key.path[-1] for key in keys)] if context.is_subset
                  else [])
        run_dbt(c.workspace, c.config, c.timeline(), ["build", *select])
        # Dagster wants a multi-asset's results in dependency order.
        deps = context.assets_def.asset_deps
        order = TopologicalSorter({key: deps.get(key, set()) & keys for key in keys})
        for key in order.static_order():
            yield dg.MaterializeResult(asset_key=key)

    mart_keys = list(warehouse_marts.keys)

    @dg.asset(deps=mart_keys, group_name="static_layer")
    def text_embeddings() -> dg.MaterializeResult:
        """gfm embed: Sentence-BERT vectors of new or changed item texts."""
        target.stage("embed")
        return dg.MaterializeResult()

    @dg.asset(deps=[text_embeddings, *mart_keys], group_name="static_layer")
    def hgnn_vectors() -> dg.MaterializeResult:
        """gfm train hgnn, when this refresh retrains the static layer; else the kept run is
        extended to the items released since (the paper's Table 3: daily retraining buys
        nothing, but new items need vectors)."""
        static = bool(target.refresh_record().get("static", True))
        target.stage("train", "hgnn", *([] if static else ["--new-items"]))
        return dg.MaterializeResult(metadata={"retrained": static})

    @dg.asset(deps=[hgnn_vectors], group_name="feature_store")
    def feature_views() -> dg.MaterializeResult:
        """gfm features apply: versioned views, user averages, FeatureServices."""
        target.stage("features", "apply")
        return dg.MaterializeResult()

    @dg.asset(deps=[feature_views], group_name="feature_store")
    def online_store() -> dg.MaterializeResult:
        """gfm features materialize: the online store at the cutoff."""
        target.stage("features", "materialize")
        return dg.MaterializeResult()

    @dg.asset(deps=[feature_views], group_name="dynamic_layer")
    def two_tower_model() -> dg.MaterializeResult:
        """gfm train two-tower: warm-started from the served model when the HGNN was kept."""
        static = bool(target.refresh_record().get("static", True))
        target.stage("train", "two-tower", *([] if static else ["--warm-start"]))
        return dg.MaterializeResult(metadata={"warm_start": not static})

    @dg.asset(deps=[two_tower_model], group_name="serving")
    def milvus_index() -> dg.MaterializeResult:
        """gfm index: the new model's collection, beside the served one's."""
        target.stage("index")
        return dg.MaterializeResult()

    @dg.asset(deps=[milvus_index, online_store], group_name="serving")
    def retired_versions() -> dg.MaterializeResult:
        """Versions beyond serving.keep_versions retired; the refresh recorded as done."""
        line = finish_refresh(target.context(), target.context().config)
        return dg.MaterializeResult(metadata={"retired": line})

    assets = [raw_at_cutoff, warehouse_marts, text_embeddings, hgnn_vectors, feature_views,
              online_store, two_tower_model, milvus_index, retired_versions]
    # In one process: the stages run one after another anyway, and each would otherwise pay
    # for importing torch, dbt and Feast again.
    refresh = dg.define_asset_job("refresh", selection=dg.AssetSelection.assets(*assets),
                                  executor_def=dg.in_process_executor,
                                  description="gfm refresh: the served chain at a new cutoff")

    def at(day: dt.date, static: bool) -> dict:
        return {"ops": {"raw_at_cutoff": {"config": {"to": str(day), "static": static}}}}

    @dg.schedule(job=refresh, cron_schedule=DAILY_CRON, execution_timezone="UTC",
                 name="daily_refresh")
    def daily_refresh(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        return dg.RunRequest(run_config=at(context.scheduled_execution_time.date(), False))

    @dg.schedule(job=refresh, cron_schedule=WEEKLY_CRON, execution_timezone="UTC",
                 name="weekly_static_refresh")
    def weekly_static_refresh(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        return dg.RunRequest(run_config=at(context.scheduled_execution_time.date(), True))

    return dg.Definitions(assets=assets, jobs=[refresh],
                          schedules=[daily_refresh, weekly_static_refresh])

