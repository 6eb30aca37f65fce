"""The UI's "materialize stale" (automation/materialize_stale.py) through the real webserver on
loopback, asked over GraphQL as the sensor page asks: "Preview tick result" (sensorDryRun), then
"Apply requests & commit tick result" (launchMultipleRuns, with the parameters the page builds
from each request). The launched run selects exactly what the planner selects for the same state,
release included, where Dagster's own staleness (the asset graph's "Materialize unsynced") sees
nothing due."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import dagster as dg
import pytest

from nexus_assets.core.keys import RELEASE_KEYS, WORKSPACE
from nexus_assets.core.plan import plan_run
from nexus_assets.definitions import build_definitions
from nexus_assets.resources import docker_client
from nexus_assets.target.services import build_services
from tests.conftest import free_port, run_finished

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LOCATION = {"repositoryLocationName": "nexus_assets", "repositoryName": "__repository__"}
pytestmark = [pytest.mark.docker, pytest.mark.slow]

PREVIEW = """mutation($selector: SensorSelector!, $cursor: String) { sensorDryRun(selectorData: $selector, cursor: $cursor) {
  __typename ... on PythonError { message }
  ... on DryRunInstigationTick { evaluationResult { skipReason error { message }
    runRequests { runConfigYaml jobName tags { key value } assetSelection { path }
                  assetChecks { name assetKey { path } } } } } } }"""
APPLY = """mutation($params: [ExecutionParams!]!) { launchMultipleRuns(executionParamsList: $params) {
  __typename ... on PythonError { message }
  ... on LaunchMultipleRunsResult { launchMultipleRunsResult { __typename
    ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
    ... on InvalidSubsetError { message } ... on RunConfigValidationInvalid { errors { message } } } } } }"""
STALE_STATUS = "{ assetNodes { assetKey { path } staleStatus isMaterializable } }"


def _graphql(url: str, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(url + "/graphql", data=json.dumps({"query": query, "variables": variables or {}})
                                     .encode(), headers={"Content-Type": "application/json"})
    try:
        answer = json.loads(urllib.request.urlopen(request, timeout=120).read())
    except urllib.error.HTTPError as exc:  # the webserver's own words, not just "500"
        pytest.fail(f"GraphQL answered {exc.code}: {exc.read().decode(errors='replace')[:3000]}")
    assert "errors" not in answer, answer["errors"]
    return answer["data"]


def _wait_for_assets(url: str, timeout: float = 120) -> list[dict]:
    """The asset nodes, once the webserver answers and the code location has loaded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            nodes = _graphql(url, STALE_STATUS)["assetNodes"]
            if nodes:
                return nodes
        except OSError:
            pass
        time.sleep(1)
    pytest.fail(f"the webserver showed no asset within {timeout:.0f} s")


def _preview(url: str) -> dict:
    # the page sends the sensor's cursor, empty for this one (it keeps none)
    tick = _graphql(url, PREVIEW, {"selector": {**LOCATION, "sensorName": "materialize_stale"}, "cursor": ""})
    tick = tick["sensorDryRun"]
    assert tick["__typename"] == "DryRunInstigationTick", tick
    result = tick["evaluationResult"]
    assert result["error"] is None, result["error"]
    return result


def _apply(url: str, request: dict) -> str:
    """Launch one request as the page's button does (ui-core's buildExecutionParamsListSensor)."""
    params = {"runConfigData": (request["runConfigYaml"] or "").strip() or "{}", "mode": "default",
              "selector": {**LOCATION, "jobName": request["jobName"], "assetSelection": request["assetSelection"] or [],
                           "assetCheckSelection": request["assetChecks"] or []},
              "executionMetadata": {"tags": request["tags"]}}
    launched = _graphql(url, APPLY, {"params": [params]})["launchMultipleRuns"]
    assert launched["__typename"] == "LaunchMultipleRunsResult", launched
    [run] = launched["launchMultipleRunsResult"]
    assert run["__typename"] == "LaunchRunSuccess", run
    return str(run["run"]["runId"])


