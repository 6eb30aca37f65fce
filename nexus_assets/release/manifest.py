"""artifacts/artifacts_manifest.json: every service's image, its digest and where it came from."""

from __future__ import annotations

from datetime import datetime, timezone

from nexus_assets.core.settings import Settings
from nexus_assets.images.staleness import ServiceState


def assemble_manifest(states: list[ServiceState], settings: Settings) -> dict:
    """One entry per service: the image that is current for its source, or why there is none."""
    images, problems = [], []
    for state in states:
        last = state.last or {}
        entry = {
            "service": state.service.name,
            "status": state.status,
            "source_hash": state.fingerprint,
        }
        if state.status in ("current", "tests_failed"):
            entry.update({
                "tests": last.get("tests"),
                "image": last.get("image"),
                "tags": last.get("tags"),
                "image_id": last.get("image_id"),
                "digest": last.get("digest"),
                "repo_digest": last.get("repo_digest"),
                "size_bytes": last.get("size_bytes"),
                "base_images": last.get("base_images"),
                "substituted_bases": [b["requested"] for b in last.get("base_images") or [] if b.get("substituted")],
                "build_log": last.get("build_log"),
            })
        if state.status != "current":
            problems.append({"service": state.service.name, "status": state.status, "reason": state.reason})
            entry["reason"] = state.reason
        images.append(entry)
    with_digest = [i for i in images if i.get("digest")]
    return {
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "version": settings.version,
        "registry": settings.registry,
        "images": images,
        "totals": {"services": len(images), "with_digest": len(with_digest), "problems": len(problems),
                   "tests_failed": sum(1 for i in images if i["status"] == "tests_failed")},
        "problems": problems,
    }
