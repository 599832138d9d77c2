"""Run the dbt project (dbt/) for one workspace, and query the warehouse it builds.

Two engines run the same models (warehouse.engine): DuckDB (dbt-duckdb, in-process through
`dbtRunner`, the default) and Spark (dbt-spark's session method, in a child process per run;
its marts are Parquet tables under spark_warehouse_dir, published as DuckDB views in
warehouse.duckdb). Either way every later stage reads the marts through `open_warehouse` /
`warehouse_query`; dialect differences live in dbt/macros/dialect.sql.

Everything that depends on the workspace reaches dbt
from outside the project: the DuckDB path and the workspace folder (env GFM_WAREHOUSE_PATH and
GFM_WORKSPACE_DIR, read by dbt/profiles.yml), the raw folder, the timeline and the warehouse
settings (--vars), and target/ and logs/ (under `workspace.dbt_dir`, never inside the source
tree). Usage statistics are off.

The warehouse is movable: every file path dbt stores in it (the staging views over raw/, the
views over the feature parquet files) is relative to the workspace. dbt runs with the
workspace as working directory (where relative paths are written) and DuckDB's
`file_search_path` set to it (where they are read); `warehouse_query` sets it too, and anyone
opening the file elsewhere does the same: `SET file_search_path = '<workdir>'`. A copied
workspace therefore reads its own raw data, never the original's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import logging
import os
import shlex
import sys
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb

from gfm.config import Config
from gfm.errors import GfmError, WorkspaceError
from gfm.paths import project_dir
from gfm.spark import require_spark
from gfm.timeline import Timeline
from gfm.workspace import Workspace

logger = logging.getLogger(__name__)

LOCK_MESSAGE = "Could not set lock"
# dbt/profiles.yml's output for each warehouse.engine.
DBT_TARGETS = {"duckdb": "dev", "spark": "spark"}
_FAILED = {"error", "fail", "runtime error"}


def dbt_vars(workspace: Workspace, config: Config, timeline: Timeline) -> dict[str, Any]:
    """The --vars of a run: the timeline, the raw folder (relative to the workspace: views
    over it stay valid when the workspace moves) and the warehouse settings."""
    warehouse = config.warehouse
    return {
        **timeline.as_dbt_vars(),
        "raw_dir": relative(workspace, workspace.raw_dir),
        "min_edge_support": warehouse.min_edge_support,
        "max_items_per_user": warehouse.max_items_per_user,
        "edge_event_types": list(warehouse.edge_event_types),
        "history_event_types": list(warehouse.history_event_types),
        "history_at_events": warehouse.history_at_events,
    }


def dbt_args(
    workspace: Workspace, config: Config, timeline: Timeline, args: Sequence[str] | None = None,
    extra_vars: dict[str, Any] | None = None, target: str = "target",
) -> list[str]:
    """The full dbt command line: `args` (default `build`) plus project, paths and --vars
    (the timeline and warehouse settings, then `extra_vars`)."""
    command = list(args) if args else ["build"]
    variables = {**dbt_vars(workspace, config, timeline), **(extra_vars or {})}
    project = str(project_dir("dbt"))  # its profiles.yml lives beside dbt_project.yml
    return [
        *command,
        "--project-dir", project,
        "--profiles-dir", project,
        "--target", DBT_TARGETS[config.warehouse.engine],
        "--target-path", str(workspace.dbt_dir / target),
        "--log-path", str(workspace.dbt_dir / "logs"),
        # Console output goes through this module's logger (see _forward_event); the file log
        # under logs/ keeps the full debug detail.
        "--log-level", "none",
        "--log-level-file", "debug",
        "--no-use-colors",
        "--vars", json.dumps(variables),
    ]


def relative(workspace: Workspace, path: Path) -> str:
    """`path` as dbt and the warehouse store it: relative to the workspace."""
    return Path(path).relative_to(workspace.root).as_posix()


def dbt_environment(workspace: Workspace, config: Config) -> dict[str, str]:
    """What dbt/profiles.yml reads, and telemetry off."""
    warehouse = config.warehouse
    return {
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "GFM_WAREHOUSE_PATH": str(workspace.warehouse_path),
        "GFM_WORKSPACE_DIR": str(workspace.root),
        "GFM_SPARK_MASTER": warehouse.spark_master,
        "GFM_SPARK_DRIVER_MEMORY": warehouse.spark_driver_memory,
        "GFM_SPARK_EXECUTOR_MEMORY": warehouse.spark_executor_memory,
        "GFM_SPARK_SHUFFLE_PARTITIONS": str(warehouse.spark_shuffle_partitions),
        "GFM_SPARK_WAREHOUSE_DIR": str(spark_warehouse_dir(workspace, config)),
    }


def spark_warehouse_dir(workspace: Workspace, config: Config) -> Path:
    """Where Spark keeps the marts' Parquet tables and its metastore (warehouse.engine spark)."""
    return workspace.root / config.warehouse.spark_warehouse_dir


