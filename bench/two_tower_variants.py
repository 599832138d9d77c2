"""Two-tower variants on the validation split (never the hold-out): the ablation behind the
model's defaults, and the doc that shows it.

    python bench/two_tower_variants.py run --workdir W --name NAME [--set two_tower.KEY=VALUE ...]
                                           [--epochs N] [--unseen-items]
    python bench/two_tower_variants.py peers --workdir W      # als, ease, popularity, hgnn_knn
    python bench/two_tower_variants.py inductive --workdir W [--k 5,10,20,50] [--temperatures 0,0.05]
    python bench/two_tower_variants.py slots --workdir W [--weights 1,1.1,1.2,1.3,1.4]
    python bench/two_tower_variants.py doc --workdir W [--also W2] [--baseline NAME] [--out FILE]
    python bench/two_tower_variants.py pooled --workdir W1 --workdir W2 ... --out FILE

`run` trains one variant on the validation copy that `gfm tune two-tower` uses (validation
cutoff = cutoff - holdout_days, every feature rebuilt as of it, under <W>/tune/), scores every
epoch as `gfm evaluate` scores (HR@10, discovery, per item type), and appends the record
(settings, per-epoch curve, the best epoch's rates, cold-user, hidden-history and new-item
rates, where the new items rank under each term of the score, commit) to
<W>/reports/two_tower_variants.jsonl, with the best epoch's per-user hits in
<W>/reports/two_tower_variants/NAME.npz for paired comparisons. `peers` does the same for the
baselines with the workspace's (tuned) settings. `doc` writes the table (mean HR@10, per type,
the paired difference to the baseline with its 95% bootstrap interval) and a plot of the curves.
`pooled` writes one table for variants run under the same names in several workspaces, each
with its own validation cutoff (e.g. the years before a rolling evaluation's first hold-out,
when one validation split holds too few users), their users pooled.

By the target's training streams (`by_streams` in a record, a second table in the doc): HR@10
in bench/hits_by_item_popularity.py's buckets, the items released since the validation cutoff
and then fifths of the older targets by their streams in the training window, each paired with
the baseline on the bucket's (user, type) units. A pooled mean can hide a variant that gains on
the most-streamed items what it loses on the tail (docs/hits_by_item_popularity.md).

New items' share of top-10 slots (`new_item_slot_share` in a run's record; `slots` for the
workspace's served model at its own cutoff, appended to <W>/reports/new_item_slots.jsonl): per
type, the share of the top-10 lists of 4,000 sampled users with history (their history left
out) taken by items released since the cutoff. It reads no hold-out stream, so it may be
measured on the hold-out's model: it shows how much exposure a scoring setting such as
two_tower.new_item_hgnn_weight hands to new items on that model. It differed several-fold
between medium's validation model and its hold-out model at the same weight, so a weight
chosen on the validation split does not carry over (docs/architecture.md).

Hidden history: the validation split has few users without history (a few dozen per type), too
few to choose by. So every model is also scored on every validation user with targets as a
user who signed up after the validation cutoff reads there: no history, unknown country and age
bucket, every hold-out item a target. On the synthetic data (where new users stream as the
others do) this measures what users without history get, with thousands of users.

Pretend new: the validation hold-out has few items released inside it (a dozen per type). So a
fixed tenth of the older catalogue is also scored as it would read on its release day: no
learned id, for its HGNN vector the mean of its text neighbours' (hgnn.inductive_vectors
text_knn, itself left out), no listeners yet; HR@10 counts only the hold-out targets among
those items, ranked against the whole catalogue of their type (a few hundred users on the
small profile, several times the real new items' count). The HGNN itself was trained
with their edges, so this flatters every graph model a little, the two-tower and hgnn_knn
alike; text_knn reads text, which a new item has. The two-tower is flattered far more: it
trained on those items, and its item tower learned their very texts. `run --unseen-items`
leaves them out of its training (examples and catalogue), so they are scored as a real release
is; such a record's warm rates come from a model trained on less, so compare it only with
records run the same way (the doc shows them as pretend_new_left_out).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from hits_by_item_popularity import (  # noqa: E402
    bucket_user_hits,
    stream_buckets,
    target_hits,
    target_units,
)

from benchdoc import commit_label  # noqa: E402

RECORDS = "two_tower_variants.jsonl"
HITS_DIR = "two_tower_variants"
COLD = ".cold"  # <name>.cold in a record's hits file: the per-user hits of users without history
# <name>@streams in a record's hits file: hits per (user, type, bucket of the target's training
# streams), each bucket a "type" named "<type>|<bucket>" (_by_streams).
STREAMS = "@streams"
PEERS = ("als", "ease", "hgnn_knn", "text_knn", "popularity")
PRETEND_NEW_SHARE = 0.1  # of the catalogue released before the validation cutoff
SLOT_SHARE_USERS = 4000  # users with history sampled for the new-item slot share
SLOTS_RECORDS = "new_item_slots.jsonl"  # `slots` results, beside the workspace's reports
# Two-tower settings added after records were first written, with what a record without them
# ran (before hgnn_skip, the model had no hgnn_knn path; before cold_unknown_share, no example
# hid demographics; before popularity_lag_days, every example read its own day's popularity;
# before unknown_user_prior_only, the towers scored an unknown user too; before
# new_item_vector, a borrowed vector was the unit mean).
ABSENT_MEANS = {"hgnn_skip": False, "cold_unknown_share": 0.0, "popularity_lag_days": 0,
                "unknown_user_prior_only": False, "new_item_knn": 0, "new_item_vector": "unit",
                "new_item_hgnn_weight": 1.0, "new_item_exposure": 0.0}
# Two-tower settings read only when scoring (the model's attribute of the same name): `run
# --scoring` scores one training with several values.
SCORING_SETTINGS = ("new_item_hgnn_weight", "new_item_exposure")
# Settings of the workspace (its data and features, not the two-tower) shown beside each
# variant: `doc --also` joins workspaces that differ in them.
WORKSPACE_SETTINGS = ("timeline.early_label_days", "warehouse.history_at_events")


def _objective(workdir: Path, settings: dict):
    """(objective, validation timeline, config) on the two-tower validation copy."""
    from evaluation import tune
    from evaluation.split import load_split
    from gfm.config import load_config
    from gfm.timeline import resolve_timeline
    from gfm.workspace import Workspace

    workspace = Workspace.at(workdir)
    config = load_config(workspace.root)
    val, root = tune.validation_copy(workspace, config,
                                     resolve_timeline(config.timeline, workspace), "two-tower", [])
    copy = Workspace.at(root)
    config = tune.with_params(config, settings)
    return tune.Objective("two-tower", copy, config, val, load_split(copy, val)), val, config


def _record(workdir: Path, record: dict, hits: dict, cold_hits: dict, stream_hits: dict,
            user_ids) -> None:
    from evaluation.user_hits import save_user_hits

    reports = workdir / "reports"
    name = record["name"]
    save_user_hits(reports / HITS_DIR / f"{name}.npz",
                   {name: hits, name + COLD: cold_hits, name + STREAMS: stream_hits}, user_ids)
    with open(reports / RECORDS, "a") as f:
        f.write(json.dumps(record) + "\n")


def _by_streams(split, retriever) -> tuple[dict[str, float], dict]:
    """HR@10 by the target item's training streams, in bench/hits_by_item_popularity.py's
    buckets (items released since the cutoff, then fifths of the older targets): ({bucket:
    HR@10 over its (user, type) units}, {"<type>|<bucket>": (user indices, hits)} for paired
    comparisons). What the pooled mean hides: a learned id helps the items it saw often."""
    import numpy as np

    units = target_units(split)
    hits = target_hits(split, retriever, units)
    rates, unit_hits = {}, {}
    for label, inside_of in stream_buckets(split, units):
        per_type = bucket_user_hits(units, hits, inside_of)
        pooled = np.concatenate([h for _, h in per_type.values()])
        if len(pooled):
            rates[label] = round(float(pooled.mean()), 4)
            unit_hits.update({f"{t}|{label}": v for t, v in per_type.items()})
    return rates, unit_hits


def _rates(result: dict, hidden: dict, pretend: dict | None) -> dict:
    """The record's rates from the validation result, the hidden-history one and the
    pretend-new one (None: not measured for this model)."""
    from evaluation.tune import mean_hit_rate

    return {"mean": mean_hit_rate(result), "hr@10": result["hr@10"],
            "cold_users": result["cold_users"]["hr@10"],
            "cold_users_n": {t: r["n_users"] for t, r in
                             result["cold_start"]["cold_users"].items()},
            "new_items": result["new_items"]["hr@10"],
            "new_items_mrr": result["new_items"]["mrr@100"],
            "hidden_history": hidden["cold_users"]["hr@10"],
            "pretend_new": pretend["new_items"]["hr@10"] if pretend else None}


def _score_terms(model) -> dict[str, slice]:
    """The two-tower score's terms as slices of its user and item vectors (user . item sums
    them): the towers' cosine, the hgnn path, the popularity prior (TwoTowerModel.item_vectors)."""
    tower = model.item_net[-1].out_features
    hgnn = model.hgnn_dim if model.hgnn_skip else 0
    terms = {"towers": slice(0, tower)}
    if hgnn:
        terms["hgnn path"] = slice(tower, tower + hgnn)
    if model.has_prior:
        terms["prior"] = slice(tower + hgnn, tower + hgnn + 1)
    return terms


