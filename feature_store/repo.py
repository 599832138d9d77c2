"""The workspace's Feast repository: rendered from the package's feature_repo/ template.

    <workdir>/feature_repo/
        feature_store.yaml      project and online store from gfm.yaml (`features` section)
        feature_repo.json       versions, file paths, lineage tags (written here, read by the .py)
        repo_spec.py entities.py data_sources.py feature_views.py feature_services.py  (copies)
        registered.py           generated: every versioned source, view and service, one
                                assignment each (what a reader, and `feast apply`, sees)
        data/registry.db        Feast's registry
        data/online_store.db    the SQLite online store (when features.online_store = sqlite)

Every path in it is relative, to the directory (registry, online store) or to the workspace
(feature_repo.json's parquet files), so plain `feast -c <workdir>/feature_repo
apply|materialize|feature-views list` works with no environment variables, and a copied or
moved workspace is self-contained. Files other than the copies are left alone.

Feast's registry itself stores absolute paths: each FileSource's or SparkSource's (the offline
store reads it as it is) and each SQLite online table's ("infra" objects, which `feast apply` drops
when it thinks they are gone). In a copied workspace they name the original's files, so:
- `feast_apply` first points the registry's SQLite tables at this repository's online store,
  so that an apply in a copy never drops the original's tables;
- `open_store` re-applies the repository when the registry's sources lie outside the
  workspace (it was copied or moved), so that a copy reads its own parquet files.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import logging
import os
import shutil
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from gfm.config import Config
from gfm.errors import GfmError, WorkspaceError
from gfm.files import atomic_write_bytes, atomic_write_text
from gfm.paths import project_dir
from gfm.spark import require_spark
from gfm.workspace import Workspace

if TYPE_CHECKING:
    from feast import FeatureStore

logger = logging.getLogger(__name__)

REPO_MODULES = ("repo_spec.py", "entities.py", "data_sources.py", "feature_views.py",
                "feature_services.py")
REGISTERED_MODULE = "registered.py"
SPEC_FILE = "feature_repo.json"
# The views of feature_views.py itself: one each, never versioned.
UNVERSIONED_VIEWS = ("item_metadata", "user_metadata", "user_history",
                     "item_popularity_daily")
# feature_repo.json kind -> (source builder, view builder), both in the template modules.
VERSIONED_BUILDERS = {"item_text_embedding": ("text_source", "text_view"),
                      "item_hgnn_embedding": ("hgnn_source", "hgnn_view"),
                      "user_avg_hgnn": ("user_avg_source", "user_avg_view")}
REPO_DIR_NAME = "feature_repo"
LOCK_FILE = "data/.gfm-apply.lock"


def repo_dir(workspace: Workspace) -> Path:
    return workspace.root / REPO_DIR_NAME


def load_spec(workspace: Workspace) -> dict[str, Any]:
    """feature_repo.json with its file paths made absolute (as the repository's
    repo_spec.py reads it)."""
    path = repo_dir(workspace) / SPEC_FILE
    if not path.exists():
        raise WorkspaceError(
            f"{path} does not exist: run `gfm features apply --workdir {workspace.root}` first"
        )
    spec = json.loads(path.read_text())
    spec["tables"] = {name: str(workspace.root / p) for name, p in spec["tables"].items()}
    for entries in spec.values():
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and "path" in entry:
                entry["path"] = str(workspace.root / entry["path"])
    return spec


def feature_store_yaml(config: Config) -> str:
    data = yaml.safe_load((project_dir("feature_repo") / "feature_store.yaml").read_text())
    features = config.features
    data["project"] = features.project
    if features.online_store == "redis":
        data["online_store"] = {"type": "redis",
                                "connection_string": features.redis_connection_string}
    else:
        data["online_store"] = {"type": "sqlite", "path": "data/online_store.db"}
    if features.offline_store == "spark":
        require_spark("features.offline_store")
        data["offline_store"] = {"type": "spark", "spark_conf": spark_conf(config)}
    header = ("# Written by `gfm features apply` from feature_repo/feature_store.yaml and the "
              "`features`\n# section of gfm.yaml; edits here are overwritten.\n")
    return header + yaml.safe_dump(data, sort_keys=False)


def registered_module(spec: dict[str, Any]) -> str:
    """registered.py: one assignment per versioned source, view and service of `spec`
    (feature_repo.json), so that the repository's files name everything it registers."""
    lines = ['"""Every versioned source, view and service of this feature repository, one '
             'assignment each.',
             "",
             "Generated by `gfm features apply` from feature_repo.json; edits are overwritten.",
             '"""',
             "",
             "from data_sources import "
             + ", ".join(sorted(b[0] for b in VERSIONED_BUILDERS.values())),
             "from feature_services import feature_service",
             "from feature_views import (",
             *[f"    {name}," for name in sorted(
                 [b[1] for b in VERSIONED_BUILDERS.values()] + list(UNVERSIONED_VIEWS))],
             ")",
             "from repo_spec import entry"]
    for kind, (source_builder, view_builder) in VERSIONED_BUILDERS.items():
        for version in spec[kind]:
            name = version["name"]
            key = f"entry({json.dumps(kind)}, {json.dumps(name)})"
            lines += ["", f"{name}_source = {source_builder}({key})",
                      f"{name} = {view_builder}({key}, {name}_source)"]
    for service in spec["feature_services"]:
        lines += ["", f"{service['name']} = feature_service(entry(\"feature_services\", "
                      f"{json.dumps(service['name'])}), ["]
        for view in service["views"]:
            selected = f"[{json.dumps(view['features'])}]" if view.get("features") else ""
            lines.append(f"    {view['view']}{selected},")
        lines.append("])")
    return "\n".join(lines) + "\n"