def dbt_invocation(
    workspace: Workspace, config: Config, timeline: Timeline, args: Sequence[str] | None = None,
) -> tuple[list[str], dict[str, str], Path]:
    """(argv, environment, working directory) that run the dbt executable by hand on this
    workspace as `gfm transform` does: project, paths and --vars, console output on."""
    cli = dbt_args(workspace, config, timeline, args or ["build"])
    # Console output on, for a person: the in-process run routes it through logging instead.
    at = cli.index("--log-level")
    cli[at:at + 2] = []
    argv = [str(Path(sys.executable).with_name("dbt")), *cli]
    return argv, dbt_environment(workspace, config), workspace.root


def dbt_shell_command(
    workspace: Workspace, config: Config, timeline: Timeline, args: Sequence[str] | None = None,
) -> str:
    """The command line that runs dbt by hand on this workspace as `gfm transform` does
    (environment, working directory, project, paths and --vars), for a shell."""
    argv, environment, cwd = dbt_invocation(workspace, config, timeline, args)
    env = " ".join(f"{k}={shlex.quote(v)}" for k, v in environment.items())
    return f"cd {shlex.quote(str(cwd))} && {env} " + " ".join(shlex.quote(a) for a in argv)


@contextlib.contextmanager
def _environment(values: dict[str, str], cwd: Path | None = None) -> Iterator[None]:
    """Set environment variables (and the working directory) for the duration of a run, then
    restore them."""
    saved = {key: os.environ.get(key) for key in values}
    saved_cwd = os.getcwd()
    os.environ.update(values)
    if cwd is not None:
        os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(saved_cwd)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _forward_event(event: Any) -> None:
    """Route dbt's events to logging: info and above as they are, the rest at debug."""
    level = getattr(event.info, "level", "debug")
    if getattr(event.info, "name", "") == "MainStackTrace":
        level = "debug"  # dbt's own traceback: the GfmError says what failed
    message = event.info.msg
    if level == "error":
        logger.error("%s", message)
    elif level == "warn":
        logger.warning("%s", message)
    elif level == "info":
        logger.info("%s", message)
    elif logger.isEnabledFor(logging.DEBUG):
        logger.debug("%s", message)


def _release_duckdb() -> None:
    """Close the DuckDB database dbt-duckdb keeps open in this process after a run.

    dbt-duckdb holds its database in a class attribute between invocations; left open, it keeps
    the file lock and makes a later read-only connect in this process fail ("different
    configuration than existing connections").
    """
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    environment = DuckDBConnectionManager._ENV
    if environment is not None:
        try:
            environment.close()
        finally:
            DuckDBConnectionManager.close_all_connections()


def _describe_nodes(nodes) -> tuple[list[str], bool]:
    """One line per failed model or test, plus a count of skipped nodes; and whether a staging
    model (one reading a raw file) failed. `nodes`: (kind, name, status, message, compiled
    path or None) per node of a dbt run."""
    lines, skipped, failed_staging = [], 0, False
    for kind, name, status, message, compiled_path in nodes:
        status = status.lower()
        if status == "skipped":
            skipped += 1
        elif status in _FAILED:
            failed_staging |= kind == "model" and name.startswith("stg_")
            message = (message or "").strip().replace("\n", "\n      ")
            where = f" (compiled SQL: {compiled_path})" if compiled_path else ""
            lines.append(f"  - {kind} {name}: {status}: {message}{where}")
    if skipped and lines:
        lines.append(f"  ({skipped} downstream node(s) skipped)")
    return lines, failed_staging


