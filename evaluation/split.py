"""The evaluation split of one timeline, loaded from the warehouse into numpy arrays.

DESIGN.md ("Time is explicit everywhere"): users are seen as of the cutoff snapshot, the hold-out
is [cutoff, cutoff + holdout_days). Only top-level items are recommended and evaluated; an
episode counts for its show (the marts already roll them up).

- candidates: every top-level item of `item_catalog` released before the hold-out ends (an item
  released inside the hold-out can be streamed there, so it must be rankable); all types.
- histories: `user_history` at snapshot_ts = cutoff, all types (the exclusion set).
- targets: `holdout_interactions`, per user (the type of a target is its item's type).
- training streams: `user_item_streams`, user x top-level item stream counts in
  [cutoff - history_days, cutoff), for popularity, ALS and EASE (the mart serving reads too).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gfm.errors import WorkspaceError
from gfm.timeline import Timeline
from gfm.workspace import Workspace

logger = logging.getLogger(__name__)

@dataclass(frozen=True)
class Ragged:
    """Variable-length rows of integers, CSR-style: row u is values[indptr[u]:indptr[u + 1]]."""

    indptr: np.ndarray  # (n_rows + 1,) int64
    values: np.ndarray  # (n_values,) int64

    @classmethod
    def from_lists(cls, rows: Sequence[Sequence[int]]) -> Ragged:
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        indptr = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        values = (np.concatenate([np.asarray(r, dtype=np.int64) for r in rows])
                  if lengths.sum() else np.zeros(0, dtype=np.int64))
        return cls(indptr, values)

    @classmethod
    def from_pairs(cls, rows: np.ndarray, values: np.ndarray, n_rows: int) -> Ragged:
        """Group (row, value) pairs by row, keeping the given order within a row."""
        rows = np.asarray(rows, dtype=np.int64)
        order = np.argsort(rows, kind="stable")
        counts = np.bincount(rows, minlength=n_rows)
        indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return cls(indptr, np.asarray(values, dtype=np.int64)[order])

    def __len__(self) -> int:
        return len(self.indptr) - 1

    def __getitem__(self, row: int) -> np.ndarray:
        return self.values[self.indptr[row]:self.indptr[row + 1]]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.indptr)

    def take(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The values of `rows` flattened, with the position in `rows` each one came from."""
        rows = np.asarray(rows, dtype=np.int64)
        starts = self.indptr[rows]
        lengths = self.indptr[rows + 1] - starts
        local = np.repeat(np.arange(len(rows)), lengths)
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return local, self.values[np.repeat(starts, lengths) + offsets]


def _empty_int() -> np.ndarray:
    return np.zeros(0, dtype=np.int64)


