"""`gfm tune MODEL`: hyper-parameters chosen on a validation split that ends at the cutoff.

The hold-out after the cutoff is never read. The validation timeline is the workspace's with
cutoff' = cutoff - holdout_days, so its hold-out [cutoff', cutoff) ends at the cutoff; every
feature is rebuilt as of that timeline in a workspace copy, <workdir>/tune/cutoff_<cutoff'>/
(raw data hard-linked, the stages the model needs run with --cutoff cutoff'; reused while the
raw data and the settings those stages read are unchanged). Each trial trains on the copy and
is scored like `gfm evaluate` scores: HR@10 (discovery) per item type on the validation
hold-out; the objective is their mean, so every type counts alike. Under timeline.protocol
per_user (leave-last-N-out) the copy also drops each user's last N items (the evaluation's
hold-out, timeline.per_user_skip_items) and holds out the N before them.

Search: Optuna's TPE sampler, seeded, its trials stored in <workdir>/tune/<model>.db (SQLite), so
an interrupted search resumes where it stopped (`--trials N` counts the finished ones). The two-
tower's epochs are chosen inside each trial (the epoch with the best validation HR@10); weak
trials are pruned after their first epochs (median rule).

For a run evaluated at rolling cutoffs (`gfm evaluate --rolling N --every D`), `gfm tune
als|ease --rolling N --every D` scores each trial on N validation splits instead: the first's
hold-out ends at the earliest rolling cutoff, the others D days apart before it, so no rolling
hold-out is read; hits and users are pooled over them as the rolling evaluation pools its own.

The choice is written to <workdir>/tune/<model>.json (every trial), reports/tune_<model>.png (the
search as a plot) and the `tuned:` block of the workspace's gfm.yaml, which every later command
reads (keys set elsewhere in gfm.yaml, and flags, still win).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.evaluate import MODELS, evaluate_retriever
from evaluation.split import EvalSplit, load_split
from gfm.config import CONFIG_FILE_NAME, Config, _merge, load_config
from gfm.errors import ConfigError, GfmError
from gfm.files import atomic_write_text
from gfm.timeline import Timeline
from gfm.workspace import Workspace

logger = logging.getLogger(__name__)

TUNE_DIR = "tune"
MAX_EPOCHS = 15  # two-tower: epochs a trial may run (the best is chosen), unless --max-epochs
BLOCK_START = "# >>> gfm tune"
BLOCK_END = "# <<< gfm tune"
NO_POOLED_TWO_TOWER = ("gfm tune two-tower --rolling: not supported (each trial would train once "
                       "per cutoff); choose the two-tower's settings for rolling cutoffs with "
                       "bench/two_tower_variants.py pooled (docs/tuning.md)")


@dataclass(frozen=True)
class Param:
    """One searched setting: `key` is section.field of the config."""

    key: str
    kind: str  # "float", "log" (log-uniform float), "int", "choice"
    low: float | None = None
    high: float | None = None
    choices: tuple = ()

    def suggest(self, trial) -> Any:
        name = self.key
        if self.kind == "choice":
            return trial.suggest_categorical(name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(name, int(self.low), int(self.high))
        return trial.suggest_float(name, self.low, self.high, log=self.kind == "log")


# The searched ranges (documented in docs/tuning.md).
SPACES: dict[str, list[Param]] = {
    "ease": [Param("evaluation.ease_l2", "log", 1.0, 20_000.0)],
    "als": [
        Param("evaluation.als_factors", "choice", choices=(16, 32, 64, 128, 256)),
        Param("evaluation.als_regularization", "log", 1e-3, 10.0),
        Param("evaluation.als_alpha", "log", 0.1, 100.0),
        Param("evaluation.als_iterations", "int", 5, 40),
    ],
    "two-tower": [
        Param("two_tower.lr", "log", 2e-4, 5e-3),
        Param("two_tower.temperature", "log", 0.02, 2.0),
        Param("two_tower.item_id_dim", "choice", choices=(0, 32, 64, 128)),
        Param("two_tower.history_decay", "float", 0.6, 1.0),
        Param("two_tower.popularity_prior", "choice", choices=("none", "training_share",
                                                                "recent")),
        Param("two_tower.dropout", "float", 0.0, 0.4),
        Param("two_tower.logq_correction", "choice", choices=(True, False)),
        Param("two_tower.batch_size", "choice", choices=(256, 512, 1024)),
        Param("two_tower.negatives", "choice", choices=("in_batch", "catalog")),
        Param("two_tower.mask_history_negatives", "choice", choices=(False, True)),
        Param("two_tower.id_skip", "choice", choices=(False, True)),
        Param("two_tower.history_dropout", "float", 0.0, 0.3),
        Param("two_tower.cold_unknown_share", "float", 0.0, 1.0),
        Param("two_tower.item_id_dropout", "float", 0.0, 0.5),
    ],
}
TUNABLE = tuple(SPACES)


def validation_timeline(timeline: Timeline) -> Timeline:
    """The same timeline one hold-out earlier: its hold-out ends at the cutoff. Under protocol
    per_user, each user's hold-out items are also dropped (per_user_skip_items), so the
    validation hold-out is every user's items just before the evaluation's."""
    skip = timeline.per_user_holdout_items if timeline.protocol == "per_user" else 0
    return dataclasses.replace(timeline,
                               cutoff=timeline.cutoff - dt.timedelta(days=timeline.holdout_days),
                               per_user_skip_items=skip)


def validation_timelines(timeline: Timeline, rolling: int = 1,
                         every_days: int | None = None) -> list[Timeline]:
    """The validation timelines for an evaluation at `rolling` cutoffs `every_days` apart (as
    `gfm evaluate --rolling N --every D`): the first ends its hold-out at the earliest rolling
    cutoff, the others every `every_days` days before it, so no validation hold-out overlaps
    any rolling hold-out. rolling 1: [validation_timeline(timeline)]."""
    from evaluation.rolling import rolling_cutoffs, rolling_every_days

    if rolling < 1:
        raise ConfigError("--rolling must be at least 1 (1 = the configured cutoff only)")
    if rolling == 1:
        return [validation_timeline(timeline)]
    if timeline.protocol == "per_user":
        raise ConfigError("--rolling: the per_user protocol has no cutoffs to roll (each user's "
                          "last items are the hold-out); tune without --rolling")
    every = rolling_every_days(timeline, every_days)
    earliest = timeline.cutoff - dt.timedelta(days=(rolling - 1) * every)
    first = earliest - dt.timedelta(days=timeline.holdout_days)
    return [dataclasses.replace(timeline, cutoff=c) for c in rolling_cutoffs(first, rolling, every)]


def validation_copy(workspace: Workspace, config: Config, timeline: Timeline, model: str,
                    common: list[str], log: Callable[[str], None] = print) -> tuple[Timeline, Path]:
    """The validation timeline and the workspace copy built as of it for `model` (the stages it
    needs, reused while their inputs are unchanged): what `gfm tune` and
    bench/two_tower_variants.py train and score on."""
    val = validation_timeline(timeline)
    return val, _copy_at(workspace, config, timeline, val, model, common, log)


def _copy_at(workspace: Workspace, config: Config, timeline: Timeline, val: Timeline, model: str,
             common: list[str], log: Callable[[str], None]) -> Path:
    """The workspace copy of validation timeline `val` (see validation_copy)."""
    from evaluation.rolling import build_copy

    if timeline.per_user_skip_items:
        raise ConfigError("this workspace is already a validation copy (timeline."
                          "per_user_skip_items is set): tune the workspace it was copied from")
    flags = list(common)
    if val.per_user_skip_items:  # the copy's stages read the timeline from its config and flags
        flags += ["--set", f"timeline.per_user_skip_items={val.per_user_skip_items}"]
    return build_copy(workspace, val.cutoff, [], flags, log, parent=TUNE_DIR,
                      plan=_stages(model), config_key=_stage_config_key(config))


def _stages(model: str) -> list[list[str]]:
    if model == "two-tower":
        return [["transform"], ["embed"], ["train", "hgnn"], ["features", "apply"]]
    return [["transform"]]


def _stage_config_key(config: Config) -> str:
    """What of the config the copy's stages read: all but the tuned model settings."""
    data = config.to_dict()
    for section in ("two_tower", "evaluation", "serving"):
        data.pop(section, None)
    data["timeline"].pop("cutoff", None)  # the copy's own cutoff is set by flag
    return json.dumps(data, sort_keys=True)


