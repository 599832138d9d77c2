"""Rolling cutoffs: the same evaluation at N cutoffs, every D days back from the configured one,
hits and users pooled (`gfm evaluate --rolling N --every D`).

One hold-out of a small real dataset holds few users; N hold-outs hold about N times as many
(user, cutoff) units. Cutoff 0 is the workspace's own (its models as they are); cutoff j >= 1 is
`cutoff - j * every_days`, rebuilt from the same raw data in its own workspace copy under
<workdir>/rolling/cutoff_<date>/ (raw files hard-linked, the text-embedding cache copied, the
stages the models need run as child processes with that cutoff). A copy that finished all its
stages is marked done and reused by the next run; an interrupted one resumes from its stages
(each is idempotent). The pooled HR@k of a model and type is its hits over its units at every
cutoff; its 95% interval resamples users (all of a user's cutoffs together: they are not
independent draws). unified_2t is compared with every other model on the same units, paired:
the difference with its interval (users resampled) and McNemar's p (clustered by user).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.cold_start import POOLED
from evaluation.retrievers import ModelUnavailable, Retriever
from evaluation.split import EvalSplit, load_split
from gfm.config import Config
from gfm.errors import ConfigError, GfmError
from gfm.stages import stages_for
from gfm.timeline import Timeline
from gfm.workspace import Workspace

DONE_MARKER = "rolling_done.json"


def rolling_every_days(timeline: Timeline, every_days: int | None) -> int:
    """Days between rolling cutoffs (`--every D`, what `gfm evaluate --rolling` and `gfm tune
    --rolling` both space their cutoffs by): D, else timeline.holdout_days, so that the
    hold-outs do not overlap."""
    every = timeline.holdout_days if every_days is None else every_days
    if every < 1:
        raise ConfigError("--every must be at least 1 day")
    return every


def rolling_cutoffs(cutoff: dt.datetime, n: int, every_days: int) -> list[dt.datetime]:
    """The configured cutoff first, then every `every_days` days back: n in all."""
    return [cutoff - dt.timedelta(days=j * every_days) for j in range(n)]


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)  # raw files are replaced whole (atomic swap), never edited
    except OSError:
        shutil.copy2(source, target)


def _text_of(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


def prepare_copy(workspace: Workspace, cutoff: dt.datetime, parent: str = "rolling") -> Path:
    """The workspace copy of one earlier cutoff, <workdir>/<parent>/cutoff_<date>/: raw data,
    config and text-embedding cache. Raw files are linked again whenever the workspace's raw
    manifest differs from the copy's (new data imported since)."""
    root = workspace.root / parent / f"cutoff_{cutoff:%Y-%m-%d}"
    manifest = "_manifest.json"
    if _text_of(root / "raw" / manifest) != _text_of(workspace.raw_dir / manifest):
        shutil.rmtree(root / "raw", ignore_errors=True)
    for path in workspace.raw_dir.iterdir():
        target = root / "raw" / path.name
        if path.is_file() and not target.exists():
            _link_or_copy(path, target)
    config = workspace.root / "gfm.yaml"
    (root / "gfm.yaml").unlink(missing_ok=True)
    if config.exists():
        shutil.copy2(config, root / "gfm.yaml")
    cache = workspace.features_dir / "item_text_embedding" / "_cache"
    target_cache = root / "features" / "item_text_embedding" / "_cache"
    if cache.is_dir() and not target_cache.exists():
        shutil.copytree(cache, target_cache, copy_function=shutil.copy2)
    return root