def _new_item_ranks(split, user_vectors, item_vectors, terms: dict[str, slice]) -> dict:
    """Per type, for the users with history whose hold-out holds an item released since the
    cutoff: the best rank (0 = first; ties broken as `gfm evaluate` breaks them) of those items
    among the type's catalogue, history left out, under the full score and under each term
    alone; the median and the 10th percentile over users, and the users counted. Where new
    items are lost: a term that ranks them low for the very users who stream them is the one
    to fix."""
    import numpy as np

    from evaluation import metrics as m

    out = {}
    with_history = np.flatnonzero(split.has_history)
    rows, items = split.targets.take(with_history)
    for t in split.types:
        cols = split.type_items[t]
        new = (split.item_types[items] == t) & split.is_new_item[items]
        users, t_rows = np.unique(rows[new], return_inverse=True)  # scored: only these
        users, t_cols = with_history[users], split.type_position[items[new]]
        h_rows, h_cols = split.histories.take(users)
        own = split.item_types[h_cols] == t
        h_rows, h_cols = h_rows[own], split.type_position[h_cols[own]]
        result = {}
        for name, part in {"full": slice(None), **terms}.items():
            scores = user_vectors[users][:, part] @ item_vectors[cols][:, part].T
            # discovery, as gfm evaluate counts it (evaluation.evaluate._tally_type)
            _, ranks, fresh = m.discovery_ranks(scores, t_rows, t_cols, h_rows, h_cols)
            if not fresh.any():
                break
            result["n_users"] = len(np.unique(t_rows[fresh]))
            best = m.best_ranks(ranks[fresh], t_rows[fresh], len(users))
            best = best[best != m.NO_RANK]
            result[name] = {"median_rank": float(np.median(best)),
                            "p10_rank": float(np.percentile(best, 10))}
        if result:
            out[t] = result
    return out


def _new_item_slot_share(split, user_vectors, item_vectors, n_users: int = SLOT_SHARE_USERS,
                         k: int = 10) -> dict[str, float]:
    """Per type, the share of top-k slots (history left out, as discovery ranks) that items
    released since the cutoff take, over a seeded sample of users with history. Label-free:
    no hold-out stream is read, so it can be measured on any model, the hold-out's included;
    it says how much exposure a scoring setting hands to new items."""
    import numpy as np

    from evaluation import metrics as m

    rng = np.random.default_rng(0)
    users = np.flatnonzero(split.has_history)
    users = np.sort(rng.choice(users, size=min(n_users, len(users)), replace=False))
    h_rows, h_cols = split.histories.take(users)
    out = {}
    for t in split.types:
        cols = split.type_items[t]
        if len(cols) <= k:
            continue
        scores = user_vectors[users] @ item_vectors[cols].T
        own = split.item_types[h_cols] == t
        scores[h_rows[own], split.type_position[h_cols[own]]] = -np.inf
        top = m.top_k(scores, k)  # the top k as `gfm evaluate` takes it
        top = top[top != m.PAD]
        out[t] = round(float(split.is_new_item[cols][top].mean()), 4)
    return out


def served_slot_shares(workdir: Path, weights: tuple[float, ...]) -> dict:
    """The workspace's served two-tower at its cutoff (what `gfm evaluate` scores), its
    new-item slot share at each new_item_hgnn_weight: label-free (_new_item_slot_share)."""
    from evaluation.split import load_split
    from evaluation.two_tower import item_features, user_features
    from gfm.config import load_config
    from gfm.timeline import resolve_timeline
    from gfm.workspace import Workspace
    from training.two_tower.store import load_bundle
    from training.two_tower.train import encode_items, encode_users

    workspace = Workspace.at(workdir)
    config = load_config(workspace.root)
    split = load_split(workspace, resolve_timeline(config.timeline, workspace))
    bundle = load_bundle(workspace, None)
    users = user_features(workspace, bundle.feature_service, bundle.item_types, split.user_ids,
                          split.cutoff)
    items = bundle.item_inputs(item_features(workspace, bundle.feature_service, split.item_ids,
                                             split.cutoff))
    user_vectors = encode_users(bundle, bundle.user_inputs(users))
    shares = {}
    for weight in weights:
        bundle.model.new_item_hgnn_weight = weight
        shares[str(weight)] = _new_item_slot_share(split, user_vectors,
                                                   encode_items(bundle, items))
    return {"workdir": str(workdir), "model": f"unified_2t:{bundle.version}",
            "cutoff": split.cutoff.isoformat(), "new_items": {
                t: int(split.is_new_item[split.type_items[t]].sum()) for t in split.types},
            "new_item_slot_share": shares, "commit": commit_label(),
            "at": dt.datetime.now(dt.timezone.utc).isoformat()[:19]}


