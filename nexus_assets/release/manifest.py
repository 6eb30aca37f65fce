"""artifacts/artifacts_manifest.json: every service's image, where it is in the registry and where
it came from, read from Dagster's records (the image and push materializations, tagged_images,
e2e_tests) and Dagster's own staleness verdict.

`image_id` is the image's id in the local engine; `digest` is the registry's manifest digest of
the pushed image and `repo_digest` the name to pull it by (REGISTRY/nexus/<service>@sha256:...).
Before pushes existed, `digest` held the local image id: it never was a registry digest."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nexus_assets.core.release_version import release_tag
from nexus_assets.core.settings import Settings
from nexus_assets.target.services import release_tags

RELEASED = ("current",)  # the statuses whose image is released, so must be in the registry


@dataclass(frozen=True)
class ServiceRecord:
    """What Dagster holds for one service's image and its push."""

    name: str
    last: dict[str, Any] | None  # metadata of the newest image materialization, plain values
    failure: str | None  # reason of a build that failed after that materialization
    stale: str | None  # Dagster's stale or missing reason, None when fresh
    tagged: dict[str, Any] | None  # the tagged_images row: image id and tags now in the engine
    attest: dict[str, Any] | None = None  # the attestations row: SBOM and signed provenance of the image it names
    pushed: dict[str, Any] | None = None  # metadata of the newest pushed/<service> materialization
    not_pushed: str | None = None  # reason of a push that did not happen after that one
    events: dict[str, Any] = field(default_factory=dict)  # image/push run ids and times


@dataclass(frozen=True)
class Origin:
    """Where the release comes from."""

    git_commit: str | None
    source_repository: str | None
    run_id: str


def _status(record: ServiceRecord) -> tuple[str, str | None]:
    # A failed build counts only while the image is stale: once the source is back to what the
    # last image was built from (or the failure was the engine's, on a forced rebuild), that image
    # is current again.
    if record.failure and (record.stale or record.last is None):
        return "failed", record.failure
    if record.last is None:
        return "never_built", record.stale or "never built"
    if record.tagged is None:
        return "image_missing", record.stale or "no current image in the engine"
    if record.stale:
        return "stale", record.stale
    failed = sorted(stage for stage, result in (record.last.get("tests") or {}).items() if result == "failed")
    if failed:
        return "tests_failed", f"{', '.join(failed)} tests failed"
    return "current", None


def _registry_copy(record: ServiceRecord, settings: Settings) -> dict[str, Any] | None:
    """The push recorded for this very image under the current release tag, or None."""
    pushed = record.pushed or {}
    if not record.tagged or not pushed.get("digest"):
        return None
    if pushed.get("image_id") != record.tagged["image_id"]:
        return None
    if pushed.get("tag") != release_tags(settings.registry, record.name, settings.version)[0]:
        return None
    return pushed


def _cache_pull(cache: dict[str, Any] | None) -> dict[str, Any] | None:
    """The manifest's record of a registry cache hit (images.cache CacheHit.record)."""
    if not cache:
        return None
    return {"tag": str(cache.get("tag")), "digest": str(cache.get("digest")),
            "revision": cache.get("revision"), "created": cache.get("created")}


def _empty(name: str) -> ServiceRecord:
    return ServiceRecord(name=name, last=None, failure=None, stale=None, tagged=None)


