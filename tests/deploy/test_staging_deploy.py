"""The staging deploy against a real staging host (its own engine and sshd, scripts/staging_host.sh)
and the session's registry: deploy v1 healthy, the drift audit (a stopped container, one replaced
by another image), refusals that change nothing, the automatic rollback of an unhealthy v2, a
deployment that waits for the host's lock and proceeds, and the pruning of old releases with their
images. The tests run in this order and share the host."""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import io
import json
import os
import subprocess
import tarfile
import tempfile
import threading
import time
import uuid
from pathlib import Path

import docker
import pytest

from nexus_assets.cli.main import main
from nexus_assets.cli.staging import deploy_staging
from nexus_assets.core.settings import Settings
from nexus_assets.resources.staging import Session, staging_settings
from nexus_assets.testrepos.synthetic import generate_monorepo

pytestmark = [pytest.mark.docker, pytest.mark.slow]
GIT = ["git", "-c", "user.name=Test", "-c", "user.email=test@example.invalid"]


@pytest.fixture(scope="module")
def target(tmp_path_factory, session_registry, staging_host):
    """A two-service repository released as 1.0.0 and deployed to the staging host by
    `nexus-agent run --deploy-staging`; the environment the CLI reads; the deploy's exit code."""
    root = tmp_path_factory.mktemp("deploy")
    repo = root / "repo"
    generate_monorepo(repo, 2)
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run([*GIT, "-C", str(repo), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(repo), "commit", "-q", "-m", "monorepo"], check=True)
    (root / "secrets.env").write_text("UNUSED_SECRET=never-shown-4711\n")
    env = {k: v for k, v in staging_host.items() if k != "DOCKER_HOST"}
    # NEXUS_PROBE_INTERVAL 0: two services need no slower health checks (the rollback test's 8 s
    # deadline could not be met by a first check 10 s after the start); the prune test sets one
    env |= {"DAGSTER_HOME": str(root / "dagster_home"), "NEXUS_STAGING_ENV_FILE": str(root / "secrets.env"),
            "NEXUS_HEALTH_TIMEOUT": "20", "NEXUS_REPO": str(repo), "NEXUS_PROBE_INTERVAL": "0"}
    registry = f"{session_registry.address}/stg-{uuid.uuid4().hex[:8]}"
    args = ["--repo", str(repo), "--workdir", str(root / "work"), "--registry", registry]
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        mp.delenv("VERSION", raising=False)
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            code = main(["run", *args, "--version", "1.0.0", "--deploy-staging"])
        yield {"repo": repo, "work": root / "work", "args": args, "code": code, "mp": mp, "out": output.getvalue(),
               "engine": docker.DockerClient(base_url=staging_host["DOCKER_HOST"]),
               "dir": Path(staging_host["NEXUS_STAGING_DIR"])}
    cleanup = docker.from_env()
    for image in cleanup.api.images():
        for tag in image.get("RepoTags") or []:
            if tag.startswith(registry + "/"):
                cleanup.api.remove_image(tag, force=True)


def _report(work: Path) -> dict:
    [path] = (work / "reports").glob("deployment_report_*.json")
    return json.loads(path.read_text())["staging"]


def _host_state(target) -> tuple:
    folder = target["dir"]
    return ((folder / "deploy.log").read_text(), os.readlink(folder / "current"),
            sorted(c.id for c in target["engine"].containers.list(all=True)),
            sorted(p.name for p in (folder / "releases").iterdir()))


def test_deploy_v1_is_healthy_and_a_stopped_container_is_named_by_the_audit(target, capfd):
    assert target["code"] == 0, target["out"][-3000:]
    staging = _report(target["work"])
    manifest = json.loads((target["work"] / "artifacts" / "artifacts_manifest.json").read_text())
    pinned = {i["service"]: i["repo_digest"] for i in manifest["images"]}
    assert staging["ok"] and staging["audit"]["passed"] and staging["rolled_back_to"] is None
    assert {r["service"]: r["running"] for r in staging["audit"]["services"]} == pinned
    assert all(r["health"] == "healthy" for r in staging["audit"]["services"])
    env_file = target["dir"] / ".env"
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"
    log = [json.loads(line) for line in (target["dir"] / "deploy.log").read_text().splitlines()]
    assert log[-1]["release"] == "verified_release_v1.0.0" and log[-1]["result"] == "ok"
    assert log[-1]["digests"] == pinned
    out = target["out"]
    assert "never-shown-4711" not in out and "signed provenance verified" in out

    assert main(["audit", "--workdir", str(target["work"])]) == 0
    assert "matches the host" in capfd.readouterr().out
    container = target["engine"].containers.get("nexus-cos_node-svc-002_1")
    container.stop(timeout=2)
    try:
        assert main(["audit", "--workdir", str(target["work"])]) == 1
        assert "DRIFT node-svc-002: container nexus-cos_node-svc-002_1 is exited" in capfd.readouterr().out
    finally:
        container.start()
    waited = 0
    while target["engine"].api.inspect_container(container.id)["State"].get("Health", {}).get("Status") != "healthy":
        waited += 1
        assert waited < 60, "node-svc-002 did not come back healthy"
        time.sleep(0.5)
    assert main(["audit", "--workdir", str(target["work"])]) == 0


