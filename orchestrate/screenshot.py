"""A picture of the Dagster UI's asset graph, for docs/: `make dagster-screenshot`.

    python -m orchestrate.screenshot --workdir W [--out docs/img/dagster_asset_graph.png]

Starts `dagster-webserver` on the code location as `make dagster` does (state in a throwaway
DAGSTER_HOME, telemetry off, loopback only), waits until its GraphQL API lists the assets,
marks Dagster's first-visit dialog seen (its GraphQL mutation), has headless Chromium open the
global asset lineage page through the DevTools protocol, expand every group (the page's own
shortcut, Alt+E) and capture it, and stops both. Needs the `orchestrate` extra and a headless
Chromium on PATH (Debian: `apt-get install chromium-headless-shell`); nothing leaves the
machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from gfm.errors import GfmError
from gfm.ports import free_local_port

BROWSERS = ("chromium-headless-shell", "chromium", "google-chrome", "chrome")
PAGE = "/asset-groups"  # the global asset lineage graph
READY_QUERY = "{ assetNodes { assetKey { path } } }"


def _browser() -> str:
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    raise GfmError(f"no headless Chromium on PATH (looked for {', '.join(BROWSERS)}): on "
                   "Debian, `apt-get install chromium-headless-shell`")


def _wait_for_assets(url: str, process: subprocess.Popen, log: Path, timeout_s: float) -> int:
    """Until the webserver's GraphQL API lists the code location's assets; their count."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise GfmError(f"dagster-webserver exited: {log.read_text()[-2000:]}")
        try:
            response = httpx.post(f"{url}/graphql", json={"query": READY_QUERY}, timeout=30)
            nodes = (response.json().get("data") or {}).get("assetNodes") if (
                response.status_code == 200) else None
            if nodes:
                return len(nodes)
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise GfmError(f"dagster-webserver did not list the assets in {timeout_s:.0f} s: "
                   f"{log.read_text()[-2000:]}")


def take(workdir: Path, out: Path, width: int = 1800, height: int = 1100,
         render_ms: int = 20_000) -> int:
    """Write the PNG; returns how many assets the UI lists."""
    browser = _browser()
    with tempfile.TemporaryDirectory(prefix="gfm-dagster-") as home:
        (Path(home) / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        env = {**os.environ, "GFM_WORKDIR": str(workdir), "DAGSTER_HOME": home,
               "DAGSTER_DISABLE_TELEMETRY": "1"}
        port = free_local_port()
        url = f"http://127.0.0.1:{port}"
        log = Path(home) / "webserver.log"
        with log.open("w") as handle:
            process = subprocess.Popen(
                [sys.executable, "-m", "dagster_webserver", "-m", "orchestrate.definitions",
                 "-h", "127.0.0.1", "-p", str(port)],
                stdout=handle, stderr=subprocess.STDOUT, env=env)
        try:
            n_assets = _wait_for_assets(url, process, log, timeout_s=300)
            httpx.post(f"{url}/graphql", json={"query": "mutation { setNuxSeen }"}, timeout=30)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(_capture(browser, f"{url}{PAGE}", width, height, render_ms))
        finally:
            process.terminate()
            process.wait(timeout=60)
    return n_assets


def _capture(browser: str, url: str, width: int, height: int, render_ms: int) -> bytes:
    """PNG of `url` after its scripts ran, with every asset group expanded (DevTools)."""
    import base64
    import json

    from websockets.sync.client import connect

    port = free_local_port()
    chrome = subprocess.Popen(
        [browser, "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         f"--remote-debugging-port={port}", f"--window-size={width},{height}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline, page = time.monotonic() + 60, None
        while page is None:
            if time.monotonic() > deadline:
                raise GfmError(f"{browser} did not open its DevTools port")
            try:
                targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=5).json()
                page = next((t for t in targets if t.get("type") == "page"), None)
            except (httpx.HTTPError, ValueError):
                pass
            if page is None:
                time.sleep(0.5)
        with connect(page["webSocketDebuggerUrl"], max_size=None) as ws:
            ids = iter(range(1, 1_000_000))

            def call(method: str, **params):
                message_id = next(ids)
                ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
                while True:
                    reply = json.loads(ws.recv(timeout=120))
                    if reply.get("id") == message_id:
                        if "error" in reply:
                            raise GfmError(f"DevTools {method}: {reply['error']}")
                        return reply.get("result", {})

            call("Emulation.setDeviceMetricsOverride", width=width, height=height,
                 deviceScaleFactor=1, mobile=False)
            call("Page.navigate", url=url)
            time.sleep(render_ms / 2000)  # the graph is fetched and laid out
            for kind in ("keyDown", "keyUp"):  # Alt+E: expand all groups
                call("Input.dispatchKeyEvent", type=kind, modifiers=1, code="KeyE", key="e",
                     windowsVirtualKeyCode=69)
            time.sleep(render_ms / 2000)
            return base64.b64decode(call("Page.captureScreenshot", format="png")["data"])
    finally:
        chrome.terminate()
        chrome.wait(timeout=60)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/img/dagster_asset_graph.png"))
    args = parser.parse_args(argv)
    try:
        n = take(args.workdir.resolve(), args.out)
    except GfmError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.out}: the asset graph of {args.workdir} ({n} assets)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
