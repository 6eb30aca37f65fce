"""Step F stages on the real engine: lint (hadolint + syntax), unit tests inside the image,
integration against the running container, e2e with docker-compose."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import shutil
import time
import uuid
from pathlib import Path

import pytest

from nexus_assets.core.settings import SAMPLE_REPO
from nexus_assets.target.services import find_services
from nexus_assets.testing.cleanup import TEST_LABEL
from nexus_assets.verify import sandbox
from nexus_assets.verify import service_tests as st
from nexus_assets.verify.service_tests import (
    StageResult,
    run_e2e,
    run_integration,
    run_lint,
    run_unit,
    run_unit_and_integration,
    stage_summary,
)

NODE, PYTHON = "backend-api", "analytics"


def _services(repo: Path) -> dict:
    return {s.name: s for s in find_services(repo)}


def _spec_paths(service) -> list[str]:
    spec = json.loads((service.path / "openapi.json").read_text())
    return [p for p, ops in spec["paths"].items() if "get" in ops]


def _build(client, service, registry: str) -> str:
    image, _ = client.images.build(path=str(service.path), tag=f"{registry}/{service.image_repo}:t", rm=True)
    return image.id


def _gone(client, container_id: str) -> bool:
    import docker.errors

    try:
        client.containers.get(container_id)
    except docker.errors.NotFound:
        return True
    return False


def _network_gone(client, name: str) -> bool:
    return name.startswith("nexus-test-") and client.networks.list(names=[name]) == []


@pytest.fixture(autouse=True)
def no_test_containers_left(request):
    """After every test that uses the engine: no container or network labelled
    io.nexus-assets.test=1 that this process started during the test is still there (compared
    with before, and other processes' left out, so that a concurrent run elsewhere on the
    engine cannot make this test fail)."""
    if request.node.get_closest_marker("docker") is None:
        yield
        return
    client = request.getfixturevalue("docker_client")
    me = sandbox.labels(type("S", (), {"name": "", "stage": ""})())[sandbox.OWNER_LABEL]
    ours = lambda labels: (labels or {}).get(sandbox.OWNER_LABEL) == me  # noqa: E731
    label = {"label": f"{TEST_LABEL}=1"}
    listing = lambda: {c["Id"]: c["Names"] for c in client.api.containers(all=True, filters=label)  # noqa: E731
                       if ours(c.get("Labels"))}
    networks = lambda: {n["Id"]: n["Name"] for n in client.api.networks(filters=label) if ours(n.get("Labels"))}  # noqa: E731
    before, networks_before = listing(), networks()
    yield
    left = {cid: name for cid, name in listing().items() if cid not in before}
    assert not left, f"test containers left behind: {left}"
    left = {nid: name for nid, name in networks().items() if nid not in networks_before}
    assert not left, f"test networks left behind: {left}"


@pytest.fixture(scope="module")
def built(docker_client, tmp_path_factory):
    """The sample node and python services, built once for the module; removed afterwards."""
    repo = tmp_path_factory.mktemp("built") / "repo"
    shutil.copytree(SAMPLE_REPO, repo, symlinks=True)
    registry = f"test-{uuid.uuid4().hex[:8]}.local"
    services = _services(repo)
    images = {name: (services[name], _build(docker_client, services[name], registry)) for name in (NODE, PYTHON)}
    yield images
    # Untag rather than delete by id: the build cache may have made our image the parent of
    # another build's image, and the engine refuses to delete a parent.
    for image in docker_client.images.list():
        for tag in image.tags:
            if tag.startswith(registry + "/"):
                with contextlib.suppress(Exception):
                    docker_client.images.remove(tag)


# ---------------------------------------------------------------- lint (no engine needed)

@pytest.mark.parametrize("name", [NODE, PYTHON])
def test_lint_passes_on_sample_service_and_reports_warnings(sample_copy, tmp_path, name):
    service = _services(sample_copy)[name]
    result = run_lint(service, tmp_path / "reports")
    assert result.passed and not result.skipped, result.reason
    assert result.stage == "lint" and result.containers == 0
    assert result.details["hadolint"]["levels"]["error"] == 0
    files = result.details["js_files"] if service.language == "node" else result.details["python_files"]
    assert files >= 2 and result.details["syntax_errors"] == []
    log = Path(result.log_path)
    assert log.name == f"test_results_{name}_lint.log" and "hadolint" in log.read_text()
    # The compile check leaves the service tree (and so its content hash) untouched.
    assert not list(service.path.rglob("__pycache__"))


def test_lint_reports_warnings_without_failing(sample_copy, tmp_path):
    service = _services(sample_copy)[NODE]
    # Shell-form CMD is a DL3025 warning; `cd` in RUN is a DL3003 warning: reported, not failed.
    text = service.dockerfile.read_text().replace('CMD ["node", "server.js"]', "RUN cd /tmp && true\nCMD node server.js")
    service.dockerfile.write_text(text)
    result = run_lint(service, tmp_path / "reports")
    assert result.passed, result.reason
    assert result.details["hadolint"]["levels"]["warning"] == 2 and result.details["hadolint"]["levels"]["error"] == 0
    assert {f["code"] for f in result.details["hadolint"]["findings"]} == {"DL3003", "DL3025"}
    assert "2 warning" in result.reason and "DL3025 warning" in Path(result.log_path).read_text()


def test_lint_fails_on_error_level_hadolint_finding(sample_copy, tmp_path):
    service = _services(sample_copy)[PYTHON]
    text = service.dockerfile.read_text().replace("WORKDIR /app", "WORKDIR app")
    service.dockerfile.write_text(text)
    result = run_lint(service, tmp_path / "reports")
    assert not result.passed and not result.skipped
    assert "DL3000" in result.reason and "error-level" in result.reason
    assert result.details["hadolint"]["levels"]["error"] == 1
    assert "DL3000 error: Use absolute WORKDIR" in Path(result.log_path).read_text()


@pytest.mark.parametrize("name,filename,bad_code", [
    (NODE, "server.js", "const broken = ;\n"),
    (PYTHON, "app.py", "def broken(:\n    pass\n"),
])
def test_lint_fails_on_syntax_error_naming_the_file(sample_copy, tmp_path, name, filename, bad_code):
    service = _services(sample_copy)[name]
    with open(service.path / filename, "a") as handle:
        handle.write("\n" + bad_code)
    result = run_lint(service, tmp_path / "reports")
    assert not result.passed
    assert result.reason == f"syntax errors in {filename}"
    assert [e["file"] for e in result.details["syntax_errors"]] == [filename]
    assert "SyntaxError" in result.details["syntax_errors"][0]["message"]
    assert filename in Path(result.log_path).read_text()


def test_lint_without_dockerfile_fails_clearly(sample_copy, tmp_path):
    folder = sample_copy / "services" / PYTHON
    (folder / "Dockerfile").unlink()
    result = run_lint(_services(sample_copy)[PYTHON], tmp_path / "reports")
    assert not result.passed and "no Dockerfile" in result.reason
    assert Path(result.log_path).is_file()


def test_hadolint_binary_comes_with_the_environment():
    binary = st.hadolint_binary()
    assert binary and Path(binary).is_file()


# ---------------------------------------------------------------- pure helpers

def test_count_tests_reads_node_and_unittest_output():
    assert st.count_tests("# tests 7\n# suites 1\n# pass 6\n# fail 1\n") == {"tests": 7, "pass": 6, "fail": 1}
    assert st.count_tests("ℹ tests 3\nℹ pass 3\nℹ fail 0\n") == {"tests": 3, "pass": 3, "fail": 0}
    assert st.count_tests("....\nRan 8 tests in 0.1s\n\nFAILED (failures=1, errors=2, skipped=1)\n") == {
        "tests": 8, "fail": 3, "skipped": 1, "pass": 4}


def test_spec_get_paths_applies_server_base_and_skips_parameters():
    spec = {"servers": [{"url": "http://127.0.0.1:8000/api/v1"}],
            "paths": {"/items": {"get": {}}, "/items/{id}": {"get": {}}, "/login": {"post": {}}}}
    assert st.spec_get_paths(spec) == (["/api/v1/items"], ["/api/v1/items/{id}"])


@pytest.fixture
def local_http():
    """An HTTP server on 127.0.0.1: /health and /a answer 200, anything else 404."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path in ("/health", "/a") else 404)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.parametrize("language", ["python", "node"])
