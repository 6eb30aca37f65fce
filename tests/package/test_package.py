"""The deployment package from a release's real files (a repository with compose, `.env`, the
reports, a manifest with registry digests, SBOMs, provenance and a key): the same inputs give
the same bytes, it reads back and verifies, a changed byte is named, images are pinned by
digest, the infrastructure is the repository's, no `.env` value is inside, and the scripts
pass `bash -n` and shellcheck and fail clearly where they cannot deploy."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import tarfile
from datetime import date
from pathlib import Path

import pytest
import yaml

from nexus_assets.core.settings import Settings
from nexus_assets.package.archive import DEFAULT_MTIME, PackageError, build_tar_gz, verify_tar_gz
from nexus_assets.package.content import SCRIPT_NAMES, package_content
from nexus_assets.policy.secret_scan import env_secrets

SECRET = "pg-DO-NOT-LEAK-package-51d2e7"
COMPOSE = """
services:
  users:
    build: ./services/users
    image: ${REGISTRY:-127.0.0.1:5000}/nexus/users:${VERSION:-latest}
    restart: unless-stopped
    ports: ["127.0.0.1:8001:8001"]
    environment:
      POSTGRES_PASSWORD: "${POSTGRES_PASSWORD}"
      LOG_LEVEL: "${LOG_LEVEL:-info}"
    depends_on: [postgres, redis, legacy]
  payments:
    build: ./services/payments
    depends_on: [users]
  legacy:
    build: ./services/legacy
  postgres:
    image: postgres:15-alpine
    environment:
      POSTGRES_PASSWORD: "${POSTGRES_PASSWORD}"
    volumes: ["pgdata:/var/lib/postgresql/data"]
  redis:
    image: redis:7-alpine
    command: ["redis-server", "--requirepass", "${REDIS_PASSWORD}"]
volumes:
  pgdata: {}
  unused: {}
"""
PROXY = """
services:
  nginx:
    image: nginx:1.25-alpine
    ports: ["80:80", "443:443"]