def build_copy(workspace: Workspace, cutoff: dt.datetime, models: list[str],
               common: list[str], log: Callable[[str], None] = print, parent: str = "rolling",
               plan: list[list[str]] | None = None, config_key: str | None = None) -> Path:
    """Run the stages of `models` (or `plan`) on the copy of `cutoff` unless a finished run is
    recorded. `config_key`: what of the config the stages depend on (default: the whole
    gfm.yaml), so that a change elsewhere (tuned settings of a later stage) reuses the copy."""
    from evaluation.paper import run_stage

    root = prepare_copy(workspace, cutoff, parent)
    plan = plan if plan is not None else stages_for(models)
    marker = root / DONE_MARKER
    # Reused only for the same stages, flags, config and raw data.
    wanted = {"stages": [" ".join(s) for s in plan], "common": common,
              "config": config_key if config_key is not None else _text_of(root / "gfm.yaml"),
              "raw_manifest": _text_of(root / "raw" / "_manifest.json")}
    if marker.exists() and json.loads(marker.read_text()) == wanted:
        log(f"{parent}: cutoff {cutoff:%Y-%m-%d}: reusing {root}")
        return root
    marker.unlink(missing_ok=True)
    for stage in plan:
        t0 = time.perf_counter()
        run_stage(root, stage, common, cutoff.date())
        log(f"{parent}: cutoff {cutoff:%Y-%m-%d}: gfm {' '.join(stage)} "
            f"({time.perf_counter() - t0:.0f} s)")
    marker.write_text(json.dumps(wanted))
    return root


def _pool(units: list[dict[str, Any]], k: int) -> dict[str, Any]:
    """Pooled hit rates per model and type with cluster-bootstrap intervals (users as clusters)."""
    from evaluation.stats import bootstrap_cluster_ci

    hr = f"hr@{k}"
    out: dict[str, Any] = {}
    models = units[0]["hits"].keys() if units else []
    for model in models:
        rates, cis, counts, hits_total = {}, {}, {}, {}
        types = sorted({t for u in units for t in u["hits"][model]})
        for t in types:
            hits = np.concatenate([u["hits"][model][t][1] for u in units
                                   if t in u["hits"][model]]).astype(bool)
            users = np.concatenate([u["user_ids"][u["hits"][model][t][0]] for u in units
                                    if t in u["hits"][model]])
            counts[t] = int(len(hits))
            hits_total[t] = int(hits.sum())
            rates[t] = float(hits.mean()) if len(hits) else None
            lo, hi = bootstrap_cluster_ci(hits, users)
            cis[t] = None if np.isnan(lo) else [lo, hi]
        out[model] = {hr: rates, f"{hr}_ci": cis, "units": counts, "hits": hits_total}
    return out


REFERENCE = "unified_2t"  # the model the others are compared with, paired, when it is evaluated


