"""From Feast frames to the towers' input tensors; vocabularies of the categorical features.

The same encoders serve training (point-in-time frames), offline evaluation and the online
service (features read from the online store), so all three see identical inputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

ITEM_CATEGORICALS = ("item_type", "language", "genre")
USER_CATEGORICALS = ("country", "age_bucket")
# An item's recent popularity at a daily snapshot (feature view item_popularity_daily), input of
# the "recent" popularity prior; each enters as log1p, and a missing value (an item released
# after the last snapshot) as 0: no listeners yet, released today.
POPULARITY_FEATURES = ("listener_days_7d", "listener_days_28d", "days_since_release")


@dataclass
class Vocabulary:
    """Value -> code per categorical feature; code 0 is unknown or missing."""

    codes: dict[str, dict[str, int]] = field(default_factory=dict)

    @classmethod
    def fit(cls, frames: list[pd.DataFrame], names: tuple[str, ...]) -> "Vocabulary":
        codes = {}
        for name in names:
            values = set()
            for frame in frames:
                if name in frame:
                    values.update(v for v in frame[name].dropna().unique() if v != "")
            codes[name] = {v: i + 1 for i, v in enumerate(sorted(values))}
        return cls(codes)

    def sizes(self) -> dict[str, int]:
        return {name: len(values) + 1 for name, values in self.codes.items()}

    def encode(self, frame: pd.DataFrame | dict) -> dict[str, torch.Tensor]:
        out = {}
        for name, mapping in self.codes.items():
            values = frame[name] if name in frame else [None] * _length(frame)
            out[name] = torch.tensor([mapping.get(v, 0) for v in values], dtype=torch.long)
        return out


def _length(frame: pd.DataFrame | dict) -> int:
    return len(frame) if isinstance(frame, pd.DataFrame) else len(next(iter(frame.values())))


def stack_vectors(values, dim: int) -> np.ndarray:
    """(n, dim) float32 from a column of arrays; zeros where a value is missing."""
    out = np.zeros((len(values), dim), dtype=np.float32)
    for i, v in enumerate(values):
        if v is not None and not (isinstance(v, float) and np.isnan(v)):
            out[i] = np.asarray(v, dtype=np.float32)
    return out


def leave_one_out(frame: pd.DataFrame, item_types: list[str]) -> pd.DataFrame:
    """Each row's user features without the row's own item: it leaves the history list of its
    type, the counts, and the HGNN means (n * mean - vector) / (n - 1); a mean over nothing is
    missing, as for a user without history. For examples whose item is in the user's snapshot
    (training.two_tower history_set_examples), so that no row sees its own target."""
    out = frame.copy()
    target_vectors = out["hgnn_embedding"]
    for t in item_types:
        ids_column, n_column, avg_column = f"item_ids_{t}", f"n_items_{t}", f"avg_hgnn_{t}"
        of_type = (out["item_type"] == t).to_numpy()
        if ids_column in out:
            out[ids_column] = [
                [i for i in ids if i != item] if (hit and ids is not None) else ids
                for ids, item, hit in zip(out[ids_column], out["item_id"], of_type)]
        if n_column in out and avg_column in out:
            out[n_column], out[avg_column] = _without(out[n_column], out[avg_column],
                                                      target_vectors, of_type)
    if "n_items_all" in out and "avg_hgnn_all" in out:
        every = np.ones(len(out), dtype=bool)
        out["n_items_all"], out["avg_hgnn_all"] = _without(out["n_items_all"],
                                                           out["avg_hgnn_all"], target_vectors,
                                                           every, empty_is_missing=True)
    return out


def _without(counts: pd.Series, means: pd.Series, vectors: pd.Series, rows: np.ndarray,
             empty_is_missing: bool = False) -> tuple[list, list]:
    """(counts, means) with `vectors` taken out of the means of `rows` (where both exist)."""
    new_counts, new_means = list(counts), list(means)
    for r in np.flatnonzero(rows):
        n, mean, vector = new_counts[r], new_means[r], vectors.iloc[r]
        if not _is_list(mean) or not _is_list(vector) or not n or pd.isna(n) or n < 1:
            continue
        n = int(n)
        new_counts[r] = n - 1
        if n == 1:
            new_means[r] = None if empty_is_missing else np.zeros_like(
                np.asarray(mean, dtype=np.float32))
        else:
            new_means[r] = ((n * np.asarray(mean, dtype=np.float32)
                             - np.asarray(vector, dtype=np.float32)) / (n - 1))
    return new_counts, new_means


@dataclass
class IdLists:
    """Per item type, CSR lists of item-id indices (0 = unknown): row r's type-j ids are
    values[j][indptr[j][r]:indptr[j][r + 1]], in the frame's order (latest first)."""

    indptr: list[np.ndarray]  # per type (n + 1,) int64
    values: list[np.ndarray]  # per type (n_values,) int64

    @classmethod
    def empty(cls, n: int, n_types: int) -> "IdLists":
        return cls([np.zeros(n + 1, np.int64) for _ in range(n_types)],
                   [np.zeros(0, np.int64) for _ in range(n_types)])

    @classmethod
    def from_frame(cls, frame: pd.DataFrame | dict, item_types: list[str],
                   id_index: dict[str, int]) -> "IdLists":
        """From the columns item_ids_<type> (lists of ids, None when the user had none)."""
        n = _length(frame)
        indptr, values = [], []
        for t in item_types:
            column = frame[f"item_ids_{t}"] if f"item_ids_{t}" in frame else [None] * n
            lists = [[id_index.get(i, 0) for i in v] if _is_list(v) else [] for v in column]
            lengths = np.fromiter((len(x) for x in lists), dtype=np.int64, count=n)
            indptr.append(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))
            values.append(np.fromiter((i for x in lists for i in x), dtype=np.int64,
                                      count=int(lengths.sum())))
        return cls(indptr, values)

    def __len__(self) -> int:
        return len(self.indptr[0]) - 1 if self.indptr else 0

    def take(self, rows: np.ndarray) -> "IdLists":
        rows = np.asarray(rows, dtype=np.int64)
        indptr, values = [], []
        for p, v in zip(self.indptr, self.values):
            starts, lengths = p[rows], p[rows + 1] - p[rows]
            offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
            flat = np.arange(offsets[-1]) - np.repeat(offsets[:-1], lengths) + np.repeat(starts,
                                                                                         lengths)
            indptr.append(offsets)
            values.append(v[flat])
        return IdLists(indptr, values)

    def emptied(self, rows: np.ndarray) -> "IdLists":
        """The same lists with those of `rows` (bool, (n,)) emptied."""
        indptr, values = [], []
        for p, v in zip(self.indptr, self.values):
            lengths = np.diff(p)
            keep = np.repeat(~rows, lengths)
            indptr.append(np.concatenate([[0], np.cumsum(np.where(rows, 0, lengths))])
                          .astype(np.int64))
            values.append(v[keep])
        return IdLists(indptr, values)

    def counts(self) -> np.ndarray:
        """(n, n_types) float32 list lengths."""
        return np.stack([np.diff(p) for p in self.indptr], axis=1).astype(np.float32)


