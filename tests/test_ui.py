"""The Dagster UI serves the graph: the real webserver on loopback, asked over GraphQL as the
UI itself asks, and the page rendered by the real (headless) Chromium."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def webserver(tmp_path_factory):
    home = tmp_path_factory.mktemp("dagster_home")
    port = _free_port()
    env = {"PATH": "/usr/bin:/bin", "DAGSTER_HOME": str(home), "NEXUS_WORKDIR": str(home / "work")}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(url + "/server_info", timeout=2)
                break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail("dagster-webserver did not answer within 120 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _graphql(url: str, query: str) -> dict:
    request = urllib.request.Request(url + "/graphql", data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(request, timeout=60).read())["data"]


def test_webserver_serves_every_stage_and_image_asset(webserver):
    deadline = time.monotonic() + 60
    while True:  # the code location loads in the background after the server answers
        nodes = _graphql(webserver, "{ assetNodes { assetKey { path } groupName } }")["assetNodes"]
        if nodes or time.monotonic() > deadline:
            break
        time.sleep(2)
    keys = {"/".join(n["assetKey"]["path"]) for n in nodes}
    assert {"workspace", "discovery_parsed", "discrepancy_report", "scaffolded_services", "e2e_tests",
            "artifacts_manifest"} <= keys
    assert "image/backend-api" in keys and "image/users" in keys
    assert {n["groupName"] for n in nodes} >= {"prepare", "images", "release"}


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium is installed by scripts/bootstrap.sh")
def test_asset_graph_page_renders_in_chromium(webserver, tmp_path):
    done = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path}",
         "--virtual-time-budget=20000", "--dump-dom", webserver + "/assets"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "discovery_parsed" in done.stdout and "artifacts_manifest" in done.stdout


def _start_webserver(env: dict, port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def _stale_status(url: str) -> dict[str, str]:
    deadline = time.monotonic() + 90
    while True:
        nodes = _graphql(url, "{ assetNodes { assetKey { path } staleStatus } }")["assetNodes"]
        if nodes or time.monotonic() > deadline:
            return {"/".join(n["assetKey"]["path"]): n["staleStatus"] for n in nodes}
        time.sleep(2)


@pytest.mark.docker
def test_ui_shows_exactly_the_changed_service_as_stale(tmp_path, remove_test_images, unique_registry):
    from nexus_assets.cli.pipeline import run_pipeline
    from nexus_assets.core.settings import Settings
    from nexus_assets.synthetic import generate_monorepo

    repo, home, work = tmp_path / "repo", tmp_path / "home", tmp_path / "work"
    generate_monorepo(repo, 2)
    env = {"PATH": "/usr/bin:/bin", "DAGSTER_HOME": str(home), "NEXUS_REPO": str(repo), "NEXUS_WORKDIR": str(work),
           "REGISTRY": unique_registry}
    import os

    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        assert run_pipeline(Settings(repo=repo, workdir=work, registry=unique_registry, version="1.0.0",
                                     max_parallel=2)).ok
    finally:
        os.environ.pop("DAGSTER_HOME") if previous is None else os.environ.__setitem__("DAGSTER_HOME", previous)

    port = _free_port()
    proc = _start_webserver(env, port)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(url + "/server_info", timeout=2)
                break
            except OSError:
                time.sleep(1)
        before = _stale_status(url)
        assert before["image/node-svc-001"] == "FRESH" and before["image/node-svc-002"] == "FRESH", before

        (repo / "services" / "node-svc-002" / "server.js").open("a").write("\n// changed\n")
        # Observing the sources (what the sensor does every 30 s, and nexus-agent before a run)
        # records the change; the UI reads Dagster's verdict from the same instance.
        status = subprocess.run([str(Path(sys.executable).parent / "nexus-agent"), "status"], env=env,
                                capture_output=True, text=True, timeout=120)
        assert "node-svc-002" in status.stdout and "source/node-svc-002 has a new data version" in status.stdout
        after = _stale_status(url)
        assert after["image/node-svc-002"] == "STALE", after
        assert after["image/node-svc-001"] == "FRESH", after
    finally:
        proc.terminate()
        proc.wait(timeout=30)
