"""The Docker engine that builds and runs the service images."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import dagster as dg

from nexus_assets.core.errors import EngineError

if TYPE_CHECKING:
    from docker import DockerClient  # untyped package: Any to mypy, a name to the reader


def docker_client(base_url: str = "", timeout: int = 300) -> DockerClient:
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


class DockerEngine(dg.ConfigurableResource):  # type: ignore[type-arg]  # subclassed bare, as Dagster documents it
    """The Docker engine that builds and runs the service images."""

    base_url: str = ""
    timeout_seconds: int = 300

    @classmethod
    def from_env(cls) -> DockerEngine:
        """The engine DOCKER_HOST names (unset: the local socket): the one the definitions bind
        and nexus-agent pings, plans with and hands its run."""
        return cls(base_url=os.environ.get("DOCKER_HOST", ""))

    def client(self, timeout: int | None = None) -> DockerClient:
        """A client on a new connection that has answered a ping, or an EngineError saying what to do."""
        return docker_client(self.base_url, timeout or self.timeout_seconds)

    def answers(self, timeout: int = 10) -> bool:
        """Whether the engine answers a ping on a new connection now (a stopping engine still
        serves the connections already open)."""
        try:
            self.client(timeout).close()
        except EngineError:
            return False
        return True
