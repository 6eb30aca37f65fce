"""What images are made from, as observable assets: source/<service> (the service folder's
content hash) and base_image/<name> (the image id in the engine). "Observe sources" in the UI,
the sensor and nexus-agent all record the same observations (core.lineage)."""


import warnings
from collections.abc import Iterator

import dagster as dg

from nexus_assets.core.engine_images import EngineImages
from nexus_assets.core.keys import base_image_key, source_key
from nexus_assets.core.lineage import (
    gone_images,
    observe_base_images,
    observe_sources,
    recorded_images,
    untested_images,
)
from nexus_assets.resources import GitRepo
from nexus_assets.target.baseimages import load_base_image_map
from nexus_assets.target.services import Service, build_services

# multi_observable_source_asset is marked beta; it is the documented way to observe many sources.
warnings.filterwarnings("ignore", category=dg.BetaWarning, message=".*multi_observable_source_asset.*")


def source_assets(services: list[Service]) -> dg.AssetsDefinition:
    """source/<service> for every service known at load."""
    specs = [dg.AssetSpec(source_key(s.name), group_name="images", kinds={"folder", "source"},
                          description=f"Source of {s.name}: the build context; its data version is the "
                                      "content hash of what the build reads (.dockerignore honoured, the "
                                      "Dockerfile included).")
             for s in services]

    # Dagster's @beta wrapper leaves the decorator untyped: what it makes is an AssetsDefinition.
    @dg.multi_observable_source_asset(name="service_sources", specs=specs, can_subset=True,  # type: ignore[untyped-decorator]
                                      required_resource_keys={"nexus", "docker_engine"})
    def service_sources(context: dg.AssetExecutionContext) -> Iterator[dg.ObserveResult]:
        wanted = {key.path[-1] for key in context.selected_asset_keys}
        settings = context.resources.nexus.settings()
        current = [s for s in build_services(settings) if s.name in wanted]
        git = GitRepo(path=str(settings.repo))  # the commit the repository is at, as its own entries
        commit = {"source_commit": git.revision() or "not in git", "source_commit_time": git.commit_time() or ""}
        client = context.resources.docker_engine.client()
        recorded = recorded_images(context.instance, [s.name for s in current])
        try:
            gone = gone_images(recorded, EngineImages.read(client))
        finally:
            client.close()
        untested = untested_images(context.instance, {n: i for n, i in recorded.items() if n not in gone})
        for observation in observe_sources(current, gone, untested):
            yield dg.ObserveResult(asset_key=observation.key, data_version=dg.DataVersion(observation.data_version),
                                   metadata={**observation.metadata, **commit})

    made: dg.AssetsDefinition = service_sources
    return made


def base_image_assets(names: list[str]) -> dg.AssetsDefinition:
    """base_image/<name> for every FROM image the services name."""
    by_key = {base_image_key(n): n for n in names}
    specs = [dg.AssetSpec(key, group_name="images", kinds={"docker", "base-image"},
                          description=f"Base image {name} in the engine (or its substitute): data version "
                                      "is the image id.")
             for key, name in sorted(by_key.items(), key=lambda kv: kv[1])]

    @dg.multi_observable_source_asset(name="base_images", specs=specs, can_subset=True,  # type: ignore[untyped-decorator]
                                      required_resource_keys={"docker_engine"})
    def base_images(context: dg.AssetExecutionContext) -> Iterator[dg.ObserveResult]:
        client = context.resources.docker_engine.client()
        try:
            found = observe_base_images([by_key[k] for k in context.selected_asset_keys], EngineImages.read(client),
                                        load_base_image_map())
        finally:
            client.close()
        for observation in found:
            yield dg.ObserveResult(asset_key=observation.key, data_version=dg.DataVersion(observation.data_version),
                                   metadata=observation.metadata)

    made: dg.AssetsDefinition = base_images
    return made
