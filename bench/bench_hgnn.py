"""Benchmark HGNN training: epoch time and peak memory, sampled vs full batch, per profile.

    .venv/bin/python bench/bench_hgnn.py [--profiles small medium large] [--modes sampled full]
        [--epochs 2] [--full-max-edges 6000000] [--budget-check large] [--budget-s 300]
        [--seed 7] [--no-write]

Workspaces are /tmp/bench_<profile> (shared with bench_transform.py): raw data generated once
with `gfm generate --profile P --seed S`, the warehouse built once with `gfm transform`, text
vectors made once with `gfm embed`. If /tmp/res_<profile> (a `gfm pipeline` run of the same
profile and seed) already holds an embedding cache, it is copied first, so `gfm embed` only
writes the version file (same texts, same content hashes) instead of re-encoding every item.

Each setting runs `gfm train hgnn --force --set hgnn.batch_mode=<mode> --set
hgnn.max_epochs=<epochs>` as a child process; the child's peak RSS comes from os.wait4 (that
child alone), and the rest from <workdir>/reports/hgnn_metrics.json: mean_epoch_time_s (training
steps only), eval time per epoch, val_auc against text_cosine_auc (text vectors alone on the same
validation edges and negatives), and the trainer's own peak_rss_mb. Full batch is skipped where
the graph has more directed co-interaction edges than --full-max-edges (one forward over the whole
graph per step: too slow on 2 cores, and its memory grows with the edges).

--budget-check PROFILE adds the run that confirms the profile trains within 16 GiB:
`--set hgnn.batch_mode=sampled --set hgnn.time_budget_s=<budget-s>` (default max_epochs).

The table is printed and written to the section "HGNN training" of docs/benchmarks.md (replaced
if present, else appended).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GFM = REPO / ".venv" / "bin" / "gfm"
DOC = REPO / "docs" / "benchmarks.md"
SECTION = "## HGNN training"
LIMIT_MB = 16 * 1024


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def write_section(text: str) -> None:
    """Replace this benchmark's section of docs/benchmarks.md, or append it."""
    DOC.parent.mkdir(parents=True, exist_ok=True)
    doc = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    lines = doc.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == SECTION), None)
    if start is None:
        doc = doc.rstrip("\n") + "\n\n" + text
    else:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")),
                   len(lines))
        tail = "".join(lines[end:])
        doc = "".join(lines[:start]) + text + ("\n" + tail if tail else "")
    DOC.write_text(doc)


def run_child(argv: list[str], log_path: Path, timeout_s: float | None = None
              ) -> tuple[int, float, float, float]:
    """Run argv with output to log_path; (exit code, wall s, peak RSS MiB, CPU s) of that child."""
    with open(log_path, "w") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        deadline = None if timeout_s is None else started + timeout_s
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if deadline is not None and time.perf_counter() > deadline:
                proc.kill()
                _, status, usage = os.wait4(proc.pid, 0)
                log.write(f"\n[bench] killed after {timeout_s:.0f} s\n")
                break
            time.sleep(0.5)
        wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    cpu = usage.ru_utime + usage.ru_stime
    return proc.returncode, wall, usage.ru_maxrss / 1024, cpu  # ru_maxrss: KiB on Linux


def checked(argv: list[str], log_path: Path) -> float:
    rc, wall, _, _ = run_child(argv, log_path)
    if rc != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({rc}); log {log_path}:\n"
                           f"{log_path.read_text()[-3000:]}")
    return wall


def prepare(profile: str, seed: int) -> Path:
    """Raw data, warehouse and text vectors of /tmp/bench_<profile>, each made once."""
    workdir = Path(f"/tmp/bench_{profile}")
    ws = ["--workdir", str(workdir)]
    if not all((workdir / "raw" / f"{t}.parquet").exists() for t in ("items", "users", "interactions")):
        workdir.mkdir(parents=True, exist_ok=True)
        s = checked([str(GFM), "generate", "--profile", profile, "--seed", str(seed), *ws],
                    workdir / "bench_generate.log")
        print(f"[{profile}] generated in {s:.0f} s", flush=True)
    if not (workdir / "warehouse.duckdb").exists():
        s = checked([str(GFM), "transform", *ws], workdir / "bench_transform_setup.log")
        print(f"[{profile}] transformed in {s:.0f} s", flush=True)
    text_dir = workdir / "features" / "item_text_embedding"
    if not list(text_dir.glob("*.parquet")):
        donor = Path(f"/tmp/res_{profile}/features/item_text_embedding/_cache")
        if donor.is_dir() and not (text_dir / "_cache").exists():
            shutil.copytree(donor, text_dir / "_cache")
            print(f"[{profile}] copied the embedding cache of {donor}", flush=True)
        s = checked([str(GFM), "embed", *ws], workdir / "bench_embed.log")
        print(f"[{profile}] embedded in {s:.0f} s", flush=True)
    return workdir


