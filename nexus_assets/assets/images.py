"""Step H: one image asset per service, all built by one step that runs the selected (stale)
builds concurrently up to the configured limit. One step rather than one per service keeps
a 100-service run from paying Dagster's per-step process start-up a hundred times."""


import logging
from concurrent.futures import ThreadPoolExecutor, as_completed

import dagster as dg

from ..baseimages import load_base_image_map
from ..build import build_image, plan_build
from ..errors import NexusError
from ..resources import DockerEngine, GitRepo, NexusConfig
from ..services import Service
from ..staleness import image_key

progress = logging.getLogger("nexus_assets.progress")
SCAFFOLDED = dg.AssetKey("scaffolded_services")


def _build_one(engine: DockerEngine, settings, service: Service, revision: str | None) -> dict:
    client = engine.client()  # one client per thread: the SDK's session is not shared safely
    try:
        plan = plan_build(service, client, load_base_image_map())
        result = build_image(
            client, plan, registry=settings.registry, version=settings.version, revision=revision,
            source=str(settings.repo / "services" / service.name),
            log_path=settings.reports / f"build_{service.name}.log",
        )
        return {**result, "source_hash": plan.fingerprint, "tree_hash": plan.tree_hash, "base_images": plan.bases}
    finally:
        client.close()


def service_images_asset(services: list[Service], code_versions: dict[str, str]) -> dg.AssetsDefinition:
    """The multi-asset holding image/<service> for every service known at load time."""
    by_key = {image_key(s.name): s for s in services}
    specs = [
        dg.AssetSpec(
            key=image_key(s.name),
            deps=[SCAFFOLDED],
            description=f"Docker image of services/{s.name}, tagged REGISTRY/nexus/{s.name}:VERSION and :latest.",
            group_name="images",
            kinds={"docker"},
            code_version=code_versions[s.name],
            skippable=True,
            tags={"nexus/language": s.language},
            metadata={"service_path": f"services/{s.name}"},
        )
        for s in services
    ]

    @dg.multi_asset(name="service_images", specs=specs, can_subset=True)
    def service_images(context: dg.AssetExecutionContext, nexus: NexusConfig, docker_engine: DockerEngine, git: GitRepo):
        settings = nexus.settings()
        selected = [by_key[key] for key in sorted(context.selected_asset_keys, key=lambda k: k.to_user_string())]
        revision = git.revision()
        progress.info("building %d image(s), up to %d at a time", len(selected), settings.max_parallel)
        failures = []
        with ThreadPoolExecutor(max_workers=settings.max_parallel, thread_name_prefix="build") as pool:
            futures = {pool.submit(_build_one, docker_engine, settings, s, revision): s for s in selected}
            for future in as_completed(futures):
                service = futures[future]
                try:
                    built = future.result()
                except NexusError as exc:
                    failures.append(service.name)
                    progress.error("  FAILED %s: %s", service.name, exc)
                    context.log.error(str(exc))
                    yield dg.AssetObservation(
                        asset_key=image_key(service.name),
                        metadata={"status": "failed", "reason": str(exc),
                                  "build_log": str(settings.reports / f"build_{service.name}.log")},
                    )
                    continue
                progress.info("  built %s %s in %.1fs", service.name, built["image_id"][:19], built["seconds"])
                yield dg.MaterializeResult(
                    asset_key=image_key(service.name),
                    data_version=dg.DataVersion(built["image_id"]),
                    metadata={
                        "status": "built",
                        "image": built["tags"][0],
                        "tags": built["tags"],
                        "image_id": built["image_id"],
                        "digest": built["image_id"],
                        "size_bytes": built["size_bytes"],
                        "build_seconds": built["seconds"],
                        "source_hash": built["source_hash"],
                        "tree_hash": built["tree_hash"],
                        "base_images": built["base_images"],
                        "labels": built["labels"],
                        "build_log": dg.MetadataValue.path(built["build_log"]),
                    },
                )
        if failures:
            context.log.warning(f"{len(failures)} image(s) failed, the others were built: {', '.join(sorted(failures))}")

    return service_images