def with_params(config: Config, params: dict[str, Any]) -> Config:
    """The config with section.field values set (validated like a config file)."""
    nested: dict[str, Any] = {}
    for key, value in params.items():
        section, name = key.split(".", 1)
        nested.setdefault(section, {})[name] = value
    from gfm.config import _build, _validate

    merged = _merge(config.to_dict(), nested)
    out = _build(Config, merged, "")
    _validate(out)
    return out


# ---------------------------------------------------------------------------------------------
# Objectives: one validation workspace, many trials


def mean_hit_rate(result: dict[str, Any], k: int = 10) -> float:
    """The objective: the mean over item types of HR@k (discovery); types without counted
    users are left out."""
    rates = [v for v in result[f"hr@{k}"].values() if v is not None]
    return float(np.mean(rates)) if rates else math.nan


class Objective:
    """Scores one set of settings on the validation workspace: (value, details)."""

    def __init__(self, model: str, copy: Workspace, config: Config, timeline: Timeline,
                 split: EvalSplit):
        self.model, self.copy, self.config = model, copy, config
        self.timeline, self.split = timeline, split
        self._frames: tuple | None = None
        self._popularity = None

    def __call__(self, params: dict[str, Any], report: Callable[[int, float], None] | None = None,
                 ) -> tuple[float, dict[str, Any]]:
        config = with_params(self.config, params)
        if self.model == "two-tower":
            return self._two_tower(config, report)
        hits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        result = evaluate_retriever(self.split, MODELS[self.model](self.split, self.copy, config),
                                    progress=False, name=self.model, user_hits=hits)
        return mean_hit_rate(result), {"hr@10": result["hr@10"],
                                       "hits": {t: int(h.sum()) for t, (_, h) in hits.items()},
                                       "units": {t: len(h) for t, (_, h) in hits.items()}}

    def _load_frames(self) -> tuple:
        """Training frame, users' and items' features at the validation cutoff: once."""
        if self._frames is None:

            from evaluation.two_tower import item_features, user_features
            from feature_store import core as feature_store
            from training.two_tower.train import training_frame

            service = feature_store.latest_feature_service(self.copy)
            item_types = feature_store.service_spec(self.copy, service)["item_types"]
            frame = training_frame(self.copy, self.timeline, service, item_types,
                                   self.config.two_tower)
            at = self.timeline.cutoff  # what `gfm evaluate` reads (evaluation.two_tower)
            users = user_features(self.copy, service, item_types, self.split.user_ids, at)
            items = item_features(self.copy, service, self.split.item_ids, at)
            self._frames = (frame, users, items, item_types)
        return self._frames

    def popularity_snapshots(self, two_tower):
        """What fit_two_tower's `item_popularity` is for these two-tower settings: the items'
        daily popularity snapshots (read once) for the "recent" prior, else None."""
        if two_tower.popularity_prior != "recent":
            return None
        if self._popularity is None:
            from training.two_tower.train import popularity_snapshots

            self._popularity = popularity_snapshots(self.copy, self.timeline,
                                                    self._load_frames()[0])
        return self._popularity

    def _two_tower(self, config: Config, report) -> tuple[float, dict[str, Any]]:
        from evaluation.two_tower import TwoTowerRetriever
        from training.two_tower.train import encode_items, encode_users, fit_two_tower

        frame, users, items, item_types = self._load_frames()
        popularity = self.popularity_snapshots(config.two_tower)
        per_epoch: list[dict[str, Any]] = []

        def on_epoch(epoch: int, bundle) -> None:
            retriever = TwoTowerRetriever(self.split, encode_users(bundle, bundle.user_inputs(users)),
                                          encode_items(bundle, bundle.item_inputs(items)), "tune")
            result = evaluate_retriever(self.split, retriever, progress=False, name="tune")
            per_epoch.append({"epoch": epoch, "value": mean_hit_rate(result),
                              "hr@10": result["hr@10"]})
            if report is not None:
                report(epoch, per_epoch[-1]["value"])

        fit_two_tower(frame, config.two_tower, item_types, on_epoch=on_epoch,
                      item_popularity=popularity)
        best = max(per_epoch, key=lambda e: (e["value"], -e["epoch"]))
        return best["value"], {"hr@10": best["hr@10"], "epochs": best["epoch"],
                               "per_epoch": [[e["epoch"], round(e["value"], 6)] for e in per_epoch]}


