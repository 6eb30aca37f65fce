"""Step F, end to end: the repository's compose file brought up with Debian's docker-compose,
every container waited on until running and healthy, then always taken down.

Like the per-service stages in `service_tests` (which re-exports `run_e2e` and
`compose_binary`), a stack that fails is a StageResult with passed=False, the full log goes to
<log_dir>/test_results_<name>_e2e.log, and the stage has a timeout.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from nexus_assets.testing.stage import Stage, StageResult, docker_errors

if TYPE_CHECKING:  # type names only: the Docker SDK is untyped (these are Any to mypy)
    from docker import DockerClient


def compose_binary() -> str | None:
    """Debian's docker-compose 1.29 (the deploy target uses the same one)."""
    return shutil.which("docker-compose") or ("/usr/bin/docker-compose" if Path("/usr/bin/docker-compose").is_file() else None)


UNKNOWN = "not built here: refused, or not a service of the repository; see discovery's problems"


def _images(config: str) -> list[str]:
    """The image of every service in `docker-compose config`'s output (variables filled in)."""
    try:
        services = (yaml.safe_load(config) or {}).get("services") or {}
    except yaml.YAMLError:
        return []
    return [str(s["image"]) for s in services.values() if isinstance(s, dict) and s.get("image")]


def _unbuilt(client: DockerClient, images: list[str], ours: str, why: dict[str, str]) -> list[str]:
    """The services whose image (one of ours: under the prefix `ours`, REGISTRY/nexus/) the stack
    needs but the engine lacks, each with why (why: {service: reason}, from tagged_images):
    compose would otherwise try to pull it and fail with the registry's words, not ours."""
    import docker.errors

    missing = []
    for image in images:
        if not image.startswith(ours):
            continue
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            service = image[len(ours):].rsplit(":", 1)[0]
            reason = next((r for s, r in why.items() if s.lower() == service), None) or UNKNOWN
            missing.append(f"{service} ({reason})")
    return missing


def run_e2e(client: DockerClient, compose_file: Path, project_dir: Path, log_dir: Path, *, timeout: float = 300,
            env: dict[str, str] | None = None, name: str = "platform", ours: str | None = None,
            why: dict[str, str] | None = None) -> StageResult:
    """`docker-compose up -d` the repository's compose file as project nexus-e2e-<hash>, wait until
    every container is running and every one with a healthcheck is healthy, then always

    `down -v --remove-orphans`. env (e.g. image names of the images just built) is passed to
    compose; its values are never logged. No compose file is a skip. ours: the prefix of the
    images this pipeline builds (REGISTRY/nexus/): one the engine lacks fails the stage before
    anything starts, naming the service and why (why: {service: reason})."""
    st = Stage(name, "e2e", log_dir, timeout)
    if not compose_file.is_file():
        return st.result(True, f"no compose file {compose_file.name}: no e2e stage defined", skipped=True)
    binary = compose_binary()
    if binary is None:
        return st.result(False, "docker-compose not found: install Debian's docker-compose")
    project = "nexus-e2e-" + hashlib.sha256(f"{compose_file.resolve()}:{uuid.uuid4()}".encode()).hexdigest()[:12]
    base = [binary, "-f", str(compose_file.resolve()), "-p", project, "--project-directory", str(project_dir)]
    # Legacy builder: Debian has no buildx, and compose may have to build a service.
    environ = {**os.environ, "DOCKER_BUILDKIT": "0", "COMPOSE_DOCKER_CLI_BUILD": "0", **(env or {})}
    st.details.update(project=project, compose_file=str(compose_file), env_keys=sorted(env or {}), services={})
    st.write(f"# project {project}; env keys passed: {', '.join(sorted(env or {})) or '(none)'}")

    def compose(*args: str, limit: float) -> subprocess.CompletedProcess[str]:
        st.write(f"$ docker-compose {' '.join(args)}")
        began = time.monotonic()
        done = subprocess.run([*base, *args], cwd=project_dir, env=environ, capture_output=True, text=True,
                              timeout=max(1.0, limit))
        st.write(done.stdout + done.stderr + f"# exit {done.returncode} after {time.monotonic() - began:.1f}s")
        return done

    def body() -> tuple[bool, str]:
        if ours:
            # compose 1.29 has no `config --images`; the resolved file may hold .env values: never logged
            listed = subprocess.run([*base, "config"], cwd=project_dir, env=environ, capture_output=True, text=True,
                                    timeout=max(1.0, min(60, st.remaining())))
            images = _images(listed.stdout) if listed.returncode == 0 else []
            st.write(f"$ docker-compose config: images {', '.join(images) or '(none read)'}")
            missing = _unbuilt(client, images, ours, why or {})
            if missing:
                return False, (f"e2e not started: the stack needs {len(missing)} service(s) with no image: "
                               + "; ".join(missing))
        up = compose("up", "-d", limit=st.remaining())
        ids = compose("ps", "-q", limit=min(30, st.remaining())).stdout.split()
        st.containers = len(ids)
        if up.returncode != 0:
            last = (up.stderr.strip().splitlines() or ["no output"])[-1]
            return False, f"docker-compose up failed (exit {up.returncode}): {last}"
        if not ids:
            return False, "docker-compose up started no containers"
        while True:
            waiting, failed = [], []
            for cid in ids:
                attrs = client.api.inspect_container(cid)
                svc = attrs["Config"]["Labels"].get("com.docker.compose.service", cid[:12])
                state = attrs["State"]
                health = (state.get("Health") or {}).get("Status")
                st.details["services"][svc] = health or state["Status"]
                if state["Status"] in ("exited", "dead") and state.get("ExitCode"):
                    failed.append(f"{svc} exited with code {state['ExitCode']}")
                elif health == "unhealthy":
                    failed.append(f"{svc} is unhealthy")
                    st.write(f"# {svc}: last health probe: {(state['Health'].get('Log') or [{}])[-1]}")
                elif state["Status"] != "exited" and (state["Status"] != "running" or health not in (None, "healthy")):
                    waiting.append(f"{svc} ({health or state['Status']})")
            if failed:
                return False, "; ".join(failed)
            if not waiting:
                return True, f"{len(ids)} containers up, every healthcheck healthy"
            if st.remaining() <= 0:
                return False, f"{st.timed_out()} waiting for {', '.join(waiting)}"
            time.sleep(0.5)

    api_error, _lost_engine = docker_errors()  # a lost engine fails the whole step, not this stage
    try:
        passed, reason = body()
    except subprocess.TimeoutExpired:
        passed, reason = False, st.timed_out()
    except api_error as exc:
        passed, reason = False, f"the engine refused: {getattr(exc, 'explanation', None) or exc}"
    finally:
        try:
            compose("logs", "--no-color", "--tail", "200", limit=60)
        except subprocess.TimeoutExpired:
            st.write("# docker-compose logs timed out")
        try:
            down = compose("down", "-v", "--remove-orphans", "--timeout", "3", limit=120)
            st.details["down_exit"] = down.returncode
        except subprocess.TimeoutExpired:
            st.write("# docker-compose down timed out")
    return st.result(passed, reason)
