"""Hit-Rate@k, MRR and catalogue coverage per top-level item type, for any set of retrievers.

Protocol (DESIGN.md; the paper's Hit-Rate@10 per item type on the hold-out):
- Every model scores every candidate (exact); items are ranked per type, among that type's
  candidates only.
- Discovery (primary): items in the user's history at the cutoff are neither recommended nor
  counted as targets. A user counts for a type if they have a history and streamed, in the
  hold-out, an item of that type that is not in their history; a hit if one of those items is in
  their top k of the type.
- Inclusive: history items may be recommended and count as targets.
- Cold start: users without history (their hit rate, with whatever fallback the model has), and
  users with history restricted to hold-out targets released at/after the cutoff (new items).
- Coverage@k: share of a type's candidates in at least one counted user's top k; overall: the
  same over all candidates.

Adding a model: implement `evaluation.retrievers.Retriever` and register a builder in MODELS.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from evaluation import metrics as m
from evaluation.cold_start import ColdStartTally, write_cold_start_reports
from evaluation.retrievers import (
    ALSRetriever,
    EASERetriever,
    ModelUnavailable,
    PopularityRetriever,
    Retriever,
    VectorKNNRetriever,
)
from evaluation.split import EvalSplit
from evaluation.two_tower import build_two_tower
from gfm.config import Config
from gfm.errors import GfmError, WorkspaceError
from gfm.workspace import Workspace

logger = logging.getLogger(__name__)

PRIMARY = "exclude_history"
INCLUSIVE = "inclusive"
COLD_USERS = "cold_users"
NEW_ITEMS = "new_items"
GROUPS = (PRIMARY, INCLUSIVE, COLD_USERS, NEW_ITEMS)
SCORE_BYTES_PER_BATCH = 64 * 2**20  # bound on one batch's (users x items) float32 score matrix


# ---------------------------------------------------------------------------------------------
# Models


def served_lineage(workspace: Workspace) -> dict[str, Any] | None:
    """The metadata (lineage) of the served two-tower, read from its model-store entry without
    loading its weights; None when no model is served."""
    from training.two_tower.store import bentoml_home, model_store, served_tag

    try:
        tag = served_tag(workspace)
    except WorkspaceError:
        return None
    bentoml_home(workspace)
    import bentoml

    try:
        return dict(bentoml.models.get(tag, _model_store=model_store(workspace)).info.metadata)
    except bentoml.exceptions.NotFound:
        raise ModelUnavailable(f"the served model {tag} is not in "
                               f"{workspace.root / 'bentoml'}: run `gfm train two-tower`") from None


def _last_text_vectors(workspace: Workspace) -> Path:
    """The text vectors `gfm embed` last wrote or confirmed (by its json, not the newest mtime:
    a rerun on unchanged items only touches the version's json)."""
    from transforms.text_embedding import latest_text_embedding

    try:
        return latest_text_embedding(workspace)
    except GfmError as exc:
        raise ModelUnavailable(str(exc)) from None


def _last_hgnn_vectors(workspace: Workspace) -> Path:
    """The HGNN vectors `gfm train hgnn` last trained or confirmed (reports/hgnn_metrics.json)."""
    directory = workspace.features_dir / "item_hgnn_embedding"
    metrics = workspace.reports_dir / "hgnn_metrics.json"
    try:
        version = json.loads(metrics.read_text())["version"]
    except (OSError, ValueError, KeyError):
        raise ModelUnavailable(f"no HGNN run recorded in {metrics} (vectors in {directory}): "
                               "run `gfm train hgnn`") from None
    path = directory / f"{version}.parquet"
    if not path.exists():
        raise ModelUnavailable(f"{metrics} names HGNN {version}, but {path} does not exist: "
                               "run `gfm train hgnn`")
    return path


def vectors_path(workspace: Workspace, feature_view: str, lineage_key: str,
                 last_run: Callable[[Workspace], Path]) -> Path:
    """The vectors a KNN baseline reads: the exact version the served two-tower names in its
    lineage (`lineage_key`), so that the baselines and the model share their inputs; without a
    served model (or a version in its lineage), the one the stage last wrote. Never a guess:
    a named version that is missing raises ModelUnavailable."""
    version = (served_lineage(workspace) or {}).get(lineage_key)
    if not version:
        return last_run(workspace)
    path = workspace.features_dir / feature_view / f"{version}.parquet"
    if not path.exists():
        raise ModelUnavailable(f"the served two-tower names {lineage_key} {version}, but {path} "
                               "does not exist")
    return path


Builder = Callable[[EvalSplit, Workspace, Config], Retriever]


def _vector_knn(feature_view: str, lineage_key: str,
                last_run: Callable[[Workspace], Path]) -> Builder:
    """A builder of VectorKNN over the vectors of `feature_view` (see vectors_path)."""

    def build(split: EvalSplit, workspace: Workspace, config: Config) -> Retriever:
        path = vectors_path(workspace, feature_view, lineage_key, last_run)
        retriever = VectorKNNRetriever.from_parquet(split, path)
        retriever.source = str(path)
        return retriever

    return build


def build_hgnn_knn(split: EvalSplit, workspace: Workspace, config: Config) -> Retriever:
    """hgnn_knn; with evaluation.hgnn_knn_new_item_exposure set, its new items lifted to that
    exposure (VectorKNNRetriever.lift_new_items), the solved offsets in its settings."""
    retriever = _vector_knn("item_hgnn_embedding", "hgnn_version", _last_hgnn_vectors)(
        split, workspace, config)
    exposure = config.evaluation.hgnn_knn_new_item_exposure
    if exposure:
        offsets = retriever.lift_new_items(exposure)
        retriever.settings = {"new_item_exposure": exposure,
                              "new_item_offset": {t: s["offset"] for t, s in offsets.items()}}
    return retriever


def build_als(split: EvalSplit, workspace: Workspace, config: Config) -> Retriever:
    e = config.evaluation
    settings = {"factors": e.als_factors, "regularization": e.als_regularization,
                "alpha": e.als_alpha, "iterations": e.als_iterations}
    retriever = ALSRetriever(split, **settings)
    retriever.settings = settings
    return retriever


def build_ease(split: EvalSplit, workspace: Workspace, config: Config) -> Retriever:
    e = config.evaluation
    retriever = EASERetriever(split, l2=e.ease_l2, max_items=e.ease_max_items)
    retriever.settings = {"l2": e.ease_l2}
    return retriever


# name -> builder(split, workspace, config). `gfm evaluate` runs them in this order (the served
# model first).
MODELS: dict[str, Builder] = {
    "unified_2t": lambda split, workspace, config: build_two_tower(split, workspace),
    "als": build_als,
    "ease": build_ease,
    "hgnn_knn": build_hgnn_knn,
    "text_knn": _vector_knn("item_text_embedding", "text_version", _last_text_vectors),
    "popularity": lambda split, workspace, config: PopularityRetriever(split),
}


# ---------------------------------------------------------------------------------------------
# Evaluation


def _type_codes(split: EvalSplit) -> np.ndarray:
    codes = {t: i for i, t in enumerate(split.types)}
    return np.fromiter((codes[t] for t in split.item_types), dtype=np.int64, count=split.n_items)


def user_counts(split: EvalSplit) -> dict[str, dict[str, int]]:
    """Users counted per group and type (independent of the model)."""
    n_items = split.n_items
    users = np.repeat(np.arange(split.n_users), split.targets.lengths)
    items = split.targets.values
    history_keys = np.repeat(np.arange(split.n_users), split.histories.lengths) * n_items
    in_history = np.isin(users * n_items + items, history_keys + split.histories.values)
    warm = split.has_history[users]
    codes = _type_codes(split)[items]
    out: dict[str, dict[str, int]] = {group: {} for group in GROUPS}
    for code, t in enumerate(split.types):
        of_type = codes == code
        masks = {
            PRIMARY: of_type & warm & ~in_history,
            INCLUSIVE: of_type & warm,
            COLD_USERS: of_type & ~warm,
            NEW_ITEMS: of_type & warm & ~in_history & split.is_new_item[items],
        }
        for group, mask in masks.items():
            out[group][t] = int(len(np.unique(users[mask])))
    return out


@dataclass
class _Tally:
    """Running sums of one (group, type) over user batches."""

    n_candidates: int
    n_users: int = 0
    hits: float = 0.0
    reciprocal_ranks: float = 0.0
    covered: np.ndarray = field(init=False)
    # Per-user hits (for confidence intervals and paired tests): (user indices, bool hits) per
    # batch, filled when add() is given the users.
    user_hits: list[tuple[np.ndarray, np.ndarray]] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.covered = np.zeros(self.n_candidates, dtype=bool)

    def add(self, best: np.ndarray, k: int, mrr_k: int, top: np.ndarray | None = None,
            users: np.ndarray | None = None) -> None:
        """`best`: the counted users' best target ranks; `top`: their top k (for coverage);
        `users`: their split indices, to keep the per-user hits."""
        self.n_users += len(best)
        hits = m.hits_at_k(best, k)
        if users is not None:
            self.user_hits.append((np.asarray(users, dtype=np.int64), hits))
        self.hits += float(hits.sum())
        self.reciprocal_ranks += float(m.reciprocal_ranks_at_k(best, mrr_k).sum())
        if top is not None:
            self.covered |= m.covered_items(top, k, self.n_candidates)

    def hit_rate(self) -> float:
        return self.hits / self.n_users if self.n_users else math.nan

    def mrr(self) -> float:
        return self.reciprocal_ranks / self.n_users if self.n_users else math.nan


def _number(x: float) -> float | None:
    return None if x is None or math.isnan(x) else round(float(x), 6)


def _auto_batch_size(n_items: int) -> int:
    return int(max(1, min(4096, SCORE_BYTES_PER_BATCH // (4 * max(n_items, 1)))))


def _type_scores(scores: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """The columns of one type: a view when they are contiguous (as load_split orders them)."""
    if len(columns) and columns[-1] - columns[0] == len(columns) - 1:
        return scores[:, columns[0]:columns[-1] + 1]
    return scores[:, columns]


def _tally_type(
    tallies: Mapping[str, _Tally],
    scores: np.ndarray,
    warm: np.ndarray,
    targets: tuple[np.ndarray, np.ndarray, np.ndarray],
    history: tuple[np.ndarray, np.ndarray],
    k: int,
    mrr_k: int,
    users: np.ndarray | None = None,
    observe: Callable[..., None] | None = None,
) -> None:
    """Add one batch's users to the tallies of one type.

    scores: (batch, n_type) of the type's candidates; targets: (rows, cols, is_new) of the
    batch's hold-out pairs of the type; history: (rows, cols) of its history pairs; users: the
    batch's split user indices (to keep the per-user hits of the primary setting and of the
    users without history); observe: called
    with (rows, cols, ranks, ranks_fresh, fresh, warm) for more tallies (evaluation.cold_start).
    """
    n_rows = len(scores)
    rows, cols, is_new = targets
    h_rows, h_cols = history
    # Discovery: a target already in the history does not count, and history items do not
    # take places in the ranking (ranks: among all candidates of the type).
    ranks, ranks_fresh, fresh = m.discovery_ranks(scores, rows, cols, h_rows, h_cols)

    best = m.best_ranks(ranks, rows, n_rows)
    counted = best != m.NO_RANK
    cold = counted & ~warm
    tallies[COLD_USERS].add(best[cold], k, mrr_k, users=users[cold] if users is not None else None)
    counted &= warm
    tallies[INCLUSIVE].add(best[counted], k, mrr_k, m.top_k(scores[counted], k))

    best = m.best_ranks(ranks_fresh[fresh], rows[fresh], n_rows)
    counted = (best != m.NO_RANK) & warm
    masked = scores[counted]  # a copy: the history is masked out for the top k
    position = np.cumsum(counted) - 1  # batch row -> row of `masked`
    in_masked = counted[h_rows]
    masked[position[h_rows[in_masked]], h_cols[in_masked]] = -np.inf
    tallies[PRIMARY].add(best[counted], k, mrr_k, m.top_k(masked, k),
                         users[counted] if users is not None else None)

    new = fresh & is_new
    best = m.best_ranks(ranks_fresh[new], rows[new], n_rows)
    counted = (best != m.NO_RANK) & warm
    tallies[NEW_ITEMS].add(best[counted], k, mrr_k,
                           users=users[counted] if users is not None else None)
    if observe is not None:
        observe(rows, cols, ranks, ranks_fresh, fresh, warm)


def evaluate_retriever(
    split: EvalSplit,
    retriever: Retriever,
    k: int = 10,
    mrr_k: int = 100,
    batch_size: int | None = None,
    progress: bool = True,
    name: str = "model",
    user_hits: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    cold_user_hits: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    new_item_hits: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
) -> dict[str, Any]:
    """Metrics of one retriever: the primary setting at the top level, the others nested.

    Beside hr@k, `hr@k_ci` is its 95% bootstrap interval per type (users resampled).
    `user_hits`, if given, is filled with {type: (user indices, bool hits)} of the primary
    setting's counted users, sorted by user (for paired comparisons, evaluation.stats);
    `cold_user_hits` the same for the users without history, `new_item_hits` for the users
    counted on new items."""
    from evaluation.stats import bootstrap_ci

    users = split.eval_users()
    batch_size = batch_size or _auto_batch_size(split.n_items)
    codes = _type_codes(split)
    tallies = {t: {g: _Tally(len(split.type_items[t])) for g in GROUPS} for t in split.types}
    cold_start = ColdStartTally(split, k)
    with tqdm(total=len(users), desc=f"evaluate {name}", unit="user",
              disable=None if progress else True) as bar:
        for start in range(0, len(users), batch_size):
            batch = users[start:start + batch_size]
            scores = retriever.score(batch)
            if scores.shape != (len(batch), split.n_items):
                raise ValueError(f"{name}: score() returned {scores.shape}, "
                                 f"expected {(len(batch), split.n_items)}")
            if not np.isfinite(scores).all():
                raise ValueError(f"{name}: score() returned NaN or infinite scores")
            warm = split.has_history[batch]
            target_rows, target_items = split.targets.take(batch)
            history_rows, history_items = split.histories.take(batch)
            for code, t in enumerate(split.types):
                of_type = codes[target_items] == code
                targets = (target_rows[of_type], split.type_position[target_items[of_type]],
                           split.is_new_item[target_items[of_type]])
                of_type = codes[history_items] == code
                history = (history_rows[of_type], split.type_position[history_items[of_type]])
                _tally_type(tallies[t], _type_scores(scores, split.type_items[t]), warm,
                            targets, history, k, mrr_k, users=batch,
                            observe=functools.partial(cold_start.add, t))
            bar.update(len(batch))

    hr, mrr, cov = f"hr@{k}", f"mrr@{mrr_k}", f"coverage@{k}"

    def group_metrics(group: str, with_coverage: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            hr: {t: _number(tallies[t][group].hit_rate()) for t in split.types},
            mrr: {t: _number(tallies[t][group].mrr()) for t in split.types},
        }
        if with_coverage:
            covered = sum(int(tallies[t][group].covered.sum()) for t in split.types)
            out[cov] = _number(covered / split.n_items if split.n_items else math.nan)
            out[f"{cov}_by_type"] = {
                t: _number(tallies[t][group].covered.mean()) if len(split.type_items[t]) else None
                for t in split.types
            }
        return out

    result = group_metrics(PRIMARY, with_coverage=True)
    per_type = {t: _collect_hits(tallies[t][PRIMARY]) for t in split.types}
    ci = {}
    for t, (_, hits) in per_type.items():
        lo, hi = bootstrap_ci(hits)
        ci[t] = None if math.isnan(lo) else [_number(lo), _number(hi)]
    ordered: dict[str, Any] = {}
    for key, value in result.items():  # hr@k_ci right after hr@k
        ordered[key] = value
        if key == hr:
            ordered[f"{hr}_ci"] = ci
    result = ordered
    if user_hits is not None:
        user_hits.update(per_type)
    if cold_user_hits is not None:
        cold_user_hits.update({t: _collect_hits(tallies[t][COLD_USERS]) for t in split.types})
    if new_item_hits is not None:
        new_item_hits.update({t: _collect_hits(tallies[t][NEW_ITEMS]) for t in split.types})
    result[INCLUSIVE] = group_metrics(INCLUSIVE, with_coverage=True)
    result[COLD_USERS] = group_metrics(COLD_USERS, with_coverage=False)
    result[NEW_ITEMS] = group_metrics(NEW_ITEMS, with_coverage=False)
    result["cold_start"] = cold_start.result()
    if retriever.source:
        result["source"] = retriever.source
    if retriever.settings:
        result["settings"] = retriever.settings
    return result


def _collect_hits(tally: _Tally) -> tuple[np.ndarray, np.ndarray]:
    """(user indices, bool hits) of a tally's counted users, sorted by user."""
    if not tally.user_hits:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    users = np.concatenate([u for u, _ in tally.user_hits])
    hits = np.concatenate([h for _, h in tally.user_hits])
    order = np.argsort(users, kind="stable")
    return users[order], hits[order]


def evaluate_retrievers(
    split: EvalSplit,
    retrievers: Mapping[str, Retriever],
    k: int = 10,
    mrr_k: int = 100,
    batch_size: int | None = None,
    progress: bool = True,
    user_hits: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] | None = None,
) -> dict[str, Any]:
    """{"split": ..., "settings": ..., "results": {model: metrics}}, ready for write_reports.
    `user_hits`, if given, is filled with {model: {type: (user indices, bool hits)}}. With
    popularity among the retrievers, each other model's cold_start gains "versus_popularity":
    its paired difference to popularity on the users without history; with text_knn, gains
    "new_items_versus_text_knn": its paired difference to text_knn on the users counted on
    new items (text is what a new item has)."""
    from evaluation.cold_start import (
        COLD_REFERENCE,
        NEW_ITEM_REFERENCE,
        NEW_ITEMS_VERSUS,
        versus_reference,
    )

    results, cold_hits, new_hits = {}, {}, {}
    for name, retriever in retrievers.items():
        hits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        cold_hits[name], new_hits[name] = {}, {}
        results[name] = evaluate_retriever(split, retriever, k, mrr_k, batch_size, progress, name,
                                           user_hits=hits, cold_user_hits=cold_hits[name],
                                           new_item_hits=new_hits[name])
        if user_hits is not None:
            user_hits[name] = hits
    types = list(split.types)
    for name, paired in versus_reference(cold_hits, types).items():
        results[name]["cold_start"][f"versus_{COLD_REFERENCE}"] = paired
    for name, paired in versus_reference(new_hits, types, NEW_ITEM_REFERENCE).items():
        results[name]["cold_start"][NEW_ITEMS_VERSUS] = paired
    return {
        "split": {**split.summary(), "n_users": user_counts(split)},
        "settings": {
            "k": k,
            "mrr_k": mrr_k,
            "primary": PRIMARY,
            "ranking": "exact scoring over all candidates, top k per top-level item type",
        },
        "results": results,
    }


# ---------------------------------------------------------------------------------------------
# Reports


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{t} {n:,}" for t, n in counts.items())


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |",
             "|:--" + "|--:" * (len(header) - 1) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def format_markdown(report: Mapping[str, Any]) -> str:
    """The report as markdown: discovery (primary), inclusive and cold-start tables."""
    split, settings, results = report["split"], report["settings"], report["results"]
    k, mrr_k = settings["k"], settings["mrr_k"]
    hr, mrr, cov = f"hr@{k}", f"mrr@{mrr_k}", f"coverage@{k}"
    types = list(split["n_items"])
    counts = split["n_users"]

    def setting_table(get: Callable[[Mapping[str, Any]], Mapping[str, Any]]) -> str:
        header = (["model"] + [f"HR@{k} {t}" for t in types] + [f"MRR@{mrr_k} {t}" for t in types]
                  + [f"coverage@{k}"])
        rows = [[name] + [_fmt(get(r)[hr].get(t)) for t in types]
                + [_fmt(get(r)[mrr].get(t)) for t in types] + [_fmt(get(r)[cov])]
                for name, r in results.items()]
        return _table(header, rows)

    cold_header = (["model"] + [f"no history: {t}" for t in types]
                   + [f"new items: {t}" for t in types])
    cold_rows = [[name] + [_fmt(r[COLD_USERS][hr].get(t)) for t in types]
                 + [_fmt(r[NEW_ITEMS][hr].get(t)) for t in types] for name, r in results.items()]
    sample = ""
    if split.get("sampled_from_n_users"):
        sample = (f" Sample: {split['n_users_with_targets']:,} of the "
                  f"{split['sampled_from_n_users']:,} users with hold-out targets.")
    cutoff = (split.get("cutoff") or "?")[:10]
    holdout_end = (split.get("holdout_end") or "?")[:10]
    protocol = ""
    if split.get("protocol") == "per_user":
        protocol = (" Per-user protocol (leave-last-N-out): each user's events are shifted so "
                    "that their last items start the hold-out at the cutoff.")
    parts = [
        "# Offline evaluation",
        f"Cutoff {cutoff}, hold-out [{cutoff}, {holdout_end}).{protocol} Candidates (top-level "
        f"items released before the hold-out ends): {_counts(split['n_items'])}; released since "
        f"the cutoff: {_counts(split['n_new_items'])}. Exact scoring over every candidate; ranking "
        f"per item type.{sample}",
        "## Discovery (primary): items in the user's history excluded",
        f"Users with history and a new hold-out item of the type: {_counts(counts[PRIMARY])}.",
        setting_table(lambda r: r),
        "## Inclusive: history items may be recommended",
        f"Users with history and a hold-out item of the type: {_counts(counts[INCLUSIVE])}.",
        setting_table(lambda r: r[INCLUSIVE]),
        f"## Cold start: HR@{k}",
        f"No history: users without history at the cutoff ({_counts(counts[COLD_USERS])}). "
        f"New items: users with history, counting only hold-out items released at/after the "
        f"cutoff, history excluded ({_counts(counts[NEW_ITEMS])}).",
        _table(cold_header, cold_rows),
    ]
    return "\n\n".join(parts) + "\n"


def plot_hit_rate(report: Mapping[str, Any], path: Path) -> None:
    """Grouped bars: HR@k of every model, per item type (primary setting)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    k = report["settings"]["k"]
    results = report["results"]
    types = list(report["split"]["n_items"])
    models = list(results)
    figure = Figure(figsize=(max(6.0, 1.2 * len(types) * max(len(models), 1)), 4.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    width = 0.8 / max(len(models), 1)
    x = np.arange(len(types))
    for i, name in enumerate(models):
        values = [results[name][f"hr@{k}"].get(t) for t in types]
        heights = [v if v is not None else 0.0 for v in values]
        bars = axes.bar(x + (i - (len(models) - 1) / 2) * width, heights, width, label=name)
        axes.bar_label(bars, labels=[_fmt(v) if v is not None else "n/a" for v in values],
                       fontsize=7, padding=2)
    axes.set_xticks(x, types)
    axes.set_ylabel(f"HR@{k}")
    axes.set_ylim(0, min(1.0, max([0.05] + [(v or 0) * 1.2 for r in results.values()
                                            for v in r[f"hr@{k}"].values()])))
    cutoff = str(report["split"].get("cutoff"))[:10]
    axes.set_title(f"HR@{k} per item type (history excluded), cutoff {cutoff}")
    if models:
        axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def write_reports(report: Mapping[str, Any], reports_dir: Path) -> dict[str, Path]:
    """metrics.json, metrics.md and hr_at_10.png (named after k) under reports_dir, and the
    cold-start plots hr_by_item_age.png and cold_users_hr.png (evaluation.cold_start)."""
    reports_dir = Path(reports_dir)
    reports_dir.mkdir(parents=True, exist_ok=True)
    k = report["settings"]["k"]
    paths = {
        "json": reports_dir / "metrics.json",
        "markdown": reports_dir / "metrics.md",
        "plot": reports_dir / f"hr_at_{k}.png",
    }
    paths["json"].write_text(json.dumps(report, indent=2) + "\n")
    paths["markdown"].write_text(format_markdown(report))
    plot_hit_rate(report, paths["plot"])
    paths.update(write_cold_start_reports(report, reports_dir, paths["markdown"]))
    return paths
