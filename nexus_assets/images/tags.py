"""tagged_images: every service's current image under the release tags, and nothing else.

A tag is current only when it points at the image Dagster recorded for the service: a new
--version or --registry tags the current images without rebuilding them, a tag moved by
another build is moved back, and two services whose images would share a name are an error
naming both."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import dagster as dg

from nexus_assets.core.engine_images import EngineImages
from nexus_assets.core.lineage import recorded_images
from nexus_assets.core.settings import Settings
from nexus_assets.resources import DockerEngine
from nexus_assets.target.services import release_tags


def tags_code_version(registry: str, version: str) -> str:
    """tagged_images' code version: the tags it gives, so a new version or registry is a change."""
    return "tags-" + hashlib.sha256(f"{registry}|{version}".encode()).hexdigest()[:16]


def tag_current_images(context: dg.AssetExecutionContext, docker_engine: DockerEngine, settings: Settings,
                       names: list[str], built: dict[str, str]
                       ) -> dg.MaterializeResult[Any]:
    """Point every release tag at its service's recorded image; report what had no image."""
    recorded = recorded_images(context.instance, names)
    recorded.update(built)
    owners: dict[str, list[str]] = {}
    for name in names:
        owners.setdefault(name.lower(), []).append(name)
    collisions = {lower: owned for lower, owned in owners.items() if len(owned) > 1}
    rows, problems, moved = {}, [], []
    client = docker_engine.client()
    try:
        engine = EngineImages.read(client)  # one listing, not one inspect per service
        for name in sorted(names):
            if name.lower() in collisions:
                problems.append({"service": name, "reason": "image name nexus/" + name.lower() + " is shared by "
                                 + " and ".join(f"services/{n}" for n in collisions[name.lower()])
                                 + ": rename one folder"})
                continue
            image_id = recorded.get(name)
            if not image_id:
                problems.append({"service": name, "reason": "no current image (never built, failed, or gone)"})
                continue
            if not engine.has(image_id):
                problems.append({"service": name, "reason": f"image {image_id} is gone from the engine"})
                continue
            tags = release_tags(settings.registry, name, settings.version)
            for tag in tags:
                if engine.tag_id(tag) != image_id:
                    repo, _, tag_name = tag.rpartition(":")
                    client.api.tag(image_id, repo, tag_name)
                    moved.append(tag)
            rows[name] = {"image_id": image_id, "tags": tags}
    finally:
        client.close()
    if moved:
        context.log.info(f"tagged {len(moved)} tag(s) onto the recorded images: {', '.join(moved[:6])}"
                         + (" ..." if len(moved) > 6 else ""))
    for problem in problems:
        context.log.warning(f"{problem['service']}: {problem['reason']}")
    version = hashlib.sha256(json.dumps([rows, problems], sort_keys=True).encode()).hexdigest()[:24]
    return dg.MaterializeResult(
        asset_key="tagged_images",
        data_version=dg.DataVersion(version),
        metadata={"images": dg.MetadataValue.json(rows), "problems": dg.MetadataValue.json(problems),
                  "tagged": len(rows), "retagged": moved, "registry": settings.registry, "version": settings.version},
    )