def _pretend_new_split(split):
    """The split with a fixed PRETEND_NEW_SHARE of the items released before the cutoff marked
    new (is_new_item), their popularity zero: its new-item rates count those items."""
    import numpy as np

    rng = np.random.default_rng(0)
    pretend = ~split.is_new_item & (rng.random(split.n_items) < PRETEND_NEW_SHARE)
    return dataclasses.replace(split, is_new_item=pretend,
                               item_popularity=np.where(pretend, 0.0, split.item_popularity))


def _as_released(text, hgnn, types, pretend, k: int):
    """`hgnn` (n, d) numpy with the `pretend` rows replaced by the text-neighbour mean a new
    item gets (training.two_tower.train.text_neighbour_vectors)."""
    from training.two_tower.train import text_neighbour_vectors

    out = hgnn.copy()
    out[pretend] = text_neighbour_vectors(text, hgnn, types, k)[pretend]
    return out


def _items_as_released(inputs, pretend, k: int):
    """Two-tower item inputs with the `pretend` items as on their release day: unknown id,
    text-neighbour HGNN vector, no listeners (as an item without a popularity snapshot)."""
    import torch

    keep = torch.from_numpy(~pretend)
    hgnn = _as_released(inputs.text.numpy(), inputs.hgnn.numpy(),
                        inputs.codes["item_type"].numpy(), pretend, k)
    return dataclasses.replace(inputs, hgnn=torch.from_numpy(hgnn), ids=inputs.ids * keep,
                               popularity=inputs.popularity * keep[:, None].to(torch.float32))


def _hidden_history(split):
    """The split with every history emptied: each user with targets is scored as a user
    without history, every hold-out item of theirs a target."""
    from evaluation.split import Ragged

    return dataclasses.replace(split, histories=Ragged.from_lists([[]] * split.n_users))


@contextlib.contextmanager
def _forgetting(model, ids):
    """The model's new-item reference (two_tower.new_item_knn) without these learned ids, so
    that an item scored as new does not borrow from its own trained self."""
    if not getattr(model, "new_item_knn", 0):
        yield
        return
    saved = model.reference_type.clone()
    model.reference_type[ids] = -1
    try:
        yield
    finally:
        model.reference_type.copy_(saved)


def run_variant(workdir: Path, name: str, settings: dict, epochs: int,
                unseen: bool = False, scoring: tuple[str, tuple] | None = None) -> list[dict]:
    """`unseen`: the pretend-new items' streams are left out of the two-tower's training
    (examples and catalogue), so they are scored as items it never saw, as a real release
    is (their text unseen too); the warm rates are then of a model trained on less.
    `scoring`: (key, values) of a scoring-only setting (SCORING_SETTINGS): one training, scored
    once per value, each its own record <name>_<key><value> at the epoch best by the first
    value."""
    import numpy as np

    from training.two_tower.train import fit_two_tower

    objective, val, config = _objective(workdir, {**settings, "two_tower.epochs": epochs})
    frame, users, items, item_types = objective._load_frames()
    popularity = objective.popularity_snapshots(config.two_tower)
    splits = (objective.split, _hidden_history(objective.split),
              _pretend_new_split(objective.split))
    if unseen:
        left_out = set(np.asarray(objective.split.item_ids)[splits[2].is_new_item])
        frame = frame[~frame["item_id"].isin(left_out)].reset_index(drop=True)
        print(f"{name}: {len(left_out)} pretend-new items left out of training "
              f"({len(frame):,} examples left)", flush=True)
    key, values = scoring or ("", (None,))
    variants = {(f"{name}_{key}{v:g}" if v is not None else name): v for v in values}
    curve, hidden_curve, best = [], [], None

    def on_epoch(epoch: int, bundle) -> None:
        nonlocal best
        model = bundle.model
        user_vectors = _user_vectors(bundle, users)  # the scoring settings are items' only
        scored = {}
        for variant, value in variants.items():
            solved = None
            if key == "new_item_exposure":
                solved = _set_exposure(bundle, splits[0], user_vectors[0], items, float(value))
            elif value is not None:
                setattr(model, key, float(value))
            scored[variant] = _score(bundle, splits, user_vectors, items, config, variant)
            if solved is not None:
                scored[variant][0]["new_item_hgnn_weights"] = solved
        model.new_item_hgnn_weights = None  # back to training as it was
        rates = next(iter(scored.values()))[0]  # the first value's
        curve.append(round(rates["mean"], 4))
        hidden_curve.append({t: round(v, 4) for t, v in rates["hidden_history"].items()})
        print(f"{name}: epoch {epoch} validation HR@10 {rates['mean']:.4f} {rates['hr@10']}; "
              f"history hidden {hidden_curve[-1]}", flush=True)
        if best is None or rates["mean"] > best[1]:
            best = (epoch, rates["mean"], scored)

    t0 = time.perf_counter()
    fit_two_tower(frame, config.two_tower, item_types, on_epoch=on_epoch,
                  item_popularity=popularity)
    seconds = round(time.perf_counter() - t0)
    epoch, _, scored = best
    records = []
    for variant, value in variants.items():
        rates, hits, cold_hits, stream_hits = scored[variant]
        two_tower = dataclasses.asdict(config.two_tower)
        variant_settings = dict(settings)
        if value is not None:
            two_tower[key] = value
            variant_settings[f"two_tower.{key}"] = value
        record = {"name": variant, "kind": "two_tower", "settings": variant_settings,
                  "two_tower": two_tower, "best_epoch": epoch,
                  **({"unseen_items": True} if unseen else {}),
                  **rates, "curve": curve, "hidden_history_curve": hidden_curve,
                  "seconds": seconds, "n_examples": len(frame),
                  "validation_cutoff": val.cutoff.isoformat(),
                  "commit": commit_label(), "at": dt.datetime.now(dt.timezone.utc).isoformat()[:19]}
        _record(workdir, record, hits, cold_hits, stream_hits, objective.split.user_ids)
        records.append(record)
        print(f"{variant}: epoch {epoch} validation HR@10 {rates['mean']:.4f}, new items "
              f"{rates['new_items']}, pretend new {rates['pretend_new']}, new items' share of "
              f"top-10 slots {rates['new_item_slot_share']}", flush=True)
        for t, ranks in rates["new_item_ranks"].items():
            print(f"{variant}: new {t} items ({ranks['n_users']} users), median best rank by "
                  + ", ".join(f"{term} {r['median_rank']:.0f}" for term, r in ranks.items()
                              if term != "n_users"), flush=True)
    return records


def _set_exposure(bundle, split, user_vectors, items, exposure: float) -> dict:
    """Set the new items' weights solved for `exposure` (two_tower.new_item_exposure) as
    `gfm evaluate` solves them, on the same-sized fixed sample of the split's users with
    history; the solved weights and shares by type."""
    import numpy as np

    from evaluation.two_tower import set_new_item_weights
    from training.two_tower.new_items import exposure_sample

    with_history = split.user_ids[split.has_history]
    sample = [split.user_index[u] for u in exposure_sample(list(with_history))]
    return set_new_item_weights(bundle, bundle.item_inputs(items),
                                user_vectors[np.asarray(sample, dtype=np.int64)], exposure)


