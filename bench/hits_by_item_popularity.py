"""Where the graph helps: HR@10 of each model by how many training streams the target item had,
from `make results` runs' hold-outs (docs/hits_by_item_popularity.md and a plot).

    python bench/hits_by_item_popularity.py           # the runs paper_medium and medium_seed8
    python bench/hits_by_item_popularity.py --run small --run medium --out FILE

The paper's case for the HGNN (its Table 2) is the items whose learned ids see little data: a
graph vector carries what their co-listeners and text say. docs/results.md's Table 2 pools all
targets, which the popular items dominate. This scores each run's trained models again (the
served unified_2t, the same model by its own scores where it has a new-item exposure, Table 2's
unified_2t_no_gnn where the run trained it, EASE, ALS, hgnn_knn; no training) and splits the
hold-out targets by the item's streams in the training window (`item_popularity` of the
evaluation split: what the two-tower's learned ids trained on), into buckets of a fifth of the
older items' targets each, after a bucket of the items released since the cutoff (no training
streams; ranked through the new-item exposure). A unit
is (user, type, bucket): a user with history counted in a bucket when a hold-out target of
that type, not in the history, falls in it; a hit when one of them is in the user's top 10 of
that type (discovery: the history left out). Paired differences on the bucket's units, 95%
bootstrap interval. A diagnosis on the hold-out: nothing is chosen by it.
"""

from __future__ import annotations

import json
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
from resultsrun import (  # noqa: E402
    read_record,
    read_stamp,
    record_metrics,
    records_dir,
    results_dir,
    workspace_of,
)

K = 10
N_BUCKETS = 5
SERVED, OWN, NO_GNN = "unified_2t", "unified_2t_own_scores", "unified_2t_no_gnn"
# (A, B) shown as A - B: Table 2 (by own scores and as served), and the two-tower against EASE.
PAIRS = ((OWN, NO_GNN), (SERVED, NO_GNN), (SERVED, "ease"))
BATCH_USERS = 512
# Table 2's models are in paper_medium's workspace; medium_seed8 is a hold-out no setting saw.
DEFAULT_RUNS = ("paper_medium", "medium_seed8")


def retrievers(workspace: Path) -> tuple[object, dict[str, object], dict]:
    """(the run's evaluation split, {model: retriever} with the run's trained models, the
    run's metrics.json results)."""
    from evaluation.evaluate import build_als, build_ease, build_hgnn_knn
    from evaluation.retrievers import ModelUnavailable
    from evaluation.split import load_split
    from evaluation.two_tower import build_two_tower
    from gfm.config import load_config
    from gfm.timeline import resolve_timeline
    from gfm.workspace import Workspace

    ws, config = Workspace.at(workspace), load_config(workspace)
    split = load_split(ws, resolve_timeline(config.timeline, ws))
    metrics = json.loads((workspace / "reports" / "metrics.json").read_text())
    built = {SERVED: build_two_tower(split, ws)}
    try:  # only for a model with the new-item exposure on (else it is the served ranking)
        built[OWN] = build_two_tower(split, ws, apply_exposure=False)
    except ModelUnavailable:
        pass
    no_gnn = metrics["results"].get(NO_GNN, {}).get("source")
    if no_gnn:  # Table 2's model: trained by `gfm evaluate --experiments paper` (paper_medium)
        built[NO_GNN] = build_two_tower(split, ws, tag=no_gnn)
    built.update({"ease": build_ease(split, ws, config), "als": build_als(split, ws, config),
                  "hgnn_knn": build_hgnn_knn(split, ws, config)})
    return split, built, metrics["results"]


def target_units(split) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """{type: (user index, type position, item index)} of every hold-out target of a user with
    history that is not in the user's history (discovery's targets)."""
    users = split.eval_users()
    users = users[split.has_history[users]]
    rows, items = split.targets.take(users)
    h_rows, h_items = split.histories.take(users)
    in_history = set(zip(h_rows.tolist(), h_items.tolist()))
    fresh = np.fromiter(((r, i) not in in_history for r, i in zip(rows.tolist(), items.tolist())),
                        dtype=bool, count=len(rows))
    rows, items = rows[fresh], items[fresh]
    out = {}
    for t in split.types:
        of_type = split.item_types[items] == t
        out[t] = (users[rows[of_type]], split.type_position[items[of_type]], items[of_type])
    return out


