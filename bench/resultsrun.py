"""The runs of `make results` (bench/results.py): what a run's inputs are, whether its recorded
stamp still matches them (reuse) or not (rerun, and why), and running its `gfm` commands.

A run's key is the hash of its inputs: the code (CODE_PATHS as in the working tree, tracked and
untracked-but-not-ignored files), its commands and config, its raw data files, and the key of
the run it starts from. stamp.json records the key with the commit, wall time and outcome.

Two places per run. Its workspace (<results>/<run>/, outside git) is where it runs. Its record
(docs/results/<run>/, in git beside the document) keeps what the document is written from: the
stamp, metrics.json, the per-user hits and the training summaries (its plots go to
docs/img/<run>/). A fresh clone has no workspaces but every record, so it rewrites the same
document and reruns only the runs whose inputs changed."""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchdoc import REPO, cpu_name, run_child

# What a run's outcome depends on: the Python packages, the dbt project, the Feast repository
# and the dependency pins. Not bench/ or docs/: changing the document's layout reruns nothing.
CODE_PATHS = ("gfm", "ingest", "transforms", "feature_store", "training", "evaluation", "serving", "dbt",
              "feature_repo", "pyproject.toml")
STAMP = "stamp.json"
# A workspace's reports/ files that a record keeps (those that exist).
RECORD_REPORTS = ("metrics.json", "user_hits.npz", "hgnn_metrics.json",
                  "two_tower_metrics_unified_2t.json")
WORKSPACE_MARK = "<workspace>"  # a workspace's own path, as a record's metrics.json shows it
ERROR_TAIL_CHARS = 3000
BUDGET_SPENT = "time budget of "  # training/*/train.py log it when the budget stops training


@dataclass(frozen=True)
class Run:
    """One named run: `commands` are `gfm` argv without --workdir; `config` goes into the
    workspace's gfm.yaml first; `data` are raw data paths (relative to the repository) whose
    content is an input; `base` names a run whose workspace this one starts from (a copy).
    `studies`: (page under docs/, what it asked) for the variant studies made on this run's
    validation split, listed with the run (not an input: they do not change its outcome)."""

    name: str
    title: str
    commands: tuple[tuple[str, ...], ...]
    config: Mapping[str, Any] = field(default_factory=dict)
    data: tuple[str, ...] = ()
    base: str | None = None
    default: bool = True
    studies: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Decision:
    action: str  # "reuse" or "run"
    reason: str


def results_dir() -> Path:
    return Path(os.environ.get("RESULTS_DIR") or REPO / "results").resolve()


def run_dir(root: Path, name: str) -> Path:
    return root / name


def workspace_of(root: Path, name: str) -> Path:
    return run_dir(root, name) / "workspace"


def read_stamp(root: Path, name: str) -> dict[str, Any] | None:
    path = run_dir(root, name) / STAMP
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def records_dir(doc: Path) -> Path:
    """Where the runs' records live: docs/results/ beside docs/results.md."""
    return doc.parent / doc.stem


def read_record(records: Path, name: str) -> dict[str, Any] | None:
    """The stamp of the run's record (its latest attempt that reached the document)."""
    try:
        return json.loads((records / name / STAMP).read_text())
    except (OSError, ValueError):
        return None


def record_metrics(records: Path, name: str) -> Path:
    return records / name / "metrics.json"


def sync_record(run: Run, root: Path, doc: Path) -> bool:
    """Bring the run's record (and its plots under <doc dir>/img/<run>/) up to its workspace's
    latest attempt, when the workspace holds one the record does not; True if it did. A failed
    attempt replaces the record too (its figures went with its workspace), as the document
    shows the failure. Files are rewritten only when their bytes differ, the stamp last: an
    interrupted sync is redone by the next one."""
    stamp = read_stamp(root, run.name)
    record = records_dir(doc) / run.name
    if stamp is None or stamp == read_record(records_dir(doc), run.name):
        return False
    record.mkdir(parents=True, exist_ok=True)
    workspace = workspace_of(root, run.name)
    reports = workspace / "reports"
    for name in RECORD_REPORTS:
        source, target = reports / name, record / name
        if stamp.get("status") != "ok" or not source.is_file():
            target.unlink(missing_ok=True)
            continue
        data = source.read_bytes()
        if name.endswith(".json"):  # paths inside the workspace: the same wherever it lives
            data = data.replace(str(workspace).encode(), WORKSPACE_MARK.encode())
        if not target.is_file() or target.read_bytes() != data:
            target.write_bytes(data)
    copy_plots(run, reports if stamp.get("status") == "ok" else None, doc)
    _write_json(record / STAMP, stamp)
    return True


