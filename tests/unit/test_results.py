"""`make results` (bench/results.py): the reuse decision and the document, on fake runs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import resultsdoc  # noqa: E402
import resultsrun  # noqa: E402
from evaluation.user_hits import save_user_hits  # noqa: E402
from resultsrun import Run, decide, key_of, run_inputs  # noqa: E402

RUNS = [
    Run("base", "Base run", commands=(("pipeline", "--profile", "tiny"),)),
    Run("paper", "Paper on base", commands=(("evaluate", "--experiments", "paper"),),
        base="base"),
    Run("extra", "Extra", commands=(("pipeline",),), default=False),
]
BY_NAME = {r.name: r for r in RUNS}


def _stamp(inputs, status="ok", **more):
    return {"key": key_of(inputs), "inputs": inputs, "status": status,
            "finished_at": "2026-11-29T10:00:00Z", **more}


def test_reuse_only_when_every_input_is_unchanged():
    inputs = run_inputs(RUNS[0], BY_NAME, "code1")
    assert decide(None, inputs, True).action == "run"
    assert decide(_stamp(inputs), inputs, True).action == "reuse"
    assert decide(_stamp(inputs), inputs, False).reason == "its metrics.json is gone"
    failed = decide(_stamp(inputs, status="failed"), inputs, True)
    assert (failed.action, failed.reason) == ("run", "its last attempt failed")
    new_code = decide(_stamp(inputs), run_inputs(RUNS[0], BY_NAME, "code2"), True)
    assert (new_code.action, new_code.reason) == ("run", "the code changed")
    changed = Run("base", "Base run", commands=(("pipeline", "--profile", "small"),))
    assert decide(_stamp(inputs), run_inputs(changed, BY_NAME, "code1"),
                  True).reason == "its commands changed"
    configured = Run("base", "Base run", commands=RUNS[0].commands,
                     config={"timeline": {"protocol": "per_user"}})
    assert decide(_stamp(inputs), run_inputs(configured, BY_NAME, "code1"),
                  True).reason == "its config changed"
    absent = {**inputs, "data_hash": "missing: raw data ../x does not exist"}
    assert decide(_stamp(inputs), absent, True).reason.startswith(
        "its raw data is not on this machine (missing: raw data ../x")


def test_a_run_started_from_another_reruns_when_that_one_changes():
    before = run_inputs(RUNS[1], BY_NAME, "code1")
    other = {**BY_NAME, "base": Run("base", "Base run", commands=(("pipeline",),))}
    after = run_inputs(RUNS[1], other, "code1")
    decision = decide(_stamp(before), after, True)
    assert decision.action == "run"
    assert decision.reason == "the run it starts from changed"


def test_selection_brings_the_base_along_and_rejects_unknown_names():
    assert [r.name for r in resultsrun.select(RUNS, "paper")] == ["base", "paper"]
    assert [r.name for r in resultsrun.select(RUNS, None)] == ["base", "paper"]
    assert [r.name for r in resultsrun.select(RUNS, "extra")] == ["extra"]
    with pytest.raises(ValueError, match="nope"):
        resultsrun.select(RUNS, "base,nope")


def test_code_hash_follows_the_code_paths_only(tmp_path):
    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "notes.md").write_text("hello\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init")
    state = resultsrun.code_state(tmp_path, ["pkg"])
    assert state["dirty"] == []
    (tmp_path / "notes.md").write_text("changed\n")
    assert resultsrun.code_state(tmp_path, ["pkg"])["code_hash"] == state["code_hash"]
    (tmp_path / "pkg" / "a.py").write_text("x = 2\n")
    edited = resultsrun.code_state(tmp_path, ["pkg"])
    assert edited["code_hash"] != state["code_hash"]
    assert edited["dirty"] == ["pkg/a.py"]
    (tmp_path / "pkg" / "new.py").write_text("")  # untracked files count too
    assert resultsrun.code_state(tmp_path, ["pkg"])["code_hash"] != edited["code_hash"]


def test_data_hash_follows_content(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "ratings.csv").write_text("1,2\n")
    first = resultsrun.data_hash(["d"], tmp_path)
    assert resultsrun.data_hash(["d"], tmp_path) == first
    (tmp_path / "d" / "ratings.csv").write_text("1,3\n")
    assert resultsrun.data_hash(["d"], tmp_path) != first
    assert resultsrun.data_hash([], tmp_path) is None


def test_user_hits_round_trip_with_object_ids(tmp_path):
    from evaluation.user_hits import load_user_hits

    ids = np.array(["u0", "u1", "u2"], dtype=object)  # as split.user_ids holds them
    path = save_user_hits(tmp_path / "h.npz",
                          {"als": {"audiobook": (np.array([2, 0]), np.array([1, 0]))}}, ids)
    users, hits = load_user_hits(path)["als"]["audiobook"]
    assert users.tolist() == ["u2", "u0"] and hits.tolist() == [True, False]


def fake_metrics() -> dict:
    def model(hr_a, hr_p, **more):
        return {"hr@10": {"audiobook": hr_a, "podcast": hr_p},
                "hr@10_ci": {"audiobook": [hr_a - 0.02, hr_a + 0.02],
                             "podcast": [hr_p - 0.02, hr_p + 0.02]},
                "mrr@100": {"audiobook": 0.1, "podcast": 0.2}, "coverage@10": 0.35,
                "inclusive": {"hr@10": {"audiobook": 0.6, "podcast": 0.7},
                              "mrr@100": {"audiobook": 0.3, "podcast": 0.4}, "coverage@10": 0.3},
                "cold_users": {"hr@10": {"audiobook": 0.476, "podcast": 0.5}},
                "new_items": {"hr@10": {"audiobook": 0.0, "podcast": 0.01}}, **more}

    comparison = {"n_users": 1043, "diff": 0.0142, "diff_ci": [0.007, 0.019],
                  "mcnemar_p": 2.8e-05, "significant": True}
    cold = {"n_users": 21, "only_a": 3, "only_b": 1, "diff": 0.095238,
            "diff_ci": [-0.047619, 0.238095], "mcnemar_p": 0.625, "significant": False}
    cold_vs_popularity = {"audiobook": cold, "podcast": {**cold, "n_users": 28},
                          "all types": {**cold, "n_users": 49}}
    new = {"n_users": 215, "only_a": 2, "only_b": 7, "diff": -0.023256,
           "diff_ci": [-0.051163, 0.004651], "mcnemar_p": 0.18, "significant": False}
    new_vs_text = {"audiobook": new, "podcast": {**new, "n_users": 368},
                   "all types": {**new, "n_users": 583}}
    rolled = {"n_users": 90, "n_clusters": 61, "only_a": 9, "only_b": 2, "hr_a": 0.3,
              "hr_b": 0.2222, "diff": 0.0778, "diff_ci": [0.01, 0.14], "mcnemar_p": 0.065,
              "significant": True}
    return {
        "split": {"cutoff": "2025-07-04T00:00:00", "holdout_end": "2025-07-18T00:00:00",
                  "protocol": "global", "n_items": {"audiobook": 900, "podcast": 600},
                  "n_new_items": {"audiobook": 15, "podcast": 10},
                  "n_users_with_history": 2969, "n_users_with_targets": 2645,
                  "n_users": {"exclude_history": {"audiobook": 1043, "podcast": 1564},
                              "cold_users": {"audiobook": 21, "podcast": 28},
                              "new_items": {"audiobook": 215, "podcast": 368}}},
        "settings": {"k": 10, "mrr_k": 100},
        "results": {"unified_2t": model(0.3456, 0.40, source="unified_2t:2t_x",
                                        cold_start={"versus_popularity": cold_vs_popularity,
                                                    "new_items_versus_text_knn": new_vs_text}),
                    "als": model(0.325, 0.329, settings={"factors": 32, "alpha": 1.0}),
                    "ease": model(0.30, 0.31, settings={"l2": 500.0})},
        "paper": {"table1": {"models": ["unified_2t", "audiobook_2t"], "types": ["audiobook"],
                             "hr@10": {"unified_2t": {"audiobook": 0.3456},
                                       "audiobook_2t": {"audiobook": 0.3314}},
                             "hr@10_ci": {"unified_2t": {"audiobook": [0.33, 0.36]},
                                          "audiobook_2t": {"audiobook": [0.31, 0.35]}},
                             "comparison": {"audiobook": comparison}},
                  "table2": {"models": ["unified_2t", "unified_2t_no_gnn"],
                             "types": ["audiobook"], "missing": ["unified_2t_no_gnn"],
                             "comparison": None},
                  "table3": {"done": False, "note": "skipped (--daily-days 0)"},
                  "train_seconds": {"audiobook_2t": 47.0}},
        "rolling": {"n": 2, "every_days": 28, "cutoffs": ["2025-07-04", "2025-06-06"],
                    "seconds": 125.0,
                    "pooled": {"als": {"hr@10": {"audiobook": 0.2222, "podcast": None},
                                       "hr@10_ci": {"audiobook": [0.2, 0.25], "podcast": None},
                                       "units": {"audiobook": 90}}},
                    "per_cutoff": [{"cutoff": "2025-07-04", "n_users": {"audiobook": 50},
                                    "hr@10": {"als": {"audiobook": 0.2}}}],
                    "versus": {"reference": "unified_2t", "comparisons": {
                        "popularity": {"audiobook": {**rolled, "hr_b": 0.15}},
                        "als": {"audiobook": rolled}}}},
    }


def fake_results(root: Path, code_hash: str) -> None:
    """A results folder where `base` succeeded (metrics, per-user hits, a plot) and `paper`
    failed."""
    reports = resultsrun.workspace_of(root, "base") / "reports"
    reports.mkdir(parents=True)
    (reports / "metrics.json").write_text(json.dumps(fake_metrics()))
    (reports / "hr_at_10.png").write_bytes(b"\x89PNG fake")
    (reports / "hgnn_metrics.json").write_text(json.dumps(
        {"version": "hgnn_abc", "batch_mode": "full", "epochs": [{}, {}, {}], "best_epoch": 2,
         "train_time_s": 95.0, "val_auc": 0.7702, "text_cosine_auc": 0.5215}))
    users = np.arange(100)
    rng = np.random.default_rng(0)
    baseline = rng.random(100) < 0.3
    unified = baseline | (rng.random(100) < 0.4)  # every baseline hit and more
    save_user_hits(reports / "user_hits.npz",
                   {"unified_2t": {"audiobook": (users, unified), "podcast": (users, baseline)},
                    "als": {"audiobook": (users, baseline), "podcast": (users, baseline)}},
                   np.array([f"u{i}" for i in range(100)]))
    inputs = run_inputs(RUNS[0], BY_NAME, code_hash)
    (root / "base" / "stamp.json").write_text(json.dumps(_stamp(
        inputs, commit="abcdef1234567", dirty=["training/x.py"], wall_s=754.2,
        commands=["gfm pipeline --profile tiny --workdir results/base/workspace"],
        steps=[{"command": "gfm pipeline --profile tiny", "seconds": 754.2}],
        config_file="timeline:\n  protocol: global\n", machine="cpu")))
    (root / "paper").mkdir()
    (root / "paper" / "stamp.json").write_text(json.dumps(_stamp(
        run_inputs(RUNS[1], BY_NAME, code_hash), status="failed", wall_s=3.0,
        failed_command="gfm evaluate --experiments paper",
        error="Traceback ...\nGfmError: no two-tower model in the workspace")))


def baseline_rate(root: Path, model: str = "als") -> float:
    """The audiobook hit rate of `model` in the fake run's user_hits.npz."""
    from evaluation.user_hits import load_user_hits

    hits = load_user_hits(resultsrun.workspace_of(root, "base") / "reports" / "user_hits.npz")
    return float(hits[model]["audiobook"][1].mean())