def _user_vectors(bundle, users) -> tuple:
    """(the users' vectors, the same users' as read with no history and no demographics)."""
    import numpy as np

    from training.two_tower.train import encode_users

    user_inputs = bundle.user_inputs(users)
    everyone = np.ones(len(user_inputs), dtype=bool)
    unknown = user_inputs.without_history(everyone).without_demographics(everyone)
    return encode_users(bundle, user_inputs), encode_users(bundle, unknown)


def _score(bundle, splits, user_vectors: tuple, items, config,
           name: str) -> tuple[dict, dict, dict, dict]:
    """(rates, per-user hits, cold users' hits, hits by the target's streams) of the bundle as
    it scores now on the validation split, the history-hidden one and the pretend-new one
    (`splits`, in that order; `user_vectors` from _user_vectors), with where new items rank
    under each term of the score."""
    import torch

    from evaluation.evaluate import evaluate_retriever
    from evaluation.two_tower import TwoTowerRetriever
    from training.two_tower.train import encode_items

    split, hidden_split, pretend_split = splits
    user_vectors, hidden_user_vectors = user_vectors
    item_inputs = bundle.item_inputs(items)
    item_vectors = encode_items(bundle, item_inputs)
    hits: dict = {}
    cold_hits: dict = {}
    retriever = TwoTowerRetriever(split, user_vectors, item_vectors, name)
    result = evaluate_retriever(split, retriever, progress=False, name=name, user_hits=hits,
                                cold_user_hits=cold_hits)
    hidden = evaluate_retriever(
        hidden_split, TwoTowerRetriever(hidden_split, hidden_user_vectors, item_vectors, name),
        progress=False, name=name)
    pretend_ids = item_inputs.ids[torch.from_numpy(pretend_split.is_new_item)]
    with _forgetting(bundle.model, pretend_ids):
        released = encode_items(bundle, _items_as_released(
            item_inputs, pretend_split.is_new_item, config.hgnn.inductive_knn))
    pretend = evaluate_retriever(
        pretend_split, TwoTowerRetriever(pretend_split, user_vectors, released, name),
        progress=False, name=name)
    rates = _rates(result, hidden, pretend)
    rates["by_streams"], stream_hits = _by_streams(split, retriever)
    rates["new_item_ranks"] = _new_item_ranks(split, user_vectors, item_vectors,
                                              _score_terms(bundle.model))
    rates["new_item_slot_share"] = _new_item_slot_share(split, user_vectors, item_vectors)
    return rates, hits, cold_hits, stream_hits


def _hidden_popularity(objective, config) -> dict:
    """Popularity's result with every history hidden: what every peer gives a user without
    history or training streams (ALS and EASE would still see the hidden users' training
    streams: scoring them there would not hide)."""
    from evaluation.evaluate import MODELS, evaluate_retriever

    hidden_split = _hidden_history(objective.split)
    return evaluate_retriever(hidden_split, MODELS["popularity"](hidden_split, objective.copy,
                                                                 config),
                              progress=False, name="popularity")


def _record_peer(workdir: Path, name: str, settings: dict | None, objective, retriever,
                 hidden: dict, pretend: dict | None, val) -> dict:
    """Score `retriever` on the validation split and append its peer record (settings: None =
    the ones it reports)."""
    from evaluation.evaluate import evaluate_retriever

    hits: dict = {}
    cold_hits: dict = {}
    result = evaluate_retriever(objective.split, retriever, progress=False, name=name,
                                user_hits=hits, cold_user_hits=cold_hits)
    by_streams, stream_hits = _by_streams(objective.split, retriever)
    record = {"name": name, "kind": "peer",
              "settings": settings if settings is not None else result.get("settings") or {},
              **_rates(result, hidden, pretend), "by_streams": by_streams,
              "validation_cutoff": val.cutoff.isoformat(),
              "commit": commit_label(), "at": dt.datetime.now(dt.timezone.utc).isoformat()[:19]}
    _record(workdir, record, hits, cold_hits, stream_hits, objective.split.user_ids)
    return record


def run_peers(workdir: Path) -> None:
    import numpy as np

    from evaluation.evaluate import MODELS, evaluate_retriever
    from evaluation.retrievers import PopularityRetriever, VectorKNNRetriever

    objective, val, config = _objective(workdir, {})
    hidden = _hidden_popularity(objective, config)
    # Pretend new: hgnn_knn with those items' text-neighbour vectors, text_knn as it is (a new
    # item has its text), popularity with no streams for them; ALS and EASE would still see
    # their training streams, so they are not measured.
    split = objective.split
    retrievers = {name: MODELS[name](split, objective.copy, config) for name in PEERS}
    pretend_split = _pretend_new_split(split)
    text, hgnn = retrievers["text_knn"].vectors, retrievers["hgnn_knn"].vectors
    codes = np.unique(split.item_types, return_inverse=True)[1]
    pretend_retrievers = {
        "hgnn_knn": VectorKNNRetriever(pretend_split, _as_released(
            text, hgnn, codes, pretend_split.is_new_item, config.hgnn.inductive_knn)),
        "text_knn": VectorKNNRetriever(pretend_split, text),
        "popularity": PopularityRetriever(pretend_split)}
    for name in PEERS:
        pretend = (evaluate_retriever(pretend_split, pretend_retrievers[name], progress=False,
                                      name=name) if name in pretend_retrievers else None)
        record = _record_peer(workdir, name, None, objective, retrievers[name], hidden, pretend,
                              val)
        print(f"{name}: validation HR@10 {record['mean']:.4f} {record['hr@10']}", flush=True)


def _neighbour_vectors(text, hgnn, types, released, pool, k: int, temperature: float):
    """`hgnn` with the `released` rows replaced by a mean of the HGNN vectors of their k
    text-nearest `pool` items of the same type: plain (temperature 0, what
    hgnn.inductive_vectors text_knn gives) or weighted by softmax(text cosine / temperature)."""
    import numpy as np

    from training.text_neighbours import normalise

    out = hgnn.copy()
    for t in np.unique(types):
        rows = np.flatnonzero((types == t) & released)
        candidates = np.flatnonzero((types == t) & pool)
        if len(rows) == 0 or len(candidates) == 0:
            continue
        sims = normalise(text[rows]) @ normalise(text[candidates]).T
        kk = min(k, len(candidates))
        top = np.argpartition(-sims, kk - 1, axis=1)[:, :kk]
        near = np.take_along_axis(sims, top, 1)
        weights = (np.exp((near - near.max(1, keepdims=True)) / temperature) if temperature
                   else np.ones_like(near))
        weights /= weights.sum(1, keepdims=True)
        out[rows] = normalise((hgnn[candidates][top] * weights[..., None]).sum(1))
    return out


