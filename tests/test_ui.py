"""The Dagster UI serves the graph: the real webserver on loopback, asked over GraphQL as the
UI itself asks, and the page rendered by the real (headless) Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port, run_finished

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow



@pytest.fixture(scope="module")
def webserver(tmp_path_factory):
    home = tmp_path_factory.mktemp("dagster_home")
    port = free_port()
    env = {"PATH": "/usr/bin:/bin", "DAGSTER_HOME": str(home), "NEXUS_WORKDIR": str(home / "work")}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url)
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
        if nodes:
            break
        if time.monotonic() > deadline:
            pytest.fail("the code location showed no asset within 60 s")
        time.sleep(2)
    keys = {"/".join(n["assetKey"]["path"]) for n in nodes}
    assert {"workspace", "discovery_parsed", "discrepancy_report", "scaffolded_services", "e2e_tests",
            "artifacts_manifest"} <= keys
    assert "image/backend-api" in keys and "image/users" in keys
    assert {n["groupName"] for n in nodes} >= {"prepare", "images", "release"}


def test_asset_graph_page_renders_in_chromium(webserver, tmp_path):
    assert shutil.which("chromium"), "Debian chromium is installed by scripts/bootstrap.sh"
    done = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path}",
         "--virtual-time-budget=20000", "--dump-dom", webserver + "/assets"],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "discovery_parsed" in done.stdout and "artifacts_manifest" in done.stdout


def _wait_until_up(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/server_info", timeout=2)
            return
        except OSError:
            time.sleep(1)
    pytest.fail(f"dagster-webserver did not answer within {timeout:.0f} s")


def _start_webserver(env: dict, port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def _stale_status(url: str) -> dict[str, str]:
    deadline = time.monotonic() + 90
    while True:
        nodes = _graphql(url, "{ assetNodes { assetKey { path } staleStatus } }")["assetNodes"]
        if nodes:
            return {"/".join(n["assetKey"]["path"]): n["staleStatus"] for n in nodes}
        if time.monotonic() > deadline:
            pytest.fail("the code location showed no asset within 90 s")
        time.sleep(2)


LAUNCH = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on InvalidSubsetError { message } ... on RunConfigValidationInvalid { errors { message } } } }"""


def _launch(url: str, assets: list[str], checks: list[tuple[str, str]] | None = None) -> str:
    """Launch nexus_pipeline over assets (and checks) as the UI's Materialize button does."""
    selector = {"repositoryLocationName": "nexus_assets", "repositoryName": "__repository__",
                "jobName": "nexus_pipeline", "assetSelection": [{"path": a.split("/")} for a in assets]}
    if checks is not None:
        selector["assetCheckSelection"] = [{"assetKey": {"path": a.split("/")}, "name": n} for a, n in checks]
    params = {"selector": selector, "executionMetadata": {"tags": [{"key": "nexus/origin", "value": "ui"}]}}
    request = urllib.request.Request(url + "/graphql", data=json.dumps({"query": LAUNCH, "variables": {"params": params}}).encode(),
                                     headers={"Content-Type": "application/json"})
    launched = json.loads(urllib.request.urlopen(request, timeout=60).read())["data"]["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    return launched["run"]["runId"]


@pytest.mark.docker
def test_ui_shows_exactly_the_changed_service_as_stale_and_materializes_only_it(tmp_path, remove_test_images,
                                                                                unique_registry):
    import os

    import dagster as dg

    from nexus_assets.cli.pipeline import run_pipeline
    from nexus_assets.core.settings import Settings
    from nexus_assets.testrepos.synthetic import generate_monorepo

    repo, home, work = tmp_path / "repo", tmp_path / "home", tmp_path / "work"
    generate_monorepo(repo, 2)
    env = {"PATH": "/usr/bin:/bin", "DAGSTER_HOME": str(home), "NEXUS_REPO": str(repo), "NEXUS_WORKDIR": str(work),
           "REGISTRY": unique_registry,
           **{k: v for k, v in os.environ.items() if k in ("REGISTRY_USERNAME", "REGISTRY_PASSWORD")}}
    previous = os.environ.get("DAGSTER_HOME")
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        assert run_pipeline(Settings(repo=repo, workdir=work, registry=unique_registry, version="1.0.0",
                                     max_parallel=2)).ok
        # The webserver launches runs itself (no daemon here): the immediate coordinator.
        (home / "dagster.yaml").write_text(
            "telemetry:\n  enabled: false\nrun_coordinator:\n  module: dagster._core.run_coordinator\n"
            "  class: DefaultRunCoordinator\n")
        instance = dg.DagsterInstance.get()
        port = free_port()
        proc = _start_webserver(env, port)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(url)
            before = _stale_status(url)
            assert before["image/node-svc-001"] == "FRESH" and before["image/node-svc-002"] == "FRESH", before

            (repo / "services" / "node-svc-002" / "server.js").open("a").write("\n// changed\n")
            # Observing the sources (what the sensor does every 30 s, and nexus-agent before a run)
            # records the change; the UI reads Dagster's verdict from the same instance.
            status = subprocess.run([str(Path(sys.executable).parent / "nexus-agent"), "status"], env=env,
                                    capture_output=True, text=True, timeout=120)
            assert "source/node-svc-002 has a new data version" in status.stdout, status.stdout + status.stderr
            after = _stale_status(url)
            assert after["image/node-svc-002"] == "STALE", after
            assert after["image/node-svc-001"] == "FRESH", after

            # "Materialize stale": the UI launches the stale assets; exactly that image is built.
            stale = sorted(k for k, v in after.items() if v == "STALE")
            run = run_finished(instance, _launch(url, stale))
            assert run.status == dg.DagsterRunStatus.SUCCESS, run.status
            built = {r.event_log_entry.dagster_event.asset_key.to_user_string() for r in instance.get_records_for_run(
                run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records}
            assert {k for k in built if k.startswith("image/")} == {"image/node-svc-002"}
            assert _stale_status(url)["image/node-svc-002"] == "FRESH"

            # A check executed alone re-runs that stage against the recorded image.
            run = run_finished(instance, _launch(url, [], checks=[("image/node-svc-001", "unit")]))
            evaluations = instance.get_records_for_run(
                run.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
            assert len(evaluations) == 1
            evaluation = evaluations[0].event_log_entry.dagster_event.event_specific_data
            assert evaluation.passed and evaluation.check_name == "unit"
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    finally:
        os.environ.pop("DAGSTER_HOME") if previous is None else os.environ.__setitem__("DAGSTER_HOME", previous)