def _describe_failures(result: Any) -> tuple[list[str], bool]:
    """`_describe_nodes` of an in-process run's RunExecutionResult."""
    return _describe_nodes(
        (str(getattr(r.node.resource_type, "value", r.node.resource_type)), r.node.name,
         str(getattr(r.status, "value", r.status)), r.message,
         getattr(r.node, "compiled_path", None))
        for r in getattr(result, "results", None) or [])


def _what_to_do(details: str, failed_staging: bool, workspace: Workspace) -> str:
    """The fix for the commonest failures, appended to the error message."""
    if LOCK_MESSAGE in details:
        return (
            f"Another process holds the DuckDB file {workspace.warehouse_path} (DuckDB allows one "
            "writer and no readers beside it): close notebooks, `duckdb` shells or services that "
            "opened it, then rerun. To read the warehouse while it may be rebuilt, query a copy."
        )
    if "Required var" in details:
        return ("A dbt var is missing: run dbt through `gfm transform`, or by hand with the "
                "command `gfm transform --print-dbt-command` prints.")
    if failed_staging:
        return (
            f"A raw file in {workspace.raw_dir} cannot be read as the raw data contract says "
            "(docs/data_contract.md): write it again with `gfm generate` or `gfm import`."
        )
    return (
        "A failed test means the data breaks an assumption of the marts: run its compiled SQL to "
        "see the offending rows, then fix the data or the importer. A failed model is a SQL "
        f"error. The full log is {workspace.dbt_dir / 'logs' / 'dbt.log'}."
    )


# ---------------------------------------------------------------------------------------------
# user_history, the one incremental model: when appending is sound

HISTORY_MODEL = "user_history"
# What the last build of user_history was made from (beside dbt's target/): its settings, its
# cutoff, a digest of the raw rows its snapshots read, and the id of its last full build.
HISTORY_STATE = "user_history_state.json"


@dataclasses.dataclass(frozen=True)
class HistoryBuild:
    """How this run builds user_history: appending the new days, or from scratch (and why)."""

    incremental: bool
    reason: str
    build_id: str  # the full build the table descends from (a new one when from scratch)


