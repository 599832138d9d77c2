"""docs/results.md from the runs' stamps and metrics (bench/results.py): every figure is read
from a run's reports/metrics.json or reports/user_hits.npz, never typed. Nothing here reads the
clock: the same runs give the same bytes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resultsrun import (
    REPO,
    Decision,
    Run,
    code_state,
    decide_recorded,
    read_record,
    record_metrics,
    records_dir,
    sync_record,
)

UNIFIED = "unified_2t"
# bench/bench_refresh.py's saved figures (--json): the daily loop's section at the end.
# bench_refresh's records, <profile>.json (small first), beside bench_swap's
REFRESH_RECORDS = REPO / "bench" / "results_refresh"
BASELINES = ("als", "ease")

INTRO = """\
# Results

**This file is generated: do not edit it by hand.** `make results` (bench/results.py) brings
each named run up to date, rerunning it only when its inputs changed (the code, its commands or
config, its raw data), and then writes this file and its plots (docs/img/<run>/) from the runs'
reports/metrics.json and reports/user_hits.npz. `RUNS=small,medium make results` selects runs;
`make results-doc` (`bench/results.py --reuse-only`) rewrites this file from the runs as they
are, running nothing; `bench/results.py --list` says which runs would be reused or rerun, and
why. The runs are defined in bench/results.py; their workspaces live under results/ (or
$RESULTS_DIR), outside git, and what this file is written from (each run's stamp, metrics.json,
per-user hits and training summaries) is kept in git under docs/results/<run>/: a fresh clone
writes the same file and reruns only what changed. Each section says the commit, config and
commands that produced it,
and how long it ran; a run that failed says so with the end of its output (the others go on),
and a run whose inputs changed since is marked stale until it is rerun. Runs fix their epochs:
one whose training a wall-clock time budget stopped instead (a loaded machine) fails rather
than being recorded, so the figures do not depend on the machine's load. Nor, on one machine,
on the run: the HGNN retrained there gives the same vectors bit for bit. On another machine they
move: the text encoder's floating-point sums already depend on the CPU's vector kernels (in the
last digits of the text vectors), the HGNN's training amplifies that, and the figures that read
its vectors (hgnn_knn, unified_2t) move in the third decimal; EASE, popularity and text_knn do
not move.

Offline evaluation (`gfm evaluate`, `evaluation/`): Hit-Rate@10, MRR@100 and coverage@10 per
top-level item type on the hold-out after the cutoff, exact scoring over every candidate,
ranking per item type. **Discovery** (primary): items already in the user's history are neither
recommended nor counted as targets. Coverage@10 = share of the candidate items that appear in at
least one top-10 list. Intervals are 95% bootstrap intervals (users resampled); paired
differences A - B are on the users both models count, with a paired bootstrap interval and
McNemar's exact p.