def test_probe_script_waits_for_health_and_reports_each_path(local_http, language):
    import subprocess

    command = sandbox.INTERPRETERS[language]
    run = lambda *args: subprocess.run(command + list(args), capture_output=True, text=True, timeout=20)  # noqa: E731
    waited = run("wait", local_http, "2")
    assert waited.returncode == 0
    assert sandbox.answers(waited.stdout) == [{"path": "/health", "status": 200, "error": "", "wait": True}]
    # Waiting, then each path once, in one run.
    both = sandbox.answers(run("wait", local_http, "2", "/health", "/missing").stdout)
    assert [(a["path"], a["status"], a.get("wait")) for a in both] == [
        ("/health", 200, True), ("/health", 200, None), ("/missing", 404, None)]
    got = sandbox.answers(run("get", local_http, "5", "/health", "/a", "/missing").stdout)
    assert [(a["path"], a["status"]) for a in got] == [("/health", 200), ("/a", 200), ("/missing", 404)]
    started = time.monotonic()
    refused = sandbox.answers(run("wait", "http://127.0.0.1:1", "0.6").stdout)
    assert 0.5 < time.monotonic() - started < 10  # polled until its time was up, then said why
    assert refused[0]["status"] is None and refused[0]["error"]
    assert len(sandbox.answers(run("wait", "http://127.0.0.1:1", "0.2", "/a").stdout)) == 1  # no answer: no GETs


