"""Shared fixtures: a tiny synthetic workspace, generated once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


# Fixtures that make a test slow: model weights, a generated workspace.
SLOW_FIXTURES = {"text_model", "tiny_raw_workspace"}


def pytest_collection_modifyitems(config, items):
    """Markers by what a test is: `unit` (tests/unit, none of SLOW_FIXTURES), `integration`
    (tests/integration), `slow` (SLOW_FIXTURES, or marked so by its module)."""
    for item in items:
        folder = item.path.parent.name
        slow = bool(SLOW_FIXTURES & set(getattr(item, "fixturenames", ())))
        if slow:
            item.add_marker(pytest.mark.slow)
        if folder == "unit" and not slow:
            item.add_marker(pytest.mark.unit)
        elif folder == "integration":
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def tiny_raw_workspace(tmp_path_factory) -> Path:
    """A workspace holding only raw data of the `tiny` synthetic profile (read-only for tests)."""
    from gfm.cli.main import main

    workdir = tmp_path_factory.mktemp("tiny") / "ws"
    assert main(["generate", "--workdir", str(workdir), "--profile", "tiny", "--seed", "3"]) == 0
    return workdir
