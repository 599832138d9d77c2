"""Shared fixtures: a tiny synthetic workspace, generated once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
os.environ.setdefault("BENTOML_DO_NOT_TRACK", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_raw_workspace(tmp_path_factory) -> Path:
    """A workspace holding only raw data of the `tiny` synthetic profile (read-only for tests)."""
    from gfm.cli.main import main

    workdir = tmp_path_factory.mktemp("tiny") / "ws"
    assert main(["generate", "--workdir", str(workdir), "--profile", "tiny", "--seed", "3"]) == 0
    return workdir
