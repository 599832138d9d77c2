"""`gfm build`: a Bento that `bentoml serve` runs from another directory, with the command the
build prints, answering as `gfm serve` does on the same workspace."""

from __future__ import annotations

import os
import shlex
import subprocess

import httpx
import pytest

from gfm.cli.main import main
from gfm.ports import free_local_port
from gfm.workspace import Workspace
from serving.milvus import stop_process

# The session's tiny workspace through `gfm pipeline` (conftest), as test_serving names it.
from test_serving import _start_server, _wait_ready, workdir  # noqa: F401
from transforms.warehouse import warehouse_query

pytestmark = pytest.mark.integration


def _answers(url: str, users: list[str], items: list[str]) -> list[list[str]]:
    answers = []
    for user in users:
        body = httpx.post(f"{url}/recommend", json={"user_id": user, "k": 10}, timeout=30).json()
        answers.append([entry["item_id"] for entry in body["items"]])
    for item in items:
        body = httpx.post(f"{url}/similar", json={"item_id": item, "k": 10}, timeout=30).json()
        answers.append([entry["item_id"] for entry in body["items"]])
    return answers


def test_bento_serves_from_elsewhere_the_same_top10_as_gfm_serve(workdir, tmp_path, capsys):
    workspace = Workspace.at(workdir)
    users = [r[0] for r in warehouse_query(
        workspace, "select user_id from user_catalog order by user_id limit 5")]
    items = [r[0] for r in warehouse_query(
        workspace, "select item_id from item_catalog where is_top_level order by item_id "
                   "limit 3")]

    assert main(["build", "--workdir", str(workdir)]) == 0
    command = capsys.readouterr().out.strip().splitlines()[-1]
    tokens = shlex.split(command)
    at = next(n for n, token in enumerate(tokens) if "=" not in token)
    env = dict(token.split("=", 1) for token in tokens[:at])
    argv = tokens[at:]
    assert argv[1:3] == ["serve", argv[2]] and argv[2].startswith("gfm_recommender:")
    assert env["GFM_WORKDIR"] == str(workdir)

    log = tmp_path / "gfm_serve.log"
    url, process = _start_server(workdir, log)
    try:
        expected = _answers(url, users, items)
    finally:
        stop_process(process)
    assert all(len(answer) == 10 for answer in expected)

    port = free_local_port()
    argv[argv.index("--port") + 1] = str(port)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    log = tmp_path / "bento_serve.log"
    # Only what the printed command sets, plus PATH and HOME: the command is complete.
    with log.open("w") as handle:
        process = subprocess.Popen(argv, cwd=elsewhere, stdout=handle, stderr=subprocess.STDOUT,
                                   env={"PATH": os.environ["PATH"], "HOME": os.environ["HOME"],
                                        **env})
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, process, log)
        ready = httpx.get(f"{url}/readyz", timeout=10).json()
        got = _answers(url, users, items)
    finally:
        stop_process(process)
    assert got == expected
    assert ready["ready"] is True
