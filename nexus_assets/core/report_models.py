"""What every typed report shares: the model base, the problem record, and the one way a
report goes through its model before it is written.

The stages' report models (`discovery.report`, `parity.report`, `scaffold.report`) describe
the JSON files the pipeline writes under `reports/`; their JSON Schemas are kept in the
repository's `schemas/` folder (`scripts/export_schemas.py` writes them) so a reader knows a
report's shape without the code.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nexus_assets.core.errors import ReportError

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


class ReportModel(BaseModel):
    """Base of every report model.

    Strict: a value of the wrong type is refused, never converted, so what is written is what
    the stage produced. Forbidding unknown keys keeps the schema complete: a key the code adds
    without adding it to its model fails the stage (and the schema test) instead of going
    undocumented."""

    model_config = ConfigDict(extra="forbid", strict=True)


class Problem(ReportModel):
    """One thing wrong in the input; the stage went on without it. At least one of file and
    service says where."""

    file: str | None = Field(description="The file (relative to the repository) or the source "
                                         "(`docker engine`, `nexus-agent.toml [parity]`) that is wrong.")
    line: int | None = Field(description="1-based line in file, when the problem has one.")
    service: str | None = Field(description="The service or module the problem concerns, when one does.")
    message: str = Field(description="What is wrong and what was done about it; never a secret value.")


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def sometimes(description: str) -> Any:
    """A field whose key the producer writes only in some cases (the description says which).
    Not required, and without a default in the schema: the key is absent, not null, otherwise.
    Annotate it `T | SkipJsonSchema[None]`, or `T | None` when null is itself a value."""
    return Field(default=None, description=description, json_schema_extra=_no_default)


M = TypeVar("M", bound=ReportModel)


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def checked_report(model: type[M], payload: Any, shown: str) -> dict[str, Any]:
    """payload validated by model and returned as the JSON-ready dict to write.

    Keys the producer left out (the fields with a default, e.g. a family's counts on a plain
    module) stay out, so the written file has exactly the producer's keys and values.
    Raises ReportError naming shown and each offending field (the value itself is never
    quoted: it could be a secret the report masks elsewhere)."""
    try:
        report = model.model_validate(payload)
    except ValidationError as exc:
        fields = "; ".join(f"{_where(e['loc'])}: {e['msg']}" for e in exc.errors(include_input=False)[:10])
        more = f" (and {exc.error_count() - 10} more)" if exc.error_count() > 10 else ""
        raise ReportError(f"{shown}: report does not match its schema ({model.__name__}): {fields}{more}; "
                          "a bug in the stage that writes it, not in the repository") from None
    return report.model_dump(mode="json", exclude_unset=True)


def report_schema(model: type[ReportModel]) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a report model, as kept in `schemas/`."""
    return {"$schema": SCHEMA_DIALECT, **model.model_json_schema()}


# --- reports/deployment_report_YYYYMMDD.json ------------------------------------------------
# Here rather than in a stage: the release writes it and the deploy stage adds the host's part,
# and stages do not import one another. Schema: schemas/deployment_report.schema.json.

class BuiltImage(ReportModel):
    """One service's image as the manifest records it."""

    service: str = Field(description="The service (compose name, or services/<name>/ folder).")
    status: str = Field(description="The manifest's status: current, tests_failed, stale, failed, never_built, "
                                    "image_missing.")
    image: str | None = Field(description="The release tag REGISTRY/nexus/<service>:VERSION; null without an image.")
    image_id: str | None = Field(description="The local image id (sha256:...) in the engine.")
    source_hash: str | None = Field(description="The sha256 of what the build read (source/<service>'s data version).")
    tests: dict[str, str] | None = Field(description="Result per test stage (lint, unit, integration).")
    run_id: str | None = Field(description="The Dagster run that last materialized image/<service>.")
    obtained: str | None = Field(default=None, description="built: built and tested by that run; pulled from "
                                                           "cache: taken from the registry cache (cache_tag).")
    cache_tag: str | None = Field(default=None, description="The registry cache tag the image was pulled from.")


class PushedImage(ReportModel):
    """One image the registry holds, by its manifest digest."""

    service: str = Field(description="The service.")
    repo_digest: str = Field(description="name@sha256:... as the registry answered the push.")


class ReleaseGate(ReportModel):
    """A gate's last verdict when the release was decided."""

    name: str = Field(description="asset:check, e.g. artifacts_manifest:manifest_has_digests.")
    passed: bool = Field(description="Whether the gate passed.")
    blocking: bool = Field(description="Whether its failure blocks the release (a WARN check does not).")
    detail: str = Field(description="The check's own description of its verdict.")
    run_id: str | None = Field(description="The Dagster run that evaluated it; null for a gate read from a report.")