def run_inductive(workdir: Path, ks: tuple[int, ...], temperatures: tuple[float, ...]) -> None:
    """hgnn_knn with other vectors for items without edges: the k text-nearest connected items'
    HGNN vectors, plainly averaged or softmax-weighted by text cosine. The items released inside
    the validation hold-out (new items) and the pretend-new ones get them (the latter from the
    other items only), every other item keeps its HGNN vector; recorded as peers named
    hgnn_knn_k<k>[_t<temperature>] (settings inductive_knn, temperature)."""
    import numpy as np

    from evaluation.evaluate import MODELS, evaluate_retriever
    from evaluation.retrievers import VectorKNNRetriever

    objective, val, config = _objective(workdir, {})
    split = objective.split
    hidden = _hidden_popularity(objective, config)
    text = MODELS["text_knn"](split, objective.copy, config).vectors
    hgnn = MODELS["hgnn_knn"](split, objective.copy, config).vectors
    codes = np.unique(split.item_types, return_inverse=True)[1]
    pretend_split = _pretend_new_split(split)
    warm = ~split.is_new_item & (np.abs(hgnn).sum(1) > 0)
    for k in ks:
        for temperature in temperatures:
            name = f"hgnn_knn_k{k}" + (f"_t{temperature:g}" if temperature else "")
            vectors = _neighbour_vectors(text, hgnn, codes, split.is_new_item, warm, k,
                                         temperature)
            pretend_vectors = _neighbour_vectors(
                text, vectors, codes, pretend_split.is_new_item,
                warm & ~pretend_split.is_new_item, k, temperature)
            pretend = evaluate_retriever(pretend_split,
                                         VectorKNNRetriever(pretend_split, pretend_vectors),
                                         progress=False, name=name)
            record = _record_peer(workdir, name, {"inductive_knn": k, "temperature": temperature},
                                  objective, VectorKNNRetriever(split, vectors), hidden, pretend,
                                  val)
            print(f"{name}: validation HR@10 {record['mean']:.4f}, new items "
                  f"{record['new_items']}, pretend new {record['pretend_new']}", flush=True)


def _latest(workdir: Path) -> dict[str, dict]:
    path = workdir / "reports" / RECORDS
    if not path.exists():
        raise SystemExit(f"{path} does not exist: run `{Path(__file__).name} run` first")
    out: dict[str, dict] = {}
    for line in path.read_text().splitlines():
        record = json.loads(line)
        out[record["name"]] = record  # the latest run of each name
    return out


def _settings_cell(record: dict) -> str:
    """A record's --set settings as a table cell (keys without their section)."""
    return ", ".join(f"{k.split('.', 1)[-1]}={v}" for k, v in record["settings"].items()
                     if k != "two_tower.threads") or "defaults"


def _f(x) -> str:
    return "–" if x is None else f"{x:.3f}"


def write_doc(workdir: Path, baseline: str, out: Path, also: list[Path] = (),
              versus: str = "ease", note: str = "") -> None:
    """`also`: workspaces of the same data and validation cutoff with other data settings
    (WORKSPACE_SETTINGS), whose variants join the table. `note`: a paragraph under the title
    (what the variants were, where a variant is a code change its settings do not show)."""
    from evaluation.stats import compare_pooled, format_difference
    from evaluation.user_hits import load_user_hits
    from gfm.config import load_config

    records, hits = {}, {}
    for directory in [workdir, *also]:
        config = load_config(directory)
        data = {key: getattr(getattr(config, key.split(".")[0]), key.split(".")[1])
                for key in WORKSPACE_SETTINGS}
        for name, record in _latest(directory).items():
            unseen = {"pretend_new_left_out": True} if record.get("unseen_items") else {}
            records[name] = {**record, "data_settings": {**data, **unseen}}
            hits.update(load_user_hits(directory / "reports" / HITS_DIR / f"{name}.npz"))
    for name in (baseline, versus):
        if name not in records:
            raise SystemExit(f"no record named {name!r}; have: {', '.join(records)}")
    cutoffs = {r["validation_cutoff"] for r in records.values()}
    if len(cutoffs) != 1:
        raise SystemExit(f"the records hold several validation cutoffs: {sorted(cutoffs)}")
    types = list(records[baseline]["hr@10"])
    lines = [
        "# Two-tower variants on the validation split",
        "",
        f"Written by `python bench/two_tower_variants.py doc --workdir {workdir.name}"
        + "".join(f" --also {a.name}" for a in also)
        + (f" --baseline {baseline}" if baseline != "in_batch" else "")
        + (f" --versus {versus}" if versus != "ease" else "")
        + (" --note ..." if note else "")
        + f" --out {out.name}` from the "
        "records of its `run` and `peers` commands. Validation cutoff "
        f"{records[baseline]['validation_cutoff'][:10]}: its hold-out ends at the workspace's "
        "cutoff, so nothing here reads the hold-out. HR@10 is discovery (history items left "
        "out), the mean is over item types; each two-tower row is its best epoch (the curve is "
        "per epoch). Δ is the paired difference to the named model, pooled over types and "
        "users, with its 95% bootstrap interval (users resampled; bold: it excludes 0).",
        "",
        *([note, ""] if note else []),
        "| variant | settings | off today's defaults | data settings | epoch | mean HR@10 | "
        + " | ".join(types)
        + f" | Δ vs {baseline} [95% CI] | Δ vs {versus} [95% CI] | cold users "
        "| cold users Δ vs popularity [95% CI] | history hidden | new items | pretend new "
        "| commit |",
        "|---|---|---|---|---:|---:|" + "---:|" * len(types) + "---|---|---|---|---|---|---|---|",
    ]

    def delta(name: str, versus: str) -> str:
        if name == versus or not all(n in hits for n in (name, versus)):
            return "–"
        p = compare_pooled(hits, name, versus, types)
        return "–" if p["diff"] is None else format_difference(p)

    from gfm.config import Config
    from training.two_tower.config import TwoTowerConfig

    default_data = {key: getattr(getattr(Config(), key.split(".")[0]), key.split(".")[1])
                    for key in WORKSPACE_SETTINGS}
    ignored = ("threads", "epochs")  # how fast, and how long (the best epoch is shown)
    defaults = {k: v for k, v in dataclasses.asdict(TwoTowerConfig()).items() if k not in ignored}

    def used(r: dict) -> dict:
        """The record's two-tower settings; a field added since it ran holds the behaviour
        before the field existed (ABSENT_MEANS), or else today's default (e.g. device)."""
        got = {k: v for k, v in (r.get("two_tower") or {}).items() if k not in ignored}
        return {**ABSENT_MEANS, **got} if got else {}

    def is_default(r: dict) -> bool:
        settings = used(r)
        return (bool(settings) and all(defaults.get(k) == v for k, v in settings.items())
                and r["data_settings"] == default_data)

    def off_defaults(r: dict) -> str:
        """What of the record's two-tower settings differs from today's defaults."""
        return ", ".join(f"{k}={v}" for k, v in used(r).items() if defaults.get(k, v) != v) or "–"

    for name, r in records.items():
        label = f"`{name}`" + (" **(defaults)**" if r["kind"] == "two_tower" and is_default(r)
                               else "")
        settings = _settings_cell(r)
        if r.get("new_item_hgnn_weights"):  # solved for new_item_exposure
            settings += " (new items' weight " + "/".join(
                f"{s['weight']:.3f}" for s in r["new_item_hgnn_weights"].values()) + ")"
        per_type = " | ".join(_f(r["hr@10"].get(t)) for t in types)
        cold = "/".join(_f(v) for v in r["cold_users"].values())
        hidden = "/".join(_f(r["hidden_history"].get(t)) for t in types) if (
            "hidden_history" in r) else "–"
        new = "/".join(_f(v) for v in r["new_items"].values())
        pretend = "/".join(_f(r["pretend_new"].get(t)) for t in types) if (
            r.get("pretend_new")) else "–"
        data = (", ".join(f"{k.split('.')[-1]}={v}" for k, v in r["data_settings"].items())
                if r["kind"] == "two_tower" else "–")
        differs = off_defaults(r) if r["kind"] == "two_tower" else "–"
        lines.append(f"| {label} | {settings} | {differs} | {data} | {r.get('best_epoch', '–')} | "
                     f"{_f(r['mean'])} | "
                     f"{per_type} | {delta(name, baseline)} | {delta(name, versus)} | {cold} | "
                     f"{delta(name + COLD, 'popularity' + COLD)} | "
                     f"{hidden} | {new} | {pretend} | {r['commit']} |")
    cold_n = next((r["cold_users_n"] for r in records.values() if r.get("cold_users_n")), None)
    lines += ["", "Cold users, history hidden, new items and pretend new: HR@10 per type ("
              + "/".join(types) + "). Cold users: the validation users without history at the "
              "validation cutoff"
              + (" (" + ", ".join(f"{t} {n:,}" for t, n in cold_n.items()) + ")" if cold_n
                 else "")
              + "; their Δ vs popularity is paired and pooled over types ('–' for records from "
              "before it was kept). New items have few users on the "
              "validation split, so they are wide. History hidden: every validation user with "
              "targets scored as a user without history and with unknown demographics (a user "
              "who signed up after the cutoff), every hold-out item a target. Pretend new: a "
              f"fixed {PRETEND_NEW_SHARE:.0%} of the older catalogue scored as on its release "
              "day (no id, text-neighbour HGNN vector, no listeners), only hold-out targets "
              "among them counted (a few hundred users, several times the real new items' "
              "count). History hidden counts every validation user with targets (thousands). "
              "'–': not measured (a record from before the measure, or a peer that would still "
              "see the items' or users' training streams). ![validation curves]"
              f"(img/{out.stem}.png)", ""]
    streams_plot = out.parent / "img" / f"{out.stem}_by_streams.png"
    measured, header, deltas = _stream_deltas(records, hits, baseline, types)
    lines += _streams_table(records, header, measured, deltas, baseline,
                            str(streams_plot.relative_to(out.parent)))
    lines += _seed_groups(records, types, defaults, used, off_defaults, is_default)
    out.write_text("\n".join(lines))
    _plot(records, out.parent / "img" / f"{out.stem}.png")
    if header:
        _plot_stream_deltas(records, header, deltas, baseline, versus, streams_plot)
    print(f"wrote {out}")


