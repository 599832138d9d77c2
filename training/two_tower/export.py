"""`gfm features training-set`: the two-tower's point-in-time training frame as one Parquet file.

The same frame `gfm train two-tower` trains on (`training_frame`): one row per example, its
user_id, item_id, event_timestamp and label, every feature of the FeatureService joined as of
that instant (vectors as list<float>), and the user's history lists item_ids_<type>. With
two_tower.history_set_examples the leave-one-out rows stamped at the cutoff come too;
`example_kind` tells them ("history_set") from the streams ("stream"). The file's schema
metadata (key `gfm.training_set`) says what made it: service, window, cutoff, config values.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from gfm.config import Config
from gfm.errors import GfmError
from gfm.timeline import Timeline
from gfm.workspace import Workspace

log = logging.getLogger(__name__)

METADATA_KEY = b"gfm.training_set"


@dataclass
class TrainingSetFile:
    path: Path
    rows: int
    columns: list[str]
    service: str
    start: dt.datetime
    end: dt.datetime
    seconds: float

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size


def write_training_set(
    workspace: Workspace, config: Config, timeline: Timeline, out: Path, *,
    service: str | None = None, start: dt.datetime | None = None, end: dt.datetime | None = None,
    force: bool = False,
) -> TrainingSetFile:
    """Write the training frame of examples in [start, end) (default: the training window)
    through `service` (default: the one `gfm train two-tower` would read) to `out`. The file
    appears whole or not at all: it is written beside and renamed into place."""
    from feature_store import core as feature_store
    from feature_store.training_set import example_window
    from training.two_tower.train import training_frame

    out = Path(out)
    if out.exists() and not force:
        raise GfmError(f"{out} exists: give --force to replace it, or another --out")
    if not out.parent.is_dir():
        raise GfmError(f"{out.parent} is not a directory: create it first")
    start, end = example_window(timeline, start, end)  # fails before any join
    service = service or feature_store.latest_feature_service(workspace)
    item_types = feature_store.service_spec(workspace, service)["item_types"]

    began = time.perf_counter()
    frame = training_frame(workspace, timeline, service, item_types, config.two_tower,
                           start=start, end=end)
    at_cutoff = (frame["event_timestamp"] == np.datetime64(timeline.cutoff)).to_numpy()
    frame.insert(4, "example_kind", np.where(at_cutoff, "history_set", "stream"))
    table = pa.Table.from_pandas(frame, preserve_index=False)
    described = {
        "feature_service": service,
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        "cutoff": timeline.cutoff.isoformat(),
        "item_types": item_types,
        "rows": len(frame),
        "history_set_examples": config.two_tower.history_set_examples,
        "max_examples": config.two_tower.max_examples,
        "seed": config.two_tower.seed,
        "workspace": str(workspace.root),
        "written_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    metadata = {**(table.schema.metadata or {}), METADATA_KEY: json.dumps(described).encode()}
    table = table.replace_schema_metadata(metadata)

    partial = out.with_name(f".{out.name}.partial")
    try:
        pq.write_table(table, partial, compression="zstd")
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    seconds = time.perf_counter() - began
    log.info("wrote %d rows to %s in %.1f s", len(frame), out, seconds)
    return TrainingSetFile(out, len(frame), table.column_names, service, start, end, seconds)


def read_description(path: Path) -> dict:
    """What made a training-set file (its `gfm.training_set` schema metadata)."""
    metadata = pq.read_schema(path).metadata or {}
    if METADATA_KEY not in metadata:
        raise GfmError(f"{path} is not a file written by `gfm features training-set`")
    return json.loads(metadata[METADATA_KEY])


def first_difference(a, b, atol: float = 1e-6) -> str | None:
    """Where two training-set frames (pandas) differ, or None when they hold the same columns
    and rows in the same order, float vectors equal up to `atol` (two stores, or two engines,
    give the same rows; vectors pass through float32 and back)."""
    import pandas as pd

    if list(a.columns) != list(b.columns):
        return f"columns {list(a.columns)} vs {list(b.columns)}"
    if len(a) != len(b):
        return f"{len(a)} rows vs {len(b)}"
    for column in a.columns:
        for row, (x, y) in enumerate(zip(a[column], b[column])):
            if isinstance(x, np.ndarray) and x.dtype.kind == "f":
                same = isinstance(y, np.ndarray) and np.allclose(x, y, atol=atol)
            elif isinstance(x, np.ndarray):
                same = isinstance(y, np.ndarray) and list(x) == list(y)
            else:
                same = bool((pd.isna(x) and pd.isna(y)) or x == y)
            if not same:
                return f"column {column}, row {row}: {x!r} vs {y!r}"
    return None