**What is comparable.** The synthetic profiles are generated data (`ingest/synthetic.py`): the
absolute values say how learnable the generator's tastes are, not how the models would do on a
real platform. Compare the models with each other on the same run, and with the papers only by
direction (which model beats which). MovieLens item "types" are families of a movie's first
genre (`ingest/importers.py`), not content types like audiobook and podcast. Times depend on the
machine and its load (the development machine has 2 shared cores).
"""


@dataclass
class RunView:
    """What the document shows of one run."""

    run: Run
    stamp: Mapping[str, Any] | None
    decision: Decision
    metrics: Mapping[str, Any] | None
    user_hits: Mapping[str, Any] | None
    plots: list[str]  # paths relative to the document
    training: Mapping[str, Any] | None = None  # {"hgnn": hgnn_metrics.json, "two_tower": ...}


# ---------------------------------------------------------------------------------------------
# Cells


def f3(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def with_ci(x: float | None, ci: list[float] | None) -> str:
    if x is None:
        return "n/a"
    return f"{x:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{x:.3f}"


def diff_cell(c: Mapping[str, Any] | None) -> str:
    from evaluation.stats import format_difference

    return format_difference(c)


def p_cell(c: Mapping[str, Any] | None) -> str:
    return "n/a" if not c or c.get("mcnemar_p") is None else f"{c['mcnemar_p']:.2g}"


def verdict(c: Mapping[str, Any] | None, a: str, b: str) -> str:
    if not c or c.get("diff_ci") is None:
        return "n/a"
    lo, hi = c["diff_ci"]
    if lo > 0:
        return f"{a} ahead (interval above 0)"
    if hi < 0:
        return f"{b} ahead (interval below 0)"
    return "no significant difference"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    hours, rest = divmod(seconds, 3600)
    return (f"{hours} h " if hours else "") + f"{rest // 60} min {rest % 60} s"


def table(header: list[str], rows: list[list[str]], left: int = 1) -> str:
    lines = ["| " + " | ".join(header) + " |",
             "|" + ":--|" * left + "--:|" * (len(header) - left)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{t} {n:,}" for t, n in counts.items())


# ---------------------------------------------------------------------------------------------
# Sections


def status_of(view: RunView) -> str:
    if view.stamp is None:
        return "not run yet"
    status = view.stamp.get("status")
    if status != "ok":
        return "**failed**"
    if view.decision.action != "reuse":
        return f"ok, stale ({view.decision.reason})"
    return "ok"


def render_overview(views: list[RunView]) -> str:
    rows = []
    for v in views:
        s = v.stamp or {}
        commit = s.get("commit", "")[:10] + (" + local changes" if s.get("dirty") else "")
        rows.append([f"[{v.run.name}](#{anchor(v.run)})", status_of(v), commit or "-",
                     duration(s.get("wall_s")) if s else "-", s.get("finished_at", "-")])
    return "## Runs\n\n" + table(["run", "status", "commit", "wall time", "finished (UTC)"],
                                 rows, left=5) + "\n"


def baseline_comparisons(views: list[RunView]) -> str:
    """unified_2t against als and ease per run and type (paired, from user_hits.npz)."""
    from evaluation.stats import compare_models, compare_pooled

    rows, missing = [], []
    for v in views:
        if v.metrics is None:
            continue
        if not v.user_hits or UNIFIED not in v.user_hits:
            missing.append(v.run.name)
            continue
        results = v.metrics["results"]
        k = v.metrics["settings"]["k"]
        name = v.run.name + ("" if status_of(v) == "ok" else " (stale)")
        compared = {b: compare_models(v.user_hits, UNIFIED, b) for b in BASELINES
                    if b in v.user_hits}
        for t in v.user_hits[UNIFIED]:
            n_users = len(v.user_hits[UNIFIED][t][0])
            row = [name, t, f"{n_users:,}", f3(results[UNIFIED][f"hr@{k}"].get(t))]
            row += _baseline_cells({b: compared.get(b, {}).get(t) for b in BASELINES})
            rows.append(row)
        if len(v.user_hits[UNIFIED]) > 1:
            overall = {b: compare_pooled(v.user_hits, UNIFIED, b) for b in BASELINES
                       if b in v.user_hits}
            first = next(iter(overall.values()), None)
            row = [name, "all types", f"{first['n_users']:,}" if first else "",
                   f3(first["hr_a"]) if first else "n/a"]
            row += _baseline_cells(overall)
            rows.append(row)
        rows += _rolling_summary_rows(v.metrics.get("rolling") or {}, name)
    parts = [f"## Summary: {UNIFIED} against ALS and EASE (HR@10, discovery)", "",
             f"Paired on the users both models count; bold: the 95% interval of {UNIFIED} - "
             "baseline excludes 0. \"all types\": the (user, type) units of every type pooled "
             "(users counted in several types are resampled as independent units). For rolling "
             "runs, the configured cutoff, then \"N cutoffs pooled\": the (user, cutoff) units "
             "of every cutoff (\"users\" there: units, and in brackets the distinct users), "
             "the interval resampling users with all their units together, McNemar's p "
             "clustered by user (Durkalski 2003)."]
    if rows:
        parts += ["", table(["run", "type", "users", UNIFIED, "als", f"{UNIFIED} - als [95% CI]",
                             "McNemar p", "ease", f"{UNIFIED} - ease [95% CI]", "McNemar p"],
                            rows, left=2)]
    else:
        parts += ["", "No run has per-user hits yet."]
    if missing:
        parts += ["", "Without per-user hits (reports/user_hits.npz, written by `gfm evaluate` "
                  f"since it exists) or without {UNIFIED}: {', '.join(missing)}."]
    return "\n".join(parts) + "\n"


def _baseline_cells(compared: Mapping[str, Any]) -> list[str]:
    """The summary's cells of each baseline: its rate, unified_2t minus it, McNemar's p (or
    "not evaluated"). compared: {baseline: paired comparison or None}."""
    cells = []
    for b in BASELINES:
        c = compared.get(b)
        cells += [f3(c["hr_b"]), diff_cell(c), p_cell(c)] if c else ["not evaluated", "", ""]
    return cells


def _rolling_summary_rows(rolling: Mapping[str, Any], name: str) -> list[list[str]]:
    """The summary's rows of a rolling run's pooled comparisons (metrics.json's rolling.versus),
    when unified_2t is the reference there."""
    versus = rolling.get("versus") or {}
    compared = versus.get("comparisons") or {}
    if versus.get("reference") != UNIFIED or not compared:
        return []
    # The units and unified_2t's rate of a type: the same against every model (one split per
    # cutoff); read from a baseline's comparison where there is one.
    order = [b for b in BASELINES if b in compared] + [m for m in compared if m not in BASELINES]
    rows = []
    for t in compared[order[0]]:
        first = compared[order[0]][t]
        row = [f"{name} ({rolling['n']} cutoffs pooled)", t,
               f"{first['n_users']:,} ({first['n_clusters']:,} users)", f3(first["hr_a"])]
        row += _baseline_cells({b: compared.get(b, {}).get(t) for b in BASELINES})
        rows.append(row)
    return rows


def _group_rate(results: Mapping[str, Any], model: str, group: str, k: int, t: str) -> str:
    return f3(results.get(model, {}).get(group, {}).get(f"hr@{k}", {}).get(t))


def _paired_cell(results: Mapping[str, Any], model: str, key: str, t: str) -> str:
    c = results.get(model, {}).get("cold_start", {}).get(key, {}).get(t)
    return diff_cell(c) if c else "n/a"


def cold_start_comparisons(views: list[RunView]) -> str:
    """Per run and type: new items (unified_2t and hgnn_knn against text_knn) and users without
    history (unified_2t against popularity), paired, from metrics.json's cold_start."""
    from evaluation.cold_start import (
        COLD_REFERENCE,
        NEW_ITEM_REFERENCE,
        NEW_ITEMS_VERSUS,
        POOLED,
    )

    rows = []
    for v in views:
        if v.metrics is None or UNIFIED not in v.metrics["results"]:
            continue
        results = v.metrics["results"]
        k = v.metrics["settings"]["k"]
        name = v.run.name + ("" if status_of(v) == "ok" else " (stale)")
        counts = v.metrics["split"].get("n_users", {})
        for t in v.metrics["split"]["n_items"]:
            rows.append([
                name, t, f"{counts.get('new_items', {}).get(t, 0):,}",
                *(_group_rate(results, m, "new_items", k, t)
                  for m in (UNIFIED, "hgnn_knn", NEW_ITEM_REFERENCE)),
                _paired_cell(results, UNIFIED, NEW_ITEMS_VERSUS, t),
                _paired_cell(results, "hgnn_knn", NEW_ITEMS_VERSUS, t),
                f"{counts.get('cold_users', {}).get(t, 0):,}",
                _paired_cell(results, UNIFIED, f"versus_{COLD_REFERENCE}", t)])
        rows.append([name, POOLED, "", "", "", "",
                     _paired_cell(results, UNIFIED, NEW_ITEMS_VERSUS, POOLED),
                     _paired_cell(results, "hgnn_knn", NEW_ITEMS_VERSUS, POOLED), "",
                     _paired_cell(results, UNIFIED, f"versus_{COLD_REFERENCE}", POOLED)])
    parts = ["## Summary: cold start (HR@10)", "",
             "New items: users with history, counting only hold-out items released at or after "
             f"the cutoff, each model against {NEW_ITEM_REFERENCE} (what an item has on its "
             f"release day is its text). No history: users without history at the cutoff, "
             f"{UNIFIED} against {COLD_REFERENCE}. Paired differences with 95% bootstrap "
             "intervals (bold: excludes 0); n/a: not in that run's metrics (written before "
             "`gfm evaluate` paired them, or the model was not evaluated)."]
    if rows:
        parts += ["", table(["run", "type", "new items: users", UNIFIED, "hgnn_knn",
                             NEW_ITEM_REFERENCE, f"{UNIFIED} - {NEW_ITEM_REFERENCE}",
                             f"hgnn_knn - {NEW_ITEM_REFERENCE}", "no history: users",
                             f"{UNIFIED} - {COLD_REFERENCE}"], rows, left=2)]
    else:
        parts += ["", f"No run has {UNIFIED} yet."]
    return "\n".join(parts) + "\n"


def anchor(run: Run) -> str:
    return "run-" + run.name.replace("_", "-")


def render_provenance(view: RunView) -> str:
    s = view.stamp
    if s is None:
        cmds = "\n".join(" ".join(["gfm", *c]) for c in view.run.commands)
        config = ""
        if view.run.config:
            config = f" with the config {json.dumps(view.run.config)}"
        if view.run.base:
            config += f", on a copy of the run `{view.run.base}`'s workspace"
        return (f"Not run yet (`RUNS={view.run.name} make results`). Commands{config}:\n\n"
                f"```\n{cmds}\n```\n")
    commands = s.get("commands") or [" ".join(["gfm", *c]) for c in view.run.commands]
    parts = ["```", *commands, "```", ""]
    dirty = s.get("dirty") or []
    code = f"Commit `{s.get('commit', '?')[:10]}`"
    if dirty:
        code += f" with uncommitted changes to {', '.join(f'`{d}`' for d in dirty)}"
    code += f" (code hash `{(s.get('inputs') or {}).get('code_hash', '?')[:12]}`)"
    steps = "; ".join(f"`{st['command']}` {duration(st['seconds'])}" for st in s.get("steps", []))
    line = (f"{code}. Ran {duration(s.get('wall_s'))}" + (f" ({steps})" if steps else "")
            + ", finished "
            f"{s.get('finished_at', '?')} on {s.get('machine', '?')}.")
    if view.run.base:
        line += f" Started from a copy of the run `{view.run.base}`'s workspace" + (
            f" (finished {s['base_finished_at']})." if s.get("base_finished_at") else ".")
    parts.append(line)
    if s.get("code_hash_at_end") not in (None, (s.get("inputs") or {}).get("code_hash")):
        parts += ["", "**The code changed while this run ran** (other edits in the working "
                  "tree): its figures may mix the two versions."]
    if view.decision.action != "reuse" and s.get("status") == "ok":
        parts += ["", f"**Stale**: {view.decision.reason} since this run; "
                  f"`RUNS={view.run.name} make results` reruns it."]
    if s.get("config_file"):
        parts += ["", "Workspace config (gfm.yaml; built-in defaults otherwise):", "",
                  "```yaml", s["config_file"].rstrip("\n"), "```"]
    else:
        parts += ["", "Config: the built-in defaults (no gfm.yaml)."]
    if s.get("resolved_config"):
        parts += ["", "<details><summary>Resolved configuration (gfm config)</summary>", "",
                  "```yaml", s["resolved_config"].rstrip("\n"), "```", "", "</details>"]
    if s.get("status") != "ok":
        parts += ["", f"**This run failed** after {duration(s.get('wall_s'))}"
                  + (f" at `{s['failed_command']}`" if s.get("failed_command") else "")
                  + ". The end of its output:", "", "```", (s.get("error") or "").rstrip(),
                  "```"]
    return "\n".join(parts) + "\n"


def render_split(metrics: Mapping[str, Any]) -> str:
    split = metrics["split"]
    counts = split.get("n_users", {})
    protocol = ("per-user (each user's last items held out)" if split.get("protocol") == "per_user"
                else "global")
    text = (f"Cutoff {str(split.get('cutoff'))[:10]}, hold-out to "
            f"{str(split.get('holdout_end'))[:10]}, {protocol} protocol. Candidates: "
            f"{_counts(split['n_items'])} (released since the cutoff: "
            f"{_counts(split.get('n_new_items', {}))}). Users with history at the cutoff "
            f"{split.get('n_users_with_history', 0):,}, with hold-out targets "
            f"{split.get('n_users_with_targets', 0):,}")
    if "exclude_history" in counts:
        text += f"; counted in discovery: {_counts(counts['exclude_history'])}"
    if split.get("sampled_from_n_users"):
        text += f" (a sample of {split['sampled_from_n_users']:,})"
    return text + ".\n"


def render_discovery(metrics: Mapping[str, Any]) -> str:
    k, mrr_k = metrics["settings"]["k"], metrics["settings"]["mrr_k"]
    hr, mrr, cov = f"hr@{k}", f"mrr@{mrr_k}", f"coverage@{k}"
    types = list(metrics["split"]["n_items"])
    results = metrics["results"]
    best = {t: max((r[hr].get(t) or 0.0 for r in results.values()), default=0.0) for t in types}
    rows = []
    for name, r in results.items():
        cells = []
        for t in types:
            cell = with_ci(r[hr].get(t), (r.get(f"{hr}_ci") or {}).get(t))
            if r[hr].get(t) is not None and r[hr].get(t) == best[t] and best[t] > 0:
                cell = "**" + cell.replace(" [", "** [", 1) if " [" in cell else f"**{cell}**"
            cells.append(cell)
        rows.append([name, *cells, *(f3(r[mrr].get(t)) for t in types), f3(r.get(cov))])
    header = (["model"] + [f"HR@{k} {t} [95% CI]" for t in types]
              + [f"MRR@{mrr_k} {t}" for t in types] + [f"coverage@{k}"])
    inclusive = [[name, *(f3(r["inclusive"][hr].get(t)) for t in types),
                  *(f3(r["inclusive"][mrr].get(t)) for t in types),
                  f3(r["inclusive"].get(cov))] for name, r in results.items() if "inclusive" in r]
    parts = ["Discovery (primary; bold: the best HR@10 of the type):", "", table(header, rows)]
    if inclusive:
        parts += ["", "Inclusive (history items may be recommended and count as targets):", "",
                  table(["model"] + [f"HR@{k} {t}" for t in types]
                        + [f"MRR@{mrr_k} {t}" for t in types] + [f"coverage@{k}"], inclusive)]
    return "\n".join(parts) + "\n"


def render_settings(metrics: Mapping[str, Any]) -> str:
    rows = []
    for name, r in metrics["results"].items():
        settings = r.get("settings")
        shown = (", ".join(f"{key} {json.dumps(value)}" for key, value in settings.items())
                 if isinstance(settings, Mapping) else json.dumps(settings) if settings else "-")
        source = r.get("source")
        rows.append([name, shown, f"`{source}`" if source else "-"])
    return ("Settings each model ran with (metrics.json; `-`: none reported):\n\n"
            + table(["model", "settings", "source"], rows, left=3) + "\n")


def render_cold_start(metrics: Mapping[str, Any]) -> str:
    k = metrics["settings"]["k"]
    hr = f"hr@{k}"
    types = list(metrics["split"]["n_items"])
    counts = metrics["split"].get("n_users", {})
    cold, new = counts.get("cold_users", {}), counts.get("new_items", {})
    rows = [[name, *(f3(r.get("cold_users", {}).get(hr, {}).get(t)) for t in types),
             *(f3(r.get("new_items", {}).get(hr, {}).get(t)) for t in types)]
            for name, r in metrics["results"].items()]
    header = (["model"] + [f"no history: {t} ({cold.get(t, 0):,} users)" for t in types]
              + [f"new items: {t} ({new.get(t, 0):,} users)" for t in types])
    from evaluation.cold_start import format_versus_reference

    cold_start = {name: r.get("cold_start", {}) for name, r in metrics["results"].items()}
    paired = "\n".join(format_versus_reference(cold_start)
                       + format_versus_reference(cold_start, new_items=True))
    return (f"Cold start, HR@{k}: users without history at the cutoff; users with history, "
            "counting only hold-out items released at or after the cutoff:\n\n"
            + table(header, rows) + "\n" + (paired + "\n" if paired else ""))


def render_paper(metrics: Mapping[str, Any], reference: Mapping[str, Any]) -> str:
    from evaluation.paper import PAPER_TABLES

    paper = metrics.get("paper")
    if not paper:
        return ""
    k = metrics["settings"]["k"]
    hr = f"hr@{k}"
    rows = []
    for name, label in PAPER_TABLES.items():
        if name not in paper:
            continue  # table2_served: only when the served ranking is not the model's own
        pair = paper[name] or {}
        a, b = pair.get("models", ["?", "?"])
        if not pair.get("comparison"):
            rows.append([label, "-", f"{a} vs {b}", "missing: "
                         + ", ".join(pair.get("missing", [])), "", "", "", "", "", ""])
            continue
        cited = reference.get(name.removesuffix("_served")) or {}
        for t in pair["types"]:
            c = pair["comparison"][t]
            rows.append([label, t, f"{a} vs {b}",
                         with_ci(pair[hr][a][t], pair[f"{hr}_ci"][a][t]),
                         with_ci(pair[hr][b][t], pair[f"{hr}_ci"][b][t]),
                         diff_cell(c), p_cell(c), f"{c['n_users']:,}", verdict(c, "A", "B"),
                         cited.get(t, "-")])
    parts = [f"Paper experiments (HR@{k}, discovery; A - B paired on the same users; paper: the "
             "GFM paper's production figures, A vs B):", "",
             table(["table", "type", "A vs B", "A [95% CI]", "B [95% CI]", "A - B [95% CI]",
                    "McNemar p", "users", "verdict", "paper"], rows, left=3)]
    train = paper.get("train_seconds") or {}
    if train:
        parts += ["", "Training of the paper's variants: "
                  + ", ".join(f"{m} {duration(s)}" for m, s in train.items())
                  + (f"; the paper part took {duration(paper['seconds'])} in all."
                     if paper.get("seconds") is not None else ".")]
    table3 = paper.get("table3") or {}
    if not table3.get("done"):
        parts += ["", f"Table 3: {table3.get('note', 'not run')}."]
    else:
        daily, frozen = table3["models"]
        rows = []
        for day in table3["days"]:
            for t, c in day["comparison"].items():
                rows.append([str(day["day"]), day["cutoff"], t,
                             with_ci(day[hr][daily][t], day[f"{hr}_ci"][daily][t]),
                             with_ci(day[hr][frozen][t], day[f"{hr}_ci"][frozen][t]),
                             diff_cell(c), p_cell(c), f"{c['n_users']:,}",
                             duration(day.get("seconds"))])
        parts += ["", f"Table 3: `{daily}` (HGNN and two-tower retrained daily) vs `{frozen}` "
                  f"(HGNN frozen at day 0); paper: {reference.get('table3', '-')}:", "",
                  table(["day", "cutoff", "type", "daily [95% CI]", "frozen [95% CI]",
                         "daily - frozen [95% CI]", "McNemar p", "users", "day's time"], rows,
                        left=3)]
    return "\n".join(parts) + "\n"


def render_rolling(metrics: Mapping[str, Any]) -> str:
    from evaluation.rolling import format_versus_markdown

    if not metrics.get("rolling"):
        return ""
    rolling, k = metrics["rolling"], metrics["settings"]["k"]
    hr, pooled = f"hr@{k}", rolling["pooled"]
    types = sorted({t for r in pooled.values() for t in r[hr]})
    rows = [[m, *(with_ci(r[hr].get(t), r[f"{hr}_ci"].get(t)) for t in types),
             *(f"{r['units'].get(t, 0):,}" for t in types)] for m, r in pooled.items()]
    per_cutoff = []
    for c in rolling["per_cutoff"]:
        per_cutoff.append([c["cutoff"][:10], _counts(c["n_users"]),
                           *(" / ".join(f3(c[hr][m].get(t)) for t in types) for m in pooled)])
    versus = format_versus_markdown(rolling, k)
    paired = [""] + versus if versus else []
    return "\n".join([
        f"Rolling cutoffs: {rolling['n']} cutoffs every {rolling['every_days']} days "
        f"({rolling['cutoffs'][-1][:10]} to {rolling['cutoffs'][0][:10]}), HR@{k} pooled over "
        f"(user, cutoff) units, 95% interval resampling users; "
        f"{duration(rolling.get('seconds'))} for the earlier cutoffs:", "",
        table(["model"] + [f"HR@{k} {t} [95% CI]" for t in types]
              + [f"units {t}" for t in types], rows), "",
        f"Per cutoff (HR@{k} as {' / '.join(types)}):", "",
        table(["cutoff", "users", *pooled], per_cutoff, left=2),
        *paired,
    ]) + "\n"


def _hgnn_line(h: Mapping[str, Any]) -> str:
    return (f"HGNN `{h.get('version', '?')}` ({h.get('batch_mode', '?')} batch): "
            f"{len(h.get('epochs') or [])} epoch(s), best {h.get('best_epoch', '?')}, "
            f"{duration(h.get('train_time_s'))} of training; validation AUC "
            f"{f3(h.get('val_auc'))} (text cosine {f3(h.get('text_cosine_auc'))}), MRR "
            f"{f3(h.get('val_mrr'))} (text cosine {f3(h.get('text_cosine_mrr'))}).")


def _two_tower_line(t: Mapping[str, Any]) -> str:
    examples = (f"{t.get('n_examples', 0):,} examples ({t.get('n_train_examples', 0):,} train, "
                f"{t.get('n_val_examples', 0):,} validation)")
    recall = f"validation recall@10 (discovery, last epoch) {f3(t.get('val_recall@10'))}"
    return (f"Two-tower `{t.get('tag', '?')}`: {examples}, {len(t.get('epochs') or [])} "
            f"epoch(s), {recall}, {t.get('train_examples_per_s', 0):,.0f} examples/s.")


def render_training(training: Mapping[str, Any] | None) -> str:
    """One line each from reports/hgnn_metrics.json and two_tower_metrics_unified_2t.json."""
    training = training or {}
    lines = [line(training[key]) for key, line in (("hgnn", _hgnn_line),
                                                   ("two_tower", _two_tower_line))
             if training.get(key)]
    return "\n\n".join(lines) + "\n" if lines else ""


def render_plots(view: RunView) -> str:
    if not view.plots:
        return ""
    return "\n\n".join(f"![{Path(p).stem} ({view.run.name})]({p})" for p in view.plots) + "\n"


def render_studies(run: Run) -> str:
    """What was tried on the run's validation split: links to the pages that measured it
    (written by bench/two_tower_variants.py doc, with their own figures and commits)."""
    if not run.studies:
        return ""
    lines = [f"- [{page}]({page}): {what}" for page, what in run.studies]
    return ("Tried on this run's validation split (bench/two_tower_variants.py; each page has "
            "its figures, commit and what was kept):\n\n" + "\n".join(lines) + "\n")


def render_run(view: RunView, reference: Mapping[str, Any]) -> str:
    parts = [f'<a id="{anchor(view.run)}"></a>\n## {view.run.title} (`{view.run.name}`)\n',
             render_provenance(view)]
    if view.run.studies:
        parts.append(render_studies(view.run))
    if view.metrics is not None:
        parts += [render_split(view.metrics), render_discovery(view.metrics),
                  render_settings(view.metrics), render_cold_start(view.metrics)]
        parts += [p for p in (render_training(view.training),
                              render_paper(view.metrics, reference),
                              render_rolling(view.metrics), render_plots(view)) if p]
    return "\n".join(parts)


def render_daily_refresh(records: Path) -> str:
    """The paper's Table 3 setting run as operations: bench/bench_refresh.py's saved figures
    (HR@10 per day through daily refreshes, the refreshed model against one trained from
    scratch), per profile, the sections it also writes into docs/benchmarks.md."""
    from bench_refresh import render, section

    paths = sorted(records.glob("*.json"), key=lambda p: (p.stem != "small", p.stem))
    parts = []
    for record in paths:
        result = json.loads(record.read_text())
        if "days" not in result:  # bench_swap's record (swap_<profile>.json)
            continue
        heading = section(result["profile"])
        lead = (f"{heading} (`bench/bench_refresh.py`)\n\nNot a named run: the figures of the "
                f"benchmark's record `{record.relative_to(REPO)}` (`--json`), the same section "
                "as in docs/benchmarks.md.")
        parts.append(render(result).replace(heading, lead, 1))
    return "\n".join(parts)


def render_document(views: list[RunView], reference: Mapping[str, Any],
                    daily_refresh: str = "") -> str:
    parts = [INTRO, render_overview(views), baseline_comparisons(views),
             cold_start_comparisons(views)]
    parts += [render_run(v, reference) for v in views]
    parts += [daily_refresh] if daily_refresh else []
    return "\n".join(parts).rstrip("\n") + "\n"


# ---------------------------------------------------------------------------------------------
# Assembling from the results folder


def load_view(run: Run, runs: Mapping[str, Run], code: Mapping[str, Any], doc: Path
              ) -> RunView:
    """The run as its record (docs/results/<run>/) holds it."""
    from evaluation.user_hits import FILE_NAME, load_user_hits

    records = records_dir(doc)
    record, stamp = records / run.name, read_record(records, run.name)
    decision = decide_recorded(run, runs, code["code_hash"], doc)
    path = record_metrics(records, run.name)
    if stamp is None or stamp.get("status") != "ok" or not path.is_file():
        return RunView(run, stamp, decision, None, None, [])
    hits = record / FILE_NAME
    plots = sorted(f"img/{run.name}/{p.name}" for p in (doc.parent / "img" / run.name).glob(
        "*.png"))
    training = {key: json.loads((record / name).read_text())
                for key, name in (("hgnn", "hgnn_metrics.json"),
                                  ("two_tower", "two_tower_metrics_unified_2t.json"))
                if (record / name).is_file()}
    return RunView(run, stamp, decision, json.loads(path.read_text()),
                   load_user_hits(hits) if hits.is_file() else None, plots, training)


def write_document(runs: list[Run], root: Path, doc: Path,
                   reference: Mapping[str, Any]) -> Path:
    """docs/results.md from the records of every default run and of every other run that has
    one (each record first brought up to its workspace, where this machine has one)."""
    import sys

    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    code = code_state()
    by_name = {r.name: r for r in runs}
    for run in runs:
        sync_record(run, root, doc)
    shown = [r for r in runs if r.default or read_record(records_dir(doc), r.name) is not None]
    views = [load_view(r, by_name, code, doc) for r in shown]
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(render_document(views, reference, render_daily_refresh(REFRESH_RECORDS)))
    return doc
