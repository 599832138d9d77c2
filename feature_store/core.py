"""`gfm features apply | materialize | versions | retire`, as functions.

apply = discover new text/HGNN versions and number them (versions.py) -> build the feature
tables with dbt (tables.py) -> register a FeatureService per HGNN run -> render the
workspace's Feast repository and `feast apply` it (repo.py). Everything but the discovery and
the tables is derived from features/feature_versions.json, so `publish` alone (used by
retire and register_feature_service) rebuilds the registry from it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from feature_store import tables
from feature_store.repo import (
    UNVERSIONED_VIEWS,
    feast_apply,
    load_spec,
    online_store_unreachable,
    open_store,
    render_repo,
)
from feature_store.versions import (
    ACTIVE,
    HGNN,
    RETIRED,
    SERVICE_PREFIX,
    TEXT,
    USER_AVG,
    VERSIONED_KINDS,
    FeatureVersions,
    discover_hgnn_versions,
    discover_text_versions,
    service_name,
    view_name,
)
from gfm.config import Config, FeatureStoreConfig
from gfm.errors import GfmError, WorkspaceError
from gfm.files import atomic_write_text
from gfm.timeline import Timeline
from gfm.workspace import Workspace

logger = logging.getLogger(__name__)


@dataclass
class ApplyResult:
    repo: Path
    views: list[str]
    services: list[str]
    added: list[str] = field(default_factory=list)  # views and services new in this apply
    built_user_avg: list[str] = field(default_factory=list)  # user-average views (re)built
    skipped: list[str] = field(default_factory=list)  # why something was not registered
    feast_report: list[str] = field(default_factory=list)


def _ts(value: dt.datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _tags(values: dict[str, Any]) -> dict[str, str]:
    """Feast tags are strings; None and empty values are left out."""
    return {k: str(v) for k, v in values.items() if v not in (None, "")}


# ---------------------------------------------------------------------------------------------
# apply


def apply_features(
    workspace: Workspace, config: Config, timeline: Timeline, rebuild: bool = False
) -> ApplyResult:
    """Register every text/HGNN version of the workspace as its own feature views, build the
    user averages of new HGNN versions (all of them with `rebuild`), and `feast apply`."""
    if not workspace.warehouse_path.exists():
        raise WorkspaceError(
            f"{workspace.warehouse_path} does not exist: run `gfm transform` first"
        )
    state = FeatureVersions.load(workspace)
    context = {"cutoff": _ts(timeline.cutoff),
               "dbt_manifest_hash": tables.dbt_manifest_hash(workspace)}
    added: list[str] = []
    skipped: list[str] = []

    texts = discover_text_versions(workspace)
    if not texts and not state.entries(TEXT):
        raise WorkspaceError(
            f"no text embeddings under {workspace.features_dir / TEXT}: run `gfm embed` first"
        )
    for version, lineage in texts:
        number, new = state.register(TEXT, version, {**lineage, **context})
        if new:
            added.append(view_name(TEXT, number))
    for version, lineage in discover_hgnn_versions(workspace):
        if version not in state.views[HGNN]:
            lineage["dimension"] = tables.vector_dimension(workspace.root / lineage["path"])
        number, new = state.register(HGNN, version, {**lineage, **context})
        if new:
            added.append(view_name(HGNN, number))
    _check_files(workspace, state)

    from transforms.warehouse import dbt_code_digest

    types = tables.item_types(workspace)
    # What the user averages are computed from: a version built from other snapshots (another
    # cutoff, window or history_at_events) is rebuilt.
    user_history = {"cutoff": _ts(timeline.cutoff), "history_days": timeline.history_days,
                    "early_label_days": timeline.early_label_days,
                    "history_event_types": list(config.warehouse.history_event_types),
                    "history_at_events": config.warehouse.history_at_events,
                    "build": history_build_id(workspace),
                    # the code they are computed by: rows kept from a build under other code
                    # would not be what this code computes
                    "dbt_code": dbt_code_digest("models/features/user_avg_hgnn.sql", "macros")}
    to_build = []
    superseded = superseded_extensions(state)
    for version, entry in state.entries(HGNN):
        number, lineage = entry["number"], entry["lineage"]
        existing = state.views[USER_AVG].get(version)
        if existing is not None and existing["status"] == RETIRED:
            continue
        out = tables.user_avg_path(workspace, version)
        if (out.exists() and existing is not None and not rebuild
                and (existing["lineage"].get("user_history") == user_history
                     or version in superseded)):
            continue
        as_of = dt.datetime.fromisoformat(lineage["graph_as_of"])
        if as_of > timeline.cutoff:
            skipped.append(f"{view_name(USER_AVG, number)}: {version} is stamped {as_of}, after "
                           f"the cutoff {timeline.cutoff}: no user snapshot can use it")
            continue
        base = (None if rebuild else
                _reusable_user_avg(workspace, state, version, lineage, user_history, types))
        if base is not None:
            logger.info("%s: the user averages of %s are kept up to %s; later snapshots are "
                        "computed", view_name(USER_AVG, number), base.version, base.until)
        to_build.append((version, lineage, base))
    tables.build_tables(workspace, config, timeline, types, to_build)
    state.tables = {"item_types": types, **context, "history_days": timeline.history_days,
                    "built_at": _ts(dt.datetime.now(dt.UTC).replace(tzinfo=None))}
    for version, lineage, base in to_build:
        number = hgnn_view_number(state, version)
        user_avg = {
            "path": str(tables.user_avg_path(workspace, version).relative_to(workspace.root)),
            "hgnn_version": version,
            "hgnn_view": view_name(HGNN, number),
            "graph_as_of": lineage["graph_as_of"],
            "dimension": lineage["dimension"],
            "item_types": types,
            "history_days": timeline.history_days,
            "user_history": user_history,
            "reused": ({"from": base.version, "until": _ts(base.until)} if base is not None
                       else None),
            **context,
        }
        if version in state.views[USER_AVG]:
            state.views[USER_AVG][version]["lineage"] = user_avg
        else:
            state.register(USER_AVG, version, user_avg, number=number)
            added.append(view_name(USER_AVG, number))

    for version, entry in state.entries(HGNN):
        name = _ensure_two_tower_service(state, version, entry, skipped)
        if name:
            added.append(name)
    state.save()
    result = publish(workspace, config, state)
    result.added, result.skipped = added, skipped
    result.built_user_avg = [view_name(USER_AVG, hgnn_view_number(state, v))
                             for v, _, _ in to_build]
    return result


def history_build_id(workspace: Workspace) -> str | None:
    """The id of the full build of user_history the warehouse's snapshots descend from (an
    incremental transform keeps it; transforms.warehouse)."""
    from transforms.warehouse import read_history_state

    state = read_history_state(workspace)
    return state.get("build_id") if state else None


def _reusable_user_avg(workspace: Workspace, state: FeatureVersions, version: str,
                       lineage: dict[str, Any], user_history: dict[str, Any],
                       types: list[str]) -> tables.UserAvgBase | None:
    """User averages built earlier whose rows up to their cutoff hold for `version` now, so
    only the later snapshots need computing: this version's own, or those of an earlier
    version of the same HGNN run (`gfm train hgnn --new-items` adds one a day). They hold when
    they were built from the same user_history build and settings, at a cutoff not after
    this one, from the same graph_as_of and item types, and every vector they read is the same
    in this version (an extension only adds items; any item it adds that a kept snapshot
    holds would change that snapshot's averages, so then nothing is reused)."""
    if user_history.get("build") is None:
        return None
    checkpoint = lineage.get("hgnn_checkpoint")
    candidates = [version] + [
        v for v, entry in reversed(state.entries(HGNN))
        if v != version and checkpoint and entry["lineage"].get("hgnn_checkpoint") == checkpoint]
    for candidate in candidates:
        built = state.views[USER_AVG].get(candidate)
        if built is None or built["status"] != ACTIVE:
            continue
        old = built["lineage"]
        history = dict(old.get("user_history") or {})
        path = workspace.root / old["path"]
        until = dt.datetime.fromisoformat(history.pop("cutoff", "9999-12-31"))
        same = {k: v for k, v in user_history.items() if k != "cutoff"} == history
        if (not same or not path.exists() or old.get("item_types") != types
                or old.get("graph_as_of") != lineage["graph_as_of"]
                or until > dt.datetime.fromisoformat(user_history["cutoff"])):
            continue
        if candidate != version and not _extends(workspace, state, candidate, version, until):
            continue
        return tables.UserAvgBase(candidate, path, until)
    return None


def _extends(workspace: Workspace, state: FeatureVersions, older: str, newer: str,
             until: dt.datetime) -> bool:
    """Whether HGNN version `newer` holds every vector of `older` unchanged, and none of the
    items it adds is in a user_history snapshot at or before `until`."""
    from transforms.warehouse import open_warehouse

    def vectors(version: str) -> str:
        path = workspace.root / state.views[HGNN][version]["lineage"]["path"]
        return f"read_parquet('{path.as_posix().replace(chr(39), chr(39) * 2)}')"

    con = open_warehouse(workspace)
    try:
        changed = con.execute(
            f"select count(*) from {vectors(older)} o left join {vectors(newer)} n "
            "using (item_id) where n.embedding is distinct from o.embedding").fetchall()[0][0]
        if changed:
            return False
        added = [r[0] for r in con.execute(
            f"select item_id from {vectors(newer)} except "
            f"select item_id from {vectors(older)}").fetchall()]
        if not added:
            return True
        held = con.execute("select count(*) from user_history where snapshot_ts <= ? "
                           "and list_has_any(item_ids, ?::varchar[])",
                           [until, added]).fetchall()[0][0]
        return held == 0
    finally:
        con.close()


def superseded_extensions(state: FeatureVersions) -> set[str]:
    """Active HGNN versions of one trained run (one checkpoint) but its newest: `gfm train
    hgnn --new-items` adds a version a day with new items, each holding every vector of the
    older ones. Only models kept for rollback read the older ones; their user averages stay as
    built (at those models' cutoffs) instead of being rebuilt at each new cutoff, which would
    cost one build per kept version on every refresh."""
    newest: dict[str, str] = {}
    for version, entry in state.entries(HGNN):  # by number: the last of a checkpoint wins
        checkpoint = entry["lineage"].get("hgnn_checkpoint")
        if checkpoint:
            newest[checkpoint] = version
    return {version for version, entry in state.entries(HGNN)
            if entry["lineage"].get("hgnn_checkpoint")
            and newest[entry["lineage"]["hgnn_checkpoint"]] != version}


def hgnn_view_number(state: FeatureVersions, hgnn_version: str) -> int:
    """N of item_hgnn_embedding_v<N>, the view of this HGNN run (its user averages and its
    two-tower FeatureService take the same N)."""
    number = state.number_of(HGNN, hgnn_version)
    assert number is not None, hgnn_version  # registered above
    return number


def _check_files(workspace: Workspace, state: FeatureVersions) -> None:
    for kind in (TEXT, HGNN, USER_AVG):
        for _, entry in state.entries(kind):
            path = workspace.root / entry["lineage"]["path"]
            if not path.exists():
                name = view_name(kind, entry["number"])
                raise WorkspaceError(
                    f"{name} reads {path}, which is gone: restore the file, or retire the "
                    f"view with `gfm features retire {name}`"
                )


def _ensure_two_tower_service(
    state: FeatureVersions, hgnn_version: str, entry: dict[str, Any], skipped: list[str]
) -> str | None:
    """Register two_tower_features_v<N> for HGNN run N once its inputs are all active."""
    number = entry["number"]
    name = service_name(number)
    if name in state.services:
        return None
    text_version = entry["lineage"].get("text_version", "")
    text = state.views[TEXT].get(text_version)
    user_avg = state.views[USER_AVG].get(hgnn_version)
    missing = []
    if text is None or text["status"] != ACTIVE:
        missing.append(f"text embedding {text_version or '(unknown)'}")
    if user_avg is None or user_avg["status"] != ACTIVE:
        missing.append(view_name(USER_AVG, number))
    if missing or text is None or user_avg is None:
        skipped.append(f"{name}: needs {' and '.join(missing)}")
        return None
    views = [view_name(TEXT, text["number"]), view_name(HGNN, number),
             view_name(USER_AVG, number), "item_metadata", "user_metadata",
             "item_popularity_daily"]
    state.add_service(
        name,
        [{"view": v, "features": None} for v in views],
        _tags({"hgnn_version": hgnn_version, "text_version": text_version,
               "hgnn_checkpoint": entry["lineage"].get("hgnn_checkpoint"),
               "graph_as_of": entry["lineage"].get("graph_as_of"),
               "cutoff": user_avg["lineage"].get("cutoff"),
               "dbt_manifest_hash": user_avg["lineage"].get("dbt_manifest_hash"),
               "views": ",".join(views)}),
        f"Two-tower inputs over HGNN run {number} ({hgnn_version}): item tower = text, HGNN "
        "and metadata, popularity prior = recent item popularity; user tower = average HGNN "
        "vectors and metadata.",
    )
    return name


# ---------------------------------------------------------------------------------------------
# publish: state -> repository -> registry


def build_spec(workspace: Workspace, state: FeatureVersions,
               features: FeatureStoreConfig) -> dict[str, Any]:
    """feature_repo.json: what the repository's .py files define (active versions only), with
    file paths relative to the workspace (its repo_spec.py makes them absolute on import)."""
    if not state.tables:
        raise WorkspaceError("the feature tables were never built: run `gfm features apply`")
    base = state.tables
    table_tags = _tags({"cutoff": base.get("cutoff"), "history_days": base.get("history_days"),
                        "dbt_manifest_hash": base.get("dbt_manifest_hash")})
    spec: dict[str, Any] = {
        "project": features.project,
        # data_sources.py builds FileSources (DuckDB offline store) or SparkSources from it
        "offline_store": features.offline_store,
        "item_types": base["item_types"],
        "tables": {name: str(tables.table_path(workspace, name).relative_to(workspace.root))
                   for name in tables.TABLES},
        "tags": {"tables": table_tags},
    }
    for kind in VERSIONED_KINDS:
        spec[kind] = []
        for version, entry in state.entries(kind):
            lineage = dict(entry["lineage"])
            tags = _tags({"version": version, "feature_version": f"v{entry['number']}",
                          **{k: v for k, v in lineage.items() if k not in ("item_types",)},
                          "registered_at": entry["registered_at"]})
            if "item_types" in lineage:
                tags["item_types"] = ",".join(lineage["item_types"])
            spec[kind].append({"name": view_name(kind, entry["number"]), "version": version,
                               "number": entry["number"], **lineage, "tags": tags})
    active_views = set(UNVERSIONED_VIEWS) | {
        view_name(kind, e["number"]) for kind in VERSIONED_KINDS for _, e in state.entries(kind)
    }
    spec["feature_services"] = []
    for name, service in sorted(state.services.items(), key=_service_order):
        if service["status"] != ACTIVE:
            continue
        gone = [v["view"] for v in service["views"] if v["view"] not in active_views]
        if gone:
            raise GfmError(f"feature service {name} pins retired view(s) {', '.join(gone)}: "
                           f"retire {name} too (`gfm features retire {name}`)")
        spec["feature_services"].append({"name": name, "views": service["views"],
                                         "description": service["description"],
                                         "tags": service["tags"]})
    return spec


def _service_order(item: tuple[str, dict[str, Any]]) -> tuple[str, int, str]:
    name = item[0]
    prefix, _, number = name.rpartition("_v")
    return (prefix, int(number) if number.isdigit() else 0, name)


def publish(workspace: Workspace, config: Config,
            state: FeatureVersions | None = None) -> ApplyResult:
    """Render the repository from the state and `feast apply` it."""
    state = state or FeatureVersions.load(workspace)
    spec = build_spec(workspace, state, config.features)
    directory = render_repo(workspace, config, spec)
    report = feast_apply(workspace)
    views = list(UNVERSIONED_VIEWS) + [s["name"] for k in VERSIONED_KINDS for s in spec[k]]
    return ApplyResult(directory, views, [s["name"] for s in spec["feature_services"]],
                       feast_report=report)


# ---------------------------------------------------------------------------------------------
# materialize


@dataclass
class MaterializeStat:
    view: str
    start: dt.datetime
    end: dt.datetime
    rows: int  # entity rows written to the online store
    seconds: float
    incremental: bool = False  # Feast's materialize_incremental, from the view's last end

    @property
    def rows_per_s(self) -> float:
        return self.rows / max(self.seconds, 1e-9)


def _windows(spec: dict[str, Any]) -> dict[str, tuple[str, str, str]]:
    """view -> (parquet path, entity key, kind) of every view in the spec."""
    views = {"item_metadata": (spec["tables"]["item_metadata"], "item_id", "item"),
             "user_metadata": (spec["tables"]["user_metadata"], "user_id", "user"),
             "user_history": (spec["tables"]["user_history"], "user_id", "snapshot"),
             "item_popularity_daily": (spec["tables"]["item_popularity_daily"], "item_id",
                                       "snapshot")}
    for entry in spec[TEXT] + spec[HGNN]:
        views[entry["name"]] = (entry["path"], "item_id", "item")
    for entry in spec[USER_AVG]:
        views[entry["name"]] = (entry["path"], "user_id", "snapshot")
    return views


def materialize_features(
    workspace: Workspace, timeline: Timeline, views: list[str] | None = None
) -> list[MaterializeStat]:
    """Load the online store so that it holds what is true at the cutoff.

    Windows come from the data, never from "now": a snapshot view loads its latest snapshot at
    or before the cutoff (start = end = that instant: a user without history then gets no
    row, rather than an older snapshot, and a user the online store holds from an earlier
    snapshot gets an empty one); every other view loads [its earliest row, cutoff] (the
    latest row per key wins), or, once loaded into this same online store, only what came
    since: Feast's materialize_incremental from the view's last end (rows of those views are
    stamped at a release or sign-up, and `gfm import parquet --append` refuses one before the
    cutoff, so nothing older appears later).
    """
    from redis.exceptions import ConnectionError as RedisConnectionError

    spec = load_spec(workspace)
    known = _windows(spec)
    names = views or list(known)
    unknown = [v for v in names if v not in known]
    if unknown:
        raise GfmError(f"unknown feature view(s) {', '.join(unknown)}; this workspace has "
                       f"{', '.join(known)}")
    store = open_store(workspace)
    loaded = _OnlineLoads(workspace, store)
    stats = []
    con = duckdb.connect()
    try:
        for name in names:
            path, key, kind = known[name]
            source = f"read_parquet('{path.replace(chr(39), chr(39) * 2)}')"
            since = None if kind == "snapshot" else loaded.since(name, timeline.cutoff)
            if kind == "snapshot":
                rows = con.execute(f"select max(event_timestamp) from {source} "
                                   "where event_timestamp <= ?", [timeline.cutoff]).fetchall()
                start = end = rows[0][0]
            elif since is not None:
                start, end = since, timeline.cutoff
            else:
                rows = con.execute(f"select min(event_timestamp) from {source} "
                                   "where event_timestamp <= ?", [timeline.cutoff]).fetchall()
                start, end = rows[0][0], timeline.cutoff
            if start is None:
                logger.warning("%s has no rows at or before the cutoff %s: nothing to load",
                               name, timeline.cutoff)
                continue
            n = con.execute(f"select count(distinct {key}) from {source} "
                            "where event_timestamp between ? and ?", [start, end]).fetchall()[0][0]
            began = time.perf_counter()
            try:
                if since is not None:
                    store.materialize_incremental(end_date=end.replace(tzinfo=dt.UTC),
                                                  feature_views=[name])
                else:
                    store.materialize(start_date=start.replace(tzinfo=dt.UTC),
                                      end_date=end.replace(tzinfo=dt.UTC), feature_views=[name])
            except RedisConnectionError as exc:
                raise online_store_unreachable(store, exc) from None
            if kind != "snapshot":
                loaded.record(name, end)
            if kind == "snapshot" and key == "user_id":
                cleared = _clear_aged_out(store, con, name, source, start)
                if cleared:
                    logger.info("%s: %d user(s) without history at %s cleared", name, cleared,
                                start)
            stats.append(MaterializeStat(name, start, end, int(n), time.perf_counter() - began,
                                         incremental=since is not None))
            logger.info("materialized %s%s: %d rows in %.2f s", name,
                        " (incremental)" if since is not None else "", n, stats[-1].seconds)
    finally:
        con.close()
    return stats


class _OnlineLoads:
    """What this workspace loaded into its online store, view by view (features/
    online_loads.json): the online store it was (type and address) and, per view, the end of
    its last load. A view loads incrementally only when both still hold: same online store,
    and Feast's registry ends it where this record does (a new registry, or an online store
    switched from SQLite to Redis, loads whole again)."""

    FILE = "online_loads.json"

    def __init__(self, workspace: Workspace, store):
        self.path = workspace.features_dir / self.FILE
        self.store = store
        online = store.config.online_store
        dumped = online.model_dump() if hasattr(online, "model_dump") else vars(online)
        self.online_store = json.dumps(dumped, sort_keys=True, default=str)
        try:
            record = json.loads(self.path.read_text())
        except (OSError, ValueError):
            record = {}
        self.views = (record.get("views", {}) if record.get("online_store") == self.online_store
                      else {})

    def since(self, name: str, cutoff: dt.datetime) -> dt.datetime | None:
        """Where an incremental load of `name` up to `cutoff` starts; None: load it whole."""
        end = self.views.get(name)
        if end is None:
            return None
        end = dt.datetime.fromisoformat(end)
        feast_end = self.store.get_feature_view(name).most_recent_end_time
        if (feast_end is None or feast_end.replace(tzinfo=None) != end or end > cutoff):
            return None
        return end

    def record(self, name: str, end: dt.datetime) -> None:
        self.views[name] = end.isoformat()
        atomic_write_text(self.path, json.dumps(
            {"online_store": self.online_store, "views": self.views}, indent=2) + "\n")


def _clear_aged_out(store, con: duckdb.DuckDBPyConnection, name: str, source: str,
                    snapshot: dt.datetime) -> int:
    """Empty the online row of every user who is in an earlier snapshot of this user view but
    not in `snapshot`, the one just loaded: their history aged out of the window (or they
    left the data), so at the cutoff they have none, as the offline features say. Without
    this, materialization (an upsert) would leave yesterday's row online: served as a user
    with history, and their old items still left out of what they are recommended."""
    rows = con.execute(f"select distinct user_id from {source} where event_timestamp < ? "
                       f"except select user_id from {source} where event_timestamp = ?",
                       [snapshot, snapshot]).fetchall()
    if not rows:
        return 0
    import pandas as pd
    from feast.types import Array, Int32, Int64, String

    frame = pd.DataFrame({"user_id": [r[0] for r in rows],
                          "event_timestamp": pd.Timestamp(snapshot, tz="UTC")})
    for feature in store.get_feature_view(name).features:
        # What a user without history reads offline: no items, a count of 0, no vector (null,
        # which the towers and /recommend take as "no history"). Feast writes no row whose
        # features are all null, so the lists and counts are written as empty and 0.
        empty = ([] if feature.dtype == Array(String)
                 else 0 if feature.dtype in (Int32, Int64) else None)
        frame[feature.name] = [empty] * len(frame) if isinstance(empty, list) else empty
    store.write_to_online_store(name, frame)
    return len(rows)


# ---------------------------------------------------------------------------------------------
# versions, retire, services


@dataclass
class VersionRow:
    name: str
    kind: str
    version: str
    status: str
    lineage: dict[str, Any]


def list_versions(workspace: Workspace) -> tuple[list[VersionRow], dict[str, dict[str, Any]]]:
    """Every versioned view ever registered (retired ones too), and every feature service."""
    state = FeatureVersions.load(workspace)
    rows = [VersionRow(view_name(kind, e["number"]), kind, version, e["status"], e["lineage"])
            for kind in VERSIONED_KINDS for version, e in state.entries(kind, None)]
    return rows, dict(sorted(state.services.items(), key=_service_order))


def retire(workspace: Workspace, config: Config, name: str, cascade: bool = False) -> list[str]:
    """Retire a versioned view or a feature service: it leaves the registry and the online
    store (its parquet file stays), and later applies never register it again. A view that an
    active service pins is refused unless `cascade`, which retires those services too."""
    state = FeatureVersions.load(workspace)
    retired: list[str] = []
    if name in state.services:
        if state.services[name]["status"] == RETIRED:
            raise GfmError(f"{name} is already retired")
        state.services[name]["status"] = RETIRED
        retired.append(name)
    else:
        kind, version, entry = state.find_view(name)
        if entry["status"] == RETIRED:
            raise GfmError(f"{name} is already retired")
        pinning = [s for s, svc in state.services.items() if svc["status"] == ACTIVE
                   and any(v["view"] == name for v in svc["views"])]
        if pinning and not cascade:
            raise GfmError(
                f"{name} is pinned by feature service(s) {', '.join(pinning)} (models trained on "
                "them read it): retire those first, or pass --cascade to retire them too"
            )
        for service in pinning:
            state.services[service]["status"] = RETIRED
            retired.append(service)
        entry["status"] = RETIRED
        retired.insert(0, name)
    state.save()
    publish(workspace, config, state)
    return retired


def register_feature_service(
    workspace: Workspace, config: Config, name: str, views: list[str | tuple[str, list[str]]],
    tags: dict[str, str] | None = None, description: str = "",
) -> ApplyResult:
    """Pin feature views (all their features, or (view, [features])) under a new service, e.g.
    one per two-tower model version (`two_tower_v3`), and apply. A name is never redefined."""
    state = FeatureVersions.load(workspace)
    if name in state.services:
        raise GfmError(f"feature service {name} exists already; a service is never redefined "
                       "(models trained on it must keep reading the same views): pick a new name")
    entries = []
    for view in views:
        view_name_, features = (view, None) if isinstance(view, str) else view
        if view_name_ not in UNVERSIONED_VIEWS:
            kind, _, entry = state.find_view(view_name_)
            if entry["status"] != ACTIVE:
                raise GfmError(f"{view_name_} is retired: a new service cannot pin it")
        entries.append({"view": view_name_, "features": list(features) if features else None})
    state.add_service(name, entries, _tags(tags or {}), description or f"Features of {name}.")
    state.save()
    return publish(workspace, config, state)


def service_spec(workspace: Workspace, name: str) -> dict[str, Any]:
    """What a feature service pins: {"name", "status", "views" (as register_feature_service
    takes them: a view name, or (view, [features])), "tags", "description", "item_types"}."""
    state = FeatureVersions.load(workspace)
    service = state.services.get(name)
    if service is None:
        raise GfmError(f"no feature service {name!r} in this workspace; known: "
                       f"{', '.join(state.services) or 'none (run `gfm features apply`)'}")
    views = [v["view"] if not v.get("features") else (v["view"], list(v["features"]))
             for v in service["views"]]
    item_types = list(state.tables.get("item_types", []))
    for view in service["views"]:
        if view["view"].startswith(f"{USER_AVG}_v"):
            item_types = list(state.find_view(view["view"])[2]["lineage"]["item_types"])
    return {"name": name, "status": service["status"], "views": views,
            "tags": dict(service["tags"]), "description": service["description"],
            "item_types": item_types}


def latest_feature_service(workspace: Workspace) -> str:
    """The newest active two_tower_features_v<N> (the latest HGNN run's inputs)."""
    _, services = list_versions(workspace)
    names = [n for n, s in services.items()
             if s["status"] == ACTIVE and n.startswith(f"{SERVICE_PREFIX}_v")]
    if not names:
        raise WorkspaceError("no two_tower_features service yet: run `gfm train hgnn` and "
                             "`gfm features apply`")
    return max(names, key=lambda n: _service_order((n, {})))
