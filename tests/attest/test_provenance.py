"""Signed provenance of a real image pushed to the real registry (htpasswd auth), checked by
`nexus-agent verify` and by the evidence pack's standalone verify.py; each tamper fails with its reason."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import os
import shutil
import stat
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from nexus_assets.attest.evidence import build_evidence_pack
from nexus_assets.attest.provenance import BuildFacts
from nexus_assets.attest.signing import load_or_create_key
from nexus_assets.attest.steps import masked_build_args, write_provenance, write_sbom
from nexus_assets.cli.main import main as nexus_agent
from nexus_assets.core.errors import ConfigError
from nexus_assets.evidence.check import check_folder, pae
from nexus_assets.target.services import Service
from tests.attest.conftest import push


def test_pae_is_the_dsse_encoding():
    # The example of the DSSE v1 protocol document.
    assert pae("http://example.com/HelloWorld", b"hello world") == \
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"


def test_key_is_made_once_private_and_refused_when_readable(tmp_path):
    path = tmp_path / "keys" / "ed25519.pem"
    key, made = load_or_create_key(path)
    assert made and stat.S_IMODE(path.stat().st_mode) == 0o600
    again, made_again = load_or_create_key(path)
    assert not made_again and again.public_key() == key.public_key()
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others") as info:
        load_or_create_key(path)
    assert "PRIVATE" not in str(info.value)


def test_build_args_lose_their_secrets(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / ".env").write_text("NPM_TOKEN=npm_Zx81secretvalue\nNODE_ENV=production\n")
    service = Service(name="web", path=repo, language="node", dockerfile=None,
                      build_args={"NPM_TOKEN": "npm_Zx81secretvalue", "NODE_ENV": "production",
                                  "API_KEY": "k-991-abcdef", "PORT": "8080"})
    masked = masked_build_args(service, repo, ["web"])
    assert masked == {"NPM_TOKEN": "***", "NODE_ENV": "production", "API_KEY": "***", "PORT": "8080"}


@pytest.fixture(scope="module")
def released(docker_client, attest_images, registry_auth, session_registry, tmp_path_factory):
    """A working copy whose artifacts/ hold the SBOM, the signed provenance and the manifest of the
    Python test image, pushed to the registry under a unique repository."""
    workdir = tmp_path_factory.mktemp("attest-release")
    artifacts = workdir / "artifacts"
    tag, image_id, _ = attest_images["python"]
    repository = f"nexus-attest-{uuid.uuid4().hex[:8]}/py-svc"
    registry = session_registry.address
    digest = push(docker_client, image_id, registry, repository, "1.0.0", registry_auth)
    sbom = write_sbom(docker_client, "py-svc", image_id, tag, artifacts)
    key, _ = load_or_create_key(workdir / ".nexus-signing" / "ed25519.pem")
    (artifacts / "signing_key.pub").write_bytes(
        __import__("nexus_assets.attest.signing", fromlist=["public_pem"]).public_pem(key))
    facts = BuildFacts(service="py-svc", repo_digest=f"{registry}/{repository}@{digest}", digest=digest,
                       image_id=image_id, tag="1.0.0", image_run_id="run-123", finished_at=time.time(),
                       build_seconds=12.5, source_hash="f" * 24, tree_hash="e" * 64, service_path="services/py-svc",
                       base_images=[{"requested": "python:3.11-slim", "image_id": "sha256:" + "a" * 64,
                                     "substituted": True, "substitute": "nexus-base/bookworm:1"}],
                       labels={"org.opencontainers.image.source": "https://git.example/nexus-cos.git",
                               "org.opencontainers.image.revision": "0123456789abcdef0123456789abcdef01234567"},
                       build_args={"NPM_TOKEN": "***"})
    made = write_provenance(key, facts, sbom, artifacts, builder_id="https://builder.test/v1", run_id="run-456")
    manifest = {"version": "1.0.0", "images": [
        {"service": "py-svc", "status": "current", "image_id": image_id, "digest": digest,
         "repo_digest": facts.repo_digest, "tag": "1.0.0", "image": f"{registry}/{repository}:1.0.0",
         "sbom": {"path": sbom["path"], "sha256": sbom["sha256"]},
         "provenance": {"path": made["path"], "sha256": made["sha256"]}},
        {"service": "broken", "status": "failed", "reason": "did not build"}]}
    (artifacts / "artifacts_manifest.json").write_text(json.dumps(manifest, indent=2))
    env = {"REGISTRY_USERNAME": registry_auth["username"], "REGISTRY_PASSWORD": registry_auth["password"]}
    yield {"workdir": workdir, "artifacts": artifacts, "repository": repository, "digest": digest, "env": env,
           "key": key, "image_id": image_id, "registry": registry}
    with contextlib.suppress(Exception):
        docker_client.images.remove(f"{registry}/{repository}:1.0.0", force=True)


def _verify(workdir: Path, env: dict, capsys, *extra: str) -> tuple[int, str]:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        code = nexus_agent(["verify", "--workdir", str(workdir), *extra])
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return code, capsys.readouterr().out


def _copy(released, tmp_path) -> Path:
    workdir = tmp_path / "copy"
    shutil.copytree(released["workdir"], workdir)
    return workdir


@pytest.mark.docker
def test_statement_says_what_was_built_and_signed(released):
    line = (released["artifacts"] / "provenance" / "py-svc.intoto.jsonl").read_text()
    assert line.endswith("\n") and line.count("\n") == 1
    envelope = json.loads(line)
    assert envelope["payloadType"] == "application/vnd.in-toto+json"
    statement = json.loads(base64.b64decode(envelope["payload"]))
    assert statement["_type"] == "https://in-toto.io/Statement/v1"
    assert statement["predicateType"] == "https://slsa.dev/provenance/v1"
    assert statement["subject"] == [{"name": f"{released['registry']}/{released['repository']}",
                                     "digest": {"sha256": released["digest"].removeprefix("sha256:")}}]
    build = statement["predicate"]["buildDefinition"]
    assert build["externalParameters"]["buildArgs"] == {"NPM_TOKEN": "***"}
    assert build["resolvedDependencies"][0] == {
        "uri": "git+https://git.example/nexus-cos.git@0123456789abcdef0123456789abcdef01234567",
        "digest": {"gitCommit": "0123456789abcdef0123456789abcdef01234567"}}
    assert {"substituted": True, "substitute": "nexus-base/bookworm:1"} in \
        [d.get("annotations") for d in build["resolvedDependencies"]]
    run = statement["predicate"]["runDetails"]
    assert run["builder"]["id"] == "https://builder.test/v1" and run["metadata"]["invocationId"] == "run-123"
    assert run["metadata"]["startedOn"] < run["metadata"]["finishedOn"]
    assert run["byproducts"][0]["name"] == "sbom"
    private = (released["workdir"] / ".nexus-signing" / "ed25519.pem").read_text()
    for path in released["artifacts"].rglob("*"):
        if path.is_file():
            assert private.splitlines()[1] not in path.read_text(errors="replace")


@pytest.mark.docker
def test_verify_passes_on_the_real_registry(released, capsys):
    code, out = _verify(released["workdir"], released["env"], capsys)
    assert code == 0, out
    assert "PASS py-svc" in out and "registry has it under 1.0.0" in out and "VERIFIED" in out
    assert released["env"]["REGISTRY_PASSWORD"] not in out


@pytest.mark.docker
def test_a_changed_byte_in_the_statement_fails(released, tmp_path, capsys):
    workdir = _copy(released, tmp_path)
    path = workdir / "artifacts" / "provenance" / "py-svc.intoto.jsonl"
    envelope = json.loads(path.read_text())
    payload = bytearray(base64.b64decode(envelope["payload"]))
    payload[payload.index(b"NPM_TOKEN") + 1] ^= 0x01  # one byte of the statement
    envelope["payload"] = base64.b64encode(bytes(payload)).decode()
    path.write_text(json.dumps(envelope) + "\n")
    _point_manifest_at(workdir, path)
    code, out = _verify(workdir, released["env"], capsys, "--offline")
    assert code == 1 and "FAIL py-svc" in out and "signature does not verify with key" in out, out


def _point_manifest_at(workdir: Path, provenance: Path) -> None:
    """Record the tampered file's checksum, so that only the signature can catch it."""
    import hashlib

    manifest_path = workdir / "artifacts" / "artifacts_manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["images"][0]["provenance"]["sha256"] = hashlib.sha256(provenance.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest))


