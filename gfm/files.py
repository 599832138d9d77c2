"""Atomic file writes: a reader sees the old file or the new one, never half of one.

Every writer of a shared artefact (versions.json, feature files, registry, manifests, the serving
pointer) goes through `atomic_write`: it writes a hidden file beside the target, then renames it
over the target (`os.replace`, atomic on one file system).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable
from pathlib import Path


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