@dataclass
class EvalSplit:
    """Candidates, users, histories and hold-out targets of one timeline, as index arrays.

    Items and users are addressed by their position in `item_ids` / `user_ids`.
    """

    item_ids: np.ndarray  # (n_items,) str: top-level candidates
    item_types: np.ndarray  # (n_items,) str
    user_ids: np.ndarray  # (n_users,) str
    histories: Ragged  # per user: item indices of the cutoff snapshot (all types); empty = cold
    targets: Ragged  # per user: hold-out item indices (all types)
    # (n_items,) bool: created at/after the cutoff. Empty = none is new.
    is_new_item: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))
    # (n_items,) float: streams in the training window. Empty = all zero.
    item_popularity: np.ndarray = field(default_factory=lambda: np.zeros(0))
    # User x item stream counts in the training window (COO), for collaborative baselines.
    train_user: np.ndarray = field(default_factory=_empty_int)
    train_item: np.ndarray = field(default_factory=_empty_int)
    train_count: np.ndarray = field(default_factory=_empty_int)
    cutoff: dt.datetime | None = None
    holdout_end: dt.datetime | None = None
    history_days: int | None = None
    protocol: str = "global"  # timeline.protocol: global, or per_user (leave-last-N-out)
    # (n_items,) datetime64[s]: each item's release (NaT = unknown). Empty = unknown for all.
    item_created_at: np.ndarray = field(default_factory=lambda: np.zeros(0, "datetime64[s]"))
    sampled_from: int | None = None  # users with targets before with_sampled_users

    def __post_init__(self) -> None:
        self.item_ids = np.asarray(self.item_ids, dtype=object)
        self.item_types = np.asarray(self.item_types, dtype=object)
        self.user_ids = np.asarray(self.user_ids, dtype=object)
        n_items, n_users = len(self.item_ids), len(self.user_ids)
        if len(self.item_types) != n_items:
            raise ValueError("item_types must have one entry per item")
        if len(self.histories) != n_users or len(self.targets) != n_users:
            raise ValueError("histories and targets must have one row per user")
        self.is_new_item = np.asarray(self.is_new_item, dtype=bool)
        self.item_popularity = np.asarray(self.item_popularity, dtype=np.float64)
        if len(self.is_new_item) == 0:
            self.is_new_item = np.zeros(n_items, dtype=bool)
        if len(self.item_popularity) == 0:
            self.item_popularity = np.zeros(n_items, dtype=np.float64)
        if len(self.is_new_item) != n_items or len(self.item_popularity) != n_items:
            raise ValueError("is_new_item and item_popularity must have one entry per item")
        self.item_created_at = np.asarray(self.item_created_at, dtype="datetime64[s]")
        if len(self.item_created_at) == 0:
            self.item_created_at = np.full(n_items, np.datetime64("NaT"), "datetime64[s]")
        if len(self.item_created_at) != n_items:
            raise ValueError("item_created_at must have one entry per item")
        self.item_index = {item: i for i, item in enumerate(self.item_ids)}
        self.user_index = {user: u for u, user in enumerate(self.user_ids)}
        self.types = sorted(set(self.item_types))
        self.type_items = {t: np.flatnonzero(self.item_types == t) for t in self.types}
        # Position of each item inside its own type's candidate list.
        self.type_position = np.zeros(n_items, dtype=np.int64)
        for items in self.type_items.values():
            self.type_position[items] = np.arange(len(items))
        self.has_history = self.histories.lengths > 0

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    def eval_users(self) -> np.ndarray:
        """Users with at least one hold-out target (the only ones worth scoring)."""
        return np.flatnonzero(self.targets.lengths > 0)

    def with_sampled_users(self, n: int, seed: int = 0) -> EvalSplit:
        """The same split with hold-out targets kept for a seeded sample of n users only.

        Histories and training streams stay whole: models are built as before, fewer users are
        scored. For quick runs on big workspaces; the report records the sample.
        """
        users = self.eval_users()
        if n >= len(users):
            return self
        keep = np.zeros(self.n_users, dtype=bool)
        keep[np.random.default_rng(seed).choice(users, size=n, replace=False)] = True
        rows = np.repeat(np.arange(self.n_users), self.targets.lengths)
        kept = keep[rows]
        targets = Ragged.from_pairs(rows[kept], self.targets.values[kept], self.n_users)
        return dataclasses.replace(self, targets=targets, sampled_from=len(users))

    def summary(self) -> dict[str, Any]:
        """Counts and instants for the report (users per type are counted by the evaluation)."""
        def iso(value: dt.datetime | None) -> str | None:
            return value.isoformat() if value is not None else None

        return {
            "cutoff": iso(self.cutoff),
            "holdout_end": iso(self.holdout_end),
            "history_days": self.history_days,
            "protocol": self.protocol,
            "n_items": {t: int(len(self.type_items[t])) for t in self.types},
            "n_new_items": {t: int(self.is_new_item[self.type_items[t]].sum()) for t in self.types},
            "n_users_with_history": int(self.has_history.sum()),
            "n_users_with_targets": int(len(self.eval_users())),
            "sampled_from_n_users": self.sampled_from,
        }