def copy_plots(run: Run, reports: Path | None, doc: Path) -> None:
    """The reports' *.png into <doc dir>/img/<run>/ (rewritten only when their bytes differ;
    plots no longer produced are removed)."""
    target = doc.parent / "img" / run.name
    sources = sorted(reports.glob("*.png")) if reports is not None else []
    if sources:
        target.mkdir(parents=True, exist_ok=True)
    kept = set()
    for source in sources:
        dest = target / source.name
        kept.add(dest.name)
        if not dest.is_file() or dest.read_bytes() != source.read_bytes():
            shutil.copyfile(source, dest)
    for old in target.glob("*.png") if target.is_dir() else []:
        if old.name not in kept:
            old.unlink()


def _git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                          check=True).stdout


def code_state(repo: Path = REPO, paths: Iterable[str] = CODE_PATHS) -> dict[str, Any]:
    """{commit, code_hash, dirty}: the hash covers every tracked and untracked (not ignored) file
    under `paths` as it is in the working tree; dirty lists those that differ from HEAD."""
    paths = list(paths)
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                             "--exclude-standard", "--", *paths], cwd=repo,
                            capture_output=True, check=True).stdout
    digest = hashlib.sha256()
    for name in sorted(set(filter(None, listed.decode().split("\0")))):
        file = repo / name
        content = hashlib.sha256(file.read_bytes()).hexdigest() if file.is_file() else "deleted"
        digest.update(f"{name}\0{content}\n".encode())
    status = subprocess.run(["git", "status", "--porcelain", "--", *paths], cwd=repo,
                            capture_output=True, text=True, check=True).stdout
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                            text=True, check=True).stdout.strip()
    return {"commit": commit, "code_hash": digest.hexdigest(),
            "dirty": sorted(line[3:] for line in status.splitlines() if line.strip())}


def data_hash(paths: Iterable[str], repo: Path = REPO) -> str | None:
    """Hash of the names and contents of every file under `paths`; None for no paths."""
    paths = list(paths)
    if not paths:
        return None
    digest = hashlib.sha256()
    for given in paths:
        base = (repo / given).resolve()
        if not base.exists():
            raise FileNotFoundError(f"raw data {given} ({base}) does not exist")
        files = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for file in files:
            digest.update(f"{given}/{file.relative_to(base) if file != base else ''}\0".encode())
            with file.open("rb") as handle:
                for chunk in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(chunk)
    return digest.hexdigest()


def run_inputs(run: Run, runs: Mapping[str, Run], code_hash: str,
               repo: Path = REPO) -> dict[str, Any]:
    """Everything the run's outcome depends on (its base's inputs nested, by key)."""
    try:
        data = data_hash(run.data, repo)
    except FileNotFoundError as exc:
        data = f"missing: {exc}"
    base_key = None
    if run.base is not None:
        base_key = key_of(run_inputs(runs[run.base], runs, code_hash, repo))
    return {"code_hash": code_hash, "commands": [list(c) for c in run.commands],
            "config": json.loads(json.dumps(run.config)), "data_hash": data,
            "base": run.base, "base_key": base_key}


def missing_data(inputs: Mapping[str, Any]) -> str | None:
    """run_inputs' message when the run's raw data is not on this machine, else None."""
    data = inputs.get("data_hash")
    return data if isinstance(data, str) and data.startswith("missing") else None


