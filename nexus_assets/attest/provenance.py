"""SLSA provenance of one pushed image: an in-toto Statement v1 whose subject is the registry
digest, with a SLSA provenance v1 predicate saying how it was built and from what (source
repository and commit, the source fingerprint, the base images by id, the build arguments with
secret-looking values masked, the Dagster run that built it, when it started and finished) and
the SBOM made of it (as a byproduct, by sha256). Signed into a DSSE envelope by attest.signing."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nexus_assets.evidence.check import PAYLOAD_TYPE, PREDICATE_TYPE, STATEMENT_TYPE

BUILD_TYPE = "https://nexus-assets.dev/buildtypes/docker-engine-build/v1"
DEFAULT_BUILDER_ID = "https://nexus-assets.dev/builders/dagster-docker-engine/v1"
SBOM_MEDIA_TYPE = "application/vnd.cyclonedx+json"
SBOM_VERSION = "sbom-1"  # bump when what an SBOM holds changes: every SBOM is made again
PROVENANCE_VERSION = "provenance-1"
# What a statement records of how its SBOM and itself were made: one made another way (another
# recipe) is never kept or fetched in place of a new one (attest.reuse).
RECIPE = {"sbom": SBOM_VERSION, "provenance": PROVENANCE_VERSION}


@dataclass
class BuildFacts:
    """What Dagster recorded about one image's build and push (plain values)."""

    service: str
    repo_digest: str  # REGISTRY/nexus/<service>@sha256:…
    digest: str  # sha256:… the registry's manifest digest
    image_id: str
    tag: str
    image_run_id: str  # the Dagster run that built the image
    finished_at: float  # when the build's materialization was recorded (epoch seconds)
    build_seconds: float
    source_hash: str
    tree_hash: str
    service_path: str
    base_images: list[dict[str, Any]] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)
    build_args: dict[str, str] = field(default_factory=dict)  # already masked
    source_location: str = ""  # file://REPO, for a target without a source label
    # The image step's record of a registry cache hit ({tag, digest, revision, created, ...}): the
    # image was pulled, built and tested by an earlier run (its commit in its labels), not built here.
    cache: dict[str, Any] = field(default_factory=dict)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _sha(value: str) -> str:
    return value.removeprefix("sha256:")


def build_statement(facts: BuildFacts, *, sbom_path: str, sbom_sha256: str, builder_id: str,
                    attest_run_id: str, versions: dict[str, str]) -> dict[str, Any]:
    """The in-toto statement for one image (a plain JSON-able dict)."""
    # The repository's remote URL from the image's OCI label; a target that is no git checkout has
    # none, and is named by where it was read from.
    source = facts.labels.get("org.opencontainers.image.source") or facts.source_location
    revision = facts.labels.get("org.opencontainers.image.revision") or ""
    dependencies: list[dict[str, Any]] = []
    if source and revision and revision != "unknown":
        dependencies.append({"uri": f"git+{source}@{revision}", "digest": {"gitCommit": revision}})
    dependencies.append({"name": "source", "uri": f"{source or 'repository'}#{facts.service_path}",
                         "digest": {"nexus-tree-sha256": facts.tree_hash, "nexus-fingerprint": facts.source_hash}})
    for base in facts.base_images:
        entry: dict[str, Any] = {"uri": f"pkg:docker/{base.get('requested')}", "name": base.get("requested"),
                       "digest": {"sha256": _sha(str(base.get("image_id") or ""))}}
        if base.get("substituted"):
            entry["annotations"] = {"substituted": True, "substitute": base.get("substitute")}
        dependencies.append(entry)
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": facts.repo_digest.split("@", 1)[0], "digest": {"sha256": _sha(facts.digest)}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "buildDefinition": {
                "buildType": BUILD_TYPE,
                "externalParameters": {
                    "service": facts.service,
                    "source": {"repository": source, "revision": revision, "path": facts.service_path},
                    "buildArgs": dict(sorted(facts.build_args.items())),
                    "tag": facts.tag,
                },
                "internalParameters": {
                    "sourceFingerprint": facts.source_hash,
                    "imageId": facts.image_id,
                    "labels": dict(sorted(facts.labels.items())),
                    "attestedByDagsterRun": attest_run_id,
                    "nexusRecipe": dict(RECIPE),
                    # Built here, or pulled from the registry cache: then the invocation below is the
                    # run that pulled it, and the build is the one the cache tag's labels name.
                    "obtained": "pulled from the registry cache" if facts.cache else "built",
                    **({"registryCache": {k: facts.cache.get(k) for k in ("tag", "digest", "revision", "created")}}
                       if facts.cache else {}),
                },
                "resolvedDependencies": dependencies,
            },
            "runDetails": {
                "builder": {"id": builder_id, "version": dict(sorted(versions.items()))},
                "metadata": {
                    "invocationId": facts.image_run_id,
                    "startedOn": _iso(facts.finished_at - facts.build_seconds),
                    "finishedOn": _iso(facts.finished_at),
                },
                "byproducts": [{"name": "sbom", "uri": sbom_path, "mediaType": SBOM_MEDIA_TYPE,
                                "digest": {"sha256": sbom_sha256}}],
            },
        },
    }


def statement_bytes(statement: dict[str, Any]) -> bytes:
    """The payload that is signed: compact, keys sorted, so the same statement gives the same bytes."""
    return json.dumps(statement, sort_keys=True, separators=(",", ":")).encode("utf-8")


def envelope_line(envelope: dict[str, Any]) -> bytes:
    """One line of a .intoto.jsonl file."""
    return json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode("utf-8") + b"\n"


__all__ = ["PAYLOAD_TYPE", "BuildFacts", "build_statement", "envelope_line", "statement_bytes"]
