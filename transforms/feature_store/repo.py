"""The workspace's Feast repository: rendered from the package's feature_repo/ template.

    <workdir>/feature_repo/
        feature_store.yaml      project and online store from gfm.yaml (`features` section)
        feature_repo.json       versions, file paths, lineage tags (written here, read by the .py)
        repo_spec.py entities.py data_sources.py feature_views.py feature_services.py  (copies)
        data/registry.db        Feast's registry
        data/online_store.db    the SQLite online store (when features.online_store = sqlite)

Every path in it is absolute or relative to the directory, so plain
`feast -c <workdir>/feature_repo apply|materialize|feature-views list` works with no
environment variables. Files other than the copies are left alone.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from gfm.config import FeatureStoreConfig
from gfm.errors import GfmError, WorkspaceError
from gfm.workspace import Workspace

if TYPE_CHECKING:
    from feast import FeatureStore

logger = logging.getLogger(__name__)

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "feature_repo"
REPO_MODULES = ("repo_spec.py", "entities.py", "data_sources.py", "feature_views.py",
                "feature_services.py")
SPEC_FILE = "feature_repo.json"
REPO_DIR_NAME = "feature_repo"


def repo_dir(workspace: Workspace) -> Path:
    return workspace.root / REPO_DIR_NAME


def load_spec(workspace: Workspace) -> dict[str, Any]:
    path = repo_dir(workspace) / SPEC_FILE
    if not path.exists():
        raise WorkspaceError(
            f"{path} does not exist: run `gfm features apply --workdir {workspace.root}` first"
        )
    return json.loads(path.read_text())


def _write(path: Path, text: str) -> None:
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    tmp.write_text(text)
    os.replace(tmp, path)


def feature_store_yaml(config: FeatureStoreConfig) -> str:
    data = yaml.safe_load((TEMPLATE_DIR / "feature_store.yaml").read_text())
    data["project"] = config.project
    if config.online_store == "redis":
        data["online_store"] = {"type": "redis",
                                "connection_string": config.redis_connection_string}
    else:
        data["online_store"] = {"type": "sqlite", "path": "data/online_store.db"}
    header = ("# Written by `gfm features apply` from feature_repo/feature_store.yaml and the "
              "`features`\n# section of gfm.yaml; edits here are overwritten.\n")
    return header + yaml.safe_dump(data, sort_keys=False)


def render_repo(workspace: Workspace, config: FeatureStoreConfig, spec: dict[str, Any]) -> Path:
    """Write the workspace's repository directory (idempotent); return it."""
    directory = repo_dir(workspace)
    (directory / "data").mkdir(parents=True, exist_ok=True)
    for name in REPO_MODULES:
        shutil.copyfile(TEMPLATE_DIR / name, directory / name)
    _write(directory / "feature_store.yaml", feature_store_yaml(config))
    _write(directory / SPEC_FILE, json.dumps(spec, indent=2) + "\n")
    return directory


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


def open_store(workspace: Workspace) -> "FeatureStore":
    """A FeatureStore on the workspace's repository (as `feast -c <repo>` opens it)."""
    from feast import FeatureStore

    directory = repo_dir(workspace)
    if not (directory / "feature_store.yaml").exists():
        raise WorkspaceError(
            f"{directory} holds no feature repository: run `gfm features apply --workdir "
            f"{workspace.root}` first"
        )
    return FeatureStore(repo_path=str(directory))


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
    from feast.repo_operations import apply_total_with_repo_instance, parse_repo
    from redis.exceptions import ConnectionError as RedisConnectionError

    directory = repo_dir(workspace)
    store = open_store(workspace)
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