def key_of(inputs: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


_WHAT = {"code_hash": "the code changed", "commands": "its commands changed",
         "config": "its config changed", "data_hash": "its raw data changed",
         "base": "the run it starts from changed", "base_key": "the run it starts from changed"}


def decide(stamp: Mapping[str, Any] | None, inputs: Mapping[str, Any],
           metrics_exist: bool) -> Decision:
    """Reuse the recorded run only if it succeeded, on exactly these inputs, and its metrics
    are still there; otherwise rerun, saying why."""
    if stamp is None:
        return Decision("run", "never run")
    missing = missing_data(inputs)
    if missing:  # not "changed": not here at all
        return Decision("run", f"its raw data is not on this machine ({missing})")
    if stamp.get("key") != key_of(inputs):
        recorded = stamp.get("inputs") or {}
        changed = sorted({_WHAT[k] for k in _WHAT if recorded.get(k) != inputs.get(k)})
        return Decision("run", "; ".join(changed) or "its inputs changed")
    if stamp.get("status") != "ok":
        return Decision("run", "its last attempt failed")
    if not metrics_exist:
        return Decision("run", "its metrics.json is gone")
    return Decision("reuse", f"inputs unchanged since {stamp.get('finished_at', '?')}")


def metrics_path(root: Path, name: str) -> Path:
    return workspace_of(root, name) / "reports" / "metrics.json"


def decide_recorded(run: Run, runs: Mapping[str, Run], code_hash: str, doc: Path
                    ) -> Decision:
    """decide() on the run's record (sync_record first, for a workspace's newer attempt)."""
    records = records_dir(doc)
    return decide(read_record(records, run.name), run_inputs(run, runs, code_hash),
                  record_metrics(records, run.name).is_file())


def plan(runs: list[Run], root: Path, doc: Path, code: Mapping[str, Any] | None = None
         ) -> list[tuple[Run, Decision]]:
    code = code or code_state()
    by_name = {r.name: r for r in runs}
    for run in runs:
        sync_record(run, root, doc)
    return [(run, decide_recorded(run, by_name, code["code_hash"], doc)) for run in runs]


def workspace_is_current(run: Run, root: Path, inputs: Mapping[str, Any]) -> bool:
    """The run's workspace is here, succeeded, and ran on exactly these inputs."""
    stamp = read_stamp(root, run.name)
    return (stamp is not None and stamp.get("status") == "ok"
            and stamp.get("key") == key_of(inputs) and metrics_path(root, run.name).is_file())


def to_run(selected: list[Run], decisions: Mapping[str, Decision],
           workspace_current: Mapping[str, bool]) -> dict[str, str]:
    """{name: why} of the selected runs to execute, in definition order: those whose record is
    not reusable, and the bases of those whose workspace is not on this machine (a record
    keeps figures, not a workspace to start from)."""
    chosen = {r.name: decisions[r.name].reason for r in selected
              if decisions[r.name].action == "run"}
    by_name = {r.name: r for r in selected}
    for run in reversed(selected):  # a base is listed before the runs that start from it
        base = by_name.get(run.base) if run.base else None
        if run.name in chosen and base is not None and base.name not in chosen \
                and not workspace_current[base.name]:
            chosen[base.name] = (f"{run.name} starts from its workspace, which is not under "
                                 "this results folder")
    return {r.name: chosen[r.name] for r in selected if r.name in chosen}


def select(runs: list[Run], spec: str | None) -> list[Run]:
    """The runs named in spec (comma-separated), else the default ones; bases come along."""
    by_name = {r.name: r for r in runs}
    if spec:
        names = [n.strip() for n in spec.split(",") if n.strip()]
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise ValueError(f"unknown run(s) {', '.join(unknown)}; known: "
                             f"{', '.join(by_name)}")
    else:
        names = [r.name for r in runs if r.default]
    wanted = set()
    for name in names:
        while name is not None and name not in wanted:
            wanted.add(name)
            name = by_name[name].base
    return [r for r in runs if r.name in wanted]  # definition order: bases are listed first


def gfm_argv() -> list[str]:
    script = Path(sys.executable).parent / "gfm"
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-m", "gfm.cli.main"]


def shown_path(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)


def execute(run: Run, root: Path, inputs: Mapping[str, Any], code: Mapping[str, Any],
            runs: Mapping[str, Run]) -> dict[str, Any]:
    """Run `run` from scratch (its workspace and logs removed first) and write its stamp."""
    folder = run_dir(root, run.name)
    workspace, logs = folder / "workspace", folder / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / STAMP).unlink(missing_ok=True)  # an interrupted run must not look finished
    for path in (workspace, logs):
        shutil.rmtree(path, ignore_errors=True)
    logs.mkdir()
    stamp: dict[str, Any] = {
        "run": run.name, "title": run.title, "key": key_of(inputs), "inputs": dict(inputs),
        "commit": code["commit"], "dirty": list(code["dirty"]), "machine": cpu_name(),
        "commands": [" ".join(["gfm", *c, "--workdir", shown_path(workspace)])
                     for c in run.commands],
        "started_at": _now(), "steps": [], "status": "running",
    }
    began = time.perf_counter()

    def fail(message: str) -> dict[str, Any]:
        stamp.update(status="failed", error=message[-ERROR_TAIL_CHARS:],
                     wall_s=round(time.perf_counter() - began, 1), finished_at=_now())
        _write_json(folder / STAMP, stamp)
        return stamp

    if run.base is not None:
        base_stamp = read_stamp(root, run.base)
        if (base_stamp is None or base_stamp.get("status") != "ok"
                or base_stamp.get("key") != inputs["base_key"]):
            return fail(f"the run it starts from, {run.base}, has no up-to-date successful "
                        f"workspace (see its section)")
        stamp["base_finished_at"] = base_stamp.get("finished_at")
        shutil.copytree(workspace_of(root, run.base), workspace, symlinks=True)
    else:
        workspace.mkdir()
    if run.config:
        import yaml

        (workspace / "gfm.yaml").write_text(
            f"# written by bench/results.py for the run {run.name}\n"
            + yaml.safe_dump(json.loads(json.dumps(run.config)), sort_keys=False))
    for i, command in enumerate(run.commands, 1):
        argv = [*gfm_argv(), *command, "--workdir", str(workspace)]
        words = [w for w in command[:2] if not w.startswith("-")]
        log = logs / f"{i:02d}_{'_'.join(words)}.log"
        print(f"[{run.name}] gfm {' '.join(command)}  (log {shown_path(log)})", flush=True)
        rc, wall, rss, cpu = run_child(argv, log)
        stamp["steps"].append({"command": " ".join(["gfm", *command]), "rc": rc,
                               "seconds": round(wall, 1), "peak_rss_mib": round(rss),
                               "cpu_s": round(cpu, 1)})
        if rc != 0:
            stamp["failed_command"] = " ".join(["gfm", *command])
            return fail(f"`gfm {' '.join(command)}` exited {rc}; log {shown_path(log)}:\n"
                        + log.read_text(errors="replace")[-ERROR_TAIL_CHARS:])
    if not (workspace / "reports" / "metrics.json").is_file():
        return fail("the commands finished but wrote no reports/metrics.json")
    cuts = budget_cuts(logs)
    if cuts:
        return fail("a training stopped on its wall-clock time budget, so how many epochs it "
                    "ran (and every figure after it) depended on this machine's load: "
                    + "; ".join(cuts) + ". Rerun on a quiet machine, or raise that budget "
                    "(hgnn.time_budget_s, two_tower.time_budget_s) in the run's config in "
                    "bench/results.py so that its epoch count decides.")
    shown = subprocess.run([*gfm_argv(), "config", "--workdir", str(workspace)], cwd=REPO,
                           capture_output=True, text=True)
    stamp["resolved_config"] = shown.stdout if shown.returncode == 0 else None
    config_file = workspace / "gfm.yaml"
    stamp["config_file"] = config_file.read_text() if config_file.is_file() else None
    stamp["code_hash_at_end"] = code_state()["code_hash"]  # differs if edited meanwhile
    stamp.update(status="ok", wall_s=round(time.perf_counter() - began, 1), finished_at=_now())
    _write_json(folder / STAMP, stamp)
    return stamp