def test_healthcheck_command_from_image_config():
    assert sandbox.healthcheck_command({}) is None
    assert sandbox.healthcheck_command({"Healthcheck": {"Test": ["NONE"]}}) is None
    assert sandbox.healthcheck_command({"Healthcheck": {"Test": ["CMD", "node", "-e", "x"]}}) == ["node", "-e", "x"]
    assert sandbox.healthcheck_command({"Healthcheck": {"Test": ["CMD-SHELL", "curl -f x || exit 1"]}}) == [
        "/bin/sh", "-c", "curl -f x || exit 1"]
    assert sandbox.missing_executable(127, 'exec: "node": executable file not found in $PATH')
    assert not sandbox.missing_executable(1, "executable file not found")


def test_stage_summary_counts_and_lists_failures():
    def r(service, stage, passed, skipped=False, containers=0):
        return StageResult(service, stage, passed, skipped, "why" if not passed else "ok", 1.0, f"/r/{service}", {}, containers)

    summary = stage_summary([r("a", "lint", True), r("a", "unit", True, containers=1), r("b", "unit", False, containers=1),
                             r("b", "integration", True, skipped=True), r("a", "integration", True, containers=1)])
    assert list(summary["stages"]) == ["lint", "unit", "integration"]
    assert summary["stages"]["unit"] == {"passed": 1, "failed": 1, "skipped": 0}
    assert summary["stages"]["integration"] == {"passed": 1, "failed": 0, "skipped": 1}
    assert summary["total"] == {"passed": 3, "failed": 1, "skipped": 1}
    assert summary["containers"] == 3 and summary["services"] == 2 and summary["all_passed"] is False
    assert summary["failures"] == [{"service": "b", "stage": "unit", "reason": "why", "log_path": "/r/b"}]


# ---------------------------------------------------------------- unit and integration on the engine

@pytest.mark.docker
@pytest.mark.parametrize("name", [NODE, PYTHON])
def test_healthy_sample_passes_unit_and_integration(docker_client, built, tmp_path, name):
    service, image_id = built[name]
    unit = run_unit(docker_client, service, image_id, tmp_path)
    assert unit.passed and not unit.skipped, unit.reason
    assert unit.details["exit_code"] == 0 and unit.containers == 1
    assert unit.details["tests"]["tests"] >= 5 and unit.details["tests"]["fail"] == 0
    assert Path(unit.log_path).name == f"test_results_{name}_unit.log"

    integ = run_integration(docker_client, service, image_id, tmp_path)
    assert integ.passed, integ.reason
    assert integ.details["health"] == "healthy" and integ.containers == 1
    checked = {e["path"]: e["status"] for e in integ.details["endpoints"]}
    assert set(checked) == {"/health", *_spec_paths(service)} and len(checked) >= 5
    assert all(status == 200 for status in checked.values())
    log = Path(integ.log_path).read_text()
    assert "GET /health -> 200" in log
    for container_id in (unit.details["container_id"], integ.details["container_id"]):
        assert _gone(docker_client, container_id)
    # No infrastructure, so no network: probed from inside its container, off 127.0.0.1.
    assert integ.details["network"] is None and integ.details["address"].startswith(f"{sandbox.LOOPBACK}:")


