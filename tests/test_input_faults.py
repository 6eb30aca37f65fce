"""Issue 10: nothing is built or counted from outside the repository, and no input is skipped
silently. Each test reproduces one reported fault on a real folder tree."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from nexus_assets.core.services import find_services, scan_services
from nexus_assets.discovery.inventory import discover
from nexus_assets.workspace.sync import sync_workspace

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    target = tmp_path / "repo"
    shutil.copytree(FIXTURES / "nexus_mini", target)
    return target


@pytest.fixture
def host_dir(tmp_path: Path) -> Path:
    """A folder outside the repository holding a 'host secret' and a buildable Dockerfile."""
    outside = tmp_path / "host"
    outside.mkdir()
    (outside / "Dockerfile").write_text("FROM busybox\nCOPY . /leak\n")
    (outside / "host-secret.txt").write_text("host-only-content-7731\n")
    return outside


def messages_for(report: dict, file: str) -> list[str]:
    return [p["message"] for p in report["problems"] if p["file"] == file]


# --- 1. a service folder (or a file in it) that resolves outside the repository ------------

def test_symlinked_service_folder_outside_the_repo_is_refused_and_reported(repo, host_dir):
    (repo / "services" / "linked").symlink_to(host_dir)
    assert "linked" not in [s.name for s in find_services(repo)]
    report = discover(repo)
    assert "linked" not in [s["name"] for s in report["services"]]
    (message,) = messages_for(report, "services/linked")
    assert "outside the repository" in message and "not a service" in message
    assert "host-only-content-7731" not in json.dumps(report)


def test_dockerfile_or_file_linking_outside_refuses_the_service(repo, host_dir):
    users = repo / "services" / "users"
    (users / "Dockerfile").unlink()
    (users / "Dockerfile").symlink_to(host_dir / "Dockerfile")
    (repo / "services" / "drm" / "config").mkdir()
    (repo / "services" / "drm" / "config" / "secret.txt").symlink_to(host_dir / "host-secret.txt")
    names = [s.name for s in find_services(repo)]
    assert "users" not in names and "drm" not in names and "auth-service" in names
    report = discover(repo)
    assert "outside the repository" in messages_for(report, "services/users/Dockerfile")[0]
    assert "outside the repository" in messages_for(report, "services/drm/config/secret.txt")[0]


def test_symlink_that_stays_inside_the_repository_is_a_service(repo):
    (repo / "services" / "dashboard").symlink_to(Path("..") / "apps" / "creator-dashboard")
    (repo / "services" / "api" / "shared.js").symlink_to(Path("..") / "auth-service" / "server.js")
    found = {s.name: s for s in find_services(repo)}
    assert found["dashboard"].dockerfile is not None and "api" in found
    assert not [p for p in scan_services(repo)[1] if "outside" in p["message"]]


def test_sync_mirrors_links_and_the_working_copy_refuses_the_outside_one(repo, host_dir, tmp_path):
    (repo / "services" / "linked").symlink_to(host_dir)
    (repo / "services" / "dashboard").symlink_to(repo / "apps" / "creator-dashboard")  # absolute, inside
    work = tmp_path / "work"
    sync_workspace(repo, work)
    # The inside link points into the working copy, not back into the repository.
    assert os.readlink(work / "services" / "dashboard") == "../apps/creator-dashboard"
    assert (work / "services" / "dashboard" / "Dockerfile").is_file()
    assert not (work / "services" / "linked" / "host-secret.txt").resolve().is_relative_to(work.resolve())
    names = [s.name for s in find_services(work)]
    assert "dashboard" in names and "linked" not in names
    assert messages_for(discover(work), "services/linked")


def test_sync_never_writes_or_deletes_through_a_link(repo, host_dir, tmp_path):
    work = tmp_path / "work"
    sync_workspace(repo, work)
    # The repository's real folder becomes a link to a host folder: the stale copy goes, and
    # removing its files must not delete through the link in the host folder.
    (host_dir / "worker.js").write_text("host file\n")
    shutil.rmtree(repo / "services" / "email-worker")
    (repo / "services" / "email-worker").symlink_to(host_dir)
    sync_workspace(repo, work)
    assert (host_dir / "worker.js").read_text() == "host file\n"
    assert (work / "services" / "email-worker").is_symlink()
    # ...and back to a real folder: files are written into the working copy, not the host.
    (repo / "services" / "email-worker").unlink()
    (repo / "services" / "email-worker").mkdir()
    (repo / "services" / "email-worker" / "worker.js").write_text("repo file\n")
    sync_workspace(repo, work)
    assert (host_dir / "worker.js").read_text() == "host file\n"
    assert not (work / "services" / "email-worker").is_symlink()
    assert (work / "services" / "email-worker" / "worker.js").read_text() == "repo file\n"


# --- 2. a compose build context or Dockerfile outside the repository ----------------------

def test_compose_build_context_outside_the_repo_is_refused_and_no_parity_evidence(repo, tmp_path):
    from nexus_assets.core.repo_config import load_repo_config
    from nexus_assets.parity.compare import compare
    from nexus_assets.parity.synopsis import parse_synopsis

    syn = parse_synopsis(repo / "docs" / "investor_synopsis.md", display_path="docs/investor_synopsis.md")
    before = compare(syn, json.loads(json.dumps(discover(repo))), load_repo_config(repo))
    assert "backend-api" in before["critical_missing"]
    (repo / "deployment" / "link-out").symlink_to("/etc")
    (repo / "docker-compose.evil.yml").write_text(
        "services:\n"
        "  backend-api:\n    build: {context: /etc, dockerfile: passwd}\n"
        "  puabo-blac-financing:\n    build: {context: services/users, dockerfile: ../../../../../../etc/passwd}\n"
        "  payments:\n    build: deployment/link-out\n")
    report = json.loads(json.dumps(discover(repo)))
    evil = next(c for c in report["compose"] if c["file"] == "docker-compose.evil.yml")
    builds = {s["name"]: s["build"] for s in evil["services"]}
    assert all(b["refused"] and b["exists"] is None and b["dockerfile_exists"] is None for b in builds.values())
    flagged = {p["service"] for p in report["problems"] if p["file"] == "docker-compose.evil.yml"
               and "resolves outside the repository" in p["message"]}
    assert flagged == {"backend-api", "puabo-blac-financing", "payments"}
    after = compare(syn, report, load_repo_config(repo))
    assert after["critical_missing"] == before["critical_missing"]
    status = {m["name"]: m["status"] for m in after["modules"]}
    assert status["backend-api"] == status["payments"] == "missing"
    assert "root:" not in json.dumps(report)


def test_compose_context_inside_the_repo_through_a_link_still_counts(repo):
    (repo / "deployment" / "users-link").symlink_to(Path("..") / "services" / "users")
    (repo / "docker-compose.ok.yml").write_text("services:\n  users:\n    build: deployment/users-link\n")
    report = discover(repo)
    ok = next(c for c in report["compose"] if c["file"] == "docker-compose.ok.yml")
    build = ok["services"][0]["build"]
    assert not build["refused"] and build["exists"] and build["dockerfile_exists"]
