"""Sensors: react to changes in the target repository by asking for the stale assets only."""


import hashlib

import dagster as dg

from nexus_assets.core.errors import NexusError
from nexus_assets.core.hashing import tree_hash
from nexus_assets.images.baseimages import load_base_image_map
from nexus_assets.images.staleness import build_services, image_key, service_states
from nexus_assets.resources import DockerEngine, NexusConfig

PREPARE_KEYS = [dg.AssetKey(k) for k in ("workspace", "discovery_parsed", "discrepancy_report", "scaffolded_services")]


def _last_data_version(instance: dg.DagsterInstance, key: dg.AssetKey) -> str | None:
    event = instance.get_latest_materialization_event(key)
    if event is None or event.asset_materialization is None:
        return None
    return event.asset_materialization.tags.get("dagster/data_version")


def plan_repo_change_run(context, nexus: NexusConfig, docker_engine: DockerEngine, known: set[str]):
    """What the repository change sensor would request now: (run_key, asset keys, notes)."""
    settings = nexus.settings()
    keys: list[dg.AssetKey] = []
    notes: list[str] = []
    repo_version = tree_hash(settings.repo)[:24]
    if _last_data_version(context.instance, dg.AssetKey("workspace")) != repo_version:
        keys += PREPARE_KEYS
        notes.append("repository content changed")
    client = docker_engine.client()
    try:
        states = service_states(build_services(settings, prefer_repo=True), client, context.instance, load_base_image_map())
    finally:
        client.close()
    for state in states:
        if not state.needs_build:
            continue
        if state.service.name not in known:
            notes.append(f"new service {state.service.name}: reload the code location to add its asset")
            continue
        keys.append(image_key(state.service.name))
        notes.append(f"{state.service.name}: {state.reason}")
    if not keys:
        return None, [], notes
    keys.append(dg.AssetKey("artifacts_manifest"))
    fingerprints = ",".join(f"{s.service.name}={s.fingerprint}" for s in states)
    run_key = hashlib.sha256(f"{repo_version}|{fingerprints}".encode()).hexdigest()[:20]
    return run_key, keys, notes


def repo_change_sensor(service_names: list[str]) -> dg.SensorDefinition:
    known = set(service_names)

    @dg.sensor(
        name="repo_change_sensor", minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.STOPPED,
        description="Watches the target repository; on a new commit or a changed or new service it requests "
                    "the prepare steps and the stale images only (and the manifest).",
        asset_selection=dg.AssetSelection.all(),
    )
    def sensor(context: dg.SensorEvaluationContext, nexus: NexusConfig, docker_engine: DockerEngine):
        try:
            run_key, keys, notes = plan_repo_change_run(context, nexus, docker_engine, known)
        except NexusError as exc:
            return dg.SkipReason(str(exc))
        for note in notes:
            context.log.info(note)
        if run_key is None:
            return dg.SkipReason("nothing stale" + (f" ({'; '.join(notes)})" if notes else ""))
        if run_key == context.cursor:
            return dg.SkipReason("a run for this state was already requested")
        context.update_cursor(run_key)
        return dg.RunRequest(run_key=run_key, asset_selection=keys, tags={"nexus/reason": "; ".join(notes)[:200]})

    return sensor