def _copy_modules(directory: Path) -> None:
    """The template modules, and registered.py from the directory's feature_repo.json."""
    templates = project_dir("feature_repo")
    for name in REPO_MODULES:
        shutil.copyfile(templates / name, directory / name)
    spec = json.loads((directory / SPEC_FILE).read_text())
    atomic_write_text(directory / REGISTERED_MODULE, registered_module(spec))


def spark_conf(config: Config) -> dict[str, str]:
    """The SparkSession of Feast's Spark offline store (features.offline_store: spark): the
    warehouse section's Spark settings, naive timestamps read as UTC."""
    warehouse = config.warehouse
    return {
        "spark.master": warehouse.spark_master,
        "spark.driver.memory": warehouse.spark_driver_memory,
        "spark.executor.memory": warehouse.spark_executor_memory,
        "spark.sql.shuffle.partitions": str(warehouse.spark_shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.pyspark.fallback.enabled": "true",
        "spark.sql.parser.quotedRegexColumnNames": "true",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
    }


def render_repo(workspace: Workspace, config: Config, spec: dict[str, Any]) -> Path:
    """Write the workspace's repository directory (idempotent); return it. `spec` holds paths
    relative to the workspace."""
    directory = repo_dir(workspace)
    (directory / "data").mkdir(parents=True, exist_ok=True)
    atomic_write_text(directory / "feature_store.yaml", feature_store_yaml(config))
    atomic_write_text(directory / SPEC_FILE, json.dumps(spec, indent=2) + "\n")
    _copy_modules(directory)
    return directory


# ---------------------------------------------------------------------------------------------
# The registry's absolute paths (see the module docstring)


def _registry_settings(directory: Path) -> tuple[str, Path, Path | None]:
    """(project, registry file, SQLite online store file or None) of the repository, paths as
    Feast resolves them: relative to the repository directory."""
    data = yaml.safe_load((directory / "feature_store.yaml").read_text()) or {}
    registry = data.get("registry", "data/registry.db")
    registry = registry.get("path") if isinstance(registry, dict) else registry
    online = data.get("online_store") or {}
    online_path = None
    if str(online.get("type", "sqlite")) == "sqlite":
        online_path = directory / str(online.get("path", "data/online_store.db"))
    return str(data.get("project", "")), directory / str(registry), online_path


def _read_registry(path: Path):
    from feast.protos.feast.core.Registry_pb2 import Registry as RegistryProto

    if not path.exists():
        return None
    proto = RegistryProto()
    proto.ParseFromString(path.read_bytes())
    return proto


def _adopt_online_tables(directory: Path) -> int:
    """Point every SQLite online table the registry records at this repository's online store
    (a copied registry names the original's file, and `feast apply` drops a table it thinks
    is gone: the original's). Returns how many were re-pointed."""
    _, registry_path, online_path = _registry_settings(directory)
    proto = _read_registry(registry_path)
    if proto is None or online_path is None:
        return 0
    ours = str(online_path)  # what Feast computes: repo_path / path
    moved = 0
    for infra_object in proto.infra.infra_objects:
        if infra_object.HasField("sqlite_table") and infra_object.sqlite_table.path != ours:
            infra_object.sqlite_table.path = ours
            moved += 1
    if moved:
        atomic_write_bytes(registry_path, proto.SerializeToString())
        logger.info("the registry's %d SQLite online table(s) now point at %s", moved, ours)
    return moved


def foreign_sources(workspace: Workspace) -> list[str]:
    """The registry's file sources outside the workspace (it was applied elsewhere: the
    workspace was copied or moved)."""
    directory = repo_dir(workspace)
    if not (directory / "feature_store.yaml").exists():
        return []
    project, registry_path, _ = _registry_settings(directory)
    proto = _read_registry(registry_path)
    if proto is None:
        return []
    uris = [_source_path(source) for source in proto.data_sources if source.project == project]
    uris += [_source_path(view.spec.batch_source) for view in proto.feature_views
             if view.spec.project == project]
    return sorted({u for u in uris if u and Path(u).is_absolute()
                   and not Path(u).is_relative_to(workspace.root)})


def _source_path(source) -> str:
    """The file a registry DataSource proto reads: a FileSource's uri or a SparkSource's path."""
    return source.file_options.uri or source.spark_options.path


def _localize_spec(workspace: Workspace) -> None:
    """Make the file paths of a feature_repo.json written with absolute paths (before
    workspaces were movable) relative to the workspace they were written for."""
    path = repo_dir(workspace) / SPEC_FILE
    spec = json.loads(path.read_text())
    old = Path(spec["tables"]["item_metadata"])
    if not old.is_absolute():
        return
    old_root = old.parent.parent  # <root>/features/item_metadata.parquet

    def local(value: str) -> str:
        p = Path(value)
        return str(p.relative_to(old_root)) if p.is_absolute() and p.is_relative_to(old_root) \
            else value

    spec["tables"] = {name: local(p) for name, p in spec["tables"].items()}
    for entries in spec.values():
        for entry in entries if isinstance(entries, list) else []:
            if isinstance(entry, dict) and "path" in entry:
                entry["path"] = local(entry["path"])
    atomic_write_text(path, json.dumps(spec, indent=2) + "\n")


@contextlib.contextmanager
def _apply_lock(directory: Path) -> Iterator[None]:
    """One apply at a time per repository (several server workers may open a moved one)."""
    (directory / "data").mkdir(parents=True, exist_ok=True)
    with open(directory / LOCK_FILE, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def relocate(workspace: Workspace) -> bool:
    """If the registry was applied at another path (a copied or moved workspace), re-apply the
    repository here, so that it reads this workspace's files; True if it did."""
    directory = repo_dir(workspace)
    if not foreign_sources(workspace):
        return False
    with _apply_lock(directory):
        foreign = foreign_sources(workspace)
        if not foreign:
            return False  # another process did it meanwhile
        logger.warning("the Feast registry of %s reads files of another workspace (%s: it was "
                       "copied or moved): re-applying it to read this workspace's own",
                       directory, foreign[0])
        try:
            _localize_spec(workspace)
            _copy_modules(directory)
            _feast_apply(workspace)
        except PermissionError as exc:
            raise WorkspaceError(
                f"{directory} was copied from another workspace and must be re-applied to read "
                f"its own files, but it is not writable ({exc}): make it writable, or run "
                f"`gfm features apply --workdir {workspace.root}` where it is"
            ) from None
    return True


# ---------------------------------------------------------------------------------------------
# Feast, in-process


@contextlib.contextmanager
def _repo_imports(directory: Path) -> Iterator[None]:
    """What `feast apply` needs to import a repository, undone afterwards.

    Feast imports the repository's files as top-level modules named after them (`entities`,
    `feature_views`, ...) relative to the working directory. Within one process (tests,
    notebooks) a second workspace, or a second apply after versions changed, would otherwise
    get the first import back from sys.modules, or the first repository from sys.path.
    """
    names = {Path(name).stem for name in REPO_MODULES} | {p.stem for p in directory.glob("*.py")}

    def purge() -> None:
        for name in names:
            module = sys.modules.get(name)
            file = getattr(module, "__file__", None)
            if file and (Path(file).parent / "feature_store.yaml").exists():
                del sys.modules[name]

    cwd, path, no_bytecode = os.getcwd(), list(sys.path), sys.dont_write_bytecode
    purge()
    os.chdir(directory)
    sys.path.insert(0, str(directory))
    sys.dont_write_bytecode = True
    try:
        yield
    finally:
        os.chdir(cwd)
        sys.path[:] = path
        sys.dont_write_bytecode = no_bytecode
        purge()


def _store(workspace: Workspace) -> "FeatureStore":
    from feast import FeatureStore

    # features.offline_store spark: Feast warns on every call that its Spark store is "alpha";
    # what this project relies on of it is tested (tests/integration/test_spark.py).
    warnings.filterwarnings("ignore", message="The spark .* is an experimental feature",
                            category=RuntimeWarning)
    directory = repo_dir(workspace)
    if not (directory / "feature_store.yaml").exists():
        raise WorkspaceError(
            f"{directory} holds no feature repository: run `gfm features apply --workdir "
            f"{workspace.root}` first"
        )
    return FeatureStore(repo_path=str(directory))


def open_store(workspace: Workspace) -> "FeatureStore":
    """A FeatureStore on the workspace's repository (as `feast -c <repo>` opens it), re-applied
    first if the workspace was copied or moved."""
    _store(workspace)  # says what to run if there is no repository
    relocate(workspace)
    return _store(workspace)


def online_store_unreachable(store: "FeatureStore", exc: Exception) -> GfmError:
    return GfmError(
        f"the Redis online store is unreachable ({exc}): start the server at "
        f"{store.config.online_store.connection_string} or fix "
        "features.redis_connection_string in gfm.yaml (or set features.online_store: sqlite), "
        "then run `gfm features apply` again"
    )


def feast_apply(workspace: Workspace) -> list[str]:
    """`feast apply` on the rendered repository: registers what the .py files define and
    removes from the registry and the online store what they no longer define. Returns
    Feast's report lines."""
    with _apply_lock(repo_dir(workspace)):
        return _feast_apply(workspace)


def _feast_apply(workspace: Workspace) -> list[str]:
    from feast.repo_operations import apply_total_with_repo_instance, parse_repo
    from redis.exceptions import ConnectionError as RedisConnectionError

    directory = repo_dir(workspace)
    _adopt_online_tables(directory)  # never drop another workspace's tables
    store = _store(workspace)
    report = io.StringIO()
    with _repo_imports(directory), contextlib.redirect_stdout(report):
        contents = parse_repo(directory)
        if len(contents.projects) != 1:
            raise GfmError(f"{directory} must define exactly one Feast Project")
        try:
            apply_total_with_repo_instance(
                store, contents.projects[0].name, store.registry, contents,
                skip_source_validation=False,
            )
        except RedisConnectionError as exc:
            raise online_store_unreachable(store, exc) from None
    lines = [line for line in report.getvalue().splitlines() if line.strip()]
    for line in lines:
        logger.debug("feast: %s", line)
    return lines
