"""HGNN variants judged on items whose edges the HGNN never saw: the honest test of what a new
item gets (hgnn_knn's vector for an item without edges), on the validation split.

    python bench/hgnn_unseen_items.py run --workdir W --name NAME [--set hgnn.KEY=VALUE ...]
    python bench/hgnn_unseen_items.py doc --workdir W --baseline NAME --out FILE [--note TEXT]
                                          [--title TEXT] [--variants NAME,...]

`run` takes the two-tower validation copy of workspace W (what `gfm tune two-tower` and
bench/two_tower_variants.py use: validation cutoff = cutoff - holdout_days, never the
hold-out), removes every edge of the pretend-new tenth of the catalogue (the same fixed tenth
as two_tower_variants.py's pretend-new items) from the item graph, trains the HGNN with the
workspace's settings plus --set ones, gives every item without edges its inductive vector, and
scores hgnn_knn on the validation split: HR@10 (discovery) of the warm catalogue, of the real
new items, and of the pretend-new items (ranked among the whole catalogue of their type, their
popularity zero). Unlike two_tower_variants.py's pretend-new rates, nothing here was trained
on those items' edges. With --set evaluation.hgnn_knn_new_item_exposure=X, hgnn_knn lifts the
new items (real or pretend) as `gfm evaluate` does with that setting. Each run appends a record
to W/reports/hgnn_unseen_items.jsonl and the per-user new-item hits (pretend, and real as
NAME@real) to W/reports/hgnn_unseen_items/NAME.npz.

`doc` writes the table: per variant, warm and new-item HR@10 per type, the real new items'
difference to text_knn, and the pretend-new difference to the baseline variant and to text_knn
(scored on the same users), with paired 95% bootstrap intervals and McNemar p.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from benchdoc import commit_label  # noqa: E402
from gfm.device import deterministic_torch  # noqa: E402

RECORDS = "hgnn_unseen_items.jsonl"
HITS_DIR = "hgnn_unseen_items"
TEXT_KNN = "text_knn"
REAL = "@real"  # suffix of a variant's per-user hits on the real new items
EXPOSURE_KEY = "evaluation.hgnn_knn_new_item_exposure"  # the one non-HGNN setting --set takes


def without_items(graph, item_ids) -> tuple:
    """(the graph without any edge of these items' nodes (an episode's: its show's), per node
    type (n_nodes,) bool of the nodes left without their edges)."""
    import dataclasses

    import numpy as np

    node_of = {item: (t, i) for t in graph.node_types for i, item in enumerate(graph.item_ids[t])}
    unseen = {t: np.zeros(graph.num_nodes(t), dtype=bool) for t in graph.node_types}
    for item in item_ids:
        t, i = node_of[graph.episodes.get(item, item)]
        unseen[t][i] = True
    edges = {r: e[:, ~(unseen[r[0]][e[0]] | unseen[r[2]][e[1]])] for r, e in graph.edges.items()}
    return dataclasses.replace(graph, edges=edges), unseen


@deterministic_torch()  # as train_hgnn: otherwise two runs of one variant differ as variants do
def _train(graph, config) -> tuple[dict, dict]:
    """(vectors per node type with inductive ones for nodes without edges, training summary):
    the steps of training.hgnn.train.train_hgnn, without its files."""
    import numpy as np

    from training.hgnn.graph import split_edges
    from training.hgnn.train import LinkPredictionTrainer, fit_link_prediction, text_knn_vectors

    split = split_edges(graph, config.val_fraction, config.max_val_edges_per_type, config.seed)
    trainer = LinkPredictionTrainer(graph, split, config)
    epochs, best, _ = fit_link_prediction(trainer, config, time.monotonic() + config.time_budget_s)
    z = trainer.embed_all()
    connected = {t: trainer.degree[t] > 0 for t in graph.node_types}
    inductive = text_knn_vectors(graph, z, connected, config.inductive_knn)
    z = {t: np.where(connected[t][:, None], z[t], inductive[t]) for t in graph.node_types}
    return z, {"val_mrr": best["mrr"], "val_auc": best["auc"], "best_epoch": best["epoch"],
               "epochs": [{"epoch": e["epoch"], "loss": round(e["loss"], 5),
                           "val_mrr": round(e["val_mrr"], 5)} for e in epochs]}


def run(workdir: Path, name: str, settings: dict) -> dict:
    import two_tower_variants as variants

    from evaluation import tune
    from evaluation.evaluate import evaluate_retriever
    from evaluation.retrievers import VectorKNNRetriever
    from evaluation.user_hits import save_user_hits
    from training.hgnn.graph import load_item_graph
    from training.hgnn.train import write_item_vectors
    from transforms.text_embedding import latest_text_embedding

    objective, val, config = variants._objective(workdir, {})
    config = tune.with_params(config, settings)
    split, copy = objective.split, objective.copy
    pretend_split = variants._pretend_new_split(split)
    graph, unseen = without_items(load_item_graph(copy, latest_text_embedding(copy)),
                                  split.item_ids[pretend_split.is_new_item])
    started = time.monotonic()
    z, summary = _train(graph, config.hgnn)
    exposure = config.evaluation.hgnn_knn_new_item_exposure
    offsets: dict = {}
    with tempfile.TemporaryDirectory() as tmp:  # the vectors as `gfm train hgnn` writes them
        path = Path(tmp) / "vectors.parquet"
        write_item_vectors(path, graph, z, val.graph_as_of, name)
        hits: dict = {}
        real_hits: dict = {}
        results = {}
        for label, on, into in (("real", split, real_hits), ("pretend", pretend_split, hits)):
            retriever = VectorKNNRetriever.from_parquet(on, path)
            if exposure:  # as gfm evaluate's hgnn_knn (evaluation.evaluate.build_hgnn_knn)
                offsets[label] = {t: s["offset"]
                                  for t, s in retriever.lift_new_items(exposure).items()}
            results[label] = evaluate_retriever(on, retriever, progress=False, name=name,
                                                new_item_hits=into)
        warm, pretend = results["real"], results["pretend"]
    save_user_hits(workdir / "reports" / HITS_DIR / f"{name}.npz",
                   {name: hits, name + REAL: real_hits}, split.user_ids)
    record = {"name": name, "settings": settings, **summary,
              "train_s": round(time.monotonic() - started, 1),
              "unseen_nodes": {t: int(u.sum()) for t, u in unseen.items()},
              "new_item_offsets": offsets,
              "mean": tune.mean_hit_rate(warm), "hr@10": warm["hr@10"],
              "new_items": warm["new_items"]["hr@10"],
              "pretend_new": pretend["new_items"]["hr@10"],
              "validation_cutoff": val.cutoff.isoformat(), "commit": commit_label(),
              "at": dt.datetime.now(dt.timezone.utc).isoformat()[:19]}
    with open(workdir / "reports" / RECORDS, "a") as f:
        f.write(json.dumps(record) + "\n")
    print(f"{name}: warm {record['hr@10']}, new {record['new_items']}, pretend new "
          f"{record['pretend_new']}", flush=True)
    return record


def _text_knn_hits(workdir: Path) -> dict:
    """text_knn's per-user hits (text is what a new item has) on the pretend-new and (named
    TEXT_KNN + REAL) the real new items, scored once."""
    import two_tower_variants as variants

    from evaluation.evaluate import MODELS, evaluate_retriever
    from evaluation.user_hits import load_user_hits, save_user_hits

    path = workdir / "reports" / HITS_DIR / f"{TEXT_KNN}.npz"
    if path.exists() and TEXT_KNN + REAL not in load_user_hits(path):
        path.unlink()  # written before the real new items were kept: score again
    if not path.exists():
        objective, _, config = variants._objective(workdir, {})
        hits: dict = {TEXT_KNN: {}, TEXT_KNN + REAL: {}}
        for name, on in ((TEXT_KNN, variants._pretend_new_split(objective.split)),
                         (TEXT_KNN + REAL, objective.split)):
            evaluate_retriever(on, MODELS[TEXT_KNN](on, objective.copy, config), progress=False,
                               name=TEXT_KNN, new_item_hits=hits[name])
        save_user_hits(path, hits, objective.split.user_ids)
    return load_user_hits(path)


def write_doc(workdir: Path, baseline: str, out: Path, note: str, title: str,
              variants: list[str] | None = None) -> None:
    from evaluation.stats import compare_models, format_difference
    from evaluation.user_hits import load_user_hits

    records: dict[str, dict] = {}
    for line in (workdir / "reports" / RECORDS).read_text().splitlines():
        record = json.loads(line)
        if not variants or record["name"] in variants:
            records[record["name"]] = record  # the latest run of each name
    if baseline not in records:
        raise SystemExit(f"no record named {baseline!r} in {workdir / 'reports' / RECORDS}")
    hits = _text_knn_hits(workdir)
    for name in records:
        hits.update(load_user_hits(workdir / "reports" / HITS_DIR / f"{name}.npz"))
    types = sorted(records[baseline]["pretend_new"])

    def rates(r: dict, key: str) -> str:
        return " / ".join("–" if r[key][t] is None else f"{r[key][t]:.3f}" for t in types)

    def versus(name: str, other: str) -> str:
        if name == other or name not in hits or other not in hits:
            return "–"  # the baseline itself, or a record from before its hits were kept
        compared = compare_models(hits, name, other)
        return " / ".join(format_difference(compared[t]) for t in types)

    first = next(iter(records.values()))
    unseen = ", ".join(f"{n} {t}" for t, n in first["unseen_nodes"].items())
    lines = [f"# HGNN variants on items it never saw ({title or workdir.name}, validation split)",
             "",
             "Written by `python bench/hgnn_unseen_items.py doc` from the records of "
             "`bench/hgnn_unseen_items.py run` (validation cutoff "
             f"{first['validation_cutoff'][:10]}; the hold-out is never read). Every variant's "
             "HGNN trained without any edge of the pretend-new tenth of the catalogue "
             f"({unseen} nodes); those items get the vector an item without edges gets (the "
             "mean of its text neighbours'), and hgnn_knn ranks them among the whole "
             "catalogue of their type. HR@10, discovery, " + " / ".join(types) + ".", ""]
    if note:
        lines += [note, ""]
    lines += ["| variant | settings | HGNN val MRR | warm HR@10 | new items | new items − "
              f"text_knn | pretend new | pretend new − {baseline} | pretend new − text_knn | "
              "commit |",
              "|---|---|---:|---|---|---|---|---|---|---|"]
    for name, r in records.items():
        settings = ", ".join(f"{k}={v}" for k, v in r["settings"].items()) or "defaults"
        lines.append(f"| {name} | {settings} | {r['val_mrr']:.3f} | {rates(r, 'hr@10')} | "
                     f"{rates(r, 'new_items')} | {versus(name + REAL, TEXT_KNN + REAL)} | "
                     f"{rates(r, 'pretend_new')} | {versus(name, baseline)} | "
                     f"{versus(name, TEXT_KNN)} | {r['commit']} |")

    def text_rates(name: str) -> str:
        return " / ".join(f"{hits[name][t][1].mean():.3f}" for t in types)

    lines += ["", f"text_knn on the same users: real new items {text_rates(TEXT_KNN + REAL)}, "
              f"pretend new {text_rates(TEXT_KNN)}.", ""]
    out.write_text("\n".join(lines))
    print(f"wrote {out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run_ = sub.add_parser("run", help="train one HGNN variant without the pretend-new edges")
    run_.add_argument("--workdir", type=Path, required=True)
    run_.add_argument("--name", required=True)
    run_.add_argument("--set", action="append", default=[], metavar="hgnn.KEY=VALUE",
                      help=f"an HGNN setting, or {EXPOSURE_KEY} (hgnn_knn's new-item lift)")
    doc = sub.add_parser("doc", help="the table of the recorded variants")
    doc.add_argument("--workdir", type=Path, required=True)
    doc.add_argument("--baseline", required=True)
    doc.add_argument("--out", type=Path, required=True)
    doc.add_argument("--note", default="")
    doc.add_argument("--title", default="", help="what the workspace is (default: its name)")
    doc.add_argument("--variants", default="",
                     help="comma-separated names: only these records (default: all)")
    args = parser.parse_args(argv)
    if args.command == "run":
        import yaml

        settings = {}
        for item in args.set:
            key, _, value = item.partition("=")
            if not (key.startswith("hgnn.") or key == EXPOSURE_KEY) or not value:
                parser.error(f"--set takes hgnn.KEY=VALUE or {EXPOSURE_KEY}=VALUE, not "
                             f"{item!r}")
            settings[key] = yaml.safe_load(value)  # as two_tower_variants.py's --set
        run(args.workdir, args.name, settings)
    else:
        write_doc(args.workdir, args.baseline, args.out, args.note, args.title,
                  [v for v in args.variants.split(",") if v])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
