"""Atomic file writes, and the version files they leave.

Every writer of a shared artefact (versions.json, feature files, registry, manifests, the serving
pointer) goes through `atomic_write`: it writes a hidden file beside the target, then renames it
over the target (`os.replace`, atomic on one file system). A reader sees the old file or the new
one, never half of one.

A version of a feature file is `<version>.parquet` with a `<version>.json` sidecar (its lineage);
`version_files` lists the complete ones.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call write(tmp_path) on a hidden file beside `path`, then rename it over `path`.

    The folder is created if missing; the hidden file is removed if `write` fails.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique name per writer (not mkstemp: its files are private, 0600, and these are shared).
    tmp = path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def version_files(directory: Path) -> list[tuple[dict[str, Any], Path]]:
    """(sidecar json, parquet path) of every complete version in a feature directory, oldest
    first (by the sidecar's created_at, then name). A version without its parquet, or with an
    unreadable sidecar, is left out; hidden and `_` files are not versions."""
    found = []
    for meta_path in sorted(directory.glob("*.json")) if directory.exists() else []:
        if meta_path.name.startswith(("_", ".")):
            continue
        parquet = meta_path.with_suffix(".parquet")
        if not parquet.exists():
            continue
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError):
            logger.warning("skipping %s: not readable JSON", meta_path)
            continue
        found.append((meta, parquet))
    return sorted(found, key=lambda row: (str(row[0].get("created_at", "")), row[1].stem))
