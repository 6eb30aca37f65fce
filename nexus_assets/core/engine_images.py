"""The engine's images as one listing: read once per verdict, and by `nexus-agent run`'s
nothing-changed check, which must not import Dagster (so this lives apart from core/lineage)."""

from __future__ import annotations

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
    client: DockerClient

    @classmethod
    def read(cls, client: DockerClient) -> EngineImages:
        rows = client.api.images()  # top-level images: tagged and dangling, not build steps
        by_tag = {tag: row for row in rows for tag in row.get("RepoTags") or [] if tag != "<none>:<none>"}
        return cls(frozenset(row["Id"] for row in rows), by_tag, client)

    def has(self, image_id: str) -> bool:
        """Whether the engine has the image, also as an untagged build step (asked only then)."""
        import docker.errors

        if image_id in self.ids:
            return True
        try:
            self.client.api.inspect_image(image_id)
            return True
        except docker.errors.ImageNotFound:
            return False

    def tag_id(self, tag: str) -> str | None:
        row = self.by_tag.get(tag if ":" in tag.rsplit("/", 1)[-1] else f"{tag}:latest")
        return row["Id"] if row else None
