"""`gfm evaluate`: HR@10 per item type on the hold-out for every available model -> reports/."""

from __future__ import annotations

import argparse

from gfm.cli.common import Context, child_flags
from gfm.errors import ConfigError


def register(subparsers) -> argparse.ArgumentParser:
    from evaluation.evaluate import MODELS  # light: numpy only; model libraries load on use

    parser = subparsers.add_parser(
        "evaluate",
        help="Hit-Rate@10, MRR@100 and coverage@10 per item type on the hold-out, for every "
             "model available; writes <workdir>/reports/",
    )
    parser.add_argument("--models", default=None, metavar="NAME[,NAME...]",
                        help="comma-separated models to evaluate (default: every one whose "
                             f"inputs exist): {', '.join(MODELS)}")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="users scored at once (default: sized for about 64 MiB of scores)")
    parser.add_argument("--sample-users", type=int, default=None, metavar="N",
                        help="evaluate a seeded random sample of N hold-out users (default: all; "
                             "for quick looks at big workspaces)")
    parser.add_argument("--sample-seed", type=int, default=0, help="seed of --sample-users")
    parser.add_argument("--experiments", choices=["paper"], default=None,
                        help="paper: also train and evaluate the seed paper's variants on the "
                             "same split (Table 1 audiobook_2t, Table 2 unified_2t_no_gnn, "
                             "Table 3 unified_2t_hgnn_daily), with paired comparisons in "
                             "metrics.json's 'paper' section and "
                             "reports/hr_at_10_ci.png (minutes: trains models)")
    parser.add_argument("--daily-days", type=int, default=3, metavar="N",
                        help="with --experiments paper: simulated days of Table 3, the HGNN "
                             "retrained daily vs frozen (default 3; 0 skips it; each day "
                             "retrains the HGNN and two two-towers on workspace copies)")
    parser.add_argument("--table1-type", default="audiobook", metavar="TYPE",
                        help="with --experiments paper: the item type of Table 1's single-type "
                             "model TYPE_2t (default audiobook, as in the paper)")
    parser.add_argument("--rolling", type=int, default=1, metavar="N",
                        help="also evaluate at N-1 earlier cutoffs, every --every days back, "
                             "each rebuilt from raw data in <workdir>/rolling/ (transform and "
                             "the models' training: minutes per cutoff), and pool hits and "
                             "users over all N; for small hold-outs (default 1: off)")
    parser.add_argument("--every", type=int, default=None, metavar="D",
                        help="days between rolling cutoffs (default: timeline.holdout_days, "
                             "so the hold-outs do not overlap)")
    return parser


