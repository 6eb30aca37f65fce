"""Steps F and H per service: one image asset per service, its lint, unit and integration tests
as asset checks, and `tagged_images`, the set of current images under the release tags.

One step builds and tests every selected service concurrently up to the configured limit: one
step rather than one per service keeps a 100-service run from paying Dagster's per-step
process start-up a hundred times. `tagged_images` lives in the same step so that a failed
service never makes Dagster skip what comes after it (e2e, the manifest): those depend on
`tagged_images`, which is always produced and says which service has no current image.

A failing test does not stop the other services or the build (the guide: tests are
non-blocking); it fails the service's check, which blocks the release gate.

A stale image that another machine already built and tested is pulled from the registry
instead (images.cache: the registry as a shared build cache, asked once per step)."""


import contextlib
import dataclasses
import shutil
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed, wait
from typing import TYPE_CHECKING, Any

import dagster as dg

from nexus_assets.core.cancel import Cancellation
from nexus_assets.core.errors import EngineError
from nexus_assets.core.fileio import mirror_tree
from nexus_assets.core.hashing import IGNORED_NAMES
from nexus_assets.core.keys import (
    FORCE_TAG,
    ORIGIN_TAG,
    SCAFFOLDED_SERVICES,
    TAGGED_IMAGES,
    TEST_STAGES,
    base_image_key,
    image_key,
    source_key,
)
from nexus_assets.core.lineage import (
    declared_bases,
    latest_data_versions,
    recipe_version,
    source_event,
    stale_images,
)
from nexus_assets.core.metadata import EvidenceLinks
from nexus_assets.core.settings import Settings
from nexus_assets.images import pmmg
from nexus_assets.images.buildkit import Builder
from nexus_assets.images.cache import RegistryCache
from nexus_assets.images.outcome import (
    build_and_test,
    check_result,
    failure_events,
    source_commit,
    success_event,
    test_states,
)
from nexus_assets.images.tags import tag_current_images, tags_code_version
from nexus_assets.policy.acceptance import no_tests_mode
from nexus_assets.resources import DockerEngine, GitRepo, NexusConfig
from nexus_assets.target.secrets import repo_secrets
from nexus_assets.target.services import Service, both_views
from nexus_assets.testing.cleanup import fail_orphan_runs, label_created, remove_leftovers
from nexus_assets.testing.stage import Publisher, ServiceTests, StageResult, docker_errors

if TYPE_CHECKING:  # type names only: Dagster names these types only in private modules
    from nexus_assets.core.dagster_private import BaseAssetGraph

from nexus_assets.resources.registry import Registry

CANCEL_GRACE_SECONDS = 15.0  # an interrupted step waits this long for its builds and tests to stop


def image_spec(service: Service) -> dg.AssetSpec:
    bases = sorted({base_image_key(b.image) for b in declared_bases(service)}, key=lambda k: k.to_user_string())
    return dg.AssetSpec(
        key=image_key(service.name),
        # scaffolded_services only orders the step after the working copy is ready: its data
        # version never changes, so it never makes an image stale.
        deps=[source_key(service.name), *bases, SCAFFOLDED_SERVICES],
        description=f"Image of {service.name}: the Docker image built and tested here, tagged "
                    f"REGISTRY/{service.image_repo}:VERSION and :latest.",
        group_name="images",
        kinds={"docker", "image"},
        # The args are part of how it is built; how compose runs it (as written, no value) of how
        # it is tested: a change there runs its tests again.
        code_version=recipe_version(service.build_args)
        + (f"-run-{service.runtime.fingerprint()}" if service.runtime is not None else ""),
        skippable=True,
        tags={"nexus/language": service.language},
        metadata={"service_path": service.folder or f"services/{service.name}",
                  "compose_file": service.compose_file or "", "compose_service": service.compose_name or ""},
    )


