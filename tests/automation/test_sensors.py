"""The repository change sensor reads Dagster's own staleness: one change requests one image (and
what follows it), a revert rebuilds, a failed build is not requested again until it changes."""

from __future__ import annotations

import dagster as dg
import pytest

from nexus_assets.definitions import build_definitions

pytestmark = [pytest.mark.docker, pytest.mark.slow]
AFTER = {"tagged_images", "pushed_images", "e2e_tests", "artifacts_manifest", "compliance_report", "deployment_package"}
# The attest steps hold every service (their graph cannot be subset): all SBOMs and statements,
# of which they make again only what is stale.
ATTEST = {"sbom/node-svc-001", "sbom/node-svc-002", "provenance/node-svc-001", "provenance/node-svc-002",
          "attestations", "evidence_pack"}
PREPARE = {"workspace", "discovery_parsed", "discrepancy_report", "scaffolded_services"}


def _tick(settings, instance, cursor=None):
    """One sensor evaluation: (run request or None, skip message, new cursor)."""
    defs = build_definitions(settings)
    sensor = defs.resolve_sensor_def("repo_change_sensor")
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=defs.resources, definitions=defs)
    result = sensor(context)
    assert isinstance(result, dg.SensorResult), result
    request = result.run_requests[0] if result.run_requests else None
    skip = result.skip_reason.skip_message if result.skip_reason else ""
    return request, skip, result.cursor


def _keys(request) -> set[str]:
    return {k.to_user_string() for k in request.asset_selection}


def test_sensor_requests_only_what_changed_and_a_revert(built):
    repo, settings, instance = built

    request, skip, cursor = _tick(settings, instance)
    assert request is None and "nothing stale" in skip

    server = repo / "services" / "node-svc-002" / "server.js"
    original = server.read_text()
    server.write_text(original + "\n// changed\n")
    request, _, cursor = _tick(settings, instance, cursor)
    assert request is not None and request.job_name == "nexus_pipeline"
    assert _keys(request) == PREPARE | AFTER | ATTEST | {"image/node-svc-002", "pushed/node-svc-002"}
    assert request.tags["nexus/origin"] == "sensor" and request.tags["nexus/invocation"]
    again, skip, cursor = _tick(settings, instance, cursor)
    assert again is None, "the same versions are requested once"

    # The run the sensor asked for, launched as the daemon would (same job, selection, tags).
    defs = build_definitions(settings)
    result = defs.resolve_job_def("nexus_pipeline").execute_in_process(
        instance=instance, asset_selection=list(request.asset_selection), tags=request.tags)
    built = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "image/node-svc-002" in built and "image/node-svc-001" not in built

    server.write_text(original)  # the revert: A -> B -> A must build A again
    request, _, cursor = _tick(settings, instance, cursor)
    assert request is not None and "image/node-svc-002" in _keys(request)


def test_a_failed_build_is_not_requested_again_until_it_changes(built):
    repo, settings, instance = built
    dockerfile = repo / "services" / "node-svc-001" / "Dockerfile"
    good = dockerfile.read_text()
    dockerfile.write_text(good.replace("WORKDIR /app", "RUN exit 3\nWORKDIR /app", 1))

    request, _, cursor = _tick(settings, instance)
    assert request is not None and "image/node-svc-001" in _keys(request)
    defs = build_definitions(settings)
    defs.resolve_job_def("nexus_pipeline").execute_in_process(
        instance=instance, asset_selection=list(request.asset_selection), tags=request.tags, raise_on_error=False)
    again, skip, cursor = _tick(settings, instance, cursor)
    assert again is None and "already requested" in skip, "no retry loop for a broken build"

    dockerfile.write_text(good + "\n# fixed\n")
    fixed, _, _ = _tick(settings, instance, cursor)
    assert fixed is not None and "image/node-svc-001" in _keys(fixed)
