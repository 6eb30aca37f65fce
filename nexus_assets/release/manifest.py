"""artifacts/artifacts_manifest.json: every service's image, its digest and where it came from,
read from Dagster's records (the image materializations, tagged_images and e2e_tests) and
Dagster's own staleness verdict."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from nexus_assets.core.settings import Settings


@dataclass(frozen=True)
class ServiceRecord:
    """What Dagster holds for one service's image."""

    name: str
    last: dict | None  # metadata of the newest materialization, plain values
    failure: str | None  # reason of a build that failed after that materialization
    stale: str | None  # Dagster's stale or missing reason, None when fresh
    tagged: dict | None  # the tagged_images row: image id and tags now in the engine


def _status(record: ServiceRecord) -> tuple[str, str | None]:
    if record.failure:
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


def assemble_manifest(records: list[ServiceRecord], settings: Settings, e2e: dict | None) -> dict:
    """One entry per service: the image that is current for its source, or why there is none."""
    images, problems = [], []
    for record in records:
        status, reason = _status(record)
        last = record.last or {}
        entry: dict = {"service": record.name, "status": status, "source_hash": last.get("source_hash")}
        if status in ("current", "tests_failed", "stale") and record.tagged:
            entry.update({
                "tests": last.get("tests"),
                "image": record.tagged["tags"][0],
                "tags": record.tagged["tags"],
                "image_id": record.tagged["image_id"],
                "digest": record.tagged["image_id"],
                "size_bytes": last.get("size_bytes"),
                "base_images": last.get("base_images"),
                "substituted_bases": [b["requested"] for b in last.get("base_images") or [] if b.get("substituted")],
                "infrastructure": last.get("infrastructure") or [],
                "build_log": last.get("build_log"),
            })
        if reason:
            problems.append({"service": record.name, "status": status, "reason": reason})
            entry["reason"] = reason
        images.append(entry)
    with_digest = [i for i in images if i.get("digest")]
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "version": settings.version,
        "registry": settings.registry,
        "images": images,
        "e2e": e2e,
        "totals": {"services": len(images), "with_digest": len(with_digest), "problems": len(problems),
                   "tests_failed": sum(1 for i in images if i["status"] == "tests_failed")},
        "problems": problems,
    }
