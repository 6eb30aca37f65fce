"""Issue 15: the unit and integration stages run a service as compose runs it, and lint checks
what a service builds. Lint needs no engine; the tests marked docker show that the compose
settings are what makes the services of the realistic traits healthy (run bare, they fail)."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

import pytest

from nexus_assets.target.services import find_services
from nexus_assets.testrepos.realistic_compose import LINT_TRAP, generate_compose_run_repo
from nexus_assets.verify.service_tests import run_integration, run_lint


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    generate_compose_run_repo(tmp_path / "repo")
    return tmp_path / "repo"


def test_a_context_at_the_repository_root_lints_what_its_dockerfile_copies(repo, tmp_path):
    gateway = {s.name: s for s in find_services(repo)}["gateway"]
    assert gateway.folder == "." and gateway.own_folder == repo / "services/gateway"
    assert gateway.language == "python"  # from its own folder, not the root
    result = run_lint(gateway, tmp_path / "reports")
    assert result.passed, result.reason
    assert result.details["lint_scope"]["sources"] == ["services/gateway/"]
    assert result.details["compose"] == {"compose_file": "docker-compose.yml", "compose_service": "gateway"}
    assert result.details["python_files"] == 3  # app.py and its two test files, not the Python 2 script
    assert LINT_TRAP not in Path(result.log_path).read_text()

    # Control: the same context copied whole (`COPY . .`) brings the script in, and lint says so.
    dockerfile = repo / "services/gateway/Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("COPY services/gateway/ .", "COPY . ."))
    whole = run_lint(gateway, tmp_path / "reports")
    assert not whole.passed and LINT_TRAP in whole.reason, whole.reason


@pytest.mark.docker
def test_without_compose_settings_the_traits_fail_and_with_them_they_pass(repo, tmp_path, docker_client,
                                                                           remove_test_images, unique_registry):
    services = {s.name: s for s in find_services(repo)}
    images = {}
    for name in ("streaming-api", "ledger"):
        image, _ = docker_client.images.build(path=str(services[name].path), rm=True,
                                              tag=f"{unique_registry}/nexus/{name}:{uuid.uuid4().hex[:6]}")
        images[name] = image.id
    reports = tmp_path / "reports"
    # Bare (no compose settings, as before issue 15): streaming-api listens on its code's own
    # default port, which nothing probes; ledger exits for want of the variables compose gives it.
    bare = {name: run_integration(docker_client, dataclasses.replace(services[name], runtime=None), images[name],
                                  reports, timeout=12) for name in images}
    assert not bare["streaming-api"].passed and "timed out" in bare["streaming-api"].reason, bare
    assert not bare["ledger"].passed and "LEDGER_CURRENCY, LEDGER_SIGNING_KEY not set" in bare["ledger"].reason
    # As compose runs them: healthy, and the checks say where the settings came from (keys only).
    for name in images:
        result = run_integration(docker_client, services[name], images[name], reports, timeout=60)
        assert result.passed, (name, result.reason)
        assert result.details["compose"]["compose_file"] == "docker-compose.yml"
        assert result.details["compose"]["compose_service"] == name
    ledger_log = (reports / "test_results_ledger_integration.log").read_text()
    assert "ledger: signing with *** in EUR" in ledger_log  # the secret it prints is masked
    assert "ldg_sk_" not in ledger_log