@pytest.mark.docker
@pytest.mark.parametrize("name", [NODE, PYTHON])
def test_one_container_serves_unit_and_integration(docker_client, built, tmp_path, name):
    service, image_id = built[name]
    unit, integ = run_unit_and_integration(docker_client, service, image_id, tmp_path)
    assert unit.passed and not unit.skipped, unit.reason
    assert unit.details["exit_code"] == 0 and unit.details["tests"]["fail"] == 0 and unit.details["tests"]["tests"] >= 5
    assert integ.passed, integ.reason
    # One container in all, started by the unit stage and probed by the integration stage.
    assert unit.containers == 1 and integ.containers == 0 and integ.details["shared_container"] is True
    assert unit.details["container_id"] == integ.details["container_id"]
    assert integ.details["health"] == "healthy" and integ.details["probe"].endswith("inside the service container")
    checked = {e["path"]: e["status"] for e in integ.details["endpoints"]}
    assert set(checked) == {"/health", *_spec_paths(service)} and all(s == 200 for s in checked.values())
    assert Path(unit.log_path).name == f"test_results_{name}_unit.log" and "docker exec" in Path(unit.log_path).read_text()
    assert "GET /health -> 200" in Path(integ.log_path).read_text()
    assert _gone(docker_client, unit.details["container_id"])
    assert integ.details["network"] is None and "no network" in Path(unit.log_path).read_text()


@pytest.mark.docker
def test_service_listening_on_127_0_0_1_alone_fails_integration(docker_client, sample_copy, unique_registry,
                                                                remove_test_images, tmp_path):
    """Without a network the probes run inside the container; they call it off 127.0.0.1, so a
    service that nothing outside its container could reach does not pass (its HEALTHCHECK,
    which calls 127.0.0.1, does)."""
    service = _services(sample_copy)[PYTHON]
    text = service.dockerfile.read_text().replace("COPY . .", "COPY . .\nENV HOST=127.0.0.1")
    service.dockerfile.write_text(text)
    unit, integ = run_unit_and_integration(docker_client, service, _build(docker_client, service, unique_registry),
                                           tmp_path, timeout=8)
    assert unit.passed, unit.reason
    assert not integ.passed and integ.reason == "timed out after 8s waiting for GET /health to answer", integ.reason
    assert integ.details["endpoints"] == []


@pytest.mark.docker
def test_hung_unit_run_in_the_shared_container_fails_the_unit_stage_alone(docker_client, sample_copy, unique_registry,
                                                                           remove_test_images, tmp_path):
    service = _services(sample_copy)[PYTHON]
    (service.path / "tests" / "test_hang.py").write_text(
        "import time, unittest\n\nclass Hang(unittest.TestCase):\n"
        "    def test_hangs(self):\n        print('about to hang', flush=True)\n        time.sleep(600)\n")
    image_id = _build(docker_client, service, unique_registry)
    started = time.monotonic()
    unit, integ = run_unit_and_integration(docker_client, service, image_id, tmp_path, timeout=8)
    assert time.monotonic() - started < 2 * 8 + 10
    assert not unit.passed and unit.reason == "timed out after 8s"
    assert "about to hang" in Path(unit.log_path).read_text()
    assert integ.passed, integ.reason
    assert _gone(docker_client, unit.details["container_id"])


@pytest.mark.docker
def test_service_that_crashes_still_gets_its_unit_tests_run(docker_client, sample_copy, unique_registry,
                                                            remove_test_images, tmp_path):
    service = _services(sample_copy)[PYTHON]
    text = service.dockerfile.read_text().replace(
        'CMD ["python3", "app.py"]', 'CMD ["python3", "-c", "import sys; print(\'startup-crash-marker\'); sys.exit(3)"]')
    service.dockerfile.write_text(text)
    unit, integ = run_unit_and_integration(docker_client, service, _build(docker_client, service, unique_registry),
                                           tmp_path, timeout=60)
    # The unit tests ran (in a container of their own when the service's had died under them).
    assert unit.passed, unit.reason
    assert unit.details["exit_code"] == 0 and unit.details["tests"]["fail"] == 0
    assert unit.containers in (1, 2)
    assert not integ.passed and "exited with code 3" in integ.reason and "startup-crash-marker" in integ.reason


