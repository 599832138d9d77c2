"""`gfm evaluate --experiments paper`: the seed paper's Tables 1-2 on the evaluation's split.

- Table 1: `audiobook_2t` (the two-tower trained on audiobook examples only; same features and
  hyper-parameters; saved to the model store under its own name, never served) against
  `unified_2t`, on audiobooks. Another type T (`--table1-type T`, for data without audiobooks)
  gives `T_2t` on T.
- Table 2: `unified_2t_no_gnn` (the same two-tower without the HGNN vectors: learned item-id
  embeddings, text and metadata only; `two_tower.use_hgnn=false`) against `unified_2t`, per type.
  When the served model hands new items a share of its top-10 slots (two_tower.
  new_item_exposure), which the ablation cannot (it weighs the HGNN path), Table 2 pairs the
  served model's own ranking, `unified_2t_own_scores` (the exposure off), with the ablation, so
  that it measures the HGNN vectors alone; `table2_served` pairs the served ranking too.
- Table 3: `unified_2t_hgnn_daily` (HGNN and two-tower retrained on each of N simulated days)
  against `unified_2t` with the HGNN frozen at day 0's graph_as_of (two-tower still retrained
  daily), per day and type, on copies of the workspace (`daily_experiment`).

Each table's pair is compared on the same users (evaluation.stats.paired_comparison: paired
bootstrap of the HR@10 difference and McNemar's exact test), in metrics.json's "paper" section.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.retrievers import ModelUnavailable, Retriever
from evaluation.split import EvalSplit
from evaluation.stats import compare_models
from gfm.config import Config
from gfm.errors import GfmError
from gfm.stages import stages_for
from gfm.timeline import Timeline
from gfm.workspace import Workspace

log = logging.getLogger(__name__)

UNIFIED = "unified_2t"
NO_GNN = "unified_2t_no_gnn"
OWN_SCORES = "unified_2t_own_scores"  # the served model without its new-item exposure
DAILY = "unified_2t_hgnn_daily"


def single_type_name(item_type: str) -> str:
    """Table 1's model trained on one type: audiobook_2t in the paper."""
    return f"{item_type}_2t"


def build_single_type_2t(split: EvalSplit, workspace: Workspace, config: Config,
                         timeline: Timeline, item_type: str = "audiobook") -> Retriever:
    from evaluation.two_tower import build_two_tower
    from training.two_tower.train import train_two_tower

    if item_type not in split.types:
        raise ModelUnavailable(f"no {item_type} items among the candidates (types: "
                               f"{', '.join(split.types)}; pick one with --table1-type)")
    run = train_two_tower(workspace, config, timeline, name=single_type_name(item_type),
                          item_type_filter=[item_type], serve=False)
    return build_two_tower(split, workspace, tag=run.tag)


def no_gnn_config(config: Config) -> Config:
    """Table 2's ablation's config: the same model, examples and settings without the HGNN
    vectors (learned item ids, text and metadata remain; at least as wide an id vector as the
    towers' output, so the ids have room to stand in for the graph). new_item_hgnn_weight and
    new_item_exposure weigh the HGNN path, which this model lacks: 1 and 0 (as its config
    requires)."""
    two_tower = dataclasses.replace(
        config.two_tower, use_hgnn=False, new_item_hgnn_weight=1.0, new_item_exposure=0.0,
        item_id_dim=max(config.two_tower.item_id_dim, config.two_tower.tower_dims[-1]))
    return dataclasses.replace(config, two_tower=two_tower)


def build_no_gnn(split: EvalSplit, workspace: Workspace, config: Config,
                 timeline: Timeline) -> Retriever:
    """Table 2's ablation (no_gnn_config), trained now."""
    from evaluation.two_tower import build_two_tower
    from training.two_tower.train import train_two_tower

    run = train_two_tower(workspace, no_gnn_config(config), timeline, name=NO_GNN, serve=False)
    return build_two_tower(split, workspace, tag=run.tag)


