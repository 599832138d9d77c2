"""The paper's Table 2 ablation: the unified two-tower without the HGNN.

Item tower: a learned item-id embedding (in place of the HGNN vector) + text vector + item type,
language, genre. User tower: the per-type means of the learned id embeddings of the user's
90-day history items (feature view `user_history_90d`, lists `item_ids_<type>` of the snapshot
of the example's day), their counts, the mean over all types, country and age bucket. Same
examples, loss (in-batch softmax, log-Q correction, accidental hits removed) and
hyper-parameters as `training.two_tower.train`; the towers are the same classes, fed id
embeddings where they take HGNN vectors. The existing model is untouched.

Evaluation-only: kept in memory (never saved as the served model).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from gfm.config import Config
from gfm.errors import GfmError
from gfm.timeline import Timeline
from gfm.workspace import Workspace
from training.two_tower.config import TwoTowerConfig
from training.two_tower.data import ITEM_CATEGORICALS, USER_CATEGORICALS, Vocabulary, stack_vectors
from training.two_tower.loss import in_batch_softmax_loss
from training.two_tower.model import ItemTower, UserTower

log = logging.getLogger(__name__)

HISTORY_VIEW = "user_history_90d"


class NoGnnModel(nn.Module):
    def __init__(self, config: TwoTowerConfig, id_dim: int, n_ids: int, text_dim: int,
                 item_types: list[str], item_vocab_sizes: dict[str, int],
                 user_vocab_sizes: dict[str, int]):
        super().__init__()
        self.item_types = list(item_types)
        self.ids = nn.Embedding(n_ids + 1, id_dim)  # row 0: unknown item (kept at zero)
        nn.init.normal_(self.ids.weight, std=0.1)
        with torch.no_grad():
            self.ids.weight[0].zero_()
        self.item_tower = ItemTower(config, id_dim, text_dim, item_vocab_sizes)
        self.user_tower = UserTower(config, id_dim, len(item_types), user_vocab_sizes)

    def _id_vectors(self, index: torch.Tensor) -> torch.Tensor:
        return self.ids(index) * (index != 0).unsqueeze(-1)  # unknown ids: zero, no gradient

    def items(self, index: torch.Tensor, text: torch.Tensor, codes: dict) -> torch.Tensor:
        return self.item_tower(self._id_vectors(index), text, codes)

    def users(self, history: list[tuple[torch.Tensor, torch.Tensor]], counts: torch.Tensor,
              codes: dict) -> torch.Tensor:
        """history: per type (flat id indices, offsets) of the batch; counts (b, n_types)."""
        sums = [F.embedding_bag(idx, self.ids.weight, offsets, mode="sum")
                for idx, offsets in history]
        sums_t = torch.stack(sums, dim=1)  # (b, n_types, d)
        avg = sums_t / counts.clamp(min=1).unsqueeze(-1)
        avg_all = sums_t.sum(1) / counts.sum(1, keepdim=True).clamp(min=1)
        return self.user_tower(avg, counts, avg_all, codes)


@dataclass
class Histories:
    """Per type, CSR lists of known item-id indices (unknown ids dropped)."""

    indptr: list[np.ndarray]
    values: list[np.ndarray]

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, item_types: list[str],
                   id_index: dict[str, int]) -> Histories:
        indptr, values = [], []
        for t in item_types:
            column = frame[f"item_ids_{t}"] if f"item_ids_{t}" in frame else [None] * len(frame)
            lists = [[id_index[i] for i in (v if v is not None and not isinstance(v, float) else [])
                      if i in id_index] for v in column]
            lengths = np.fromiter((len(x) for x in lists), dtype=np.int64, count=len(lists))
            indptr.append(np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))
            values.append(np.fromiter((i for x in lists for i in x), dtype=np.int64,
                                      count=int(lengths.sum())))
        return cls(indptr, values)

    def counts(self, rows: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.stack([(p[rows + 1] - p[rows]) for p in self.indptr], axis=1)
                                .astype(np.float32))

    def take(self, rows: np.ndarray) -> list[tuple[torch.Tensor, torch.Tensor]]:
        out = []
        for p, v in zip(self.indptr, self.values):
            starts, lengths = p[rows], p[rows + 1] - p[rows]
            offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
            flat = (np.arange(lengths.sum()) - np.repeat(offsets, lengths)
                    + np.repeat(starts, lengths))
            out.append((torch.from_numpy(v[flat]), torch.from_numpy(offsets)))
        return out


@dataclass
class NoGnnBundle:
    model: NoGnnModel
    config: TwoTowerConfig
    id_index: dict[str, int]
    item_vocab: Vocabulary
    user_vocab: Vocabulary
    item_types: list[str]
    text_dim: int
    input_service: str
    metrics: dict


def history_frame(workspace: Workspace, user_ids, timestamps,
                  item_types: list[str]) -> pd.DataFrame:
    """item_ids_<type> of `user_history_90d` point-in-time at each (user, timestamp)."""
    from transforms.feature_store import open_store
    from transforms.training_set import ROW_ID, _in_order

    ts = pd.to_datetime(pd.Series(list(timestamps)))
    if ts.dt.tz is None:
        ts = ts.dt.tz_localize("UTC")
    n = len(ts)
    entity_df = pd.DataFrame({"user_id": np.asarray(user_ids, dtype=object),
                              "event_timestamp": ts.dt.floor("us").reset_index(drop=True),
                              ROW_ID: np.arange(n, dtype=np.int64)})
    refs = [f"{HISTORY_VIEW}:item_ids_{t}" for t in item_types]
    table = _in_order(open_store(workspace).get_historical_features(entity_df=entity_df,
                                                                    features=refs).to_arrow(),
                      n, drop=["user_id", "event_timestamp"])
    frame = pd.DataFrame(index=range(n))
    for name, column in zip(table.column_names, table.columns):
        frame[name] = column.to_pylist()
    return frame


def _item_codes(frame: pd.DataFrame, id_index: dict[str, int]) -> torch.Tensor:
    return torch.tensor([id_index.get(i, 0) for i in frame["item_id"]], dtype=torch.long)


def fit_no_gnn(frame: pd.DataFrame, history: pd.DataFrame, config: TwoTowerConfig,
               item_types: list[str], input_service: str) -> NoGnnBundle:
    if len(frame) == 0:
        raise GfmError("no training examples for the no-GNN two-tower")
    torch.manual_seed(config.seed)
    if config.threads:
        torch.set_num_threads(config.threads)
    rng = np.random.default_rng(config.seed)
    present = frame["text_embedding"].notna().to_numpy()
    frame, history = frame[present].reset_index(drop=True), history[present].reset_index(drop=True)
    text_dim = len(frame["text_embedding"].iloc[0])
    id_dim = config.tower_dims[-1]
    known = set(frame["item_id"])
    for t in item_types:
        col = f"item_ids_{t}"
        if col in history:
            for v in history[col]:
                if v is not None and not isinstance(v, float):
                    known.update(v)
    id_index = {i: n + 1 for n, i in enumerate(sorted(known))}
    item_vocab = Vocabulary.fit([frame], ITEM_CATEGORICALS)
    user_vocab = Vocabulary.fit([frame], USER_CATEGORICALS)

    item_ids, item_row = np.unique(frame["item_id"].to_numpy(dtype=object), return_inverse=True)
    first = np.zeros(len(item_ids), dtype=np.int64)
    first[item_row[::-1]] = np.arange(len(frame))[::-1]
    items = frame.iloc[first].reset_index(drop=True)
    item_index = _item_codes(items, id_index)
    item_text = torch.from_numpy(stack_vectors(items["text_embedding"], text_dim))
    item_cat = item_vocab.encode(items)
    user_cat = user_vocab.encode(frame)
    hist = Histories.from_frame(history, item_types, id_index)
    counts = np.bincount(item_row, minlength=len(item_ids)).astype(np.float64)
    log_q_item = torch.from_numpy(np.log(counts / counts.sum()).astype(np.float32))
    item_row_t = torch.from_numpy(item_row)

    model = NoGnnModel(config, id_dim, len(id_index), text_dim, item_types, item_vocab.sizes(),
                       user_vocab.sizes())
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    epochs, started = [], time.monotonic()
    for epoch in range(1, config.epochs + 1):
        model.train()
        t0 = time.monotonic()
        order = rng.permutation(len(frame))
        total, steps = 0.0, 0
        for s in range(0, len(order), config.batch_size):
            rows = order[s:s + config.batch_size]
            if len(rows) < 2:
                continue
            index = torch.from_numpy(rows)
            it = item_row_t[index]
            zu = model.users(hist.take(rows), hist.counts(rows),
                             {k: v[index] for k, v in user_cat.items()})
            zi = model.items(item_index[it], item_text[it], {k: v[it] for k, v in item_cat.items()})
            log_q = log_q_item[it] if config.logq_correction else None
            loss = in_batch_softmax_loss(zu, zi, it, log_q, config.temperature,
                                         config.remove_accidental_hits)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, steps = total + loss.item(), steps + 1
        seconds = time.monotonic() - t0
        epochs.append({"epoch": epoch, "loss": total / max(steps, 1),
                       "epoch_time_s": round(seconds, 3)})
        print(f"no-gnn epoch {epoch:03d}  loss {total / max(steps, 1):.4f}  time {seconds:.1f}s",
              flush=True)
        if time.monotonic() - started > config.time_budget_s:
            break
    model.eval()
    metrics = {"epochs": epochs, "n_examples": len(frame), "n_ids": len(id_index)}
    return NoGnnBundle(model, config, id_index, item_vocab, user_vocab, list(item_types), text_dim,
                       input_service, metrics)


def train_no_gnn(workspace: Workspace, config: Config, timeline: Timeline) -> NoGnnBundle:
    """Train the no-GNN variant on the same examples and features as `train_two_tower`."""
    from transforms.feature_store import core as feature_store
    from transforms.training_set import build_training_examples, get_training_frame

    cfg = config.two_tower
    input_service = feature_store.latest_feature_service(workspace)
    item_types = feature_store.service_spec(workspace, input_service)["item_types"]
    examples = build_training_examples(workspace, timeline, max_examples=cfg.max_examples or None,
                                       seed=cfg.seed)
    frame = get_training_frame(workspace, input_service, examples)
    history = history_frame(workspace, frame["user_id"], frame["event_timestamp"], item_types)
    return fit_no_gnn(frame, history, cfg, item_types, input_service)


@torch.no_grad()
def no_gnn_vectors(workspace: Workspace, bundle: NoGnnBundle, user_ids, item_ids,
                   at: dt.datetime) -> tuple[np.ndarray, np.ndarray]:
    """(user vectors, item vectors) with features as of `at` (the evaluation's cutoff)."""
    from transforms.training_set import entity_features

    model = bundle.model.eval()
    items = entity_features(workspace, bundle.input_service, "item_id", item_ids, at)
    item_vectors = model.items(_item_codes(items, bundle.id_index),
                               torch.from_numpy(stack_vectors(items["text_embedding"],
                                                              bundle.text_dim)),
                               bundle.item_vocab.encode(items)).numpy()
    users = entity_features(workspace, bundle.input_service, "user_id", user_ids, at)
    history = history_frame(workspace, user_ids, [at] * len(user_ids), bundle.item_types)
    hist = Histories.from_frame(history, bundle.item_types, bundle.id_index)
    codes = bundle.user_vocab.encode(users)
    out = []
    for s in range(0, len(user_ids), 4096):
        rows = np.arange(s, min(s + 4096, len(user_ids)))
        index = torch.from_numpy(rows)
        out.append(model.users(hist.take(rows), hist.counts(rows),
                               {k: v[index] for k, v in codes.items()}).numpy())
    user_vectors = np.concatenate(out) if out else np.zeros((0, item_vectors.shape[1]), np.float32)
    return user_vectors, item_vectors
