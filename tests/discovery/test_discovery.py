"""Step B: discovery of a messy target repository; every bad input is reported, none crashes."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from nexus_assets.core.errors import TargetRepoError
from nexus_assets.discovery.inventory import discover, mask_secrets, parse_dockerfile, secret_values

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

# Fake secrets planted in the repository and the archive; none may appear in any output.
ENV_TEXT = """# local secrets, never committed
POSTGRES_PASSWORD=Sup3r-Secret-PG-4471
JWT_SECRET="jwt-9f8e7d6c5b4a"
export STRIPE_KEY=sk_live_fixture_Xy12
SSL_EMAIL=ops-team@nexus.example
ADMIN_PIN=8812
DATABASE_URL=postgres://nexus:Db-Url-Pass-99@postgres:5432/nexus
NODE_ENV=production
PORT=3001
DB_HOST=postgres
this line is not an assignment
"""
SECRETS = ["Sup3r-Secret-PG-4471", "jwt-9f8e7d6c5b4a", "sk_live_fixture_Xy12", "ops-team@nexus.example",
           "Db-Url-Pass-99", "postgres://nexus:Db-Url-Pass-99@postgres:5432/nexus",
           # from the archive's env_dump.txt and compose_dump.txt
           "vps-Pg-pass-7731", "vps-jwt-Zq81xPl0m", "sk_test_fixture_51Habc",
           # inline in a compose file
           "inline-compose-secret-123",
           # a secret-named key holding only digits
           "8812"]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    target = tmp_path / "repo"
    shutil.copytree(FIXTURES / "nexus_mini", target)
    (target / ".env").write_text(ENV_TEXT)
    (target / "services" / "auth-service" / ".env.local").write_text("SESSION_SECRET=auth-local-sess-8890\n")
    return target


def add_archive(repo: Path) -> None:
    shutil.copytree(FIXTURES / "discovery_archive", repo / "nexus-discovery")


def strip_time(report: dict) -> dict:
    return {k: v for k, v in report.items() if k != "generated_at"}


def service(report: dict, name: str) -> dict:
    return next(s for s in report["services"] if s["name"] == name)


def test_services_are_inventoried(repo):
    report = discover(repo)
    assert [s["name"] for s in report["services"]] == sorted(s["name"] for s in report["services"])
    auth = service(report, "auth-service")
    assert auth["path"] == "services/auth-service" and auth["language"] == "node"
    assert auth["dockerfile"] == "services/auth-service/Dockerfile"
    assert auth["base_images"] == ["node:18-alpine"]  # global ARG substituted into FROM
    assert auth["exposed_ports"] == [3001]  # EXPOSE ${PORT} resolved from ENV
    assert auth["healthcheck"]["present"] and "127.0.0.1:3001/health" in auth["healthcheck"]["command"]
    assert auth["healthcheck"]["options"] == {"interval": "30s", "timeout": "3s"}
    assert auth["package_manifest"] == "services/auth-service/package.json"
    assert auth["tests_present"] and auth["in_service_list"]
    users = service(report, "users")
    assert users["language"] == "python" and users["package_manifest"] == "services/users/requirements.txt"
    assert users["base_images"] == ["python:3.11-slim"]  # `FROM builder` is a stage, not an image
    assert [s["from_stage"] for s in users["stages"]] == [None, "builder"]
    assert users["exposed_ports"] == [8000, 9999]  # the final stage inherits its parent's EXPOSE
    assert users["healthcheck"]["command"].startswith("python -c 'import urllib.request;")
    stream = service(report, "nexus-stream")
    assert stream["healthcheck"]["present"] is False and stream["healthcheck"]["disabled"] is True
    assert auth["healthcheck"]["disabled"] is False
    assert report["summary"]["services"] == 10


def test_service_folder_without_dockerfile_is_a_problem_naming_the_service(repo):
    report = discover(repo)
    billing = service(report, "legacy_billing")
    assert billing["dockerfile"] is None and billing["language"] == "node"
    assert any(p["service"] == "legacy_billing" and "no Dockerfile" in p["message"] for p in report["problems"])
    assert report["summary"]["services_without_dockerfile"] == 2


def test_invalid_folder_name_is_reported(repo):
    (repo / "services" / "My Service").mkdir()
    report = discover(repo)
    assert "My Service" not in [s["name"] for s in report["services"]]
    assert any(p["file"] == "services/My Service" and "not a valid service name" in p["message"]
               for p in report["problems"])


def test_service_list_bad_lines_have_line_numbers(repo):
    listing = discover(repo)["service_list"]
    assert listing["names"] == ["auth-service", "email-worker", "nexus-stream", "users"]
    assert listing["without_folder"] == [] and "legacy_billing" in listing["folders_not_listed"]
    bad = {p["line"]: p["message"] for p in listing["problems"]}
    assert "'../../etc/passwd' is not a valid service name" in bad[7]
    assert "'auth; rm -rf /'" in bad[8] and "'my service'" in bad[9]
    assert "listed twice (lines 3 and 10)" in bad[10]


def test_compose_files_build_contexts_ports_and_depends_on(repo):
    report = discover(repo)
    files = {c["file"]: c for c in report["compose"]}
    assert sorted(files) == ["docker-compose.full.yml", "docker-compose.yml"]
    main = {s["name"]: s for s in files["docker-compose.yml"]["services"]}
    assert main["auth-service"]["build"]["context"] == "services/auth-service"
    assert main["auth-service"]["ports"] == ["127.0.0.1:3001:3001"]
    assert main["auth-service"]["environment_keys"] == ["JWT_SECRET", "NODE_ENV"]
    assert main["users"]["depends_on"] == ["postgres"]  # long form `condition:` mapping
    assert main["users"]["ports"] == ["8002:8000/tcp"]
    assert main["streaming-engine"]["build"] is None
    assert main["streaming-engine"]["image"] == "nexus/streaming-engine:1.2.0"
    outside = {b["service"]: b for b in report["build_contexts_outside_services"]}
    assert outside["creator-dashboard"]["context"] == "apps/creator-dashboard"
    assert outside["creator-dashboard"]["exists"] and not outside["creator-dashboard"]["outside_repo"]
    # Outside the repository: refused, and nothing there is looked at.
    assert outside["ott-mini"]["outside_repo"] and outside["ott-mini"]["refused"]
    assert outside["ott-mini"]["exists"] is None and not outside["creator-dashboard"]["refused"]
    assert any(p["file"] == "docker-compose.full.yml" and p["service"] == "ott-mini"
               and "outside the repository" in p["message"] for p in report["problems"])


def test_invalid_yaml_in_one_compose_file_is_reported_and_others_still_parsed(repo):
    (repo / "docker-compose.broken.yml").write_text(
        "services:\n  web:\n    image: nginx\n    environment:\n      TOKEN: \"unterminated-secret-value\n")
    report = discover(repo)
    broken = next(c for c in report["compose"] if c["file"] == "docker-compose.broken.yml")
    assert broken["valid"] is False and broken["services"] == []
    (problem,) = broken["problems"]
    assert problem["file"] == "docker-compose.broken.yml" and isinstance(problem["line"], int)
    assert "invalid YAML" in problem["message"]
    assert "unterminated-secret-value" not in json.dumps(report)  # the YAML snippet is never quoted
    assert next(c for c in report["compose"] if c["file"] == "docker-compose.yml")["valid"]


def test_non_utf8_files_are_reported_and_read(repo):
    dockerfile = repo / "services" / "email-worker" / "Dockerfile"
    dockerfile.write_bytes(b"FROM node:18-alpine\n# caf\xe9 au lait\nEXPOSE 7000\n")
    (repo / "docker-compose.latin.yml").write_bytes(b"services:\n  crm-sync:\n    image: crm\n# \xff\n")
    report = discover(repo)
    worker = service(report, "email-worker")
    assert worker["exposed_ports"] == [7000]
    assert any(p["file"] == "services/email-worker/Dockerfile" and p["line"] == 2 and "UTF-8" in p["message"]
               for p in report["problems"])
    latin = next(c for c in report["compose"] if c["file"] == "docker-compose.latin.yml")
    assert latin["valid"] and latin["services"][0]["name"] == "crm-sync"
    assert latin["problems"][0]["line"] == 4


def test_env_files_report_keys_never_values(repo):
    report = discover(repo)
    env = {e["file"]: e for e in report["env_files"]}
    assert sorted(env) == [".env", ".env.template", "services/auth-service/.env.local"]
    assert env[".env"]["keys"] == ["ADMIN_PIN", "DATABASE_URL", "DB_HOST", "JWT_SECRET", "NODE_ENV", "PORT",
                                   "POSTGRES_PASSWORD", "SSL_EMAIL", "STRIPE_KEY"]
    assert env[".env.template"]["template"] is True
    (bad,) = env[".env"]["problems"]
    assert bad["line"] == 11 and "not a KEY=VALUE line" in bad["message"]
    assert "assignment" not in bad["message"]


def test_no_secret_value_appears_anywhere_in_the_output(repo, tmp_path):
    add_archive(repo)
    compose = repo / "docker-compose.yml"
    compose.write_text(compose.read_text() + "  cache:\n    image: redis:7\n    environment:\n"
                                              "      REDIS_PASSWORD: inline-compose-secret-123\n")
    # A healthcheck and a Dockerfile that quote a secret must be masked too.
    df = repo / "services" / "api" / "Dockerfile"
    df.write_text(df.read_text() + 'HEALTHCHECK CMD curl -H "X-Key: Sup3r-Secret-PG-4471" http://127.0.0.1/\n')
    report = discover(repo, extra_secrets=["registry-token-abcdef"])
    dump = json.dumps(report)
    for secret in [*SECRETS, "auth-local-sess-8890", "registry-token-abcdef"]:
        assert secret not in dump, secret
    # The report stays readable: ports, public names and plain words are not mangled.
    assert service(report, "api")["healthcheck"]["command"].count("***") == 1
    assert "postgres" in {s["name"] for c in report["compose"] for s in c["services"]}
    assert service(report, "auth-service")["exposed_ports"] == [3001]
    assert report["archive"]["env_keys"] == ["JWT_SECRET", "NODE_ENV", "PATH", "POSTGRES_PASSWORD",
                                             "STRIPE_SECRET_KEY"]


def test_template_placeholders_stay_readable_but_real_values_are_masked(repo):
    (repo / ".env.example").write_text("POSTGRES_PASSWORD=postgres\nJWT_SECRET=changeme\n"
                                       "STRIPE_KEY=sk_live_Leaked-In-Template-77\n")
    dump = json.dumps(discover(repo))
    assert "sk_live_Leaked-In-Template-77" not in dump
    assert '"name": "postgres"' in dump  # a public placeholder does not blank the postgres service


def test_odd_compose_shapes_are_reported_not_fatal(repo):
    (repo / "docker-compose.odd.yml").write_text(
        "services:\n  a:\n    environment: 42\n    depends_on: b\n    build: {}\n  b: null\n"
        "  'Bad Name':\n    image: x\n  c:\n    build:\n      context: ${CTX}\n")
    (repo / "docker-compose.list.yml").write_text("- just\n- a list\n")
    report = discover(repo)
    odd = next(c for c in report["compose"] if c["file"] == "docker-compose.odd.yml")
    svc = {s["name"]: s for s in odd["services"]}
    assert svc["a"]["depends_on"] == ["b"] and svc["a"]["build"]["context"] == "."
    assert svc["b"]["image"] is None and svc["c"]["build"]["unresolved"] is True
    messages = [p["message"] for p in odd["problems"]]
    assert any("`environment:` is neither" in m for m in messages)
    assert any("'Bad Name' is not a valid service name" in m for m in messages)
    listed = next(c for c in report["compose"] if c["file"] == "docker-compose.list.yml")
    assert listed["valid"] is False and "no `services:` mapping" in listed["problems"][0]["message"]


def test_env_link_out_of_the_repository_is_not_read(repo, tmp_path):
    (tmp_path / "host-secrets.env").write_text("ROOT_TOKEN=host-only-Secret-5521\n")
    (repo / "deployment" / ".env.prod").symlink_to(tmp_path / "host-secrets.env")
    report = discover(repo)
    linked = next(e for e in report["env_files"] if e["file"] == "deployment/.env.prod")
    assert linked["keys"] == [] and "outside the repository" in linked["problems"][0]["message"]
    assert "ROOT_TOKEN" not in json.dumps(report)


def test_secret_value_rules():
    values = secret_values([("JWT_SECRET", "auth"), ("API_TOKEN", "abc"), ("NODE_ENV", "production"),
                            ("PORT", "3000"), ("DB_HOST", "postgres"), ("DEBUG", "true"),
                            ("DB_HOST2", "Pg-Host.Internal9"), ("X", "${POSTGRES_PASSWORD}")],
                           public_names=["postgres"], extra=["tok-12345"])
    # Secret-named keys always; other keys unless plainly public; never shorter than 4.
    assert values == ["Pg-Host.Internal9", "tok-12345", "auth"]
    assert mask_secrets("pw=tok-12345 and https://u:p4ss@host/x, Bearer abcdefghijkl", values) == \
        "pw=*** and https://u:***@host/x, Bearer ***"
    assert mask_secrets("PASSWORD=hunter22 api_key: zzz", []) == "PASSWORD=*** api_key: ***"


def test_archive_folder_is_parsed(repo):
    add_archive(repo)
    archive = discover(repo)["archive"]
    assert archive["present"] and archive["ok"] and archive["path"] == "nexus-discovery"
    assert [c["compose_service"] for c in archive["docker_ps"]] == ["auth-service", "ott-mini", "postgres"]
    assert archive["journal"]["lines"] == 5


def test_explicit_tarball_archive_like_the_guide(repo, tmp_path):
    archive = tmp_path / "nexus-full-discovery.tar.gz"
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(FIXTURES / "discovery_archive", arcname="nexus-full-discovery")
    report = discover(repo, archive=archive)
    assert report["archive"]["kind"] == "tar" and report["archive"]["ok"]
    assert report["summary"]["archive_present"] is True
    assert "vps-Pg-pass-7731" not in json.dumps(report)


def test_missing_archive_is_normal(repo, tmp_path):
    report = discover(repo, archive=tmp_path / "nexus-full-discovery.tar.gz")
    assert report["archive"]["present"] is False
    assert "proceeding with current system discovery" in report["archive"]["message"]
    assert discover(repo)["archive"]["present"] is False  # nothing in the repository either


def test_broken_archive_is_reported_and_discovery_goes_on(repo, tmp_path):
    evil = repo / "nexus-discovery.tar.gz"
    with tarfile.open(evil, "w:gz") as tf:
        info = tarfile.TarInfo("docker_ps.json")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/shadow"
        tf.addfile(info)
    report = discover(repo)
    assert report["archive"]["ok"] is False and report["archive"]["path"] == "nexus-discovery.tar.gz"
    assert any(p["file"] == "nexus-discovery.tar.gz" and "docker_ps.json" in p["message"]
               for p in report["problems"])
    assert report["summary"]["services"] == 10  # the current state is still inventoried


def test_git_state(repo):
    assert discover(repo)["git"] is None
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.invalid"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "fixture"], check=True)
    state = discover(repo)["git"]
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert state == {"commit": head, "branch": "main", "dirty": False, "changed_files": 0, "repo_is_toplevel": True}
    (repo / "services" / "users" / "app.py").write_text("print('changed')\n")
    assert discover(repo)["git"]["dirty"] is True


class FakeContainer:
    def __init__(self, attrs):
        self.attrs = attrs


class FakeClient:
    def __init__(self, items=None, error=None):
        self.containers = self
        self._items, self._error = items or [], error

    def list(self, **kwargs):
        assert kwargs == {"all": True, "sparse": True}
        if self._error:
            raise self._error
        return self._items


def test_containers_from_a_client(repo):
    client = FakeClient([
        FakeContainer({"Names": ["/nexus-cos-auth-service-1"], "Image": "nexus/auth-service:1", "State": "running",
                       "Status": "Up 2 minutes (healthy)", "Labels": {"com.docker.compose.service": "auth-service"},
                       "Ports": [{"IP": "127.0.0.1", "PrivatePort": 3001, "PublicPort": 3001, "Type": "tcp"}]}),
        FakeContainer({"Names": ["/old-job"], "Image": "busybox", "State": "exited", "Status": "Exited (0)",
                       "Labels": {}, "Ports": []}),
    ])
    report = discover(repo, docker_client=client)
    assert report["engine"] == {"queried": True, "reachable": True}
    assert report["containers"] == [
        {"name": "nexus-cos-auth-service-1", "image": "nexus/auth-service:1", "status": "running", "health": "healthy",
         "ports": ["127.0.0.1:3001->3001/tcp"], "compose_service": "auth-service", "compose_project": None},
        {"name": "old-job", "image": "busybox", "status": "exited", "health": None, "ports": [],
         "compose_service": None, "compose_project": None},
    ]
    assert report["summary"]["containers_running"] == 1


def test_unreachable_engine_is_a_problem(repo):
    report = discover(repo, docker_client=FakeClient(error=ConnectionError("socket gone")))
    assert report["containers"] == [] and report["engine"]["reachable"] is False
    assert any(p["file"] == "docker engine" and "cannot list containers" in p["message"] for p in report["problems"])


def test_discovery_is_deterministic_and_json_serializable(repo):
    add_archive(repo)
    first, second = discover(repo), discover(repo)
    assert json.dumps(strip_time(first), sort_keys=True) == json.dumps(strip_time(second), sort_keys=True)
    assert first["problems"] == sorted(first["problems"], key=lambda p: (str(p["file"]), p["line"] or 0,
                                                                         str(p["service"]), p["message"]))


def test_missing_repo_or_services_folder_raises(tmp_path):
    with pytest.raises(TargetRepoError, match="does not exist"):
        discover(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(TargetRepoError, match="no services/ folder"):
        discover(tmp_path / "empty")


def test_dockerfile_parser_edge_cases():
    text = ("# escape=`\nARG BASE=python:3.12-slim\nFROM --platform=linux/amd64 ${BASE} AS build\n"
            "RUN <<EOF\nEXPOSE 1111\nEOF\nFROM scratch\nCOPY --from=build /app /app\nEXPOSE 53/udp 8000-8002\n"
            "HEALTHCHECK --start-interval=1s CMD true\n")
    info = parse_dockerfile(text, "services/x/Dockerfile", "x")
    assert info["base_images"] == ["python:3.12-slim"] and info["final_base_image"] is None
    assert info["exposed_ports"] == [53, 8000, 8001, 8002]  # heredoc body is not an instruction
    assert any("start-interval" in p["message"] and p["line"] == 10 for p in info["problems"])
    empty = parse_dockerfile("# nothing\n", "services/y/Dockerfile", "y")
    assert "no FROM instruction" in empty["problems"][0]["message"]


@pytest.mark.docker
def test_running_container_on_the_real_engine(repo, docker_client, auth_service_container):
    name, image = auth_service_container
    report = discover(repo, docker_client=docker_client)
    assert report["engine"] == {"queried": True, "reachable": True}
    found = next(c for c in report["containers"] if c["name"] == name)
    assert found["status"] == "running" and found["image"] == image
    assert found["compose_service"] == "auth-service"


def test_discovery_asset_reads_git_state_from_the_target_repository_not_the_working_copy(tmp_path):
    """Step B inventories the working copy (no .git; here it even sits inside another checkout),
    but commit, branch and dirtiness are the target repository's, as a real git repo says."""
    import dagster as dg

    from nexus_assets.definitions import PREPARE_ASSETS
    from nexus_assets.resources import DockerEngine, GitRepo, NexusConfig

    def git(where: Path, *args: str) -> str:
        done = subprocess.run(["git", "-C", str(where), "-c", "user.name=t", "-c", "user.email=t@example.invalid",
                               *args], capture_output=True, text=True, check=True)
        return done.stdout.strip()

    repo, outer = tmp_path / "repo", tmp_path / "outer"
    shutil.copytree(FIXTURES / "nexus_mini", repo)
    git(repo, "init", "-q", "-b", "feature/reports")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "target")
    outer.mkdir()
    git(outer, "init", "-q", "-b", "elsewhere")
    git(outer, "commit", "-q", "--allow-empty", "-m", "another checkout")
    work = outer / "work"
    resources = {"nexus": NexusConfig(repo=str(repo), workdir=str(work), registry="git.local", version="1.0.0"),
                 "docker_engine": DockerEngine(base_url=f"unix://{tmp_path}/no-engine.sock", timeout_seconds=5)}

    def state() -> dict:
        assert dg.materialize(PREPARE_ASSETS[:2], resources=resources).success
        return json.loads((work / "reports" / "discovery_parsed.json").read_text())["git"]

    head = git(repo, "rev-parse", "HEAD")
    assert head != git(outer, "rev-parse", "HEAD")
    assert not (work / ".git").exists()
    assert state() == {"commit": head, "branch": "feature/reports", "dirty": False, "changed_files": 0,
                       "repo_is_toplevel": True}
    (repo / "services" / "users" / "app.py").write_text("print('changed')\n")
    (repo / "services" / "new-one").mkdir()
    (repo / "services" / "new-one" / "Dockerfile").write_text("FROM x\n")
    dirty = state()
    assert (dirty["commit"], dirty["branch"], dirty["dirty"], dirty["changed_files"]) == (
        head, "feature/reports", True, 2)
    git(repo, "commit", "-q", "-am", "second")
    assert state()["changed_files"] == 1  # the untracked folder is still there
    assert GitRepo(path=str(repo)).revision() == git(repo, "rev-parse", "HEAD") != head
    assert GitRepo(path=str(repo / "services")).revision() == git(repo, "rev-parse", "HEAD")
    assert GitRepo(path=str(tmp_path)).revision() is None
