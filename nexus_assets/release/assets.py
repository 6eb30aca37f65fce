"""The artifacts manifest asset and its gate: image digests for every service, not empty."""


import dagster as dg

from nexus_assets.core.fileio import read_json, write_json
from nexus_assets.core.hashing import json_version
from nexus_assets.core.keys import ARTIFACTS_MANIFEST, E2E_TESTS, TAGGED_IMAGES, image_key
from nexus_assets.core.lineage import AssetRecords, latest_observations, stale_images
from nexus_assets.core.metadata import report_metadata
from nexus_assets.release.manifest import ServiceRecord, assemble_manifest
from nexus_assets.resources import NexusConfig


def _plain(metadata) -> dict:
    return {key: getattr(value, "value", value) for key, value in metadata.items()}


def _latest_metadata(instance: dg.DagsterInstance, key: dg.AssetKey) -> dict | None:
    event = instance.get_latest_materialization_event(key)
    return _plain(event.asset_materialization.metadata) if event and event.asset_materialization else None


def service_records(context: dg.AssetExecutionContext, graph, names: list[str]) -> list[ServiceRecord]:
    """Dagster's records for every service image, read in one place for the manifest."""
    instance = context.instance
    tagged = _latest_metadata(instance, TAGGED_IMAGES) or {}
    rows = tagged.get("images") or {}
    known = AssetRecords(instance)  # one query for all, shared with the staleness verdict
    stale = stale_images(graph, instance, [image_key(n) for n in names], known)
    last: dict[dg.AssetKey, tuple[int, dict]] = {}
    for asset in known.get([image_key(n) for n in names]):
        record = asset.asset_entry.last_materialization_record
        if record is not None and record.event_log_entry.asset_materialization is not None:
            last[asset.asset_entry.asset_key] = (record.storage_id,
                                                 _plain(record.event_log_entry.asset_materialization.metadata))
    observed = latest_observations(instance, [image_key(n) for n in names])  # two queries for all
    records = []
    for name in names:
        key = image_key(name)
        storage_id, metadata = last.get(key, (-1, None))
        # A build that failed after the last image was made: its failure observation is newer.
        newest = observed.get(key)
        failure = None
        observation = newest.event_log_entry.asset_observation if newest is not None else None
        if newest is not None and observation is not None and newest.storage_id > storage_id:
            meta = _plain(observation.metadata)
            failure = meta.get("reason") if meta.get("status") == "failed" else None
        records.append(ServiceRecord(name=name, last=metadata, failure=failure, stale=stale.get(key),
                                     tagged=rows.get(name)))
    return records


def artifacts_manifest_asset(service_names: list[str], asset_graph) -> dg.AssetsDefinition:
    @dg.asset(
        key=ARTIFACTS_MANIFEST,
        deps=[TAGGED_IMAGES, E2E_TESTS],
        group_name="release", kinds={"json"},
        description="artifacts/artifacts_manifest.json: the current image, tags and digest of every service, "
                    "with base-image substitutions and the e2e result, read from Dagster's records.",
    )
    def artifacts_manifest(context: dg.AssetExecutionContext, nexus: NexusConfig) -> dg.MaterializeResult:
        settings = nexus.settings()
        with nexus.hold_workdir(context):  # one writer per working copy
            e2e = _latest_metadata(context.instance, E2E_TESTS)
            manifest = assemble_manifest(service_records(context, asset_graph(), service_names), settings,
                                         {k: e2e.get(k) for k in ("passed", "skipped", "seconds")} if e2e else None)
            path = settings.artifacts / "artifacts_manifest.json"
            write_json(path, manifest)
            totals = manifest["totals"]
            context.log.info(f"manifest {path}: {totals['with_digest']}/{totals['services']} services with a digest")
            return dg.MaterializeResult(
                data_version=dg.DataVersion(json_version(manifest)),
                metadata={**report_metadata(path), **totals, "problems": dg.MetadataValue.json(manifest["problems"])},
            )

    return artifacts_manifest


@dg.asset_check(asset=ARTIFACTS_MANIFEST, blocking=True,
                description="Guide gate: the manifest exists and lists an image digest for every service.")
def manifest_has_digests(nexus: NexusConfig) -> dg.AssetCheckResult:
    manifest = read_json(nexus.settings().artifacts / "artifacts_manifest.json")
    missing = [i["service"] for i in manifest["images"] if not i.get("digest")]
    totals = manifest["totals"]
    passed = totals["with_digest"] > 0 and not missing
    return dg.AssetCheckResult(
        passed=passed,
        description="every service has an image digest" if passed else
        f"no current image for: {', '.join(missing) or 'any service'}",
        metadata={"with_digest": totals["with_digest"], "services": totals["services"], "missing": missing},
    )
