"""reports/deployment_report_YYYYMMDD.json: what was built, pushed and released, from the
manifest, the release record (artifacts/verified_release.json) and Dagster's run ids.
Model and schema: core.report_models.DeploymentReport, schemas/deployment_report.schema.json."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nexus_assets.core.keys import DEPLOYMENT_REPORT_FILE, dated
from nexus_assets.core.report_models import DeploymentReport, checked_report
from nexus_assets.core.settings import Settings

SUMMARY_FIELDS = ("made", "version", "tag", "already_released", "failed_gates", "deferred_for", "source_commit", "release_commit",
                  "dirty", "previous_version", "changed_services", "attachments", "folder", "messages")


def report_path(settings: Settings, when: datetime | None = None) -> Path:
    return settings.workdir / dated(DEPLOYMENT_REPORT_FILE, when or datetime.now(UTC))


def release_summary(record: dict[str, Any] | None, version_auto: bool) -> dict[str, Any] | None:
    """The report's release part from the release step's record."""
    if record is None:
        return None
    summary = {key: record.get(key) for key in SUMMARY_FIELDS}
    summary["version_auto"] = version_auto
    summary["github_url"] = (record.get("github") or {}).get("url") or None
    summary["gates"] = record.get("gates") or []
    return summary


def build_report(settings: Settings, manifest: dict[str, Any], record: dict[str, Any] | None, run_id: str,
                      image_runs: dict[str, str], runs: dict[str, str]) -> dict[str, Any]:
    """The report, checked against its model."""
    built = [{"service": entry["service"], "status": str(entry.get("status")),
              "image": entry.get("image"), "image_id": entry.get("image_id"), "source_hash": entry.get("source_hash"),
              "tests": {str(k): str(v) for k, v in (entry.get("tests") or {}).items()} or None,
              "run_id": image_runs.get(entry["service"]), "obtained": entry.get("obtained"),
              "cache_tag": (entry.get("cache") or {}).get("tag")}
             for entry in manifest.get("images", [])]
    pushed = [{"service": entry["service"], "repo_digest": str(entry["repo_digest"])}
              for entry in manifest.get("images", []) if entry.get("repo_digest")]
    payload = {"generated_at": datetime.now(UTC).isoformat(timespec="seconds"), "version": settings.version,
               "registry": settings.registry, "repo": str(settings.repo), "run_id": run_id, "runs": runs,
               "built": built, "pushed": pushed, "release": release_summary(record, settings.version_auto)}
    return checked_report(DeploymentReport, payload, DEPLOYMENT_REPORT_FILE)