def assemble_manifest(records: list[ServiceRecord], settings: Settings, e2e: dict[str, Any] | None, origin: Origin,
                      refused: Sequence[dict[str, Any]] = (), waivers: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """One entry per service: the image that is current for its source and its registry digest,
    or why there is none. refused (target.services Refusal records): services never built nor
    counted, whatever Dagster recorded for them; waivers (policy.waivers Waiver records): a service
    not released under a waiver that holds is listed in `waived` instead of `problems`."""
    images, problems, waived = [], [], []
    refusals = {r["service"]: r for r in refused}
    by_service = {w["service"]: w for w in waivers}
    known = {r.name for r in records}
    for record in [*records, *(_empty(n) for n in sorted(set(refusals) - known))]:
        status, reason = _status(record)
        if record.name in refusals:
            status, reason = "refused", f"refused: {refusals[record.name]['reason']}; never built nor counted"
        last = record.last or {}
        entry: dict[str, Any] = {"service": record.name, "status": status, "source_hash": last.get("source_hash"),
                       "tests": None, "image": None, "tags": None, "image_id": None, "digest": None,
                       "repo_digest": None, "size_bytes": None, "base_images": None, "substituted_bases": None,
                       "infrastructure": None, "build_log": None, "built_at": None, "image_run_id": None, "push_run_id": None,
                       "pushed_at": None, "sbom": None, "provenance": None, "reason": None}
        if status in ("current", "tests_failed", "stale") and record.tagged:
            entry.update({
                "tests": last.get("tests"),
                "image": record.tagged["tags"][0],
                "tags": record.tagged["tags"],
                "image_id": record.tagged["image_id"],
                "size_bytes": last.get("size_bytes"),
                "base_images": last.get("base_images"),
                "substituted_bases": [b["requested"] for b in last.get("base_images") or [] if b.get("substituted")],
                "infrastructure": last.get("infrastructure") or [],
                "build_log": last.get("build_log"),
                "built_at": record.events.get("built_at"),
                "image_run_id": record.events.get("image_run_id"),
                "obtained": "pulled from cache" if last.get("status") == "pulled from cache" else "built",
                "cache": _cache_pull(last.get("cache")),
            })
            pushed = _registry_copy(record, settings)
            if pushed:
                entry.update({"digest": pushed["digest"], "repo_digest": pushed["repo_digest"],
                              "push_run_id": record.events.get("push_run_id"),
                              "pushed_at": record.events.get("pushed_at")})
            elif status in RELEASED:  # released, so it must be in the registry: say why it is not
                reason = record.not_pushed or f"not in the registry {settings.registry} under this version's tag"
        attest = record.attest or {}
        if entry["image_id"] and attest.get("image_id") == entry["image_id"]:
            for kind in ("sbom", "provenance"):  # {path (under artifacts/), sha256}
                if attest.get(kind) and (kind == "sbom" or attest[kind].get("digest") == entry["digest"]):
                    entry[kind] = {"path": attest[kind]["path"], "sha256": attest[kind]["sha256"]}
        waiver = by_service.get(record.name)
        if waiver and (reason or status == "tests_failed"):  # not released: the waiver applies
            entry["waiver"] = waiver
            reason = reason or f"{status.replace('_', ' ')}"
            if not waiver["expired"]:
                waived.append({**waiver, "status": status, "why": reason})
                reason = f"waived: {reason}"
            else:
                reason = (f"the waiver of {record.name} (nexus-agent.toml line {waiver['line']}) expired on "
                          f"{waiver['until']}: {reason}")
        if reason:
            if not reason.startswith("waived: "):
                problems.append({"service": record.name, "status": status if status != "current" else "not_pushed",
                                 "reason": reason})
            entry["reason"] = reason
        images.append(entry)
    with_digest = [i for i in images if i.get("digest")]
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "version": settings.version,
        "release_tag": release_tag(settings.version),
        "registry": settings.registry,
        "git_commit": origin.git_commit,
        "source_repository": origin.source_repository,
        "dagster_run_id": origin.run_id,
        "images": images,
        "e2e": e2e,
        "totals": {"services": len(images), "with_digest": len(with_digest), "problems": len(problems),
                   "tests_failed": sum(1 for i in images if i["status"] == "tests_failed"),
                   "refused": sum(1 for i in images if i["status"] == "refused"), "waived": len(waived)},
        "problems": problems,
        "waived": sorted(waived, key=lambda w: w["service"]),
    }


def waived_services(manifest: dict[str, Any]) -> set[str]:
    """The services the release goes without, under a waiver that holds."""
    return {w["service"] for w in manifest.get("waived") or []}


def unreleased(manifest: dict[str, Any]) -> list[str]:
    """The gate's list: services with no released image in the registry (a failed test is its
    own check's failure, not this gate's), a refused service among them; a waived one is not, and
    one whose waiver expired is, whatever its status: the gate names the waiver and its date."""
    waived = waived_services(manifest)
    return [i["service"] for i in manifest["images"] if i["service"] not in waived
            and ((i.get("waiver") or {}).get("expired")
                 or (i["status"] != "tests_failed" and not (i["status"] in RELEASED and i.get("digest"))))]
