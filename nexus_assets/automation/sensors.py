"""The repository change sensor: observes what the images are made from, asks Dagster which
images are stale, and requests the same run `nexus-agent run` would launch.

Its cursor remembers, per service, the versions it last requested a build for. A service is
requested when Dagster holds it stale and those versions differ from the last request: so a
revert (A -> B -> A) rebuilds, a build that failed is retried when its sources change (or when
someone asks, from the UI or nexus-agent), and never in a loop."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

import dagster as dg

from nexus_assets.core.errors import NexusError
from nexus_assets.core.hashing import tree_hash
from nexus_assets.core.keys import INVOCATION_TAG, ORIGIN_TAG, PREPARE_KEYS, WORKSPACE, after_images, pushed_key
from nexus_assets.core.lineage import latest_data_versions, observe_and_judge
from nexus_assets.resources import DockerEngine, NexusConfig
from nexus_assets.target.baseimages import load_base_image_map
from nexus_assets.target.services import build_services

if TYPE_CHECKING:  # type names only: Dagster names these types only in private modules
    from dagster._core.definitions.assets.graph.base_asset_graph import BaseAssetGraph


def _inputs(asset_graph: BaseAssetGraph[Any], instance: dg.DagsterInstance, key: dg.AssetKey) -> str:
    """The versions an image would be built from now: its parents' data versions and its own."""
    parents = sorted(asset_graph.get(key).parent_keys, key=lambda k: k.to_user_string())
    held = latest_data_versions(instance, [*parents, key])
    return "|".join(f"{k.to_user_string()}={held.get(k, '')}" for k in [*parents, key])


def plan_sensor_run(context: dg.SensorEvaluationContext, nexus: NexusConfig, docker_engine: DockerEngine,
                    known: set[str]) -> tuple[dg.RunRequest | None, str, list[str]]:
    """(run request or None, new cursor, notes) for this tick."""
    settings = nexus.settings()
    assert context.repository_def is not None  # Dagster always evaluates a sensor within its repository
    asset_graph = context.repository_def.asset_graph
    cursor = json.loads(context.cursor) if context.cursor else {}
    requested: dict[str, str] = cursor.get("requested", {})
    notes: list[str] = []
    services = build_services(settings)
    client = docker_engine.client()
    try:
        verdict = observe_and_judge(asset_graph, context.instance, services, client, load_base_image_map()).stale
    finally:
        client.close()
    for service in services:
        if service.name not in known:
            notes.append(f"new service {service.name}: reload the code location (Deployment > Reload) to add its "
                         "asset; Dagster cannot add assets without a reload")
    images = []
    for key, reason in sorted(verdict.items(), key=lambda kv: kv[0].to_user_string()):
        name, inputs = key.path[-1], _inputs(asset_graph, context.instance, key)
        if requested.get(name) == inputs:
            notes.append(f"{name}: {reason} (already requested for these versions; not again)")
            continue
        requested[name] = inputs
        images.append(key)
        notes.append(f"{name}: {reason}")
    repo_version = tree_hash(settings.repo)[:24]
    prepare = latest_data_versions(context.instance, [WORKSPACE]).get(WORKSPACE) != repo_version \
        and cursor.get("repo") != repo_version
    new_cursor = json.dumps({"requested": requested, "repo": repo_version}, sort_keys=True)
    if not images and not prepare:
        return None, new_cursor, notes
    pushes = [pushed_key(k.path[-1]) for k in images if asset_graph.has(pushed_key(k.path[-1]))]
    after = [k for k in after_images([s.name for s in services]) if asset_graph.has(k) and asset_graph.get(k).is_executable]
    keys = [*PREPARE_KEYS, *images, *pushes, *after] if images else [*PREPARE_KEYS]
    if prepare:
        notes.append("repository content changed")
    request = dg.RunRequest(
        job_name="nexus_pipeline", asset_selection=keys,
        tags={INVOCATION_TAG: uuid.uuid4().hex[:12], ORIGIN_TAG: "sensor", "nexus/reason": "; ".join(notes)[:200]})
    return request, new_cursor, notes



def repo_change_sensor(service_names: list[str]) -> dg.SensorDefinition:
    known = set(service_names)

    @dg.sensor(
        name="repo_change_sensor", minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.STOPPED,
        job_name="nexus_pipeline",
        description="Observes the target repository's services and base images every 30 s; requests the "
                    "stale images (with tags, e2e and the manifest), as nexus-agent run would.",
    )
    def sensor(context: dg.SensorEvaluationContext, nexus: NexusConfig,
               docker_engine: DockerEngine) -> dg.SensorResult | dg.SkipReason:
        try:
            request, cursor, notes = plan_sensor_run(context, nexus, docker_engine, known)
        except NexusError as exc:
            return dg.SkipReason(str(exc))
        for note in notes:
            context.log.info(note)
        if request is None:
            return dg.SensorResult(skip_reason="nothing stale" + (f" ({'; '.join(notes)})" if notes else ""),
                                   cursor=cursor)
        return dg.SensorResult(run_requests=[request], cursor=cursor)

    return sensor