def paper_retrievers(split: EvalSplit, workspace: Workspace, config: Config,
                     timeline: Timeline, table1_type: str = "audiobook",
                     ) -> tuple[dict[str, Retriever], dict[str, float]]:
    """The paper's extra models, trained now on this workspace; (retrievers, seconds each)."""
    from evaluation.two_tower import build_two_tower

    builders = {
        single_type_name(table1_type):
            lambda *a: build_single_type_2t(*a, item_type=table1_type),
        NO_GNN: build_no_gnn,
    }
    retrievers, seconds = {}, {}
    for name, build in builders.items():
        began = time.perf_counter()
        try:
            retrievers[name] = build(split, workspace, config, timeline)
        except ModelUnavailable as exc:
            print(f"skipping {name}: {exc}")
        seconds[name] = round(time.perf_counter() - began, 2)
    try:  # not trained: the served model scored once more, by its own scores (Table 2's A)
        retrievers[OWN_SCORES] = build_two_tower(split, workspace, apply_exposure=False)
    except ModelUnavailable:
        pass  # no new-item exposure: the served ranking is the model's own
    return retrievers, seconds


def _pair(report: Mapping[str, Any], user_hits, a: str, b: str, types: list[str],
          claim: str) -> dict[str, Any]:
    results = report["results"]
    if a not in results or b not in results:
        missing = [m for m in (a, b) if m not in results]
        return {"models": [a, b], "types": types, "claim": claim,
                "missing": missing, "comparison": None}
    k = report["settings"]["k"]
    hr = f"hr@{k}"
    return {
        "models": [a, b],
        "types": types,
        "claim": claim,
        hr: {m: {t: results[m][hr].get(t) for t in types} for m in (a, b)},
        f"{hr}_ci": {m: {t: results[m][f"{hr}_ci"].get(t) for t in types} for m in (a, b)},
        "comparison": compare_models(user_hits, a, b, types),
    }


def table2_pairs(report: Mapping[str, Any], user_hits, types: list[str]) -> dict[str, Any]:
    """Table 2, and `table2_served` when the served ranking is not the model's own scores."""
    claim = "the HGNN vectors beat learned id embeddings"
    if OWN_SCORES not in report["results"]:
        return {"table2": _pair(report, user_hits, UNIFIED, NO_GNN, types, claim)}
    return {"table2": _pair(report, user_hits, OWN_SCORES, NO_GNN, types,
                            claim + " (both ranked by their own scores: the served model's "
                            "new-item exposure, which the ablation cannot have, off)"),
            "table2_served": _pair(report, user_hits, UNIFIED, NO_GNN, types,
                                   "the served model, new-item exposure on, against the "
                                   "ablation")}


PAPER_TABLES = {"table1": "1", "table2": "2", "table2_served": "2 (served)"}


def paper_section(report: Mapping[str, Any], user_hits, seconds: Mapping[str, float] | None = None,
                  daily_days: int = 3, table3: Mapping[str, Any] | None = None,
                  table1_type: str = "audiobook") -> dict[str, Any]:
    """metrics.json's "paper": each table's pair, their HR@k with intervals, and the paired
    comparison (A - B: only_a = users A hits and B misses)."""
    types = list(report["split"]["n_items"])
    return {
        "table1": _pair(report, user_hits, UNIFIED, single_type_name(table1_type),
                        [table1_type], f"the unified model beats the {table1_type}-only model "
                        f"on {table1_type}"),
        **table2_pairs(report, user_hits, types),
        "table3": dict(table3) if table3 is not None else {
            "models": [DAILY, UNIFIED], "daily_days": daily_days, "done": False,
            "note": "skipped (--daily-days 0)"},
        "train_seconds": dict(seconds or {}),
        "comparison_notes": "diff = HR(A) - HR(B) on the users both count; diff_ci: 95% paired "
                            "bootstrap (1000 user resamples, seed 0); mcnemar_p: exact, two-sided",
    }