@pytest.mark.docker
def test_a_different_digest_fails(released, tmp_path, capsys):
    workdir = _copy(released, tmp_path)
    manifest_path = workdir / "artifacts" / "artifacts_manifest.json"
    manifest = json.loads(manifest_path.read_text())
    other = "sha256:" + "0" * 64
    manifest["images"][0]["digest"] = other
    manifest["images"][0]["repo_digest"] = manifest["images"][0]["repo_digest"].split("@")[0] + "@" + other
    manifest_path.write_text(json.dumps(manifest))
    code, out = _verify(workdir, released["env"], capsys)
    assert code == 1 and f"is not the manifest's image {released['registry']}/{released['repository']}@{other}" in out, out


@pytest.mark.docker
def test_a_tag_moved_in_the_registry_fails(released, docker_client, attest_images, registry_auth, tmp_path, capsys):
    workdir = _copy(released, tmp_path)
    repository = released["repository"]
    _, node_id, _ = attest_images["node"]
    registry = released["registry"]
    moved = push(docker_client, node_id, registry, repository, "1.0.0", registry_auth)
    try:
        code, out = _verify(workdir, released["env"], capsys)
        assert code == 1 and f"points at {moved}, not the signed {released['digest']}" in out, out
    finally:
        push(docker_client, released["image_id"], registry, repository, "1.0.0", registry_auth)


