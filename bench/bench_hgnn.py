"""Benchmark HGNN training: epoch time and peak memory, sampled vs full batch, per profile.

    .venv/bin/python bench/bench_hgnn.py [--profiles small medium large] [--modes sampled full]
        [--epochs 2] [--run-budget-s 600] [--full-max-edges 5000000] [--threads1 small]
        [--budget-check large] [--budget-s 300] [--seed 7] [--json FILE] [--no-write]
        [--render-only FILE]

Workspaces are /tmp/bench_<profile> (shared with bench_transform.py): raw data generated once
with `gfm generate --profile P --seed S`, the warehouse built once with `gfm transform`, text
vectors made once with `gfm embed`. If /tmp/res_<profile> (a `gfm pipeline` run of the same
profile and seed) already holds an embedding cache, it is copied first, so `gfm embed` only
writes the version file (same texts, same content hashes) instead of re-encoding every item.

Each setting runs `gfm train hgnn --force --set hgnn.batch_mode=<mode> --set
hgnn.max_epochs=<epochs> --set hgnn.time_budget_s=<run-budget-s>` as a child process (profiles
named by --threads1 also with `--set hgnn.threads=1`); the child's peak RSS comes from os.wait4 (that
child alone), and the rest from <workdir>/reports/hgnn_metrics.json: mean_epoch_time_s (training
steps only), eval time per epoch, val_auc against text_cosine_auc (text vectors alone on the same
validation edges and negatives), and the trainer's own peak_rss_mb. Full batch is skipped where
the graph has more directed co-interaction edges than --full-max-edges (one forward over the whole
graph per step: too slow on 2 cores, and its memory grows with the edges).

--budget-check PROFILE adds the run that confirms the profile trains within 16 GiB:
`--set hgnn.batch_mode=sampled --set hgnn.time_budget_s=<budget-s>` (default max_epochs); it is
also that profile's sampled row. When the time budget ends an epoch early, the epoch time is
extrapolated: seconds per step x the steps of a full epoch (computed from the edge counts and the
default HGNNConfig).

The table is printed and written to the section "HGNN training" of docs/benchmarks.md (replaced
if present, else appended).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchdoc import REPO, checked_child, cpu_name, publish, run_child, save_json  # noqa: E402

GFM = REPO / ".venv" / "bin" / "gfm"
SECTION = "## HGNN training"
LIMIT_MB = 16 * 1024










def prepare(profile: str, seed: int) -> Path:
    """Raw data, warehouse and text vectors of /tmp/bench_<profile>, each made once."""
    workdir = Path(f"/tmp/bench_{profile}")
    ws = ["--workdir", str(workdir)]
    raw = workdir / "raw"
    if not all((raw / f"{t}.parquet").exists() for t in ("items", "users", "interactions")):
        workdir.mkdir(parents=True, exist_ok=True)
        s, _, _ = checked_child(
            [str(GFM), "generate", "--profile", profile, "--seed", str(seed), *ws],
            workdir / "bench_generate.log")
        print(f"[{profile}] generated in {s:.0f} s", flush=True)
    if not (workdir / "warehouse.duckdb").exists():
        s, _, _ = checked_child([str(GFM), "transform", *ws],
                                workdir / "bench_transform_setup.log")
        print(f"[{profile}] transformed in {s:.0f} s", flush=True)
    text_dir = workdir / "features" / "item_text_embedding"
    if not list(text_dir.glob("*.parquet")):
        donor = Path(f"/tmp/res_{profile}/features/item_text_embedding/_cache")
        if donor.is_dir() and not (text_dir / "_cache").exists():
            shutil.copytree(donor, text_dir / "_cache")
            print(f"[{profile}] copied the embedding cache of {donor}", flush=True)
        s, _, _ = checked_child([str(GFM), "embed", *ws], workdir / "bench_embed.log")
        print(f"[{profile}] embedded in {s:.0f} s", flush=True)
    return workdir


def edge_count(workdir: Path) -> int:
    import duckdb

    con = duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True)
    try:
        return int(con.execute("select count(*) from co_interaction_edges").fetchone()[0])
    finally:
        con.close()


def full_steps_per_epoch(edges: dict[str, int]) -> int:
    """Steps of one complete epoch under the default HGNNConfig, from hgnn_metrics.json's directed
    edge counts per relation: the multi-link sampler takes max(rarest type's training edges,
    min_edges_per_type_per_epoch) edges of every type, cut into batches of batch_size."""
    sys.path.insert(0, str(REPO))
    from training.hgnn.config import HGNNConfig

    c = HGNNConfig()
    undirected = {}
    for relation, n in edges.items():
        s, _, d = relation.split("__")
        if s == d:
            undirected[(s, d)] = n // 2
        elif (s, d) == tuple(sorted((s, d))):
            undirected[(s, d)] = n
    train = [n - min(c.max_val_edges_per_type, int(n * c.val_fraction)) for n in undirected.values()]
    per_type = max(min(train), c.min_edges_per_type_per_epoch) if c.multi_link_sampler else None
    total = per_type * len(train) if per_type is not None else sum(train)
    return -(-total // c.batch_size)


def train(workdir: Path, label: str, overrides: list[str], timeout_s: float) -> dict:
    argv = [str(GFM), "train", "hgnn", "--force", "--workdir", str(workdir)]
    for o in overrides:
        argv += ["--set", o]
    metrics_path = workdir / "reports" / "hgnn_metrics.json"
    if metrics_path.exists():
        metrics_path.unlink()
    log_path = workdir / f"bench_hgnn_{label}.log"
    load0 = os.getloadavg()[0]
    rc, wall, rss, cpu = run_child(argv, log_path, timeout_s)
    out = {"label": label, "overrides": overrides, "rc": rc, "wall_s": wall, "child_rss_mb": rss,
           "child_cpu_s": cpu,
           "load": (load0, os.getloadavg()[0]), "log": str(log_path)}
    if rc != 0 or not metrics_path.exists():
        out["error"] = log_path.read_text()[-2500:]
        return out
    m = json.loads(metrics_path.read_text())
    shutil.copy(metrics_path, workdir / f"bench_hgnn_{label}.json")
    epochs = m["epochs"]
    full_steps = full_steps_per_epoch(m["edges"])
    steps_done = sum(e["steps"] for e in epochs)
    s_per_step = sum(e["epoch_time_s"] for e in epochs) / max(steps_done, 1)
    out.update({
        "full_steps_per_epoch": full_steps, "steps_done": steps_done, "s_per_step": s_per_step,
        "complete_epochs": sum(e["steps"] >= full_steps for e in epochs),
        "epoch_s_estimate": s_per_step * full_steps,
        "batch_mode": m["batch_mode"], "epochs_run": len(epochs),
        "mean_epoch_time_s": m["mean_epoch_time_s"],
        "mean_eval_time_s": sum(e["eval_time_s"] for e in epochs) / len(epochs),
        "steps_per_epoch": sum(e["steps"] for e in epochs) / len(epochs),
        "train_time_s": m["train_time_s"], "peak_rss_mb": m["peak_rss_mb"],
        "val_auc": m["val_auc"], "val_mrr": m["val_mrr"], "text_cosine_auc": m["text_cosine_auc"],
        "text_cosine_mrr": m["text_cosine_mrr"], "best_epoch": m["best_epoch"],
        "nodes": sum(m["nodes"].values()), "edges": sum(m["edges"].values()),
    })
    return out


def render(saved: dict) -> str:
    rows, skipped, budget, a = saved["rows"], saved["skipped"], saved["budget"], saved["args"]
    load = saved["load"]
    import torch

    def command(a: dict) -> str:
        threads1 = f" --threads1 {' '.join(a['threads1'])}" if a.get("threads1") else ""
        return (f"`bench/bench_hgnn.py --profiles {' '.join(a['profiles'])} --modes "
                f"{' '.join(a['modes'])} --epochs {a['epochs']} --run-budget-s {a['run_budget_s']} "
                f"--full-max-edges {a['full_max_edges']}{threads1} --budget-check "
                f"{a['budget_check']} --budget-s {a['budget_s']}`")

    extra = "".join(f", then {command(x)}" for x in saved.get("extra_args", []))
    lines = [
        SECTION, "",
        f"{command(a)}{extra} ({saved['date']}): each row is `gfm train hgnn --force --set "
        f"hgnn.batch_mode=<mode> --set hgnn.max_epochs=<epochs> --set "
        f"hgnn.time_budget_s=<run-budget-s>` as a "
        "child process on `/tmp/bench_<profile>` (generated with seed 7; text vectors of the "
        "packaged all-MiniLM-L6-v2), default settings otherwise: batch 4096 positive edges, 8 "
        "negatives each, fanouts 10,10, multi-link sampler on (an epoch = 3 x the rarest edge "
        "type's training edges). Training stops at the end of the step that passes the time "
        "budget, so on the larger graphs an epoch is not finished: the epoch time is then "
        "extrapolated, s/step x the steps of a full epoch (marked ~). Eval s = embedding every "
        "node plus the validation metrics, per epoch. Peak RSS = the child process's (`os.wait4`): "
        "graph, text vectors, model and inference included.",
        f"Machine: 2 cores ({cpu_name()}), shared with other work; torch {torch.__version__}; "
        f"threads: torch's default (2) unless the row says 1; 1-min load average "
        f"{load[0]:.1f} -> {load[1]:.1f}.",
        "",
        "| profile | items (nodes) | directed edges | mode | threads | steps / full epoch "
        "| s / step | epoch s | eval s / epoch | steps run | child wall s | child CPU s "
        "| peak RSS MiB | val AUC | text cosine AUC |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['profile']} | | | {r['mode']} | {r.get('threads') or 2} | "
                         f"failed (exit {r['rc']}) | | | | | {r['wall_s']:.0f} | "
                         f"{r['child_cpu_s']:.0f} | {r['child_rss_mb']:,.0f} | | |")
            continue
        complete = r["complete_epochs"] == r["epochs_run"]
        epoch = (f"{r['mean_epoch_time_s']:.1f}" if complete
                 else f"~{r['epoch_s_estimate']:,.0f}")
        lines.append(
            f"| {r['profile']} | {r['nodes']:,} | {r['edges']:,} | {r['batch_mode']} | "
            f"{r.get('threads') or 2} | {r['full_steps_per_epoch']:,} | {r['s_per_step']:.2f} | "
            f"{epoch} | {r['mean_eval_time_s']:.1f} | {r['steps_done']:,} | {r['wall_s']:.0f} | "
            f"{r['child_cpu_s']:.0f} | {r['child_rss_mb']:,.0f} | {r['val_auc']:.4f} | "
            f"{r['text_cosine_auc']:.4f} |")
    lines.append("")
    ok_rows = [r for r in rows if "error" not in r and not r.get("threads")]
    by_setting = {(r["profile"], r["batch_mode"]): r for r in ok_rows}
    ratios = [f"{p} {by_setting[(p, 'full')]['s_per_step'] / r['s_per_step']:.1f}x"
              for (p, mode), r in by_setting.items()
              if mode == "sampled" and (p, "full") in by_setting]
    if ratios:
        lines.append(
            "- Reading: seconds per step, full batch / sampled: " + ", ".join(ratios) + ". A "
            "sampled step only runs the 2-hop neighbourhoods of its batch, so it wins once the "
            "graph is much larger than a batch's neighbourhood; on small graphs the two are "
            "alike. Hence `hgnn.batch_mode: auto` trains full batch up to "
            "`hgnn.full_batch_max_edges` (1M message-passing edges) and sampled above. Peak "
            "memory is about the same in both modes: it is set by holding the whole graph "
            "(edges, text vectors, inference over every node), not by the step.")
    for note in skipped:
        lines.append(f"- Skipped: {note}")
    if budget is not None:
        if "error" in budget:
            lines.append(f"- 16 GiB check on {budget['profile']} FAILED (exit {budget['rc']}).")
        else:
            ok = "under" if budget["child_rss_mb"] < LIMIT_MB else "OVER"
            lines.append(
                f"- 16 GiB check, {budget['profile']}: `--set hgnn.batch_mode=sampled --set "
                f"hgnn.time_budget_s={a['budget_s']}` (its row above): {budget['steps_done']:,} "
                f"steps ({budget['steps_done'] / budget['full_steps_per_epoch']:.0%} of an epoch) in "
                f"{budget['train_time_s']:.0f} s of training, {budget['wall_s']:.0f} s wall for the "
                f"whole command; peak RSS **{budget['child_rss_mb']:,.0f} MiB**, {ok} the 16 GiB "
                f"({LIMIT_MB:,} MiB) bound; val AUC {budget['val_auc']:.4f} (text cosine "
                f"{budget['text_cosine_auc']:.4f}).")
    lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="+", default=["small", "medium", "large"])
    parser.add_argument("--modes", nargs="+", default=["sampled", "full"])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--run-budget-s", type=int, default=600,
                        help="hgnn.time_budget_s of every row (the 16 GiB check has its own)")
    parser.add_argument("--full-max-edges", type=int, default=5_000_000,
                        help="skip full batch above this many directed co-interaction edges")
    parser.add_argument("--threads1", nargs="*", default=["small"],
                        help="profiles that also run every mode with hgnn.threads=1")
    parser.add_argument("--budget-check", default="large", help="profile, or 'none'")
    parser.add_argument("--budget-s", type=int, default=300)
    parser.add_argument("--timeout-s", type=float, default=3600, help="per training child")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--render-only", type=Path, nargs="+", metavar="JSON",
                        help="measure nothing: render the section from earlier --json files "
                             "(rows of later files are added to the first's, or replace its "
                             "rows of the same profile, mode and threads)")
    args = parser.parse_args()

    if args.render_only:
        parts = [json.loads(path.read_text()) for path in args.render_only]
        saved = parts[0]
        for extra in parts[1:]:  # e.g. a later run of one more setting
            saved.setdefault("extra_args", []).append(extra["args"])
            keys = {(r["profile"], r["mode"], r["threads"]) for r in extra["rows"]}
            saved["rows"] = [r for r in saved["rows"]  # a later run of a setting replaces it
                             if (r["profile"], r["mode"], r["threads"]) not in keys]
            saved["rows"] += extra["rows"]
            saved["skipped"] += extra["skipped"]
            saved["budget"] = saved["budget"] or extra["budget"]
            saved["load"] = (min(saved["load"][0], extra["load"][0]),
                             max(saved["load"][1], extra["load"][1]))
        done = {(r["profile"], r["mode"]) for r in saved["rows"]}
        saved["skipped"] = [s for s in saved["skipped"]
                            if not any(s.startswith(f"{m} batch on {p}:") for p, m in done)]
        order = {p: i for i, p in enumerate(["tiny", "small", "medium", "large"])}
        saved["rows"].sort(key=lambda r: (order.get(r["profile"], 9), r["threads"] or 0,
                                          r["mode"] != "sampled"))
    else:
        load_before = os.getloadavg()[0]
        rows, skipped, budget = [], [], None

        def record(r: dict) -> None:
            rows.append(r)
            print(f"[{r['profile']}/{r['mode']}/t{r['threads']}] "
                  f"{json.dumps({k: v for k, v in r.items() if k != 'error'})}", flush=True)
            if "error" in r:
                print(r["error"], flush=True)

        for profile in args.profiles:
            workdir = prepare(profile, args.seed)
            n_edges = edge_count(workdir)
            for threads in [0, 1] if profile in args.threads1 else [0]:
                for mode in args.modes:
                    if mode == "full" and n_edges > args.full_max_edges:
                        if threads == 0:
                            skipped.append(
                                f"full batch on {profile}: {n_edges:,} directed co-interaction "
                                f"edges > the bound of {args.full_max_edges:,} (at the s/step of "
                                "full batch on the smaller graphs, scaled by the edges, one epoch "
                                "would take hours on 2 cores)")
                            print(f"[{profile}] {skipped[-1]}", flush=True)
                        continue
                    if profile == args.budget_check and mode == "sampled" and threads == 0:
                        continue  # the 16 GiB check below is this profile's sampled row
                    overrides = [f"hgnn.batch_mode={mode}", f"hgnn.max_epochs={args.epochs}",
                                 f"hgnn.time_budget_s={args.run_budget_s}"]
                    if threads:
                        overrides.append(f"hgnn.threads={threads}")
                    r = train(workdir, f"{mode}_e{args.epochs}_t{threads}", overrides,
                              args.timeout_s)
                    r.update(profile=profile, mode=mode, threads=threads)
                    record(r)
        if args.budget_check != "none":
            workdir = prepare(args.budget_check, args.seed)
            budget = train(workdir, f"sampled_budget{args.budget_s}",
                           ["hgnn.batch_mode=sampled", f"hgnn.time_budget_s={args.budget_s}"],
                           args.timeout_s)
            budget.update(profile=args.budget_check, mode="sampled", threads=0)
            record(budget)
        saved = {"date": dt.date.today().isoformat(), "args": vars(args) | {"json": None,
                 "render_only": None}, "load": (load_before, os.getloadavg()[0]),
                 "rows": rows, "skipped": skipped, "budget": budget}
        save_json(args.json, saved)
    publish(SECTION, render(saved), write=not args.no_write)


if __name__ == "__main__":
    sys.exit(main())