class PooledObjective:
    """One set of settings scored on several validation splits (the rolling cutoffs' own,
    validation_timelines): HR@10 per type pooled over every split's counted users (as
    `gfm evaluate --rolling` pools), the objective their mean over types. ALS and EASE only:
    a two-tower trial would train once per split."""

    def __init__(self, objectives: list[Objective]):
        if any(o.model == "two-tower" for o in objectives):
            raise ConfigError(NO_POOLED_TWO_TOWER)
        self.objectives = objectives

    def __call__(self, params: dict[str, Any], report: Callable[[int, float], None] | None = None,
                 ) -> tuple[float, dict[str, Any]]:
        hits: dict[str, int] = {}
        units: dict[str, int] = {}
        per_cutoff = []
        for objective in self.objectives:
            value, details = objective(params)
            for t, n in details["units"].items():
                hits[t] = hits.get(t, 0) + details["hits"][t]
                units[t] = units.get(t, 0) + n
            per_cutoff.append({"cutoff": objective.timeline.cutoff.isoformat(), "value": value,
                               "units": sum(details["units"].values())})
        rates = {t: hits[t] / units[t] if units[t] else None for t in sorted(units)}
        present = [r for r in rates.values() if r is not None]
        value = float(np.mean(present)) if present else math.nan
        return value, {"hr@10": rates, "hits": hits, "units": units, "per_cutoff": per_cutoff}


