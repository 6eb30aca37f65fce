"""The run behind `nexus-agent run`, a thin client of the run planner (core/plan.py): ask it
what to select, launch one run of the `nexus_pipeline` job over that selection, print progress.

A second run happens only when scaffolding has just added services: they are a new code version
of the graph (definitions_for builds it, as a reload of the code location would), planned and
run like any other."""

from __future__ import annotations

import os
import re
import uuid
from typing import TYPE_CHECKING, Any

import dagster as dg

from nexus_assets.cli import unchanged
from nexus_assets.cli.outcome import RunSummary, drop_waived, last_verdict, say_release
from nexus_assets.core.cancel import cancel_all
from nexus_assets.core.errors import no_space_line, our_error_names
from nexus_assets.core.instance_storage import tune_sqlite
from nexus_assets.core.keys import (
    COMPLIANCE_REPORT,
    FORCE_TAG,
    INVOCATION_TAG,
    ORIGIN_TAG,
    PIPELINE_JOB,
    VERIFIED_RELEASE,
)
from nexus_assets.core.plan import Plan, plan_run
from nexus_assets.core.preload import preload
from nexus_assets.core.settings import Settings
from nexus_assets.core.workdir_lock import workdir_lock
from nexus_assets.definitions import definitions_for
from nexus_assets.policy.waivers import check_waivers
from nexus_assets.resources import DockerEngine
from nexus_assets.target.services import Service, build_services, services_root
from nexus_assets.testing.cleanup import OWNER_TAG, fail_orphan_runs, owner, remove_leftovers

if TYPE_CHECKING:  # type names only: Dagster names these types only in private modules
    from dagster_shared.error import SerializableErrorInfo


# The job's console logger prints each step's own lines as [nexus] lines (the same lines the
# UI's run log shows); Dagster's engine events stay in the instance.
CONSOLE = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


