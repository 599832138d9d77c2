"""Two towers into one space: items of every type through one tower, users through the other.

Item tower: HGNN vector + text vector + item type, language, genre (type-agnostic: the type is
one input among others, not a separate tower). User tower: the per-type means of the HGNN
vectors of the last 90 days, their counts, the mean over all types, country and age bucket.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from training.two_tower.config import TwoTowerConfig


def mlp(in_dim: int, dims: list[int], dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, out_dim in enumerate(dims):
        layers.append(nn.Linear(in_dim, out_dim))
        if i < len(dims) - 1:
            layers += [nn.ReLU(), nn.Dropout(dropout)]
        in_dim = out_dim
    return nn.Sequential(*layers)


class Categoricals(nn.Module):
    """One embedding per categorical feature; index 0 is 'unknown'."""

    def __init__(self, vocab_sizes: dict[str, int], dim: int):
        super().__init__()
        self.names = sorted(vocab_sizes)
        self.embeddings = nn.ModuleDict({n: nn.Embedding(vocab_sizes[n], dim) for n in self.names})
        self.out_dim = dim * len(self.names)

    def forward(self, codes: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.cat([self.embeddings[n](codes[n]) for n in self.names], dim=-1)


class ItemTower(nn.Module):
    def __init__(self, config: TwoTowerConfig, hgnn_dim: int, text_dim: int,
                 vocab_sizes: dict[str, int]):
        super().__init__()
        self.categoricals = Categoricals(vocab_sizes, config.categorical_dim)
        self.net = mlp(hgnn_dim + text_dim + self.categoricals.out_dim, config.tower_dims,
                       config.dropout)

    def forward(self, hgnn: torch.Tensor, text: torch.Tensor,
                codes: dict[str, torch.Tensor]) -> torch.Tensor:
        x = torch.cat([hgnn, text, self.categoricals(codes)], dim=-1)  # (b, in_dim)
        return F.normalize(self.net(x), dim=-1)  # (b, out_dim)


class UserTower(nn.Module):
    def __init__(self, config: TwoTowerConfig, hgnn_dim: int, n_types: int,
                 vocab_sizes: dict[str, int]):
        super().__init__()
        self.categoricals = Categoricals(vocab_sizes, config.categorical_dim)
        in_dim = hgnn_dim * (n_types + 1) + n_types + self.categoricals.out_dim
        self.net = mlp(in_dim, config.tower_dims, config.dropout)

    def forward(self, avg_by_type: torch.Tensor, n_by_type: torch.Tensor, avg_all: torch.Tensor,
                codes: dict[str, torch.Tensor]) -> torch.Tensor:
        # avg_by_type (b, n_types, hgnn_dim); n_by_type (b, n_types); avg_all (b, hgnn_dim)
        x = torch.cat([avg_by_type.flatten(1), torch.log1p(n_by_type), avg_all,
                       self.categoricals(codes)], dim=-1)
        return F.normalize(self.net(x), dim=-1)  # (b, out_dim)


class TwoTowerModel(nn.Module):
    def __init__(self, config: TwoTowerConfig, hgnn_dim: int, text_dim: int, item_types: list[str],
                 item_vocab_sizes: dict[str, int], user_vocab_sizes: dict[str, int]):
        super().__init__()
        self.item_types = list(item_types)
        self.item_tower = ItemTower(config, hgnn_dim, text_dim, item_vocab_sizes)
        self.user_tower = UserTower(config, hgnn_dim, len(item_types), user_vocab_sizes)
