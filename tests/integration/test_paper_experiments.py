"""`gfm evaluate --experiments paper` on the tiny workspace: one smoke run (CI's only one)."""

from __future__ import annotations

import json
import shutil

import pytest

from gfm.cli.main import main

pytestmark = pytest.mark.integration

# The variants' trainings (the served model comes from the shared pipeline workspace).
SETTINGS = ["--set", "hgnn.max_epochs=3", "--set", "two_tower.epochs=3",
            "--set", "hgnn.threads=1", "--set", "two_tower.threads=1"]


def _served_state(workdir) -> tuple[dict[str, int], bytes]:
    """Rows per table of the SQLite online store, and the Feast registry's bytes."""
    import sqlite3

    data = workdir / "feature_repo" / "data"
    con = sqlite3.connect(data / "online_store.db")
    try:
        names = [r[0] for r in con.execute("select name from sqlite_master where type = 'table'")]
        rows = {n: con.execute(f'select count(*) from "{n}"').fetchone()[0] for n in names}
    finally:
        con.close()
    assert rows and all(rows.values())
    return rows, (data / "registry.db").read_bytes()


def test_paper_experiments_smoke(tiny_pipeline_workspace, tmp_path):
    workdir = tmp_path / "ws"  # a copy: the experiments write reports and models
    shutil.copytree(tiny_pipeline_workspace, workdir, ignore=shutil.ignore_patterns("index.db"))
    # A copied registry names the original's files: re-applied here (as on any copy's first
    # use), so that what follows compares the copy's own state before and after.
    assert main(["features", "apply", "--workdir", str(workdir)]) == 0
    pointer = workdir / "models" / "two_tower" / "serving.json"
    served = pointer.read_text()
    store = _served_state(workdir)

    # Table 3 retrains the HGNN and two two-towers per day (minutes): left out of CI.
    assert main(["evaluate", "--workdir", str(workdir), "--experiments", "paper",
                 "--daily-days", "0", *SETTINGS]) == 0

    assert pointer.read_text() == served  # the paper's variants never become the served model
    # ... and the served workspace's feature store is as it was (an experiment once emptied it)
    assert _served_state(workdir) == store
    reports = workdir / "reports"
    metrics = json.loads((reports / "metrics.json").read_text())
    results = metrics["results"]
    types = sorted(metrics["split"]["n_items"])
    for name in ("unified_2t", "audiobook_2t", "unified_2t_no_gnn"):
        assert name in results, name
    for name, result in results.items():
        assert sorted(result["hr@10_ci"]) == types
        for t in types:
            lo, hi = result["hr@10_ci"][t]
            assert 0.0 <= lo <= result["hr@10"][t] <= hi <= 1.0, (name, t)

    paper = metrics["paper"]
    assert paper["table1"]["models"] == ["unified_2t", "audiobook_2t"]
    assert list(paper["table1"]["comparison"]) == ["audiobook"]
    assert sorted(paper["table2"]["comparison"]) == types
    for table in ("table1", "table2"):
        for t, c in paper[table]["comparison"].items():
            a, b = paper[table]["models"]
            assert c["n_users"] == metrics["split"]["n_users"]["exclude_history"][t]
            assert abs(c["diff"] - (results[a]["hr@10"][t] - results[b]["hr@10"][t])) < 1e-5
            assert c["diff_ci"][0] <= c["diff"] <= c["diff_ci"][1]
            assert 0.0 <= c["mcnemar_p"] <= 1.0
    assert paper["table3"]["daily_days"] == 0 and not paper["table3"]["done"]
    assert (reports / "hr_at_10_ci.png").stat().st_size > 0
    assert "Paper experiments" in (reports / "metrics.md").read_text()