def test_the_ui_launches_exactly_the_planners_run(built, tmp_path):
    repo, settings, instance = built
    # A change no image is made from: the prepare steps, the steps after the images and the
    # release are due (the repository content changed), and Dagster's staleness shows none of it.
    (repo / "docs" / "note.md").write_text("a note\n")
    graph = build_definitions(settings).resolve_asset_graph()  # the code location's graph
    client = docker_client()
    try:
        plan = plan_run(graph, instance, settings, build_services(settings), client)
    finally:
        client.close()
    assert not plan.images and WORKSPACE in plan.selection and set(RELEASE_KEYS) <= set(plan.selection), plan
    checks = {c for c in graph.asset_check_keys if c.asset_key in set(plan.selection)}  # what nexus-agent runs
    assert checks

    home = Path(os.environ["DAGSTER_HOME"])  # the built run's instance (the `built` fixture)
    # No daemon here: the webserver launches the run itself, as `dagster dev` would through its daemon.
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\nrun_coordinator:\n  module: "
                                       "dagster._core.run_coordinator\n  class: DefaultRunCoordinator\n")
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(tmp_path), "DAGSTER_HOME": str(home),
           "NEXUS_REPO": str(repo), "NEXUS_WORKDIR": str(settings.workdir), "REGISTRY": settings.registry,
           "VERSION": settings.version,
           **{k: v for k, v in os.environ.items() if k in ("REGISTRY_USERNAME", "REGISTRY_PASSWORD", "DOCKER_HOST")}}
    port = free_port()
    with open(tmp_path / "webserver.log", "w") as log:
        server = subprocess.Popen([str(BIN / "dagster-webserver"), "-w", "workspace.yaml", "-h", "127.0.0.1",
                                   "-p", str(port)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        unsynced = {"/".join(n["assetKey"]["path"]) for n in _wait_for_assets(url)
                    if n["isMaterializable"] and n["staleStatus"] in ("STALE", "MISSING")}
        # The built-in button misses the changed repository, and would pick the staging deploy.
        assert WORKSPACE.to_user_string() not in unsynced and "staging_deployment" in unsynced, unsynced

        preview = _preview(url)
        [request] = preview["runRequests"]
        requested = [dg.AssetKey(k["path"]) for k in request["assetSelection"]]
        assert requested == plan.selection
        assert {dg.AssetCheckKey(dg.AssetKey(c["assetKey"]["path"]), c["name"]) for c in request["assetChecks"]} == checks
        tags = {t["key"]: t["value"] for t in request["tags"]}
        assert tags["nexus/origin"] == "ui" and tags["nexus/version"] == settings.version and tags["nexus/invocation"]
        assert tags["nexus/reason"] == "the repository content changed"

        run = instance.get_run_by_id(_apply(url, request))
        assert run is not None and run.job_name == "nexus_pipeline"
        assert run.asset_selection == set(plan.selection)
        assert run.asset_check_selection == checks
        assert run.tags["nexus/origin"] == "ui" and run.tags["nexus/invocation"] == tags["nexus/invocation"]
        busy = _preview(url)  # a second click while the run is under way launches nothing
        assert not busy["runRequests"] and run.run_id in busy["skipReason"], busy
        run = run_finished(instance, run.run_id)
        assert run.status == dg.DagsterRunStatus.SUCCESS, run.status
        made = {r.event_log_entry.dagster_event.asset_key for r in instance.get_records_for_run(
            run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records}
        assert WORKSPACE in made and not any(k.path[0] == "image" for k in made), made

        again = _preview(url)  # what the run did is what was due: nothing is left
        assert not again["runRequests"] and "nothing is due" in again["skipReason"], again
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        finally:  # and what it started (its code server), by the group this test made for it
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGTERM)
