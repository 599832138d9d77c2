"""Per-user hits of the primary (discovery) setting, saved beside metrics.json so that paired
comparisons (evaluation.stats.compare_models) can be made later without re-scoring, e.g. by
`make results` (bench/results.py). reports/user_hits.npz holds, per model and item type, the
counted users' ids and their 0/1 hits, as two arrays named "<model>/<type>/users" and
"<model>/<type>/hits"."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

FILE_NAME = "user_hits.npz"


def save_user_hits(path: Path, user_hits: Mapping[str, Mapping[str, tuple]],
                   user_ids: np.ndarray) -> Path:
    """user_hits: {model: {type: (split user indices, bool hits)}}; user_ids maps an index to
    the user's id (split.user_ids)."""
    user_ids = np.asarray(user_ids).astype(str)  # split.user_ids holds Python objects
    arrays = {}
    for model, per_type in user_hits.items():
        for item_type, (users, hits) in per_type.items():
            arrays[f"{model}/{item_type}/users"] = user_ids[np.asarray(users, dtype=np.int64)]
            arrays[f"{model}/{item_type}/hits"] = np.asarray(hits, dtype=bool)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        np.savez_compressed(out, **arrays)
    return path


def load_user_hits(path: Path) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """{model: {type: (user ids, bool hits)}}, as compare_models takes them."""
    out: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    with np.load(path, allow_pickle=False) as data:
        for key in data.files:
            model, item_type, kind = key.rsplit("/", 2)
            if kind == "users":
                out.setdefault(model, {})[item_type] = (
                    data[key], data[f"{model}/{item_type}/hits"].astype(bool))
    return out