def service_images_asset(services: list[Service], tests: ServiceTests, asset_graph: "Callable[[], BaseAssetGraph[Any]]",
                         *, registry: str,
                         version: str, publisher: Publisher | None = None) -> dg.AssetsDefinition:
    """The multi-asset holding image/<service> (with its test checks) for every service known at
    load, and tagged_images; with a publisher, also pushed/<service> and pushed_images (see
    testing.stage.Publisher for why they share this step)."""
    names = [s.name for s in services]
    specs = [image_spec(s) for s in services]
    specs.append(dg.AssetSpec(
        key=TAGGED_IMAGES, deps=[*(image_key(n) for n in names), SCAFFOLDED_SERVICES], group_name="images", kinds={"docker"},
        code_version=tags_code_version(registry, version), skippable=False,
        description="Every service's current image under REGISTRY/nexus/<service>:VERSION and :latest; a tag "
                    "that points at another image is moved back, a tag collision between services is an error."))
    if publisher is not None:
        specs += publisher.specs(names, registry, version)
    check_specs = [dg.AssetCheckSpec(stage, asset=image_key(n), description=f"{stage} tests of services/{n}")
                   for n in names for stage in TEST_STAGES]
    pmmg_names = {s.name for s in services if pmmg.is_pmmg_service(s)}  # read from files: load and step agree
    check_specs += [pmmg.check_spec(s) for s in services if s.name in pmmg_names]

    @dg.multi_asset(name="service_images", specs=specs, check_specs=check_specs, can_subset=True)
    def service_images(context: dg.AssetExecutionContext, nexus: NexusConfig, docker_engine: DockerEngine,
                       git: GitRepo, registry: Registry) -> Iterator[Any]:  # the registry: the shared build cache and the pushes
        settings = nexus.settings()
        with nexus.hold_workdir(context), contextlib.ExitStack() as stack:  # one writer per working copy
            # Each image is pushed as soon as it passed its tests, while the others still build;
            # leaving this block on an interrupt or an error stops the pushes in flight.
            pushes = (stack.enter_context(publisher.start(context, docker_engine, settings, names))
                      if publisher is not None else None)
            selected = {key.path[-1] for key in context.selected_asset_keys if key.path[0] == "image"}
            to_build = _worth_building(context, asset_graph(), selected)
            in_repo, in_copy = both_views(settings)
            contexts = {s.name: s for s in in_copy}
            repo_folders = {s.name: s for s in in_repo if s.path.is_relative_to(settings.repo)}
            built: dict[str, str] = {}
            tested: dict[str, dict[str, Any]] = {}  # this run's images and test states, for the push
            failed: dict[str, str] = {}
            no_tests = no_tests_mode(settings.repo)
            links = EvidenceLinks.of(settings)  # the UI's links to the logs (the evidence server)
            if to_build:
                _sweep(context, docker_engine, settings)
                origin = {"revision": git.revision(), "source": git.remote_url(), "created": git.commit_time()}
                context.log.info(f"building and testing {len(to_build)} service(s), up to {settings.max_parallel} at a time")
                # refreshed one by one as they are submitted: the first builds start at once
                jobs = (_build_context(settings, repo_folders.get(n), contexts.get(n), n) for n in to_build)
                for service, outcome in _build_all(context, docker_engine, settings, jobs, origin, tests):
                    if pushes is not None:  # the pushes that ended while this service was built
                        yield from pushes.ready()
                    for note in outcome.get("notes") or []:
                        context.log.warning(f"{service.name}: {note}")
                    if outcome["built"] is None:
                        context.log.error(f"FAILED {service.name}: {outcome['error']}")
                        failed[service.name] = outcome["error"]
                        yield from failure_events(service, outcome, settings.reports, no_tests,
                                                  service.name in pmmg_names, links)
                        continue
                    event = success_event(service, outcome, no_tests, service.name in pmmg_names, links)
                    built[service.name] = outcome["built"]["image_id"]
                    tested[service.name] = {"image_id": built[service.name], "tests": test_states(outcome["stages"]),
                                            "cache_key": outcome["built"].get("cache_key"),
                                            "pmmg_policy": outcome.get("pmmg")}
                    if outcome.get("pmmg") and not outcome["pmmg"]["passed"]:
                        context.log.error(f"FAILED {service.name}: PMMG is browser-only: {outcome['pmmg']['detail']}")
                    assert event.metadata is not None  # success_event always sets it
                    context.log.info(str(event.metadata["summary"]))
                    commit = {k: v for k, v in source_commit(outcome["built"].get("labels")).items() if k != "source_repository"}
                    yield source_event(service.name, outcome["built"]["tree_hash"], commit)  # what was really built
                    yield event
                    if pushes is not None:
                        pushes.submit(service.name, tested[service.name])
            yield from _checks_alone(context, docker_engine, settings, tests, contexts, no_tests)
            if TAGGED_IMAGES in context.selected_asset_keys:
                yield tag_current_images(context, docker_engine, settings, names, built)
            if pushes is not None:  # the current images not rebuilt are pushed now, as before
                yield from pushes.finish(tested, failed)

    return service_images


