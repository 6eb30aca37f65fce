"""The engine's images as one listing: read once per verdict, and by `nexus-agent run`'s
nothing-changed check, which must not import Dagster (so this lives apart from core/lineage)."""

from __future__ import annotations

import http.client
import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from docker import DockerClient  # untyped package: Any to mypy, a name to the reader


@dataclass(frozen=True)
class EngineImages:
    """One listing of the engine's images, read once per verdict: an engine with many images
    (every classic-builder step is one) answers a listing in tenths of a second."""

    ids: frozenset[str]
    by_tag: Mapping[str, Mapping[str, Any]]  # "name:tag" -> the listing's row (Id, Labels, ...)
    client: DockerClient | None  # None: read over the socket alone (read_unix_socket)

    @classmethod
    def read(cls, client: DockerClient) -> EngineImages:
        return cls.of(client.api.images(), client)  # top-level images: tagged and dangling, not build steps

    @classmethod
    def of(cls, rows: list[dict[str, Any]], client: DockerClient | None) -> EngineImages:
        by_tag = {tag: row for row in rows for tag in row.get("RepoTags") or [] if tag != "<none>:<none>"}
        return cls(frozenset(row["Id"] for row in rows), by_tag, client)

    @classmethod
    def read_unix_socket(cls, timeout: float = 30) -> EngineImages | None:
        """The same listing over the engine's Unix socket with the standard library alone, for the
        nothing-changed check: importing the Docker SDK (requests, paramiko) costs that check a
        quarter of a second, as much as the rest of it. None when DOCKER_HOST names anything but a
        Unix socket (TCP, TLS, SSH: the SDK's business) or the engine does not answer; the caller
        then takes the full path. Without an SDK client, has() knows the listed images only."""
        host = os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"
        if not host.startswith("unix://"):
            return None
        connection = _UnixHTTPConnection(host.removeprefix("unix://"), timeout)
        try:
            connection.request("GET", "/images/json")
            response = connection.getresponse()
            body = response.read()
            if response.status != 200:
                return None
            return cls.of(json.loads(body), None)
        except (OSError, http.client.HTTPException, ValueError):
            return None
        finally:
            connection.close()

    def has(self, image_id: str) -> bool:
        """Whether the engine has the image, also as an untagged build step (asked only then,
        and only with an SDK client)."""
        if image_id in self.ids:
            return True
        if self.client is None:
            return False
        import docker.errors

        try:
            self.client.api.inspect_image(image_id)
            return True
        except docker.errors.ImageNotFound:
            return False

    def tag_id(self, tag: str) -> str | None:
        row = self.by_tag.get(tag if ":" in tag.rsplit("/", 1)[-1] else f"{tag}:latest")
        return row["Id"] if row else None


class _UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP to the engine's API over its Unix socket (the host name is only the Host header)."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(self.socket_path)
        self.sock = sock
