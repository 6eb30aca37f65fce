"""One audited run for the browser tests: the pipeline on a small generated git repository, the
evidence file server when this checkout has one, the Dagster webserver on that run's instance,
and Debian's Chromium driven by Playwright."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import remove_registry_images

from .auditor import CHROMIUM, Auditor, launch

ROOT = Path(__file__).resolve().parents[2]
SERVICE_COUNT = 1  # one image to follow keeps the run short; the generator names it node-svc-001
EVIDENCE_SERVER = "nexus_assets.automation.evidence_server"  # the evidence file server, where it exists


@dataclass
class AuditedRun:
    repo: Path
    workdir: Path
    home: Path
    service: str
    commit: str
    url: str  # the webserver
    evidence_url: str  # the evidence server, "" where this checkout has none


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=Nexus Test", "-c", "user.email=test@nexus.invalid",
                           *args], capture_output=True, text=True, check=True).stdout.strip()


def _wait(what: str, ready, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            if ready():
                return
        time.sleep(1)
    pytest.fail(f"{what} within {timeout:.0f} s")


def _asset_count(url: str) -> int:
    request = urllib.request.Request(url + "/graphql", data=json.dumps({"query": "{ assetNodes { id } }"}).encode(),
                                     headers={"Content-Type": "application/json"})
    return len(json.loads(urllib.request.urlopen(request, timeout=30).read())["data"]["assetNodes"])


@contextlib.contextmanager
def _process(args: list[str], env: dict, log: Path):
    with open(log, "w") as out:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def audited_run(tmp_path_factory, session_registry):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: scripts/bootstrap.sh installs Debian's chromium package")
    pytest.importorskip("playwright.sync_api", reason="the playwright package (pyproject's dev extra) is not installed")
    from nexus_assets.cli.pipeline import run_pipeline
    from nexus_assets.core.settings import Settings
    from nexus_assets.resources import docker_client
    from nexus_assets.testrepos.synthetic import generate_monorepo

    root = tmp_path_factory.mktemp("audited")
    repo, work = root / "repo", root / "work"
    service = generate_monorepo(repo, SERVICE_COUNT)[0]
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "the audited commit")
    commit = _git(repo, "rev-parse", "HEAD")
    registry = f"{session_registry.address}/ui-{uuid.uuid4().hex[:8]}"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(root), "DAGSTER_HOME": str(work / ".dagster_home"),
           "NEXUS_REPO": str(repo), "NEXUS_WORKDIR": str(work), "REGISTRY": registry, "VERSION": "1.0.0"}
    (work / ".dagster_home").mkdir(parents=True)
    with contextlib.ExitStack() as stack:
        evidence_url = ""
        if importlib.util.find_spec(EVIDENCE_SERVER) is not None:
            port = _free_port()
            evidence_url = env["NEXUS_EVIDENCE_URL"] = f"http://127.0.0.1:{port}"
            stack.enter_context(_process([sys.executable, "-m", EVIDENCE_SERVER, "--workdir", str(work), "--port",
                                          str(port)], env, root / "evidence.log"))
            _wait("the evidence server did not answer", lambda: urllib.request.urlopen(evidence_url, timeout=2), 30)
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update({k: v for k, v in env.items() if k not in ("PATH", "HOME")})
        try:
            settings = Settings.from_env(repo=repo, workdir=work, registry=registry, version="1.0.0", max_parallel=2)
            summary = run_pipeline(settings)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        assert summary.ok, "the audited run failed: see its lines above"
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        stack.enter_context(_process([str(Path(sys.executable).parent / "dagster-webserver"), "-w", "workspace.yaml",
                                      "-h", "127.0.0.1", "-p", str(port)], env, root / "webserver.log"))
        _wait(f"dagster-webserver showed no asset (see {root / 'webserver.log'})", lambda: _asset_count(url) > 0, 180)
        try:
            yield AuditedRun(repo, work, work / ".dagster_home", service, commit, url, evidence_url)
        finally:
            client = docker_client()
            remove_registry_images(client, registry)
            client.close()


@pytest.fixture(scope="module")
def browser(audited_run, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = launch(playwright, tmp_path_factory.mktemp("chromium-profile"))
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def auditor(browser, audited_run, request):
    page = browser.new_page()
    try:
        yield Auditor(page, audited_run.url, request.node.name.removeprefix("test_"))
    finally:
        page.close()