def _build_all(context: dg.AssetExecutionContext, docker_engine: DockerEngine, settings: Settings,
               services: Iterable[Service], origin: dict[str, Any] | None,
               tests: ServiceTests) -> Iterator[tuple[Service, dict[str, Any]]]:
    """(service, outcome) as each service finishes, up to max_parallel at a time. An interrupt
    (Ctrl-C, SIGTERM, the run terminated) reaches this generator in the step's main thread:
    it throws the step's cancel switch, which stops every build in the engine and removes every
    test container within seconds, and the interrupt goes on up to Dagster."""
    cancel = Cancellation()
    secrets = repo_secrets(settings.repo)  # masked in build logs; refused in images
    cache = RegistryCache.open(settings, context.resources.registry, context.log.warning)  # asked once: a registry away is one warning
    # BuildKit or the classic builder, probed and said once per run (a fallback is a warning)
    builder = Builder.from_env(docker_engine.base_url, context.log.info, context.log.warning)
    pool = ThreadPoolExecutor(max_workers=settings.max_parallel, thread_name_prefix="build")
    futures = {}
    try:
        for service in services:
            futures[pool.submit(build_and_test, docker_engine, settings, service, origin, tests, cancel,
                                 secrets, cache, builder)] = service
        for future in as_completed(futures):
            service = futures[future]
            try:
                outcome = future.result()
            except EngineError as exc:  # the engine went away mid-run: this service only
                outcome = {"built": None, "error": str(exc), "stages": []}
            yield service, outcome
    except BaseException as exc:
        running = sum(not f.done() for f in futures)
        cancel.cancel("interrupted" if not isinstance(exc, Exception) else "stopped after an error")
        pool.shutdown(wait=False, cancel_futures=True)
        started = [f for f in futures if not f.cancelled()]  # a cancelled one never counts as done
        left = wait(started, timeout=CANCEL_GRACE_SECONDS).not_done
        context.log.debug(f"{cancel.reason}: stopped {running} build(s) and their test containers"
                            + (f"; {len(left)} did not stop within {CANCEL_GRACE_SECONDS:g}s" if left else ""))
        raise
    finally:
        pool.shutdown(wait=not cancel.cancelled)


def _sweep(context: dg.AssetExecutionContext, docker_engine: DockerEngine, settings: Settings) -> None:
    """Remove what a killed run left (test containers and networks) holding the working copy, and
    mark failed the runs whose nexus-agent is gone."""
    client = docker_engine.client()
    try:
        containers, networks = remove_leftovers(client, settings.workdir)
    finally:
        client.close()
    runs = fail_orphan_runs(context.instance)
    if containers or networks or runs:
        context.log.info(f"cleaned up after a killed run: removed {len(containers)} container(s), "
                         f"{len(networks)} network(s); marked {len(runs)} run(s) failed")