def target_hits(split, retriever, units) -> dict[str, np.ndarray]:
    """{type: bool per target of `units`}: the target is in the user's top K of its type, the
    user's history left out."""
    out = {t: np.zeros(len(u[0]), dtype=bool) for t, u in units.items()}
    scored = np.unique(np.concatenate([u[0] for u in units.values()]))
    for start in range(0, len(scored), BATCH_USERS):
        batch = scored[start:start + BATCH_USERS]
        row_of = {u: r for r, u in enumerate(batch.tolist())}
        scores = retriever.score(batch)
        h_rows, h_items = split.histories.take(batch)
        for t, (users, positions, _) in units.items():
            columns = split.type_items[t]
            s = scores[:, columns].astype(np.float64)
            of_type = split.item_types[h_items] == t
            s[h_rows[of_type], split.type_position[h_items[of_type]]] = -np.inf
            kth = (np.partition(s, -K, axis=1)[:, -K] if s.shape[1] >= K
                   else np.full(len(s), -np.inf))  # fewer than K candidates: all are shown
            mine = np.isin(users, batch)
            rows = np.fromiter((row_of[u] for u in users[mine].tolist()), dtype=np.int64)
            out[t][mine] = s[rows, positions[mine]] >= kth[rows]
    return out


def check_against_run(units, hits: dict[str, np.ndarray], recorded: dict) -> None:
    """Per type, HR@K over (user, type) units from these per-target hits must equal what `gfm
    evaluate` recorded for the model (else this scoring is not the run's): raises."""
    for t, (users, _, _) in units.items():
        keys, unit = np.unique(users, return_inverse=True)
        per_unit = np.zeros(len(keys), dtype=bool)
        np.logical_or.at(per_unit, unit, hits[t])
        want = recorded.get(f"hr@{K}", {}).get(t)
        if want is not None and abs(per_unit.mean() - want) > 5e-4:
            raise SystemExit(f"error: HR@{K} {t} {per_unit.mean():.4f} here against "
                             f"{want:.4f} in metrics.json: the workspace changed since its "
                             "run, rerun it")


def bucket_edges(values: np.ndarray, n: int = N_BUCKETS) -> list[float]:
    """Edges [e0, ..., en] with about len/n values in each [e_i, e_i+1); ties stay together."""
    edges = np.unique(np.quantile(values, np.linspace(0, 1, n + 1)))
    edges[-1] = values.max() + 1
    return edges.tolist()


def streams_label(lo: float, hi: float) -> str:
    """The whole stream counts in [lo, hi): quantile edges can fall between two counts."""
    return f"{int(np.ceil(lo)):,}-{int(np.ceil(hi)) - 1:,}"


def stream_buckets(split, units) -> list[tuple[str, object]]:
    """[(label, which items of an index array fall in the bucket)]: first the items released
    since the cutoff (no training streams, ranked through the new-item exposure), then the
    older items by their training streams, about a fifth of `units`' older targets each. The
    edges depend on the split alone, so every model is bucketed alike."""
    new, streams = split.is_new_item, split.item_popularity
    buckets = [("released since the cutoff", lambda items: new[items])]
    older = np.concatenate([streams[u[2]][~new[u[2]]] for u in units.values()])
    if len(older):
        edges = bucket_edges(older)
        for lo, hi in zip(edges[:-1], edges[1:]):
            buckets.append((streams_label(lo, hi),
                            lambda items, lo=lo, hi=hi: ~new[items] & (streams[items] >= lo)
                            & (streams[items] < hi)))
    return buckets


