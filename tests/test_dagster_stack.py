"""Dagster in containers, for real: scripts/dagster_stack.sh brings up PostgreSQL, the code server,
the webserver and the daemon from the code-location image; a nexus_pipeline run launched through
the webserver's GraphQL API runs in a container of its own (DockerRunLauncher), builds and pushes
an image, and its events land in PostgreSQL; `down` leaves no container behind."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

import psycopg2
import pytest

from nexus_assets.testrepos.synthetic import generate_monorepo
from tests.conftest import wait_until

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.docker, pytest.mark.slow]

SERVICE = "node-svc-001"  # generate_monorepo(path, 1): one Node.js service
SELECTION = [["workspace"], ["discovery_parsed"], ["discrepancy_report"], ["scaffolded_services"],
             ["image", SERVICE], ["pushed", SERVICE]]
LAUNCH = """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename
  ... on LaunchRunSuccess { run { runId } } ... on PythonError { message stack }
  ... on InvalidSubsetError { message } ... on RunConfigValidationInvalid { errors { message } } } }"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(url: str, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(url + "/graphql", data=json.dumps({"query": query, "variables": variables or {}}).encode(),
                                     headers={"Content-Type": "application/json"})
    answer = json.loads(urllib.request.urlopen(request, timeout=60).read())
    assert "errors" not in answer, answer["errors"]
    return answer["data"]


def _small_repo(path: Path) -> None:
    """One Node.js service, a git checkout as a real target is."""
    generate_monorepo(path, 1)
    for args in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one service"]):
        subprocess.run(["git", "-C", str(path), *args], check=True)
    subprocess.run(["chown", "-R", "10001", str(path)], check=True)  # the containers' user