# ---------------------------------------------------------------------------------------------
# The search


def _study_name(model: str, copy: Workspace, config: Config, params: list[Param],
                validation: list[Timeline]) -> str:
    """Trials are comparable only on the same data, settings, space and validation splits: a
    change starts a new study in the same file."""
    raw = (copy.raw_dir / "_manifest.json")
    fixed = config.to_dict()
    # Searched settings of every model (and the epochs a trial chooses) are not part of the
    # study's key: tuning one model must not start another's search afresh.
    for key in {p.key for space in SPACES.values() for p in space} | {"two_tower.epochs"}:
        section, name = key.split(".", 1)
        fixed[section].pop(name)
    key = [model, raw.read_text() if raw.exists() else "", fixed,
           [dataclasses.astuple(p) for p in params]]
    if len(validation) > 1:  # a single split's study keeps the name it always had
        key.append([v.cutoff.isoformat() for v in validation])
    key = json.dumps(key, sort_keys=True, default=str)
    return f"{model}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def tune(workspace: Workspace, config: Config, timeline: Timeline, model: str, trials: int,
         *, seed: int = 0, timeout_s: float | None = None, common: list[str] | None = None,
         max_epochs: int | None = None, write: bool = True, rolling: int = 1,
         every_days: int | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Search `trials` settings of `model` on the validation split (with `rolling` > 1: on the
    `rolling` splits before the first hold-out of `gfm evaluate --rolling rolling --every
    every_days`, pooled); returns the summary that goes to <workdir>/tune/<model>.json (and,
    with `write`, into gfm.yaml)."""
    import optuna

    if model not in SPACES:
        raise ConfigError(f"gfm tune: unknown model {model!r}; tunable: {', '.join(TUNABLE)}")
    if trials < 1:
        raise ConfigError("--trials must be at least 1")
    base = config
    if model == "two-tower":  # each trial runs up to max_epochs and keeps its best epoch
        base = with_params(config, {"two_tower.epochs": max_epochs or MAX_EPOCHS})
    validation = validation_timelines(timeline, rolling, every_days)
    if model == "two-tower" and len(validation) > 1:
        raise ConfigError(NO_POOLED_TWO_TOWER)
    val = validation[0]
    if val.per_user_skip_items:
        log(f"tune {model}: per-user validation: each user's last {val.per_user_skip_items} "
            "item(s) (the evaluation's hold-out) dropped, the item(s) before them held out")
    elif len(validation) == 1:
        log(f"tune {model}: validation cutoff {val.cutoff:%Y-%m-%d}, hold-out "
            f"[{val.cutoff:%Y-%m-%d}, {val.holdout_end:%Y-%m-%d}) (ends at the cutoff)")
    else:
        log(f"tune {model}: {len(validation)} validation cutoffs "
            f"{validation[-1].cutoff:%Y-%m-%d} .. {val.cutoff:%Y-%m-%d}, pooled; the latest "
            f"hold-out ends {val.holdout_end:%Y-%m-%d}, at the first of the {rolling} rolling "
            "cutoffs")
    objectives = []
    for v in validation:
        copy = Workspace.at(_copy_at(workspace, config, timeline, v, model, list(common or []),
                                     log))
        objectives.append(Objective(model, copy, base, v, load_split(copy, v)))
    objective = objectives[0] if len(objectives) == 1 else PooledObjective(objectives)
    params = SPACES[model]

    directory = workspace.root / TUNE_DIR
    directory.mkdir(parents=True, exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name=_study_name(model, objectives[0].copy, base, params, validation),
        storage=f"sqlite:///{directory / (model + '.db')}", load_if_exists=True,
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=2),
    )
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    done = len(study.get_trials(deepcopy=False, states=finished))
    if done:
        log(f"tune {model}: resuming, {done} trial(s) done")
    if done == 0:  # the configured values first: the search must beat them to change them
        study.enqueue_trial({p.key: _current(base, p.key) for p in params},
                            skip_if_exists=True)
    began = time.perf_counter()

    def run_trial(trial) -> float:
        values = {p.key: p.suggest(trial) for p in params}

        def report(epoch: int, value: float) -> None:
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()

        t0 = time.perf_counter()
        value, details = objective(values, report)
        for name, detail in details.items():
            trial.set_user_attr(name, detail)
        trial.set_user_attr("seconds", round(time.perf_counter() - t0, 1))
        return value

    def progress(study_, trial) -> None:
        n = len(study_.get_trials(deepcopy=False, states=finished))
        state = trial.state.name.lower()
        value = "" if trial.value is None else f" {trial.value:.4f}"
        best = study_.best_value if any(t.state.name == "COMPLETE" for t in study_.trials) else None
        log(f"tune {model}: trial {n}/{trials} {state}{value}"
            + (f" (best {best:.4f})" if best is not None else "")
            + " " + json.dumps(trial.params, default=str))

    remaining = trials - done
    if remaining > 0:
        study.optimize(run_trial, n_trials=remaining, timeout=timeout_s, callbacks=[progress],
                       catch=())
    summary = _summary(study, model, params, validation, base, time.perf_counter() - began)
    path = directory / f"{model}.json"
    atomic_write_text(path, json.dumps(summary, indent=2, default=str) + "\n")
    plot_search(summary, workspace.reports_dir / f"tune_{model.replace('-', '_')}.png")
    if write:
        write_tuned_block(workspace, model, summary)
    return summary


def _current(config: Config, key: str) -> Any:
    section, name = key.split(".", 1)
    return getattr(getattr(config, section), name)


def _summary(study, model: str, params: list[Param], validation: list[Timeline], config: Config,
             seconds: float) -> dict[str, Any]:
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    if not complete:
        raise GfmError(f"tune {model}: no trial finished (all pruned or failed): rerun with "
                       "more --trials or a longer --timeout")
    best = study.best_trial
    chosen = dict(best.params)
    if model == "two-tower":
        chosen["two_tower.epochs"] = int(best.user_attrs["epochs"])
    return {
        "model": model,
        "study": study.study_name,
        "tuned_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0, tzinfo=None)
        .isoformat(),
        "validation": {"cutoff": validation[0].cutoff.isoformat(),
                       "holdout_end": validation[0].holdout_end.isoformat(),
                       **({"cutoffs": [v.cutoff.isoformat() for v in validation]}
                          if len(validation) > 1 else {})},
        "objective": "mean over item types of validation HR@10 (discovery)"
                     + (f", hits and users pooled over {len(validation)} validation cutoffs"
                        if len(validation) > 1 else ""),
        "space": [dataclasses.asdict(p) for p in params],
        "n_trials": len(study.trials),
        "n_complete": len(complete),
        "best": {"trial": best.number, "value": best.value, "params": chosen,
                 "hr@10": best.user_attrs.get("hr@10")},
        "trials": [{"number": t.number, "state": t.state.name.lower(), "value": t.value,
                    "params": t.params, **t.user_attrs} for t in study.trials],
        "seconds_this_run": round(seconds, 1),
    }


# ---------------------------------------------------------------------------------------------
# gfm.yaml's tuned block


def _tuned_state(workspace: Workspace) -> dict[str, Any]:
    """Every tuned model's latest summary, from <workdir>/tune/<model>.json."""
    state = {}
    for model in TUNABLE:
        path = workspace.root / TUNE_DIR / f"{model}.json"
        if path.exists():
            state[model] = json.loads(path.read_text())
    return state