@pytest.mark.docker
def test_image_without_python_or_node_is_probed_from_a_probe_container(docker_client, sample_copy, unique_registry,
                                                                       remove_test_images, tmp_path):
    service = _services(sample_copy)[PYTHON]
    # The service runs under a renamed interpreter: the probe finds neither python3 nor node.
    text = service.dockerfile.read_text().replace("COPY . .", (
        "COPY . .\nUSER root\nRUN cp \"$(readlink -f /usr/bin/python3)\" /usr/local/bin/svc-python \\\n"
        "    && rm -f /usr/bin/python3* /usr/bin/node /usr/bin/nodejs\nUSER 10001"))
    text = text.replace('CMD ["python3", "app.py"]', 'CMD ["svc-python", "app.py"]')
    service.dockerfile.write_text(text)
    _replace_healthcheck(service, "HEALTHCHECK NONE\n")
    result = run_integration(docker_client, service, _build(docker_client, service, unique_registry), tmp_path, timeout=60)
    assert result.passed, result.reason
    assert result.details["probe"].startswith("python3 in a probe container of ") and result.containers >= 2
    assert {e["path"] for e in result.details["endpoints"]} == {"/health", *_spec_paths(service)}


def test_service_without_tests_folder_is_no_tests_never_passed(sample_copy, tmp_path):
    shutil.rmtree(sample_copy / "services" / PYTHON / "tests")
    service = _services(sample_copy)[PYTHON]
    result = run_unit(None, service, "sha256:" + "0" * 64, tmp_path)  # nothing to run: the engine is not asked
    assert result.no_tests and not result.passed and result.skipped and result.containers == 0
    assert result.reason == f"no tests: no tests/ folder with tests in services/{PYTHON}"
    assert "# result: NO TESTS" in Path(result.log_path).read_text()
    summary = stage_summary([result])
    assert summary["stages"]["unit"]["no_tests"] == 1 and summary["total"]["no_tests"] == 1
    assert summary["total"]["passed"] == 0 and summary["all_passed"]


@pytest.mark.docker
def test_failing_unit_test_fails_with_output_in_log(docker_client, sample_copy, unique_registry, remove_test_images, tmp_path):
    service = _services(sample_copy)[PYTHON]
    (service.path / "tests" / "test_broken.py").write_text(
        "import unittest\n\nclass Broken(unittest.TestCase):\n"
        "    def test_deliberately_broken(self):\n        self.assertTrue(False, 'deliberate-failure-marker')\n")
    result = run_unit(docker_client, service, _build(docker_client, service, unique_registry), tmp_path)
    assert not result.passed and not result.skipped
    assert result.details["exit_code"] == 1 and result.details["tests"]["fail"] == 1
    assert "unit tests failed" in result.reason
    log = Path(result.log_path).read_text()
    assert "deliberate-failure-marker" in log and "test_deliberately_broken" in log


@pytest.mark.docker
def test_hung_unit_stage_times_out_and_removes_its_container(docker_client, sample_copy, unique_registry,
                                                             remove_test_images, tmp_path):
    service = _services(sample_copy)[PYTHON]
    (service.path / "tests" / "test_hang.py").write_text(
        "import time, unittest\n\nclass Hang(unittest.TestCase):\n"
        "    def test_hangs(self):\n        print('about to hang', flush=True)\n        time.sleep(600)\n")
    image_id = _build(docker_client, service, unique_registry)
    started = time.monotonic()
    result = run_unit(docker_client, service, image_id, tmp_path, timeout=6)
    assert time.monotonic() - started < 6 + 10
    assert not result.passed and result.reason == "timed out after 6s"
    assert _gone(docker_client, result.details["container_id"])
    assert "about to hang" in Path(result.log_path).read_text()


def _replace_healthcheck(service, new: str) -> None:
    text = service.dockerfile.read_text()
    text, count = re.subn(r"^HEALTHCHECK .*?\n  CMD .*?\n", new, text, flags=re.M | re.S)
    assert count == 1
    service.dockerfile.write_text(text)


@pytest.mark.docker
def test_never_healthy_service_fails_integration_as_unhealthy(docker_client, sample_copy, unique_registry,
                                                              remove_test_images, tmp_path):
    service = _services(sample_copy)[PYTHON]
    _replace_healthcheck(service, "HEALTHCHECK --interval=1s --timeout=2s --retries=2 CMD false\n")
    image_id = _build(docker_client, service, unique_registry)
    result = run_integration(docker_client, service, image_id, tmp_path, timeout=15)
    assert not result.passed and "unhealthy" in result.reason
    assert result.seconds < 15  # unhealthy is seen as soon as the engine says so, not at the timeout
    assert result.details["endpoints"] == []
    assert _gone(docker_client, result.details["container_id"])


