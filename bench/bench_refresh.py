"""Benchmark the daily loop: `gfm refresh` day after day against a full `gfm pipeline`.

    .venv/bin/python bench/bench_refresh.py [--profile small] [--seed 7] [--days 14]
        [--set SECTION.KEY=VALUE ...] [--workdir DIR] [--json FILE] [--no-write]

Everything runs on the validation timeline, which ends at the profile's cutoff (V = the cutoff
`gfm pipeline` picks, minus holdout_days), so nothing here reads the hold-out that
docs/results.md reports:

1. `gfm pipeline` with the cutoff V - days on a fresh workspace: the served state the
   refreshes start from;
2. on it, `gfm refresh --to` each next day up to V, each followed by `gfm evaluate --models
   unified_2t,popularity` at that day (HR@10 per day: the paper's Table 3 setting, run as
   operations; the HGNN is retrained when hgnn.refresh_every_days have passed);
3. `gfm pipeline` on another fresh workspace at the last day whose refresh kept the HGNN (a
   warm-started two-tower): the full rebuild one refresh replaces, and the model trained from
   scratch that the refreshed one is compared with (paired, on the same users). A refresh that
   retrains the HGNN trains the two-tower from scratch too, so it would equal the pipeline.

The cutoffs are written into each workspace's gfm.yaml, as `gfm refresh` does. Printed, and
written to the section "Daily refresh" of docs/benchmarks.md with a plot ("Daily refresh
(PROFILE)" for a profile other than small), and saved as bench/results_refresh/PROFILE.json,
which docs/results.md's section of the same name is rendered from (`make results-doc`). `--set`
passes
config overrides to every pipeline and refresh (a variant of the daily loop, e.g.
two_tower.warm_start_examples=new), recorded with the figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchdoc import commit_label, cpu_name, publish, run_child, save_json  # noqa: E402
from evaluation.stats import compare_models, compare_pooled, format_difference  # noqa: E402
from evaluation.user_hits import load_user_hits  # noqa: E402
from gfm.config import load_config, write_timeline_cutoff  # noqa: E402
from gfm.timeline import resolve_timeline  # noqa: E402
from gfm.workspace import Workspace  # noqa: E402

SECTION = "## Daily refresh"  # small's; another profile's gets a section of its own
IMAGE = REPO / "docs" / "img" / "bench_refresh.png"
MODELS = "unified_2t,popularity"
STAGE_DONE = re.compile(r"^== \[\d+/\d+\] done in (\d+) s")
STAGE_START = re.compile(r"^== \[\d+/\d+\] gfm (.+)$")


def gfm(*argv: str) -> list[str]:
    return [sys.executable, "-m", "gfm.cli.main", *argv]


def run(argv: list[str], log: Path) -> float:
    """Run a gfm command to its log; its wall time, or exit with the log's tail."""
    code, wall, _, _ = run_child(argv, log)
    if code != 0:
        sys.exit(f"{' '.join(argv[2:])} failed ({code}):\n{log.read_text()[-3000:]}")
    return wall


def stage_times(log: Path) -> dict[str, int]:
    """{stage: seconds} from a pipeline's or refresh's "== [i/n] ..." lines."""
    times, current = {}, None
    for line in log.read_text().splitlines():
        if m := STAGE_START.match(line):
            current = m.group(1)
        elif (m := STAGE_DONE.match(line)) and current:
            times[current] = int(m.group(1))
    return times


def hr(workdir: Path) -> dict[str, dict[str, float]]:
    results = json.loads((workdir / "reports" / "metrics.json").read_text())["results"]
    return {model: results[model]["hr@10"] for model in MODELS.split(",") if model in results}


def fresh(base: Path, name: str, raw: Path, cutoff: dt.date, note: str) -> Path:
    workdir = base / name
    shutil.rmtree(workdir, ignore_errors=True)
    shutil.copytree(raw, workdir / "raw")
    write_timeline_cutoff(workdir / "gfm.yaml", cutoff, note)
    return workdir