class ReleaseSummary(ReportModel):
    """The verified release of this version: made, repeated or refused."""

    made: bool = Field(description="True when the release exists (made now or already there).")
    version: str = Field(description="X.Y.Z.")
    version_auto: bool = Field(description="No version was given: the next patch after the last release tag.")
    tag: str = Field(description="verified_release_vX.Y.Z in the target repository.")
    already_released: bool = Field(description="The tag existed for this commit: no new tag was made.")
    failed_gates: list[str] = Field(description="The blocking gates that failed; the release was refused when any.")
    deferred_for: list[str] = Field(description="Services scaffolded by this run that the graph did not know yet: "
                                                "the release waited for the run that builds them.")
    source_commit: str | None = Field(description="The target repository's commit released; null when the target "
                                                  "is not a git checkout.")
    release_commit: str | None = Field(description="The commit the tag and branch point at (source + releases/vX.Y.Z/).")
    dirty: bool = Field(description="The target's working tree had uncommitted changes.")
    previous_version: str | None = Field(description="The release compared with in the notes.")
    changed_services: list[str] = Field(description="Services whose digest or SBOM components changed since then.")
    attachments: list[str] = Field(description="The files the release carries.")
    folder: str | None = Field(description="WORKDIR/releases/vX.Y.Z/: attachments, notes, manifest, SBOM components.")
    github_url: str | None = Field(description="The GitHub Release page; null when not published to GitHub.")
    messages: list[str] = Field(description="What the release step said, in order.")
    gates: list[ReleaseGate] = Field(description="Every gate the release read.")


class StagingService(ReportModel):
    """One service of the release on the staging host, as the digest-level audit saw it."""

    service: str = Field(description="The compose service.")
    expected: str = Field(description="The pinned repo digest (released services) or the compose image.")
    running: str | None = Field(description="The running image's repo digest (or id); null with no container.")
    state: str = Field(description="The container's state: running, exited, ..., missing.")
    health: str = Field(description="healthy, unhealthy, starting, or none (no health check).")
    ok: bool = Field(description="Running, healthy and the pinned image.")


class StagingAudit(ReportModel):
    """The digest-level audit of the host against the release deployed there."""

    release: str | None = Field(description="The release the host's `current` points at; null when none.")
    passed: bool = Field(description="Every service runs, healthy, the pinned digest; nothing else differs.")
    drifts: list[str] = Field(description="Each difference, named: missing service, extra container, other image, "
                                          "changed published port or env key set (names only, never values).")
    services: list[StagingService] = Field(description="One row per service of the release.")


class StagingDeployment(ReportModel):
    """The deployment of the release to the staging host, over SSH."""

    target: str = Field(description="user@host:port of the staging host.")
    release: str = Field(description="The release tag deployed.")
    package: str = Field(description="The deployment package uploaded.")
    previous: str | None = Field(description="The release the host ran before; null for the first deployment.")
    ok: bool = Field(description="Deployed, healthy and the audit passed.")
    started: bool = Field(description="The release was started on the host (false: refused before anything ran).")
    audit: StagingAudit | None = Field(description="The audit after the deployment; null when nothing started.")
    script_audit: str = Field(description="What the package's post_deploy_audit.sh printed on the host.")
    rolled_back_to: str | None = Field(description="The release rolled back to after a failed audit; null when none.")
    second_audit: StagingAudit | None = Field(description="The audit after the rollback; null without a rollback.")
    pruned: list[str] = Field(description="Releases removed from the host (NEXUS_KEEP_RELEASES kept).")
    durations: dict[str, float] = Field(description="Seconds: upload, upload_to_healthy, audit, rollback_to_healthy.")
    failure: str | None = Field(description="What failed; null when the deployment passed.")
    started_at: str = Field(description="UTC time the deployment started (ISO 8601).")


class DeploymentReport(ReportModel):
    """reports/deployment_report_YYYYMMDD.json: what was built, pushed and released, with the
    Dagster runs that did it."""

    generated_at: str = Field(description="UTC time the report was written (ISO 8601).")
    version: str = Field(description="The release version X.Y.Z.")
    registry: str = Field(description="The registry the images are tagged for.")
    repo: str = Field(description="The target repository.")
    run_id: str = Field(description="The Dagster run that wrote this report.")
    runs: dict[str, str] = Field(description="Asset key -> the Dagster run that last materialized it "
                                             "(manifest, release).")
    built: list[BuiltImage] = Field(description="One row per service of the manifest.")
    pushed: list[PushedImage] = Field(description="The images with a registry digest; empty until they are pushed.")
    release: ReleaseSummary | None = Field(description="The release; null when the release step has not run yet.")
    staging: StagingDeployment | None = Field(default=None, description="The last deployment to the staging host "
                                                                        "(nexus-agent run --deploy-staging); null "
                                                                        "when none.")