# ---------------------------------------------------------------------------------------------
# Table 3: the HGNN retrained daily against the HGNN frozen


def run_stage(workdir: Path, stage: list[str], common: list[str], cutoff: dt.date) -> None:
    """One `gfm` stage on a workspace copy, in its own process (its own DuckDB, env, threads)."""
    command = [sys.executable, "-c",
               "import sys; from gfm.cli.main import main; sys.exit(main(sys.argv[1:]))",
               *stage, "--workdir", str(workdir), *common, "--cutoff", cutoff.isoformat()]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise GfmError(f"`gfm {' '.join(stage)}` at cutoff {cutoff} on the workspace copy "
                       f"{workdir} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")


def _copy_retriever(split: EvalSplit, workspace: Workspace):
    from evaluation.two_tower import TwoTowerRetriever, two_tower_vectors
    from training.two_tower.store import load_bundle

    bundle = load_bundle(workspace)
    users, items = two_tower_vectors(workspace, bundle, split.user_ids, split.item_ids,
                                     split.cutoff)
    retriever = TwoTowerRetriever(split, users, items,
                                  f"{bundle.metadata['model_name']}:{bundle.version}")
    return retriever, bundle.metadata.get("hgnn_version")


def _share_new_hgnn(source: Path, target: Path) -> None:
    """Copy the HGNN runs of `source` that `target` lacks (checkpoints and vectors)."""
    models = source / "models" / "hgnn"
    for run in models.iterdir() if models.is_dir() else []:
        if run.is_dir() and not (target / "models" / "hgnn" / run.name).exists():
            shutil.copytree(run, target / "models" / "hgnn" / run.name)
            vectors = source / "features" / "item_hgnn_embedding"
            for path in vectors.glob(f"{run.name}*"):
                shutil.copy2(path, target / "features" / "item_hgnn_embedding" / path.name)


def daily_experiment(workspace: Workspace, timeline: Timeline, days: int,
                     common: list[str] | None = None, k: int = 10,
                     batch_size: int | None = None) -> dict[str, Any]:
    """Table 3 on `days` simulated days before the evaluation's cutoff: day i has cutoff
    cutoff - (days - i) days. `unified_2t_hgnn_daily` retrains the HGNN and the two-tower each
    day; `unified_2t` (frozen) keeps the HGNN of day 0 (stamped its graph_as_of) and retrains the
    two-tower each day on the user averages rebuilt from it. Both run on copies of the workspace
    (the workspace itself is not touched); each day both are evaluated on that day's hold-out and
    compared on the same users."""
    from evaluation.evaluate import evaluate_retrievers
    from evaluation.split import load_split

    common = list(common or [])
    # Days end the day before the cutoff: each day's HGNN is then a new version in the copies
    # (at the cutoff itself it would be the workspace's own, already registered), so the newest
    # feature service, which `gfm train two-tower` uses, is always that day's.
    cutoffs = [(timeline.cutoff - dt.timedelta(days=days - i)).date() for i in range(days)]
    out: dict[str, Any] = {"models": [DAILY, UNIFIED], "daily_days": days, "done": False,
                           "cutoffs": [c.isoformat() for c in cutoffs], "days": []}
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gfm-table3-") as tmp:
        daily, frozen = Path(tmp) / "daily", Path(tmp) / "frozen"
        ignore = shutil.ignore_patterns("reports", "milvus", "rolling")
        shutil.copytree(workspace.root, daily, ignore=ignore)
        shutil.copytree(workspace.root, frozen, ignore=ignore)
        # The two-tower's stages; the text vectors are the workspace's own, copied.
        plan = stages_for([UNIFIED], without=["embed"])
        for i, cutoff in enumerate(cutoffs):
            t0 = time.perf_counter()
            for stage in plan:
                run_stage(daily, stage, common, cutoff)
            for stage in plan:
                if stage == ["train", "hgnn"]:
                    if i > 0:
                        continue  # frozen: the day-0 HGNN throughout
                    # The same day-0 HGNN in both copies (its training is not bit-reproducible
                    # across processes): `train hgnn` then reuses the copied vectors.
                    _share_new_hgnn(daily, frozen)
                elif stage == ["features", "apply"]:
                    stage = [*stage, "--rebuild"]
                run_stage(frozen, stage, common, cutoff)
            day_timeline = dataclasses.replace(
                timeline, cutoff=dt.datetime.combine(cutoff, dt.time()))
            split = load_split(Workspace.at(daily), day_timeline)
            retrievers, hgnn_versions = {}, {}
            for model, root in ((DAILY, daily), (UNIFIED, frozen)):
                retrievers[model], hgnn_versions[model] = _copy_retriever(split, Workspace.at(root))
            hits: dict = {}
            report = evaluate_retrievers(split, retrievers, k=k, batch_size=batch_size,
                                         progress=False, user_hits=hits)
            hr = f"hr@{k}"
            out["days"].append({
                "day": i, "cutoff": cutoff.isoformat(), "hgnn_version": hgnn_versions,
                hr: {m: report["results"][m][hr] for m in retrievers},
                f"{hr}_ci": {m: report["results"][m][f"{hr}_ci"] for m in retrievers},
                "comparison": compare_models(hits, DAILY, UNIFIED, list(split.types)),
                "seconds": round(time.perf_counter() - t0, 1),
            })
            print(f"table 3 day {i} (cutoff {cutoff}): "
                  + "; ".join(f"{m} {report['results'][m][hr]}" for m in retrievers), flush=True)
    out["done"] = True
    out["seconds"] = round(time.perf_counter() - began, 1)
    return out