def _worth_building(context: dg.AssetExecutionContext, graph: "BaseAssetGraph[Any]", selected: set[str]) -> list[str]:
    """The selected images Dagster holds stale or missing (all of them in a forced run, or one that
    nexus-agent or the sensor planned): a fresh image selected by "Materialize all" in the UI is
    left as it is, and said so."""
    if not selected:
        return []
    if context.run.tags.get(FORCE_TAG) == "true" or context.run.tags.get(ORIGIN_TAG) in ("cli", "sensor"):
        return sorted(selected)  # forced, or planned from Dagster's verdict moments ago
    stale = stale_images(graph, context.instance,
                         [image_key(n) for n in sorted(selected)])
    fresh = sorted(selected - {key.path[-1] for key in stale})
    if fresh:
        context.log.info(f"{len(fresh)} selected image(s) are fresh and left as they are "
                         f"(run with tag {FORCE_TAG}=true to rebuild them): {', '.join(fresh[:10])}")
    for key, reason in sorted(stale.items(), key=lambda kv: kv[0].to_user_string()):
        context.log.info(f"{key.path[-1]}: {reason}")
    return sorted(key.path[-1] for key in stale)


def _build_context(settings: Settings, in_repo: Service | None, in_workdir: Service | None, name: str) -> Service:
    """The service as the build sees it: its context in the working copy (wherever it lies in
    the repository), refreshed from the repository first so that it holds exactly what
    source/<service> observed, and so its Dockerfile when that lies outside the context
    (scaffolded services exist only in the working copy). The repository's root as a context is
    mirrored into a folder of its own (WORKDIR/.nexus-cache/root-context): the working copy's
    root also holds what the pipeline makes (reports, Dagster's storage, the signing key), which
    a build must neither hash nor send."""
    if in_repo is None:
        assert in_workdir is not None, name
        return in_workdir
    root = settings.workdir
    if in_repo.path == settings.repo and not settings.workdir.is_relative_to(settings.repo):
        root = settings.cache / "root-context"
    target = root / in_repo.path.relative_to(settings.repo)
    if in_repo.path != settings.repo or root != settings.workdir:
        mirror_tree(in_repo.path, target, IGNORED_NAMES)
    dockerfile = None
    if in_repo.dockerfile is not None:
        dockerfile = root / in_repo.dockerfile.relative_to(settings.repo)
        if not in_repo.dockerfile.is_relative_to(in_repo.path):
            dockerfile.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(in_repo.dockerfile, dockerfile)
    return dataclasses.replace(in_repo, path=target, dockerfile=dockerfile)


def _checks_alone(context: dg.AssetExecutionContext, docker_engine: DockerEngine, settings: Settings,
                  tests: ServiceTests,
                  contexts: dict[str, Service], no_tests: str = "warn") -> Iterator[dg.AssetCheckResult]:
    """Checks selected without their image (the UI's "Execute" on one check): run that stage
    again for that service, against the image Dagster last recorded for it."""
    alone = sorted((key.asset_key.path[-1], key.name) for key in context.selected_asset_check_keys
                   if key.asset_key not in context.selected_asset_keys)
    if not alone:
        return
    recorded = latest_data_versions(context.instance, [image_key(name) for name, _ in alone])
    client = docker_engine.client()
    label_created(client, settings.workdir)
    try:
        for name, stage in alone:
            service = contexts.get(name)
            image_id = recorded.get(image_key(name))
            if service is None:
                result = StageResult(name, stage, False, False, f"not run: services/{name} no longer exists", 0.0, "")
            elif stage == "lint":
                result = tests.lint(service, settings.reports, timeout=settings.test_timeout)
            elif not image_id or not image_id.startswith("sha256:"):
                result = StageResult(name, stage, False, False, "not run: no image built yet", 0.0, "")
            elif stage == pmmg.PMMG_CHECK:
                try:
                    judged = pmmg.judge(client, service, image_id, settings.workdir)
                except docker_errors()[0] as exc:  # the recorded image is gone from the engine
                    judged = {"passed": False, "detail": f"not judged: image {image_id[:19]} not in the engine "
                                                         f"({getattr(exc, 'explanation', None) or exc})", "where": ""}
                yield pmmg.check_result(name, judged)
                continue
            else:
                runner = tests.unit if stage == "unit" else tests.integration
                result = runner(client, service, image_id, settings.reports, timeout=settings.test_timeout)
            context.log.info(f"{name} {stage}: {'passed' if result.passed else 'FAILED'}: {result.reason}")
            yield check_result(result, no_tests, EvidenceLinks.of(settings))
    finally:
        client.close()
