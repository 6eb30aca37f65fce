"""One service through the image step: lint, build (or take from the registry cache), unit and
integration tests, and the Dagster events that record what happened (a materialization with its
checks, or a failure observation)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

from nexus_assets.core.cancel import Cancellation, Cancelled
from nexus_assets.core.errors import NexusError
from nexus_assets.core.keys import image_key, source_key
from nexus_assets.core.metadata import EvidenceLinks, log_tail
from nexus_assets.core.settings import Settings
from nexus_assets.images import pmmg
from nexus_assets.images.build import BuildPlan, build_image, plan_build
from nexus_assets.images.buildkit import Builder
from nexus_assets.images.cache import RegistryCache, cache_key, take_from_cache
from nexus_assets.policy.acceptance import NO_TESTS, no_tests_note
from nexus_assets.resources import DockerEngine
from nexus_assets.target.baseimages import load_base_image_map
from nexus_assets.target.services import Service
from nexus_assets.testing.cleanup import label_created
from nexus_assets.testing.stage import ServiceTests, StageResult

if TYPE_CHECKING:  # type names only: the Docker SDK is untyped (these are Any to mypy)
    from docker import DockerClient


def check_result(stage: StageResult, no_tests: str = "warn", links: EvidenceLinks | None = None) -> dg.AssetCheckResult:
    """A stage that could not run here (skipped, not passed: its infrastructure's image is not
    available) is a WARN check, not passed: the UI shows it apart from a failure. A stage with
    no tests is not passed either: a WARN, or an ERROR (blocking the release) when the
    repository says `[tests] no_tests = "block"` (no_tests: that mode). With links, the log's URL;
    a failed stage also shows its log's tail inline."""
    not_run = stage.skipped and not stage.passed and not (stage.no_tests and no_tests == "block")
    return dg.AssetCheckResult(
        asset_key=image_key(stage.service),
        check_name=stage.stage,
        passed=stage.passed,
        severity=dg.AssetCheckSeverity.WARN if not_run else dg.AssetCheckSeverity.ERROR,
        description=f"{stage.reason}: {no_tests_note(no_tests)}" if stage.no_tests else stage.reason,
        # containers: those the stage ran in (the unit stage's, when integration shared it), so each
        # check agrees with the image's test_containers; containers_started: those it started itself
        metadata={"skipped": stage.skipped, "no_tests": stage.no_tests, "seconds": round(stage.seconds, 2),
                  "containers": stage.containers + (1 if stage.details.get("shared_container") else 0),
                  "containers_started": stage.containers,
                  "log": dg.MetadataValue.path(stage.log_path), "details": dg.MetadataValue.json(stage.details),
                  **(links.entry("log", stage.log_path) if links is not None else {}),
                  **({"log_tail": log_tail(stage.log_path)} if not stage.passed and not not_run and stage.log_path
                     else {})},
    )


def _not_run(service: Service, stage: str, reason: str, log_path: str) -> StageResult:
    return StageResult(service=service.name, stage=stage, passed=False, skipped=False, reason=f"not run: {reason}",
                       seconds=0.0, log_path=log_path, details={}, containers=0)