def test_document_is_rendered_from_the_metrics(tmp_path, monkeypatch):
    code = {"commit": "abcdef1234567", "code_hash": "c" * 64, "dirty": []}
    monkeypatch.setattr(resultsdoc, "code_state", lambda: code)
    root, doc = tmp_path / "results", tmp_path / "docs" / "results.md"
    fake_results(root, code["code_hash"])
    resultsdoc.write_document(RUNS, root, doc, {"table1": {"audiobook": "0.316 vs 0.271"}})
    text = doc.read_text()
    first = doc.read_bytes()

    assert "generated" in text and "make results" in text
    # Discovery: value [interval], the best of the type in bold; MRR and coverage.
    assert "| unified_2t | **0.346** [0.326, 0.366] | **0.400** [0.380, 0.420] | 0.100 |" in text
    assert "| als | 0.325 [0.305, 0.345] |" in text
    assert "| als | factors 32, alpha 1.0 | - |" in text  # settings
    assert "| unified_2t | - | `unified_2t:2t_x` |" in text  # source
    assert "no history: audiobook (21 users)" in text and "| 0.476 |" in text
    # users without history: unified_2t minus popularity, paired, per type and pooled
    assert ("| unified_2t | +0.095 [-0.048, +0.238] | +0.095 [-0.048, +0.238] | "
            "+0.095 [-0.048, +0.238] | 0.62 |") in text
    # Paper: paired difference, McNemar p, the paper's figure; a missing pair says so.
    assert "**+0.014 [+0.007, +0.019]** | 2.8e-05 | 1,043 | A ahead" in text
    assert "0.316 vs 0.271" in text and "missing: unified_2t_no_gnn" in text
    assert "skipped (--daily-days 0)" in text
    # Rolling: pooled with its interval and units.
    assert "| als | 0.222 [0.200, 0.250] | n/a | 90 | 0 |" in text
    # ... and unified_2t paired with each model over the pooled units, in the run's section and
    # in the summary (units and users from the ALS pairing, not the first listed).
    assert "| als | audiobook | 90 | 61 | 0.300 | 0.222 | **+0.078 [+0.010, +0.140]** | 0.065 |" in text
    assert ("| base (2 cutoffs pooled) | audiobook | 90 (61 users) | 0.300 | 0.222 | "
            "**+0.078 [+0.010, +0.140]** | 0.065 | not evaluated |  |  |") in text
    # Summary from the per-user hits: unified_2t hits a superset of ALS's users.
    row = next(line for line in text.splitlines() if line.startswith("| base | audiobook |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == "100" and cells[3] == "0.346"
    assert cells[4] == f"{baseline_rate(root):.3f}"
    assert cells[5].startswith("**+") and float(cells[6]) < 0.05
    assert cells[7] == "not evaluated"  # no EASE hits in the file
    # Pooled over types: 200 (user, type) units, the podcast half tied.
    row = next(line for line in text.splitlines() if line.startswith("| base | all types |"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == "200"
    pooled = (baseline_rate(root) + baseline_rate(root, "unified_2t")) / 2
    assert cells[3] == f"{pooled:.3f}"
    # Cold-start summary: new items against text_knn, no history against popularity, paired;
    # n/a where the metrics hold no pairing (no hgnn_knn here).
    row = [line for line in text.splitlines() if line.startswith("| base | audiobook |")][1]
    assert row == ("| base | audiobook | 215 | 0.000 | n/a | n/a | -0.023 [-0.051, +0.005] | n/a "
                   "| 21 | +0.095 [-0.048, +0.238] |")
    # Provenance, the plot copied under the run's name, and the failed run's error tail.
    assert "Commit `abcdef1234` with uncommitted changes to `training/x.py`" in text
    assert ("HGNN `hgnn_abc` (full batch): 3 epoch(s), best 2, 1 min 35 s of training; "
            "validation AUC 0.770 (text cosine 0.521)") in text
    assert "12 min 34 s" in text and "protocol: global" in text
    assert (doc.parent / "img" / "base" / "hr_at_10.png").read_bytes() == b"\x89PNG fake"
    assert "![hr_at_10 (base)](img/base/hr_at_10.png)" in text
    assert "**This run failed**" in text and "GfmError: no two-tower model" in text
    assert "extra" not in text.split("## Runs")[1].split("## Summary")[0]  # no stamp, not default

    # Unchanged runs: the same bytes. Changed code: the section says it is stale.
    resultsdoc.write_document(RUNS, root, doc, {})
    resultsdoc.write_document(RUNS, root, doc, {"table1": {"audiobook": "0.316 vs 0.271"}})
    assert doc.read_bytes() == first
    monkeypatch.setattr(resultsdoc, "code_state", lambda: {**code, "code_hash": "d" * 64})
    resultsdoc.write_document(RUNS, root, doc, {})
    assert "**Stale**: the code changed" in doc.read_text()


def test_a_fresh_clone_writes_the_same_document_from_the_records(tmp_path, monkeypatch):
    code = {"commit": "abcdef1234567", "code_hash": "c" * 64, "dirty": []}
    monkeypatch.setattr(resultsdoc, "code_state", lambda: code)
    root, doc = tmp_path / "results", tmp_path / "docs" / "results.md"
    fake_results(root, code["code_hash"])
    resultsdoc.write_document(RUNS, root, doc, {})
    first = doc.read_bytes()
    record = tmp_path / "docs" / "results" / "base"
    assert {p.name for p in record.iterdir()} == {"stamp.json", "metrics.json", "user_hits.npz",
                                                   "hgnn_metrics.json"}
    # The workspace path never reaches a record: it differs from machine to machine.
    assert str(root) not in (record / "metrics.json").read_text()

    import shutil

    shutil.rmtree(root)  # a fresh clone: records and plots, no workspaces
    resultsdoc.write_document(RUNS, root, doc, {})
    assert doc.read_bytes() == first
    by_name = {r.name: r for r in RUNS}
    decision = resultsrun.decide_recorded(RUNS[0], by_name, code["code_hash"], doc)
    assert decision.action == "reuse"


def test_a_new_attempt_replaces_the_record_and_a_failure_drops_its_figures(tmp_path,
                                                                            monkeypatch):
    code = {"commit": "abcdef1234567", "code_hash": "c" * 64, "dirty": []}
    monkeypatch.setattr(resultsdoc, "code_state", lambda: code)
    root, doc = tmp_path / "results", tmp_path / "docs" / "results.md"
    fake_results(root, code["code_hash"])
    resultsdoc.write_document(RUNS, root, doc, {})
    assert (doc.parent / "img" / "base" / "hr_at_10.png").is_file()
    # The rerun failed: execute() removed the workspace and wrote a failed stamp.
    import shutil

    shutil.rmtree(resultsrun.workspace_of(root, "base"))
    stamp = json.loads((root / "base" / "stamp.json").read_text())
    stamp.update(status="failed", error="GfmError: out of disk")
    (root / "base" / "stamp.json").write_text(json.dumps(stamp))
    assert resultsrun.sync_record(RUNS[0], root, doc)
    assert not resultsrun.sync_record(RUNS[0], root, doc)  # nothing newer the second time
    record = doc.parent / "results" / "base"
    assert {p.name for p in record.iterdir()} == {"stamp.json"}
    assert not (doc.parent / "img" / "base" / "hr_at_10.png").exists()
    resultsdoc.write_document(RUNS, root, doc, {})
    assert "**This run failed**" in doc.read_text() and "out of disk" in doc.read_text()


def test_a_base_whose_workspace_is_elsewhere_runs_again_for_the_run_that_starts_from_it():
    reuse, run = resultsrun.Decision("reuse", "ok"), resultsrun.Decision("run", "the code changed")
    # paper must run; base's record is current but its workspace is not on this machine.
    chosen = resultsrun.to_run(RUNS[:2], {"base": reuse, "paper": run},
                               {"base": False, "paper": False})
    assert list(chosen) == ["base", "paper"]
    assert "starts from its workspace" in chosen["base"]
    # With the workspace here, only paper runs; with nothing to run, nothing does.
    assert list(resultsrun.to_run(RUNS[:2], {"base": reuse, "paper": run},
                                  {"base": True, "paper": False})) == ["paper"]
    assert resultsrun.to_run(RUNS[:2], {"base": reuse, "paper": reuse},
                             {"base": False, "paper": False}) == {}


def test_records_are_not_ignored_by_git():
    """docs/results/<run>/ must be committed: results/ (the workspaces) is ignored at the root
    only."""
    repo = BENCH.parent
    for path in ("docs/results/small/stamp.json", "docs/results/small/user_hits.npz"):
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=repo)
        assert ignored.returncode == 1, f"{path} is ignored by git"
    assert subprocess.run(["git", "check-ignore", "-q", "results/small/stamp.json"],
                          cwd=repo).returncode == 0


def test_a_run_whose_raw_data_is_not_here_keeps_its_record(tmp_path, capsys):
    run = Run("real", "On real data", commands=(("pipeline",),), data=("no/such/dataset",))
    doc = tmp_path / "docs" / "results.md"
    record = doc.parent / "results" / "real"
    record.mkdir(parents=True)
    (record / "stamp.json").write_text(json.dumps({"status": "ok", "key": "k"}))
    (record / "metrics.json").write_text("{}")
    before = {p.name: p.read_bytes() for p in record.iterdir()}
    assert resultsrun.bring_up_to_date([run], [run], tmp_path / "results", doc) == ["real"]
    assert {p.name: p.read_bytes() for p in record.iterdir()} == before
    assert "its record is kept" in capsys.readouterr().err


def test_each_run_lists_the_studies_behind_its_settings_and_they_exist():
    import results

    docs = BENCH.parent / "docs"
    for run in results.RUNS:
        for page, what in run.studies:
            assert (docs / page).is_file(), f"{run.name}: {page} is not in docs/"
            assert what
    run = Run("x", "X", commands=(), studies=(("two_tower_variants.md", "negatives"),))
    assert "- [two_tower_variants.md](two_tower_variants.md): negatives" in \
        resultsdoc.render_studies(run)
    assert resultsdoc.render_studies(RUNS[0]) == ""
    # not an input: listing a study does not make a run stale
    assert run_inputs(run, {"x": run}, "c") == run_inputs(
        Run("x", "X", commands=()), {"x": run}, "c")


def test_a_run_whose_training_its_time_budget_stopped_is_not_recorded(tmp_path, monkeypatch):
    """A results run fixes its epochs; when a wall-clock budget cut them instead (a loaded
    machine), its figures would depend on the load: the run fails and says which budget."""
    def fake_child(argv, log):
        workdir = Path(argv[argv.index("--workdir") + 1])
        (workdir / "reports").mkdir(parents=True, exist_ok=True)
        (workdir / "reports" / "metrics.json").write_text("{}")
        log.write_text("epoch 006  loss 0.3\n"
                       "04:44:00 INFO training.hgnn.train: time budget of 900 s spent\n")
        return 0, 1.0, 100.0, 1.0

    monkeypatch.setattr(resultsrun, "run_child", fake_child)
    code = {"commit": "abcdef1234567", "code_hash": "c" * 64, "dirty": []}
    inputs = run_inputs(RUNS[0], BY_NAME, code["code_hash"])
    stamp = resultsrun.execute(RUNS[0], tmp_path, inputs, code, BY_NAME)
    assert stamp["status"] == "failed"
    assert "time budget of 900 s spent" in stamp["error"] and "01_pipeline.log" in stamp["error"]
    assert json.loads((tmp_path / "base" / "stamp.json").read_text())["status"] == "failed"
    assert resultsrun.budget_cuts(tmp_path / "nothing") == []


def test_the_trainings_log_the_line_a_budget_cut_is_found_by():
    for source in ("training/hgnn/train.py", "training/two_tower/train.py"):
        text = (Path(__file__).resolve().parents[2] / source).read_text()
        assert f'"{resultsrun.BUDGET_SPENT}%.0f s spent"' in text, source