@pytest.mark.docker
def test_a_wrong_key_fails(released, tmp_path, capsys):
    other, _ = load_or_create_key(tmp_path / "other.pem")
    from nexus_assets.attest.signing import public_pem

    (tmp_path / "other.pub").write_bytes(public_pem(other))
    code, out = _verify(released["workdir"], released["env"], capsys, "--offline", "--public-key",
                        str(tmp_path / "other.pub"))
    assert code == 1 and "signature does not verify with key" in out and "envelope signed by key" in out, out


@pytest.mark.docker
def test_wrong_credentials_and_registry_down_are_said_without_secrets(released, capsys):
    code, out = _verify(released["workdir"], {"REGISTRY_USERNAME": "nexus", "REGISTRY_PASSWORD": "wrong-Pass-123"},
                        capsys)
    assert code == 1 and f"registry {released['registry']} refused the credentials" in out
    assert "wrong-Pass-123" not in out
    from nexus_assets.cli.verify import check_registry
    from nexus_assets.evidence.check import Verdict

    verdict = Verdict("down")
    check_registry({"repo_digest": f"127.0.0.1:9/nexus/x@{released['digest']}", "digest": released["digest"],
                    "tag": "1.0.0"}, verdict)  # port 9 (discard): nothing listens
    assert not verdict.passed and verdict.reasons[0].startswith("registry 127.0.0.1:9 cannot be reached"), verdict


@pytest.mark.docker
def test_a_changed_sbom_fails(released, tmp_path, capsys):
    workdir = _copy(released, tmp_path)
    sbom = workdir / "artifacts" / "sbom" / "py-svc.cdx.json"
    sbom.write_bytes(sbom.read_bytes().replace(b'"pip"', b'"pop"', 1))
    code, out = _verify(workdir, released["env"], capsys, "--offline")
    assert code == 1 and "SBOM sbom/py-svc.cdx.json sha256" in out and "differs from the manifest's" in out, out


def _run_pack(folder: Path, *args: str) -> subprocess.CompletedProcess:
    # -I: isolated, so nothing of this project can be imported; cwd elsewhere as an auditor's would be.
    return subprocess.run([sys.executable, "-I", str(folder / "verify.py"), *args], capture_output=True, text=True,
                          cwd=folder.parent, timeout=60)


