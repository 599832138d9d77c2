"""`gfm train two-tower`: the unified two-tower trained from Feast point-in-time joins.

Examples are the streams in [graph_as_of, cutoff) on top-level items; each gets, through the
model's FeatureService, the user snapshot of its day and the item vectors stamped graph_as_of.
Loss (TwoTowerConfig.negatives): a softmax over the whole trained catalogue by default, or
in-batch with the log-Q correction; the "recent" popularity prior scores every item with its
item_popularity_daily snapshot of the example's day. The model goes to the workspace's BentoML
model store with the feature versions it needs.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from gfm.config import Config
from gfm.device import deterministic_torch, device_name, resolve_device
from gfm.errors import GfmError, WorkspaceError
from gfm.timeline import Timeline
from gfm.workspace import Workspace
from training.text_neighbours import text_neighbour_mean
from training.two_tower.config import TwoTowerConfig
from training.two_tower.data import (
    ITEM_CATEGORICALS,
    POPULARITY_FEATURES,
    USER_CATEGORICALS,
    ItemInputs,
    UserInputs,
    Vocabulary,
    item_inputs,
    leave_one_out,
    popularity_inputs,
    user_inputs,
)
from training.two_tower.loss import catalog_softmax_loss, in_batch_softmax_loss
from training.two_tower.model import TwoTowerModel
from training.two_tower.store import SERVED_MODEL_NAME, TwoTowerBundle, load_bundle, save_bundle
from training.two_tower.warm_start import warm_start_weights

log = logging.getLogger(__name__)


@dataclass
class TwoTowerRun:
    tag: str
    bundle: TwoTowerBundle
    metrics: dict


def _batches(n: int, batch: int):
    return (torch.arange(s, min(s + batch, n)) for s in range(0, n, batch))


@torch.no_grad()
def _encode(bundle: TwoTowerBundle, tower, inputs, batch: int) -> np.ndarray:
    bundle.model.eval()
    out = [tower(inputs.take(index).to(bundle.model.device)).cpu().numpy()
           for index in _batches(len(inputs), batch)]
    return np.concatenate(out) if out else np.zeros((0, bundle.vector_dim), np.float32)


def encode_items(bundle: TwoTowerBundle, items: ItemInputs, batch: int = 8192) -> np.ndarray:
    """(n, d) scoring vectors of the item tower (d: see TwoTowerModel.item_vectors)."""
    return _encode(bundle, bundle.model.item_vectors, items, batch)


def encode_users(bundle: TwoTowerBundle, users: UserInputs, batch: int = 8192) -> np.ndarray:
    """(n, d) scoring vectors of the user tower (TwoTowerModel.user_vectors)."""
    return _encode(bundle, bundle.model.user_vectors, users, batch)


def model_version(config: TwoTowerConfig, service: str, timeline: Timeline, name: str,
                  extra: dict | None = None) -> str:
    payload = json.dumps([dataclasses.asdict(config), service, timeline.cutoff.isoformat(), name,
                          extra or {}], sort_keys=True, default=str)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d%H%M%S")
    return f"2t_{stamp}_{hashlib.sha256(payload.encode()).hexdigest()[:8]}"


def _split_users(user_ids: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """True for examples of validation users (a stable hash of the user id and the seed)."""
    if fraction <= 0:
        return np.zeros(len(user_ids), dtype=bool)
    keys = pd.util.hash_array(np.asarray(user_ids, dtype=object), hash_key=f"{seed:016d}"[:16])
    return (keys % 10_000) < fraction * 10_000


def _history_ids(frame: pd.DataFrame, item_types: list[str]) -> set[str]:
    ids: set[str] = set()
    for t in item_types:
        if f"item_ids_{t}" in frame:
            for v in frame[f"item_ids_{t}"]:
                if v is not None and not isinstance(v, float):
                    ids.update(v)
    return ids


def in_history(frame: pd.DataFrame, item_types: list[str]) -> np.ndarray:
    """(n,) bool: the example's item is in the user's history list of its type (the columns
    item_ids_<type> of the example's day; the example's type is item_type)."""
    lists = {t: frame[f"item_ids_{t}"].to_numpy() if f"item_ids_{t}" in frame else None
             for t in item_types}
    out = np.zeros(len(frame), dtype=bool)
    for row, (item, item_type) in enumerate(zip(frame["item_id"], frame["item_type"])):
        column = lists.get(item_type)
        history = column[row] if column is not None else None
        out[row] = history is not None and not isinstance(history, float) and item in history
    return out


def popularity_by_day(item_popularity: pd.DataFrame, item_codes: np.ndarray,
                      first_day: pd.Timestamp, n_days: int) -> tuple[np.ndarray, np.ndarray]:
    """((n_days, n_items, n_features) popularity inputs, (n_days, n_items) released) of
    `item_codes` at the daily snapshots first_day + d (d < n_days), from rows (item_id,
    snapshot_ts, POPULARITY_FEATURES...): an item has a snapshot once it is released (a row
    whose features are null, as a point-in-time join gives before the release, is not one);
    without one it gets zeros and released False."""
    table = np.zeros((n_days, len(item_codes), len(POPULARITY_FEATURES)), dtype=np.float32)
    released = np.zeros((n_days, len(item_codes)), dtype=bool)
    if len(item_popularity) == 0:
        return table, released
    day = ((pd.to_datetime(item_popularity["snapshot_ts"]) - first_day)
           // pd.Timedelta(days=1)).to_numpy()
    item = pd.Index(item_codes).get_indexer(item_popularity["item_id"])
    has_row = item_popularity[list(POPULARITY_FEATURES)].notna().any(axis=1).to_numpy()
    keep = (day >= 0) & (day < n_days) & (item >= 0) & has_row
    table[day[keep], item[keep]] = popularity_inputs(item_popularity)[keep]
    released[day[keep], item[keep]] = True
    return table, released


def lagged_days(day: torch.Tensor, max_lag: int, rng: np.random.Generator) -> torch.Tensor:
    """(b,) each day minus a lag drawn uniformly in [0, max_lag], never before day 0 (the first
    snapshot); the days themselves when max_lag is 0."""
    if max_lag == 0:
        return day
    lag = torch.from_numpy(rng.integers(0, max_lag + 1, len(day)))
    return (day - lag).clamp(min=0)


def text_neighbour_vectors(text: np.ndarray, hgnn: np.ndarray, types: np.ndarray,
                           k: int) -> np.ndarray:
    """(n, hgnn_dim) per item: the normalised mean HGNN vector of the k items of its type
    (with an HGNN vector, itself left out) whose text vectors are closest by cosine: the
    vector an item released after the HGNN run gets (hgnn.inductive_vectors text_knn). Zeros
    for an item with no other item of its type to learn from."""
    has = np.abs(hgnn).sum(1) > 0
    out = np.zeros_like(hgnn)
    for t in np.unique(types):
        rows = np.flatnonzero(types == t)
        pool = np.flatnonzero(has[rows])  # positions within `rows`
        if len(pool) >= 2:
            out[rows] = text_neighbour_mean(text[rows], hgnn[rows], pool, k, leave_self_out=True)
    return out


def epoch_batches(rows: np.ndarray, has_hgnn: np.ndarray, batch_size: int,
                  rng: np.random.Generator, single_kind: bool = False) -> list[np.ndarray]:
    """One epoch's batches of `rows` (frame row indices), shuffled. single_kind: each batch
    holds rows of one kind (has_hgnn or not; two_tower.single_kind_batches), the batches
    shuffled in turn."""
    order = rows[rng.permutation(len(rows))]
    parts = (order[has_hgnn[order]], order[~has_hgnn[order]]) if single_kind else (order,)
    batches = [part[s:s + batch_size] for part in parts for s in range(0, len(part), batch_size)]
    if single_kind:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    return batches


@deterministic_torch()
def fit_two_tower(
    frame: pd.DataFrame, config: TwoTowerConfig, item_types: list[str], extra_item_frames=(),
    on_epoch=None, item_popularity: pd.DataFrame | None = None,
    warm_start: TwoTowerBundle | None = None,
) -> tuple[TwoTowerBundle, dict]:
    """Train on a point-in-time frame (one row per example with every feature joined, and the
    user's history lists item_ids_<type> of the example's day). `on_epoch(epoch, bundle)`, if
    given, is called after each epoch (tuning reads its own validation metric there).
    `item_popularity`: the daily snapshots of item_popularity_daily over the examples' days
    and the cutoff (feature_store.training_set.item_popularity_snapshots); needed by the
    "recent" popularity prior, which scores every catalogue item at each example's day."""
    if len(frame) == 0:
        raise GfmError("no training examples: the label window [graph_as_of, cutoff) holds no "
                       "streams on top-level items")
    torch.manual_seed(config.seed)
    device = resolve_device(config.device, "two_tower.device")
    if config.threads:
        torch.set_num_threads(config.threads)
    rng = np.random.default_rng(config.seed)
    present = frame["text_embedding"].notna()
    if not present.all():
        log.warning("%d example(s) lack a text vector and are dropped", int((~present).sum()))
        frame = frame[present].reset_index(drop=True)
    if config.exclude_history_examples:
        repeat = in_history(frame, item_types)
        log.info("%d of %d example(s) stream an item already in the user's history: left out",
                 int(repeat.sum()), len(frame))
        frame = frame[~repeat].reset_index(drop=True)
        if len(frame) == 0:
            raise GfmError("every training example streams an item already in the user's "
                           "history: set two_tower.exclude_history_examples: false")
    has_hgnn = frame["hgnn_embedding"].notna().to_numpy()
    if not has_hgnn.any():
        raise GfmError("no training example has an HGNN item vector: the HGNN run's vectors are "
                       "stamped after every example (rerun `gfm train hgnn` for this timeline)")
    hgnn_dim = len(frame["hgnn_embedding"][has_hgnn].iloc[0])
    text_dim = len(frame["text_embedding"].iloc[0])
    item_vocab = Vocabulary.fit([frame, *extra_item_frames], ITEM_CATEGORICALS)
    user_vocab = Vocabulary.fit([frame], USER_CATEGORICALS)

    # Items once each (log Q, accidental hits), and the item tower's inputs once per item and
    # HGNN availability: an item's examples before graph_as_of see no HGNN vector.
    item_codes, item_index = np.unique(frame["item_id"].to_numpy(dtype=object), return_inverse=True)
    variants, variant_index = np.unique(item_index * 2 + has_hgnn, return_inverse=True)
    first_row = np.zeros(len(variants), dtype=np.int64)
    first_row[variant_index[::-1]] = np.arange(len(frame))[::-1]
    # Per item, its last variant: with the HGNN vector whenever it has one (what is served).
    served_variant = np.zeros(len(item_codes), dtype=np.int64)
    served_variant[variants // 2] = np.arange(len(variants))
    # Learned ids: every item trained on or seen in a history (index 0 = unknown).
    id_index = {i: n + 1 for n, i in enumerate(sorted(set(item_codes)
                                                       | _history_ids(frame, item_types)))}
    items = item_inputs(frame.iloc[first_row].reset_index(drop=True), item_vocab, hgnn_dim,
                        text_dim, id_index)
    users = user_inputs(frame, user_vocab, item_types, hgnn_dim, id_index)
    counts = np.bincount(item_index, minlength=len(item_codes)).astype(np.float64)
    log_q_item = torch.from_numpy(np.log(counts / counts.sum()).astype(np.float32)).to(device)
    item_index_t = torch.from_numpy(item_index)
    variant_index_t = torch.from_numpy(variant_index)
    served_items = items.take(torch.from_numpy(served_variant))
    # The recent prior: every trained item's popularity inputs at each example's day; the
    # served variants carry the latest snapshot's (the cutoff's).
    days = pd.to_datetime(frame["event_timestamp"]).dt.floor("D")
    first_day = days.min()
    example_day = torch.from_numpy(((days - first_day) // pd.Timedelta(days=1)).to_numpy())
    if config.popularity_prior == "recent":
        if item_popularity is None:
            raise GfmError("two_tower.popularity_prior: recent needs the item_popularity_daily "
                           "snapshots (feature_store.training_set.item_popularity_snapshots)")
        last = max(pd.to_datetime(item_popularity["snapshot_ts"]).max(), days.max())
        n_days = int((last - first_day) // pd.Timedelta(days=1)) + 1
        table, released = popularity_by_day(item_popularity, item_codes, first_day, n_days)
        popularity_table = torch.from_numpy(table)
        served_items.popularity = popularity_table[-1]
        popularity_table = popularity_table.to(device)
        # An item not released by the end of an example's day is no negative there: otherwise
        # the model learns that an item with no snapshot yet (all zeros) is never streamed,
        # and every item released after the cutoff, which reads as zeros, sinks. Items
        # released during the day (a snapshot the next day) do compete, with zeros: the
        # released-today case, as positives and as negatives, which is what a new item is.
        available = released.copy()
        available[:-1] |= released[1:]
        unreleased = torch.from_numpy(~available).to(device)

    is_val = _split_users(frame["user_id"].to_numpy(), config.val_fraction, config.seed)
    train_rows, val_rows = np.flatnonzero(~is_val), np.flatnonzero(is_val)
    model = TwoTowerModel(config, hgnn_dim, text_dim, item_types, item_vocab.sizes(),
                          user_vocab.sizes(), n_item_ids=len(id_index)).to(device)
    # The popularity prior's log q per id: add-one smoothed example shares (training users).
    id_counts = np.ones(len(id_index) + 1)
    np.add.at(id_counts, items.ids.numpy()[variant_index[train_rows]], 1.0)
    model.log_q.copy_(torch.from_numpy(np.log(id_counts / id_counts.sum()).astype(np.float32)))
    warm = (warm_start_weights(model, item_vocab, user_vocab, id_index, warm_start)
            if warm_start is not None else None)
    n_epochs = config.warm_start_epochs if warm_start is not None else config.epochs
    if warm_start is not None and config.warm_start_examples == "new":
        train_rows = _new_since(train_rows, days, warm_start)
        if warm is not None:
            warm["examples"] = {"since": warm_start.metadata.get("cutoff"),
                                "n_train_examples": int(len(train_rows))}
    bundle = TwoTowerBundle(model, config, item_vocab, user_vocab, list(item_types), hgnn_dim,
                            text_dim, {}, id_index)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)

    # Catalogue softmax: every trained item as it is served (with its HGNN vector) and as an
    # example before graph_as_of sees it (without); history ids -> catalogue positions.
    served_on_device = served_items.to(device)
    bare_on_device = dataclasses.replace(served_on_device,
                                         hgnn=torch.zeros_like(served_on_device.hgnn))
    # The catalogue as new items would read it (cold_item_rate): text-neighbour HGNN vectors.
    cold_hgnn = (torch.from_numpy(text_neighbour_vectors(
        served_items.text.numpy(), served_items.hgnn.numpy(),
        served_items.codes["item_type"].numpy(), config.cold_item_knn)).to(device)
        if config.cold_item_rate > 0 else None)

    def catalogue_as_trained() -> ItemInputs:
        """The served catalogue, with a fresh cold_item_rate share shown as new items."""
        if cold_hgnn is None or not model.training:
            return served_on_device
        cold = torch.rand(len(cold_hgnn), device=device) < config.cold_item_rate  # (n,)
        return dataclasses.replace(
            served_on_device, hgnn=torch.where(cold[:, None], cold_hgnn, served_on_device.hgnn),
            ids=served_on_device.ids.masked_fill(cold, 0))
    catalog_types = served_on_device.codes["item_type"]  # (n_items,)
    catalog_of_id = np.full(len(id_index) + 1, -1, dtype=np.int64)
    catalog_of_id[served_items.ids.numpy()] = np.arange(len(item_codes))
    has_hgnn_t = torch.from_numpy(has_hgnn)

    def history_mask(history) -> torch.Tensor:
        """(b, n_items) True where the item is in the row's history lists."""
        mask = torch.zeros((len(history), len(item_codes)), dtype=torch.bool)
        for indptr, values in zip(history.indptr, history.values):
            rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
            position = catalog_of_id[values]
            known = position >= 0
            mask[torch.from_numpy(rows[known]), torch.from_numpy(position[known])] = True
        return mask

    def popularity_day(index: torch.Tensor) -> torch.Tensor:
        """(b,) the day whose popularity snapshot each example reads (training: lagged)."""
        if not model.training:
            return example_day[index]
        return lagged_days(example_day[index], config.popularity_lag_days, rng)

    def catalog_loss(index: torch.Tensor, u, zu: torch.Tensor, weight) -> torch.Tensor:
        late = has_hgnn_t[index].to(device)  # (b,) the example's items carry HGNN vectors
        positive = item_index_t[index].to(device)
        catalogue = [(rows, model.items(variant)) for variant, rows in
                     ((catalogue_as_trained(), late), (bare_on_device, ~late)) if rows.any()]
        masked = (history_mask(u.history).to(device) if config.mask_history_negatives
                  else None)
        prior = None
        if config.popularity_prior == "recent":
            day, inverse = torch.unique(popularity_day(index), return_inverse=True)
            by_day = model.recent_popularity(popularity_table[day.to(device)])  # (n_day, n)
            prior = (weight, by_day[inverse.to(device)])  # (b,), (b, n_items)
            later = unreleased[example_day[index].to(device)]  # (b, n_items)
            masked = later if masked is None else masked | later
        elif weight is not None:
            prior = (weight, model.log_q[served_on_device.ids])
        return catalog_softmax_loss(zu, catalogue, positive, config.temperature,
                                    catalog_types if config.same_type_negatives else None,
                                    masked, prior)

    def batch_loss(rows: np.ndarray) -> torch.Tensor:
        index = torch.from_numpy(rows)
        it = item_index_t[index].to(device)
        u = users.take(index)
        if model.training and config.history_dropout > 0:
            cold = rng.random(len(rows)) < config.history_dropout
            u = u.without_history(cold)
            if config.cold_unknown_share > 0:
                u = u.without_demographics(cold & (rng.random(len(rows))
                                                   < config.cold_unknown_share))
        zu, weight = model.users_with_prior(u.to(device))  # (b, d), (b,) or None
        if config.negatives == "catalog":
            return catalog_loss(index, u, zu, weight)
        v = items.take(variant_index_t[index]).to(device)
        zi = model.items(v)  # (b, d)
        log_q = log_q_item[it] if config.logq_correction else None
        if config.popularity_prior == "recent":  # the positive's day's (lagged in training)
            v.popularity = popularity_table[popularity_day(index).to(device), it]
        prior = (weight, model.item_prior(v)) if weight is not None else None
        return in_batch_softmax_loss(zu, zi, it, log_q, config.temperature,
                                     config.remove_accidental_hits, prior)

    @torch.no_grad()
    def val_recall_at_10() -> float:
        """Discovery recall@10 of the validation users, as evaluation counts it: for examples
        whose item is not in the user's history, the share with the item in the top 10 of
        the trained items outside that history."""
        if len(val_rows) == 0:
            return float("nan")
        item_vectors = torch.from_numpy(encode_items(bundle, served_items))
        hits = total = 0
        for start in range(0, len(val_rows), 4096):
            rows = val_rows[start:start + 4096]
            u = users.take(torch.from_numpy(rows))
            scores = torch.from_numpy(encode_users(bundle, u)) @ item_vectors.T  # (b, n)
            history = history_mask(u.history)
            target = item_index_t[rows]
            discovery = ~history[torch.arange(len(rows)), target]
            top = torch.topk(scores.masked_fill(history, float("-inf")),
                             k=min(10, len(item_codes)), dim=1).indices
            hits += int(((top == target[:, None]).any(1) & discovery).sum())
            total += int(discovery.sum())
        return hits / total if total else float("nan")

    epochs = []
    started = time.monotonic()
    for epoch in range(1, n_epochs + 1):
        model.train()
        t0 = time.monotonic()
        total, steps = 0.0, 0
        batches = epoch_batches(train_rows, has_hgnn, config.batch_size, rng,
                                config.single_kind_batches)
        for rows in tqdm(batches, desc="  steps", leave=False, disable=None):
            if len(rows) < 2:
                continue
            loss = batch_loss(rows)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, steps = total + loss.item(), steps + 1
        step_seconds = time.monotonic() - t0  # the training steps alone, without validation
        model.eval()
        model.set_new_item_reference(served_on_device)  # what new items borrow when scored
        with torch.no_grad():
            val_loss = float(np.mean([batch_loss(val_rows[s:s + config.batch_size]).item()
                                      for s in range(0, len(val_rows), config.batch_size)
                                      if len(val_rows[s:s + config.batch_size]) > 1] or [np.nan]))
        recall = val_recall_at_10()
        seconds = time.monotonic() - t0
        epochs.append({"epoch": epoch, "loss": total / max(steps, 1), "val_loss": val_loss,
                       "val_recall@10": recall, "epoch_time_s": round(seconds, 3),
                       "examples_per_s": round(len(train_rows) / seconds, 1),
                       "step_examples_per_s": round(len(train_rows) / step_seconds, 1)})
        print(f"epoch {epoch:03d}  loss {total / max(steps, 1):.4f}  val_loss {val_loss:.4f}  "
              f"val_recall@10 {recall:.4f}  time {seconds:.1f}s", flush=True)
        if on_epoch is not None:
            on_epoch(epoch, bundle)
        if time.monotonic() - started > config.time_budget_s:
            log.info("time budget of %.0f s spent", config.time_budget_s)
            break
    # The model is the last epoch's: the number of epochs is the choice (made on a validation
    # split by `gfm tune`); the in-training recall is reported, never used to pick an epoch.
    model.to("cpu")  # the bundle is used and saved on the CPU
    model.eval()
    metrics = {
        "epochs": epochs,
        "val_recall@10": epochs[-1]["val_recall@10"],
        "n_examples": int(len(frame)),
        "n_train_examples": int(len(train_rows)),
        "n_val_examples": int(len(val_rows)),
        "n_items_trained": int(len(item_codes)),
        "n_item_ids": int(len(id_index)),
        "mean_epoch_time_s": float(np.mean([e["epoch_time_s"] for e in epochs])),
        "train_examples_per_s": float(np.mean([e["examples_per_s"] for e in epochs])),
        # the training steps alone (epoch time less the per-epoch validation)
        "step_examples_per_s": float(np.mean([e["step_examples_per_s"] for e in epochs])),
        "device": device,
        "device_name": device_name(device),
        "warm_start": warm,
    }
    return bundle, metrics


def _new_since(train_rows: np.ndarray, days: pd.Series, served: TwoTowerBundle) -> np.ndarray:
    """The training rows dated at or after the served model's cutoff (two_tower.
    warm_start_examples: new): the days it has not trained on."""
    since = served.metadata.get("cutoff")
    if not since:
        log.warning("the served model %s does not record its cutoff: the warm start trains on "
                    "every example", served.version)
        return train_rows
    since = pd.Timestamp(since)
    if days.dt.tz is not None and since.tz is None:  # the cutoff is naive UTC (gfm.timeline)
        since = since.tz_localize("UTC")
    new = (days >= since).to_numpy()[train_rows]
    log.info("warm start: %d of %d training example(s) dated since the served model's cutoff "
             "%s", int(new.sum()), len(train_rows), since)
    return train_rows[new]


def popularity_snapshots(workspace: Workspace, timeline: Timeline,
                         frame: pd.DataFrame) -> pd.DataFrame:
    """What fit_two_tower's `item_popularity` is: the daily item_popularity_daily snapshots of
    the frame's items over the timeline's snapshot days."""
    from feature_store.training_set import item_popularity_snapshots

    return item_popularity_snapshots(workspace, sorted(set(frame["item_id"])),
                                     timeline.snapshot_days(), POPULARITY_FEATURES)


def training_frame(workspace: Workspace, timeline: Timeline, service: str,
                   item_types: list[str], config: TwoTowerConfig,
                   start: dt.datetime | None = None, end: dt.datetime | None = None,
                   ) -> pd.DataFrame:
    """What the two-tower trains on through `service`: the label window's examples (or those
    in [start, end) within it) with their point-in-time features, and with
    `history_set_examples` one more per item of each user's history at the cutoff, its user
    features there less that item (only when the window ends at the cutoff)."""
    from feature_store.training_set import (
        build_training_examples,
        history_set_examples,
        two_tower_frame,
    )

    examples = build_training_examples(workspace, timeline,
                                       max_examples=config.max_examples or None,
                                       seed=config.seed, start=start, end=end)
    frame = two_tower_frame(workspace, service, examples, item_types)
    if not config.history_set_examples or (end is not None and end < timeline.cutoff):
        return frame
    at_cutoff = two_tower_frame(workspace, service, history_set_examples(workspace, timeline),
                                item_types)
    return pd.concat([frame, leave_one_out(at_cutoff, item_types)], ignore_index=True)


def examples_config(config: TwoTowerConfig, warm_start: TwoTowerBundle | None,
                    ) -> TwoTowerConfig:
    """The settings the training frame is read with. A warm start on the days the served model
    has not seen (warm_start_examples "new") leaves the history set out: it is the whole
    window again, which the served model learned (each refresh would add a pass over the same
    items, as warm_start_examples "all" does)."""
    if warm_start is not None and config.warm_start_examples == "new":
        return dataclasses.replace(config, history_set_examples=False)
    return config


def served_bundle_or_none(workspace: Workspace) -> TwoTowerBundle | None:
    """The served model to warm-start from, or None (with the reason logged)."""
    try:
        return load_bundle(workspace)
    except WorkspaceError as exc:
        log.warning("no served model to warm-start from (%s): training from scratch", exc)
        return None


def train_two_tower(
    workspace: Workspace, config: Config, timeline: Timeline, *, name: str = SERVED_MODEL_NAME,
    item_type_filter: list[str] | None = None, serve: bool = True, warm_start: bool = False,
) -> TwoTowerRun:
    """Train, save to the model store, register the model's FeatureService in Feast.
    `warm_start`: begin from the served model's weights, for two_tower.warm_start_epochs."""
    from feature_store import core as feature_store
    from feature_store.training_set import HISTORY_VIEW, POPULARITY_VIEW

    cfg = config.two_tower
    input_service = feature_store.latest_feature_service(workspace)
    spec = feature_store.service_spec(workspace, input_service)
    item_types = spec["item_types"]
    start = served_bundle_or_none(workspace) if warm_start else None
    if start is not None and start.item_types != list(item_types):
        log.warning("the served model ranks %s, this one %s: training from scratch",
                    start.item_types, item_types)
        start = None
    frame = training_frame(workspace, timeline, input_service, item_types,
                           examples_config(cfg, start))
    if item_type_filter:
        frame = frame[frame["item_type"].isin(item_type_filter)].reset_index(drop=True)
    log.info("training on %d examples through %s", len(frame), input_service)
    popularity = (popularity_snapshots(workspace, timeline, frame)
                  if cfg.popularity_prior == "recent" else None)
    bundle, metrics = fit_two_tower(frame, cfg, item_types, item_popularity=popularity,
                                    warm_start=start)

    extra = {"types": item_type_filter}
    if start is not None:
        extra["warm_start"] = start.version
    version = model_version(cfg, input_service, timeline, name, extra)
    service_name = f"two_tower_v{version.removeprefix('2t_')}" if serve else input_service
    bundle.metadata.update({
        "model_name": name,
        "model_version": version,
        "feature_service": service_name,
        "input_feature_service": input_service,
        "feature_views": spec["views"],
        "hgnn_version": spec["tags"].get("hgnn_version"),
        "text_version": spec["tags"].get("text_version"),
        "graph_as_of": timeline.graph_as_of.isoformat(),
        "cutoff": timeline.cutoff.isoformat(),
        "item_types": item_types,
        "item_type_filter": item_type_filter,
        "config": dataclasses.asdict(cfg),
        "val_recall@10": metrics["val_recall@10"],
        "warm_started_from": start.version if start is not None else None,
    })
    if serve:
        # The model's own service pins exactly the views it was trained on.
        views = [*spec["views"], HISTORY_VIEW]
        if cfg.popularity_prior == "recent" and POPULARITY_VIEW not in views:
            views.append(POPULARITY_VIEW)  # a service from before the view existed
        bundle.metadata["feature_views"] = views
        feature_store.register_feature_service(
            workspace, config, service_name, views,
            tags={"model": f"{name}:{version}", "input_feature_service": input_service,
                  "hgnn_version": spec["tags"].get("hgnn_version", ""),
                  "text_version": spec["tags"].get("text_version", ""),
                  "cutoff": timeline.cutoff.isoformat()},
            description=f"Features of two-tower model {name}:{version}.",
        )
    tag = save_bundle(workspace, name, bundle, serve=serve)
    metrics.update({"tag": tag, "feature_service": service_name})
    reports = workspace.reports_dir
    reports.mkdir(parents=True, exist_ok=True)
    (reports / f"two_tower_metrics_{name}.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return TwoTowerRun(tag, bundle, metrics)
