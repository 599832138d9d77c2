"""Two-tower benchmark: training examples/s and epoch time, evaluation time per 1k users.

Runs on a small-profile workspace (built with `gfm pipeline` if missing, under bench/out/).
Prints the figures and replaces the "Two-tower" section of docs/benchmarks.md.

Training speed is also given as a ratio to a bare PyTorch loop: the trained model's own towers
(a copy) on the same examples' input tensors, built once, with a plain catalogue softmax per
batch (user tower on the batch, item tower on every trained item, cross-entropy, Adam). What
fit_two_tower does beyond that (history masks, the per-day popularity prior, the two HGNN
variants of the catalogue, history dropout) is what the ratio prices. Goal >= 0.7.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchdoc import REPO, commit_label, cpu_name, write_section  # noqa: E402

SECTION = "## Two-tower"
RATIO_GOAL = 0.7


def bare_examples_per_s(bundle, frame, n_examples: int, batch_size: int, lr: float,
                        temperature: float) -> float:
    """Examples/s of a bare loop over `n_examples` rows of `frame` (see the module doc)."""
    import copy

    import numpy as np
    import torch
    import torch.nn.functional as F

    items_frame = frame.drop_duplicates("item_id", keep="last").reset_index(drop=True)
    position = {item: i for i, item in enumerate(items_frame["item_id"])}
    positives = torch.tensor([position[i] for i in frame["item_id"]])
    users = bundle.user_inputs(frame)
    items = bundle.item_inputs(items_frame)
    model = copy.deepcopy(bundle.model).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    order = torch.from_numpy(np.random.default_rng(0).permutation(len(frame))[:n_examples])
    started = time.perf_counter()
    for start in range(0, len(order), batch_size):
        index = order[start:start + batch_size]
        logits = model.users(users.take(index)) @ model.items(items).T / temperature
        loss = F.cross_entropy(logits, positives[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return len(order) / (time.perf_counter() - started)


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

    from feature_store import core as feature_store
    from training.two_tower.train import training_frame

    cfg = config.two_tower
    service = feature_store.latest_feature_service(ws)
    frame = training_frame(ws, timeline, service, run.bundle.item_types, cfg)
    frame = frame[frame["text_embedding"].notna()].reset_index(drop=True)
    bare = bare_examples_per_s(run.bundle, frame, m["n_train_examples"], cfg.batch_size, cfg.lr,
                               cfg.temperature)
    ratio = m["step_examples_per_s"] / bare

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
        f"training steps alone {m['step_examples_per_s']:,.0f} examples/s; bare loop "
        f"{bare:,.0f} examples/s; ratio {ratio:.2f} (goal >= {RATIO_GOAL})",
        f"evaluation of unified_2t: features + towers {build_s:.1f} s, scoring and metrics for "
        f"{n_users:,} users {eval_s:.2f} s = {per_1k:.2f} s per 1k users",
    ]
    print("\n".join(lines))
    if args.no_write:
        return
    commit = commit_label() or "unknown"
    write_section(SECTION, f"""{SECTION}

`python bench/bench_two_tower.py` ({args.profile} profile; commit {commit}, the workspace's
config; {cpu_name()}, {os.cpu_count()} cores, shared with other work; load
{os.getloadavg()[0]:.1f}).

| figure | value |
|---|---:|
| training examples | {m['n_train_examples']:,} |
| training throughput, epoch with its validation | {m['train_examples_per_s']:,.0f} examples/s |
| training throughput, steps alone | {m['step_examples_per_s']:,.0f} examples/s |
| bare PyTorch loop, same towers and tensors | {bare:,.0f} examples/s |
| ratio steps / bare (goal >= {RATIO_GOAL}) | **{ratio:.2f}** |
| epoch time | {m['mean_epoch_time_s']:.1f} s |
| evaluation: Feast features + both towers for every user and item | {build_s:.1f} s |
| evaluation: exact scoring + metrics | {per_1k:.2f} s per 1k users ({n_users:,} users) |

The bare loop: the trained model's towers (a copy) on the same examples' tensors, a plain
catalogue softmax per batch (bench/bench_two_tower.py says what it leaves out). Evaluation
scores every candidate exactly, so its cost grows with users x items.
""")


if __name__ == "__main__":
    main()