"""


def _digest(n: int) -> str:
    return f"sha256:{n:064x}"


@pytest.fixture
def release(tmp_path: Path) -> Settings:
    repo, work = tmp_path / "repo", tmp_path / "work"
    repo.mkdir()
    (repo / "docker-compose.yml").write_text(COMPOSE)
    (repo / "docker-compose.proxy.yml").write_text(PROXY)
    (repo / ".env").write_text(f"POSTGRES_PASSWORD={SECRET}\nREDIS_PASSWORD=redis-DO-NOT-LEAK-9c1f\nDOMAIN=x.test\n")
    (work / "reports").mkdir(parents=True)
    (work / "artifacts" / "sbom").mkdir(parents=True)
    (work / "artifacts" / "provenance").mkdir(parents=True)
    (work / "reports" / "discovery_parsed.json").write_text('{"summary": {}}')
    (work / "reports" / "compliance_report_20261125.pdf").write_bytes(b"%PDF-1.4 test\n")
    images = [{"service": "users", "status": "current", "digest": _digest(1),
               "repo_digest": f"127.0.0.1:5000/nexus/users@{_digest(1)}",
               "sbom": {"path": "sbom/users.cdx.json", "sha256": "x"}},  # as the manifest names it
              {"service": "payments", "status": "current", "digest": _digest(2),
               "repo_digest": f"127.0.0.1:5000/nexus/payments@{_digest(2)}"},
              {"service": "legacy", "status": "current", "digest": _digest(3)},
              {"service": "broken", "status": "failed", "reason": "build failed: Dockerfile line 3"}]
    (work / "artifacts" / "artifacts_manifest.json").write_text(json.dumps({"version": "1.2.0", "images": images}))
    (work / "artifacts" / "sbom" / "users.cdx.json").write_text('{"bomFormat": "CycloneDX"}')
    (work / "artifacts" / "provenance" / "payments.intoto.jsonl").write_text('{"payloadType": "x"}\n')
    (work / "artifacts" / "signing_key.pub").write_text("-----BEGIN PUBLIC KEY-----\nMCow\n-----END PUBLIC KEY-----\n")
    return Settings(repo=repo, workdir=work, registry="127.0.0.1:5000", version="1.2.0", max_parallel=2)


def _build(settings: Settings) -> tuple[bytes, object]:
    manifest = json.loads((settings.artifacts / "artifacts_manifest.json").read_text())
    _, secrets = env_secrets(settings.repo, ["users", "payments"])
    content = package_content(settings, manifest, {}, settings.reports / "compliance_report_20261125.pdf",
                              commit=None, day=date(2026, 11, 25), secrets=secrets)
    return build_tar_gz(content.name, content.files, content.mtime), content


def _members(data: bytes) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: (m, tar.extractfile(m).read() if m.isfile() else b"") for m in tar.getmembers()}


def test_same_inputs_give_the_same_bytes_and_fixed_metadata(release):
    first, _content = _build(release)
    for path in release.workdir.rglob("*"):  # file times are not inputs
        os.utime(path, (1_800_000_000, 1_800_000_000))
    second, _ = _build(release)
    assert first == second
    assert first[3] & 0x08 == 0 and first[4:8] == b"\0\0\0\0", "gzip: no file name, mtime 0"
    members = _members(first)
    names = list(members)
    assert names == sorted(names) and names[0] == "deployment_package_20261125"
    for info, _ in members.values():
        assert (info.uid, info.gid, info.uname, info.gname, info.mtime) == (0, 0, "root", "root", DEFAULT_MTIME)
        assert info.mode == (0o755 if info.isdir() or info.name.endswith(("runner.sh", "audit.sh", "tag.sh"))
                             else 0o644), info.name


def test_reads_back_and_every_checksum_verifies_and_a_changed_byte_is_named(release, tmp_path):
    data, content = _build(release)
    verified = verify_tar_gz(data, "pkg.tar.gz")
    assert verified.files == len(content.files)  # every file but SHA256SUMS, each checked
    raw = gzip.decompress(data)
    at = raw.index(b"CycloneDX")
    tampered = raw[:at] + b"cYCLONEdx" + raw[at + 9:]
    with pytest.raises(PackageError, match=r"users\.cdx\.json does not match its sha256"):
        verify_tar_gz(gzip.compress(tampered), "pkg.tar.gz")
    with pytest.raises(PackageError, match="cannot be read back whole"):
        verify_tar_gz(data[: len(data) // 2], "pkg.tar.gz")


def test_compose_pins_released_services_by_digest_with_the_repository_infrastructure(release):
    data, _content = _build(release)
    members = _members(data)
    top = "deployment_package_20261125"
    compose = yaml.safe_load(members[f"{top}/docker-compose.full.yml"][1])
    services = compose["services"]
    assert services["users"]["image"] == f"127.0.0.1:5000/nexus/users@{_digest(1)}"
    assert services["payments"]["image"].endswith(f"@{_digest(2)}") and "build" not in services["users"]
    assert services["users"]["environment"]["POSTGRES_PASSWORD"] == "${POSTGRES_PASSWORD}"
    assert services["users"]["depends_on"] == ["postgres", "redis"]  # legacy is not in the package
    assert services["postgres"]["image"] == "postgres:15-alpine" and services["nginx"]["image"] == "nginx:1.25-alpine"
    assert compose["volumes"] == {"pgdata": {}}
    assert "legacy" not in services and "broken" not in services
    readme = members[f"{top}/README.md"][1].decode()
    assert "`legacy`: no registry digest recorded in the manifest (not pushed)" in readme
    assert "`broken`: status failed: build failed: Dockerfile line 3" in readme
    template = members[f"{top}/deployment/.env.template"][1].decode()
    assert "\nPOSTGRES_PASSWORD=\n" in template and "\nREDIS_PASSWORD=\n" in template
    assert "# DOMAIN=" in template and "# LOG_LEVEL=" in template
    assert all(line.endswith("=") for line in template.splitlines() if line and not line.startswith("#"))
    for name in ("artifacts/sbom/users.cdx.json", "artifacts/provenance/payments.intoto.jsonl",
                 "artifacts/signing_key.pub", "artifacts/artifacts_manifest.json",
                 "reports/compliance_report_20261125.pdf", "reports/discovery_parsed.json", "SHA256SUMS", "RELEASE",
                 *(f"scripts/{s}" for s in SCRIPT_NAMES)):
        assert f"{top}/{name}" in members, name
    assert not any(Path(n).name == ".env" for n in members)
    assert members[f"{top}/RELEASE"][1].startswith(b"RELEASE_TAG=verified_release_v1.2.0\n")


def test_no_env_value_inside_and_a_planted_one_stops_the_package(release):
    data, _ = _build(release)
    for _, body in _members(data).values():
        assert SECRET.encode() not in body and b"redis-DO-NOT-LEAK" not in body
    (release.reports / "deployment_report_20261125.json").write_text(json.dumps({"note": f"x {SECRET} y"}))
    with pytest.raises(PackageError) as error:
        _build(release)
    assert "reports/deployment_report_20261125.json" in str(error.value) and SECRET not in str(error.value)


@pytest.fixture
def unpacked(release, tmp_path) -> Path:
    data, content = _build(release)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        tar.extractall(tmp_path / "x", filter="data")
    return tmp_path / "x" / content.name


def test_scripts_pass_bash_n_and_shellcheck(unpacked):
    scripts = sorted((unpacked / "scripts").glob("*.sh"))
    assert [s.name for s in scripts] == sorted(SCRIPT_NAMES)
    for script in scripts:
        done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
    done = subprocess.run(["shellcheck", "-x", *map(str, scripts)], capture_output=True, text=True, cwd="/")
    assert done.returncode == 0, done.stdout + done.stderr


def _run(script: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True, cwd=cwd, timeout=60,
                          env={"PATH": os.environ["PATH"]})


def test_scripts_stop_clearly_where_they_cannot_deploy(unpacked, tmp_path):
    host = tmp_path / "host"
    runner = unpacked / "scripts" / "remote_deploy_runner.sh"
    done = _run(runner, "--host-dir", str(host), cwd=unpacked)
    assert done.returncode == 2 and "copy deployment/.env.template to .env" in done.stderr
    (unpacked / ".env").write_text(f"POSTGRES_PASSWORD={SECRET}\n")
    done = _run(runner, "--host-dir", str(host), cwd=unpacked)
    assert done.returncode == 2 and "does not set: REDIS_PASSWORD" in done.stderr
    assert SECRET not in done.stdout + done.stderr and not host.exists()
    (unpacked / ".env").unlink()
    (unpacked / "RELEASE").write_text("RELEASE_TAG=changed\n")
    done = _run(runner, "--host-dir", str(host), cwd=unpacked)
    assert done.returncode == 1 and "does not match SHA256SUMS" in done.stderr
    rollback = unpacked / "scripts" / "rollback_to_tag.sh"
    host.mkdir()
    (host / ".env").write_text("X=1\n")
    done = _run(rollback, "verified_release_v0.9.0", "--host-dir", str(host), cwd=unpacked)
    assert done.returncode == 2 and "release verified_release_v0.9.0 was never deployed here" in done.stderr
    done = _run(unpacked / "scripts" / "post_deploy_audit.sh", "--host-dir", str(host), cwd=unpacked)
    assert done.returncode == 2 and "no release deployed under" in done.stderr


def test_compose_file_is_valid_for_docker_compose(unpacked, tmp_path):
    env = tmp_path / "host.env"
    env.write_text("POSTGRES_PASSWORD=a\nREDIS_PASSWORD=b\n")
    done = subprocess.run(["docker-compose", "-f", str(unpacked / "docker-compose.full.yml"), "--env-file", str(env),
                           "config", "--services"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.split()) == ["nginx", "payments", "postgres", "redis", "users"]
