"""The Milvus side of serving: where the item index lives, what it is called, what it holds.

One collection per model version, `items_<model version>`: `item_id` (primary key),
`item_type` (top-level type, for filtered search) and `vector` (the item tower's output;
inner product = the model's score, see serving.index for vectors off unit length). Beside it,
in the workspace, `milvus/<collection>.json` (the manifest) records how it was built: model,
feature service, index type and parameters, item counts, and the recall measured against
exact search. The service reads the manifest and the collection only.

Embedded (default): milvus-lite in `<workdir>/milvus/index.db`, opened by one process at a
time. Scale-out: `python -m milvus_lite server --data-dir <workdir>/milvus/index.db --host
127.0.0.1 --port N` and `serving.milvus_uri: http://127.0.0.1:N` (STACK.md, milvus-lite).
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gfm.config import ServingConfig
from gfm.errors import ConfigError, GfmError, WorkspaceError
from gfm.files import atomic_write_text
from gfm.ports import free_local_port
from gfm.workspace import Workspace

if TYPE_CHECKING:
    from pymilvus import MilvusClient

logger = logging.getLogger(__name__)

MILVUS_DIR = "milvus"
EMBEDDED_DIR = "index.db"  # milvus-lite's data directory (a folder despite the suffix)
METRIC = "IP"
ID_FIELD, TYPE_FIELD, VECTOR_FIELD = "item_id", "item_type", "vector"
MAX_ID_LENGTH = 512
MAX_TOP_K = 16384  # Milvus' largest search limit
# Accepted and really used by milvus-lite (IVF_PQ, DISKANN, SCANN silently fall back to brute
# force there: STACK.md), so they are refused rather than mislabelled.
INDEX_TYPES = ("HNSW", "FLAT", "HNSW_SQ", "IVF_FLAT", "IVF_SQ8", "AUTOINDEX")


def collection_name(model_version: str) -> str:
    """`items_<version>`; Milvus allows letters, digits and underscores."""
    return "items_" + re.sub(r"[^0-9A-Za-z_]", "_", model_version)


def milvus_dir(workspace: Workspace) -> Path:
    return workspace.root / MILVUS_DIR


def embedded_path(workspace: Workspace) -> Path:
    return milvus_dir(workspace) / EMBEDDED_DIR


def resolve_uri(workspace: Workspace, serving: ServingConfig) -> str:
    return serving.milvus_uri.strip() or str(embedded_path(workspace))


def is_embedded(uri: str) -> bool:
    return "://" not in uri


def stored_uri(workspace: Workspace, uri: str) -> str:
    """The URI as the manifest records it: the embedded directory relative to the workspace
    (a copied workspace serves its own copy), a server's as it is."""
    if is_embedded(uri) and Path(uri).is_relative_to(workspace.root):
        return str(Path(uri).relative_to(workspace.root))
    return uri


def check_config(serving: ServingConfig) -> None:
    if serving.index_type.upper() not in INDEX_TYPES:
        raise ConfigError(f"serving.index_type {serving.index_type!r}: use one of "
                          f"{', '.join(INDEX_TYPES)}")
    for name in ("hnsw_m", "hnsw_ef_construction", "hnsw_ef", "ivf_nlist", "ivf_nprobe",
                 "workers", "torch_threads", "recall_queries",
                 "max_body_bytes", "keep_versions"):
        if getattr(serving, name) < 1:
            raise ConfigError(f"serving.{name} must be at least 1, got {getattr(serving, name)}")
    uri = serving.milvus_uri.strip()
    if uri and not re.match(r"^(https?|tcp|grpc)://", uri):
        raise ConfigError(f"serving.milvus_uri {uri!r}: give a server URI such as "
                          "http://127.0.0.1:19530, or leave it empty for the embedded file")


def build_params(serving: ServingConfig) -> dict[str, Any]:
    kind = serving.index_type.upper()
    if kind.startswith("HNSW"):
        return {"M": serving.hnsw_m, "efConstruction": serving.hnsw_ef_construction}
    if kind.startswith("IVF"):
        return {"nlist": serving.ivf_nlist}
    return {}


