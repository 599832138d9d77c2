"""`gfm tune` on the tiny workspace: it never reads the hold-out after the cutoff, it resumes,
and its choice lands in gfm.yaml where every later command reads it."""

from __future__ import annotations

import datetime as dt
import json
import shutil

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from gfm.cli.main import main
from gfm.config import load_config
from gfm.timeline import resolve_timeline
from gfm.workspace import Workspace

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def twin_workspaces(tiny_raw_workspace, tmp_path_factory):
    """Two workspaces with the same cutoff: one with every interaction, one without any at or
    after the cutoff (the hold-out rows removed from the raw data)."""
    root = tmp_path_factory.mktemp("tune")
    full = root / "full"
    shutil.copytree(tiny_raw_workspace, full)
    cutoff = resolve_timeline(load_config(full).timeline, Workspace.at(full)).cutoff
    (full / "gfm.yaml").write_text(f"timeline:\n  cutoff: {cutoff:%Y-%m-%d}\n")

    raw = full / "raw"
    interactions = pq.read_table(raw / "interactions.parquet")
    before = interactions.filter(pc.less(interactions["event_ts"], cutoff))
    assert 0 < before.num_rows < interactions.num_rows
    cut = root / "cut"
    pq.write_table(before, root / "interactions.parquet")
    assert main(["import", "parquet", "--workdir", str(cut),
                 "--interactions", str(root / "interactions.parquet"),
                 "--items", str(raw / "items.parquet"), "--users", str(raw / "users.parquet")]) == 0
    shutil.copy(full / "gfm.yaml", cut / "gfm.yaml")
    return full, cut


@pytest.mark.parametrize("model,trials", [("ease", 4), ("als", 3)])
def test_tuning_never_reads_the_holdout(twin_workspaces, model, trials, capsys):
    chosen = []
    for workdir in twin_workspaces:
        assert main(["tune", model, "--workdir", str(workdir), "--trials", str(trials)]) == 0
        summary = json.loads((workdir / "tune" / f"{model}.json").read_text())
        assert summary["n_complete"] == trials
        assert summary["validation"]["holdout_end"][:10] == \
            load_config(workdir).timeline.cutoff.isoformat()
        chosen.append((summary["best"]["params"], summary["best"]["value"],
                       [t["value"] for t in summary["trials"]]))
    # The same trials scored the same on both: nothing after the cutoff was read.
    assert chosen[0] == chosen[1]
    capsys.readouterr()


def test_choice_lands_in_gfm_yaml_and_resumes(twin_workspaces, capsys):
    full, _ = twin_workspaces
    assert main(["tune", "ease", "--workdir", str(full), "--trials", "4"]) == 0
    assert main(["tune", "als", "--workdir", str(full), "--trials", "3"]) == 0
    capsys.readouterr()
    assert main(["tune", "ease", "--workdir", str(full), "--trials", "5"]) == 0
    out = capsys.readouterr().out
    assert "resuming, 4 trial(s) done" in out  # the earlier 4 trials are kept
    summary = json.loads((full / "tune" / "ease.json").read_text())
    assert summary["n_complete"] == 5
    text = (full / "gfm.yaml").read_text()
    assert text.startswith("timeline:\n  cutoff:")  # the user's part is kept as it was
    assert "# >>> gfm tune" in text and "# ease: tuned" in text and "# als: tuned" in text
    config = load_config(full)
    assert config.evaluation.ease_l2 == pytest.approx(summary["best"]["params"]["evaluation.ease_l2"])
    als = json.loads((full / "tune" / "als.json").read_text())["best"]["params"]
    assert config.evaluation.als_factors == als["evaluation.als_factors"]
    # A flag still wins over the tuned value.
    assert load_config(full, overrides={"evaluation": {"ease_l2": 7.0}}).evaluation.ease_l2 == 7.0
    assert (full / "reports" / "tune_ease.png").stat().st_size > 0


def test_tune_refuses_a_damaged_block(twin_workspaces, capsys):
    _, cut = twin_workspaces
    path = cut / "gfm.yaml"
    text = path.read_text()
    start = text.find("# >>> gfm tune")
    path.write_text((text[:start] if start >= 0 else text) + "# >>> gfm tune: half a block\n")
    try:
        assert main(["tune", "ease", "--workdir", str(cut), "--trials", "4"]) == 2
        assert "damaged" in capsys.readouterr().err
    finally:
        path.write_text(text)


def test_rolling_tuning_never_reads_a_rolling_holdout(twin_workspaces, tmp_path, capsys):
    """--rolling 2 --every 7: both validation hold-outs end by the earliest rolling cutoff (a
    week before the configured one), so removing every interaction from there on changes no
    trial's score."""
    full, _ = twin_workspaces
    cutoff = load_config(full).timeline.cutoff
    earliest_rolling = dt.datetime.combine(cutoff, dt.time()) - dt.timedelta(days=7)
    chosen = []
    for name, last_kept in (("full", None), ("cut", earliest_rolling)):
        workdir = tmp_path / name
        if last_kept is None:
            shutil.copytree(full, workdir, ignore=shutil.ignore_patterns("tune", "reports"))
        else:
            interactions = pq.read_table(full / "raw" / "interactions.parquet")
            kept = interactions.filter(pc.less(interactions["event_ts"], last_kept))
            assert 0 < kept.num_rows < interactions.num_rows
            pq.write_table(kept, tmp_path / "interactions.parquet")
            assert main(["import", "parquet", "--workdir", str(workdir),
                         "--interactions", str(tmp_path / "interactions.parquet"),
                         "--items", str(full / "raw" / "items.parquet"),
                         "--users", str(full / "raw" / "users.parquet")]) == 0
            shutil.copy(full / "gfm.yaml", workdir / "gfm.yaml")
        assert main(["tune", "ease", "--workdir", str(workdir), "--trials", "3", "--rolling", "2",
                     "--every", "7", "--dry-run"]) == 0
        summary = json.loads((workdir / "tune" / "ease.json").read_text())
        ends = [dt.datetime.fromisoformat(c) + dt.timedelta(days=14)
                for c in summary["validation"]["cutoffs"]]
        assert len(ends) == 2 and max(ends) == earliest_rolling
        trials = [(t["value"], t["units"], t["per_cutoff"]) for t in summary["trials"]]
        assert all(sum(units.values()) > 0 for _, units, _ in trials)
        chosen.append((summary["best"]["params"], trials))
    assert chosen[0] == chosen[1]
    assert "2 validation cutoffs" in capsys.readouterr().out
