"""Fixtures of the release tests: a real git repository as the target, and a working copy
holding what the stages before the release write (manifest, reports, SBOMs, PDF, package)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import uuid
from pathlib import Path

import pytest
import requests

from nexus_assets.core.settings import Settings

GIT_ENV = ["-c", "user.name=Test", "-c", "user.email=test@example.invalid"]


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *GIT_ENV, *args], capture_output=True, text=True, check=True)
    return done.stdout.strip()


def commit_file(repo: Path, name: str, text: str, message: str = "change") -> str:
    path = repo / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


@pytest.fixture
def target_repo(tmp_path: Path) -> Path:
    """A git checkout with one commit on main, no identity configured (as in CI)."""
    repo = tmp_path / "target"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    commit_file(repo, "services/users/app.py", "print('users')\n", "first")
    return repo


def sbom(components: dict[str, str]) -> dict:
    return {"bomFormat": "CycloneDX", "specVersion": "1.5",
            "components": [{"type": "library", "name": n, "version": v, "purl": f"pkg:npm/{n}@{v}"}
                           for n, v in components.items()]}


def write_inputs(settings: Settings, digests: dict[str, str], components: dict[str, dict[str, str]] | None = None,
                 *, pdf: bool = True, package: bool = True) -> dict:
    """What the stages before the release leave in the working copy; returns the manifest."""
    settings.artifacts.mkdir(parents=True, exist_ok=True)
    settings.reports.mkdir(parents=True, exist_ok=True)
    images = []
    for service, digest in sorted(digests.items()):
        digest = digest.removeprefix("sha256:") if digest.startswith("sha256:") else digest * 64  # real or a letter
        images.append({"service": service, "status": "current", "source_hash": f"src-{service}",
                       "image": f"{settings.registry}/nexus/{service}:{settings.version}",
                       "image_id": f"sha256:{service[:1] * 64}", "digest": f"sha256:{digest}",
                       "repo_digest": f"{settings.registry}/nexus/{service}@sha256:{digest}",
                       "tests": {"lint": "passed", "unit": "passed", "integration": "passed"}})
        if service != "auth":  # as the attest stage records it (path under artifacts/); auth: the default path
            images[-1]["sbom"] = {"path": f"sbom/{service}.cdx.json", "sha256": "0" * 64}
        (settings.artifacts / "sbom").mkdir(exist_ok=True)
        (settings.artifacts / "sbom" / f"{service}.cdx.json").write_text(
            json.dumps(sbom((components or {}).get(service, {"express": "4.18.2"}))))
    manifest = {"version": settings.version, "registry": settings.registry, "images": images,
                "totals": {"services": len(images), "with_digest": len(images), "problems": 0, "tests_failed": 0},
                "problems": []}
    (settings.artifacts / "artifacts_manifest.json").write_text(json.dumps(manifest, indent=2))
    (settings.reports / "discovery_parsed.json").write_text(json.dumps({"services": list(digests)}))
    (settings.reports / "discrepancy_report.json").write_text(json.dumps({
        "parity_percent": 80.0, "totals": {"canonical": 5, "present": 4, "partial": 0, "missing": 1},
        "gate": {"passed": True, "message": "1 critical module missing (at most 6 allowed)"},
        "modules": [{"name": "users", "critical": True, "status": "present", "scaffolded": False},
                    {"name": "auth", "critical": True, "status": "missing", "scaffolded": True}],
        "scaffolded": ["auth"]}))
    if pdf:
        (settings.reports / "compliance_report_20261125.pdf").write_bytes(b"%PDF-1.4 test\n%%EOF\n")
    if package:
        (settings.reports / "deployment_package_20261125.tar.gz").write_bytes(b"\x1f\x8b not really a tarball")
    return manifest


@pytest.fixture
def release_settings(tmp_path: Path, target_repo: Path):
    def make(version: str = "1.2.0", **overrides) -> Settings:
        values = {"repo": target_repo, "workdir": tmp_path / "work", "registry": "127.0.0.1:5000",
                  "version": version, "max_parallel": 1}
        values.update(overrides)
        return Settings(**values)

    return make


def put_image(registry: str, service: str, tag: str) -> str:
    """A tiny image of its own (a config, no layer) put under REGISTRY/nexus/<service>:tag through
    the registry's API, with the session's credentials: its manifest digest. No engine needed."""
    host, _, prefix = registry.partition("/")
    base = f"http://{host}/v2/{prefix + '/' if prefix else ''}nexus/{service}/"
    auth = (os.environ["REGISTRY_USERNAME"], os.environ["REGISTRY_PASSWORD"])
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                         "config": {"Labels": {"marker": uuid.uuid4().hex}}}).encode()
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    upload = requests.post(base + "blobs/uploads/", auth=auth, timeout=10)
    requests.put(upload.headers["Location"], params={"digest": config_digest}, data=config, auth=auth,
                 timeout=10).raise_for_status()
    kind = "application/vnd.docker.distribution.manifest.v2+json"
    manifest = json.dumps({"schemaVersion": 2, "mediaType": kind, "layers": [], "config": {
        "mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config),
        "digest": config_digest}}).encode()
    done = requests.put(base + f"manifests/{tag}", data=manifest, auth=auth, headers={"Content-Type": kind},
                        timeout=10)
    done.raise_for_status()
    return str(done.headers["Docker-Content-Digest"])
