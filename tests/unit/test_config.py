import datetime as dt
from pathlib import Path

import pytest

from gfm.config import Config, load_config, parse_overrides, write_timeline_cutoff
from gfm.errors import ConfigError
from gfm.timeline import Timeline, resolve_timeline
from gfm.workspace import Workspace


def test_defaults_follow_the_design_timeline():
    config = load_config()
    assert config.timeline.history_days == 90
    assert config.timeline.label_days == 14
    assert config.timeline.holdout_days == 14
    assert config.timeline.cutoff is None


def test_yaml_then_flags(tmp_path):
    (tmp_path / "gfm.yaml").write_text("timeline:\n  cutoff: 2025-05-01\n  label_days: 7\n")
    config = load_config(tmp_path, overrides=parse_overrides(["timeline.label_days=3"]))
    assert config.timeline.cutoff == dt.date(2025, 5, 1)
    assert config.timeline.label_days == 3  # the flag wins over the file


@pytest.mark.parametrize(
    "yaml_text, message",
    [
        ("timline:\n  cutoff: 2025-01-01\n", "unknown key(s) timline"),
        ("timeline:\n  history_dayz: 3\n", "unknown key(s) history_dayz"),
        ("timeline:\n  history_days: ninety\n", "timeline.history_days: expected int"),
        ("timeline:\n  cutoff: yesterday\n", "expected a date"),
        ("timeline:\n  label_days: 0\n", "at least 1 day"),
        ("warehouse:\n  edge_event_types: 5\n", "expected a list"),
        ("timeline:\n  protocol: per-user\n", "timeline.protocol must be global or per_user"),
        ("timeline:\n  per_user_holdout_items: 0\n", "per_user_holdout_items must be at least 1"),
        ("warehouse:\n  engine: postgres\n", "warehouse.engine must be one of duckdb, spark"),
        ("warehouse:\n  spark_shuffle_partitions: 0\n", "spark_shuffle_partitions must be at"),
        ("features:\n  offline_store: bigquery\n", "offline_store must be one of duckdb, spark"),
    ],
)
def test_bad_config_is_refused_by_name(tmp_path, yaml_text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_config(config_path=path)


def test_override_needs_key_value():
    with pytest.raises(ConfigError, match="section.key=value"):
        parse_overrides(["timeline.label_days"])


def test_list_override_from_comma_separated_flag():
    config = load_config(overrides=parse_overrides(["warehouse.history_event_types=stream,follow"]))
    assert config.warehouse.history_event_types == ["stream", "follow"]


def test_timeline_instants():
    t = Timeline(dt.datetime(2025, 7, 1), history_days=90, label_days=14, holdout_days=14)
    assert t.graph_as_of == dt.datetime(2025, 6, 17)
    assert t.holdout_end == dt.datetime(2025, 7, 15)
    assert t.edge_window_start == dt.datetime(2025, 3, 19)
    days = t.snapshot_days()
    assert days[0] == t.graph_as_of and days[-1] == t.cutoff and len(days) == 15


def test_default_cutoff_is_last_event_day_minus_holdout(tiny_raw_workspace):
    ws = Workspace.at(tiny_raw_workspace)
    t = resolve_timeline(Config().timeline, ws)
    # The tiny profile spans 140 days from 2025-03-01: the last event falls on 2025-07-18.
    assert t.cutoff == dt.datetime(2025, 7, 18) - dt.timedelta(days=14)
    assert t.cutoff.time() == dt.time(0, 0)


def test_foundation_imports_no_stage_package():
    """gfm.config, timeline, workspace and errors load no stage module (training, transforms,
    feature_store, evaluation, serving, ingest), neither by an import statement nor when they
    are imported."""
    import ast
    import subprocess
    import sys
    from pathlib import Path

    stages = ("training", "transforms", "feature_store", "evaluation", "serving", "ingest")
    root = Path(__file__).resolve().parents[2]
    for name in ("config", "timeline", "workspace", "errors"):
        tree = ast.parse((root / "gfm" / f"{name}.py").read_text())
        for node in ast.walk(tree):
            modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                       else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not [m for m in modules if m.split(".")[0] in stages], (name, modules)
    code = ("import sys, gfm.config, gfm.timeline, gfm.workspace, gfm.errors; "
            f"print([m for m in sys.modules if m.split('.')[0] in {stages!r}])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_stage_sections_load_and_refuse_unknown_keys():
    from training.hgnn.config import HGNNConfig
    from training.two_tower.config import TwoTowerConfig

    config = load_config(overrides=parse_overrides(["hgnn.max_epochs=5", "two_tower.tower_dims=64,32"]))
    assert isinstance(config.hgnn, HGNNConfig) and config.hgnn.max_epochs == 5
    assert isinstance(config.two_tower, TwoTowerConfig) and config.two_tower.tower_dims == [64, 32]
    assert Config().to_dict()["hgnn"] == HGNNConfig().__dict__
    with pytest.raises(ConfigError, match="hgnn: unknown key"):
        load_config(overrides=parse_overrides(["hgnn.max_epoch=5"]))


@pytest.mark.parametrize("before, after", [
    ("", "timeline:\n  cutoff: 2025-07-02  # moved\n"),
    ("# mine\ntimeline:\n    label_days: 7  # why\nhgnn:\n  max_epochs: 3\n",
     "# mine\ntimeline:\n    cutoff: 2025-07-02  # moved\n    label_days: 7  # why\nhgnn:\n"
     "  max_epochs: 3\n"),
    ("timeline:  # ours\n  label_days: 7\n\n  cutoff: 2025-06-01  # old\n",
     "timeline:  # ours\n  label_days: 7\n\n  cutoff: 2025-07-02  # moved\n"),
    ("hgnn:\n  max_epochs: 3\n", "hgnn:\n  max_epochs: 3\ntimeline:\n  cutoff: 2025-07-02  # moved\n"),
])
def test_write_timeline_cutoff_keeps_the_rest_of_the_file(tmp_path, before, after):
    path = tmp_path / "gfm.yaml"
    if before:
        path.write_text(before)
    write_timeline_cutoff(path, dt.date(2025, 7, 2), "moved")
    assert path.read_text() == after
    assert load_config(tmp_path).timeline.cutoff == dt.date(2025, 7, 2)


def test_write_timeline_cutoff_refuses_what_it_cannot_edit_and_changes_nothing(tmp_path):
    path = tmp_path / "gfm.yaml"
    path.write_text("timeline: {label_days: 7}\n")
    with pytest.raises(ConfigError, match="as a block"):
        write_timeline_cutoff(path, dt.date(2025, 7, 2), "moved")
    assert path.read_text() == "timeline: {label_days: 7}\n"
    path.write_text("timeline:\n  label_days: nine\n")  # broken before: still broken, untouched
    with pytest.raises(ConfigError, match="label_days"):
        write_timeline_cutoff(path, dt.date(2025, 7, 2), "moved")
    assert path.read_text() == "timeline:\n  label_days: nine\n"


def test_the_defaults_in_docs_configuration_md_are_what_gfm_config_prints():
    """docs/configuration.md shows `gfm config` on an empty workspace: a key added to a config
    dataclass without it fails here (regenerate the block with that command)."""
    import re

    import yaml

    doc = (Path(__file__).resolve().parents[2] / "docs" / "configuration.md").read_text()
    block = re.search(r"```yaml\n(.*?)```", doc, re.S).group(1)
    assert block == yaml.safe_dump(load_config().to_dict(), sort_keys=False)