def build_and_test(engine: DockerEngine, settings: Settings, service: Service, origin: dict[str, Any] | None,
                   tests: ServiceTests,
                   cancel: Cancellation | None = None, secrets: Sequence[str] = (),
                   cache: RegistryCache | None = None, builder: Builder | None = None) -> dict[str, Any]:
    """Lint, build, then unit and integration tests in the built image, for one service. origin:
    the target's git {"revision", "source" (remote URL), "created" (commit time)} for the labels.
    With a cache, the cache is asked first: an image of the same key that passed its tests
    elsewhere is pulled instead of built and tested, and its lint result is read from its label
    io.nexus-assets.lint (verify.lint_record: no lint runs; an image without the label, or whose
    lint inputs differ here, is linted). A miss lints, then builds, lint's result going into
    the label; a failed lint fails its check, the image is still built and tested. Returns
    {"built": dict | None, "error": str | None, "stages": [StageResult], "notes": [str]}
    (notes: why a cache hit was not used). A build longer than settings.build_timeout fails
    this service alone; when cancel is thrown, the build is stopped, the test containers
    removed, and Cancelled raised. builder: the run's (BuildKit or the classic builder,
    images.buildkit); default NEXUS_BUILDER."""
    cancel = cancel or Cancellation()
    reports, timeout = settings.reports, settings.test_timeout
    notes: list[str] = []
    cancel.raise_if_cancelled(f"service {service.name}")
    client = engine.client()  # one client per thread: the SDK's session is not shared safely
    created = label_created(client, settings.workdir)  # owner-labelled: a killed run's are found

    def remove_containers() -> None:  # from the cancelling thread, on a client of its own
        other = engine.client()
        try:
            created.remove_with(other)
        finally:
            other.close()

    stages: list[StageResult] = []
    try:
        with cancel.hook(remove_containers):
            try:
                cancel.raise_if_cancelled(f"service {service.name}")
                base_map = load_base_image_map()
                plan = plan_build(service, client, base_map, service.build_args, secrets)
                taken = _from_cache(client, plan, cache, settings, cancel, notes, tests) if cache is not None else None
                if taken is not None:
                    built, cached = taken
                    built.update(source_hash=plan.fingerprint, tree_hash=plan.tree_hash, base_images=plan.bases,
                                 cache_key=cache_key(plan))
                    return {"built": built, "error": None, "stages": cached, "notes": notes,
                            "pmmg": _pmmg(client, service, built, settings)}
                stages.append(tests.lint(service, reports, timeout=timeout))
                built = build_image(
                    client, plan, registry=settings.registry, version=settings.version,
                    revision=(origin or {}).get("revision"), source=(origin or {}).get("source"),
                    created=(origin or {}).get("created"),
                    log_path=reports / f"build_{service.name}.log", timeout=settings.build_timeout, cancel=cancel,
                    secrets=secrets, network=base_map.build_network, builder=builder,
                    engine=engine, extra_labels=tests.lint_labels(service, stages[0]) if tests.lint_labels else None,
                )
            except NexusError as exc:
                cancel.raise_if_cancelled(f"service {service.name}")
                if not stages:  # not planned (no Dockerfile, a secret in its build): lint says its part as ever
                    stages.append(tests.lint(service, reports, timeout=timeout))
                log = str(reports / f"build_{service.name}.log")
                stages += [_not_run(service, s, "the image did not build", log) for s in ("unit", "integration")]
                return {"built": None, "error": str(exc), "stages": stages, "notes": notes}
            built.update(source_hash=plan.fingerprint, tree_hash=plan.tree_hash, base_images=plan.bases,
                         cache_key=cache_key(plan))
            cancel.raise_if_cancelled(f"service {service.name} tests")
            if tests.unit_and_integration is not None:  # one container for both stages
                stages += tests.unit_and_integration(client, service, built["image_id"], reports, timeout=timeout)
            else:
                for stage, runner in (("unit", tests.unit), ("integration", tests.integration)):
                    cancel.raise_if_cancelled(f"service {service.name} {stage} tests")
                    stages.append(runner(client, service, built["image_id"], reports, timeout=timeout))
            cancel.raise_if_cancelled(f"service {service.name}")  # a stage cut short by the cancel
            return {"built": built, "error": None, "stages": stages, "notes": notes,
                    "pmmg": _pmmg(client, service, built, settings)}
    finally:
        client.close()


def _pmmg(client: DockerClient, service: Service, built: dict[str, Any], settings: Settings) -> dict[str, Any] | None:
    """The browser-only verdict of a PMMG image (None: the service is not part of PMMG)."""
    return pmmg.judge(client, service, built["image_id"], settings.workdir) if pmmg.is_pmmg_service(service) else None


def _from_cache(client: DockerClient, plan: BuildPlan, cache: RegistryCache, settings: Settings, cancel: Cancellation,
                notes: list[str], tests: ServiceTests) -> tuple[dict[str, Any], list[StageResult]] | None:
    """(built, [lint, unit, integration]) from the registry cache, or None to lint and build: a
    miss, a hit that is not this plan's, or a registry failing meanwhile (said in notes, never a
    failure). Lint's result comes from the image's label when it can stand for a run here, else
    lint runs (an image of an earlier recipe has no label)."""
    try:
        hit = cache.lookup(plan.service, plan)
        if hit is None:
            return None
        built, cached = take_from_cache(client, plan, hit, cache, registry=settings.registry, version=settings.version,
                                        reports=settings.reports, timeout=settings.test_timeout, cancel=cancel,
                                        pull_timeout=settings.build_timeout)  # a pull stands in for a build
    except Cancelled:
        raise
    except NexusError as exc:
        notes.append(f"registry cache not used, building: {exc}")
        return None
    lint = (tests.lint_from_label(plan.service, settings.reports, hit.labels, hit.origin(), timeout=settings.test_timeout)
            if tests.lint_from_label is not None else None)
    return built, [lint or tests.lint(plan.service, settings.reports, timeout=settings.test_timeout), *cached]


def cached_lint(stages: list[StageResult]) -> bool:
    """True when the lint stage's result was read from a cached image's label, not run."""
    return any(s.stage == "lint" and s.details.get("from_cache") for s in stages)


def test_states(stages: list[StageResult]) -> dict[str, str]:
    return {s.stage: (NO_TESTS if s.no_tests else "not_run" if s.skipped and not s.passed else "skipped" if s.skipped
                      else "passed" if s.passed else "failed") for s in stages}