def render_block(state: dict[str, Any]) -> str:
    import yaml

    lines = [f"{BLOCK_START}: written by `gfm tune`, replaced whole on its next run; keys set",
             "# elsewhere in this file, and --set flags, win over these."]
    tuned: dict[str, dict[str, Any]] = {}
    for model, summary in state.items():
        best = summary["best"]
        rates = " / ".join(f"{t} {v:.4f}" for t, v in (best.get("hr@10") or {}).items()
                           if v is not None)
        cutoffs = summary["validation"].get("cutoffs")
        where = (f"{len(cutoffs)} validation cutoffs {cutoffs[-1][:10]} .. {cutoffs[0][:10]} "
                 "pooled" if cutoffs else f"validation cutoff {summary['validation']['cutoff'][:10]}")
        lines.append(f"# {model}: tuned {summary['tuned_at'][:16]} UTC, trial {best['trial']} of "
                     f"{summary['n_trials']}, {where}, validation HR@10 {rates}")
        for key, value in best["params"].items():
            section, name = key.split(".", 1)
            tuned.setdefault(section, {})[name] = value
    body = yaml.safe_dump({"tuned": tuned}, sort_keys=True, default_flow_style=False)
    return "\n".join(lines) + "\n" + body + BLOCK_END + "\n"


