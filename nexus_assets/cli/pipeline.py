"""The run behind `nexus-agent run`: observe what the images are made from, ask Dagster which
images are stale, and launch one run of the `nexus_pipeline` job with the prepare steps, those
images and what follows them (tags, e2e, manifest), exactly as the sensor would.

A second run happens only when scaffolding has just added services that the loaded
definitions could not know: definitions are built again and the new images run like any other."""

from __future__ import annotations

import os
import re
import uuid
from typing import TYPE_CHECKING

import dagster as dg

from nexus_assets.cli import unchanged
from nexus_assets.cli.outcome import RunSummary, drop_waived, last_verdict, say_release
from nexus_assets.core.cancel import cancel_all
from nexus_assets.core.errors import no_space_line, our_error_names
from nexus_assets.core.freshness import attestations_due
from nexus_assets.core.hashing import tree_hash
from nexus_assets.core.keys import (
    AFTER_IMAGES,
    ATTESTATIONS,
    EVIDENCE_PACK,
    FORCE_TAG,
    INVOCATION_TAG,
    ORIGIN_TAG,
    PREPARE_KEYS,
    RELEASE_KEYS,
    VERIFIED_RELEASE,
    WORKSPACE,
    after_images,
    image_key,
    pushed_key,
)
from nexus_assets.core.lineage import (
    AssetRecords,
    Verdict,
    declared_bases,
    latest_data_versions,
    observe_and_judge,
    stale_images,
)
from nexus_assets.core.settings import Settings
from nexus_assets.core.workdir_lock import workdir_lock
from nexus_assets.definitions import PIPELINE_JOB, build_definitions
from nexus_assets.policy.waivers import check_waivers
from nexus_assets.resources import docker_client
from nexus_assets.target.baseimages import load_base_image_map
from nexus_assets.target.services import Service, build_services, release_tags, services_root
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
    return dg.DagsterInstance.get()


def judge(defs: dg.Definitions, instance: dg.DagsterInstance, services: list[Service],
          records: AssetRecords | None = None) -> Verdict:
    """Dagster's verdict on every image, after observing what they are made from (records: what
    an earlier verdict read that is still current)."""
    client = docker_client()
    try:
        return observe_and_judge(defs.resolve_asset_graph(), instance, services, client, load_base_image_map(),
                                 records)
    finally:
        client.close()


def stale_services(verdict: Verdict) -> dict[str, str]:
    """{service: reason} for every image Dagster holds stale or missing."""
    return {key.path[-1]: reason for key, reason in verdict.stale.items()}


def _execute(defs: dg.Definitions, keys: list[dg.AssetKey], instance: dg.DagsterInstance, tags: dict[str, str],
             summary: RunSummary, settings: Settings) -> None:
    """One run of the pipeline job over keys, in this process; what happened goes to summary."""
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
        why = [f"blocking gate {', '.join(blocking)} failed"] if blocking else []
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
    docker_client().close()  # so does an unreachable engine
    invocation = uuid.uuid4().hex[:12]
    with workdir_lock(settings.workdir, invocation, wait_seconds=lock_wait):
        return _run_locked(settings, invocation, rebuild_all)