def success_event(service: Service, outcome: dict[str, Any], no_tests: str = "warn",
                  pmmg_check: bool = False, links: EvidenceLinks | None = None) -> dg.MaterializeResult[Any]:
    """image/<service> materialized: data version is the image id; the checks ride along (the
    PMMG check when pmmg_check: the service was declared part of PMMG at load)."""
    built, stages = outcome["built"], outcome["stages"]
    policy = outcome.get("pmmg")
    failed = [s.stage for s in stages if not s.passed and not s.skipped]
    not_run = [s.reason for s in stages if s.skipped and not s.passed]
    cache = built.get("cache")
    if cache:
        done = (f"pulled {service.name} {built['image_id'][:19]} from the registry cache {cache['tag']} in "
                f"{cache['seconds']:.1f}s ({'commit ' + cache['revision'][:12] if cache.get('revision') else 'no commit'}"
                "); " + ("lint, unit and integration passed when built; tests " if cached_lint(stages)
                         else "unit and integration passed when built; lint "))
    else:
        layers = built.get("layer_cache") or {}
        cached = f", {layers['cached']}/{layers['steps']} steps cached" if layers.get("steps") else ""
        done = f"built {service.name} {built['image_id'][:19]} in {built['seconds']:.1f}s{cached}; tests "
    summary = (done + ("passed" if not failed else "FAILED: " + ", ".join(failed))
               + "".join(f"; {reason}" for reason in not_run))
    return dg.MaterializeResult(
        asset_key=image_key(service.name),
        data_version=dg.DataVersion(built["image_id"]),
        check_results=[check_result(s, no_tests, links) for s in stages]
        + ([pmmg.check_result(service.name, policy)] if pmmg_check else []),
        metadata={
            "status": "pulled from cache" if cache else "built",
            "summary": summary,
            "image": built["tags"][0],
            "tags": built["tags"],
            "image_id": built["image_id"],
            "size_bytes": built["size_bytes"],
            "build_seconds": built["seconds"],
            "source_hash": built["source_hash"],
            # the commit and its time as the image's OCI labels carry them (the cache's: the build's)
            **source_commit(built["labels"]),
            "source_version": built["tree_hash"][:24],  # source/<service>'s data version: the tree hash, not a commit
            "tree_hash": built["tree_hash"],
            "base_images": built["base_images"],
            "bases_used": bases_used(built["base_images"]),
            "labels": built["labels"],
            "build_log": dg.MetadataValue.path(built["build_log"]),
            **(links.entry("build_log", built["build_log"]) if links is not None else {}),
            # BuildKit or classic, and the steps after FROM the layer cache gave (not for a pull).
            **({"builder": built["builder"], "layer_cache": dg.MetadataValue.json(built["layer_cache"])}
               if "builder" in built else {}),
            "tests": test_states(stages),
            "test_containers": sum(s.containers for s in stages),
            # What its integration test ran beside it, and which of those were substitutes.
            "infrastructure": next((s.details.get("infrastructure") for s in stages
                                    if s.details.get("infrastructure")), []),
            # The registry cache's key for this image (images.cache): the push step tags it cache-<key>.
            "cache_key": built.get("cache_key") or "",
            **({"cache": dg.MetadataValue.json(cache)} if cache else {}),
            # PMMG's browser-only verdict of this image (images.pmmg): the push refuses a violation.
            **({"pmmg_policy": dg.MetadataValue.json(policy)} if policy is not None else {}),
        },
    )


def source_commit(labels: dict[str, Any] | None) -> dict[str, str]:
    """`source_commit`, `source_commit_time` and `source_repository` from an image's OCI labels
    ("not in git" when the target is not a git checkout: the labels are left out then)."""
    labels = labels or {}
    return {"source_commit": labels.get("org.opencontainers.image.revision") or "not in git",
            "source_commit_time": labels.get("org.opencontainers.image.created") or "",
            "source_repository": labels.get("org.opencontainers.image.source") or ""}


def bases_used(bases: list[dict[str, Any]] | None) -> str:
    """What each FROM really was: `python:3.11-slim (substituted: nexus-base/bookworm:2 providing
    python3.11)`, or the requested image itself."""
    return "; ".join(
        f"{b['requested']} (substituted: {b.get('substitute') or 'a substitute'} providing {b.get('provides') or '?'})"
        if b.get("substituted") else f"{b['requested']} ({str(b.get('image_id') or '')[:19]})"
        for b in bases or []) or "none"


def failure_events(service: Service, outcome: dict[str, Any], reports: Path, no_tests: str = "warn",
                   pmmg_check: bool = False, links: EvidenceLinks | None = None,
                   ) -> Iterator[dg.AssetObservation | dg.AssetCheckResult]:
    """A service that did not build: an observation on its asset (status failed, the reason and
    the build log), and its check results saying the tests did not run (and PMMG not judged)."""
    log = reports / f"build_{service.name}.log"
    yield dg.AssetObservation(
        asset_key=image_key(service.name),
        metadata={"status": "failed", "reason": outcome["error"], "build_log": str(log),
                  "source_key": source_key(service.name).to_user_string(),
                  **(links.entry("build_log", log) if links is not None else {}),
                  **({"build_log_tail": log_tail(log)} if log.is_file() else {})},
    )
    yield from (check_result(s, no_tests, links) for s in outcome["stages"])
    if pmmg_check:
        yield pmmg.check_result(service.name, None)