def bucket_user_hits(units, hits: dict[str, np.ndarray], inside_of
                     ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{type: (user indices, hit)} of one model in one bucket: a user counted once per type
    with a target inside the bucket, a hit when any of those targets is (the user_hits layout
    of evaluation.user_hits, so evaluation.stats pairs them)."""
    out = {}
    for t, (users, _, items) in units.items():
        inside = inside_of(items)
        keys, unit = np.unique(users[inside], return_inverse=True)
        per_unit = np.zeros(len(keys), dtype=bool)
        np.logical_or.at(per_unit, unit, hits[t][inside])
        out[t] = (keys, per_unit)
    return out


def by_popularity(split, units, hits: dict[str, dict[str, np.ndarray]]) -> dict:
    """Per bucket (stream_buckets): units (user, type, bucket), each model's HR@K, and the
    PAIRS' paired differences."""
    from evaluation.stats import paired_comparison

    buckets = []
    for label, inside_of in stream_buckets(split, units):
        stacked = {m: np.concatenate([h for _, h in bucket_user_hits(units, per_target,
                                                                     inside_of).values()])
                   for m, per_target in hits.items()}
        if not len(stacked[SERVED]):  # no target there (quantiles of few distinct values)
            continue
        n_items = sum(len(np.unique(items[inside_of(items)])) for _, _, items in units.values())
        buckets.append({"streams": label, "units": int(len(stacked[SERVED])), "items": n_items,
                        "hr": {m: float(v.mean()) for m, v in stacked.items()},
                        "versus": {f"{a} - {b}": paired_comparison(stacked[a], stacked[b])
                                   for a, b in PAIRS if a in stacked and b in stacked}})
    return {"types": list(units), "models": list(hits), "buckets": buckets}


def provenance(run: str, stamp: dict, results: dict, records: Path) -> str:
    """Whether the workspace holds the run docs/results.md records, or a rerun on the same
    inputs (e.g. on another machine): then how far its models' per-type HR@10 are from the
    record's. `results`: the workspace's metrics.json results; `records`: docs/results/."""
    record = read_record(records, run)
    if stamp == record:
        return "the run docs/results.md records"
    path = record_metrics(records, run)
    if not path.is_file():
        return "a run docs/results.md does not record"
    recorded = json.loads(path.read_text())["results"]
    gaps = [(abs(v - recorded[m][f"hr@{K}"][t]), m, t)
            for m, r in results.items() if m in recorded
            for t, v in (r.get(f"hr@{K}") or {}).items()
            if v is not None and recorded[m].get(f"hr@{K}", {}).get(t) is not None]
    gap, model, item_type = max(gaps) if gaps else (0.0, "-", "-")
    same = stamp.get("key") == (record or {}).get("key")
    return (f"a rerun, on {'the same' if same else 'other'} inputs (code, config, data), of "
            "the run docs/results.md "
            f"records; its models' HR@{K} per type differ from the record's by up to "
            f"{gap:.4f} ({model}, {item_type})")


def render(results: dict[str, dict], stamps: dict[str, dict], plot: str,
           provenances: dict[str, str]) -> str:
    from evaluation.stats import format_difference

    lines = ["# Where the graph helps: HR@10 by the target item's training streams", "",
             "Written by `python bench/hits_by_item_popularity.py "
             + " ".join(f"--run {r}" for r in results) + f"` at commit {commit_label()}, from "
             "each run's trained models (each run's commit and provenance below) scored again "
             "on its hold-out. Buckets: a first one of the items released since the cutoff (no "
             "training streams; served through the new-item exposure), then a fifth of the "
             "older items' (user, target) pairs each, by the target item's streams in the "
             "training window (what its learned id trained on). Units: (user, type, bucket), "
             "users with history, discovery. Differences paired on the bucket's units, 95% "
             "bootstrap interval; bold: it excludes 0. unified_2t_own_scores: the served model "
             "ranked by its own scores (no new-item exposure), Table 2's A; unified_2t_no_gnn: "
             "Table 2's B, trained only by the run paper_medium. A diagnosis on the hold-out: "
             "nothing is chosen by it.", ""]
    for run, result in results.items():
        pairs = [p for p in (f"{a} - {b}" for a, b in PAIRS)
                 if p in result["buckets"][0]["versus"]]
        lines += [f"## {run}", "",
                  f"Run at commit {stamps[run].get('commit', '?')[:10]}, "
                  f"{provenances[run]}; {', '.join(result['types'])}.", "",
                  "| target's streams in training | items | units | "
                  + " | ".join(result["models"]) + " | " + " | ".join(pairs) + " |",
                  "|:--|--:|--:|" + "--:|" * (len(result["models"]) + len(pairs))]
        for b in result["buckets"]:
            best = max(b["hr"].values())
            cells = [f"**{v:.3f}**" if v == best else f"{v:.3f}" for v in b["hr"].values()]
            lines.append(f"| {b['streams']} | {b['items']:,} | {b['units']:,} | "
                         + " | ".join(cells) + " | "
                         + " | ".join(format_difference(b["versus"][p]) for p in pairs) + " |")
        lines.append("")
    lines += [f"![HR@10 by the target's training streams]({plot})", ""]
    return "\n".join(lines)


def write_plot(results: dict[str, dict], path: Path) -> None:
    panel_plot({f"{run}: HR@10 by the target's training streams": (
        [b["streams"].replace("released since the cutoff", "new") for b in r["buckets"]],
        {m: [b["hr"][m] for b in r["buckets"]] for m in r["models"]})
        for run, r in results.items()}, path, "target item's streams in the training window",
        f"HR@{K} (discovery)", bold=(SERVED, NO_GNN), panel_width=6.5)


def main(argv: list[str] | None = None) -> int:
    args = run_diagnosis_args(argv, __doc__.split("\n\n")[0], ", ".join(DEFAULT_RUNS),
                              REPO / "docs" / "hits_by_item_popularity.md")
    root = results_dir()
    results, stamps, provenances = {}, {}, {}
    for run in args.run or DEFAULT_RUNS:
        workspace = workspace_of(root, run)
        if not workspace.is_dir():
            print(f"error: {workspace} is missing: run `RUNS={run} make results` first",
                  file=sys.stderr)
            return 2
        split, built, recorded = retrievers(workspace)
        units = target_units(split)
        hits = {}
        for name, retriever in built.items():
            print(f"{run}: scoring {name} ...", flush=True)
            hits[name] = target_hits(split, retriever, units)
            check_against_run(units, hits[name], recorded.get(name, {}))
        results[run] = by_popularity(split, units, hits)
        stamps[run] = read_stamp(root, run) or {}
        provenances[run] = provenance(run, stamps[run], recorded,
                                      records_dir(REPO / "docs" / "results.md"))
    write_doc_with_plot(args.out, lambda plot: render(results, stamps, plot, provenances),
                        lambda path: write_plot(results, path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