def run(args: argparse.Namespace, ctx: Context) -> None:
    from evaluation.evaluate import MODELS, ModelUnavailable, evaluate_retrievers, write_reports
    from evaluation.split import load_split

    if args.models:
        names = [n.strip() for n in args.models.split(",") if n.strip()]
        unknown = [n for n in names if n not in MODELS]
        if unknown:
            raise ConfigError(f"--models: unknown model(s) {', '.join(unknown)}; "
                              f"known: {', '.join(MODELS)}")
    else:
        names = list(MODELS)
    for flag in ("batch_size", "sample_users"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            raise ConfigError(f"--{flag.replace('_', '-')} must be at least 1")
    if args.daily_days < 0:
        raise ConfigError("--daily-days must be 0 (skip Table 3) or more")
    if args.rolling < 1:
        raise ConfigError("--rolling must be at least 1 (1 = the configured cutoff only)")
    if args.every is not None and args.every < 1:
        raise ConfigError("--every must be at least 1 day")

    timeline = ctx.timeline()
    if args.rolling > 1 and timeline.protocol == "per_user":
        raise ConfigError("--rolling with timeline.protocol per_user: every cutoff would hold "
                          "the same users' same last items; use one or the other")
    if timeline.protocol == "per_user":
        print(f"per-user protocol: each user's last {timeline.per_user_holdout_items} item(s) "
              f"held out, their events shifted to start the hold-out at {timeline.cutoff:%Y-%m-%d}")
    print(f"hold-out [{timeline.cutoff:%Y-%m-%d}, {timeline.holdout_end:%Y-%m-%d}), "
          f"users as of the cutoff snapshot")
    split = load_split(ctx.workspace, timeline)
    if args.sample_users is not None:
        split = split.with_sampled_users(args.sample_users, args.sample_seed)
    retrievers, skipped = {}, {}
    for name in names:
        try:
            retrievers[name] = MODELS[name](split, ctx.workspace, ctx.config)
        except ModelUnavailable as exc:
            if args.models:  # asked for by name: not having it is an error (exit status 2)
                raise
            print(f"skipping {name}: {exc}")
            skipped[name] = str(exc)
    paper = getattr(args, "experiments", None) == "paper"
    user_hits: dict = {}
    if paper:
        import time

        from evaluation.paper import paper_retrievers

        began = time.perf_counter()
        extra, seconds = paper_retrievers(split, ctx.workspace, ctx.config, timeline,
                                          args.table1_type)
        retrievers.update(extra)
    report = evaluate_retrievers(split, retrievers, batch_size=args.batch_size,
                                 user_hits=user_hits)
    report["skipped"] = skipped  # the default models that could not be built, with the reason
    if args.rolling > 1:
        from evaluation.rolling import rolling_evaluation

        core = {name: hits for name, hits in user_hits.items() if name in names}
        core_report = {**report, "results": {n: r for n, r in report["results"].items()
                                             if n in names}}
        report["rolling"] = rolling_evaluation(
            ctx.workspace, timeline, args.rolling, args.every or timeline.holdout_days, MODELS,
            ctx.config, child_flags(args), (split, core_report, core), batch_size=args.batch_size,
            sample_users=(None if args.sample_users is None
                          else (args.sample_users, args.sample_seed)))
    if paper:
        from evaluation.paper import format_paper_markdown, paper_section, plot_hit_rate_ci

        table3 = None
        if args.daily_days > 0:
            from evaluation.paper import daily_experiment

            table3 = daily_experiment(ctx.workspace, timeline, args.daily_days,
                                      child_flags(args), batch_size=args.batch_size)
        report["paper"] = paper_section(report, user_hits, seconds, args.daily_days, table3,
                                        args.table1_type)
        report["paper"]["seconds"] = round(time.perf_counter() - began, 1)
    paths = write_reports(report, ctx.workspace.reports_dir)
    from evaluation.user_hits import FILE_NAME, save_user_hits  # for paired tests later

    paths["user_hits"] = save_user_hits(ctx.workspace.reports_dir / FILE_NAME, user_hits,
                                        split.user_ids)
    if paper:
        with paths["markdown"].open("a") as out:
            out.write("\n" + format_paper_markdown(report))
        paths["plot_ci"] = ctx.workspace.reports_dir / f"hr_at_{report['settings']['k']}_ci.png"
        plot_hit_rate_ci(report, paths["plot_ci"])
        if report["paper"]["table3"].get("done"):
            from evaluation.paper import plot_daily

            paths["plot_daily"] = ctx.workspace.reports_dir / "table3_daily.png"
            plot_daily(report["paper"]["table3"], paths["plot_daily"], report["settings"]["k"])
    if "rolling" in report:
        from evaluation.paper import plot_hit_rate_ci
        from evaluation.rolling import format_rolling_markdown

        k = report["settings"]["k"]
        with paths["markdown"].open("a") as out:
            out.write("\n" + format_rolling_markdown(report["rolling"], k))
        paths["plot_rolling"] = ctx.workspace.reports_dir / f"hr_at_{k}_rolling.png"
        rolling = report["rolling"]
        plot_hit_rate_ci({"settings": report["settings"], "split": report["split"],
                          "results": rolling["pooled"]}, paths["plot_rolling"],
                         title=f"HR@{k} pooled over {rolling['n']} cutoffs every "
                               f"{rolling['every_days']} days, 95% intervals (users resampled)")
    print()
    print(paths["markdown"].read_text())
    print("reports: " + ", ".join(str(p) for p in paths.values()))
