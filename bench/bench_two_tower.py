"""Two-tower benchmark: training examples/s and epoch time, evaluation time per 1k users.

Runs on a small-profile workspace (built with `gfm pipeline` if missing, under bench/out/).
Prints the figures and replaces the "Two-tower" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchdoc import REPO, cpu_name, write_section  # noqa: E402

SECTION = "## Two-tower"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=REPO / "bench" / "out" / "two_tower_small")
    parser.add_argument("--profile", default="small")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/benchmarks.md")
    args = parser.parse_args()
    gfm = str(Path(sys.executable).parent / "gfm")
    if not (args.workdir / "models" / "two_tower" / "serving.json").exists():
        subprocess.run([gfm, "pipeline", "--workdir", str(args.workdir), "--profile",
                        args.profile], check=True)

    from evaluation.evaluate import MODELS, evaluate_retriever
    from evaluation.split import load_split
    from gfm.config import load_config
    from gfm.timeline import resolve_timeline
    from gfm.workspace import Workspace
    from training.two_tower.train import train_two_tower

    ws = Workspace.at(args.workdir)
    config = load_config(ws.root)
    timeline = resolve_timeline(config.timeline, ws)
    run = train_two_tower(ws, config, timeline, name="bench_2t", serve=False)
    m = run.metrics

    split = load_split(ws, timeline)
    started = time.perf_counter()
    retriever = MODELS["unified_2t"](split, ws, config)
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    evaluate_retriever(split, retriever, progress=False, name="unified_2t")
    eval_s = time.perf_counter() - started
    n_users = len(split.eval_users())
    per_1k = 1000 * eval_s / max(n_users, 1)

    lines = [
        f"{m['n_train_examples']:,} training examples, {len(m['epochs'])} epochs: "
        f"{m['train_examples_per_s']:,.0f} examples/s, {m['mean_epoch_time_s']:.1f} s/epoch",
        f"evaluation of unified_2t: features + towers {build_s:.1f} s, scoring and metrics for "
        f"{n_users:,} users {eval_s:.2f} s = {per_1k:.2f} s per 1k users",
    ]
    print("\n".join(lines))
    if args.no_write:
        return
    write_section(SECTION, f"""{SECTION}

`python bench/bench_two_tower.py` ({args.profile} profile; {cpu_name()}, {os.cpu_count()} cores,
shared with other work; load {os.getloadavg()[0]:.1f}).

| figure | value |
|---|---:|
| training examples | {m['n_train_examples']:,} |
| training throughput | {m['train_examples_per_s']:,.0f} examples/s |
| epoch time | {m['mean_epoch_time_s']:.1f} s |
| evaluation: Feast features + both towers for every user and item | {build_s:.1f} s |
| evaluation: exact scoring + metrics | {per_1k:.2f} s per 1k users ({n_users:,} users) |

Training time is dominated by the towers' MLPs (512-256-128) on 2 CPU threads; evaluation
scores every candidate exactly, so its cost grows with users x items.
""")


if __name__ == "__main__":
    main()