@pytest.mark.docker
def test_image_without_healthcheck_is_ready_when_its_port_answers(docker_client, sample_copy, unique_registry,
                                                                  remove_test_images, tmp_path):
    service = _services(sample_copy)[NODE]
    _replace_healthcheck(service, "HEALTHCHECK NONE\n")
    result = run_integration(docker_client, service, _build(docker_client, service, unique_registry), tmp_path, timeout=30)
    assert result.passed, result.reason
    assert result.details["healthcheck"] is False and result.details["health"] is None
    assert next(e["path"] for e in result.details["endpoints"]) == "/health"


@pytest.mark.docker
def test_container_that_exits_fails_fast_with_its_output(docker_client, sample_copy, unique_registry,
                                                         remove_test_images, tmp_path):
    service = _services(sample_copy)[PYTHON]
    text = service.dockerfile.read_text().replace(
        'CMD ["python3", "app.py"]', 'CMD ["python3", "-c", "import sys; print(\'startup-crash-marker\'); sys.exit(3)"]')
    service.dockerfile.write_text(text)
    result = run_integration(docker_client, service, _build(docker_client, service, unique_registry), tmp_path, timeout=60)
    assert not result.passed
    assert "exited with code 3" in result.reason and "startup-crash-marker" in result.reason
    assert result.seconds < 20


@pytest.mark.docker
def test_openapi_path_answering_404_fails_naming_the_path(docker_client, sample_copy, unique_registry,
                                                          remove_test_images, tmp_path):
    service = _services(sample_copy)[PYTHON]
    spec_file = service.path / "openapi.json"
    spec = json.loads(spec_file.read_text())
    spec["paths"]["/not-implemented"] = {"get": {"responses": {"200": {"description": "OK"}}}}
    spec["paths"]["/metrics/{metric}"] = {"get": {"responses": {"200": {"description": "OK"}}}}
    spec_file.write_text(json.dumps(spec))
    result = run_integration(docker_client, service, _build(docker_client, service, unique_registry), tmp_path)
    assert not result.passed
    assert "GET /not-implemented -> 404" in result.reason and "1 endpoint(s) failed" in result.reason
    statuses = {e["path"]: e["status"] for e in result.details["endpoints"]}
    assert statuses["/not-implemented"] == 404 and statuses["/health"] == 200 and statuses["/metrics"] == 200
    assert result.details["skipped_endpoints"] == ["/metrics/{metric}"] and "/metrics/{metric}" not in statuses


@pytest.mark.docker
def test_missing_image_is_a_failed_result_not_an_exception(docker_client, built, tmp_path):
    service, _ = built[NODE]
    result = run_unit(docker_client, service, "sha256:" + "0" * 64, tmp_path)
    assert not result.passed and "engine refused" in result.reason


# ---------------------------------------------------------------- e2e with docker-compose

E2E_DOCKERFILE = """FROM python:3.11-slim
WORKDIR /srv
RUN echo e2e-ok > index.html
EXPOSE 8000
# http.server as PID 1 ignores SIGTERM; SIGINT stops it at once, so `down` is quick.
STOPSIGNAL SIGINT
HEALTHCHECK --interval=1s --timeout=2s --retries=10 \\
  CMD ["python3", "-c", "import urllib.request as u; u.build_opener(u.ProxyHandler({})).open('http://127.0.0.1:8000/index.html', timeout=2)"]
CMD ["python3", "-m", "http.server", "8000"]
"""

E2E_COMPOSE = """version: "2.4"
services:
  api:
    image: ${E2E_IMAGE}
  web:
    image: ${E2E_IMAGE}
    depends_on: [api]
"""


@pytest.fixture
def e2e_image(docker_client, tmp_path, unique_registry, remove_test_images):
    context = tmp_path / "e2e-image"
    context.mkdir()
    (context / "Dockerfile").write_text(E2E_DOCKERFILE)
    tag = f"{unique_registry}/nexus/e2e:t"
    docker_client.images.build(path=str(context), tag=tag, rm=True)
    return tag


def _project_containers(client, project: str) -> list:
    return client.containers.list(all=True, filters={"label": f"com.docker.compose.project={project}"})