def dbt_code_digest(*parts: str) -> str:
    """12 hex over the SQL and YAML of these files and folders of the dbt project (e.g.
    "models/marts"): the code a table was built by. Kept rows are only reused under the same
    code."""
    root = project_dir("dbt")
    digest = hashlib.sha256()
    for part in parts:
        base = root / part
        for path in [base] if base.is_file() else sorted(base.rglob("*")):
            if path.suffix in (".sql", ".yml") and path.is_file():
                digest.update(f"{path.relative_to(root).as_posix()}\n".encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def history_settings(config: Config, timeline: Timeline) -> dict[str, Any]:
    """Everything besides the raw rows that a daily snapshot depends on (the cutoff aside:
    moving it on only adds snapshots): the settings, and the code of the models and macros
    before the feature models (user_history and everything upstream of it)."""
    warehouse = config.warehouse
    return {"engine": warehouse.engine, "history_days": timeline.history_days,
            "label_days": timeline.label_days, "early_label_days": timeline.early_label_days,
            "history_event_types": sorted(warehouse.history_event_types),
            "history_at_events": warehouse.history_at_events,
            "dbt_code": dbt_code_digest("models/staging", "models/intermediate",
                                        "models/marts", "macros")}


def raw_digest(workspace: Workspace, before: dt.datetime) -> str:
    """A digest of the raw rows the snapshots up to `before` read: every event before it, and
    the items (and their shows) those events are on. Equal digests: those snapshots would
    come out the same."""
    interactions = workspace.raw_path("interactions").as_posix().replace("'", "''")
    items = workspace.raw_path("items").as_posix().replace("'", "''")
    con = duckdb.connect()
    try:
        row = con.execute(f"""
            with events as (
                select user_id, item_id, event_type, event_ts
                from read_parquet('{interactions}') where event_ts < ?
            ),
            items as (select item_id, item_type, parent_id from read_parquet('{items}')),
            used as (
                select item_id from items where item_id in (select item_id from events)
                union
                select parent_id from items
                where parent_id is not null and item_id in (select item_id from events)
            ),
            used_items as (select * from items where item_id in (select item_id from used))
            select (select count(*) from events),
                   (select coalesce(sum(hash(user_id, item_id, event_type, event_ts)), 0)
                    from events),
                   (select count(*) from used_items),
                   (select coalesce(sum(hash(item_id, item_type, parent_id)), 0)
                    from used_items)""", [before]).fetchall()[0]
    finally:
        con.close()
    return "-".join(str(v) for v in row)


def history_state_path(workspace: Workspace) -> Path:
    return workspace.dbt_dir / HISTORY_STATE


def read_history_state(workspace: Workspace) -> dict[str, Any] | None:
    try:
        return json.loads(history_state_path(workspace).read_text())
    except (OSError, ValueError):
        return None


def _history_max_snapshot(workspace: Workspace) -> dt.datetime | None:
    """The latest snapshot the warehouse's user_history holds; None without the table."""
    if not workspace.warehouse_path.exists():
        return None
    try:
        return warehouse_query(workspace, f"select max(snapshot_ts) from {HISTORY_MODEL}")[0][0]
    except (duckdb.Error, GfmError):
        return None


def plan_history_build(workspace: Workspace, config: Config, timeline: Timeline) -> HistoryBuild:
    """Append only when every snapshot the table holds would come out the same today: the
    same settings, the raw rows before its cutoff unchanged, and nothing held after the new
    cutoff. Anything else (no record, another setting, a rewritten past) builds from scratch."""
    state = read_history_state(workspace)
    fresh = uuid.uuid4().hex[:12]

    def scratch(reason: str) -> HistoryBuild:
        return HistoryBuild(False, reason, fresh)

    if timeline.protocol != "global":
        return scratch(f"timeline.protocol {timeline.protocol} moves every event with the cutoff")
    if state is None:
        return scratch("no record of an earlier build")
    if state.get("settings") != history_settings(config, timeline):
        return scratch("its settings changed")
    held = _history_max_snapshot(workspace)
    if held is None:
        return scratch("the warehouse holds no user_history")
    cutoff = dt.datetime.fromisoformat(state["cutoff"])
    if timeline.cutoff < cutoff or held > timeline.cutoff:
        return scratch(f"the cutoff moved back from {cutoff:%Y-%m-%d} to "
                       f"{timeline.cutoff:%Y-%m-%d}")
    if raw_digest(workspace, cutoff) != state.get("raw_digest"):
        return scratch(f"raw data before {cutoff:%Y-%m-%d} changed")
    return HistoryBuild(True, f"appending the snapshots after {held:%Y-%m-%d %H:%M}",
                        state["build_id"])


def record_history_build(workspace: Workspace, config: Config, timeline: Timeline,
                         build: HistoryBuild) -> None:
    """After a successful build: what the next run compares with (written atomically)."""
    state = {"settings": history_settings(config, timeline),
             "cutoff": timeline.cutoff.isoformat(),
             "raw_digest": raw_digest(workspace, timeline.cutoff),
             "build_id": build.build_id,
             "incremental": build.incremental}
    path = history_state_path(workspace)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(partial, path)


def builds_history(args: Sequence[str]) -> bool:
    """Whether a dbt command line (build or run) builds user_history."""
    if not args or args[0] not in ("build", "run"):
        return False
    if "--select" not in args:
        return True
    selected = args[args.index("--select") + 1:]
    selected = selected[:next((i for i, a in enumerate(selected) if a.startswith("--")),
                              len(selected))]
    return HISTORY_MODEL in selected


def run_dbt(
    workspace: Workspace,
    config: Config,
    timeline: Timeline,
    args: list[str] | None = None,
    extra_vars: dict[str, Any] | None = None,
    target: str = "target",
    engine: str | None = None,
) -> None:
    """Run dbt (default `build`) on the workspace's warehouse; raise GfmError if anything fails.

    `extra_vars` add to the timeline and warehouse vars; `target` names dbt's target folder
    under <workdir>/dbt/ (a separate one keeps a partial run's manifest apart). `engine`
    overrides warehouse.engine (the feature models always run on DuckDB, over the marts)."""
    if engine is not None and engine != config.warehouse.engine:
        config = dataclasses.replace(
            config, warehouse=dataclasses.replace(config.warehouse, engine=engine))
    if not workspace.has_raw_data():
        raise WorkspaceError(
            f"{workspace.raw_dir} lacks items/users/interactions parquet files: "
            "run `gfm generate` or `gfm import` for this workspace first"
        )
    workspace.dbt_dir.mkdir(parents=True, exist_ok=True)
    args = list(args or ["build"])
    history = None
    if builds_history(args) and "--full-refresh" not in args:
        history = plan_history_build(workspace, config, timeline)
        logger.info("%s: %s (%s)", HISTORY_MODEL,
                    "incremental" if history.incremental else "built from scratch",
                    history.reason)
        if not history.incremental:
            args.append("--full-refresh")
    elif builds_history(args):
        history = HistoryBuild(False, "--full-refresh given", uuid.uuid4().hex[:12])
    cli_args = dbt_args(workspace, config, timeline, args, extra_vars, target)
    command = " ".join(args)
    if config.warehouse.engine == "spark":
        logger.info("dbt %s on Spark (%s, tables in %s; as of %s)", command,
                    config.warehouse.spark_master, spark_warehouse_dir(workspace, config),
                    timeline.cutoff)
        lines, failed_staging = _run_dbt_on_spark(workspace, config, cli_args)
        if not lines:
            views = publish_spark_tables(workspace, config)
            logger.info("%d Spark tables readable through %s", len(views),
                        workspace.warehouse_path)
    else:
        logger.info("dbt %s on %s (as of %s)", command, workspace.warehouse_path,
                    timeline.cutoff)
        lines, failed_staging = _run_dbt_in_process(workspace, config, cli_args)
    if not lines:
        if history is not None:
            record_history_build(workspace, config, timeline, history)
        return
    if history is not None:
        # A failed run may have appended some snapshots: the next one starts from scratch.
        history_state_path(workspace).unlink(missing_ok=True)
    details = "\n".join(lines)
    raise GfmError(
        f"dbt {command} failed for workspace {workspace.root}:\n{details}\n"
        + _what_to_do(details, failed_staging, workspace)
    )


def _run_dbt_in_process(workspace: Workspace, config: Config,
                        cli_args: list[str]) -> tuple[list[str], bool]:
    """dbt-duckdb through dbtRunner; (failure lines, whether a staging model failed), no lines
    on success."""
    from dbt.cli.main import dbtRunner  # imported here: dbt takes a second to import

    # The workspace as working directory: external models write their files to paths relative
    # to it (stored so in the warehouse's views).
    with _environment(dbt_environment(workspace, config), cwd=workspace.root):
        try:
            outcome = dbtRunner(callbacks=[_forward_event]).invoke(cli_args)
        finally:
            _release_duckdb()
    if outcome.success:
        return [], False
    lines, failed_staging = _describe_failures(outcome.result)
    if outcome.exception is not None:
        lines.append(f"  - {type(outcome.exception).__name__}: {outcome.exception}")
    return lines or ["  - dbt reported a failure without details"], failed_staging


def parse_manifest(workspace: Workspace, config: Config, timeline: Timeline,
                   target: str) -> Path:
    """`dbt parse` of the project with this workspace's vars, paths and profile, into
    <workdir>/dbt/<target>/; returns its manifest.json (what an orchestrator reads the models
    and their lineage from). Needs no raw data: nothing is run."""
    from dbt.cli.main import dbtRunner

    workspace.dbt_dir.mkdir(parents=True, exist_ok=True)
    cli_args = dbt_args(workspace, config, timeline, ["parse"], target=target)
    with _environment(dbt_environment(workspace, config), cwd=workspace.root):
        outcome = dbtRunner(callbacks=[_forward_event]).invoke(cli_args)
    path = workspace.dbt_dir / target / "manifest.json"
    if not outcome.success or not path.exists():
        raise GfmError(f"dbt parse failed for workspace {workspace.root} "
                       f"({outcome.exception or 'see ' + str(workspace.dbt_dir / 'logs')})")
    return path


def _run_dbt_on_spark(workspace: Workspace, config: Config,
                      cli_args: list[str]) -> tuple[list[str], bool]:
    """dbt-spark in a child process: each run gets its own JVM and SparkSession, so no process
    carries a session (bound to one workspace's metastore) over to the next run. Its console
    lines are logged as they come; failures are read from run_results.json."""
    import subprocess

    require_spark("warehouse.engine", ("pyspark", "dbt.adapters.spark"))
    spark_warehouse_dir(workspace, config).mkdir(parents=True, exist_ok=True)
    args = list(cli_args)
    at = args.index("--log-level")
    args[at + 1] = "info"  # progress lines, forwarded below
    argv = [str(Path(sys.executable).with_name("dbt")), *args]
    environment = {**os.environ, **dbt_environment(workspace, config)}
    process = subprocess.Popen(argv, cwd=workspace.root, env=environment, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    tail: list[str] = []
    for line in process.stdout:
        line = line.rstrip()
        if line.startswith("{"):  # Spark's JSON log records (Java stack traces): debug only
            logger.debug("%s", line)
        elif line:
            logger.info("%s", line)
            tail = [*tail[-19:], line]
    if process.wait() == 0:
        return [], False
    target = Path(args[args.index("--target-path") + 1])
    lines, failed_staging = _describe_run_results(target / "run_results.json")
    return lines or ["  - dbt on Spark failed; its last lines:", *(f"    {t}" for t in tail)], \
        failed_staging


def _describe_run_results(path: Path) -> tuple[list[str], bool]:
    """`_describe_nodes` of a dbt run in another process (its run_results.json)."""
    try:
        results = json.loads(path.read_text())["results"]
    except (OSError, ValueError, KeyError):
        return [], False
    return _describe_nodes(
        (*r.get("unique_id", "").partition(".gfm.")[::2], str(r.get("status", "")),
         r.get("message"), None)
        for r in results)


def transform_models() -> list[str]:
    """The relations `gfm transform` builds, by name: every dbt model outside models/features/
    (the feature models run later, from `gfm features apply`, always on DuckDB)."""
    models = project_dir("dbt") / "models"
    return sorted(path.stem for path in models.rglob("*.sql")
                  if path.relative_to(models).parts[0] != "features")


SPARK_SCHEMA = "gfm"  # dbt/profiles.yml's spark output


def publish_spark_tables(workspace: Workspace, config: Config) -> list[str]:
    """Make <workdir>/warehouse.duckdb the reading side of the Spark marts: one DuckDB view per
    Spark table over its Parquet files (by a path relative to the workspace when it lies
    inside it, as every other view). Every later stage then reads the same relations on either
    engine. The file is written beside and renamed into place."""
    tables_dir = spark_warehouse_dir(workspace, config) / f"{SPARK_SCHEMA}.db"
    tables = sorted(d for d in tables_dir.iterdir() if d.is_dir() and any(d.glob("*.parquet")))
    if not tables:
        raise GfmError(f"{tables_dir} holds no Parquet tables after the Spark run: see "
                       f"{workspace.dbt_dir / 'logs' / 'dbt.log'}")
    partial = workspace.warehouse_path.with_name(workspace.warehouse_path.name + ".partial")
    partial.unlink(missing_ok=True)
    con = duckdb.connect(str(partial), config={"file_search_path": str(workspace.root)})
    try:
        for table in tables:
            try:
                location = table.relative_to(workspace.root).as_posix()
            except ValueError:
                location = table.as_posix()
            files = f"{location}/*.parquet".replace("'", "''")
            con.execute(f'create view "{table.name}" as select * from read_parquet(\'{files}\')')
        con.execute("checkpoint")
    finally:
        con.close()
    os.replace(partial, workspace.warehouse_path)
    return [t.name for t in tables]


def open_warehouse(workspace: Workspace) -> duckdb.DuckDBPyConnection:
    """The warehouse opened read-only, its views reading their files relative to the workspace
    (DuckDB's file_search_path: the staging views, and on Spark every mart). Close it soon:
    while it is open, `gfm transform` cannot write."""
    path = workspace.warehouse_path
    if not path.exists():
        raise WorkspaceError(f"{path} does not exist: run `gfm transform --workdir "
                             f"{workspace.root}` (dbt build) first")
    try:
        return duckdb.connect(str(path), read_only=True,
                              config={"file_search_path": str(workspace.root)})
    except duckdb.IOException as exc:
        if LOCK_MESSAGE in str(exc):
            raise GfmError(
                f"{path} is locked by another process (probably a running dbt build): wait for "
                "it to finish, or query a copy of the file"
            ) from None
        raise


def warehouse_query(
    workspace: Workspace, sql: str, parameters: Sequence[Any] | None = None
) -> list[tuple]:
    """Run one query on the warehouse (`open_warehouse`); return all rows."""
    con = open_warehouse(workspace)
    try:
        # fetchall(), never fetchone(): an unfinished result blocks the next query (STACK.md).
        return con.execute(sql, parameters or []).fetchall()
    finally:
        con.close()
