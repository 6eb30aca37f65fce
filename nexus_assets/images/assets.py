"""Steps F and H per service: one image asset per service, with its lint, unit and
integration tests as asset checks. One step builds and tests all selected (stale) services
concurrently up to the configured limit; one step rather than one per service keeps a
100-service run from paying Dagster's per-step process start-up a hundred times.

A failing test does not stop the other services or the build (the guide: tests are
non-blocking); it fails the service's check, which blocks the release gate."""

import logging
from concurrent.futures import ThreadPoolExecutor, as_completed

import dagster as dg

from nexus_assets.core.errors import EngineError, NexusError
from nexus_assets.core.services import Service
from nexus_assets.images.baseimages import load_base_image_map
from nexus_assets.images.build import build_image, plan_build
from nexus_assets.images.staleness import build_services, image_key
from nexus_assets.resources import DockerEngine, GitRepo, NexusConfig
from nexus_assets.verify import service_tests

progress = logging.getLogger("nexus_assets.progress")
SCAFFOLDED = dg.AssetKey("scaffolded_services")
TEST_STAGES = ("lint", "unit", "integration")


def _check_result(stage: service_tests.StageResult) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        asset_key=image_key(stage.service),
        check_name=stage.stage,
        passed=stage.passed,
        description=stage.reason,
        metadata={"skipped": stage.skipped, "seconds": round(stage.seconds, 2), "containers": stage.containers,
                  "log": dg.MetadataValue.path(stage.log_path), "details": dg.MetadataValue.json(stage.details)},
    )


def _not_run(service: Service, stage: str, reason: str, log_path: str) -> service_tests.StageResult:
    return service_tests.StageResult(service=service.name, stage=stage, passed=False, skipped=False,
                                     reason=f"not run: {reason}", seconds=0.0, log_path=log_path,
                                     details={}, containers=0)


def build_and_test(engine: DockerEngine, settings, service: Service, revision: str | None, timeout: float) -> dict:
    """Lint, build, then unit and integration tests in the built image, for one service.
    Returns {"built": dict | None, "error": str | None, "stages": [StageResult]}."""
    reports = settings.reports
    stages = [service_tests.run_lint(service, reports, timeout=timeout)]
    client = engine.client()  # one client per thread: the SDK's session is not shared safely
    try:
        try:
            plan = plan_build(service, client, load_base_image_map())
            built = build_image(
                client, plan, registry=settings.registry, version=settings.version, revision=revision,
                source=str(settings.repo / "services" / service.name),
                log_path=reports / f"build_{service.name}.log",
            )
        except NexusError as exc:
            log = str(reports / f"build_{service.name}.log")
            stages += [_not_run(service, s, "the image did not build", log) for s in ("unit", "integration")]
            return {"built": None, "error": str(exc), "stages": stages}
        built.update(source_hash=plan.fingerprint, tree_hash=plan.tree_hash, base_images=plan.bases)
        stages.append(service_tests.run_unit(client, service, built["image_id"], reports, timeout=timeout))
        stages.append(service_tests.run_integration(client, service, built["image_id"], reports, timeout=timeout))
        return {"built": built, "error": None, "stages": stages}
    finally:
        client.close()


def service_images_asset(services: list[Service], code_versions: dict[str, str]) -> dg.AssetsDefinition:
    """The multi-asset holding image/<service> and its test checks for every service known at load."""
    by_key = {image_key(s.name): s for s in services}
    specs = [
        dg.AssetSpec(
            key=image_key(s.name),
            deps=[SCAFFOLDED],
            description=f"Docker image of services/{s.name}, tagged REGISTRY/nexus/{s.name}:VERSION and :latest.",
            group_name="images",
            kinds={"docker"},
            code_version=code_versions[s.name],
            skippable=True,
            tags={"nexus/language": s.language},
            metadata={"service_path": f"services/{s.name}"},
        )
        for s in services
    ]
    check_specs = [
        dg.AssetCheckSpec(stage, asset=image_key(s.name), description=f"{stage} tests of services/{s.name}")
        for s in services for stage in TEST_STAGES
    ]

    @dg.multi_asset(name="service_images", specs=specs, check_specs=check_specs, can_subset=True)
    def service_images(context: dg.AssetExecutionContext, nexus: NexusConfig, docker_engine: DockerEngine, git: GitRepo):
        settings = nexus.settings()
        # Resolve the folders now, not at load time: the workspace step of this same run may
        # just have synced or scaffolded them into the working copy.
        current = {s.name: s for s in build_services(settings)}
        selected = [current.get(by_key[key].name, by_key[key])
                    for key in sorted(context.selected_asset_keys, key=lambda k: k.to_user_string())]
        revision = git.revision()
        progress.info("building and testing %d service(s), up to %d at a time", len(selected), settings.max_parallel)
        failures = []
        with ThreadPoolExecutor(max_workers=settings.max_parallel, thread_name_prefix="build") as pool:
            futures = {pool.submit(build_and_test, docker_engine, settings, s, revision, settings.test_timeout): s
                       for s in selected}
            for future in as_completed(futures):
                service = futures[future]
                try:
                    outcome = future.result()
                except EngineError as exc:  # the engine went away mid-run: this service only
                    outcome = {"built": None, "error": str(exc), "stages": []}
                checks = [_check_result(stage) for stage in outcome["stages"]]
                failed_stages = [s.stage for s in outcome["stages"] if not s.passed]
                if outcome["built"] is None:
                    failures.append(service.name)
                    progress.error("  FAILED %s: %s", service.name, outcome["error"])
                    context.log.error(outcome["error"])
                    yield dg.AssetObservation(
                        asset_key=image_key(service.name),
                        metadata={"status": "failed", "reason": outcome["error"],
                                  "build_log": str(settings.reports / f"build_{service.name}.log")},
                    )
                    yield from checks
                    continue
                built = outcome["built"]
                progress.info("  built %s %s in %.1fs; tests %s", service.name, built["image_id"][:19], built["seconds"],
                              "passed" if not failed_stages else "FAILED: " + ", ".join(failed_stages))
                yield dg.MaterializeResult(
                    asset_key=image_key(service.name),
                    data_version=dg.DataVersion(built["image_id"]),
                    check_results=checks,
                    metadata={
                        "status": "built",
                        "image": built["tags"][0],
                        "tags": built["tags"],
                        "image_id": built["image_id"],
                        "digest": built["image_id"],
                        "size_bytes": built["size_bytes"],
                        "build_seconds": built["seconds"],
                        "source_hash": built["source_hash"],
                        "tree_hash": built["tree_hash"],
                        "base_images": built["base_images"],
                        "labels": built["labels"],
                        "build_log": dg.MetadataValue.path(built["build_log"]),
                        "tests": {s.stage: ("skipped" if s.skipped else "passed" if s.passed else "failed")
                                  for s in outcome["stages"]},
                        "test_containers": sum(s.containers for s in outcome["stages"]),
                    },
                )
        if failures:
            context.log.warning(f"{len(failures)} image(s) failed, the others were built: {', '.join(sorted(failures))}")

    return service_images