def edge_count(workdir: Path) -> int:
    import duckdb

    con = duckdb.connect(str(workdir / "warehouse.duckdb"), read_only=True)
    try:
        return int(con.execute("select count(*) from co_interaction_edges").fetchone()[0])
    finally:
        con.close()


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
    out.update({
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


def render(rows: list[dict], skipped: list[str], budget: dict | None, args, load) -> str:
    today = dt.date.today().isoformat()
    import torch

    lines = [
        SECTION, "",
        f"`bench/bench_hgnn.py --profiles {' '.join(args.profiles)} --modes {' '.join(args.modes)} "
        f"--epochs {args.epochs} --full-max-edges {args.full_max_edges}` ({today}): "
        f"`gfm train hgnn --force --set hgnn.batch_mode=<mode> --set hgnn.max_epochs={args.epochs}` "
        "as a child process on `/tmp/bench_<profile>` (generated with seed 7), default settings "
        "otherwise (batch 4096 positive edges, 8 negatives, fanouts 10,10, multi-link sampler on). "
        "Epoch s = training steps only (mean over the epochs, from reports/hgnn_metrics.json); "
        "eval s = embedding every node plus validation, per epoch; peak RSS = the child's "
        "(`os.wait4`), whole process including the load of the graph and text vectors.",
        f"Machine: 2 cores ({cpu_name()}), shared with other work; torch {torch.__version__}, "
        f"default threads; 1-min load average {load[0]:.1f} -> {load[1]:.1f}.",
        "",
        "| profile | items (nodes) | directed edges | mode | epoch s | steps/epoch | eval s/epoch "
        "| child wall s | child CPU s | peak RSS MiB | val AUC | text cosine AUC |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['profile']} | | | {r['mode']} | failed (exit {r['rc']}) | | | "
                         f"{r['wall_s']:.0f} | {r['child_cpu_s']:.0f} | {r['child_rss_mb']:,.0f} | | |")
            continue
        lines.append(
            f"| {r['profile']} | {r['nodes']:,} | {r['edges']:,} | {r['batch_mode']} | "
            f"{r['mean_epoch_time_s']:.1f} | {r['steps_per_epoch']:.0f} | {r['mean_eval_time_s']:.1f} | "
            f"{r['wall_s']:.0f} | {r['child_cpu_s']:.0f} | {r['child_rss_mb']:,.0f} | {r['val_auc']:.4f} | {r['text_cosine_auc']:.4f} |")
    lines.append("")
    for s in skipped:
        lines.append(f"- Skipped: {s}")
    if budget is not None:
        if "error" in budget:
            lines.append(f"- 16 GiB check on {budget['profile']} FAILED (exit {budget['rc']}).")
        else:
            ok = "under" if budget["child_rss_mb"] < LIMIT_MB else "OVER"
            lines.append(
                f"- 16 GiB check, {budget['profile']}: `--set hgnn.batch_mode=sampled --set "
                f"hgnn.time_budget_s={args.budget_s}`: {budget['epochs_run']} epochs in "
                f"{budget['train_time_s']:.0f} s of training ({budget['wall_s']:.0f} s wall), "
                f"peak RSS **{budget['child_rss_mb']:,.0f} MiB**, {ok} the 16 GiB "
                f"({LIMIT_MB:,} MiB) bound; val AUC {budget['val_auc']:.4f} "
                f"(text cosine {budget['text_cosine_auc']:.4f}), best epoch {budget['best_epoch']}.")
    lines.append("")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="+", default=["small", "medium", "large"])
    parser.add_argument("--modes", nargs="+", default=["sampled", "full"])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--full-max-edges", type=int, default=6_000_000,
                        help="skip full batch above this many directed co-interaction edges")
    parser.add_argument("--budget-check", default="large", help="profile, or 'none'")
    parser.add_argument("--budget-s", type=int, default=300)
    parser.add_argument("--timeout-s", type=float, default=3600, help="per training child")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    rows, skipped = [], []
    for profile in args.profiles:
        workdir = prepare(profile, args.seed)
        n_edges = edge_count(workdir)
        for mode in args.modes:
            if mode == "full" and n_edges > args.full_max_edges:
                skipped.append(f"full batch on {profile}: {n_edges:,} directed co-interaction "
                               f"edges > the bound of {args.full_max_edges:,}")
                print(f"[{profile}] {skipped[-1]}", flush=True)
                continue
            r = train(workdir, f"{mode}_e{args.epochs}",
                      [f"hgnn.batch_mode={mode}", f"hgnn.max_epochs={args.epochs}"], args.timeout_s)
            r.update(profile=profile, mode=mode)
            rows.append(r)
            print(f"[{profile}/{mode}] {json.dumps({k: v for k, v in r.items() if k != 'error'})}",
                  flush=True)
            if "error" in r:
                print(r["error"], flush=True)
    budget = None
    if args.budget_check != "none":
        workdir = prepare(args.budget_check, args.seed)
        budget = train(workdir, f"sampled_budget{args.budget_s}",
                       ["hgnn.batch_mode=sampled", f"hgnn.time_budget_s={args.budget_s}"],
                       args.timeout_s)
        budget["profile"] = args.budget_check
        print(f"[{args.budget_check}/budget] "
              f"{json.dumps({k: v for k, v in budget.items() if k != 'error'})}", flush=True)
        if "error" in budget:
            print(budget["error"], flush=True)
    load_after = os.getloadavg()[0]
    text = render(rows, skipped, budget, args, (load_before, load_after))
    print("\n" + text)
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "budget": budget}, indent=2) + "\n")
    if not args.no_write:
        write_section(text)
        print(f"wrote the section to {DOC}")


if __name__ == "__main__":
    sys.exit(main())
