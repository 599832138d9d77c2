"""Which feature versions a workspace has, their numbers, lineage and status (active | retired).

A new text-embedding or HGNN run is a new file under features/ (transforms.text_embedding,
training.hgnn.train). Here each one gets a feature view of its own, named with a number that
never changes or gets reused: `item_text_embedding_v1`, `item_hgnn_embedding_v2`, ... The
numbers, the lineage captured when a version was first registered, and retirements live in
`<workdir>/features/feature_versions.json` (the only state of the feature store besides Feast's
registry and online store, which are rebuilt from it by `gfm features apply`).

`user_avg_hgnn_v<N>` is derived from `item_hgnn_embedding_v<N>` and shares its number, and
so does the FeatureService `two_tower_features_v<N>` registered for it: everything named `vN`
goes back to HGNN run N.

Built-in Feast versioning (`version=`, `@vN`) is alpha (STACK.md): explicit names and tags only.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gfm.errors import GfmError, WorkspaceError
from gfm.files import atomic_write_text, version_files
from gfm.workspace import Workspace

logger = logging.getLogger(__name__)

TEXT = "item_text_embedding"
HGNN = "item_hgnn_embedding"
USER_AVG = "user_avg_hgnn"
VERSIONED_KINDS = (TEXT, HGNN, USER_AVG)
SERVICE_PREFIX = "two_tower_features"
STATE_FILE = "feature_versions.json"
ACTIVE, RETIRED = "active", "retired"
_NAME = re.compile(r"^(?P<kind>[a-z0-9_]+?)_v(?P<number>[0-9]+)$")


def view_name(kind: str, number: int) -> str:
    return f"{kind}_v{number}"


def service_name(number: int) -> str:
    return f"{SERVICE_PREFIX}_v{number}"


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(timespec="seconds")


@dataclass
class FeatureVersions:
    """The content of features/feature_versions.json."""

    path: Path
    # kind -> version id -> {"number", "status", "registered_at", "lineage": {...}}
    views: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {kind: {} for kind in VERSIONED_KINDS}
    )
    # service name -> {"status", "views": [{"view", "features"}], "tags", "description", ...}
    services: dict[str, dict[str, Any]] = field(default_factory=dict)
    # the unversioned tables' build: item_types, cutoff, dbt_manifest_hash, built_at
    tables: dict[str, Any] = field(default_factory=dict)

    # -- reading ---------------------------------------------------------------------------

    @classmethod
    def load(cls, workspace: Workspace) -> "FeatureVersions":
        path = workspace.features_dir / STATE_FILE
        state = cls(path)
        if not path.exists():
            return state
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise WorkspaceError(
                f"{path} cannot be read ({exc}): it records the feature versions' numbers and "
                "retirements; restore it from a backup, or delete it to number versions afresh"
            ) from None
        for kind in VERSIONED_KINDS:
            state.views[kind] = dict(data.get("views", {}).get(kind, {}))
        state.services = dict(data.get("feature_services", {}))
        state.tables = dict(data.get("tables", {}))
        return state

    def save(self) -> None:
        body = json.dumps({"tables": self.tables, "views": self.views,
                           "feature_services": self.services}, indent=2)
        atomic_write_text(self.path, body + "\n")

    def entries(self, kind: str, status: str | None = ACTIVE) -> list[tuple[str, dict[str, Any]]]:
        """(version id, entry) of one kind, by number; only `status` ones unless None."""
        rows = [(v, e) for v, e in self.views[kind].items() if status is None or e["status"] == status]
        return sorted(rows, key=lambda row: row[1]["number"])

    def number_of(self, kind: str, version: str) -> int | None:
        entry = self.views[kind].get(version)
        return None if entry is None else int(entry["number"])

    def find_view(self, name: str) -> tuple[str, str, dict[str, Any]]:
        """(kind, version id, entry) of a versioned view name such as item_hgnn_embedding_v2."""
        match = _NAME.match(name)
        if match and match["kind"] in VERSIONED_KINDS:
            for version, entry in self.views[match["kind"]].items():
                if int(entry["number"]) == int(match["number"]):
                    return match["kind"], version, entry
        known = [view_name(k, e["number"]) for k in VERSIONED_KINDS for _, e in self.entries(k, None)]
        raise GfmError(
            f"no feature view {name!r} in this workspace; versioned views: "
            f"{', '.join(known) or 'none yet (run `gfm features apply`)'}"
        )

    # -- changing --------------------------------------------------------------------------

    def register(self, kind: str, version: str, lineage: dict[str, Any],
                 number: int | None = None) -> tuple[int, bool]:
        """Give `version` a number (the next free one unless given); (number, newly added)."""
        entries = self.views[kind]
        if version in entries:
            return int(entries[version]["number"]), False
        if number is None:
            number = 1 + max((int(e["number"]) for e in entries.values()), default=0)
        if any(int(e["number"]) == number for e in entries.values()):
            raise GfmError(f"{view_name(kind, number)} already names another version")
        entries[version] = {"number": number, "status": ACTIVE, "registered_at": _now(),
                            "lineage": lineage}
        logger.info("registered %s (%s)", view_name(kind, number), version)
        return number, True

    def add_service(self, name: str, views: list[dict[str, Any]], tags: dict[str, str],
                    description: str) -> bool:
        """Record a FeatureService; False if one of that name exists (it is never redefined:
        a model trained on a service must keep reading the same views)."""
        if name in self.services:
            return False
        self.services[name] = {"status": ACTIVE, "views": views, "tags": tags,
                               "description": description, "registered_at": _now()}
        return True


# ---------------------------------------------------------------------------------------------
# Discovering what the stages wrote


def _discover(workspace: Workspace, kind: str,
              fields: dict[str, tuple[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(version id, lineage) of every version file of a kind, oldest first; lineage: its path
    (relative to the workspace, so a moved workspace only needs `gfm features apply` again)
    and, per lineage key, the sidecar's (key, default)."""
    return [(meta.get("version", parquet.stem),
             {"path": str(parquet.relative_to(workspace.root)),
              **{name: meta.get(key, default) for name, (key, default) in fields.items()}})
            for meta, parquet in version_files(workspace.features_dir / kind)]


def discover_text_versions(workspace: Workspace) -> list[tuple[str, dict[str, Any]]]:
    """(version id, lineage) of every text-embedding file, oldest first."""
    return _discover(workspace, TEXT, {
        "text_model": ("model_id", ""),
        "text_template_version": ("text_template_version", ""),
        "dimension": ("dimension", None),
        "created_at": ("created_at", ""),
    })


def discover_hgnn_versions(workspace: Workspace) -> list[tuple[str, dict[str, Any]]]:
    """(version id, lineage) of every HGNN vector file, oldest first."""
    return _discover(workspace, HGNN, {
        "graph_as_of": ("graph_as_of", ""),
        "text_version": ("text_version", ""),
        "hgnn_checkpoint": ("checkpoint", ""),
        "val_auc": ("val_auc", None),
        "val_mrr": ("val_mrr", None),
        "created_at": ("created_at", ""),
    })
