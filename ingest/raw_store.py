"""Write raw/ atomically: stage a complete directory, then swap it in.

A crash or a refused input leaves the previous raw/ untouched; a rerun starts from a sound state.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gfm.errors import WorkspaceError
from gfm.workspace import Workspace

MANIFEST = "_manifest.json"


def read_manifest(workspace: Workspace) -> dict[str, Any] | None:
    path = workspace.raw_dir / MANIFEST
    if not path.exists():
        return None
    return json.loads(path.read_text())


def guard_existing(workspace: Workspace, manifest: dict[str, Any], overwrite: bool) -> bool:
    """True when raw/ already holds exactly this input (nothing to do).

    Refuses to replace different raw data unless `overwrite`, so nobody loses a workspace by
    accident.
    """
    if not workspace.raw_dir.exists():
        return False
    existing = read_manifest(workspace)
    if existing == manifest and workspace.has_raw_data():
        return True
    if not overwrite:
        what = f"({existing.get('source')})" if existing else "(unknown origin)"
        raise WorkspaceError(
            f"{workspace.raw_dir} already holds other raw data {what}; pass --overwrite to "
            "replace it, or choose another --workdir"
        )
    return False


@contextlib.contextmanager
def staged_raw_dir(workspace: Workspace, manifest: dict[str, Any]) -> Iterator[Path]:
    """Yield an empty staging directory; on success it becomes raw/ with its manifest."""
    workspace.ensure()
    staging = workspace.root / f".raw.staging-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        old = workspace.root / f".raw.old-{os.getpid()}"
        if workspace.raw_dir.exists():
            workspace.raw_dir.rename(old)
        staging.rename(workspace.raw_dir)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