def _pinned(target) -> dict[str, str]:
    manifest = json.loads((target["work"] / "artifacts" / "artifacts_manifest.json").read_text())
    return {i["service"]: i["repo_digest"] for i in manifest["images"]}


def test_a_container_replaced_by_another_image_is_named_with_both_digests(target, capfd):
    engine, pinned = target["engine"], _pinned(target)
    old = engine.containers.get("nexus-cos_node-svc-002_1")
    labels = {k: v for k, v in old.labels.items() if k in ("com.docker.compose.project", "com.docker.compose.service")}
    env = old.attrs["Config"]["Env"]
    old.remove(force=True)
    # by hand, as an operator would: the same name and compose labels, another image the host has
    engine.containers.run(pinned["node-svc-001"], name="nexus-cos_node-svc-002_1", labels=labels, environment=env,
                          detach=True)
    try:
        assert main(["audit", "--workdir", str(target["work"])]) == 1
        out = capfd.readouterr().out
        assert (f"DRIFT node-svc-002: container nexus-cos_node-svc-002_1 runs another image {pinned['node-svc-001']}, "
                f"not the pinned {pinned['node-svc-002']}") in out
    finally:  # the package's own script puts the release back (it recreates what compose did not start)
        staging = staging_settings(need_env_file=False)
        with Session(staging) as session:
            tag = session.run(f"readlink {staging.dir}/current").out.strip().rsplit("/", 1)[-1]
            session.run(f"bash {staging.dir}/current/scripts/rollback_to_tag.sh {tag} --host-dir {staging.dir}")
    assert main(["audit", "--workdir", str(target["work"])]) == 0


def test_unreachable_host_and_a_wrong_host_key_refuse_and_change_nothing(target, tmp_path, capfd):
    before = _host_state(target)
    mp, args = target["mp"], target["args"]
    host = os.environ["NEXUS_STAGING_HOST"]
    mp.setenv("NEXUS_STAGING_HOST", host.rsplit(":", 1)[0] + ":1")  # nothing listens there
    assert main(["run", *args, "--version", "1.0.0", "--deploy-staging"]) == 1
    assert "is unreachable" in capfd.readouterr().out
    mp.setenv("NEXUS_STAGING_HOST", host)

    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    pinned = Path(os.environ["NEXUS_STAGING_KNOWN_HOSTS"]).read_text().split()[0]
    (tmp_path / "known_hosts").write_text(pinned + " " + " ".join((tmp_path / "other.pub").read_text().split()[:2]))
    original = os.environ["NEXUS_STAGING_KNOWN_HOSTS"]
    mp.setenv("NEXUS_STAGING_KNOWN_HOSTS", str(tmp_path / "known_hosts"))
    try:
        assert main(["run", *args, "--version", "1.0.0", "--deploy-staging"]) == 1
        out = capfd.readouterr().out
        assert "is not the one" in out and "refused, nothing was changed" in out
        assert main(["audit", "--workdir", str(target["work"])]) == 2
    finally:
        mp.setenv("NEXUS_STAGING_KNOWN_HOSTS", original)
    assert _host_state(target) == before