def plot_daily(table3: Mapping[str, Any], path: Path, k: int = 10) -> None:
    """Table 3 over the days: HR@k with its interval per model and type."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    hr = f"hr@{k}"
    days = table3["days"]
    types = list(days[0][hr][DAILY]) if days else []
    figure = Figure(figsize=(6.0 * max(len(types), 1), 4.0))
    FigureCanvasAgg(figure)
    for j, t in enumerate(types):
        axes = figure.add_subplot(1, len(types), j + 1)
        x = np.arange(len(days))
        for shift, model in ((-0.05, DAILY), (0.05, UNIFIED)):
            values = np.array([d[hr][model][t] or 0.0 for d in days])
            cis = [d[f"{hr}_ci"][model][t] or [v, v] for d, v in zip(days, values)]
            yerr = np.vstack([values - [c[0] for c in cis], [c[1] for c in cis] - values])
            label = model if model == DAILY else f"{model} (HGNN frozen at day 0)"
            axes.errorbar(x + shift, values, yerr=yerr, marker="o", capsize=3, label=label)
        axes.set_xticks(x, [d["cutoff"] for d in days], fontsize=8)
        axes.set_title(f"{t}")
        axes.set_ylabel(f"HR@{k}")
        axes.legend(fontsize=7)
    figure.suptitle(f"Table 3: HGNN retrained daily vs frozen, HR@{k} per day")
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def plot_hit_rate_ci(report: Mapping[str, Any], path: Path, title: str | None = None) -> None:
    """HR@k with its 95% bootstrap interval, by model and type."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    k = report["settings"]["k"]
    hr = f"hr@{k}"
    results = report["results"]
    types = list(report["split"]["n_items"])
    models = list(results)
    figure = Figure(figsize=(min(12.0, max(6.0, 0.8 * len(types) * max(len(models), 1))), 4.5))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    width = 0.8 / max(len(models), 1)
    x = np.arange(len(types))
    top = 0.05
    for i, name in enumerate(models):
        values = np.array([results[name][hr].get(t) or 0.0 for t in types])
        cis = [results[name].get(f"{hr}_ci", {}).get(t) or [v, v] for t, v in zip(types, values)]
        lower = values - np.array([c[0] for c in cis])
        upper = np.array([c[1] for c in cis]) - values
        top = max(top, float((values + upper).max(initial=0)))
        axes.bar(x + (i - (len(models) - 1) / 2) * width, values, width, label=name,
                 yerr=np.vstack([lower, upper]), capsize=3)
    axes.set_xticks(x, types)
    axes.set_ylabel(f"HR@{k} (95% bootstrap CI)")
    axes.set_ylim(0, min(1.0, top * 1.15))
    axes.set_title(title or f"HR@{k} per item type with 95% intervals, cutoff "
                            f"{str(report['split'].get('cutoff'))[:10]}")
    if models:
        axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def format_paper_markdown(report: Mapping[str, Any]) -> str:
    """The "paper" section as markdown (appended to metrics.md)."""
    paper = report.get("paper")
    if not paper:
        return ""
    k = report["settings"]["k"]
    hr = f"hr@{k}"
    lines = ["## Paper experiments (history excluded)", "",
             (f"| table | type | A | B | HR@{k} A [95% CI] | HR@{k} B [95% CI] | A - B [95% CI] "
              "| McNemar p | users |"), "|:--|:--|:--|:--|--:|--:|--:|--:|--:|"]

    def fmt(v, ci):
        if v is None:
            return "n/a"
        return f"{v:.4f} [{ci[0]:.4f}, {ci[1]:.4f}]" if ci else f"{v:.4f}"

    def compared(c) -> tuple[str, str]:
        """A paired comparison's cells: difference [95% CI], McNemar p."""
        diff = "n/a" if c["diff"] is None else (
            f"{c['diff']:+.4f} [{c['diff_ci'][0]:+.4f}, {c['diff_ci'][1]:+.4f}]")
        return diff, "n/a" if c["mcnemar_p"] is None else f"{c['mcnemar_p']:.3g}"

    for table in [t for t in PAPER_TABLES if t in paper]:
        pair = paper[table]
        a, b = pair["models"]
        if not pair.get("comparison"):
            lines.append(f"| {table} | - | {a} | {b} | missing: {', '.join(pair['missing'])} "
                         "| | | | |")
            continue
        for t in pair["types"]:
            c = pair["comparison"][t]
            diff, p = compared(c)
            lines.append(f"| {table} | {t} | {a} | {b} | "
                         f"{fmt(pair[hr][a][t], pair[f'{hr}_ci'][a][t])} | "
                         f"{fmt(pair[hr][b][t], pair[f'{hr}_ci'][b][t])} | {diff} | {p} | "
                         f"{c['n_users']} |")
    table3 = paper["table3"]
    if not table3.get("done"):
        lines += ["", f"Table 3: {table3.get('note', 'not run')}."]
        return "\n".join(lines) + "\n"
    lines += ["", f"### Table 3: {DAILY} (HGNN and two-tower retrained daily) vs {UNIFIED} "
              "(HGNN frozen at day 0, two-tower retrained daily)", "",
              f"| day | cutoff | type | HR@{k} daily [95% CI] | HR@{k} frozen [95% CI] "
              "| daily - frozen [95% CI] | McNemar p | users |",
              "|--:|:--|:--|--:|--:|--:|--:|--:|"]
    for day in table3["days"]:
        for t, c in day["comparison"].items():
            diff, p = compared(c)
            lines.append(f"| {day['day']} | {day['cutoff']} | {t} | "
                         f"{fmt(day[hr][DAILY][t], day[f'{hr}_ci'][DAILY][t])} | "
                         f"{fmt(day[hr][UNIFIED][t], day[f'{hr}_ci'][UNIFIED][t])} | {diff} | "
                         f"{p} | {c['n_users']} |")
    return "\n".join(lines) + "\n"