@pytest.mark.docker
@pytest.mark.slow
def test_e2e_compose_up_healthy_then_down(docker_client, e2e_image, tmp_path):
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(E2E_COMPOSE)
    result = run_e2e(docker_client, compose, tmp_path, tmp_path / "reports", timeout=90, env={"E2E_IMAGE": e2e_image})
    assert result.passed, result.reason
    assert result.details["services"] == {"api": "healthy", "web": "healthy"} and result.containers == 2
    assert result.details["project"].startswith("nexus-e2e-") and result.details["down_exit"] == 0
    assert _project_containers(docker_client, result.details["project"]) == []
    log = Path(result.log_path).read_text()
    assert Path(result.log_path).name == "test_results_platform_e2e.log"
    assert "E2E_IMAGE" in log and e2e_image not in log.split("$ docker-compose up")[0]  # keys logged, values not


@pytest.mark.docker
@pytest.mark.slow
def test_e2e_unhealthy_service_fails_and_is_torn_down(docker_client, e2e_image, tmp_path):
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(E2E_COMPOSE + "    healthcheck:\n      test: [\"CMD\", \"false\"]\n      interval: 1s\n      retries: 1\n")
    result = run_e2e(docker_client, compose, tmp_path, tmp_path / "reports", timeout=60, env={"E2E_IMAGE": e2e_image})
    assert not result.passed and result.reason == "web is unhealthy"
    assert _project_containers(docker_client, result.details["project"]) == []


def test_e2e_without_compose_file_is_skipped(tmp_path):
    result = run_e2e(None, tmp_path / "docker-compose.e2e.yml", tmp_path, tmp_path / "reports")
    assert result.passed and result.skipped and result.stage == "e2e"


# ---------------------------------------------------------------- infrastructure (issue 8)

@pytest.mark.docker
def test_integration_starts_the_infrastructure_the_service_depends_on(docker_client, built, tmp_path):
    """postgres and redis (image-only compose services it depends_on) run beside the service on
    its test network under their compose names, with their compose environment, and go after."""
    service, image_id = built[PYTHON]
    needs = ({"name": "postgres", "image": "postgres:15",
              "environment": {"POSTGRES_PASSWORD": "s3cret-value", "POSTGRES_DB": "app"}},
             {"name": "redis", "image": "redis:7", "environment": {}})
    service = dataclasses.replace(service, infrastructure=needs)
    unit, integ = run_unit_and_integration(docker_client, service, image_id, tmp_path)
    assert unit.passed and integ.passed and not integ.skipped, (unit.reason, integ.reason)
    assert [(i["name"], i["image"]) for i in integ.details["infrastructure"]] == [("postgres", "postgres:15"),
                                                                                  ("redis", "redis:7")]
    for record in integ.details["infrastructure"]:  # recorded as what it is: here, Debian's
        real = docker_client.images.get(record["image"]).labels.get("io.nexus-assets.substitutes") != record["image"]
        assert record["substituted"] is not real and (real or "Debian" in record["provides"]), record
    log = Path(unit.log_path).read_text()
    assert "infrastructure ready" in log and "POSTGRES_PASSWORD" in log and "s3cret-value" not in log
    assert unit.containers == 4  # the service, postgres, redis and the one that waited for their ports
    assert _network_gone(docker_client, integ.details["network"])


@pytest.mark.docker
def test_integration_needing_an_absent_image_is_not_run_and_says_which(docker_client, built, tmp_path):
    service, image_id = built[NODE]
    absent = f"nexus-test-absent-{uuid.uuid4().hex[:6]}:15-alpine"
    service = dataclasses.replace(service, infrastructure=({"name": "db", "image": absent, "environment": {}},))
    unit, integ = run_unit_and_integration(docker_client, service, image_id, tmp_path)
    assert unit.passed, unit.reason  # the unit tests need no infrastructure
    assert integ.skipped and not integ.passed, integ
    assert integ.reason.startswith(f"integration not run: needs {absent}, which is not available"), integ.reason
    assert "# result: NOT RUN" in Path(integ.log_path).read_text()
    summary = stage_summary([unit, integ])
    assert summary["stages"]["integration"] == {"passed": 0, "failed": 0, "skipped": 0, "not_run": 1}
    assert summary["all_passed"] and not summary["failures"]
    alone = run_integration(docker_client, service, image_id, tmp_path)  # without the unit stage
    assert alone.skipped and not alone.passed and alone.containers == 0, alone
