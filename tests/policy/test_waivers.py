"""Waivers on the record (policy/waivers.py) and refused services (target/services.refused_services),
on real git checkouts: who committed a waiver is git blame's author of its line."""

from __future__ import annotations

import subprocess
from datetime import date
from pathlib import Path

import pytest

from nexus_assets.cli.main import main
from nexus_assets.core.errors import InputError
from nexus_assets.policy.waivers import check_waivers, read_waivers
from nexus_assets.target.services import refused_services
from tests.conftest import write

DOCKERFILE = "FROM node:18-alpine\nCOPY . .\nCMD [\"node\", \"server.js\"]\n"


def git(repo: Path, *args: str, author: str = "Ops Lead") -> None:
    subprocess.run(["git", "-C", str(repo), "-c", f"user.name={author}", "-c", "user.email=ops@example.invalid",
                    *args], check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for name in ("users", "reports", "billing"):
        write(root / "services" / name / "Dockerfile", DOCKERFILE)
    write(root / "nexus-agent.toml", "[parity]\ncritical = [\"users\"]\n")
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "services", author="Someone Else")
    return root


def waive(repo: Path, entries: str) -> None:
    write(repo / "nexus-agent.toml", "[parity]\ncritical = [\"users\"]\n\n[release]\nwaive = [\n" + entries + "]\n")


def test_a_committed_waiver_names_its_author_and_commit_an_edited_one_is_uncommitted(repo):
    waive(repo, '  { service = "reports", reason = "health check probes port 9000", until = "2099-01-31" },\n')
    git(repo, "commit", "-qam", "waive reports")
    [waiver] = check_waivers(repo)
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    assert (waiver.service, waiver.reason, waiver.until, waiver.line) == (
        "reports", "health check probes port 9000", "2099-01-31", 6)
    assert (waiver.committed_by, waiver.commit) == ("Ops Lead", head)
    assert not waiver.expired(date(2099, 1, 31)) and waiver.expired(date(2099, 2, 1))  # good through its day

    # A second waiver added but not committed: its line is nobody's yet; the first keeps its author.
    waive(repo, '  { service = "reports", reason = "health check probes port 9000", until = "2099-01-31" },\n'
                '  { service = "billing", reason = "vendor outage", until = 2099-02-01 },\n')
    first, second = check_waivers(repo)
    assert first.committed_by == "Ops Lead"
    assert (second.service, second.until, second.committed_by, second.commit) == (
        "billing", "2099-02-01", "uncommitted", None)


def test_outside_git_a_waiver_is_uncommitted(tmp_path):
    write(tmp_path / "services" / "reports" / "Dockerfile", DOCKERFILE)
    write(tmp_path / "nexus-agent.toml", '[release]\nwaive = [{ service = "reports", reason = "r", until = "2099-01-01" }]\n')
    assert read_waivers(tmp_path)[0].committed_by == "uncommitted"


@pytest.mark.parametrize(("entry", "says"), [
    ('{ service = "reports", until = "2099-01-31" }', "entry for 'reports': missing reason"),
    ('{ service = "reports", reason = "  ", until = "2099-01-31" }', "entry for 'reports': missing reason"),
    ('{ service = "reports", reason = "r", until = "31/01/2099" }', "until must be a date YYYY-MM-DD"),
    ('{ service = "reports", reason = "r", until = "2099-02-30" }', "until must be a date YYYY-MM-DD"),
    ('{ service = "reports", reason = "r" }', "until must be a date YYYY-MM-DD"),
    ('{ service = "nope", reason = "r", until = "2099-01-31" }', "'nope': no such service in the repository"),
    ('{ reason = "r", until = "2099-01-31" }', "entry 1: no service"),
    ('{ service = "reports", reason = "r", until = "2099-01-31", owner = "me" }', "unknown key owner"),
    ('"reports"', "entry 1 is not a table"),
])
def test_a_bad_waiver_is_one_line_naming_nexus_agent_toml(repo, entry, says):
    waive(repo, f"  {entry},\n")
    with pytest.raises(InputError) as caught:
        check_waivers(repo)
    message = str(caught.value)
    assert message.startswith(f"{repo / 'nexus-agent.toml'}") and "[release] waive" in message
    assert says in message and "\n" not in message