def _run_locked(settings: Settings, invocation: str, rebuild_all: bool) -> RunSummary:
    instance = open_instance(settings)
    print(f"[nexus] target {settings.repo} -> workdir {settings.workdir} "
          f"(registry {settings.registry}, version {settings.version})", flush=True)
    unchanged.forget(settings)  # this run decides afresh
    _clean_up_after_killed_runs(settings, instance)
    tags = {INVOCATION_TAG: invocation, ORIGIN_TAG: "cli", OWNER_TAG: owner()}
    if rebuild_all:
        tags[FORCE_TAG] = "true"
    summary = RunSummary()
    services = build_services(settings)  # read once: definitions, observations and the tag check share it
    defs = build_definitions(settings, services)
    known = {s.name for s in services}
    verdict = judge(defs, instance, services)
    summary.stale = stale_services(verdict)
    wanted = sorted(known) if rebuild_all else sorted(summary.stale)
    _announce({n: summary.stale.get(n, "rebuild asked (--all)") for n in wanted}, len(known))
    pushes = sorted(set(wanted) | set(stale_pushes(defs, instance, sorted(known - set(summary.stale)), verdict.records)))
    if not wanted and not pushes and _nothing_to_do(defs, instance, settings, verdict):
        pending = stale_images(defs.resolve_asset_graph(), instance, list(RELEASE_KEYS), verdict.records)
        if pending:  # the images, tags and manifest are as they were: only the release is due
            print(f"[nexus] nothing changed since the last run; the release is due "
                  f"({', '.join(sorted(k.to_user_string() for k in pending))})", flush=True)
            _execute(defs, list(RELEASE_KEYS), instance, tags, summary, settings)
            drop_waived(summary, settings)
            summary.ok = summary.ok and not summary.failed_gates and not summary.broken_steps
            return summary
        summary.ok = last_verdict(settings)
        print("[nexus] nothing changed since the last run: no run launched", flush=True)
        summary.ok = say_release(settings) and summary.ok  # a released version's registry tags that moved: exit 1
        _remember(settings, services, verdict)
        return summary
    # Only the SBOMs and provenance due: those of what this run builds or pushes, and the stale ones.
    due = known if rebuild_all else {*wanted, *pushes, *attestations_due(
        defs.resolve_asset_graph(), instance, sorted(known), settings.artifacts, verdict.records)}
    if due != known:  # the others in steps of their own, which the run leaves out (attest/assets.py)
        defs = build_definitions(settings, services, due)
    _execute(defs, [*PREPARE_KEYS, *(image_key(n) for n in wanted), *_push_keys(defs, pushes), *_after(defs, due),
                    *RELEASE_KEYS], instance, tags, summary, settings)

    planned, rescanned = (services, defs), None
    # Scaffolding may just have made services the loaded definitions cannot know.
    if not summary.broken_steps and (settings.workdir / "services").is_dir():
        services = rescanned = build_services(settings)
        new = {s.name for s in services} - known
        if new:
            rescanned = None
            defs = build_definitions(settings, services)
            stale = stale_services(judge(defs, instance, services))
            summary.stale.update(stale)
            fresh = sorted(set(stale) & new)
            print(f"[nexus] {len(new)} new service(s) scaffolded; building {len(fresh)}", flush=True)
            # the release waited for these services (verified_release defers when the graph lacks one)
            _execute(defs, [*(image_key(n) for n in fresh), *_push_keys(defs, fresh), *_after(defs, known | new),
                            *RELEASE_KEYS],
                     instance, tags, summary, settings)
    drop_waived(summary, settings)
    summary.ok = summary.ok and not summary.failed and not summary.failed_gates and not summary.broken_steps
    if not summary.broken_steps:  # so that the next run, if nothing changes, need not load Dagster
        now = rescanned or build_services(settings)
        _remember_if_settled(settings, instance, now, planned[1] if now == planned[0] else build_definitions(settings, now),
                             verdict.records.refreshed())
    return summary


def _remember_if_settled(settings: Settings, instance: dg.DagsterInstance, services: list[Service],
                         defs: dg.Definitions, records: AssetRecords | None = None) -> None:
    """After a run: ask Dagster again, as the next run would (with the run's definitions when the
    services are as they were planned); if it would have nothing to do, remember that verdict
    (cli/unchanged.py). records: what the verdict before the run read and the run left as it was."""
    verdict = judge(defs, instance, services, records)
    names = sorted(s.name for s in services)
    if verdict.stale or stale_pushes(defs, instance, names, verdict.records):
        return
    if not _nothing_to_do(defs, instance, settings, verdict):
        return
    if stale_images(defs.resolve_asset_graph(), instance, list(RELEASE_KEYS), verdict.records):
        return
    _remember(settings, services, verdict)


def _remember(settings: Settings, services: list[Service], verdict: Verdict) -> None:
    unchanged.remember(settings, _resolved_tags(settings, services, verdict),
                       [i for i in verdict.recorded.values() if i], len(services))


def _after(defs: dg.Definitions, names: set[str]) -> list[dg.AssetKey]:
    """What follows the images in this graph: tags, e2e, the SBOMs and provenance of names, manifest, evidence."""
    graph = defs.resolve_asset_graph()
    return [key for key in after_images(sorted(names)) if graph.has(key) and graph.get(key).is_executable]