def _is_list(value) -> bool:
    return value is not None and not (isinstance(value, float) and np.isnan(value))


def popularity_inputs(frame: pd.DataFrame | dict) -> np.ndarray:
    """(n, len(POPULARITY_FEATURES)) float32 log1p of each feature; 0 where it is missing."""
    n = _length(frame)
    out = np.zeros((n, len(POPULARITY_FEATURES)), dtype=np.float32)
    for j, name in enumerate(POPULARITY_FEATURES):
        if name in frame:
            values = pd.to_numeric(pd.Series(list(frame[name])), errors="coerce").to_numpy(
                dtype=np.float64)
            out[:, j] = np.log1p(np.clip(np.nan_to_num(values), 0, None))
    return out


@dataclass
class ItemInputs:
    hgnn: torch.Tensor  # (n, hgnn_dim)
    text: torch.Tensor  # (n, text_dim)
    codes: dict[str, torch.Tensor]  # (n,) each
    ids: torch.Tensor  # (n,) learned-id index, 0 = unknown
    popularity: torch.Tensor  # (n, len(POPULARITY_FEATURES)) popularity_inputs

    def take(self, index: torch.Tensor) -> "ItemInputs":
        return ItemInputs(self.hgnn[index], self.text[index],
                          {k: v[index] for k, v in self.codes.items()}, self.ids[index],
                          self.popularity[index])

    def to(self, device: torch.device | str) -> "ItemInputs":
        return ItemInputs(self.hgnn.to(device), self.text.to(device),
                          {k: v.to(device) for k, v in self.codes.items()}, self.ids.to(device),
                          self.popularity.to(device))

    def __len__(self) -> int:
        return len(self.hgnn)