def measure(args: argparse.Namespace, base: Path) -> dict:
    raw_ws = base / "raw_only"
    if not (raw_ws / "raw").exists():
        run(gfm("generate", "--profile", args.profile, "--seed", str(args.seed), "--workdir",
                str(raw_ws)), base / "generate.log")
    config = load_config(raw_ws)
    cutoff = resolve_timeline(config.timeline, Workspace.at(raw_ws)).cutoff.date()
    validation = cutoff - dt.timedelta(days=config.timeline.holdout_days)
    start = validation - dt.timedelta(days=args.days)
    print(f"validation cutoff {validation} (the profile's cutoff {cutoff} minus the hold-out); "
          f"refreshes from {start}", flush=True)

    flags = [x for override in args.set for x in ("--set", override)]
    served = fresh(base, "served", raw_ws / "raw", start, "bench_refresh: the served start")
    print(f"[1/3] gfm pipeline at {start}", flush=True)
    start_wall = run(gfm("pipeline", "--workdir", str(served), *flags),
                     base / "pipeline_start.log")
    days = [{"cutoff": str(start), "kind": "pipeline", "wall_s": round(start_wall, 1),
             "stages": stage_times(base / "pipeline_start.log"), "hr@10": hr(served)}]
    for i in range(1, args.days + 1):
        day = start + dt.timedelta(days=i)
        print(f"[2/3] day {i}/{args.days}: gfm refresh --to {day}", flush=True)
        log = base / f"refresh_{day}.log"
        wall = run(gfm("refresh", "--to", str(day), "--workdir", str(served), *flags), log)
        run(gfm("evaluate", "--models", MODELS, "--workdir", str(served)),
            base / f"evaluate_{day}.log")
        record = json.loads((served / "refresh.json").read_text())  # what gfm refresh did
        shutil.copy(served / "reports" / "user_hits.npz", base / f"user_hits_{day}.npz")
        days.append({"cutoff": str(day), "kind": "refresh", "wall_s": round(wall, 1),
                     "stages": stage_times(log), "hr@10": hr(served),
                     "static": bool(record["static"])})
        print(f"      {wall:.0f} s; HR@10 {days[-1]['hr@10']}", flush=True)
    warm = [d for d in days if d["kind"] == "refresh" and not d["static"]]
    compared_day = dt.date.fromisoformat(warm[-1]["cutoff"] if warm else str(validation))
    refreshed_hits = load_user_hits(base / f"user_hits_{compared_day}.npz")

    scratch = fresh(base, "scratch", raw_ws / "raw", compared_day, "bench_refresh: from scratch")
    print(f"[3/3] gfm pipeline at {compared_day}", flush=True)
    wall = run(gfm("pipeline", "--workdir", str(scratch), *flags), base / "pipeline_full.log")
    scratch_hits = load_user_hits(scratch / "reports" / "user_hits.npz")
    hits = {"refreshed": refreshed_hits["unified_2t"], "scratch": scratch_hits["unified_2t"]}
    per_type = compare_models(hits, "refreshed", "scratch")
    pooled = compare_pooled(hits, "refreshed", "scratch")
    return {
        "profile": args.profile, "seed": args.seed, "settings": list(args.set), "days": days,
        "validation_cutoff": str(validation),
        "pipeline": {"cutoff": str(compared_day), "wall_s": round(wall, 1),
                     "stages": stage_times(base / "pipeline_full.log"), "hr@10": hr(scratch)},
        "refreshed_vs_scratch": {**per_type, "all types": pooled},
        "commit": commit_label(), "machine": cpu_name(),
        "measured_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def section(profile: str) -> str:
    return SECTION if profile == "small" else f"{SECTION} ({profile})"


def image(profile: str) -> Path:
    return IMAGE if profile == "small" else IMAGE.with_name(f"{IMAGE.stem}_{profile}.png")


def plot(result: dict, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    days = result["days"]
    x = [dt.date.fromisoformat(d["cutoff"]) for d in days]
    figure = Figure(figsize=(11, 4))
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2)
    types = sorted(days[0]["hr@10"]["unified_2t"])
    for t in types:
        line, = left.plot(x, [d["hr@10"]["unified_2t"][t] for d in days], marker="o",
                          label=f"unified_2t, {t}")
        left.plot(x, [d["hr@10"]["popularity"][t] for d in days], ls="--",
                  color=line.get_color(), label=f"popularity, {t}")
        left.scatter([dt.date.fromisoformat(result["pipeline"]["cutoff"])],
                     [result["pipeline"]["hr@10"]["unified_2t"][t]], marker="x", s=80,
                     color=line.get_color(), zorder=3)
    left.set_title("HR@10 at each day's cutoff (x: trained from scratch)")
    left.set_ylabel("HR@10 (discovery)")
    left.legend(fontsize=7)
    left.tick_params(axis="x", labelrotation=45)
    refreshes = [d for d in days if d["kind"] == "refresh"]
    right.bar([d["cutoff"][5:] for d in refreshes], [d["wall_s"] for d in refreshes],
              color=["tab:red" if d["static"] else "tab:blue" for d in refreshes])
    right.axhline(result["pipeline"]["wall_s"], color="black", ls="--", label="full pipeline")
    right.set_title("refresh wall time (red: HGNN retrained)")
    right.set_ylabel("seconds")
    right.tick_params(axis="x", labelrotation=45)
    right.legend(fontsize=7)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)