def stale_pushes(defs: dg.Definitions, instance: dg.DagsterInstance, names: list[str],
                 records: AssetRecords | None = None) -> list[str]:
    """The services whose image is current and passed its tests but whose push Dagster holds stale
    or missing (a new version or registry, a push that failed last time): they are pushed
    without a rebuild. A service whose tests failed is not pushed, so it is not asked for."""
    graph = defs.resolve_asset_graph()
    keys = [pushed_key(n) for n in names if graph.has(pushed_key(n))]
    records = records or AssetRecords(instance)
    stale = {key.path[-1] for key in stale_images(graph, instance, keys, records)}
    if not stale:
        return []
    tests = {}
    for record in records.get([image_key(n) for n in stale]):
        last = record.asset_entry.last_materialization
        metadata = last.asset_materialization.metadata if last and last.asset_materialization else {}
        states = metadata.get("tests")
        tests[record.asset_entry.asset_key.path[-1]] = getattr(states, "value", None) or {}
    return sorted(n for n in stale if n in tests and "failed" not in tests[n].values())


def _push_keys(defs: dg.Definitions, names: list[str]) -> list[dg.AssetKey]:
    graph = defs.resolve_asset_graph()
    return [pushed_key(n) for n in names if graph.has(pushed_key(n))]


def _clean_up_after_killed_runs(settings: Settings, instance: dg.DagsterInstance) -> None:
    """Holding the working copy: remove the test containers and networks a killed run left, and
    mark failed the runs whose nexus-agent is gone (they would stay STARTED for ever)."""
    client = docker_client()
    try:
        containers, networks = remove_leftovers(client, settings.workdir)
    finally:
        client.close()
    runs = fail_orphan_runs(instance)
    if containers or networks or runs:
        print(f"[nexus] cleaned up after a killed run: removed {len(containers)} container(s), "
              f"{len(networks)} network(s); marked {len(runs)} run(s) failed", flush=True)


def _nothing_to_do(defs: dg.Definitions, instance: dg.DagsterInstance, settings: Settings, verdict: Verdict) -> bool:
    """True when the repository is as the last run synced it and what follows the images (tags,
    e2e, manifest) is fresh in Dagster's eyes: a run would change nothing but the release."""
    if latest_data_versions(instance, [WORKSPACE], verdict.records).get(WORKSPACE) != tree_hash(settings.repo)[:24]:
        return False
    # The aggregates only: a service that never built or was never pushed has no SBOM or provenance,
    # and is no reason to run again while nothing it is made from changes.
    graph = defs.resolve_asset_graph()
    after = [k for k in (*AFTER_IMAGES, ATTESTATIONS, EVIDENCE_PACK) if graph.has(k) and graph.get(k).is_executable]
    if stale_images(graph, instance, after, verdict.records):
        return False
    return _tags_point_at_recorded_images(settings, verdict)


def _resolved_tags(settings: Settings, services: list[Service], verdict: Verdict) -> dict[str, str | None]:
    """{engine tag: image id or None} for every tag the verdict resolved: the release tags and
    each base image a Dockerfile names (with the substitutes): what cli/unchanged.py re-reads."""
    base_map = load_base_image_map()
    names = {tag for s in services for tag in release_tags(settings.registry, s.name, settings.version)}
    names |= {b.image for s in services for b in declared_bases(s)}
    names |= {base_map.base, *base_map.substitutes, *base_map.substitutes.values()}
    full = {n if ":" in n.rsplit("/", 1)[-1] else f"{n}:latest" for n in names}
    return {tag: verdict.engine.tag_id(tag) for tag in full}


def _tags_point_at_recorded_images(settings: Settings, verdict: Verdict) -> bool:
    """Every release tag names the image Dagster recorded for its service (read from the
    verdict's engine listing): a tag that another build moved is a reason to run, and
    tagged_images moves it back."""
    return all(verdict.engine.tag_id(tag) == image_id
               for name, image_id in verdict.recorded.items()
               for tag in release_tags(settings.registry, name, settings.version))


def show_status(settings: Settings) -> int:
    """Print every service with Dagster's verdict on its image (observing first, as a run would)."""
    instance = open_instance(settings)
    services = build_services(settings)
    defs = build_definitions(settings, services)
    stale = stale_services(judge(defs, instance, services))
    for service in services:
        reason = stale.get(service.name)
        print(f"{service.name:40} {'stale' if reason else 'current':14} {reason or 'up to date'}")
    return 0