@dataclass
class UserInputs:
    avg_by_type: torch.Tensor  # (n, n_types, hgnn_dim)
    n_by_type: torch.Tensor  # (n, n_types)
    avg_all: torch.Tensor  # (n, hgnn_dim)
    codes: dict[str, torch.Tensor]
    history: IdLists  # per type, the history's learned-id indices, latest first

    def take(self, index: torch.Tensor) -> "UserInputs":
        return UserInputs(self.avg_by_type[index], self.n_by_type[index], self.avg_all[index],
                          {k: v[index] for k, v in self.codes.items()},
                          self.history.take(index.cpu().numpy()))

    def to(self, device: torch.device | str) -> "UserInputs":
        """The tensors on `device`; the history id lists stay numpy (the model moves them)."""
        return UserInputs(self.avg_by_type.to(device), self.n_by_type.to(device),
                          self.avg_all.to(device), {k: v.to(device) for k, v in self.codes.items()},
                          self.history)

    def __len__(self) -> int:
        return len(self.avg_all)

    def without_demographics(self, rows: np.ndarray) -> "UserInputs":
        """These users with every categorical feature unknown (code 0; bool `rows`, (n,))."""
        keep = torch.from_numpy(~rows)
        return UserInputs(self.avg_by_type, self.n_by_type, self.avg_all,
                          {k: v * keep.to(v.dtype) for k, v in self.codes.items()}, self.history)

    def without_history(self, rows: np.ndarray) -> "UserInputs":
        """These users as if they had no history yet (bool `rows`, (n,)): a cold user."""
        keep = torch.from_numpy(~rows).to(self.avg_all.dtype)
        return UserInputs(self.avg_by_type * keep[:, None, None], self.n_by_type * keep[:, None],
                          self.avg_all * keep[:, None], self.codes, self.history.emptied(rows))


def item_inputs(frame: pd.DataFrame | dict, vocab: Vocabulary, hgnn_dim: int,
                text_dim: int, id_index: dict[str, int] | None = None) -> ItemInputs:
    """`id_index`: item id -> learned-id index (None: the model has no id embeddings)."""
    n = _length(frame)
    ids = (np.fromiter((id_index.get(i, 0) for i in frame["item_id"]), dtype=np.int64, count=n)
           if id_index else np.zeros(n, dtype=np.int64))
    return ItemInputs(
        torch.from_numpy(stack_vectors(frame["hgnn_embedding"], hgnn_dim)),
        torch.from_numpy(stack_vectors(frame["text_embedding"], text_dim)),
        vocab.encode(frame),
        torch.from_numpy(ids),
        torch.from_numpy(popularity_inputs(frame)),
    )


def user_inputs(frame: pd.DataFrame | dict, vocab: Vocabulary, item_types: list[str],
                hgnn_dim: int, id_index: dict[str, int] | None = None) -> UserInputs:
    """Per-type means and counts, and the history id lists (columns item_ids_<type>, read only
    with an `id_index`); a user with no snapshot yet gets zeros and empty lists (cold start)."""
    n = _length(frame)
    avg = np.zeros((n, len(item_types), hgnn_dim), dtype=np.float32)
    counts = np.zeros((n, len(item_types)), dtype=np.float32)
    for j, t in enumerate(item_types):
        if f"avg_hgnn_{t}" in frame:
            avg[:, j] = stack_vectors(frame[f"avg_hgnn_{t}"], hgnn_dim)
        if f"n_items_{t}" in frame:
            counts[:, j] = np.nan_to_num(np.asarray(frame[f"n_items_{t}"], dtype=np.float64))
    avg_all = stack_vectors(frame["avg_hgnn_all"], hgnn_dim) if "avg_hgnn_all" in frame else (
        np.zeros((n, hgnn_dim), dtype=np.float32))
    history = (IdLists.from_frame(frame, item_types, id_index) if id_index
               else IdLists.empty(n, len(item_types)))
    return UserInputs(torch.from_numpy(avg), torch.from_numpy(counts),
                      torch.from_numpy(avg_all), vocab.encode(frame), history)
