"""Step F, end to end: where the repository defines docker-compose.e2e.yml, bring that stack
up from the images just built, wait for every service to be healthy, and take it down."""

from pathlib import Path

import dagster as dg

from nexus_assets.core.fileio import read_json
from nexus_assets.core.keys import DISCOVERY_PARSED_FILE, E2E_TESTS, TAGGED_IMAGES, image_key
from nexus_assets.core.lineage import latest_metadata, latest_observations
from nexus_assets.resources import DockerEngine, NexusConfig
from nexus_assets.verify import e2e

E2E_COMPOSE = "docker-compose.e2e.yml"


def _discovery_problems(path: Path) -> list[tuple[str, str]]:
    """(service, message) of every discovery problem naming a service or a services/<name> path."""
    try:
        problems = read_json(path).get("problems") or []
    except (OSError, ValueError, AttributeError):
        return []
    found = []
    for problem in (p for p in problems if isinstance(p, dict)):
        parts = str(problem.get("file") or "").split("/")
        name = problem.get("service") or (parts[1] if len(parts) > 1 and parts[0] == "services" else None)
        if name:
            found.append((str(name), str(problem.get("message"))))
    return found


def e2e_tests_asset() -> dg.AssetsDefinition:
    @dg.asset(
        key=E2E_TESTS,
        deps=[TAGGED_IMAGES],
        group_name="tests", kinds={"docker"},
        check_specs=[dg.AssetCheckSpec("e2e", asset="e2e_tests",
                                       description="the e2e compose stack came up with every service healthy")],
        description=f"The repository's {E2E_COMPOSE} stack, up on the real engine from the built images, "
                    "every service healthy, then down. Skipped where the repository defines none.",
    )
    # Dagster reads this return annotation; on an asset with checks it takes MaterializeResult bare.
    def e2e_tests(context: dg.AssetExecutionContext, nexus: NexusConfig,
                  docker_engine: DockerEngine) -> dg.MaterializeResult:  # type: ignore[type-arg]
        settings = nexus.settings()
        client = docker_engine.client()
        problems = latest_metadata(context.instance, TAGGED_IMAGES).get("problems")
        why = {str(p.get("service")): str(p.get("reason")) for p in problems or [] if isinstance(p, dict)}
        for key, record in latest_observations(context.instance, [image_key(n) for n in why]).items():
            seen = record.event_log_entry.asset_observation
            meta = {k: getattr(v, "value", v) for k, v in (seen.metadata if seen is not None else {}).items()}
            if meta.get("status") == "failed":  # the build's own reason (a Dockerfile line, a refusal)
                why[key.path[-1]] = f"its build failed: {meta.get('reason')}"
        for name, message in _discovery_problems(settings.workdir / DISCOVERY_PARSED_FILE):
            why.setdefault(name, f"refused by discovery: {message}")  # a link out, a secret: not in the graph
        try:
            result = e2e.run_e2e(
                client, settings.workdir / E2E_COMPOSE, settings.workdir, settings.reports,
                env={"REGISTRY": settings.registry, "VERSION": settings.version}, timeout=settings.test_timeout * 2,
                ours=f"{settings.registry}/nexus/", why=why,
            )
        finally:
            client.close()
        context.log.info("e2e: %s" % ("skipped (" + result.reason + ")" if result.skipped else
                      ("passed" if result.passed else "FAILED: " + result.reason)))
        # A skipped e2e (no e2e stack: the guide's "if applicable") is "skipped" everywhere, never
        # passed: a WARN check, so it shows apart from a pass and does not block the release.
        passed = result.passed and not result.skipped
        return dg.MaterializeResult(
            metadata={"passed": passed, "skipped": result.skipped, "state": "skipped" if result.skipped else
                      "passed" if passed else "failed", "test_containers": result.containers,
                      "log": dg.MetadataValue.path(result.log_path), "seconds": round(result.seconds, 1)},
            check_results=[dg.AssetCheckResult(
                passed=passed, check_name="e2e",
                severity=dg.AssetCheckSeverity.WARN if result.skipped else dg.AssetCheckSeverity.ERROR,
                description=f"skipped: {result.reason}" if result.skipped else result.reason,
                metadata={"skipped": result.skipped, "details": dg.MetadataValue.json(result.details)})],
        )

    return e2e_tests
