"""The UI's "materialize stale" that asks the planner: the `materialize_stale` sensor, evaluated by
hand from its page ("Preview tick result", then "Apply requests & commit tick result"). Its one
run request is the run `nexus-agent run` would launch for the same state: `plan_run(...).selection`
(core/plan.py), the release included, tagged as a launch from the UI.

Why a sensor evaluated by hand: Dagster's UI has no button of a project's own, and its built-in
"Materialize unsynced" selects, in the browser, what Dagster's staleness shows; it cannot know the
planner's rules (pushes due for current images, a changed repository, the release, release tags
moved in the engine). A sensor's preview is evaluated in the code location, so it asks the same
planner, and the UI launches exactly what it requests (job, assets, checks, tags). Left stopped,
as it ships; switched on, the daemon would launch that run, release included, whenever one is due
(the repository sensor is the one meant to run on its own, and it never releases)."""

from __future__ import annotations

import uuid

import dagster as dg

from nexus_assets.automation.sensors import plan_now, reload_notes
from nexus_assets.core.errors import NexusError
from nexus_assets.core.keys import INVOCATION_TAG, PIPELINE_JOB
from nexus_assets.core.plan import workspace_changed
from nexus_assets.core.run_tags import run_tags
from nexus_assets.resources import DockerEngine, NexusConfig
from nexus_assets.testing.cleanup import OWNER_TAG, owner_alive

SENSOR = "materialize_stale"
_UNDER_WAY = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
              dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def run_under_way(instance: dg.DagsterInstance) -> str | None:
    """The id of a pipeline run that is queued or running (so a plan now would be out of date and
    a second launch would do the same work), else None. A nexus-agent run whose process is gone is
    not one: the next nexus-agent run marks it failed."""
    records = instance.get_run_records(filters=dg.RunsFilter(job_name=PIPELINE_JOB, statuses=_UNDER_WAY), limit=20)
    for record in records:
        run = record.dagster_run
        if owner_alive(run.tags.get(OWNER_TAG, "")) is not False:
            return run.run_id
    return None


def plan_ui_run(context: dg.SensorEvaluationContext, nexus: NexusConfig, docker_engine: DockerEngine,
                known: set[str]) -> tuple[dg.RunRequest | None, list[str]]:
    """(the run nexus-agent run would launch now, or None; notes saying why)."""
    settings = nexus.settings()
    assert context.repository_def is not None  # Dagster always evaluates a sensor within its repository
    graph = context.repository_def.asset_graph
    busy = run_under_way(context.instance)
    if busy:
        return None, [f"a {PIPELINE_JOB} run is under way ({busy}): preview again when it has finished"]
    plan = plan_now(context, settings, docker_engine)
    notes = reload_notes(plan.services, known)
    if plan.settled:
        return None, [*notes, "nothing is due: nexus-agent run would launch no run"]
    notes += [f"{name}: {plan.stale.get(name, 'its push is due')}" for name in plan.pushes]
    if not plan.keys:
        notes.append("only the release is due")
    elif not plan.pushes:
        notes.append("the repository content changed" if workspace_changed(context.instance, settings.repo,
                                                                           plan.verdict.records)
                     else "a step after the images is due (stale, or a release tag moved in the engine)")
    selected = set(plan.selection)
    # Named, not left to the default: the UI's preview launches only the checks a request names,
    # and nexus-agent runs every check of the assets it selects.
    checks = sorted((key for key in graph.asset_check_keys if key.asset_key in selected), key=str)
    tags = {**run_tags(settings.version, "ui"), INVOCATION_TAG: uuid.uuid4().hex[:12],
            "nexus/reason": "; ".join(notes)[:200]}
    return dg.RunRequest(job_name=PIPELINE_JOB, asset_selection=plan.selection, asset_check_keys=checks,
                         tags=tags), notes


def materialize_stale_sensor(service_names: list[str]) -> dg.SensorDefinition:
    known = set(service_names)

    @dg.sensor(
        name=SENSOR, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.STOPPED,
        job_name=PIPELINE_JOB,
        description="Materialize what the planner says is due, as nexus-agent run would (release included): "
                    "open this sensor, 'Preview tick result', then 'Apply requests & commit tick result'. "
                    "Leave it stopped; the asset graph's 'Materialize unsynced' sees Dagster's staleness only.",
    )
    def sensor(context: dg.SensorEvaluationContext, nexus: NexusConfig,
               docker_engine: DockerEngine) -> dg.SensorResult | dg.SkipReason:
        try:
            request, notes = plan_ui_run(context, nexus, docker_engine, known)
        except NexusError as exc:
            return dg.SkipReason(str(exc))
        for note in notes:
            context.log.info(note)
        if request is None:
            return dg.SkipReason("; ".join(notes))
        return dg.SensorResult(run_requests=[request])

    return sensor