def budget_cuts(logs: Path) -> list[str]:
    """`log: line` for each training that its time budget stopped (the line training/hgnn and
    training/two_tower log when it happens). A results run pins its epochs: a budget that cuts
    them makes the figures depend on the machine's load, so such a run is not recorded."""
    return [f"{shown_path(log)}: {line.strip()}" for log in sorted(logs.glob("*.log"))
            for line in log.read_text(errors="replace").splitlines()
            if BUDGET_SPENT in line]


def bring_up_to_date(runs: list[Run], selected: list[Run], root: Path, doc: Path
                     ) -> list[str]:
    """Rerun each selected run whose inputs changed (in definition order), recording each
    attempt beside the document; the names of those that failed. One `make results` at a time
    per results folder (a lock file)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"another `make results` is running on {root}") from None
        code = code_state()
        by_name = {r.name: r for r in runs}
        decisions = dict((r.name, d) for r, d in plan(runs, root, doc, code))
        current = {r.name: workspace_is_current(r, root, run_inputs(r, by_name,
                                                                    code["code_hash"]))
                   for r in selected}
        reasons = to_run(selected, decisions, current)
        failed = []
        for run in selected:
            inputs = run_inputs(run, by_name, code["code_hash"])
            if run.name not in reasons:
                print(f"[{run.name}] reused: {decisions[run.name].reason}", flush=True)
                continue
            missing = missing_data(inputs)
            if missing:  # not an attempt: the run cannot start here; its record stays as it is
                print(f"[{run.name}] not run: {missing}; its record is kept", file=sys.stderr,
                      flush=True)
                failed.append(run.name)
                continue
            print(f"[{run.name}] running: {reasons[run.name]}", flush=True)
            stamp = execute(run, root, inputs, code, by_name)
            sync_record(run, root, doc)
            print(f"[{run.name}] {stamp['status']} in {stamp['wall_s']:.0f} s", flush=True)
            if stamp["status"] != "ok":
                failed.append(run.name)
                print(stamp["error"][-1500:], file=sys.stderr, flush=True)
        return failed