@pytest.fixture(scope="module")
def stack(tmp_path_factory, docker_client, session_registry):
    """The stack up on free ports over a fresh code-location image, for this module's tests:
    (url, env); down, the image and the images the runs built removed afterwards."""
    image = f"nexus-assets-stack-test:{uuid.uuid4().hex[:8]}"
    registry = f"{session_registry.address}/test-{uuid.uuid4().hex[:8]}"
    built = subprocess.run(["bash", "scripts/build_image.sh", image], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert built.returncode == 0, built.stdout + built.stderr
    data = tmp_path_factory.mktemp("stack")
    _small_repo(data / "repo")
    env = {**os.environ, "NEXUS_STACK_PORT": str(_free_port()), "NEXUS_STACK_GRPC_PORT": str(_free_port()),
           "DAGSTER_PG_PORT": str(_free_port()), "NEXUS_EVIDENCE_PORT": str(_free_port()), "NEXUS_STACK_DATA": str(data),
           "NEXUS_STACK_PROJECT": f"nexusstacktest{uuid.uuid4().hex[:8]}", "NEXUS_STACK_IMAGE": image,
           "NEXUS_REPO": str(data / "repo"), "REGISTRY": registry, "VERSION": "1.0.0"}
    try:
        up = subprocess.run(["bash", "scripts/dagster_stack.sh", "up"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=600)
        assert up.returncode == 0, up.stdout + up.stderr
        url = f"http://127.0.0.1:{env['NEXUS_STACK_PORT']}"
        assert f"Dagster webserver: {url}" in up.stdout
        yield url, env
    finally:
        down = subprocess.run(["bash", "scripts/dagster_stack.sh", "down"], cwd=ROOT, env=env, capture_output=True,
                              text=True, timeout=300)
        left = docker_client.containers.list(all=True, filters={"label": f"com.docker.compose.project={env['NEXUS_STACK_PROJECT']}"})
        runs = docker_client.containers.list(all=True, filters={"label": f"io.nexus-assets.stack={env['NEXUS_STACK_PROJECT']}"})
        docker_client.images.remove(image, force=True)
        for listed in docker_client.api.images():
            for tag in listed.get("RepoTags") or []:
                if tag.startswith(registry + "/"):
                    with contextlib.suppress(Exception):
                        docker_client.api.remove_image(tag, force=True)
        assert down.returncode == 0, down.stdout + down.stderr
        assert not left and not runs, f"left behind: {[c.name for c in left + runs]}"


def _run_container(docker_client, run_id: str):
    found = docker_client.containers.list(all=True, filters={"label": f"dagster/run_id={run_id}"})
    return found[0] if found else None


def _finished(url: str, run_id: str) -> str | None:
    run = _graphql(url, "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }", {"id": run_id})
    status = run["runOrError"]["status"]
    return status if status in ("SUCCESS", "FAILURE", "CANCELED") else None


def _pg_events(env: dict, run_id: str) -> list[tuple[str, str | None]]:
    password = (Path(env["NEXUS_STACK_DATA"]) / ".pg-password").read_text().strip()
    with psycopg2.connect(host="127.0.0.1", port=int(env["DAGSTER_PG_PORT"]), user="dagster", password=password,
                          dbname="dagster") as conn, conn.cursor() as cur:
        cur.execute("SELECT dagster_event_type, asset_key FROM event_logs WHERE run_id = %s", (run_id,))
        return cur.fetchall()


def test_a_run_launched_through_graphql_builds_an_image_in_its_own_container(stack, docker_client):
    url, env = stack
    info = _graphql(url, "{ instance { runLauncher { name } info } }")["instance"]
    assert info["runLauncher"]["name"] == "DockerRunLauncher"
    assert "PostgresRunStorage" in info["info"] and "PostgresEventLogStorage" in info["info"]

    def loaded():  # the code location loads from the code server after the webserver answers
        nodes = _graphql(url, "{ assetNodes { assetKey { path } } }")["assetNodes"]
        return [n for n in nodes if n["assetKey"]["path"] == ["image", SERVICE]]
    wait_until(loaded, 120, "image/py-svc-001 in the webserver's asset graph")

    params = {"selector": {"repositoryLocationName": "nexus_assets", "repositoryName": "__repository__",
                           "jobName": "nexus_pipeline", "assetSelection": [{"path": p} for p in SELECTION]},
              "runConfigData": {}, "executionMetadata": {"tags": [{"key": "nexus/origin", "value": "ui"}]}}
    launched = _graphql(url, LAUNCH, {"p": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]

    # The daemon dequeues it and the launcher starts a container of the code-location image for it.
    run_container = wait_until(lambda: _run_container(docker_client, run_id), 120, f"a container for run {run_id}")
    assert run_container.image.tags == [env["NEXUS_STACK_IMAGE"]]
    assert run_container.labels["io.nexus-assets.stack"] == env["NEXUS_STACK_PROJECT"]
    assert run_container.attrs["HostConfig"]["NetworkMode"] == "host"

    status = wait_until(lambda: _finished(url, run_id), 600, f"run {run_id} to finish", every=3)
    logs = run_container.logs(tail=60).decode(errors="replace")
    assert status == "SUCCESS", logs

    def exited() -> bool:  # the run worker records the run's success, then cleans up and exits
        run_container.reload()
        return run_container.status == "exited"
    wait_until(exited, 60, f"the container of run {run_id} to exit", every=0.5)
    assert run_container.attrs["State"]["ExitCode"] == 0, run_container.logs(tail=60).decode(errors="replace")

    # The image the run built, under the release tag, in the engine and pushed.
    tag = f"{env['REGISTRY']}/nexus/{SERVICE}:1.0.0"
    assert docker_client.images.get(tag)
    # The run's events, in the stack's PostgreSQL.
    events = _pg_events(env, run_id)
    types = {t for t, _ in events}
    assert {"PIPELINE_START", "PIPELINE_SUCCESS", "ASSET_MATERIALIZATION"} <= types, types
    materialized = {tuple(json.loads(k)) for t, k in events if t == "ASSET_MATERIALIZATION" and k}
    assert ("image", SERVICE) in materialized and ("pushed", SERVICE) in materialized, materialized
    # The build log opens through the evidence server beside the webserver, at the URL the image records.
    evidence = f"http://127.0.0.1:{env['NEXUS_EVIDENCE_PORT']}"
    with urllib.request.urlopen(f"{evidence}/reports/build_{SERVICE}.log", timeout=10) as response:
        assert response.status == 200 and response.read()


SENSOR = """mutation($s: SensorSelector!) { startSensor(sensorSelector: $s) { __typename
  ... on Sensor { sensorState { status } } ... on PythonError { message } } }"""
SENSOR_RUNS = """{ runsOrError(filter: {tags: [{key: "nexus/origin", value: "sensor"}]}) {
  ... on Runs { results { runId status tags { key value } } } } }"""


def test_the_repository_sensor_runs_in_a_container_after_a_change(stack, docker_client):
    url, env = stack
    selector = {"repositoryLocationName": "nexus_assets", "repositoryName": "__repository__",
                "sensorName": "repo_change_sensor"}
    started = _graphql(url, SENSOR, {"s": selector})["startSensor"]
    assert started["__typename"] == "Sensor", started
    # Whatever its first tick asks for (it may find work the GraphQL run left), wait until it is quiet.
    def sensor_runs() -> list[dict]:
        return _graphql(url, SENSOR_RUNS)["runsOrError"]["results"]
    time.sleep(35)  # one tick (every 30 s)
    wait_until(lambda: all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in sensor_runs()), 600,
               "the sensor's first runs to finish", every=5)
    before = {r["runId"] for r in sensor_runs()}

    source = Path(env["NEXUS_REPO"]) / "services" / SERVICE / "server.js"
    source.write_text(source.read_text() + "\n// changed\n")
    new = wait_until(lambda: [r for r in sensor_runs() if r["runId"] not in before], 180,
                     "a sensor run after the change", every=5)
    run_id = new[0]["runId"]
    assert SERVICE in {t["key"]: t["value"] for t in new[0]["tags"]}.get("nexus/reason", "")
    assert wait_until(lambda: _run_container(docker_client, run_id), 120, f"a container for sensor run {run_id}")
    wait_until(lambda: _finished(url, run_id), 900, f"sensor run {run_id} to finish", every=5)
    materialized = {tuple(json.loads(k)) for t, k in _pg_events(env, run_id) if t == "ASSET_MATERIALIZATION" and k}
    assert ("image", SERVICE) in materialized, materialized
