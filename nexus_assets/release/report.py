"""The shape of `artifacts/artifacts_manifest.json`. Schema: `schemas/artifacts_manifest.schema.json`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from nexus_assets.core.report_models import ReportModel, sometimes

Status = Literal["current", "tests_failed", "stale", "failed", "never_built", "image_missing", "refused"]


class ArtifactRef(ReportModel):
    """A file released with an image (its SBOM, its signed provenance statement)."""

    path: str = Field(description="Path of the file relative to artifacts/ (and to the evidence pack), e.g. "
                                  "sbom/<service>.cdx.json.")
    sha256: str = Field(description="sha256 of the file's bytes, hex.")


class BaseImage(ReportModel):
    """One FROM image of the service's Dockerfile, as the build resolved it."""

    requested: str = Field(description="The image the Dockerfile names (e.g. node:20-alpine).")
    image_id: str = Field(description="Its id in the engine when the image was built.")
    substituted: bool = Field(description="True when a locally built substitute stood in for it "
                                          "(target/base_images.toml): the real image could not be had.")
    substitute: str | None = Field(description="The image that stood in, when substituted.")
    line: int = Field(description="The Dockerfile line of the FROM.")
    provides: str | None = Field(default=None, description="What the substitute provides (e.g. node and npm "
                                                            "versions), when substituted.")


class Infrastructure(ReportModel):
    """An image-only compose service (postgres, redis) started beside the integration test."""

    name: str = Field(description="Its compose service name.")
    image: str = Field(description="The image compose names.")
    substituted: bool = Field(description="True when a substitute built from Debian packages stood in for it.")
    provides: str | None = Field(description="What the substitute provides, when substituted.")


class CachePull(ReportModel):
    """Where an image taken from the registry cache (not built here) came from."""

    tag: str = Field(description="The cache tag it was pulled from: REGISTRY/nexus/<service>:cache-<key>, the key "
                                 "being its source fingerprint, base image ids and recipe version.")
    digest: str = Field(description="The manifest digest of that tag when it was pulled.")
    revision: str | None = Field(description="The commit the image was built from (its OCI revision label).")
    created: str | None = Field(description="That commit's time (its OCI created label).")


class Waiver(ReportModel):
    """A `[release] waive` entry of the target's nexus-agent.toml that applies to a service."""

    service: str = Field(description="The waived service.")
    reason: str = Field(description="Why the release may go without it, as the waiver says.")
    until: str = Field(description="The last day the waiver holds (YYYY-MM-DD); after it the service blocks again.")
    line: int | None = Field(description="The entry's line in nexus-agent.toml.")
    committed_by: str = Field(description="The author of the commit that added the entry's line (git blame), or "
                                          "uncommitted.")
    commit: str | None = Field(description="That commit; null when uncommitted.")
    expired: bool = Field(description="The waiver's day has passed: it no longer holds and the service blocks.")


class WaivedService(Waiver):
    """A service the release goes without, under a waiver that holds: not pinned, not deployed."""

    status: str = Field(description="Its status in images[].")
    why: str = Field(description="Why it is not released (its failure or refusal).")


