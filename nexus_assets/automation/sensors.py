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
from nexus_assets.core.hashing import workspace_version
from nexus_assets.core.keys import (
    INVOCATION_TAG,
    ORIGIN_TAG,
    PIPELINE_JOB,
    image_key,
    pushed_key,
)
from nexus_assets.core.lineage import AssetRecords, latest_data_versions
from nexus_assets.core.plan import Plan, plan_run, selection, workspace_changed
from nexus_assets.core.settings import Settings
from nexus_assets.resources import DockerEngine, NexusConfig
from nexus_assets.target.services import Service, build_services

if TYPE_CHECKING:  # type names only: Dagster names these types only in private modules
    from nexus_assets.core.dagster_private import BaseAssetGraph


def _inputs(asset_graph: BaseAssetGraph[Any], instance: dg.DagsterInstance, key: dg.AssetKey, records: AssetRecords) -> str:
    """The versions an image would be built from now: its parents' data versions and its own."""
    parents = sorted(asset_graph.get(key).parent_keys, key=lambda k: k.to_user_string())
    held = latest_data_versions(instance, [*parents, key], records)
    return "|".join(f"{k.to_user_string()}={held.get(k, '')}" for k in [*parents, key])


def reload_notes(services: list[Service], known: set[str]) -> list[str]:
    """A note for each service the loaded graph does not know yet (added since the code location loaded)."""
    return [f"new service {s.name}: reload the code location (Deployment > Reload) to add its asset; Dagster "
            "cannot add assets without a reload" for s in services if s.name not in known]


def plan_now(context: dg.SensorEvaluationContext, settings: Settings, docker_engine: DockerEngine) -> Plan:
    """The planner's answer for the sensor's repository as it is now (core/plan.py), with a client
    of the engine for this tick only."""
    assert context.repository_def is not None  # Dagster always evaluates a sensor within its repository
    client = docker_engine.client()
    try:
        return plan_run(context.repository_def.asset_graph, context.instance, settings, build_services(settings),
                        client)
    finally:
        client.close()


def plan_sensor_run(context: dg.SensorEvaluationContext, nexus: NexusConfig, docker_engine: DockerEngine,
                    known: set[str]) -> tuple[dg.RunRequest | None, str, list[str]]:
    """(run request or None, new cursor, notes) for this tick: the planner's selection without
    the release (core/plan.py), less what this sensor already requested for the same versions."""
    settings = nexus.settings()
    assert context.repository_def is not None  # Dagster always evaluates a sensor within its repository
    asset_graph = context.repository_def.asset_graph
    cursor = json.loads(context.cursor) if context.cursor else {}
    requested: dict[str, str] = cursor.get("requested", {})
    notes: list[str] = []
    # Hashed before the sources are observed: a change written during the tick is then seen by
    # the image observation (its service named in the request) or by the next tick, never only here.
    repo_version = workspace_version(settings.repo)
    plan = plan_now(context, settings, docker_engine)
    services, records = plan.services, plan.verdict.records
    notes += reload_notes(services, known)
    images: list[str] = []
    pushes: list[str] = []
    for name in plan.pushes:  # the images to build, and the current images to push (a new version)
        key = image_key(name) if name in plan.images else pushed_key(name)
        seen, inputs = name if name in plan.images else key.to_user_string(), _inputs(asset_graph, context.instance,
                                                                                      key, records)
        reason = plan.stale.get(name, "its push is due")
        if requested.get(seen) == inputs:
            notes.append(f"{name}: {reason} (already requested for these versions; not again)")
            continue
        requested[seen] = inputs
        (images if name in plan.images else pushes).append(name)
        notes.append(f"{name}: {reason}")
    pushes = sorted({*images, *pushes})
    prepare = cursor.get("repo") != repo_version and workspace_changed(context.instance, settings.repo, records)
    new_cursor = json.dumps({"requested": requested, "repo": repo_version}, sort_keys=True)
    if not images and not pushes and not prepare:  # a step after the images alone is no reason: no retry loop
        return None, new_cursor, notes
    if prepare:
        notes.append("repository content changed")
    request = dg.RunRequest(
        job_name=PIPELINE_JOB, asset_selection=selection(asset_graph, [s.name for s in services], images, pushes),
        tags={INVOCATION_TAG: uuid.uuid4().hex[:12], ORIGIN_TAG: "sensor", "nexus/reason": "; ".join(notes)[:200]})
    return request, new_cursor, notes


def repo_change_sensor(service_names: list[str]) -> dg.SensorDefinition:
    known = set(service_names)

    @dg.sensor(
        name="repo_change_sensor", minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.STOPPED,
        job_name=PIPELINE_JOB,
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