def _stream_deltas(records: dict[str, dict], hits: dict, baseline: str, types: list[str]
                   ) -> tuple[dict[str, list[str]], list[str], dict[str, list[dict | None]]]:
    """({name: its bucket labels} of the records that measured _by_streams, the header labels,
    {name: each bucket's paired comparison with the baseline, None where there is none});
    empty without the baseline among them. Buckets are matched by position: their edges depend
    on the validation split alone (one per doc), while their labels were written by the code
    of each record's day."""
    from evaluation.stats import compare_pooled

    measured = {n: list(r["by_streams"]) for n, r in records.items() if r.get("by_streams")}
    if baseline not in measured:
        return {}, [], {}
    n_buckets = len(measured[baseline])
    header = [b for b in measured.values() if len(b) == n_buckets][-1]  # the newest labels
    header = ["new" if b.startswith("released") else b for b in header]

    def delta(name: str, i: int) -> dict | None:
        if name == baseline or len(measured[name]) != len(header):
            return None
        a, b = hits.get(name + STREAMS, {}), hits.get(baseline + STREAMS, {})
        ka, kb = measured[name][i], measured[baseline][i]
        pairs = {t: (a[f"{t}|{ka}"], b[f"{t}|{kb}"]) for t in types
                 if f"{t}|{ka}" in a and f"{t}|{kb}" in b}
        if not pairs:
            return None
        c = compare_pooled({"a": {t: x for t, (x, _) in pairs.items()},
                            "b": {t: y for t, (_, y) in pairs.items()}}, "a", "b", list(pairs))
        return c if c["diff"] is not None else None

    return measured, header, {n: [delta(n, i) for i in range(len(header))] for n in measured}