def _keyed_hits(units: list[dict[str, Any]], model: str,
                item_type: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unit keys "<cutoff index>|<user id>", user ids, bool hits) of a model and type over all
    cutoffs: a key is a (user, cutoff) unit (the index before the first "|" keeps ids holding
    one apart), a user id the cluster it belongs to."""
    keys, users, hits = [], [], []
    for j, unit in enumerate(units):
        if item_type not in unit["hits"][model]:
            continue
        index, unit_hits = unit["hits"][model][item_type]
        ids = np.asarray(unit["user_ids"])[np.asarray(index, dtype=np.int64)].astype(str)
        keys.append(np.char.add(f"{j}|", ids))
        users.append(ids)
        hits.append(np.asarray(unit_hits, dtype=bool))
    if not keys:
        return np.array([], dtype=str), np.array([], dtype=str), np.array([], dtype=bool)
    return np.concatenate(keys), np.concatenate(users), np.concatenate(hits)


def _rounded(comparison: dict[str, Any]) -> dict[str, Any]:
    """A comparison as metrics.json keeps it: rates and differences to 6 decimals."""
    out = dict(comparison)
    for key in ("hr_a", "hr_b", "diff"):
        if out.get(key) is not None:
            out[key] = round(out[key], 6)
    if out.get("diff_ci") is not None:
        out["diff_ci"] = [round(x, 6) for x in out["diff_ci"]]
    return out


def _versus_reference(units: list[dict[str, Any]], reference: str = REFERENCE) -> dict[str, Any]:
    """reference minus each other model (the opposite sign of cold_start's model minus
    popularity), paired on the (user, cutoff) units both count, per type and, with several
    types, over all of them ("all types"); clusters are users, all of a user's units together
    (evaluation.stats.paired_cluster_comparison). {} without the reference or its types."""
    from evaluation.stats import paired_cluster_comparison

    if not units or reference not in units[0]["hits"]:
        return {}
    types = sorted({t for u in units for t in u["hits"][reference]})
    if not types:
        return {}
    own = {t: _keyed_hits(units, reference, t) for t in types}
    out: dict[str, Any] = {}
    for other in units[0]["hits"]:
        if other == reference:
            continue
        per_type, pairs = {}, []
        for t in types:
            keys_a, users_a, hits_a = own[t]
            keys_b, _, hits_b = _keyed_hits(units, other, t)
            _, ia, ib = np.intersect1d(keys_a, keys_b, assume_unique=True, return_indices=True)
            pairs.append((hits_a[ia], hits_b[ib], users_a[ia]))
            per_type[t] = _rounded(paired_cluster_comparison(*pairs[-1]))
        if len(types) > 1:  # a user counted in several types is one cluster there too
            per_type[POOLED] = _rounded(paired_cluster_comparison(
                *(np.concatenate(x) for x in zip(*pairs))))
        out[other] = per_type
    return {"reference": reference, "comparisons": out}


def rolling_evaluation(
    workspace: Workspace,
    timeline: Timeline,
    n: int,
    every_days: int,
    builders: Mapping[str, Callable[[EvalSplit, Workspace, Config], Retriever]],
    config: Config,
    common: list[str],
    first: tuple[EvalSplit, dict[str, Any], dict[str, Any]],
    k: int = 10,
    batch_size: int | None = None,
    sample_users: tuple[int, int] | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The 'rolling' section of metrics.json. `first` is cutoff 0's (split, report, user hits)
    from the ordinary evaluation; the models it holds are the ones rebuilt at every other
    cutoff. `sample_users` (n, seed), as given to cutoff 0, samples every other cutoff too."""
    from evaluation.evaluate import evaluate_retrievers

    split0, report0, hits0 = first
    models = list(report0["results"])
    if not models:
        raise GfmError("--rolling: no model could be evaluated at the configured cutoff")
    cutoffs = rolling_cutoffs(timeline.cutoff, n, every_days)
    hr = f"hr@{k}"
    began = time.perf_counter()
    units = [{"user_ids": split0.user_ids, "hits": hits0}]
    per_cutoff = [{"cutoff": cutoffs[0].isoformat(), "workspace": str(workspace.root),
                   "n_users": report0["split"]["n_users"]["exclude_history"],
                   hr: {m: report0["results"][m][hr] for m in models}}]
    for cutoff in cutoffs[1:]:
        t0 = time.perf_counter()
        root = build_copy(workspace, cutoff, models, common, log)
        copy = Workspace.at(root)
        split = load_split(copy, dataclasses.replace(timeline, cutoff=cutoff))
        if sample_users is not None:
            split = split.with_sampled_users(*sample_users)
        retrievers = {}
        for name in models:
            try:
                retrievers[name] = builders[name](split, copy, config)
            except ModelUnavailable as exc:
                raise GfmError(
                    f"--rolling: {name} at cutoff {cutoff:%Y-%m-%d} in {root}: {exc}") from None
        hits: dict[str, Any] = {}
        report = evaluate_retrievers(split, retrievers, k=k, batch_size=batch_size,
                                     progress=False, user_hits=hits)
        units.append({"user_ids": split.user_ids, "hits": hits})
        per_cutoff.append({"cutoff": cutoff.isoformat(), "workspace": str(root),
                           "n_users": report["split"]["n_users"]["exclude_history"],
                           hr: {m: report["results"][m][hr] for m in models},
                           "seconds": round(time.perf_counter() - t0, 1)})
        log(f"rolling: cutoff {cutoff:%Y-%m-%d}: "
            + "; ".join(f"{m} {report['results'][m][hr]}" for m in models))
    return {"n": n, "every_days": every_days, "cutoffs": [c.isoformat() for c in cutoffs],
            "per_cutoff": per_cutoff, "pooled": _pool(units, k),
            "versus": _versus_reference(units),
            "seconds": round(time.perf_counter() - began, 1)}