def open_instance(settings: Settings) -> dg.DagsterInstance:
    """The persistent Dagster instance under DAGSTER_HOME (default: WORKDIR/.dagster_home),
    the same one `dagster dev` shows when started with that DAGSTER_HOME."""
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text("telemetry:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = str(home)
    tune_sqlite()  # its events at page-cache speed, not an fsync each (core/instance_storage.py)
    return dg.DagsterInstance.get()


def _plan(defs: dg.Definitions, instance: dg.DagsterInstance, settings: Settings, services: list[Service],
          engine: DockerEngine, **asked: Any) -> Plan:
    """The planner's answer for this graph (observing first, with the engine's image listing);
    asked: plan_run's keywords."""
    client = engine.client()
    try:
        return plan_run(defs.resolve_asset_graph(), instance, settings, services, client, **asked)
    finally:
        client.close()


def _execute(defs: dg.Definitions, keys: list[dg.AssetKey], instance: dg.DagsterInstance, tags: dict[str, str],
             summary: RunSummary, settings: Settings) -> None:
    """One run of the pipeline job over keys, in this process; what happened goes to summary."""
    if COMPLIANCE_REPORT in keys:  # its libraries load while the images build (core/preload.py)
        preload(["nexus_assets.compliance.layout"])
    result = defs.resolve_job_def(PIPELINE_JOB).execute_in_process(
        instance=instance, asset_selection=keys, raise_on_error=False, tags=tags, run_config=CONSOLE)
    summary.run_ids.append(result.run_id)
    if _interrupted(result):
        cancel_all("interrupted")  # a step the interrupt reached between two events never saw it
        raise KeyboardInterrupt
    summary.ok = summary.ok and result.success
    for event in result.get_asset_materialization_events():
        assert event.asset_key is not None  # a materialization always names its asset
        if event.asset_key.path[0] == "image":
            status = event.materialization.metadata.get("status")
            pulled = status is not None and status.value == "pulled from cache"
            (summary.pulled if pulled else summary.built).append(event.asset_key.path[-1])
        pushed = event.materialization.metadata.get("pushed")
        if event.asset_key.path[0] == "pushed" and pushed is not None and pushed.value is True:
            summary.pushed.append(event.asset_key.path[-1])
        containers = event.materialization.metadata.get("test_containers")  # images and e2e
        # Dagster types .value as any packable value; this one is the int our assets write.
        summary.test_containers += int(containers.value) if containers is not None else 0  # type: ignore[arg-type]
    for event in result.get_asset_observation_events():
        observation = event.asset_observation_data.asset_observation
        status = observation.metadata.get("status")
        if observation.asset_key.path[0] == "image" and status is not None and status.value == "failed":
            summary.failed.append(observation.asset_key.path[-1])
        if observation.asset_key.path[0] == "pushed" and status is not None and status.value == "not_pushed":
            summary.not_pushed.append(observation.asset_key.path[-1])
    gates: list[str] = []  # this run's failed gates: a blocking one fails the step that evaluated it
    for evaluation in result.get_asset_check_evaluations():
        if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN:  # not run, no tests, skipped
            said = evaluation.description or ""
            word = "NO TESTS" if said.startswith("no tests") else "SKIPPED" if said.startswith("skipped") else "NOT RUN"
            said = said.removeprefix("no tests: ").removeprefix("skipped: ")  # the word says it
            print(f"[nexus] check {evaluation.asset_key.to_user_string()}:{evaluation.check_name} {word}: {said}",
                  flush=True)
            continue
        if not evaluation.passed:
            label = f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
            summary.failed_gates.append(label)
            gates.append(label)
            print(f"[nexus] check {label} FAILED: {evaluation.description or ''}", flush=True)
    blocking, broken = [], []
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        assert event.step_key is not None  # a step failure always names its step
        if error is not None and error.cls_name == "DagsterAssetCheckFailedError":
            blocking.append(event.step_key)
            continue  # a blocking gate: reported above with its reason
        broken.append(event.step_key)
        print(f"[nexus] step {event.step_key} failed: {_root_cause(error, settings)}", flush=True)
    summary.broken_steps += broken
    released = any(e.asset_key == VERIFIED_RELEASE for e in result.get_asset_materialization_events())
    if VERIFIED_RELEASE in keys and not released:  # Dagster skipped the release step: say why
        # the gates by name: one step evaluates several (core/one_step.py)
        why = [f"blocking gate {', '.join(gates or blocking)} failed"] if blocking else []
        why += [f"step {', '.join(broken)} failed"] if broken else []
        print(f"[nexus] release {settings.version} not made: {'; '.join(why) or 'a step before it did not run'}",
              flush=True)


def _interrupted(result: dg.ExecuteInProcessResult) -> bool:
    """Whether Ctrl-C or SIGTERM ended the run: Dagster's in-process run turns the signal into a
    step failure (or, between steps, a run failure) instead of raising it."""
    for event in result.all_events:
        if event.is_step_failure and getattr(event.step_failure_data.error_source, "name", "") == "INTERRUPT":
            return True
        if event.event_type == dg.DagsterEventType.RUN_FAILURE and "interrupted" in (event.message or ""):
            return True
    return False


def _root_cause(error: SerializableErrorInfo | None, settings: Settings) -> str:
    """The step's own error's message: Dagster wraps a step's exception in its own. A full disk
    is said in one line naming the path."""
    if error is None:
        return "unknown error"
    # Down to the error that named the file (ours), not the library error it was raised from.
    ours = our_error_names()
    while error.cause is not None and error.cls_name not in ours:
        error = error.cause
    full = no_space_line(f"{error.message}\n" + "".join(error.stack or []), [settings.workdir, settings.dagster_home])
    if full:
        return full
    message = error.message.strip()
    if error.cls_name:  # Dagster's message starts with the exception's qualified name
        message = re.sub(rf"^(?:[\w.]+\.)?{re.escape(error.cls_name)}: ", "", message)
    return f"{error.cls_name}: {message}" if error.cls_name else message


def _announce(stale: dict[str, str], total: int) -> None:
    print(f"[nexus] {total} service(s): {len(stale)} to build, {total - len(stale)} current", flush=True)
    for name, reason in sorted(stale.items())[:10]:
        print(f"[nexus]   {name}: {reason}", flush=True)
    if len(stale) > 10:
        print(f"[nexus]   ... and {len(stale) - 10} more (nexus-agent status lists them all)", flush=True)


def run_pipeline(settings: Settings, *, rebuild_all: bool = False, lock_wait: float = 60.0) -> RunSummary:
    """Observe, judge, and run what is stale, holding the working copy for the whole invocation
    (a second nexus-agent on the same --workdir waits lock_wait seconds, then fails naming us)."""
    services_root(settings.repo)  # a missing repo or services/ ends here, in one line
    check_waivers(settings.repo, settings.compose_file)  # so does a bad or critical waiver (nexus-agent.toml)
    engine = DockerEngine.from_env()  # one for the invocation: the cleanup, the planner and the run
    engine.client().close()  # so does an unreachable engine
    invocation = uuid.uuid4().hex[:12]
    with workdir_lock(settings.workdir, invocation, wait_seconds=lock_wait):
        return _run_locked(settings, invocation, rebuild_all, engine)


def _run_locked(settings: Settings, invocation: str, rebuild_all: bool, engine: DockerEngine) -> RunSummary:
    instance = open_instance(settings)
    print(f"[nexus] target {settings.repo} -> workdir {settings.workdir} "
          f"(registry {settings.registry}, version {settings.version})", flush=True)
    unchanged.forget(settings)  # this run decides afresh
    _clean_up_after_killed_runs(settings, instance, engine)
    tags = {INVOCATION_TAG: invocation, ORIGIN_TAG: "cli", OWNER_TAG: owner()}
    if rebuild_all:
        tags[FORCE_TAG] = "true"
    summary = RunSummary()
    services = build_services(settings)  # read once: definitions, observations and the tag check share it
    defs = definitions_for(settings, services, engine)  # the run's docker_engine: the planner's
    plan = _plan(defs, instance, settings, services, engine, rebuild_all=rebuild_all)
    summary.stale = dict(plan.stale)
    _announce({n: plan.stale.get(n, "rebuild asked (--all)") for n in plan.images}, len(services))
    if not plan.keys:
        if plan.release:  # the images, tags and manifest are as they were: only the release is due
            print("[nexus] nothing changed since the last run; the release is due", flush=True)
            _execute(defs, plan.release, instance, tags, summary, settings)
            drop_waived(summary, settings)
            summary.ok = summary.ok and not summary.failed_gates and not summary.broken_steps
            return summary
        summary.ok = last_verdict(settings)
        print("[nexus] nothing changed since the last run: no run launched", flush=True)
        summary.ok = say_release(settings) and summary.ok  # a released version's registry tags that moved: exit 1
        _remember(settings, plan)
        return summary
    _execute(defs, plan.selection, instance, tags, summary, settings)

    now = services
    # Scaffolding may just have made services: a new code version of the graph.
    if not summary.broken_steps and (settings.workdir / "services").is_dir():
        now = build_services(settings)
        new = {s.name for s in now} - {s.name for s in services}
        if new:
            defs = definitions_for(settings, now, engine)
            fresh = _plan(defs, instance, settings, now, engine, scaffolded=new)
            summary.stale.update(fresh.stale)
            print(f"[nexus] {len(new)} new service(s) scaffolded; building {len(fresh.images)}", flush=True)
            _execute(defs, fresh.selection, instance, tags, summary, settings)
    drop_waived(summary, settings)
    summary.ok = summary.ok and not summary.failed and not summary.failed_gates and not summary.broken_steps
    if not summary.broken_steps:  # so that the next run, if nothing changes, need not load Dagster
        # Asked again as the next run would: only what the run made is read again.
        after = _plan(definitions_for(settings, now, engine), instance, settings, now, engine,
                      records=plan.verdict.records.refreshed())
        if after.settled:
            _remember(settings, after)
    return summary


def _remember(settings: Settings, plan: Plan) -> None:
    unchanged.remember(settings, plan.engine_tags, [i for i in plan.verdict.recorded.values() if i], len(plan.services))


def _clean_up_after_killed_runs(settings: Settings, instance: dg.DagsterInstance, engine: DockerEngine) -> None:
    """Holding the working copy: remove the test containers and networks a killed run left, and
    mark failed the runs whose nexus-agent is gone (they would stay STARTED for ever)."""
    client = engine.client()
    try:
        containers, networks = remove_leftovers(client, settings.workdir)
    finally:
        client.close()
    runs = fail_orphan_runs(instance)
    if containers or networks or runs:
        print(f"[nexus] cleaned up after a killed run: removed {len(containers)} container(s), "
              f"{len(networks)} network(s); marked {len(runs)} run(s) failed", flush=True)


def show_status(settings: Settings) -> int:
    """Print every service with Dagster's verdict on its image (observing first, as a run would)."""
    instance = open_instance(settings)
    services = build_services(settings)
    engine = DockerEngine.from_env()
    stale = _plan(definitions_for(settings, services, engine), instance, settings, services, engine).stale
    for service in services:
        reason = stale.get(service.name)
        print(f"{service.name:40} {'stale' if reason else 'current':14} {reason or 'up to date'}")
    return 0