def test_an_unhealthy_v2_is_rolled_back_to_v1_by_digest(target, capfd):
    repo = target["repo"]
    compose = (repo / "docker-compose.yml").read_text()
    # Healthy where it is tested (HEALTH_MODE defaults to ok: the tests run it as compose does),
    # unhealthy on the host, whose .env (the operator's secrets file) sets it otherwise.
    compose = compose.replace("    build: ./services/node-svc-001\n",
                              "    build: ./services/node-svc-001\n    environment:\n      HEALTH_MODE: ${HEALTH_MODE:-ok}\n"
                              "    healthcheck:\n      test: [\"CMD\", \"node\", \"-e\", "
                              "\"process.exit(process.env.HEALTH_MODE === 'ok' ? 0 : 1)\"]\n"
                              "      interval: 1s\n      retries: 1\n")
    (repo / "docker-compose.yml").write_text(compose)
    subprocess.run([*GIT, "-C", str(repo), "commit", "-q", "-am", "v2: a health check that fails"], check=True)
    target["mp"].setenv("NEXUS_HEALTH_TIMEOUT", "8")
    secrets = Path(os.environ["NEXUS_STAGING_ENV_FILE"])
    kept = secrets.read_text()
    secrets.write_text(kept + "HEALTH_MODE=broken\n")
    try:
        assert main(["run", *target["args"], "--version", "1.0.1", "--deploy-staging"]) == 1
    finally:
        secrets.write_text(kept)
    out = capfd.readouterr().out
    assert "rolled back to verified_release_v1.0.0" in out
    staging = _report(target["work"])
    assert staging["release"] == "verified_release_v1.0.1" and not staging["ok"]
    assert staging["rolled_back_to"] == "verified_release_v1.0.0" and staging["second_audit"]["passed"]
    assert "node-svc-001" in staging["failure"]
    assert os.readlink(target["dir"] / "current") == "releases/verified_release_v1.0.0"
    log = [json.loads(line) for line in (target["dir"] / "deploy.log").read_text().splitlines()]
    assert log[-1]["result"] == "failed" and log[-1]["rolled_back_to"] == "verified_release_v1.0.0"
    assert main(["audit", "--workdir", str(target["work"])]) == 0


def _deploy_only(target) -> int:
    """The deploy job alone (as the UI's staging_deploy job), on the package as it is in reports/."""
    args = argparse.Namespace(staging_host=None, staging_ssh_key=None, staging_known_hosts=None, staging_dir=None,
                              staging_env_file=None, health_timeout=None)
    settings = Settings.from_env(repo=target["repo"], workdir=target["work"], registry=target["args"][-1])
    return deploy_staging(settings, args)


def _repack(package: Path, change) -> None:
    """Rewrite the package with change(folder) applied, SHA256SUMS kept as it was."""
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(package, "r:gz") as tar:
            tar.extractall(tmp, filter="data")
        [top] = list(Path(tmp).iterdir())
        change(top)
        with tarfile.open(package, "w:gz") as tar:
            tar.add(top, arcname=top.name)


def test_a_corrupted_package_tampered_provenance_and_a_held_lock_change_nothing(target, capfd):
    [package] = (target["work"] / "reports").glob("deployment_package_*.tar.gz")
    original = package.read_bytes()
    before = _host_state(target)
    try:
        _repack(package, lambda top: (top / "docker-compose.full.yml").write_text("services: {}\n"))
        assert _deploy_only(target) == 1
        out = capfd.readouterr().out
        assert "does not match SHA256SUMS" in out and "nothing was started" in out

        def tamper(top: Path) -> None:
            [provenance] = (top / "artifacts" / "provenance").glob("node-svc-001.*")
            envelope = json.loads(provenance.read_text().splitlines()[0])
            envelope["payload"] = base64.b64encode(b'{"_type": "forged"}').decode()
            provenance.write_text(json.dumps(envelope) + "\n")
            manifest_path = top / "artifacts" / "artifacts_manifest.json"
            manifest = json.loads(manifest_path.read_text())
            for image in manifest["images"]:  # the forger fixes the checksums too: only the signature tells
                if image["service"] == "node-svc-001":
                    image["provenance"]["sha256"] = hashlib.sha256(provenance.read_bytes()).hexdigest()
            manifest_path.write_text(json.dumps(manifest))
            sums = "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.relative_to(top).as_posix()}\n"
                           for p in sorted(top.rglob("*")) if p.is_file() and p.name != "SHA256SUMS")
            (top / "SHA256SUMS").write_text(sums)

        package.write_bytes(original)
        _repack(package, tamper)
        assert _deploy_only(target) == 1
        out = capfd.readouterr().out
        assert "FAIL node-svc-001" in out and "the signed provenance does not verify; nothing was started" in out
    finally:
        package.write_bytes(original)
    assert _host_state(target) == before

    staging = staging_settings(need_env_file=False)
    with Session(staging) as session:
        session.write(f"{staging.dir}/.deploy.lock.holder", b"tester@elsewhere deploying verified_release_v9 since "
                      b"2026-12-07T00:00:00+00:00\n", 0o644)
        holder = session.open(f"exec flock {staging.dir}/.deploy.lock sh -c 'echo held; exec cat >/dev/null'")
        assert holder.recv(5) == b"held\n"
        target["mp"].setenv("NEXUS_DEPLOY_LOCK_WAIT", "2")
        try:
            started = time.monotonic()
            assert _deploy_only(target) == 1
            assert time.monotonic() - started < 30
            out = capfd.readouterr().out
            assert "another deployment holds" in out and "tester@elsewhere deploying verified_release_v9 since " \
                "2026-12-07T00:00:00+00:00" in out and "waited 2s" in out
        finally:
            target["mp"].delenv("NEXUS_DEPLOY_LOCK_WAIT")
            holder.shutdown_write()
            holder.close()
            session.run(f"rm -f {staging.dir}/.deploy.lock.holder")
    assert _host_state(target) == before


