"""Dagster resources: one per outside thing the pipeline talks to."""

from __future__ import annotations

import subprocess
from pathlib import Path

import dagster as dg

from .errors import EngineError


def docker_client(base_url: str = "", timeout: int = 300):
    """A docker SDK client that has answered a ping, or an EngineError saying what to do."""
    import docker

    try:
        client = docker.DockerClient(base_url=base_url, timeout=timeout) if base_url else docker.from_env(timeout=timeout)
        client.ping()
        return client
    except Exception as exc:  # the SDK raises several unrelated types for "no engine"
        where = base_url or "DOCKER_HOST or unix:///var/run/docker.sock"
        raise EngineError(
            f"no Docker engine reachable at {where}: start it with `bash scripts/bootstrap.sh` "
            f"(or `dockerd &`), or set DOCKER_HOST ({type(exc).__name__})"
        ) from None


class DockerEngine(dg.ConfigurableResource):
    """The Docker engine that builds and runs the service images."""

    base_url: str = ""
    timeout_seconds: int = 300

    def client(self):
        return docker_client(self.base_url, self.timeout_seconds)


class GitRepo(dg.ConfigurableResource):
    """The target repository's git state, for OCI revision labels and lineage."""

    path: str

    def revision(self) -> str | None:
        if not (Path(self.path) / ".git").exists():
            return None
        done = subprocess.run(["git", "-C", self.path, "rev-parse", "HEAD"], capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else None


class NexusConfig(dg.ConfigurableResource):
    """Where the run reads and writes; bound from Settings in definitions.py."""

    repo: str
    workdir: str
    registry: str
    version: str
    max_parallel: int = 4
    test_timeout: float = 120.0  # seconds per test stage and service; a hung stage fails alone

    def settings(self):
        from .settings import Settings

        return Settings(
            repo=Path(self.repo), workdir=Path(self.workdir), registry=self.registry,
            version=self.version, max_parallel=self.max_parallel, test_timeout=self.test_timeout,
        )
