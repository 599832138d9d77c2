"""The parquet files behind the feature views, built by the dbt models in dbt/models/features/.

    features/item_metadata.parquet                 item_metadata (static item attributes)
    features/user_metadata.parquet                 user_metadata (static user attributes)
    features/user_history.parquet              user_history, one item-id list per type
    features/item_popularity_daily.parquet         item_popularity_daily, per item and snapshot
    features/user_avg_hgnn/<hgnn version>.parquet   user average HGNN vectors per snapshot

Those models are disabled unless their vars are given (so `gfm transform` alone never needs
HGNN output); they are run here as `dbt build --select ...` with the warehouse's own vars
(transforms.warehouse.dbt_args) plus the feature vars, and their own target/ directory so the
manifest of the last `gfm transform` (hashed into the views' lineage tags) is kept.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from gfm.config import Config
from gfm.errors import GfmError, WorkspaceError
from gfm.timeline import Timeline
from gfm.workspace import Workspace

logger = logging.getLogger(__name__)

USER_AVG_DIR = "user_avg_hgnn"
TABLES = {
    "item_metadata": "item_metadata.parquet",
    "user_metadata": "user_metadata.parquet",
    "user_history": "user_history.parquet",
    "item_popularity_daily": "item_popularity_daily.parquet",
}
_TYPE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def table_path(workspace: Workspace, table: str) -> Path:
    return workspace.features_dir / TABLES[table]


def user_avg_path(workspace: Workspace, hgnn_version: str) -> Path:
    return workspace.features_dir / USER_AVG_DIR / f"{hgnn_version}.parquet"


def vector_dimension(path: Path, column: str = "embedding") -> int:
    """Width of the first vector in a parquet list column (every row has the same)."""
    parquet = pq.ParquetFile(path)
    for batch in parquet.iter_batches(batch_size=1, columns=[column]):
        value = batch.column(0)[0].as_py()
        if value:
            return len(value)
    raise GfmError(f"{path} holds no {column} vectors")


def item_types(workspace: Workspace) -> list[str]:
    """The top-level item types (one avg_hgnn_<type> / item_ids_<type> feature each)."""
    from transforms.warehouse import warehouse_query

    rows = warehouse_query(
        workspace,
        "select distinct top_item_type from item_catalog where is_top_level order by 1",
    )
    types = [r[0] for r in rows]
    bad = [t for t in types if not _TYPE_NAME.match(t)]
    if bad:
        raise GfmError(
            f"item type(s) {', '.join(map(repr, bad))} cannot name a feature column: types must "
            "be lower-case letters, digits and underscores (fix the importer's item_type values)"
        )
    if not types:
        raise WorkspaceError("item_catalog has no top-level items: run `gfm transform` first")
    return types


def dbt_manifest_hash(workspace: Workspace) -> str:
    """12 hex over the node checksums of the manifest of the last `gfm transform` (stable
    across reruns of the same dbt project, unlike the file, which carries run ids)."""
    path = workspace.dbt_dir / "target" / "manifest.json"
    if not path.exists():
        return "unknown"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return "unknown"
    digest = hashlib.sha256()
    for group in ("nodes", "sources", "macros"):
        for unique_id, node in sorted(manifest.get(group, {}).items()):
            if not unique_id.startswith(("model.gfm", "test.gfm", "source.gfm", "macro.gfm")):
                continue
            checksum = (node.get("checksum") or {}).get("checksum", "")
            digest.update(f"{unique_id}\t{checksum}\n".encode())
    return digest.hexdigest()[:12]


# ---------------------------------------------------------------------------------------------
# Running the feature models


def run_feature_models(
    workspace: Workspace, config: Config, timeline: Timeline, select: list[str],
    feature_vars: dict[str, Any],
) -> None:
    """`dbt build --select <select>` with the warehouse's vars plus `feature_vars`, on DuckDB
    whatever warehouse.engine is: the offline store reads these Parquet files, and on Spark
    the marts they read are DuckDB views over Spark's tables."""
    from transforms.warehouse import run_dbt

    logger.info("dbt build --select %s", " ".join(select))
    run_dbt(workspace, config, timeline, ["build", "--select", *select],
            extra_vars=feature_vars, target="target_features", engine="duckdb")


@dataclass(frozen=True)
class UserAvgBase:
    """User averages built earlier (of `version`, at `path`) whose rows up to `until` hold for
    the version being built: kept, and only later snapshots computed."""

    version: str
    path: Path
    until: dt.datetime


def build_tables(
    workspace: Workspace, config: Config, timeline: Timeline, types: list[str],
    user_avg: list[tuple[str, dict[str, Any], UserAvgBase | None]],
) -> None:
    """Write the three unversioned tables, and user averages for each (hgnn version, lineage,
    reusable earlier averages or None).

    The first HGNN version is built in the same dbt invocation as the tables (dbt's start-up
    is most of the cost on small workspaces); each further one takes its own invocation.
    """
    from transforms.warehouse import relative

    # Paths relative to the workspace (dbt runs in it): the warehouse's views over these files
    # stay valid when the workspace is copied or moved.
    base = {"features_dir": relative(workspace, workspace.features_dir),
            "feature_item_types": types}
    pending = list(user_avg)
    first = True
    while first or pending:
        feature_vars = dict(base)
        select = ["path:models/features"] if first else ["user_avg_hgnn"]
        if pending:
            version, lineage, reuse = pending.pop(0)
            out = user_avg_path(workspace, version)
            out.parent.mkdir(parents=True, exist_ok=True)
            feature_vars.update({
                "hgnn_embedding_path": lineage["path"],
                "hgnn_as_of": lineage["graph_as_of"].replace("T", " "),
                "hgnn_dim": lineage["dimension"],
                "hgnn_version": version,
                "user_avg_hgnn_path": relative(workspace, out),
            })
            if reuse is not None:
                feature_vars.update({"user_avg_reuse_path": relative(workspace, reuse.path),
                                     "user_avg_reuse_until": str(reuse.until)})
        run_feature_models(workspace, config, timeline, select, feature_vars)
        first = False
