"""`gfm evaluate` as a function: the split, the models, the evaluation, the optional rolling
cutoffs and paper experiments, the reports. The CLI (gfm/cli/evaluate.py) parses its flags into
EvaluateOptions and calls run_evaluation."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from gfm.config import Config
from gfm.errors import ConfigError
from gfm.timeline import Timeline
from gfm.workspace import Workspace


@dataclass
class EvaluateOptions:
    models: list[str]  # names in evaluation.evaluate.MODELS, in the order to run them
    explicit: bool = False  # named by the user: a model that cannot be built is an error
    batch_size: int | None = None  # users scored at once (None: sized by memory)
    sample_users: int | None = None  # a seeded sample of hold-out users (None: all)
    sample_seed: int = 0
    experiments: str | None = None  # "paper": the seed paper's Tables 1-3 too
    daily_days: int = 3  # with paper: Table 3's days (0 skips it)
    table1_type: str = "audiobook"  # with paper: Table 1's single-type model
    rolling: int = 1  # cutoffs pooled (1: the configured one only)
    every: int | None = None  # days between rolling cutoffs (None: holdout_days)
    # Config flags (--set, --config, timeline flags) for the stages run on workspace copies.
    child_flags: list[str] = field(default_factory=list)


def run_evaluation(workspace: Workspace, config: Config, timeline: Timeline,
                   options: EvaluateOptions) -> dict[str, Path]:
    """Evaluate, write the reports under workspace.reports_dir; their paths by kind."""
    from evaluation.evaluate import MODELS, ModelUnavailable, evaluate_retrievers, write_reports
    from evaluation.rolling import rolling_every_days
    from evaluation.split import load_split

    if options.rolling > 1 and timeline.protocol == "per_user":
        raise ConfigError("--rolling with timeline.protocol per_user: every cutoff would hold "
                          "the same users' same last items; use one or the other")
    every_days = rolling_every_days(timeline, options.every)  # checked before any work
    if timeline.protocol == "per_user":
        print(f"per-user protocol: each user's last {timeline.per_user_holdout_items} item(s) "
              f"held out, their events shifted to start the hold-out at {timeline.cutoff:%Y-%m-%d}")
    print(f"hold-out [{timeline.cutoff:%Y-%m-%d}, {timeline.holdout_end:%Y-%m-%d}), "
          f"users as of the cutoff snapshot")
    split = load_split(workspace, timeline)
    if options.sample_users is not None:
        split = split.with_sampled_users(options.sample_users, options.sample_seed)
    retrievers, skipped = {}, {}
    for name in options.models:
        try:
            retrievers[name] = MODELS[name](split, workspace, config)
        except ModelUnavailable as exc:
            if options.explicit:  # asked for by name: not having it is an error (exit status 2)
                raise
            print(f"skipping {name}: {exc}")
            skipped[name] = str(exc)
    paper = options.experiments == "paper"
    user_hits: dict = {}
    if paper:
        import time

        from evaluation.paper import paper_retrievers

        began = time.perf_counter()
        extra, seconds = paper_retrievers(split, workspace, config, timeline,
                                          options.table1_type)
        retrievers.update(extra)
    report = evaluate_retrievers(split, retrievers, batch_size=options.batch_size,
                                 user_hits=user_hits)
    report["skipped"] = skipped  # the default models that could not be built, with the reason
    if options.rolling > 1:
        from evaluation.rolling import rolling_evaluation

        core = {name: hits for name, hits in user_hits.items() if name in options.models}
        core_report = {**report, "results": {n: r for n, r in report["results"].items()
                                             if n in options.models}}
        report["rolling"] = rolling_evaluation(
            workspace, timeline, options.rolling, every_days, MODELS,
            config, options.child_flags, (split, core_report, core),
            batch_size=options.batch_size,
            sample_users=(None if options.sample_users is None
                          else (options.sample_users, options.sample_seed)))
    if paper:
        from evaluation.paper import format_paper_markdown, paper_section, plot_hit_rate_ci

        table3 = None
        if options.daily_days > 0:
            from evaluation.paper import daily_experiment

            table3 = daily_experiment(workspace, timeline, options.daily_days,
                                      options.child_flags, batch_size=options.batch_size)
        report["paper"] = paper_section(report, user_hits, seconds, options.daily_days, table3,
                                        options.table1_type)
        report["paper"]["seconds"] = round(time.perf_counter() - began, 1)
    paths = write_reports(report, workspace.reports_dir)
    from evaluation.user_hits import FILE_NAME, save_user_hits  # for paired tests later

    paths["user_hits"] = save_user_hits(workspace.reports_dir / FILE_NAME, user_hits,
                                        split.user_ids)
    if paper:
        with paths["markdown"].open("a") as out:
            out.write("\n" + format_paper_markdown(report))
        paths["plot_ci"] = workspace.reports_dir / f"hr_at_{report['settings']['k']}_ci.png"
        plot_hit_rate_ci(report, paths["plot_ci"])
        if report["paper"]["table3"].get("done"):
            from evaluation.paper import plot_daily

            paths["plot_daily"] = workspace.reports_dir / "table3_daily.png"
            plot_daily(report["paper"]["table3"], paths["plot_daily"], report["settings"]["k"])
    if "rolling" in report:
        from evaluation.paper import plot_hit_rate_ci
        from evaluation.rolling import format_rolling_markdown

        k = report["settings"]["k"]
        with paths["markdown"].open("a") as out:
            out.write("\n" + format_rolling_markdown(report["rolling"], k))
        paths["plot_rolling"] = workspace.reports_dir / f"hr_at_{k}_rolling.png"
        rolling = report["rolling"]
        plot_hit_rate_ci({"settings": report["settings"], "split": report["split"],
                          "results": rolling["pooled"]}, paths["plot_rolling"],
                         title=f"HR@{k} pooled over {rolling['n']} cutoffs every "
                               f"{rolling['every_days']} days, 95% intervals (users resampled)")
    return paths
