"""Cold start, looked at: HR@k by item age and HR@k of users without history, with intervals.

Both are tallied inside the evaluation loop (`evaluate_retriever` hands every batch and type to
`ColdStartTally.add`), from the target ranks it computes anyway: no second scoring pass.

- Item age: days from an item's release to the cutoff, in buckets (negative = released during
  the hold-out: the "new items" of the cold-start table). Per bucket, like the discovery
  setting: users with history at the cutoff who streamed, in the hold-out, an item of the type
  and bucket that is not in their history; a hit if one of those items is in their top k of
  the type (history excluded from the ranking). A user counts in every bucket they have such a
  target in.
- Users without history: a hit if any of their hold-out items of the type is in their top k.
Each hit rate has a 95% bootstrap interval over its users (evaluation.stats.bootstrap_ci).

`write_cold_start_reports` adds `hr_by_item_age.png` and `cold_users_hr.png` beside the other
reports and a markdown section.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from evaluation import metrics as m
from evaluation.split import EvalSplit
from evaluation.stats import bootstrap_ci, compare_models, compare_pooled, format_difference

# Every model is compared with this one on users without history (what the paper compares its
# cold-start users with).
COLD_REFERENCE = "popularity"
# ... and on new items with this one: text is what an item released since the cutoff has (the
# issue's bar for zero-shot reach). Key of the paired differences in a model's cold_start.
NEW_ITEM_REFERENCE = "text_knn"
NEW_ITEMS_VERSUS = f"new_items_versus_{NEW_ITEM_REFERENCE}"
POOLED = "all types"

# (lower bound in days, inclusive; label). Upper bound = the next lower bound.
AGE_BUCKETS: tuple[tuple[float, str], ...] = (
    (-math.inf, "released in hold-out"),
    (0, "0-13 d"),
    (14, "14-29 d"),
    (30, "30-89 d"),
    (90, "90-364 d"),
    (365, "1 y+"),
)


def item_age_days(split: EvalSplit) -> np.ndarray:
    """(n_items,) float days from release to the cutoff; nan where the release is unknown."""
    created = np.asarray(split.item_created_at, dtype="datetime64[s]")
    if split.cutoff is None or len(created) != split.n_items:
        return np.full(split.n_items, np.nan)
    cutoff = np.datetime64(split.cutoff, "s")
    age = (cutoff - created).astype("timedelta64[s]").astype(np.float64) / 86_400.0
    age[np.isnat(created)] = np.nan
    return age


def age_bucket_codes(split: EvalSplit) -> np.ndarray:
    """(n_items,) index into AGE_BUCKETS, -1 where the release is unknown."""
    age = item_age_days(split)
    lower = np.array([b for b, _ in AGE_BUCKETS[1:]], dtype=np.float64)
    codes = np.searchsorted(lower, age, side="right")
    return np.where(np.isnan(age), -1, codes).astype(np.int64)


def _rate(hits: int, n: int) -> dict[str, Any]:
    """{"hr", "ci", "n_users", "hits"}: the hit rate of n users and its 95% bootstrap interval
    (each user one 0/1 outcome, so the counts are all the bootstrap needs)."""
    if n == 0:
        return {"hr": None, "ci": None, "n_users": 0, "hits": 0}
    lo, hi = bootstrap_ci(np.r_[np.ones(hits, dtype=bool), np.zeros(n - hits, dtype=bool)])
    return {"hr": round(hits / n, 6), "ci": [round(lo, 6), round(hi, 6)], "n_users": int(n),
            "hits": int(hits)}


class ColdStartTally:
    """Hits and users per type: by item-age bucket (users with history) and without history."""

    def __init__(self, split: EvalSplit, k: int):
        self.split, self.k = split, k
        self.bucket = age_bucket_codes(split)
        nb = len(AGE_BUCKETS)
        self.age_hits = {t: np.zeros(nb, dtype=np.int64) for t in split.types}
        self.age_users = {t: np.zeros(nb, dtype=np.int64) for t in split.types}
        self.cold_hits = dict.fromkeys(split.types, 0)
        self.cold_users = dict.fromkeys(split.types, 0)

    def add(self, item_type: str, rows: np.ndarray, cols: np.ndarray, ranks: np.ndarray,
            ranks_fresh: np.ndarray, fresh: np.ndarray, warm: np.ndarray) -> None:
        """One batch of one type: target pairs (batch rows, positions among the type's
        candidates), their ranks among all the type's candidates and with the history left out,
        which targets are not in the history, and which batch rows have a history."""
        n_rows = len(warm)
        best = m.best_ranks(ranks, rows, n_rows)
        cold = (best != m.NO_RANK) & ~warm
        self.cold_users[item_type] += int(cold.sum())
        self.cold_hits[item_type] += int(m.hits_at_k(best[cold], self.k).sum())
        bucket = self.bucket[self.split.type_items[item_type][cols]]
        for b in range(len(AGE_BUCKETS)):
            of_bucket = fresh & (bucket == b)
            if not of_bucket.any():
                continue
            best = m.best_ranks(ranks_fresh[of_bucket], rows[of_bucket], n_rows)
            counted = (best != m.NO_RANK) & warm
            self.age_users[item_type][b] += int(counted.sum())
            self.age_hits[item_type][b] += int(m.hits_at_k(best[counted], self.k).sum())

    def result(self) -> dict[str, Any]:
        types = self.split.types
        return {
            "k": self.k,
            "cold_users": {t: _rate(self.cold_hits[t], self.cold_users[t]) for t in types},
            "item_age": {
                "buckets": [label for _, label in AGE_BUCKETS],
                "lower_days": [None if math.isinf(b) else b for b, _ in AGE_BUCKETS],
                "by_type": {t: [_rate(int(h), int(n)) for h, n in
                                zip(self.age_hits[t], self.age_users[t])] for t in types},
            },
        }


def versus_reference(cold_hits: Mapping[str, Mapping[str, tuple]], types: list[str],
                     reference: str = COLD_REFERENCE) -> dict[str, dict[str, Any]]:
    """{model: {type or "all types": paired difference to `reference`}} on the users both
    counted in `cold_hits` ({model: {type: (users, hits)}}: the users without history, or those
    counted on new items; evaluation.stats.paired_comparison, rounded; "all types" pools the
    (user, type) units). Empty when the reference was not evaluated."""
    if reference not in cold_hits:
        return {}
    out = {}
    for name in cold_hits:
        if name == reference:
            continue
        paired = {**compare_models(cold_hits, name, reference, types),
                  POOLED: compare_pooled(cold_hits, name, reference, types)}
        out[name] = {t: _paired_summary(p) for t, p in paired.items()}
    return out


def _paired_summary(p: Mapping[str, Any]) -> dict[str, Any]:
    return {"n_users": p["n_users"], "only_a": p["only_a"], "only_b": p["only_b"],
            "diff": None if p["diff"] is None else round(p["diff"], 6),
            "diff_ci": None if p["diff_ci"] is None else [round(x, 6) for x in p["diff_ci"]],
            "mcnemar_p": p["mcnemar_p"], "significant": p["significant"]}


# ---------------------------------------------------------------------------------------------
# Reports


def _fmt(rate: Mapping[str, Any]) -> str:
    if rate["hr"] is None:
        return "n/a"
    lo, hi = rate["ci"]
    return f"{rate['hr']:.3f} [{lo:.3f}, {hi:.3f}]"


def format_cold_start_markdown(report: Mapping[str, Any]) -> str:
    """Cold-user HR@k with intervals, and HR@k by item age, per model and type."""
    results = {n: r["cold_start"] for n, r in report["results"].items() if "cold_start" in r}
    if not results:
        return ""
    any_result = next(iter(results.values()))
    k = any_result["k"]
    types = list(any_result["cold_users"])
    buckets = any_result["item_age"]["buckets"]
    lines = [f"## Cold start with 95% intervals: HR@{k}", "",
             "Users without history at the cutoff (users counted: "
             + ", ".join(f"{t} {any_result['cold_users'][t]['n_users']:,}" for t in types) + ").",
             "", "| model | " + " | ".join(types) + " |", "|:--" + "|--:" * len(types) + "|"]
    lines += [f"| {name} | " + " | ".join(_fmt(r["cold_users"][t]) for t in types) + " |"
              for name, r in results.items()]
    lines += format_versus_reference(results)
    lines += format_versus_reference(results, new_items=True)
    for t in types:
        counts = [b["n_users"] for b in any_result["item_age"]["by_type"][t]]
        lines += ["", f"By item age at the cutoff, {t} (users with history and a hold-out "
                  f"{t} of that age not in their history; users: "
                  + ", ".join(f"{b} {n:,}" for b, n in zip(buckets, counts)) + ").", "",
                  "| model | " + " | ".join(buckets) + " |", "|:--" + "|--:" * len(buckets) + "|"]
        lines += [f"| {name} | " + " | ".join(_fmt(b) for b in r["item_age"]["by_type"][t]) + " |"
                  for name, r in results.items()]
    return "\n".join(lines) + "\n"


def format_versus_reference(results: Mapping[str, Mapping[str, Any]],
                            new_items: bool = False) -> list[str]:
    """Markdown lines: each model minus the reference (popularity on the users without
    history; with `new_items`, text_knn on the users counted on new items), paired, per type
    and pooled, with McNemar's p; a model whose hits there equal the reference's on every user
    (it serves them the reference's list) is left out. None when none is left."""
    reference, key, users = ((NEW_ITEM_REFERENCE, NEW_ITEMS_VERSUS, "users counted on new items")
                             if new_items else
                             (COLD_REFERENCE, f"versus_{COLD_REFERENCE}",
                              "users without history"))
    compared = {n: r[key] for n, r in results.items()
                if r.get(key) and any(p["only_a"] or p["only_b"] for p in r[key].values())}
    if not compared:
        return []
    columns = list(next(iter(compared.values())))
    lines = ["", f"Minus {reference} on the same {users} (paired; 95% bootstrap "
             f"interval, bold when it excludes 0; McNemar's exact p pooled; {POOLED}: the "
             "(user, type) units of every type; models whose hits there equal "
             f"{reference}'s on every user are left out):", "",
             "| model | " + " | ".join(columns) + " | McNemar p |",
             "|:--" + "|--:" * (len(columns) + 1) + "|"]
    for name, paired in compared.items():
        p = paired[POOLED]["mcnemar_p"]
        lines.append(f"| {name} | " + " | ".join(format_difference(paired[c]) for c in columns)
                     + f" | {'n/a' if p is None else f'{p:.2g}'} |")
    return lines


def _errors(rates: list[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """(values, (2, n) error bar lengths) with zeros where there is no rate."""
    values = np.array([r["hr"] if r["hr"] is not None else np.nan for r in rates])
    lo = np.array([r["ci"][0] if r["ci"] else np.nan for r in rates])
    hi = np.array([r["ci"][1] if r["ci"] else np.nan for r in rates])
    err = np.nan_to_num(np.stack([values - lo, hi - values]), nan=0.0)
    return values, err


def plot_hr_by_item_age(report: Mapping[str, Any], path: Path) -> bool:
    """One panel per type: HR@k of every model per item-age bucket, 95% intervals, users per
    bucket under the axis. False (nothing written) when no model has the tallies."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    results = {n: r["cold_start"] for n, r in report["results"].items() if "cold_start" in r}
    if not results:
        return False
    first = next(iter(results.values()))
    k, types, buckets = first["k"], list(first["cold_users"]), first["item_age"]["buckets"]
    figure = Figure(figsize=(min(16.0, 5.5 * len(types) + 1), 4.8))
    FigureCanvasAgg(figure)
    x = np.arange(len(buckets))
    width = 0.8 / max(len(results), 1)
    for i, t in enumerate(types):
        axes = figure.add_subplot(1, len(types), i + 1)
        for j, (name, r) in enumerate(results.items()):
            values, err = _errors(r["item_age"]["by_type"][t])
            axes.bar(x + (j - (len(results) - 1) / 2) * width, np.nan_to_num(values), width,
                     yerr=err, capsize=2, label=name, error_kw={"linewidth": 0.8})
        counts = [b["n_users"] for b in first["item_age"]["by_type"][t]]
        axes.set_xticks(x, [f"{b}\nn={n:,}" for b, n in zip(buckets, counts)], fontsize=7)
        axes.set_ylim(0, 1)
        axes.set_ylabel(f"HR@{k}")
        axes.set_title(f"{t}: HR@{k} by item age at the cutoff", fontsize=10)
        if i == 0:
            axes.legend(fontsize=7)
    cutoff = str(report["split"].get("cutoff"))[:10]
    figure.suptitle(f"Users with history, history excluded; cutoff {cutoff}; 95% intervals",
                    fontsize=9)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    return True


def plot_cold_users(report: Mapping[str, Any], path: Path) -> bool:
    """HR@k of users without history per type and model, with 95% intervals."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    results = {n: r["cold_start"] for n, r in report["results"].items() if "cold_start" in r}
    if not results:
        return False
    first = next(iter(results.values()))
    k, types = first["k"], list(first["cold_users"])
    figure = Figure(figsize=(min(14.0, 2.0 + 1.1 * len(types) * len(results)), 4.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    x = np.arange(len(types))
    width = 0.8 / max(len(results), 1)
    for j, (name, r) in enumerate(results.items()):
        values, err = _errors([r["cold_users"][t] for t in types])
        bars = axes.bar(x + (j - (len(results) - 1) / 2) * width, np.nan_to_num(values), width,
                        yerr=err, capsize=3, label=name)
        axes.bar_label(bars, labels=["n/a" if np.isnan(v) else f"{v:.3f}" for v in values],
                       fontsize=7, padding=2)
    axes.set_xticks(x, [f"{t} (n={first['cold_users'][t]['n_users']:,})" for t in types])
    axes.set_ylim(0, 1)
    axes.set_ylabel(f"HR@{k}")
    cutoff = str(report["split"].get("cutoff"))[:10]
    axes.set_title(f"Users without history: HR@{k} with 95% intervals, cutoff {cutoff}")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    return True


def write_cold_start_reports(report: Mapping[str, Any], reports_dir: Path,
                             markdown: Path | None = None) -> dict[str, Path]:
    """The two plots under reports_dir (and the markdown section appended to `markdown`)."""
    paths = {}
    by_age, cold = reports_dir / "hr_by_item_age.png", reports_dir / "cold_users_hr.png"
    if plot_hr_by_item_age(report, by_age):
        paths["plot_item_age"] = by_age
    if plot_cold_users(report, cold):
        paths["plot_cold_users"] = cold
    section = format_cold_start_markdown(report)
    if markdown is not None and section:
        with Path(markdown).open("a") as out:
            out.write("\n" + section)
    return paths
