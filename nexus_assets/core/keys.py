"""The asset keys of the graph, in one place: every stage names its neighbours by key, never
by importing them, so stages stay independent of one another."""

from __future__ import annotations

import dagster as dg

WORKSPACE = dg.AssetKey("workspace")
DISCOVERY_PARSED = dg.AssetKey("discovery_parsed")
DISCREPANCY_REPORT = dg.AssetKey("discrepancy_report")
SCAFFOLDED_SERVICES = dg.AssetKey("scaffolded_services")
TAGGED_IMAGES = dg.AssetKey("tagged_images")
PUSHED_IMAGES = dg.AssetKey("pushed_images")
E2E_TESTS = dg.AssetKey("e2e_tests")
ARTIFACTS_MANIFEST = dg.AssetKey("artifacts_manifest")
COMPLIANCE_REPORT = dg.AssetKey("compliance_report")
DEPLOYMENT_PACKAGE = dg.AssetKey("deployment_package")
VERIFIED_RELEASE = dg.AssetKey("verified_release")
DEPLOYMENT_REPORT = dg.AssetKey("deployment_report")
STAGING_DEPLOYMENT = dg.AssetKey("staging_deployment")  # the release on the staging host (deploy/)
# Every service's SBOM and signed provenance in one record, always produced by the attest step so
# that what follows it (the manifest) never waits on a service whose image or push failed.
ATTESTATIONS = dg.AssetKey("attestations")
EVIDENCE_PACK = dg.AssetKey("evidence_pack")
PREPARE_KEYS = (WORKSPACE, DISCOVERY_PARSED, DISCREPANCY_REPORT, SCAFFOLDED_SERVICES)
# What follows the images in every run that built or retagged one.
# The release documents made from the manifest come last: each is remade only when Dagster holds
# it stale (its inputs' data versions or its code version changed), else left as it is.
RELEASE_DOCS = (COMPLIANCE_REPORT, DEPLOYMENT_PACKAGE)
AFTER_IMAGES = (TAGGED_IMAGES, PUSHED_IMAGES, E2E_TESTS, ARTIFACTS_MANIFEST, *RELEASE_DOCS)
# The release and its report: what `nexus-agent run` adds after them (the sensor does not release).
RELEASE_KEYS = (VERIFIED_RELEASE, DEPLOYMENT_REPORT)
TEST_STAGES = ("lint", "unit", "integration")  # the checks on every image/<service>, in the order they run
FORCE_TAG = "nexus/force"  # a run with this tag "true" rebuilds the selected images even when fresh
INVOCATION_TAG = "nexus/invocation"  # ties together the runs of one nexus-agent run or sensor tick
ORIGIN_TAG = "nexus/origin"  # cli | sensor | ui
PIPELINE_JOB = "nexus_pipeline"  # the job every pipeline run (CLI, sensor, UI) is a run of

from nexus_assets.core.report_paths import (  # the report paths, beside the asset keys
    ARTIFACTS_MANIFEST_FILE as ARTIFACTS_MANIFEST_FILE,
)
from nexus_assets.core.report_paths import (
    COMPLIANCE_REPORT_FILE as COMPLIANCE_REPORT_FILE,
)
from nexus_assets.core.report_paths import (
    DEPLOYMENT_PACKAGE_FILE as DEPLOYMENT_PACKAGE_FILE,
)
from nexus_assets.core.report_paths import (
    DEPLOYMENT_REPORT_FILE as DEPLOYMENT_REPORT_FILE,
)
from nexus_assets.core.report_paths import (
    DISCOVERY_PARSED_FILE as DISCOVERY_PARSED_FILE,
)
from nexus_assets.core.report_paths import (
    DISCREPANCY_REPORT_FILE as DISCREPANCY_REPORT_FILE,
)
from nexus_assets.core.report_paths import (
    SCAFFOLD_REPORT_FILE as SCAFFOLD_REPORT_FILE,
)
from nexus_assets.core.report_paths import (
    VERIFIED_RELEASE_FILE as VERIFIED_RELEASE_FILE,
)
from nexus_assets.core.report_paths import (
    any_day as any_day,
)
from nexus_assets.core.report_paths import (
    dated as dated,
)
from nexus_assets.core.report_paths import (
    day_pattern as day_pattern,
)
from nexus_assets.core.report_paths import (
    newest as newest,
)


def image_key(service_name: str) -> dg.AssetKey:
    """image/<service>: the built and tested Docker image of one service."""
    return dg.AssetKey(["image", service_name])


def pushed_key(service_name: str) -> dg.AssetKey:
    """pushed/<service>: the service's image in the registry, its data version the pushed name@digest."""
    return dg.AssetKey(["pushed", service_name])


def sbom_key(service_name: str) -> dg.AssetKey:
    """sbom/<service>: the CycloneDX SBOM of one service's image (artifacts/sbom/<service>.cdx.json)."""
    return dg.AssetKey(["sbom", service_name])


def provenance_key(service_name: str) -> dg.AssetKey:
    """provenance/<service>: the signed SLSA provenance of one pushed image
    (artifacts/provenance/<service>.intoto.jsonl)."""
    return dg.AssetKey(["provenance", service_name])


def source_key(service_name: str) -> dg.AssetKey:
    """source/<service>: what one service's image is built from (observed, not built)."""
    return dg.AssetKey(["source", service_name])


def base_image_key(name: str) -> dg.AssetKey:
    """base_image/<name>: a base image in the engine, its data version the image id."""
    return dg.AssetKey(["base_image", *[part for part in _key_safe(name).split("/") if part]])


def after_images(names: list[str]) -> list[dg.AssetKey]:
    """Every key that follows the images in a run that built or retagged one: AFTER_IMAGES, and
    per service its SBOM and provenance, the attestations and the evidence pack (the pushes are
    chosen apart: only images that passed their tests are pushed). Callers keep those their
    asset graph can execute."""
    per_service = [k(n) for n in names for k in (sbom_key, provenance_key)]
    return [*AFTER_IMAGES, *per_service, ATTESTATIONS, EVIDENCE_PACK]


def _key_safe(name: str) -> str:
    # asset key parts allow letters, digits and underscores only
    return "".join(c if c.isalnum() or c in "_/" else "_" for c in name)