def render(result: dict) -> str:
    days, pipeline = result["days"], result["pipeline"]
    refreshes = [d for d in days if d["kind"] == "refresh"]
    daily = [d for d in refreshes if not d["static"]]
    types = sorted(pipeline["hr@10"]["unified_2t"])
    mean_daily = sum(d["wall_s"] for d in daily) / len(daily) if daily else None
    lines = [
        section(result["profile"]), "",
        f"`python bench/bench_refresh.py --profile {result['profile']} --seed {result['seed']} "
        f"--days {len(refreshes)}"
        + "".join(f" --set {s}" for s in result.get("settings", []))
        + f"` at commit {result['commit']}, {result['measured_at']}; "
        f"{result['machine']}, shared. On the validation timeline (it ends at the profile's "
        f"cutoff, so the hold-out of docs/results.md is never read): a pipeline at "
        f"{days[0]['cutoff']}, then one `gfm refresh` per day up to {result['validation_cutoff']}"
        ", each followed by `gfm evaluate`; and a full pipeline at "
        f"{pipeline['cutoff']}, the last day whose refresh kept the HGNN, to compare with.", "",
    ]
    if mean_daily is not None:
        lines += [f"A daily refresh (HGNN kept) took {mean_daily:.0f} s on average, "
                  f"{mean_daily / pipeline['wall_s']:.2f}x the full pipeline's "
                  f"{pipeline['wall_s']:.0f} s (goal: at most 0.3x).", ""]
    header = ["day (cutoff)", "what ran", "wall s",
              *[f"unified_2t {t}" for t in types], *[f"popularity {t}" for t in types]]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for d in days:
        what = ("pipeline" if d["kind"] == "pipeline"
                else "refresh, HGNN retrained" if d["static"] else "refresh")
        lines.append("| " + " | ".join([d["cutoff"], what, f"{d['wall_s']:.0f}",
                                        *[f"{d['hr@10']['unified_2t'][t]:.3f}" for t in types],
                                        *[f"{d['hr@10']['popularity'][t]:.3f}" for t in types]])
                     + " |")
    lines.append("| " + " | ".join([pipeline["cutoff"], "full pipeline (from scratch)",
                                    f"{pipeline['wall_s']:.0f}",
                                    *[f"{pipeline['hr@10']['unified_2t'][t]:.3f}"
                                      for t in types],
                                    *[f"{pipeline['hr@10']['popularity'][t]:.3f}"
                                      for t in types]]) + " |")
    compared = result["refreshed_vs_scratch"]
    lines += ["", f"The model refreshed to {pipeline['cutoff']} (warm-started) minus the one "
              f"trained from scratch there (paired, same users; 95% bootstrap interval): "
              + "; ".join(f"{t} {format_difference(c)}" for t, c in compared.items()) + ".", ""]
    stages = sorted(set(pipeline["stages"]) | {s for d in refreshes for s in d["stages"]})
    if daily:
        lines += ["Seconds per stage: the full pipeline, and the mean daily refresh (HGNN kept):",
                  "", "| stage | pipeline | daily refresh |", "|---|---:|---:|"]
        for stage in stages:
            mean = [d["stages"][stage] for d in daily if stage in d["stages"]]
            lines.append(f"| `{stage}` | {pipeline['stages'].get(stage, '–')} | "
                         + (f"{sum(mean) / len(mean):.0f}" if mean else "–") + " |")
        lines.append("")
    lines += [f"![daily refresh](img/{image(result['profile']).name})", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="small")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--days", type=int, default=14, help="daily refreshes")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the workspaces go (default: a temporary directory)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="config override for every pipeline and refresh (repeatable)")
    parser.add_argument("--json", type=Path, default=None, help="also save the raw figures")
    parser.add_argument("--render-only", type=Path, default=None, metavar="JSON",
                        help="render a saved --json again, measuring nothing")
    parser.add_argument("--no-write", action="store_true", help="do not touch docs/")
    args = parser.parse_args()
    if args.days < 1:
        parser.error("--days must be at least 1")
    if args.render_only:
        result = json.loads(args.render_only.read_text())
    elif args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        result = measure(args, args.workdir.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="bench_refresh_") as tmp:
            result = measure(args, Path(tmp))
    save_json(args.json, result)
    if not args.no_write:
        if not args.render_only:
            # the record docs/results.md's section is rendered from (bench/resultsdoc.py): both
            # docs then always show the same run
            save_json(REPO / "bench" / "results_refresh" / f"{result['profile']}.json", result)
        plot(result, image(result["profile"]))
    publish(section(result["profile"]), render(result), not args.no_write)


if __name__ == "__main__":
    main()