def test_a_second_deployment_waits_for_the_lock_and_proceeds_when_it_is_let_go(target, capfd):
    staging = staging_settings(need_env_file=False)
    with Session(staging) as session:
        holder = session.open(f"exec flock {staging.dir}/.deploy.lock sh -c 'echo held; exec cat >/dev/null'")
        assert holder.recv(5) == b"held\n"
        release = threading.Timer(4, lambda: (holder.shutdown_write(), holder.close()))
        target["mp"].setenv("NEXUS_DEPLOY_LOCK_WAIT", "60")
        started = time.monotonic()
        release.start()
        try:
            assert _deploy_only(target) == 0
        finally:
            release.cancel()
            target["mp"].delenv("NEXUS_DEPLOY_LOCK_WAIT")
        assert time.monotonic() - started >= 4
    out = capfd.readouterr().out
    assert "waiting up to 60s" in out and "got the deploy lock after" in out
    assert "check staging_deployment:post_deploy_audit passed" in out


def _release_changing(target, version: str) -> None:
    """Release `version` with node-svc-002 changed (a new image) and deploy it."""
    repo = target["repo"]
    (repo / "services" / "node-svc-002" / "RELEASE_NOTE.txt").write_text(f"{version}\n")
    subprocess.run([*GIT, "-C", str(repo), "add", "-A"], check=True)
    subprocess.run([*GIT, "-C", str(repo), "commit", "-q", "-m", f"node-svc-002 for {version}"], check=True)
    assert main(["run", *target["args"], "--version", version, "--deploy-staging"]) == 0


def test_old_releases_are_pruned_with_their_images_keeping_the_current_and_the_previous(target, capfd):
    folder, engine = target["dir"], target["engine"]
    releases = lambda: sorted(p.name for p in (folder / "releases").iterdir())  # noqa: E731
    assert os.readlink(folder / "current") == "releases/verified_release_v1.0.1"  # the lock test deployed it
    oldest = _pinned(target)["node-svc-002"]  # v1.0.1's node-svc-002, which no later release runs
    shared = _pinned(target)["node-svc-001"]
    target["mp"].setenv("NEXUS_KEEP_RELEASES", "2")
    target["mp"].setenv("NEXUS_PROBE_INTERVAL", "3")  # and the host's health-check interval goes with a release
    _release_changing(target, "1.0.2")
    # v1.0.0 ran before v1.0.1 (it was last rolled back to before v1.0.1 was deployed again): pruned first
    assert releases() == ["verified_release_v1.0.1", "verified_release_v1.0.2"]
    _release_changing(target, "1.0.3")
    capfd.readouterr()
    assert releases() == ["verified_release_v1.0.2", "verified_release_v1.0.3"]
    assert os.readlink(folder / "current") == "releases/verified_release_v1.0.3"
    assert _report(target["work"])["pruned"] == ["verified_release_v1.0.1"]
    with pytest.raises(docker.errors.ImageNotFound):
        engine.images.get(oldest)
    assert engine.images.get(shared)  # v1.0.3 still runs it
    current = _pinned(target)
    for service, ref in current.items():
        container = engine.containers.get(f"nexus-cos_{service}_1")
        assert ref in engine.images.get(container.image.id).attrs["RepoDigests"]
        assert container.attrs["Config"]["Healthcheck"]["Interval"] == 3_000_000_000
    assert (folder / "releases" / "verified_release_v1.0.3" / "probe-interval.yml").is_file()
    assert main(["audit", "--workdir", str(target["work"])]) == 0