def write_tuned_block(workspace: Workspace, model: str, summary: dict[str, Any]) -> Path:
    """Put every tuned model's choice into gfm.yaml's tuned block (the rest of the file is kept
    as it is)."""
    path = workspace.root / CONFIG_FILE_NAME
    text = path.read_text() if path.exists() else ""
    start, end = text.find(BLOCK_START), text.find(BLOCK_END)
    if (start < 0) != (end < 0) or (start >= 0 and end < start):
        raise GfmError(f"{path}: the tuned block is damaged (one of its marker lines "
                       f"'{BLOCK_START}' / '{BLOCK_END}' is missing): delete the block and rerun")
    outside = text if start < 0 else text[:start] + text[end + len(BLOCK_END):].lstrip("\n")
    if any(line.startswith("tuned:") for line in outside.splitlines()):
        raise GfmError(f"{path} has a `tuned:` key outside the block `gfm tune` writes: remove it")
    state = _tuned_state(workspace)
    state[model] = summary
    new = outside.rstrip("\n") + ("\n\n" if outside.strip() else "") + render_block(state)
    atomic_write_text(path, new)
    load_config(workspace.root)  # the file must still load; raises with the reason otherwise
    return path


# ---------------------------------------------------------------------------------------------
# Plot


def plot_search(summary: dict[str, Any], path: Path) -> None:
    """Validation objective per trial (pruned trials hollow) and the best so far."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    path.parent.mkdir(parents=True, exist_ok=True)
    trials = [t for t in summary["trials"] if t["value"] is not None]
    figure = Figure(figsize=(7, 4))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    done = [t for t in trials if t["state"] == "complete"]
    pruned = [t for t in trials if t["state"] == "pruned"]
    axes.scatter([t["number"] for t in done], [t["value"] for t in done], s=18, label="trial")
    axes.scatter([t["number"] for t in pruned], [t["value"] for t in pruned], s=18,
                 facecolors="none", edgecolors="grey", label="pruned (last epoch reached)")
    best, xs, ys = -math.inf, [], []
    for t in sorted(done, key=lambda t: t["number"]):
        best = max(best, t["value"])
        xs.append(t["number"])
        ys.append(best)
    axes.step(xs, ys, where="post", color="black", label="best so far")
    axes.set_xlabel("trial")
    axes.set_ylabel("validation HR@10, mean over types")
    axes.set_title(f"gfm tune {summary['model']}: validation cutoff "
                   f"{summary['validation']['cutoff'][:10]}")
    axes.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