def test_an_unknown_release_setting_is_one_line(repo):
    write(repo / "nexus-agent.toml", '[release]\nwaiver = []\n')
    with pytest.raises(InputError, match=r"nexus-agent.toml: \[release\] has no setting 'waiver': the settings are "
                                         r"waive; fix the name or remove the line$"):
        check_waivers(repo)


def test_waiving_a_critical_module_is_refused_by_any_of_its_names(repo):
    waive(repo, '  { service = "users", reason = "r", until = "2099-01-31" },\n')
    with pytest.raises(InputError, match=r"nexus-agent.toml line 6: \[release\] waive 'users': it is the critical "
                                         r"module 'users', which cannot be waived"):
        check_waivers(repo)
    # auth-service is the critical module auth (its name without the suffix), and so is an alias of it.
    write(repo / "services" / "auth-service" / "Dockerfile", DOCKERFILE)
    write(repo / "services" / "identity" / "Dockerfile", DOCKERFILE)
    for service in ("auth-service", "identity"):
        write(repo / "nexus-agent.toml", '[parity]\ncritical = ["auth"]\naliases = { auth = ["identity"] }\n'
                                         f'[release]\nwaive = [{{ service = "{service}", reason = "r", until = "2099-01-31" }}]\n')
        with pytest.raises(InputError, match="critical module 'auth'"):
            check_waivers(repo)


def test_nexus_agent_run_exits_2_on_a_critical_waiver_before_touching_anything(repo, tmp_path, capsys):
    waive(repo, '  { service = "users", reason = "r", until = "2099-01-31" },\n')
    code = main(["run", "--repo", str(repo), "--workdir", str(tmp_path / "work"), "--version", "1.0.0"])
    err = capsys.readouterr().err
    assert code == 2 and "critical module 'users', which cannot be waived" in err
    assert err == (f"nexus-agent: error: {repo / 'nexus-agent.toml'} line 6: [release] waive 'users': it is the critical "
                   "module 'users', which cannot be waived; fix it, or take it out of [parity] critical\n")
    assert not (tmp_path / "work" / "artifacts").exists()


def test_a_refused_service_may_be_waived_and_is_known(repo, tmp_path):
    outside = tmp_path / "host"
    write(outside / "secret.txt", "host file\n")
    (repo / "services" / "reports" / "data").symlink_to(outside)
    waive(repo, '  { service = "reports", reason = "data link is being moved in", until = "2099-01-31" },\n')
    assert [w.service for w in check_waivers(repo)] == ["reports"]


def test_refused_services_for_every_reason_one_entry_each(repo, tmp_path):
    outside = tmp_path / "host"
    write(outside / "secret.txt", "host file\n")
    (repo / "services" / "users" / "config").symlink_to(outside)  # a link out inside the folder
    (repo / "services" / "linked").symlink_to(outside)  # the folder itself
    write(repo / ".env", "BILLING_SECRET=s3cr3t-value-123456\n")
    write(repo / "services" / "billing" / "Dockerfile", DOCKERFILE + "ENV TOKEN=s3cr3t-value-123456\n")
    write(repo / "services" / "vault" / "Dockerfile", DOCKERFILE)
    write(repo / "docker-compose.yml", "services:\n  vault:\n    build:\n      context: ./services/vault\n"
                                       "      args:\n        API_TOKEN: ${BILLING_SECRET}\n")
    from nexus_assets.target.secrets import repo_secrets

    refused = {r.service: r for r in refused_services(repo, None, repo_secrets(repo))}
    assert sorted(refused) == ["billing", "linked", "users", "vault"]
    assert refused["users"].reason == "services/users/config resolves outside the repository (a link)"
    assert refused["users"].folder == "services/users"
    assert refused["linked"].reason == "its folder resolves outside the repository (a link)"
    assert refused["billing"].reason == ("services/billing/Dockerfile line 4 holds a value of an .env file (the value "
                                         "of .env key BILLING_SECRET, secret because its key names a secret)")
    assert refused["vault"].compose_name == "vault"
    assert refused["vault"].reason.startswith("build arg API_TOKEN carries a secret (")
    assert "s3cr3t" not in repr(refused)
