"""Configuration of the two-tower model: one dataclass, saved with the model."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class TwoTowerConfig:
    # Hidden and output sizes of both towers (2T-HGNN used 512-256-128).
    tower_dims: list[int] = field(default_factory=lambda: [512, 256, 128])
    categorical_dim: int = 16  # embedding size of each categorical feature
    dropout: float = 0.1
    temperature: float = 0.05  # softmax temperature on cosine scores
    # Yi et al. 2019: subtract log(sampling probability) of each in-batch item, so popular
    # items are not over-penalised as negatives.
    logq_correction: bool = True
    # An item that is also another example's positive in the batch is not a negative.
    remove_accidental_hits: bool = True
    batch_size: int = 512
    lr: float = 1e-3
    epochs: int = 10
    # Training examples: streams in [graph_as_of, cutoff) on top-level items, at most this many
    # (the most recent first is NOT used: a uniform sample keeps every day); 0 = all.
    max_examples: int = 0
    val_fraction: float = 0.05  # of users, held out for the per-epoch validation recall
    time_budget_s: float = 900.0
    seed: int = 0
    threads: int = 0
