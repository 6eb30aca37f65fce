"""The runs behind `nexus-agent`: prepare (steps A-D), then only the stale images, then the
manifest. Definitions are built again after the prepare step so that services scaffolded or
added since the last load become assets of this very run: no reload by hand."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import dagster as dg

from nexus_assets.core.services import find_services
from nexus_assets.core.settings import Settings
from nexus_assets.definitions import PREPARE_ASSETS, build_definitions
from nexus_assets.images.baseimages import load_base_image_map
from nexus_assets.images.staleness import build_services, image_key, service_states
from nexus_assets.resources import docker_client

progress = logging.getLogger("nexus_assets.progress")
# Dagster's own console log would repeat every failure with a stack trace; the progress
# lines below say what failed and where, and the full events stay in the instance.
QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def open_instance(settings: Settings) -> dg.DagsterInstance:
    """The persistent Dagster instance under DAGSTER_HOME (default: WORKDIR/.dagster_home),
    the same one `dagster dev` shows when started with that DAGSTER_HOME."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = str(home)
    return dg.DagsterInstance.get()


@dataclass
class RunSummary:
    """What one `nexus-agent run` did: the benchmark and the tests read it."""

    ok: bool = True
    built: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    failed_gates: list[str] = field(default_factory=list)
    test_containers: int = 0
    broken_steps: list[str] = field(default_factory=list)  # steps that raised: not gates
    run_ids: list[str] = field(default_factory=list)


def _execute(defs: dg.Definitions, keys: list[dg.AssetKey], instance: dg.DagsterInstance, summary: RunSummary) -> None:
    """Materialize keys (and their checks) in-process and add what happened to summary."""
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(instance=instance, asset_selection=keys, raise_on_error=False, run_config=QUIET)
    summary.run_ids.append(result.run_id)
    summary.ok = summary.ok and result.success
    for event in result.get_asset_materialization_events():
        key = event.asset_key
        if key.path[0] == "image":
            summary.built.append(key.path[-1])
        containers = event.materialization.metadata.get("test_containers")  # images and e2e
        summary.test_containers += containers.value if containers is not None else 0
    for event in result.get_asset_observation_events():
        observation = event.asset_observation_data.asset_observation
        status = observation.metadata.get("status")
        if observation.asset_key.path[0] == "image" and status is not None and status.value == "failed":
            summary.failed.append(observation.asset_key.path[-1])
    passed = 0
    for evaluation in result.get_asset_check_evaluations():
        label = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
        if evaluation.passed:
            passed += 1
        else:
            summary.failed_gates.append(label)
            progress.error("check %s FAILED: %s", label, evaluation.description or "")
    if passed:
        progress.info("%d check(s) passed", passed)
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        if error is not None and error.cls_name == "DagsterAssetCheckFailedError":
            continue  # a blocking gate: reported above with its reason
        summary.broken_steps.append(event.step_key)
        progress.error("step %s failed: %s", event.step_key, error.message.strip() if error else "unknown error")


def run_pipeline(settings: Settings, *, rebuild_all: bool = False) -> RunSummary:
    find_services(settings.repo)  # a missing repo or services/ ends here, in one line
    docker_client().close()  # so does an unreachable engine
    instance = open_instance(settings)
    progress.info("target %s -> workdir %s (registry %s, version %s)", settings.repo, settings.workdir, settings.registry, settings.version)

    summary = RunSummary()
    _execute(build_definitions(settings), [a.key for a in PREPARE_ASSETS], instance, summary)
    if summary.broken_steps:
        return summary  # a failed gate still lets the images build; a crashed step does not

    defs = build_definitions(settings)  # now sees the synced and scaffolded services
    states = _current_states(settings, instance)
    stale = [s for s in states if rebuild_all or s.needs_build]
    progress.info("%d service(s): %d to build, %d current", len(states), len(stale), len(states) - len(stale))
    for state in stale[:10]:
        progress.info("  %s: %s", state.service.name, state.reason)
    if len(stale) > 10:
        progress.info("  ... and %d more (nexus-agent status lists them all)", len(stale) - 10)
    if stale:
        _execute(defs, [image_key(s.service.name) for s in stale], instance, summary)
    # Their own run: Dagster skips a step downstream of an image that failed, and the
    # manifest must still say which service has no current image and why. The e2e stack
    # is retested only when an image changed (or it never ran).
    final = [dg.AssetKey("artifacts_manifest")]
    if summary.built or instance.get_latest_materialization_event(dg.AssetKey("e2e_tests")) is None:
        final.insert(0, dg.AssetKey("e2e_tests"))
    _execute(defs, final, instance, summary)
    summary.ok = summary.ok and not summary.failed and not summary.failed_gates
    return summary


def _current_states(settings: Settings, instance: dg.DagsterInstance):
    client = docker_client()
    try:
        return service_states(build_services(settings), client, instance, load_base_image_map())
    finally:
        client.close()


def show_status(settings: Settings) -> int:
    for state in _current_states(settings, open_instance(settings)):
        print(f"{state.service.name:40} {state.status:14} {state.reason}")
    return 0
