"""Issue 10: nothing is built or counted from outside the repository, and no input is skipped
silently. Each test reproduces one reported fault on a real folder tree."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from nexus_assets.discovery.inventory import discover
from nexus_assets.target.services import find_services, scan_services
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


def test_the_image_stage_never_gets_the_outside_folder_from_repo_or_working_copy(repo, host_dir, tmp_path):
    from nexus_assets.core.settings import Settings
    from nexus_assets.target.services import build_services

    (repo / "services" / "linked").symlink_to(host_dir)
    settings = Settings(repo=repo, workdir=tmp_path / "work", registry="r", version="1.0.0", max_parallel=1)
    assert "linked" not in [s.name for s in build_services(settings)]
    sync_workspace(repo, settings.workdir)
    for in_workdir in (False, True):
        built = build_services(settings, in_workdir=in_workdir)
        assert "linked" not in [s.name for s in built] and "users" in [s.name for s in built]
        assert all(s.path.resolve().is_relative_to(root.resolve()) for s in built
                   for root in [settings.workdir if s.path.is_relative_to(settings.workdir) else repo])


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
    from nexus_assets.parity.compare import compare
    from nexus_assets.parity.synopsis import parse_synopsis
    from nexus_assets.target.repo_config import load_repo_config

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


# --- 3. the smaller ones ---------------------------------------------------------------------

def test_env_files_in_a_build_context_are_a_warning_unless_dockerignored(repo):
    users = repo / "services" / "users"
    (users / ".env.local").write_text("SESSION_SECRET=users-local-sess-4411\n")
    (users / "config").mkdir()
    (users / "config" / "prod.env").write_text("DB_PASSWORD=users-prod-pass-9921\n")
    (users / ".env.example").write_text("DB_PASSWORD=changeme\n")  # a template is meant to be shipped
    report = discover(repo)
    warned = {p["file"]: p for p in report["problems"] if "env file in the build context" in p["message"]}
    assert {"services/users/.env.local", "services/users/config/prod.env"} <= set(warned)
    assert "services/users/.env.example" not in warned
    assert warned["services/users/.env.local"]["service"] == "users"
    assert warned["services/users/.env.local"]["message"].startswith("warning:")
    # .dockerignore patterns are honoured the way the docker SDK sends the build context.
    (users / ".dockerignore").write_text("# secrets stay home\n.env*\n**/*.env\n")
    report = discover(repo)
    assert not [p for p in report["problems"] if p["service"] == "users" and "env file" in p["message"]]
    (users / ".dockerignore").write_text("config\n")
    report = discover(repo)
    files = {p["file"] for p in report["problems"] if p["service"] == "users" and "env file" in p["message"]}
    assert files == {"services/users/.env.local"}
    assert "users-prod-pass-9921" not in json.dumps(report) and "users-local-sess-4411" not in json.dumps(report)


@pytest.mark.parametrize("text, line", [
    ("services:\n  web:\n    image: nginx\n\tports: []\n", 4),      # a tab
    ("services:\n  web:\n    image: [nginx\n", 4),                   # unclosed flow sequence
    ("services:\n  web:\n    image: x\n    labels:\n      built: 2001-13-45\n", 5),  # bad date
    ("services:\n  web:\n    cpus: !!float many\n", 3),
])
def test_invalid_compose_yaml_names_the_file_and_line(repo, text, line):
    (repo / "docker-compose.bad.yml").write_text(text)
    report = discover(repo)
    (bad,) = [p for p in report["problems"] if p["file"] == "docker-compose.bad.yml"]
    assert bad["line"] == line and bad["message"].startswith("invalid YAML")
    assert "many" not in bad["message"]  # the value itself is never quoted


def test_links_out_of_the_repository_for_compose_list_and_archive_are_not_read(repo, tmp_path):
    (tmp_path / "host-compose.yml").write_text("services:\n  backend-api:\n    image: x\n")
    (repo / "docker-compose.host.yml").symlink_to(tmp_path / "host-compose.yml")
    (repo / "deployment" / "service_list.txt").unlink()
    (tmp_path / "list.txt").write_text("backend-api\n")
    (repo / "deployment" / "service_list.txt").symlink_to(tmp_path / "list.txt")
    shutil.copytree(FIXTURES / "discovery_archive", tmp_path / "host-archive")
    (repo / "nexus-discovery").symlink_to(tmp_path / "host-archive")
    report = discover(repo)
    host = next(c for c in report["compose"] if c["file"] == "docker-compose.host.yml")
    assert host["services"] == [] and "outside the repository" in host["problems"][0]["message"]
    assert report["service_list"]["names"] == []
    assert "outside the repository" in messages_for(report, "deployment/service_list.txt")[0]
    assert report["archive"]["present"] is False
    assert "outside the repository" in messages_for(report, "nexus-discovery")[0]


def test_hidden_and_dots_folders_are_reported_not_silently_skipped(repo):
    for name in (".hidden", "...", ".cache"):
        (repo / "services" / name).mkdir()
        (repo / "services" / name / "Dockerfile").write_text("FROM busybox\n")
    report = discover(repo)
    names = [s["name"] for s in report["services"]]
    for name in (".hidden", "...", ".cache"):
        assert name not in names
        assert "not a service" in messages_for(report, f"services/{name}")[0]


def test_upper_case_folder_is_reported_with_its_image_name_and_collisions_name_both(repo):
    shutil.copytree(repo / "services" / "api", repo / "services" / "UpperCase")
    shutil.copytree(repo / "services" / "api", repo / "services" / "Users")
    report = discover(repo)
    (upper,) = messages_for(report, "services/UpperCase")
    assert "nexus/uppercase" in upper and upper.startswith("warning:")
    assert "UpperCase" in [s["name"] for s in report["services"]]
    clash = [p["message"] for p in report["problems"] if "same image name" in p["message"]]
    assert clash == ["folders services/Users and services/users map to the same image name nexus/users; "
                     "only services/users is built"]
    assert [s.name for s in find_services(repo)].count("users") == 1 and "Users" not in [s.name for s in find_services(repo)]
    # With no all-lowercase folder, none of them takes the image name.
    shutil.rmtree(repo / "services" / "users")
    shutil.copytree(repo / "services" / "api", repo / "services" / "USERS")
    services, problems = scan_services(repo)
    assert not {"USERS", "Users"} & {s.name for s in services}
    assert any("services/USERS and services/Users" in p["message"] and "none is built" in p["message"]
               for p in problems)


def test_latin1_byte_in_a_dockerfile_comment_keeps_the_service_buildable(repo):
    from nexus_assets.target.dockerfile import read_dockerfile

    dockerfile = repo / "services" / "email-worker" / "Dockerfile"
    dockerfile.write_bytes(b"FROM node:18-alpine\n# caf\xe9 cr\xe8me\nEXPOSE 7000\n")
    text, problems = read_dockerfile(dockerfile, "services/email-worker/Dockerfile", "email-worker")
    assert "FROM node:18-alpine" in text and "\ufffd" in text
    (warning,) = problems
    assert warning["line"] == 2 and warning["message"].startswith("warning:") and "builds it" in warning["message"]
    report = discover(repo)
    worker = next(s for s in report["services"] if s["name"] == "email-worker")
    assert worker["base_images"] == ["node:18-alpine"] and worker["exposed_ports"] == [7000]
    assert not [p for p in worker["problems"] if "no FROM" in p["message"] or "unbuildable" in p["message"]]


def test_discovery_archive_comes_only_from_the_setting_or_the_repository(repo, monkeypatch, tmp_path):
    from nexus_assets.discovery.assets import _archive_path

    monkeypatch.delenv("NEXUS_DISCOVERY_ARCHIVE", raising=False)
    assert _archive_path() is None  # never /tmp/nexus-full-discovery.tar.gz behind the operator's back
    monkeypatch.setenv("NEXUS_DISCOVERY_ARCHIVE", str(tmp_path / "given.tar.gz"))
    assert _archive_path() == tmp_path / "given.tar.gz"
    shutil.copytree(FIXTURES / "discovery_archive", repo / "nexus-discovery")
    assert discover(repo, archive=None)["archive"]["path"] == "nexus-discovery"