def format_versus_markdown(rolling: Mapping[str, Any], k: int = 10) -> list[str]:
    """Markdown lines: the reference minus each other model on the pooled (user, cutoff) units,
    paired, per type and over all types, with McNemar's p. [] when no comparison was made (a
    metrics.json from before they existed, or no unified_2t)."""
    from evaluation.stats import format_difference

    versus = rolling.get("versus") or {}
    if not versus.get("comparisons"):
        return []
    reference = versus["reference"]
    lines = [f"{reference} against each model on the same (user, cutoff) units, pooled over the "
             f"cutoffs (HR@{k}; bold: the 95% interval, users resampled, excludes 0; McNemar's p "
             "clustered by user, Durkalski 2003):", "",
             f"| model | type | units | users | {reference} | model | {reference} - model "
             "[95% CI] | McNemar p |",
             "|:--|:--|" + "--:|" * 6]
    for other, per_type in versus["comparisons"].items():
        for t, c in per_type.items():
            p = "n/a" if c.get("mcnemar_p") is None else f"{c['mcnemar_p']:.2g}"
            rates = ["n/a" if c.get(x) is None else f"{c[x]:.3f}" for x in ("hr_a", "hr_b")]
            lines.append(f"| {other} | {t} | {c['n_users']:,} | {c['n_clusters']:,} | "
                         f"{rates[0]} | {rates[1]} | {format_difference(c)} | {p} |")
    return lines


def format_rolling_markdown(rolling: Mapping[str, Any], k: int = 10) -> str:
    hr = f"hr@{k}"
    pooled = rolling["pooled"]
    types = sorted({t for r in pooled.values() for t in r[hr]})

    def cell(r: Mapping[str, Any], t: str) -> str:
        v, ci = r[hr].get(t), r[f"{hr}_ci"].get(t)
        if v is None:
            return "n/a"
        return f"{v:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{v:.3f}"

    lines = [
        f"## Rolling cutoffs: {rolling['n']} cutoffs every {rolling['every_days']} days, pooled",
        "",
        f"Cutoffs {', '.join(c[:10] for c in rolling['cutoffs'])}; discovery setting; HR@{k} "
        "= hits over (user, cutoff) units of all cutoffs, 95% interval resampling users.",
        "",
        "| model | " + " | ".join(f"HR@{k} {t} [95% CI]" for t in types)
        + " | " + " | ".join(f"units {t}" for t in types) + " |",
        "|:--|" + "--:|" * (2 * len(types)),
    ]
    for model, r in pooled.items():
        lines.append(f"| {model} | " + " | ".join(cell(r, t) for t in types) + " | "
                     + " | ".join(str(r["units"].get(t, 0)) for t in types) + " |")
    lines += ["", f"Per cutoff: HR@{k} as {' / '.join(types)}; users counted per type.", "",
              "| cutoff | users | " + " | ".join(pooled) + " |",
              "|:--|:--|" + "--:|" * len(pooled)]
    for c in rolling["per_cutoff"]:
        users = ", ".join(f"{t} {c['n_users'].get(t, 0)}" for t in types)
        rates = [" / ".join("-" if c[hr][m].get(t) is None else f"{c[hr][m][t]:.3f}"
                            for t in types) for m in pooled]
        lines.append(f"| {c['cutoff'][:10]} | {users} | " + " | ".join(rates) + " |")
    versus = format_versus_markdown(rolling, k)
    return "\n".join(lines + ([""] + versus if versus else [])) + "\n"