class ImageEntry(ReportModel):
    """One service: its current image and where it is in the registry, or why there is none."""

    service: str = Field(description="The service, named as in compose (or its folder).")
    status: Status = Field(description="current: built from the current sources, tests passed; tests_failed: "
                                       "built, a test stage failed (not pushed); stale: the sources changed since; "
                                       "failed: the last build failed; never_built; image_missing: gone from "
                                       "the engine; refused: never built nor counted (a link out of the "
                                       "repository, a secret its image would keep, an unreadable Dockerfile).")
    source_hash: str | None = Field(description="Fingerprint of what the image is built from (sources, build "
                                                "args, base image ids): its OCI label io.nexus-assets.source-hash.")
    tests: dict[str, Literal["passed", "failed", "skipped", "not_run", "no_tests"]] | None = Field(
        description="Result of each test stage (lint, unit, integration) for this image; not_run: the stage "
                    "needs infrastructure whose image is not available here; no_tests: the service has no tests "
                    "to run (never passed; blocks only with [tests] no_tests = \"block\" in nexus-agent.toml).")
    image: str | None = Field(description="The release tag REGISTRY/nexus/<service>:VERSION.")
    tags: list[str] | None = Field(description="Every tag given to the image (VERSION and latest).")
    image_id: str | None = Field(description="The image's id in the local Docker engine (sha256 of its config). "
                                             "Not a registry digest.")
    digest: str | None = Field(description="The registry's manifest digest (sha256:...) of the pushed image; null "
                                           "when it is not in the registry.")
    repo_digest: str | None = Field(description="REGISTRY/nexus/<service>@<digest>: the name to pull or deploy by.")
    size_bytes: int | None = Field(description="Size of the image in the engine.")
    base_images: list[BaseImage] | None = Field(description="The FROM images the build used.")
    substituted_bases: list[str] | None = Field(description="The requested base images a substitute stood in for.")
    infrastructure: list[Infrastructure] | None = Field(
        default=None, description="The infrastructure its integration test ran beside.")
    build_log: str | None = Field(description="Path of the build log.")
    built_at: str | None = Field(description="When the image's materialization was recorded (UTC, RFC 3339).")
    image_run_id: str | None = Field(description="Dagster run that built the image, or that took it from the "
                                                 "registry cache (see obtained).")
    obtained: Literal["built", "pulled from cache"] | None = Field(
        default=None, description="How this machine got the image: built (and tested) here, or pulled from the "
                                  "registry cache, where only images whose lint, unit and integration tests all "
                                  "passed are kept; its unit and integration results (and lint's, when the image's "
                                  "label io.nexus-assets.lint carries it) are then those of its build.")
    cache: CachePull | None = Field(default=None, description="The registry cache tag and build commit of an image "
                                                              "pulled from the cache; null when built here.")
    push_run_id: str | None = Field(description="Dagster run that pushed it (or found it already pushed).")
    pushed_at: str | None = Field(description="When that push was recorded (UTC, RFC 3339).")
    sbom: ArtifactRef | None = Field(description="The image's SBOM (CycloneDX JSON), when one was made.")
    provenance: ArtifactRef | None = Field(description="The image's signed provenance statement, when one was made.")
    reason: str | None = Field(description="Why the image is not released, when it is not (`waived: ...` when a "
                                           "waiver lets the release go without it).")
    waiver: Waiver | SkipJsonSchema[None] = sometimes("The waiver naming this service, when it is not released "
                                                      "and nexus-agent.toml waives it (expired or not).")


class E2eResult(ReportModel):
    """The repository's end-to-end compose stack, as e2e_tests last ran it."""

    passed: bool | None = Field(description="Every service of the stack came up healthy (false when skipped: "
                                            "a skipped e2e never counts as passed).")
    skipped: bool | None = Field(description="The repository defines no e2e stack.")
    seconds: float | int | None = Field(description="How long it took.")


class Problem(ReportModel):
    """A service whose image is not released, and why."""

    service: str = Field(description="The service.")
    status: str = Field(description="Its status in images[] (or not_pushed).")
    reason: str = Field(description="What is wrong; never a secret value.")


class Totals(ReportModel):
    """Counts over images[]."""

    services: int = Field(description="Services in the manifest.")
    with_digest: int = Field(description="Images with a registry digest.")
    problems: int = Field(description="Entries of problems[].")
    tests_failed: int = Field(description="Images whose tests failed.")
    refused: int = Field(default=0, description="Services refused (status refused).")
    waived: int = Field(default=0, description="Entries of waived[].")


class ArtifactsManifest(ReportModel):
    """artifacts/artifacts_manifest.json: every service's image, its registry digest and where it came from."""

    generated_at: str = Field(description="When the manifest was written (UTC, RFC 3339).")
    version: str = Field(description="The release version X.Y.Z (the image tag).")
    release_tag: str = Field(description="The release's git tag name, verified_release_vX.Y.Z.")
    registry: str = Field(description="The registry the images are pushed to (host[:port][/path]).")
    git_commit: str | None = Field(description="The target repository's commit (HEAD); null when it is not a git "
                                               "checkout.")
    source_repository: str | None = Field(description="The target repository's remote URL (origin), without "
                                                      "credentials; null when it has none.")
    dagster_run_id: str = Field(description="The Dagster run that wrote this manifest.")
    images: list[ImageEntry] = Field(description="One entry per service, by name.")
    e2e: E2eResult | None = Field(description="The e2e stack's last result, when e2e_tests ran.")
    totals: Totals = Field(description="Counts over images[].")
    problems: list[Problem] = Field(description="Every service whose image is not released, with the reason, "
                                                "except those waived.")
    waived: list[WaivedService] = Field(default_factory=list, description="The services the release goes without "
                                                                          "under a waiver that holds.")