def search_params(manifest: dict[str, Any], limit: int) -> dict[str, Any]:
    """Query-time parameters of the manifest's index for a search of `limit` hits."""
    kind, params = manifest["index_type"], manifest["search_params"]
    if kind.startswith("HNSW"):
        return {"params": {"ef": max(int(params["ef"]), limit)}}  # HNSW needs ef >= limit
    if kind.startswith("IVF"):
        return {"params": {"nprobe": int(params["nprobe"])}}
    return {"params": {}}


def base_search_params(serving: ServingConfig) -> dict[str, Any]:
    kind = serving.index_type.upper()
    if kind.startswith("HNSW"):
        return {"ef": serving.hnsw_ef}
    if kind.startswith("IVF"):
        return {"nprobe": serving.ivf_nprobe}
    return {}


def quiet_logs() -> None:
    """milvus-lite logs a harmless grpc AllocTimestamp error (STACK.md), and pymilvus a
    harmless "failed to get mvccTs" warning per query iterator."""
    for name in ("grpc._server", "grpc", "milvus_lite", "pymilvus",
                 "pymilvus.client.iterator.query_iterator"):  # a mvccTs warning per read
        logging.getLogger(name).setLevel(logging.CRITICAL)


def connect(uri: str) -> MilvusClient:
    """A client on the embedded data directory or on a server; errors name the fix."""
    quiet_logs()
    from pymilvus import MilvusClient
    from pymilvus.exceptions import MilvusException

    if is_embedded(uri):
        Path(uri).parent.mkdir(parents=True, exist_ok=True)
    try:
        return MilvusClient(uri)
    except MilvusException as exc:
        if is_embedded(uri):
            raise GfmError(
                f"cannot open the embedded Milvus at {uri} ({exc.message}): another process "
                "(a running `gfm serve`, or `python -m milvus_lite server --data-dir` on it) "
                "probably holds it; stop that process, or point serving.milvus_uri at the "
                "server that holds it"
            ) from None
        raise GfmError(f"cannot reach the Milvus server at {uri} ({exc.message}): start it, e.g. "
                       f"`python -m milvus_lite server --data-dir DIR --host 127.0.0.1 --port N`, "
                       "or leave serving.milvus_uri empty for the embedded file") from None


def start_lite_server(data_dir: Path, log_path: Path, timeout_s: float = 60.0,
                      ) -> tuple[str, subprocess.Popen]:
    """`python -m milvus_lite server --data-dir data_dir` on a free loopback port (the
    scale-out mode), its output to log_path; (uri, process) once it answers. GfmError with the
    log's tail if it exits or does not answer within timeout_s."""
    from pymilvus import MilvusClient

    port = free_local_port()
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(data_dir),
             "--host", "127.0.0.1", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            MilvusClient(uri, timeout=2).close()
            return uri, process
        except Exception:  # not listening yet: pymilvus raises several kinds
            if process.poll() is not None or time.monotonic() > deadline:
                stop_process(process)
                raise GfmError("milvus_lite server did not start:\n"
                               f"{Path(log_path).read_text()[-3000:]}") from None
            time.sleep(0.3)


def stop_process(process: subprocess.Popen, timeout_s: float = 30.0) -> None:
    """Terminate a server process; kill it if it has not exited after timeout_s."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def manifest_path(workspace: Workspace, collection: str) -> Path:
    return milvus_dir(workspace) / f"{collection}.json"


def write_manifest(workspace: Workspace, manifest: dict[str, Any]) -> Path:
    path = manifest_path(workspace, manifest["collection"])
    return atomic_write_text(path, json.dumps(manifest, indent=2) + "\n")


def read_manifest(workspace: Workspace, collection: str) -> dict[str, Any]:
    path = manifest_path(workspace, collection)
    if not path.exists():
        raise WorkspaceError(
            f"no item index for the served model ({path} is missing): run `gfm index --workdir "
            f"{workspace.root}`"
        )
    return json.loads(path.read_text())
