"""The artifacts manifest asset and its gate: image digests for every service, not empty."""


import logging

import dagster as dg

from nexus_assets.core.fileio import read_json, write_json
from nexus_assets.core.hashing import file_sha256, json_version
from nexus_assets.images.baseimages import load_base_image_map
from nexus_assets.images.staleness import build_services, image_key, service_states
from nexus_assets.release.manifest import assemble_manifest
from nexus_assets.resources import DockerEngine, NexusConfig

progress = logging.getLogger("nexus_assets.progress")


def artifacts_manifest_asset(service_names: list[str]) -> dg.AssetsDefinition:
    @dg.asset(
        name="artifacts_manifest",
        deps=[image_key(name) for name in service_names],
        group_name="release", kinds={"json"},
        description="artifacts/artifacts_manifest.json: the current image, tags and digest of every service, "
                    "with base-image substitutions, read back from the engine and Dagster's records.",
    )
    def artifacts_manifest(context: dg.AssetExecutionContext, nexus: NexusConfig, docker_engine: DockerEngine) -> dg.MaterializeResult:
        settings = nexus.settings()
        client = docker_engine.client()
        try:
            states = service_states(build_services(settings), client, context.instance, load_base_image_map())
        finally:
            client.close()
        manifest = assemble_manifest(states, settings)
        path = settings.artifacts / "artifacts_manifest.json"
        write_json(path, manifest)
        totals = manifest["totals"]
        progress.info("manifest %s: %d/%d services with a digest", path, totals["with_digest"], totals["services"])
        return dg.MaterializeResult(
            data_version=dg.DataVersion(json_version(manifest)),
            metadata={"path": dg.MetadataValue.path(str(path)), "sha256": file_sha256(path), **totals,
                      "problems": dg.MetadataValue.json(manifest["problems"])},
        )

    return artifacts_manifest


@dg.asset_check(asset="artifacts_manifest", blocking=True,
                description="Guide gate: the manifest exists and lists an image digest for every service.")
def manifest_has_digests(nexus: NexusConfig) -> dg.AssetCheckResult:
    path = nexus.settings().artifacts / "artifacts_manifest.json"
    manifest = read_json(path)
    missing = [i["service"] for i in manifest["images"] if not i.get("digest")]
    totals = manifest["totals"]
    passed = totals["with_digest"] > 0 and not missing
    return dg.AssetCheckResult(
        passed=passed,
        description="every service has an image digest" if passed else
        f"no current image for: {', '.join(missing) or 'any service'}",
        metadata={"with_digest": totals["with_digest"], "services": totals["services"], "missing": missing},
    )