def _query(workspace: Workspace, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
    import duckdb

    from transforms.warehouse import warehouse_query

    try:
        return warehouse_query(workspace, sql, list(params))
    except duckdb.CatalogException as exc:
        raise WorkspaceError(
            f"the warehouse {workspace.warehouse_path} lacks a table evaluation needs ({exc}): "
            "run `gfm transform` for this workspace first"
        ) from None


def release_instants(workspace: Workspace, item_ids: Sequence[str],
                     at: dt.datetime) -> list[dt.datetime]:
    """Per item, max(at, created_at): the instant its static features (text, metadata, the
    inductive HGNN vector) are read at. An item released after `at` is read as of its release;
    one without created_at, or not in item_catalog, as of `at`."""
    rows = _query(workspace, "select item_id, created_at from item_catalog "
                  "where created_at is not null and created_at > ?", [at])
    released = dict(rows)
    return [max(at, released.get(item, at)) for item in item_ids]


def load_split(workspace: Workspace, timeline: Timeline) -> EvalSplit:
    """Read the evaluation split of `timeline` from the workspace's warehouse (read-only)."""
    cutoff, holdout_end = timeline.cutoff, timeline.holdout_end
    built_for = _query(workspace, "select distinct as_of from item_catalog")
    if [row[0] for row in built_for] != [cutoff]:
        built = ", ".join(str(r[0]) for r in built_for) or "none"
        raise WorkspaceError(
            f"the warehouse was built for cutoff {built}, but this configuration's cutoff is "
            f"{cutoff}: rerun `gfm transform` with the same timeline settings before "
            "`gfm evaluate`"
        )

    items = _query(
        workspace,
        """
        select item_id, item_type, coalesce(created_at >= ?, false) as is_new, created_at
        from item_catalog
        where is_top_level and (created_at is null or created_at < ?)
        order by item_type, item_id
        """,
        [cutoff, holdout_end],
    )
    if not items:
        raise WorkspaceError(
            "item_catalog holds no top-level item released before the hold-out ends"
        )
    item_ids = [r[0] for r in items]
    item_index = {item: i for i, item in enumerate(item_ids)}

    histories = _query(
        workspace,
        """
        select user_id, item_ids from user_history
        where snapshot_ts = ?
        order by user_id, item_type
        """,
        [cutoff],
    )
    if not histories:
        raise WorkspaceError(
            f"user_history has no snapshot at the cutoff {cutoff}: rerun `gfm transform`"
        )
    targets = _query(
        workspace,
        """
        select user_id, item_id from holdout_interactions
        where first_event_ts >= ? and first_event_ts < ?
        order by user_id, first_event_ts, item_id
        """,
        [cutoff, holdout_end],
    )
    streams = _query(
        workspace,
        """
        select user_id, item_id, n_streams from user_item_streams
        where as_of = ?
        order by 1, 2
        """,
        [cutoff],
    )

    user_ids = sorted({r[0] for r in histories} | {r[0] for r in targets} | {r[0] for r in streams})
    user_index = {user: u for u, user in enumerate(user_ids)}

    def to_indices(kind: str, users: list[str], items: list[str]) -> tuple[np.ndarray, ...]:
        """(user indices, item indices, kept) of the rows naming a candidate item."""
        u = np.fromiter((user_index[x] for x in users), dtype=np.int64, count=len(users))
        i = np.fromiter((item_index.get(x, -1) for x in items), dtype=np.int64, count=len(items))
        kept = i >= 0
        if not kept.all():  # only an item released after the hold-out; it cannot be ranked
            logger.warning("%d %s row(s) name items that are not candidates: dropped",
                           int((~kept).sum()), kind)
        return u[kept], i[kept], kept

    n_users = len(user_ids)
    history_users = [user for user, ids in histories for _ in ids]
    history_items = [item for _, ids in histories for item in ids]
    h_users, h_items, _ = to_indices("history", history_users, history_items)
    t_users, t_items, _ = to_indices("hold-out", [r[0] for r in targets], [r[1] for r in targets])
    s_users, s_items, kept = to_indices("stream", [r[0] for r in streams], [r[1] for r in streams])
    s_counts = np.asarray([r[2] for r in streams], dtype=np.int64)[kept]
    split = EvalSplit(
        item_ids=np.asarray(item_ids, dtype=object),
        item_types=np.asarray([r[1] for r in items], dtype=object),
        user_ids=np.asarray(user_ids, dtype=object),
        histories=Ragged.from_pairs(h_users, h_items, n_users),
        targets=Ragged.from_pairs(t_users, t_items, n_users),
        is_new_item=np.asarray([r[2] for r in items], dtype=bool),
        item_created_at=np.asarray([np.datetime64(r[3], "s") if r[3] is not None
                                    else np.datetime64("NaT") for r in items], "datetime64[s]"),
        item_popularity=np.bincount(s_items, weights=s_counts, minlength=len(item_ids)),
        train_user=s_users,
        train_item=s_items,
        train_count=s_counts,
        cutoff=cutoff,
        holdout_end=holdout_end,
        history_days=timeline.history_days,
        protocol=timeline.protocol,
    )
    logger.info(
        "split at %s: %d candidate items (%s), %d users with history, %d with hold-out targets",
        cutoff, split.n_items, ", ".join(f"{len(v)} {t}" for t, v in split.type_items.items()),
        int(split.has_history.sum()), len(split.eval_users()),
    )
    return split
