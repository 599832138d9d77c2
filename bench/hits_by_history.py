"""Where the two-tower wins and loses: HR@10 of each model by the length of the user's history,
from the `make results` runs' hold-outs (docs/hits_by_history.md and a plot).

    python bench/hits_by_history.py                  # small, medium, medium_seed8, movielens_per_user
    python bench/hits_by_history.py --run small --run movielens_per_user --out FILE

Reads, per run, the per-user hits `gfm evaluate` saved (reports/user_hits.npz: discovery, the
users with targets and history) and the history each user had at the cutoff (the evaluation
split's exclusion set, all item types: what the models read). Units are (user, type) pairs,
grouped by history length into buckets of about a fifth of the units each (quantiles of the
run's own lengths). Per bucket: each model's HR@10 and unified_2t minus ALS and EASE, paired on
the same units with a 95% bootstrap interval. It measures, chooses nothing: the figures are the
hold-out's, so read them as a diagnosis for the next experiment on a validation split.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchdoc import (  # noqa: E402
    commit_label,
    panel_plot,
    run_diagnosis_args,
    write_doc_with_plot,
)
from resultsdoc import BASELINES  # noqa: E402
from resultsdoc import UNIFIED as REFERENCE  # noqa: E402
from resultsrun import read_stamp, results_dir, workspace_of  # noqa: E402

MODELS = ("unified_2t", "ease", "als", "hgnn_knn", "text_knn", "popularity")
N_BUCKETS = 5
# The runs with one hold-out of their own (paper_medium shares medium's; a rolling run's
# user_hits.npz holds its configured cutoff only), where a workspace is here.
DEFAULT_RUNS = ("small", "medium", "medium_seed8", "movielens_per_user")


def history_lengths(workspace: Path) -> dict[str, int]:
    """{user id: items in the user's history at the cutoff}, as the evaluation reads it."""
    from evaluation.split import load_split
    from gfm.config import load_config
    from gfm.timeline import resolve_timeline
    from gfm.workspace import Workspace

    ws = Workspace.at(workspace)
    split = load_split(ws, resolve_timeline(load_config(workspace).timeline, ws))
    return dict(zip(np.asarray(split.user_ids).astype(str), split.histories.lengths.tolist()))


def bucket_edges(lengths: np.ndarray, n: int = N_BUCKETS) -> list[int]:
    """Integer edges [e0, e1, ..., en] with about len/n units in each [e_i, e_i+1); ties at an
    edge stay together, so there may be fewer buckets."""
    edges = np.unique(np.quantile(lengths, np.linspace(0, 1, n + 1)).round().astype(int))
    edges[-1] = int(lengths.max()) + 1
    return [int(e) for e in edges]


def by_history(hits: dict, lengths: dict[str, int]) -> dict:
    """Per bucket of history length: units, each model's HR@10 and unified_2t minus each
    baseline (paired). hits: {model: {type: (user ids, bool hits)}} with the same users per
    type for every model (one split)."""
    from evaluation.stats import paired_comparison

    models = [m for m in MODELS if m in hits]
    types = list(hits[REFERENCE])
    length = np.concatenate([[lengths[u] for u in hits[REFERENCE][t][0].astype(str)]
                             for t in types]).astype(int)
    stacked = {}
    for m in models:
        if any(not np.array_equal(hits[m][t][0], hits[REFERENCE][t][0]) for t in types):
            raise ValueError(f"{m} counts other users than {REFERENCE}: not one split")
        stacked[m] = np.concatenate([hits[m][t][1] for t in types]).astype(bool)
    edges = bucket_edges(length)
    buckets = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (length >= lo) & (length < hi)
        buckets.append({
            "history": [lo, hi - 1], "units": int(inside.sum()),
            "hr": {m: float(stacked[m][inside].mean()) for m in models},
            "versus": {b: paired_comparison(stacked[REFERENCE][inside], stacked[b][inside])
                       for b in BASELINES if b in stacked}})
    return {"types": types, "models": models, "units": int(len(length)), "buckets": buckets}


def render(results: dict[str, dict], stamps: dict[str, dict], plot: str | None) -> str:
    from evaluation.stats import format_difference

    lines = ["# Where the two-tower wins and loses: HR@10 by history length", "",
             f"Written by `python bench/hits_by_history.py` at commit {commit_label()}, from the "
             "per-user hits of each `make results` run's hold-out (docs/results.md; each run's "
             "commit below). Units: (user, type) pairs of users with history and targets, "
             "discovery; buckets: a fifth of the run's units each, by the items in the user's "
             "history at the cutoff (all types). unified_2t minus ALS and EASE paired on the "
             "bucket's units, 95% bootstrap interval; bold: it excludes 0. A diagnosis on the "
             "hold-out: nothing is chosen by it.", ""]
    for run, r in results.items():
        stamp = stamps.get(run) or {}
        lines += [f"## {run}", "",
                  f"Run at commit {stamp.get('commit', '?')[:10]}; {r['units']:,} units "
                  f"({', '.join(r['types'])}).", "",
                  "| history (items) | units | " + " | ".join(r["models"])
                  + " | unified_2t - als | unified_2t - ease |",
                  "|:--|--:|" + "--:|" * (len(r["models"]) + 2)]
        for b in r["buckets"]:
            lo, hi = b["history"]
            best = max(b["hr"].values())
            rates = [f"**{v:.3f}**" if v == best else f"{v:.3f}" for v in b["hr"].values()]
            diffs = [format_difference(b["versus"].get(x)) for x in BASELINES]
            lines.append(f"| {lo}-{hi} | {b['units']:,} | " + " | ".join(rates) + " | "
                         + " | ".join(diffs) + " |")
        lines.append("")
    if plot:
        lines += [f"![HR@10 by history length]({plot})", ""]
    return "\n".join(lines)


def write_plot(results: dict[str, dict], path: Path) -> None:
    panel_plot({run: ([f"{b['history'][0]}-{b['history'][1]}" for b in r["buckets"]],
                      {m: [b["hr"][m] for b in r["buckets"]] for m in r["models"]})
                for run, r in results.items()}, path, "items in history at the cutoff",
               "HR@10 (discovery)", bold=(REFERENCE,), rotation=30)


def main(argv: list[str] | None = None) -> int:
    from evaluation.user_hits import FILE_NAME, load_user_hits

    args = run_diagnosis_args(argv, __doc__.split("\n\n")[0],
                              f"those of {', '.join(DEFAULT_RUNS)} whose workspace is here",
                              REPO / "docs" / "hits_by_history.md")
    root = results_dir()
    runs = args.run or [r for r in DEFAULT_RUNS if workspace_of(root, r).is_dir()]
    results, stamps = {}, {}
    for run in runs:
        workspace = workspace_of(root, run)
        hits_path = workspace / "reports" / FILE_NAME
        if not hits_path.exists():
            print(f"error: {hits_path} is missing: run `RUNS={run} make results` first",
                  file=sys.stderr)
            return 2
        hits = load_user_hits(hits_path)
        if REFERENCE not in hits:
            print(f"{run}: no {REFERENCE} hits, left out")
            continue
        print(f"{run}: reading the split's histories ...", flush=True)
        results[run] = by_history(hits, history_lengths(workspace))
        stamps[run] = read_stamp(root, run)
    if not results:
        print("error: no run with unified_2t's per-user hits", file=sys.stderr)
        return 2
    write_doc_with_plot(args.out, lambda plot: render(results, stamps, plot),
                        lambda path: write_plot(results, path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