def _plot_stream_deltas(records: dict[str, dict], header: list[str],
                        deltas: dict[str, list[dict | None]], baseline: str,
                        versus: str, path: Path) -> None:
    """Each two-tower variant's (and `versus`') paired difference to the baseline per bucket,
    with its 95% interval: the differences are a hundredth where the rates are tenths."""
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    shown = [n for n, d in deltas.items() if any(d)
             and (records[n]["kind"] == "two_tower" or n == versus)]
    fig = Figure(figsize=(10, 4.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_prop_cycle(color=colormaps["tab20"].colors)  # more variants than tab10's colours
    ax.axhline(0, color="grey", lw=1)
    step = min(0.12, 0.8 / max(len(shown), 1))  # a bucket's points stay within its own slot
    for k, name in enumerate(shown):
        xs = [i + (k - (len(shown) - 1) / 2) * step for i in range(len(header))]
        points = [(x, c) for x, c in zip(xs, deltas[name]) if c]
        ax.errorbar([x for x, _ in points], [c["diff"] for _, c in points],
                    yerr=[[c["diff"] - c["diff_ci"][0] for _, c in points],
                          [c["diff_ci"][1] - c["diff"] for _, c in points]],
                    fmt="o", capsize=3, label=name)
    ax.set_xticks(range(len(header)), header, rotation=20)
    ax.set_xlabel("target item's streams in the training window")
    ax.set_ylabel(f"HR@10 minus {baseline}'s (95% CI)")
    ax.set_title(f"paired with {baseline}, by the target's training streams (validation)")
    if shown:  # beside the axes: inside, it hid the points near 0
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def _streams_table(records: dict[str, dict], header: list[str], measured: dict,
                   deltas: dict[str, list[dict | None]], baseline: str,
                   plot: str = "") -> list[str]:
    """HR@10 by the target item's training streams (_by_streams) of the records that measured
    it, and each one's paired difference to the baseline per bucket (_stream_deltas); `plot`:
    the path of the differences' plot, relative to the doc."""
    from evaluation.stats import format_difference

    if not header:
        return []

    def rate(name: str, i: int) -> str:
        labels = measured[name]
        return _f(records[name]["by_streams"][labels[i]]) if len(labels) == len(header) else "–"

    lines = ["## By the target item's training streams", "",
             "HR@10 by the validation target's streams in the training window (what a learned "
             "id trained on): `new` holds the items released since the validation cutoff, then "
             "each bucket about a fifth of the older targets (bench/hits_by_item_popularity.py's "
             "buckets). Units: (user, type, bucket), users with history. Δ: paired with "
             f"`{baseline}` on the bucket's units, 95% bootstrap interval (bold: it excludes 0).",
             "",
             "| variant | " + " | ".join(header) + " | "
             + " | ".join(f"Δ {b}" for b in header) + " |",
             "|---|" + "---:|" * len(header) + "---|" * len(header)]
    for name in measured:
        lines.append(f"| `{name}` | " + " | ".join(rate(name, i) for i in range(len(header)))
                     + " | " + " | ".join(format_difference(c) if c else "–"
                                          for c in deltas[name]) + " |")
    if plot:
        lines += ["", f"![HR@10 minus {baseline}'s by the target's training streams]({plot})"]
    return lines + [""]


def write_pooled_doc(workdirs: list[Path], baseline: str, out: Path, versus: str = "ease",
                     note: str = "", title: str = "") -> None:
    """The variants run under the same names in several workspaces (each its own validation
    cutoff, e.g. the years before a rolling evaluation's first hold-out), their (user, type)
    units pooled: one table, paired differences over every unit of every workspace."""
    import numpy as np

    from evaluation.stats import compare_pooled, format_difference
    from evaluation.user_hits import load_user_hits

    per_workdir = [_latest(w) for w in workdirs]
    names = [n for n in per_workdir[0] if all(n in r for r in per_workdir[1:])]
    for name in (baseline, versus):
        if name not in names:
            raise SystemExit(f"{name!r} is not recorded in every workspace; in all: "
                             f"{', '.join(names) or 'none'}")
    parts: dict[str, dict[str, list[tuple]]] = {}
    for i, workdir in enumerate(workdirs):
        for name in names:
            for model, by_type in load_user_hits(
                    workdir / "reports" / HITS_DIR / f"{name}.npz").items():
                for t, (users, h) in by_type.items():
                    # a unit is a user at one validation cutoff: ids prefixed by the workspace
                    units = np.char.add(f"{i}/", users.astype(str))
                    parts.setdefault(model, {}).setdefault(t, []).append((units, h))
    hits = {model: {t: (np.concatenate([u for u, _ in p]), np.concatenate([h for _, h in p]))
                    for t, p in by_type.items()} for model, by_type in parts.items()}
    types = sorted({t for r in per_workdir for n in names for t in r[n]["hr@10"]})
    cutoffs = [r[baseline]["validation_cutoff"][:10] for r in per_workdir]

    def rates(name: str) -> dict[str, float | None]:
        return {t: (float(hits[name][t][1].mean()) if t in hits.get(name, {})
                    and len(hits[name][t][1]) else None) for t in types}

    def delta(a: str, b: str) -> str:
        if a == b or not all(n in hits for n in (a, b)):
            return "–"
        return format_difference(compare_pooled(hits, a, b, types))

    def units(name: str) -> str:
        return "/".join(str(len(hits[name][t][1])) if t in hits.get(name, {}) else "0"
                        for t in types)

    lines = [f"# {title or 'Two-tower variants, pooled over validation cutoffs'}", "",
             "Written by `python bench/two_tower_variants.py pooled "
             + " ".join(f"--workdir {w.name}" for w in workdirs)
             + (f" --baseline {baseline}" if baseline != "in_batch" else "")
             + (f" --versus {versus}" if versus != "ease" else "")
             + (" --title ..." if title else "") + (" --note ..." if note else "")
             + f" --out {out.name}` from the records of its "
             f"`run` and `peers` commands in {len(workdirs)} workspaces, validation cutoffs "
             f"{', '.join(cutoffs)}. Each workspace's validation hold-out ends at its own cutoff, "
             "so nothing here reads a hold-out that a result is reported on. HR@10 is discovery "
             "(history items left out), pooled over the workspaces' (user, type) units; each "
             "two-tower row is, per workspace, its best epoch (the mean curve is what epochs "
             "are chosen by). Δ is paired over the units, with its 95% bootstrap interval "
             "(bold: it excludes 0).", "", *([note, ""] if note else []),
             f"| variant | settings | units ({'/'.join(types)}) | mean HR@10 | "
             + " | ".join(types) + f" | Δ vs {baseline} [95% CI] | Δ vs {versus} [95% CI] | "
             "cold users | cold users Δ vs popularity [95% CI] | mean curve, per epoch | commit |",
             "|---|---|---|---:|" + "---:|" * len(types) + "---|---|---|---|---|---|"]
    plotted: dict[str, dict] = {}
    for name in names:
        records = [r[name] for r in per_workdir]
        first = records[0]
        settings = _settings_cell(first)
        r = rates(name)
        present = [v for v in r.values() if v is not None]
        mean = sum(present) / len(present) if present else None
        curves = [x["curve"] for x in records if x.get("curve")]
        curve = ([sum(c[e] for c in curves) / len(curves) for e in range(len(curves[0]))]
                 if curves and len({len(c) for c in curves}) == 1 else [])
        plotted[name] = {"kind": first["kind"], "curve": curve, "mean": mean}
        cold = rates(name + COLD) if name + COLD in hits else {}
        commits = ", ".join(sorted({x["commit"] for x in records}))
        lines.append(f"| `{name}` | {settings} | {units(name)} | {_f(mean)} | "
                     + " | ".join(_f(r[t]) for t in types)
                     + f" | {delta(name, baseline)} | {delta(name, versus)} | "
                     + ("/".join(_f(cold.get(t)) for t in types) if cold else "–")
                     + f" | {delta(name + COLD, 'popularity' + COLD)} | "
                     + (", ".join(_f(v) for v in curve) or "–") + f" | {commits} |")
    lines += ["", "Cold users: HR@10 per type (" + "/".join(types) + ") of the validation users "
              "without history at each validation cutoff, pooled; their Δ vs popularity is "
              "paired and pooled over types. The mean curve: the workspaces' validation HR@10 "
              "(mean over types) averaged epoch by epoch. ![mean validation curves]"
              f"(img/{out.stem}.png)", ""]
    out.write_text("\n".join(lines))
    _plot(plotted, out.parent / "img" / f"{out.stem}.png")
    print(f"wrote {out}")


def _seed_groups(records: dict, types: list[str], defaults: dict, used, off_defaults,
                 is_default) -> list[str]:
    """Markdown: the variants run with several seeds, each measure averaged over the seeds (a
    default is chosen from these, not from one seed's row)."""
    groups: dict[str, list[dict]] = {}
    for r in records.values():
        if r["kind"] != "two_tower" or not used(r):
            continue
        settings = {**defaults, **used(r)}  # a field added since the run: today's default
        # the epochs trained (the curve's length) too: the mean curve is what epochs are chosen by
        key = json.dumps([{k: v for k, v in settings.items() if k != "seed"},
                          r["data_settings"], len(r["curve"])], sort_keys=True, default=str)
        groups.setdefault(key, []).append(r)
    groups = {k: g for k, g in groups.items() if len({used(r)["seed"] for r in g}) > 1}
    if not groups:
        return []

    def mean(values) -> str:
        values = [v for v in values if v is not None]
        return _f(sum(values) / len(values)) if values else "–"

    def per_type(group: list[dict], measure: str) -> str:
        return "/".join(mean([(r.get(measure) or {}).get(t) for r in group]) for t in types)

    def mean_curve(group: list[dict]) -> list[float]:
        return [sum(r["curve"][e] for r in group) / len(group)
                for e in range(len(group[0]["curve"]))]

    lines = ["## Over seeds", "",
             "The variants run with more than one seed (two_tower.seed) for the same number of "
             "epochs, each measure the mean over its seeds' rows above (each row its own best "
             "epoch). The mean curve is the seeds' validation HR@10 averaged epoch by epoch: "
             "the number of epochs is chosen on it, not on one row's best.", "",
             "| variant (off today's defaults, seed aside) | seeds | runs | mean HR@10 | "
             "cold users | history hidden | new items | pretend new | mean curve, per epoch | "
             "its best epoch |", "|---|---|---:|---:|---|---|---|---|---|---:|"]
    for group in groups.values():
        first = group[0]
        differs = ", ".join(p for p in off_defaults(first).split(", ")
                            if not p.startswith("seed=")) or "–"
        label = differs + (" **(defaults)**" if any(is_default({**r, "two_tower": {
            **r["two_tower"], "seed": 0}}) for r in group) else "")
        if first["data_settings"].get("pretend_new_left_out"):
            label += " (pretend new left out of training)"
        seeds = ", ".join(str(s) for s in sorted({used(r)["seed"] for r in group}))
        curve = mean_curve(group)
        lines.append(f"| {label} | {seeds} | {len(group)} | {mean([r['mean'] for r in group])} "
                     f"| {per_type(group, 'cold_users')} | {per_type(group, 'hidden_history')} "
                     f"| {per_type(group, 'new_items')} | {per_type(group, 'pretend_new')} "
                     f"| {', '.join(_f(v) for v in curve)} "
                     f"| {max(range(len(curve)), key=curve.__getitem__) + 1} ({_f(max(curve))}) |")
    return lines + [""]


def _plot(records: dict[str, dict], path: Path) -> None:
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path.parent.mkdir(parents=True, exist_ok=True)
    figure = Figure(figsize=(7.5, 4.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    axes.set_prop_cycle(color=colormaps["tab20"].colors)  # more variants than tab10's colours
    for name, r in records.items():
        if r["kind"] == "two_tower":
            axes.plot(range(1, len(r["curve"]) + 1), r["curve"], marker="o", ms=3, label=name)
        elif r["mean"] is not None:
            axes.axhline(r["mean"], ls="--", lw=1, color="grey")
            axes.annotate(name, (1, r["mean"]), fontsize=7, color="grey")
    axes.set_xlabel("epoch")
    axes.set_ylabel("validation HR@10, mean over types")
    axes.set_title("two-tower variants (dashed: peers)")
    if any(r["kind"] == "two_tower" for r in records.values()):  # else no line has a label
        axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--workdir", type=Path, required=True)
    run.add_argument("--name", required=True)
    run.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    run.add_argument("--epochs", type=int, default=7,
                     help="epochs to train; every one is scored and the best is recorded")
    run.add_argument("--unseen-items", action="store_true",
                     help="leave the pretend-new items out of training: scored as never seen")
    run.add_argument("--scoring", default="", metavar="KEY=V1,V2,...",
                     help="a scoring-only two_tower setting (" + ", ".join(SCORING_SETTINGS)
                          + ") and values to score the one training with, each recorded as "
                          "<name>_<KEY><V>")
    peers = sub.add_parser("peers")
    peers.add_argument("--workdir", type=Path, required=True)
    inductive = sub.add_parser("inductive", help="hgnn_knn with other text-neighbour vectors "
                               "for items without edges (k, softmax temperature)")
    inductive.add_argument("--workdir", type=Path, required=True)
    inductive.add_argument("--k", default="5,10,20,50", metavar="K1,K2,...")
    inductive.add_argument("--temperatures", default="0,0.05,0.1", metavar="T1,T2,...",
                           help="0: the plain mean")
    slots = sub.add_parser("slots", help="the served model's new-item share of top-10 slots "
                           "at each new_item_hgnn_weight (label-free: reads no hold-out stream)")
    slots.add_argument("--workdir", type=Path, required=True)
    slots.add_argument("--weights", default="1,1.1,1.2,1.3,1.4", metavar="W1,W2,...")
    doc = sub.add_parser("doc")
    doc.add_argument("--workdir", type=Path, required=True)
    doc.add_argument("--baseline", default="in_batch")
    doc.add_argument("--versus", default="ease", help="a second model every row is paired with")
    doc.add_argument("--note", default="", help="a paragraph under the title: what the variants "
                                                "were where their settings do not show it")
    doc.add_argument("--out", type=Path, default=REPO / "docs" / "two_tower_variants.md")
    doc.add_argument("--also", type=Path, action="append", default=[],
                     help="another workspace of the same data and validation cutoff")
    pooled = sub.add_parser("pooled", help="the variants recorded in several workspaces (each "
                            "its own validation cutoff), their users pooled")
    pooled.add_argument("--workdir", type=Path, action="append", required=True)
    pooled.add_argument("--baseline", default="in_batch")
    pooled.add_argument("--versus", default="ease")
    pooled.add_argument("--note", default="")
    pooled.add_argument("--title", default="")
    pooled.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.command == "run":
        import yaml

        settings = {}
        for pair in args.set:
            key, _, value = pair.partition("=")
            if key == "two_tower.epochs":  # run_variant sets it from --epochs
                parser.error("set the epochs with --epochs N, not --set two_tower.epochs")
            settings[key] = yaml.safe_load(value)
        scoring = None
        if args.scoring:
            key, _, values = args.scoring.partition("=")
            key = key.removeprefix("two_tower.")
            if key not in SCORING_SETTINGS or not values:
                parser.error(f"--scoring takes KEY=V1,V2,... with KEY one of "
                             f"{', '.join(SCORING_SETTINGS)}, got {args.scoring!r}")
            if f"two_tower.{key}" in settings:
                parser.error(f"give two_tower.{key} with --scoring or --set, not both")
            scoring = (key, tuple(float(v) for v in values.split(",")))
        run_variant(args.workdir, args.name, settings, args.epochs, args.unseen_items, scoring)
    elif args.command == "peers":
        run_peers(args.workdir)
    elif args.command == "inductive":
        run_inductive(args.workdir, tuple(int(k) for k in args.k.split(",")),
                      tuple(float(t) for t in args.temperatures.split(",")))
    elif args.command == "slots":
        result = served_slot_shares(args.workdir, tuple(float(w) for w in args.weights.split(",")))
        with open(args.workdir / "reports" / SLOTS_RECORDS, "a") as f:
            f.write(json.dumps(result) + "\n")
        print(json.dumps(result))
    elif args.command == "pooled":
        write_pooled_doc(args.workdir, args.baseline, args.out, args.versus, args.note, args.title)
    else:
        write_doc(args.workdir, args.baseline, args.out, args.also, args.versus, args.note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