@pytest.mark.docker
def test_evidence_pack_verifies_offline_and_catches_tampering(released, tmp_path):
    reports = tmp_path / "reports"
    reports.mkdir()
    pdf = reports / "compliance_report_20261125.pdf"
    pdf.write_bytes(b"%PDF-1.4\n% a stand-in report for this test\n%%EOF\n")
    pack = tmp_path / "away" / "evidence"
    listed = build_evidence_pack(released["artifacts"], pack, released["key"], pdf)
    assert {"artifacts_manifest.json", "signing_key.pub", "sbom/py-svc.cdx.json", "provenance/py-svc.intoto.jsonl",
            "compliance_report_20261125.pdf", "verify.py", "README.txt"} == set(listed)
    assert "nexus_assets" not in (pack / "verify.py").read_text().replace("nexus-assets", "")
    done = _run_pack(pack)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASS py-svc" in done.stdout and "PASS SHA256SUMS" in done.stdout and "VERIFIED" in done.stdout
    assert all(v.passed for v in check_folder(pack))

    for name, change in (("compliance_report_20261125.pdf", lambda b: b + b"x"),
                         ("artifacts_manifest.json", lambda b: b.replace(b"1.0.0", b"1.0.1", 1)),
                         ("sbom/py-svc.cdx.json", lambda b: b.replace(b'"pip"', b'"pop"', 1))):
        copy = tmp_path / f"tampered-{name.replace('/', '-')}"
        shutil.copytree(pack, copy)
        (copy / name).write_bytes(change((copy / name).read_bytes()))
        done = _run_pack(copy)
        assert done.returncode == 1, done.stdout
        assert f"{name} sha256 differs from SHA256SUMS" in done.stdout, done.stdout
        assert "NOT VERIFIED" in done.stdout

    copy = tmp_path / "tampered-sums"
    shutil.copytree(pack, copy)
    sums = (copy / "SHA256SUMS").read_text().replace("compliance_report", "compliance_rep0rt")
    (copy / "SHA256SUMS").write_text(sums)
    done = _run_pack(copy)
    assert done.returncode == 1 and "SHA256SUMS differs from its signed copy" in done.stdout, done.stdout
    done = _run_pack(pack, "--expect-keyid", "00ff")
    assert done.returncode == 1 and "not the expected 00ff" in done.stdout


def test_a_pulled_image_says_it_came_from_the_registry_cache():
    """An image taken from the registry cache was built and tested by an earlier run: the
    statement says so and names the cache tag and the commit the image was built from."""
    from nexus_assets.attest.provenance import build_statement

    facts = BuildFacts(service="py-svc", repo_digest="r/nexus/py-svc@sha256:" + "1" * 64, digest="sha256:" + "1" * 64,
                       image_id="sha256:" + "2" * 64, tag="1.0.0", image_run_id="run-pull", finished_at=time.time(),
                       build_seconds=0.0, source_hash="f" * 24, tree_hash="e" * 64, service_path="services/py-svc")
    built = build_statement(facts, sbom_path="sbom/py-svc.cdx.json", sbom_sha256="3" * 64, builder_id="b",
                            attest_run_id="run-attest", versions={})
    assert built["predicate"]["buildDefinition"]["internalParameters"]["obtained"] == "built"
    assert "registryCache" not in built["predicate"]["buildDefinition"]["internalParameters"]
    cache = {"tag": "r/nexus/py-svc:cache-abc", "digest": "sha256:" + "1" * 64, "revision": "c" * 40,
             "created": "2026-01-01T00:00:00Z", "pulled_layers": True, "seconds": 0.4}
    pulled = build_statement(dataclasses.replace(facts, cache=cache), sbom_path="sbom/py-svc.cdx.json",
                             sbom_sha256="3" * 64, builder_id="b", attest_run_id="run-attest", versions={})
    internal = pulled["predicate"]["buildDefinition"]["internalParameters"]
    assert internal["obtained"] == "pulled from the registry cache"
    assert internal["registryCache"] == {k: cache[k] for k in ("tag", "digest", "revision", "created")}
