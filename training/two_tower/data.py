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


@dataclass
class ItemInputs:
    hgnn: torch.Tensor  # (n, hgnn_dim)
    text: torch.Tensor  # (n, text_dim)
    codes: dict[str, torch.Tensor]  # (n,) each

    def take(self, index: torch.Tensor) -> "ItemInputs":
        return ItemInputs(self.hgnn[index], self.text[index],
                          {k: v[index] for k, v in self.codes.items()})

    def __len__(self) -> int:
        return len(self.hgnn)


@dataclass
class UserInputs:
    avg_by_type: torch.Tensor  # (n, n_types, hgnn_dim)
    n_by_type: torch.Tensor  # (n, n_types)
    avg_all: torch.Tensor  # (n, hgnn_dim)
    codes: dict[str, torch.Tensor]

    def take(self, index: torch.Tensor) -> "UserInputs":
        return UserInputs(self.avg_by_type[index], self.n_by_type[index], self.avg_all[index],
                          {k: v[index] for k, v in self.codes.items()})

    def __len__(self) -> int:
        return len(self.avg_all)


def item_inputs(frame: pd.DataFrame | dict, vocab: Vocabulary, hgnn_dim: int,
                text_dim: int) -> ItemInputs:
    return ItemInputs(
        torch.from_numpy(stack_vectors(frame["hgnn_embedding"], hgnn_dim)),
        torch.from_numpy(stack_vectors(frame["text_embedding"], text_dim)),
        vocab.encode(frame),
    )


def user_inputs(frame: pd.DataFrame | dict, vocab: Vocabulary, item_types: list[str],
                hgnn_dim: int) -> UserInputs:
    """Per-type means and counts; a user with no snapshot yet gets zeros (cold start)."""
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
    return UserInputs(torch.from_numpy(avg), torch.from_numpy(counts),
                      torch.from_numpy(avg_all), vocab.encode(frame))
